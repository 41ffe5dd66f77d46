use stellaops_telemetry_core::instrument;
use stellaops_telemetry_core::metrics::catalogue;

#[instrument(
    span = "gate.evaluate",
    gate_type,
    result = "pass",
    duration = catalogue::STELLA_GATE_DURATION_SECONDS(tenant = "acme"),
)]
fn evaluate(gate_type: &str) -> bool {
    !gate_type.is_empty()
}

fn main() {
    let _ = evaluate("cvss");
}
