//! [`PropagatedTraceContext`]: the trace context a service passes on, exactly as received and
//! validated, kept in an OpenTelemetry `Context` next to the span context.

use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

use super::traceparent::{self, KNOWN_FLAGS, TraceParent};
use super::{RANDOM_TRACE_ID, TRACEPARENT, TRACESTATE, tracestate};

/// The `traceparent` fields and the `tracestate` list a service sends on, kept as the server
/// layer received and validated them.
///
/// `opentelemetry`'s [`SpanContext`] cannot carry all of it: its [`TraceState`] refuses some
/// valid keys (`foo@@bar`, a tenant with more than 13 characters of system after the `@`), and
/// the SDK clears the random trace-id flag on the spans its sampler drops. So
/// [`Extracted::into_context`](super::Extracted::into_context) puts this value in the
/// `Context` beside the remote span context, the server layer keeps it in the request's
/// [`RequestContext`](crate::RequestContext), and [`inject`](super::inject) writes the headers
/// from it, continued by the current span:
///
/// - the trace-id as received;
/// - the parent-id: the current span's id when that span is sampled, else the one received
///   (the last span anyone recorded);
/// - the sampled flag: the current span's decision; the random flag: as received;
/// - the `tracestate`: as received (members in order, without optional whitespace, empty
///   members and repeated keys), unless the SDK changed the span's `TraceState`; then members
///   it added or updated go first and members it deleted are left out.
///
/// When the current span belongs to another trace, the value is not used.
///
/// # Example
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::propagation::extract;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"));
/// headers.insert("tracestate", HeaderValue::from_static("foo@@bar=1 , rojo=2"));
/// let received = extract(&headers).trace_context.ok_or("no valid traceparent")?;
/// assert!(received.is_random() && !received.is_sampled());
/// assert_eq!(received.tracestate(), "foo@@bar=1,rojo=2");
/// assert_eq!(received.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropagatedTraceContext {
    trace_id: TraceId,
    parent_id: SpanId,
    /// Only the sampled and random bits.
    flags: TraceFlags,
    /// Valid members joined with `,`; empty for none.
    tracestate: String,
    /// The members of `tracestate` that `opentelemetry` could hold, as handed to it: a span's
    /// `TraceState` is compared with it to see whether the SDK changed the list.
    otel_state: TraceState,
}

impl PropagatedTraceContext {
    /// What a valid `traceparent` and its (possibly invalid or missing) `tracestate` carry.
    pub(super) fn received(parent: TraceParent, state: Option<tracestate::Parsed>) -> Self {
        let (tracestate, otel_state) = state.map_or_else(
            || (String::new(), TraceState::NONE),
            |state| (state.text, state.otel),
        );
        PropagatedTraceContext {
            trace_id: parent.trace_id,
            parent_id: parent.parent_id,
            flags: parent.flags,
            tracestate,
            otel_state,
        }
    }

    /// The trace context of a span: its ids, sampled and random flags and `TraceState` (only
    /// its valid members, at most 32). `None` for an invalid span context.
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    ///
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::new(0xff), false, TraceState::NONE);
    /// let sent = PropagatedTraceContext::from_span_context(&span).map(|p| p.traceparent());
    /// assert_eq!(sent.as_deref(), Some("00-00000000000000000000000000000001-0000000000000002-03"));
    /// assert!(PropagatedTraceContext::from_span_context(&SpanContext::empty_context()).is_none());
    /// ```
    pub fn from_span_context(span: &SpanContext) -> Option<Self> {
        span.is_valid().then(|| PropagatedTraceContext {
            trace_id: span.trace_id(),
            parent_id: span.span_id(),
            flags: TraceFlags::new(span.trace_flags().to_u8() & KNOWN_FLAGS),
            tracestate: tracestate::format(span.trace_state()),
            otel_state: span.trace_state().clone(),
        })
    }

    /// What leaves a context: the value [`Extracted::into_context`](super::Extracted::into_context)
    /// put in `cx` (else the received trace context of `cx`'s
    /// [`RequestContext`](crate::RequestContext), where the server layer keeps it), continued
    /// by `cx`'s current span (see
    /// [`continued_by`](Self::continued_by)); without such a value, the current span's own
    /// context. `None` when there is neither.
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::Context;
    /// use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    ///
    /// assert!(PropagatedTraceContext::current(&Context::new()).is_none());
    /// ```
    pub fn current(cx: &Context) -> Option<Self> {
        let span = cx.span();
        let span = span.span_context();
        let carried = cx.get::<PropagatedTraceContext>().or_else(|| {
            cx.get::<crate::RequestContext>()
                .and_then(crate::RequestContext::trace_context)
        });
        match carried {
            Some(carried) => Some(carried.continued_by(span)),
            None => Self::from_span_context(span),
        }
    }

    /// The trace context after `span`, a span of this service under it: the same value for an
    /// invalid span, `span`'s own for a span of another trace; otherwise the same trace-id,
    /// random flag and `tracestate`, the sampled flag of `span`, and `span`'s id as the
    /// parent-id when `span` is sampled.
    ///
    /// # Example
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// use stellaops_telemetry_core::propagation::extract;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"));
    /// let received = extract(&headers).trace_context.ok_or("no valid traceparent")?;
    /// let trace_id = received.trace_id();
    /// let recorded = SpanContext::new(trace_id, SpanId::from(7u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// assert_eq!(received.continued_by(&recorded).traceparent(), format!("00-{trace_id}-0000000000000007-03"));
    /// let dropped = SpanContext::new(trace_id, SpanId::from(8u64), TraceFlags::default(), false, TraceState::NONE);
    /// assert_eq!(received.continued_by(&dropped).traceparent(), received.traceparent());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn continued_by(&self, span: &SpanContext) -> Self {
        if !span.is_valid() {
            return self.clone();
        }
        if span.trace_id() != self.trace_id {
            return Self::from_span_context(span).unwrap_or_else(|| self.clone());
        }
        let sampled = span.is_sampled();
        let tracestate = if *span.trace_state() == self.otel_state {
            self.tracestate.clone()
        } else {
            tracestate::merge(&self.tracestate, &self.otel_state, span.trace_state())
        };
        PropagatedTraceContext {
            trace_id: self.trace_id,
            parent_id: if sampled {
                span.span_id()
            } else {
                self.parent_id
            },
            flags: (self.flags & RANDOM_TRACE_ID).with_sampled(sampled),
            tracestate,
            otel_state: span.trace_state().clone(),
        }
    }

    /// The trace-id.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// let p = PropagatedTraceContext::from_span_context(&span);
    /// assert_eq!(p.map(|p| p.trace_id()), Some(TraceId::from(1u128)));
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The parent-id that is sent.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// let p = PropagatedTraceContext::from_span_context(&span);
    /// assert_eq!(p.map(|p| p.parent_id()), Some(SpanId::from(2u64)));
    /// ```
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// The trace-flags that are sent: only the sampled and random bits.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::new(0x81), false, TraceState::NONE);
    /// let p = PropagatedTraceContext::from_span_context(&span);
    /// assert_eq!(p.map(|p| p.flags()), Some(TraceFlags::SAMPLED));
    /// ```
    pub fn flags(&self) -> TraceFlags {
        self.flags
    }

    /// Whether the sampled flag is set.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// assert!(PropagatedTraceContext::from_span_context(&span).is_some_and(|p| p.is_sampled()));
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.flags.is_sampled()
    }

    /// Whether the random trace-id flag is set.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::new(2), false, TraceState::NONE);
    /// assert!(PropagatedTraceContext::from_span_context(&span).is_some_and(|p| p.is_random()));
    /// ```
    pub fn is_random(&self) -> bool {
        self.flags & RANDOM_TRACE_ID == RANDOM_TRACE_ID
    }

    /// The `tracestate` value that is sent; empty when none is.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// assert_eq!(PropagatedTraceContext::from_span_context(&span).map(|p| p.tracestate().to_owned()), Some(String::new()));
    /// ```
    pub fn tracestate(&self) -> &str {
        &self.tracestate
    }

    /// The `traceparent` value that is sent (version `00`).
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// let p = PropagatedTraceContext::from_span_context(&span);
    /// assert_eq!(p.map(|p| p.traceparent()).as_deref(), Some("00-00000000000000000000000000000001-0000000000000002-01"));
    /// ```
    pub fn traceparent(&self) -> String {
        traceparent::format(self.trace_id, self.parent_id, self.flags)
    }

    /// Writes `traceparent` and `tracestate`, replacing those headers; a stale `tracestate` is
    /// removed when there is none to send.
    ///
    /// # Example
    ///
    /// ```
    /// # use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// # use stellaops_telemetry_core::propagation::PropagatedTraceContext;
    /// let span = SpanContext::new(TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::NONE);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("tracestate", http::HeaderValue::from_static("stale=1"));
    /// if let Some(p) = PropagatedTraceContext::from_span_context(&span) {
    ///     p.inject(&mut headers);
    /// }
    /// assert!(headers.contains_key("traceparent") && !headers.contains_key("tracestate"));
    /// ```
    pub fn inject(&self, headers: &mut HeaderMap) {
        let Ok(value) = HeaderValue::try_from(self.traceparent()) else {
            return;
        };
        headers.insert(TRACEPARENT, value);
        match HeaderValue::try_from(self.tracestate.as_str()) {
            Ok(value) if !value.is_empty() => {
                headers.insert(TRACESTATE, value);
            }
            _ => {
                headers.remove(TRACESTATE);
            }
        }
    }
}
