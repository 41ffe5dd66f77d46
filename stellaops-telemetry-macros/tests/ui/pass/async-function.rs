//! An async function: its span covers the awaited body and is exported with its attributes.

use std::time::Duration;

use stellaops_telemetry_core::opentelemetry::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument, tracing};

#[instrument(span = "workflow.step", step_type = "approval", node_id)]
async fn step(node_id: &str) -> usize {
    tokio::task::yield_now().await;
    node_id.len()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("orchestrator")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let length =
        tracing::dispatcher::with_default(telemetry.dispatch(), || runtime.block_on(step("n-42")));
    assert_eq!(length, 4);

    telemetry.flush(Duration::from_secs(5))?;
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "workflow.step");
    let attribute = |key: &str| {
        spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute("step_type"), Some(Value::from("approval")));
    assert_eq!(attribute("node_id"), Some(Value::from("n-42")));
    telemetry.shutdown();
    Ok(())
}
