//! Times in bundles: nanoseconds since 1970 inside the OTLP records, RFC 3339 in the manifest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as nanoseconds since 1970, when it is representable (1970 to 2554).
pub(crate) fn to_nanos(t: SystemTime) -> Option<u64> {
    let since = t.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// The RFC 3339 form the manifest uses: seconds, with nine fraction digits when not whole.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339(t).to_string()
}

/// `nanos` since 1970 in RFC 3339, for messages.
pub(crate) fn rfc3339_nanos(nanos: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Parses a manifest time; `None` unless it is in exactly the form [`rfc3339`] writes.
pub(crate) fn parse_canonical(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(s).ok()?;
    if rfc3339(t) != s {
        return None;
    }
    to_nanos(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_times_round_trip_and_others_are_refused() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let s = rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_canonical(&s), to_nanos(t));
        assert_eq!(
            rfc3339_nanos(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(parse_canonical("2023-11-14T22:13:20.000000000Z"), None);
        assert_eq!(parse_canonical("2023-11-14 22:13:20Z"), None);
    }
}
