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
