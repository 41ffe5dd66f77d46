//! Per-request overhead over the bare service, in one run, side by side: (a) our server
//! layer, (b) opentelemetry-instrumentation-tower's layer, (c) tower-http's `TraceLayer` with
//! tracing-opentelemetry plus request metrics. Each records a span and request metrics into
//! a pipeline whose spans go through a batch processor to an exporter (peers: one that
//! discards; ours: the in-memory one, emptied every 10,000 requests).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench http_layers
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

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

/// One request through `app`, body read to its end.
fn round_trip(app: &Router) {
    futures_executor::block_on(async {
        let response = app
            .clone()
            .oneshot(
                Request::get("/scans/s-1")
                    .header("x-stellaops-tenant", "acme")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        std::hint::black_box(body);
    });
}

fn sdk_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build()
}

fn http_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_request_overhead");

    let bare = routes();
    group.bench_function("bare_service", |b| b.iter(|| round_trip(&bare)));

    // (a) Ours: the pipeline's span queue (redaction included) to the in-memory exporter,
    // emptied every 10,000 requests; Prometheus reader on.
    let memory = TestExporters::new();
    let telemetry = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&memory)
        .build()
        .unwrap();
    let ours = routes().layer(ServerTelemetryLayer::new(&telemetry));
    let mut served = 0u32;
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        group.bench_function("a_stellaops_server_layer", |b| {
            b.iter(|| {
                round_trip(&ours);
                served += 1;
                if served.is_multiple_of(10_000) {
                    memory.clear();
                }
            })
        });
    });

    // (a2) Ours with no span exporter at all: the layer's own cost, without the span handoff.
    let bare_pipeline = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .build()
        .unwrap();
    let ours_no_export = routes().layer(ServerTelemetryLayer::new(&bare_pipeline));
    tracing::dispatcher::with_default(bare_pipeline.dispatch(), || {
        group.bench_function("a2_stellaops_server_layer_no_span_exporter", |b| {
            b.iter(|| round_trip(&ours_no_export))
        });
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
    group.bench_function("b_opentelemetry_instrumentation_tower", |b| {
        b.iter(|| round_trip(&theirs))
    });

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
        group.bench_function("c_tower_http_trace_layer_tracing_opentelemetry", |b| {
            b.iter(|| round_trip(&tower_http))
        });
    });
    group.finish();

    // The layers really recorded: a quick check after the measurements.
    let started = Instant::now();
    let body = telemetry.prometheus().unwrap().render().unwrap();
    assert!(body.contains("stellaops_request_total"), "{body}");
    let _ = started;
    telemetry.shutdown();
    bare_pipeline.shutdown();
    let _ = tracer_b.shutdown();
    let _ = tracer_c.shutdown();
    let _ = meters_b.shutdown();
    let _ = meters_c.shutdown();
}

criterion_group!(benches, http_layers);
criterion_main!(benches);
