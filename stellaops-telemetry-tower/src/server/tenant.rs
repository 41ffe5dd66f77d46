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
        valid(value)
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

/// At most this many distinct tenants are kept by a layer for reuse, first come; later ones
/// are copied per request (a bound on what hostile headers can make a layer keep: 16,384 ids
/// of at most [`MAX_TENANT_LEN`] bytes; a flood of new ids fills it for good, and the tenants
/// after it then cost one allocation per request, as every tenant did before).
pub(crate) const MAX_KNOWN_TENANTS: usize = 16_384;

/// The tenants a layer has seen, kept so that a request of a known tenant shares its id
/// instead of copying it (no allocation per request). Hashed with a keyed hasher: the ids come
/// from outside.
#[derive(Default)]
pub(crate) struct KnownTenants {
    known: parking_lot::RwLock<std::collections::HashSet<Arc<str>>>,
}

impl KnownTenants {
    /// What the request said about its tenant.
    pub(crate) fn read(&self, headers: &http::HeaderMap) -> TenantHeader {
        let mut values = headers.get_all(TENANT_HEADER_NAME).iter();
        match (values.next(), values.next()) {
            (None, _) => TenantHeader::Absent,
            (Some(v), None) => self.parse(v.as_bytes()),
            (Some(_), Some(_)) => TenantHeader::Invalid,
        }
    }

    fn parse(&self, value: &[u8]) -> TenantHeader {
        if !valid(value) {
            return TenantHeader::Invalid;
        }
        let Ok(text) = std::str::from_utf8(value) else {
            return TenantHeader::Invalid;
        };
        let full = {
            let known = self.known.read();
            if let Some(known) = known.get(text) {
                return TenantHeader::Valid(Tenant(Arc::clone(known)));
            }
            known.len() >= MAX_KNOWN_TENANTS
        };
        let tenant: Arc<str> = Arc::from(text);
        // Once full, unseen tenants never take the write lock the known ones' reads wait for.
        if !full {
            let mut known = self.known.write();
            if known.len() < MAX_KNOWN_TENANTS {
                known.insert(Arc::clone(&tenant));
            }
        }
        TenantHeader::Valid(Tenant(tenant))
    }

    /// How many tenants are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.read().len()
    }
}

/// 1–[`MAX_TENANT_LEN`] bytes of `A–Z a–z 0–9 . _ - @ :`.
fn valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_TENANT_LEN
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(tenant: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TENANT_HEADER_NAME,
            http::HeaderValue::from_str(tenant).unwrap(),
        );
        headers
    }

    #[test]
    fn a_known_tenant_is_shared_and_the_set_of_known_tenants_is_bounded() {
        let tenants = KnownTenants::default();
        let (TenantHeader::Valid(a), TenantHeader::Valid(b)) = (
            tenants.read(&headers("acme")),
            tenants.read(&headers("acme")),
        ) else {
            panic!("acme is a valid tenant");
        };
        assert!(Arc::ptr_eq(&a.0, &b.0));
        for i in 0..MAX_KNOWN_TENANTS + 10 {
            assert!(matches!(
                tenants.read(&headers(&format!("t-{i}"))),
                TenantHeader::Valid(t) if t.as_str() == format!("t-{i}")
            ));
        }
        assert_eq!(tenants.len(), MAX_KNOWN_TENANTS);
        assert_eq!(tenants.read(&headers("acme%2f")), TenantHeader::Invalid);
        assert_eq!(tenants.read(&headers("bad tenant")), TenantHeader::Invalid);
    }
}
