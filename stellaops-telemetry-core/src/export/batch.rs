//! Bounded batch processors for spans and log records.
//!
//! The stock batch processors drop silently when their queue is full and do not bound a hung
//! exporter; ours count every drop and bound every export:
//!
//! - the calling thread only does a non-blocking send into a queue bounded by records and by
//!   estimated bytes; a record that would pass either bound is dropped and counted, never
//!   waited for;
//! - one worker thread per processor batches records and exports them to every target, each
//!   call bounded by the export timeout; a batch is cut at `max_batch` records or
//!   `max_batch_bytes`, whichever comes first;
//! - flush and shutdown are ordered after the records sent before them, and bounded by the
//!   caller's deadline.
//!
//! # Backlog
//!
//! Each processor keeps its backlog in the signal's [`SignalStats`]: the records accepted and
//! not yet exported or dropped, their estimated bytes (released once the export call that
//! carried them has returned, so a batch in flight still counts), and the age of the oldest.
//! The age costs the calling thread a clock reading only when the backlog grows from empty
//! and for every 64th record queued behind the worker; the worker keeps a lower bound of the
//! oldest record's acceptance from those readings and from its own, taken before each time it
//! finds the queue empty. The age therefore never understates, and overstates by at most the
//! time the 64 records before the oldest took to arrive, or one pass of the worker (its
//! export delay plus the exports of that pass), whichever is less.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LogRecord as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use parking_lot::Mutex;

use super::record::{RecordPool, SpanRecord};
use super::size;
use super::tail::{TailSampler, TailSamplingSnapshot};
use super::targets::{LogTarget, SpanTarget, run_bounded};
use crate::redaction::Redactor;
use crate::stats::{Backlog, SignalStats};

/// The estimated bytes the span and log-record queues hold together before new records are
/// dropped: 12 MiB, shared (either queue may use all of it while the other is empty). A
/// collector outage therefore grows a service by under 16 MiB, export buffers and retries
/// included; with the JSON log outputs (8 MiB each, stdout and a log file) a stalled pipeline
/// stays under 28 MiB of queued records. 12 MiB is some 9,600 request spans (about 1.3 KiB
/// each as queued), and holds a burst of 10,000 plain spans (about 1 KiB each) ended at once. A service that must ride
/// out longer outages without losing spans raises it
/// ([`TelemetryBuilder::max_queue_bytes`](crate::TelemetryBuilder::max_queue_bytes)).
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 12 * 1024 * 1024;

/// Estimated bytes per export call: 2 MiB keeps one OTLP request well under the 4 MiB a gRPC
/// receiver accepts by default, so a batch of large records is split rather than refused.
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Every record queued this far behind the worker carries the time it was accepted.
const STAMP_EVERY: usize = 64;

/// Queue and batch sizes and timing of one processor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Records held before new ones are dropped.
    pub(crate) max_queue: usize,
    /// Estimated bytes held before new records are dropped.
    pub(crate) max_queue_bytes: usize,
    /// Records per export call.
    pub(crate) max_batch: usize,
    /// Estimated bytes per export call (a single larger record goes alone).
    pub(crate) max_batch_bytes: usize,
    /// Longest a record waits before it is exported.
    pub(crate) delay: Duration,
    /// Bound of one export call.
    pub(crate) export_timeout: Duration,
    /// Export failures are logged at most once per this interval.
    pub(crate) report_interval: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_queue: 65_536,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_batch: 512,
            max_batch_bytes: MAX_BATCH_BYTES,
            delay: Duration::from_secs(1),
            export_timeout: Duration::from_secs(10),
            report_interval: Duration::from_secs(60),
        }
    }
}

/// What the worker learns about a record besides the record itself.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Its estimated size, released when the export that carried it has returned.
    bytes: u64,
    /// When it was accepted, on its backlog's clock, if the caller read the clock for it
    /// (0 otherwise).
    stamp: u64,
}

/// Work the worker does on each pass besides exporting (the tail sampler's decision-wait
/// sweep), set once the processor exists.
type Tick = Arc<OnceLock<Box<dyn Fn() + Send + Sync>>>;

enum Message<T> {
    Record(T, Entry),
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// One destination's export of a batch: its result, and how many of the batch's records it
/// did not deliver (all of them on an error, unless it delivered some, one request per
/// tenant).
struct Delivery {
    result: OTelSdkResult,
    lost: u64,
}

impl Delivery {
    /// The delivery of `n` records of which `delivered` went out.
    fn of(result: OTelSdkResult, n: usize, delivered: &AtomicU64) -> Delivery {
        let lost = match result {
            Ok(()) => 0,
            Err(_) => (n as u64).saturating_sub(delivered.load(Ordering::Relaxed)),
        };
        Delivery { result, lost }
    }
}

/// The signal-specific part of a processor: how a batch reaches the targets.
trait Targets<T>: Send + 'static {
    fn export(&self, batch: Vec<T>, settings: &BatchSettings) -> Vec<Delivery>;
    fn shutdown(&self, timeout: Duration);
    fn signal(&self) -> &'static str;
}

struct Worker<T> {
    /// An unbounded list channel bounded by `queued` and the backlog's bytes: memory follows
    /// the backlog instead of being reserved for a full queue of the largest record up front.
    sender: Sender<Message<T>>,
    max_queue: usize,
    max_bytes: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The worker thread, to wake it. It never blocks on the channel (a receiver blocked on
    /// it would make every send a futex wake on the caller's thread): it parks until its
    /// export delay, and callers wake it only when a batch is full or for a control message.
    waker: std::thread::Thread,
    /// Records queued and not yet taken by the worker (decides when a batch is full).
    queued: Arc<AtomicUsize>,
    wake_at: usize,
    stats: Arc<SignalStats>,
    /// Records accepted but not yet counted as exported or dropped, and their bytes. Whoever
    /// takes a record out of its count (the worker after an export, or `shutdown` when its
    /// deadline passes) counts it, so every record is counted exactly once.
    backlog: Arc<Backlog>,
    name: &'static str,
}

impl<T: Send + 'static> Worker<T> {
    fn start(
        name: &'static str,
        targets: impl Targets<T>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
    ) -> std::io::Result<Self> {
        Self::start_with_tick(name, targets, settings, stats, Tick::default())
    }

    fn start_with_tick(
        name: &'static str,
        targets: impl Targets<T>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        tick: Tick,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let max_bytes = u64::try_from(settings.max_queue_bytes).unwrap_or(u64::MAX);
        let backlog = stats.backlog(max_bytes);
        let queued = Arc::new(AtomicUsize::new(0));
        let run = Run {
            receiver,
            targets,
            settings,
            stats: stats.clone(),
            backlog: backlog.clone(),
            queued: queued.clone(),
            batch: Vec::with_capacity(settings.max_batch),
            batch_bytes: 0,
            taken: 0,
            floor: 0,
            last_stamp: 0,
            tick,
        };
        let thread = std::thread::Builder::new()
            .name(format!("stellaops-telemetry-{name}"))
            .spawn(move || run.run())?;
        Ok(Worker {
            sender,
            max_queue: settings.max_queue.max(1),
            max_bytes,
            waker: thread.thread().clone(),
            queued,
            wake_at: settings.max_batch.max(1),
            thread: Mutex::new(Some(thread)),
            stats,
            backlog,
            name,
        })
    }

    /// Queues `record`, whose estimated size is `bytes`, or drops and counts it.
    fn submit(&self, record: T, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        // Counted as pending before the worker can see it, so its claim always finds it.
        let was_empty = self.backlog.records().fetch_add(1, Ordering::AcqRel) == 0;
        // The record that starts a backlog reads the clock (also when it is dropped: a record
        // accepted meanwhile by another thread belongs to the backlog it started).
        let began = if was_empty {
            let now = self.backlog.now();
            self.backlog.began(now);
            now
        } else {
            0
        };
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        let held = self.backlog.add_bytes(bytes);
        if queued < self.max_queue && held <= self.max_bytes {
            // Every 64th record in a run the worker has not taken yet carries its time, which
            // bounds the age of the records behind it.
            let stamp = if began == 0 && queued.is_multiple_of(STAMP_EVERY) {
                self.backlog.now()
            } else {
                began
            };
            let entry = Entry { bytes, stamp };
            if self.sender.send(Message::Record(record, entry)).is_ok() {
                if queued + 1 >= self.wake_at {
                    self.waker.unpark();
                }
                return;
            }
        }
        // A full queue (by records or by bytes) drops the record here, on the calling
        // thread, and counts it.
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.backlog.sub_bytes(bytes);
        self.waker.unpark();
        if self.backlog.claim(1) {
            self.stats.record_dropped(1);
        }
    }

    /// Sends a control message and waits for its acknowledgement until `deadline`.
    fn control(
        &self,
        make: impl FnOnce(mpsc::Sender<()>) -> Message<T>,
        timeout: Duration,
    ) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::channel();
        // Control messages are not bounded by the record queue: they always get in, behind
        // the records sent before them.
        self.sender
            .send(make(ack_tx))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        self.waker.unpark();
        let remaining = deadline.saturating_duration_since(Instant::now());
        ack_rx
            .recv_timeout(remaining)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.control(Message::Flush, timeout)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.control(Message::Shutdown, timeout);
        if result.is_err() {
            // The deadline passed: whatever is still queued or in flight is lost. Count it
            // now, so the final figures are right when the process reads them. Its bytes
            // stay counted until the worker lets go of the records.
            let lost = self.backlog.records().swap(0, Ordering::AcqRel);
            self.stats.record_dropped(lost);
        }
        if result.is_ok()
            && let Some(handle) = self.thread.lock().take()
        {
            let _ = handle.join();
        }
        result
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        // The sender goes with `self`: wake the worker so it sees the disconnection now
        // rather than at its next export delay.
        self.waker.unpark();
    }
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("signal", &self.name)
            .finish()
    }
}

/// The worker thread's state: the batch it is filling and what it knows of when the records
/// it has not exported yet were accepted.
struct Run<T, X> {
    receiver: Receiver<Message<T>>,
    targets: X,
    settings: BatchSettings,
    stats: Arc<SignalStats>,
    backlog: Arc<Backlog>,
    queued: Arc<AtomicUsize>,
    batch: Vec<T>,
    /// Estimated bytes of `batch`.
    batch_bytes: u64,
    /// Records taken off the channel, not yet taken off `queued`: the shared counter is
    /// updated once per run of records rather than once per record (its cache line would
    /// otherwise bounce between the worker and every submitting thread).
    taken: usize,
    /// A clock reading taken before the worker last found the channel empty: every record
    /// still in the channel was accepted after it.
    floor: u64,
    /// The latest time carried by a record taken so far: every record behind it in the
    /// channel was accepted after it.
    last_stamp: u64,
    tick: Tick,
}

impl<T, X: Targets<T>> Run<T, X> {
    fn run(mut self) {
        let delay = self.settings.delay;
        let mut next_export = Instant::now() + delay;
        loop {
            // Take everything queued, then park until the export delay (or a wake-up).
            let mut before_empty = self.backlog.now();
            loop {
                match self.receiver.try_recv() {
                    Ok(Message::Record(record, entry)) => {
                        // A record that would take the batch past its byte bound starts the
                        // next batch: no export request grows past the bound because of it.
                        if !self.batch.is_empty()
                            && self.batch_bytes.saturating_add(entry.bytes)
                                > self.settings.max_batch_bytes as u64
                        {
                            self.release_taken();
                            self.export();
                            next_export = Instant::now() + delay;
                            before_empty = self.backlog.now();
                        }
                        self.take(record, entry);
                        if self.batch.len() >= self.settings.max_batch
                            || self.batch_bytes >= self.settings.max_batch_bytes as u64
                        {
                            self.release_taken();
                            self.export();
                            next_export = Instant::now() + delay;
                            before_empty = self.backlog.now();
                        }
                    }
                    Ok(Message::Flush(ack)) => {
                        self.release_taken();
                        self.export();
                        before_empty = self.backlog.now();
                        let _ = ack.send(());
                    }
                    Ok(Message::Shutdown(ack)) => {
                        self.export();
                        self.targets.shutdown(self.settings.export_timeout);
                        self.discard_the_rest();
                        let _ = ack.send(());
                        return;
                    }
                    Err(TryRecvError::Empty) => {
                        self.release_taken();
                        self.floor = before_empty;
                        if self.batch.is_empty() {
                            self.backlog.set_head(self.next_bound());
                        }
                        break;
                    }
                    Err(TryRecvError::Disconnected) => {
                        self.export();
                        self.targets.shutdown(self.settings.export_timeout);
                        return;
                    }
                }
            }
            if let Some(tick) = self.tick.get() {
                tick();
            }
            let now = Instant::now();
            if now >= next_export {
                self.export();
                next_export = now + delay;
            }
            std::thread::park_timeout(next_export.saturating_duration_since(Instant::now()));
        }
    }

    /// A lower bound of when the next record to be taken was accepted.
    fn next_bound(&self) -> u64 {
        self.floor.max(self.last_stamp)
    }

    fn take(&mut self, record: T, entry: Entry) {
        self.taken += 1;
        self.last_stamp = self.last_stamp.max(entry.stamp);
        if self.batch.is_empty() {
            // The oldest record not yet exported is now this one.
            self.backlog.set_head(self.next_bound());
        }
        self.batch.push(record);
        self.batch_bytes = self.batch_bytes.saturating_add(entry.bytes);
    }

    fn release_taken(&mut self) {
        self.queued
            .fetch_sub(std::mem::take(&mut self.taken), Ordering::AcqRel);
    }

    /// Exports the batch, then counts it and releases its bytes.
    fn export(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.batch);
        let n = items.len() as u64;
        let results = self.targets.export(items, &self.settings);
        // The targets have let go of the batch: its memory is free again.
        self.backlog
            .sub_bytes(std::mem::take(&mut self.batch_bytes));
        let counted = self.backlog.claim(n);
        // The oldest record is now one not taken yet. Published after the claim: a reader in
        // between sees an older bound, so the age may overstate for an instant, never
        // understate.
        self.backlog.set_head(self.next_bound());
        if !counted {
            // `shutdown` passed its deadline and already counted these as dropped.
            return;
        }
        let failures: Vec<_> = results
            .iter()
            .filter_map(|d| d.result.as_ref().err())
            .collect();
        if failures.is_empty() {
            self.stats.record_exported(n);
            return;
        }
        // A record lost for any destination is dropped. Where several destinations each lost
        // part of the batch they may have lost the same records: their sum, capped at the
        // batch, never understates the loss. Failures are reported at most once per interval
        // so a dead collector cannot flood the service's logs.
        let lost = results
            .iter()
            .map(|d| d.lost)
            .fold(0u64, u64::saturating_add)
            .min(n);
        self.stats.record_exported(n - lost);
        self.stats.record_dropped(lost);
        for error in failures {
            if self
                .stats
                .record_failure(error.to_string(), self.settings.report_interval)
            {
                tracing::warn!(
                    target: "stellaops_telemetry",
                    signal = self.targets.signal(),
                    error = %error,
                    dropped = lost,
                    "telemetry export failed; records dropped"
                );
            }
        }
    }

    /// Records sent after the shutdown message: dropped and counted, their bytes released.
    fn discard_the_rest(&mut self) {
        while let Ok(message) = self.receiver.try_recv() {
            if let Message::Record(_, entry) = message {
                self.backlog.sub_bytes(entry.bytes);
                if self.backlog.claim(1) {
                    self.stats.record_dropped(1);
                }
            }
        }
    }
}

struct SpanTargets {
    targets: Vec<SpanTarget>,
    /// The scope of the spans recorded as [`SpanRecord`]s.
    scope: InstrumentationScope,
    /// Where emptied records go back to.
    pool: Arc<RecordPool>,
    runtime: Option<tokio::runtime::Handle>,
    redactor: Redactor,
}

/// What the span worker queues: SDK spans, and records filled on the request path.
// Both are boxed so that a queue slot is two words: the queue's blocks (allocated and zeroed
// on the sending thread every 31 slots) and each send's copy stay small. An SDK span pays one
// more block, allocated on the calling thread and freed on the worker, beside the several its
// attributes and texts already cost; records come back to the pool and cost none.
pub(crate) enum SpanItem {
    Data(Box<SpanData>),
    Record(Box<SpanRecord>),
}

impl Targets<SpanItem> for SpanTargets {
    fn export(&self, batch: Vec<SpanItem>, settings: &BatchSettings) -> Vec<Delivery> {
        // Built and redacted here, on the worker: nothing reaches a target unredacted, and
        // the request path pays for neither.
        let batch: Vec<SpanData> = batch
            .into_iter()
            .map(|item| {
                let mut span = match item {
                    SpanItem::Data(span) => *span,
                    SpanItem::Record(mut record) => {
                        let span = record.take_span_data(&self.scope);
                        self.pool.give_back(record);
                        span
                    }
                };
                self.redactor.redact_span(&mut span);
                span
            })
            .collect();
        let mut results = Vec::with_capacity(self.targets.len());
        let last = self.targets.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, target) in self.targets.iter().enumerate() {
            let items = if i == last {
                batch.take().unwrap_or_default()
            } else {
                batch.clone().unwrap_or_default()
            };
            let runtime = self.runtime.as_ref().filter(|_| target.needs_runtime());
            let n = items.len();
            let delivered = AtomicU64::new(0);
            let result = run_bounded(
                runtime,
                settings.export_timeout,
                target.export(items, settings.export_timeout, &delivered),
            );
            results.push(Delivery::of(result, n, &delivered));
        }
        results
    }

    fn shutdown(&self, timeout: Duration) {
        for target in &self.targets {
            let _ = target.shutdown(timeout);
        }
    }

    fn signal(&self) -> &'static str {
        "traces"
    }
}

/// The span processor every pipeline uses: bounded queue, counted drops, bounded exports.
#[derive(Debug)]
pub(crate) struct BatchSpanProcessor {
    worker: Arc<Worker<SpanItem>>,
    pool: Arc<RecordPool>,
    tail: Option<Arc<TailSampler<SpanItem>>>,
}

/// Hands finished spans to a pipeline's span worker directly (spans recorded without an SDK
/// `Span`, such as the server layer's request span): the same queue, redaction, bounds and
/// counts as every other span, and the tail sampler in front of the queue where the SDK
/// samples.
#[derive(Debug, Clone)]
pub(crate) struct SpanSink {
    worker: Arc<Worker<SpanItem>>,
    pool: Arc<RecordPool>,
    tail: Option<Arc<TailSampler<SpanItem>>>,
}

impl SpanSink {
    pub(crate) fn submit(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            let bytes = size::span_data(&span);
            self.offer(SpanItem::Data(Box::new(span)), bytes);
        }
    }

    /// An emptied record given back by the worker, if one is free.
    pub(crate) fn take_record(&self) -> Option<Box<SpanRecord>> {
        self.pool.take()
    }

    pub(crate) fn submit_record(&self, record: Box<SpanRecord>) {
        if record.span_context.is_sampled() {
            // The queue slot (as large as an SDK span) plus the boxed record.
            let bytes = std::mem::size_of::<SpanItem>() + record.estimated_size();
            self.offer(SpanItem::Record(record), bytes);
        }
    }

    /// Queues a span, or hands it to the tail sampler, which passes its trace on once decided.
    fn offer(&self, item: SpanItem, bytes: usize) {
        match &self.tail {
            Some(tail) => tail.on_end(item, bytes, |item, bytes, keep| {
                pass(&self.worker, &self.pool, item, bytes, keep);
            }),
            None => self.worker.submit(item, bytes),
        }
    }

    /// Decides every trace the tail sampler holds (before a flush or shutdown).
    pub(crate) fn release_held(&self) {
        if let Some(tail) = &self.tail {
            tail.release(|item, bytes, keep| pass(&self.worker, &self.pool, item, bytes, keep));
        }
    }

    /// The tail sampler's counters, when the SDK samples.
    pub(crate) fn tail_sampling(&self) -> Option<TailSamplingSnapshot> {
        self.tail.as_ref().map(|tail| tail.snapshot())
    }

    /// A reader of the tail sampler's counters for the self-metrics, when the SDK samples.
    pub(crate) fn tail_sampling_reader(
        &self,
    ) -> Option<Arc<dyn Fn() -> TailSamplingSnapshot + Send + Sync>> {
        let tail = self.tail.clone()?;
        Some(Arc::new(move || tail.snapshot()))
    }
}

/// A decided span: queued when kept; a sampled-out record goes back to the pool emptied.
fn pass(worker: &Worker<SpanItem>, pool: &RecordPool, item: SpanItem, bytes: usize, keep: bool) {
    match (keep, item) {
        (true, item) => worker.submit(item, bytes),
        (false, SpanItem::Record(mut record)) => {
            record.clear();
            pool.give_back(record);
        }
        (false, SpanItem::Data(_)) => {}
    }
}

impl BatchSpanProcessor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        mut targets: Vec<SpanTarget>,
        resource: &Resource,
        runtime: Option<tokio::runtime::Handle>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        redactor: Redactor,
        scope: InstrumentationScope,
        tail: Option<Arc<TailSampler<SpanItem>>>,
    ) -> std::io::Result<Self> {
        for target in &mut targets {
            target.set_resource(resource);
        }
        // Enough records for a few full batches in flight; beyond it they are freed.
        let pool = Arc::new(RecordPool::new(4 * settings.max_batch.max(1)));
        let targets = SpanTargets {
            targets,
            scope,
            pool: pool.clone(),
            runtime,
            redactor,
        };
        let tick = Tick::default();
        let worker = Arc::new(Worker::start_with_tick(
            "spans",
            targets,
            settings,
            stats,
            tick.clone(),
        )?);
        if let Some(tail) = &tail {
            // Weak: the worker thread must not keep its own processor alive.
            let (sampler, queue, records) =
                (Arc::downgrade(tail), Arc::downgrade(&worker), pool.clone());
            let _ = tick.set(Box::new(move || {
                if let (Some(sampler), Some(queue)) = (sampler.upgrade(), queue.upgrade()) {
                    sampler.sweep(|item, bytes, keep| pass(&queue, &records, item, bytes, keep));
                }
            }));
        }
        Ok(BatchSpanProcessor { worker, pool, tail })
    }

    pub(crate) fn sink(&self) -> SpanSink {
        SpanSink {
            worker: self.worker.clone(),
            pool: self.pool.clone(),
            tail: self.tail.clone(),
        }
    }
}

impl SpanProcessor for BatchSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.sink().submit(span);
    }

    /// Decides every trace the tail sampler holds, then exports.
    fn force_flush(&self) -> OTelSdkResult {
        self.sink().release_held();
        self.worker.flush(Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.sink().release_held();
        self.worker.shutdown(timeout)
    }
}

struct LogTargets {
    targets: Vec<LogTarget>,
    runtime: Option<tokio::runtime::Handle>,
}

impl Targets<(SdkLogRecord, InstrumentationScope)> for LogTargets {
    fn export(
        &self,
        batch: Vec<(SdkLogRecord, InstrumentationScope)>,
        settings: &BatchSettings,
    ) -> Vec<Delivery> {
        self.targets
            .iter()
            .map(|target| {
                let runtime = self.runtime.as_ref().filter(|_| target.needs_runtime());
                let timeout = settings.export_timeout;
                let delivered = AtomicU64::new(0);
                let result =
                    run_bounded(runtime, timeout, target.export(&batch, timeout, &delivered));
                Delivery::of(result, batch.len(), &delivered)
            })
            .collect()
    }

    fn shutdown(&self, timeout: Duration) {
        for target in &self.targets {
            let _ = target.shutdown(timeout);
        }
    }

    fn signal(&self) -> &'static str {
        "logs"
    }
}

/// The log-record processor every pipeline uses, with the same guarantees as spans.
#[derive(Debug)]
pub(crate) struct BatchLogProcessor {
    worker: Worker<(SdkLogRecord, InstrumentationScope)>,
}

impl BatchLogProcessor {
    pub(crate) fn start(
        mut targets: Vec<LogTarget>,
        resource: &Resource,
        runtime: Option<tokio::runtime::Handle>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
    ) -> std::io::Result<Self> {
        for target in &mut targets {
            target.set_resource(resource);
        }
        let worker = Worker::start("logs", LogTargets { targets, runtime }, settings, stats)?;
        Ok(BatchLogProcessor { worker })
    }
}

impl LogProcessor for BatchLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        // The tracing bridge sets only the observed time; the event happened then, and an
        // OTLP record without a time (`timeUnixNano: 0`) sorts at 1970 in most backends.
        if record.timestamp().is_none()
            && let Some(observed) = record.observed_timestamp()
        {
            record.set_timestamp(observed);
        }
        let bytes = size::log_record(record, scope);
        self.worker.submit((record.clone(), scope.clone()), bytes);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.worker.flush(Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.worker.shutdown(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Condvar;

    /// Exports block until the gate opens; records are byte vectors, counted when exported.
    #[derive(Clone, Default)]
    struct Gated {
        gate: Arc<(Mutex<bool>, Condvar)>,
        exported: Arc<AtomicUsize>,
    }

    impl Gated {
        fn open(&self) {
            *self.gate.0.lock() = true;
            self.gate.1.notify_all();
        }
    }

    impl Targets<Vec<u8>> for Gated {
        fn export(&self, batch: Vec<Vec<u8>>, _: &BatchSettings) -> Vec<Delivery> {
            let mut open = self.gate.0.lock();
            while !*open {
                self.gate.1.wait(&mut open);
            }
            self.exported.fetch_add(batch.len(), Ordering::AcqRel);
            vec![Delivery {
                result: Ok(()),
                lost: 0,
            }]
        }

        fn shutdown(&self, _: Duration) {}

        fn signal(&self) -> &'static str {
            "test"
        }
    }

    fn worker(max_queue_bytes: usize) -> (Worker<Vec<u8>>, Gated, Arc<SignalStats>) {
        let targets = Gated::default();
        let stats = Arc::new(SignalStats::default());
        let settings = BatchSettings {
            max_queue_bytes,
            max_batch: 4,
            delay: Duration::from_millis(1),
            ..BatchSettings::default()
        };
        let worker = Worker::start("test", targets.clone(), settings, stats.clone()).unwrap();
        (worker, targets, stats)
    }

    fn submit(worker: &Worker<Vec<u8>>, len: usize) {
        worker.submit(vec![0; len], len);
    }

    #[test]
    fn a_queue_full_by_bytes_drops_large_records_while_small_ones_pass() {
        let (worker, targets, stats) = worker(10_000);
        // Nothing is released while the exporter is stuck, so acceptance depends on sizes only.
        submit(&worker, 6_000);
        submit(&worker, 6_000);
        for _ in 0..10 {
            submit(&worker, 100);
        }
        submit(&worker, 6_000);
        let stuck = stats.snapshot();
        assert_eq!(stuck.dropped, 2, "{stuck:?}");
        assert_eq!(stuck.queue_depth, 11);
        assert_eq!(stuck.queue_bytes, 7_000);
        assert_eq!(stuck.queue_capacity_bytes, 10_000);
        assert!(stuck.queue_oldest_age.is_some());

        targets.open();
        worker.flush(Duration::from_secs(10)).unwrap();
        let done = stats.snapshot();
        assert_eq!(done.exported, 11, "{done:?}");
        assert_eq!(done.queue_depth, 0);
        assert_eq!(
            done.queue_bytes, 0,
            "the byte counter returns to 0 after export"
        );
        assert_eq!(done.queue_oldest_age, None);
        assert_eq!(targets.exported.load(Ordering::Acquire), 11);
        worker.shutdown(Duration::from_secs(10)).unwrap();
    }

    /// Two destinations: the first loses the records whose first byte is 1 (a tenant's share
    /// refused), the second those whose first byte is `lost_by_second`.
    struct PartlyRefusing {
        lost_by_second: u8,
    }

    impl Targets<Vec<u8>> for PartlyRefusing {
        fn export(&self, batch: Vec<Vec<u8>>, _: &BatchSettings) -> Vec<Delivery> {
            [1, self.lost_by_second]
                .into_iter()
                .map(|refused| {
                    let lost = batch.iter().filter(|r| r[0] == refused).count() as u64;
                    Delivery {
                        result: if lost == 0 {
                            Ok(())
                        } else {
                            Err(OTelSdkError::InternalFailure("share refused".into()))
                        },
                        lost,
                    }
                })
                .collect()
        }

        fn shutdown(&self, _: Duration) {}

        fn signal(&self) -> &'static str {
            "test"
        }
    }

    fn partly_refused(lost_by_second: u8) -> crate::stats::SignalSnapshot {
        let stats = Arc::new(SignalStats::default());
        let settings = BatchSettings {
            max_batch: 10,
            delay: Duration::from_secs(60),
            ..BatchSettings::default()
        };
        let worker = Worker::start(
            "test",
            PartlyRefusing { lost_by_second },
            settings,
            stats.clone(),
        )
        .unwrap();
        for first in [0, 1, 0, 1, 2, 0, 2, 2, 0, 0] {
            worker.submit(vec![first, 0], 2);
        }
        worker.shutdown(Duration::from_secs(10)).unwrap();
        stats.snapshot()
    }

    #[test]
    fn a_batch_partly_refused_counts_only_the_refused_records_as_dropped() {
        // The second destination takes everything: the first's two refused records are lost.
        let one = partly_refused(9);
        assert_eq!((one.exported, one.dropped), (8, 2), "{one:?}");
        assert_eq!(one.export_failures, 1);
        // Each destination refuses a different share: the loss is their sum.
        let two = partly_refused(2);
        assert_eq!((two.exported, two.dropped), (5, 5), "{two:?}");
        // Both refuse the same share: counted once per destination (the records cannot be
        // told apart across destinations), so the loss is never understated.
        let same = partly_refused(1);
        assert_eq!((same.exported, same.dropped), (6, 4), "{same:?}");
    }

    #[test]
    fn a_stalled_queue_of_huge_records_holds_no_more_than_its_byte_bound() {
        let (worker, targets, stats) = worker(1 << 20);
        for _ in 0..200 {
            submit(&worker, 200_000);
            let held = stats.snapshot().queue_bytes;
            assert!(held <= 1 << 20, "{held}");
        }
        let stuck = stats.snapshot();
        assert_eq!(stuck.queue_depth, 5, "{stuck:?}");
        assert_eq!(stuck.dropped, 195);
        targets.open();
        worker.shutdown(Duration::from_secs(10)).unwrap();
        let done = stats.snapshot();
        assert_eq!((done.exported, done.dropped), (5, 195));
        assert_eq!((done.queue_depth, done.queue_bytes), (0, 0));
    }

    #[test]
    fn the_oldest_record_ages_while_the_exporter_is_stuck() {
        let (worker, targets, stats) = worker(1 << 20);
        submit(&worker, 10);
        let deadline = Instant::now() + Duration::from_secs(30);
        while stats.snapshot().queue_oldest_age < Some(Duration::from_millis(20)) {
            assert!(Instant::now() < deadline, "{:?}", stats.snapshot());
            std::thread::sleep(Duration::from_millis(5));
        }
        targets.open();
        worker.flush(Duration::from_secs(10)).unwrap();
        assert_eq!(stats.snapshot().queue_oldest_age, None);
        worker.shutdown(Duration::from_secs(10)).unwrap();
    }
}
