//! `x-request-id`: accepted when valid, generated otherwise, echoed in the response and
//! recorded as the log context's `correlationId`.

use std::sync::Arc;

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a header name: looked up without parsing the name per request.
pub(crate) const REQUEST_ID_HEADER_NAME: http::HeaderName =
    http::HeaderName::from_static(REQUEST_ID_HEADER);

/// A request id, handed to handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A request id when `value` is 1–128 bytes of `A–Z a–z 0–9 . _ - :` (UUIDs, ULIDs,
    /// hex); `None` otherwise.
    ///
    /// ```
    /// use stellaops_telemetry_tower::server::RequestId;
    /// assert!(RequestId::parse(b"9f1c2a3b-0000-4000-8000-000000000001").is_some());
    /// assert!(RequestId::parse(b"<script>").is_none());
    /// ```
    pub fn parse(value: &[u8]) -> Option<RequestId> {
        let valid = !value.is_empty()
            && value.len() <= 128
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        valid
            .then(|| {
                std::str::from_utf8(value)
                    .ok()
                    .map(|s| RequestId(Arc::from(s)))
            })
            .flatten()
    }

    /// The request id of the request being served: the correlation id of the current
    /// [`RequestContext`](stellaops_telemetry_core::RequestContext), which the server layer
    /// attaches while the handler runs (and which follows the OpenTelemetry context into
    /// tasks spawned with it). `None` outside a request, or when that id is not a valid
    /// request id. With the `axum` feature, `RequestId` is also an extractor.
    pub fn current() -> Option<RequestId> {
        stellaops_telemetry_core::RequestContext::map_current(|cx| {
            cx.and_then(|cx| cx.correlation_id())
                .and_then(|id| RequestId::parse(id.as_bytes()))
        })
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes the request id of a request that brought none (or an invalid one).
pub trait MakeRequestId: Send + Sync + 'static {
    /// A fresh id.
    fn make_request_id(&self) -> RequestId;
}

/// 128 random bits as 32 lowercase hex digits (the SDK's random id generator).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMakeRequestId;

impl MakeRequestId for DefaultMakeRequestId {
    fn make_request_id(&self) -> RequestId {
        use stellaops_telemetry_core::opentelemetry_sdk::trace::{
            IdGenerator as _, RandomIdGenerator,
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let id = RandomIdGenerator::default().new_trace_id().to_bytes();
        let mut text = [0u8; 32];
        for (pair, byte) in text.chunks_exact_mut(2).zip(id) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        // Hex digits are ASCII: the conversion cannot fail.
        RequestId(Arc::from(std::str::from_utf8(&text).unwrap_or("0")))
    }
}

/// The request's valid id, and its header value to echo (shared with the request's, not
/// copied).
pub(crate) fn read(headers: &http::HeaderMap) -> Option<(RequestId, http::HeaderValue)> {
    let mut values = headers.get_all(REQUEST_ID_HEADER_NAME).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => RequestId::parse(v.as_bytes()).map(|id| (id, v.clone())),
        _ => None,
    }
}

/// `RequestId` as an axum extractor: the id of the request being served
/// ([`RequestId::current`]); a 500 when the server layer is not installed.
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        RequestId::current().ok_or((
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "no request id: the StellaOps server telemetry layer is not installed",
        ))
    }
}
