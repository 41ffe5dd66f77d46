//! The redaction rules: sensitive keys, and credentials found in any value.
//!
//! **Key rules** ([`keys`]) match case-insensitively, with `-` and `_` alike, on the key's
//! last dot-separated segment (`http.request.header.authorization` counts as
//! `authorization`): the [`DEFAULT_KEYS`] and further credential names (`passphrase`,
//! `secret_key`, `aws_secret_access_key`, `x-goog-api-key`, `ocp-apim-subscription-key`,
//! `x-functions-key`, `accountkey`, `db_pass`, …); a segment ending in `_<name>` or `-<name>`
//! for a credential name (`db_password`, `github-token`, `jwt_secret_key`); a camelCase
//! credential suffix after a lowercase letter or digit (`clientSecret`, `awsSecretAccessKey`),
//! whatever the key's length; and any key ending in `secretRef` / `secret_ref`.
//!
//! **Value rules** apply whatever the key, in this order:
//!
//! | rule | matches |
//! |---|---|
//! | `private_key` | PEM private-key blocks of every type (`RSA`, `EC`, `DSA`, `OPENSSH`, `ENCRYPTED`, plain, `PGP … BLOCK`) |
//! | `jwt` | JSON Web Tokens (`eyJ….….…`) |
//! | `credential_format` | well-known token formats in free text: GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab (`glpat-` and the other `gl…-` prefixes), npm (`npm_`), PyPI (`pypi-AgEIcHlwaS5vcmc…`), Slack (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xapp-`, webhook URLs), Stripe (`sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`, `whsec_`), Google API keys (`AIza…`), AWS access key ids (`AKIA`, `ASIA`, `ABIA`, `ACCA`) and the secret key shortly after one or after an AWS secret key name; exact lengths and alphabets, on token boundaries |
//! | `bearer`, `basic` | `Bearer <token>`, `Basic <base64 user:password>` |
//! | `url_userinfo` | `scheme://user:password@host` (a password may hold `/`; image references such as `…/app@sha256:…` are not userinfo) and Go-style DSNs `user:pass@tcp(host)/db` |
//! | `url_query` | the OpenTelemetry URL convention's sensitive query parameters, also percent-encoded (`%3Fsig%3D…`) |
//! | `embedded_key` | a sensitive key written inside a value: `password=…`, `DB_PASS=…`, `"token": "…"`, `Config { secret: … }`, `password: Some("…")` (the whole wrapped value), `("client_secret", "…")` pairs, `%26token%3D…`, `AccountKey=…;` |
//!
//! **Cost.** Every rule is linear in the value's length whatever its bytes: each is one
//! forward pass that remembers what it has seen, and the few backward or forward looks are
//! bounded or never cover the same bytes twice. A value is scanned only when it holds a byte
//! some shape needs where it could start one ([`scan`]), so an ordinary value costs one pass
//! over its bytes, eight at a time.

mod embedded;
mod formats;
mod keys;
mod scan;
mod shapes;
mod work;

#[cfg(test)]
mod linear_tests;
#[cfg(test)]
mod tests;

pub(crate) use keys::is_sensitive_key;
pub use keys::{CREDENTIAL_KEYS, DEFAULT_KEYS};
pub(crate) use scan::needs_scan;
pub use shapes::SENSITIVE_QUERY_PARAMETERS;

use work::step;

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
    /// `scheme://user:password@host`, or a Go-style DSN `user:password@tcp(host)/db`.
    UrlUserinfo,
    /// A signature or credential query parameter (`sig`, `X-Amz-Signature`, …).
    UrlQuery,
    /// A sensitive key written inside a value: `password=…`, `"token": "…"`,
    /// `Config { secret: … }` (a `Debug` struct, a JSON body, a query string).
    EmbeddedKey,
    /// A well-known credential format in free text: GitHub, GitLab, npm, PyPI, Slack,
    /// Stripe, Google API and AWS keys (`ghp_…`, `AKIA…`, `xoxb-…`, …).
    CredentialFormat,
    /// Allow-list (strict) mode dropped an attribute whose key is not allowed.
    AllowList,
}

impl Rule {
    /// Every rule, in counter order.
    pub const ALL: [Rule; 10] = [
        Rule::SensitiveKey,
        Rule::Bearer,
        Rule::Basic,
        Rule::Jwt,
        Rule::PrivateKey,
        Rule::UrlUserinfo,
        Rule::UrlQuery,
        Rule::EmbeddedKey,
        Rule::CredentialFormat,
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
            Rule::CredentialFormat => "credential_format",
            Rule::AllowList => "allow_list",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
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

/// One value rule: the masked text, or `None` when it matched nothing.
type Pass = fn(&str) -> Option<String>;

/// Every value rule in turn, without the prefilter. Each pass is linear in its input, and
/// no pass more than multiplies the length by a constant (a masked byte becomes at most
/// the marker), so the whole chain is linear.
fn apply_value_rules(value: &str) -> Option<(String, Fired)> {
    let mut fired: Fired = 0;
    let mut text = std::borrow::Cow::Borrowed(value);
    let passes: [(Rule, Pass); 8] = [
        (Rule::PrivateKey, shapes::private_keys),
        (Rule::Jwt, shapes::jwts),
        (Rule::CredentialFormat, formats::credential_formats),
        (Rule::Bearer, shapes::bearer_tokens),
        (Rule::Basic, shapes::basic_credentials),
        (Rule::UrlUserinfo, shapes::url_userinfo),
        (Rule::UrlQuery, shapes::url_query),
        (Rule::EmbeddedKey, embedded::embedded_keys),
    ];
    for (rule, pass) in passes {
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

/// Replaces `text[start..end]` ranges by their replacement. Ranges may come unsorted or
/// overlapping (`?sig=?sig=…` finds a value inside a value): they are sorted and merged
/// first (the first range's replacement wins), so the splice never slices backwards.
fn splice_each(text: &str, ranges: &[(usize, usize, &str)]) -> String {
    let mut sorted: Vec<(usize, usize, &str)> = ranges
        .iter()
        .map(|&(start, end, with)| (start.min(text.len()), end.min(text.len()), with))
        .filter(|&(start, end, _)| start < end)
        .collect();
    // The rules produce their ranges in order, so this is one pass in practice.
    sorted.sort_by_key(|&(start, end, _)| (start, end));
    step(text.len() + sorted.len());
    let mut merged: Vec<(usize, usize, &str)> = Vec::with_capacity(sorted.len());
    for (start, end, with) in sorted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end, with)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in merged {
        // Every range starts and ends at an ASCII delimiter or the end, so these are char
        // boundaries; `get` keeps a mistake from ever becoming a panic.
        out.push_str(text.get(at..start).unwrap_or(""));
        out.push_str(with);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out
}

/// [`splice_each`] with the one marker for every range.
fn splice(text: &str, ranges: &[(usize, usize)]) -> String {
    let ranges: Vec<(usize, usize, &str)> = ranges
        .iter()
        .map(|&(start, end)| (start, end, REDACTED))
        .collect();
    splice_each(text, &ranges)
}

/// `Some(masked text)` when there is anything to mask.
fn masked(text: &str, ranges: &[(usize, usize)]) -> Option<String> {
    (!ranges.is_empty()).then(|| splice(text, ranges))
}
