//! What the server and client sides read from a gRPC call: whether a request is gRPC, its
//! service and method from the path, and the `grpc-status`. The `rpc.*` attribute names are
//! the OpenTelemetry RPC semantic conventions'.

/// `rpc.system`: always `grpc` here.
pub(crate) const RPC_SYSTEM: &str = "rpc.system";
/// `rpc.service`: the full service name, `pkg.Service`.
pub(crate) const RPC_SERVICE: &str = "rpc.service";
/// `rpc.method`: the method name, `Method`.
pub(crate) const RPC_METHOD: &str = "rpc.method";
/// `rpc.grpc.status_code`: the numeric gRPC status.
pub(crate) const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Whether the request is gRPC: its content type is `application/grpc` (with or without a
/// `+proto` / `+json` suffix).
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The service and method of a gRPC path `/pkg.Service/Method`: both non-empty, nothing after
/// the method. `None` for any other shape (the attributes are then left out).
pub(crate) fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// The `grpc-status` of a head or trailers, when present and numeric.
pub(crate) fn status(headers: &http::HeaderMap) -> Option<u16> {
    headers.get(GRPC_STATUS)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_give_service_and_method_only_in_the_grpc_shape() {
        assert_eq!(
            service_and_method("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            Some((
                "opentelemetry.proto.collector.trace.v1.TraceService",
                "Export"
            ))
        );
        for bad in ["", "/", "//", "/a/", "//m", "/a/b/c", "a/b", "/a"] {
            assert_eq!(service_and_method(bad), None, "{bad}");
        }
    }

    #[test]
    fn grpc_content_types_are_recognised() {
        let headers = |ct: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(ct),
            );
            h
        };
        assert!(is_grpc(&headers("application/grpc")));
        assert!(is_grpc(&headers("application/grpc+proto")));
        assert!(!is_grpc(&headers("application/json")));
        assert!(!is_grpc(&http::HeaderMap::new()));
    }
}
