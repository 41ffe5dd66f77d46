//! A new exporter over a folder that already holds segments continues their sequence numbers,
//! so its segments sort after the old ones even within the same second.

use std::error::Error;
use std::fs;

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use stellaops_telemetry_core::{FileExportOptions, FileFormat, FileSpanExporter, read_traces};

fn run(dir: &std::path::Path, span: &'static str) -> Result<(), Box<dyn Error>> {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(FileSpanExporter::new(FileExportOptions::new(dir))?)
        .build();
    provider.tracer("restart-test").in_span(span, |_cx| {});
    provider.shutdown()?;
    Ok(())
}

#[test]
fn the_second_run_numbers_its_segment_after_the_first() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    run(tmp.path(), "first run")?;
    run(tmp.path(), "second run")?;

    let mut names: Vec<String> = fs::read_dir(tmp.path().join("traces"))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(
        names[0].ends_with("-000001.jsonl") && names[1].ends_with("-000002.jsonl"),
        "{names:?}"
    );
    for name in &names {
        // traces-yyyymmddThhmmssZ-nnnnnn.jsonl
        let stamp = &name["traces-".len().."traces-".len() + 16];
        assert!(
            stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
            "{name}"
        );
    }
    let spans: Vec<String> = read_traces(tmp.path(), FileFormat::Json)?
        .iter()
        .map(|t| t.resource_spans[0].scope_spans[0].spans[0].name.clone())
        .collect();
    assert_eq!(spans, ["first run", "second run"]);
    Ok(())
}
