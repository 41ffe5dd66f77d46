//! Property tests over every input of the core crate that comes from outside the process:
//! configuration files (TOML text, TOML and JSON files), environment values (every variable
//! of `ENVIRONMENT`), run-time control inputs (`Controls::set_tenant`,
//! `Controls::set_log_level_str`, `Controls::clear_tenant`) and exporter endpoints
//! (`parse_endpoint`). Whatever arrives, the answer is a value or a typed error, never a
//! panic; and `parse_endpoint` agrees with the `url` crate on host and port, but for the
//! differences it means to have (listed at `Odd`).
//!
//! Case counts follow `PROPTEST_CASES` (default 256 per property); the drill script runs them
//! at a million cases in all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use stellaops_telemetry_core::{
    ENVIRONMENT, Host, LogLevel, Telemetry, TelemetryConfig, TenantOverride, TenantSampling,
    parse_endpoint,
};

/// Arbitrary text, mostly printable, sometimes anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,80}",
        1 => any::<String>(),
        1 => vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Values that come close to what the variables and fields accept, so that the parsers get
/// past their first check.
fn near_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("otlp,file".to_owned()),
        Just("none".to_owned()),
        Just("grpc".to_owned()),
        Just("http/protobuf".to_owned()),
        Just("gzip".to_owned()),
        Just("parentbased_traceidratio".to_owned()),
        Just("info,h2=warn".to_owned()),
        Just("http://127.0.0.1:4317".to_owned()),
        Just("a=b,c=%20d".to_owned()),
        Just("tracecontext,baggage".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "[a-z=,%./:0-9 ]{0,40}",
        text(),
    ]
}

/// A value for every environment variable the SDK reads, or none.
fn environment() -> impl Strategy<Value = BTreeMap<&'static str, String>> {
    let names: Vec<&'static str> = ENVIRONMENT
        .iter()
        .map(|v| v.name)
        // A path: the configuration file tests cover its contents.
        .filter(|n| *n != "STELLAOPS_TELEMETRY_CONFIG")
        .collect();
    btree_map(proptest::sample::select(names), near_value(), 0..12)
}

/// Fields of the configuration file, in the tables they belong to.
const FIELDS: &[&str] = &[
    "service_name",
    "service_version",
    "deployment_environment",
    "profile",
    "sealed",
    "dir",
    "disabled",
    "propagators",
    "log_level",
    "log_filter",
    "sdk_log_level",
    "sampler",
    "sampler_arg",
    "metric_export_interval_ms",
    "resource_attributes.team",
    "exporters.traces",
    "exporters.metrics",
    "exporters.logs",
    "exporters.max_queue_bytes",
    "otlp.common.endpoint",
    "otlp.traces.protocol",
    "otlp.metrics.timeout_ms",
    "otlp.logs.compression",
    "otlp.common.headers.authorization",
    "otlp.common.certificate",
    "log_outputs.stdout",
    "log_outputs.file",
    "log_outputs.file_max_bytes",
    "log_outputs.max_queue_bytes",
    "files.format",
    "files.max_segment_bytes",
    "files.max_segments",
    "egress.allow",
    "limits.attribute_value_bytes",
    "limits.span_event_count",
    "redaction.mode",
    "unknown_field",
];

/// A TOML value: a string, number, boolean or array, or something that is not TOML at all.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        near_value().prop_map(|v| format!("{v:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        vec(near_value(), 0..4).prop_map(|v| format!("{v:?}")),
        "[ -~]{0,20}",
    ]
}

/// A TOML document of known fields with odd values.
fn near_toml() -> impl Strategy<Value = String> {
    vec((proptest::sample::select(FIELDS), toml_value()), 0..10).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    })
}

/// The same fields as a JSON document.
fn near_json() -> impl Strategy<Value = String> {
    vec((proptest::sample::select(FIELDS), near_value()), 0..10).prop_map(|fields| {
        let mut root = serde_json::Map::new();
        for (path, value) in fields {
            let mut at = &mut root;
            let parts: Vec<&str> = path.split('.').collect();
            for part in &parts[..parts.len() - 1] {
                let next = at
                    .entry(*part)
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if !next.is_object() {
                    *next = serde_json::Value::Object(Default::default());
                }
                at = next.as_object_mut().unwrap();
            }
            let v = serde_json::from_str::<serde_json::Value>(&value)
                .unwrap_or(serde_json::Value::String(value));
            at.insert(parts[parts.len() - 1].to_owned(), v);
        }
        serde_json::Value::Object(root).to_string()
    })
}

static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(|| {
    Telemetry::builder("hostile-controls")
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap()
});

fn tenant_override() -> impl Strategy<Value = TenantOverride> {
    (
        prop_oneof![
            Just(TenantSampling::Profile),
            Just(TenantSampling::Always),
            Just(TenantSampling::Never)
        ],
        proptest::option::of(prop_oneof![
            Just(LogLevel::Error),
            Just(LogLevel::Warn),
            Just(LogLevel::Info),
            Just(LogLevel::Debug),
            Just(LogLevel::Trace)
        ]),
    )
        .prop_map(|(sampling, log_level)| TenantOverride {
            sampling,
            log_level,
        })
}

/// Tenant patterns: arbitrary text, or close to an id or prefix.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![text(), "[A-Za-z0-9._@:*-]{0,140}", "[a-z]{1,10}-?\\*?"]
}

// ---------------------------------------------------------------------------------------
// Endpoints: parse_endpoint against the url crate.

/// A host of a generated URL. `Odd` hosts are the intended differences: `parse_endpoint`
/// refuses them where the WHATWG parser of the `url` crate accepts (and rewrites) them:
///
/// - names outside RFC 1123 (`_`, labels over 63 bytes, empty labels, percent-escapes,
///   non-ASCII names the `url` crate converts to punycode);
/// - names an IPv4 parser could read as an address (`127.1`, `0x7f.1`, `2130706433`), which
///   the `url` crate turns into an address;
/// - (in the URL, not the host) credentials (`user:pass@`), an empty port (`host:`) and
///   IPv6 zone ids.
#[derive(Debug, Clone)]
enum GenHost {
    /// A host both must accept.
    Plain(String),
    /// A host `parse_endpoint` may refuse while the `url` crate accepts it.
    Odd(String),
}

fn dns_label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?"
}

fn gen_host() -> impl Strategy<Value = GenHost> {
    let name = (
        vec(dns_label(), 0..3),
        "[a-zA-Z][a-zA-Z0-9-]{0,8}[a-zA-Z0-9]",
        any::<bool>(),
    )
        .prop_map(|(labels, last, dot)| {
            let mut parts = labels;
            parts.push(last);
            let mut name = parts.join(".");
            if dot {
                name.push('.');
            }
            GenHost::Plain(name)
        });
    prop_oneof![
        4 => name,
        2 => any::<Ipv4Addr>().prop_map(|ip| GenHost::Plain(ip.to_string())),
        2 => any::<Ipv6Addr>().prop_map(|ip| GenHost::Plain(format!("[{ip}]"))),
        1 => "[a-z]{1,5}_[a-z]{1,5}".prop_map(GenHost::Odd),
        1 => "[a-z]{64,70}\\.com".prop_map(GenHost::Odd),
        1 => "[a-z]{1,5}\\.\\.[a-z]{1,5}".prop_map(GenHost::Odd),
        1 => "[a-z]{1,5}%[0-9A-F]{2}[a-z]{0,3}".prop_map(GenHost::Odd),
        1 => "[a-zé]{1,5}ü\\.de".prop_map(GenHost::Odd),
        1 => prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(a, b)| format!("{a}.{b}")),
            any::<u32>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| format!("0x{n:x}")),
            (any::<u8>(), any::<u8>()).prop_map(|(a, b)| format!("0{a:o}.{b}.0.1")),
        ]
        .prop_map(GenHost::Odd),
        1 => "[a-zA-Z0-9._~%!$&'()*+,;=:@\\[\\]-]{0,20}".prop_map(GenHost::Odd),
    ]
}

#[derive(Debug, Clone)]
struct GenUrl {
    text: String,
    /// Credentials, an empty port or an IPv6 zone id: refused by `parse_endpoint` on purpose.
    odd: bool,
}

fn gen_url() -> impl Strategy<Value = GenUrl> {
    (
        prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("HtTpS")],
        prop_oneof![8 => Just(""), 1 => Just("user@"), 1 => Just("user:pass@")],
        gen_host(),
        prop_oneof![
            4 => Just(String::new()),
            1 => Just(":".to_owned()),
            4 => any::<u16>().prop_map(|p| format!(":{p}")),
            1 => (0u32..200_000).prop_map(|p| format!(":{p}")),
            1 => any::<u16>().prop_map(|p| format!(":000{p}")),
            1 => "[:][0-9a-z+-]{0,6}",
        ],
        prop_oneof![
            Just(""),
            Just("/"),
            Just("/v1/traces"),
            Just("?a=b"),
            Just("#frag"),
            Just("/a/b?c#d")
        ],
        any::<bool>(),
    )
        .prop_map(|(scheme, userinfo, host, port, path, zone)| {
            let (host, mut odd) = match host {
                GenHost::Plain(h) => (h, false),
                GenHost::Odd(h) => (h, true),
            };
            let host = if zone && host.starts_with('[') {
                odd = true;
                host.replace(']', "%25eth0]")
            } else {
                host
            };
            odd |= !userinfo.is_empty() || port == ":";
            GenUrl {
                text: format!("{scheme}://{userinfo}{host}{port}{path}"),
                odd,
            }
        })
}

/// What the `url` crate reads as host and port, in `parse_endpoint`'s terms (names without
/// their trailing dot).
fn reference(text: &str) -> Option<(Host, u16)> {
    let url = url::Url::parse(text).ok()?;
    let port = url.port_or_known_default()?;
    let host = match url.host()? {
        url::Host::Domain(d) => Host::Name(d.strip_suffix('.').unwrap_or(d).to_owned()),
        url::Host::Ipv4(ip) => Host::Ip(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Host::Ip(IpAddr::V6(ip)),
    };
    Some((host, port))
}

fn check_endpoint(url: &GenUrl) -> Result<(), TestCaseError> {
    let ours = parse_endpoint(&url.text).ok();
    let theirs = reference(&url.text);
    match (&ours, &theirs) {
        // Accepted by us: the url crate reads the same host and port.
        (Some(_), _) => prop_assert_eq!(&ours, &theirs, "{:?}", url),
        // Refused by both.
        (None, None) => {}
        // Refused by us only: an intended difference, never a plain URL.
        (None, Some(_)) => prop_assert!(
            url.odd,
            "refused a plain URL the url crate reads: {:?} -> {:?}",
            url,
            theirs
        ),
    }
    Ok(())
}

proptest! {
    #[test]
    fn toml_text_of_any_shape_is_a_config_or_an_error(text in prop_oneof![text(), near_toml()]) {
        let _ = TelemetryConfig::from_toml_str(&text);
    }

    #[test]
    fn configuration_files_of_any_content_are_a_config_or_an_error(
        toml in prop_oneof![text(), near_toml()],
        json in prop_oneof![text(), near_json()],
        bytes in vec(any::<u8>(), 0..300),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("c.toml", toml.as_bytes()),
            ("c.json", json.as_bytes()),
            ("raw.json", &bytes[..]),
            ("raw.toml", &bytes[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            if let Err(e) = TelemetryConfig::from_file(&path) {
                // The error names the file it could not use.
                prop_assert!(e.to_string().contains(name), "{}", e);
            }
        }
    }

    #[test]
    fn any_values_in_every_environment_variable_are_a_config_or_an_error(env in environment()) {
        let lookup = |name: &str| env.get(name).cloned();
        let _ = TelemetryConfig::from_lookup(lookup);
    }

    #[test]
    fn run_time_controls_take_any_string_and_answer_with_a_value_or_an_error(
        who in text(),
        level in prop_oneof![text(), "(?i)(error|warn|info|debug|trace) ?"],
        pattern in pattern(),
        o in tenant_override(),
    ) {
        let controls = TELEMETRY.controls();
        let before = controls.log_level();
        match controls.set_log_level_str(&who, &level) {
            Ok(()) => {}
            Err(e) => prop_assert_eq!(controls.log_level(), before, "{}", e),
        }
        let _ = controls.set_tenant(&who, &pattern, o);
        let _ = controls.clear_tenant(&who, &pattern);
        prop_assert!(controls.tenant_overrides().len() <= stellaops_telemetry_core::MAX_TENANT_OVERRIDES);
    }

    #[test]
    fn endpoints_agree_with_the_url_crate_on_host_and_port(url in gen_url()) {
        check_endpoint(&url)?;
    }

    #[test]
    fn any_text_after_the_scheme_is_read_as_the_url_crate_reads_it_when_accepted(
        scheme in prop_oneof![Just("http://"), Just("https://"), Just("")],
        rest in text(),
    ) {
        let text = format!("{scheme}{rest}");
        if let Ok(ours) = parse_endpoint(&text) {
            prop_assert_eq!(Some(ours), reference(&text), "{:?}", text);
        }
    }
}

#[test]
fn the_odd_hosts_are_refused_by_us_and_read_by_the_url_crate() {
    for text in [
        "http://user:pass@collector:4317",
        "http://collector:/v1/traces",
        "http://[fe80::1%25eth0]:4317",
        "http://col_lector:4317",
        "http://127.1:4317",
        "http://0x7f000001:4317",
        "http://b%C3%BCcher.de",
        "http://bücher.de",
    ] {
        assert!(parse_endpoint(text).is_err(), "{text}");
        // The zone id is refused by the url crate too; the others it reads.
        if !text.contains("%25eth0") {
            assert!(reference(text).is_some(), "{text}");
        }
    }
}

/// The generators reach past the first checks: some URLs, documents and environments are
/// accepted, some refused (a property that only ever sees refusals proves little).
#[test]
fn the_generators_produce_both_accepted_and_refused_inputs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut sample = |n: usize, accept: &dyn Fn(&mut TestRunner) -> bool| {
        let ok = (0..n).filter(|_| accept(&mut runner)).count();
        (ok, n - ok)
    };
    let urls = sample(500, &|r| {
        let url = gen_url().new_tree(r).unwrap().current();
        parse_endpoint(&url.text).is_ok()
    });
    let tomls = sample(500, &|r| {
        let text = near_toml().new_tree(r).unwrap().current();
        TelemetryConfig::from_toml_str(&text).is_ok()
    });
    let envs = sample(500, &|r| {
        let env = environment().new_tree(r).unwrap().current();
        TelemetryConfig::from_lookup(|name| env.get(name).cloned()).is_ok()
    });
    for (what, (ok, refused)) in [("urls", urls), ("toml", tomls), ("env", envs)] {
        assert!(
            ok > 10 && refused > 10,
            "{what}: {ok} accepted, {refused} refused"
        );
    }
}
