//! [`GrpcTelemetryInterceptor`]: the trace context and tenant in a tonic client's metadata.

use stellaops_telemetry_core::propagation::Propagators;
use tonic::metadata::MetadataMap;

use super::layer::inject_with;
use crate::server::Tenant;

/// A [`tonic::service::Interceptor`] that writes the configured propagators' headers
/// (`traceparent`, `tracestate`, `baggage` by default) and `X-StellaOps-Tenant` into each
/// call's metadata, from the current span's context: the span of the caller's work, or the
/// request the server layer is handling.
///
/// It opens no span of its own: an interceptor sees the request only, never the response or
/// its status. For a client span with the `rpc.*` attributes and the gRPC status, wrap the
/// channel in [`ClientTelemetryLayer`](super::ClientTelemetryLayer) instead (it injects the
/// same headers, from the client span); the two are alternatives, not a pair.
///
/// The tenant comes from a [`Tenant`] in the request's extensions, else from the current
/// context's [`RequestContext`](stellaops_telemetry_core::RequestContext). A tenant already in
/// the metadata is kept.
///
/// ```
/// use stellaops_telemetry_tower::client::GrpcTelemetryInterceptor;
/// use tonic::service::Interceptor as _;
///
/// let mut interceptor = GrpcTelemetryInterceptor::new();
/// let request = interceptor.call(tonic::Request::new(()))?;
/// # let _ = request;
/// // With a generated client: `TraceServiceClient::with_interceptor(channel, interceptor)`.
/// # Ok::<(), tonic::Status>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTelemetryInterceptor {
    /// `None`: the installed pipeline's ([`Propagators::installed`]), read per call.
    propagators: Option<Propagators>,
}

impl GrpcTelemetryInterceptor {
    /// An interceptor with the installed pipeline's propagators.
    pub fn new() -> Self {
        GrpcTelemetryInterceptor::default()
    }

    /// The propagators that write the trace context and baggage (the pipeline's:
    /// `telemetry.propagators()`). Default: those of the installed pipeline
    /// ([`Propagators::installed`]; `tracecontext,baggage` when none is installed).
    pub fn propagators(mut self, propagators: Propagators) -> Self {
        self.propagators = Some(propagators);
        self
    }
}

impl tonic::service::Interceptor for GrpcTelemetryInterceptor {
    /// Never fails: a value that cannot be a header is left out.
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let propagators = self.propagators.unwrap_or_else(Propagators::installed);
        let tenant = request.extensions().get::<Tenant>().cloned();
        // Metadata is a header map underneath: moved out and back, never copied.
        let mut headers = std::mem::take(request.metadata_mut()).into_headers();
        inject_with(
            propagators,
            &tracing::Span::current(),
            tenant.as_ref(),
            &mut headers,
        );
        *request.metadata_mut() = MetadataMap::from_headers(headers);
        Ok(request)
    }
}
