//! The house JSON log: one JSON object per line, to stdout or a size-rotated file.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let stats = Arc::new(SignalStats::default());
//! let stdout = LogOutput::stdout(stats.clone())?;
//! let subscriber = tracing_subscriber::registry()
//!     .with(JsonLogLayer::new("scanner").service_version("1.4.2").output(stdout));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(findings = 17u64, "scan finished");
//! });
//! # Ok::<(), stellaops_telemetry_core::LogOutputError>(())
//! ```
//!
//! A line looks like this (wrapped here):
//!
//! ```text
//! {"timestamp":"2026-01-09T10:30:00.123Z","level":"info","message":"scan finished",
//!  "service":"scanner","version":"1.4.2","traceId":"4bf92f3577b34da6a3ce929d0e0e4736",
//!  "spanId":"00f067aa0ba902b7","tenant":"acme","correlationId":"req-7","target":"scanner::scan",
//!  "findings":17,"retention":"30d"}
//! ```
//!
//! [`JsonLogLayer`] encodes each event into a reused per-thread buffer and hands the line to its
//! [`LogOutput`]s. Queued outputs ([`LogOutput::stdout`], [`LogOutput::file`] over a
//! [`RotatingFile`], [`LogOutput::writer`]) never block the caller: a full queue drops the line
//! and counts it in the output's [`SignalStats`](crate::SignalStats).

mod bridge;
mod format;
mod layer;
mod output;
mod rotate;

use std::io;
use std::path::PathBuf;

pub(crate) use bridge::LogBridge;
pub use layer::{JsonLogLayer, RetentionPolicy};
pub(crate) use layer::{capture_context_fields, span_tenant, update_context_fields};
#[cfg(feature = "testing")]
pub use output::LogCapture;
pub use output::LogOutput;
pub use rotate::RotatingFile;

/// Why a log output could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogOutputError {
    /// The log file could not be opened or created.
    #[error("cannot open log file `{}`", path.display())]
    OpenFile {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Rotation limits of zero.
    #[error(
        "log rotation needs at least one file of at least one byte, got {max_files} files of {max_bytes} bytes"
    )]
    InvalidRotation {
        /// The size limit asked for.
        max_bytes: u64,
        /// The file count asked for.
        max_files: usize,
    },
    /// The writer thread could not be started.
    #[error("cannot start the log writer thread")]
    SpawnWriter(#[source] io::Error),
}
