use stellaops_telemetry_core::instrument;

#[instrument(span = "gate.evaluate", gate_type = "cvss", result = "pass")]
struct Gate {
    threshold: f64,
}

fn main() {
    let gate = Gate { threshold: 7.0 };
    let _ = gate.threshold;
}
