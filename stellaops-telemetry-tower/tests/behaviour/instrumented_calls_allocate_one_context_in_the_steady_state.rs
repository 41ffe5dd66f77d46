//! In the steady state an `#[instrument]` call allocates once on its thread, with its span
//! sampled and exported and its duration histogram recorded (or its outcome counted): the
//! OpenTelemetry `Context` that carries the call's span while the body runs (so that the
//! spans, log lines and client calls inside nest under it). Its span context lives in an `Arc`
//! the `opentelemetry` crate allocates for every new context, and a span context cannot be
//! changed in place. The span record comes from the pool the export worker fills and the
//! metrics from series bound once per thread and pipeline; the span queue takes one more
//! block every 31 spans. Counted with a per-thread counting allocator (this test binary's
//! global allocator), so the export worker's own allocations are not counted; counts, never
//! times.
//!
//! ```text
//! cargo test -p stellaops-telemetry-tower --test behaviour instrumented_calls_allocate -- --nocapture
//! ```

use std::time::Duration;

use stellaops_telemetry_core::metrics::catalogue::{
    STELLA_DEPLOYMENTS_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument};

/// The most heap allocations a call may make: its context, and a share of a queue block.
const CALL_ALLOCATIONS: f64 = 1.05;

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

#[instrument(
    span = "deployment.execute",
    release_id,
    environment = "prod",
    outcome = STELLA_DEPLOYMENTS_TOTAL(tenant = "acme", env = "prod", strategy = "rolling", status = outcome),
)]
fn deploy(release_id: &str, fail: bool) -> Result<(), std::io::Error> {
    if fail {
        Err(std::io::ErrorKind::TimedOut.into())
    } else {
        Ok(())
    }
}

/// Allocations per call of `call` in the steady state, under a pipeline of its own whose
/// spans are all exported (checked); with the pipeline, to look at its metrics.
fn allocations_per_call(what: &str, mut call: impl FnMut(usize)) -> (f64, Telemetry) {
    let exporters = TestExporters::discarding_spans();
    let telemetry = pipeline(&exporters);
    let dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let mut counted = 0u64;
    for i in 0..WARM_UP + COUNTED {
        if i % 100 == 0 {
            telemetry.flush(Duration::from_secs(10)).unwrap();
        }
        let info = allocation_counter::measure(|| call(i));
        if i >= WARM_UP {
            counted += info.count_total;
        }
    }
    drop(dispatch);
    telemetry.flush(Duration::from_secs(10)).unwrap();
    let per_call = counted as f64 / COUNTED as f64;
    println!(
        "allocations per #[instrument] call ({what}): {per_call:.2} ({} spans exported)",
        telemetry.stats().spans.exported
    );
    assert_eq!(
        telemetry.stats().spans.exported,
        (WARM_UP + COUNTED) as u64,
        "every call's span is sampled and exported"
    );
    (per_call, telemetry)
}

#[test]
fn allocations_of_an_instrumented_call_are_its_context_alone() {
    let (per_call, telemetry) = allocations_per_call("duration histogram", |_| {
        std::hint::black_box(scan(std::hint::black_box("registry.example/app:1.2")));
    });
    let text = telemetry.prometheus().unwrap().render().unwrap();
    assert!(
        text.contains(&format!(
            "stellaops_scan_duration_seconds_count{{tenant=\"acme\"}} {}",
            WARM_UP + COUNTED
        )),
        "every call's duration is recorded:\n{text}"
    );
    assert!(
        per_call <= CALL_ALLOCATIONS,
        "an instrumented call allocated {per_call:.2} times (at most {CALL_ALLOCATIONS})"
    );
}

#[test]
fn allocations_of_an_instrumented_call_counting_its_outcome_are_its_context_alone() {
    // Every third call fails: both `status` series are bound and used.
    let (per_call, telemetry) = allocations_per_call("outcome counter", |i| {
        let _ = std::hint::black_box(deploy(std::hint::black_box("r-1"), i % 3 == 0));
    });
    let text = telemetry.prometheus().unwrap().render().unwrap();
    let failed = (WARM_UP + COUNTED).div_ceil(3);
    for (status, n) in [("ok", WARM_UP + COUNTED - failed), ("error", failed)] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("stella_deployments_total{")
                    && l.contains(&format!("status=\"{status}\""))
                    && l.ends_with(&format!(" {n}"))),
            "{n} calls counted with status {status}:\n{text}"
        );
    }
    assert!(
        per_call <= CALL_ALLOCATIONS,
        "an instrumented call allocated {per_call:.2} times (at most {CALL_ALLOCATIONS})"
    );
}

/// The count of `scan`'s duration histogram in `telemetry`'s exposition (0 when absent).
fn scans_recorded(telemetry: &Telemetry) -> u64 {
    let text = telemetry.prometheus().unwrap().render().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("stellaops_scan_duration_seconds_count{tenant=\"acme\"} "))
        .map_or(0, |n| n.parse().unwrap())
}

/// What makes the steady state allocation-free, a callsite's series bound once per thread,
/// must not cost correctness: the series is bound again whenever the call records into
/// another pipeline (the current dispatcher's), including a pipeline built after another was
/// dropped.
#[test]
fn a_callsites_bound_series_follow_the_current_pipeline() {
    let (exporters_a, exporters_b) = (
        TestExporters::discarding_spans(),
        TestExporters::discarding_spans(),
    );
    let (a, b) = (pipeline(&exporters_a), pipeline(&exporters_b));
    for (telemetry, calls) in [(&a, 3), (&b, 2), (&a, 1)] {
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for _ in 0..calls {
                scan("registry.example/app:1.2");
            }
        });
    }
    assert_eq!((scans_recorded(&a), scans_recorded(&b)), (4, 2));
    // Other threads bind their own, into the pipeline current there.
    std::thread::scope(|s| {
        s.spawn(|| tracing::dispatcher::with_default(b.dispatch(), || scan("x")));
    });
    assert_eq!((scans_recorded(&a), scans_recorded(&b)), (4, 3));
    // A pipeline built after the others are gone records into its own registry.
    drop((a, b));
    for _ in 0..3 {
        let exporters = TestExporters::discarding_spans();
        let c = pipeline(&exporters);
        tracing::dispatcher::with_default(c.dispatch(), || scan("y"));
        assert_eq!(scans_recorded(&c), 1);
    }
}
