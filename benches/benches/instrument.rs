//! One instrumented function call, in one run, side by side: our `#[instrument]` (a catalogue
//! span recorded directly into the pipeline's span queue) against `#[tracing::instrument]` on
//! the same function with the same recorded fields (`imageRef`, `digest`), (a) under the stack
//! a service would otherwise pick — tracing-opentelemetry over an `SdkTracerProvider` with a
//! `BatchSpanProcessor` — and (b) under our pipeline's dispatch (tracing-opentelemetry plus
//! our JSON log layer), for reference; and the same function uninstrumented, the floor. Every
//! span goes through a batch worker to an exporter that discards it (ours:
//! `TestExporters::discarding_spans`, after the pipeline's queue and redaction).
//!
//! The `instrumented_call_with_duration` group adds the call's duration histogram: ours
//! (`duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme")`) against
//! `#[tracing::instrument]` over the SDK with the same seconds recorded, with the same label,
//! into an OpenTelemetry SDK histogram (a manual reader, so never collected while measured).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench instrument
//! ```

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use stellaops_telemetry_benches::peers::{CountingDiscard, sdk_tracer_provider};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use tracing_subscriber::layer::SubscriberExt as _;

const IMAGE: &str = "registry.example/scanner/app:1.4.2";
const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Ours: the catalogue span `scan.image`.
mod ours {
    #[stellaops_telemetry_core::instrument(span = "scan.image", imageRef = image, digest = digest)]
    pub fn scan(image: &str, digest: &str) -> Result<usize, std::io::Error> {
        Ok(image.len() + digest.len())
    }
}

/// Ours with the call's duration histogram.
mod ours_timed {
    use stellaops_telemetry_core::metrics::catalogue::STELLAOPS_SCAN_DURATION_SECONDS;

    #[stellaops_telemetry_core::instrument(
        span = "scan.image",
        imageRef = image,
        digest = digest,
        duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme"),
    )]
    pub fn scan(image: &str, digest: &str) -> Result<usize, std::io::Error> {
        Ok(image.len() + digest.len())
    }
}

/// `#[tracing::instrument]` with the same name and fields.
mod traced {
    #[tracing::instrument(name = "scan.image", skip_all, fields(imageRef = image, digest = digest))]
    pub fn scan(image: &str, digest: &str) -> Result<usize, std::io::Error> {
        Ok(image.len() + digest.len())
    }
}

/// The same function, uninstrumented.
mod bare {
    pub fn scan(image: &str, digest: &str) -> Result<usize, std::io::Error> {
        Ok(image.len() + digest.len())
    }
}

/// One call of `scan`, its inputs and output through `black_box`.
fn call(scan: fn(&str, &str) -> Result<usize, std::io::Error>) -> Result<usize, std::io::Error> {
    black_box(scan(black_box(IMAGE), black_box(DIGEST)))
}

/// Spans `telemetry` exported after one call of `scan` under its dispatch, and a flush.
fn exported_by_one_call(
    telemetry: &Telemetry,
    scan: fn(&str, &str) -> Result<usize, std::io::Error>,
) -> Result<u64, String> {
    let before = telemetry.stats().spans.exported;
    let result = tracing::dispatcher::with_default(telemetry.dispatch(), || call(scan));
    if !matches!(result, Ok(n) if n == IMAGE.len() + DIGEST.len()) {
        return Err(format!("the function returned {result:?}"));
    }
    telemetry
        .flush(Duration::from_secs(10))
        .map_err(|e| format!("the flush failed: {e}"))?;
    Ok(telemetry.stats().spans.exported.saturating_sub(before))
}

/// Whether `#[tracing::instrument]` records `scan.image` with both fields through
/// tracing-opentelemetry into an SDK provider (checked once, with an in-memory exporter).
fn sdk_records_a_span() -> Result<(), String> {
    let memory = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let dispatch = tracing::Dispatch::new(subscriber);
    let result = tracing::dispatcher::with_default(&dispatch, || call(traced::scan));
    let _ = provider.force_flush();
    let spans = memory
        .get_finished_spans()
        .map_err(|e| format!("no spans: {e}"))?;
    let _ = provider.shutdown();
    let recorded = spans.iter().any(|s| {
        s.name == "scan.image"
            && ["imageRef", "digest"]
                .iter()
                .all(|key| s.attributes.iter().any(|kv| kv.key.as_str() == *key))
    });
    match (result, recorded) {
        (Ok(_), true) => Ok(()),
        (result, _) => Err(format!("returned {result:?}, recorded {spans:?}")),
    }
}

/// The peer of a `duration = ...` histogram: the call timed around `#[tracing::instrument]`
/// and its seconds recorded into an SDK histogram with the same label.
fn call_timed(histogram: &Histogram<f64>, tenant: &[KeyValue]) -> Result<usize, std::io::Error> {
    let start = Instant::now();
    let result = call(traced::scan);
    histogram.record(start.elapsed().as_secs_f64(), tenant);
    result
}

fn instrument(c: &mut Criterion) {
    // Our pipeline: spans through its queue (redaction included) to an exporter that discards.
    let memory = TestExporters::discarding_spans();
    let telemetry = match Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&memory)
        .build()
    {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("skipping instrument: the pipeline could not be built: {e}");
            return;
        }
    };
    // Each instrumented variant really records a span, checked before measuring.
    for (name, scan) in [
        ("ours_instrument", ours::scan as fn(&str, &str) -> _),
        ("ours_instrument_duration", ours_timed::scan),
        ("tracing_instrument_our_pipeline", traced::scan),
    ] {
        match exported_by_one_call(&telemetry, scan) {
            Ok(n) if n > 0 => {}
            Ok(_) => {
                eprintln!("skipping instrument: {name} exported no span");
                return;
            }
            Err(e) => {
                eprintln!("skipping instrument: {name}: {e}");
                return;
            }
        }
    }
    if let Err(e) = sdk_records_a_span() {
        eprintln!("skipping instrument: tracing_instrument_otel_sdk recorded no span: {e}");
        return;
    }
    let stats_before = telemetry.stats().spans;

    let mut group = c.benchmark_group("instrumented_call");

    group.bench_function("bare", |b| b.iter(|| call(bare::scan)));

    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        group.bench_function("ours_instrument", |b| b.iter(|| call(ours::scan)));
    });

    // The stack a service would otherwise pick: tracing-opentelemetry over the SDK.
    let provider = sdk_tracer_provider(CountingDiscard::default());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("tracing_instrument_otel_sdk", |b| {
            b.iter(|| call(traced::scan));
        });
    });

    // For reference: `#[tracing::instrument]` under our pipeline.
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        group.bench_function("tracing_instrument_our_pipeline", |b| {
            b.iter(|| call(traced::scan));
        });
    });
    group.finish();

    // With the duration histogram: ours against the SDK stack plus an SDK histogram record.
    let meters = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let histogram = meters
        .meter("bench")
        .f64_histogram("stellaops_scan_duration_seconds")
        .with_unit("s")
        .with_boundaries(vec![
            1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
        ])
        .build();
    let tenant = [KeyValue::new("tenant", "acme")];
    let mut group = c.benchmark_group("instrumented_call_with_duration");
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        group.bench_function("ours_instrument", |b| b.iter(|| call(ours_timed::scan)));
    });
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("tracing_instrument_otel_sdk_histogram", |b| {
            b.iter(|| black_box(call_timed(&histogram, &tenant)));
        });
    });
    group.finish();

    let _ = telemetry.flush(Duration::from_secs(10));
    let after = telemetry.stats().spans;
    eprintln!(
        "our pipeline while measured: {} spans exported, {} dropped",
        after.exported.saturating_sub(stats_before.exported),
        after.dropped.saturating_sub(stats_before.dropped),
    );
    telemetry.shutdown();
    let _ = provider.shutdown();
    let _ = meters.shutdown();
}

criterion_group!(benches, instrument);
criterion_main!(benches);
