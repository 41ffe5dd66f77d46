//! The JSON encoder of one log line: hand-written escaping into a reused buffer.

use std::fmt;

/// Appends `s` as a JSON string (with quotes), escaping as RFC 8259 requires.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends the escaped body of a JSON string (no quotes), copying runs of safe bytes at once.
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A `fmt::Write` that escapes into a JSON string body, so `Debug` values and format
/// arguments are written without an intermediate `String`.
pub(crate) struct Escaper<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.0, s);
        Ok(())
    }
}

/// Appends a number.
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a number.
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float; NaN and infinities (not JSON numbers) become strings.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        write_str(out, &v.to_string());
    }
}

/// Appends 32 (trace id) or 16 (span id) lowercase hex digits.
pub(crate) fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "new\nline\r\t",
            "\u{0}\u{1f}\u{7f}",
            "ünï ☃ 𝄞",
            "",
        ] {
            let ours = esc(s);
            let back: String = serde_json::from_str(&ours).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(esc("a\u{1}b"), "\"a\\u0001b\"");
    }

    #[test]
    fn non_finite_floats_are_strings() {
        let mut out = Vec::new();
        write_f64(&mut out, f64::NAN);
        assert_eq!(out, b"\"NaN\"");
        out.clear();
        write_f64(&mut out, 1.5);
        assert_eq!(out, b"1.5");
    }
}
