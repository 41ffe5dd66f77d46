//! Key rules: whether an attribute key (or a key written inside a value) names a credential.
//!
//! Names compare case-insensitively with `-` and `_` alike (`X-Goog-Api-Key` is
//! `x_goog_api_key`), on the key's last dot-separated segment. Every check compares a
//! bounded suffix, so a key costs one look at its last three bytes (most keys end there)
//! and at worst one pass to find its last segment, however long it is.

use super::step;

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

/// Every whole key name the default rules treat as a credential, normalised (lowercase, `_`
/// where a key may have `-` or `_`): the [`DEFAULT_KEYS`] and further names that cloud
/// vendors and tools use. Keys also match on a credential suffix (`db_password`) and in
/// camelCase (`clientSecret`); this list is what generated collector configurations mirror.
///
/// ```
/// assert!(stellaops_telemetry_core::CREDENTIAL_KEYS.contains(&"aws_secret_access_key"));
/// ```
pub const CREDENTIAL_KEYS: [&str; 38] = [
    // DEFAULT_KEYS, normalised.
    "authorization",
    "proxy_authorization",
    "cookie",
    "set_cookie",
    "x_api_key",
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
    // Further names.
    "privatekey",
    "passphrase",
    "secret_key",
    "secretkey",
    "secret_access_key",
    "secretaccesskey",
    "aws_secret_access_key",
    "ocp_apim_subscription_key",
    "x_functions_key",
    "accountkey",
    "account_key",
    "sharedaccesskey",
    "shared_access_key",
    "db_pass",
    "database_pass",
    "mysql_pass",
    "postgres_pass",
    "redis_pass",
    "smtp_pass",
    "ldap_pass",
];

/// Credential names that also count as the suffix of a last segment after `_` or `-`
/// (`db_password`, `GITHUB_TOKEN`, `x-goog-api-key`, `MYAPP_DB_PASS`). `pass` alone is
/// not one (`bypass`, `first_pass`): only the store-specific `<store>_pass` names are.
const SUFFIXES: [&str; 20] = [
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "credentials",
    "api_key",
    "apikey",
    "private_key",
    "authorization",
    "secret_key",
    "secret_access_key",
    "account_key",
    "db_pass",
    "database_pass",
    "mysql_pass",
    "postgres_pass",
    "redis_pass",
    "smtp_pass",
    "ldap_pass",
];

/// camelCase credential suffixes, after a lowercase letter or a digit (`accessToken`,
/// `clientSecret`, `awsSecretAccessKey`; common in JSON bodies and SDK option names).
const CAMEL_SUFFIXES: [&str; 11] = [
    "Token",
    "Secret",
    "Password",
    "Passwd",
    "Passphrase",
    "Credentials",
    "ApiKey",
    "PrivateKey",
    "SecretKey",
    "SecretAccessKey",
    "AccountKey",
];

/// Every name and suffix ends in one of these (lowercase): a key whose last three bytes are
/// none of them cannot match a built-in rule, which settles most keys after three byte
/// comparisons.
const TAILS: [&[u8; 3]; 12] = [
    b"ion", b"kie", b"key", b"ord", b"swd", b"pwd", b"ken", b"ret", b"als", b"ref", b"ase", b"ass",
];

/// A byte of a key name: `A–Z a–z 0–9 _ - .`.
pub(super) fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

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

/// Whether `key` ends in one of the [`TAILS`].
#[inline(always)]
pub(super) fn may_match_default(key: &[u8]) -> bool {
    const ION: u32 = pack(TAILS[0]);
    const KIE: u32 = pack(TAILS[1]);
    const KEY: u32 = pack(TAILS[2]);
    const ORD: u32 = pack(TAILS[3]);
    const SWD: u32 = pack(TAILS[4]);
    const PWD: u32 = pack(TAILS[5]);
    const KEN: u32 = pack(TAILS[6]);
    const RET: u32 = pack(TAILS[7]);
    const ALS: u32 = pack(TAILS[8]);
    const REF: u32 = pack(TAILS[9]);
    const ASE: u32 = pack(TAILS[10]);
    const ASS: u32 = pack(TAILS[11]);
    packed_tail(key).is_some_and(|t| {
        matches!(
            t,
            ION | KIE | KEY | ORD | SWD | PWD | KEN | RET | ALS | REF | ASE | ASS
        )
    })
}

/// `b` lowercased, with `-` as `_`.
#[inline]
fn norm(b: u8) -> u8 {
    if b == b'-' {
        b'_'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether `text` equals the normalised `name`.
fn eq_norm(text: &[u8], name: &str) -> bool {
    text.len() == name.len() && text.iter().zip(name.bytes()).all(|(&t, n)| norm(t) == n)
}

/// Whether `text` ends with the normalised `name`.
pub(super) fn ends_with_norm(text: &[u8], name: &str) -> bool {
    text.len() >= name.len() && eq_norm(&text[text.len() - name.len()..], name)
}

/// `…_password`, `…-token`, `…_api_key`, … (a separator, then a credential name).
fn has_credential_suffix(last: &[u8]) -> bool {
    SUFFIXES.iter().any(|suffix| {
        last.len() > suffix.len() + 1
            && ends_with_norm(last, suffix)
            && matches!(last[last.len() - suffix.len() - 1], b'_' | b'-')
    })
}

fn has_camel_credential_suffix(last: &[u8]) -> bool {
    CAMEL_SUFFIXES.iter().any(|suffix| {
        let s = suffix.as_bytes();
        last.len() > s.len()
            && last.ends_with(s)
            && matches!(last[last.len() - s.len() - 1], b'a'..=b'z' | b'0'..=b'9')
    })
}

/// The last dot-separated segment of `key` (the whole key when it has no dot).
fn last_segment(key: &[u8]) -> &[u8] {
    let start = key
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(0, |dot| dot + 1);
    step(key.len() - start + 1);
    &key[start..]
}

/// Whether `key` is sensitive under the built-in rules or `extra` (lowercase names).
///
/// Most keys are settled by their last three bytes, inline; the rest go out of line.
#[inline(always)]
pub(crate) fn is_sensitive_key(key: &str, extra: &[String]) -> bool {
    if may_match_default(key.as_bytes()) {
        return matches_default_or_extra(key, extra);
    }
    !extra.is_empty() && matches_extra(key, extra)
}

#[inline(never)]
fn matches_extra(key: &str, extra: &[String]) -> bool {
    let last = last_segment(key.as_bytes());
    extra.iter().any(|name| {
        step(name.len());
        key.eq_ignore_ascii_case(name) || last.eq_ignore_ascii_case(name.as_bytes())
    })
}

#[inline(never)]
fn matches_default_or_extra(key: &str, extra: &[String]) -> bool {
    matches_builtin(key.as_bytes()) || (!extra.is_empty() && matches_extra(key, extra))
}

/// Whether a key name written inside a value (a word of key characters) names a
/// credential under the built-in rules.
pub(super) fn is_sensitive_name(word: &[u8]) -> bool {
    may_match_default(word) && matches_builtin(word)
}

fn matches_builtin(key: &[u8]) -> bool {
    let last = last_segment(key);
    // The comparisons below read at most the longest name's length from the end.
    step(64);
    CREDENTIAL_KEYS.iter().any(|name| eq_norm(last, name))
        || has_credential_suffix(last)
        || has_camel_credential_suffix(last)
        || ends_with_norm(key, "secretref")
        || ends_with_norm(key, "secret_ref")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_suffix_ends_in_a_known_tail() {
        for name in CREDENTIAL_KEYS
            .iter()
            .chain(DEFAULT_KEYS.iter())
            .chain(SUFFIXES.iter())
            .chain(CAMEL_SUFFIXES.iter())
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
    fn every_default_key_is_a_name_and_names_are_normalised() {
        for key in DEFAULT_KEYS {
            assert!(
                CREDENTIAL_KEYS.iter().any(|n| eq_norm(key.as_bytes(), n)),
                "{key}"
            );
        }
        for name in CREDENTIAL_KEYS.iter().chain(SUFFIXES.iter()) {
            assert!(
                name.bytes().all(|b| norm(b) == b),
                "{name} is not normalised"
            );
        }
    }
}
