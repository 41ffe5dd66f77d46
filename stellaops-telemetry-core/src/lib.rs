//! StellaOps Telemetry SDK core (work in progress: see the README).

mod config;
mod profile;
mod stats;

pub use config::{
    ConfigError, ENVIRONMENT, EnvVar, ExportersConfig, FilesConfig, LogOutputsConfig,
    OtlpCompression, OtlpConfig, OtlpProtocol, OtlpSignalConfig, PropagatorKind, TelemetryConfig,
};
pub use profile::{
    AttributeSet, ExporterKind, ExporterSelection, LogLevel, Profile, ProfileDifference,
    SamplingMode, SamplingSettings,
};
pub use stats::{PipelineStats, SignalSnapshot, SignalStats, StatsSnapshot};

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;
