//! The server layer: one `http.request` span per request, strict W3C trace context in,
//! tenant and request id, and the request metrics from one clock.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_tower::server::{ServerTelemetryLayer, Tenant};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
//! async fn scan(tenant: Option<axum::Extension<Tenant>>) -> String {
//!     format!("tenant: {:?}", tenant.map(|t| t.0.as_str().to_owned()))
//! }
//! let app: axum::Router = axum::Router::new()
//!     .route("/scans/{id}", axum::routing::get(scan))
//!     .layer(ServerTelemetryLayer::new(&telemetry));
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! Per request:
//!
//! - **Trace context** comes from the pipeline's propagators (`OTEL_PROPAGATORS`, by default
//!   `traceparent` / `tracestate` / `baggage` parsed strictly; `b3`, `b3multi` and `jaeger` too, see
//!   [`Propagators`](crate::propagation::Propagators)). A malformed header starts a new trace;
//!   it never fails the request. Under a disabled SDK (`OTEL_SDK_DISABLED=true`) nothing is
//!   recorded and the received context is passed on unchanged. What the client layer sends on is kept in the request's
//!   [`RequestContext`](stellaops_telemetry_core::RequestContext) as a
//!   [`PropagatedTraceContext`](crate::propagation::PropagatedTraceContext): the whole
//!   validated `tracestate` and the random flag, whether or not the span is sampled.
//! - **The span** `http.request` has the OpenTelemetry display name `{method} {route}` and the
//!   stable HTTP semantic-convention attributes. Status codes are integers. On the server a
//!   5xx is an error and a 4xx is not. A request no route matched has no `http.route` and is
//!   named by its method alone; a method outside the known ones
//!   ([`ServerTelemetryLayer::known_methods`]) is `_OTHER` with
//!   `http.request.method_original`, and its span is named `HTTP` (`HTTP {route}`).
//! - **Failures:** a panic of the handler is a 500 with `error.type` [`PANIC`], recorded and
//!   then resumed (never swallowed). A client that goes away, before the response head or in
//!   the middle of the body, is an error with `error.type` [`ABORTED`]; before the head no
//!   status code is recorded (`stellaops_request_total` counts it under [`CLIENT_CLOSED`]).
//! - **Addresses:** `url.query` (redacted), `network.protocol.version`, and from the
//!   connection (axum's `ConnectInfo<SocketAddr>`) `client.address`, `network.peer.address`
//!   and `network.peer.port`. Proxies' `Forwarded` / `X-Forwarded-*` headers count only after
//!   [`ServerTelemetryLayer::trust_forwarded_headers`]. The layer records it directly: the pipeline's sampler
//!   decides, and the finished span joins the pipeline's span queue (same redaction, bounds and
//!   counts) without a detour through tracing-opentelemetry. The request's OpenTelemetry
//!   context (its span, baggage and a
//!   [`RequestContext`](stellaops_telemetry_core::RequestContext) with tenant and request id)
//!   is attached while the handler runs and while its body streams, so the spans opened in the
//!   handler are its children and its log lines carry its ids, tenant and correlation id. A
//!   tracing span of the same name (target
//!   [`DIRECT_SPAN_TARGET`](stellaops_telemetry_core::DIRECT_SPAN_TARGET)) is opened for
//!   subscribers of the service's own; the pipeline's layers skip it.
//! - **The route** comes from the [`MakeRoute`] hook, else axum's `MatchedPath`, else a
//!   [`ReportedRoute`] in the response (a service mounted with `nest_service` names its own),
//!   else none ([`UNMATCHED_ROUTE`] in the house metrics). The raw path is never a metric
//!   label.
//! - **Tenant:** a valid `X-StellaOps-Tenant` becomes `tenant.id` on the span and in the JSON
//!   log context, and reaches handlers as a [`Tenant`] extension. An invalid one is never
//!   recorded.
//! - **Request id:** a valid `x-request-id` is kept, otherwise one is generated
//!   ([`MakeRequestId`]). It is echoed in the response, becomes `correlationId` in the JSON
//!   log lines, and reaches handlers through [`RequestId::current`] (an axum extractor too).
//! - **Metrics:** `stellaops_request_duration_seconds{service,endpoint}`,
//!   `stellaops_request_total{service,status}`, `stella_http_requests_in_flight{method}` and
//!   `http.server.request.duration` (exposed to Prometheus as
//!   `http_server_request_duration_seconds`); with
//!   [`ServerTelemetryLayer::release_orchestrator_metrics`], also the release orchestrator's
//!   `stella_http_requests_total{method,path,status}` and
//!   `stella_http_request_duration_seconds{method,path}` (`path` is the route). All come from
//!   one clock, read when the response body ends, so the **duration covers the body stream**.
//! - **gRPC (tonic):** a request with content type `application/grpc` gets `rpc.system =
//!   "grpc"`, and `rpc.service` / `rpc.method` from its path `/pkg.Service/Method`. Its
//!   `grpc-status` (from the head or the trailers) becomes the `status` label and
//!   `rpc.grpc.status_code`. UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
//!   UNAVAILABLE and DATA_LOSS are span errors. The span keeps its HTTP name.
//!
//! The layer never alters a response because telemetry failed. It never buffers a body. It
//! passes the inner service's error through untouched.

mod attributes;
mod future;
mod layer;
mod metrics;
mod request_id;
mod route;
mod service;
mod tenant;

pub use future::{ABORTED, CLIENT_CLOSED, PANIC, ResponseBody, ResponseFuture};
pub use layer::{KNOWN_METHODS_VARIABLE, KnownMethodsError, ServerTelemetryLayer};
pub use request_id::{DefaultMakeRequestId, MakeRequestId, REQUEST_ID_HEADER, RequestId};
pub(crate) use route::method_label;
pub use route::{DefaultMakeRoute, MakeRoute, ReportedRoute, UNMATCHED_ROUTE};
pub use service::ServerTelemetry;
pub(crate) use tenant::TENANT_HEADER_NAME;
pub use tenant::{MAX_TENANT_LEN, TENANT_HEADER, Tenant};
