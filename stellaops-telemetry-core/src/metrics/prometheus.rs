//! The Prometheus text exposition: a tower service usable from any router.
//!
//! The pipeline's meter provider gets one more reader (opentelemetry-prometheus) when the
//! profile enables Prometheus scraping; a scrape collects through it, so the exposition holds
//! exactly what OTLP exports: the catalogue, the service's own instruments and the SDK's
//! self-metrics, all redacted. Names are exposed as declared (the dotted semantic-convention
//! names with their unit suffix: `http_server_request_duration_seconds`): unit and `_total`
//! suffixes are not appended again (`stellaops_request_duration_seconds_bucket`, not
//! `…_seconds_seconds_bucket`), and no `otel_scope_*` labels are added, so the labels are
//! exactly the catalogue's.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

/// Semantic-convention metrics as the exporter names them without units, and as exposed.
const SEMCONV_EXPOSED_NAMES: &[(&str, &str)] = &[(
    "http_server_request_duration",
    "http_server_request_duration_seconds",
)];

/// The exposition's Content-Type (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the pipeline's metrics in the Prometheus text format.
#[derive(Clone)]
pub struct PrometheusExposition {
    registry: prometheus::Registry,
}

impl std::fmt::Debug for PrometheusExposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusExposition")
            .finish_non_exhaustive()
    }
}

/// The exposition could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("the Prometheus exposition could not be rendered: {0}")]
pub struct ExpositionError(String);

impl PrometheusExposition {
    /// The exposition and the reader to add to the meter provider.
    pub(crate) fn new() -> Result<
        (
            PrometheusExposition,
            opentelemetry_prometheus::PrometheusExporter,
        ),
        ExpositionError,
    > {
        let registry = prometheus::Registry::new();
        let reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_units()
            .without_counter_suffixes()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| ExpositionError(e.to_string()))?;
        Ok((PrometheusExposition { registry }, reader))
    }

    /// Collects now and renders the text exposition.
    ///
    /// # Errors
    ///
    /// [`ExpositionError`] when the encoder refuses the collected families.
    pub fn render(&self) -> Result<String, ExpositionError> {
        use prometheus::Encoder as _;
        let mut families = self.registry.gather();
        for family in &mut families {
            // Dotted semantic-convention names get their unit suffix, as a collector's
            // Prometheus exporter gives them (the catalogue's names carry theirs already).
            if let Some(exposed) = SEMCONV_EXPOSED_NAMES
                .iter()
                .find_map(|(bare, exposed)| (family.name() == *bare).then_some(*exposed))
            {
                family.set_name(exposed.to_owned());
            }
        }
        let mut out = Vec::with_capacity(4096);
        prometheus::TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(|e| ExpositionError(e.to_string()))?;
        String::from_utf8(out).map_err(|e| ExpositionError(e.to_string()))
    }
}

/// `GET /metrics` as a tower service: the exposition with its Content-Type; 404 when the
/// pipeline has no exposition (the profile does not scrape), 405 for other methods, 500 when
/// rendering fails. It ignores the request path, so mount it where you like.
///
/// ```
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
/// let app: axum::Router = axum::Router::new()
///     .route_service("/metrics", telemetry.metrics_service());
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MetricsService {
    exposition: Option<PrometheusExposition>,
}

impl MetricsService {
    pub(crate) fn new(exposition: Option<PrometheusExposition>) -> Self {
        MetricsService { exposition }
    }

    fn respond(&self, method: &Method) -> Response<String> {
        let plain = |status: StatusCode, body: &str| {
            let mut response = Response::new(body.to_owned());
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        };
        if method != Method::GET && method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(exposition) = &self.exposition else {
            return plain(
                StatusCode::NOT_FOUND,
                "Prometheus exposition is off: enable it with the profile's prometheus_scrape \
                 or TelemetryBuilder::prometheus_scrape(true)\n",
            );
        };
        match exposition.render() {
            Ok(body) => {
                let mut response = Response::new(if method == Method::HEAD {
                    String::new()
                } else {
                    body
                });
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                response
            }
            Err(e) => {
                tracing::warn!(target: "stellaops_telemetry", error = %e, "metrics scrape failed");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "metrics could not be rendered\n",
                )
            }
        }
    }
}

impl<B> tower_service::Service<Request<B>> for MetricsService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.respond(request.method())))
    }
}
