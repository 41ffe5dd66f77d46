//! [`RequestContext`]: the tenant and correlation id of the work in progress.

use std::sync::Arc;

use opentelemetry::{Context, ContextGuard};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    tenant: Option<Arc<str>>,
    correlation_id: Option<Arc<str>>,
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
    /// drops.
    pub fn attach(self) -> ContextGuard {
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
