//! The prefilter: whether any value rule could match a value, in one forward pass.
//!
//! A value is read eight bytes at a time; a word without a byte some shape needs is skipped
//! in a few arithmetic steps. At each such trigger byte a local, bounded look at its
//! neighbours decides (is this `J` the start of `eyJ`? is the word before this space
//! `bearer`? does the word before this `:` name a secret? is the word before this `_`
//! `ghp`?). What a look needs from further back is remembered, not searched for (`@` is
//! userinfo only after a `://` the pass has already crossed). Ordinary text, even full of
//! spaces and colons, costs that one pass.
//!
//! `-` and `_` (everywhere in identifiers, host names and UUIDs) only matter for token
//! formats, and the shortest of those with a `-` or `_` is 25 bytes: in a shorter value,
//! which most attribute values are, they are not even read.

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
    // No `-` or `_` can start a format in a value too short to hold the shortest one.
    if bytes.len() < formats::SHORTEST_SEPARATED {
        any_shape::<false>(bytes)
    } else {
        any_shape::<true>(bytes)
    }
}

/// Whether any trigger of `bytes` starts a shape; `DASHES`: whether `-` and `_` are read.
#[inline(always)]
fn any_shape<const DASHES: bool>(bytes: &[u8]) -> bool {
    let mut seen_scheme = false;
    any_candidate_word::<DASHES>(bytes, |start, mut bits| {
        while bits != 0 {
            let i = start + bits.trailing_zeros() as usize;
            if TRIGGERS[bytes[i] as usize]
                && may_start_a_shape(bytes, i)
                && starts_a_shape(bytes, i, &mut seen_scheme)
            {
                return true;
            }
            bits &= bits - 1;
        }
        false
    })
}

/// A screen, inline, for the triggers that are common in ordinary text (`-` and `_` in
/// identifiers, `A` in words): the two bytes before a `-` or `_`, or the one after an `A`,
/// must be those of some format's prefix for the full look to be worth a call.
#[inline(always)]
fn may_start_a_shape(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        b'_' | b'-' => i >= 2 && formats::is_prefix_tail(bytes[i], [bytes[i - 2], bytes[i - 1]]),
        b'A' => bytes
            .get(i + 1)
            .is_some_and(|b| matches!(b, b'K' | b'S' | b'B' | b'C' | b'I' | b'c')),
        _ => true,
    }
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
        b':' if bytes.get(i + 1) == Some(&b'/') && bytes.get(i + 2) == Some(&b'/') => {
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

/// The bytes of `x` that may be triggers, as their high bits: a byte below `-` (0x2D), from
/// `:` to `J` (0x3A–0x4A), and with `DASHES` also `-` and `_`. Every trigger is one, and a
/// word of lowercase letters, digits, `.` and `/` (most paths, host names and versions)
/// has none. Exact per byte (no borrow crosses a byte: each is compared with its high bit
/// set), and a byte ≥ 0x80 (UTF-8) never counts (no trigger is one).
#[inline(always)]
fn candidates<const DASHES: bool>(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    let low7 = x & LOW7;
    // (b | 0x80) - n keeps its high bit exactly when b >= n.
    let at_least = |n: u64| (low7 | HIGHS).wrapping_sub(ONES * n) & HIGHS;
    let colon_to_j = at_least(0x3A) & !at_least(0x4B);
    let found = if DASHES {
        // b ^ 0x5F is zero exactly for `_`; adding 0x7F sets the high bit of any other.
        let underscore = !((low7 ^ (ONES * 0x5F)).wrapping_add(LOW7)) & HIGHS;
        (!at_least(0x2E) & HIGHS) | colon_to_j | underscore
    } else {
        (!at_least(0x2D) & HIGHS) | colon_to_j
    };
    found & !x & HIGHS
}

/// Whether the eight bytes of `x` hold a candidate (see [`candidates`]): the classic SWAR
/// "has less than", "has between" and "has zero" tests, exact as booleans over the word and
/// cheaper than the per-byte mask, so a word without candidates costs only these.
#[inline(always)]
fn may_hold_candidate<const DASHES: bool>(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    let low7 = x & LOW7;
    // Bytes b with 0x39 < b < 0x4B.
    let between = (ONES * (127 + 0x4B)).wrapping_sub(low7)
        & !x
        & low7.wrapping_add(ONES * (127 - 0x39))
        & HIGHS;
    if DASHES {
        let below = x.wrapping_sub(ONES * 0x2E) & !x & HIGHS;
        let y = x ^ (ONES * u64::from(b'_'));
        let underscore = y.wrapping_sub(ONES) & !y & HIGHS;
        below | between | underscore != 0
    } else {
        let below = x.wrapping_sub(ONES * 0x2D) & !x & HIGHS;
        below | between != 0
    }
}

/// The high bits of a word (bit 7 of byte `k`) gathered into bit `k`.
#[inline(always)]
fn gather(high_bits: u64) -> u32 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// The candidate mask of a value shorter than a word (bit `k` for byte `k`): read as two
/// overlapping halves (a byte may be read twice), or byte by byte under four bytes.
#[inline(always)]
fn short_candidates<const DASHES: bool>(bytes: &[u8]) -> u32 {
    let n = bytes.len();
    if n < 4 {
        return bytes
            .iter()
            .enumerate()
            .fold(0, |acc, (k, &b)| acc | u32::from(TRIGGERS[b as usize]) << k);
    }
    let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let hi = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
    let bits = gather(candidates::<DASHES>(u64::from(lo) | u64::from(hi) << 32));
    // Bits 4–7 are bytes n-4 .. n-1.
    (bits & 0xF) | (bits >> 4) << (n - 4)
}

/// Hands `found` each word that holds candidate trigger bytes, in order, as its start and
/// the bit mask of its candidates (bit `k` for byte `start + k`; `found` checks each against
/// [`TRIGGERS`]), until `found` returns true (then true). Eight bytes at a time: a word
/// without candidates is skipped in a few arithmetic steps, and a word is read once however
/// many candidates it holds. The last word overlaps the one before it rather than falling
/// back to a byte loop (the overlap's bits are dropped). `found` is called from one place,
/// so it inlines.
#[inline(always)]
fn any_candidate_word<const DASHES: bool>(
    bytes: &[u8],
    mut found: impl FnMut(usize, u32) -> bool,
) -> bool {
    let n = bytes.len();
    let mut at = 0;
    loop {
        let (start, bits) = if n >= 8 {
            let start = at.min(n - 8);
            step(8);
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[start..start + 8]);
            let x = u64::from_le_bytes(word);
            let bits = if may_hold_candidate::<DASHES>(x) {
                gather(candidates::<DASHES>(x)) & (u32::MAX << (at - start))
            } else {
                0
            };
            (start, bits)
        } else {
            step(n);
            (0, short_candidates::<DASHES>(bytes))
        };
        if bits != 0 && found(start, bits) {
            return true;
        }
        if start + 8 >= n {
            return false;
        }
        at = start + 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_mask_is_exact_for_every_byte_at_every_position() {
        let expected = |b: u8, dashes: bool| {
            b < 0x2D || (0x3A..0x4B).contains(&b) || (dashes && (b == b'-' || b == b'_'))
        };
        // Fillers beside each range's edges, a UTF-8 byte, and ordinary bytes.
        let fillers = [
            b'q', b'.', b'/', b'9', b'K', 0x5E, 0x60, 0xC3, 0xFF, 0x7F, b'-',
        ];
        for b in 0..=255u8 {
            for at in 0..8 {
                for (f, &filler) in fillers.iter().enumerate() {
                    let mut word = [filler; 8];
                    // A second kind of filler beside it, so neighbours differ.
                    word[(at + 1) % 8] = fillers[(f + 1) % fillers.len()];
                    word[at] = b;
                    let x = u64::from_le_bytes(word);
                    for dashes in [false, true] {
                        let (bits, may) = if dashes {
                            (gather(candidates::<true>(x)), may_hold_candidate::<true>(x))
                        } else {
                            (
                                gather(candidates::<false>(x)),
                                may_hold_candidate::<false>(x),
                            )
                        };
                        assert_eq!(may, bits != 0, "{word:x?}");
                        for (k, &w) in word.iter().enumerate() {
                            assert_eq!(
                                bits >> k & 1 == 1,
                                expected(w, dashes),
                                "{w:#x} at {k} in {word:x?}"
                            );
                        }
                    }
                }
            }
            assert!(
                !TRIGGERS[b as usize] || expected(b, true),
                "trigger {b:#x} is not a candidate"
            );
        }
    }

    /// The trigger positions [`any_candidate_word`] reports.
    fn reported<const DASHES: bool>(text: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        any_candidate_word::<DASHES>(text, |start, mut bits| {
            while bits != 0 {
                let i = start + bits.trailing_zeros() as usize;
                if TRIGGERS[text[i] as usize] {
                    found.push(i);
                }
                bits &= bits - 1;
            }
            false
        });
        found
    }

    #[test]
    fn the_word_skip_never_misses_a_trigger() {
        // Every position and every trigger byte, around lowercase filler and high bytes;
        // without `DASHES`, every trigger but `-` and `_`.
        let triggers: Vec<u8> = (0..=255u8).filter(|&b| TRIGGERS[b as usize]).collect();
        assert_eq!(triggers, b"\t %&,-:=?@ABJ_");
        let slow = |text: &[u8], dashes: bool| -> Vec<usize> {
            (0..text.len())
                .filter(|&i| {
                    TRIGGERS[text[i] as usize] && (dashes || !matches!(text[i], b'-' | b'_'))
                })
                .collect()
        };
        for &trigger in &triggers {
            for filler in [b'q', b'/', b'0', b'(', b'C'] {
                for len in 4..40 {
                    for at in 0..len {
                        let mut text = vec![filler; len];
                        text[at] = trigger;
                        assert_eq!(reported::<true>(&text), [at], "{trigger} at {at} of {len}");
                        assert_eq!(reported::<false>(&text), slow(&text, false));
                        // And a second trigger anywhere after it.
                        for second in at + 1..len {
                            text[second] = triggers[second % triggers.len()];
                            assert_eq!(reported::<true>(&text), [at, second], "{at}, {second}");
                            assert_eq!(reported::<false>(&text), slow(&text, false));
                            text[second] = filler;
                        }
                    }
                }
            }
        }
        let text = "é€ unicode ünï_x-y".as_bytes();
        assert_eq!(reported::<true>(text), slow(text, true));
        assert_eq!(reported::<false>(text), slow(text, false));
    }
}
