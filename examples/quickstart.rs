//! The quickstart: a small axum service instrumented with the StellaOps Telemetry SDK.
//!
//! ```text
//! cargo run --example quickstart                       # serve, drive a burst of traffic, summarise, exit
//! cargo run --example quickstart -- --serve [--addr 127.0.0.1:8080]   # serve until Ctrl-C
//! cargo run --example quickstart -- --scrape-out metrics.txt  # also save GET /metrics after the burst
//! curl -X PUT localhost:8080/admin/log-level/debug               # run-time controls (with --serve)
//! curl -X PUT localhost:8080/admin/tenants/acme/sampling/always
//! curl -H "Authorization: Bearer $TOKEN" localhost:8080/telemetry/incidents/status
//! ```
//!
//! The control plane is mounted under `/telemetry`, guarded by the JWKS, issuer and audience
//! in `STELLAOPS_TELEMETRY_AUTH_*`; without them it refuses every call (503). With
//! `STELLAOPS_TELEMETRY_BUNDLE_KEY` (an Ed25519 PKCS#8 PEM file) it also streams signed
//! bundles of the telemetry directory: `GET /telemetry/exports/forensic/1h`.
//!
//! No collector is needed: JSON log lines go to stdout and every signal is written as OTLP
//! JSON Lines under `STELLAOPS_TELEMETRY_DIR` (default `./telemetry-data`). Every standard
//! `OTEL_*` variable and the `STELLAOPS_TELEMETRY_*` ones apply (see the README).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stellaops_telemetry_core::metrics::Counter;
use stellaops_telemetry_core::metrics::catalogue::{
    POLICY_RULES_FIRED_TOTAL, POLICY_RUN_SECONDS, PolicyRulesFiredLabels,
    SCANNER_VULNERABILITIES_FOUND_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
    VulnerabilitiesFoundLabels,
};
use stellaops_telemetry_core::{
    ErrorKind, ExporterKind, Telemetry, TenantOverride, TenantSampling, instrument, tracing,
};
use stellaops_telemetry_tower::client::ClientTelemetryLayer;
use stellaops_telemetry_tower::control::{ControlPlane, ForensicExports, JwtVerifier};
use stellaops_telemetry_tower::server::{ServerTelemetryLayer, Tenant};
use stellaops_telemetry_tower::services::Health;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP client with the client layer: trace context, baggage and tenant go out with every
/// request it sends.
type TracedClient = stellaops_telemetry_tower::client::ClientTelemetry<
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
>;

#[derive(Clone)]
struct App {
    telemetry: Telemetry,
    /// This service's own address: `/scans/{id}/verdict` asks its own policy endpoint.
    own_addr: SocketAddr,
    client: TracedClient,
    /// Catalogue metrics whose labels depend on the outcome, resolved once (the durations are
    /// recorded by `#[instrument]`).
    vulnerabilities: Counter<VulnerabilitiesFoundLabels<'static>>,
    rules_fired: Counter<PolicyRulesFiredLabels<'static>>,
}

impl App {
    fn new(telemetry: Telemetry, own_addr: SocketAddr) -> Self {
        let m = telemetry.metrics().clone();
        let client = ServiceBuilder::new()
            .layer(ClientTelemetryLayer::new().redactor(telemetry.redactor().clone()))
            .service(Client::builder(TokioExecutor::new()).build_http());
        App {
            own_addr,
            client,
            vulnerabilities: m.counter(&SCANNER_VULNERABILITIES_FOUND_TOTAL),
            rules_fired: m.counter(&POLICY_RULES_FIRED_TOTAL),
            telemetry,
        }
    }
}

/// The tenant label of a request: the tenant the server layer validated (1–128 bytes of a
/// small alphabet), or `none`. Never the raw `X-StellaOps-Tenant` header: a label made from
/// an unvalidated header lets any client create series of any size.
fn tenant(tenant: &Option<Extension<Tenant>>) -> &str {
    tenant.as_ref().map_or("none", |Extension(t)| t.as_str())
}

/// Why a scan failed; its kind becomes the span's `error.type`.
#[derive(Debug)]
enum ScanError {
    RegistryUnreachable,
}

impl ErrorKind for ScanError {
    fn error_kind(&self) -> &'static str {
        match self {
            ScanError::RegistryUnreachable => "registry_unreachable",
        }
    }
}

/// The scan itself: the catalogue span `scan.image` (a child of the request's span) and the
/// catalogue scan duration, recorded by `#[instrument]`.
#[instrument(
    span = "scan.image",
    imageRef = format!("registry.example/{id}"),
    digest = "sha256:0f1e",
    duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = tenant),
)]
async fn run_scan(id: &str, tenant: &str) -> Result<u64, ScanError> {
    match id {
        "slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tracing::info!(scan_id = %id, findings = 12u64, "scan finished slowly");
            Ok(12)
        }
        "broken" => {
            tracing::error!(scan_id = %id, "scan failed: registry unreachable");
            Err(ScanError::RegistryUnreachable)
        }
        _ => {
            tracing::info!(scan_id = %id, findings = 3u64, "scan finished");
            Ok(3)
        }
    }
}

async fn scan(
    State(app): State<App>,
    validated: Option<Extension<Tenant>>,
    Path(id): Path<String>,
) -> Result<String, (StatusCode, String)> {
    match run_scan(&id, tenant(&validated)).await {
        Ok(findings) => {
            app.vulnerabilities
                .add(findings, VulnerabilitiesFoundLabels { severity: "high" });
            Ok(format!("scan {id}: {findings} findings"))
        }
        Err(ScanError::RegistryUnreachable) => {
            Err((StatusCode::BAD_GATEWAY, "registry unreachable".to_owned()))
        }
    }
}

/// The policy run: the catalogue span `policy.evaluate` and the catalogue policy run
/// duration. The body is recorded only as its size, never as itself.
#[instrument(
    span = "policy.evaluate",
    policyId = "baseline",
    version = "7",
    fields(input_bytes = body.len()),
    duration = POLICY_RUN_SECONDS(mode = "enforce", tenant = tenant, policy = "baseline"),
)]
fn evaluate_policy(body: &str, tenant: &str) -> Result<&'static str, serde_json::Error> {
    let input = serde_json::from_str::<serde_json::Value>(body)?;
    Ok(if input["severity"] == "critical" {
        "deny"
    } else {
        "allow"
    })
}

async fn evaluate(
    State(app): State<App>,
    validated: Option<Extension<Tenant>>,
    body: String,
) -> (StatusCode, String) {
    match evaluate_policy(&body, tenant(&validated)) {
        Ok(verdict) => {
            app.rules_fired.add(
                1,
                PolicyRulesFiredLabels {
                    policy: "baseline",
                    rule: verdict,
                },
            );
            tracing::info!(verdict, "policy evaluated");
            (StatusCode::OK, format!("{{\"verdict\":\"{verdict}\"}}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "policy input is not JSON");
            (StatusCode::BAD_REQUEST, "expected a JSON body".to_owned())
        }
    }
}

/// Asks this service's own policy endpoint through the client layer, inside the catalogue
/// span `scan.image`: the two requests share one trace, and the tenant travels with the call.
#[instrument(
    span = "scan.image",
    imageRef = format!("registry.example/{id}"),
    digest = "sha256:0f1e",
)]
async fn ask_policy(
    client: &TracedClient,
    own_addr: SocketAddr,
    id: &str,
) -> Result<String, Error> {
    let severity = if id.contains("critical") {
        "critical"
    } else {
        "low"
    };
    let request = http::Request::post(format!("http://{own_addr}/policy/evaluate")).body(
        Full::new(Bytes::from(format!("{{\"severity\":\"{severity}\"}}"))),
    )?;
    let mut client = client.clone();
    let response = client.ready().await?.call(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn verdict(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<String, (StatusCode, String)> {
    let answer = ask_policy(&app.client, app.own_addr, &id)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(format!("scan {id}: policy says {answer}"))
}

/// `PUT /admin/log-level/{level}`: the service's log level, changed without a restart.
async fn set_log_level(
    State(app): State<App>,
    Path(level): Path<String>,
) -> Result<StatusCode, (StatusCode, String)> {
    app.telemetry
        .controls()
        .set_log_level_str("quickstart-admin", &level)
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))
}

/// `PUT /admin/tenants/{pattern}/sampling/{always|never|profile}`: one tenant's traces kept,
/// dropped, or left to the head sampler.
async fn set_tenant_sampling(
    State(app): State<App>,
    Path((pattern, sampling)): Path<(String, String)>,
) -> Result<StatusCode, (StatusCode, String)> {
    let sampling = match sampling.as_str() {
        "always" => TenantSampling::Always,
        "never" => TenantSampling::Never,
        "profile" => TenantSampling::Profile,
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "expected always, never or profile\n".to_owned(),
            ));
        }
    };
    let controls = app.telemetry.controls();
    let current = controls
        .tenant_overrides()
        .into_iter()
        .find(|(p, _)| *p == pattern)
        .map(|(_, o)| o)
        .unwrap_or_default();
    controls
        .set_tenant(
            "quickstart-admin",
            &pattern,
            TenantOverride {
                sampling,
                ..current
            },
        )
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))
}

fn router(app: App) -> Result<Router, Error> {
    let layer = ServerTelemetryLayer::new(&app.telemetry)
        .echo_traceparent(true)
        .known_methods_from_env()?;
    let own_addr = app.own_addr;
    let health = Health::for_telemetry(&app.telemetry)
        .check("policy_endpoint", move || async move {
            // Readiness: this service's own listener accepts connections.
            tokio::net::TcpStream::connect(own_addr).await.map(drop)
        })
        .build();
    // The control plane (profiles, incident mode): guarded by the JWKS of the environment,
    // else refusing every call.
    let mut control = ControlPlane::for_telemetry(&app.telemetry);
    match JwtVerifier::from_env()? {
        Some(verifier) => {
            tracing::info!(
                keys = verifier.key_count(),
                "control plane under /telemetry"
            );
            control = control.verifier(verifier);
        }
        None => tracing::info!(
            "control plane under /telemetry refuses every call: STELLAOPS_TELEMETRY_AUTH_JWKS is not set"
        ),
    }
    // Forensic exports of the pipeline's own files, signed with the key of the environment.
    match ForensicExports::from_env(app.telemetry.dir())? {
        Some(exports) => {
            tracing::info!(
                ?exports,
                "forensic exports under /telemetry/exports/forensic"
            );
            control = control.forensic_exports(exports);
        }
        None => {
            tracing::info!("forensic exports answer 503: STELLAOPS_TELEMETRY_BUNDLE_KEY is not set")
        }
    }
    Ok(Router::new()
        .route("/scans/{id}", get(scan))
        .route("/scans/{id}/verdict", get(verdict))
        .route("/policy/evaluate", post(evaluate))
        .route("/admin/log-level/{level}", put(set_log_level))
        .route(
            "/admin/tenants/{pattern}/sampling/{sampling}",
            put(set_tenant_sampling),
        )
        .route_service("/metrics", app.telemetry.metrics_service())
        .nest_service("/health", health)
        .nest_service("/telemetry", control.build())
        .layer(layer)
        .with_state(app))
}

async fn drive_traffic(addr: SocketAddr) -> Result<(usize, usize), Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut requests = Vec::new();
    for i in 0..24 {
        let (method, path, body, tenant) = match i % 6 {
            0 => ("GET", format!("/scans/img-{i}"), "", Some("acme")),
            5 => (
                "GET",
                format!("/scans/critical-{i}/verdict"),
                "",
                Some("acme"),
            ),
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

/// `GET path` after the burst (`/metrics`: what Prometheus would scrape; `/health`).
async fn get_text(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(http::Request::get(format!("http://{addr}{path}")).body(Full::new(Bytes::new()))?)
        .await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

const USAGE: &str = "\
quickstart: a small axum service instrumented with the StellaOps Telemetry SDK

usage:
  quickstart                        serve, send itself a burst of traffic, print a summary, exit
  quickstart --serve [--addr ADDR]  serve until Ctrl-C (default address 127.0.0.1:8080)
  quickstart --scrape-out FILE      also save GET /metrics after the burst
  quickstart --help                 this text

While it serves, run-time controls (no restart):
  curl -X PUT ADDR/admin/log-level/debug                   the service's log level
  curl -X PUT ADDR/admin/tenants/acme/sampling/always      keep every trace of tenant acme

The control plane under /telemetry (profiles, incident mode) needs a bearer token checked
against STELLAOPS_TELEMETRY_AUTH_JWKS (a JWKS file), STELLAOPS_TELEMETRY_AUTH_ISSUER and
STELLAOPS_TELEMETRY_AUTH_AUDIENCE; without them every control call is refused (503):
  curl -H \"Authorization: Bearer $TOKEN\" ADDR/telemetry/incidents/status
  curl -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\
       -d '{\"tenant\":\"acme\",\"mode\":\"forensic\",\"reason\":\"triage\",\"ttl\":\"30m\"}' \\
       ADDR/telemetry/incidents/mode
With STELLAOPS_TELEMETRY_BUNDLE_KEY (an Ed25519 PKCS#8 PEM file), a token with scope
telemetry:export downloads a signed bundle of the last hour (or FROM..TO, RFC 3339):
  curl -OJ -H \"Authorization: Bearer $TOKEN\" ADDR/telemetry/exports/forensic/1h?tenant=acme

Signals go to OTLP JSON Lines files under STELLAOPS_TELEMETRY_DIR (default ./telemetry-data);
every OTEL_* and STELLAOPS_TELEMETRY_* variable of the README applies.";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let takes_value = |a: &str| matches!(a, "--addr" | "--scrape-out");
    let known = |i: usize, a: &str| {
        a == "--serve" || takes_value(a) || (i > 0 && takes_value(&args[i - 1]))
    };
    if let Some((_, unknown)) = args.iter().enumerate().find(|&(i, a)| !known(i, a)) {
        eprintln!("unknown argument `{unknown}`\n\n{USAGE}");
        std::process::exit(2);
    }
    let serve = args.iter().any(|a| a == "--serve");
    let scrape_out = match args.iter().position(|a| a == "--scrape-out") {
        Some(i) => Some(args.get(i + 1).ok_or("--scrape-out needs a file")?.clone()),
        None => None,
    };
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
    let telemetry = guard.telemetry().clone();

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(App::new(telemetry.clone(), local))?;
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
    let health = get_text(local, "/health").await?;
    let exposition = get_text(local, "/metrics").await?;
    if let Some(path) = &scrape_out {
        std::fs::write(path, &exposition)?;
    }
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
    let health: serde_json::Value = serde_json::from_str(&health)?;
    println!(
        "  GET /health          {}",
        health["status"].as_str().unwrap_or("?")
    );
    println!(
        "  GET /metrics         {} series lines{}",
        exposition
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count(),
        scrape_out
            .as_deref()
            .map(|p| format!(", saved to {p}"))
            .unwrap_or_default()
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
