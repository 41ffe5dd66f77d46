//! The SDK's tail sampler, side by side in one run with the same pipeline without it: one
//! trace of two spans (a child, then its local root) per iteration, on the two span roads —
//! records (the tower layer's and `#[instrument]`'s road) and `tracing` spans through
//! tracing-opentelemetry. Without the sampler every span joins the span queue; with it, each
//! trace is held until its root ends and 10 % of plain traces join the queue. Both pipelines
//! export to an exporter that discards (`TestExporters::discarding_spans`).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench tail_sampling -- --warm-up-time 1 --measurement-time 3
//! ```

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{SamplingSite, SpanRecorder, Telemetry};

fn pipeline(site: SamplingSite, exporters: &TestExporters) -> Option<Telemetry> {
    match Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .sampling_site(site)
        .test_exporters(exporters)
        .build()
    {
        Ok(telemetry) => Some(telemetry),
        Err(e) => {
            eprintln!("skipping tail_sampling: the pipeline could not be built: {e}");
            None
        }
    }
}

/// A new, well-spread trace id per call (splitmix64 of a counter).
fn next_trace_id(counter: &mut u64) -> TraceId {
    *counter = counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *counter;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    TraceId::from_bytes((u128::from(z) << 64 | u128::from(!z)).to_be_bytes())
}

/// One trace on the record road: a child, then its local root.
fn record_trace(recorder: &SpanRecorder, counter: &mut u64) {
    let id = next_trace_id(counter);
    let context = |span: u64| {
        SpanContext::new(
            id,
            SpanId::from_bytes(span.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        )
    };
    let now = SystemTime::now();
    let root = SpanId::from_bytes(1u64.to_be_bytes());
    let mut child = recorder.new_record(context(2), root, false, SpanKind::Internal, now);
    child.name = ("db", "query");
    child.push_text("db.system", "postgresql");
    recorder.submit_record(black_box(child));
    let mut server = recorder.new_record(context(1), SpanId::INVALID, false, SpanKind::Server, now);
    server.name = ("GET", "/api/v1/scans/{id}");
    server.push_static("http.request.method", "GET");
    server.push_int("http.response.status_code", 200);
    recorder.submit_record(black_box(server));
}

/// One trace on the `tracing` road.
fn tracing_trace() {
    let root = tracing::info_span!("GET /api/v1/scans/{id}", http.request.method = "GET");
    let _root = root.enter();
    let child = tracing::info_span!("db.query", db.system = "postgresql");
    drop(black_box(child.enter()));
}

fn report(name: &str, telemetry: &Telemetry) {
    let _ = telemetry.flush(Duration::from_secs(30));
    let stats = telemetry.stats();
    let tail = &stats.tail_sampling;
    eprintln!(
        "{name}: spans exported {}, dropped at the queue {}; tail sampler: {} traces decided, \
         {} spans kept, {} sampled out, {} decided early",
        stats.spans.exported,
        stats.spans.dropped,
        tail.decided(),
        tail.spans_kept,
        tail.spans_sampled_out,
        tail.decided_early.iter().sum::<u64>(),
    );
}

fn tail_sampling(c: &mut Criterion) {
    let (plain_exporters, tail_exporters) = (
        TestExporters::discarding_spans(),
        TestExporters::discarding_spans(),
    );
    let (Some(plain), Some(tail)) = (
        pipeline(SamplingSite::Collector, &plain_exporters),
        pipeline(SamplingSite::Sdk, &tail_exporters),
    ) else {
        return;
    };
    let mut group = c.benchmark_group("tail_sampling");
    // Two spans per iteration: the figures per element are per span.
    group.throughput(Throughput::Elements(2));
    let mut counter = 0u64;
    group.bench_function("record_road/no_sampler", |b| {
        b.iter(|| record_trace(plain.span_recorder(), &mut counter));
    });
    group.bench_function("record_road/tail_sampler", |b| {
        b.iter(|| record_trace(tail.span_recorder(), &mut counter));
    });
    tracing::dispatcher::with_default(plain.dispatch(), || {
        group.bench_function("tracing_road/no_sampler", |b| b.iter(tracing_trace));
    });
    tracing::dispatcher::with_default(tail.dispatch(), || {
        group.bench_function("tracing_road/tail_sampler", |b| b.iter(tracing_trace));
    });
    group.finish();
    report("no sampler", &plain);
    report("tail sampler", &tail);
    plain.shutdown();
    tail.shutdown();
}

criterion_group!(benches, tail_sampling);
criterion_main!(benches);
