//! `X-StellaOps-Tenant`: validated before it is recorded anywhere.

use std::sync::Arc;

/// The tenant header read by the server layer and written by the client layer.
pub const TENANT_HEADER: &str = "x-stellaops-tenant";

/// [`TENANT_HEADER`] as a header name: looked up without parsing the name per request.
pub(crate) const TENANT_HEADER_NAME: http::HeaderName =
    http::HeaderName::from_static(TENANT_HEADER);

/// The longest tenant id accepted.
pub const MAX_TENANT_LEN: usize = 128;

/// A validated tenant id, handed to handlers as a request extension.
///
/// ```
/// use stellaops_telemetry_tower::server::Tenant;
/// assert_eq!(Tenant::parse(b"acme-corp").as_ref().map(Tenant::as_str), Some("acme-corp"));
/// assert!(Tenant::parse(b"acme\r\nx-admin: 1").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// A tenant id when `value` is 1–128 bytes of `A–Z a–z 0–9 . _ - @ :`; `None` otherwise
    /// (control characters, CR/LF, spaces, non-ASCII and anything longer are refused).
    pub fn parse(value: &[u8]) -> Option<Tenant> {
        let valid = !value.is_empty()
            && value.len() <= MAX_TENANT_LEN
            && value.iter().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':')
            });
        valid
            .then(|| {
                std::str::from_utf8(value)
                    .ok()
                    .map(|s| Tenant(Arc::from(s)))
            })
            .flatten()
    }

    /// The tenant id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the request said about its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TenantHeader {
    Absent,
    Valid(Tenant),
    /// Present but refused (malformed, or several lines): never recorded raw.
    Invalid,
}

pub(crate) fn read(headers: &http::HeaderMap) -> TenantHeader {
    let mut values = headers.get_all(TENANT_HEADER_NAME).iter();
    match (values.next(), values.next()) {
        (None, _) => TenantHeader::Absent,
        (Some(v), None) => {
            Tenant::parse(v.as_bytes()).map_or(TenantHeader::Invalid, TenantHeader::Valid)
        }
        (Some(_), Some(_)) => TenantHeader::Invalid,
    }
}
