//! Redaction cost for one span with 10 attributes: none sensitive (the common case) and one
//! sensitive, beside the same walk over the attributes without redaction.
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench redaction
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use stellaops_telemetry_core::Redactor;

fn span(sensitive: bool) -> SpanData {
    let mut attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/scans/{id}"),
        KeyValue::new("url.path", "/scans/4f1c2a"),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("server.address", "scanner.internal"),
        KeyValue::new("server.port", 8443_i64),
        KeyValue::new("tenant.id", "acme"),
        KeyValue::new("scan.image", "registry.example/app:1.2"),
        KeyValue::new("scan.findings", 17_i64),
        KeyValue::new("user_agent.original", "stella-cli/2.3"),
    ];
    if sensitive {
        attributes[9] = KeyValue::new(
            "http.request.header.authorization",
            "Bearer eyJhbGciOi.eyJzdWIi.sig",
        );
    }
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(7_u128),
            SpanId::from(9_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /scans/{id}"),
        start_time: SystemTime::UNIX_EPOCH,
        end_time: SystemTime::UNIX_EPOCH,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("bench").build(),
    }
}

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::default();
    let mut group = c.benchmark_group("redact_span_10_attributes");
    let mut clean = span(false);
    group.bench_function("none_sensitive", |b| {
        b.iter(|| redactor.redact_span(black_box(&mut clean)))
    });
    let mut dirty = span(true);
    group.bench_function("one_sensitive", |b| {
        b.iter(|| redactor.redact_span(black_box(&mut dirty)))
    });
    // The floor: visiting the same attributes and doing nothing with them.
    let plain = span(false);
    group.bench_function("walk_without_redaction", |b| {
        b.iter(|| {
            black_box(&plain)
                .attributes
                .iter()
                .map(|kv| black_box(kv.key.as_str()).len())
                .sum::<usize>()
        })
    });
    let keys: Vec<&str> = clean.attributes.iter().map(|kv| kv.key.as_str()).collect();
    group.bench_function("keys_only", |b| {
        b.iter(|| {
            keys.iter()
                .filter(|k| redactor.is_sensitive_key(black_box(k)))
                .count()
        })
    });
    let values: Vec<String> = clean
        .attributes
        .iter()
        .map(|kv| kv.value.to_string())
        .collect();
    group.bench_function("string_values_only", |b| {
        b.iter(|| {
            values
                .iter()
                .filter(|v| matches!(redactor.redact_str(black_box(v)), Cow::Owned(_)))
                .count()
        })
    });
    group.finish();
    assert!(
        dirty
            .attributes
            .iter()
            .any(|kv| kv.value.as_str() == "REDACTED")
    );
}

criterion_group!(benches, redaction);
criterion_main!(benches);
