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
//! reqwest's blocking and async clients are not tower services. Use a tower stack over
//! hyper-util as above, or call [`inject_headers`] on a `reqwest::RequestBuilder`'s headers
//! inside your own span.
//!
//! Per request:
//!
//! - A tracing span `http.client.request` opens under the current span, with display name
//!   `{method}`, kind client, and the attributes `http.request.method`, `server.address`,
//!   `server.port`, `url.full` (redacted), `http.response.status_code` and `error.type`.
//!   On a client, 4xx and 5xx are errors.
//! - The request gets the headers of the installed pipeline's propagators
//!   ([`ClientTelemetryLayer::propagators`] to choose them; by default `traceparent`,
//!   `tracestate` and `baggage`) from the client span's context:
//!   the trace context the server layer received, continued by the client span
//!   ([`PropagatedTraceContext::current`](crate::propagation::PropagatedTraceContext::current)).
//! - It gets `X-StellaOps-Tenant` from a [`Tenant`](crate::server::Tenant) request
//!   extension, or from the context the server layer set up for the request being handled.

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::{ClientTelemetry, ClientTelemetryLayer, inject_headers};
