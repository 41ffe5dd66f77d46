//! Headers are captured only when named, and always through the redactor: 1,000 generated
//! secrets in captured headers (credential headers, value shapes under ordinary names, bytes
//! that are not UTF-8) are found 0 times in the exported spans.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt;

#[tokio::test(flavor = "current_thread")]
async fn no_secret_from_a_captured_header_is_exported() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("headers")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = Router::new().route("/", get(|| async { "ok" })).layer(
        ServerTelemetryLayer::new(&telemetry).capture_request_headers([
            "authorization",
            "cookie",
            "x-api-key",
            "x-forwarded-url",
            "x-note",
            "accept",
        ]),
    );
    let mut needles = Vec::new();
    for i in 0..1_000u64 {
        let tok = format!("tok{i:04}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let request = match i % 5 {
            0 => Request::get("/").header("authorization", format!("Bearer {tok}")),
            1 => Request::get("/").header("cookie", format!("session={tok}")),
            2 => Request::get("/").header("x-api-key", tok.clone()),
            3 => Request::get("/").header(
                "x-forwarded-url",
                format!("https://svc:{tok}@up.invalid/?sig={tok}"),
            ),
            _ => Request::get("/").header(
                "x-note",
                axum::http::HeaderValue::from_bytes(&[&b"\xff"[..], tok.as_bytes()].concat())
                    .unwrap(),
            ),
        };
        needles.push(tok);
        let response = app
            .clone()
            .oneshot(
                request
                    .header("accept", "text/plain")
                    .header("x-not-captured", "visible?")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    telemetry.shutdown();
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 1_000);
    let text = format!("{spans:?}");
    let leaked = needles.iter().filter(|n| text.contains(n.as_str())).count();
    assert_eq!(leaked, 0, "secrets leaked from captured headers");
    // Captured means named: the ordinary header is kept as is, the unnamed one never recorded.
    assert!(text.contains("http.request.header.accept") && text.contains("text/plain"));
    assert!(!text.contains("x-not-captured") && !text.contains("visible?"));
}

mod incidents {
    use std::time::Duration;

    use axum::routing::post;
    use stellaops_telemetry_core::opentelemetry::Value;
    use stellaops_telemetry_core::{
        ErrorRateTrigger, INCIDENT_ATTRIBUTE, IncidentStart, IncidentTrigger,
    };

    use super::*;

    fn attribute(
        span: &stellaops_telemetry_core::opentelemetry_sdk::trace::SpanData,
        key: &str,
    ) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_tenant_under_incident_gets_every_span_with_the_extended_attributes_and_others_do_not()
     {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("forensic")
            .exporters(&[])
            .stdout_logs(false)
            .sampler("always_off", None)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        let app = Router::new()
            .route("/echo", post(|body: String| async move { body.repeat(2) }))
            .layer(
                ServerTelemetryLayer::new(&telemetry)
                    .capture_forensic_request_headers(["x-case", "authorization"]),
            );
        let incident = telemetry
            .incidents()
            .start(IncidentStart::new("acme", "triage", "ops"))
            .unwrap();
        for tenant in ["acme", "globex", "acme"] {
            let response = app
                .clone()
                .oneshot(
                    Request::post("/echo?case=7&token=hunter2")
                        .header("x-stellaops-tenant", tenant)
                        .header("x-case", "CASE-7")
                        .header("authorization", "Bearer s3cr3t-t0ken")
                        .header("content-length", "5")
                        .body(Body::from("hello"))
                        .unwrap(),
                )
                .await
                .unwrap();
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(&body[..], b"hellohello");
        }
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        assert_eq!(
            spans.len(),
            2,
            "acme's two requests under always_off, not globex's"
        );
        for span in &spans {
            assert_eq!(
                attribute(span, INCIDENT_ATTRIBUTE),
                Some(Value::from(incident.id.clone()))
            );
            assert_eq!(
                attribute(span, "http.request.body.size"),
                Some(Value::I64(5))
            );
            assert_eq!(
                attribute(span, "http.response.body.size"),
                Some(Value::I64(10))
            );
            let case = format!("{:?}", attribute(span, "http.request.header.x-case"));
            assert!(case.contains("CASE-7"), "{case}");
            let text = format!("{span:?}");
            assert!(!text.contains("s3cr3t-t0ken"), "the redactor ran");
            assert!(!text.contains("hunter2"), "the query is redacted");
        }

        // After the incident the tenant is back to the profile: nothing kept, nothing extended.
        telemetry.incidents().stop("ops", "acme").unwrap();
        exporters.clear();
        let response = app
            .clone()
            .oneshot(
                Request::post("/echo")
                    .header("x-stellaops-tenant", "acme")
                    .body(Body::from("hello"))
                    .unwrap(),
            )
            .await
            .unwrap();
        let _ = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        telemetry.flush(Duration::from_secs(5)).unwrap();
        assert!(exporters.finished_spans().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failing_requests_of_one_tenant_start_its_incident_through_the_error_rate_trigger() {
        let telemetry = Telemetry::builder("failing")
            .exporters(&[])
            .stdout_logs(false)
            .error_rate_trigger(ErrorRateTrigger {
                threshold: 0.5,
                min_requests: 10,
                ..ErrorRateTrigger::default()
            })
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/",
                get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route("/ok", get(|| async { "ok" }))
            .layer(ServerTelemetryLayer::new(&telemetry));
        for (tenant, path) in [("acme", "/"), ("globex", "/ok")] {
            for _ in 0..10 {
                let response = app
                    .clone()
                    .oneshot(
                        Request::get(path)
                            .header("x-stellaops-tenant", tenant)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let _ = axum::body::to_bytes(response.into_body(), 1024)
                    .await
                    .unwrap();
            }
        }
        let incident = telemetry.incidents().active_for("acme").expect("ten 503s");
        assert_eq!(incident.trigger, IncidentTrigger::ErrorRate);
        assert!(!telemetry.incidents().is_active("globex"));
    }
}
