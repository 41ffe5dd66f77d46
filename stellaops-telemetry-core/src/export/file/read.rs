//! Reading segments back: every record of every segment of one signal, in order.

use std::fs;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use serde::de::DeserializeOwned;

use super::segment::list_segments;
use super::{FileExportError, FileFormat};

/// Every `TracesData` record under `dir/traces/`, segment by segment in name order.
///
/// `dir` is the root folder given to the exporters ([`FileExportOptions::dir`]); only
/// segments of `format` are read. A missing `dir/traces/` reads as no records.
///
/// ```
/// # use stellaops_telemetry_core::{FileFormat, read_traces};
/// # let tmp = tempfile::tempdir()?;
/// let traces = read_traces(tmp.path(), FileFormat::Json)?;
/// assert!(traces.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`FileExportError::Read`] when a folder or file cannot be read,
/// [`FileExportError::Json`] or [`FileExportError::Protobuf`] naming the file and position of
/// the first record that does not decode.
///
/// [`FileExportOptions::dir`]: super::FileExportOptions::dir
pub fn read_traces(dir: &Path, format: FileFormat) -> Result<Vec<TracesData>, FileExportError> {
    read_signal(dir, "traces", format)
}

/// Every `LogsData` record under `dir/logs/`, segment by segment in name order.
///
/// Reads like [`read_traces`].
///
/// ```
/// # use stellaops_telemetry_core::{FileFormat, read_logs};
/// # let tmp = tempfile::tempdir()?;
/// let logs = read_logs(tmp.path(), FileFormat::Protobuf)?;
/// assert!(logs.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As for [`read_traces`].
pub fn read_logs(dir: &Path, format: FileFormat) -> Result<Vec<LogsData>, FileExportError> {
    read_signal(dir, "logs", format)
}

/// Every `MetricsData` record under `dir/metrics/`, segment by segment in name order.
///
/// Reads like [`read_traces`].
///
/// ```
/// # use stellaops_telemetry_core::{FileFormat, read_metrics};
/// # let tmp = tempfile::tempdir()?;
/// let metrics = read_metrics(tmp.path(), FileFormat::Json)?;
/// assert!(metrics.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As for [`read_traces`].
pub fn read_metrics(dir: &Path, format: FileFormat) -> Result<Vec<MetricsData>, FileExportError> {
    read_signal(dir, "metrics", format)
}

fn read_signal<M>(dir: &Path, signal: &str, format: FileFormat) -> Result<Vec<M>, FileExportError>
where
    M: prost::Message + Default + DeserializeOwned,
{
    let signal_dir = dir.join(signal);
    if !signal_dir.exists() {
        return Ok(Vec::new());
    }
    let segments = list_segments(&signal_dir, signal, format.extension()).map_err(|source| {
        FileExportError::Read {
            path: signal_dir.clone(),
            source,
        }
    })?;
    let mut messages = Vec::new();
    for path in segments {
        let bytes = fs::read(&path).map_err(|source| FileExportError::Read {
            path: path.clone(),
            source,
        })?;
        match format {
            FileFormat::Json => {
                for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let message =
                        serde_json::from_slice(line).map_err(|source| FileExportError::Json {
                            path: path.clone(),
                            line: index + 1,
                            source,
                        })?;
                    messages.push(message);
                }
            }
            FileFormat::Protobuf => {
                let mut rest = bytes.as_slice();
                while !rest.is_empty() {
                    let offset = bytes.len() - rest.len();
                    let message = M::decode_length_delimited(&mut rest).map_err(|source| {
                        FileExportError::Protobuf {
                            path: path.clone(),
                            offset,
                            source,
                        }
                    })?;
                    messages.push(message);
                }
            }
        }
    }
    Ok(messages)
}

/// The segment files of `signal` (`traces`, `metrics` or `logs`) under the telemetry
/// directory `dir`, oldest first; empty when there are none.
pub fn segment_files(dir: &Path, signal: &str, format: FileFormat) -> Vec<PathBuf> {
    list_segments(&dir.join(signal), signal, format.extension()).unwrap_or_default()
}
