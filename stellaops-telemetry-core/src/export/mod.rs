//! Exporters and the processors that feed them.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{FileExportOptions, FileFormat};
//!
//! let options = FileExportOptions::new("./telemetry-data");
//! assert_eq!(options.format, FileFormat::Json);
//! ```
//!
//! Every exporter is reached through the pipeline's own batch processors (bounded queues,
//! counted drops, bounded exports); no exporter can be configured around them.

mod batch;
mod file;
#[cfg(feature = "_otlp")]
mod otlp;
pub(crate) mod record;
#[cfg(all(feature = "otlp-grpc", feature = "otlp-http"))]
mod replay;
mod signal;
mod size;
mod tail;
mod targets;
mod tenant;
#[cfg(feature = "_otlp")]
mod tenant_metrics;

pub use batch::DEFAULT_MAX_QUEUE_BYTES;
pub(crate) use batch::{BatchLogProcessor, BatchSettings, BatchSpanProcessor, SpanSink};
#[cfg(feature = "bundle")]
pub(crate) use file::index;
pub use file::*;
#[cfg(feature = "_otlp")]
pub(crate) use otlp::{
    Egress, OtlpSettings, check_egress, log_exporter as otlp_log_exporter,
    metric_exporter as otlp_metric_exporter, metric_transport as otlp_metric_transport,
    span_exporter as otlp_span_exporter,
};
#[cfg(feature = "cli")]
pub(crate) use replay::{Probe, ReplayTls, Request as ReplayRequest};
#[cfg(all(feature = "otlp-grpc", feature = "otlp-http"))]
pub use replay::{Replay, ReplayError, ReplayProtocol, ReplayReport};
pub(crate) use signal::Signal;
pub use tail::{
    COLLECTOR_DEFAULT_HASH_SALT, ProbabilisticPolicy, TailSamplingLimits, TailSamplingSnapshot,
    sampling_percentage,
};
pub(crate) use tail::{for_profile as tail_sampler, register as register_tail_sampling};
pub(crate) use targets::{LogTarget, MetricKind, MetricTarget, SpanTarget};
#[cfg(all(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) use tenant::TENANT_HEADER;
pub(crate) use tenant::TenantCounts;
#[cfg(feature = "cli")]
pub(crate) use tenant::header_value as tenant_header_value;
