//! Where finished JSON lines go: a bounded queue to one writer thread per output.
//!
//! The queue is a pair of byte buffers: callers append whole lines to the pending one under a
//! short lock, and the writer thread swaps it for its own empty buffer and writes the batch in
//! one call. Nothing is allocated per line once both buffers have grown, and the calling thread
//! never waits for I/O: when `queue_capacity` lines are already waiting, or the line would take
//! the bytes waiting and being written past the byte limit, the new line is dropped and counted.
//!
//! The queue's backlog (lines and bytes waiting or being written, and the age of the oldest) is
//! part of its [`SignalStats`] snapshot. The age is exact: the first line into an empty pending
//! buffer reads the clock, once per batch rather than once per line.

use std::io::{self, BufWriter, Write};
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{LogOutputError, RotatingFile};
use crate::stats::{Backlog, SignalStats};

/// How often a failing writer may report to stderr.
const FAILURE_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// How long the writer waits for more lines after emptying the queue before it goes idle; lines
/// written meanwhile reach the output at most this late.
const LINGER: Duration = Duration::from_millis(1);

/// How long dropping the last handle to an output waits for its writer thread.
const DROP_DEADLINE: Duration = Duration::from_secs(2);

/// Buffer capacity kept after a batch is written: a burst of long lines grows the buffers, and
/// beyond this they are given back rather than held for good.
const MAX_KEPT_BUFFER: usize = 1024 * 1024;

/// A destination for JSON log lines, handed to
/// [`JsonLogLayer::output`](crate::JsonLogLayer::output).
///
/// Clones share one output. When the last clone is dropped the output is shut down, waiting up to
/// two seconds for queued lines to be written.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stellaops_telemetry_core::{JsonLogLayer, LogOutput, SignalStats};
///
/// let stats = Arc::new(SignalStats::default());
/// let stdout = LogOutput::stdout(stats.clone())?;
/// let layer = JsonLogLayer::new("scanner").output(stdout.clone());
/// // … later, before exiting:
/// stdout.shutdown(Duration::from_secs(5));
/// # Ok::<(), stellaops_telemetry_core::LogOutputError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LogOutput {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Queue(Arc<QueueOutput>),
    #[cfg(feature = "testing")]
    Capture(LogCapture),
}

impl LogOutput {
    /// The number of lines an output queues before it starts dropping: 8192.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;

    /// The bytes of lines an output holds (waiting and being written) before it starts
    /// dropping: 8 MiB. Stdout and a log file together then hold at most 16 MiB, which with
    /// the span and log-record queues keeps a stalled pipeline under 28 MiB.
    pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

    /// Standard output, through a queue of [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY)
    /// lines. Written lines are counted as exported in `stats`, lost ones as dropped.
    ///
    /// # Errors
    ///
    /// [`LogOutputError::SpawnWriter`] when the writer thread cannot be started.
    pub fn stdout(stats: Arc<SignalStats>) -> Result<Self, LogOutputError> {
        Self::queue(
            "stdout",
            BufWriter::new(io::stdout()),
            Self::DEFAULT_QUEUE_CAPACITY,
            stats,
        )
    }

    /// A size-rotated file, through a queue of
    /// [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY) lines. Write and rotation errors
    /// are counted as failures (and the line as dropped) in `stats`; they never panic.
    ///
    /// # Errors
    ///
    /// [`LogOutputError::SpawnWriter`] when the writer thread cannot be started.
    pub fn file(file: RotatingFile, stats: Arc<SignalStats>) -> Result<Self, LogOutputError> {
        Self::queue("file", file, Self::DEFAULT_QUEUE_CAPACITY, stats)
    }

    /// Any writer, buffered, through a queue of `queue_capacity` lines (at least one).
    ///
    /// # Errors
    ///
    /// [`LogOutputError::SpawnWriter`] when the writer thread cannot be started.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use stellaops_telemetry_core::{LogOutput, SignalStats};
    ///
    /// let stderr = LogOutput::writer(std::io::stderr(), 1024, Arc::new(SignalStats::default()))?;
    /// # Ok::<(), stellaops_telemetry_core::LogOutputError>(())
    /// ```
    pub fn writer<W: Write + Send + 'static>(
        writer: W,
        queue_capacity: usize,
        stats: Arc<SignalStats>,
    ) -> Result<Self, LogOutputError> {
        Self::queue("writer", BufWriter::new(writer), queue_capacity, stats)
    }

    fn queue<W: Write + Send + 'static>(
        name: &str,
        writer: W,
        queue_capacity: usize,
        stats: Arc<SignalStats>,
    ) -> Result<Self, LogOutputError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
            progress: Condvar::new(),
            capacity: queue_capacity.max(1),
            high_water: (queue_capacity / 2).max(1),
            max_bytes: AtomicUsize::new(Self::DEFAULT_QUEUE_BYTES),
            backlog: stats.backlog(Self::DEFAULT_QUEUE_BYTES as u64),
            stats,
        });
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(format!("json-log-{name}"))
            .spawn(move || write_loop(&worker, writer))
            .map_err(LogOutputError::SpawnWriter)?;
        Ok(Self {
            kind: Kind::Queue(Arc::new(QueueOutput {
                shared,
                thread: Mutex::new(Some(thread)),
            })),
        })
    }

    /// The bytes of lines this output holds (waiting and being written) before it drops new
    /// ones, counting them as dropped. A line longer than the limit is always dropped.
    /// Default: [`DEFAULT_QUEUE_BYTES`](Self::DEFAULT_QUEUE_BYTES) (8 MiB).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use stellaops_telemetry_core::{LogOutput, SignalStats};
    ///
    /// let stats = Arc::new(SignalStats::default());
    /// let stderr = LogOutput::writer(std::io::stderr(), 1024, stats)?.max_queue_bytes(1 << 20);
    /// # Ok::<(), stellaops_telemetry_core::LogOutputError>(())
    /// ```
    pub fn max_queue_bytes(self, bytes: usize) -> Self {
        match &self.kind {
            Kind::Queue(queue) => {
                queue.shared.max_bytes.store(bytes, Ordering::Relaxed);
                queue.shared.backlog.set_limit(bytes as u64);
            }
            #[cfg(feature = "testing")]
            Kind::Capture(_) => {}
        }
        self
    }

    /// Queues one finished line (its trailing `\n` included). Never blocks on I/O.
    pub(crate) fn write_line(&self, line: &[u8]) {
        match &self.kind {
            Kind::Queue(queue) => queue.shared.push(line),
            #[cfg(feature = "testing")]
            Kind::Capture(capture) => capture.push(line),
        }
    }

    /// Waits until every line queued before this call has been written and flushed, or until
    /// `deadline` has passed. Returns whether everything was flushed in time.
    pub fn flush(&self, deadline: Duration) -> bool {
        match &self.kind {
            Kind::Queue(queue) => queue.shared.flush(deadline),
            #[cfg(feature = "testing")]
            Kind::Capture(_) => true,
        }
    }

    /// Stops accepting lines, writes what is queued and stops the writer thread, waiting at most
    /// `deadline`. Lines still queued at the deadline are counted as dropped. Returns whether the
    /// writer finished in time; later lines are dropped and counted either way.
    pub fn shutdown(&self, deadline: Duration) -> bool {
        match &self.kind {
            Kind::Queue(queue) => queue.shutdown(deadline),
            #[cfg(feature = "testing")]
            Kind::Capture(_) => true,
        }
    }
}

#[derive(Debug)]
struct QueueOutput {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueueOutput {
    fn shutdown(&self, deadline: Duration) -> bool {
        let finished = self.shared.shutdown(deadline);
        if finished && let Some(thread) = self.thread.lock().take() {
            // The loop has returned; a panic inside it has nothing left for us to clean up.
            let _ = thread.join();
        }
        finished
    }
}

impl Drop for QueueOutput {
    fn drop(&mut self) {
        self.shutdown(DROP_DEADLINE);
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake_writer: Condvar,
    /// Signalled when the writer has flushed a batch or exited.
    progress: Condvar,
    capacity: usize,
    /// Queue length at which a lingering writer is woken early.
    high_water: usize,
    /// Bytes waiting and being written beyond which new lines are dropped.
    max_bytes: AtomicUsize,
    /// Kept under the state lock, so it is exact.
    backlog: Arc<Backlog>,
    stats: Arc<SignalStats>,
}

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    pending_lines: usize,
    /// When the first line in `pending` was accepted, on the backlog's clock.
    pending_since: u64,
    /// Lines the writer has taken and not yet written and flushed (they are not exported yet).
    taken_lines: usize,
    /// Bytes of the batch the writer is writing (once written, the lines have left the
    /// queue's buffers; the buffered writer holds at most its own small buffer of them).
    writing_bytes: usize,
    /// Lines ever accepted into the queue.
    accepted: u64,
    /// Lines ever taken off the queue and finished with: written and flushed, failed, or dropped
    /// at shutdown.
    done: u64,
    /// The writer is asleep until woken (it found the queue empty twice in a row).
    writer_idle: bool,
    flush_requested: bool,
    shutdown: bool,
    exited: bool,
}

impl Shared {
    fn push(&self, line: &[u8]) {
        let mut state = self.state.lock();
        let held = state.pending.len() + state.writing_bytes;
        if state.shutdown
            || state.pending_lines >= self.capacity
            || held.saturating_add(line.len()) > self.max_bytes.load(Ordering::Relaxed)
        {
            drop(state);
            self.stats.record_dropped(1);
            return;
        }
        if state.pending_lines == 0 {
            state.pending_since = self.backlog.now();
            if state.taken_lines == 0 {
                self.backlog.set_head(state.pending_since);
            }
        }
        state.pending.extend_from_slice(line);
        state.pending_lines += 1;
        state.accepted += 1;
        self.backlog.records().fetch_add(1, Ordering::AcqRel);
        self.backlog.add_bytes(line.len() as u64);
        // A lingering writer comes back on its own; waking it for every line would cost a
        // syscall per line, so only an idle writer or a half-full queue is worth a wake-up.
        let wake = mem::take(&mut state.writer_idle) || state.pending_lines == self.high_water;
        drop(state);
        if wake {
            self.wake_writer.notify_one();
        }
    }

    fn flush(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut state = self.state.lock();
        let target = state.accepted;
        if state.done < target {
            state.flush_requested = true;
            self.wake_writer.notify_one();
        }
        while state.done < target && !state.exited {
            if self.progress.wait_until(&mut state, until).timed_out() {
                break;
            }
        }
        state.done >= target
    }

    fn shutdown(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut state = self.state.lock();
        state.shutdown = true;
        self.wake_writer.notify_one();
        while !state.exited {
            if self.progress.wait_until(&mut state, until).timed_out() {
                break;
            }
        }
        if !state.exited {
            // The writer is stuck; whatever it has not taken yet will not be written.
            let lost = mem::take(&mut state.pending_lines);
            let bytes = mem::take(&mut state.pending).len();
            state.done += lost as u64;
            self.backlog.claim(lost as u64);
            self.backlog.sub_bytes(bytes as u64);
            self.stats.record_dropped(lost as u64);
        }
        state.exited
    }

    /// The writer took the pending lines (under the state lock). Unless it still holds
    /// unflushed older ones, the oldest line is now the first of these.
    fn start_writing(&self, state: &mut State, lines: usize, bytes: usize) {
        if state.taken_lines == 0 && lines > 0 {
            self.backlog.set_head(state.pending_since);
        }
        state.taken_lines += lines;
        state.writing_bytes = bytes;
    }

    /// The writer has written its batch (under the state lock): its bytes are free again.
    fn finish_writing(&self, state: &mut State) {
        self.backlog
            .sub_bytes(mem::take(&mut state.writing_bytes) as u64);
    }

    /// The writer has flushed everything it took (under the state lock): those lines leave
    /// the backlog, and the oldest line is the first pending one.
    fn finish_flushing(&self, state: &mut State) {
        self.backlog.claim(mem::take(&mut state.taken_lines) as u64);
        if state.pending_lines > 0 {
            self.backlog.set_head(state.pending_since);
        }
    }

    fn record_write_error(&self, error: &io::Error) {
        if self
            .stats
            .record_failure(error.to_string(), FAILURE_REPORT_INTERVAL)
        {
            // The JSON log itself is what failed, so stderr is the only place left to say so.
            eprintln!("stellaops-telemetry: writing JSON log lines failed: {error}");
        }
    }
}

fn write_loop<W: Write>(shared: &Shared, mut writer: W) {
    let mut batch = Vec::new();
    // Lines written since the last flush, and how many of them were written without error.
    let mut unflushed = 0u64;
    let mut unflushed_ok = 0u64;
    loop {
        let (lines, shutdown) = {
            let mut state = shared.state.lock();
            if state.pending_lines == 0 && !state.shutdown && !state.flush_requested {
                // Linger first: under a steady stream the next lines arrive within the linger and
                // no caller has to wake us.
                shared.wake_writer.wait_for(&mut state, LINGER);
            }
            while state.pending_lines == 0 && !state.shutdown && !state.flush_requested {
                state.writer_idle = true;
                shared.wake_writer.wait(&mut state);
            }
            state.writer_idle = false;
            mem::swap(&mut state.pending, &mut batch);
            let lines = mem::take(&mut state.pending_lines);
            shared.start_writing(&mut state, lines, batch.len());
            (lines, state.shutdown)
        };

        // One write per batch: the batch holds whole lines, and `RotatingFile` never splits one.
        match writer.write_all(&batch) {
            Ok(()) => unflushed_ok += lines as u64,
            Err(error) => {
                // Part of the batch may have been written; count it all as lost.
                shared.stats.record_dropped(lines as u64);
                shared.record_write_error(&error);
            }
        }
        batch.clear();
        if batch.capacity() > MAX_KEPT_BUFFER {
            batch.shrink_to(MAX_KEPT_BUFFER);
        }
        unflushed += lines as u64;

        let mut state = shared.state.lock();
        shared.finish_writing(&mut state);
        if state.pending_lines == 0 || state.flush_requested || shutdown {
            state.flush_requested = false;
            drop(state);
            match writer.flush() {
                Ok(()) => shared.stats.record_exported(unflushed_ok),
                Err(error) => {
                    shared.stats.record_dropped(unflushed_ok);
                    shared.record_write_error(&error);
                }
            }
            state = shared.state.lock();
            shared.finish_flushing(&mut state);
            state.done += mem::take(&mut unflushed);
            unflushed_ok = 0;
            shared.progress.notify_all();
        }
        if state.shutdown && state.pending_lines == 0 && unflushed == 0 {
            state.exited = true;
            shared.progress.notify_all();
            return;
        }
    }
}

/// An output that keeps lines in memory, for tests (feature `testing`).
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::{JsonLogLayer, LogCapture};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let capture = LogCapture::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLogLayer::new("scanner").output(capture.output()));
/// tracing::subscriber::with_default(subscriber, || tracing::info!(findings = 3, "scan finished"));
/// assert_eq!(capture.json()[0]["findings"], 3);
/// ```
#[cfg(feature = "testing")]
#[derive(Clone, Debug, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<String>>>,
}

#[cfg(feature = "testing")]
impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// An output that appends to this capture, synchronously.
    pub fn output(&self) -> LogOutput {
        LogOutput {
            kind: Kind::Capture(self.clone()),
        }
    }

    /// The captured lines, without their trailing newline.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }

    /// The captured lines parsed as JSON; a line that does not parse is returned as a JSON string
    /// holding the raw line, so the assertion that looks at it fails with the line in view.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|_| serde_json::Value::from(line.clone()))
            })
            .collect()
    }

    /// Forgets every captured line.
    pub fn clear(&self) {
        self.lines.lock().clear();
    }

    fn push(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        self.lines
            .lock()
            .push(String::from_utf8_lossy(line).into_owned());
    }
}
