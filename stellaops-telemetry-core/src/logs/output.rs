//! Where JSON lines go: non-blocking writers (stdout, rotating file), synchronous writers and
//! an in-memory capture for tests.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::rotate::RotatingFile;
use crate::stats::SignalStats;

/// Lines a non-blocking output holds before it drops new ones.
pub const DEFAULT_QUEUE_LINES: usize = 16_384;

/// A destination of JSON lines. Cheap to clone (clones share the destination).
#[derive(Clone)]
pub struct LogOutput {
    inner: Arc<Inner>,
}

enum Inner {
    NonBlocking(NonBlocking),
    Sync(Mutex<Box<dyn Write + Send>>, Arc<SignalStats>),
    Capture(LogCapture),
}

impl std::fmt::Debug for LogOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.inner {
            Inner::NonBlocking(_) => "non-blocking",
            Inner::Sync(..) => "sync",
            Inner::Capture(_) => "capture",
        };
        f.debug_struct("LogOutput").field("kind", &kind).finish()
    }
}

enum Message {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

struct NonBlocking {
    sender: SyncSender<Message>,
    stats: Arc<SignalStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Something a background writer thread writes whole lines to.
trait LineWriter: Send + 'static {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
}

struct Buffered<W: Write>(std::io::BufWriter<W>);

impl<W: Write + Send + 'static> LineWriter for Buffered<W> {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.0.write_all(line)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl LineWriter for RotatingFile {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        RotatingFile::write_line(self, line)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        RotatingFile::flush(self)
    }
}

fn writer_loop(receiver: Receiver<Message>, mut target: impl LineWriter, stats: Arc<SignalStats>) {
    let report = Duration::from_secs(60);
    loop {
        // Flush whenever the queue is momentarily empty, then wait for more.
        let message = match receiver.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) => {
                if let Err(e) = target.flush() {
                    stats.record_failure(format!("log output flush: {e}"), report);
                }
                match receiver.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => {
                let _ = target.flush();
                return;
            }
        };
        match message {
            Message::Line(line) => match target.write_line(&line) {
                Ok(()) => stats.record_exported(1),
                Err(e) => {
                    stats.record_dropped(1);
                    stats.record_failure(format!("log output write: {e}"), report);
                }
            },
            Message::Flush(ack) => {
                let _ = target.flush();
                let _ = ack.send(());
            }
            Message::Shutdown(ack) => {
                let _ = target.flush();
                let _ = ack.send(());
                return;
            }
        }
    }
}

impl LogOutput {
    fn non_blocking(
        name: &str,
        target: impl LineWriter,
        queue: usize,
        stats: Arc<SignalStats>,
    ) -> std::io::Result<LogOutput> {
        let (sender, receiver) = mpsc::sync_channel(queue.max(1));
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("stellaops-telemetry-log-{name}"))
            .spawn(move || writer_loop(receiver, target, thread_stats))?;
        Ok(LogOutput {
            inner: Arc::new(Inner::NonBlocking(NonBlocking {
                sender,
                stats,
                thread: Mutex::new(Some(thread)),
            })),
        })
    }

    /// Lines to stdout from a background thread (buffered; flushed when the queue is empty).
    ///
    /// # Errors
    ///
    /// The writer thread cannot be started.
    pub fn stdout(stats: Arc<SignalStats>) -> std::io::Result<LogOutput> {
        Self::non_blocking(
            "stdout",
            Buffered(std::io::BufWriter::new(std::io::stdout())),
            DEFAULT_QUEUE_LINES,
            stats,
        )
    }

    /// Lines to a size-rotated file from a background thread.
    ///
    /// # Errors
    ///
    /// The writer thread cannot be started.
    pub fn file(file: RotatingFile, stats: Arc<SignalStats>) -> std::io::Result<LogOutput> {
        Self::non_blocking("file", file, DEFAULT_QUEUE_LINES, stats)
    }

    /// Lines to any writer from a background thread holding at most `queue` lines; a full
    /// queue drops the line and counts it.
    ///
    /// # Errors
    ///
    /// The writer thread cannot be started.
    pub fn writer(
        writer: impl Write + Send + 'static,
        queue: usize,
        stats: Arc<SignalStats>,
    ) -> std::io::Result<LogOutput> {
        Self::non_blocking(
            "writer",
            Buffered(std::io::BufWriter::new(writer)),
            queue,
            stats,
        )
    }

    /// Lines written synchronously on the calling thread. Blocks the caller on I/O: for
    /// in-memory writers in tests and benchmarks, not for services.
    pub fn sync_writer(writer: impl Write + Send + 'static, stats: Arc<SignalStats>) -> LogOutput {
        LogOutput {
            inner: Arc::new(Inner::Sync(Mutex::new(Box::new(writer)), stats)),
        }
    }

    /// Hands one finished line (with its `\n`) to the output. Never blocks on I/O for the
    /// non-blocking outputs: a full queue drops the line and counts it.
    pub fn write_line(&self, line: &[u8]) {
        match &*self.inner {
            Inner::NonBlocking(nb) => match nb.sender.try_send(Message::Line(line.to_vec())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    nb.stats.record_dropped(1)
                }
            },
            Inner::Sync(writer, stats) => match writer.lock().write_all(line) {
                Ok(()) => stats.record_exported(1),
                Err(_) => stats.record_dropped(1),
            },
            Inner::Capture(capture) => capture.push(line),
        }
    }

    fn control(&self, make: fn(mpsc::Sender<()>) -> Message, timeout: Duration) -> bool {
        let Inner::NonBlocking(nb) = &*self.inner else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::channel();
        let mut message = make(tx);
        loop {
            match nb.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Waits (at most `timeout`) until every queued line is written and flushed.
    pub fn flush(&self, timeout: Duration) -> bool {
        match &*self.inner {
            Inner::Sync(writer, _) => writer.lock().flush().is_ok(),
            _ => self.control(Message::Flush, timeout),
        }
    }

    /// Flushes and stops the writer thread, waiting at most `timeout`. Lines written later
    /// are dropped and counted.
    pub fn shutdown(&self, timeout: Duration) {
        if self.control(Message::Shutdown, timeout)
            && let Inner::NonBlocking(nb) = &*self.inner
            && let Some(handle) = nb.thread.lock().take()
        {
            let _ = handle.join();
        }
    }
}

/// Captured JSON lines, for tests. Clones share the lines.
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<String>>>,
}

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// An output that appends to this capture.
    pub fn output(&self) -> LogOutput {
        LogOutput {
            inner: Arc::new(Inner::Capture(self.clone())),
        }
    }

    fn push(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        self.lines
            .lock()
            .push(text.trim_end_matches('\n').to_owned());
    }

    /// Every line so far, without its `\n`.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }

    /// Every line parsed as JSON (a line that does not parse becomes `Value::Null`).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}
