//! StellaOps Telemetry SDK core (work in progress: see the README).

mod bootstrap;
mod clock;
mod config;
mod export;
mod logs;
mod profile;
mod resource;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;

pub use bootstrap::{
    DEFAULT_SHUTDOWN_TIMEOUT, Telemetry, TelemetryBuilder, TelemetryError, TelemetryGuard,
};
pub use config::{
    ConfigError, ENVIRONMENT, EnvVar, ExportersConfig, FilesConfig, LogOutputsConfig,
    OtlpCompression, OtlpConfig, OtlpProtocol, OtlpSignalConfig, PropagatorKind, TelemetryConfig,
};
pub use export::*;
pub use logs::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, JsonLogLayer, JsonLogLayerBuilder, LogCapture,
    LogFileError, LogOutput, RetentionPolicy, RotatingFile,
};
pub use profile::{
    AttributeSet, ExporterKind, ExporterSelection, LogLevel, Profile, ProfileDifference,
    SamplingMode, SamplingSettings,
};
pub use stats::{PipelineStats, SignalSnapshot, SignalStats, StatsSnapshot};

#[doc(hidden)]
pub use stellaops_telemetry_macros as __macros;

pub use opentelemetry;
pub use opentelemetry_proto;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;
