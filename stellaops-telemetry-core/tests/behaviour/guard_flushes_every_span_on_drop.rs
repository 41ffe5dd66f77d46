//! Dropping the guard flushes everything: 10,000 spans ended just before the drop all arrive,
//! and the drop is bounded also on a current-thread Tokio runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;

fn pipeline(exporters: &TestExporters, dir: &std::path::Path) -> Telemetry {
    Telemetry::builder("guard-test")
        .exporters(&[])
        .stdout_logs(false)
        .dir(dir)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

#[test]
fn ten_thousand_spans_ended_before_the_drop_are_all_exported() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, dir.path());
    let guard = telemetry.clone().into_guard();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for i in 0..10_000u64 {
            tracing::info_span!("work.item", item = i).in_scope(|| {});
        }
    });
    drop(guard);
    assert_eq!(exporters.finished_spans().len(), 10_000);
    let stats = telemetry.stats();
    assert_eq!(stats.spans.exported, 10_000);
    assert_eq!(stats.spans.dropped, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn the_guard_drop_is_bounded_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    // A gRPC exporter pointed at a port nobody listens on: its export can only time out.
    let telemetry = Telemetry::builder("guard-test")
        .exporters(&[stellaops_telemetry_core::ExporterKind::Otlp])
        .otlp_endpoint("http://127.0.0.1:9")
        .otlp_timeout(Duration::from_millis(300))
        .stdout_logs(false)
        .dir(dir.path())
        .shutdown_timeout(Duration::from_secs(2))
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let guard = telemetry.clone().into_guard();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("request").in_scope(|| tracing::info!("inside"));
    });
    let started = Instant::now();
    drop(guard);
    // A bound of the deadline plus margin, not a speed assertion: a hang would never return.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(exporters.finished_spans().len(), 1);
}
