//! A record that would take the current segment past `max_segment_bytes` opens a new segment
//! first: segments stay within the bound (a record larger than the bound gets a segment of its
//! own), no record is split across files, and `max_segments_per_signal` keeps only the newest.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_executor::block_on;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileSpanExporter, read_traces};

type TestResult = Result<(), Box<dyn Error>>;

const BOUND: u64 = 2048;

fn span(index: u64, padding: usize) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(index) + 1),
            SpanId::from(index + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: format!("span {index}").into(),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: vec![KeyValue::new("padding", "x".repeat(padding))],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("rotation-test").build(),
    }
}

fn segments(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.join("traces"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segments.sort();
    Ok(segments)
}

fn span_names(traces: &[TracesData]) -> Vec<String> {
    traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect()
}

/// Exports `count` batches of one span each, span `i` padded by `padding(i)` bytes.
fn export_spans(
    options: FileExportOptions,
    count: u64,
    padding: impl Fn(u64) -> usize,
) -> TestResult {
    let exporter = FileSpanExporter::new(options)?;
    for i in 0..count {
        block_on(exporter.export(vec![span(i, padding(i))]))?;
    }
    exporter.shutdown()?;
    Ok(())
}

#[test]
fn json_segments_stay_within_the_bound_and_hold_whole_lines() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path()).max_segment_bytes(BOUND);
    export_spans(options, 40, |i| 100 + (i as usize % 7) * 40)?;

    let segments = segments(tmp.path())?;
    assert!(segments.len() > 5, "only {} segments", segments.len());
    for segment in &segments {
        let text = fs::read_to_string(segment)?;
        assert!(
            text.len() as u64 <= BOUND,
            "{} is {} bytes",
            segment.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "{} ends mid-line", segment.display());
        for line in text.lines() {
            serde_json::from_str::<TracesData>(line)?;
        }
    }
    // Reading the segments in name order gives the spans back in export order.
    let expected: Vec<String> = (0..40).map(|i| format!("span {i}")).collect();
    assert_eq!(
        span_names(&read_traces(tmp.path(), FileFormat::Json)?),
        expected
    );
    Ok(())
}

#[test]
fn protobuf_segments_stay_within_the_bound_and_hold_whole_records() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path())
        .format(FileFormat::Protobuf)
        .max_segment_bytes(BOUND);
    export_spans(options, 40, |i| 200 + (i as usize % 5) * 50)?;

    let segments = segments(tmp.path())?;
    assert!(segments.len() > 5, "only {} segments", segments.len());
    for segment in &segments {
        let bytes = fs::read(segment)?;
        assert!(
            bytes.len() as u64 <= BOUND,
            "{} is {} bytes",
            segment.display(),
            bytes.len()
        );
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            <TracesData as prost::Message>::decode_length_delimited(&mut rest)?;
        }
    }
    let expected: Vec<String> = (0..40).map(|i| format!("span {i}")).collect();
    assert_eq!(
        span_names(&read_traces(tmp.path(), FileFormat::Protobuf)?),
        expected
    );
    Ok(())
}

#[test]
fn a_record_larger_than_the_bound_gets_a_segment_of_its_own() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path()).max_segment_bytes(BOUND);
    export_spans(options, 3, |i| if i == 1 { 3 * BOUND as usize } else { 10 })?;

    let segments = segments(tmp.path())?;
    assert_eq!(segments.len(), 3);
    let sizes: Vec<u64> = segments
        .iter()
        .map(|s| fs::metadata(s).map(|m| m.len()))
        .collect::<Result<_, _>>()?;
    assert!(
        sizes[0] <= BOUND && sizes[1] > BOUND && sizes[2] <= BOUND,
        "{sizes:?}"
    );
    assert_eq!(fs::read_to_string(&segments[1])?.lines().count(), 1);
    Ok(())
}

#[test]
fn only_the_newest_segments_are_kept_when_a_limit_is_set() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path())
        .max_segment_bytes(BOUND)
        .max_segments_per_signal(3);
    export_spans(options, 40, |_| 600)?;

    assert_eq!(segments(tmp.path())?.len(), 3);
    let names = span_names(&read_traces(tmp.path(), FileFormat::Json)?);
    let last = names.last().ok_or("no spans left")?;
    assert_eq!(last, "span 39");
    // What is left is an unbroken run of the latest spans.
    let first: u64 = names[0].trim_start_matches("span ").parse()?;
    let expected: Vec<String> = (first..40).map(|i| format!("span {i}")).collect();
    assert_eq!(names, expected);
    assert!(first > 30);
    Ok(())
}
