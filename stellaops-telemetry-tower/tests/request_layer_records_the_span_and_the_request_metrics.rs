//! The request layer opens one `http.request` span per request with the route template, the
//! integer status and a validated tenant, and records duration and count metrics, also for
//! requests whose client went away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt;

fn app(telemetry: &Telemetry) -> Router {
    Router::new()
        .route("/scans/{id}", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .layer(ServerTelemetryLayer::new(telemetry))
}

fn attr<'a>(span: &'a opentelemetry_sdk::trace::SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[tokio::test(flavor = "current_thread")]
async fn spans_and_metrics_follow_each_request() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = app(&telemetry);

    let request = |uri: &str, tenant: Option<&str>| {
        let mut r = Request::get(uri);
        if let Some(t) = tenant {
            r = r.header("X-StellaOps-Tenant", t);
        }
        r.body(Body::empty()).unwrap()
    };
    let ok = app
        .clone()
        .oneshot(request("/scans/s-1", Some("acme")))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The request is recorded when its body ends (here: when it is dropped unread).
    drop(ok);
    let failed = app
        .clone()
        .oneshot(request("/fail", Some("bad tenant; drop")))
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    drop(failed);
    // A client that goes away: the future is dropped before the handler answers.
    let hang = app.clone().oneshot(request("/hang", None));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), hang)
            .await
            .is_err()
    );

    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 3);
    let ok_span = spans
        .iter()
        .find(|s| s.name == "GET /scans/{id}")
        .expect("named {method} {route}");
    assert_eq!(
        attr(ok_span, "http.route"),
        Some(&Value::from("/scans/{id}"))
    );
    assert_eq!(
        attr(ok_span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(attr(ok_span, "tenant.id"), Some(&Value::from("acme")));
    let fail_span = spans.iter().find(|s| s.name == "GET /fail").unwrap();
    assert_eq!(
        attr(fail_span, "http.response.status_code"),
        Some(&Value::I64(502))
    );
    assert!(matches!(
        fail_span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        attr(fail_span, "tenant.id"),
        None,
        "an invalid tenant is never recorded"
    );

    let metrics = exporters.metrics();
    let last = metrics.last().expect("a metric export");
    let mut statuses = Vec::new();
    let mut histogram_points = 0;
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            match (metric.name(), metric.data()) {
                ("stellaops_request_total", AggregatedMetrics::U64(MetricData::Sum(sum))) => {
                    for p in sum.data_points() {
                        let status = p
                            .attributes()
                            .find(|kv| kv.key.as_str() == "status")
                            .unwrap();
                        statuses.push((status.value.clone(), p.value()));
                    }
                }
                (
                    "stellaops_request_duration_seconds",
                    AggregatedMetrics::F64(MetricData::Histogram(h)),
                ) => {
                    for p in h.data_points() {
                        histogram_points += 1;
                        // Seconds-scale boundaries, not the SDK's millisecond defaults.
                        assert_eq!(p.bounds().next(), Some(0.005));
                        assert!(p.attributes().any(|kv| kv.key.as_str() == "endpoint"));
                    }
                }
                _ => {}
            }
        }
    }
    statuses.sort_by_key(|(v, _)| v.to_string());
    assert_eq!(
        statuses,
        [
            (Value::from("200"), 1),
            (Value::from("499"), 1),
            (Value::from("502"), 1)
        ]
    );
    assert_eq!(histogram_points, 3);
}
