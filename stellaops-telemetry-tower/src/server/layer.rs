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
    /// Headers recorded only on requests with the extended attributes.
    pub(crate) forensic_headers: Vec<http::HeaderName>,
    /// The pipeline's incidents: a request of a tenant under one gets the extended attributes.
    pub(crate) incidents: stellaops_telemetry_core::Incidents,
    /// Every request gets the extended attributes (a profile with the extended set).
    pub(crate) extended_always: bool,
    /// Each request's outcome goes to the error-rate incident trigger.
    pub(crate) report_outcomes: bool,
    pub(crate) redactor: Redactor,
    /// The pipeline's value limits: every text taken from the request is cut to them.
    pub(crate) bounds: stellaops_telemetry_core::ValueBounds,
    pub(crate) make_route: Arc<dyn MakeRoute>,
    pub(crate) make_request_id: Arc<dyn MakeRequestId>,
    pub(crate) echo_traceparent: bool,
    /// The known methods when overridden (`None`: the nine standard ones).
    pub(crate) known_methods: Option<Arc<[&'static str]>>,
    /// Whether `Forwarded` and `X-Forwarded-*` are believed.
    pub(crate) trust_forwarded: bool,
    pub(crate) recorder: stellaops_telemetry_core::SpanRecorder,
    /// The pipeline's propagators (`OTEL_PROPAGATORS`): what the trace context is read from.
    pub(crate) propagators: stellaops_telemetry_core::propagation::Propagators,
    /// The pipeline is disabled (`OTEL_SDK_DISABLED`): the received trace context is passed
    /// on unchanged and nothing is sampled or recorded.
    pub(crate) disabled: bool,
    pub(crate) routes: Arc<super::route::Routes>,
    /// The tenants seen, shared by their requests.
    pub(crate) tenants: Arc<super::tenant::KnownTenants>,
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
                forensic_headers: Vec::new(),
                incidents: telemetry.incidents().clone(),
                extended_always: telemetry.profile().attributes
                    == stellaops_telemetry_core::AttributeSet::Extended,
                report_outcomes: telemetry.incidents().error_rate_trigger().is_some(),
                redactor: telemetry.redactor().clone(),
                bounds: telemetry.value_bounds().clone(),
                make_route: Arc::new(DefaultMakeRoute),
                make_request_id: Arc::new(DefaultMakeRequestId),
                echo_traceparent: false,
                known_methods: None,
                trust_forwarded: false,
                recorder: telemetry.span_recorder().clone(),
                propagators: telemetry.propagators(),
                disabled: telemetry.is_disabled(),
                routes: Arc::default(),
                tenants: Arc::default(),
                clock: Arc::default(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Records these request headers on the spans of requests with the extended attributes
    /// only: every request under a profile with the extended attribute set (forensic), and the
    /// requests of a tenant under incident. As `http.request.header.<name>`, through the
    /// pipeline's redactor and cut to its attribute value limit. Default: none. Invalid names
    /// are ignored.
    ///
    /// The extended attributes are these headers, `http.request.body.size` (from
    /// `Content-Length`) and `http.response.body.size` (the bytes the body sent), beside what
    /// every request records (the client address and the redacted query among them).
    pub fn capture_forensic_request_headers<I, N>(self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let names = header_names(names);
        self.with(|s| s.forensic_headers = names)
    }

    /// Records these request headers on the span as `http.request.header.<name>`, always
    /// through the pipeline's redactor and cut to its attribute value limit. Default: none.
    /// Invalid names are ignored.
    pub fn capture_request_headers<I, N>(self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let names = header_names(names);
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

    /// The methods recorded as themselves in `http.request.method` (and the span name);
    /// every other method is `_OTHER`, with the method as sent in
    /// `http.request.method_original`, and the span is named `HTTP` (`HTTP {route}` with a
    /// route). Matched case-sensitively. Default: `CONNECT`, `DELETE`, `GET`, `HEAD`,
    /// `OPTIONS`, `PATCH`, `POST`, `PUT`, `TRACE`.
    ///
    /// # Errors
    ///
    /// [`KnownMethodsError`] naming the first name that is not a method token (`A-Z`, `a-z`,
    /// digits and ``!#$%&'*+-.^_`|~``, at most 64 bytes), or when more than 64 are given.
    ///
    /// ```
    /// # use stellaops_telemetry_tower::server::ServerTelemetryLayer;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
    /// let layer = ServerTelemetryLayer::new(&telemetry).known_methods(["GET", "POST", "PROPFIND"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn known_methods<I, N>(self, names: I) -> Result<Self, KnownMethodsError>
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let mut known = Vec::new();
        for name in names {
            let name = name.as_ref();
            let valid = !name.is_empty()
                && name.len() <= MAX_METHOD_LEN
                && http::Method::from_bytes(name.as_bytes()).is_ok();
            if !valid || known.len() >= MAX_KNOWN_METHODS {
                return Err(KnownMethodsError {
                    variable: KNOWN_METHODS_VARIABLE,
                    name: name.chars().take(MAX_METHOD_LEN).collect(),
                });
            }
            let Some(interned) = super::route::intern_method(name) else {
                return Err(KnownMethodsError {
                    variable: KNOWN_METHODS_VARIABLE,
                    name: name.to_owned(),
                });
            };
            if !known.contains(&interned) {
                known.push(interned);
            }
        }
        let known: Arc<[&'static str]> = known.into();
        Ok(self.with(|s| s.known_methods = Some(known)))
    }

    /// [`known_methods`](Self::known_methods) from `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`
    /// (comma-separated, case-sensitive) when it is set; unchanged when it is not.
    ///
    /// # Errors
    ///
    /// [`KnownMethodsError`] naming the variable and the malformed name.
    pub fn known_methods_from_env(self) -> Result<Self, KnownMethodsError> {
        match std::env::var(KNOWN_METHODS_VARIABLE) {
            Ok(list) => self.known_methods(list.split(',').map(str::trim)),
            Err(std::env::VarError::NotPresent) => Ok(self),
            Err(std::env::VarError::NotUnicode(_)) => Err(KnownMethodsError {
                variable: KNOWN_METHODS_VARIABLE,
                name: String::from("(not UTF-8)"),
            }),
        }
    }

    /// Believes `Forwarded`, `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// for `client.address`, `url.scheme` and `server.address` / `server.port`. Turn it on
    /// only when every request comes through proxies that set (and overwrite) them: a
    /// client can send them too. Default: off (the connection's peer and the `Host` header).
    pub fn trust_forwarded_headers(self, trust: bool) -> Self {
        self.with(|s| s.trust_forwarded = trust)
    }

    /// Also records the release orchestrator's HTTP family beside the house metrics:
    /// `stella_http_requests_total{method,path,status}` and
    /// `stella_http_request_duration_seconds{method,path}` (the in-flight gauge
    /// `stella_http_requests_in_flight{method}` is always recorded). `path` is the matched
    /// route, `unmatched` when none matched (never the raw path, so the series stay few);
    /// `status` is the HTTP status code sent, `499` when the client went away before one was.
    /// The series are bound once per (method, route, status) and cached like the house
    /// metrics'. Default: off.
    ///
    /// ```
    /// # use stellaops_telemetry_tower::server::ServerTelemetryLayer;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("release-orchestrator").exporters(&[]).stdout_logs(false).build()?;
    /// let layer = ServerTelemetryLayer::new(&telemetry).release_orchestrator_metrics(true);
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn release_orchestrator_metrics(self, on: bool) -> Self {
        self.with(|s| s.metrics = Arc::new(s.metrics.release_orchestrator(on)))
    }

    /// Echoes the server span's `traceparent` in the response. Default: off.
    pub fn echo_traceparent(self, echo: bool) -> Self {
        self.with(|s| s.echo_traceparent = echo)
    }
}

/// The environment variable [`ServerTelemetryLayer::known_methods_from_env`] reads.
pub const KNOWN_METHODS_VARIABLE: &str = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

/// At most this many known methods.
const MAX_KNOWN_METHODS: usize = 64;

/// A known method name is at most this long.
const MAX_METHOD_LEN: usize = 64;

/// A known-methods list held a name that is not an HTTP method token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "known methods ({variable}): `{name}` is not an http method token, or more than 64 were given"
)]
pub struct KnownMethodsError {
    /// The environment variable that holds the list (also named for a list given in code).
    pub variable: &'static str,
    /// The offending name (cut to 64 characters).
    pub name: String,
}

/// The valid header names of `names`, lowercased.
fn header_names<I, N>(names: I) -> Vec<http::HeaderName>
where
    I: IntoIterator<Item = N>,
    N: AsRef<str>,
{
    names
        .into_iter()
        .filter_map(|n| http::HeaderName::try_from(n.as_ref().to_ascii_lowercase()).ok())
        .collect()
}

impl<S> Layer<S> for ServerTelemetryLayer {
    type Service = ServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTelemetry::new(inner, self.shared.clone())
    }
}
