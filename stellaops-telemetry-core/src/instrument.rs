//! The runtime of [`#[instrument]`](crate::instrument): what its generated code calls, through
//! `__private`. Its shape changes with the macro; nothing here is a stable API except
//! [`ErrorKind`].
//!
//! One call: [`Call::start`] finds the current pipeline (through the tracing dispatcher, so
//! `build()` pipelines in tests work as well as `install()`ed ones), asks its sampler, and
//! only when the span is recorded evaluates the attribute expressions into a recycled
//! [`SpanRecord`]. The body runs with the span's context attached (children nest under it,
//! log lines carry its ids); [`Call::finish`] sets the error status and `error.type` from a
//! returned `Err` and queues the record. A call dropped without `finish` (a panic, or a
//! cancelled future) still ends its span.
//!
//! A metric whose labels are string literals (and `outcome`) records through the callsite's
//! series, bound once per thread and pipeline ([`BoundSlots`]): no registry or label look-up
//! per call. Labels known only at run time are looked up at every call.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SamplingDecision, SamplingResult,
};
use tracing_subscriber::Layer;

use crate::clock::WallClock;
use crate::export::record::SpanRecord;
use crate::metrics::{
    BoundCounter, BoundHistogram, CounterDef, HistogramDef, Labels, MetricDescriptor, Metrics,
};
use crate::recorder::SpanRecorder;

/// Classifies an error for `error.type` and the `error_kind` metric label: a short, bounded
/// name (`timeout`, `not_found`). Without an implementation, an error is classified by its
/// type's name (`ScanError`).
///
/// ```
/// use stellaops_telemetry_core::ErrorKind;
///
/// enum ScanError { Timeout, Registry(String) }
///
/// impl ErrorKind for ScanError {
///     fn error_kind(&self) -> &'static str {
///         match self {
///             ScanError::Timeout => "timeout",
///             ScanError::Registry(_) => "registry",
///         }
///     }
/// }
/// # let _ = ScanError::Registry(String::new());
/// assert_eq!(ScanError::Timeout.error_kind(), "timeout");
/// ```
pub trait ErrorKind {
    /// The kind of this error: a low-cardinality name.
    fn error_kind(&self) -> &'static str;
}

impl<E: ErrorKind + ?Sized> ErrorKind for Box<E> {
    fn error_kind(&self) -> &'static str {
        (**self).error_kind()
    }
}

impl ErrorKind for std::io::Error {
    /// The I/O error's kind, in snake case (`not_found`, `timed_out`; `io` for the rest).
    fn error_kind(&self) -> &'static str {
        use std::io::ErrorKind as K;
        match self.kind() {
            K::NotFound => "not_found",
            K::PermissionDenied => "permission_denied",
            K::ConnectionRefused => "connection_refused",
            K::ConnectionReset => "connection_reset",
            K::ConnectionAborted => "connection_aborted",
            K::NotConnected => "not_connected",
            K::AddrInUse => "addr_in_use",
            K::AddrNotAvailable => "addr_not_available",
            K::BrokenPipe => "broken_pipe",
            K::AlreadyExists => "already_exists",
            K::WouldBlock => "would_block",
            K::InvalidInput => "invalid_input",
            K::InvalidData => "invalid_data",
            K::TimedOut => "timed_out",
            K::WriteZero => "write_zero",
            K::Interrupted => "interrupted",
            K::Unsupported => "unsupported",
            K::UnexpectedEof => "unexpected_eof",
            K::OutOfMemory => "out_of_memory",
            _ => "io",
        }
    }
}

/// What a pipeline lends instrumented code.
#[derive(Clone)]
pub struct Pipeline(Arc<PipelineParts>);

struct PipelineParts {
    recorder: SpanRecorder,
    metrics: Metrics,
    clock: WallClock,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

impl Pipeline {
    pub(crate) fn new(recorder: SpanRecorder, metrics: Metrics) -> Self {
        Pipeline(Arc::new(PipelineParts {
            recorder,
            metrics,
            clock: WallClock::new(),
        }))
    }

    /// The pipeline of the current tracing dispatcher when it is one of ours, else the
    /// `install()`ed one (a service may put a subscriber of its own in front of it).
    pub fn current() -> Option<Pipeline> {
        tracing::dispatcher::get_default(Pipeline::of).or_else(|| INSTALLED.get().cloned())
    }

    /// The pipeline `dispatch` carries, if it is one of ours.
    pub(crate) fn of(dispatch: &tracing::Dispatch) -> Option<Pipeline> {
        dispatch
            .downcast_ref::<PipelineLayer>()
            .map(|layer| layer.0.clone())
    }

    /// Makes this the pipeline found when the current dispatcher is not one of ours (once,
    /// by `install()`); `false` when one was installed already.
    pub(crate) fn install(self) -> bool {
        INSTALLED.set(self).is_ok()
    }

    /// The pipeline's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

/// The `install()`ed pipeline.
static INSTALLED: std::sync::OnceLock<Pipeline> = std::sync::OnceLock::new();

/// A layer that only carries the [`Pipeline`], for [`Pipeline::current`] to find by downcast.
/// It is filtered to nothing, so it sees no callsite.
pub(crate) struct PipelineLayer(pub(crate) Pipeline);

impl<S: tracing::Subscriber> Layer<S> for PipelineLayer {}

/// The Level 2 random flag: set on the traces a call starts.
const RANDOM: TraceFlags = TraceFlags::new(0x02);

/// A call's span as the current context makes it: its context (the parent's with the new
/// span), and, when the span is sampled, what the record needs from the parent.
struct Child {
    cx: Context,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    /// The sampler's result when the span is recorded and sampled.
    sampling: Option<SamplingResult>,
    /// The parent's request tenant, looked up only for a sampled span.
    tenant: Option<Arc<str>>,
}

impl Child {
    /// The span `name` started under `parent` (the new context shares the parent's entries).
    #[inline]
    fn of(parent: &Context, pipeline: &Pipeline, name: &'static str) -> Child {
        let span = parent.span();
        let parent_context = span.span_context();
        let valid = parent_context.is_valid();
        let ids = RandomIdGenerator::default();
        let (trace_id, inherited) = if valid {
            (
                parent_context.trace_id(),
                parent_context.trace_flags() & RANDOM,
            )
        } else {
            (ids.new_trace_id(), RANDOM)
        };
        let sampling =
            pipeline
                .0
                .recorder
                .should_sample(parent, trace_id, name, &SpanKind::Internal, &[]);
        let sampled = sampling.decision == SamplingDecision::RecordAndSample;
        let trace_state = if valid {
            parent_context.trace_state().clone()
        } else {
            sampling.trace_state.clone()
        };
        let span_context = SpanContext::new(
            trace_id,
            ids.new_span_id(),
            inherited.with_sampled(sampled),
            false,
            trace_state,
        );
        let tenant = if sampled {
            parent
                .get::<crate::RequestContext>()
                .and_then(|cx| cx.shared_tenant().cloned())
        } else {
            None
        };
        Child {
            parent_span_id: if valid {
                parent_context.span_id()
            } else {
                SpanId::INVALID
            },
            parent_is_remote: parent_context.is_remote(),
            cx: parent.with_remote_span_context(span_context),
            sampling: sampled.then_some(sampling),
            tenant,
        }
    }
}

/// One instrumented call (see the module docs).
#[derive(Debug)]
pub struct Call {
    pipeline: Option<Pipeline>,
    record: Option<Box<SpanRecord>>,
    /// The current context with this call's span: attached while the body runs.
    cx: Option<Context>,
    start: Instant,
    finished: bool,
}

impl Call {
    /// Starts a call of span `name`; `fill` records its attributes, and runs only when the
    /// span is recorded. The tenant of the current [`RequestContext`](crate::RequestContext)
    /// becomes `tenant.id` unless `fill` sets one.
    #[inline]
    pub fn start(name: &'static str, fill: impl FnOnce(&mut SpanRecord)) -> Call {
        let start = Instant::now();
        let mut call = Call {
            pipeline: Pipeline::current(),
            record: None,
            cx: None,
            start,
            finished: false,
        };
        let Some(pipeline) = &call.pipeline else {
            return call;
        };
        if !pipeline.0.recorder.enabled() {
            return call;
        }
        // Called from a thread-local's destructor, the context's own thread-local may be gone:
        // the call then records nothing rather than take the process down.
        // The parent is taken out first (two reference counts, no allocation), so that the
        // sampler runs with the context's thread-local free: a sampler that attaches a context
        // of its own must not find it borrowed.
        let Ok(child) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Child::of(&Context::current(), pipeline, name)
        })) else {
            return call;
        };
        if let Some(sampling) = child.sampling {
            let mut record = pipeline.0.recorder.new_record(
                child.cx.span().span_context().clone(),
                child.parent_span_id,
                child.parent_is_remote,
                SpanKind::Internal,
                pipeline.0.clock.system_time(start),
            );
            record.name = (name, "");
            for attribute in sampling.attributes {
                record.push_key_value(attribute);
            }
            fill(&mut record);
            if let Some(tenant) = child.tenant
                && !record.has_attribute("tenant.id")
            {
                record.push_text("tenant.id", &tenant);
            }
            call.record = Some(record);
        }
        // Unsampled spans still carry their context, so children inherit the decision.
        call.cx = Some(child.cx);
        call
    }

    /// A call that records no span (metrics only).
    #[inline]
    pub fn untraced() -> Call {
        Call {
            pipeline: Pipeline::current(),
            record: None,
            cx: None,
            start: Instant::now(),
            finished: false,
        }
    }

    /// Attaches the call's context until the guard drops (sync functions; once: the context
    /// moves into the guard).
    #[inline]
    pub fn enter(&mut self) -> Option<opentelemetry::ContextGuard> {
        let cx = self.cx.take()?;
        // See `start`: a destroyed context thread-local means no attach.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cx.attach())).ok()
    }

    /// Runs `future` with the call's context attached at every poll (async functions).
    #[inline]
    pub fn in_context<F: Future>(&self, future: F) -> InContext<F> {
        InContext {
            cx: self.cx.clone(),
            future,
        }
    }

    /// The pipeline's metrics, when there is a pipeline: the metric labels are evaluated
    /// only then.
    #[inline]
    pub fn metrics(&self) -> Option<&Metrics> {
        self.pipeline.as_ref().map(Pipeline::metrics)
    }

    /// The pipeline the call records into, when there is one.
    #[inline]
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    /// Time since the call started.
    #[inline]
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Ends the span: an `error` kind sets the error status and `error.type`. Returns the
    /// call's duration (one clock reading serves the span and the duration metric).
    #[inline]
    pub fn finish(&mut self, error: Option<&'static str>) -> Duration {
        let elapsed = self.start.elapsed();
        self.end(error, elapsed);
        elapsed
    }

    fn end(&mut self, error: Option<&'static str>, elapsed: Duration) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let (Some(pipeline), Some(mut record)) = (&self.pipeline, self.record.take()) else {
            return;
        };
        record.end_time = record
            .start_time
            .checked_add(elapsed)
            .unwrap_or(record.start_time);
        if let Some(kind) = error {
            record.error = true;
            record.push_static("error.type", kind);
        }
        pipeline.0.recorder.submit_record(record);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // A panic unwinding through the body, or a future dropped before it finished: the
        // span still ends (a panic is an error; a cancellation is not).
        if self.finished {
            return;
        }
        let error = std::thread::panicking().then_some("panic");
        self.end(error, self.start.elapsed());
    }
}

pin_project_lite::pin_project! {
    /// A future run with a call's context attached at every poll.
    #[derive(Debug)]
    pub struct InContext<F> {
        cx: Option<Context>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = this.cx.clone().map(Context::attach);
        this.future.poll(task)
    }
}

// ---- error kinds: autoref specialisation at the call site -------------------------------

/// A function's return value, asked whether it is an `Err` (see [`ReturnedErr`]).
pub struct Returned<'a, R>(pub &'a R);

/// `Err` of a returned `Result`.
pub trait ReturnedErr<'a> {
    /// The error type (`Infallible` for values that are not `Result`s).
    type Error;
    /// The returned error, if any.
    fn returned_err(&self) -> Option<&'a Self::Error>;
}

impl<'a, T, E> ReturnedErr<'a> for Returned<'a, Result<T, E>> {
    type Error = E;
    fn returned_err(&self) -> Option<&'a E> {
        self.0.as_ref().err()
    }
}

/// The fallback of [`ReturnedErr`]: a value that is not a `Result` is never an error.
pub trait ReturnedValue {
    /// Always `None`.
    fn returned_err(&self) -> Option<&'static std::convert::Infallible>;
}

impl<R> ReturnedValue for &Returned<'_, R> {
    fn returned_err(&self) -> Option<&'static std::convert::Infallible> {
        None
    }
}

/// An error, asked for its kind (see [`KindByTrait`]).
pub struct Kind<'a, E: ?Sized>(pub &'a E);

/// The kind of an error that implements [`ErrorKind`].
pub trait KindByTrait {
    /// Its [`ErrorKind::error_kind`].
    fn kind(&self) -> &'static str;
}

impl<E: ErrorKind + ?Sized> KindByTrait for Kind<'_, E> {
    fn kind(&self) -> &'static str {
        self.0.error_kind()
    }
}

/// The fallback of [`KindByTrait`]: the error type's name, without its path or generics.
pub trait KindByName {
    /// The short type name (`ScanError`).
    fn kind(&self) -> &'static str;
}

impl<E: ?Sized> KindByName for &Kind<'_, E> {
    fn kind(&self) -> &'static str {
        short_type_name(std::any::type_name::<E>())
    }
}

/// `a::b::ScanError<c::D>` → `ScanError`. Tuples, references, slices and smart pointers
/// (`Box<dyn Error>`) say nothing useful: `_OTHER`, the conventions' fallback.
fn short_type_name(name: &'static str) -> &'static str {
    let base = name.split('<').next().unwrap_or(name);
    let last = base.rsplit("::").next().unwrap_or(base);
    let plain = !last.is_empty() && last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain && !matches!(last, "Box" | "Arc" | "Rc" | "Cow") {
        last
    } else {
        "_OTHER"
    }
}

/// Adds an attribute named in `fields(...)` (or `tenant = ...`).
#[inline]
pub fn record_field<T: crate::spans::AttributeValue + ?Sized>(
    record: &mut SpanRecord,
    key: &'static str,
    value: &T,
) {
    value.push_to(key, record);
}

/// Runs a sync function's body (a `FnOnce`, so it may return borrows of `&mut` arguments).
#[inline(always)]
pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// The `outcome` metric label of a call.
#[inline]
pub fn outcome_label(error: Option<&'static str>) -> &'static str {
    if error.is_some() { "error" } else { "ok" }
}

/// The `error_kind` metric label of a call (`none` when it succeeded).
#[inline]
pub fn error_kind_label(error: Option<&'static str>) -> &'static str {
    error.unwrap_or("none")
}

// ---- metrics ----------------------------------------------------------------------------

/// Records a call's duration, in seconds, looking its series up (labels known only at run
/// time).
#[inline]
pub fn record_duration<L: Labels>(
    metrics: &Metrics,
    def: &HistogramDef<L>,
    labels: L::At<'_>,
    elapsed: Duration,
) {
    metrics.histogram(def).record(elapsed.as_secs_f64(), labels);
}

/// Counts a call, looking its series up (labels known only at run time).
#[inline]
pub fn count_call<L: Labels>(metrics: &Metrics, def: &CounterDef<L>, labels: L::At<'_>) {
    metrics.counter(def).add(1, labels);
}

/// One callsite's bound series, per thread (the generated code keeps one in a
/// `thread_local!` for each metric whose labels are constant): `N` label sets (the constant
/// labels alone, or with `outcome` `ok` and `error`), each bound for the pipeline that bound
/// it. A call recording into another pipeline binds again; a thread's cache costs no lock and
/// no shared cache line.
pub struct BoundSlots<B, const N: usize> {
    slots: RefCell<[Option<Bound<B>>; N]>,
}

/// A bound series and the pipeline it was bound for.
type Bound<B> = (Weak<PipelineParts>, B);

impl<B, const N: usize> BoundSlots<B, N> {
    /// Empty slots.
    pub const fn new() -> Self {
        BoundSlots {
            slots: RefCell::new([const { None }; N]),
        }
    }

    /// Calls `use_bound` with the series of label set `index` bound for `pipeline`, bound by
    /// `bind` first when this thread has not bound it for that pipeline.
    #[inline]
    fn with(
        &self,
        pipeline: &Pipeline,
        index: usize,
        bind: impl FnOnce(&Metrics) -> Option<B>,
        use_bound: impl FnOnce(&B),
    ) {
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            // Re-entered (a label's evaluation recorded into the same callsite): bind anew.
            if let Some(bound) = bind(pipeline.metrics()) {
                use_bound(&bound);
            }
            return;
        };
        let Some(slot) = slots.get_mut(index) else {
            if let Some(bound) = bind(pipeline.metrics()) {
                use_bound(&bound);
            }
            return;
        };
        match slot {
            // The weak pointer keeps the pipeline's allocation, so its address is not reused
            // by another pipeline while the slot holds it.
            Some((owner, bound)) if std::ptr::eq(owner.as_ptr(), Arc::as_ptr(&pipeline.0)) => {
                use_bound(bound);
            }
            _ => {
                if let Some(bound) = bind(pipeline.metrics()) {
                    use_bound(&bound);
                    *slot = Some((Arc::downgrade(&pipeline.0), bound));
                }
            }
        }
    }
}

impl<B, const N: usize> Default for BoundSlots<B, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, const N: usize> std::fmt::Debug for BoundSlots<B, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSlots").finish_non_exhaustive()
    }
}

/// A callsite's thread-local [`BoundSlots`].
pub type LocalSlots<B, const N: usize> = std::thread::LocalKey<BoundSlots<B, N>>;

/// Records a call's duration, in seconds, into the series of constant `labels` (set
/// `index`), bound once per thread and pipeline in `slots`.
#[inline]
pub fn record_duration_bound<L: Labels, const N: usize>(
    slots: &'static LocalSlots<BoundHistogram, N>,
    pipeline: &Pipeline,
    index: usize,
    def: &HistogramDef<L>,
    labels: L::At<'_>,
    elapsed: Duration,
) {
    let seconds = elapsed.as_secs_f64();
    // Taken by whichever binds: the slot, or the look-up of a thread whose locals are being
    // destroyed.
    let mut labels = Some(labels);
    let mut bind = |metrics: &Metrics| Some(metrics.histogram(def).bind(labels.take()?));
    if slots
        .try_with(|slots| slots.with(pipeline, index, &mut bind, |h| h.record(seconds)))
        .is_err()
        && let Some(bound) = bind(pipeline.metrics())
    {
        bound.record(seconds);
    }
}

/// Counts a call in the series of constant `labels` (set `index`), bound once per thread and
/// pipeline in `slots`.
#[inline]
pub fn count_call_bound<L: Labels, const N: usize>(
    slots: &'static LocalSlots<BoundCounter, N>,
    pipeline: &Pipeline,
    index: usize,
    def: &CounterDef<L>,
    labels: L::At<'_>,
) {
    let mut labels = Some(labels);
    let mut bind = |metrics: &Metrics| Some(metrics.counter(def).bind(labels.take()?));
    if slots
        .try_with(|slots| slots.with(pipeline, index, &mut bind, BoundCounter::inc))
        .is_err()
        && let Some(bound) = bind(pipeline.metrics())
    {
        bound.inc();
    }
}

/// The label set of a callsite whose only run-time label is `outcome`: 0 for `ok`, 1 for
/// `error`.
#[inline]
pub fn outcome_index(error: Option<&'static str>) -> usize {
    usize::from(error.is_some())
}

/// A duration metric is in seconds (evaluated at compile time by the generated code).
#[allow(clippy::panic)]
pub const fn assert_seconds(descriptor: &MetricDescriptor) {
    let unit = descriptor.unit.as_bytes();
    if !(unit.len() == 1 && unit[0] == b's') {
        panic!("a `duration` metric records seconds: its unit must be \"s\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Plain;

    #[derive(Debug)]
    enum Classified {
        Timeout,
    }

    impl ErrorKind for Classified {
        fn error_kind(&self) -> &'static str {
            match self {
                Classified::Timeout => "timeout",
            }
        }
    }

    // The borrows select the impl (autoref specialisation), as in the generated code.
    #[allow(clippy::needless_borrow)]
    #[test]
    fn errors_are_classified_by_their_kind_else_by_their_type_name() {
        let r: Result<(), Classified> = Err(Classified::Timeout);
        let kind = (&Returned(&r)).returned_err().map(|e| (&Kind(e)).kind());
        assert_eq!(kind, Some("timeout"));
        let r: Result<(), Plain> = Err(Plain);
        let kind = (&Returned(&r)).returned_err().map(|e| (&Kind(e)).kind());
        assert_eq!(kind, Some("Plain"));
        let r: Result<(), Plain> = Ok(());
        assert!((&Returned(&r)).returned_err().is_none());
        let not_a_result = 3u8;
        assert!((&Returned(&not_a_result)).returned_err().is_none());
        assert_eq!(short_type_name("a::b::Wrapper<c::D>"), "Wrapper");
        assert_eq!(
            short_type_name("(http::StatusCode, alloc::string::String)"),
            "_OTHER"
        );
        assert_eq!(
            short_type_name("alloc::boxed::Box<dyn core::error::Error>"),
            "_OTHER"
        );
        assert_eq!(short_type_name("&str"), "_OTHER");
    }

    #[test]
    fn labels_for_outcomes() {
        assert_eq!(outcome_label(None), "ok");
        assert_eq!(outcome_label(Some("x")), "error");
        assert_eq!(error_kind_label(None), "none");
        assert_eq!(error_kind_label(Some("timeout")), "timeout");
    }
}
