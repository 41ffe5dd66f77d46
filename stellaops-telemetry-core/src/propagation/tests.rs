use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
use proptest::prelude::*;

use super::{baggage, traceparent, tracestate, trim_ows};

#[test]
fn ows_is_trimmed_from_both_ends_only() {
    assert_eq!(trim_ows(b""), b"");
    assert_eq!(trim_ows(b" \t "), b"");
    assert_eq!(trim_ows(b"\t a b \t"), b"a b");
    assert_eq!(trim_ows(b"x"), b"x");
    assert_eq!(trim_ows(b"\r x\n"), b"\r x\n");
}

#[test]
fn traceparent_format_is_what_parse_reads() {
    let value = traceparent::format(
        TraceId::from(1u128),
        SpanId::from(u64::MAX),
        TraceFlags::new(0xff),
    );
    assert_eq!(
        value,
        "00-00000000000000000000000000000001-ffffffffffffffff-03"
    );
    let parsed = traceparent::parse(value.as_bytes());
    assert_eq!(
        parsed.map(|p| (p.trace_id, p.parent_id, p.flags)),
        Some((
            TraceId::from(1u128),
            SpanId::from(u64::MAX),
            TraceFlags::new(0x03)
        ))
    );
}

#[test]
fn tracestate_value_ends_in_a_non_blank() {
    assert!(tracestate::is_value(b" a"));
    assert!(tracestate::is_value(b"~"));
    assert!(!tracestate::is_value(b""));
    assert!(!tracestate::is_value(b"a "));
    assert!(!tracestate::is_value(b"a\tb"));
    assert!(!tracestate::is_value(&[b'v'; 257]));
    assert!(tracestate::is_value(&[b'v'; 256]));
}

#[test]
fn tracestate_keys_follow_the_level_2_rule() {
    for key in [
        "a",
        "1abc",
        "foo@",
        "a@b@c",
        "t@vvvvvvvvvvvvvv",
        "a-z0_9*/@x",
    ] {
        assert!(tracestate::is_key(key.as_bytes()), "{key}");
    }
    for key in ["", "@a", "_a", "A", "a.b", "a b", "é"] {
        assert!(!tracestate::is_key(key.as_bytes()), "{key}");
    }
    assert!(tracestate::is_key(&[b'z'; 256]));
    assert!(!tracestate::is_key(&[b'z'; 257]));
}

#[test]
fn baggage_format_never_cuts_a_member() {
    let big = "v".repeat(5000);
    let members = [
        ("a", big.as_str(), ""),
        ("b", big.as_str(), ""),
        ("c", "1", ""),
    ];
    let out = baggage::format(members);
    assert_eq!(out.len(), 2 + 5000 + 4);
    assert!(out.ends_with(",c=1"));
}

proptest! {
    /// `otel_can_hold` mirrors `TraceState::from_key_value`'s key check for every key our
    /// grammar accepts; if opentelemetry changes its rule, this fails.
    #[test]
    fn otel_can_hold_matches_trace_state(key in "[a-z0-9][a-z0-9_*/@-]{0,20}(@[a-z0-9_*/@-]{0,16})?") {
        prop_assume!(tracestate::is_key(key.as_bytes()));
        let otel = TraceState::from_key_value([(key.as_str(), "v")]).is_ok();
        prop_assert_eq!(tracestate::otel_can_hold(&key), otel);
    }

    /// Percent-decoding what `format` percent-encoded gives the value back.
    #[test]
    fn baggage_values_survive_encoding(value in any::<String>()) {
        let header = baggage::format([("k", value.as_str(), "")]);
        let list = baggage::parse(|| [header.as_bytes()]);
        prop_assert_eq!(list.get("k"), Some(value.as_str()));
    }
}

#[test]
fn tracestate_truncation_drops_long_members_first_then_from_the_end() {
    let long = "l".repeat(128);
    let short: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    // 40 members, two of them longer than 128 characters (`k=` + 128).
    let mut members: Vec<(&str, &str)> = short.iter().map(|k| (k.as_str(), "v")).collect();
    members[3].1 = &long;
    members[30].1 = &long;
    let kept = tracestate::truncate(members.clone());
    assert_eq!(kept.len(), 32);
    assert!(kept.iter().all(|&(_, v)| v == "v"));
    // The two long ones went first, then the six right-most short ones.
    let keys: Vec<&str> = kept.iter().map(|&(k, _)| k).collect();
    let expected: Vec<&str> = short
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "k3" && *k != "k30")
        .take(32)
        .collect();
    assert_eq!(keys, expected);

    // One too many: only the right-most long member goes.
    members.truncate(33);
    let kept = tracestate::truncate(members);
    assert_eq!(kept.len(), 32);
    assert_eq!(kept.get(3).map(|m| m.1), Some(long.as_str()));
    assert!(kept.iter().all(|&(k, _)| k != "k30"));

    // 32 or fewer: unchanged, long members included.
    let few = vec![("a", long.as_str()), ("b", "1")];
    assert_eq!(tracestate::truncate(few.clone()), few);
}

#[test]
fn a_128_character_member_is_not_long() {
    let value = "v".repeat(126); // `k=` + 126 = 128
    let mut members: Vec<(&str, &str)> = vec![("k", value.as_str())];
    let keys: Vec<String> = (0..32).map(|i| format!("s{i}")).collect();
    members.extend(keys.iter().map(|k| (k.as_str(), "1")));
    let kept = tracestate::truncate(members);
    assert_eq!(kept.first().map(|m| m.0), Some("k"));
    assert_eq!(kept.last().map(|m| m.0), Some("s30"));
}
