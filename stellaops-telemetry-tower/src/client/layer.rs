//! [`ClientTelemetryLayer`] and [`ClientTelemetry`].

use std::task::{Context, Poll};

use opentelemetry::trace::TraceContextExt as _;
use stellaops_telemetry_core::Redactor;
use stellaops_telemetry_core::propagation::Propagators;
use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::span::{ClientSpan, Outgoing};
use crate::server::Tenant;

/// Wraps clients in [`ClientTelemetry`].
#[derive(Debug, Clone, Default)]
pub struct ClientTelemetryLayer {
    redactor: Redactor,
    /// `None`: the installed pipeline's ([`Propagators::installed`]), read per request.
    propagators: Option<Propagators>,
}

impl ClientTelemetryLayer {
    /// A layer with the default redaction rules for `url.full`.
    pub fn new() -> Self {
        ClientTelemetryLayer::default()
    }

    /// The redactor `url.full` passes (the pipeline's: `telemetry.redactor().clone()`).
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The propagators that write the trace context and baggage (the pipeline's:
    /// `telemetry.propagators()`). Default: those of the installed pipeline
    /// ([`Propagators::installed`]; `tracecontext,baggage` when none is installed).
    ///
    /// ```
    /// use stellaops_telemetry_core::PropagatorKind;
    /// use stellaops_telemetry_core::propagation::Propagators;
    /// use stellaops_telemetry_tower::client::ClientTelemetryLayer;
    ///
    /// let layer = ClientTelemetryLayer::new().propagators(Propagators::new([PropagatorKind::B3]));
    /// # let _ = layer;
    /// ```
    pub fn propagators(mut self, propagators: Propagators) -> Self {
        self.propagators = Some(propagators);
        self
    }
}

impl<S> Layer<S> for ClientTelemetryLayer {
    type Service = ClientTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientTelemetry {
            inner,
            redactor: self.redactor.clone(),
            propagators: self.propagators,
        }
    }
}

/// A client that opens a client span per request and injects the trace context.
#[derive(Debug, Clone)]
pub struct ClientTelemetry<S> {
    inner: S,
    redactor: Redactor,
    propagators: Option<Propagators>,
}

/// Writes `traceparent`, `tracestate`, `baggage` (from `span`'s context) and
/// `X-StellaOps-Tenant` (from `tenant`, else from that context) into `headers`, for clients
/// that are not tower services. The trace headers are those of the installed pipeline's
/// propagators ([`Propagators::installed`]).
pub fn inject_headers(
    span: &tracing::Span,
    tenant: Option<&Tenant>,
    headers: &mut http::HeaderMap,
) {
    inject_with(Propagators::installed(), span, tenant, headers);
}

/// [`inject_headers`] with `propagators`.
pub(crate) fn inject_with(
    propagators: Propagators,
    span: &tracing::Span,
    tenant: Option<&Tenant>,
    headers: &mut http::HeaderMap,
) {
    // A span the service's level disables still carries the work's context onward: the
    // caller's trace and tenant propagate whatever the log level. So does a span without an
    // OpenTelemetry span (a disabled pipeline makes none).
    let cx = if span.is_disabled() {
        opentelemetry::Context::current()
    } else {
        let cx = span.context();
        if cx.has_active_span() {
            cx
        } else {
            opentelemetry::Context::current()
        }
    };
    propagators.inject(&cx, headers);
    if headers.contains_key(crate::server::TENANT_HEADER_NAME) {
        return;
    }
    let tenant = tenant.map(Tenant::as_str).or_else(|| {
        cx.get::<stellaops_telemetry_core::RequestContext>()
            .and_then(|r| r.tenant())
    });
    if let Some(tenant) = tenant
        && let Ok(value) = http::HeaderValue::from_str(tenant)
    {
        headers.insert(crate::server::TENANT_HEADER_NAME, value);
    }
}

impl<S, B, RB> Service<http::Request<B>> for ClientTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let uri = request.uri();
        // A request that names only its path (a tonic client without an origin) has no
        // address and no full URL to record.
        let url = uri.authority().is_some().then(|| uri.to_string());
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let client_span = ClientSpan::open(
            &Outgoing {
                method: request.method(),
                host: uri.host(),
                port,
                url: url.as_deref(),
                path: uri.path(),
                headers: request.headers(),
            },
            &self.redactor,
        );
        let tenant = request.extensions().get::<Tenant>().cloned();
        let propagators = self.propagators.unwrap_or_else(Propagators::installed);
        let span = &client_span.span;
        inject_with(propagators, span, tenant.as_ref(), request.headers_mut());
        let future = span.in_scope(|| self.inner.call(request));
        ResponseFuture::new(future, client_span)
    }
}
