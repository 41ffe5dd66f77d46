//! Well-known credential formats in free text: a log message `retrying with ghp_…`, a
//! span name, an error string.
//!
//! A format is a fixed prefix and a body of an exact alphabet and length (or minimum
//! length), standing alone as a token: not preceded or followed by a token character
//! (`A–Z a–z 0–9 _ -`), so a longer identifier that merely contains one is left alone. The
//! rule walks the text's token runs once and tries the formats only at a run's start; an
//! AWS access key id, or an AWS secret key name, also has the 40-character secret key
//! looked for in the few bytes after it.

use super::keys::ends_with_norm;
use super::shapes::find_bytes;
use super::{masked, step};

/// A byte of a token: letters, digits, `_` and `-`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_upper_or_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_alnum_or_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// One credential format: `prefix`, then `min..=max` bytes of `body`.
struct Format {
    prefix: &'static [u8],
    body: fn(u8) -> bool,
    min: usize,
    max: usize,
    /// An AWS access key id: its secret key may follow.
    aws_id: bool,
}

const fn format(prefix: &'static [u8], body: fn(u8) -> bool, min: usize, max: usize) -> Format {
    Format {
        prefix,
        body,
        min,
        max,
        aws_id: false,
    }
}

const fn aws_id(prefix: &'static [u8]) -> Format {
    Format {
        prefix,
        body: is_upper_or_digit,
        min: 16,
        max: 16,
        aws_id: true,
    }
}

const ANY: usize = usize::MAX;

/// Every format but GitHub's fine-grained tokens (two bodies: see [`github_pat_at`]).
const FORMATS: [Format; 35] = [
    // GitHub classic tokens: personal, OAuth, user-to-server, server-to-server, refresh.
    format(b"ghp_", is_alnum, 36, 36),
    format(b"gho_", is_alnum, 36, 36),
    format(b"ghu_", is_alnum, 36, 36),
    format(b"ghs_", is_alnum, 36, 36),
    format(b"ghr_", is_alnum, 36, 36),
    // GitLab: personal, OAuth application secret, deploy, runner, CI job, trigger, feed,
    // incoming mail, agent, SCIM, feature-flag client tokens.
    format(b"glpat-", is_token, 20, ANY),
    format(b"gloas-", is_token, 20, ANY),
    format(b"gldt-", is_token, 20, ANY),
    format(b"glrt-", is_token, 20, ANY),
    format(b"glcbt-", is_token, 20, ANY),
    format(b"glptt-", is_token, 20, ANY),
    format(b"glft-", is_token, 20, ANY),
    format(b"glimt-", is_token, 20, ANY),
    format(b"glagent-", is_token, 20, ANY),
    format(b"glsoat-", is_token, 20, ANY),
    format(b"glffct-", is_token, 20, ANY),
    // npm.
    format(b"npm_", is_alnum, 36, 36),
    // PyPI (a macaroon whose first bytes name pypi.org or test.pypi.org).
    format(b"pypi-AgEIcHlwaS5vcmc", is_token, 50, ANY),
    format(b"pypi-AgENdGVzdC5weXBpLm9yZw", is_token, 50, ANY),
    // Slack: bot, user, app-level, refresh, legacy workspace tokens; app tokens.
    format(b"xoxb-", is_alnum_or_dash, 20, ANY),
    format(b"xoxp-", is_alnum_or_dash, 20, ANY),
    format(b"xoxa-", is_alnum_or_dash, 20, ANY),
    format(b"xoxr-", is_alnum_or_dash, 20, ANY),
    format(b"xoxs-", is_alnum_or_dash, 20, ANY),
    format(b"xapp-", is_alnum_or_dash, 20, ANY),
    // Stripe: secret and restricted keys, live and test; webhook signing secrets.
    format(b"sk_live_", is_alnum, 20, ANY),
    format(b"sk_test_", is_alnum, 20, ANY),
    format(b"rk_live_", is_alnum, 20, ANY),
    format(b"rk_test_", is_alnum, 20, ANY),
    format(b"whsec_", is_base64, 32, ANY),
    // Google API keys.
    format(b"AIza", is_token, 35, 35),
    // AWS access key ids: long-term, temporary (STS), and two other issuers.
    aws_id(b"AKIA"),
    aws_id(b"ASIA"),
    aws_id(b"ABIA"),
    aws_id(b"ACCA"),
];

/// The shortest token a format with `-` or `_` in its prefix can be (`glrt-` or `xoxb-` and
/// 20 bytes); in a shorter value no `-` or `_` can start one, so the prefilter skips them.
pub(super) const SHORTEST_SEPARATED: usize = 25;

/// How far after an AWS access key id (or secret key name) its secret key is looked for.
const AWS_SECRET_WINDOW: usize = 64;

/// The format at the token run starting at `s`: where it ends, and whether it is an AWS
/// access key id. The body is read at most to its maximum length plus one.
fn format_at(bytes: &[u8], s: usize) -> Option<(usize, bool)> {
    let rest = &bytes[s..];
    step(8);
    // Every prefix starts with one of these: most words are settled by their first byte.
    if !matches!(
        rest.first(),
        Some(b'g' | b'n' | b'p' | b'x' | b's' | b'r' | b'w' | b'A')
    ) {
        return None;
    }
    if let Some(end) = github_pat_at(bytes, s) {
        return Some((end, false));
    }
    FORMATS.iter().find_map(|f| {
        if !rest.starts_with(f.prefix) {
            return None;
        }
        let body_start = s + f.prefix.len();
        let cap = body_start
            .saturating_add(f.max.saturating_add(1))
            .min(bytes.len());
        let mut e = body_start;
        while e < cap && (f.body)(bytes[e]) {
            e += 1;
        }
        step(e - body_start + 1);
        let len = e - body_start;
        let alone = bytes.get(e).is_none_or(|&b| !is_token(b) && !(f.body)(b));
        (len >= f.min && len <= f.max && alone).then_some((e, f.aws_id))
    })
}

/// A GitHub fine-grained token at `s`: `github_pat_`, 22 alphanumerics, `_`, 59
/// alphanumerics, alone.
fn github_pat_at(bytes: &[u8], s: usize) -> Option<usize> {
    const PREFIX: &[u8] = b"github_pat_";
    let token = bytes.get(s..s + PREFIX.len() + 22 + 1 + 59)?;
    if !token.starts_with(PREFIX) {
        return None;
    }
    step(token.len());
    let (first, rest) = token[PREFIX.len()..].split_at(22);
    let end = s + token.len();
    let shaped = first.iter().all(|&b| is_alnum(b))
        && rest[0] == b'_'
        && rest[1..].iter().all(|&b| is_alnum(b))
        && bytes.get(end).is_none_or(|&b| !is_token(b));
    shaped.then_some(end)
}

/// Whether a token run names an AWS secret key (`aws_secret_access_key`,
/// `AWS-SECRET-ACCESS-KEY`, `SecretAccessKey`), so a secret key may follow it.
fn names_aws_secret(run: &[u8]) -> bool {
    ends_with_norm(run, "secret_access_key") || run.ends_with(b"ecretAccessKey")
}

/// The AWS secret key in the few bytes after `from`: 40 of `A–Z a–z 0–9 / +`, alone
/// (not beside another of those or `=`), holding both cases (a hex digest is not one).
fn aws_secret_after(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let window_end = (from + AWS_SECRET_WINDOW).min(bytes.len());
    let mut j = from;
    while j < window_end {
        if !b64(bytes[j]) || (j > 0 && b64(bytes[j - 1])) {
            step(1);
            j += 1;
            continue;
        }
        let cap = (j + 41).min(bytes.len());
        let mut e = j;
        while e < cap && b64(bytes[e]) {
            e += 1;
        }
        step(e - j + 1);
        let candidate = &bytes[j..e];
        if candidate.len() == 40
            && bytes.get(e).is_none_or(|&b| !b64(b) && b != b'=')
            && candidate.iter().any(u8::is_ascii_uppercase)
            && candidate.iter().any(u8::is_ascii_lowercase)
        {
            return Some((j, e));
        }
        j = e.max(j + 1);
    }
    None
}

/// The longest Slack team id segment a webhook URL is recognised with.
const SLACK_TEAM_MAX: usize = 24;

/// Slack incoming-webhook URLs: the secret after `hooks.slack.com/services/T…/B…/`.
fn slack_webhooks(bytes: &[u8], ranges: &mut Vec<(usize, usize)>) {
    const HOST: &[u8] = b"hooks.slack.com/services/";
    let run = |from: usize| {
        let mut e = from;
        while e < bytes.len() && bytes[e].is_ascii_alphanumeric() {
            e += 1;
        }
        step(e - from + 1);
        e
    };
    let mut from = 0;
    while let Some(at) = find_bytes(bytes, HOST, from) {
        let team = at + HOST.len();
        let team_end = run(team);
        from = team_end.max(team);
        // Team ids are about ten bytes; the prefilter looks back at most this far.
        if bytes.get(team) != Some(&b'T')
            || bytes.get(team_end) != Some(&b'/')
            || team_end - team > SLACK_TEAM_MAX
        {
            continue;
        }
        let channel = team_end + 1;
        let channel_end = run(channel);
        from = channel_end;
        if bytes.get(channel) != Some(&b'B') || bytes.get(channel_end) != Some(&b'/') {
            continue;
        }
        let secret = channel_end + 1;
        let secret_end = run(secret);
        from = secret_end;
        if secret_end - secret >= 16 {
            ranges.push((secret, secret_end));
        }
    }
}

/// Every well-known credential format in `text`.
pub(super) fn credential_formats(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        step(1);
        if !is_token(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut run_end = i;
        while run_end < bytes.len() && is_token(bytes[run_end]) {
            run_end += 1;
        }
        step(run_end - start);
        match format_at(bytes, start) {
            Some((end, aws_id)) => {
                ranges.push((start, end));
                if aws_id {
                    ranges.extend(aws_secret_after(bytes, end));
                }
                i = end.max(run_end);
            }
            None => {
                if names_aws_secret(&bytes[start..run_end]) {
                    ranges.extend(aws_secret_after(bytes, run_end));
                }
                i = run_end;
            }
        }
    }
    slack_webhooks(bytes, &mut ranges);
    masked(text, &ranges)
}

/// Whether `pair` can be the last two bytes of a prefix ending in `sep` (`_` or `-`), or of
/// `secret` before `_access` / `-access`.
#[inline(always)]
pub(super) fn is_prefix_tail(sep: u8, pair: [u8; 2]) -> bool {
    const fn p(pair: &[u8; 2]) -> u16 {
        u16::from_le_bytes(*pair)
    }
    const ET: u16 = p(b"et");
    const ET_UPPER: u16 = p(b"ET");
    // gh[pousr]_, github_pat_, npm_, sk_live_, rk_live_, sk_test_, rk_test_, whsec_
    const HP: u16 = p(b"hp");
    const HO: u16 = p(b"ho");
    const HU: u16 = p(b"hu");
    const HS: u16 = p(b"hs");
    const HR: u16 = p(b"hr");
    const AT: u16 = p(b"at");
    const PM: u16 = p(b"pm");
    const VE: u16 = p(b"ve");
    const ST: u16 = p(b"st");
    const EC: u16 = p(b"ec");
    // glpat-, gloas-, gldt-, glrt-, glcbt-, glptt-, glft-, glimt-, glagent-, glsoat-,
    // glffct-, xox[bpars]-, xapp-, pypi-
    const AS: u16 = p(b"as");
    const DT: u16 = p(b"dt");
    const RT: u16 = p(b"rt");
    const BT: u16 = p(b"bt");
    const TT: u16 = p(b"tt");
    const FT: u16 = p(b"ft");
    const MT: u16 = p(b"mt");
    const NT: u16 = p(b"nt");
    const CT: u16 = p(b"ct");
    const XB: u16 = p(b"xb");
    const XP: u16 = p(b"xp");
    const XA: u16 = p(b"xa");
    const XR: u16 = p(b"xr");
    const XS: u16 = p(b"xs");
    const PP: u16 = p(b"pp");
    const PI: u16 = p(b"pi");
    let pair = u16::from_le_bytes(pair);
    if sep == b'_' {
        matches!(
            pair,
            ET | ET_UPPER | HP | HO | HU | HS | HR | AT | PM | VE | ST | EC
        )
    } else {
        matches!(
            pair,
            ET | ET_UPPER
                | AT
                | AS
                | DT
                | RT
                | BT
                | TT
                | FT
                | MT
                | NT
                | CT
                | XB
                | XP
                | XA
                | XR
                | XS
                | PP
                | PI
        )
    }
}

/// The prefilter's look at a `_` or `-` at `i`: does a format prefix end here, or an AWS
/// secret key name continue here (`secret_access`)? One byte before it picks the few
/// candidates, so an identifier full of `_` and `-` costs a comparison or two per byte.
pub(super) fn prefix_before(bytes: &[u8], i: usize) -> bool {
    let before = &bytes[..i];
    let Some(&last) = before.last() else {
        return false;
    };
    step(12);
    let ends = |prefixes: &[&[u8]]| prefixes.iter().any(|p| before.ends_with(p));
    let secret_access = || {
        before.len() >= 6
            && before[before.len() - 6..].eq_ignore_ascii_case(b"secret")
            && bytes
                .get(i + 1..i + 7)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"access"))
    };
    match (bytes[i], last) {
        (b'_', b'p' | b'o' | b'u' | b's' | b'r') => before[..before.len() - 1].ends_with(b"gh"),
        (b'_', b'm') => ends(&[b"npm"]),
        (b'_', b'e') => ends(&[b"sk_live", b"rk_live"]),
        (b'_', b'c') => ends(&[b"whsec"]),
        (b'_', b't') => ends(&[b"github_pat", b"sk_test", b"rk_test"]) || secret_access(),
        (b'-', b't') => {
            ends(&[
                b"glpat", b"gldt", b"glrt", b"glcbt", b"glptt", b"glft", b"glimt", b"glagent",
                b"glsoat", b"glffct",
            ]) || secret_access()
        }
        (b'-', b's') => ends(&[b"gloas", b"xoxs"]),
        (b'-', b'b' | b'p' | b'a' | b'r') => ends(&[b"xoxb", b"xoxp", b"xoxa", b"xoxr", b"xapp"]),
        (b'-', b'i') => ends(&[b"pypi"]),
        (b'_' | b'-', b'T') => secret_access(),
        _ => false,
    }
}

/// The prefilter's look at an `A` at `i`: an AWS access key id, a Google API key, or the
/// `AccessKey` of `SecretAccessKey`.
pub(super) fn starts_at_a(bytes: &[u8], i: usize) -> bool {
    step(12);
    let next = &bytes[i + 1..];
    [&b"KIA"[..], b"SIA", b"BIA", b"CCA", b"Iza"]
        .iter()
        .any(|p| next.starts_with(p))
        || (next.starts_with(b"ccessKey") && bytes[..i].ends_with(b"ecret"))
}

/// The prefilter's look at a `B` at `i`: the channel segment of a Slack webhook URL
/// (`hooks.slack.com/services/T…/B…`), read backwards a bounded distance.
pub(super) fn slack_webhook_before(bytes: &[u8], i: usize) -> bool {
    const HOST: &[u8] = b"hooks.slack.com/services/";
    if i == 0 || bytes[i - 1] != b'/' {
        return false;
    }
    let slash = i - 1;
    let mut t = slash;
    while t > 0 && slash - t < SLACK_TEAM_MAX && bytes[t - 1].is_ascii_alphanumeric() {
        t -= 1;
    }
    step(slash - t + 1);
    t < slash && bytes[t] == b'T' && bytes[..t].ends_with(HOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_starts_with_a_byte_the_first_byte_screen_lets_through() {
        for f in &FORMATS {
            assert!(b"gnpxsrwA".contains(&f.prefix[0]), "{:?}", f.prefix);
        }
    }

    #[test]
    fn no_format_with_a_separator_is_shorter_than_the_prefilter_assumes() {
        for f in &FORMATS {
            if f.prefix.iter().any(|&b| b == b'-' || b == b'_') {
                assert!(
                    f.prefix.len() + f.min >= SHORTEST_SEPARATED,
                    "{}",
                    String::from_utf8_lossy(f.prefix)
                );
            }
        }
        // github_pat_ (93 bytes) and an AWS secret key name with its key are longer still.
        assert!(SHORTEST_SEPARATED <= 93 && SHORTEST_SEPARATED <= "secret_access_key".len() + 41);
    }
}
