//! A stuck writer never blocks the caller: lines beyond the queue are dropped and counted.
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
