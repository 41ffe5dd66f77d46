//! The redaction rules: sensitive keys, and credential shapes found in any value.
//!
//! Key rules match case-insensitively on the whole key and on its last dot-separated segment
//! (`http.request.header.authorization` counts as `authorization`); a last segment that ends
//! in `_<name>` or `-<name>` for a credential name (`db_password`, `github-token`) counts too,
//! as does any key ending in `secretRef` / `secret_ref`.
//!
//! Value rules apply whatever the key: bearer and basic credentials, JWTs, PEM private-key
//! blocks, URL userinfo and the sensitive query parameters of the OpenTelemetry URL
//! convention. A value is scanned only when it holds one of the few bytes those shapes need
//! (`J`, `B`, a space, `@`, `?`, `&`, `:`, `=`) where it could start one, so ordinary values
//! cost one pass over their bytes.

use base64::Engine as _;

/// The marker every redacted value becomes.
pub const REDACTED: &str = "REDACTED";

/// Why a value was redacted or dropped; each rule has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// The key is a credential name (default or configured).
    SensitiveKey,
    /// `Bearer <token>`.
    Bearer,
    /// `Basic <base64 user:password>`.
    Basic,
    /// A JSON Web Token.
    Jwt,
    /// A PEM private-key block.
    PrivateKey,
    /// `scheme://user:password@host`.
    UrlUserinfo,
    /// A signature or credential query parameter (`sig`, `X-Amz-Signature`, …).
    UrlQuery,
    /// A sensitive key written inside a value: `password=…`, `"token": "…"`,
    /// `Config { secret: … }` (a `Debug` struct, a JSON body, a query string).
    EmbeddedKey,
    /// Allow-list (strict) mode dropped an attribute whose key is not allowed.
    AllowList,
}

impl Rule {
    /// Every rule, in counter order.
    pub const ALL: [Rule; 9] = [
        Rule::SensitiveKey,
        Rule::Bearer,
        Rule::Basic,
        Rule::Jwt,
        Rule::PrivateKey,
        Rule::UrlUserinfo,
        Rule::UrlQuery,
        Rule::EmbeddedKey,
        Rule::AllowList,
    ];

    /// The rule's name, as the `rule` label of the self-metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SensitiveKey => "sensitive_key",
            Rule::Bearer => "bearer",
            Rule::Basic => "basic",
            Rule::Jwt => "jwt",
            Rule::PrivateKey => "private_key",
            Rule::UrlUserinfo => "url_userinfo",
            Rule::UrlQuery => "url_query",
            Rule::EmbeddedKey => "embedded_key",
            Rule::AllowList => "allow_list",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The default sensitive key names (compared case-insensitively).
pub const DEFAULT_KEYS: [&str; 18] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "secret",
    "client_secret",
    "credentials",
    "api_key",
    "apikey",
    "private_key",
];

/// Credential names that also count as the suffix of a key's last segment (`db_password`).
const SUFFIX_KEYS: [&str; 9] = [
    "password",
    "passwd",
    "token",
    "secret",
    "credentials",
    "api_key",
    "apikey",
    "private_key",
    "authorization",
];

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

/// Lowercases `text` into `buf` when it fits; `None` for longer text (compared slowly).
fn lower<'b>(text: &str, buf: &'b mut [u8; 48]) -> Option<&'b [u8]> {
    let bytes = text.as_bytes();
    let out = buf.get_mut(..bytes.len())?;
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

fn is_default_key(name: &[u8]) -> bool {
    matches!(
        name,
        b"authorization"
            | b"proxy-authorization"
            | b"cookie"
            | b"set-cookie"
            | b"x-api-key"
            | b"password"
            | b"passwd"
            | b"pwd"
            | b"token"
            | b"access_token"
            | b"refresh_token"
            | b"id_token"
            | b"secret"
            | b"client_secret"
            | b"credentials"
            | b"api_key"
            | b"apikey"
            | b"private_key"
    )
}

/// `…_password`, `…-token`, `…_api_key`, … (a separator, then a credential name).
fn has_credential_suffix(name: &[u8]) -> bool {
    SUFFIX_KEYS.iter().any(|suffix| {
        let s = suffix.as_bytes();
        name.len() > s.len() + 1
            && name.ends_with(s)
            && matches!(name[name.len() - s.len() - 1], b'_' | b'-')
    })
}

/// Every default name and credential suffix ends in one of these (lowercase): a key whose
/// last three bytes are none of them cannot match a default rule, which settles most keys
/// after three byte comparisons.
const TAILS: [&[u8; 3]; 10] = [
    b"ion", b"kie", b"key", b"ord", b"swd", b"pwd", b"ken", b"ret", b"als", b"ref",
];

/// The last three bytes of `key`, lowercased, packed little-endian (`None` when shorter).
/// `| 0x20` lowercases exactly: the only bytes it maps onto `a`–`z` are `A`–`Z`, and every
/// tail compared against is letters.
#[inline(always)]
fn packed_tail(key: &[u8]) -> Option<u32> {
    let n = key.len();
    if n < 3 {
        return None;
    }
    Some(u32::from_le_bytes([key[n - 3], key[n - 2], key[n - 1], 0]) | 0x0020_2020)
}

const fn pack(tail: &[u8; 3]) -> u32 {
    u32::from_le_bytes([tail[0], tail[1], tail[2], 0])
}

#[inline(always)]
fn may_match_default(key: &[u8]) -> bool {
    const T: [u32; TAILS.len()] = {
        let mut out = [0u32; TAILS.len()];
        let mut i = 0;
        while i < TAILS.len() {
            out[i] = pack(TAILS[i]);
            i += 1;
        }
        out
    };
    packed_tail(key).is_some_and(|t| {
        t == T[0]
            || t == T[1]
            || t == T[2]
            || t == T[3]
            || t == T[4]
            || t == T[5]
            || t == T[6]
            || t == T[7]
            || t == T[8]
            || t == T[9]
    })
}

/// `accessToken`, `clientSecret`, `dbPassword`, `privateKey`: a camelCase credential suffix
/// after a lowercase letter or a digit (common in JSON bodies and SDK option names).
fn has_camel_credential_suffix(last: &str) -> bool {
    [
        "Token",
        "Secret",
        "Password",
        "Passwd",
        "Credentials",
        "ApiKey",
        "PrivateKey",
    ]
    .iter()
    .any(|suffix| {
        last.len() > suffix.len()
            && last.ends_with(suffix)
            && last.as_bytes()[last.len() - suffix.len() - 1].is_ascii_lowercase()
    }) || ["apiKey", "privateKey"].contains(&last)
}

/// Whether `key` is sensitive under the default rules or `extra` (lowercase names).
///
/// Most keys are settled by their last three bytes, inline; the rest go out of line.
#[inline(always)]
pub(crate) fn is_sensitive_key(key: &str, extra: &[String]) -> bool {
    if may_match_default(key.as_bytes()) {
        return matches_default_or_extra(key, extra);
    }
    !extra.is_empty() && matches_extra(key, key.rsplit('.').next().unwrap_or(key), extra)
}

#[inline(never)]
fn matches_extra(key: &str, last: &str, extra: &[String]) -> bool {
    extra
        .iter()
        .any(|name| key.eq_ignore_ascii_case(name) || last.eq_ignore_ascii_case(name))
}

#[inline(never)]
fn matches_default_or_extra(key: &str, extra: &[String]) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    let (mut key_buf, mut last_buf) = ([0u8; 48], [0u8; 48]);
    match (lower(key, &mut key_buf), lower(last, &mut last_buf)) {
        (Some(k), Some(l)) => {
            if is_default_key(l) || is_default_key(k) || has_credential_suffix(l) {
                return true;
            }
            if has_camel_credential_suffix(last) {
                return true;
            }
            if k.ends_with(b"secretref") || k.ends_with(b"secret_ref") {
                return true;
            }
        }
        _ => {
            // Longer than any name we know whole: only the suffix rules can apply.
            let l = last.to_ascii_lowercase();
            if is_default_key(l.as_bytes()) || has_credential_suffix(l.as_bytes()) {
                return true;
            }
            let k = key.to_ascii_lowercase();
            if k.ends_with("secretref") || k.ends_with("secret_ref") {
                return true;
            }
        }
    }
    !extra.is_empty() && matches_extra(key, last, extra)
}

/// Bytes without which no value rule can match.
const fn trigger_table() -> [bool; 256] {
    let mut t = [false; 256];
    t[b'J' as usize] = true; // eyJ… (JWT)
    t[b' ' as usize] = true; // Bearer / Basic <credential>
    t[b'\t' as usize] = true;
    t[b'B' as usize] = true; // -----BEGIN … PRIVATE KEY----- (not `-`: dates and UUIDs)
    t[b'@' as usize] = true; // user:password@host
    t[b'?' as usize] = true; // ?sig=…
    t[b'&' as usize] = true; // &X-Amz-Signature=…
    t[b':' as usize] = true; // password: … (Debug structs, JSON, headers in text)
    t[b'=' as usize] = true; // password=…
    t
}
static TRIGGERS: [bool; 256] = trigger_table();

/// Whether any value rule could match `value`: one pass over its bytes, and at each trigger
/// byte a local look at its neighbours (is this `J` the start of `eyJ`? is the word before
/// this space `bearer`? does the word before this `:` name a secret?). Ordinary text, even
/// full of spaces and colons, costs that one pass.
#[inline]
pub(crate) fn needs_scan(value: &str) -> bool {
    // The shortest shape any value rule matches is `pwd=x`; shorter values (methods,
    // status words, small ids) are settled here without a call.
    value.len() >= 5 && has_shape_start(value.as_bytes())
}

#[inline(never)]
fn has_shape_start(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = next_trigger(bytes, from) {
        if starts_a_shape(bytes, i) {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Whether the trigger byte at `i` can be part of a shape a value rule matches (out of
/// line: the scan loop around it stays small enough to inline).
#[inline(never)]
fn starts_a_shape(bytes: &[u8], i: usize) -> bool {
    let b = bytes[i];
    match b {
        b'J' => i >= 2 && &bytes[i - 2..i] == b"ey",
        b' ' | b'\t' => {
            // The scheme rules match `bearer` / `basic` after any non-alphanumeric byte.
            let scheme_before = |scheme: &[u8]| {
                i >= scheme.len()
                    && bytes[i - scheme.len()..i].eq_ignore_ascii_case(scheme)
                    && (i == scheme.len() || !bytes[i - scheme.len() - 1].is_ascii_alphanumeric())
            };
            scheme_before(b"bearer") || scheme_before(b"basic")
        }
        b'B' => i >= 5 && bytes[i - 5..].starts_with(b"-----BEGIN"),
        b'@' => bytes[..i].windows(3).any(|w| w == b"://"),
        b'?' | b'&' => {
            let rest = &bytes[i + 1..];
            let name_len = rest
                .iter()
                .position(|&c| matches!(c, b'=' | b'&' | b'#'))
                .unwrap_or(rest.len());
            rest.len() > name_len
                && SENSITIVE_QUERY_PARAMETERS
                    .iter()
                    .any(|p| rest[..name_len].eq_ignore_ascii_case(p.as_bytes()))
        }
        b':' | b'=' => {
            let mut end = i;
            while end > 0 && matches!(bytes[end - 1], b' ' | b'"' | b'\'' | b'\\') {
                end -= 1;
            }
            let word = word_before(bytes, end);
            // A word of key characters is ASCII, so `from_utf8` cannot fail; it is only
            // reached when the tail already looks like a credential name.
            (may_match_default(word)
                && std::str::from_utf8(word).is_ok_and(|w| is_sensitive_key(w, &[])))
                || (b == b'='
                    && SENSITIVE_QUERY_PARAMETERS
                        .iter()
                        .any(|p| word.eq_ignore_ascii_case(p.as_bytes())))
        }
        _ => false,
    }
}

/// The trigger bytes of `chunk` as a bit mask (bit `k` for byte `k`): table lookups, no
/// branch.
#[inline(always)]
fn trigger_bits<const N: usize>(chunk: [u8; N]) -> u32 {
    let mut bits = 0;
    for (k, b) in chunk.into_iter().enumerate() {
        bits |= u32::from(TRIGGERS[b as usize]) << k;
    }
    bits
}

/// Whether the eight bytes of `x` may hold a trigger: a byte below `-` (0x2D) or from `:` to
/// `J` (0x3A–0x4A). Every trigger is one, and a word of letters, digits, `-`, `.`, `/` and
/// `_` (most identifiers, paths, host names and versions) is none. The two tests are the
/// classic SWAR "has less than" and "has between"; as booleans over the word they are exact,
/// and a byte ≥ 0x80 (UTF-8) never counts (no trigger is one).
#[inline(always)]
fn may_hold_trigger(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    let below_dash = x.wrapping_sub(ONES * 0x2D) & !x & HIGHS;
    let low7 = x & LOW7;
    // Bytes b with 0x39 < b < 0x4B.
    let between = (ONES * (127 + 0x4B)).wrapping_sub(low7)
        & !x
        & low7.wrapping_add(ONES * (127 - 0x39))
        & HIGHS;
    below_dash | between != 0
}

/// The index of the next trigger byte at or after `from`, eight bytes at a time: a word
/// that [`may_hold_trigger`] clears is skipped whole; any other word becomes a bit mask of
/// its triggers in one branch-free step.
/// The last word overlaps the one before it rather than falling back to a byte loop, and
/// values shorter than a word are read as two overlapping halves.
#[inline]
fn next_trigger(bytes: &[u8], from: usize) -> Option<usize> {
    let n = bytes.len();
    if from >= n {
        return None;
    }
    if n < 8 {
        let bits = if n >= 4 {
            let lo = [bytes[0], bytes[1], bytes[2], bytes[3]];
            let hi = [bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]];
            // Both halves in one word (a byte may be there twice) for the prefilter.
            if !may_hold_trigger(
                u64::from(u32::from_le_bytes(lo)) | u64::from(u32::from_le_bytes(hi)) << 32,
            ) {
                return None;
            }
            trigger_bits(lo) | trigger_bits(hi) << (n - 4)
        } else {
            bytes
                .iter()
                .enumerate()
                .fold(0, |acc, (k, &b)| acc | u32::from(TRIGGERS[b as usize]) << k)
        };
        let bits = bits & (u32::MAX << from);
        return (bits != 0).then(|| bits.trailing_zeros() as usize);
    }
    let mut at = from;
    loop {
        let start = at.min(n - 8);
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[start..start + 8]);
        let x = u64::from_le_bytes(word);
        if may_hold_trigger(x) {
            let bits = trigger_bits(word) & (u32::MAX << (at - start));
            if bits != 0 {
                return Some(start + bits.trailing_zeros() as usize);
            }
        }
        if start + 8 >= n {
            return None;
        }
        at = start + 8;
    }
}

/// The run of key characters (`A–Z a–z 0–9 _ - .`) that ends at `end`.
fn word_before(bytes: &[u8], end: usize) -> &[u8] {
    let mut start = end;
    while start > 0 && is_key_char(bytes[start - 1]) {
        start -= 1;
    }
    &bytes[start..end]
}

/// Bit set of the value rules that fired.
pub(crate) type Fired = u16;

fn bit(rule: Rule) -> Fired {
    1 << rule.index()
}

/// Applies every value rule to `value`; `None` when nothing matched (the common case, which
/// allocates nothing).
#[inline]
pub(crate) fn redact_value(value: &str) -> Option<(String, Fired)> {
    if !needs_scan(value) {
        return None;
    }
    apply_value_rules(value)
}

/// Every value rule in turn, without the prefilter.
fn apply_value_rules(value: &str) -> Option<(String, Fired)> {
    let mut fired: Fired = 0;
    let mut text = std::borrow::Cow::Borrowed(value);
    for (rule, pass) in [
        (Rule::PrivateKey, private_keys as fn(&str) -> Option<String>),
        (Rule::Jwt, jwts),
        (Rule::Bearer, bearer_tokens),
        (Rule::Basic, basic_credentials),
        (Rule::UrlUserinfo, url_userinfo),
        (Rule::UrlQuery, url_query),
        (Rule::EmbeddedKey, embedded_keys),
    ] {
        if let Some(next) = pass(&text) {
            text = std::borrow::Cow::Owned(next);
            fired |= bit(rule);
        }
    }
    match text {
        std::borrow::Cow::Owned(s) => Some((s, fired)),
        std::borrow::Cow::Borrowed(_) => None,
    }
}

/// Replaces `text[start..end]` ranges by the marker. Ranges may come unsorted or overlapping
/// (`?sig=?sig=…` finds a value inside a value): they are sorted and merged first, so the
/// splice never slices backwards.
fn splice(text: &str, ranges: &[(usize, usize)], replacement: &str) -> String {
    let mut sorted: Vec<(usize, usize)> = ranges
        .iter()
        .map(|&(start, end)| (start.min(text.len()), end.min(text.len())))
        .filter(|&(start, end)| start < end)
        .collect();
    sorted.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in merged {
        // Every range starts and ends at an ASCII delimiter or the end, so these are char
        // boundaries; `get` keeps a mistake from ever becoming a panic.
        out.push_str(text.get(at..start).unwrap_or(""));
        out.push_str(replacement);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out
}

fn find_ignore_case(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (from..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn private_keys(text: &str) -> Option<String> {
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(begin) = text[from..].find("-----BEGIN").map(|i| i + from) {
        let header_end = text[begin + 10..]
            .find("-----")
            .map(|i| i + begin + 10)
            .unwrap_or(text.len());
        if !text[begin..header_end].contains("PRIVATE KEY") {
            from = begin + 10;
            continue;
        }
        // The block ends after `-----END … PRIVATE KEY-----`; a block cut short runs to the end.
        let end = text[header_end..]
            .find("-----END")
            .map(|i| i + header_end)
            .and_then(|e| text[e + 8..].find("-----").map(|i| i + e + 8 + 5))
            .unwrap_or(text.len());
        ranges.push((begin, end));
        from = end;
    }
    (!ranges.is_empty()).then(|| splice(text, &ranges, REDACTED))
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn jwts(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("eyJ").map(|i| i + from) {
        if start > 0 && is_b64url(bytes[start - 1]) {
            from = start + 3;
            continue;
        }
        // header . payload . signature (the signature may be empty: `alg: none`)
        let mut i = start;
        let mut segments = 0;
        let mut lengths = [0usize; 3];
        loop {
            let seg_start = i;
            while i < bytes.len() && is_b64url(bytes[i]) {
                i += 1;
            }
            lengths[segments] = i - seg_start;
            segments += 1;
            if segments == 3 || i >= bytes.len() || bytes[i] != b'.' {
                break;
            }
            i += 1;
        }
        if segments == 3 && lengths[0] >= 4 && lengths[1] >= 2 {
            ranges.push((start, i));
            from = i;
        } else {
            from = start + 3;
        }
    }
    (!ranges.is_empty()).then(|| splice(text, &ranges, REDACTED))
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `<scheme> <credential>`: the credential range after `scheme` and its spaces.
fn credentials_after(text: &str, scheme: &str, accept: impl Fn(&str) -> bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(at) = find_ignore_case(text, scheme, from) {
        from = at + scheme.len();
        if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut start = from;
        while start < bytes.len() && (bytes[start] == b' ' || bytes[start] == b'\t') {
            start += 1;
        }
        if start == from {
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_token68(bytes[end]) {
            end += 1;
        }
        if end > start && &text[start..end] != REDACTED && accept(&text[start..end]) {
            ranges.push((start, end));
            from = end;
        }
    }
    (!ranges.is_empty()).then(|| splice(text, &ranges, REDACTED))
}

fn bearer_tokens(text: &str) -> Option<String> {
    // A token, not a word ("Bearer Authentication is required"): a digit or a token symbol,
    // or too long to be a word.
    credentials_after(text, "bearer", |t| {
        t.len() >= 20
            || (t.len() >= 6
                && t.bytes().any(|b| {
                    b.is_ascii_digit()
                        || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
                }))
    })
}

fn basic_credentials(text: &str) -> Option<String> {
    // base64 of `user:password`: it must decode and hold the colon.
    credentials_after(text, "basic", |t| {
        let decode = |engine: &base64::engine::GeneralPurpose| {
            engine.decode(t).is_ok_and(|raw| raw.contains(&b':'))
        };
        t.len() >= 4
            && (decode(&base64::engine::general_purpose::STANDARD)
                || decode(&base64::engine::general_purpose::STANDARD_NO_PAD))
    })
}

fn url_userinfo(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut replacements = Vec::new();
    let mut from = 0;
    while let Some(sep) = text[from..].find("://").map(|i| i + from) {
        let start = sep + 3;
        let mut end = start;
        while end < bytes.len()
            && !matches!(
                bytes[end],
                b'/' | b'?' | b'#' | b' ' | b'\t' | b'\n' | b'"' | b'\''
            )
        {
            end += 1;
        }
        from = end.max(start);
        let Some(at) = text[start..end].rfind('@').map(|i| i + start) else {
            continue;
        };
        let userinfo = &text[start..at];
        let masked = if userinfo.contains(':') {
            "REDACTED:REDACTED"
        } else {
            REDACTED
        };
        if userinfo != masked && !userinfo.is_empty() {
            ranges.push((start, at));
            replacements.push(masked);
        }
    }
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (&(start, end), replacement) in ranges.iter().zip(replacements) {
        out.push_str(text.get(at..start).unwrap_or(""));
        out.push_str(replacement);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Some(out)
}

fn url_query(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    // A parameter starts after `?` or `&`, or at the very start (a bare `url.query` value).
    let starts = std::iter::once(0).chain(
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'?' || b == b'&')
            .map(|(i, _)| i + 1),
    );
    for name_start in starts {
        let Some(eq) = text[name_start..]
            .find(|c: char| c == '=' || c == '&' || c == '#' || c.is_whitespace())
            .map(|j| j + name_start)
        else {
            continue;
        };
        if bytes[eq] != b'=' {
            continue;
        }
        let name = &text[name_start..eq];
        if !SENSITIVE_QUERY_PARAMETERS
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p))
        {
            continue;
        }
        let value_start = eq + 1;
        let value_end = text[value_start..]
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || c == '"' || c == '\'')
            .map(|j| j + value_start)
            .unwrap_or(text.len());
        if value_end > value_start && &text[value_start..value_end] != REDACTED {
            ranges.push((value_start, value_end));
        }
    }
    (!ranges.is_empty()).then(|| splice(text, &ranges, REDACTED))
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// `<sensitive key><sep><value>` inside a value, where the key may be quoted and `sep` is `:`
/// or `=`. The value (quoted, or up to the next delimiter) becomes the marker.
fn embedded_keys(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let sep = bytes[i];
        if sep != b':' && sep != b'=' {
            i += 1;
            continue;
        }
        // The word before the separator, skipping a closing quote and spaces.
        let mut end = i;
        while end > 0 && matches!(bytes[end - 1], b' ' | b'"' | b'\'' | b'\\') {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && is_key_char(bytes[start - 1]) {
            start -= 1;
        }
        // `://` is a URL, not a key: the URL rules own it.
        let url = sep == b':' && bytes.get(i + 1..i + 3) == Some(b"//");
        if start == end || url || !is_sensitive_key(&text[start..end], &[]) {
            i += 1;
            continue;
        }
        // The value after the separator, skipping spaces and an opening quote.
        let mut v = i + 1;
        while v < bytes.len() && matches!(bytes[v], b' ' | b'\t' | b'\\') {
            v += 1;
        }
        let quote = match bytes.get(v) {
            Some(&q @ (b'"' | b'\'')) => {
                v += 1;
                Some(q)
            }
            _ => None,
        };
        let key = &text[start..end];
        let whole_line = [
            "cookie",
            "set-cookie",
            "authorization",
            "proxy-authorization",
        ]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k));
        let mut e = v;
        match (quote, bytes.get(v)) {
            (Some(q), _) => {
                // Up to the closing quote; `\"` inside the value does not close it.
                while e < bytes.len() && bytes[e] != q {
                    e += if bytes[e] == b'\\' { 2 } else { 1 };
                }
                e = e.min(bytes.len());
                // The escape that closes a quote in escaped JSON (`\"`) is not the value's.
                if e > v && bytes[e - 1] == b'\\' {
                    e -= 1;
                }
            }
            (None, Some(&open @ (b'[' | b'{' | b'('))) => {
                // A bracketed value (a `Debug` list or struct): up to its matching bracket.
                let close = match open {
                    b'[' => b']',
                    b'{' => b'}',
                    _ => b')',
                };
                let mut depth = 0usize;
                while e < bytes.len() {
                    if bytes[e] == open {
                        depth += 1;
                    } else if bytes[e] == close {
                        depth -= 1;
                        if depth == 0 {
                            e += 1;
                            break;
                        }
                    }
                    e += 1;
                }
            }
            (None, _) if whole_line => {
                // A header in text: its value is the rest of the line (`a=1; session=…`).
                while e < bytes.len() && !matches!(bytes[e], b'\n' | b'\r' | b'"') {
                    e += 1;
                }
            }
            (None, _) => {
                while e < bytes.len()
                    && !matches!(
                        bytes[e],
                        b' ' | b',' | b';' | b'&' | b'}' | b')' | b']' | b'\n' | b'\r' | b'\t'
                    )
                {
                    e += 1;
                }
            }
        }
        // `Authorization: Bearer …` is the scheme rules' business: they keep the scheme word.
        let scheme = quote.is_none()
            && (text[v..e].eq_ignore_ascii_case("bearer")
                || text[v..e].eq_ignore_ascii_case("basic"));
        if e > v
            && !scheme
            && &text[v..e] != REDACTED
            && ranges.last().is_none_or(|&(_, last)| v >= last)
        {
            ranges.push((v, e));
        }
        i = e.max(i + 1);
    }
    (!ranges.is_empty()).then(|| splice(text, &ranges, REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(value: &str) -> String {
        redact_value(value)
            .map(|(s, _)| s)
            .unwrap_or_else(|| value.to_owned())
    }

    #[test]
    fn every_default_name_and_suffix_ends_in_a_known_tail() {
        for name in DEFAULT_KEYS
            .iter()
            .chain(SUFFIX_KEYS.iter())
            .chain(["secretref", "secret_ref"].iter())
        {
            assert!(
                may_match_default(name.as_bytes())
                    && may_match_default(name.to_ascii_uppercase().as_bytes()),
                "{name} would be skipped by the fast path"
            );
        }
    }

    #[test]
    fn keys_match_on_the_whole_key_the_last_segment_and_credential_suffixes() {
        for key in [
            "Authorization",
            "http.request.header.authorization",
            "http.request.header.x-api-key",
            "db.password",
            "db_password",
            "GITHUB-TOKEN",
            "vault.secretRef",
            "spec.secret_ref",
            "client_secret",
        ] {
            assert!(is_sensitive_key(key, &[]), "{key}");
        }
        for key in [
            "accessToken",
            "clientSecret",
            "privateKey",
            "refreshToken",
            "idToken",
            "dbPassword",
            "apiKey",
        ] {
            assert!(is_sensitive_key(key, &[]), "{key}");
        }
        for key in [
            "monkey",
            "token_count",
            "max_tokens",
            "secretary",
            "keyboard",
            "author",
            "http.route",
            "passwordless",
        ] {
            assert!(!is_sensitive_key(key, &[]), "{key}");
        }
        assert!(is_sensitive_key("x.session_id", &["session_id".to_owned()]));
    }

    #[test]
    fn value_rules_mask_only_the_credential() {
        assert_eq!(
            r("Authorization: Bearer abc.DEF-123_xyz"),
            "Authorization: REDACTED"
        );
        assert_eq!(r("sent Bearer abc.DEF-123_xyz"), "sent Bearer REDACTED");
        assert_eq!(r("Bearer secretlowercasetokenvalue"), "Bearer REDACTED");
        assert_eq!(
            r("Bearer Authentication is required"),
            "Bearer Authentication is required"
        );
        assert_eq!(r("Basic dXNlcjpwYXNzd29yZA"), "Basic REDACTED");
        assert_eq!(r("sig=SECRET&x=1"), "sig=REDACTED&x=1");
        assert_eq!(
            r("X-Amz-Signature=SECRET&a=b"),
            "X-Amz-Signature=REDACTED&a=b"
        );
        assert_eq!(r("Cookie: theme=dark; session=SECRET"), "Cookie: REDACTED");
        assert_eq!(
            r("password: [83, 69, 67, 82] next"),
            "password: REDACTED next"
        );
        assert_eq!(
            r(r#"{"password":"ab\"SECRETPW","n":1}"#),
            r#"{"password":"REDACTED","n":1}"#
        );
        assert_eq!(r("password=\tX1"), "password=\tREDACTED");
        assert_eq!(
            r("Bearer authentication is required"),
            "Bearer authentication is required"
        );
        assert_eq!(r("Basic dXNlcjpwYXNz"), "Basic REDACTED");
        assert_eq!(r("basic plan selected"), "basic plan selected");
        assert_eq!(
            r("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl done"),
            "token REDACTED done"
        );
        assert_eq!(
            r("https://user:pass@host.invalid/x"),
            "https://REDACTED:REDACTED@host.invalid/x"
        );
        assert_eq!(
            r("ssh://git@host.invalid/repo"),
            "ssh://REDACTED@host.invalid/repo"
        );
        assert_eq!(
            r("https://b.invalid/o?X-Amz-Signature=abc123&x=1&sig=zz#f"),
            "https://b.invalid/o?X-Amz-Signature=REDACTED&x=1&sig=REDACTED#f"
        );
        assert_eq!(
            r("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nafter"),
            "key:\nREDACTED\nafter"
        );
        assert_eq!(
            r("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"),
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"
        );
    }

    #[test]
    fn random_mixes_of_trigger_fragments_and_unicode_never_panic_and_never_unmask() {
        const FUZZ_CASES: usize = 50_000;
        const FRAGMENTS: [&str; 44] = [
            "Bearer ",
            "basic ",
            "eyJ",
            ".",
            "-----BEGIN PRIVATE KEY-----",
            "-----END",
            "-----",
            "://",
            "@",
            "?",
            "&",
            "sig=",
            "X-Amz-Signature=",
            "password",
            "token",
            ":",
            "=",
            "\"",
            "'",
            "é",
            "€",
            "𝄞",
            " ",
            "a",
            "Z",
            "9",
            "\\",
            "\n",
            "dXNlcjpwYXNz",
            "}",
            "\t",
            "x-api-key",
            "AWSAccessKeyId",
            "Cookie",
            "db_password",
            "accessToken",
            "-",
            "/",
            "{",
            "[",
            "#",
            "B",
            "J",
            "ey",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..FUZZ_CASES {
            let n = 1 + (next() % 16) as usize;
            let text: String = (0..n)
                .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
                .collect();
            // The prefilter never skips a value some rule would change.
            assert!(
                needs_scan(&text) || apply_value_rules(&text).is_none(),
                "the prefilter skipped {text:?}"
            );
            if let Some((once, _)) = redact_value(&text) {
                assert!(once.contains(REDACTED), "{text:?} changed without a marker");
                // A second pass may mask more (two masked pieces can merge), never unmask.
                let twice = redact_value(&once)
                    .map(|(t, _)| t)
                    .unwrap_or_else(|| once.clone());
                assert!(twice.contains(REDACTED), "{once:?} lost its marker");
            }
        }
    }

    #[test]
    fn the_word_prefilter_is_exact_for_every_byte() {
        for b in 0..=255u8 {
            let expected = b < 0x2D || (0x3A..0x4B).contains(&b);
            for at in 0..8 {
                let mut word = [b'q'; 8];
                word[at] = b;
                assert_eq!(
                    may_hold_trigger(u64::from_le_bytes(word)),
                    expected,
                    "{b:#x}"
                );
                // Beside bytes of every other kind, including UTF-8 continuation bytes.
                word[(at + 1) % 8] = 0xC3;
                word[(at + 2) % 8] = b'/';
                assert_eq!(
                    may_hold_trigger(u64::from_le_bytes(word)),
                    expected,
                    "{b:#x}"
                );
            }
            assert!(
                !TRIGGERS[b as usize] || expected,
                "trigger {b:#x} not prefiltered"
            );
        }
    }

    #[test]
    fn the_word_skip_never_misses_a_trigger() {
        // Every position and every trigger byte, around lowercase filler and high bytes.
        let triggers: Vec<u8> = (0..=255u8).filter(|&b| TRIGGERS[b as usize]).collect();
        assert_eq!(triggers, b"\t &:=?@BJ");
        for trigger in triggers {
            for filler in [b'q', b'/', b'0'] {
                for len in 1..40 {
                    for at in 0..len {
                        let mut text = vec![filler; len];
                        text[at] = trigger;
                        for from in 0..=len {
                            let slow = (at >= from).then_some(at);
                            assert_eq!(
                                next_trigger(&text, from),
                                slow,
                                "{trigger} at {at} of {len} from {from}"
                            );
                        }
                    }
                }
            }
        }
        let text = "é€ unicode ünï".as_bytes();
        assert_eq!(
            next_trigger(text, 0),
            text.iter().position(|&b| TRIGGERS[b as usize])
        );
    }

    #[test]
    fn ordinary_values_pass_without_allocation() {
        for value in [
            "registry.example/app:1.2",
            "scan finished",
            "GET /scans/{id}",
            "a-b-c",
            "x@y",
            "what?",
        ] {
            assert!(redact_value(value).is_none(), "{value}");
        }
    }
}
