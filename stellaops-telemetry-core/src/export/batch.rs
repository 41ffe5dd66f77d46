//! Bounded batch processors for spans and log records.
//!
//! The stock batch processors drop silently when their queue is full and do not bound a hung
//! exporter (DESIGN.md); ours count every drop and bound every export:
//!
//! - the calling thread only does a `try_send` into a bounded queue; a full queue drops the
//!   record and counts it, it never blocks;
//! - one worker thread per processor batches records and exports them to every target, each
//!   call bounded by the export timeout;
//! - flush and shutdown are ordered after the records sent before them, and bounded by the
//!   caller's deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
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
use super::targets::{LogTarget, SpanTarget, run_bounded};
use crate::redaction::Redactor;
use crate::stats::SignalStats;

/// Queue and batch sizes and timing of one processor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Records held before new ones are dropped.
    pub(crate) max_queue: usize,
    /// Records per export call.
    pub(crate) max_batch: usize,
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
            max_batch: 512,
            delay: Duration::from_secs(1),
            export_timeout: Duration::from_secs(10),
            report_interval: Duration::from_secs(60),
        }
    }
}

enum Message<T> {
    Record(T),
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// The signal-specific part of a processor: how a batch reaches the targets.
trait Targets<T>: Send + 'static {
    fn export(&self, batch: Vec<T>, settings: &BatchSettings) -> Vec<OTelSdkResult>;
    fn shutdown(&self, timeout: Duration);
    fn signal(&self) -> &'static str;
}

struct Worker<T> {
    /// An unbounded list channel bounded by `queued`: memory follows the backlog instead of
    /// being reserved for a full queue of the largest record up front.
    sender: Sender<Message<T>>,
    max_queue: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The worker thread, to wake it. It never blocks on the channel (a receiver blocked on
    /// it would make every send a futex wake on the caller's thread): it parks until its
    /// export delay, and callers wake it only when a batch is full or for a control message.
    waker: std::thread::Thread,
    /// Records queued and not yet taken by the worker (decides when a batch is full).
    queued: Arc<AtomicUsize>,
    wake_at: usize,
    stats: Arc<SignalStats>,
    /// Records accepted but not yet counted as exported or dropped. Whoever takes a record
    /// out of this count (the worker after an export, or `shutdown` when its deadline passes)
    /// counts it, so every record is counted exactly once.
    pending: Arc<AtomicU64>,
    name: &'static str,
}

/// Takes `n` records out of the pending count; `false` when `shutdown` already counted them.
fn claim(pending: &AtomicU64, n: u64) -> bool {
    pending
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(n))
        .is_ok()
}

impl<T: Send + 'static> Worker<T> {
    fn start(
        name: &'static str,
        targets: impl Targets<T>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let worker_stats = stats.clone();
        let pending = Arc::new(AtomicU64::new(0));
        let worker_pending = pending.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = queued.clone();
        let thread = std::thread::Builder::new()
            .name(format!("stellaops-telemetry-{name}"))
            .spawn(move || {
                run(
                    receiver,
                    targets,
                    settings,
                    worker_stats,
                    worker_pending,
                    worker_queued,
                )
            })?;
        Ok(Worker {
            sender,
            max_queue: settings.max_queue.max(1),
            waker: thread.thread().clone(),
            queued,
            wake_at: settings.max_batch.max(1),
            thread: Mutex::new(Some(thread)),
            stats,
            pending,
            name,
        })
    }

    fn submit(&self, record: T) {
        // Counted as pending before the worker can see it, so its claim always finds it.
        self.pending.fetch_add(1, Ordering::AcqRel);
        let queued = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
        // A full queue drops the record (here, on the calling thread) and counts it.
        let accepted =
            queued <= self.max_queue && self.sender.send(Message::Record(record)).is_ok();
        if accepted {
            if queued >= self.wake_at {
                self.waker.unpark();
            }
        } else {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.waker.unpark();
            if claim(&self.pending, 1) {
                self.stats.record_dropped(1);
            }
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
            // now, so the final figures are right when the process reads them.
            let lost = self.pending.swap(0, Ordering::AcqRel);
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

fn run<T>(
    receiver: Receiver<Message<T>>,
    targets: impl Targets<T>,
    settings: BatchSettings,
    stats: Arc<SignalStats>,
    pending: Arc<AtomicU64>,
    queued: Arc<AtomicUsize>,
) {
    let mut batch: Vec<T> = Vec::with_capacity(settings.max_batch);
    let mut next_export = Instant::now() + settings.delay;
    let export = |batch: &mut Vec<T>| {
        if batch.is_empty() {
            return;
        }
        let items = std::mem::take(batch);
        let n = items.len() as u64;
        let results = targets.export(items, &settings);
        let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if !claim(&pending, n) {
            // `shutdown` passed its deadline and already counted these as dropped.
            return;
        }
        if failures.is_empty() {
            stats.record_exported(n);
        } else {
            // Lost for at least one destination: counted as dropped, reported at most once per
            // interval so a dead collector cannot flood the service's logs.
            stats.record_dropped(n);
            for error in failures {
                if stats.record_failure(error.to_string(), settings.report_interval) {
                    tracing::warn!(
                        target: "stellaops_telemetry",
                        signal = targets.signal(),
                        error = %error,
                        dropped = n,
                        "telemetry export failed; records dropped"
                    );
                }
            }
        }
    };
    // Records taken off the channel, not yet taken off `queued`: the shared counter is
    // updated once per run of records rather than once per record (its cache line would
    // otherwise bounce between the worker and every submitting thread).
    let mut taken = 0usize;
    loop {
        // Take everything queued, then park until the export delay (or a wake-up).
        loop {
            match receiver.try_recv() {
                Ok(Message::Record(record)) => {
                    taken += 1;
                    batch.push(record);
                    if batch.len() >= settings.max_batch {
                        queued.fetch_sub(std::mem::take(&mut taken), Ordering::AcqRel);
                        export(&mut batch);
                        next_export = Instant::now() + settings.delay;
                    }
                }
                Ok(Message::Flush(ack)) => {
                    queued.fetch_sub(std::mem::take(&mut taken), Ordering::AcqRel);
                    drain(&mut batch, settings.max_batch, &export);
                    let _ = ack.send(());
                }
                Ok(Message::Shutdown(ack)) => {
                    drain(&mut batch, settings.max_batch, &export);
                    targets.shutdown(settings.export_timeout);
                    let _ = ack.send(());
                    return;
                }
                Err(TryRecvError::Empty) => {
                    queued.fetch_sub(std::mem::take(&mut taken), Ordering::AcqRel);
                    break;
                }
                Err(TryRecvError::Disconnected) => {
                    drain(&mut batch, settings.max_batch, &export);
                    targets.shutdown(settings.export_timeout);
                    return;
                }
            }
        }
        let now = Instant::now();
        if now >= next_export {
            export(&mut batch);
            next_export = now + settings.delay;
        }
        std::thread::park_timeout(next_export.saturating_duration_since(Instant::now()));
    }
}

/// Exports everything batched so far, `max_batch` records per call.
fn drain<T>(batch: &mut Vec<T>, max_batch: usize, export: &impl Fn(&mut Vec<T>)) {
    while !batch.is_empty() {
        let rest = if batch.len() > max_batch {
            batch.split_off(max_batch)
        } else {
            Vec::new()
        };
        export(batch);
        *batch = rest;
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
// SDK spans move in unboxed: a box would be one more block allocated on the calling thread
// and freed on the worker, the very thing records avoid (they are boxed because the worker
// recycles them).
#[allow(clippy::large_enum_variant)]
pub(crate) enum SpanItem {
    Data(SpanData),
    Record(Box<SpanRecord>),
}

impl Targets<SpanItem> for SpanTargets {
    fn export(&self, batch: Vec<SpanItem>, settings: &BatchSettings) -> Vec<OTelSdkResult> {
        // Built and redacted here, on the worker: nothing reaches a target unredacted, and
        // the request path pays for neither.
        let batch: Vec<SpanData> = batch
            .into_iter()
            .map(|item| {
                let mut span = match item {
                    SpanItem::Data(span) => span,
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
            results.push(run_bounded(
                runtime,
                settings.export_timeout,
                target.export(items),
            ));
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
}

/// Hands finished spans to a pipeline's span worker directly (spans recorded without an SDK
/// `Span`, such as the server layer's request span): the same queue, redaction, bounds and
/// counts as every other span.
#[derive(Debug, Clone)]
pub(crate) struct SpanSink {
    worker: Arc<Worker<SpanItem>>,
    pool: Arc<RecordPool>,
}

impl SpanSink {
    pub(crate) fn submit(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.worker.submit(SpanItem::Data(span));
        }
    }

    /// An emptied record given back by the worker, if one is free.
    pub(crate) fn take_record(&self) -> Option<Box<SpanRecord>> {
        self.pool.take()
    }

    pub(crate) fn submit_record(&self, record: Box<SpanRecord>) {
        if record.span_context.is_sampled() {
            self.worker.submit(SpanItem::Record(record));
        }
    }
}

impl BatchSpanProcessor {
    pub(crate) fn start(
        mut targets: Vec<SpanTarget>,
        resource: &Resource,
        runtime: Option<tokio::runtime::Handle>,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        redactor: Redactor,
        scope: InstrumentationScope,
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
        let worker = Arc::new(Worker::start("spans", targets, settings, stats)?);
        Ok(BatchSpanProcessor { worker, pool })
    }

    pub(crate) fn sink(&self) -> SpanSink {
        SpanSink {
            worker: self.worker.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl SpanProcessor for BatchSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.worker.submit(SpanItem::Data(span));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.worker.flush(Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
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
    ) -> Vec<OTelSdkResult> {
        self.targets
            .iter()
            .map(|target| {
                let runtime = self.runtime.as_ref().filter(|_| target.needs_runtime());
                run_bounded(runtime, settings.export_timeout, target.export(&batch))
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
        self.worker.submit((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.worker.flush(Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.worker.shutdown(timeout)
    }
}
