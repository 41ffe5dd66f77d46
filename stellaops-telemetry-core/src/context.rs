//! [`RequestContext`]: the tenant and correlation id of the work in progress.

use std::sync::Arc;

use opentelemetry::{Context, ContextGuard};

use crate::propagation::PropagatedTraceContext;

/// The tenant and correlation id of the work in progress, carried in the OpenTelemetry
/// context.
///
/// The server layer of `stellaops-telemetry-tower` attaches one for each request; a queue
/// consumer or a batch job can attach its own. The house JSON log lines take `tenant` and
/// `correlationId` from it when no enclosing tracing span records `tenant.id` / `request.id`,
/// and the client layer propagates its tenant.
///
/// ```
/// use stellaops_telemetry_core::RequestContext;
///
/// let _guard = RequestContext::new()
///     .with_tenant("acme")
///     .with_correlation_id("job-42")
///     .attach();
/// assert_eq!(
///     RequestContext::map_current(|cx| cx.and_then(|cx| cx.tenant().map(str::to_owned))),
///     Some("acme".to_owned())
/// );
/// ```
///
/// Values are recorded as given, through the pipeline's redactor; validate what comes from
/// outside first (the server layer accepts only well-formed `X-StellaOps-Tenant` and
/// `x-request-id` values).
///
/// It can also carry the trace context the work was received with
/// ([`with_trace_context`](Self::with_trace_context)): the server layer keeps it here rather
/// than as a value of its own, so that the context it attaches per request is one value and
/// one span (each value an OpenTelemetry `Context` holds costs heap allocations). So a request
/// context set inside a request replaces that too, unless it keeps it:
/// [`attach`](Self::attach) does; a context built with `Context::with_value` directly should
/// start from [`current`](Self::current) (a detached task that must not continue the
/// caller's trace starts from [`new`](Self::new)). Equality compares the trace context too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    tenant: Option<Arc<str>>,
    correlation_id: Option<Arc<str>>,
    trace_context: Option<PropagatedTraceContext>,
}

impl RequestContext {
    /// An empty context: no tenant, no correlation id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same context with `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The same context with `id` as its correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The same context with the trace context the work was received with: what
    /// [`PropagatedTraceContext::current`] continues by the current span when the OpenTelemetry
    /// context holds no [`PropagatedTraceContext`] value of its own.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use opentelemetry::trace::TraceContextExt as _;
    /// use stellaops_telemetry_core::RequestContext;
    /// use stellaops_telemetry_core::propagation::{PropagatedTraceContext, extract};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    /// headers.insert("tracestate", HeaderValue::from_static("foo@@bar=1"));
    /// let extracted = extract(&headers);
    /// let (parent, received) = (extracted.parent.ok_or("no parent")?, extracted.trace_context.ok_or("no trace context")?);
    /// let cx = opentelemetry::Context::new()
    ///     .with_remote_span_context(parent)
    ///     .with_value(RequestContext::new().with_trace_context(received));
    /// let sent = PropagatedTraceContext::current(&cx).ok_or("nothing to send")?;
    /// assert_eq!(sent.tracestate(), "foo@@bar=1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_trace_context(mut self, received: PropagatedTraceContext) -> Self {
        self.trace_context = Some(received);
        self
    }

    /// The trace context the work was received with, if any.
    pub fn trace_context(&self) -> Option<&PropagatedTraceContext> {
        self.trace_context.as_ref()
    }

    /// The tenant, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The correlation id, if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    pub(crate) fn shared_tenant(&self) -> Option<&Arc<str>> {
        self.tenant.as_ref()
    }

    pub(crate) fn shared_correlation_id(&self) -> Option<&Arc<str>> {
        self.correlation_id.as_ref()
    }

    /// Calls `f` with the current OpenTelemetry context's request context, without cloning it.
    pub fn map_current<T>(f: impl FnOnce(Option<&RequestContext>) -> T) -> T {
        Context::map_current(|cx| f(cx.get::<RequestContext>()))
    }

    /// A copy of the current OpenTelemetry context's request context.
    pub fn current() -> Option<RequestContext> {
        Self::map_current(|cx| cx.cloned())
    }

    /// Attaches this request context to the current OpenTelemetry context until the guard
    /// drops. Without a trace context of its own it keeps the current request context's, so
    /// that a new tenant or correlation id inside a request still passes the received trace
    /// context on.
    pub fn attach(mut self) -> ContextGuard {
        if self.trace_context.is_none() {
            self.trace_context = Self::map_current(|cx| cx.and_then(|cx| cx.trace_context.clone()));
        }
        Context::current_with_value(self).attach()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attached_context_is_current_until_its_guard_drops() {
        assert_eq!(RequestContext::current(), None);
        {
            let _guard = RequestContext::new().with_correlation_id("c-1").attach();
            let current = RequestContext::current();
            assert_eq!(
                current.as_ref().and_then(|c| c.correlation_id()),
                Some("c-1")
            );
            assert_eq!(current.as_ref().and_then(|c| c.tenant()), None);
        }
        assert_eq!(RequestContext::current(), None);
    }
}
