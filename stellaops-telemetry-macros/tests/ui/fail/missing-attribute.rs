use stellaops_telemetry_core::instrument;

#[instrument(span = "scan.image", imageRef = image)]
fn scan(image: &str) -> usize {
    image.len()
}

fn main() {
    let _ = scan("registry/app:1");
}
