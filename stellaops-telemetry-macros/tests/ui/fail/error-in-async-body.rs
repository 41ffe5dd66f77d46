use stellaops_telemetry_core::instrument;

#[instrument(span = "workflow.step", step_type = "gate", node_id)]
async fn step(node_id: &str) -> u8 {
    let attempts = 3;
    attempts + node_id.len()
}

fn main() {
    let _ = step("n-1");
}
