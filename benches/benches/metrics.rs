//! Three metric updates with fixed labels (counter + histogram + gauge): the catalogue's bound
//! handles against the same updates through the plain OpenTelemetry API with attribute
//! slices, in the same run. Also: the catalogue handles with labels on every call (one
//! lookup each), for when a label set is not known in advance; and what a collection pays
//! later for a histogram (recording plus the replay into the SDK, per 1,000 observations)
//! beside 1,000 plain OpenTelemetry records.
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench metrics
//! ```

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::metrics::catalogue::{
    QueueDepthLabels, REQUEST_BUCKETS, RequestDurationLabels, RequestTotalLabels,
    STELLAOPS_QUEUE_DEPTH, STELLAOPS_REQUEST_DURATION_SECONDS, STELLAOPS_REQUEST_TOTAL,
};

fn metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group("three_metric_updates_fixed_labels");

    // Ours: a pipeline with the Prometheus reader, handles bound once.
    let telemetry = match Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .build()
    {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("skipping metrics: the pipeline could not be built: {e}");
            return;
        }
    };
    let m = telemetry.metrics();
    let requests = m
        .counter(&STELLAOPS_REQUEST_TOTAL)
        .bind(RequestTotalLabels {
            service: "scanner",
            status: "200",
        });
    let duration = m
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS)
        .bind(RequestDurationLabels {
            service: "scanner",
            endpoint: "/scans/{id}",
        });
    let depth = m
        .gauge(&STELLAOPS_QUEUE_DEPTH)
        .bind(QueueDepthLabels { queue: "scans" });
    group.bench_function("stellaops_bound_handles", |b| {
        b.iter(|| {
            requests.inc();
            duration.record(black_box(0.042));
            depth.set(black_box(17.0));
        })
    });

    let counter = m.counter(&STELLAOPS_REQUEST_TOTAL);
    let histogram = m.histogram(&STELLAOPS_REQUEST_DURATION_SECONDS);
    let gauge = m.gauge(&STELLAOPS_QUEUE_DEPTH);
    group.bench_function("stellaops_labels_per_call", |b| {
        b.iter(|| {
            counter.add(
                1,
                RequestTotalLabels {
                    service: "scanner",
                    status: black_box("200"),
                },
            );
            histogram.record(
                black_box(0.042),
                RequestDurationLabels {
                    service: "scanner",
                    endpoint: black_box("/scans/{id}"),
                },
            );
            gauge.set(
                black_box(17.0),
                QueueDepthLabels {
                    queue: black_box("scans"),
                },
            );
        })
    });

    // The peer: the same three instruments through the OpenTelemetry API, one reader.
    let provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(InMemoryMetricExporter::default())
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    let meter = provider.meter("bench");
    let otel_counter = meter.u64_counter("stellaops_request_total").build();
    let otel_histogram = meter
        .f64_histogram("stellaops_request_duration_seconds")
        .with_boundaries(REQUEST_BUCKETS.to_vec())
        .build();
    let otel_gauge = meter.f64_gauge("stellaops_queue_depth").build();
    let request_attrs = [
        KeyValue::new("service", "scanner"),
        KeyValue::new("status", "200"),
    ];
    let duration_attrs = [
        KeyValue::new("service", "scanner"),
        KeyValue::new("endpoint", "/scans/{id}"),
    ];
    let depth_attrs = [KeyValue::new("queue", "scans")];
    group.bench_function("opentelemetry_api_attribute_slices", |b| {
        b.iter(|| {
            otel_counter.add(1, black_box(&request_attrs));
            otel_histogram.record(black_box(0.042), black_box(&duration_attrs));
            otel_gauge.record(black_box(17.0), black_box(&depth_attrs));
        })
    });
    group.finish();

    // What a collection pays later for the histogram: its replay into the SDK, per
    // observation (off the request path, on the collecting thread).
    let mut collection = c.benchmark_group("collection");
    const OBSERVATIONS: u64 = 1_000;
    collection.throughput(criterion::Throughput::Elements(OBSERVATIONS));
    collection.bench_function("histogram_replay_per_1000_observations", |b| {
        b.iter(|| {
            for i in 0..OBSERVATIONS {
                duration.record(0.001 * i as f64);
            }
            m.flush();
        })
    });
    collection.bench_function("opentelemetry_histogram_1000_records", |b| {
        b.iter(|| {
            for i in 0..OBSERVATIONS {
                otel_histogram.record(0.001 * i as f64, black_box(&duration_attrs));
            }
        })
    });
    collection.finish();

    // Everything recorded above reaches the exposition (the bench measured real handles).
    let body = telemetry
        .prometheus()
        .map(|p| p.render().map_err(|e| e.to_string()))
        .unwrap_or_else(|| Err("no exposition".to_owned()));
    assert!(
        body.as_deref()
            .is_ok_and(|b| b.contains(r#"stellaops_request_total{service="scanner",status="200"}"#)),
        "{body:?}"
    );
    telemetry.shutdown();
    let _ = provider.shutdown();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
