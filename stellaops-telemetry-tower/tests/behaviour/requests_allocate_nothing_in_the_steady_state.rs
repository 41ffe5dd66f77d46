//! In the steady state the request thread allocates nothing for telemetry: the server layer
//! adds no heap allocation to a request over the bare service, with its span sampled and
//! exported. Counted with a per-thread
//! counting allocator (this test binary's global allocator), so the export worker's own
//! allocations are not counted; counts, never times.
//!
//! ```text
//! cargo test -p stellaops-telemetry-tower --test behaviour allocate_nothing -- --nocapture
//! ```

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt as _;

/// Requests before counting starts: the record pool, the bound-series caches and the
/// allocator's thread caches fill up.
const WARM_UP: usize = 2_000;
/// Requests counted.
const COUNTED: usize = 1_000;

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

fn routes() -> Router {
    Router::new().route("/scans/{id}", get(|| async { "ok" }))
}

/// A request as a traced, tenanted caller sends it (built outside the count: the caller
/// allocates it, not the layer).
fn request(i: usize) -> Request<Body> {
    let mut request = Request::get("/scans/s-1")
        .header("x-stellaops-tenant", "acme")
        .header("x-request-id", format!("req-{i}"));
    if i % 2 == 0 {
        request = request.header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
    }
    request.body(Body::empty()).unwrap()
}

/// Heap allocations on this thread per request through `app` (body read to its end), over
/// [`COUNTED`] requests after [`WARM_UP`]; the pipeline is flushed between batches, outside
/// the count, so the record pool is what the worker gave back.
fn allocations_per_request(app: &Router, telemetry: Option<&Telemetry>) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut counted = 0u64;
    for i in 0..WARM_UP + COUNTED {
        if i % 100 == 0
            && let Some(telemetry) = telemetry
        {
            telemetry.flush(Duration::from_secs(10)).unwrap();
        }
        let request = request(i);
        let app = app.clone();
        let info = allocation_counter::measure(|| {
            runtime.block_on(async move {
                let response = app.oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = axum::body::to_bytes(response.into_body(), 64).await.unwrap();
                assert_eq!(&body[..], b"ok");
            });
        });
        if i >= WARM_UP {
            counted += info.count_total;
        }
    }
    counted as f64 / COUNTED as f64
}

#[test]
fn allocations_the_server_layer_adds_to_a_request_are_zero() {
    let exporters = TestExporters::discarding_spans();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let bare = allocations_per_request(&routes(), None);
    let layered = allocations_per_request(
        &routes().layer(ServerTelemetryLayer::new(&telemetry)),
        Some(&telemetry),
    );
    telemetry.flush(Duration::from_secs(10)).unwrap();
    let stats = telemetry.stats();
    println!(
        "allocations per request: bare service {bare:.2}, behind the layer {layered:.2}, \
         added by the layer {:.2} ({} spans exported)",
        layered - bare,
        stats.spans.exported
    );
    // Every request was sampled and exported: the count covers the whole span road.
    assert_eq!(stats.spans.exported, (WARM_UP + COUNTED) as u64);
    assert_eq!(stats.spans.dropped, 0);
    assert!(
        layered - bare <= 0.0,
        "the layer allocated {:.2} times per request",
        layered - bare
    );
}

