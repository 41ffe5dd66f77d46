use stellaops_telemetry_core::instrument;

#[instrument(span = "scan.imgae", imageRef = image, digest)]
fn scan(image: &str, digest: &str) -> usize {
    image.len() + digest.len()
}

fn main() {
    let _ = scan("registry/app:1", "sha256:1");
}
