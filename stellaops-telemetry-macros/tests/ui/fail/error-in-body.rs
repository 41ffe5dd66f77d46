use stellaops_telemetry_core::instrument;

#[instrument(span = "gate.evaluate", gate_type, result = "pass")]
fn score(gate_type: &str) -> u8 {
    let base = 3;
    base + gate_type.len()
}

fn main() {
    let _ = score("cvss");
}
