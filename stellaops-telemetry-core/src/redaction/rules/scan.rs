//! The prefilter: whether any value rule could match a value, in one forward pass.
//!
//! A value is scanned eight bytes at a time for the few bytes a shape needs; at each such
//! trigger byte a local, bounded look at its neighbours decides (is this `J` the start of
//! `eyJ`? is the word before this space `bearer`? does the word before this `:` name a
//! secret? is the word before this `_` `ghp`?). What a look needs from further back is
//! remembered, not searched for (`@` is userinfo only after a `://` the pass has already
//! crossed). Ordinary text, even full of spaces, colons and dashes, costs that one pass.

use super::keys::is_sensitive_name;
use super::{embedded, formats, shapes, step};

/// Bytes without which no value rule can match.
const fn trigger_table() -> [bool; 256] {
    let mut t = [false; 256];
    t[b'J' as usize] = true; // eyJ… (JWT)
    t[b' ' as usize] = true; // Bearer / Basic <credential>
    t[b'\t' as usize] = true;
    t[b'B' as usize] = true; // -----BEGIN … PRIVATE KEY----- (not `-`: dates); Slack's /B…/
    t[b'@' as usize] = true; // user:password@host, user:pass@tcp(…)
    t[b'?' as usize] = true; // ?sig=…
    t[b'&' as usize] = true; // &X-Amz-Signature=…
    t[b':' as usize] = true; // password: … (Debug structs, JSON, headers in text); ://
    t[b'=' as usize] = true; // password=…
    t[b'%' as usize] = true; // %3Fsig%3D…, %26token%3D…
    t[b',' as usize] = true; // ("password", "…")
    t[b'_' as usize] = true; // ghp_…, npm_…, sk_live_…, SECRET_ACCESS_KEY
    t[b'-' as usize] = true; // glpat-…, xoxb-…, pypi-…
    t[b'A' as usize] = true; // AKIA…, AIza…, SecretAccessKey
    t
}
static TRIGGERS: [bool; 256] = trigger_table();

/// Whether any value rule could match `value`.
#[inline]
pub(crate) fn needs_scan(value: &str) -> bool {
    // The shortest shape any value rule matches is `pwd=x`; shorter values (methods,
    // status words, small ids) are settled here without a call.
    value.len() >= 5 && has_shape_start(value.as_bytes())
}

#[inline(never)]
fn has_shape_start(bytes: &[u8]) -> bool {
    let mut seen_scheme = false;
    let mut from = 0;
    while let Some(i) = next_trigger(bytes, from) {
        if starts_a_shape(bytes, i, &mut seen_scheme) {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Whether the trigger byte at `i` can be part of a shape a value rule matches (out of
/// line: the scan loop around it stays small enough to inline). `seen_scheme` is set once
/// the pass crosses a `://`.
///
/// Each look is bounded, except the key word before a `:`, `=`, `%3D` or `,`: that walk
/// stops at the previous such separator, so the walks never cover a byte twice.
#[inline(never)]
fn starts_a_shape(bytes: &[u8], i: usize, seen_scheme: &mut bool) -> bool {
    step(1);
    match bytes[i] {
        b'J' => i >= 2 && &bytes[i - 2..i] == b"ey",
        b' ' | b'\t' => shapes::scheme_before(bytes, i),
        b'B' => {
            (i >= 5 && bytes[i - 5..].starts_with(b"-----BEGIN"))
                || formats::slack_webhook_before(bytes, i)
        }
        b'@' => *seen_scheme || shapes::dsn_protocol_after(bytes, i),
        b'?' | b'&' => shapes::sensitive_param_at(bytes, i + 1).is_some(),
        b'%' => match shapes::percent_code(bytes, i) {
            Some(b'?' | b'&') => shapes::sensitive_param_at(bytes, i + 3).is_some(),
            Some(b'=') => key_or_param_before(bytes, i, embedded::Sep::Percent),
            _ => false,
        },
        b':' if bytes.get(i + 1..i + 3) == Some(b"//") => {
            *seen_scheme = true;
            false
        }
        b':' => key_or_param_before(bytes, i, embedded::Sep::Colon),
        b'=' => key_or_param_before(bytes, i, embedded::Sep::Equals),
        b',' => key_or_param_before(bytes, i, embedded::Sep::Comma),
        b'_' | b'-' => formats::prefix_before(bytes, i),
        b'A' => formats::starts_at_a(bytes, i),
        _ => false,
    }
}

/// Whether the word before the separator at `i` names a secret (or, before `=`, a
/// sensitive query parameter).
fn key_or_param_before(bytes: &[u8], i: usize, sep: embedded::Sep) -> bool {
    let Some((start, end)) = embedded::word_before_sep(bytes, i, sep) else {
        return false;
    };
    let word = &bytes[start..end];
    is_sensitive_name(word)
        || (matches!(sep, embedded::Sep::Equals | embedded::Sep::Percent)
            && shapes::is_query_parameter(word))
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

/// Whether the eight bytes of `x` may hold a trigger: a byte below `.` (0x2E), from `:` to
/// `J` (0x3A–0x4A), or `_`. Every trigger is one, and a word of lowercase letters, digits,
/// `.` and `/` (most paths, host names and versions) is none. The tests are the classic
/// SWAR "has less than", "has between" and "has zero"; as booleans over the word they are
/// exact, and a byte ≥ 0x80 (UTF-8) never counts (no trigger is one).
#[inline(always)]
fn may_hold_trigger(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    let below_dot = x.wrapping_sub(ONES * 0x2E) & !x & HIGHS;
    let low7 = x & LOW7;
    // Bytes b with 0x39 < b < 0x4B.
    let between = (ONES * (127 + 0x4B)).wrapping_sub(low7)
        & !x
        & low7.wrapping_add(ONES * (127 - 0x39))
        & HIGHS;
    let y = x ^ (ONES * u64::from(b'_'));
    let underscore = y.wrapping_sub(ONES) & !y & HIGHS;
    below_dot | between | underscore != 0
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
        step(n);
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
        step(8);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_prefilter_is_exact_for_every_byte() {
        for b in 0..=255u8 {
            let expected = b < 0x2E || (0x3A..0x4B).contains(&b) || b == b'_';
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
                // Beside the bytes closest to each range's edges.
                word[(at + 3) % 8] = 0x60;
                word[(at + 4) % 8] = 0x5E;
                word[(at + 5) % 8] = b'.';
                word[(at + 6) % 8] = b'K';
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
        assert_eq!(triggers, b"\t %&,-:=?@ABJ_");
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
}
