//! Redaction: nothing sensitive leaves the process.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{Redactor, REDACTED};
//!
//! let redactor = Redactor::default();
//! assert!(redactor.is_sensitive_key("http.request.header.authorization"));
//! assert_eq!(
//!     redactor.redact_str("GET https://user:pass@registry.invalid/v2/?sig=abc"),
//!     "GET https://REDACTED:REDACTED@registry.invalid/v2/?sig=REDACTED"
//! );
//! ```
//!
//! One [`Redactor`] per pipeline sits on every road a record takes before it leaves the
//! process: spans (name, attributes, events, links, status message) are redacted by the
//! export workers, OTLP log records while the SDK's tracing bridge builds them, JSON log
//! lines at their one field choke point, metric
//! attributes when they are recorded (before aggregation: see [`RedactingMeterProvider`]),
//! resource attributes when the pipeline is built, and captured headers by the tower layer.
//! No exporter or output can be configured around it.
//!
//! A masked value becomes the single marker [`REDACTED`]; the key is kept. In strict
//! (allow-list) mode every attribute whose key is not allowed is dropped. Every redaction and
//! drop is counted per [`Rule`] (the `stellaops_telemetry_redactions_total{rule}` self-metric);
//! the redacted value itself is never logged.

mod metrics;
mod redactor;
mod rules;
mod sensitive;

pub use metrics::RedactingMeterProvider;
pub use redactor::{RedactionError, RedactionSettings, Redactor, Verdict};
pub use rules::{CREDENTIAL_KEYS, DEFAULT_KEYS, REDACTED, Rule, SENSITIVE_QUERY_PARAMETERS};
pub use sensitive::Sensitive;
