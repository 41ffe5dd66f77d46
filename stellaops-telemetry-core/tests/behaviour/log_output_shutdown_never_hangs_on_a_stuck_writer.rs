//! `shutdown` respects its deadline even when the writer never returns, and counts the loss.
#![allow(clippy::unwrap_used)]

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
use tracing_subscriber::layer::SubscriberExt;

/// Says when it is entered, then waits until released.
struct StuckWriter {
    entered: Sender<()>,
    release: Receiver<()>,
}

impl Write for StuckWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.entered.send(());
        let _ = self.release.recv();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn shutdown_returns_at_its_deadline_and_counts_queued_lines_as_dropped() {
    let (release, release_rx) = channel();
    let (entered_tx, entered) = channel();
    let writer = StuckWriter {
        entered: entered_tx,
        release: release_rx,
    };
    let stats = Arc::new(SignalStats::default());
    let output = LogOutput::writer(writer, 16, stats.clone()).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(JsonLogLayer::new("scanner").output(output.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10u64 {
            tracing::info!(i, "queued");
            if i == 0 {
                // The writer takes the first line alone and gets stuck flushing it.
                entered.recv_timeout(Duration::from_secs(5)).unwrap();
            }
        }
    });

    let started = Instant::now();
    assert!(!output.shutdown(Duration::from_millis(100)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        stats.snapshot().dropped,
        9,
        "the nine lines still queued are lost"
    );

    // Once the writer returns, its in-flight line is written and the thread ends.
    drop(release);
    assert!(output.shutdown(Duration::from_secs(5)));
    let snap = stats.snapshot();
    assert_eq!(snap.exported + snap.dropped, 10, "{snap:?}");
}
