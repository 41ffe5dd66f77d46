//! The health service answers the same whether axum nests it at `/health` (it then sees `/`,
//! `/ready`, `/live`) or routes each path to it: liveness runs no check, readiness runs them
//! all, unknown paths are 404 and other methods 405 with `Allow`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use stellaops_telemetry_tower::services::Health;
use tower::ServiceExt;

fn counted_health(calls: &Arc<AtomicUsize>) -> Health {
    let (a, b) = (calls.clone(), calls.clone());
    Health::builder("1.2.3")
        .check("database", move || {
            a.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .check("redis", move || {
            b.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .build()
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

async fn exercise(app: Router, calls: &AtomicUsize, prefix: &str) {
    let (status, headers, body) = send(&app, Method::GET, &format!("{prefix}/health/live")).await;
    assert_eq!(status, StatusCode::OK, "{prefix}: live");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(live["status"], "healthy");
    assert_eq!(live["version"], "1.2.3");
    assert!(live.get("checks").is_none());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "{prefix}: liveness ran a check"
    );

    let (status, _, body) = send(&app, Method::GET, &format!("{prefix}/health/ready")).await;
    assert_eq!(status, StatusCode::OK, "{prefix}: ready");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "healthy");
    assert_eq!(ready["checks"]["database"]["status"], "healthy");
    assert_eq!(ready["checks"]["redis"]["status"], "healthy");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "{prefix}: readiness ran each check once"
    );

    let (status, _, body) = send(&app, Method::GET, &format!("{prefix}/health")).await;
    assert_eq!(status, StatusCode::OK, "{prefix}: report");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "healthy");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let (status, _, body) = send(&app, Method::HEAD, &format!("{prefix}/health/ready")).await;
    assert_eq!(status, StatusCode::OK, "{prefix}: HEAD");
    assert!(body.is_empty());

    let (status, headers, _) = send(&app, Method::POST, &format!("{prefix}/health/ready")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{prefix}: POST");
    assert_eq!(headers[header::ALLOW], "GET, HEAD");
}

#[tokio::test(flavor = "current_thread")]
async fn nested_at_health() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().nest_service("/health", counted_health(&calls));
    exercise(app.clone(), &calls, "").await;
    // A path under the prefix the service does not know is its own 404.
    let (status, _, _) = send(&app, Method::GET, "/health/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Trailing slashes are tolerated.
    let (status, _, _) = send(&app, Method::GET, "/health/live/").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "current_thread")]
async fn nested_under_a_prefix_router() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().nest(
        "/api",
        Router::new().nest_service("/health", counted_health(&calls)),
    );
    exercise(app, &calls, "/api").await;
}

#[tokio::test(flavor = "current_thread")]
async fn routed_per_path() {
    let calls = Arc::new(AtomicUsize::new(0));
    let health = counted_health(&calls);
    let app = Router::new()
        .route_service("/health", health.clone())
        .route_service("/health/ready", health.clone())
        .route_service("/health/live", health.clone())
        // A route the service does not serve: it answers 404 itself.
        .route_service("/status", health);
    exercise(app.clone(), &calls, "").await;
    let (status, _, _) = send(&app, Method::GET, "/status").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "current_thread")]
async fn called_directly_with_any_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let health = counted_health(&calls);
    let response = health
        .clone()
        .oneshot(Request::get("/health/live").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let response = health
        .clone()
        .oneshot(
            Request::get("/health/ready")
                .body(String::from("ignored"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let response = health
        .oneshot(Request::delete("/health/nope").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
