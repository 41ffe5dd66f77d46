//! A full log queue drops lines and counts them; the calling thread never blocks on I/O.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
use tracing_subscriber::layer::SubscriberExt;

/// A writer stuck until the test releases it.
struct Gate(mpsc::Receiver<()>, bool);

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.1 {
            let _ = self.0.recv();
            self.1 = true;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stuck_writer_makes_lines_drop_not_the_caller_wait() {
    let (release, gate) = mpsc::channel();
    let stats = Arc::new(SignalStats::default());
    let output = LogOutput::writer(Gate(gate, false), 8, stats.clone()).unwrap();
    let layer = JsonLogLayer::builder("svc", "1")
        .output(output.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1_000 {
                tracing::info!(
                    i,
                    padding = "0123456789012345678901234567890123456789",
                    "event"
                );
            }
        });
        let _ = done_tx.send(());
    });
    // The emitting thread finishes while the writer is still stuck: it never waited on I/O.
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the caller blocked");
    assert!(stats.snapshot().dropped > 0);
    release.send(()).unwrap();
    assert!(output.flush(Duration::from_secs(10)));
    let snap = stats.snapshot();
    assert_eq!(snap.exported + snap.dropped, 1_000, "{snap:?}");
    assert!(snap.exported >= 8);
}
