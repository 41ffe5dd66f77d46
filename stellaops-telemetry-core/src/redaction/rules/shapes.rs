//! Credential shapes: PEM private keys, JWTs, bearer and basic credentials, URL userinfo
//! (and Go-style DSNs), and sensitive query parameters.
//!
//! Each rule is one forward pass. Where a rule must look past a failed candidate (a `://`
//! whose authority has no `@`), it resumes from where the previous look stopped rather than
//! searching the same bytes again.

use base64::Engine as _;

use super::{REDACTED, masked, splice_each, step};

/// The query parameters the OpenTelemetry URL convention redacts.
pub const SENSITIVE_QUERY_PARAMETERS: [&str; 7] = [
    "sig",
    "signature",
    "x-amz-signature",
    "x-goog-signature",
    "awsaccesskeyid",
    "x-amz-credential",
    "x-goog-credential",
];

/// The first index at or after `from` where `needle` (non-empty) starts in `hay`, counting
/// the bytes compared.
pub(super) fn find_bytes(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let window = &hay[i..=hay.len() - needle.len()];
        let Some(j) = window.iter().position(|&b| b == first) else {
            step(window.len());
            return None;
        };
        step(j + needle.len());
        if hay[i + j..].starts_with(needle) {
            return Some(i + j);
        }
        i += j + 1;
    }
    None
}

/// The byte a `%XX` escape at `i` stands for, for the few the rules read (`?`, `&`, `=`,
/// `#`, space and quotes; hex digits in either case).
pub(super) fn percent_code(bytes: &[u8], i: usize) -> Option<u8> {
    let code = bytes.get(i + 1..i + 3)?;
    match [code[0], code[1].to_ascii_uppercase()] {
        [b'3', b'F'] => Some(b'?'),
        [b'2', b'6'] => Some(b'&'),
        [b'3', b'D'] => Some(b'='),
        [b'2', b'3'] => Some(b'#'),
        [b'2', b'0'] => Some(b' '),
        [b'2', b'2'] => Some(b'"'),
        [b'2', b'7'] => Some(b'\''),
        _ => None,
    }
}

/// Whether `word` is one of the [`SENSITIVE_QUERY_PARAMETERS`].
pub(super) fn is_query_parameter(word: &[u8]) -> bool {
    SENSITIVE_QUERY_PARAMETERS
        .iter()
        .any(|p| word.eq_ignore_ascii_case(p.as_bytes()))
}

/// When a sensitive query parameter's name starts at `s`, followed by `=` or `%3D`: where
/// its value starts, and whether the separator was percent-encoded. Reads at most the
/// longest name and its separator.
pub(super) fn sensitive_param_at(bytes: &[u8], s: usize) -> Option<(usize, bool)> {
    let rest = bytes.get(s..)?;
    step(20);
    SENSITIVE_QUERY_PARAMETERS.iter().find_map(|p| {
        let p = p.as_bytes();
        if !rest.get(..p.len())?.eq_ignore_ascii_case(p) {
            return None;
        }
        match rest.get(p.len()) {
            Some(b'=') => Some((s + p.len() + 1, false)),
            Some(b'%') if percent_code(bytes, s + p.len()) == Some(b'=') => {
                Some((s + p.len() + 3, true))
            }
            _ => None,
        }
    })
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// Where a query value that starts at `v` ends: `&`, `#`, whitespace or a quote, and after
/// a percent-encoded separator also their `%XX` escapes.
fn query_value_end(bytes: &[u8], v: usize, percent: bool) -> usize {
    let mut e = v;
    while e < bytes.len() {
        step(1);
        let b = bytes[e];
        if matches!(b, b'&' | b'#' | b'"' | b'\'') || is_space(b) {
            break;
        }
        if percent && b == b'%' && percent_code(bytes, e).is_some_and(|c| c != b'?' && c != b'=') {
            break;
        }
        e += 1;
    }
    e
}

/// The values of sensitive query parameters. A parameter starts at the very start (a bare
/// `url.query` value), after `?` or `&`, or after `%3F` / `%26`; each start costs a bounded
/// look, and a masked value is skipped whole.
pub(super) fn url_query(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut name_at = Some(0);
    let mut i = 0;
    loop {
        if let Some((v, percent)) = name_at.take().and_then(|s| sensitive_param_at(bytes, s)) {
            let e = query_value_end(bytes, v, percent);
            if e > v && &bytes[v..e] != REDACTED.as_bytes() {
                ranges.push((v, e));
            }
            i = i.max(e);
            continue;
        }
        let Some(&b) = bytes.get(i) else { break };
        step(1);
        match b {
            b'?' | b'&' => name_at = Some(i + 1),
            b'%' if matches!(percent_code(bytes, i), Some(b'?' | b'&')) => name_at = Some(i + 3),
            _ => {}
        }
        i += 1;
    }
    masked(text, &ranges)
}

/// PEM private-key blocks: `-----BEGIN <header>-----` where the header holds `PRIVATE KEY`
/// (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain, `PGP PRIVATE KEY BLOCK`), through the matching
/// `-----END …-----`; a block cut short runs to the end.
pub(super) fn private_keys(text: &str) -> Option<String> {
    // Real headers are under 40 bytes; the bound keeps a flood of `-----BEGIN` linear.
    const HEADER_MAX: usize = 64;
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(begin) = find_bytes(bytes, b"-----BEGIN", from) {
        let after = begin + 10;
        let window_end = (after + HEADER_MAX).min(bytes.len());
        let header_end = find_bytes(&bytes[..window_end], b"-----", after).unwrap_or(window_end);
        if find_bytes(&bytes[..header_end], b"PRIVATE KEY", after).is_none() {
            from = after;
            continue;
        }
        let end = match find_bytes(bytes, b"-----END", header_end) {
            Some(e) => {
                let close_end = (e + 8 + HEADER_MAX).min(bytes.len());
                find_bytes(&bytes[..close_end], b"-----", e + 8).map_or(bytes.len(), |c| c + 5)
            }
            None => bytes.len(),
        };
        ranges.push((begin, end));
        from = end;
    }
    masked(text, &ranges)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A JWT starting at `start`: header . payload . signature (the signature may be empty:
/// `alg: none`). Its end, when the segments fit.
fn jwt_at(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let mut lengths = [0usize; 3];
    for (k, length) in lengths.iter_mut().enumerate() {
        let seg_start = i;
        while i < bytes.len() && is_b64url(bytes[i]) {
            i += 1;
        }
        step(i - seg_start + 1);
        *length = i - seg_start;
        if k < 2 {
            if bytes.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (lengths[0] >= 4 && lengths[1] >= 2).then_some(i)
}

/// JSON Web Tokens. A failed candidate is retried from its next byte, but a candidate only
/// starts after a non-base64url byte, so each byte is read by at most three candidates
/// (the ones starting at its own segment and the two before it).
pub(super) fn jwts(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(start) = find_bytes(bytes, b"eyJ", from) {
        if start > 0 && is_b64url(bytes[start - 1]) {
            from = start + 3;
            continue;
        }
        match jwt_at(bytes, start) {
            Some(end) => {
                ranges.push((start, end));
                from = end;
            }
            None => from = start + 3,
        }
    }
    masked(text, &ranges)
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Whether the word before the space at `i` is `bearer` or `basic` (any case) after a
/// non-alphanumeric byte or the start: the prefilter's bounded look.
pub(super) fn scheme_before(bytes: &[u8], i: usize) -> bool {
    let scheme_before = |scheme: &[u8]| {
        i >= scheme.len()
            && bytes[i - scheme.len()..i].eq_ignore_ascii_case(scheme)
            && (i == scheme.len() || !bytes[i - scheme.len() - 1].is_ascii_alphanumeric())
    };
    step(12);
    scheme_before(b"bearer") || scheme_before(b"basic")
}

/// `<scheme> <credential>`: the credential range after `scheme` and its spaces. One pass:
/// a credential ends at a byte that is not a token character, so a scheme word inside a
/// rejected credential can only start a credential after it, and each is read once.
fn credentials_after(text: &str, scheme: &[u8], accept: impl Fn(&str) -> bool) -> Option<String> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + scheme.len() < n {
        step(1);
        let at_scheme = bytes[i].eq_ignore_ascii_case(&scheme[0])
            && bytes[i..i + scheme.len()].eq_ignore_ascii_case(scheme)
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !at_scheme {
            i += 1;
            continue;
        }
        let from = i + scheme.len();
        let mut start = from;
        while start < n && (bytes[start] == b' ' || bytes[start] == b'\t') {
            start += 1;
        }
        if start == from {
            i = from;
            continue;
        }
        let mut end = start;
        while end < n && is_token68(bytes[end]) {
            end += 1;
        }
        step(end - from);
        if end > start && &text[start..end] != REDACTED && accept(&text[start..end]) {
            ranges.push((start, end));
            i = end;
        } else {
            // A rejected credential may end in a scheme word of its own (`x-bearer <token>`).
            i = start;
        }
    }
    masked(text, &ranges)
}

/// `Bearer <token>`.
pub(super) fn bearer_tokens(text: &str) -> Option<String> {
    // A token, not a word ("Bearer Authentication is required"): a digit or a token symbol,
    // or too long to be a word.
    credentials_after(text, b"bearer", |t| {
        step(t.len());
        t.len() >= 20
            || (t.len() >= 6
                && t.bytes().any(|b| {
                    b.is_ascii_digit()
                        || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
                }))
    })
}

/// `Basic <base64 user:password>`.
pub(super) fn basic_credentials(text: &str) -> Option<String> {
    // base64 of `user:password`: it must decode and hold the colon. Padded credentials
    // decode only with padding and unpadded ones only without, so one decode settles it.
    credentials_after(text, b"basic", |t| {
        step(t.len());
        let padded = t.contains('=');
        // What cannot decode is settled before decoding (which allocates): a length no
        // base64 has, or a token character outside the base64 alphabet.
        let possible = t.len() >= 4
            && if padded {
                t.len() % 4 == 0
            } else {
                t.len() % 4 != 1
            }
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        let engine = if padded {
            &base64::engine::general_purpose::STANDARD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        possible && engine.decode(t).is_ok_and(|raw| raw.contains(&b':'))
    })
}

/// Where an authority (after `://`) ends: `/`, `?`, `#`, whitespace or a quote. Also the
/// last `@` in it and its first `:` before any `@`.
fn authority(bytes: &[u8], start: usize) -> (usize, Option<usize>, Option<usize>) {
    let mut end = start;
    let (mut last_at, mut colon) = (None, None);
    while end < bytes.len()
        && !matches!(
            bytes[end],
            b'/' | b'?' | b'#' | b' ' | b'\t' | b'\n' | b'"' | b'\''
        )
    {
        match bytes[end] {
            b'@' => last_at = Some(end),
            b':' if colon.is_none() && last_at.is_none() => colon = Some(end),
            _ => {}
        }
        end += 1;
    }
    step(end - start + 1);
    (end, last_at, colon)
}

/// The first `@` or end of a URL (whitespace, quote, `?`, `#`, the text's end) at or
/// after a position, remembered: the answer holds for every later position up to it, so
/// the bytes between are never read again. With `in_password` set, `?` and `#` do not end
/// it but `/` does (a password holding `?` or `#` runs on to its `@` before any path).
#[derive(Default)]
struct NextAt {
    from: usize,
    at: Option<usize>,
    in_password: bool,
}

impl NextAt {
    fn get(&mut self, bytes: &[u8], p: usize) -> usize {
        if let Some(at) = self.at
            && (self.from..=at).contains(&p)
        {
            return at;
        }
        let ends = |b: u8| {
            matches!(b, b'@' | b'"' | b'\'')
                || is_space(b)
                || if self.in_password {
                    b == b'/'
                } else {
                    matches!(b, b'?' | b'#')
                }
        };
        let mut e = p;
        while e < bytes.len() && !ends(bytes[e]) {
            e += 1;
        }
        step(e - p + 1);
        self.from = p;
        self.at = Some(e);
        e
    }
}

/// `scheme://user:pa/ss@host` or `scheme://user:pa?ss@host`: a password holding `/`, `?`
/// or `#`. The authority stopped at that byte; when it had `user:` and what follows the
/// colon is not a port, the userinfo runs on to the next `@` before the URL ends (before a
/// `/` for `?` and `#`), unless that `@` starts an image digest (`…/app@sha256:…`) or no
/// host follows it.
fn slash_password_at(
    bytes: &[u8],
    start: usize,
    end: usize,
    colon: Option<usize>,
    next_at: &mut NextAt,
    next_at_in_password: &mut NextAt,
) -> Option<usize> {
    let colon = colon?;
    let next_at = match bytes.get(end) {
        Some(b'/') => next_at,
        Some(b'?' | b'#') => next_at_in_password,
        _ => return None,
    };
    if colon == start {
        return None;
    }
    step(end - colon);
    let port = &bytes[colon + 1..end];
    if port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let at = next_at.get(bytes, end);
    if bytes.get(at) != Some(&b'@') {
        return None;
    }
    let host = &bytes[at + 1..];
    let digest = [&b"sha256:"[..], b"sha384:", b"sha512:"]
        .iter()
        .any(|d| host.len() >= d.len() && host[..d.len()].eq_ignore_ascii_case(d));
    let hostlike = host
        .first()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'[');
    (!digest && hostlike).then_some(at)
}

/// What replaces a userinfo: both parts when it holds a password.
fn userinfo_mask(userinfo: &[u8]) -> &'static str {
    step(userinfo.len());
    if userinfo.contains(&b':') {
        "REDACTED:REDACTED"
    } else {
        REDACTED
    }
}

/// `scheme://user:password@host` (and a Go-style DSN `user:password@tcp(host)/db`): the
/// userinfo becomes `REDACTED:REDACTED` (or `REDACTED` without a password).
pub(super) fn url_userinfo(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let mut next_at = NextAt::default();
    let mut next_at_in_password = NextAt {
        in_password: true,
        ..NextAt::default()
    };
    let mut from = 0;
    while let Some(sep) = find_bytes(bytes, b"://", from) {
        let start = sep + 3;
        let (end, last_at, colon) = authority(bytes, start);
        from = end.max(start);
        let at = match last_at {
            Some(at) => at,
            None => match slash_password_at(
                bytes,
                start,
                end,
                colon,
                &mut next_at,
                &mut next_at_in_password,
            ) {
                Some(at) => {
                    from = at + 1;
                    at
                }
                None => continue,
            },
        };
        let userinfo = &bytes[start..at];
        let mask = userinfo_mask(userinfo);
        if !userinfo.is_empty() && userinfo != mask.as_bytes() {
            edits.push((start, at, mask));
        }
    }
    dsn_userinfo(bytes, &mut edits);
    (!edits.is_empty()).then(|| splice_each(text, &edits))
}

/// Whether the `@` at `i` is followed by a Go DSN's protocol (`tcp(`, `tcp6(`, `unix(`, …).
pub(super) fn dsn_protocol_after(bytes: &[u8], i: usize) -> bool {
    step(6);
    let rest = &bytes[i + 1..];
    [&b"tcp("[..], b"tcp4(", b"tcp6(", b"udp(", b"unix("]
        .iter()
        .any(|p| rest.starts_with(p))
}

/// A byte that ends a DSN's userinfo when read backwards from its `@`.
fn ends_dsn_userinfo(b: u8) -> bool {
    is_space(b)
        || matches!(
            b,
            b'"' | b'\''
                | b'`'
                | b'<'
                | b'>'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b','
                | b';'
        )
}

/// Go-style DSNs `user:password@tcp(host)/db` (no scheme). Read backwards from each such
/// `@`, never past the previous one or a userinfo already masked, so each byte is read
/// once; `dsn=` before the user is not part of it.
fn dsn_userinfo(bytes: &[u8], edits: &mut Vec<(usize, usize, &'static str)>) {
    // The URL userinfos found so far end at these `@`, in order.
    let url_ends: Vec<usize> = edits.iter().map(|&(_, at, _)| at).collect();
    let mut next_url_end = url_ends.iter().peekable();
    let mut floor = 0;
    let mut i = 0;
    while let Some(a) = bytes[i..].iter().position(|&b| b == b'@').map(|j| i + j) {
        step(a - i + 1);
        i = a + 1;
        while next_url_end.next_if(|&&end| end < a).is_some() {}
        if next_url_end.peek() == Some(&&a) {
            floor = a + 1;
            continue;
        }
        if !dsn_protocol_after(bytes, a) {
            continue;
        }
        let mut b = a;
        while b > floor && !ends_dsn_userinfo(bytes[b - 1]) {
            b -= 1;
        }
        step(a - b);
        floor = a + 1;
        let Some(colon) = bytes[b..a].iter().position(|&c| c == b':').map(|j| b + j) else {
            continue;
        };
        let user = bytes[b..colon]
            .iter()
            .rposition(|&c| c == b'=')
            .map_or(b, |j| b + j + 1);
        if &bytes[user..a] != b"REDACTED:REDACTED" {
            edits.push((user, a, "REDACTED:REDACTED"));
        }
    }
    step(bytes.len() - i);
}
