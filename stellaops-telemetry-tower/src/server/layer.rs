//! [`ServerTelemetryLayer`]: its settings, and the hooks it calls.

use std::sync::Arc;

use stellaops_telemetry_core::{Redactor, Telemetry};
use tower::Layer;

use super::metrics::ServerMetrics;
use super::request_id::{DefaultMakeRequestId, MakeRequestId};
use super::route::{DefaultMakeRoute, MakeRoute};
use super::service::ServerTelemetry;

/// Wraps services in [`ServerTelemetry`]: the `http.request` span, trace context in, tenant,
/// request id and the request metrics.
///
/// ```
/// use stellaops_telemetry_tower::server::ServerTelemetryLayer;
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
/// let app: axum::Router = axum::Router::new()
///     .route("/scans/{id}", axum::routing::get(|| async { "ok" }))
///     .layer(ServerTelemetryLayer::new(&telemetry).capture_request_headers(["accept"]));
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[derive(Clone)]
pub struct ServerTelemetryLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) metrics: Arc<ServerMetrics>,
    pub(crate) captured_headers: Vec<http::HeaderName>,
    pub(crate) redactor: Redactor,
    /// The pipeline's value limits: every text taken from the request is cut to them.
    pub(crate) bounds: stellaops_telemetry_core::ValueBounds,
    pub(crate) make_route: Arc<dyn MakeRoute>,
    pub(crate) make_request_id: Arc<dyn MakeRequestId>,
    pub(crate) echo_traceparent: bool,
    pub(crate) recorder: stellaops_telemetry_core::SpanRecorder,
    pub(crate) routes: Arc<super::route::Routes>,
    /// Span start times from the request's `Instant` (one clock reading, not two).
    pub(crate) clock: Arc<stellaops_telemetry_core::WallClock>,
}

impl std::fmt::Debug for ServerTelemetryLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTelemetryLayer")
            .field("captured_headers", &self.shared.captured_headers)
            .field("echo_traceparent", &self.shared.echo_traceparent)
            .finish_non_exhaustive()
    }
}

impl ServerTelemetryLayer {
    /// A layer recording into `telemetry`'s metrics under its service name, capturing no
    /// header, with the default route and request-id hooks.
    pub fn new(telemetry: &Telemetry) -> Self {
        ServerTelemetryLayer {
            shared: Arc::new(Shared {
                metrics: Arc::new(ServerMetrics::new(
                    telemetry.service_name().to_owned(),
                    telemetry.metrics(),
                )),
                captured_headers: Vec::new(),
                redactor: telemetry.redactor().clone(),
                bounds: telemetry.value_bounds().clone(),
                make_route: Arc::new(DefaultMakeRoute),
                make_request_id: Arc::new(DefaultMakeRequestId),
                echo_traceparent: false,
                recorder: telemetry.span_recorder().clone(),
                routes: Arc::default(),
                clock: Arc::default(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Records these request headers on the span as `http.request.header.<name>`, always
    /// through the pipeline's redactor and cut to its attribute value limit. Default: none.
    /// Invalid names are ignored.
    pub fn capture_request_headers<I, N>(self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let names: Vec<http::HeaderName> = names
            .into_iter()
            .filter_map(|n| http::HeaderName::try_from(n.as_ref().to_ascii_lowercase()).ok())
            .collect();
        self.with(|s| s.captured_headers = names)
    }

    /// The route hook, asked before axum's `MatchedPath`. Default: [`DefaultMakeRoute`].
    pub fn make_route(self, hook: impl MakeRoute) -> Self {
        let hook: Arc<dyn MakeRoute> = Arc::new(hook);
        self.with(|s| s.make_route = hook)
    }

    /// The request-id hook for requests without a valid `x-request-id`. Default:
    /// [`DefaultMakeRequestId`].
    pub fn make_request_id(self, hook: impl MakeRequestId) -> Self {
        let hook: Arc<dyn MakeRequestId> = Arc::new(hook);
        self.with(|s| s.make_request_id = hook)
    }

    /// Echoes the server span's `traceparent` in the response. Default: off.
    pub fn echo_traceparent(self, echo: bool) -> Self {
        self.with(|s| s.echo_traceparent = echo)
    }
}

impl<S> Layer<S> for ServerTelemetryLayer {
    type Service = ServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTelemetry::new(inner, self.shared.clone())
    }
}
