//! Where the file exporters write, in which framing, and when they rotate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The framing of the segment files.
///
/// In a configuration file it is written `"json"` or `"protobuf"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// JSON Lines in the OTLP/JSON encoding, one `TracesData` / `MetricsData` / `LogsData`
    /// per line, in `*.jsonl` segments: the OpenTelemetry OTLP file exporter format.
    #[default]
    Json,
    /// Varint-length-delimited binary protobuf messages in `*.binpb` segments.
    Protobuf,
}

impl FileFormat {
    /// The file name extension of this framing's segments, without the dot:
    /// `jsonl` or `binpb`.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileFormat;
    /// assert_eq!(FileFormat::Json.extension(), "jsonl");
    /// assert_eq!(FileFormat::Protobuf.extension(), "binpb");
    /// ```
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Json => "jsonl",
            FileFormat::Protobuf => "binpb",
        }
    }
}

/// Settings shared by the three file exporters.
///
/// Each signal writes under its own folder of `dir`: `dir/traces/`, `dir/metrics/` and
/// `dir/logs/`. Build it with [`FileExportOptions::new`] and the setters; in a configuration
/// file the same settings live in the `[files]` table of
/// [`TelemetryConfig`](crate::TelemetryConfig).
///
/// ```
/// # use stellaops_telemetry_core::{FileExportOptions, FileFormat};
/// # use std::time::Duration;
/// let options = FileExportOptions::new("telemetry-data")
///     .format(FileFormat::Protobuf)
///     .max_segment_age(Duration::from_secs(900));
/// assert_eq!(options.max_segment_bytes, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileExportOptions {
    /// The root folder; the SDK passes `STELLAOPS_TELEMETRY_DIR` here (`./telemetry-data`
    /// unless set). Required.
    pub dir: PathBuf,
    /// The framing of every segment. Default: [`FileFormat::Json`].
    pub format: FileFormat,
    /// A segment is closed before a record that would take it past this many bytes; a single
    /// record larger than the bound gets a segment of its own. `0` means no size bound.
    /// Default: 64 MiB.
    pub max_segment_bytes: u64,
    /// A segment at least this old when the next record arrives is closed first. Zero means
    /// no age bound. Default: one hour.
    pub max_segment_age: Duration,
    /// How many segments to keep per signal; the oldest beyond it are deleted whenever a new
    /// segment opens. `0` keeps them all. Default: 0.
    pub max_segments_per_signal: usize,
    /// How long to keep a closed segment after its last item (the latest span start, log
    /// record time or metric data point time it holds); older segments are deleted with
    /// their sidecars whenever a new segment opens, and counted. Zero keeps them all.
    /// Default: zero; a pipeline passes its profile's retention (30 days by default).
    pub retention: Duration,
}

/// The default [`FileExportOptions::max_segment_bytes`]: 64 MiB.
const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The default [`FileExportOptions::max_segment_age`]: one hour.
const DEFAULT_MAX_SEGMENT_AGE: Duration = Duration::from_secs(60 * 60);

impl FileExportOptions {
    /// Options writing under `dir`, with every other setting at its default.
    ///
    /// ```
    /// # use stellaops_telemetry_core::{FileExportOptions, FileFormat};
    /// let options = FileExportOptions::new("telemetry-data");
    /// assert_eq!(options.format, FileFormat::Json);
    /// assert_eq!(options.max_segments_per_signal, 0);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileExportOptions {
            dir: dir.into(),
            format: FileFormat::default(),
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            max_segment_age: DEFAULT_MAX_SEGMENT_AGE,
            max_segments_per_signal: 0,
            retention: Duration::ZERO,
        }
    }

    /// The root folder. Required; [`FileExportOptions::new`] takes it.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileExportOptions;
    /// let options = FileExportOptions::new("a").dir("b");
    /// assert_eq!(options.dir, std::path::Path::new("b"));
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The framing of every segment. Default: [`FileFormat::Json`].
    ///
    /// ```
    /// # use stellaops_telemetry_core::{FileExportOptions, FileFormat};
    /// let options = FileExportOptions::new("telemetry-data").format(FileFormat::Protobuf);
    /// # assert_eq!(options.format, FileFormat::Protobuf);
    /// ```
    pub fn format(mut self, format: FileFormat) -> Self {
        self.format = format;
        self
    }

    /// The size bound of a segment in bytes; `0` disables it. Default: 64 MiB.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileExportOptions;
    /// let options = FileExportOptions::new("telemetry-data").max_segment_bytes(1 << 20);
    /// # assert_eq!(options.max_segment_bytes, 1 << 20);
    /// ```
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes;
        self
    }

    /// The age bound of a segment; zero disables it. Default: one hour.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileExportOptions;
    /// # use std::time::Duration;
    /// let options = FileExportOptions::new("telemetry-data")
    ///     .max_segment_age(Duration::from_secs(600));
    /// # assert_eq!(options.max_segment_age, Duration::from_secs(600));
    /// ```
    pub fn max_segment_age(mut self, age: Duration) -> Self {
        self.max_segment_age = age;
        self
    }

    /// How many segments to keep per signal; `0` keeps all. Default: 0.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileExportOptions;
    /// let options = FileExportOptions::new("telemetry-data").max_segments_per_signal(24);
    /// # assert_eq!(options.max_segments_per_signal, 24);
    /// ```
    pub fn max_segments_per_signal(mut self, count: usize) -> Self {
        self.max_segments_per_signal = count;
        self
    }

    /// How long to keep a closed segment after its last item; zero keeps them all.
    /// Default: zero.
    ///
    /// ```
    /// # use stellaops_telemetry_core::FileExportOptions;
    /// # use std::time::Duration;
    /// let options = FileExportOptions::new("telemetry-data")
    ///     .retention(Duration::from_secs(30 * 24 * 60 * 60));
    /// # assert_eq!(options.retention.as_secs(), 2_592_000);
    /// ```
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The folder of one signal's segments, e.g. `dir/traces`.
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    pub(crate) fn signal_dir(&self, signal: &str) -> PathBuf {
        Path::new(&self.dir).join(signal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_reads_its_lowercase_name() -> Result<(), serde_json::Error> {
        let json: FileFormat = serde_json::from_str(r#""json""#)?;
        let protobuf: FileFormat = serde_json::from_str(r#""protobuf""#)?;
        assert_eq!((json, protobuf), (FileFormat::Json, FileFormat::Protobuf));
        Ok(())
    }
}
