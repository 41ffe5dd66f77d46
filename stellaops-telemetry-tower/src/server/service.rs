//! [`ServerTelemetry`]: what happens when a request comes in.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tower::Service;
use tracing::field::Empty;

use super::future::{Completion, ResponseFuture};
use super::layer::Shared;
use super::request_id;
use super::route::{DefaultMakeRoute, MakeRoute as _, UNMATCHED_ROUTE, method_label};
use super::tenant::{self, TenantHeader};
use crate::propagation;

/// A service that records each request: see [`ServerTelemetryLayer`](super::ServerTelemetryLayer).
#[derive(Clone)]
pub struct ServerTelemetry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for ServerTelemetry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTelemetry").finish_non_exhaustive()
    }
}

impl<S> ServerTelemetry<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        ServerTelemetry { inner, shared }
    }
}

fn unmatched() -> Arc<str> {
    static UNMATCHED: OnceLock<Arc<str>> = OnceLock::new();
    UNMATCHED.get_or_init(|| Arc::from(UNMATCHED_ROUTE)).clone()
}

/// `server.address` and `server.port` from the `Host` header, else the URI's authority.
fn server_address<B>(request: &http::Request<B>) -> (Option<&str>, Option<u16>) {
    let authority = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let Some(authority) = authority else {
        return (None, None);
    };
    // `[::1]:8080`, `host:8080`, `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, None),
    };
    (
        Some(host.trim_start_matches('[').trim_end_matches(']')),
        port,
    )
}

/// Whether the request is gRPC (tonic): its status is then the `grpc-status`.
fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl<S, B, RB> Service<http::Request<B>> for ServerTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = http::Response<super::ResponseBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let method = method_label(request.method());
        let route: Arc<str> = shared
            .make_route
            .make_route(request.method(), request.uri(), request.extensions())
            .or_else(|| {
                DefaultMakeRoute.make_route(request.method(), request.uri(), request.extensions())
            })
            .map(Arc::from)
            .unwrap_or_else(unmatched);
        let scheme = if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            "https"
        } else {
            "http"
        };
        let request_id = request_id::read(request.headers())
            .unwrap_or_else(|| shared.make_request_id.make_request_id());
        let span = tracing::info_span!(
            "http.request",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = &*route,
            url.path = request.uri().path(),
            url.scheme = scheme,
            server.address = Empty,
            server.port = Empty,
            user_agent.original = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            rpc.grpc.status_code = Empty,
            tenant.id = Empty,
            request.id = request_id.as_str(),
        );
        let (address, port) = server_address(&request);
        if let Some(address) = address {
            span.record("server.address", address);
        }
        if let Some(port) = port {
            span.record("server.port", i64::from(port));
        }
        if let Some(ua) = request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            span.record("user_agent.original", ua);
        }

        // Trace context in: a malformed header starts a new trace, it never fails the request.
        let mut parent = propagation::extract(request.headers())
            .into_context(&stellaops_telemetry_core::opentelemetry::Context::new());
        match tenant::read(request.headers()) {
            TenantHeader::Valid(tenant) => {
                span.record("tenant.id", tenant.as_str());
                parent = parent.with_value(tenant.clone());
                request.extensions_mut().insert(tenant);
            }
            TenantHeader::Invalid => {
                tracing::debug!(
                    target: "stellaops_telemetry",
                    parent: &span,
                    "X-StellaOps-Tenant refused: not 1-128 characters of A-Z a-z 0-9 . _ - @ :"
                );
            }
            TenantHeader::Absent => {}
        }
        let _ = span.set_parent(parent);
        request.extensions_mut().insert(request_id.clone());

        for name in &shared.captured_headers {
            let values: Vec<stellaops_telemetry_core::opentelemetry::StringValue> = request
                .headers()
                .get_all(name)
                .iter()
                .map(|v| {
                    shared
                        .redactor
                        .redact_header(name.as_str(), v.as_bytes())
                        .into_owned()
                        .into()
                })
                .collect();
            if !values.is_empty() {
                span.set_attribute(
                    format!("http.request.header.{}", name.as_str()),
                    stellaops_telemetry_core::opentelemetry::Value::Array(
                        stellaops_telemetry_core::opentelemetry::Array::String(values),
                    ),
                );
            }
        }

        let in_flight = shared.metrics.in_flight(method);
        in_flight.add(1);
        let grpc = is_grpc(&request);
        let future = span.in_scope(|| self.inner.call(request));
        ResponseFuture::new(
            future,
            Completion::new(
                Arc::clone(shared),
                span,
                start,
                method,
                route,
                scheme,
                grpc,
                in_flight,
                request_id,
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_handles_ipv6_and_missing_ports() {
        let req = |host: &str| {
            http::Request::builder()
                .header("host", host)
                .body(())
                .unwrap()
        };
        assert_eq!(
            server_address(&req("[::1]:8080")),
            (Some("::1"), Some(8080))
        );
        assert_eq!(
            server_address(&req("scanner.internal")),
            (Some("scanner.internal"), None)
        );
        assert_eq!(server_address(&req("[::1]")), (Some("::1"), None));
        assert_eq!(server_address(&req("h:99999")), (Some("h"), None));
    }
}
