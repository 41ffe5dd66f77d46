//! The client layer: a client span per outgoing request, and the trace context, baggage and
//! tenant injected into it.
//!
//! # Example
//!
//! With a hyper-util client:
//!
//! ```
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use stellaops_telemetry_tower::client::ClientTelemetryLayer;
//! use tower::ServiceBuilder;
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let client = ServiceBuilder::new().layer(ClientTelemetryLayer::new()).service(client);
//! # let _ = client;
//! ```
//!
//! reqwest's clients are not tower services. With the `reqwest-middleware` feature,
//! `ReqwestTelemetryMiddleware` gives a `reqwest_middleware::ClientWithMiddleware` the same
//! span and headers. Otherwise use a tower stack over hyper-util as above, or call
//! [`inject_headers`] on a `reqwest::RequestBuilder`'s headers inside your own span.
//!
//! A tonic channel is a tower service: wrap it in the layer
//! (`ServiceBuilder::new().layer(ClientTelemetryLayer::new()).service(channel)`) and hand that
//! to the generated client. With the `tonic` feature, `GrpcTelemetryInterceptor` injects the
//! headers into the call's metadata without a client span.
//!
//! Per request:
//!
//! - A tracing span `http.client.request` opens under the current span, with display name
//!   `{method}`, kind client, and the attributes `http.request.method`, `server.address`,
//!   `server.port`, `url.full` (redacted), `http.response.status_code` and `error.type`.
//!   On a client, 4xx and 5xx are errors.
//! - A gRPC call (`application/grpc`) also gets `rpc.system = "grpc"`, `rpc.service` and
//!   `rpc.method` (from the path `/pkg.Service/Method`) and `rpc.grpc.status_code`. The span
//!   ends when the response head arrives, so the status is read from the head only: a
//!   trailers-only response (how a server answers a call that fails before any message,
//!   tonic's unary errors among them) carries it there, and any code but OK is an error. A
//!   status sent in the trailers after the messages (every successful call, a stream that
//!   fails midway) is not waited for: the span then has no `rpc.grpc.status_code`. A
//!   generated client made with `new(channel)` sends paths without an origin; make it with
//!   `with_origin(channel, uri)` for `server.address`, `server.port` and `url.full`.
//! - The request gets the headers of the installed pipeline's propagators
//!   ([`ClientTelemetryLayer::propagators`] to choose them; by default `traceparent`,
//!   `tracestate` and `baggage`) from the client span's context:
//!   the trace context the server layer received, continued by the client span
//!   ([`PropagatedTraceContext::current`](crate::propagation::PropagatedTraceContext::current)).
//! - It gets `X-StellaOps-Tenant` from a [`Tenant`](crate::server::Tenant) request
//!   extension, or from the context the server layer set up for the request being handled.

mod future;
#[cfg(feature = "tonic")]
mod grpc;
mod layer;
#[cfg(feature = "reqwest-middleware")]
mod reqwest;
mod span;

pub use future::ResponseFuture;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use grpc::GrpcTelemetryInterceptor;
pub use layer::{ClientTelemetry, ClientTelemetryLayer, inject_headers};
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub use reqwest::ReqwestTelemetryMiddleware;
