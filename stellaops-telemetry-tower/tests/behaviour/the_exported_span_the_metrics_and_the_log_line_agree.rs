//! An axum app with the server layer: the exported span, the scraped `/metrics` and the JSON
//! log line of an event inside the handler agree on trace id, route, status and tenant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use opentelemetry::Value;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "current_thread")]
async fn span_metrics_and_log_line_agree() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = Router::new()
        .route(
            "/scans/{id}",
            get(|Path(id): Path<String>| async move {
                tracing::info!(scan_id = %id, "scanning");
                "ok"
            }),
        )
        .route_service("/metrics", telemetry.metrics_service())
        .layer(ServerTelemetryLayer::new(&telemetry));

    let response = app
        .clone()
        .oneshot(
            Request::get("/scans/s-1")
                .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
                .header("X-StellaOps-Tenant", "acme")
                .header("x-request-id", "req-42")
                .header("user-agent", "stella-cli/2.3")
                .header("host", "scanner.internal:8443")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();

    let scrape = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let metrics = String::from_utf8(
        axum::body::to_bytes(scrape.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

    // The span.
    let spans = exporters.finished_spans();
    let span = spans
        .iter()
        .find(|s| s.name == "GET /scans/{id}")
        .expect("the server span, named {method} {route}");
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(span.span_context.trace_id().to_string(), TRACE);
    assert_eq!(span.parent_span_id.to_string(), PARENT);
    assert!(span.parent_span_is_remote);
    assert_eq!(span.span_kind, opentelemetry::trace::SpanKind::Server);
    assert_eq!(attr("http.route"), Some(Value::from("/scans/{id}")));
    assert_eq!(attr("http.request.method"), Some(Value::from("GET")));
    assert_eq!(attr("url.path"), Some(Value::from("/scans/s-1")));
    assert_eq!(attr("url.scheme"), Some(Value::from("http")));
    assert_eq!(
        attr("server.address"),
        Some(Value::from("scanner.internal"))
    );
    assert_eq!(attr("server.port"), Some(Value::I64(8443)));
    assert_eq!(
        attr("user_agent.original"),
        Some(Value::from("stella-cli/2.3"))
    );
    assert_eq!(attr("http.response.status_code"), Some(Value::I64(200)));
    assert_eq!(attr("tenant.id"), Some(Value::from("acme")));
    assert_eq!(attr("error.type"), None);

    // The JSON log line of the event inside the handler.
    let lines = exporters.json_logs().json();
    let line = lines
        .iter()
        .find(|l| l["message"] == "scanning")
        .expect("the handler's event");
    assert_eq!(line["traceId"], TRACE);
    assert_eq!(line["spanId"], span.span_context.span_id().to_string());
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["correlationId"], "req-42");

    // The scrape: route and status as labels (tenant and trace id are not metric labels).
    for expected in [
        r#"stellaops_request_total{service="scanner",status="200"} 1"#,
        r#"stellaops_request_duration_seconds_count{endpoint="/scans/{id}",service="scanner"} 1"#,
        r#"stella_http_requests_in_flight{method="GET"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == expected),
            "missing `{expected}` in:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_count{")
                && l.contains(r#"http_route="/scans/{id}""#)
                && l.contains(r#"http_response_status_code="200""#)
        ),
        "{metrics}"
    );
    telemetry.shutdown();
}
