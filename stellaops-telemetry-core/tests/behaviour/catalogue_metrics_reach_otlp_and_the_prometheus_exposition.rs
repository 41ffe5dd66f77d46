//! Catalogue metrics recorded through bound handles arrive, exact, in the OTLP exporters and
//! in the Prometheus exposition, under exactly the catalogue's names and labels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use stellaops_telemetry_core::metrics::catalogue::{
    ActiveJobsLabels, AttestationsLoggedLabels, QueueDepthLabels, RequestDurationLabels,
    RequestTotalLabels, SCANNER_ATTESTATIONS_LOGGED_TOTAL, STELLAOPS_ACTIVE_JOBS,
    STELLAOPS_QUEUE_DEPTH, STELLAOPS_REQUEST_DURATION_SECONDS, STELLAOPS_REQUEST_TOTAL,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, metrics};
use tower::ServiceExt as _;

fn pipeline(test: &TestExporters) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(test)
        .build()
        .unwrap()
}

fn histogram_point(
    metrics: &[ResourceMetrics],
    name: &str,
) -> (u64, f64, Option<f64>, Option<f64>, Vec<u64>) {
    for rm in metrics {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                if m.name() != name {
                    continue;
                }
                if let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() {
                    let p = h.data_points().next().unwrap();
                    return (
                        p.count(),
                        p.sum(),
                        p.min(),
                        p.max(),
                        p.bucket_counts().collect(),
                    );
                }
            }
        }
    }
    panic!("{name} not exported");
}

#[test]
fn bound_series_reach_the_otlp_exporter_with_exact_histogram_statistics() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test);
    let m = telemetry.metrics();
    let duration = m
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS)
        .bind(RequestDurationLabels {
            service: "scanner",
            endpoint: "/scans/{id}",
        });
    let values = [0.003, 0.004, 0.02, 0.02, 0.3, 1.5, 12.0];
    for v in values {
        duration.record(v);
    }
    let requests = m.counter(&STELLAOPS_REQUEST_TOTAL);
    requests
        .bind(RequestTotalLabels {
            service: "scanner",
            status: "200",
        })
        .add(3);
    requests.add(
        2,
        RequestTotalLabels {
            service: "scanner",
            status: "500",
        },
    );
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

    let exported = test.metrics();
    let (count, sum, min, max, buckets) =
        histogram_point(&exported, "stellaops_request_duration_seconds");
    assert_eq!(count, 7);
    assert!((sum - values.iter().sum::<f64>()).abs() < 1e-9, "{sum}");
    assert_eq!((min, max), (Some(0.003), Some(12.0)));
    // 0.005 | 0.01 | 0.025 | … | 0.5 | 0.75 | 1 | 2.5 | … | 10 | +Inf
    assert_eq!(buckets, [2, 0, 2, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1]);
    telemetry.shutdown();
}

#[tokio::test]
async fn the_exposition_uses_the_catalogue_names_labels_and_content_type() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test);
    let m = telemetry.metrics();
    m.histogram(&STELLAOPS_REQUEST_DURATION_SECONDS).record(
        0.2,
        RequestDurationLabels {
            service: "scanner",
            endpoint: "/scans/{id}",
        },
    );
    m.counter(&STELLAOPS_REQUEST_TOTAL)
        .bind(RequestTotalLabels {
            service: "scanner",
            status: "200",
        })
        .inc();
    m.gauge(&STELLAOPS_QUEUE_DEPTH)
        .set(42.0, QueueDepthLabels { queue: "scans" });
    let jobs = m
        .up_down_counter(&STELLAOPS_ACTIVE_JOBS)
        .bind(ActiveJobsLabels {
            tenant: "acme",
            jobType: "scan",
        });
    jobs.add(3);
    jobs.add(-1);
    m.counter(&SCANNER_ATTESTATIONS_LOGGED_TOTAL)
        .add(1, AttestationsLoggedLabels {});

    let response = telemetry
        .metrics_service()
        .oneshot(http::Request::get("/metrics").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.into_body();
    for line in [
        "# TYPE stellaops_request_duration_seconds histogram",
        r#"stellaops_request_duration_seconds_bucket{endpoint="/scans/{id}",service="scanner",le="0.25"} 1"#,
        r#"stellaops_request_duration_seconds_count{endpoint="/scans/{id}",service="scanner"} 1"#,
        "# TYPE stellaops_request_total counter",
        r#"stellaops_request_total{service="scanner",status="200"} 1"#,
        "# TYPE stellaops_queue_depth gauge",
        r#"stellaops_queue_depth{queue="scans"} 42"#,
        r#"stellaops_active_jobs{jobType="scan",tenant="acme"} 2"#,
        "scanner_attestations_logged_total 1",
        "# TYPE stellaops_telemetry_redactions_total counter",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in:\n{body}"
        );
    }
    for wrong in ["_seconds_seconds", "_total_total", "otel_scope"] {
        assert!(!body.contains(wrong), "`{wrong}` in:\n{body}");
    }
    telemetry.shutdown();
}

#[test]
fn label_sets_beyond_the_limit_fold_into_one_overflow_series_and_are_counted() {
    let test = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .metric_cardinality_limit(3)
        .test_exporters(&test)
        .build()
        .unwrap();
    let requests = telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL);
    for status in ["200", "201", "204", "400", "404", "500"] {
        requests.add(
            1,
            RequestTotalLabels {
                service: "scanner",
                status,
            },
        );
    }
    // A known set keeps its own series after the limit was reached.
    requests.add(
        10,
        RequestTotalLabels {
            service: "scanner",
            status: "200",
        },
    );
    let body = telemetry.prometheus().unwrap().render().unwrap();
    let series: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("stellaops_request_total"))
        .collect();
    assert_eq!(series.len(), 4, "{body}");
    assert!(series.contains(&r#"stellaops_request_total{service="scanner",status="200"} 11"#));
    assert!(
        series.contains(&r#"stellaops_request_total{otel_metric_overflow="true"} 3"#),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l
            == r#"stellaops_telemetry_cardinality_overflow_total{metric="stellaops_request_total"} 3"#),
        "{body}"
    );
    assert_eq!(
        telemetry.metrics().overflow_counts(),
        [("stellaops_request_total", 3)]
    );
    telemetry.shutdown();
}

#[tokio::test]
async fn without_scraping_the_service_answers_404_and_detached_metrics_record_quietly() {
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(false)
        .build()
        .unwrap();
    let response = telemetry
        .metrics_service()
        .oneshot(http::Request::get("/metrics").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let post = telemetry
        .metrics_service()
        .oneshot(http::Request::post("/metrics").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let detached = metrics::Metrics::detached();
    detached.counter(&STELLAOPS_REQUEST_TOTAL).add(
        1,
        RequestTotalLabels {
            service: "x",
            status: "200",
        },
    );
    detached.flush();
    telemetry.shutdown();
}

#[test]
fn registering_handles_while_scrapes_run_never_deadlocks() {
    use stellaops_telemetry_core::metrics::catalogue as c;
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..20 {
            let telemetry = Telemetry::builder("race")
                .exporters(&[])
                .stdout_logs(false)
                .prometheus_scrape(true)
                .build()
                .unwrap();
            let exposition = telemetry.prometheus().unwrap().clone();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let scraper = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        exposition.render().unwrap();
                    }
                })
            };
            let m = telemetry.metrics();
            m.counter(&c::STELLAOPS_REQUEST_TOTAL).add(
                1,
                c::RequestTotalLabels {
                    service: "s",
                    status: "200",
                },
            );
            m.histogram(&c::STELLAOPS_SCAN_DURATION_SECONDS)
                .record(1.0, c::ScanDurationLabels { tenant: "t" });
            m.histogram(&c::POLICY_RUN_SECONDS).record(
                0.1,
                c::PolicyRunLabels {
                    mode: "m",
                    tenant: "t",
                    policy: "p",
                },
            );
            m.gauge(&c::STELLA_APPROVAL_PENDING_COUNT).set(
                3.0,
                c::ApprovalPendingLabels {
                    tenant: "t",
                    env: "e",
                },
            );
            m.up_down_counter(&c::STELLA_HTTP_REQUESTS_IN_FLIGHT)
                .add(1, c::HttpInFlightLabels { method: "GET" });
            m.counter(&c::STELLA_AGENT_TASKS_TOTAL).add(
                1,
                c::AgentTasksLabels {
                    agent: "a",
                    r#type: "deploy",
                    status: "ok",
                },
            );
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            scraper.join().unwrap();
            telemetry.shutdown();
        }
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("registering handles during scrapes deadlocked");
}
