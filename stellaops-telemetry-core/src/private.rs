//! What the tower layers and the macros call, hidden from the documented API: its shape may
//! change with them.

use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceId};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample as _, SpanData};

pub use crate::clock::WallClock;
use crate::export::SpanSink;
pub use crate::export::record::SpanRecord;
pub use crate::instrument::{
    Call, InContext, Kind, KindByName, KindByTrait, Pipeline, Returned, ReturnedErr, ReturnedValue,
    assert_seconds, call_once, count_call, error_kind_label, outcome_label, record_duration,
    record_field,
};
use crate::limits::ValueBounds;
use crate::redaction::Redactor;

/// Records spans without an SDK `Span`: the pipeline's sampler decides, and the finished
/// [`SpanData`] joins the pipeline's span queue (same redaction, bounds and counts).
#[derive(Debug, Clone)]
pub struct DirectSpans {
    pub(crate) sink: Option<SpanSink>,
    pub(crate) sampler: Sampler,
    pub(crate) scope: InstrumentationScope,
    pub(crate) bounds: ValueBounds,
    pub(crate) redactor: Redactor,
}

impl DirectSpans {
    pub(crate) fn disabled() -> Self {
        DirectSpans {
            sink: None,
            sampler: Sampler::AlwaysOff,
            scope: InstrumentationScope::builder("stellaops-telemetry").build(),
            bounds: ValueBounds::default(),
            redactor: Redactor::default(),
        }
    }

    /// Whether a span submitted here can reach an exporter at all.
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// The pipeline's head-sampling decision for a new span.
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

    /// The scope spans recorded here carry.
    pub fn scope(&self) -> &InstrumentationScope {
        &self.scope
    }

    /// Queues a finished span (dropped unless it is sampled).
    pub fn submit(&self, mut span: SpanData) {
        if let Some(sink) = &self.sink {
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

    /// Queues a finished span recorded as a [`SpanRecord`] (dropped unless it is sampled):
    /// the worker builds its `SpanData` with [`scope`](Self::scope).
    pub fn submit_record(&self, mut record: Box<SpanRecord>) {
        if let Some(sink) = &self.sink {
            record.bound_values(&self.bounds, &self.redactor);
            sink.submit_record(record);
        }
    }
}
