//! The request layer: a span around each request, duration and count metrics from one clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use stellaops_telemetry_core::Redactor;
use stellaops_telemetry_core::metrics::catalogue::{
    RequestDurationLabels, RequestTotalLabels, STELLAOPS_REQUEST_DURATION_SECONDS,
    STELLAOPS_REQUEST_TOTAL,
};
use stellaops_telemetry_core::metrics::{Counter, Histogram, Metrics};
use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tower::{Layer, Service};
use tracing::Span;

#[derive(Debug)]
struct Instruments {
    service: String,
    duration: Histogram<RequestDurationLabels<'static>>,
    requests: Counter<RequestTotalLabels<'static>>,
    /// Request headers recorded on the span, by lowercase name; nothing else is recorded.
    captured_headers: Vec<http::HeaderName>,
    redactor: Redactor,
}

/// Wraps services in [`RequestTelemetry`].
#[derive(Debug, Clone)]
pub struct RequestTelemetryLayer {
    instruments: Arc<Instruments>,
}

impl RequestTelemetryLayer {
    /// A layer recording the catalogue's `stellaops_request_duration_seconds{service,endpoint}`
    /// and `stellaops_request_total{service,status}` into `metrics` (the pipeline's).
    pub fn new(service: impl Into<String>, metrics: &Metrics) -> Self {
        RequestTelemetryLayer {
            instruments: Arc::new(Instruments {
                service: service.into(),
                duration: metrics.histogram(&STELLAOPS_REQUEST_DURATION_SECONDS),
                requests: metrics.counter(&STELLAOPS_REQUEST_TOTAL),
                captured_headers: Vec::new(),
                redactor: Redactor::default(),
            }),
        }
    }

    /// Records these request headers on the span as `http.request.header.<name>`, always
    /// through the redactor. Names that are not valid header names are skipped. Default: none.
    pub fn capture_request_headers<I, N>(self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let names = names
            .into_iter()
            .filter_map(|n| http::HeaderName::from_bytes(n.as_ref().trim().as_bytes()).ok())
            .collect();
        self.with_instruments(|i| i.captured_headers = names)
    }

    /// The redactor captured headers pass (use the pipeline's: `telemetry.redactor()`).
    /// Default: the default rules.
    pub fn redactor(self, redactor: Redactor) -> Self {
        self.with_instruments(|i| i.redactor = redactor)
    }

    fn with_instruments(mut self, f: impl FnOnce(&mut Instruments)) -> Self {
        let mut instruments = Instruments {
            service: self.instruments.service.clone(),
            duration: self.instruments.duration.clone(),
            requests: self.instruments.requests.clone(),
            captured_headers: self.instruments.captured_headers.clone(),
            redactor: self.instruments.redactor.clone(),
        };
        f(&mut instruments);
        self.instruments = Arc::new(instruments);
        self
    }
}

impl<S> Layer<S> for RequestTelemetryLayer {
    type Service = RequestTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTelemetry {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

/// A service that opens an `http.request` span per request and records request metrics.
#[derive(Debug, Clone)]
pub struct RequestTelemetry<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

/// The tenant header read by this layer.
pub const TENANT_HEADER: &str = "x-stellaops-tenant";

/// A tenant id from `X-StellaOps-Tenant` when it is valid: 1–128 characters of
/// `A–Z a–z 0–9 . _ -`. Anything else is never recorded.
fn tenant_of<B>(request: &http::Request<B>) -> Option<&str> {
    let value = request.headers().get(TENANT_HEADER)?.to_str().ok()?;
    let valid = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    valid.then_some(value)
}

fn route_of<B>(request: &http::Request<B>) -> String {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return path.as_str().to_owned();
    }
    let _ = request;
    // The raw path is never a label: unmatched requests share one constant.
    "unmatched".to_owned()
}

impl<S, B, RB> Service<http::Request<B>> for RequestTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let route = route_of(&request);
        let method = request.method().as_str().to_owned();
        let span = tracing::info_span!(
            "http.request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = %method,
            http.route = %route,
            url.path = request.uri().path(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            tenant.id = tracing::field::Empty,
        );
        if let Some(tenant) = tenant_of(&request) {
            span.record("tenant.id", tenant);
        }
        for name in &self.instruments.captured_headers {
            let values: Vec<opentelemetry::StringValue> = request
                .headers()
                .get_all(name)
                .iter()
                .map(|v| {
                    self.instruments
                        .redactor
                        .redact_header(name.as_str(), v.as_bytes())
                        .into_owned()
                        .into()
                })
                .collect();
            if !values.is_empty() {
                span.set_attribute(
                    format!("http.request.header.{}", name.as_str()),
                    opentelemetry::Value::Array(opentelemetry::Array::String(values)),
                );
            }
        }
        let future = span.in_scope(|| self.inner.call(request));
        ResponseFuture {
            future,
            completion: Completion {
                span,
                start: Instant::now(),
                route,
                instruments: self.instruments.clone(),
                done: false,
            },
        }
    }
}

/// Records the request once: when the response is ready, or, if the future is dropped first
/// (the client went away), as status 499 so cancelled requests still count.
struct Completion {
    span: Span,
    start: Instant,
    route: String,
    instruments: Arc<Instruments>,
    done: bool,
}

/// The status recorded for a request whose future was dropped before it finished.
const CLIENT_CLOSED: u16 = 499;

impl Completion {
    fn record(&mut self, status: u16) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        // Status codes are recorded as integers (tracing-opentelemetry turns u64 into strings).
        self.span
            .record("http.response.status_code", i64::from(status));
        if status >= 500 && status != CLIENT_CLOSED {
            self.span.record("otel.status_code", "ERROR");
        }
        let i = &self.instruments;
        i.duration.record(
            elapsed,
            RequestDurationLabels {
                service: &i.service,
                endpoint: &self.route,
            },
        );
        let mut code = itoa::Buffer::new();
        i.requests.add(
            1,
            RequestTotalLabels {
                service: &i.service,
                status: code.format(status),
            },
        );
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.record(CLIENT_CLOSED);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestTelemetry`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        completion: Completion,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.completion.span.enter();
        let result = match this.future.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            Err(_) => 500,
        };
        drop(_entered);
        this.completion.record(status);
        Poll::Ready(result)
    }
}
