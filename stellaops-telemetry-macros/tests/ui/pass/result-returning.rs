//! `Result`-returning functions: `?` converts errors as it does outside the macro, and a
//! returned `Err` marks the span as an error with the error's kind as `error.type`.

use std::num::ParseIntError;
use std::time::Duration;

use stellaops_telemetry_core::metrics::catalogue::STELLAOPS_SCAN_DURATION_SECONDS;
use stellaops_telemetry_core::opentelemetry::Value;
use stellaops_telemetry_core::opentelemetry::trace::Status;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{ErrorKind, Telemetry, instrument, tracing};

#[derive(Debug)]
enum ScanError {
    BadLayerCount,
}

impl From<ParseIntError> for ScanError {
    fn from(_: ParseIntError) -> Self {
        ScanError::BadLayerCount
    }
}

impl ErrorKind for ScanError {
    fn error_kind(&self) -> &'static str {
        match self {
            ScanError::BadLayerCount => "bad_layer_count",
        }
    }
}

#[instrument(
    span = "scan.image",
    imageRef = image,
    digest,
    duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme"),
)]
fn scan(image: &str, digest: &str, layers: &str) -> Result<u32, ScanError> {
    let layers: u32 = layers.parse()?;
    Ok(layers * 2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()?;
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        assert!(matches!(scan("app:1", "sha256:1", "3"), Ok(6)));
        assert!(matches!(
            scan("app:1", "sha256:2", "three"),
            Err(ScanError::BadLayerCount)
        ));
    });

    telemetry.flush(Duration::from_secs(5))?;
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 2);
    let attribute = |index: usize, key: &str| {
        spans[index]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute(0, "digest"), Some(Value::from("sha256:1")));
    assert_eq!(spans[0].status, Status::Unset);
    assert_eq!(attribute(0, "error.type"), None);
    assert_eq!(spans[1].status, Status::error(""));
    assert_eq!(
        attribute(1, "error.type"),
        Some(Value::from("bad_layer_count"))
    );
    telemetry.shutdown();
    Ok(())
}
