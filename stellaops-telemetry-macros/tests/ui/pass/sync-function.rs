//! A plain function: its span is exported with its required attributes, one read from the
//! argument of the same name and one from an expression.

use std::time::Duration;

use stellaops_telemetry_core::opentelemetry::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument, tracing};

#[instrument(span = "gate.evaluate", gate_type, result = verdict(score))]
fn evaluate(gate_type: &str, score: u8) -> u8 {
    score * 2
}

fn verdict(score: u8) -> &'static str {
    if score > 5 { "fail" } else { "pass" }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("gatekeeper")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()?;
    let doubled = tracing::dispatcher::with_default(telemetry.dispatch(), || evaluate("cvss", 3));
    assert_eq!(doubled, 6);

    telemetry.flush(Duration::from_secs(5))?;
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "gate.evaluate");
    let attribute = |key: &str| {
        spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute("gate_type"), Some(Value::from("cvss")));
    assert_eq!(attribute("result"), Some(Value::from("pass")));
    telemetry.shutdown();
    Ok(())
}
