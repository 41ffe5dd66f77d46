//! Strict W3C Trace Context (Level 1 and 2) and W3C Baggage, and the configured propagators
//! (`OTEL_PROPAGATORS`): the core crate's [`propagation`](stellaops_telemetry_core::propagation)
//! module, which the layers and the global propagator `install()` registers share.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use stellaops_telemetry_tower::propagation::extract;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
//! assert!(extract(&headers).is_sampled());
//! ```

pub use stellaops_telemetry_core::propagation::*;
