use stellaops_telemetry_core::instrument;
use stellaops_telemetry_core::metrics::catalogue::STELLA_DEPLOYMENTS_TOTAL;

#[instrument(
    span = "deployment.execute",
    release_id,
    environment = "prod",
    outcome = STELLA_DEPLOYMENTS_TOTAL(
        tenant = "acme",
        env = "prod",
        strategy = "rolling",
        state = outcome,
    ),
)]
fn deploy(release_id: &str) -> Result<(), std::io::Error> {
    let _ = release_id;
    Ok(())
}

fn main() {
    let _ = deploy("r-1");
}
