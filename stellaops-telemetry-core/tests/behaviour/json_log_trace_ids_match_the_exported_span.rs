//! `traceId` and `spanId` are the ids of the OpenTelemetry span exported for the tracing span.
#![allow(clippy::unwrap_used)]

use opentelemetry::trace::{
    SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::Value;
use stellaops_telemetry_core::{JsonLogLayer, LogCapture};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

fn run(f: impl FnOnce()) -> (Vec<Value>, Vec<SpanData>) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let capture = LogCapture::new();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(JsonLogLayer::new("scanner").output(capture.output()));
    tracing::subscriber::with_default(subscriber, f);
    provider.force_flush().unwrap();
    (capture.json(), exporter.get_finished_spans().unwrap())
}

fn exported<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap()
}

fn assert_ids(line: &Value, span: &SpanData) {
    assert_eq!(
        line["traceId"],
        span.span_context.trace_id().to_string(),
        "{line}"
    );
    assert_eq!(
        line["spanId"],
        span.span_context.span_id().to_string(),
        "{line}"
    );
    assert_eq!(line["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(line["spanId"].as_str().unwrap().len(), 16);
}

#[test]
fn ids_match_for_a_span_and_its_child() {
    let (lines, spans) = run(|| {
        let outer = tracing::info_span!("outer");
        let _outer = outer.enter();
        tracing::info!("first in outer");
        {
            let inner = tracing::info_span!("inner");
            let _inner = inner.enter();
            tracing::info!("in inner");
            tracing::info!("again in inner");
        }
        tracing::info!("back in outer");
    });
    assert_eq!(lines.len(), 4);
    let outer = exported(&spans, "outer");
    let inner = exported(&spans, "inner");
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    assert_ids(&lines[0], outer);
    assert_ids(&lines[1], inner);
    assert_ids(&lines[2], inner);
    assert_ids(&lines[3], outer);
}

#[test]
fn ids_match_for_an_explicit_parent_that_is_not_entered() {
    let (lines, spans) = run(|| {
        let span = tracing::info_span!("detached");
        tracing::info!(parent: &span, "explicit parent");
        tracing::info!("no span");
    });
    assert_ids(&lines[0], exported(&spans, "detached"));
    assert!(lines[1].get("traceId").is_none() && lines[1].get("spanId").is_none());
}

#[test]
fn a_parent_set_after_creation_is_honoured() {
    let remote = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let (lines, spans) = run(|| {
        let span = tracing::info_span!("continued");
        let parent = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            remote,
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        span.set_parent(parent).unwrap();
        let _span = span.enter();
        tracing::info!("continued remotely");
    });
    let span = exported(&spans, "continued");
    assert_eq!(span.span_context.trace_id(), remote);
    assert_ids(&lines[0], span);
}
