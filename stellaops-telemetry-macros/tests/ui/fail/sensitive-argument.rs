use stellaops_telemetry_core::instrument;

#[instrument(span = "sign.dsse", predicateType = "slsa", fields(signing_token))]
fn sign(payload: &[u8], signing_token: &str) -> usize {
    payload.len() + signing_token.len()
}

fn main() {
    let _ = sign(b"{}", "hunter2");
}
