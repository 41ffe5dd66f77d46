//! Readiness runs every check concurrently, each bounded by its timeout: 200 when all pass,
//! 503 when one fails, outlives its timeout or panics (the endpoint itself keeps answering).
//! Time is paused, so the slow check costs no wall-clock time; only statuses are asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::http::{Request, StatusCode};
use stellaops_telemetry_tower::services::Health;
use tower::ServiceExt;

async fn ready(health: Health) -> (StatusCode, serde_json::Value) {
    let response = health
        .oneshot(Request::get("/health/ready").body(()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (status, serde_json::from_str(response.body()).unwrap())
}

fn passing() -> stellaops_telemetry_tower::services::HealthBuilder {
    Health::builder("1.0.0")
        .check("database", || async { Ok::<(), String>(()) })
        .check("redis", || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<(), std::io::Error>(())
        })
}

#[tokio::test(start_paused = true)]
async fn all_checks_pass() {
    let (status, body) = ready(passing().build()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert!(body["checks"]["redis"]["error"].is_null());
}

#[tokio::test(start_paused = true)]
async fn a_failing_check() {
    let (status, body) = ready(
        passing()
            .check("vault", || async { Err::<(), _>("vault is sealed") })
            .build(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["vault"]["status"], "unhealthy");
    assert_eq!(body["checks"]["vault"]["error"], "vault is sealed");
    assert_eq!(body["checks"]["database"]["status"], "healthy");
}

#[tokio::test(start_paused = true)]
async fn a_check_slower_than_its_timeout() {
    let (status, body) = ready(
        passing()
            .check_with_timeout("vault", Duration::from_millis(200), || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), String>(())
            })
            .build(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["vault"]["status"], "unhealthy");
    assert_eq!(body["checks"]["vault"]["error"], "timed out after 200ms");
}

#[tokio::test(start_paused = true)]
async fn the_default_timeout_bounds_checks_registered_without_one() {
    let (status, body) = ready(
        passing()
            .check("vault", || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), String>(())
            })
            .timeout_default(Duration::from_secs(2))
            .build(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["vault"]["error"], "timed out after 2s");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check() {
    let health = passing()
        .check("broken", || async {
            if true {
                panic!("boom");
            }
            Ok::<(), String>(())
        })
        .build();
    let (status, body) = ready(health.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["broken"]["status"], "unhealthy");
    assert_eq!(body["checks"]["broken"]["error"], "check panicked: boom");
    // The service still answers afterwards.
    let (status, _) = ready(health).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn without_a_runtime_checks_are_unhealthy_not_a_panic() {
    let health = passing().build();
    let response =
        block_on(health.oneshot(Request::get("/health/ready").body(()).unwrap())).unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.body().contains("need a Tokio runtime"));
}

/// Polls a future to completion on this thread, outside any Tokio runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
