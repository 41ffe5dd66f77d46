//! In the protobuf framing every `*.binpb` segment is a run of varint-length-delimited OTLP
//! messages: decoding `TracesData` / `LogsData` / `MetricsData` with
//! `prost::Message::decode_length_delimited` until the end of the file consumes it exactly.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use stellaops_telemetry_core::{
    FileExportOptions, FileFormat, FileLogExporter, FileMetricExporter, FileSpanExporter,
    read_logs, read_metrics, read_traces,
};

type TestResult = Result<(), Box<dyn Error>>;

fn options(dir: &Path) -> FileExportOptions {
    FileExportOptions::new(dir).format(FileFormat::Protobuf)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("scanner")
        .build()
}

/// Decodes every segment of `dir/<signal>/` as consecutive length-delimited `M` messages.
fn decode_all<M: Message + Default>(dir: &Path, signal: &str) -> Result<Vec<M>, Box<dyn Error>> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.join(signal))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segments.sort();
    assert!(!segments.is_empty(), "no {signal} segments");
    let mut messages = Vec::new();
    for segment in segments {
        assert_eq!(segment.extension().and_then(|e| e.to_str()), Some("binpb"));
        let bytes = fs::read(&segment)?;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            messages.push(M::decode_length_delimited(&mut rest)?);
        }
    }
    Ok(messages)
}

#[test]
fn batched_spans_decode_as_consecutive_delimited_traces_data() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(FileSpanExporter::new(options(tmp.path()))?)
        .build();
    let tracer = provider.tracer("scanner");
    for i in 0..10_i64 {
        tracer.in_span(format!("layer {i}"), |_cx| {});
    }
    provider.force_flush()?;
    tracer.in_span("after flush", |_cx| {});
    provider.shutdown()?;

    let messages: Vec<TracesData> = decode_all(tmp.path(), "traces")?;
    // One message per export call: the flushed batch and the shutdown batch (a third only if
    // the processor's own 5 s timer fired in between).
    assert!(messages.len() >= 2);
    let names: Vec<&str> = messages
        .iter()
        .flat_map(|m| &m.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names.len(), 11);
    assert!(names.contains(&"layer 0") && names.contains(&"after flush"));
    let span = &messages[0].resource_spans[0].scope_spans[0].spans[0];
    assert_eq!((span.trace_id.len(), span.span_id.len()), (16, 8));
    assert_eq!(read_traces(tmp.path(), FileFormat::Protobuf)?, messages);
    Ok(())
}

#[test]
fn log_records_decode_as_delimited_logs_data() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(FileLogExporter::new(options(tmp.path()))?)
        .build();
    let logger = provider.logger("scanner");
    for i in 0..3_i64 {
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from(format!("layer {i} scanned")));
        record.add_attribute("layer", i);
        logger.emit(record);
    }
    provider.shutdown()?;

    let messages: Vec<LogsData> = decode_all(tmp.path(), "logs")?;
    assert_eq!(messages.len(), 3);
    let resource = messages[2].resource_logs[0]
        .resource
        .as_ref()
        .ok_or("no resource")?;
    assert_eq!(resource.attributes[0].key, "service.name");
    assert_eq!(read_logs(tmp.path(), FileFormat::Protobuf)?, messages);
    Ok(())
}

#[test]
fn metric_collections_decode_as_delimited_metrics_data() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(PeriodicReader::builder(FileMetricExporter::new(options(tmp.path()))?).build())
        .build();
    let layers = provider.meter("scanner").u64_counter("layers").build();
    layers.add(4, &[KeyValue::new("kind", "oci")]);
    provider.force_flush()?;
    layers.add(1, &[KeyValue::new("kind", "oci")]);
    provider.shutdown()?;

    let messages: Vec<MetricsData> = decode_all(tmp.path(), "metrics")?;
    assert_eq!(messages.len(), 2, "one message per collection");
    assert_eq!(
        messages[1].resource_metrics[0].scope_metrics[0].metrics[0].name,
        "layers"
    );
    assert_eq!(read_metrics(tmp.path(), FileFormat::Protobuf)?, messages);
    // The JSON reader does not pick up protobuf segments.
    assert!(read_metrics(tmp.path(), FileFormat::Json)?.is_empty());
    Ok(())
}
