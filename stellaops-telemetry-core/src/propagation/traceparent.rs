//! The `traceparent` header: `version "-" trace-id "-" parent-id "-" trace-flags`.
//!
//! Trace Context Level 2, §3.2 (<https://www.w3.org/TR/trace-context-2/#traceparent-header>).

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

use super::trim_ows;

/// Length of a version `00` value, and the minimum length of any later version.
const VERSION_00_LEN: usize = 55;

/// The trace-flags bits this implementation knows: sampled (`0x01`) and random (`0x02`).
/// "The behavior of other flags ... is reserved for future use. Vendors MUST set those to zero."
pub(super) const KNOWN_FLAGS: u8 = 0x03;

/// The fields of a valid `traceparent`, flags already reduced to [`KNOWN_FLAGS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TraceParent {
    pub(super) trace_id: TraceId,
    pub(super) parent_id: SpanId,
    pub(super) flags: TraceFlags,
}

/// Parses one `traceparent` field value; `None` when it is not valid.
///
/// Leading and trailing OWS (SP / HTAB) is not part of an HTTP field value (RFC 9110 §5.5), so
/// it is trimmed first, as the w3c/trace-context test suite expects (`test_traceparent_ows_handling`).
pub(super) fn parse(value: &[u8]) -> Option<TraceParent> {
    let value = trim_ows(value);
    let version = hex_lower(value.get(0..2)?)?;
    // "Version 255 ("ff") is invalid"; the version must be followed by a dash.
    if version == 0xff || value.get(2) != Some(&b'-') {
        return None;
    }
    if version == 0 {
        // "If the version is 00, ... the header is 55 characters" (and nothing after it).
        if value.len() != VERSION_00_LEN {
            return None;
        }
    } else {
        // A higher version: at least 55 characters, and the flags are "either at the end of the
        // string or followed by a dash". What follows is not ours to parse.
        if value.len() < VERSION_00_LEN
            || (value.len() > VERSION_00_LEN && value.get(VERSION_00_LEN) != Some(&b'-'))
        {
            return None;
        }
    }
    let trace_id = hex_lower(value.get(3..35)?)?;
    let parent_id = hex_lower(value.get(36..52)?)?;
    let flags = hex_lower(value.get(53..55)?)?;
    if value.get(35) != Some(&b'-') || value.get(52) != Some(&b'-') {
        return None;
    }
    // All-zero ids are invalid; the ids are at most 128 and 64 bits wide by construction.
    let parent_id = u64::try_from(parent_id).ok()?;
    let flags = u8::try_from(flags).ok()?;
    if trace_id == 0 || parent_id == 0 {
        return None;
    }
    Some(TraceParent {
        trace_id: TraceId::from(trace_id),
        parent_id: SpanId::from(parent_id),
        flags: TraceFlags::new(flags & KNOWN_FLAGS),
    })
}

/// Each byte's value as a lowercase hex digit (`HEXDIGLC`), or [`NOT_HEX`].
const HEX_VALUES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// The table's mark of a byte that is not a lowercase hex digit.
const NOT_HEX: u8 = 0x80;

/// Decodes 1 to 16 lowercase hex digits; uppercase, signs and anything else fail. One table
/// read per digit and no branch until the end: every digit is decoded, then the marks of all
/// of them are checked at once.
fn hex_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let (value, marks) = digits.iter().fold((0u64, 0u8), |(value, marks), &b| {
        let nibble = HEX_VALUES[usize::from(b)];
        (value << 4 | u64::from(nibble & 0x0f), marks | nibble)
    });
    (marks & NOT_HEX == 0).then_some(value)
}

/// Decodes 1 to 32 lowercase hex digits (`HEXDIGLC`); uppercase, signs and anything else fail.
fn hex_lower(digits: &[u8]) -> Option<u128> {
    if digits.len() <= 16 {
        return hex_u64(digits).map(u128::from);
    }
    let (high, low) = digits.split_at(digits.len() - 16);
    Some(u128::from(hex_u64(high)?) << 64 | u128::from(hex_u64(low)?))
}

/// Serialises a version `00` value; flags outside [`KNOWN_FLAGS`] are zeroed.
pub(super) fn format(trace_id: TraceId, parent_id: SpanId, flags: TraceFlags) -> String {
    let mut out = String::with_capacity(VERSION_00_LEN);
    out.push_str("00-");
    push_hex(&mut out, &trace_id.to_bytes());
    out.push('-');
    push_hex(&mut out, &parent_id.to_bytes());
    out.push('-');
    push_hex(&mut out, &[flags.to_u8() & KNOWN_FLAGS]);
    out
}

/// Appends `bytes` as lowercase hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
}

fn hex_digit(nibble: u8) -> char {
    let nibble = nibble & 0x0f;
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `HEXDIGLC` decoding means, written plainly.
    fn reference(digits: &[u8]) -> Option<u128> {
        let lowercase = digits
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if digits.is_empty() || digits.len() > 32 || !lowercase {
            return None;
        }
        u128::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }

    #[test]
    fn every_byte_at_every_position_of_every_length_decodes_as_the_plain_reading() {
        for len in 0..=33 {
            let base: Vec<u8> = b"0123456789abcdef0123456789abcdef0"[..len].to_vec();
            assert_eq!(hex_lower(&base), reference(&base), "{base:?}");
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut digits = base.clone();
                    digits[at] = byte;
                    assert_eq!(hex_lower(&digits), reference(&digits), "{digits:?}");
                }
            }
        }
    }
}
