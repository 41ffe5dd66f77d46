//! The file exporter writes OTLP JSON Lines (one TracesData / MetricsData / LogsData per line)
//! that parse back with the official protobuf JSON mapping, and length-delimited protobuf.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead;

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use stellaops_telemetry_core::{
    ExporterKind, FileFormat, Telemetry, read_logs, read_metrics, read_traces, segment_files,
};

fn run(dir: &std::path::Path, format: FileFormat) -> (Vec<String>, String) {
    let telemetry = Telemetry::builder("file-test")
        .service_version("2.0.0")
        .exporters(&[ExporterKind::File])
        .file_format(format)
        .dir(dir)
        .stdout_logs(false)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for i in 0..5i64 {
            let span =
                tracing::info_span!("scan.image", imageRef = "registry.example/app", index = i);
            let _e = span.enter();
            use opentelemetry::trace::TraceContextExt;
            use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt;
            ids.push(span.context().span().span_context().span_id().to_string());
            tracing::info!(index = i, "scanned");
        }
    });
    let meter = telemetry.meter("file-test");
    meter
        .u64_counter("scans_total")
        .build()
        .add(5, &[opentelemetry::KeyValue::new("tenant", "acme")]);
    meter
        .f64_histogram("scan_duration_seconds")
        .build()
        .record(0.25, &[]);
    telemetry.shutdown();
    (ids, format!("{:?}", telemetry.stats()))
}

fn json_lines(dir: &std::path::Path, signal: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for file in segment_files(dir, signal, FileFormat::Json) {
        assert!(file.extension().unwrap() == "jsonl");
        for line in std::io::BufReader::new(std::fs::File::open(file).unwrap()).lines() {
            lines.push(line.unwrap());
        }
    }
    lines
}

#[test]
fn json_lines_parse_back_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (span_ids, stats) = run(dir.path(), FileFormat::Json);

    let traces: Vec<TracesData> = json_lines(dir.path(), "traces")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), 5, "{stats}");
    let mut exported: Vec<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    let mut expected = span_ids.clone();
    exported.sort();
    expected.sort();
    assert_eq!(exported, expected);
    assert!(spans.iter().all(|s| s.name == "scan.image"));
    let resource = traces[0].resource_spans[0].resource.as_ref().unwrap();
    let service = resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .unwrap();
    assert_eq!(
        format!("{:?}", service.value),
        format!(
            "{:?}",
            Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "file-test".into()
                    )
                ),
            })
        )
    );
    // Ids are hex strings in the OTLP/JSON mapping.
    let raw = &json_lines(dir.path(), "traces")[0];
    assert!(
        raw.contains(&format!("\"spanId\":\"{}\"", span_ids[0]))
            || span_ids.iter().any(|id| raw.contains(id))
    );

    let logs: Vec<LogsData> = json_lines(dir.path(), "logs")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records: usize = logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    assert_eq!(records, 5);

    let metrics: Vec<MetricsData> = json_lines(dir.path(), "metrics")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<String> = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect();
    assert!(names.contains(&"scans_total".to_owned()), "{names:?}");
    assert!(
        names.contains(&"scan_duration_seconds".to_owned()),
        "{names:?}"
    );

    // The crate's own readers agree.
    assert_eq!(read_traces(dir.path(), FileFormat::Json).unwrap(), traces);
    assert_eq!(read_logs(dir.path(), FileFormat::Json).unwrap(), logs);
    assert_eq!(read_metrics(dir.path(), FileFormat::Json).unwrap(), metrics);
}

#[test]
fn protobuf_framing_is_varint_length_delimited() {
    let dir = tempfile::tempdir().unwrap();
    let (span_ids, _) = run(dir.path(), FileFormat::Protobuf);
    let files = segment_files(dir.path(), "traces", FileFormat::Protobuf);
    assert!(!files.is_empty());
    let mut spans = 0;
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let data = <TracesData as prost::Message>::decode_length_delimited(&mut rest).unwrap();
            spans += data
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>();
        }
    }
    assert_eq!(spans, span_ids.len());
    assert!(
        !read_logs(dir.path(), FileFormat::Protobuf)
            .unwrap()
            .is_empty()
    );
    assert!(
        !read_metrics(dir.path(), FileFormat::Protobuf)
            .unwrap()
            .is_empty()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
