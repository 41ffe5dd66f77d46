//! The Jaeger propagation format: the `uber-trace-id` header
//! (`{trace-id}:{span-id}:{parent-span-id}:{flags}`) and one `uberctx-{key}` header per baggage
//! entry.
//!
//! Read strictly, on the header bytes, in one pass and without a regex:
//!
//! - `uber-trace-id` longer than [`MAX_UBER_TRACE_ID_BYTES`] is not looked at. Leading and
//!   trailing spaces and tabs are ignored. Exactly four fields separated by `:`, or (when the
//!   value has no `:`) by the URL-encoded `%3A` / `%3a`; mixing both is invalid.
//! - trace-id: 1 to 32 lowercase hex digits, left-padded to 128 bits; span-id and
//!   parent-span-id: 1 to 16 lowercase hex digits, left-padded to 64 bits; flags: 1 or 2
//!   lowercase hex digits. Jaeger's own clients write lowercase, as OpenTelemetry's do. An
//!   all-zero trace-id or span-id is invalid; the parent-span-id must be hex but is not used.
//! - flags: bit 0 (sampled) or bit 1 (debug, which Jaeger only sets on sampled traces) make
//!   the parent sampled; other bits are ignored.
//! - More than one `uber-trace-id` field line is invalid. Anything invalid leaves the context
//!   without a Jaeger parent; it never fails.
//! - `uberctx-{key}`: the key is the rest of the header name (a non-empty token); the value is
//!   URL-decoded (`+` is a space and `%XX` an octet, as Jaeger's clients encode it; octets that
//!   are not UTF-8 become U+FFFD) and must be printable ASCII before decoding. The entries
//!   share the limits of W3C baggage: when, written as one `baggage` value, they would take
//!   more than [`MAX_BAGGAGE_BYTES`](super::MAX_BAGGAGE_BYTES), none is kept; past
//!   [`MAX_BAGGAGE_MEMBERS`](super::MAX_BAGGAGE_MEMBERS) entries, the rest are dropped.
//!
//! Written: `uber-trace-id` as `{32 hex}:{16 hex}:0:{1|0}` (the parent-span-id is no longer
//! used and written as `0`), and `uberctx-{key}` for every baggage entry whose key is a token,
//! its value percent-encoded (every octet but ASCII letters, digits and `-._~`), within the
//! same limits.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::baggage::Baggage;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use super::baggage::{
    BaggageList, BaggageMember, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, hex_upper, hex_value,
    is_token,
};
use super::{PropagatedTraceContext, trim_ows};

/// The Jaeger trace context header name.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::propagation::UBER_TRACE_ID;
///
/// assert_eq!(UBER_TRACE_ID, "uber-trace-id");
/// ```
pub const UBER_TRACE_ID: HeaderName = HeaderName::from_static("uber-trace-id");

/// The prefix of Jaeger's baggage headers: `uberctx-{key}: {value}`.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::propagation::UBERCTX_PREFIX;
///
/// assert_eq!(format!("{UBERCTX_PREFIX}user"), "uberctx-user");
/// ```
pub const UBERCTX_PREFIX: &str = "uberctx-";

/// The longest `uber-trace-id` value that is read (a valid one has at most 75 bytes); a
/// longer one is ignored without being parsed.
///
/// # Example
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::PropagatorKind;
/// use stellaops_telemetry_core::propagation::{MAX_UBER_TRACE_ID_BYTES, Propagators};
///
/// let padded = format!("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1{}", " ".repeat(MAX_UBER_TRACE_ID_BYTES));
/// let mut headers = HeaderMap::new();
/// headers.insert("uber-trace-id", HeaderValue::try_from(padded)?);
/// assert!(Propagators::new([PropagatorKind::Jaeger]).extract(&headers).parent.is_none());
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub const MAX_UBER_TRACE_ID_BYTES: usize = 256;

/// The flag bits that make a parent sampled: sampled (`0x01`) and debug (`0x02`).
const SAMPLED_OR_DEBUG: u8 = 0x03;

/// The fields of a valid `uber-trace-id` that are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UberTraceId {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) sampled: bool,
}

/// Parses one `uber-trace-id` field value; `None` when it is not valid.
pub(super) fn parse(value: &[u8]) -> Option<UberTraceId> {
    // Checked before anything else so that a hostile value costs nothing to refuse.
    if value.len() > MAX_UBER_TRACE_ID_BYTES {
        return None;
    }
    let [trace_id, span_id, parent_span_id, flags] = fields(trim_ows(value))?;
    let trace_id = hex_lower(trace_id, 32)?;
    let span_id = u64::try_from(hex_lower(span_id, 16)?).ok()?;
    hex_lower(parent_span_id, 16)?;
    let flags = hex_lower(flags, 2)?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(UberTraceId {
        trace_id: TraceId::from(trace_id),
        span_id: SpanId::from(span_id),
        sampled: flags & u128::from(SAMPLED_OR_DEBUG) != 0,
    })
}

/// The four fields, separated by `:` or, in a value without any `:`, by `%3A` (either case).
fn fields(value: &[u8]) -> Option<[&[u8]; 4]> {
    let mut out: [&[u8]; 4] = [&[]; 4];
    let mut count = 0;
    let mut start = 0;
    let encoded = !value.contains(&b':');
    let mut i = 0;
    while i < value.len() {
        let separator = if encoded {
            matches!(value.get(i..i + 3), Some(b"%3A" | b"%3a")).then_some(3)
        } else {
            (value.get(i) == Some(&b':')).then_some(1)
        };
        match separator {
            Some(width) => {
                *out.get_mut(count)? = value.get(start..i)?;
                count += 1;
                i += width;
                start = i;
            }
            None => i += 1,
        }
    }
    *out.get_mut(count)? = value.get(start..)?;
    (count == 3).then_some(out)
}

/// Decodes 1 to `max` (at most 32) lowercase hex digits.
fn hex_lower(digits: &[u8], max: usize) -> Option<u128> {
    if digits.is_empty() || digits.len() > max.min(32) {
        return None;
    }
    digits.iter().try_fold(0u128, |acc, &b| {
        let nibble = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(nibble))
    })
}

/// The `uber-trace-id` value of what leaves: 32 and 16 lowercase hex digits, the unused
/// parent-span-id as `0`, and the sampled decision as flags `1` or `0`.
pub(super) fn format(trace: &PropagatedTraceContext) -> String {
    format!(
        "{}:{}:0:{}",
        trace.trace_id(),
        trace.parent_id(),
        u8::from(trace.is_sampled())
    )
}

/// The remote parent of `uber-trace-id` field lines (exactly one is valid), with only the
/// sampled flag.
fn trace_context_of<'a>(
    mut lines: impl Iterator<Item = &'a [u8]>,
) -> Option<(SpanContext, PropagatedTraceContext)> {
    let found = match (lines.next(), lines.next()) {
        (Some(line), None) => parse(line)?,
        _ => return None,
    };
    let parent = SpanContext::new(
        found.trace_id,
        found.span_id,
        TraceFlags::default().with_sampled(found.sampled),
        true,
        TraceState::NONE,
    );
    let received = PropagatedTraceContext::from_span_context(&parent)?;
    Some((parent, received))
}

/// The baggage of `uberctx-` entries, `(key without the prefix, value)`, within the W3C
/// baggage limits (see the module docs).
fn baggage_of<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> BaggageList {
    let mut members = Vec::new();
    let mut combined = 0usize;
    for (key, value) in entries {
        // The length of `key=value` joined with `,`, as one `baggage` value would be.
        combined = combined
            .saturating_add(key.len())
            .saturating_add(value.len())
            .saturating_add(1 + usize::from(combined > 0));
        if combined > MAX_BAGGAGE_BYTES {
            return BaggageList::default();
        }
        if members.len() < MAX_BAGGAGE_MEMBERS
            && let Some(member) = member(key, value)
        {
            members.push(member);
        }
    }
    BaggageList::from_members(members)
}

/// One `uberctx-` entry: a token key and a printable ASCII value, URL-decoded.
fn member(key: &str, value: &[u8]) -> Option<BaggageMember> {
    let value = trim_ows(value);
    if !is_token(key.as_bytes()) || !value.iter().all(|&b| matches!(b, 0x20..=0x7e)) {
        return None;
    }
    Some(BaggageMember::new(
        key.to_owned(),
        url_decode(value),
        String::new(),
    ))
}

/// `+` is a space and `%XX` (either case) an octet; a `%` without two hex digits after it is
/// kept literally. Octets that are not UTF-8 become U+FFFD.
fn url_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                tail.first().and_then(|&h| hex_value(h)),
                tail.get(1).and_then(|&l| hex_value(l)),
            )
        {
            out.push(hi << 4 | lo);
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        rest = tail;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Percent-encodes every octet but ASCII letters, digits and `-._~` (uppercase hex), so that
/// every URL decoder, form decoders included, reads the value back.
fn url_encode(out: &mut String, value: &str) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_upper(b >> 4));
            out.push(hex_upper(b & 0x0f));
        }
    }
}

/// The `uberctx-` headers of `baggage`, `(header name, encoded value)`, in its map's order:
/// keys that are not tokens are skipped, an entry that would take the whole past
/// [`MAX_BAGGAGE_BYTES`] (counted as one `baggage` value) is left out, and at most
/// [`MAX_BAGGAGE_MEMBERS`] are written.
pub(super) fn baggage_headers(baggage: &Baggage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut combined = 0usize;
    for (key, (value, _metadata)) in baggage {
        if out.len() == MAX_BAGGAGE_MEMBERS {
            break;
        }
        let key = key.as_str();
        if !is_token(key.as_bytes()) {
            continue;
        }
        let mut encoded = String::with_capacity(value.as_str().len());
        url_encode(&mut encoded, value.as_str());
        let size = key.len() + 1 + encoded.len() + usize::from(combined > 0);
        if combined + size > MAX_BAGGAGE_BYTES {
            continue;
        }
        combined += size;
        out.push((format!("{UBERCTX_PREFIX}{key}"), encoded));
    }
    out
}

/// The Jaeger parent and baggage of request headers.
pub(super) fn extract_headers(
    headers: &HeaderMap,
) -> (Option<(SpanContext, PropagatedTraceContext)>, BaggageList) {
    let trace = trace_context_of(
        headers
            .get_all(UBER_TRACE_ID)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    // Header names are lowercase in a `HeaderMap`.
    let baggage = baggage_of(headers.iter().filter_map(|(name, value)| {
        let key = name.as_str().strip_prefix(UBERCTX_PREFIX)?;
        Some((key, value.as_bytes()))
    }));
    (trace, baggage)
}

/// The Jaeger parent and baggage of any carrier (what the global propagator reads).
pub(super) fn extract(
    extractor: &dyn Extractor,
) -> (Option<(SpanContext, PropagatedTraceContext)>, BaggageList) {
    let lines = extractor
        .get_all(UBER_TRACE_ID.as_str())
        .unwrap_or_default();
    let trace = trace_context_of(lines.iter().map(|line| line.as_bytes()));
    let keys = extractor.keys();
    let entries = keys
        .iter()
        .filter_map(|&name| {
            let prefix = name.get(..UBERCTX_PREFIX.len())?;
            let key = name.get(UBERCTX_PREFIX.len()..)?;
            prefix
                .eq_ignore_ascii_case(UBERCTX_PREFIX)
                .then_some((name, key))
        })
        .flat_map(|(name, key)| {
            let values = extractor.get_all(name).unwrap_or_default();
            values.into_iter().map(move |value| (key, value.as_bytes()))
        });
    let baggage = baggage_of(entries);
    (trace, baggage)
}

/// Writes `uber-trace-id` (when there is a trace context) and the `uberctx-` headers of
/// `baggage`.
pub(super) fn inject(
    trace: Option<&PropagatedTraceContext>,
    baggage: &Baggage,
    injector: &mut dyn Injector,
) {
    if let Some(trace) = trace {
        injector.set(UBER_TRACE_ID.as_str(), format(trace));
    }
    for (name, value) in baggage_headers(baggage) {
        injector.set(&name, value);
    }
}

#[cfg(test)]
#[path = "jaeger_tests.rs"]
mod tests;
