//! `crate = path`: the core crate under another name.

extern crate stellaops_telemetry_core as telemetry;

use telemetry::instrument;

#[instrument(crate = telemetry, span = "gate.evaluate", gate_type, result = "pass")]
fn evaluate(gate_type: &str) -> usize {
    gate_type.len()
}

fn main() {
    assert_eq!(evaluate("cvss"), 4);
}
