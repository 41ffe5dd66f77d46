//! [`TelemetryError`]: what `build()` and `install()` refuse, each naming what was wrong.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::egress::EgressError;
use crate::logs::LogOutputError;

/// Errors from `build()` and `install()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// A configuration value is wrong; the error names it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The local telemetry directory or a log file cannot be created.
    #[error("cannot create `{}`", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A background thread or the export runtime cannot be started.
    #[error("cannot start the telemetry {what}")]
    Thread {
        /// What could not start.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exporter cannot create its directory under the telemetry directory.
    #[error(transparent)]
    FileExport(#[from] crate::export::FileExportError),
    /// A JSON log output (stdout or the log file) cannot be opened or started.
    #[error(transparent)]
    LogOutput(#[from] LogOutputError),
    /// A malformed egress allow-list entry.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// A malformed redaction rule or allow-list entry.
    #[error(transparent)]
    Redaction(#[from] crate::redaction::RedactionError),
    /// A value limit too small to be useful.
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
    /// `install()` found a global tracing dispatcher already set.
    #[error("a global tracing subscriber is already installed; use build() for a second pipeline")]
    AlreadyInstalled,
    /// `install()` found one of the process-wide slots it fills already taken.
    #[error("the global {what} is already set; use build() for a second pipeline")]
    GlobalInUse {
        /// Which global.
        what: &'static str,
    },
    /// A filter of the subscriber (the `RUST_LOG` directives) that cannot be used.
    #[error(transparent)]
    Subscriber(#[from] crate::controls::ControlError),
    /// The Prometheus exposition could not be set up.
    #[cfg(feature = "prometheus")]
    #[error(transparent)]
    Exposition(#[from] crate::metrics::ExpositionError),
}
