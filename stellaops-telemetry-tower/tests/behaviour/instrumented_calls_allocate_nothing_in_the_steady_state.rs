//! In the steady state an `#[instrument]` call allocates nothing on its thread, with its span
//! sampled and exported and its duration histogram recorded. Counted with a per-thread
//! counting allocator (this test binary's global allocator), so the export worker's own
//! allocations are not counted; counts, never times.
//!
//! ```text
//! cargo test -p stellaops-telemetry-tower --test behaviour allocate_nothing -- --nocapture
//! ```

use std::time::Duration;

use stellaops_telemetry_core::metrics::catalogue::STELLAOPS_SCAN_DURATION_SECONDS;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument};

/// Calls before counting starts: the record pool and the caches fill up.
const WARM_UP: usize = 2_000;
/// Calls counted.
const COUNTED: usize = 1_000;

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

#[instrument(
    span = "scan.image",
    imageRef = image,
    digest = "sha256:0f1e",
    duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme"),
)]
fn scan(image: &str) -> usize {
    image.len()
}

#[test]
fn allocations_of_an_instrumented_call_are_zero() {
    let exporters = TestExporters::discarding_spans();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let mut counted = 0u64;
    for i in 0..WARM_UP + COUNTED {
        if i % 100 == 0 {
            telemetry.flush(Duration::from_secs(10)).unwrap();
        }
        let info = allocation_counter::measure(|| {
            std::hint::black_box(scan(std::hint::black_box("registry.example/app:1.2")));
        });
        if i >= WARM_UP {
            counted += info.count_total;
        }
    }
    telemetry.flush(Duration::from_secs(10)).unwrap();
    let per_call = counted as f64 / COUNTED as f64;
    println!(
        "allocations per #[instrument] call: {per_call:.2} ({} spans exported)",
        telemetry.stats().spans.exported
    );
    assert_eq!(
        telemetry.stats().spans.exported,
        (WARM_UP + COUNTED) as u64
    );
    assert!(per_call <= 0.0, "an instrumented call allocated {per_call:.2} times");
}
