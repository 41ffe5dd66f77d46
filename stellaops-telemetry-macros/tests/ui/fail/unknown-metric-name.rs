use stellaops_telemetry_core::instrument;
use stellaops_telemetry_core::metrics::catalogue::STELLA_DEPLOYMENTS_TOTAL;

#[instrument(
    span = "deployment.execute",
    release_id,
    environment = "prod",
    outcome = STELLA_DEPLOYMENT_TOTAL(tenant = "acme", env = "prod", strategy = "rolling", status = outcome),
)]
fn deploy(release_id: &str) -> Result<(), std::io::Error> {
    let _ = STELLA_DEPLOYMENTS_TOTAL;
    let _ = release_id;
    Ok(())
}

fn main() {
    let _ = deploy("r-1");
}
