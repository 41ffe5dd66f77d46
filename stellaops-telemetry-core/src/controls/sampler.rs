//! The pipeline's head sampler with the tenant sampling overrides applied.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use super::{Controls, TenantSampling};
use crate::RequestContext;
use crate::incidents::INCIDENT_ATTRIBUTE;

/// The span attributes naming the tenant, in order of preference.
const TENANT_KEYS: [&str; 2] = ["tenant.id", "tenant"];

/// The head sampler, unless a tenant sampling override says otherwise.
///
/// Without sampling overrides or incidents it is exactly `head` (two atomic loads more). With
/// them, the span's tenant — its `tenant.id` (else `tenant`) start attribute, else the parent
/// context's [`RequestContext`] — decides: a tenant under incident records and samples, and
/// the span carries the incident's id; `Always` records and samples, `Never` drops, `Profile`
/// or no tenant leaves the decision to `head`.
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

    /// The span's tenant: its `tenant.id` (else `tenant`) start attribute, else the parent
    /// context's request context.
    fn tenant<'a>(
        parent_context: Option<&'a Context>,
        attributes: &'a [KeyValue],
    ) -> Option<std::borrow::Cow<'a, str>> {
        TENANT_KEYS
            .iter()
            .find_map(|key| {
                attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == *key)
                    .map(|kv| kv.value.as_str())
            })
            .or_else(|| {
                parent_context
                    .and_then(|cx| cx.get::<RequestContext>())
                    .and_then(RequestContext::tenant)
                    .map(std::borrow::Cow::Borrowed)
            })
    }

    /// The decision of the span's tenant override or incident, and the incident attribute.
    fn tenant_decision(
        &self,
        parent_context: Option<&Context>,
        attributes: &[KeyValue],
    ) -> Option<(SamplingDecision, Vec<KeyValue>)> {
        let tenant = Self::tenant(parent_context, attributes)?;
        if let Some(incident) = self.controls.incident_for(&tenant) {
            let attribute = KeyValue::new(INCIDENT_ATTRIBUTE, incident.id.clone());
            return Some((SamplingDecision::RecordAndSample, vec![attribute]));
        }
        // No incident (just looked up): the table alone decides.
        match self
            .controls
            .set_override_for(&tenant)
            .map(|o| o.sampling)?
        {
            TenantSampling::Always => Some((SamplingDecision::RecordAndSample, Vec::new())),
            TenantSampling::Never => Some((SamplingDecision::Drop, Vec::new())),
            TenantSampling::Profile => None,
        }
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
            self.tenant_decision(parent_context, attributes)
        } else {
            None
        };
        match decision {
            Some((decision, attributes)) => SamplingResult {
                decision,
                attributes,
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
