//! The OTLP file exporter: spans, logs and metrics as segment files under one folder.
//!
//! # Example
//!
//! ```
//! use opentelemetry::trace::{Tracer, TracerProvider};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileSpanExporter, read_traces};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path();
//! let options = FileExportOptions::new(dir).format(FileFormat::Protobuf);
//! let provider = SdkTracerProvider::builder()
//!     .with_batch_exporter(FileSpanExporter::new(options)?)
//!     .build();
//! provider.tracer("scanner").in_span("scan", |_cx| {});
//! provider.shutdown()?;
//!
//! assert_eq!(read_traces(dir, FileFormat::Protobuf)?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! [`FileSpanExporter`], [`FileLogExporter`] and [`FileMetricExporter`] write under one root
//! folder (`STELLAOPS_TELEMETRY_DIR`, `./telemetry-data` by default), one sub-folder per
//! signal:
//!
//! ```text
//! <dir>/traces/traces-20250102T030405Z-000001.jsonl
//! <dir>/metrics/metrics-20250102T030405Z-000002.jsonl
//! <dir>/logs/logs-20250102T030405Z-000001.binpb
//! ```
//!
//! A segment is named `<signal>-<yyyymmddThhmmssZ>-<seq>.<ext>`: the UTC second it was
//! opened, then a per-signal sequence number of at least six digits that keeps counting from
//! the highest one already in the folder. Sorting the names as strings sorts the segments
//! chronologically. The extension is `jsonl` or `binpb` after the [`FileFormat`].
//!
//! Each call to `export` encodes the whole batch (or metric collection) as **one record** —
//! one `TracesData`, `LogsData` or `MetricsData` message with a single resource entry — and
//! appends it to the current segment with a single `write_all`, then flushes. An empty batch
//! writes nothing. No record is ever split across segments: before writing, a new segment is
//! opened if the record would take the current one past
//! [`max_segment_bytes`](FileExportOptions::max_segment_bytes) (a record larger than the bound
//! goes alone into a fresh segment) or if the current one is older than
//! [`max_segment_age`](FileExportOptions::max_segment_age). Age is checked when a record
//! arrives, not by a timer, so an idle segment stays open until the next export. When
//! [`retention`](FileExportOptions::retention) is set, opening a segment deletes that
//! signal's closed segments whose last item is older than the retention (counted:
//! `segments_removed_by_retention()` on each exporter). When
//! [`max_segments_per_signal`](FileExportOptions::max_segments_per_signal) is set, opening a
//! segment deletes that signal's oldest segments beyond the limit. If a write fails, the
//! segment is cut back to its last whole record (best effort) and the next export starts a new
//! segment.
//!
//! # Segment index
//!
//! When a segment is closed (rotation, a failed write, shutdown) its sidecar index is written
//! to `<dir>/.index/<signal>/<segment file name>.idx`, outside the signal folders: one JSON
//! object with the segment's `format`, length in `bytes`, number of `records` and `items`
//! (spans, log records or metric data points), `min_time_unix_nano` and `max_time_unix_nano`
//! of its items (a span's start time, a log record's timestamp or else its observed
//! timestamp, a data point's `time_unix_nano`), the `tenants` seen in the items' own
//! `tenant.id` attributes (at most 256 names, else `many_tenants` is `true` and the list is
//! empty). It is computed as records are written, not by reading the segment back. Readers
//! ([`bundle::Store`](crate::bundle::Store)) use it to skip segments; a segment without one,
//! or whose length differs from the sidecar's, is read instead.
//!
//! Data is in the file (visible to any reader, safe from a crash of this process) when
//! `export` returns. It is synced to the storage device (`fsync`) when a segment is closed,
//! on `force_flush` and on `shutdown`; between those, a power loss can lose recent records.
//!
//! # JSON framing (`*.jsonl`)
//!
//! The [OTLP file exporter format]: JSON Lines. Every line is one complete `TracesData`,
//! `MetricsData` or `LogsData` message in the [OTLP/JSON encoding], terminated by `\n`
//! (UTF-8, compact, no blank lines). The OpenTelemetry Collector's `otlpjsonfile` receiver
//! reads these files; so does any OTLP/JSON parser, line by line. The mapping is the one of
//! `opentelemetry-proto`'s serde derives, with one adjustment:
//!
//! - field names are lowerCamelCase (`resourceSpans`, `startTimeUnixNano`);
//! - trace and span ids are lowercase hex strings (`"traceId":"5b8efff798038103d269b633813fc60c"`),
//!   an absent parent is `""`;
//! - enums are integers (`"kind":2`, `"code":1`, `"severityNumber":9`,
//!   `"aggregationTemporality":2`);
//! - 64-bit integers are decimal strings: `uint64`/`fixed64` timestamps and counts
//!   (`"timeUnixNano":"1700000000000000000"`, `"count":"3"`, `"bucketCounts":["1","2"]`)
//!   and `int64`/`sfixed64` values (`"intValue":"-7"`, `"asInt":"42"`), as the protobuf JSON
//!   mapping prescribes; 32-bit integers and doubles are JSON numbers;
//! - `bytesValue` is standard base64;
//! - fields at their default value are still written (`"droppedAttributesCount":0`,
//!   `"traceState":""`), which every OTLP/JSON reader accepts;
//! - **adjustment**: members that would be `null` are left out. The serde derives write an
//!   unset optional field (a histogram's `sum`/`min`/`max`, a log record without `body`) as
//!   `null`, which the Collector refuses for numbers. A consequence: a non-finite double
//!   (NaN, ±infinity), which serde_json can only write as `null`, is left out too instead of
//!   being written as the string `"NaN"`/`"Infinity"`.
//!
//! A line holds a whole export batch, so with the batch processors' default of 512 records a
//! line can run to megabytes. The Collector reads files through its generic file consumer,
//! which caps the length of a line (`max_log_size`); raise it on the receiver if large
//! batches are expected.
//!
//! # Protobuf framing (`*.binpb`)
//!
//! A segment is a plain concatenation of records; each record is the byte length of the
//! message as a protobuf base-128 varint, followed by that many bytes of a binary-encoded
//! `opentelemetry.proto.trace.v1.TracesData`, `...metrics.v1.MetricsData` or
//! `...logs.v1.LogsData` message (what prost's `encode_length_delimited`, Java's
//! `writeDelimitedTo` and Go's `protodelim` write). Read it by decoding a varint, then that
//! many bytes, until the end of the file. There is no header, trailer or checksum.
//!
//! # Reading back
//!
//! [`read_traces`], [`read_logs`] and [`read_metrics`] read every record of one signal in
//! segment name order, for tests and for bundling.
//!
//! [OTLP file exporter format]: https://opentelemetry.io/docs/specs/otel/protocol/file-exporter/
//! [OTLP/JSON encoding]: https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding

#[cfg(feature = "file")]
mod exporter;
#[cfg(feature = "file")]
pub(crate) mod index;
mod options;
#[cfg(feature = "file")]
mod read;
#[cfg(feature = "file")]
mod segment;

use std::path::PathBuf;

#[cfg(feature = "file")]
pub use exporter::{FileLogExporter, FileMetricExporter, FileSpanExporter};
pub use options::{FileExportOptions, FileFormat};
#[cfg(feature = "file")]
pub use read::{read_logs, read_metrics, read_traces, segment_files};

/// What can go wrong creating the file exporters or reading their segments back.
///
/// Export-time failures are reported through the SDK's own `OTelSdkError` instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileExportError {
    /// A signal folder that cannot be created.
    #[error("cannot create telemetry directory `{}`", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A folder that cannot be listed or a segment that cannot be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSON segment that is not an OTLP/JSON message.
    #[error("line {line} of `{}` is not an OTLP/JSON message", path.display())]
    Json {
        /// The segment.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A record of a protobuf segment that does not decode.
    #[error("the record at byte {offset} of `{}` is not a length-delimited OTLP message", path.display())]
    Protobuf {
        /// The segment.
        path: PathBuf,
        /// The offset of the record's length prefix.
        offset: usize,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
}
