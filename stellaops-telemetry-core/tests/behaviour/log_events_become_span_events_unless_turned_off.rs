//! A log event inside a span is also a span event by default. With span events turned off
//! (`log_events_as_span_events(false)`, `[log_outputs] span_events = false`), only `ERROR`
//! events still are (and mark the span as failed); every event still reaches the JSON log
//! output with the span's ids.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, TelemetryConfig};

/// One span with an `INFO`, a `WARN` and an `ERROR` event, through `telemetry`: the exported
/// span and the JSON lines.
fn run(telemetry: Telemetry, exporters: &TestExporters) -> (SpanData, Vec<Value>) {
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let span = tracing::info_span!("scan.image");
        let _entered = span.enter();
        tracing::info!(layers = 7u64, "image pulled");
        tracing::warn!("cache is cold");
        tracing::error!("registry refused a layer");
    });
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let span = exporters
        .finished_spans()
        .into_iter()
        .find(|s| s.name == "scan.image")
        .unwrap();
    let lines = exporters.json_logs().json();
    telemetry.shutdown();
    (span, lines)
}

fn builder(exporters: &TestExporters) -> stellaops_telemetry_core::TelemetryBuilder {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(exporters)
}

fn event_names(span: &SpanData) -> Vec<String> {
    span.events.iter().map(|e| e.name.to_string()).collect()
}

/// Every line carries the span's ids, whatever the setting.
fn assert_lines_carry_the_span(lines: &[Value], span: &SpanData) {
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(
        messages,
        ["image pulled", "cache is cold", "registry refused a layer"]
    );
    for line in lines {
        assert_eq!(line["traceId"], span.span_context.trace_id().to_string());
        assert_eq!(line["spanId"], span.span_context.span_id().to_string());
    }
}

#[test]
fn by_default_every_event_inside_a_span_is_a_span_event() {
    let exporters = TestExporters::new();
    let (span, lines) = run(builder(&exporters).build().unwrap(), &exporters);
    assert_eq!(
        event_names(&span),
        ["image pulled", "cache is cold", "registry refused a layer"]
    );
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_lines_carry_the_span(&lines, &span);
}

/// What a pipeline with span events off exports and writes.
fn assert_only_error_events_are_span_events(telemetry: Telemetry, exporters: &TestExporters) {
    let (span, lines) = run(telemetry, exporters);
    assert_eq!(event_names(&span), ["registry refused a layer"]);
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_lines_carry_the_span(&lines, &span);
}

#[test]
fn turned_off_only_error_events_are_span_events_and_still_fail_the_span() {
    let exporters = TestExporters::new();
    let telemetry = builder(&exporters)
        .log_events_as_span_events(false)
        .build()
        .unwrap();
    assert_only_error_events_are_span_events(telemetry, &exporters);
}

#[test]
fn a_configuration_file_turns_span_events_off() {
    let exporters = TestExporters::new();
    let config = TelemetryConfig::from_toml_str("[log_outputs]\nspan_events = false\n").unwrap();
    let telemetry = builder(&exporters).config(config).build().unwrap();
    assert_only_error_events_are_span_events(telemetry, &exporters);
}
