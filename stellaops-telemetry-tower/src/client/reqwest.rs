//! [`ReqwestTelemetryMiddleware`]: the client layer's span and injection for reqwest, as a
//! `reqwest_middleware` middleware.

use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use stellaops_telemetry_core::Redactor;
use stellaops_telemetry_core::propagation::Propagators;
use tracing::Instrument as _;

use super::layer::inject_with;
use super::span::{ClientSpan, Outgoing};
use crate::server::Tenant;

/// A [`reqwest_middleware::Middleware`] that does for a reqwest client what
/// [`ClientTelemetryLayer`](super::ClientTelemetryLayer) does for a tower one: the
/// `http.client.request` span with the same attributes and status rules, and the propagators'
/// headers and `X-StellaOps-Tenant` injected into the request.
///
/// The tenant comes from a [`Tenant`] in the middleware chain's extensions
/// (`RequestBuilder::with_extension`), else from the context the server layer set up for the
/// request being handled. The span ends when the response head arrives.
///
/// ```
/// use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
/// use reqwest_middleware::reqwest::Client;
/// use stellaops_telemetry_core::Telemetry;
/// use stellaops_telemetry_tower::client::ReqwestTelemetryMiddleware;
///
/// fn traced(client: Client, telemetry: &Telemetry) -> ClientWithMiddleware {
///     ClientBuilder::new(client)
///         .with(ReqwestTelemetryMiddleware::new()
///             .redactor(telemetry.redactor().clone())
///             .propagators(telemetry.propagators()))
///         .build()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReqwestTelemetryMiddleware {
    redactor: Redactor,
    /// `None`: the installed pipeline's ([`Propagators::installed`]), read per request.
    propagators: Option<Propagators>,
}

impl ReqwestTelemetryMiddleware {
    /// A middleware with the default redaction rules for `url.full` and the installed
    /// pipeline's propagators.
    pub fn new() -> Self {
        ReqwestTelemetryMiddleware::default()
    }

    /// The redactor `url.full` passes (the pipeline's: `telemetry.redactor().clone()`).
    /// Default: the default redaction rules.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The propagators that write the trace context and baggage (the pipeline's:
    /// `telemetry.propagators()`). Default: those of the installed pipeline
    /// ([`Propagators::installed`]; `tracecontext,baggage` when none is installed).
    pub fn propagators(mut self, propagators: Propagators) -> Self {
        self.propagators = Some(propagators);
        self
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestTelemetryMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url();
        let client_span = ClientSpan::open(
            &Outgoing {
                method: request.method(),
                host: url.host_str(),
                port: url.port_or_known_default(),
                url: Some(url.as_str()),
                path: url.path(),
                headers: request.headers(),
            },
            &self.redactor,
        );
        let propagators = self.propagators.unwrap_or_else(Propagators::installed);
        let tenant = extensions.get::<Tenant>();
        inject_with(
            propagators,
            &client_span.span,
            tenant,
            request.headers_mut(),
        );
        let result = next
            .run(request, extensions)
            .instrument(client_span.span.clone())
            .await;
        match &result {
            Ok(response) => client_span.on_response(response.status(), response.headers()),
            Err(_) => client_span.on_failure(),
        }
        result
    }
}
