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
mod otlp;
pub(crate) mod record;
mod replay;
mod size;
mod tail;
mod targets;
mod tenant;
mod tenant_metrics;

pub use batch::DEFAULT_MAX_QUEUE_BYTES;
pub(crate) use batch::{BatchLogProcessor, BatchSettings, BatchSpanProcessor, SpanSink};
pub(crate) use file::index;
pub use file::*;
pub(crate) use otlp::{
    Egress, OtlpSettings, Signal, check_egress, log_exporter as otlp_log_exporter,
    metric_exporter as otlp_metric_exporter, metric_transport as otlp_metric_transport,
    span_exporter as otlp_span_exporter,
};
#[cfg(feature = "cli")]
pub(crate) use replay::{Probe, ReplayTls, Request as ReplayRequest};
pub use replay::{Replay, ReplayError, ReplayProtocol, ReplayReport};
pub use tail::{
    COLLECTOR_DEFAULT_HASH_SALT, ProbabilisticPolicy, TailSamplingLimits, TailSamplingSnapshot,
    sampling_percentage,
};
pub(crate) use tail::{for_profile as tail_sampler, register as register_tail_sampling};
pub(crate) use targets::{LogTarget, MetricKind, MetricTarget, SpanTarget};
#[cfg(feature = "cli")]
pub(crate) use tenant::header_value as tenant_header_value;
pub(crate) use tenant::{TENANT_HEADER, TenantCounts};
