//! Two drills of the tower crate:
//!
//! - bad input at scale: whatever bytes arrive as a tenant or request id, `Tenant::parse` and
//!   `RequestId::parse` answer without panicking and accept exactly what a separately written
//!   check of their grammar accepts; `extract` takes any trace-context and baggage header
//!   lines (the grammar of those is checked in
//!   `arbitrary_header_bytes_never_panic_and_never_slip_past_the_grammar.rs`; here it only
//!   runs at the scale `PROPTEST_CASES` asks for, default 256 cases per property);
//! - health tells the truth: through a collector outage (an in-process OTLP/gRPC receiver
//!   switched off and on), `/health` reports the pipeline `degraded` with the drops and
//!   failed exports counted and the backlog, and `healthy` again once the receiver is back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::switchable::SwitchableReceiver;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http::{HeaderMap, HeaderValue};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use stellaops_telemetry_core::{ExporterKind, OtlpProtocol, Telemetry};
use stellaops_telemetry_tower::propagation::{
    BAGGAGE, MAX_BAGGAGE_MEMBERS, TRACEPARENT, TRACESTATE, extract,
};
use stellaops_telemetry_tower::server::{MAX_TENANT_LEN, RequestId, Tenant};
use stellaops_telemetry_tower::services::Health;
use tower::ServiceExt;

/// The tenant grammar, written apart from `Tenant::parse`: 1 to 128 bytes, each a letter, a
/// digit or one of `. _ - @ :`.
fn tenant_reference(bytes: &[u8]) -> bool {
    (1..=MAX_TENANT_LEN).contains(&bytes.len())
        && bytes.iter().all(|&b| {
            b.is_ascii_uppercase()
                || b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b".@_-:".contains(&b)
        })
}

/// The request id grammar: as the tenant's without `@`.
fn request_id_reference(bytes: &[u8]) -> bool {
    (1..=128).contains(&bytes.len())
        && bytes.iter().all(|&b| {
            b.is_ascii_uppercase()
                || b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b"._-:".contains(&b)
        })
}

/// Arbitrary bytes, or bytes mostly from the grammar's alphabet with a stray byte, around
/// the length bound.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..300),
        "[A-Za-z0-9._@:-]{0,140}".prop_map(String::into_bytes),
        (
            "[A-Za-z0-9._@:-]{120,135}",
            any::<u8>(),
            any::<prop::sample::Index>()
        )
            .prop_map(|(s, b, at)| {
                let mut v = s.into_bytes();
                let i = at.index(v.len() + 1);
                v.insert(i, b);
                v
            }),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..400),
        "00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]".prop_map(String::into_bytes),
        "[a-z0-9@*/_=,; -]{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn tenant_ids_are_accepted_exactly_by_the_grammar(bytes in header_bytes()) {
        let parsed = Tenant::parse(&bytes);
        prop_assert_eq!(parsed.is_some(), tenant_reference(&bytes), "{:?}", bytes);
        if let Some(t) = parsed {
            prop_assert_eq!(t.as_str().as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn request_ids_are_accepted_exactly_by_the_grammar(bytes in header_bytes()) {
        let parsed = RequestId::parse(&bytes);
        prop_assert_eq!(parsed.is_some(), request_id_reference(&bytes), "{:?}", bytes);
        if let Some(id) = parsed {
            prop_assert_eq!(id.as_str().as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn trace_context_and_baggage_lines_of_any_bytes_never_panic(
        lines in vec((0usize..3, line()), 0..6),
    ) {
        let mut headers = HeaderMap::new();
        for (which, bytes) in lines {
            let name = [TRACEPARENT, TRACESTATE, BAGGAGE][which].clone();
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.append(name, value);
            }
        }
        let extracted = extract(&headers);
        prop_assert!(extracted.baggage.len() <= MAX_BAGGAGE_MEMBERS);
    }
}

async fn health(app: &Router) -> Value {
    let response = app
        .clone()
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn emit(telemetry: &Telemetry, n: usize) {
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for i in 0..n {
            tracing::info_span!("drill.health", i).in_scope(|| tracing::info!(i, "unit"));
        }
    });
}

/// Emits a few spans (when `emitting`) and reads `/health` until `done` has held for one of
/// the reports (a bound on waiting, not on speed); returns the last report.
async fn until(
    app: &Router,
    telemetry: &Telemetry,
    emitting: bool,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if emitting {
            emit(telemetry, 10);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let body = health(app).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never: {body:#}");
    }
}

fn status(body: &Value) -> &Value {
    &body["checks"]["telemetry"]["status"]
}

fn span_depth(body: &Value) -> u64 {
    body["checks"]["telemetry"]["signals"]["spans"]["backlog"]["depth"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_outage_with_its_drops_and_recovers_when_the_collector_returns() {
    let receiver = SwitchableReceiver::start().unwrap();
    let telemetry = Telemetry::builder("drill-health")
        .service_version("1.0.0")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(receiver.endpoint())
        .otlp_protocol(OtlpProtocol::Grpc)
        .otlp_timeout(Duration::from_secs(2))
        .export_delay(Duration::from_millis(20))
        .export_interval(Duration::from_millis(100))
        .stdout_logs(false)
        .build()
        .unwrap();
    let app = Router::new().nest_service("/health", Health::for_telemetry(&telemetry).build());

    let up = until(&app, &telemetry, true, |b| {
        status(b) == "healthy" && receiver.delivered().spans > 0
    })
    .await;
    assert_eq!(up["status"], "healthy", "{up:#}");

    tokio::task::block_in_place(|| receiver.switch_off());
    // The exporter retries each batch (within its timeout) before it gives up on it, so the
    // backlog grows while the collector is down, then the batch is dropped and counted.
    // The error names what was lost since the previous report, so the span drops are named in
    // whichever report first saw them (on a loaded machine, not always the last one polled).
    let mut saw_backlog = false;
    let mut span_drops_named = false;
    let down = until(&app, &telemetry, true, |b| {
        saw_backlog |= span_depth(b) > 0;
        let error = b["checks"]["telemetry"]["error"]
            .as_str()
            .unwrap_or_default();
        span_drops_named |= error.contains("spans: ") && error.contains(" dropped");
        saw_backlog
            && span_drops_named
            && status(b) == "degraded"
            && b["checks"]["telemetry"]["signals"]["spans"]["dropped"].as_u64() > Some(0)
    })
    .await;
    let pipeline = &down["checks"]["telemetry"];
    assert_eq!(down["status"], "degraded", "{down:#}");
    assert!(span_drops_named);
    let error = pipeline["error"].as_str().unwrap();
    assert!(error.contains(" dropped"), "{error}");
    let spans = &pipeline["signals"]["spans"];
    let stats = telemetry.stats().spans;
    assert!(spans["dropped"].as_u64().unwrap() > 0, "{spans:#}");
    assert!(spans["export_failures"].as_u64().unwrap() > 0, "{spans:#}");
    assert!(spans["last_error"].is_string(), "{spans:#}");
    assert!(spans["dropped"].as_u64().unwrap() <= stats.dropped);
    for key in ["depth", "bytes", "max_bytes", "oldest_age_seconds"] {
        assert!(spans["backlog"].get(key).is_some(), "{key}: {spans:#}");
    }

    receiver.switch_on();
    let delivered = receiver.delivered().spans;
    let back = until(&app, &telemetry, true, |b| status(b) == "healthy").await;
    assert_eq!(back["status"], "healthy", "{back:#}");
    // The backlog drains once the collector answers again.
    let drained = until(&app, &telemetry, false, |b| span_depth(b) == 0).await;
    assert_eq!(status(&drained), "healthy", "{drained:#}");
    assert!(receiver.delivered().spans > delivered);

    let t = telemetry.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}
