//! A segment older than `max_segment_age` when the next record arrives is closed, and the
//! record goes to a new segment.

use std::error::Error;
use std::fs;
use std::thread::sleep;
use std::time::Duration;

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileSpanExporter, read_traces};

#[test]
fn each_export_after_the_age_bound_opens_a_new_segment() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let options = FileExportOptions::new(tmp.path()).max_segment_age(Duration::from_millis(50));
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(options)?)
        .build();
    let tracer = provider.tracer("age-test");
    for i in 0..3 {
        if i > 0 {
            // Longer than the bound, so the segment is always old enough when the span ends.
            sleep(Duration::from_millis(120));
        }
        tracer.in_span(format!("span {i}"), |_cx| {});
    }
    provider.shutdown()?;

    let mut segments: Vec<_> = fs::read_dir(tmp.path().join("traces"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segments.sort();
    assert_eq!(segments.len(), 3, "{segments:?}");
    for segment in &segments {
        assert_eq!(fs::read_to_string(segment)?.lines().count(), 1);
    }
    let traces = read_traces(tmp.path(), FileFormat::Json)?;
    let names: Vec<&str> = traces
        .iter()
        .map(|t| t.resource_spans[0].scope_spans[0].spans[0].name.as_str())
        .collect();
    assert_eq!(names, ["span 0", "span 1", "span 2"]);
    Ok(())
}
