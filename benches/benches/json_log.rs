//! One JSON log event (trace ids + 5 fields) into an in-memory writer: the house JSON layer
//! beside tracing-subscriber's `fmt().json()`, in the same run, with the same subscriber stack
//! (registry + tracing-opentelemetry over an SDK tracer) and the same kind of writer.
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench json_log
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use stellaops_telemetry_benches::MemoryWriter;
use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

fn otel_layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))
}

fn event() {
    tracing::info!(
        scan_id = "s-123",
        image = "registry.example/app:1.2",
        findings = 17u64,
        severity = "high",
        cached = true,
        "scan finished"
    );
}

fn measure(
    name: &str,
    dispatch: &Dispatch,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    tracing::dispatcher::with_default(dispatch, || {
        let span = tracing::info_span!("scan.image", imageRef = "registry.example/app");
        let _entered = span.enter();
        group.bench_function(name, |b| b.iter(event));
    });
}

fn json_log_event(c: &mut Criterion) {
    // No span processor: spans are created (ids assigned) but exporting is not measured.
    let provider = SdkTracerProvider::builder().build();

    let ours_writer = MemoryWriter::new();
    let ours = Dispatch::new(
        tracing_subscriber::registry()
            .with(otel_layer(&provider))
            .with(
                JsonLogLayer::builder("scanner", "1.4.0")
                    .output(LogOutput::sync_writer(
                        ours_writer.clone(),
                        Arc::new(SignalStats::default()),
                    ))
                    .build(),
            ),
    );
    let theirs_writer = MemoryWriter::new();
    let make = theirs_writer.clone();
    let theirs = Dispatch::new(
        tracing_subscriber::registry()
            .with(otel_layer(&provider))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(move || make.clone()),
            ),
    );

    let mut group = c.benchmark_group("json_log_event");
    measure("stellaops_json_layer", &ours, &mut group);
    measure("tracing_subscriber_fmt_json", &theirs, &mut group);
    group.finish();

    // Both wrote: the comparison is between two stacks that did the work.
    assert!(!ours_writer.is_empty() && !theirs_writer.is_empty());
}

criterion_group!(benches, json_log_event);
criterion_main!(benches);
