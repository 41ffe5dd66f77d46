//! The JSON line encoder: escaping, numbers, timestamps and the one field choke point.
//!
//! Everything here appends to a caller-owned `Vec<u8>` that the layer reuses from line to line,
//! so encoding allocates nothing once the buffers have grown to the size of a typical line.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A field value on its way into a JSON line.
#[derive(Clone, Copy)]
pub(crate) enum FieldValue<'a> {
    /// A string, written as a JSON string.
    Str(&'a str),
    /// Anything else with a `Debug` form (including `format_args!` messages), written as a JSON
    /// string holding that form.
    Debug(&'a dyn fmt::Debug),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A wide signed integer.
    I128(i128),
    /// A wide unsigned integer.
    U128(u128),
    /// A float; non-finite values become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
    F64(f64),
}

/// Part of a JSON object under construction: a run of `,"key":value` members.
#[derive(Debug, Default)]
pub(crate) struct JsonBuf {
    pub(crate) bytes: Vec<u8>,
}

/// The keys of the house line; event fields never take them ([`is_house_key`] matches them).
#[cfg(test)]
const HOUSE_KEYS: [&str; 11] = [
    "timestamp",
    "level",
    "message",
    "service",
    "version",
    "traceId",
    "spanId",
    "tenant",
    "correlationId",
    "target",
    "retention",
];

/// Whether `key` is a key of the house line, which event fields never take (a `match`: one
/// length test for most keys, where a search of a list would compare eleven strings).
fn is_house_key(key: &str) -> bool {
    matches!(
        key,
        "timestamp"
            | "level"
            | "message"
            | "service"
            | "version"
            | "traceId"
            | "spanId"
            | "tenant"
            | "correlationId"
            | "target"
            | "retention"
    )
}

impl JsonBuf {
    /// Appends one member, `,"key":value`.
    ///
    /// Every value that comes from the caller's code reaches this point (the message, the
    /// event's own fields, the tenant and correlation id read from spans) after the layer
    /// redacted and bounded it; nothing else writes such a value. House values the SDK makes up
    /// itself (timestamp, level, service, version, trace and span ids, target, retention) are
    /// written directly and never pass through here.
    pub(crate) fn write_field(&mut self, key: &str, value: FieldValue<'_>) {
        let out = &mut self.bytes;
        out.extend_from_slice(b",\"");
        if is_house_key(key) {
            // The house keys (`message`, `tenant`, `correlationId`) need no escape.
            out.extend_from_slice(key.as_bytes());
        } else {
            escape_into(out, key.as_bytes());
        }
        self.write_value(value);
    }

    /// Appends one of the event's own fields. A field named like a house key is written as
    /// `field.<name>`, so it can never shadow (or spoof) the level, tenant or any other house
    /// value for a reader that keeps the last of two equal keys.
    pub(crate) fn write_event_field(&mut self, key: &str, value: FieldValue<'_>) {
        if is_house_key(key) {
            self.bytes.extend_from_slice(b",\"field.");
            self.bytes.extend_from_slice(key.as_bytes());
        } else {
            self.bytes.extend_from_slice(b",\"");
            escape_into(&mut self.bytes, key.as_bytes());
        }
        self.write_value(value);
    }

    fn write_value(&mut self, value: FieldValue<'_>) {
        let out = &mut self.bytes;
        out.extend_from_slice(b"\":");
        match value {
            FieldValue::Str(s) => write_json_str(out, s),
            FieldValue::Debug(d) => {
                out.push(b'"');
                // `EscapeWriter` never fails, so the only error is a `Debug` impl that returns one;
                // the line keeps whatever it wrote before failing.
                let _ = fmt::write(&mut EscapeWriter(out), format_args!("{d:?}"));
                out.push(b'"');
            }
            FieldValue::Bool(true) => out.extend_from_slice(b"true"),
            FieldValue::Bool(false) => out.extend_from_slice(b"false"),
            FieldValue::I64(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            FieldValue::U64(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            FieldValue::I128(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            FieldValue::U128(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            FieldValue::F64(n) if n.is_finite() => {
                out.extend_from_slice(ryu::Buffer::new().format_finite(n).as_bytes());
            }
            FieldValue::F64(n) if n.is_nan() => out.extend_from_slice(b"\"NaN\""),
            FieldValue::F64(n) if n > 0.0 => out.extend_from_slice(b"\"Infinity\""),
            FieldValue::F64(_) => out.extend_from_slice(b"\"-Infinity\""),
        }
    }

    /// Appends bytes that are already valid JSON.
    pub(crate) fn push_raw(&mut self, raw: &[u8]) {
        self.bytes.extend_from_slice(raw);
    }
}

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s.as_bytes());
    out.push(b'"');
}

const UU: u8 = b'u'; // \u00XX
const BB: u8 = b'b'; // \x08
const TT: u8 = b't'; // \x09
const NN: u8 = b'n'; // \x0A
const FF: u8 = b'f'; // \x0C
const RR: u8 = b'r'; // \x0D
const QU: u8 = b'"'; // \x22
const BS: u8 = b'\\'; // \x5C
const __: u8 = 0;

/// For each byte, 0 when it is copied as is, otherwise the character after the backslash.
///
/// Only `"`, `\` and the C0 controls need escaping; multi-byte UTF-8 passes through untouched.
static ESCAPE: [u8; 256] = [
    //   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
    UU, UU, UU, UU, UU, UU, UU, UU, BB, TT, NN, UU, FF, RR, UU, UU, // 0
    UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, // 1
    __, __, QU, __, __, __, __, __, __, __, __, __, __, __, __, __, // 2
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 3
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 4
    __, __, __, __, __, __, __, __, __, __, __, __, BS, __, __, __, // 5
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 6
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 7
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 8
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 9
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // A
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // B
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // C
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // D
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // E
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // F
];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` JSON-escaped (without quotes), copying runs of safe bytes in one go.
#[inline]
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys, ids and most values need no escape at all: one scan, one copy.
    match first_escape_word(bytes) {
        None => out.extend_from_slice(bytes),
        Some(from) => escape_from(out, bytes, from),
    }
}

/// The start of the first eight-byte word of `bytes` that holds a byte needing an escape;
/// `None` when there is none. The last word overlaps the one before it (a shorter string is
/// read as one word padded with safe bytes), so no byte is read one at a time.
#[inline]
fn first_escape_word(bytes: &[u8]) -> Option<usize> {
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    if bytes.len() < 8 {
        let mut word = u64::from_le_bytes([b'a'; 8]);
        for (i, &b) in bytes.iter().enumerate() {
            word = (word & !(0xff << (8 * i))) | (u64::from(b) << (8 * i));
        }
        return needs_escape(word).then_some(0);
    }
    let last = bytes.len() - 8;
    let mut at = 0;
    while at < last {
        if needs_escape(word_at(at)) {
            return Some(at);
        }
        at += 8;
    }
    needs_escape(word_at(last)).then_some(last)
}

/// [`escape_into`] once the first byte needing an escape is known to lie at or after `from`
/// (everything before it is copied as is).
#[inline(never)]
fn escape_from(out: &mut Vec<u8>, bytes: &[u8], from: usize) {
    let mut start = 0;
    let mut i = from;
    while i < bytes.len() {
        // Skip eight safe bytes at a time; most strings never leave this loop.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        let esc = ESCAPE[b as usize];
        if esc != 0 {
            out.extend_from_slice(&bytes[start..i]);
            if esc == UU {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes in `word` is a control character, `"` or `\`.
///
/// The classic "has a byte less than n" and "has a zero byte" bit tricks
/// (<https://graphics.stanford.edu/~seander/bithacks.html#HasLessInWord>), exact as yes/no tests.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let has_control = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    has_control
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

/// A `fmt::Write` that JSON-escapes what it is given into a byte buffer.
struct EscapeWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for EscapeWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s.as_bytes());
        Ok(())
    }
}

/// A trace id then a span id as 32 + 16 lowercase hex digits.
#[inline]
pub(crate) fn hex_ids(trace_id: [u8; 16], span_id: [u8; 8]) -> [u8; 48] {
    let trace_id = u128::from_be_bytes(trace_id);
    let mut hex = [0u8; 48];
    hex[..16].copy_from_slice(&hex_word((trace_id >> 64) as u64).to_be_bytes());
    hex[16..32].copy_from_slice(&hex_word(trace_id as u64).to_be_bytes());
    hex[32..].copy_from_slice(&hex_word(u64::from_be_bytes(span_id)).to_be_bytes());
    hex
}

/// The sixteen lowercase hex digits of `x`, most significant first in big-endian order.
fn hex_word(x: u64) -> u128 {
    /// Moves byte `i` of `x` to the low byte of 16-bit lane `i`.
    fn spread(x: u64) -> u128 {
        let mut x = u128::from(x);
        x = (x | (x << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
        x = (x | (x << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
        (x | (x << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff
    }
    const NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    let nibbles = (spread((x >> 4) & NIBBLES) << 8) | spread(x & NIBBLES);
    // Each byte is 0..=15: `+ 6` carries into bit 4 exactly for 10..=15, which take `a`..`f`.
    let letters = ((nibbles + ONES * 6) >> 4) & ONES;
    nibbles + ONES * u128::from(b'0') + letters * u128::from(b'a' - b'0' - 10)
}

/// Formats RFC 3339 UTC timestamps with milliseconds, remembering the last second it formatted.
#[derive(Debug)]
pub(crate) struct Clock {
    secs: u64,
    text: [u8; 19],
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            secs: u64::MAX,
            text: [0; 19],
        }
    }
}

impl Clock {
    /// Appends `now` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (times before 1970 are written as 1970).
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs();
        if secs != self.secs {
            self.text = date_time(secs);
            self.secs = secs;
        }
        let ms = since_epoch.subsec_millis();
        out.extend_from_slice(&self.text);
        out.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for a count of seconds since the Unix epoch.
fn date_time(secs: u64) -> [u8; 19] {
    let mut text = Vec::with_capacity(24);
    crate::clock::Civil::from_unix_millis(secs.saturating_mul(1000) as i64)
        .write_rfc3339_millis(&mut text);
    let mut out = *b"0000-00-00T00:00:00";
    out.copy_from_slice(&text[..19]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stamp(secs: u64, millis: u64) -> String {
        let mut out = Vec::new();
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
        Clock::default().write(&mut out, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stamp(951_782_400 + 3_723, 7), "2000-02-29T01:02:03.007Z");
        assert_eq!(
            stamp(47_541 * 86_400 + 86_399, 999),
            "2100-03-01T23:59:59.999Z"
        );
        assert_eq!(stamp(1_767_954_600, 123), "2026-01-09T10:30:00.123Z");
    }

    #[test]
    fn the_clock_reformats_when_the_second_changes() {
        let mut clock = Clock::default();
        let mut out = Vec::new();
        clock.write(&mut out, UNIX_EPOCH + Duration::from_millis(999));
        clock.write(&mut out, UNIX_EPOCH + Duration::from_millis(1_001));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:00.999Z1970-01-01T00:00:01.001Z"
        );
    }

    #[test]
    fn escaping_covers_quotes_backslashes_and_controls() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\"b\\c\nd\te\u{1}\u{1f}é😀\u{7f}".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"a\"b\\c\nd\te\u0001\u001fé😀"#.to_owned() + "\u{7f}"
        );
    }

    #[test]
    fn the_word_at_a_time_scan_agrees_with_the_table_for_every_byte_and_position() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut word = [b'a'; 8];
                word[pos] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    ESCAPE[b as usize] != 0,
                    "byte {b:#x} at {pos}"
                );
            }
        }
        let long = "0123456789abcdef\"0123456789\n0123456789abcdef\u{2}xyz";
        let mut out = Vec::new();
        escape_into(&mut out, long.as_bytes());
        let back: String = serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
        assert_eq!(back, long);
    }

    #[test]
    fn an_escape_is_found_at_every_position_of_every_length_up_to_three_words() {
        for len in 0..24 {
            let clean = "k".repeat(len);
            let mut out = Vec::new();
            escape_into(&mut out, clean.as_bytes());
            assert_eq!(out, clean.as_bytes());
            for pos in 0..len {
                for special in ['"', '\\', '\n', '\u{0}'] {
                    let mut text: Vec<char> = clean.chars().collect();
                    text[pos] = special;
                    let text: String = text.into_iter().collect();
                    let mut out = Vec::new();
                    escape_into(&mut out, text.as_bytes());
                    let back: String =
                        serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
                    assert_eq!(back, text, "length {len}, position {pos}");
                }
            }
        }
    }

    #[test]
    fn hex_digits_match_the_formatter() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut bytes = [0u8; 24];
        for round in 0..2_000 {
            for b in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            if round == 0 {
                bytes = [0xff; 24];
            }
            let mut trace_id = [0u8; 16];
            trace_id.copy_from_slice(&bytes[..16]);
            let mut span_id = [0u8; 8];
            span_id.copy_from_slice(&bytes[16..]);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                String::from_utf8(hex_ids(trace_id, span_id).to_vec()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn the_house_key_match_is_the_house_key_list() {
        for key in HOUSE_KEYS {
            assert!(is_house_key(key), "{key}");
        }
        for key in ["Level", "messages", "trace_id", "", "field.level"] {
            assert!(!is_house_key(key), "{key}");
        }
    }

    #[test]
    fn floats_and_wide_integers_are_json_numbers_or_named_strings() {
        let mut buf = JsonBuf::default();
        buf.write_field("a", FieldValue::F64(1.5));
        buf.write_field("b", FieldValue::F64(f64::NAN));
        buf.write_field("c", FieldValue::F64(f64::NEG_INFINITY));
        buf.write_field("d", FieldValue::U128(u128::MAX));
        buf.write_field("e", FieldValue::I64(-3));
        assert_eq!(
            String::from_utf8(buf.bytes).unwrap(),
            r#","a":1.5,"b":"NaN","c":"-Infinity","d":340282366920938463463374607431768211455,"e":-3"#
        );
    }
}
