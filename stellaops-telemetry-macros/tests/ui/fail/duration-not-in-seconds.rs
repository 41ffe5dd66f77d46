use stellaops_telemetry_core::{declare_metrics, instrument};

declare_metrics! {
    /// Uploaded bundle sizes.
    pub histogram BUNDLE_SIZE_BYTES = "bundle_size_bytes" {
        unit: "By",
        help: "Uploaded bundle size",
        labels: BundleSizeLabels { tenant },
        buckets: &[1024.0, 1048576.0, 1073741824.0],
    }
}

#[instrument(duration = BUNDLE_SIZE_BYTES(tenant = "acme"))]
fn upload(bundle: &[u8]) -> usize {
    bundle.len()
}

fn main() {
    let _ = upload(b"bundle");
}
