//! The client span and its rules, shared by every client integration (the tower layer, the
//! reqwest middleware): what it is named, what it records about the request, and how the
//! response or the failure ends it.

use stellaops_telemetry_core::Redactor;
use tracing::Span;
use tracing::field::Empty;

use crate::grpc;

/// What the client span is opened from: the outgoing request, whichever client sends it.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a http::Method,
    /// The host, brackets of an IPv6 literal included or not.
    pub(crate) host: Option<&'a str>,
    /// The port, the scheme's default when the URL names none.
    pub(crate) port: Option<u16>,
    /// The absolute URL (`None` for a request that names only its path).
    pub(crate) url: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a http::HeaderMap,
}

/// An open client span: the tracing span, and whether the call is gRPC.
pub(crate) struct ClientSpan {
    pub(crate) span: Span,
    pub(crate) grpc: bool,
}

impl ClientSpan {
    /// Opens `http.client.request` under the current span, with the request's attributes
    /// (`url.full` through `redactor`), and the `rpc.*` ones for a gRPC call.
    pub(crate) fn open(request: &Outgoing<'_>, redactor: &Redactor) -> ClientSpan {
        let method = crate::server::method_label(request.method);
        let span = tracing::info_span!(
            "http.client.request",
            otel.name = method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method,
            server.address = Empty,
            server.port = Empty,
            url.full = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            rpc.system = Empty,
            rpc.service = Empty,
            rpc.method = Empty,
            rpc.grpc.status_code = Empty,
        );
        if let Some(host) = request.host {
            span.record(
                "server.address",
                host.trim_start_matches('[').trim_end_matches(']'),
            );
        }
        if let Some(port) = request.port {
            span.record("server.port", i64::from(port));
        }
        if let Some(url) = request.url {
            span.record("url.full", &*redactor.redact_str(url));
        }
        let grpc = grpc::is_grpc(request.headers);
        if grpc {
            span.record(grpc::RPC_SYSTEM, "grpc");
            if let Some((service, method)) = grpc::service_and_method(request.path) {
                span.record(grpc::RPC_SERVICE, service);
                span.record(grpc::RPC_METHOD, method);
            }
        }
        ClientSpan { span, grpc }
    }

    /// Records the response head: its status code; 4xx and 5xx are errors on a client. For a
    /// gRPC call, a `grpc-status` in the head (a trailers-only response) is
    /// `rpc.grpc.status_code`, and any code but OK (0) is an error.
    pub(crate) fn on_response(&self, status: http::StatusCode, headers: &http::HeaderMap) {
        let status = status.as_u16();
        self.span
            .record("http.response.status_code", i64::from(status));
        let mut code = itoa::Buffer::new();
        if status >= 400 {
            self.span.record("otel.status_code", "ERROR");
            self.span.record("error.type", code.format(status));
            return;
        }
        if self.grpc
            && let Some(grpc_status) = grpc::status(headers)
        {
            self.span
                .record(grpc::RPC_GRPC_STATUS_CODE, i64::from(grpc_status));
            if grpc_status != 0 {
                self.span.record("otel.status_code", "ERROR");
                self.span.record("error.type", code.format(grpc_status));
            }
        }
    }

    /// Records a request that got no response (connection refused, timeout, …).
    pub(crate) fn on_failure(&self) {
        self.span.record("otel.status_code", "ERROR");
        self.span.record("error.type", "_OTHER");
    }
}
