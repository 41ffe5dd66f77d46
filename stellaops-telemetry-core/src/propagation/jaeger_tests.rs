use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use opentelemetry::baggage::{Baggage, BaggageExt as _};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use proptest::prelude::*;

use super::*;
use crate::config::PropagatorKind;
use crate::propagation::Propagators;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn ids(trace: u128, span: u64, sampled: bool) -> Option<UberTraceId> {
    Some(UberTraceId {
        trace_id: TraceId::from(trace),
        span_id: SpanId::from(span),
        sampled,
    })
}

fn jaeger() -> Propagators {
    Propagators::new([PropagatorKind::Jaeger])
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn full_length_ids_and_every_flag_value_are_read() {
    let trace = u128::from_str_radix(TRACE, 16).unwrap();
    let span = u64::from_str_radix(SPAN, 16).unwrap();
    for (flags, sampled) in [
        ("0", false),
        ("1", true),
        // Debug alone and debug with sampled: a sampled decision.
        ("2", true),
        ("3", true),
        ("00", false),
        ("01", true),
        // Unused and firehose bits are ignored.
        ("4", false),
        ("8", false),
        ("9", true),
        ("ff", true),
    ] {
        let value = format!("{TRACE}:{SPAN}:0:{flags}");
        assert_eq!(
            parse(value.as_bytes()),
            ids(trace, span, sampled),
            "{value}"
        );
    }
}

#[test]
fn short_ids_are_left_padded() {
    assert_eq!(
        parse(b"4d0000000000000016:17c29:0:1"),
        ids(0x4d_0000_0000_0000_0016, 0x1_7c29, true)
    );
    assert_eq!(parse(b"1:1:0:0"), ids(1, 1, false));
    // A 64-bit trace-id, as older Jaeger clients send.
    assert_eq!(
        parse(b"a3ce929d0e0e4736:00f067aa0ba902b7:0:1"),
        ids(0xa3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, true)
    );
}

#[test]
fn the_parent_span_id_is_checked_but_not_used() {
    let with_parent = format!("{TRACE}:{SPAN}:53995c3f42cd8ad8:1");
    let without = format!("{TRACE}:{SPAN}:0:1");
    assert!(parse(with_parent.as_bytes()).is_some());
    assert_eq!(parse(with_parent.as_bytes()), parse(without.as_bytes()));
}

#[test]
fn the_url_encoded_form_is_read_in_either_case() {
    let plain = parse(format!("{TRACE}:{SPAN}:0:1").as_bytes());
    assert!(plain.is_some());
    for separator in ["%3A", "%3a"] {
        let value = [TRACE, SPAN, "0", "1"].join(separator);
        assert_eq!(parse(value.as_bytes()), plain, "{value}");
    }
    // Mixed case across separators is still the encoded form.
    assert_eq!(parse(format!("{TRACE}%3A{SPAN}%3a0%3A1").as_bytes()), plain);
}

#[test]
fn optional_whitespace_around_the_value_is_ignored() {
    assert_eq!(
        parse(format!(" \t{TRACE}:{SPAN}:0:1\t ").as_bytes()),
        parse(format!("{TRACE}:{SPAN}:0:1").as_bytes())
    );
}

#[test]
fn every_malformed_shape_is_refused() {
    let long_trace = "1".repeat(33);
    let long_span = "1".repeat(17);
    let zeros = "0".repeat(32);
    let cases = [
        String::new(),
        " ".into(),
        ":::".into(),
        TRACE.to_owned(),
        format!("{TRACE}:{SPAN}"),
        format!("{TRACE}:{SPAN}:0"),
        format!("{TRACE}:{SPAN}:0:1:"),
        format!("{TRACE}:{SPAN}:0:1:extra"),
        format!(":{TRACE}:{SPAN}:0:1"),
        format!(":{SPAN}:0:1"),
        format!("{TRACE}::0:1"),
        format!("{TRACE}:{SPAN}::1"),
        format!("{TRACE}:{SPAN}:0:"),
        format!("{long_trace}:{SPAN}:0:1"),
        format!("{TRACE}:{long_span}:0:1"),
        format!("{TRACE}:{SPAN}:{long_span}:1"),
        format!("{TRACE}:{SPAN}:0:001"),
        format!("{TRACE}:{SPAN}:0:100"),
        // Uppercase, signs, prefixes, inner whitespace, non-hex.
        format!("{}:{SPAN}:0:1", TRACE.to_uppercase()),
        format!("{TRACE}:{}:0:1", SPAN.to_uppercase()),
        format!("{TRACE}:{SPAN}:0:A"),
        format!("+{TRACE}:{SPAN}:0:1"),
        format!("0x{SPAN}:{SPAN}:0:1"),
        format!("{TRACE}:-1:0:1"),
        format!("{TRACE} :{SPAN}:0:1"),
        format!("{TRACE}:{SPAN}: 0:1"),
        format!("{TRACE}:{SPAN}:0:g"),
        format!("{TRACE}:{SPAN}:x:1"),
        format!("{TRACE}:{SPAN}:0:1\u{e9}"),
        // All-zero ids.
        format!("0:{SPAN}:0:1"),
        format!("{zeros}:{SPAN}:0:1"),
        format!("{TRACE}:0:0:1"),
        format!("{TRACE}:0000000000000000:0:1"),
        // Separators: mixed, partial, other.
        format!("{TRACE}%3A{SPAN}:0:1"),
        format!("{TRACE}%3A{SPAN}%3A0%3"),
        format!("{TRACE}%3{SPAN}%3A0%3A1"),
        format!("{TRACE}%3A{SPAN}%3A0%3A1%3A"),
        format!("{TRACE}-{SPAN}-0-1"),
        format!("{TRACE}::{SPAN}:0:1"),
    ];
    for value in &cases {
        assert_eq!(parse(value.as_bytes()), None, "{value:?}");
    }
}

#[test]
fn a_value_is_read_up_to_256_bytes_and_a_hostile_megabyte_is_refused_unread() {
    let valid = format!("{TRACE}:{SPAN}:0:1");
    let pad = MAX_UBER_TRACE_ID_BYTES - valid.len();
    let at_limit = format!("{valid}{}", " ".repeat(pad));
    assert_eq!(at_limit.len(), MAX_UBER_TRACE_ID_BYTES);
    assert!(parse(at_limit.as_bytes()).is_some());
    let over = format!("{at_limit} ");
    assert_eq!(parse(over.as_bytes()), None);

    // 1 MB of separators and digits: refused by its length, before any field is split.
    let hostile = ":1".repeat(512 * 1024);
    assert_eq!(parse(hostile.as_bytes()), None);
    let hostile = format!("{valid}{}", "%3A".repeat(350_000));
    assert_eq!(parse(hostile.as_bytes()), None);
    let extracted = jaeger().extract(&headers(&[("uber-trace-id", &hostile)]));
    assert!(extracted.parent.is_none());
}

#[test]
fn more_than_one_uber_trace_id_line_is_invalid() {
    let value = format!("{TRACE}:{SPAN}:0:1");
    let one = jaeger().extract(&headers(&[("uber-trace-id", &value)]));
    assert!(one.parent.is_some_and(|p| p.is_remote() && p.is_sampled()));
    let two = jaeger().extract(&headers(&[
        ("uber-trace-id", &value),
        ("uber-trace-id", &value),
    ]));
    assert!(two.parent.is_none());
}

#[test]
fn an_invalid_uber_trace_id_leaves_the_context_untouched() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let both = Propagators::new([PropagatorKind::TraceContext, PropagatorKind::Jaeger]);
    let map = headers(&[
        ("traceparent", &traceparent),
        ("uber-trace-id", "0af7651916cd43dd8448eb211c80319c:0:0:1"),
    ]);
    let extracted = both.extract(&map);
    assert_eq!(
        extracted.parent.map(|p| p.trace_id().to_string()),
        Some(TRACE.to_owned())
    );
    let cx = Context::new().with_baggage([KeyValue::new("kept", "1")]);
    let propagator = jaeger().text_map_propagator();
    let carrier = HashMap::from([("uber-trace-id".to_owned(), "junk".to_owned())]);
    let out = propagator.extract_with_context(&cx, &carrier);
    assert!(!out.span().span_context().is_valid());
    assert_eq!(out.baggage().get("kept").map(|v| v.as_str()), Some("1"));
}

#[test]
fn a_later_propagator_that_finds_a_parent_wins_either_way() {
    let map = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        (
            "uber-trace-id",
            "0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:0:0",
        ),
    ]);
    let w3c_then_jaeger = Propagators::new([PropagatorKind::TraceContext, PropagatorKind::Jaeger]);
    let parent = w3c_then_jaeger.extract(&map).parent.unwrap();
    assert_eq!(
        parent.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert!(!parent.is_sampled());
    let jaeger_then_w3c = Propagators::new([PropagatorKind::Jaeger, PropagatorKind::TraceContext]);
    let parent = jaeger_then_w3c.extract(&map).parent.unwrap();
    assert_eq!(parent.trace_id().to_string(), TRACE);
}

#[test]
fn uberctx_headers_are_url_decoded_baggage() {
    let map = headers(&[
        ("uberctx-user", "Am%C3%A9lie"),
        ("uberctx-note", "a+b%2Bc%20d"),
        ("uberctx-raw", "100%"),
        ("uberctx-bad-utf8", "%FF"),
        ("uberctx-", "no key"),
        ("uberctx-empty", ""),
        ("x-uberctx-other", "not baggage"),
    ]);
    let baggage = jaeger().extract(&map).baggage;
    assert_eq!(baggage.get("user"), Some("Amélie"));
    assert_eq!(baggage.get("note"), Some("a b+c d"));
    assert_eq!(baggage.get("raw"), Some("100%"));
    assert_eq!(baggage.get("bad-utf8"), Some("\u{fffd}"));
    assert_eq!(baggage.get("empty"), Some(""));
    assert_eq!(baggage.len(), 5);
}

#[test]
fn a_value_that_is_not_printable_ascii_is_skipped() {
    let mut map = HeaderMap::new();
    map.insert(
        "uberctx-latin1",
        HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    map.insert("uberctx-tab", HeaderValue::from_static("a\tb"));
    map.insert("uberctx-ok", HeaderValue::from_static("1"));
    let baggage = jaeger().extract(&map).baggage;
    assert_eq!(baggage.len(), 1);
    assert_eq!(baggage.get("ok"), Some("1"));
}

#[test]
fn uberctx_entries_share_the_baggage_limits() {
    // 200 small entries: the first 180 are kept.
    let mut map = HeaderMap::new();
    for i in 0..200 {
        map.insert(
            http::HeaderName::try_from(format!("uberctx-k{i}")).unwrap(),
            HeaderValue::from_static("v"),
        );
    }
    assert_eq!(jaeger().extract(&map).baggage.len(), MAX_BAGGAGE_MEMBERS);

    // More than 8,192 bytes in all: none is kept, and the trace context still is.
    let mut map = headers(&[("uber-trace-id", &format!("{TRACE}:{SPAN}:0:1"))]);
    let half = "v".repeat(MAX_BAGGAGE_BYTES / 2);
    map.insert("uberctx-a", HeaderValue::from_str(&half).unwrap());
    map.insert("uberctx-b", HeaderValue::from_str(&half).unwrap());
    let extracted = jaeger().extract(&map);
    assert!(extracted.baggage.is_empty());
    assert!(extracted.parent.is_some());

    // A hostile megabyte in one entry.
    let mut map = HeaderMap::new();
    map.insert("uberctx-ok", HeaderValue::from_static("1"));
    map.insert(
        "uberctx-big",
        HeaderValue::from_str(&"%41".repeat(350_000)).unwrap(),
    );
    assert!(jaeger().extract(&map).baggage.is_empty());

    // Exactly at the limit (`a=` + value) is kept.
    let at_limit = "v".repeat(MAX_BAGGAGE_BYTES - 2);
    let map = headers(&[("uberctx-a", &at_limit)]);
    assert_eq!(jaeger().extract(&map).baggage.len(), 1);
}

#[test]
fn baggage_from_both_formats_is_combined_and_the_later_one_wins_a_key() {
    let map = headers(&[
        ("baggage", "user=w3c,region=eu"),
        ("uberctx-user", "jaeger"),
        ("uberctx-tenant", "acme"),
    ]);
    let w3c_then_jaeger = Propagators::new([PropagatorKind::Baggage, PropagatorKind::Jaeger]);
    let otel = w3c_then_jaeger.extract(&map).baggage.to_baggage();
    assert_eq!(otel.get("user").map(|v| v.as_str()), Some("jaeger"));
    assert_eq!(otel.get("region").map(|v| v.as_str()), Some("eu"));
    assert_eq!(otel.get("tenant").map(|v| v.as_str()), Some("acme"));
    let jaeger_then_w3c = Propagators::new([PropagatorKind::Jaeger, PropagatorKind::Baggage]);
    let otel = jaeger_then_w3c.extract(&map).baggage.to_baggage();
    assert_eq!(otel.get("user").map(|v| v.as_str()), Some("w3c"));
    // Without `jaeger`, `uberctx-` is not read.
    let w3c = Propagators::W3C.extract(&map).baggage;
    assert_eq!(w3c.get("tenant"), None);
}

#[test]
fn inject_writes_lowercase_full_width_ids_parent_zero_and_the_sampled_flag() {
    for (flags, sampled) in [(TraceFlags::SAMPLED, "1"), (TraceFlags::default(), "0")] {
        let span = SpanContext::new(
            TraceId::from(0x4d_0000_0000_0000_0016_u128),
            SpanId::from(0x1_7c29_u64),
            flags,
            true,
            TraceState::NONE,
        );
        let cx = Context::new().with_remote_span_context(span);
        let mut out = HeaderMap::new();
        jaeger().inject(&cx, &mut out);
        assert_eq!(
            out["uber-trace-id"],
            format!("000000000000004d0000000000000016:0000000000017c29:0:{sampled}")
        );
        assert!(!out.contains_key("traceparent") && !out.contains_key("baggage"));
    }
    // No span: no `uber-trace-id`, baggage still written.
    let cx = Context::new().with_baggage([KeyValue::new("k", "v")]);
    let mut out = HeaderMap::new();
    jaeger().inject(&cx, &mut out);
    assert!(!out.contains_key("uber-trace-id"));
    assert_eq!(out["uberctx-k"], "v");
}

#[test]
fn inject_percent_encodes_baggage_values_and_skips_keys_that_are_not_tokens() {
    let mut baggage = Baggage::new();
    let _ = baggage.insert("user", "Amélie + Zoë/1");
    let _ = baggage.insert("plain", "a-b.c_d~e");
    let _ = baggage.insert_with_metadata("with-metadata", "x", "p=1");
    let _ = baggage.insert("not a token", "dropped");
    let headers = baggage_headers(&baggage);
    let map: HashMap<_, _> = headers.into_iter().collect();
    assert_eq!(map["uberctx-user"], "Am%C3%A9lie%20%2B%20Zo%C3%AB%2F1");
    assert_eq!(map["uberctx-plain"], "a-b.c_d~e");
    assert_eq!(map["uberctx-with-metadata"], "x");
    assert_eq!(map.len(), 3);
}

#[test]
fn inject_respects_the_baggage_limits() {
    // `opentelemetry`'s Baggage holds 8,192 bytes; encoded, three-byte characters triple.
    let mut baggage = Baggage::new();
    let wide = "é".repeat(1000); // 2,000 bytes, 6,000 encoded
    let _ = baggage.insert("a", wide.clone());
    let _ = baggage.insert("b", wide);
    let _ = baggage.insert("c", "1");
    let written = baggage_headers(&baggage);
    let size: usize = written
        .iter()
        .map(|(name, value)| name.len() - UBERCTX_PREFIX.len() + 1 + value.len())
        .sum::<usize>()
        + written.len()
        - 1;
    assert!(size <= MAX_BAGGAGE_BYTES, "{size}");
    // One of the wide entries is left out whole; the small one still fits.
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.iter().any(|(name, _)| name == "uberctx-c"));
}

#[test]
fn the_text_map_propagator_reads_and_writes_jaeger_and_lists_its_header() {
    let propagator = Propagators::new([PropagatorKind::TraceContext, PropagatorKind::Jaeger])
        .text_map_propagator();
    assert_eq!(
        propagator.fields().collect::<Vec<_>>(),
        ["traceparent", "tracestate", "uber-trace-id"]
    );
    let carrier = HashMap::from([
        (
            "uber-trace-id".to_owned(),
            format!("{TRACE}%3A{SPAN}%3A0%3A3"),
        ),
        ("uberctx-user".to_owned(), "alice".to_owned()),
    ]);
    let cx = propagator.extract(&carrier);
    assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE);
    assert!(cx.span().span_context().is_sampled());
    assert_eq!(cx.baggage().get("user").map(|v| v.as_str()), Some("alice"));
    let mut out = HashMap::new();
    propagator.inject_context(&cx, &mut out);
    assert_eq!(out["uber-trace-id"], format!("{TRACE}:{SPAN}:0:1"));
    assert_eq!(out["traceparent"], format!("00-{TRACE}-{SPAN}-01"));
    assert_eq!(out["uberctx-user"], "alice");
}

fn baggage_entry() -> impl Strategy<Value = (String, String)> {
    (
        "[a-z0-9_-]{1,12}",
        proptest::collection::vec(any::<char>(), 0..32).prop_map(String::from_iter),
    )
}

proptest! {
    /// Any bytes: no panic, and whatever is accepted has non-zero ids.
    #[test]
    fn parse_never_panics_on_any_bytes(value in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some(found) = parse(&value) {
            prop_assert!(found.trace_id != TraceId::INVALID && found.span_id != SpanId::INVALID);
            prop_assert!(value.len() <= MAX_UBER_TRACE_ID_BYTES);
        }
    }

    /// Values close to the grammar, where the interesting edges are.
    #[test]
    fn parse_never_panics_near_the_grammar(value in "[0-9a-fA-F:%3 +]{0,120}") {
        let _ = parse(value.as_bytes());
    }

    /// `uberctx-` entries of any key and bytes: no panic, limits kept.
    #[test]
    fn baggage_never_panics_and_stays_bounded(
        entries in proptest::collection::vec(
            (any::<String>(), proptest::collection::vec(any::<u8>(), 0..64)),
            0..300,
        )
    ) {
        let list = baggage_of(entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        prop_assert!(list.len() <= MAX_BAGGAGE_MEMBERS);
    }

    /// What inject writes, extract reads back: ids, sampled decision and baggage values.
    #[test]
    fn inject_then_extract_round_trips(
        trace in 1..=u128::MAX,
        span in 1..=u64::MAX,
        sampled in any::<bool>(),
        entries in proptest::collection::vec(baggage_entry(), 0..8),
    ) {
        let span_context = SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::default().with_sampled(sampled),
            true,
            TraceState::NONE,
        );
        let kvs: Vec<KeyValue> = entries.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
        let cx = Context::new().with_remote_span_context(span_context).with_baggage(kvs);
        let sent = cx.baggage();

        let mut map = HeaderMap::new();
        jaeger().inject(&cx, &mut map);
        let extracted = jaeger().extract(&map);
        let parent = extracted.parent.clone();
        prop_assert_eq!(parent.as_ref().map(|p| p.trace_id()), Some(TraceId::from(trace)));
        prop_assert_eq!(parent.as_ref().map(|p| p.span_id()), Some(SpanId::from(span)));
        prop_assert_eq!(extracted.is_sampled(), sampled);
        let received = extracted.baggage.to_baggage();
        prop_assert_eq!(received.len(), sent.len());
        for (key, (value, _)) in sent.iter() {
            prop_assert_eq!(received.get(key.as_str()), Some(value));
        }

        // The same through the text map propagator and a `HashMap` carrier.
        let propagator = jaeger().text_map_propagator();
        let mut carrier = HashMap::new();
        propagator.inject_context(&cx, &mut carrier);
        let back = propagator.extract(&carrier);
        prop_assert_eq!(back.span().span_context().trace_id(), TraceId::from(trace));
        prop_assert_eq!(back.span().span_context().is_sampled(), sampled);
        for (key, (value, _)) in sent.iter() {
            prop_assert_eq!(back.baggage().get(key.as_str()), Some(value));
        }
    }
}
