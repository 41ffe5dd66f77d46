//! StellaOps Telemetry SDK core (work in progress: see the README).

mod stats;

pub use stats::{PipelineStats, SignalSnapshot, SignalStats, StatsSnapshot};

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;
