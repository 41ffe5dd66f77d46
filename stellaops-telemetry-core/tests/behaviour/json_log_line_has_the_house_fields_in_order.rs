//! Field by field: the house JSON line and its order.
#![allow(clippy::unwrap_used)]

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};
use stellaops_telemetry_core::{JsonLogLayer, LogCapture, RetentionPolicy};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;

/// A JSON object's members in the order they were written.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Ordered(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn keys(line: &str) -> Vec<String> {
    let Ordered(members) = serde_json::from_str(line).unwrap();
    members.into_iter().map(|(k, _)| k).collect()
}

fn capture_with(layer: JsonLogLayer, f: impl FnOnce()) -> LogCapture {
    let capture = LogCapture::new();
    let subscriber = tracing_subscriber::registry().with(layer.output(capture.output()));
    tracing::subscriber::with_default(subscriber, f);
    capture
}

fn capture(f: impl FnOnce()) -> LogCapture {
    capture_with(JsonLogLayer::new("scanner").service_version("1.4.2"), f)
}

#[test]
fn members_come_in_the_house_order() {
    let capture = capture(|| {
        let request = tracing::info_span!("request", tenant.id = "acme", correlation_id = "req-7");
        let _request = request.enter();
        let scan = tracing::info_span!("scan");
        let _scan = scan.enter();
        tracing::info!(
            scan_id = "s-123",
            findings = 17u64,
            cached = true,
            "scan finished"
        );
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        keys(&lines[0]),
        [
            "timestamp",
            "level",
            "message",
            "service",
            "version",
            "tenant",
            "correlationId",
            "target",
            "scan_id",
            "findings",
            "cached",
            "retention"
        ]
    );
    let line = &capture.json()[0];
    assert_eq!(line["level"], "info");
    assert_eq!(line["message"], "scan finished");
    assert_eq!(line["service"], "scanner");
    assert_eq!(line["version"], "1.4.2");
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["correlationId"], "req-7");
    assert_eq!(line["target"], module_path!());
    assert_eq!(line["retention"], "30d");
}

#[test]
fn the_message_comes_first_even_when_written_last() {
    let capture = capture(|| {
        tracing::event!(tracing::Level::INFO, a = 1, message = "late");
        tracing::info!(a = 2);
    });
    let lines = capture.lines();
    assert_eq!(
        keys(&lines[0]),
        [
            "timestamp",
            "level",
            "message",
            "service",
            "version",
            "target",
            "a",
            "retention"
        ]
    );
    assert_eq!(capture.json()[0]["message"], "late");
    assert_eq!(capture.json()[1]["message"], "");
}

#[test]
fn the_timestamp_is_rfc3339_utc_with_three_fractional_digits() {
    let capture = capture(|| tracing::info!("tick"));
    let json = capture.json();
    let ts = json[0]["timestamp"].as_str().unwrap().as_bytes();
    assert_eq!(ts.len(), 24, "{}", String::from_utf8_lossy(ts));
    for (i, &b) in ts.iter().enumerate() {
        let expected = match i {
            4 | 7 => Some(b'-'),
            10 => Some(b'T'),
            13 | 16 => Some(b':'),
            19 => Some(b'.'),
            23 => Some(b'Z'),
            _ => None,
        };
        match expected {
            Some(c) => assert_eq!(b, c, "position {i}"),
            None => assert!(b.is_ascii_digit(), "position {i}"),
        }
    }
    let num =
        |r: std::ops::Range<usize>| std::str::from_utf8(&ts[r]).unwrap().parse::<u32>().unwrap();
    assert!(num(0..4) >= 2025);
    assert!((1..=12).contains(&num(5..7)));
    assert!((1..=31).contains(&num(8..10)));
    assert!(num(11..13) < 24 && num(14..16) < 60 && num(17..19) < 60);
}

#[test]
fn levels_are_lowercase_and_set_the_retention_class() {
    let emit = || {
        tracing::error!("e");
        tracing::warn!("w");
        tracing::info!("i");
        tracing::debug!("d");
        tracing::trace!("t");
    };
    let levels = |c: &LogCapture| -> Vec<(String, String)> {
        c.json()
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap().to_owned(),
                    l["retention"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };

    assert_eq!(
        levels(&capture(emit)),
        pairs(&[
            ("error", "180d"),
            ("warn", "90d"),
            ("info", "30d"),
            ("debug", "7d"),
            ("trace", "7d")
        ])
    );
    let forensic = JsonLogLayer::new("scanner").retention(RetentionPolicy::with_floor(180));
    assert_eq!(
        levels(&capture_with(forensic, emit)),
        pairs(&[
            ("error", "180d"),
            ("warn", "180d"),
            ("info", "180d"),
            ("debug", "180d"),
            ("trace", "180d")
        ])
    );
    let sixty = JsonLogLayer::new("scanner").retention(RetentionPolicy::with_floor(60));
    assert_eq!(
        levels(&capture_with(sixty, emit)),
        pairs(&[
            ("error", "180d"),
            ("warn", "90d"),
            ("info", "60d"),
            ("debug", "60d"),
            ("trace", "60d")
        ])
    );
}

#[test]
fn event_fields_keep_their_json_types() {
    #[derive(Debug)]
    struct Digest {
        #[allow(dead_code)]
        algo: &'static str,
    }
    let capture = capture(|| {
        let err = std::io::Error::other("disk full");
        tracing::info!(
            count = 17u64,
            delta = -4i64,
            big = u128::MAX,
            ratio = 0.25f64,
            cached = false,
            image = "registry.example/app:1.2",
            digest = ?Digest { algo: "sha256" },
            shown = %"display me",
            error = &err as &(dyn std::error::Error + 'static),
            "typed"
        );
    });
    let line = &capture.json()[0];
    assert_eq!(line["count"], json!(17));
    assert_eq!(line["delta"], json!(-4));
    assert_eq!(line["ratio"], json!(0.25));
    assert_eq!(line["cached"], json!(false));
    assert_eq!(line["image"], json!("registry.example/app:1.2"));
    assert_eq!(line["digest"], json!("Digest { algo: \"sha256\" }"));
    assert_eq!(line["shown"], json!("display me"));
    assert_eq!(line["error"], json!("disk full"));
    let raw = &capture.lines()[0];
    assert!(
        raw.contains(r#""big":340282366920938463463374607431768211455"#),
        "{raw}"
    );
}

#[test]
fn strings_are_escaped_per_json() {
    let tricky = "say \"hi\"\\ then\nnew line\ttab \u{1}\u{1f} é ünïcödé 😀 \u{2028}";
    let capture = capture(|| {
        tracing::info!(field = tricky, "{tricky}");
        let span = tracing::info_span!("s", tenant = tricky);
        let _s = span.enter();
        tracing::info!("in span");
    });
    let lines = capture.lines();
    for line in &lines {
        assert!(!line.contains('\n') && !line.contains('\u{1}'), "{line}");
    }
    assert!(
        lines[0].contains(r#"\"hi\"\\ then\nnew line\ttab \u0001\u001f é"#),
        "{}",
        lines[0]
    );
    let json = capture.json();
    assert_eq!(json[0]["message"], tricky);
    assert_eq!(json[0]["field"], tricky);
    assert_eq!(json[1]["tenant"], tricky);
}

#[test]
fn tenant_and_correlation_id_come_from_the_nearest_span_that_has_them() {
    let capture = capture(|| {
        let outer = tracing::info_span!("outer", tenant = "outer-tenant", request.id = "r-1");
        let _outer = outer.enter();
        let middle =
            tracing::info_span!("middle", tenant.id = "middle-tenant", correlationId = Empty);
        let _middle = middle.enter();
        let inner = tracing::info_span!("inner");
        let _inner = inner.enter();
        tracing::info!("before record");
        middle.record("correlationId", "c-2");
        tracing::info!("after record");
    });
    let json = capture.json();
    assert_eq!(json[0]["tenant"], "middle-tenant");
    assert_eq!(json[0]["correlationId"], "r-1");
    assert_eq!(json[1]["tenant"], "middle-tenant");
    assert_eq!(json[1]["correlationId"], "c-2");
}

#[test]
fn lines_outside_spans_have_no_span_members() {
    let capture = capture(|| tracing::info!("alone"));
    assert_eq!(
        keys(&capture.lines()[0]),
        [
            "timestamp",
            "level",
            "message",
            "service",
            "version",
            "target",
            "retention"
        ]
    );
}
