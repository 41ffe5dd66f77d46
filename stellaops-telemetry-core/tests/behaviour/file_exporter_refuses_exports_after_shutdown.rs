//! After `shutdown`, every file exporter refuses to export (with the SDK's `AlreadyShutdown`)
//! and writes nothing more.

use std::error::Error;

use futures_executor::block_on;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::trace::SpanExporter as _;
use stellaops_telemetry_core::{
    FileExportOptions, FileFormat, FileLogExporter, FileMetricExporter, FileSpanExporter,
    read_logs, read_traces,
};

#[test]
fn every_exporter_refuses_after_shutdown() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path());

    let spans = FileSpanExporter::new(options.clone())?;
    spans.shutdown()?;
    assert!(matches!(
        block_on(spans.export(Vec::new())),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(
        spans.shutdown(),
        Err(OTelSdkError::AlreadyShutdown)
    ));

    let logs = FileLogExporter::new(options.clone())?;
    logs.shutdown()?;
    assert!(matches!(
        block_on(logs.export(LogBatch::new(&[]))),
        Err(OTelSdkError::AlreadyShutdown)
    ));

    let metrics = FileMetricExporter::new(options)?;
    metrics.shutdown()?;
    assert!(matches!(
        block_on(metrics.export(&ResourceMetrics::default())),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(
        metrics.shutdown(),
        Err(OTelSdkError::AlreadyShutdown)
    ));

    assert!(read_traces(tmp.path(), FileFormat::Json)?.is_empty());
    assert!(read_logs(tmp.path(), FileFormat::Json)?.is_empty());
    Ok(())
}
