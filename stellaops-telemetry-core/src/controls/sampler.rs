//! The pipeline's head sampler with the tenant sampling overrides applied.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use super::{Controls, TenantSampling};
use crate::RequestContext;

/// The span attributes naming the tenant, in order of preference.
const TENANT_KEYS: [&str; 2] = ["tenant.id", "tenant"];

/// The head sampler, unless a tenant sampling override says otherwise.
///
/// Without sampling overrides it is exactly `head` (one atomic load more). With them, the
/// span's tenant — its `tenant.id` (else `tenant`) start attribute, else the parent context's
/// [`RequestContext`] — decides: `Always` records and samples, `Never` drops, `Profile` or no
/// tenant leaves the decision to `head`.
#[derive(Clone, Debug)]
pub(crate) struct PipelineSampler {
    head: Sampler,
    controls: Controls,
}

impl PipelineSampler {
    /// `head` with the tenant sampling overrides of `controls`.
    pub(crate) fn new(head: Sampler, controls: Controls) -> PipelineSampler {
        PipelineSampler { head, controls }
    }

    /// The sampling override of the span's tenant.
    fn tenant_sampling(
        &self,
        parent_context: Option<&Context>,
        attributes: &[KeyValue],
    ) -> TenantSampling {
        let from_attributes = TENANT_KEYS.iter().find_map(|key| {
            attributes
                .iter()
                .find(|kv| kv.key.as_str() == *key)
                .map(|kv| kv.value.as_str())
        });
        let lookup = |tenant: &str| self.controls.override_for(tenant).map(|o| o.sampling);
        let sampling = match from_attributes {
            Some(tenant) => lookup(&tenant),
            None => parent_context
                .and_then(|cx| cx.get::<RequestContext>())
                .and_then(RequestContext::tenant)
                .and_then(lookup),
        };
        sampling.unwrap_or_default()
    }
}

impl ShouldSample for PipelineSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let decision = if self.controls.has_sampling_overrides() {
            match self.tenant_sampling(parent_context, attributes) {
                TenantSampling::Always => Some(SamplingDecision::RecordAndSample),
                TenantSampling::Never => Some(SamplingDecision::Drop),
                TenantSampling::Profile => None,
            }
        } else {
            None
        };
        match decision {
            Some(decision) => SamplingResult {
                decision,
                attributes: Vec::new(),
                trace_state: parent_trace_state(parent_context),
            },
            None => self.head.should_sample(
                parent_context,
                trace_id,
                name,
                span_kind,
                attributes,
                links,
            ),
        }
    }
}

/// The parent span's trace state (empty for a root span).
fn parent_trace_state(parent_context: Option<&Context>) -> TraceState {
    parent_context
        .filter(|cx| cx.has_active_span())
        .map(|cx| cx.span().span_context().trace_state().clone())
        .unwrap_or_default()
}
