//! Endpoints as plain tower services, usable from any router (axum, a bare hyper server, …).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use stellaops_telemetry_tower::services::Health;
//!
//! let health = Health::builder("1.4.2")
//!     .check("database", || async { Ok::<(), String>(()) })
//!     .check_with_timeout("vault", Duration::from_millis(200), || async {
//!         Err::<(), _>("sealed")
//!     })
//!     .build();
//! let app: axum::Router = axum::Router::new().nest_service("/health", health);
//! ```
//!
//! Each service answers `Response<String>` (a [`String`] is an `http_body::Body`) with
//! error type [`Infallible`](std::convert::Infallible), never reads the request body and
//! accepts any body type.

mod health;

pub use health::{CheckResult, Health, HealthBuilder, ResponseFuture};
