//! Property tests: whatever bytes arrive in `traceparent`, `tracestate` and `baggage` lines,
//! `extract` does not panic, what it accepts is written back by `inject` as headers that
//! `extract` reads identically, and an accepted `traceparent` also passes a separate,
//! deliberately differently written check of the grammar.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::collection::vec;
use proptest::prelude::*;
use stellaops_telemetry_tower::propagation::{
    BAGGAGE, Extracted, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, TRACEPARENT, TRACESTATE, extract,
};

/// Arbitrary bytes; the line is left out when `HeaderValue` refuses them (control characters).
fn raw_line() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..600)
}

/// Lines close to a traceparent, so that the interesting branches are reached.
fn near_traceparent() -> impl Strategy<Value = Vec<u8>> {
    (
        "[ \t]{0,2}",
        prop_oneof![6 => "00", 2 => "01|cc|fe", 1 => "ff|0A", 1 => "[0-9a-fA-F.]{1,3}"],
        prop_oneof![9 => Just("-"), 1 => Just("_")],
        prop_oneof![
            9 => "[0-9a-f]{32}",
            1 => "0{32}",
            1 => "[0-9a-fA-F+. ]{31,33}",
            1 => "0{31}[1-9a-f]"
        ],
        prop_oneof![9 => Just("-"), 1 => Just(" ")],
        prop_oneof![9 => "[0-9a-f]{16}", 1 => "0{16}", 1 => "[0-9a-fA-F+.]{15,17}"],
        "-",
        prop_oneof![9 => "[0-9a-f]{2}", 1 => "[0-9a-fA-F+.]{1,3}"],
        prop_oneof![6 => Just(String::new()), 2 => "-[ -~]{0,12}", 1 => "[.,][ -~]{0,12}"],
        "[ \t]{0,2}",
    )
        .prop_map(|(lead, v, d1, t, d2, p, d3, f, tail, trail)| {
            format!("{lead}{v}{d1}{t}{d2}{p}{d3}{f}{tail}{trail}").into_bytes()
        })
}

/// Lines close to a tracestate: members of valid and invalid characters, with OWS.
fn near_tracestate() -> impl Strategy<Value = Vec<u8>> {
    let member = || {
        prop_oneof![
            12 => "[a-z0-9][a-z0-9_*/@-]{0,8}=[!-+\\--<>-~][ -+\\--<>-~]{0,4}[!-+\\--<>-~]",
            2 => "[ \t]{0,2}",
            2 => "[a-z]{1,3}@[a-z]{0,15}=1",
            1 => "[a-zA-Z0-9@_*/. -]{0,6}=[ -~]{0,6}",
        ]
    };
    // Mostly a few members, sometimes around the 32-member limit.
    prop_oneof![4 => 0..6usize, 1 => 28..36usize]
        .prop_flat_map(move |n| (vec(member(), n), vec("[ \t]{0,1},[ \t]{0,1}", n)))
        .prop_map(|(members, separators)| join(&members, &separators).into_bytes())
}

/// Lines close to a baggage header: tokens, values with `%` escapes, properties, OWS.
fn near_baggage() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            "[a-zA-Z0-9!#$&'*+.^_`|~-]{1,6}[ \t]{0,1}=[ \t]{0,1}[a-zA-Z0-9%=/:]{0,8}",
            "[a-zA-Z0-9]{1,4}=(%[0-9a-fA-FxX]{0,2}){1,4}",
            "[a-z]{1,4}=[a-z]{0,4}(;[ \t]{0,1}[a-z]{0,3}(=[a-z%0-9]{0,3})?){0,3}",
            "[ -~]{0,10}",
        ],
        // Up to 3 lines of 70: past the 180-member limit sometimes. A member here is at most
        // 41 bytes once re-encoded (`%FF` becomes `%EF%BF%BD`), so 180 of them always fit in
        // 8,192 bytes again and the round trip is exact.
        0..70,
    )
    .prop_map(|members| members.join(",").into_bytes())
}

fn join(members: &[String], separators: &[String]) -> String {
    let mut out = String::new();
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            out.push_str(separators.get(i).map_or(",", String::as_str));
        }
        out.push_str(member);
    }
    out
}

/// One line, several lines, or raw bytes.
fn lines<S: Strategy<Value = Vec<u8>>>(one: impl Fn() -> S) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![vec(one(), 0..=1), vec(one(), 0..4), vec(raw_line(), 0..3),]
}

fn header_map(traceparent: &[Vec<u8>], tracestate: &[Vec<u8>], baggage: &[Vec<u8>]) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut add = |name: HeaderName, lines: &[Vec<u8>]| {
        for line in lines {
            if let Ok(value) = HeaderValue::from_bytes(line) {
                map.append(name.clone(), value);
            }
        }
    };
    add(TRACEPARENT, traceparent);
    add(TRACESTATE, tracestate);
    add(BAGGAGE, baggage);
    map
}

/// An independent reading of the traceparent grammar: split on dashes, compare lengths, parse
/// with the standard library. Returns (trace-id, parent-id, flags & 0x03).
fn reference_traceparent(line: &[u8]) -> Option<(u128, u64, u8)> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_matches([' ', '\t']);
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() < 4 {
        return None;
    }
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    let version = parts[0];
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.len() != 4) {
        return None;
    }
    if !hex(parts[1], 32) || !hex(parts[2], 16) || !hex(parts[3], 2) {
        return None;
    }
    let trace_id = u128::from_str_radix(parts[1], 16).ok()?;
    let parent_id = u64::from_str_radix(parts[2], 16).ok()?;
    let flags = u8::from_str_radix(parts[3], 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags & 0x03))
}

/// Counts the non-empty members of a tracestate or baggage value.
fn member_count(value: &str) -> usize {
    value
        .split(',')
        .filter(|m| !m.trim_matches([' ', '\t']).is_empty())
        .count()
}

fn check(
    traceparent: &[Vec<u8>],
    tracestate: &[Vec<u8>],
    baggage: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let incoming = header_map(traceparent, tracestate, baggage);
    let extracted: Extracted = extract(&incoming);

    // The traceparent agrees with the reference check, in both directions.
    let tp_lines: Vec<&HeaderValue> = incoming.get_all(TRACEPARENT).iter().collect();
    let reference = match tp_lines.as_slice() {
        [line] => reference_traceparent(line.as_bytes()),
        _ => None,
    };
    let got = extracted.parent.as_ref().map(|p| {
        (
            u128::from_be_bytes(p.trace_id().to_bytes()),
            u64::from_be_bytes(p.span_id().to_bytes()),
            p.trace_flags().to_u8(),
        )
    });
    prop_assert_eq!(got, reference, "traceparent lines {:?}", tp_lines);
    if let Some(parent) = &extracted.parent {
        prop_assert!(parent.is_remote());
        prop_assert!(member_count(&parent.trace_state().header()) <= 32);
    }

    prop_assert!(extracted.baggage.len() <= MAX_BAGGAGE_MEMBERS);

    // What inject writes is well formed and reads back identically.
    let mut outgoing = HeaderMap::new();
    extracted.inject(&mut outgoing);
    for (name, value) in &outgoing {
        prop_assert!(
            value.to_str().is_ok(),
            "{} is not visible ASCII: {:?}",
            name,
            value
        );
    }
    if let Some(tp) = outgoing.get(TRACEPARENT) {
        prop_assert_eq!(tp.len(), 55);
        prop_assert!(tp.as_bytes().starts_with(b"00-"));
        prop_assert!(reference_traceparent(tp.as_bytes()).is_some());
    }
    prop_assert_eq!(
        outgoing.get(TRACEPARENT).is_some(),
        extracted.parent.is_some()
    );
    if let Some(ts) = outgoing.get(TRACESTATE) {
        let ts = ts.to_str().unwrap_or_default();
        prop_assert!(!ts.is_empty() && member_count(ts) <= 32);
    }
    if let Some(b) = outgoing.get(BAGGAGE) {
        prop_assert!(b.len() <= MAX_BAGGAGE_BYTES);
        prop_assert!(member_count(b.to_str().unwrap_or_default()) <= MAX_BAGGAGE_MEMBERS);
    }
    prop_assert_eq!(
        outgoing.get(BAGGAGE).is_some(),
        !extracted.baggage.is_empty()
    );
    let again = extract(&outgoing);
    prop_assert_eq!(&again, &extracted, "sent {:?}", outgoing);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn raw_bytes_in_every_header(
        traceparent in vec(raw_line(), 0..3),
        tracestate in vec(raw_line(), 0..3),
        baggage in vec(raw_line(), 0..3),
    ) {
        check(&traceparent, &tracestate, &baggage)?;
    }

    #[test]
    fn near_misses_in_every_header(
        traceparent in lines(near_traceparent),
        tracestate in lines(near_tracestate),
        baggage in lines(near_baggage),
    ) {
        check(&traceparent, &tracestate, &baggage)?;
    }

    /// With a valid traceparent, the tracestate is what is being tested.
    #[test]
    fn tracestate_behind_a_valid_traceparent(
        tracestate in lines(near_tracestate),
        flags in any::<u8>(),
    ) {
        let traceparent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags:02x}");
        check(&[traceparent.into_bytes()], &tracestate, &[])?;
    }
}

/// Enough of the near-miss strategies reach acceptance to make the properties meaningful.
#[test]
fn the_near_miss_strategies_are_accepted_sometimes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut parents, mut states, mut baggages) = (0, 0, 0);
    for _ in 0..500 {
        let tp = near_traceparent()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        let ts = near_tracestate()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        let bg = near_baggage()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        let valid_tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec();
        parents += usize::from(extract(&header_map(&[tp], &[], &[])).parent.is_some());
        let with_state = extract(&header_map(&[valid_tp], &[ts], &[]));
        states += usize::from(
            with_state
                .parent
                .is_some_and(|p| !p.trace_state().header().is_empty()),
        );
        baggages += usize::from(!extract(&header_map(&[], &[], &[bg])).baggage.is_empty());
    }
    println!(
        "accepted of 500: {parents} traceparents, {states} tracestates, {baggages} baggage headers"
    );
    assert!(parents > 50, "{parents} traceparents accepted");
    assert!(states > 50, "{states} tracestates accepted");
    assert!(baggages > 50, "{baggages} baggage headers accepted");
}
