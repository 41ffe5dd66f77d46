//! Sensitive keys written inside a value: `password=…`, `"token": "…"`,
//! `Config { secret: … }`, `password: Some("…")`, `("client_secret", "…")`, `%26token%3D…`.
//!
//! One forward pass over separators (`:`, `=`, `%3D`, and `,` after a quoted key in a tuple
//! or list). The key word before a separator is read backwards, but never past the
//! previous separator, and a masked value is skipped whole, so each byte is read a bounded
//! number of times.

use super::keys::{is_key_char, is_sensitive_name};
use super::shapes::percent_code;
use super::{REDACTED, masked, step};

/// A separator between a key written inside a value and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sep {
    /// `key: value` (not `://`).
    Colon,
    /// `key=value`.
    Equals,
    /// `key%3Dvalue` (a percent-encoded `=`).
    Percent,
    /// `("key", value)` or `["key", value]`.
    Comma,
}

impl Sep {
    /// The separator at `i`, if any, and where what follows it starts.
    fn at(bytes: &[u8], i: usize) -> Option<(Sep, usize)> {
        match bytes[i] {
            b':' if bytes.get(i + 1..i + 3) != Some(b"//") => Some((Sep::Colon, i + 1)),
            b'=' => Some((Sep::Equals, i + 1)),
            b'%' if percent_code(bytes, i) == Some(b'=') => Some((Sep::Percent, i + 3)),
            b',' => Some((Sep::Comma, i + 1)),
            _ => None,
        }
    }
}

/// The key word before the separator at `i`: for `:`, `=` and `%3D` the run of key
/// characters before it, after skipping a closing quote, escapes and spaces (a `%3F` or
/// `%26` just before the word is not part of it); for `,` only a quoted key opening a
/// tuple or list (`("key",` / `["key",`).
pub(super) fn word_before_sep(bytes: &[u8], i: usize, sep: Sep) -> Option<(usize, usize)> {
    if sep == Sep::Comma {
        return tuple_key_before(bytes, i);
    }
    let mut end = i;
    while end > 0 && matches!(bytes[end - 1], b' ' | b'"' | b'\'' | b'\\') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_key_char(bytes[start - 1]) {
        start -= 1;
    }
    step(i - start);
    // `%3Fpassword` / `%26token`: the word starts after the escape.
    if start > 0
        && bytes[start - 1] == b'%'
        && end - start > 2
        && matches!(percent_code(bytes, start - 1), Some(b'?' | b'&'))
    {
        start += 2;
    }
    (start < end).then_some((start, end))
}

/// `("key",` or `["key",` ending at the comma at `i` (spaces allowed around the quotes).
fn tuple_key_before(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    while j > 0 && bytes[j - 1] == b' ' {
        j -= 1;
    }
    step(i - j + 1);
    let quote = *bytes.get(j.checked_sub(1)?)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let end = j - 1;
    let mut start = end;
    while start > 0 && is_key_char(bytes[start - 1]) {
        start -= 1;
    }
    step(end - start);
    if start == end || start == 0 || bytes[start - 1] != quote {
        return None;
    }
    let mut k = start - 1;
    while k > 0 && bytes[k - 1] == b' ' {
        k -= 1;
    }
    step(start - k);
    (k > 0 && matches!(bytes[k - 1], b'(' | b'[')).then_some((start, end))
}

/// Keys whose value, unquoted, is the rest of the line (a header written in text).
fn is_whole_line_key(key: &[u8]) -> bool {
    [
        &b"cookie"[..],
        b"set-cookie",
        b"authorization",
        b"proxy-authorization",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
}

/// The index of the quote `q` that closes a string whose content starts at `v` (`\\`
/// escapes the byte after it); the text's end when none does.
fn string_end(bytes: &[u8], v: usize, q: u8) -> usize {
    let mut e = v;
    while e < bytes.len() && bytes[e] != q {
        e += if bytes[e] == b'\\' { 2 } else { 1 };
    }
    step(e.min(bytes.len()) - v + 1);
    e.min(bytes.len())
}

/// Where a quoted value that starts at `v` (after its quote `q`) ends: at the closing
/// quote; `\"` inside does not close it, and the escape that closes a quote in escaped
/// JSON (`\"`) is not the value's.
fn quoted_end(bytes: &[u8], v: usize, q: u8) -> usize {
    let e = string_end(bytes, v, q);
    if e > v && bytes[e - 1] == b'\\' {
        e - 1
    } else {
        e
    }
}

/// The end of a bracketed value opening at `open_at` (`[`, `{` or `(`): just after its
/// matching bracket, skipping strings (a `)` inside `"…"` does not close it); the text's
/// end when it never closes.
fn matching_close(bytes: &[u8], open_at: usize) -> usize {
    let open = bytes[open_at];
    let close = match open {
        b'[' => b']',
        b'{' => b'}',
        _ => b')',
    };
    let mut depth = 0usize;
    let mut e = open_at;
    while e < bytes.len() {
        let b = bytes[e];
        if b == b'"' {
            e = string_end(bytes, e + 1, b'"') + 1;
            continue;
        }
        step(1);
        if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return e + 1;
            }
        }
        e += 1;
    }
    bytes.len()
}

/// `Some(`, `Secret {`, `Sensitive(`: an identifier and an opening bracket at `v` (a
/// `Debug` wrapper); the bracket's index.
fn wrapper_open(bytes: &[u8], v: usize) -> Option<usize> {
    if !bytes.get(v)?.is_ascii_alphabetic() {
        return None;
    }
    let mut e = v;
    while e < bytes.len() && (bytes[e].is_ascii_alphanumeric() || bytes[e] == b'_') {
        e += 1;
    }
    step(e - v + 1);
    match bytes.get(e) {
        Some(b'(' | b'{') => Some(e),
        Some(b' ') if matches!(bytes.get(e + 1), Some(b'(' | b'{')) => Some(e + 1),
        _ => None,
    }
}

/// Where an unquoted value that starts at `v` ends.
fn plain_end(bytes: &[u8], v: usize, percent: bool) -> usize {
    let mut e = v;
    while e < bytes.len() {
        let b = bytes[e];
        if matches!(
            b,
            b' ' | b',' | b';' | b'&' | b'}' | b')' | b']' | b'\n' | b'\r' | b'\t'
        ) {
            break;
        }
        // After `%3D`, an escaped `&`, `#`, space or quote ends the value too.
        if percent && b == b'%' && percent_code(bytes, e).is_some_and(|c| c != b'?' && c != b'=') {
            break;
        }
        e += 1;
    }
    step(e - v + 1);
    e
}

/// Where a header value written in text ends: the end of its line.
fn line_end(bytes: &[u8], v: usize) -> usize {
    let mut e = v;
    while e < bytes.len() && !matches!(bytes[e], b'\n' | b'\r' | b'"') {
        e += 1;
    }
    step(e - v + 1);
    e
}

/// The value after a sensitive key's separator (`after` is just past it): the range to
/// mask, and whether it was quoted.
fn value_range(bytes: &[u8], after: usize, key: &[u8], sep: Sep) -> (usize, usize, bool) {
    let mut v = after;
    while v < bytes.len() && matches!(bytes[v], b' ' | b'\t' | b'\\') {
        v += 1;
    }
    step(v - after);
    let quote = match bytes.get(v) {
        Some(&q @ (b'"' | b'\'')) => {
            v += 1;
            Some(q)
        }
        _ => None,
    };
    let e = match (quote, bytes.get(v)) {
        (Some(q), _) => quoted_end(bytes, v, q),
        // A bracketed value (a `Debug` list or struct): up to its matching bracket.
        (None, Some(b'[' | b'{' | b'(')) => matching_close(bytes, v),
        (None, Some(_)) => match wrapper_open(bytes, v) {
            // `Some("…")`, `Secret { … }`: the whole wrapped value.
            Some(open_at) => matching_close(bytes, open_at),
            None if is_whole_line_key(key) => line_end(bytes, v),
            None => plain_end(bytes, v, sep == Sep::Percent),
        },
        (None, None) => v,
    };
    (v, e, quote.is_some())
}

/// `<sensitive key><sep><value>` inside a value: the value becomes the marker.
pub(super) fn embedded_keys(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        step(1);
        let Some((sep, after)) = Sep::at(bytes, i) else {
            i += 1;
            continue;
        };
        let key = match word_before_sep(bytes, i, sep) {
            Some((start, end)) if is_sensitive_name(&bytes[start..end]) => &bytes[start..end],
            _ => {
                i += 1;
                continue;
            }
        };
        let (v, e, quoted) = value_range(bytes, after, key, sep);
        let value = &bytes[v..e];
        // `Authorization: Bearer …` is the scheme rules' business: they keep the scheme word.
        let scheme = !quoted && is_scheme_word(value);
        if e > v
            && !scheme
            && value != REDACTED.as_bytes()
            && ranges.last().is_none_or(|&(_, last)| v >= last)
        {
            ranges.push((v, e));
        }
        i = e.max(i + 1);
    }
    masked(text, &ranges)
}

fn is_scheme_word(value: &[u8]) -> bool {
    value.eq_ignore_ascii_case(b"bearer") || value.eq_ignore_ascii_case(b"basic")
}
