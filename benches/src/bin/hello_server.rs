//! A hello-world axum server for `benches/load/cpu-per-request.sh`: bare, or with our server
//! layer on a pipeline whose spans and metrics are recorded and discarded.
//!
//! ```text
//! hello_server --layer none|stellaops --addr 127.0.0.1:8080
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;

type Error = Box<dyn std::error::Error + Send + Sync>;

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
    let app = Router::new().route("/hello/{name}", get(|| async { "hello" }));
    let guard;
    let app = match layer.as_str() {
        "none" => app,
        "stellaops" => {
            // Spans go all the way through the pipeline (queue, export worker, redaction)
            // to an exporter that discards them: the worker's CPU counts too.
            guard = Telemetry::builder("hello")
                .exporters(&[])
                .stdout_logs(false)
                .prometheus_scrape(true)
                .test_exporters(&TestExporters::discarding_spans())
                .install()?;
            app.layer(ServerTelemetryLayer::new(guard.telemetry()))
        }
        other => return Err(format!("--layer {other}: expected none or stellaops").into()),
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok::<(), Error>(())
    })
}
