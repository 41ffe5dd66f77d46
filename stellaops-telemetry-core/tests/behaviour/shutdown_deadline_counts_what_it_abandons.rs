//! When the shutdown deadline passes with a collector that never answers, the records still
//! queued or in flight are counted as dropped by the time `shutdown()` returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use stellaops_telemetry_core::{ExporterKind, Telemetry};

#[test]
fn records_abandoned_at_the_deadline_are_counted_as_dropped() {
    // Accepts TCP connections (the kernel backlog) but never speaks: every export hangs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let telemetry = Telemetry::builder("stuck")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(format!("http://{}", listener.local_addr().unwrap()))
        .otlp_timeout(Duration::from_secs(30))
        .export_delay(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_millis(500))
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for _ in 0..100 {
            tracing::info_span!("work").in_scope(|| {});
        }
    });
    let started = Instant::now();
    telemetry.shutdown();
    // A bound, not a speed assertion: without the deadline this would take 30 s.
    assert!(started.elapsed() < Duration::from_secs(10));
    let spans = telemetry.stats().spans;
    assert_eq!(spans.exported, 0);
    assert_eq!(spans.dropped, 100, "{spans:?}");
    drop(listener);
}
