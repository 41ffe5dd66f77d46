//! Tower middleware for StellaOps services: the server layer (the `http.request` span, strict
//! W3C trace context, tenant, request id and request metrics), the client layer (trace
//! context, baggage and tenant injected into outgoing requests) and the health endpoints.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_tower::{client::ClientTelemetryLayer, server::ServerTelemetryLayer, services::Health};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/scans/{id}", axum::routing::get(|| async { "ok" }))
//!     .route_service("/metrics", telemetry.metrics_service())
//!     .nest_service("/health", Health::for_telemetry(&telemetry).build())
//!     .layer(ServerTelemetryLayer::new(&telemetry));
//! let client = tower::ServiceBuilder::new()
//!     .layer(ClientTelemetryLayer::new().redactor(telemetry.redactor().clone()))
//!     .service(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
//!         .build_http::<http_body_util::Empty<hyper::body::Bytes>>());
//! # let _ = (app, client);
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`server`] | `ServerTelemetryLayer`: span, trace context in, tenant, request id, request metrics (the release orchestrator's `stella_http_*` family with `release_orchestrator_metrics(true)`) |
//! | [`client`] | `ClientTelemetryLayer`: client span, trace context, baggage and tenant out |
//! | [`propagation`] | the strict W3C Trace Context (Level 1 and 2) and Baggage parser and writer |
//! | [`services`] | `/health`, `/health/ready`, `/health/live` |
//! | [`control`] | the control plane (profiles, incident mode, forensic exports) and the bearer-token guard |

// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod control;
mod grpc;
pub mod propagation;
pub mod server;
pub mod services;
