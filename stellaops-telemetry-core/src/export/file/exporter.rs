//! The span, log and metric exporters over [`SegmentWriter`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
use serde::Serialize;

use super::index::Items;
use super::segment::SegmentWriter;
use super::{FileExportError, FileExportOptions, FileFormat};

/// A segment writer and the framing it writes, shared by the three exporters.
#[derive(Debug)]
struct Output {
    format: FileFormat,
    writer: Mutex<SegmentWriter>,
    removed_by_retention: Arc<AtomicU64>,
}

impl Output {
    fn new(options: &FileExportOptions, signal: &'static str) -> Result<Self, FileExportError> {
        let writer = SegmentWriter::new(options, signal)?;
        Ok(Output {
            format: options.format,
            removed_by_retention: writer.removed_by_retention(),
            writer: Mutex::new(writer),
        })
    }

    fn removed_by_retention(&self) -> u64 {
        self.removed_by_retention.load(Ordering::Relaxed)
    }

    /// Counts deletions by retention into `counter` (the pipeline's stats), shared by the
    /// three exporters of a pipeline.
    fn count_removals_into(&mut self, counter: Arc<AtomicU64>) {
        self.writer.lock().count_removals_into(counter.clone());
        self.removed_by_retention = counter;
    }

    /// Encodes `message` as one record and appends it.
    fn write<M: prost::Message + Serialize + Items>(&self, message: &M) -> OTelSdkResult {
        let mut writer = self.writer.lock();
        if writer.is_shut_down() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let record = encode(message, self.format).map_err(OTelSdkError::InternalFailure)?;
        writer
            .write_record(&record, message)
            .map_err(OTelSdkError::InternalFailure)
    }

    fn is_shut_down(&self) -> bool {
        self.writer.lock().is_shut_down()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.writer
            .lock()
            .sync()
            .map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown(&self) -> OTelSdkResult {
        let mut writer = self.writer.lock();
        if writer.is_shut_down() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        writer.shutdown().map_err(OTelSdkError::InternalFailure)
    }
}

/// One record of `format`: a JSON line ending in `\n`, or a varint length and the message.
fn encode<M: prost::Message + Serialize>(
    message: &M,
    format: FileFormat,
) -> Result<Vec<u8>, String> {
    match format {
        FileFormat::Protobuf => Ok(message.encode_length_delimited_to_vec()),
        FileFormat::Json => {
            let mut value = serde_json::to_value(message)
                .map_err(|e| format!("cannot encode OTLP/JSON: {e}"))?;
            strip_nulls(&mut value);
            let mut line =
                serde_json::to_vec(&value).map_err(|e| format!("cannot encode OTLP/JSON: {e}"))?;
            line.push(b'\n');
            Ok(line)
        }
    }
}

/// Removes every `null` member of every object.
///
/// The proto crate's serde derives write an unset optional field (a histogram's `min`, `max`
/// or `sum`, a log record without `body`) as `null`, and serde_json writes a non-finite double
/// as `null` too. The Collector's OTLP/JSON reader rejects `null` where it expects a number,
/// failing the whole line; an absent member means "unset" to every reader.
fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, member| !member.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Writes span batches to `dir/traces/` as OTLP `TracesData` records.
///
/// ```
/// use opentelemetry::trace::{Tracer, TracerProvider};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileSpanExporter, read_traces};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path();
/// let exporter = FileSpanExporter::new(FileExportOptions::new(dir))?;
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter).build();
/// provider.tracer("checkout").in_span("charge", |_cx| {});
/// provider.shutdown()?;
///
/// let traces = read_traces(dir, FileFormat::Json)?;
/// assert_eq!(traces[0].resource_spans[0].scope_spans[0].spans[0].name, "charge");
/// # Ok(())
/// # }
/// ```
pub struct FileSpanExporter {
    output: Output,
    resource: ResourceAttributesWithSchema,
}

impl FileSpanExporter {
    /// Counts deletions by retention into the pipeline's `counter` from now on; the
    /// exporter's own count then reads it.
    pub(crate) fn count_removals_into(mut self, counter: Arc<AtomicU64>) -> Self {
        self.output.count_removals_into(counter);
        self
    }

    /// The segments deleted so far because their last item was older than the
    /// [`retention`](FileExportOptions::retention).
    ///
    /// ```
    /// # use stellaops_telemetry_core::{FileExportOptions, FileSpanExporter};
    /// # let tmp = tempfile::tempdir()?;
    /// let exporter = FileSpanExporter::new(FileExportOptions::new(tmp.path()))?;
    /// assert_eq!(exporter.segments_removed_by_retention(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segments_removed_by_retention(&self) -> u64 {
        self.output.removed_by_retention()
    }

    /// Creates `options.dir/traces/`; the first segment opens with the first batch.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] when the folder cannot be created, or
    /// [`FileExportError::Read`] when it cannot be listed.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileSpanExporter {
            output: Output::new(&options, "traces")?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl fmt::Debug for FileSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSpanExporter")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl SpanExporter for FileSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.output.is_shut_down() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let message = TracesData {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        self.output.write(&message)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.output.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.output.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}

/// Writes log batches to `dir/logs/` as OTLP `LogsData` records.
///
/// ```
/// use opentelemetry::logs::{LogRecord, Logger, LoggerProvider};
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileLogExporter, read_logs};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path();
/// let exporter = FileLogExporter::new(FileExportOptions::new(dir))?;
/// let provider = SdkLoggerProvider::builder().with_simple_exporter(exporter).build();
/// let logger = provider.logger("checkout");
/// let mut record = logger.create_log_record();
/// record.set_body("card declined".into());
/// logger.emit(record);
/// provider.shutdown()?;
///
/// let logs = read_logs(dir, FileFormat::Json)?;
/// assert_eq!(logs[0].resource_logs[0].scope_logs[0].log_records.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct FileLogExporter {
    output: Output,
    resource: ResourceAttributesWithSchema,
}

impl FileLogExporter {
    /// Counts deletions by retention into the pipeline's `counter` from now on; the
    /// exporter's own count then reads it.
    pub(crate) fn count_removals_into(mut self, counter: Arc<AtomicU64>) -> Self {
        self.output.count_removals_into(counter);
        self
    }

    /// The segments deleted so far because their last item was older than the
    /// [`retention`](FileExportOptions::retention).
    ///
    /// ```
    /// # use stellaops_telemetry_core::{FileExportOptions, FileLogExporter};
    /// # let tmp = tempfile::tempdir()?;
    /// let exporter = FileLogExporter::new(FileExportOptions::new(tmp.path()))?;
    /// assert_eq!(exporter.segments_removed_by_retention(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segments_removed_by_retention(&self) -> u64 {
        self.output.removed_by_retention()
    }

    /// Creates `options.dir/logs/`; the first segment opens with the first batch.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] when the folder cannot be created, or
    /// [`FileExportError::Read`] when it cannot be listed.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileLogExporter {
            output: Output::new(&options, "logs")?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl fmt::Debug for FileLogExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLogExporter")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        if self.output.is_shut_down() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if batch.iter().next().is_none() {
            return Ok(());
        }
        let message = LogsData {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        self.output.write(&message)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.output.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}

/// Writes metric collections to `dir/metrics/` as OTLP `MetricsData` records, one per
/// collection. Temporality is cumulative unless set with
/// [`FileMetricExporter::with_temporality`].
///
/// ```
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
/// use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileMetricExporter, read_metrics};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path();
/// let exporter = FileMetricExporter::new(FileExportOptions::new(dir))?;
/// let provider = SdkMeterProvider::builder()
///     .with_reader(PeriodicReader::builder(exporter).build())
///     .build();
/// provider.meter("checkout").u64_counter("orders").build().add(1, &[]);
/// provider.shutdown()?; // collects and exports once more
///
/// let metrics = read_metrics(dir, FileFormat::Json)?;
/// assert_eq!(metrics[0].resource_metrics[0].scope_metrics[0].metrics[0].name, "orders");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileMetricExporter {
    output: Output,
    temporality: Temporality,
}

impl FileMetricExporter {
    /// Counts deletions by retention into the pipeline's `counter` from now on; the
    /// exporter's own count then reads it.
    pub(crate) fn count_removals_into(mut self, counter: Arc<AtomicU64>) -> Self {
        self.output.count_removals_into(counter);
        self
    }

    /// The segments deleted so far because their last item was older than the
    /// [`retention`](FileExportOptions::retention).
    ///
    /// ```
    /// # use stellaops_telemetry_core::{FileExportOptions, FileMetricExporter};
    /// # let tmp = tempfile::tempdir()?;
    /// let exporter = FileMetricExporter::new(FileExportOptions::new(tmp.path()))?;
    /// assert_eq!(exporter.segments_removed_by_retention(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segments_removed_by_retention(&self) -> u64 {
        self.output.removed_by_retention()
    }

    /// Creates `options.dir/metrics/`; the first segment opens with the first collection.
    ///
    /// # Errors
    ///
    /// [`FileExportError::CreateDir`] when the folder cannot be created, or
    /// [`FileExportError::Read`] when it cannot be listed.
    pub fn new(options: FileExportOptions) -> Result<Self, FileExportError> {
        Ok(FileMetricExporter {
            output: Output::new(&options, "metrics")?,
            temporality: Temporality::Cumulative,
        })
    }

    /// The aggregation temporality asked of the reader. Default:
    /// [`Temporality::Cumulative`].
    ///
    /// ```
    /// # use opentelemetry_sdk::metrics::{Temporality, exporter::PushMetricExporter};
    /// # use stellaops_telemetry_core::{FileExportOptions, FileMetricExporter};
    /// # let tmp = tempfile::tempdir()?;
    /// let exporter = FileMetricExporter::new(FileExportOptions::new(tmp.path()))?
    ///     .with_temporality(Temporality::Delta);
    /// assert_eq!(exporter.temporality(), Temporality::Delta);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }
}

impl PushMetricExporter for FileMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.output.is_shut_down() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if metrics
            .scope_metrics()
            .all(|scope| scope.metrics().next().is_none())
        {
            return Ok(());
        }
        let message = MetricsData {
            resource_metrics: ExportMetricsServiceRequest::from(metrics).resource_metrics,
        };
        self.output.write(&message)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.output.force_flush()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.output.shutdown()
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_removed_at_every_depth() {
        let mut value = serde_json::json!({
            "a": null,
            "b": [{ "c": null, "d": 1 }],
            "e": { "f": null, "g": [null] },
        });
        strip_nulls(&mut value);
        assert_eq!(
            value,
            serde_json::json!({ "b": [{ "d": 1 }], "e": { "g": [null] } })
        );
    }
}
