//! [`ServerTelemetry`]: what happens when a request comes in.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use stellaops_telemetry_core::opentelemetry::baggage::BaggageExt as _;
use stellaops_telemetry_core::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
};
use stellaops_telemetry_core::opentelemetry::{KeyValue, Value};
use stellaops_telemetry_core::opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SamplingDecision, SamplingResult,
};
use stellaops_telemetry_core::propagation::PropagatedTraceContext;
use stellaops_telemetry_core::{RequestContext, SpanRecord};
use tower::Service;

use super::attributes::{RequestFacts, push_extended_request_attributes, push_request_attributes};
use super::future::{Completion, PANIC, ResponseFuture, Started};
use super::layer::Shared;
use super::request_id;
use super::tenant::{Tenant, TenantHeader};

/// A service that records each request: see [`ServerTelemetryLayer`](super::ServerTelemetryLayer).
#[derive(Clone)]
pub struct ServerTelemetry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for ServerTelemetry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTelemetry").finish_non_exhaustive()
    }
}

impl<S> ServerTelemetry<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        ServerTelemetry { inner, shared }
    }
}

/// The context attached while the handler runs: the request span's, with one value, the
/// request's [`RequestContext`] (tenant and correlation id for the log lines; the tenant is
/// also what the client layer propagates; and the trace context the client layer sends on),
/// and the received baggage, if any. One span and one
/// value: each value an OpenTelemetry `Context` holds costs allocations per request.
fn handler_context(
    extracted: stellaops_telemetry_core::propagation::Extracted,
    span_context: &SpanContext,
    request_id: &request_id::RequestId,
    tenant: Option<&Tenant>,
) -> stellaops_telemetry_core::opentelemetry::Context {
    let mut request_context = RequestContext::new().with_correlation_id(request_id.shared());
    if let Some(tenant) = tenant {
        request_context = request_context.with_tenant(tenant.shared());
    }
    // What the client layer sends on: the received trace context continued by this span (the
    // whole tracestate; the random flag, even when this span is not sampled), or this span's
    // own for a new trace. An empty tracestate is no allocation.
    let propagated = match extracted.trace_context {
        Some(received) => Some(received.continued_by(span_context)),
        None => PropagatedTraceContext::from_span_context(span_context),
    };
    if let Some(propagated) = propagated {
        request_context = request_context.with_trace_context(propagated);
    }
    let cx = stellaops_telemetry_core::opentelemetry::Context::new()
        .with_remote_span_context(span_context.clone())
        .with_value(request_context);
    if extracted.baggage.is_empty() {
        cx
    } else {
        cx.with_baggage(extracted.baggage.to_baggage())
    }
}

/// The pipeline's decision for a new request span: the tenant goes in as the span's start
/// attribute, so a run-time tenant override of sampling applies to it (one reference count
/// taken, nothing copied).
fn sample(
    recorder: &stellaops_telemetry_core::SpanRecorder,
    parent: &stellaops_telemetry_core::opentelemetry::Context,
    trace_id: TraceId,
    tenant: Option<&Tenant>,
) -> SamplingResult {
    let tenant = tenant.map(|t| KeyValue::new("tenant.id", Value::String(t.shared().into())));
    recorder.should_sample(
        parent,
        trace_id,
        "http.request",
        &SpanKind::Server,
        tenant.as_slice(),
    )
}

/// What the request span is decided and recorded from.
struct Start<'a, B> {
    shared: &'a Shared,
    request: &'a http::Request<B>,
    facts: &'a RequestFacts,
    base: &'a stellaops_telemetry_core::opentelemetry::Context,
    remote: &'a SpanContext,
    tenant: Option<&'a Tenant>,
    request_id: &'a request_id::RequestId,
    extended: bool,
    start: Instant,
}

impl<B> Start<'_, B> {
    /// The request span's context (the caller's trace, or a new one) and its record when the
    /// pipeline samples it.
    fn sample_and_record(self) -> (SpanContext, Option<Box<SpanRecord>>) {
        let (shared, remote) = (self.shared, self.remote);
        let ids = RandomIdGenerator::default();
        let (trace_id, inherited) = if remote.is_valid() {
            (remote.trace_id(), remote.trace_flags() & RANDOM)
        } else {
            (ids.new_trace_id(), RANDOM)
        };
        let direct = &shared.recorder;
        let sampling = sample(direct, self.base, trace_id, self.tenant);
        let flags = inherited.with_sampled(sampling.decision == SamplingDecision::RecordAndSample);
        let span_context = SpanContext::new(
            trace_id,
            ids.new_span_id(),
            flags,
            false,
            sampling.trace_state,
        );
        let record = (direct.enabled() && sampling.decision == SamplingDecision::RecordAndSample)
            .then(|| {
                // Texts are copied into the record (no allocation, nothing for the export
                // worker to free that this thread allocated).
                let mut r = direct.new_record(
                    span_context.clone(),
                    if remote.is_valid() {
                        remote.span_id()
                    } else {
                        SpanId::INVALID
                    },
                    remote.is_valid(),
                    SpanKind::Server,
                    shared.clock.system_time(self.start),
                );
                for attribute in sampling.attributes {
                    r.push_key_value(attribute);
                }
                push_request_attributes(&mut r, shared, self.request, self.facts);
                if self.extended {
                    push_extended_request_attributes(&mut r, shared, self.request);
                }
                if let Some(tenant) = self.tenant {
                    r.push_text("tenant.id", tenant.as_str());
                }
                // The correlation id of the JSON log lines, so a span and its lines meet.
                r.push_text("request.id", self.request_id.as_str());
                r
            });
        (span_context, record)
    }
}

/// The Level 2 random flag: set on the traces this layer starts (their ids are random).
const RANDOM: TraceFlags = TraceFlags::new(0x02);

impl<S, B, RB> Service<http::Request<B>> for ServerTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: http_body::Body,
{
    type Response = http::Response<super::ResponseBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let facts = RequestFacts::of(shared, &request);
        let (method, route, scheme) = (facts.method, facts.route, facts.scheme);
        let (request_id, request_id_header) = match request_id::read(request.headers()) {
            Some((id, header)) => (id, Some(header)),
            None => (shared.make_request_id.make_request_id(), None),
        };
        let tenant = match shared.tenants.read(request.headers()) {
            TenantHeader::Valid(tenant) => Some(tenant),
            // An invalid tenant is never recorded, raw or otherwise.
            TenantHeader::Invalid | TenantHeader::Absent => None,
        };

        // Trace context in: a malformed header starts a new trace, it never fails the request.
        let extracted = shared.propagators.extract(request.headers());
        let remote = extracted
            .parent
            .clone()
            .unwrap_or_else(SpanContext::empty_context);
        // The sampler's view of the parent: the caller's span, when there is one.
        let base = if remote.is_valid() {
            stellaops_telemetry_core::opentelemetry::Context::new()
                .with_remote_span_context(remote.clone())
        } else {
            stellaops_telemetry_core::opentelemetry::Context::new()
        };
        // One atomic load unless some incident is active.
        let extended = shared.extended_always
            || tenant
                .as_ref()
                .is_some_and(|t| shared.incidents.is_active(t.as_str()));
        let (span_context, record) = if shared.disabled {
            // A disabled SDK records nothing and passes the caller's context on as received.
            (remote.clone(), None)
        } else {
            let started = Start {
                shared,
                request: &request,
                facts: &facts,
                base: &base,
                remote: &remote,
                tenant: tenant.as_ref(),
                request_id: &request_id,
                extended,
                start,
            };
            started.sample_and_record()
        };
        drop(base);
        let cx = handler_context(extracted, &span_context, &request_id, tenant.as_ref());
        let outcome_tenant = if shared.report_outcomes {
            tenant.as_ref().map(Tenant::shared)
        } else {
            None
        };

        // The tracing span, for subscribers of the service's own; the pipeline's layers skip
        // its target (its OpenTelemetry span is the record above, and the log context is the
        // request context), so under the pipeline it costs nothing.
        let span = tracing::info_span!(
            target: "stellaops_telemetry_tower::request",
            "http.request",
            tenant.id = tenant.as_ref().map(|t| t.as_str()),
            request.id = request_id.as_str(),
        );
        if let Some(tenant) = tenant {
            request.extensions_mut().insert(tenant);
        }

        let in_flight = shared.metrics.in_flight(method);
        in_flight.add(1);
        let mut completion = Completion::new(Started {
            shared: Arc::clone(shared),
            span,
            cx,
            span_context,
            record,
            start,
            method,
            name: facts.name,
            route,
            scheme,
            protocol: facts.protocol,
            grpc: facts.grpc,
            in_flight,
            request_id,
            request_id_header,
            extended,
            outcome_tenant,
        });
        let inner = &mut self.inner;
        // A panic in the inner service's `call` is recorded, then resumed as it was.
        match catch_unwind(AssertUnwindSafe(|| {
            completion.in_scope(|| inner.call(request))
        })) {
            Ok(future) => ResponseFuture::new(future, completion),
            Err(panic) => {
                completion.fail(500, PANIC);
                resume_unwind(panic)
            }
        }
    }
}
