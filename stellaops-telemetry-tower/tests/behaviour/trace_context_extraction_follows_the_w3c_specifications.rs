//! A conformance table for `propagation::extract` and `propagation::inject`, from W3C Trace
//! Context Level 1 and 2, W3C Baggage, and the cases of the w3c/trace-context test suite.
//!
//! Each case gives the request header lines, what is extracted (trace-id, parent-id, sampled,
//! random, tracestate, baggage members) and what `Extracted::inject` writes back.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use stellaops_telemetry_tower::propagation::{Extracted, extract, inject};

const T: &str = "12345678901234567890123456789012";
const S: &str = "1234567890123456";

/// `00-T-S-<flags>`.
fn tp(flags: &str) -> String {
    format!("00-{T}-{S}-{flags}")
}

#[derive(Debug)]
struct Case {
    name: &'static str,
    lines: Vec<(String, Vec<u8>)>,
    /// trace-id, parent-id, sampled, random.
    parent: Option<(String, String, bool, bool)>,
    tracestate: String,
    baggage: Vec<(String, String, String)>,
    sends_traceparent: Option<String>,
    sends_tracestate: Option<String>,
    sends_baggage: Option<String>,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        lines: Vec::new(),
        parent: None,
        tracestate: String::new(),
        baggage: Vec::new(),
        sends_traceparent: None,
        sends_tracestate: None,
        sends_baggage: None,
    }
}

impl Case {
    fn line(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.lines.push((name.to_owned(), value.into()));
        self
    }
    fn traceparent(self, value: impl Into<Vec<u8>>) -> Self {
        self.line("traceparent", value)
    }
    fn tracestate_line(self, value: impl Into<Vec<u8>>) -> Self {
        self.line("tracestate", value)
    }
    fn baggage_line(self, value: impl Into<Vec<u8>>) -> Self {
        self.line("baggage", value)
    }
    /// Extracts a parent with this trace-id, parent-id, sampled and random flag.
    fn parent(mut self, trace_id: &str, parent_id: &str, sampled: bool, random: bool) -> Self {
        self.parent = Some((trace_id.to_owned(), parent_id.to_owned(), sampled, random));
        self
    }
    /// The usual parent `T`/`S`.
    fn parent_ts(self, sampled: bool, random: bool) -> Self {
        self.parent(T, S, sampled, random)
    }
    fn tracestate(mut self, state: impl Into<String>) -> Self {
        self.tracestate = state.into();
        self
    }
    fn member(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        properties: &str,
    ) -> Self {
        self.baggage
            .push((key.into(), value.into(), properties.to_owned()));
        self
    }
    /// What `inject` writes: `traceparent`, `tracestate`, `baggage` (`None`: no header).
    fn sends(
        mut self,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        baggage: Option<&str>,
    ) -> Self {
        self.sends_traceparent = traceparent.map(str::to_owned);
        self.sends_tracestate = tracestate.map(str::to_owned);
        self.sends_baggage = baggage.map(str::to_owned);
        self
    }
    fn sends_owned(
        mut self,
        traceparent: Option<String>,
        tracestate: Option<String>,
        baggage: Option<String>,
    ) -> Self {
        self.sends_traceparent = traceparent;
        self.sends_tracestate = tracestate;
        self.sends_baggage = baggage;
        self
    }
    /// No parent, no baggage, nothing sent.
    fn rejected(self) -> Self {
        self.sends(None, None, None)
    }
}

fn headers(lines: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            unreachable!("the table only holds valid header names and values: {name}");
        };
        map.append(name, value);
    }
    map
}

fn header(map: &HeaderMap, name: &str) -> Option<String> {
    let mut all = map.get_all(name).iter();
    let first = all
        .next()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    assert!(all.next().is_none(), "inject wrote `{name}` more than once");
    first
}

type Seen = (
    Option<(String, String, bool, bool)>,
    String,
    Vec<(String, String, String)>,
);

fn seen(extracted: &Extracted) -> Seen {
    let parent = extracted.parent.as_ref().map(|p| {
        assert!(p.is_remote());
        (
            format!("{:032x}", p.trace_id()),
            format!("{:016x}", p.span_id()),
            extracted.is_sampled(),
            extracted.is_random(),
        )
    });
    // The propagated value agrees with the parent on everything but the members
    // opentelemetry's TraceState cannot hold.
    assert_eq!(
        extracted.trace_context.is_some(),
        extracted.parent.is_some()
    );
    if let (Some(p), Some(t)) = (&extracted.parent, &extracted.trace_context) {
        assert_eq!(
            (p.trace_id(), p.span_id(), p.trace_flags()),
            (t.trace_id(), t.parent_id(), t.flags())
        );
        let held = p.trace_state().header();
        let members: Vec<&str> = t.tracestate().split(',').collect();
        assert!(
            held.is_empty() || held.split(',').all(|m| members.contains(&m)),
            "{held} within {}",
            t.tracestate()
        );
    }
    let tracestate = extracted
        .trace_context
        .as_ref()
        .map(|t| t.tracestate().to_owned())
        .unwrap_or_default();
    let baggage = extracted
        .baggage
        .iter()
        .map(|m| {
            (
                m.key().to_owned(),
                m.value().to_owned(),
                m.properties().to_owned(),
            )
        })
        .collect();
    (parent, tracestate, baggage)
}

fn check(case: &Case) {
    let extracted = extract(&headers(&case.lines));
    let (parent, tracestate, baggage) = seen(&extracted);
    assert_eq!(parent, case.parent, "{}: parent", case.name);
    assert_eq!(tracestate, case.tracestate, "{}: tracestate", case.name);
    assert_eq!(baggage, case.baggage, "{}: baggage", case.name);

    let mut out = HeaderMap::new();
    extracted.inject(&mut out);
    assert_eq!(
        header(&out, "traceparent"),
        case.sends_traceparent,
        "{}: sent traceparent",
        case.name
    );
    assert_eq!(
        header(&out, "tracestate"),
        case.sends_tracestate,
        "{}: sent tracestate",
        case.name
    );
    assert_eq!(
        header(&out, "baggage"),
        case.sends_baggage,
        "{}: sent baggage",
        case.name
    );
    assert_eq!(
        out.len(),
        out.keys_len(),
        "{}: one line per header",
        case.name
    );

    // What was sent reads back the same.
    assert_eq!(extract(&out), extracted, "{}: round trip", case.name);

    // Through an opentelemetry Context (what the layers do), the trace headers are the same.
    let cx = extracted.clone().into_context(&Context::new());
    assert_eq!(
        cx.span().span_context().is_valid(),
        extracted.parent.is_some(),
        "{}",
        case.name
    );
    let mut via_cx = HeaderMap::new();
    inject(&cx, &mut via_cx);
    assert_eq!(
        header(&via_cx, "traceparent"),
        case.sends_traceparent,
        "{}: via context",
        case.name
    );
    assert_eq!(
        header(&via_cx, "tracestate"),
        case.sends_tracestate,
        "{}: via context",
        case.name
    );
}

fn traceparent_cases() -> Vec<Case> {
    let sent = |flags: &str| Some(tp(flags));
    vec![
        // Level 1 §3.2 examples and flags.
        case("sampled")
            .traceparent(tp("01"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("not sampled")
            .traceparent(tp("00"))
            .parent_ts(false, false)
            .sends_owned(sent("00"), None, None),
        case("spec example")
            .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .parent(
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "00f067aa0ba902b7",
                true,
                false,
            )
            .sends(
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                None,
                None,
            ),
        // Level 2: the random trace-id flag is read and propagated.
        case("random")
            .traceparent(tp("02"))
            .parent_ts(false, true)
            .sends_owned(sent("02"), None, None),
        case("sampled and random")
            .traceparent(tp("03"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        // Other flags are ignored and zeroed when propagating.
        case("unknown flag 0x08")
            .traceparent(tp("09"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("all flags")
            .traceparent(tp("ff"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        case("only unknown flags")
            .traceparent(tp("fc"))
            .parent_ts(false, false)
            .sends_owned(sent("00"), None, None),
        // Lowercase hex only.
        case("uppercase trace-id")
            .traceparent(format!("00-{}-{S}-01", "ABCDEF78901234567890123456789012"))
            .rejected(),
        case("uppercase parent-id")
            .traceparent(format!("00-{T}-{}-01", "ABCDEF7890123456"))
            .rejected(),
        case("uppercase flags").traceparent(tp("0A")).rejected(),
        case("uppercase version")
            .traceparent(format!("0A-{T}-{S}-01"))
            .rejected(),
        case("plus sign in trace-id")
            .traceparent(format!("00-+{}-{S}-01", &T[1..]))
            .rejected(),
        case("plus sign in flags").traceparent(tp("+1")).rejected(),
        case("non-hex letter")
            .traceparent(format!("00-{}-{S}-01", "g2345678901234567890123456789012"))
            .rejected(),
        // Versions.
        case("version ff")
            .traceparent(format!("ff-{T}-{S}-01"))
            .rejected(),
        case("version 00 with a trailing dot")
            .traceparent(format!("{}.", tp("01")))
            .rejected(),
        case("version 00 with extra fields")
            .traceparent(format!("{}-what-the-future-will-be-like", tp("01")))
            .rejected(),
        case("version 00 with a trailing dash")
            .traceparent(format!("{}-", tp("01")))
            .rejected(),
        case("future version cc")
            .traceparent(format!("cc-{T}-{S}-01"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("future version cc with extra fields")
            .traceparent(format!("cc-{T}-{S}-01-what-the-future-will-be-like"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("future version with an empty extra field")
            .traceparent(format!("01-{T}-{S}-03-"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        case("future version, extra fields are not parsed")
            .traceparent(format!("fe-{T}-{S}-00-XYZ+!"))
            .parent_ts(false, false)
            .sends_owned(sent("00"), None, None),
        case("future version without a dash after the flags")
            .traceparent(format!("cc-{T}-{S}-01.what-the-future-will-be-like"))
            .rejected(),
        case("future version, flags too long")
            .traceparent(format!("cc-{T}-{S}-012"))
            .rejected(),
        case("future version, too short")
            .traceparent(format!("cc-{T}-{S}-1"))
            .rejected(),
        case("future version, zero trace-id")
            .traceparent(format!("cc-{}-{S}-01-x", "0".repeat(32)))
            .rejected(),
        case("version too long")
            .traceparent(format!("000-{T}-{S}-01"))
            .rejected(),
        case("version much too long")
            .traceparent(format!("0000-{T}-{S}-01"))
            .rejected(),
        case("version too short")
            .traceparent(format!("0-{T}-{S}-01"))
            .rejected(),
        case("version with a leading dot")
            .traceparent(format!(".0-{T}-{S}-01"))
            .rejected(),
        case("version with a trailing dot")
            .traceparent(format!("0.-{T}-{S}-01"))
            .rejected(),
        // Zero ids.
        case("all-zero trace-id")
            .traceparent(format!("00-{}-{S}-01", "0".repeat(32)))
            .rejected(),
        case("all-zero parent-id")
            .traceparent(format!("00-{T}-{}-01", "0".repeat(16)))
            .rejected(),
        case("trace-id 1 and parent-id 1")
            .traceparent(format!("00-{:032x}-{:016x}-01", 1, 1))
            .parent(&format!("{:032x}", 1), &format!("{:016x}", 1), true, false)
            .sends_owned(Some(format!("00-{:032x}-{:016x}-01", 1, 1)), None, None),
        // Field lengths and characters.
        case("trace-id with a leading dot")
            .traceparent(format!("00-.{}-{S}-01", &T[1..]))
            .rejected(),
        case("trace-id with a trailing dot")
            .traceparent(format!("00-{}.-{S}-01", &T[..31]))
            .rejected(),
        case("trace-id too long")
            .traceparent(format!("00-{T}3-{S}-01"))
            .rejected(),
        case("trace-id too short")
            .traceparent(format!("00-{}-{S}-01", &T[..31]))
            .rejected(),
        case("parent-id with a leading dot")
            .traceparent(format!("00-{T}-.{}-01", &S[1..]))
            .rejected(),
        case("parent-id with a trailing dot")
            .traceparent(format!("00-{T}-{}.-01", &S[..15]))
            .rejected(),
        case("parent-id too long")
            .traceparent(format!("00-{T}-{S}7-01"))
            .rejected(),
        case("parent-id too short")
            .traceparent(format!("00-{T}-{}-01", &S[..15]))
            .rejected(),
        case("flags with a leading dot")
            .traceparent(tp(".0"))
            .rejected(),
        case("flags with a trailing dot")
            .traceparent(tp("0."))
            .rejected(),
        case("flags too long").traceparent(tp("001")).rejected(),
        case("flags too short").traceparent(tp("1")).rejected(),
        case("underscore separators")
            .traceparent(format!("00_{T}_{S}_01"))
            .rejected(),
        case("space after a dash")
            .traceparent(format!("00- {}-{S}-01", &T[1..]))
            .rejected(),
        case("empty value").traceparent("").rejected(),
        case("only whitespace").traceparent(" \t ").rejected(),
        case("non-ASCII bytes")
            .traceparent(format!("00-{T}-{S}-0\u{e9}"))
            .rejected(),
        // Optional whitespace around the field value is not part of it.
        case("leading space")
            .traceparent(format!(" {}", tp("01")))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("leading tab")
            .traceparent(format!("\t{}", tp("01")))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("trailing space")
            .traceparent(format!("{} ", tp("01")))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("trailing tab")
            .traceparent(format!("{}\t", tp("01")))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("both")
            .traceparent(format!("\t {} \t", tp("01")))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        // Header names are case-insensitive; other spellings are other headers.
        case("name TRACEPARENT")
            .line("TRACEPARENT", tp("01"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("name TraceParent")
            .line("TraceParent", tp("01"))
            .parent_ts(true, false)
            .sends_owned(sent("01"), None, None),
        case("name trace-parent")
            .line("trace-parent", tp("01"))
            .rejected(),
        case("name trace.parent")
            .line("trace.parent", tp("01"))
            .rejected(),
        // Exactly one traceparent line.
        case("two traceparent lines")
            .traceparent(format!("00-{}1-{S}-01", &T[..31]))
            .traceparent(tp("01"))
            .tracestate_line("foo=1")
            .rejected(),
        case("the same traceparent twice")
            .traceparent(tp("01"))
            .traceparent(tp("01"))
            .rejected(),
        case("a valid and an invalid traceparent line")
            .traceparent(tp("01"))
            .traceparent("junk")
            .rejected(),
        case("two traceparents in one line")
            .traceparent(format!("{},{}", tp("01"), tp("01")))
            .rejected(),
        // tracestate is ignored without a valid traceparent.
        case("tracestate without traceparent")
            .tracestate_line("foo=1,bar=2")
            .rejected(),
        case("tracestate with an invalid traceparent")
            .traceparent(format!("ff-{T}-{S}-01"))
            .tracestate_line("foo=1")
            .rejected(),
        case("nothing").rejected(),
    ]
    .into_iter()
    .chain(level_2_traceparent_cases())
    .collect()
}

/// Level 2 flags, versions and ids beyond the cases above.
fn level_2_traceparent_cases() -> Vec<Case> {
    let sent = |flags: &str| Some(tp(flags));
    let max_trace = "f".repeat(32);
    let max_span = "f".repeat(16);
    vec![
        // Flags: only sampled (0x01) and random (0x02) are read and written.
        case("flag 0x04 alone")
            .traceparent(tp("04"))
            .parent_ts(false, false)
            .sends_owned(sent("00"), None, None),
        case("random with 0x04")
            .traceparent(tp("06"))
            .parent_ts(false, true)
            .sends_owned(sent("02"), None, None),
        case("sampled, random and 0x04")
            .traceparent(tp("07"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        case("flag 0x80 alone")
            .traceparent(tp("80"))
            .parent_ts(false, false)
            .sends_owned(sent("00"), None, None),
        case("random with 0x80")
            .traceparent(tp("82"))
            .parent_ts(false, true)
            .sends_owned(sent("02"), None, None),
        case("flags not hex").traceparent(tp("0g")).rejected(),
        case("flags with a sign").traceparent(tp("-1")).rejected(),
        // The random flag says nothing checkable about the trace-id: any non-zero one is kept.
        case("random flag, trace-id mostly zero")
            .traceparent(format!("00-{:032x}-{S}-02", 1))
            .parent(&format!("{:032x}", 1), S, false, true)
            .sends_owned(Some(format!("00-{:032x}-{S}-02", 1)), None, None),
        case("largest ids")
            .traceparent(format!("00-{max_trace}-{max_span}-03"))
            .parent(&max_trace, &max_span, true, true)
            .sends_owned(Some(format!("00-{max_trace}-{max_span}-03")), None, None),
        case("all-zero trace-id, random flag")
            .traceparent(format!("00-{}-{S}-02", "0".repeat(32)))
            .rejected(),
        case("all-zero parent-id, random flag")
            .traceparent(format!("00-{T}-{}-03", "0".repeat(16)))
            .rejected(),
        case("all-zero ids")
            .traceparent(format!("00-{}-{}-01", "0".repeat(32), "0".repeat(16)))
            .rejected(),
        // Future versions: the version 00 fields are read, what follows a dash is not.
        case("version 01, 55 characters")
            .traceparent(format!("01-{T}-{S}-02"))
            .parent_ts(false, true)
            .sends_owned(sent("02"), None, None),
        case("version fe, the highest valid one")
            .traceparent(format!("fe-{T}-{S}-03"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        case("future version, random flag and extra fields")
            .traceparent(format!(
                "02-{T}-{S}-02-{}-{}",
                "a".repeat(32),
                "b".repeat(16)
            ))
            .parent_ts(false, true)
            .sends_owned(sent("02"), None, None),
        case("future version, unknown flags and an extra field")
            .traceparent(format!("99-{T}-{S}-ff-01"))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
        case("future version, tracestate kept")
            .traceparent(format!("cc-{T}-{S}-01-x"))
            .tracestate_line("foo@@bar=1")
            .parent_ts(true, false)
            .tracestate("foo@@bar=1")
            .sends_owned(sent("01"), Some("foo@@bar=1".to_owned()), None),
        case("future version, uppercase trace-id")
            .traceparent(format!(
                "cc-{}-{S}-01-x",
                "ABCDEF78901234567890123456789012"
            ))
            .rejected(),
        case("future version, all-zero parent-id")
            .traceparent(format!("cc-{T}-{}-01-x", "0".repeat(16)))
            .rejected(),
        case("future version, flags not hex")
            .traceparent(format!("cc-{T}-{S}-0x-y"))
            .rejected(),
        case("future version, missing parent-id")
            .traceparent(format!("cc-{T}--01-what-the-future-will-be-like"))
            .rejected(),
        case("future version, a dot in place of a dash")
            .traceparent(format!("cc-{T}.{S}-01-x"))
            .rejected(),
        case("future version ff with extra fields")
            .traceparent(format!("ff-{T}-{S}-01-x"))
            .rejected(),
        case("future version with OWS around it")
            .traceparent(format!(" \tcc-{T}-{S}-03-x\t "))
            .parent_ts(true, true)
            .sends_owned(sent("03"), None, None),
    ]
}

/// A valid traceparent, then these tracestate lines; `state` is extracted and sent back.
fn with_state(name: &'static str, lines: &[&str], state: &str) -> Case {
    let mut c = case(name).traceparent(tp("00"));
    for line in lines {
        c = c.tracestate_line(*line);
    }
    let sent = (!state.is_empty()).then_some(state);
    c.parent_ts(false, false)
        .tracestate(state)
        .sends(Some(&tp("00")), sent, None)
}

fn members(range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("bar{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn tracestate_cases() -> Vec<Case> {
    let lcalpha: String = ('a'..='z').collect();
    let key = format!("{lcalpha}0123456789_-*/");
    let key_with_vendor = format!("{key}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x7e)
        .filter(|b| *b != b',' && *b != b'=')
        .map(char::from)
        .collect();
    let t256 = "z".repeat(256);
    let mut cases = level_2_tracestate_cases();
    cases.extend(vec![
        with_state("two members", &["foo=1,bar=2"], "foo=1,bar=2"),
        with_state(
            "spec example",
            &["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        ),
        // Header names are case-insensitive; other spellings are other headers.
        case("names TraceState and TRACESTATE")
            .traceparent(tp("00"))
            .line("TraceState", "foo=1")
            .line("TRACESTATE", "bar=2")
            .parent_ts(false, false)
            .tracestate("foo=1,bar=2")
            .sends(Some(&tp("00")), Some("foo=1,bar=2"), None),
        case("name trace-state")
            .traceparent(tp("00"))
            .line("trace-state", "foo=1")
            .parent_ts(false, false)
            .sends(Some(&tp("00")), None, None),
        with_state("empty header", &[""], ""),
        with_state("empty then member", &["", "foo=1"], "foo=1"),
        with_state("member then empty", &["foo=1", ""], "foo=1"),
        with_state(
            "lines are combined in order",
            &["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
            "foo=1,bar=2,rojo=1,congo=2,baz=3",
        ),
        with_state(
            "OWS around members",
            &["foo=1 \t , \t bar=2, \t baz=3"],
            "foo=1,bar=2,baz=3",
        ),
        with_state(
            "OWS with tabs",
            &["foo=1\t \t,\t \tbar=2,\t \tbaz=3"],
            "foo=1,bar=2,baz=3",
        ),
        with_state("leading space", &[" foo=1"], "foo=1"),
        with_state("trailing tab", &["foo=1\t"], "foo=1"),
        with_state("empty members", &[",,foo=1, ,\t,bar=2,"], "foo=1,bar=2"),
        with_state("only empty members", &[" , ,"], ""),
        with_state(
            "leading spaces belong to the value",
            &["foo=  1"],
            "foo=  1",
        ),
        with_state("inner spaces belong to the value", &["foo=a b"], "foo=a b"),
        with_state("trailing spaces are OWS", &["foo=1   "], "foo=1"),
        // 32 members at most; more makes the whole list invalid.
        with_state(
            "32 members over four lines",
            &[
                &members(1..=10),
                &members(11..=20),
                &members(21..=30),
                &members(31..=32),
            ],
            &members(1..=32),
        ),
        with_state(
            "33 members",
            &[
                &members(1..=10),
                &members(11..=20),
                &members(21..=30),
                &members(31..=33),
            ],
            "",
        ),
        with_state(
            "32 members and empty ones",
            &[&members(1..=32), ",, ,"],
            &members(1..=32),
        ),
        with_state(
            "33 members, one key twice",
            &[&members(1..=32), "bar01=x"],
            "",
        ),
        // Keys.
        with_state("space before =", &["foo =1"], ""),
        with_state("uppercase key", &["FOO=1"], ""),
        with_state("dot in key", &["foo.bar=1"], ""),
        with_state("key starting with @", &["@foo=1,bar=2"], ""),
        with_state("key starting with _", &["_foo=1,bar=2"], ""),
        with_state("key starting with a digit", &["1foo=1"], "1foo=1"),
        with_state("no = sign", &["foo,bar=2"], ""),
        with_state("empty key", &["=1,bar=2"], ""),
        with_state(
            "invalid member after valid lines",
            &["foo=1", "bar=2", "BAZ=3"],
            "",
        ),
        with_state(
            "key of 256 characters",
            &["foo=1", &format!("{t256}=1")],
            &format!("foo=1,{t256}=1"),
        ),
        with_state(
            "key of 257 characters",
            &["foo=1", &format!("z{t256}=1")],
            "",
        ),
        with_state(
            "all key and value characters",
            &[&format!("{key}={value}")],
            &format!("{key}={value}"),
        ),
        // Multi-tenant keys (Level 1 `tenant@system`; Level 2 allows `@` after the first character).
        with_state(
            "tenant@vendor",
            &["tenant@vendor=1,bar=2"],
            "tenant@vendor=1,bar=2",
        ),
        with_state(
            "spec tenant example",
            &["fw529a3039@dt=1"],
            "fw529a3039@dt=1",
        ),
        with_state(
            "tenant starting with a digit",
            &["1tenant@vendor=1"],
            "1tenant@vendor=1",
        ),
        with_state(
            "all characters with a vendor",
            &[&format!("{key_with_vendor}={value}")],
            &format!("{key_with_vendor}={value}"),
        ),
        with_state(
            "241-character tenant, 13-character vendor",
            &[&format!("{}@{}=1", "t".repeat(241), "v".repeat(13))],
            &format!("{}@{}=1", "t".repeat(241), "v".repeat(13)),
        ),
        with_state(
            "242-character tenant",
            &["foo=1", &format!("{}@v=1", "t".repeat(242))],
            &format!("foo=1,{}@v=1", "t".repeat(242)),
        ),
        with_state(
            "key ending with @ (Level 2)",
            &["foo@=1,bar=2"],
            "foo@=1,bar=2",
        ),
        // Valid Level 2 keys that opentelemetry's TraceState cannot hold are propagated too.
        with_state("two @ signs", &["foo@@bar=1,bar=2"], "foo@@bar=1,bar=2"),
        with_state(
            "three parts",
            &["foo@bar@baz=1,bar=2"],
            "foo@bar@baz=1,bar=2",
        ),
        with_state(
            "14-character vendor",
            &["foo=1", &format!("t@{}=1", "v".repeat(14))],
            &format!("foo=1,t@{}=1", "v".repeat(14)),
        ),
        with_state(
            "15-character vendor",
            &["foo=1", &format!("t@{}=1", "v".repeat(15))],
            &format!("foo=1,t@{}=1", "v".repeat(15)),
        ),
        // Values.
        with_state("= in value", &["foo=bar=baz"], ""),
        with_state("empty value", &["foo=,bar=3"], ""),
        with_state("only spaces in value", &["foo=   ,bar=3"], ""),
        with_state("tab in value", &["foo=a\tb"], ""),
        with_state("non-ASCII value", &["foo=\u{e9}"], ""),
        with_state(
            "value of 256 characters",
            &[&format!("foo={}", "v".repeat(256))],
            &format!("foo={}", "v".repeat(256)),
        ),
        with_state(
            "value of 257 characters",
            &[&format!("foo={}", "v".repeat(257))],
            "",
        ),
        // Repeated keys: the first is kept.
        with_state("same member twice", &["foo=1,foo=1"], "foo=1"),
        with_state("key twice", &["foo=1,foo=2"], "foo=1"),
        with_state("key twice over two lines", &["foo=1", "foo=2"], "foo=1"),
        with_state(
            "key twice among others",
            &["foo=1,bar=2,foo=3,baz=4"],
            "foo=1,bar=2,baz=4",
        ),
    ]);
    cases
}

/// Level 2 key grammar (`@` anywhere after the first character, one 256-character limit for
/// the whole key), values, OWS, empty members, duplicates and lines, for keys
/// opentelemetry's TraceState can and cannot hold alike.
fn level_2_tracestate_cases() -> Vec<Case> {
    let t = |n: usize| "t".repeat(n);
    let v = |n: usize| "v".repeat(n);
    let level_2 = |range: std::ops::RangeInclusive<usize>| {
        range
            .map(|i| format!("k{i:02}@@x={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        // Multi-tenant keys at the limits: the whole key is at most 256 characters.
        with_state(
            "241-character tenant, 4-character system",
            &[&format!("{}@{}=1", t(241), v(4))],
            &format!("{}@{}=1", t(241), v(4)),
        ),
        with_state(
            "241-character tenant, 14-character system: 256 characters",
            &[&format!("{}@{}=1,foo=2", t(241), v(14))],
            &format!("{}@{}=1,foo=2", t(241), v(14)),
        ),
        with_state(
            "241-character tenant, 15-character system: 257 characters",
            &[&format!("{}@{}=1,foo=2", t(241), v(15))],
            "",
        ),
        with_state(
            "251-character tenant, 4-character system: 256 characters",
            &[&format!("{}@{}=1", t(251), v(4))],
            &format!("{}@{}=1", t(251), v(4)),
        ),
        with_state(
            "252-character tenant, 4-character system: 257 characters",
            &[&format!("foo=1,{}@{}=1", t(252), v(4))],
            "",
        ),
        with_state(
            "1-character tenant, 254-character system",
            &[&format!("t@{}=1", v(254))],
            &format!("t@{}=1", v(254)),
        ),
        with_state(
            "255-character tenant and a final @",
            &[&format!("{}@=1", t(255))],
            &format!("{}@=1", t(255)),
        ),
        with_state("a@ (Level 2)", &["a@=1"], "a@=1"),
        with_state("a@@ (Level 2)", &["a@@=1"], "a@@=1"),
        with_state("only @ after the first", &["a@@@@=1"], "a@@@@=1"),
        with_state("system starting with -", &["t@-x=1"], "t@-x=1"),
        with_state("system starting with *", &["t@*x=1"], "t@*x=1"),
        with_state("system with / and _", &["t@a/b_c=1"], "t@a/b_c=1"),
        with_state("uppercase system", &["t@V=1,foo=2"], ""),
        with_state("dot in system", &["t@v.x=1,foo=2"], ""),
        with_state("space before @", &["t @v=1"], ""),
        with_state("space after @", &["t@ v=1"], ""),
        // Values.
        with_state("one-character value", &["foo=!"], "foo=!"),
        with_state("value ending in ~", &["foo=a~"], "foo=a~"),
        with_state(
            "value with a space, @ and /",
            &["foo=a b@c/d"],
            "foo=a b@c/d",
        ),
        with_state(
            "256-character value starting with a space",
            &[&format!("foo= {}", v(255))],
            &format!("foo= {}", v(255)),
        ),
        with_state(
            "257-character value starting with a space",
            &[&format!("foo= {}", v(256))],
            "",
        ),
        with_state(
            "256-character value with OWS after it",
            &[&format!("foo={} \t", v(256))],
            &format!("foo={}", v(256)),
        ),
        with_state("comma splits a value", &["foo=a,b"], ""),
        with_state("tab inside a value", &["foo=a\tb,bar=1"], ""),
        with_state("value of only a tab", &["foo=\t"], ""),
        with_state(
            "Level 2 keys with OWS",
            &[" \tfoo@@bar=1 \t,\t t@-x=2 "],
            "foo@@bar=1,t@-x=2",
        ),
        // Empty members and lines.
        with_state(
            "empty members around Level 2 keys",
            &[",foo@@bar=1,,", " , t@-x=2 ,"],
            "foo@@bar=1,t@-x=2",
        ),
        with_state(
            "only OWS in a line",
            &["foo=1", " \t ", "bar=2"],
            "foo=1,bar=2",
        ),
        // Duplicates, also of keys opentelemetry cannot hold.
        with_state(
            "Level 2 key twice",
            &["foo@@bar=1,foo@@bar=2"],
            "foo@@bar=1",
        ),
        with_state(
            "Level 2 key twice over lines",
            &["foo@@bar=1,a=2", "b=3,foo@@bar=4"],
            "foo@@bar=1,a=2,b=3",
        ),
        with_state(
            "duplicates keep the first position",
            &["b=1,foo@@bar=2,a=3,b=4"],
            "b=1,foo@@bar=2,a=3",
        ),
        // The 32-member limit counts every member.
        with_state(
            "32 Level 2 members",
            &[&level_2(1..=16), &level_2(17..=32)],
            &level_2(1..=32),
        ),
        with_state(
            "33 Level 2 members",
            &[&level_2(1..=16), &level_2(17..=33)],
            "",
        ),
        with_state(
            "32 members, duplicates counted",
            &[&level_2(1..=31), "k01@@x=99"],
            &level_2(1..=31),
        ),
        with_state(
            "an invalid member in the last line drops the list",
            &[&level_2(1..=3), "k04@@X=1"],
            "",
        ),
    ]
}

fn baggage_case(name: &'static str, lines: &[&str]) -> Case {
    let mut c = case(name);
    for line in lines {
        c = c.baggage_line(*line);
    }
    c
}

fn baggage_cases() -> Vec<Case> {
    let value_4095 = "v".repeat(4095);
    let value_8190 = "v".repeat(8190);
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}={i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut c180 = baggage_case("180 members", &[&many(180)]);
    for i in 0..180 {
        c180 = c180.member(format!("k{i}"), i.to_string(), "");
    }
    let c180 = c180.sends(None, None, Some(&many(180)));
    let mut c181 = baggage_case("181 members: the last one is dropped", &[&many(181)]);
    for i in 0..180 {
        c181 = c181.member(format!("k{i}"), i.to_string(), "");
    }
    let c181 = c181.sends(None, None, Some(&many(180)));
    let with_invalid = format!("{},bad key=1", many(180));
    let mut c180_invalid =
        baggage_case("invalid members don't count", &["bad key=0", &with_invalid]);
    for i in 0..180 {
        c180_invalid = c180_invalid.member(format!("k{i}"), i.to_string(), "");
    }
    let c180_invalid = c180_invalid.sends(None, None, Some(&many(180)));

    vec![
        // W3C Baggage examples.
        baggage_case("spec example", &["userId=alice,serverNode=DF%2028,isProduction=false"])
            .member("userId", "alice", "")
            .member("serverNode", "DF 28", "")
            .member("isProduction", "false", "")
            .sends(None, None, Some("userId=alice,serverNode=DF%2028,isProduction=false")),
        baggage_case("UTF-8 value", &["userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"])
            .member("userId", "Amélie", "")
            .member("serverNode", "DF 28", "")
            .member("isProduction", "false", "")
            .sends(None, None, Some("userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false")),
        baggage_case("two lines", &["userId=alice", "serverNode=DF%2028,isProduction=false"])
            .member("userId", "alice", "")
            .member("serverNode", "DF 28", "")
            .member("isProduction", "false", "")
            .sends(None, None, Some("userId=alice,serverNode=DF%2028,isProduction=false")),
        baggage_case("OWS around keys and values", &["userId =   alice", "serverNode = DF%2028, isProduction = false"])
            .member("userId", "alice", "")
            .member("serverNode", "DF 28", "")
            .member("isProduction", "false", "")
            .sends(None, None, Some("userId=alice,serverNode=DF%2028,isProduction=false")),
        baggage_case(
            "properties",
            &["key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"],
        )
        .member("key1", "value1", "property1;property2")
        .member("key2", "value2", "")
        .member("key3", "value3", "propertyKey=propertyValue")
        .sends(
            None,
            None,
            Some("key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue"),
        ),
        baggage_case("property with OWS and an empty value", &["k=v ; p = ;q"])
            .member("k", "v", "p=;q")
            .sends(None, None, Some("k=v;p=;q")),
        baggage_case("property values keep their encoding", &["k=v;p=a%20b"])
            .member("k", "v", "p=a%20b")
            .sends(None, None, Some("k=v;p=a%20b")),
        // Values.
        baggage_case("= in value", &["k=a=b"]).member("k", "a=b", "").sends(None, None, Some("k=a=b")),
        baggage_case("empty value", &["k="]).member("k", "", "").sends(None, None, Some("k=")),
        baggage_case("encoded percent", &["k=100%25"]).member("k", "100%", "").sends(None, None, Some("k=100%25")),
        baggage_case("lone percent", &["k=100%"]).member("k", "100%", "").sends(None, None, Some("k=100%25")),
        baggage_case("percent without hex", &["k=%zz"]).member("k", "%zz", "").sends(None, None, Some("k=%25zz")),
        baggage_case("lowercase hex", &["k=%c3%a9"]).member("k", "é", "").sends(None, None, Some("k=%C3%A9")),
        baggage_case("not UTF-8", &["k=%FF"]).member("k", "\u{fffd}", "").sends(None, None, Some("k=%EF%BF%BD")),
        baggage_case("encoded octet that needs no encoding", &["k=%41"]).member("k", "A", "").sends(None, None, Some("k=A")),
        baggage_case("encoded comma and semicolon", &["k=a%2Cb%3Bc"])
            .member("k", "a,b;c", "")
            .sends(None, None, Some("k=a%2Cb%3Bc")),
        // Keys.
        baggage_case("every tchar", &["!#$%&'*+-.^_`|~09azAZ=v"])
            .member("!#$%&'*+-.^_`|~09azAZ", "v", "")
            .sends(None, None, Some("!#$%&'*+-.^_`|~09azAZ=v")),
        // Invalid members are skipped, the rest kept.
        baggage_case("space in key", &["a=1,b c=2,d=3"])
            .member("a", "1", "")
            .member("d", "3", "")
            .sends(None, None, Some("a=1,d=3")),
        baggage_case("no key, no =", &["a=1,=2,c,d=4"])
            .member("a", "1", "")
            .member("d", "4", "")
            .sends(None, None, Some("a=1,d=4")),
        baggage_case("quote in value", &["a=1,b=x\"y"]).member("a", "1", "").sends(None, None, Some("a=1")),
        baggage_case("backslash in value", &["a=1,b=x\\y"]).member("a", "1", "").sends(None, None, Some("a=1")),
        baggage_case("space in value", &["a=1,b=x y"]).member("a", "1", "").sends(None, None, Some("a=1")),
        baggage_case("non-ASCII value", &["a=1,b=\u{e9}"]).member("a", "1", "").sends(None, None, Some("a=1")),
        baggage_case("empty property", &["a=1,b=1;"]).member("a", "1", "").sends(None, None, Some("a=1")),
        baggage_case("empty property between", &["a=1;;p"]).rejected(),
        baggage_case("invalid property key", &["a=1;p q"]).rejected(),
        baggage_case("empty members", &[",a=1,, ,b=2,"])
            .member("a", "1", "")
            .member("b", "2", "")
            .sends(None, None, Some("a=1,b=2")),
        baggage_case("empty header", &[""]).rejected(),
        // Repeated keys are kept, in order.
        baggage_case("key twice", &["k=1,k=2"])
            .member("k", "1", "")
            .member("k", "2", "")
            .sends(None, None, Some("k=1,k=2")),
        // Limits: 180 members, 8,192 bytes for all lines together.
        c180,
        c181,
        c180_invalid,
        baggage_case("8,192 bytes", &[&format!("k={value_8190}")])
            .member("k", value_8190.clone(), "")
            .sends_owned(None, None, Some(format!("k={value_8190}"))),
        baggage_case("8,193 bytes", &[&format!("k={value_8190}v")]).rejected(),
        // "a=" + 4,095 + "," + "b=" + 4,092 = 8,192.
        baggage_case("8,192 bytes over two lines", &[&format!("a={value_4095}"), &format!("b={}", &value_4095[3..])])
            .member("a", value_4095.clone(), "")
            .member("b", value_4095[3..].to_owned(), "")
            .sends_owned(None, None, Some(format!("a={value_4095},b={}", &value_4095[3..]))),
        baggage_case("8,193 bytes over two lines", &[&format!("a={value_4095}"), &format!("b={}", &value_4095[2..])]).rejected(),
        // All three headers.
        case("everything")
            .traceparent(tp("03"))
            .tracestate_line("congo=t61rcWkgMzE")
            .baggage_line("userId=alice")
            .parent_ts(true, true)
            .tracestate("congo=t61rcWkgMzE")
            .member("userId", "alice", "")
            .sends_owned(Some(tp("03")), Some("congo=t61rcWkgMzE".to_owned()), Some("userId=alice".to_owned())),
        case("baggage is read without a traceparent")
            .traceparent("junk")
            .tracestate_line("congo=1")
            .baggage_line("userId=alice")
            .member("userId", "alice", "")
            .sends(None, None, Some("userId=alice")),
    ]
}

#[test]
fn traceparent_cases_follow_the_specifications() {
    let cases = traceparent_cases();
    assert!(cases.len() > 60);
    cases.iter().for_each(check);
}

#[test]
fn tracestate_cases_follow_the_specifications() {
    let cases = tracestate_cases();
    assert!(cases.len() > 50);
    cases.iter().for_each(check);
}

#[test]
fn baggage_cases_follow_the_specification() {
    let cases = baggage_cases();
    assert!(cases.len() > 35);
    cases.iter().for_each(check);
}

#[test]
fn a_stale_tracestate_is_replaced_or_removed_on_inject() {
    let incoming = headers(&[("traceparent".to_owned(), tp("01").into_bytes())]);
    let mut outgoing = headers(&[
        ("tracestate".to_owned(), b"stale=1".to_vec()),
        (
            "traceparent".to_owned(),
            format!("00-{T}-{}-00", "f".repeat(16)).into_bytes(),
        ),
    ]);
    extract(&incoming).inject(&mut outgoing);
    assert_eq!(header(&outgoing, "traceparent"), Some(tp("01")));
    assert_eq!(header(&outgoing, "tracestate"), None);
}

/// w3c/trace-context `test_propagates_random_flag` and `test_traceparent_included_tracestate_missing`:
/// a child span keeps the trace-id, the random flag and the tracestate; a sampled child sends
/// its own id as the parent-id, a dropped one the id received.
#[test]
fn a_child_span_keeps_the_trace_id_the_random_flag_and_the_tracestate() {
    use opentelemetry::trace::{Tracer, TracerProvider};

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("w3c");
    for flags in ["00", "01", "02", "03"] {
        let incoming = headers(&[
            ("traceparent".to_owned(), tp(flags).into_bytes()),
            ("tracestate".to_owned(), b"congo=t61rcWkgMzE".to_vec()),
        ]);
        let parent = extract(&incoming).into_context(&Context::new());
        let span = tracer.start_with_context("child", &parent);
        let cx = parent.with_span(span);
        let mut outgoing = HeaderMap::new();
        inject(&cx, &mut outgoing);

        let sent = extract(&outgoing);
        let child = sent.parent.as_ref().expect("a traceparent is sent");
        assert_eq!(format!("{:032x}", child.trace_id()), T);
        let sampled = flags.ends_with('1') || flags.ends_with('3');
        assert_eq!(sent.is_sampled(), sampled, "flags {flags}");
        assert_eq!(format!("{:016x}", child.span_id()) == S, !sampled);
        // `opentelemetry_sdk` 0.33 gives a span its sampler drops `TraceFlags::default()`;
        // the random flag still leaves, from the propagated trace context.
        let random = flags.ends_with('2') || flags.ends_with('3');
        assert_eq!(sent.is_random(), random, "flags {flags}");
        assert_eq!(
            header(&outgoing, "tracestate").as_deref(),
            Some("congo=t61rcWkgMzE")
        );
    }
}

/// A sampler that changes the `TraceState` it was given: the members it adds or updates go
/// first, the ones it deletes are left out, the rest (those opentelemetry cannot hold too)
/// stay in their order.
#[test]
fn members_the_sdk_adds_updates_or_deletes_follow_the_mutation_rules() {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags};

    let incoming = headers(&[
        ("traceparent".to_owned(), tp("03").into_bytes()),
        (
            "tracestate".to_owned(),
            b"rojo=1,foo@@bar=2,congo=3,gone=4".to_vec(),
        ),
    ]);
    let extracted = extract(&incoming);
    let received = extracted.trace_context.clone().expect("valid");
    let before = extracted
        .parent
        .as_ref()
        .expect("valid")
        .trace_state()
        .clone();
    let after = before
        .insert("congo", "9")
        .and_then(|s| s.insert("ot", "th:8"))
        .and_then(|s| s.delete("gone"))
        .expect("valid members");
    let span = SpanContext::new(
        received.trace_id(),
        SpanId::from(0x42u64),
        TraceFlags::SAMPLED,
        false,
        after,
    );
    let sent = received.continued_by(&span);
    assert_eq!(sent.tracestate(), "ot=th:8,congo=9,rojo=1,foo@@bar=2");
    assert_eq!(sent.traceparent(), format!("00-{T}-0000000000000042-03"));

    // Unchanged: the list as received, byte for byte.
    let same = SpanContext::new(
        received.trace_id(),
        SpanId::from(0x43u64),
        TraceFlags::default(),
        false,
        before,
    );
    let sent = received.continued_by(&same);
    assert_eq!(sent.tracestate(), "rojo=1,foo@@bar=2,congo=3,gone=4");
    assert_eq!(sent.traceparent(), tp("02"));
}

/// A span of another trace in the context sends its own trace context, not the received one.
#[test]
fn a_span_of_another_trace_sends_its_own_context() {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    let incoming = headers(&[
        ("traceparent".to_owned(), tp("03").into_bytes()),
        ("tracestate".to_owned(), b"foo@@bar=1".to_vec()),
    ]);
    let cx = extract(&incoming).into_context(&Context::new());
    let other = SpanContext::new(
        TraceId::from(7u128),
        SpanId::from(8u64),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let mut out = HeaderMap::new();
    inject(&cx.with_remote_span_context(other), &mut out);
    assert_eq!(
        header(&out, "traceparent"),
        Some(format!("00-{:032x}-{:016x}-01", 7, 8))
    );
    assert_eq!(header(&out, "tracestate"), None);
}
