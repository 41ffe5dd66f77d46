//! Spans, logs and metrics written by the file exporters in the JSON framing are JSON Lines:
//! every line of every `*.jsonl` segment is one OTLP/JSON `TracesData` / `LogsData` /
//! `MetricsData` message that parses back with opentelemetry-proto's serde mapping, with hex
//! ids, integer enums and 64-bit integers as strings.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::trace::{SpanContext, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::common::v1::any_value::Value as ProtoValue;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as ProtoAnyValue, KeyValue as ProtoKeyValue,
};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::{MetricsData, metric::Data, number_data_point};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use stellaops_telemetry_core::{
    FileExportOptions, FileLogExporter, FileMetricExporter, FileSpanExporter,
};

type TestResult = Result<(), Box<dyn Error>>;

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("checkout")
        .with_attribute(KeyValue::new("deployment.environment.name", "test"))
        .build()
}

/// Every line of every `*.jsonl` segment under `dir/<signal>/`, in name order.
fn lines(dir: &Path, signal: &str) -> Result<Vec<String>, Box<dyn Error>> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.join(signal))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segments.sort();
    let mut lines = Vec::new();
    for segment in segments {
        assert_eq!(segment.extension().and_then(|e| e.to_str()), Some("jsonl"));
        let text = fs::read_to_string(&segment)?;
        assert!(text.ends_with('\n'), "{} ends mid-line", segment.display());
        lines.extend(text.lines().map(str::to_owned));
    }
    Ok(lines)
}

fn attribute<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a ProtoValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &ProtoAnyValue| v.value.as_ref())
}

fn string(value: &str) -> ProtoValue {
    ProtoValue::StringValue(value.to_owned())
}

/// The compact, one-object-per-line shape the Collector's `otlpjsonfile` receiver reads.
fn assert_compact_object(line: &str) -> Result<Value, Box<dyn Error>> {
    assert!(
        line.starts_with('{') && line.ends_with('}'),
        "not one object: {line}"
    );
    for loose in ["\n", ": ", ", ", ",,", ",}", ",]"] {
        assert!(!line.contains(loose), "`{loose}` in {line}");
    }
    assert!(!line.contains("null"), "null member in {line}");
    Ok(serde_json::from_str(line)?)
}

#[test]
fn spans_parse_back_with_hex_ids_attributes_events_and_status() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(FileSpanExporter::new(FileExportOptions::new(tmp.path()))?)
        .build();
    let tracer = provider.tracer("checkout-service");

    let mut parent = tracer
        .span_builder("charge card")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 402_i64),
            KeyValue::new("retry", true),
            KeyValue::new("amount", 12.5),
        ])
        .start(&tracer);
    parent.add_event("card declined", vec![KeyValue::new("card.brand", "visa")]);
    parent.set_status(Status::error("payment required"));
    let parent_context: SpanContext = parent.span_context().clone();
    let cx = Context::current().with_remote_span_context(parent_context.clone());
    let mut child = tracer.start_with_context("lookup customer", &cx);
    let child_context: SpanContext = child.span_context().clone();
    child.end();
    parent.end();
    provider.shutdown()?;

    let lines = lines(tmp.path(), "traces")?;
    if std::env::var_os("PRINT_OTLP_JSON").is_some() {
        println!("{}", lines.join("\n"));
    }
    assert_eq!(
        lines.len(),
        2,
        "one line per export call (simple processor)"
    );
    for line in &lines {
        let raw = assert_compact_object(line)?;
        let span = &raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert!(span["traceId"].is_string() && span["spanId"].is_string());
        assert!(span["kind"].is_i64(), "enums are integers");
        assert!(span["startTimeUnixNano"].is_string(), "uint64 is a string");
        assert!(span["status"]["code"].is_i64());
    }

    let messages: Vec<TracesData> = lines
        .iter()
        .map(|line| serde_json::from_str(line))
        .collect::<Result<_, _>>()?;
    let raw_child: Value = serde_json::from_str(&lines[0])?;
    let raw_parent: Value = serde_json::from_str(&lines[1])?;

    let child_span = &messages[0].resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(child_span.name, "lookup customer");
    assert_eq!(child_span.trace_id, parent_context.trace_id().to_bytes());
    assert_eq!(child_span.span_id, child_context.span_id().to_bytes());
    assert_eq!(
        child_span.parent_span_id,
        parent_context.span_id().to_bytes()
    );
    let raw_child = &raw_child["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(raw_child["traceId"], parent_context.trace_id().to_string());
    assert_eq!(raw_child["spanId"], child_context.span_id().to_string());
    assert_eq!(
        raw_child["parentSpanId"],
        parent_context.span_id().to_string()
    );

    let resource_spans = &messages[1].resource_spans[0];
    let resource_attributes = &resource_spans
        .resource
        .as_ref()
        .ok_or("no resource")?
        .attributes;
    assert_eq!(
        attribute(resource_attributes, "service.name"),
        Some(&string("checkout"))
    );
    let scope = resource_spans.scope_spans[0]
        .scope
        .as_ref()
        .ok_or("no scope")?;
    assert_eq!(scope.name, "checkout-service");

    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(span.name, "charge card");
    assert_eq!(span.span_id, parent_context.span_id().to_bytes());
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0);
    assert_eq!(
        attribute(&span.attributes, "http.request.method"),
        Some(&string("POST"))
    );
    assert_eq!(
        attribute(&span.attributes, "http.response.status_code"),
        Some(&ProtoValue::IntValue(402))
    );
    assert_eq!(
        attribute(&span.attributes, "retry"),
        Some(&ProtoValue::BoolValue(true))
    );
    assert_eq!(
        attribute(&span.attributes, "amount"),
        Some(&ProtoValue::DoubleValue(12.5))
    );
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "card declined");
    assert_eq!(
        attribute(&span.events[0].attributes, "card.brand"),
        Some(&string("visa"))
    );
    let status = span.status.as_ref().ok_or("no status")?;
    assert_eq!(
        (status.code, status.message.as_str()),
        (2, "payment required")
    );

    let raw_span = &raw_parent["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(raw_span["traceId"].as_str().map(str::len), Some(32));
    assert_eq!(raw_span["parentSpanId"], "");
    let status_code = raw_span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == "http.response.status_code"))
        .ok_or("no status code attribute")?;
    assert_eq!(status_code["value"]["intValue"], "402", "int64 is a string");
    Ok(())
}

#[test]
fn log_records_parse_back_with_body_severity_and_attributes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(FileLogExporter::new(FileExportOptions::new(tmp.path()))?)
        .build();
    let logger = provider.logger("checkout-service");
    let mut record = logger.create_log_record();
    record.set_body(AnyValue::from("card declined"));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.add_attribute("order.id", 1234_i64);
    record.add_attribute("card.brand", "visa");
    logger.emit(record);
    // A record without a body: the proto field is unset and must not be written as `null`.
    let mut bare = logger.create_log_record();
    bare.set_severity_number(Severity::Info);
    logger.emit(bare);
    provider.shutdown()?;

    let lines = lines(tmp.path(), "logs")?;
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let raw = assert_compact_object(line)?;
        let record = &raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert!(record["severityNumber"].is_i64(), "enums are integers");
        assert!(
            record["observedTimeUnixNano"].is_string(),
            "uint64 is a string"
        );
    }
    let messages: Vec<LogsData> = lines
        .iter()
        .map(|line| serde_json::from_str(line))
        .collect::<Result<_, _>>()?;

    let resource_logs = &messages[0].resource_logs[0];
    let resource_attributes = &resource_logs
        .resource
        .as_ref()
        .ok_or("no resource")?
        .attributes;
    assert_eq!(
        attribute(resource_attributes, "service.name"),
        Some(&string("checkout"))
    );
    let record = &resource_logs.scope_logs[0].log_records[0];
    assert_eq!(
        record.body.as_ref().and_then(|b| b.value.as_ref()),
        Some(&string("card declined"))
    );
    assert_eq!(record.severity_number, 13, "SEVERITY_NUMBER_WARN");
    assert_eq!(record.severity_text, "WARN");
    assert_eq!(
        attribute(&record.attributes, "order.id"),
        Some(&ProtoValue::IntValue(1234))
    );
    assert_eq!(
        attribute(&record.attributes, "card.brand"),
        Some(&string("visa"))
    );

    let bare = &messages[1].resource_logs[0].scope_logs[0].log_records[0];
    assert!(bare.body.is_none());
    assert_eq!(bare.severity_number, 9, "SEVERITY_NUMBER_INFO");
    Ok(())
}

#[test]
fn counter_and_histogram_parse_back_with_string_int64s() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let exporter = FileMetricExporter::new(FileExportOptions::new(tmp.path()))?;
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(PeriodicReader::builder(exporter).build())
        .build();
    let meter = provider.meter("checkout-service");
    let orders = meter.u64_counter("orders").with_unit("{order}").build();
    orders.add(3, &[KeyValue::new("outcome", "declined")]);
    orders.add(2, &[KeyValue::new("outcome", "declined")]);
    let latency = meter
        .f64_histogram("charge.duration")
        .with_unit("s")
        .with_boundaries(vec![0.1, 1.0])
        .build();
    latency.record(0.05, &[]);
    latency.record(0.5, &[]);
    latency.record(2.0, &[]);
    provider.shutdown()?; // one last collection and export

    let lines = lines(tmp.path(), "metrics")?;
    assert!(!lines.is_empty());
    let last = lines.last().ok_or("no metrics line")?;
    let raw = assert_compact_object(last)?;
    let metrics = raw["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .ok_or("no metrics")?;
    let raw_orders = metrics
        .iter()
        .find(|m| m["name"] == "orders")
        .ok_or("no orders")?;
    assert_eq!(
        raw_orders["sum"]["dataPoints"][0]["asInt"], "5",
        "int64 is a string"
    );
    assert_eq!(
        raw_orders["sum"]["aggregationTemporality"], 2,
        "cumulative, as an integer"
    );
    let raw_latency = metrics
        .iter()
        .find(|m| m["name"] == "charge.duration")
        .ok_or("no histogram")?;
    let point = &raw_latency["histogram"]["dataPoints"][0];
    assert_eq!(point["count"], "3");
    assert_eq!(point["bucketCounts"], serde_json::json!(["1", "1", "1"]));
    assert_eq!(point["explicitBounds"], serde_json::json!([0.1, 1.0]));

    for line in &lines {
        serde_json::from_str::<MetricsData>(line)?;
    }
    let message: MetricsData = serde_json::from_str(last)?;
    let resource_metrics = &message.resource_metrics[0];
    let resource_attributes = &resource_metrics
        .resource
        .as_ref()
        .ok_or("no resource")?
        .attributes;
    assert_eq!(
        attribute(resource_attributes, "service.name"),
        Some(&string("checkout"))
    );
    let scope = &resource_metrics.scope_metrics[0];
    assert_eq!(
        scope.scope.as_ref().map(|s| s.name.as_str()),
        Some("checkout-service")
    );

    let orders = scope
        .metrics
        .iter()
        .find(|m| m.name == "orders")
        .ok_or("no orders")?;
    assert_eq!(orders.unit, "{order}");
    let Some(Data::Sum(sum)) = &orders.data else {
        return Err("orders is not a sum".into());
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(5))
    );
    assert_eq!(
        attribute(&sum.data_points[0].attributes, "outcome"),
        Some(&string("declined"))
    );

    let latency = scope
        .metrics
        .iter()
        .find(|m| m.name == "charge.duration")
        .ok_or("no histogram")?;
    let Some(Data::Histogram(histogram)) = &latency.data else {
        return Err("charge.duration is not a histogram".into());
    };
    let point = &histogram.data_points[0];
    assert_eq!(point.count, 3);
    assert_eq!(point.bucket_counts, vec![1, 1, 1]);
    assert_eq!(point.sum, Some(2.55));
    assert_eq!((point.min, point.max), (Some(0.05), Some(2.0)));
    Ok(())
}
