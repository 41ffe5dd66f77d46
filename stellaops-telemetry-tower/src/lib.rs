//! Tower middleware for StellaOps services: one `http.request` span and the house request
//! metrics per request.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_tower::RequestTelemetryLayer;
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
//! let layer = RequestTelemetryLayer::new("scanner", telemetry.metrics());
//! let app: axum::Router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .layer(layer);
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! This is the foundation's small layer; strict W3C extraction, tenant handling, the client
//! layer and health endpoints come with the tower issue.

pub mod propagation;
mod request;

pub use request::{RequestTelemetry, RequestTelemetryLayer, ResponseFuture, TENANT_HEADER};
