//! A stuck writer or exporter never blocks the caller: records beyond a queue's bound, in
//! records or in bytes, are dropped and counted, the memory a stalled queue holds stays within
//! its byte bound, and its backlog shows in the stats until it drains.
#![allow(clippy::unwrap_used)]

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
use tracing_subscriber::layer::SubscriberExt;

/// A writer that blocks on its first write until the gate is opened.
struct GatedWriter {
    gate: Receiver<()>,
    open: bool,
}

fn gated() -> (GatedWriter, Sender<()>) {
    let (tx, rx) = channel();
    (
        GatedWriter {
            gate: rx,
            open: false,
        },
        tx,
    )
}

impl Write for GatedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.open {
            let _ = self.gate.recv();
            self.open = true;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_and_counts_then_drains_after_unblocking() {
    const EMITTED: u64 = 1_000;
    let (writer, gate) = gated();
    let stats = Arc::new(SignalStats::default());
    let output = LogOutput::writer(writer, 8, stats.clone()).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(JsonLogLayer::new("scanner").output(output.clone()));

    let started = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..EMITTED {
            tracing::info!(i, "while the writer is stuck");
        }
    });
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "the caller waited {elapsed:?}"
    );
    assert!(
        !output.flush(Duration::from_millis(50)),
        "flush cannot finish while stuck"
    );
    let stuck = stats.snapshot();
    assert!(stuck.dropped > 0, "{stuck:?}");
    assert_eq!(stuck.exported, 0);

    gate.send(()).unwrap();
    assert!(output.flush(Duration::from_secs(10)));
    let done = stats.snapshot();
    assert_eq!(done.exported + done.dropped, EMITTED, "{done:?}");
    assert!(done.exported >= 8, "{done:?}");
    assert!(output.shutdown(Duration::from_secs(5)));
}

#[test]
fn lines_beyond_the_byte_bound_are_dropped_while_short_ones_pass() {
    const LIMIT: usize = 64 * 1024;
    let (writer, gate) = gated();
    let stats = Arc::new(SignalStats::default());
    let output = LogOutput::writer(writer, 10_000, stats.clone())
        .unwrap()
        .max_queue_bytes(LIMIT);
    // Value limits high enough to let the huge lines through whole: the byte bound is tested.
    let bounds = stellaops_telemetry_core::ValueBounds::new(
        stellaops_telemetry_core::ValueLimits::default().log_value_bytes(1 << 20),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(
        JsonLogLayer::new("scanner")
            .value_bounds(bounds)
            .output(output.clone()),
    );
    let huge = "x".repeat(200_000);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("the writer takes this line and blocks");
        for _ in 0..20 {
            tracing::info!(user_agent = %huge, "longer than the whole queue");
        }
        for i in 0..50 {
            tracing::info!(i, "short");
        }
    });
    let stuck = stats.snapshot();
    assert_eq!(stuck.dropped, 20, "{stuck:?}");
    assert_eq!(stuck.queue_depth, 51);
    assert!(
        stuck.queue_bytes > 0 && stuck.queue_bytes <= LIMIT as u64,
        "{stuck:?}"
    );
    assert_eq!(stuck.queue_capacity_bytes, LIMIT as u64);
    assert!(stuck.queue_oldest_age.is_some());

    gate.send(()).unwrap();
    assert!(output.flush(Duration::from_secs(10)));
    let done = stats.snapshot();
    assert_eq!((done.exported, done.dropped), (51, 20), "{done:?}");
    assert_eq!((done.queue_depth, done.queue_bytes), (0, 0));
    assert_eq!(done.queue_oldest_age, None);
    assert!(output.shutdown(Duration::from_secs(5)));
}

mod pipeline {
    //! The span and log-record queues of a pipeline, behind a span exporter that blocks until
    //! released.

    use super::*;
    use stellaops_telemetry_core::Telemetry;
    use stellaops_telemetry_core::testing::TestExporters;

    #[test]
    fn a_stalled_span_queue_of_huge_spans_holds_no_more_than_its_byte_bound() {
        const LIMIT: usize = 1 << 20;
        let exporters = TestExporters::stalled_spans();
        let dir = tempfile::tempdir().unwrap();
        let telemetry = Telemetry::builder("bytes")
            .exporters(&[])
            .stdout_logs(false)
            .log_file(dir.path().join("service.log"), 1 << 20, 2)
            .test_exporters(&exporters)
            .max_queue_bytes(LIMIT)
            .max_log_line_queue_bytes(LIMIT / 2)
            // Huge values are kept whole here: the byte bound is tested, not the value limit.
            .value_limits(
                stellaops_telemetry_core::ValueLimits::default().attribute_value_bytes(1 << 20),
            )
            .build()
            .unwrap();
        let stats = telemetry.stats();
        assert_eq!(stats.spans.queue_capacity_bytes, LIMIT as u64);
        assert_eq!(stats.logs.queue_capacity_bytes, LIMIT as u64);
        assert_eq!(stats.log_lines.queue_capacity_bytes, (LIMIT / 2) as u64);
        assert_eq!(stats.metrics.queue_capacity_bytes, 0);

        let huge = "x".repeat(200_000);
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for _ in 0..100 {
                tracing::info_span!("small").in_scope(|| {});
            }
            for _ in 0..100 {
                tracing::info_span!("request", user_agent = %huge).in_scope(|| {});
                let held = telemetry.stats().spans.queue_bytes;
                assert!(held <= LIMIT as u64, "{held}");
            }
        });
        let stuck = telemetry.stats().spans;
        assert_eq!(stuck.queue_depth + stuck.dropped, 200, "{stuck:?}");
        // Every small span fits; at most five of the huge ones do.
        assert!(stuck.queue_depth >= 100, "{stuck:?}");
        assert!(stuck.dropped >= 95, "{stuck:?}");
        assert!(stuck.queue_oldest_age.is_some());

        exporters.release_spans();
        telemetry.flush(Duration::from_secs(30)).unwrap();
        let done = telemetry.stats().spans;
        assert_eq!(done.exported, stuck.queue_depth, "{done:?}");
        assert_eq!(done.dropped, stuck.dropped);
        assert_eq!((done.queue_depth, done.queue_bytes), (0, 0));
        assert_eq!(done.queue_oldest_age, None);
        telemetry.shutdown();
    }

    #[test]
    fn a_zero_byte_bound_is_refused_naming_the_setting() {
        for builder in [
            Telemetry::builder("svc").max_queue_bytes(0),
            Telemetry::builder("svc").max_log_line_queue_bytes(0),
        ] {
            let error = builder.stdout_logs(false).build().unwrap_err().to_string();
            assert!(error.contains("TelemetryBuilder::max_"), "{error}");
            assert!(
                error.contains("expected a positive number of bytes"),
                "{error}"
            );
        }
        let config = stellaops_telemetry_core::TelemetryConfig::from_toml_str(
            "[log_outputs]\nmax_queue_bytes = 0\n",
        )
        .unwrap();
        let error = Telemetry::builder("svc")
            .config(config)
            .stdout_logs(false)
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("log_outputs.max_queue_bytes"), "{error}");
    }
}
