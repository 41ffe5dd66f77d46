//! Handlers instrumented with `#[instrument]` behind the server layer: their catalogue spans
//! are children of `http.request` in the same trace, carry their required attributes and the
//! request's tenant, a returned `Err` marks them failed, and their catalogue metrics reach the
//! scrape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use http::Request;
use http_body_util::BodyExt as _;
use opentelemetry::Value;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use stellaops_telemetry_core::metrics::catalogue::{
    STELLA_DEPLOYMENTS_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{ErrorKind, Telemetry, instrument};
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt as _;

#[derive(Debug)]
struct RegistryDown;

impl ErrorKind for RegistryDown {
    fn error_kind(&self) -> &'static str {
        "registry_unreachable"
    }
}

#[instrument(
    span = "scan.image",
    imageRef = format!("registry.example/{id}"),
    digest = "sha256:0f1e",
    duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme"),
)]
async fn run_scan(id: &str) -> Result<u32, RegistryDown> {
    tokio::task::yield_now().await;
    if id == "down" {
        Err(RegistryDown)
    } else {
        Ok(3)
    }
}

async fn scan(Path(id): Path<String>) -> Result<String, http::StatusCode> {
    run_scan(&id)
        .await
        .map(|n| n.to_string())
        .map_err(|_| http::StatusCode::BAD_GATEWAY)
}

#[instrument(
    span = "deployment.execute",
    release_id = id,
    environment = "prod",
    outcome = STELLA_DEPLOYMENTS_TOTAL(tenant = "acme", env = "prod", strategy = "rolling", status = outcome),
)]
fn deploy(id: &str) -> Result<(), std::io::Error> {
    tracing::info!(release = id, "deploying");
    Ok(())
}

async fn deploy_handler(Path(id): Path<String>) -> &'static str {
    match deploy(&id) {
        Ok(()) => "deployed",
        Err(_) => "failed",
    }
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[tokio::test(flavor = "current_thread")]
async fn handler_spans_are_children_of_the_request_span_and_their_metrics_are_scraped() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = axum::Router::new()
        .route("/scans/{id}", axum::routing::get(scan))
        .route("/deployments/{id}", axum::routing::post(deploy_handler))
        .route_service("/metrics", telemetry.metrics_service())
        .layer(ServerTelemetryLayer::new(&telemetry));

    for (method, path) in [
        ("GET", "/scans/app-1"),
        ("GET", "/scans/down"),
        ("POST", "/deployments/r-9"),
    ] {
        let response = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("x-stellaops-tenant", "acme")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let scrape = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let exposition = String::from_utf8(
        scrape
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();

    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    let request_span = |route: &str, id: &str| {
        spans
            .iter()
            .find(|s| {
                s.name == route && attr(s, "url.path").is_some_and(|p| p.as_str().ends_with(id))
            })
            .unwrap_or_else(|| panic!("no {route} span for {id}: {spans:#?}"))
    };
    let child_of = |parent: &SpanData, name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.parent_span_id == parent.span_context.span_id())
            .unwrap_or_else(|| panic!("no {name} under {}: {spans:#?}", parent.name))
            .clone()
    };

    let ok_request = request_span("GET /scans/{id}", "app-1");
    let ok_scan = child_of(ok_request, "scan.image");
    assert_eq!(
        ok_scan.span_context.trace_id(),
        ok_request.span_context.trace_id()
    );
    assert_eq!(
        attr(&ok_scan, "imageRef"),
        Some(Value::from("registry.example/app-1"))
    );
    assert_eq!(attr(&ok_scan, "digest"), Some(Value::from("sha256:0f1e")));
    assert_eq!(attr(&ok_scan, "tenant.id"), Some(Value::from("acme")));
    assert_eq!(ok_scan.status, Status::Unset);

    let failed_request = request_span("GET /scans/{id}", "down");
    let failed_scan = child_of(failed_request, "scan.image");
    assert_eq!(failed_scan.status, Status::error(""));
    assert_eq!(
        attr(&failed_scan, "error.type"),
        Some(Value::from("registry_unreachable"))
    );

    let deploy_request = request_span("POST /deployments/{id}", "r-9");
    let deployment = child_of(deploy_request, "deployment.execute");
    assert_eq!(attr(&deployment, "release_id"), Some(Value::from("r-9")));
    assert_eq!(attr(&deployment, "environment"), Some(Value::from("prod")));

    assert!(
        exposition.contains("stellaops_scan_duration_seconds_count{tenant=\"acme\"} 2"),
        "{exposition}"
    );
    assert!(
        exposition.contains(
            "stella_deployments_total{env=\"prod\",status=\"ok\",strategy=\"rolling\",tenant=\"acme\"} 1"
        ),
        "{exposition}"
    );
    telemetry.shutdown();
}
