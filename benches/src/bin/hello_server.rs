//! A hello-world axum server for `benches/load/cpu-per-request.sh`, one runtime thread, behind
//! one of four server layers:
//!
//! - `none`: bare;
//! - `stellaops`: our server layer on an installed pipeline whose spans go through its queue,
//!   redaction and export worker to a test exporter that discards them (Prometheus reader on);
//! - `otel-tower`: opentelemetry-instrumentation-tower's server layer over global tracer and
//!   meter providers, spans through the SDK's batch processor to an exporter that discards them;
//! - `tower-http`: tower-http's `TraceLayer` with tracing-opentelemetry over the same kind of
//!   tracer provider, plus request metrics (a duration histogram and a counter) on each response.
//!
//! `GET /hello/{name}` answers `hello` behind the layer. `GET /stats` (outside the layer) flushes
//! the spans recorded so far and answers `spans_exported <n>`: the number of spans the
//! exporter received, so the script can check that every instrumented server really exports.
//!
//! ```text
//! hello_server --layer none|stellaops|otel-tower|tower-http --addr 127.0.0.1:8080
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use stellaops_telemetry_benches::peers::{
    CountingDiscard, sdk_tracer_provider, with_tower_http_trace_layer,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, TelemetryGuard};
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tracing_subscriber::layer::SubscriberExt as _;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long `/stats` waits for the recorded spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// An SDK tracer provider whose batch processor exports to a counting, discarding exporter,
/// and a meter provider with a manual reader (nothing collects it: recording only).
struct SdkProviders {
    tracer: SdkTracerProvider,
    meters: SdkMeterProvider,
    exported: CountingDiscard,
}

impl SdkProviders {
    fn new() -> SdkProviders {
        let exported = CountingDiscard::default();
        let tracer = sdk_tracer_provider(exported.clone());
        let meters = SdkMeterProvider::builder()
            .with_reader(ManualReader::builder().build())
            .build();
        SdkProviders {
            tracer,
            meters,
            exported,
        }
    }
}

/// Where the server's spans go, kept alive for the whole run and asked by `/stats`.
enum Sink {
    /// The bare server records nothing.
    Nothing,
    /// Our installed pipeline.
    Ours(TelemetryGuard),
    /// The SDK's providers, for both peers.
    Sdk(SdkProviders),
}

impl Sink {
    /// Flushes the spans recorded so far; the number the exporter has received.
    fn spans_exported(&self) -> u64 {
        match self {
            Sink::Nothing => 0,
            Sink::Ours(guard) => {
                let _ = guard.flush(FLUSH_TIMEOUT);
                guard.stats().spans.exported
            }
            Sink::Sdk(sdk) => {
                let _ = sdk.tracer.force_flush();
                sdk.exported.exported()
            }
        }
    }
}

fn routes() -> Router {
    Router::new().route("/hello/{name}", get(|| async { "hello" }))
}

/// Our server layer on an installed pipeline: spans go all the way through the pipeline
/// (queue, export worker, redaction) to an exporter that discards them, so the worker's CPU
/// counts too.
fn ours() -> Result<(Router, Sink), Error> {
    let guard = Telemetry::builder("hello")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&TestExporters::discarding_spans())
        .install()?;
    let app = routes().layer(ServerTelemetryLayer::new(guard.telemetry()));
    Ok((app, Sink::Ours(guard)))
}

/// opentelemetry-instrumentation-tower's server layer: it reads the global providers.
fn otel_tower() -> Result<(Router, Sink), Error> {
    let sdk = SdkProviders::new();
    opentelemetry::global::set_tracer_provider(sdk.tracer.clone());
    opentelemetry::global::set_meter_provider(sdk.meters.clone());
    let app = routes().layer(opentelemetry_instrumentation_tower::http::server::Layer::new());
    Ok((app, Sink::Sdk(sdk)))
}

/// tower-http's `TraceLayer` with a span named and attributed like the other layers' ones,
/// exported by tracing-opentelemetry; request metrics recorded in `on_response`.
fn tower_http() -> Result<(Router, Sink), Error> {
    let sdk = SdkProviders::new();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(sdk.tracer.tracer("hello")));
    tracing::subscriber::set_global_default(subscriber)?;
    let app = with_tower_http_trace_layer(routes(), &sdk.meters.meter("hello"));
    Ok((app, Sink::Sdk(sdk)))
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let layer = value("--layer").unwrap_or_else(|| "none".to_owned());
    let addr: SocketAddr = value("--addr")
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()?;
    // One worker thread: the script pins the process to one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (app, sink) = match layer.as_str() {
        "none" => (routes(), Sink::Nothing),
        "stellaops" => ours()?,
        "otel-tower" => otel_tower()?,
        "tower-http" => tower_http()?,
        other => {
            return Err(format!(
                "--layer {other}: expected none, stellaops, otel-tower or tower-http"
            )
            .into());
        }
    };
    let sink = Arc::new(sink);
    // Added after the layer, so it is not instrumented itself.
    let app = app.route(
        "/stats",
        get(move || {
            let sink = sink.clone();
            async move { format!("spans_exported {}\n", sink.spans_exported()) }
        }),
    );
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok::<(), Error>(())
    })
}
