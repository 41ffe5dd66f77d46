//! The file exporter: all three signals as OTLP under the local telemetry directory.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{FileExportOptions, FileFormat, read_traces};
//!
//! let dir = std::env::temp_dir().join("stellaops-file-exporter-doc");
//! let options = FileExportOptions::new(&dir);
//! let traces = read_traces(&dir, options.format)?; // no segment yet: empty
//! assert!(traces.iter().all(|t| !t.resource_spans.is_empty()));
//! # Ok::<(), stellaops_telemetry_core::FileExportError>(())
//! ```
//!
//! # Layout
//!
//! `<dir>/traces/`, `<dir>/metrics/` and `<dir>/logs/` hold segment files named
//! `<signal>-<UTC YYYYMMDDTHHMMSSZ>-<sequence, 6 digits>.<ext>`; names sort chronologically.
//! A new segment starts when the next record would push the current one past
//! `max_segment_bytes` (a single larger record gets a segment of its own) or when the current
//! one is older than `max_segment_age`. With `max_segments_per_signal > 0` the oldest segments
//! beyond that count are deleted. Each export call writes one record with one `write_all` and
//! flushes before it returns, so a reader never sees a partial record of a finished export.
//!
//! # Framings
//!
//! - **JSON Lines** (`FileFormat::Json`, extension `.jsonl`, the default): the OpenTelemetry
//!   *OTLP File Exporter* format. Every line is one complete `TracesData`, `MetricsData` or
//!   `LogsData` message (`opentelemetry/proto/{trace,metrics,logs}/v1`) in the OTLP/JSON
//!   encoding — the protobuf JSON mapping with lowerCamelCase field names, trace and span ids
//!   as lowercase hex strings, enums as integers — followed by `\n`. The OpenTelemetry
//!   Collector's `otlpjsonfile` receiver reads these files as they are.
//! - **Length-delimited protobuf** (`FileFormat::Protobuf`, extension `.binpb`): every record
//!   is the protobuf binary encoding of one `TracesData` / `MetricsData` / `LogsData`
//!   message, preceded by its length as a base-128 varint (protobuf's
//!   `writeDelimitedTo` / `parseDelimitedFrom` framing). Roughly a quarter of the JSON size.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use parking_lot::Mutex;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::clock::Civil;

/// The framing of segment files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// OTLP JSON Lines (`.jsonl`), the OpenTelemetry file-exporter format.
    #[default]
    Json,
    /// Varint-length-delimited protobuf (`.binpb`).
    Protobuf,
}

impl FileFormat {
    fn extension(self) -> &'static str {
        match self {
            FileFormat::Json => "jsonl",
            FileFormat::Protobuf => "binpb",
        }
    }
}

/// Where and how the file exporter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileExportOptions {
    /// The local telemetry directory (STELLAOPS_TELEMETRY_DIR).
    pub dir: PathBuf,
    /// The framing. Default: JSON Lines.
    pub format: FileFormat,
    /// Start a new segment when the next record would exceed this. Default: 64 MiB.
    pub max_segment_bytes: u64,
    /// Start a new segment when the current one is older than this. Default: 1 h.
    pub max_segment_age: Duration,
    /// Keep at most this many segments per signal; 0 keeps all. Default: 0.
    pub max_segments_per_signal: usize,
}

impl FileExportOptions {
    /// The defaults, writing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileExportOptions {
            dir: dir.into(),
            format: FileFormat::Json,
            max_segment_bytes: 64 * 1024 * 1024,
            max_segment_age: Duration::from_secs(3600),
            max_segments_per_signal: 0,
        }
    }
}

/// Errors of the file exporter and its readers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileExportError {
    /// The signal directory cannot be created.
    #[error("cannot create telemetry directory `{}`", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A segment cannot be read.
    #[error("cannot read segment `{}`", path.display())]
    Read {
        /// The segment.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record in a segment does not parse.
    #[error("segment `{}` record {record} does not parse: {message}", path.display())]
    Parse {
        /// The segment.
        path: PathBuf,
        /// 1-based record (line) number.
        record: usize,
        /// The decoder's message.
        message: String,
    },
}

#[derive(Debug)]
struct Segment {
    file: File,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
}

/// Appends records to rotating segment files of one signal.
#[derive(Debug)]
struct SegmentWriter {
    signal: &'static str,
    dir: PathBuf,
    options: FileExportOptions,
    current: Option<Segment>,
    sequence: u64,
    shut_down: bool,
}

impl SegmentWriter {
    fn new(options: &FileExportOptions, signal: &'static str) -> Result<Self, FileExportError> {
        let dir = options.dir.join(signal);
        std::fs::create_dir_all(&dir).map_err(|source| FileExportError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(SegmentWriter {
            signal,
            dir,
            options: options.clone(),
            current: None,
            sequence: 0,
            shut_down: false,
        })
    }

    fn open_segment(&mut self) -> std::io::Result<Segment> {
        let stamp = Civil::from_system_time(SystemTime::now()).file_stamp();
        loop {
            self.sequence += 1;
            let name = format!(
                "{}-{stamp}-{:06}.{}",
                self.signal,
                self.sequence,
                self.options.format.extension()
            );
            let path = self.dir.join(name);
            // `create_new` so two processes sharing a directory never append to one segment.
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(Segment {
                        file,
                        path,
                        bytes: 0,
                        opened: Instant::now(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn prune(&self) {
        if self.options.max_segments_per_signal == 0 {
            return;
        }
        let mut segments = list_segments(&self.dir, self.signal, self.options.format);
        while segments.len() > self.options.max_segments_per_signal {
            let oldest = segments.remove(0);
            let _ = std::fs::remove_file(oldest);
        }
    }

    fn write(&mut self, record: &[u8]) -> OTelSdkResult {
        if self.shut_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let len = record.len() as u64;
        let rotate = match &self.current {
            None => true,
            Some(s) => {
                (s.bytes > 0 && s.bytes + len > self.options.max_segment_bytes)
                    || s.opened.elapsed() >= self.options.max_segment_age
            }
        };
        if rotate {
            let segment = self.open_segment().map_err(|e| {
                OTelSdkError::InternalFailure(format!(
                    "cannot open a segment in `{}`: {e}",
                    self.dir.display()
                ))
            })?;
            self.current = Some(segment);
            self.prune();
        }
        let Some(segment) = self.current.as_mut() else {
            return Err(OTelSdkError::InternalFailure("no open segment".to_owned()));
        };
        segment
            .file
            .write_all(record)
            .and_then(|()| segment.file.flush())
            .map_err(|e| {
                OTelSdkError::InternalFailure(format!(
                    "cannot write segment `{}`: {e}",
                    segment.path.display()
                ))
            })?;
        segment.bytes += len;
        Ok(())
    }
}

fn encode<M: Message + Serialize>(
    format: FileFormat,
    message: &M,
) -> Result<Vec<u8>, OTelSdkError> {
    match format {
        FileFormat::Json => {
            let mut line = serde_json::to_vec(message)
                .map_err(|e| OTelSdkError::InternalFailure(format!("OTLP/JSON encoding: {e}")))?;
            line.push(b'\n');
            Ok(line)
        }
        FileFormat::Protobuf => Ok(message.encode_length_delimited_to_vec()),
    }
}

/// Writes spans as `TracesData` records.
#[derive(Debug)]
pub struct FileSpanExporter {
    writer: Mutex<SegmentWriter>,
    resource: ResourceAttributesWithSchema,
}

impl FileSpanExporter {
    /// Creates `<dir>/traces/`.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] naming the directory.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileSpanExporter {
            writer: Mutex::new(SegmentWriter::new(&options, "traces")?),
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl SpanExporter for FileSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let message = TracesData {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut writer = self.writer.lock();
        let record = encode(writer.options.format, &message)?;
        writer.write(&record)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.lock().shut_down = true;
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes log records as `LogsData` records.
#[derive(Debug)]
pub struct FileLogExporter {
    writer: Mutex<SegmentWriter>,
    resource: ResourceAttributesWithSchema,
}

impl FileLogExporter {
    /// Creates `<dir>/logs/`.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] naming the directory.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileLogExporter {
            writer: Mutex::new(SegmentWriter::new(&options, "logs")?),
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let message = LogsData {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        let mut writer = self.writer.lock();
        let record = encode(writer.options.format, &message)?;
        writer.write(&record)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.lock().shut_down = true;
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Writes metric collections as `MetricsData` records (cumulative temporality).
#[derive(Debug)]
pub struct FileMetricExporter {
    writer: Mutex<SegmentWriter>,
}

impl FileMetricExporter {
    /// Creates `<dir>/metrics/`.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] naming the directory.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileMetricExporter {
            writer: Mutex::new(SegmentWriter::new(&options, "metrics")?),
        })
    }
}

impl PushMetricExporter for FileMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let request = ExportMetricsServiceRequest::from(metrics);
        let message = MetricsData {
            resource_metrics: request.resource_metrics,
        };
        let mut writer = self.writer.lock();
        let record = encode(writer.options.format, &message)?;
        writer.write(&record)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.writer.lock().shut_down = true;
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The segment files of `signal` (`traces`, `metrics`, `logs`) under `signal_dir`, oldest first.
fn list_segments(signal_dir: &Path, signal: &str, format: FileFormat) -> Vec<PathBuf> {
    let suffix = format!(".{}", format.extension());
    let prefix = format!("{signal}-");
    let mut out: Vec<PathBuf> = std::fs::read_dir(signal_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The segment files of one signal under the telemetry directory `dir`, oldest first.
pub fn segment_files(dir: &Path, signal: &str, format: FileFormat) -> Vec<PathBuf> {
    list_segments(&dir.join(signal), signal, format)
}

fn read_records<M>(dir: &Path, signal: &str, format: FileFormat) -> Result<Vec<M>, FileExportError>
where
    M: Message + Default + for<'de> Deserialize<'de>,
{
    let mut out = Vec::new();
    for path in segment_files(dir, signal, format) {
        let read_err = |source| FileExportError::Read {
            path: path.clone(),
            source,
        };
        let parse_err = |record, message: String| FileExportError::Parse {
            path: path.clone(),
            record,
            message,
        };
        match format {
            FileFormat::Json => {
                let file = File::open(&path).map_err(read_err)?;
                for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                    let line = line.map_err(read_err)?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    out.push(
                        serde_json::from_str(&line).map_err(|e| parse_err(i + 1, e.to_string()))?,
                    );
                }
            }
            FileFormat::Protobuf => {
                let mut bytes = Vec::new();
                File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(read_err)?;
                let mut rest = bytes.as_slice();
                let mut record = 0;
                while !rest.is_empty() {
                    record += 1;
                    out.push(
                        M::decode_length_delimited(&mut rest)
                            .map_err(|e| parse_err(record, e.to_string()))?,
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Reads every `TracesData` record under `dir/traces/`, oldest segment first.
///
/// # Errors
///
/// [`FileExportError::Read`] or [`FileExportError::Parse`] naming the segment and record.
pub fn read_traces(dir: &Path, format: FileFormat) -> Result<Vec<TracesData>, FileExportError> {
    read_records(dir, "traces", format)
}

/// Reads every `MetricsData` record under `dir/metrics/`, oldest segment first.
///
/// # Errors
///
/// As [`read_traces`].
pub fn read_metrics(dir: &Path, format: FileFormat) -> Result<Vec<MetricsData>, FileExportError> {
    read_records(dir, "metrics", format)
}

/// Reads every `LogsData` record under `dir/logs/`, oldest segment first.
///
/// # Errors
///
/// As [`read_traces`].
pub fn read_logs(dir: &Path, format: FileFormat) -> Result<Vec<LogsData>, FileExportError> {
    read_records(dir, "logs", format)
}
