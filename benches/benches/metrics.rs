//! Three metric updates with fixed labels (counter + histogram + gauge): the catalogue's bound
//! handles against the same updates through the plain OpenTelemetry API with attribute
//! slices, in the same run. Also: the catalogue handles with labels on every call (one
//! lookup each), for when a label set is not known in advance; what 1,000 histogram
//! observations cost including the collection that follows them, beside 1,000 plain
//! OpenTelemetry records; one histogram record on the request path, ours beside the SDK's
//! (with attributes, and bound); and a collection after 100 and after 1,000,000 fresh
//! observations on one series (the observations untimed, the collection timed): ours is a
//! Prometheus scrape of a pipeline, the peer a manual-reader collection of a bare SDK.
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench metrics
//! ```

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, InstrumentKind, ManualReader, PeriodicReader, Pipeline,
    SdkMeterProvider, Temporality,
};
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
    // One update before any bench, so that the check at the end holds under any filter.
    requests.inc();
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

    histogram_groups(c, m, &duration, &otel_histogram, &duration_attrs);
    collection_after_observations(c);

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

/// One histogram observation, and 1,000 with the flush a collection runs after them: ours
/// through a bound catalogue handle, the peer through the OpenTelemetry API.
fn histogram_groups(
    c: &mut Criterion,
    m: &stellaops_telemetry_core::metrics::Metrics,
    duration: &stellaops_telemetry_core::metrics::BoundHistogram,
    otel_histogram: &opentelemetry::metrics::Histogram<f64>,
    duration_attrs: &[KeyValue],
) {
    // 1,000 histogram observations and the flush a collection runs after them (the name is
    // kept from when that flush replayed every observation into the SDK; the observations now
    // reach the SDK's aggregator as they are recorded, and the flush has nothing to replay).
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
                otel_histogram.record(0.001 * i as f64, black_box(duration_attrs));
            }
        })
    });
    collection.finish();

    let mut record = c.benchmark_group("histogram_record");
    record.bench_function("stellaops_bound_histogram_record", |b| {
        b.iter(|| duration.record(black_box(0.042)))
    });
    record.bench_function("opentelemetry_histogram_record_attribute_slice", |b| {
        b.iter(|| otel_histogram.record(black_box(0.042), black_box(duration_attrs)))
    });
    record.finish();
}

/// A manual reader the bench keeps a handle to after the provider took it.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Writes one byte per cache line of a buffer larger than the last-level cache.
fn evict_caches(buffer: &mut [u8]) {
    for byte in buffer.iter_mut().step_by(64) {
        *byte = byte.wrapping_add(1);
    }
    black_box(buffer);
}

/// A collection after `n` fresh observations on one series: each timed collection follows
/// `n` untimed observations, so whatever the observations leave for the collection to do is
/// inside the timing. The caches are evicted (untimed) before every collection, whatever
/// `n`: a real scrape or export interval runs cold, long after the collection before it,
/// and without this a collection right after 100 observations would run with the previous
/// collection's code and data still cached, one after 1,000,000 (milliseconds of recording,
/// other processes scheduled in between) cold, and the comparison would measure the caches.
fn collection_after_observations(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_collection");
    // The runs spend most of their wall time recording and evicting, untimed.
    group.sample_size(20);
    let mut evict = vec![0_u8; 64 << 20];
    for n in [100_u64, 1_000_000] {
        let Ok(telemetry) = Telemetry::builder("bench")
            .exporters(&[])
            .stdout_logs(false)
            .prometheus_scrape(true)
            .build()
        else {
            return;
        };
        let Some(exposition) = telemetry.prometheus() else {
            return;
        };
        let series = telemetry
            .metrics()
            .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS)
            .bind(RequestDurationLabels {
                service: "scanner",
                endpoint: "/scans/{id}",
            });
        group.bench_function(format!("stellaops_scrape_after_{n}_observations"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    for i in 0..n {
                        series.record(0.000_1 * (i % 100_000) as f64);
                    }
                    evict_caches(&mut evict);
                    let start = Instant::now();
                    let body = exposition.render();
                    timed += start.elapsed();
                    assert!(
                        body.is_ok_and(|b| b.contains("stellaops_request_duration_seconds_count"))
                    );
                }
                timed
            })
        });
        telemetry.shutdown();

        let reader = SharedReader(Arc::new(ManualReader::builder().build()));
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let histogram = provider
            .meter("bench")
            .f64_histogram("stellaops_request_duration_seconds")
            .with_boundaries(REQUEST_BUCKETS.to_vec())
            .build();
        let attrs = [
            KeyValue::new("service", "scanner"),
            KeyValue::new("endpoint", "/scans/{id}"),
        ];
        group.bench_function(
            format!("opentelemetry_collect_after_{n}_observations"),
            |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut rm = ResourceMetrics::default();
                    for _ in 0..iters {
                        for i in 0..n {
                            histogram.record(0.000_1 * (i % 100_000) as f64, &attrs);
                        }
                        evict_caches(&mut evict);
                        let start = Instant::now();
                        let collected = reader.collect(&mut rm);
                        timed += start.elapsed();
                        assert!(collected.is_ok());
                    }
                    timed
                })
            },
        );
        let _ = provider.shutdown();
    }
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
