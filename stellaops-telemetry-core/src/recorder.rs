//! [`SpanRecorder`]: the one road every span takes to export.
//!
//! Spans reach a pipeline three ways: `tracing` spans (through tracing-opentelemetry and the
//! SDK tracer), the tower server layer's request spans and `#[instrument]` spans (both
//! recorded directly, as a [`SpanRecord`], without an SDK `Span`). All three are decided by the
//! same sampler ([`SpanRecorder::should_sample`]; the SDK tracer provider is given the same
//! one), and all three end in [`SpanRecorder::submit`] or [`SpanRecorder::submit_record`]:
//! the span limits (attribute count and value length, events, links) and the redaction apply
//! there, and the span queue counts what is exported and dropped.
//!
//! ```
//! use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
//! use opentelemetry_sdk::trace::SamplingDecision;
//! use stellaops_telemetry_core::Telemetry;
//!
//! let telemetry = Telemetry::builder("scanner").stdout_logs(false).exporters(&[]).build()?;
//! let recorder = telemetry.span_recorder();
//! let trace_id = TraceId::from_bytes([7; 16]);
//! let decision = recorder.should_sample(&opentelemetry::Context::new(), trace_id, "scan", &SpanKind::Internal, &[]);
//! if decision.decision == SamplingDecision::RecordAndSample {
//!     let context = SpanContext::new(trace_id, SpanId::from_bytes([1; 8]), TraceFlags::SAMPLED, false, TraceState::NONE);
//!     let mut record = recorder.new_record(context, SpanId::INVALID, false, SpanKind::Internal, std::time::SystemTime::now());
//!     record.name = ("scan", "image");
//!     record.push_text("image.ref", "registry.example/app:1.2");
//!     recorder.submit_record(record);
//! }
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, TraceId};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SamplingResult, ShouldSample, Span, SpanData, SpanProcessor};

use crate::export::SpanSink;
use crate::export::record::SpanRecord;
use crate::limits::ValueBounds;
use crate::redaction::Redactor;

/// The pipeline's sampler, shared by the SDK tracer provider and the [`SpanRecorder`].
#[derive(Clone)]
pub(crate) struct SharedSampler(Arc<dyn ShouldSample>);

impl SharedSampler {
    pub(crate) fn new(sampler: impl ShouldSample + 'static) -> Self {
        SharedSampler(Arc::new(sampler))
    }
}

impl fmt::Debug for SharedSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ShouldSample for SharedSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Records spans into a pipeline: the pipeline's sampler decides, the finished span passes
/// the span limits and the redactor, and joins the span queue (bounded, counted). Get it
/// from [`Telemetry::span_recorder`](crate::Telemetry::span_recorder); cheap to clone.
#[derive(Debug, Clone)]
pub struct SpanRecorder {
    sink: Option<SpanSink>,
    sampler: SharedSampler,
    scope: InstrumentationScope,
    bounds: ValueBounds,
    redactor: Redactor,
}

impl SpanRecorder {
    pub(crate) fn new(
        sink: Option<SpanSink>,
        sampler: SharedSampler,
        scope: InstrumentationScope,
        bounds: ValueBounds,
        redactor: Redactor,
    ) -> Self {
        SpanRecorder {
            sink,
            sampler,
            scope,
            bounds,
            redactor,
        }
    }

    /// A recorder that exports nothing (a disabled pipeline's).
    pub(crate) fn disabled() -> Self {
        SpanRecorder::new(
            None,
            SharedSampler::new(opentelemetry_sdk::trace::Sampler::AlwaysOff),
            InstrumentationScope::builder("stellaops-telemetry").build(),
            ValueBounds::default(),
            Redactor::default(),
        )
    }

    /// Whether a span submitted here can reach an exporter at all (false when the pipeline
    /// exports no spans): skip recording when it cannot.
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// The pipeline's head-sampling decision for a new span: the sampler the SDK tracer
    /// uses too, run-time tenant overrides included.
    pub fn should_sample(
        &self,
        parent: &Context,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
    ) -> SamplingResult {
        self.sampler
            .should_sample(Some(parent), trace_id, name, kind, attributes, &[])
    }

    /// The tail sampler's counters (all 0 when the SDK does not sample).
    pub(crate) fn tail_sampling(&self) -> crate::export::TailSamplingSnapshot {
        self.sink
            .as_ref()
            .and_then(SpanSink::tail_sampling)
            .unwrap_or_default()
    }

    /// A reader of the tail sampler's counters, when the SDK samples.
    pub(crate) fn tail_sampling_reader(
        &self,
    ) -> Option<Arc<dyn Fn() -> crate::export::TailSamplingSnapshot + Send + Sync>> {
        self.sink.as_ref()?.tail_sampling_reader()
    }

    /// The instrumentation scope spans recorded here carry.
    pub fn scope(&self) -> &InstrumentationScope {
        &self.scope
    }

    /// Queues a finished SDK span (dropped unless it is sampled), after the span limits and
    /// the redactor.
    pub fn submit(&self, mut span: SpanData) {
        if let Some(sink) = &self.sink
            && span.span_context.is_sampled()
        {
            self.bounds.bound_span(&mut span, &self.redactor);
            sink.submit(span);
        }
    }

    /// A record for a new span, to fill and hand to [`submit_record`](Self::submit_record):
    /// one the export worker gave back when there is one, so the request path allocates
    /// nothing for it.
    pub fn new_record(
        &self,
        span_context: SpanContext,
        parent_span_id: SpanId,
        parent_is_remote: bool,
        kind: SpanKind,
        start_time: SystemTime,
    ) -> Box<SpanRecord> {
        let mut record = self
            .sink
            .as_ref()
            .and_then(SpanSink::take_record)
            .unwrap_or_else(|| Box::new(SpanRecord::empty()));
        record.begin(
            span_context,
            parent_span_id,
            parent_is_remote,
            kind,
            start_time,
        );
        record
    }

    /// Queues a finished span recorded as a [`SpanRecord`] (dropped unless it is sampled),
    /// after the span limits; the export worker redacts it and builds its `SpanData` with
    /// [`scope`](Self::scope).
    pub fn submit_record(&self, mut record: Box<SpanRecord>) {
        if let Some(sink) = &self.sink {
            record.bound_values(&self.bounds, &self.redactor);
            sink.submit_record(record);
        }
    }
}

/// The SDK tracer provider's span processor: every span the `tracing` road ends goes to the
/// recorder; flushing and shutting down reach the batch processor behind it.
#[derive(Debug)]
pub(crate) struct RecorderProcessor<P> {
    pub(crate) recorder: SpanRecorder,
    pub(crate) batch: P,
}

impl<P: SpanProcessor> SpanProcessor for RecorderProcessor<P> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.recorder.submit(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.batch.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.batch.shutdown_with_timeout(timeout)
    }
}
