//! Per-request overhead over the bare service, in one run, side by side: (a) our server
//! layer, (b) opentelemetry-instrumentation-tower's layer, (c) tower-http's `TraceLayer` with
//! tracing-opentelemetry plus request metrics. Each records a span and request metrics into
//! a pipeline whose spans go through a batch processor to an exporter that discards them (ours:
//! `TestExporters::discarding_spans`, after the pipeline's queue and redaction).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench http_layers
//! ```

#![allow(missing_docs)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Accepts every batch and keeps nothing.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

fn routes() -> Router {
    Router::new().route("/scans/{id}", get(|| async { "ok" }))
}

/// One request through `app`, body read to its end: its status and body.
fn round_trip(app: &Router) -> (http::StatusCode, Option<axum::body::Bytes>) {
    futures_executor::block_on(async {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = http::Uri::from_static("/scans/s-1");
        request
            .headers_mut()
            .insert("x-stellaops-tenant", http::HeaderValue::from_static("acme"));
        let response = match app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        (
            status,
            axum::body::to_bytes(response.into_body(), 64).await.ok(),
        )
    })
}

/// One request proves `app` answers `200 ok` before it is measured.
fn check_answers(name: &str, app: &Router) {
    let (status, body) = round_trip(app);
    assert!(
        status == 200 && body.as_deref() == Some(&b"ok"[..]),
        "{name}: the service answered {status} {body:?}"
    );
}

/// Measures `app` under `name`.
fn bench_app(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    app: &Router,
) {
    check_answers(name, app);
    group.bench_function(name, |b| b.iter(|| std::hint::black_box(round_trip(app))));
}

/// A pipeline for the bench, or the reason it could not be built.
fn pipeline(
    memory: Option<&TestExporters>,
) -> Result<Telemetry, stellaops_telemetry_core::TelemetryError> {
    let builder = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true);
    match memory {
        Some(memory) => builder.test_exporters(memory).build(),
        None => builder.build(),
    }
}

fn sdk_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build()
}

fn http_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_request_overhead");

    bench_app(&mut group, "bare_service", &routes());

    // (a) Ours: the pipeline's span queue (redaction included) to an exporter that discards;
    // Prometheus reader on. (a2) The same without a span exporter: the layer's own cost,
    // without the span handoff.
    let memory = TestExporters::discarding_spans();
    let (telemetry, bare_pipeline) = match (pipeline(Some(&memory)), pipeline(None)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping http_layers: the pipeline could not be built: {e}");
            return;
        }
    };
    let ours = routes().layer(ServerTelemetryLayer::new(&telemetry));
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        bench_app(&mut group, "a_stellaops_server_layer", &ours);
    });
    let ours_no_export = routes().layer(ServerTelemetryLayer::new(&bare_pipeline));
    tracing::dispatcher::with_default(bare_pipeline.dispatch(), || {
        bench_app(
            &mut group,
            "a2_stellaops_server_layer_no_span_exporter",
            &ours_no_export,
        );
    });

    // (b) opentelemetry-instrumentation-tower: it reads the global providers.
    let tracer_b = sdk_tracer_provider();
    let meters_b = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    opentelemetry::global::set_tracer_provider(tracer_b.clone());
    opentelemetry::global::set_meter_provider(meters_b.clone());
    let otel_layer = opentelemetry_instrumentation_tower::http::server::Layer::new();
    let theirs = routes().layer(otel_layer);
    bench_app(&mut group, "b_opentelemetry_instrumentation_tower", &theirs);

    // (c) tower-http TraceLayer + tracing-opentelemetry, request metrics in on_response.
    let tracer_c = sdk_tracer_provider();
    let meters_c = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let meter = meters_c.meter("bench");
    let duration = meter
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    let requests = meter.u64_counter("http_requests_total").build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_c.tracer("bench")));
    let dispatch = tracing::Dispatch::new(subscriber);
    let trace_layer = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            tracing::info_span!(
                "http.request",
                otel.name = %format_args!("{} {route}", request.method()),
                otel.kind = "server",
                http.request.method = %request.method(),
                http.route = %route,
                http.response.status_code = tracing::field::Empty,
            )
        })
        .on_response(
            move |response: &http::Response<Body>, latency: Duration, span: &tracing::Span| {
                let status = i64::from(response.status().as_u16());
                span.record("http.response.status_code", status);
                let attrs = [
                    KeyValue::new("http.request.method", "GET"),
                    KeyValue::new("http.response.status_code", status),
                ];
                duration.record(latency.as_secs_f64(), &attrs);
                requests.add(1, &attrs);
            },
        );
    let tower_http = routes().layer(trace_layer);
    tracing::dispatcher::with_default(&dispatch, || {
        bench_app(
            &mut group,
            "c_tower_http_trace_layer_tracing_opentelemetry",
            &tower_http,
        );
    });
    group.finish();

    // The layers really recorded: a check after the measurements.
    let _ = telemetry.flush(Duration::from_secs(10));
    let exported = telemetry.stats().spans.exported;
    assert!(exported > 0, "no span was exported");
    let body = telemetry
        .prometheus()
        .map(|p| p.render().map_err(|e| e.to_string()))
        .unwrap_or_else(|| Err("no exposition".to_owned()));
    assert!(
        body.as_deref()
            .is_ok_and(|b| b.contains("stellaops_request_total")),
        "{body:?}"
    );
    telemetry.shutdown();
    bare_pipeline.shutdown();
    let _ = tracer_b.shutdown();
    let _ = tracer_c.shutdown();
    let _ = meters_b.shutdown();
    let _ = meters_c.shutdown();
}

criterion_group!(benches, http_layers);
criterion_main!(benches);
