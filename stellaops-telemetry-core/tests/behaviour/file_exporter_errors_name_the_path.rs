//! File exporter failures are errors naming the path, never panics: a folder that cannot be
//! created is a typed `FileExportError`, a failed write an `OTelSdkError::InternalFailure`
//! naming the file, and a damaged segment a read error naming the file and line.

use std::error::Error;
use std::fs;
use std::time::SystemTime;

use futures_executor::block_on;
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use stellaops_telemetry_core::{
    FileExportError, FileExportOptions, FileFormat, FileSpanExporter, read_traces,
};

fn span() -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(1_u128),
            SpanId::from(1_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: "work".into(),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("errors-test").build(),
    }
}

#[test]
fn a_folder_that_cannot_be_created_is_a_typed_error_naming_it() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let blocker = tmp.path().join("not-a-dir");
    fs::write(&blocker, "a file where the folder should be")?;

    let error = FileSpanExporter::new(FileExportOptions::new(&blocker))
        .err()
        .ok_or("the exporter was created under a file")?;
    assert!(
        matches!(error, FileExportError::CreateDir { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("cannot create telemetry directory `"),
        "{message}"
    );
    assert!(
        message.contains(&blocker.join("traces").display().to_string()),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_failed_write_is_an_internal_failure_naming_the_file() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let traces = tmp.path().join("traces");
    let exporter = FileSpanExporter::new(FileExportOptions::new(tmp.path()))?;
    fs::remove_dir(&traces)?;

    match block_on(exporter.export(vec![span()])) {
        Err(OTelSdkError::InternalFailure(message)) => {
            assert!(message.contains(&traces.display().to_string()), "{message}");
        }
        other => return Err(format!("expected an internal failure, got {other:?}").into()),
    }
    // Once the folder is back, the next export opens a new segment and succeeds.
    fs::create_dir(&traces)?;
    block_on(exporter.export(vec![span()]))?;
    assert_eq!(read_traces(tmp.path(), FileFormat::Json)?.len(), 1);
    Ok(())
}

#[test]
fn a_damaged_line_is_a_read_error_naming_the_file_and_line() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let exporter = FileSpanExporter::new(FileExportOptions::new(tmp.path()))?;
    block_on(exporter.export(vec![span()]))?;
    exporter.shutdown()?;
    let segment = fs::read_dir(tmp.path().join("traces"))?
        .next()
        .ok_or("no segment")??
        .path();
    let mut text = fs::read_to_string(&segment)?;
    text.push_str("{\"resourceSpans\":[{\"scope\n");
    fs::write(&segment, text)?;

    let error = read_traces(tmp.path(), FileFormat::Json)
        .err()
        .ok_or("a damaged segment was read")?;
    assert!(
        matches!(error, FileExportError::Json { line: 2, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&segment.display().to_string()),
        "{error}"
    );
    Ok(())
}
