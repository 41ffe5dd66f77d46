//! The peer stacks the benchmarks and the load script measure our SDK against, set up once for
//! both: an SDK tracer provider whose batch processor exports to an exporter that counts and
//! discards, and tower-http's `TraceLayer` with tracing-opentelemetry spans and request metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use http::Request;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

/// A span exporter that counts the spans of every batch and keeps nothing.
#[derive(Debug, Clone, Default)]
pub struct CountingDiscard(Arc<AtomicU64>);

impl CountingDiscard {
    /// The spans exported so far.
    pub fn exported(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl SpanExporter for CountingDiscard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(
            u64::try_from(batch.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// An SDK tracer provider whose batch processor exports to `exporter`.
pub fn sdk_tracer_provider(exporter: CountingDiscard) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build()
}

/// `router` behind tower-http's `TraceLayer`, with a span named and attributed like the other
/// layers' ones (exported by whatever tracing-opentelemetry subscriber is current), and the
/// request metrics (a duration histogram and a counter from `meter`) recorded on each response.
pub fn with_tower_http_trace_layer(router: Router, meter: &Meter) -> Router {
    let duration = meter
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    let requests = meter.u64_counter("http_requests_total").build();
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
    router.layer(trace_layer)
}
