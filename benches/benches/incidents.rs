//! Incident mode and tenant overrides at scale.
//!
//! 1. Activation latency: from the control plane's `POST /telemetry/incidents/mode`
//!    answering to the first request of that tenant whose span is recorded, on the same
//!    instance; and from the incident file being written (what the command line and the API
//!    of another instance do) to the first recorded request on an instance following the
//!    file. p50 / p99 / max over many activations, printed (only under `cargo bench`).
//! 2. The server layer's cost per request with 1 and with 10,000 tenants under a sampling
//!    override, and with 1 and 10,000 tenants under incident, side by side (criterion).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench incidents
//! ```

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    IncidentFile, IncidentStart, Telemetry, TenantOverride, TenantSampling,
};
use stellaops_telemetry_tower::control::{AuthError, Claims, ControlPlane, TokenVerifier};
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt as _;

/// Activations measured per road.
const ACTIVATIONS: usize = 200;

fn routes() -> Router {
    Router::new().route("/scans/{id}", get(|| async { "ok" }))
}

/// One request of `tenant` through `app`, body read to its end.
fn request(app: &Router, tenant: &'static str) -> http::StatusCode {
    futures_executor::block_on(async {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = http::Uri::from_static("/scans/s-1");
        request
            .headers_mut()
            .insert("x-stellaops-tenant", http::HeaderValue::from_static(tenant));
        let response = match app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let _ = axum::body::to_bytes(response.into_body(), 64).await;
        status
    })
}

/// Spans the pipeline accepted so far (exported, dropped or queued).
fn recorded(telemetry: &Telemetry) -> u64 {
    let s = telemetry.stats().spans;
    s.exported + s.dropped + s.queue_depth
}

/// A pipeline keeping no span of its own accord (`always_off`): only incidents and
/// overrides make a span recorded.
fn pipeline(file: Option<&std::path::Path>) -> Option<Telemetry> {
    let mut builder = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .sampler("always_off", None)
        .test_exporters(&TestExporters::discarding_spans());
    if let Some(file) = file {
        builder = builder.incident_file(file);
    }
    match builder.build() {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("skipping incidents: the pipeline could not be built: {e}");
            None
        }
    }
}

/// Requests of `tenant` until one is recorded; the time from `from`.
fn until_recorded(
    app: &Router,
    telemetry: &Telemetry,
    tenant: &'static str,
    from: Instant,
) -> Duration {
    let before = recorded(telemetry);
    let deadline = from + Duration::from_secs(10);
    loop {
        request(app, tenant);
        if recorded(telemetry) > before || Instant::now() > deadline {
            return from.elapsed();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn print_percentiles(road: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "incident activation via {road}: n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

/// Accepts one token, as an operator with every control scope.
struct OneToken;

impl TokenVerifier for OneToken {
    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token == "bench-token" {
            Ok(Claims::new("bench").with_scopes(["telemetry:admin", "telemetry:read"]))
        } else {
            Err(AuthError::invalid("not the bench token"))
        }
    }
}

/// One control-plane call: `POST /telemetry/incidents/mode` with `body`; its status.
fn post_mode(control: &ControlPlane, body: &'static str) -> http::StatusCode {
    futures_executor::block_on(async {
        let request = Request::post("/telemetry/incidents/mode")
            .header("authorization", "Bearer bench-token")
            .header("content-type", "application/json")
            .body(Body::from(body));
        let Ok(request) = request else {
            return http::StatusCode::BAD_REQUEST;
        };
        match control.clone().oneshot(request).await {
            Ok(response) => response.status(),
            Err(never) => match never {},
        }
    })
}

/// Activation latency through the control plane of the instance serving the tenant.
fn activation_via_api() {
    let Some(telemetry) = pipeline(None) else {
        return;
    };
    let app = routes().layer(ServerTelemetryLayer::new(&telemetry));
    let control = ControlPlane::for_telemetry(&telemetry)
        .verifier(OneToken)
        .build();
    let samples = (0..ACTIVATIONS)
        .map(|_| {
            let status = post_mode(
                &control,
                r#"{"tenant":"acme","mode":"forensic","reason":"bench","ttl":"10m"}"#,
            );
            let answered = Instant::now();
            assert_eq!(status, http::StatusCode::OK);
            let latency = until_recorded(&app, &telemetry, "acme", answered);
            let stopped = post_mode(&control, r#"{"tenant":"acme","mode":"default"}"#);
            assert_eq!(stopped, http::StatusCode::OK);
            latency
        })
        .collect();
    print_percentiles("the control plane's POST (same instance)", samples);
}

/// Activation latency through the watched incident file, on another instance.
fn activation_via_file() {
    let dir =
        std::env::temp_dir().join(format!("stellaops-bench-incidents-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let file = dir.join("incidents.json");
    let Some(follower) = pipeline(Some(&file)) else {
        return;
    };
    let app = routes().layer(ServerTelemetryLayer::new(&follower));
    let samples = (0..ACTIVATIONS / 4)
        .map(|i| {
            let now = std::time::SystemTime::now();
            let incident = stellaops_telemetry_core::Incident {
                id: format!("inc-bench-{i}"),
                tenant: "acme".into(),
                reason: "bench".into(),
                actor: "bench".into(),
                trigger: stellaops_telemetry_core::IncidentTrigger::Manual,
                started: now,
                expires: now + Duration::from_secs(600),
            };
            let written = IncidentFile::write(&file, &[incident]);
            let returned = Instant::now();
            assert!(written.is_ok(), "{written:?}");
            let latency = until_recorded(&app, &follower, "acme", returned);
            let _ = IncidentFile::write(&file, &[]);
            // Wait for the stop to be followed before the next activation.
            while follower.incidents().is_active("acme") {
                std::thread::sleep(Duration::from_millis(1));
            }
            latency
        })
        .collect();
    print_percentiles("the watched file (another instance)", samples);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names of `n` tenants, leaked once for the bench's `'static` header values.
fn tenants(n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|i| &*Box::leak(format!("tenant-{i:05}").into_boxed_str()))
        .collect()
}

fn per_request_at_scale(c: &mut Criterion) {
    let mut group = c.benchmark_group("tenants_under_override_per_request");
    let names = tenants(10_000);
    for (label, count) in [("1", 1usize), ("10000", 10_000)] {
        let Some(telemetry) = pipeline(None) else {
            return;
        };
        let always = TenantOverride {
            sampling: TenantSampling::Always,
            log_level: None,
        };
        for name in &names[..count] {
            if let Err(e) = telemetry.controls().set_tenant("bench", name, always) {
                eprintln!("skipping: {e}");
                return;
            }
        }
        let app = routes().layer(ServerTelemetryLayer::new(&telemetry));
        let tenant = names[count / 2];
        request(&app, tenant);
        assert!(recorded(&telemetry) > 0, "the tenant's spans are kept");
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            group.bench_function(format!("overrides_{label}"), |b| {
                b.iter(|| std::hint::black_box(request(&app, tenant)))
            });
        });
    }
    for (label, count) in [("1", 1usize), ("10000", 10_000)] {
        let Some(telemetry) = pipeline(None) else {
            return;
        };
        for name in &names[..count] {
            if let Err(e) = telemetry
                .incidents()
                .start(IncidentStart::new(*name, "bench", "bench"))
            {
                eprintln!("skipping: {e}");
                return;
            }
        }
        let app = routes().layer(ServerTelemetryLayer::new(&telemetry));
        let tenant = names[count / 2];
        request(&app, tenant);
        assert!(recorded(&telemetry) > 0, "the tenant's spans are kept");
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            group.bench_function(format!("incidents_{label}"), |b| {
                b.iter(|| std::hint::black_box(request(&app, tenant)))
            });
        });
    }
    group.finish();
}

fn activation(_c: &mut Criterion) {
    // Only under `cargo bench` (criterion's test mode runs each bench once, quickly).
    if std::env::args().any(|a| a == "--bench") {
        activation_via_api();
        activation_via_file();
    }
}

criterion_group!(benches, activation, per_request_at_scale);
criterion_main!(benches);
