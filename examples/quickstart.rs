//! The quickstart: a small axum service instrumented with the StellaOps Telemetry SDK.
//!
//! ```text
//! cargo run --example quickstart                       # serve, drive a burst of traffic, summarise, exit
//! cargo run --example quickstart -- --serve [--addr 127.0.0.1:8080]   # serve until Ctrl-C
//! ```
//!
//! No collector is needed: JSON log lines go to stdout and every signal is written as OTLP
//! JSON Lines under `STELLAOPS_TELEMETRY_DIR` (default `./telemetry-data`). Every standard
//! `OTEL_*` variable and the `STELLAOPS_TELEMETRY_*` ones apply (see the README).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stellaops_telemetry_core::{ExporterKind, Telemetry, tracing};
use stellaops_telemetry_tower::RequestTelemetryLayer;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct App {
    telemetry: Telemetry,
}

async fn scan(Path(id): Path<String>) -> Result<String, (StatusCode, String)> {
    let span = tracing::info_span!("scan.image", imageRef = %format!("registry.example/{id}"), digest = "sha256:0f1e");
    let _entered = span.enter();
    match id.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tracing::info!(scan_id = %id, findings = 12u64, "scan finished slowly");
            Ok(format!("scan {id}: 12 findings"))
        }
        "broken" => {
            tracing::error!(scan_id = %id, error.type = "registry_unreachable", "scan failed");
            Err((StatusCode::BAD_GATEWAY, "registry unreachable".to_owned()))
        }
        _ => {
            tracing::info!(scan_id = %id, findings = 3u64, "scan finished");
            Ok(format!("scan {id}: 3 findings"))
        }
    }
}

async fn evaluate(body: String) -> (StatusCode, String) {
    let span = tracing::info_span!("policy.evaluate", policyId = "baseline", version = 7i64);
    let _entered = span.enter();
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(input) => {
            let verdict = if input["severity"] == "critical" {
                "deny"
            } else {
                "allow"
            };
            tracing::info!(verdict, "policy evaluated");
            (StatusCode::OK, format!("{{\"verdict\":\"{verdict}\"}}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "policy input is not JSON");
            (StatusCode::BAD_REQUEST, "expected a JSON body".to_owned())
        }
    }
}

/// The SDK's own counters in the Prometheus text format (the catalogue issue replaces this
/// with the full exposition).
async fn metrics(State(app): State<App>) -> ([(http::HeaderName, &'static str); 1], String) {
    let s = app.telemetry.stats();
    let mut body = String::new();
    for (signal, snap) in [
        ("spans", &s.spans),
        ("logs", &s.logs),
        ("metrics", &s.metrics),
        ("log_lines", &s.log_lines),
    ] {
        body.push_str(&format!(
            "stellaops_telemetry_exported_total{{signal=\"{signal}\"}} {}\nstellaops_telemetry_dropped_total{{signal=\"{signal}\"}} {}\n",
            snap.exported, snap.dropped
        ));
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

fn router(app: App) -> Router {
    let layer = RequestTelemetryLayer::new("quickstart", &app.telemetry.meter("stellaops"));
    Router::new()
        .route("/scans/{id}", get(scan))
        .route("/policy/evaluate", post(evaluate))
        .route("/metrics", get(metrics))
        .layer(layer)
        .with_state(app)
}

async fn drive_traffic(addr: SocketAddr) -> Result<(usize, usize), Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut requests = Vec::new();
    for i in 0..20 {
        let (method, path, body, tenant) = match i % 5 {
            0 => ("GET", format!("/scans/img-{i}"), "", Some("acme")),
            1 => ("GET", "/scans/slow".to_owned(), "", Some("globex")),
            2 => ("GET", "/scans/broken".to_owned(), "", None),
            3 => (
                "POST",
                "/policy/evaluate".to_owned(),
                "{\"severity\":\"critical\"}",
                Some("acme"),
            ),
            _ => ("POST", "/policy/evaluate".to_owned(), "not json", None),
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        if let Some(tenant) = tenant {
            request = request.header("X-StellaOps-Tenant", tenant);
        }
        requests.push(request.body(Full::new(Bytes::from(body)))?);
    }
    let (mut ok, mut failed) = (0, 0);
    for request in requests {
        let response = client.request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if status.is_success() {
            ok += 1
        } else {
            failed += 1
        }
    }
    Ok((ok, failed))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().any(|a| a == "--serve");
    let addr: SocketAddr = match args.iter().position(|a| a == "--addr") {
        Some(i) => args.get(i + 1).ok_or("--addr needs a value")?.parse()?,
        None if serve => "127.0.0.1:8080".parse()?,
        None => "127.0.0.1:0".parse()?,
    };

    // The embedded default: every signal to files, JSON logs to stdout. The environment
    // (OTEL_*, STELLAOPS_TELEMETRY_*) wins over these defaults.
    let guard = Telemetry::builder("quickstart")
        .service_version(env!("CARGO_PKG_VERSION"))
        .exporters(&[ExporterKind::File])
        .export_interval(Duration::from_secs(5))
        .from_env()
        .install()?;
    let telemetry = guard
        .telemetry()
        .ok_or("telemetry is not available")?
        .clone();

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(App {
        telemetry: telemetry.clone(),
    });
    let started = Instant::now();
    if serve {
        tracing::info!(addr = %local, "quickstart serving; Ctrl-C to stop");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        drop(guard);
        return Ok(());
    }

    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (ok, failed) = drive_traffic(local).await?;
    server.abort();
    drop(guard); // flushes every signal, bounded by the shutdown timeout

    let s = telemetry.stats();
    println!();
    println!(
        "quickstart summary ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  requests served      {} ({ok} ok, {failed} failed on purpose)",
        ok + failed
    );
    println!(
        "  spans exported       {} (dropped {})",
        s.spans.exported, s.spans.dropped
    );
    println!(
        "  log records exported {} (dropped {})",
        s.logs.exported, s.logs.dropped
    );
    println!(
        "  metric points        {} (dropped {})",
        s.metrics.exported, s.metrics.dropped
    );
    println!(
        "  JSON log lines       {} (dropped {})",
        s.log_lines.exported, s.log_lines.dropped
    );
    println!(
        "  files under          {}",
        std::fs::canonicalize(telemetry.dir())
            .unwrap_or_else(|_| telemetry.dir().to_path_buf())
            .display()
    );
    if s.spans.exported == 0 && !telemetry.is_disabled() {
        return Err("no span was exported".into());
    }
    Ok(())
}
