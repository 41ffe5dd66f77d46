//! Structured logs: the house JSON line of SPEC §2.3 and its outputs.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{JsonLogLayer, LogCapture};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let capture = LogCapture::new();
//! let layer = JsonLogLayer::builder("scanner", "1.4.0").output(capture.output()).build();
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || tracing::warn!(queue = "scans", depth = 1200, "queue is deep"));
//! let line = &capture.json()[0];
//! assert_eq!(line["level"], "warn");
//! assert_eq!(line["depth"], 1200);
//! assert_eq!(line["retention"], "90d");
//! ```
//!
//! One JSON object per line, keys in this order: `timestamp` (RFC 3339, UTC, milliseconds),
//! `level` (lowercase), `message`, `service`, `version`, `traceId` and `spanId` (the ids of the
//! exported OTLP span, when the event is inside one), `tenant` (from the nearest span field
//! `tenant.id` or `tenant`), `correlationId` (from `correlation_id`, `correlationId` or
//! `request.id`), `target`, the event's own fields, and `retention` (error 180d, warn 90d,
//! info 30d, debug and trace 7d, raised to the profile's floor). An event field whose name is
//! one of those keys is written as `field.<name>`.
//!
//! Outputs never block the calling thread: stdout and the rotating file are written by a
//! background thread from a bounded queue, and a full queue drops the line and counts it.

mod format;
mod layer;
mod output;
mod rotate;

pub use layer::{JsonLogLayer, JsonLogLayerBuilder, RetentionPolicy};
pub use output::{LogCapture, LogOutput};
pub use rotate::{DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, LogFileError, RotatingFile};
