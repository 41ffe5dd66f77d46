//! Metrics: the house catalogue as typed handles, the naming rules, per-metric cardinality
//! limits, and the Prometheus exposition.
//!
//! ```
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! // Bind a fixed label set once; the hot path is one atomic add.
//! let ok = telemetry
//!     .metrics()
//!     .counter(&STELLAOPS_REQUEST_TOTAL)
//!     .bind(RequestTotalLabels { service: "scanner", status: "200" });
//! ok.inc();
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! The catalogue is enforced by the compiler. A misspelled label does not compile:
//!
//! ```compile_fail,E0560
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL)
//!     .add(1, RequestTotalLabels { service: "scanner", stauts: "200" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! nor does a missing one:
//!
//! ```compile_fail,E0063
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL)
//!     .add(1, RequestTotalLabels { service: "scanner" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! nor an extra one:
//!
//! ```compile_fail,E0560
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL)
//!     .add(1, RequestTotalLabels { service: "scanner", status: "200", tenant: "acme" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! nor another metric's labels:
//!
//! ```compile_fail,E0308
//! use stellaops_telemetry_core::metrics::catalogue::{QueueDepthLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL)
//!     .add(1, QueueDepthLabels { queue: "scans" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! nor a misspelled metric:
//!
//! ```compile_fail,E0432
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUESTS_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().counter(&STELLAOPS_REQUESTS_TOTAL)
//!     .add(1, RequestTotalLabels { service: "scanner", status: "200" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! nor a counter used as a histogram:
//!
//! ```compile_fail,E0308
//! use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! telemetry.metrics().histogram(&STELLAOPS_REQUEST_TOTAL)
//!     .record(0.1, RequestTotalLabels { service: "scanner", status: "200" });
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```

pub mod catalogue;
mod declare;
mod descriptor;
pub mod naming;
pub mod semconv;

pub use descriptor::{
    CounterDef, GaugeDef, HistogramDef, LabelValues, Labels, MetricDescriptor, MetricKind,
    UpDownCounterDef, label_name,
};
mod registry;

pub(crate) use registry::set_global;
pub use registry::{
    BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter, Counter,
    DEFAULT_CARDINALITY_LIMIT, Gauge, Histogram, Metrics, OVERFLOW_ATTRIBUTE, UpDownCounter,
    global,
};
#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg(feature = "prometheus")]
pub use prometheus::{CONTENT_TYPE, ExpositionError, MetricsService, PrometheusExposition};
