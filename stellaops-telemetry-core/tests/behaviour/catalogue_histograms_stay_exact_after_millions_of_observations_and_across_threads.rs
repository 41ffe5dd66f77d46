//! Catalogue histograms arrive exact (bucket counts, count, sum, min and max) in the OTLP
//! reader's exporter and in the Prometheus exposition after many observations, with several
//! threads recording into one series while collections run, with redacted label values and
//! beyond the cardinality limit; a bound series that observed nothing exports nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, HistogramDataPoint, MetricData};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::metrics::catalogue::{
    REQUEST_BUCKETS, RequestDurationLabels, STELLAOPS_REQUEST_DURATION_SECONDS,
};
use stellaops_telemetry_core::testing::TestExporters;

const NAME: &str = "stellaops_request_duration_seconds";

fn pipeline(test: &TestExporters, limit: usize) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .metric_cardinality_limit(limit)
        .test_exporters(test)
        .build()
        .unwrap()
}

/// Dyadic values (multiples of 1/64) spread over every bucket: their sums are exact in any
/// order, so the sum can be compared exactly however threads interleave.
fn value(i: u64) -> f64 {
    (i % 1_021) as f64 / 64.0
}

/// What an exact histogram of `values` holds.
struct Expected {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Expected {
    fn new() -> Self {
        Expected {
            buckets: vec![0; REQUEST_BUCKETS.len() + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, v: f64) {
        self.buckets[REQUEST_BUCKETS.partition_point(|b| *b < v)] += 1;
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn times(mut self, n: u64) -> Self {
        for b in &mut self.buckets {
            *b *= n;
        }
        self.count *= n;
        self.sum *= n as f64;
        self
    }
}

/// The data points of `NAME` in the last collection the in-memory exporter received.
fn last_points(test: &TestExporters) -> Vec<HistogramDataPoint<f64>> {
    let exported = test.metrics();
    let last = exported.last().expect("a collection was exported");
    for sm in last.scope_metrics() {
        for m in sm.metrics() {
            if m.name() == NAME
                && let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data()
            {
                return h.data_points().cloned().collect();
            }
        }
    }
    Vec::new()
}

fn attribute<'a>(p: &'a HistogramDataPoint<f64>, key: &str) -> Option<&'a Value> {
    p.attributes()
        .find(|kv: &&KeyValue| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn assert_point(p: &HistogramDataPoint<f64>, e: &Expected) {
    assert_eq!(p.bucket_counts().collect::<Vec<_>>(), e.buckets);
    assert_eq!(p.count(), e.count);
    assert_eq!(p.sum(), e.sum);
    assert_eq!((p.min(), p.max()), (Some(e.min), Some(e.max)));
}

/// The exposition's lines of the series whose labels hold `endpoint`: cumulative `le`
/// buckets, `_sum` and `_count`, all exact.
fn assert_exposition(telemetry: &Telemetry, endpoint: &str, e: &Expected) {
    let body = telemetry.prometheus().unwrap().render().unwrap();
    let labels = format!(r#"endpoint="{endpoint}",service="scanner""#);
    let mut cumulative = 0;
    for (i, bound) in REQUEST_BUCKETS.iter().enumerate() {
        cumulative += e.buckets[i];
        let line = format!("{NAME}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in:\n{body}"
        );
    }
    for line in [
        format!("{NAME}_bucket{{{labels},le=\"+Inf\"}} {}", e.count),
        format!("{NAME}_sum{{{labels}}} {}", e.sum),
        format!("{NAME}_count{{{labels}}} {}", e.count),
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in:\n{body}"
        );
    }
}

#[test]
fn a_million_observations_on_one_series_arrive_exact_in_every_reader() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test, 100);
    let series = telemetry
        .metrics()
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS)
        .bind(RequestDurationLabels {
            service: "scanner",
            endpoint: "/scans/{id}",
        });
    let mut expected = Expected::new();
    for i in 0..1_000_000 {
        series.record(value(i));
        expected.add(value(i));
    }
    // Ignored, as the SDK ignores them.
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        series.record(v);
    }
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let points = last_points(&test);
    assert_eq!(points.len(), 1);
    assert_point(&points[0], &expected);
    assert_exposition(&telemetry, "/scans/{id}", &expected);
    telemetry.shutdown();
}

#[test]
fn threads_recording_into_one_series_during_collections_lose_and_double_count_nothing() {
    const THREADS: u64 = 4;
    const EACH: u64 = 100_000;
    let test = TestExporters::new();
    let telemetry = pipeline(&test, 100);
    let histogram = telemetry
        .metrics()
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let histogram = histogram.clone();
            s.spawn(move || {
                // Half through a bound handle, half with labels on each call: one series.
                let bound = histogram.bind(RequestDurationLabels {
                    service: "scanner",
                    endpoint: "/scans/{id}",
                });
                for i in 0..EACH {
                    if (i + t) % 2 == 0 {
                        bound.record(value(i));
                    } else {
                        histogram.record(
                            value(i),
                            RequestDurationLabels {
                                service: "scanner",
                                endpoint: "/scans/{id}",
                            },
                        );
                    }
                }
            });
        }
        // Collections while the threads record: each sees a consistent cumulative state.
        for _ in 0..20 {
            telemetry.flush(Duration::from_secs(5)).unwrap();
            let _ = telemetry.prometheus().unwrap().render().unwrap();
        }
    });
    let mut per_thread = Expected::new();
    for i in 0..EACH {
        per_thread.add(value(i));
    }
    let expected = per_thread.times(THREADS);
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let points = last_points(&test);
    assert_eq!(points.len(), 1);
    assert_point(&points[0], &expected);
    assert_exposition(&telemetry, "/scans/{id}", &expected);
    telemetry.shutdown();
}

#[test]
fn histogram_label_values_are_redacted_and_sets_beyond_the_limit_overflow_exactly() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test, 2);
    let histogram = telemetry
        .metrics()
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS);
    let secret = "https://user:hunter2@registry.invalid/v2/?sig=abc";
    histogram.record(
        0.5,
        RequestDurationLabels {
            service: "scanner",
            endpoint: secret,
        },
    );
    histogram.record(
        0.25,
        RequestDurationLabels {
            service: "scanner",
            endpoint: "/a",
        },
    );
    let mut overflow = Expected::new();
    for (i, endpoint) in ["/b", "/c", "/d"].into_iter().enumerate() {
        let v = 2.0 * (i + 1) as f64;
        histogram.record(
            v,
            RequestDurationLabels {
                service: "scanner",
                endpoint,
            },
        );
        overflow.add(v);
    }
    // A bound series that never observes exports no (empty) data point.
    let _idle = histogram.bind(RequestDurationLabels {
        service: "scanner",
        endpoint: "/idle",
    });
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let points = last_points(&test);
    assert_eq!(points.len(), 3, "{points:?}");
    let endpoints: Vec<String> = points
        .iter()
        .filter_map(|p| attribute(p, "endpoint").map(|v| v.as_str().into_owned()))
        .collect();
    assert!(
        !endpoints.iter().any(|e| e.contains("hunter2")),
        "{endpoints:?}"
    );
    assert!(
        endpoints.iter().any(|e| e.contains("REDACTED")),
        "{endpoints:?}"
    );
    let folded = points
        .iter()
        .find(|p| attribute(p, "otel.metric.overflow").is_some())
        .expect("the overflow series");
    assert_point(folded, &overflow);
    let body = telemetry.prometheus().unwrap().render().unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    assert!(!body.contains("/idle"), "{body}");
    assert!(
        body.lines().any(|l| l
            == format!(
                "{NAME}_count{{otel_metric_overflow=\"true\"}} {}",
                overflow.count
            )),
        "{body}"
    );
    telemetry.shutdown();
}
