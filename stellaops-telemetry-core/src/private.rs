//! What the tower layers and the macros call, hidden from the documented API: its shape may
//! change with them.

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample as _, SpanData};

use crate::export::SpanSink;
pub use crate::export::record::SpanRecord;

/// Records spans without an SDK `Span`: the pipeline's sampler decides, and the finished
/// [`SpanData`] joins the pipeline's span queue (same redaction, bounds and counts).
#[derive(Debug, Clone)]
pub struct DirectSpans {
    pub(crate) sink: Option<SpanSink>,
    pub(crate) sampler: Sampler,
    pub(crate) scope: InstrumentationScope,
}

impl DirectSpans {
    pub(crate) fn disabled() -> Self {
        DirectSpans {
            sink: None,
            sampler: Sampler::AlwaysOff,
            scope: InstrumentationScope::builder("stellaops-telemetry").build(),
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
    pub fn submit(&self, span: SpanData) {
        if let Some(sink) = &self.sink {
            sink.submit(span);
        }
    }

    /// Queues a finished span recorded as a [`SpanRecord`] (dropped unless it is sampled):
    /// the worker builds its `SpanData` with [`scope`](Self::scope).
    pub fn submit_record(&self, record: SpanRecord) {
        if let Some(sink) = &self.sink {
            sink.submit_record(record);
        }
    }
}
