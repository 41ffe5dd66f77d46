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

/// A `tracing` span, the layer's request span and an `#[instrument]` span reach export through
/// the pipeline's one span recorder: the same value limit, redaction, counts and sampler.
mod one_span_road {
    use super::*;
    use stellaops_telemetry_core::{TRUNCATED, ValueLimits};

    /// Above the code paths and thread names `tracing` spans carry, below the 300-byte values.
    const LIMIT: usize = 160;

    #[instrument(span = "scan.image", imageRef = image, digest = digest)]
    fn scan_one(image: &str, digest: &str) -> u32 {
        1
    }

    async fn handler() -> &'static str {
        let long = "t".repeat(300);
        tracing::info_span!(
            "road.tracing",
            long = %long,
            note = "password=hunter2",
        )
        .in_scope(|| {
            scan_one(&"i".repeat(300), "password=hunter2");
        });
        "ok"
    }

    fn pipeline(
        exporters: &TestExporters,
        sampler: Option<&str>,
    ) -> stellaops_telemetry_core::Telemetry {
        let mut limits = ValueLimits::default();
        limits.attribute_value_bytes = LIMIT;
        let mut builder = Telemetry::builder("scanner")
            .exporters(&[])
            .stdout_logs(false)
            .value_limits(limits)
            .test_exporters(exporters);
        if let Some(name) = sampler {
            builder = builder.sampler(name, None);
        }
        builder.build().unwrap()
    }

    async fn one_request(telemetry: &stellaops_telemetry_core::Telemetry) {
        tenant_request(telemetry, None).await;
    }

    async fn tenant_request(telemetry: &stellaops_telemetry_core::Telemetry, tenant: Option<&str>) {
        let app = axum::Router::new()
            .route("/roads", axum::routing::get(handler))
            .layer(ServerTelemetryLayer::new(telemetry).capture_request_headers(["x-note"]));
        let mut request = Request::get("/roads")
            .header("user-agent", "u".repeat(300))
            .header("x-note", "password=hunter2");
        if let Some(tenant) = tenant {
            request = request.header("x-stellaops-tenant", tenant);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_road_gets_the_same_value_limit_redaction_and_counts() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters, None);
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        one_request(&telemetry).await;
        telemetry.flush(Duration::from_secs(5)).unwrap();

        let spans = exporters.finished_spans();
        for (name, long_key) in [
            ("GET /roads", "user_agent.original"),
            ("road.tracing", "long"),
            ("scan.image", "imageRef"),
        ] {
            let span = spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name} span: {spans:#?}"));
            let long = attr(span, long_key).unwrap_or_else(|| panic!("{name}: no {long_key}"));
            let long = long.as_str();
            assert!(
                long.len() <= LIMIT && long.ends_with(TRUNCATED),
                "{name}: {long_key} not cut to {LIMIT} bytes: {long:?}"
            );
            for kv in &span.attributes {
                assert!(
                    !kv.value.as_str().contains("hunter2"),
                    "{name}: {} leaked: {:?}",
                    kv.key,
                    kv.value
                );
            }
        }
        let stats = telemetry.stats();
        assert_eq!(stats.spans.exported, 3, "{stats:?}");
        assert_eq!(stats.truncated.attribute_values, 3, "{stats:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_sampler_decides_every_road() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters, Some("always_off"));
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        one_request(&telemetry).await;
        telemetry.flush(Duration::from_secs(5)).unwrap();
        assert!(
            exporters.finished_spans().is_empty(),
            "{:#?}",
            exporters.finished_spans()
        );
        let stats = telemetry.stats();
        assert_eq!((stats.spans.exported, stats.spans.dropped), (0, 0));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_tenant_kept_always_keeps_its_request_and_every_span_under_it() {
        use stellaops_telemetry_core::{TenantOverride, TenantSampling};
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters, Some("always_off"));
        telemetry
            .controls()
            .set_tenant(
                "ops",
                "acme",
                TenantOverride {
                    sampling: TenantSampling::Always,
                    log_level: None,
                },
            )
            .unwrap();
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        tenant_request(&telemetry, Some("globex")).await;
        tenant_request(&telemetry, None).await;
        tenant_request(&telemetry, Some("acme")).await;
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["GET /roads", "road.tracing", "scan.image"],
            "{spans:#?}"
        );
        let trace = spans[0].span_context.trace_id();
        assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
    }
}
