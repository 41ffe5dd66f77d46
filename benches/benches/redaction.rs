//! Redaction cost for one span with 10 attributes: none sensitive (the common case) and one
//! sensitive, beside the same walk over the attributes without redaction; and the cost per
//! byte of hostile values (floods of the bytes the rules look for, and mixes of them) from
//! 1 KiB to 1 MiB, which stays flat because every rule is linear.
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench redaction
//! cargo bench -p stellaops-telemetry-benches --bench redaction -- redact_adversarial/at
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::SystemTime;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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
    // Checked before any bench runs, so a filter that skips this one cannot fail it.
    redactor.redact_span(&mut dirty);
    assert!(
        dirty
            .attributes
            .iter()
            .any(|kv| kv.value.as_str() == "REDACTED")
    );
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
}

/// Hostile value families: a name and the unit repeated to each size. `a` is the baseline
/// (no trigger byte at all).
const FAMILIES: [(&str, &str); 28] = [
    ("a", "a"),
    ("at", "@"),
    ("question", "?"),
    ("amp", "&"),
    ("colon", ":"),
    ("equals", "="),
    ("slash", "/"),
    ("percent", "%"),
    ("dquote", "\""),
    ("squote", "'"),
    ("backslash", "\\"),
    ("eyJ", "eyJ"),
    ("begin", "-----BEGIN"),
    ("bearer", "bearer "),
    ("basic", "basic "),
    ("brackets", "[({"),
    ("underscore", "_"),
    ("dash", "-"),
    ("upper_a", "A"),
    ("comma", ","),
    ("scheme_at", "://a:1/@"),
    ("query", "?sig&%3Fsig"),
    ("percent_key", "%26token%3D"),
    ("debug_some", "password: Some("),
    ("formats", "ghp_AKIA glpat-xoxb-"),
    ("dsn", "u:p@tcp("),
    ("identifiers", "http_request_duration_seconds-bucket."),
    ("mix", ""),
];

const SIZES: [(&str, usize); 4] = [
    ("1KiB", 1 << 10),
    ("16KiB", 16 << 10),
    ("256KiB", 256 << 10),
    ("1MiB", 1 << 20),
];

/// A seeded mix of every family's unit and a few letters, so no two neighbours repeat.
fn mix(len: usize) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = String::with_capacity(len + 64);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (_, unit) = FAMILIES[(state % (FAMILIES.len() as u64 - 1)) as usize];
        out.push_str(unit);
        out.push(char::from(b'a' + (state >> 32) as u8 % 26));
    }
    out
}

fn value(unit: &str, len: usize) -> String {
    if unit.is_empty() {
        return mix(len);
    }
    let mut text = unit.repeat(len.div_ceil(unit.len()));
    text.truncate(len);
    text
}

fn adversarial(c: &mut Criterion) {
    let redactor = Redactor::default();
    let mut group = c.benchmark_group("redact_adversarial");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800));
    for (family, unit) in FAMILIES {
        for (label, len) in SIZES {
            let text = value(unit, len);
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(BenchmarkId::new(family, label), &text, |b, text| {
                b.iter(|| redactor.redact_str(black_box(text)).len())
            });
        }
    }
    // A key: long camelCase, checked by the key rules.
    for (label, len) in SIZES {
        let key = format!("{}Token", "aB".repeat(len / 2));
        group.throughput(Throughput::Bytes(key.len() as u64));
        group.bench_with_input(BenchmarkId::new("key_camel", label), &key, |b, key| {
            b.iter(|| redactor.is_sensitive_key(black_box(key)))
        });
    }
    group.finish();
}

criterion_group!(benches, redaction, adversarial);
criterion_main!(benches);
