//! The precedence matrix: every setting that can come from more than one place, set from two
//! of them in both orders. The later call wins; sealing is sticky against profiles.

use std::time::Duration;

use super::{Settings, resolve};
use crate::config::{Origin, OtlpProtocol, TelemetryConfig};
use crate::export::FileFormat;
use crate::limits::ValueLimits;
use crate::profile::{ExporterKind, LogLevel, Profile, SamplingSite};
use crate::redaction::RedactionSettings;
use crate::{Telemetry, TelemetryBuilder};

type Step = Box<dyn Fn(TelemetryBuilder) -> TelemetryBuilder>;

fn file(text: &'static str) -> Step {
    Box::new(move |b| b.config(TelemetryConfig::from_toml_str(text).unwrap()))
}

fn env(vars: &'static [(&'static str, &'static str)]) -> Step {
    Box::new(move |b| {
        let config = TelemetryConfig::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        b.config(config)
    })
}

fn call(f: impl Fn(TelemetryBuilder) -> TelemetryBuilder + 'static) -> Step {
    Box::new(f)
}

fn settings(steps: &[&Step]) -> Settings {
    let mut builder = Telemetry::builder("scanner");
    for step in steps {
        builder = step(builder);
    }
    match resolve(builder) {
        Ok((settings, _)) => settings,
        Err(e) => panic!("resolve failed: {e}"),
    }
}

/// One setting from two places: `read` shows it; after `a` then `b` it is `b`'s, after `b`
/// then `a` it is `a`'s.
struct Case {
    setting: &'static str,
    a: Step,
    a_value: &'static str,
    b: Step,
    b_value: &'static str,
    read: fn(&Settings) -> String,
}

fn level(s: &Settings) -> String {
    match &s.log_filter {
        Some(filter) => format!("filter {filter}"),
        None => format!("{:?}", s.profile.log_level),
    }
}

fn redaction_keys(s: &Settings) -> String {
    s.profile.redaction.keys.join(",")
}

fn traces_exporters(s: &Settings) -> String {
    format!("{:?}", s.profile.exporters.traces)
}

fn sampling_site(s: &Settings) -> String {
    format!("{:?}", s.profile.sampling.site)
}

fn sampler(s: &Settings) -> String {
    format!("{:?}", s.sampler)
}

fn resource(key: &'static str) -> impl Fn(&Settings) -> String {
    move |s| {
        s.resource
            .get(&opentelemetry::Key::from_static_str(key))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// Every case: the profile settings, then the service's identity and outputs.
fn cases() -> Vec<Case> {
    let mut cases = profile_cases();
    cases.extend(sampling_cases());
    cases.extend(identity_and_output_cases());
    cases.extend(pipeline_switch_cases());
    cases
}

/// Settings a profile carries, and the profile itself.
fn profile_cases() -> Vec<Case> {
    vec![
        Case {
            setting: "log level: setter and file",
            a: call(|b| b.log_level(LogLevel::Warn)),
            a_value: "Warn",
            b: file("log_level = \"debug\""),
            b_value: "Debug",
            read: level,
        },
        Case {
            setting: "log level: setter and profile",
            a: call(|b| b.log_level(LogLevel::Error)),
            a_value: "Error",
            b: call(|b| b.profile(Profile::forensic())),
            b_value: "Debug",
            read: level,
        },
        Case {
            setting: "log level: setter and RUST_LOG",
            a: call(|b| b.log_level(LogLevel::Error)),
            a_value: "Error",
            b: env(&[("RUST_LOG", "warn,scanner::db=debug")]),
            b_value: "filter warn,scanner::db=debug",
            read: level,
        },
        Case {
            setting: "log level: file and RUST_LOG",
            a: file("log_level = \"trace\""),
            a_value: "Trace",
            b: env(&[("RUST_LOG", "warn")]),
            b_value: "filter warn",
            read: level,
        },
        Case {
            setting: "redaction: setter and file",
            a: call(|b| {
                b.redaction(RedactionSettings {
                    keys: vec!["from_setter".to_owned()],
                    allow_list: None,
                })
            }),
            a_value: "from_setter",
            b: file("[redaction]\nkeys = [\"from_file\"]"),
            b_value: "from_file",
            read: redaction_keys,
        },
        Case {
            setting: "redaction: setter and profile",
            a: call(|b| {
                b.redaction(RedactionSettings {
                    keys: vec!["from_setter".to_owned()],
                    allow_list: None,
                })
            }),
            a_value: "from_setter",
            b: call(|b| b.profile(Profile::default_profile())),
            b_value: "",
            read: redaction_keys,
        },
        Case {
            setting: "export interval: setter and environment",
            a: call(|b| b.export_interval(Duration::from_millis(1_500))),
            a_value: "1500",
            b: env(&[("OTEL_METRIC_EXPORT_INTERVAL", "2500")]),
            b_value: "2500",
            read: |s| s.profile.export_interval_ms.to_string(),
        },
        Case {
            setting: "export interval: file and profile",
            a: file("metric_export_interval_ms = 1234"),
            a_value: "1234",
            b: call(|b| b.profile(Profile::forensic())),
            b_value: "10000",
            read: |s| s.profile.export_interval_ms.to_string(),
        },
        Case {
            setting: "exporters: setter and environment",
            a: call(|b| b.exporters(&[ExporterKind::Stdout])),
            a_value: "[Stdout]",
            b: env(&[("OTEL_TRACES_EXPORTER", "none")]),
            b_value: "[]",
            read: traces_exporters,
        },
        Case {
            setting: "exporters: file and profile",
            a: file("[exporters]\ntraces = [\"console\"]"),
            a_value: "[Stdout]",
            b: call(|b| b.profile(Profile::airgap())),
            b_value: "[File]",
            read: traces_exporters,
        },
        Case {
            setting: "sealed: setter and environment",
            a: call(|b| b.sealed(true)),
            a_value: "true",
            b: env(&[("STELLAOPS_TELEMETRY_SEALED", "false")]),
            b_value: "false",
            read: |s| s.profile.sealed.to_string(),
        },
        Case {
            setting: "sealed: file and setter",
            a: file("sealed = true"),
            a_value: "true",
            b: call(|b| b.sealed(false)),
            b_value: "false",
            read: |s| s.profile.sealed.to_string(),
        },
    ]
}

/// The sampler and the settings after it that a profile carries.
fn sampling_cases() -> Vec<Case> {
    vec![
        Case {
            setting: "sampler: setter and environment",
            a: call(|b| b.sampler("always_off", None)),
            a_value: "AlwaysOff",
            b: env(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ]),
            b_value: "TraceIdRatioBased(0.25)",
            read: sampler,
        },
        Case {
            setting: "sampler: setter and profile",
            a: call(|b| b.sampler("always_off", None)),
            a_value: "AlwaysOff",
            b: call(|b| b.profile(Profile::forensic())),
            b_value: "ParentBased(AlwaysOn)",
            read: sampler,
        },
        Case {
            setting: "sampling site: setter and file",
            a: call(|b| b.sampling_site(SamplingSite::Sdk)),
            a_value: "Sdk",
            b: file("[sampling]\nsite = \"collector\""),
            b_value: "Collector",
            read: sampling_site,
        },
        Case {
            setting: "sampling site: file and profile",
            a: file("[sampling]\nsite = \"sdk\""),
            a_value: "Sdk",
            b: call(|b| b.profile(Profile::forensic())),
            b_value: "Collector",
            read: sampling_site,
        },
        Case {
            setting: "sampling site: setter and profile",
            a: call(|b| b.sampling_site(SamplingSite::Collector)),
            a_value: "Collector",
            b: call(|b| b.profile(Profile::airgap())),
            b_value: "Sdk",
            read: sampling_site,
        },
        Case {
            setting: "prometheus scrape: setter and profile",
            a: call(|b| b.prometheus_scrape(true)),
            a_value: "true",
            b: call(|b| b.profile(Profile::airgap())),
            b_value: "false",
            read: |s| s.profile.prometheus_scrape.to_string(),
        },
        Case {
            setting: "profile: setter and environment",
            a: call(|b| b.profile(Profile::forensic())),
            a_value: "forensic",
            b: env(&[("STELLAOPS_TELEMETRY_PROFILE", "airgap")]),
            b_value: "airgap",
            read: |s| s.profile.name.clone(),
        },
        Case {
            setting: "profile: file and setter",
            a: file("profile = \"airgap\""),
            a_value: "airgap",
            b: call(|b| b.profile_name("forensic")),
            b_value: "forensic",
            read: |s| s.profile.name.clone(),
        },
    ]
}

/// The service's identity, its exporters' endpoints and its outputs.
fn identity_and_output_cases() -> Vec<Case> {
    vec![
        Case {
            setting: "service name: file and environment",
            a: file("service_name = \"from-file\""),
            a_value: "from-file",
            b: env(&[("OTEL_SERVICE_NAME", "from-env")]),
            b_value: "from-env",
            read: |s| s.service_name.clone(),
        },
        Case {
            setting: "service version: setter and file",
            a: call(|b| b.service_version("1.0.0")),
            a_value: "1.0.0",
            b: file("service_version = \"2.0.0\""),
            b_value: "2.0.0",
            read: |s| s.service_version.clone(),
        },
        Case {
            setting: "deployment environment: setter and file",
            a: call(|b| b.deployment_environment("staging")),
            a_value: "staging",
            b: file("deployment_environment = \"production\""),
            b_value: "production",
            read: |s| resource("deployment.environment.name")(s),
        },
        Case {
            setting: "resource attribute: setter and environment",
            a: call(|b| b.resource_attribute("team", "scan")),
            a_value: "scan",
            b: env(&[("OTEL_RESOURCE_ATTRIBUTES", "team=policy")]),
            b_value: "policy",
            read: |s| resource("team")(s),
        },
        Case {
            setting: "otlp endpoint: setter and environment",
            a: call(|b| b.otlp_endpoint("http://127.0.0.1:4317")),
            a_value: "http://127.0.0.1:4317",
            b: env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:14317")]),
            b_value: "http://127.0.0.1:14317",
            read: |s| s.config.otlp.common.endpoint.clone().unwrap_or_default(),
        },
        Case {
            setting: "otlp protocol: setter and file",
            a: call(|b| b.otlp_protocol(OtlpProtocol::HttpProtobuf)),
            a_value: "Some(HttpProtobuf)",
            b: file("[otlp]\nprotocol = \"grpc\""),
            b_value: "Some(Grpc)",
            read: |s| format!("{:?}", s.config.otlp.common.protocol),
        },
        Case {
            setting: "otlp timeout: setter and environment",
            a: call(|b| b.otlp_timeout(Duration::from_millis(700))),
            a_value: "Some(700)",
            b: env(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "900")]),
            b_value: "Some(900)",
            read: |s| format!("{:?}", s.config.otlp.common.timeout_ms),
        },
        Case {
            setting: "directory: setter and environment",
            a: call(|b| b.dir("/tmp/from-setter")),
            a_value: "/tmp/from-setter",
            b: env(&[("STELLAOPS_TELEMETRY_DIR", "/tmp/from-env")]),
            b_value: "/tmp/from-env",
            read: |s| s.dir.display().to_string(),
        },
    ]
}

/// The switches of the whole pipeline: disabled, egress, levels and filters.
fn pipeline_switch_cases() -> Vec<Case> {
    vec![
        Case {
            setting: "disabled: setter and environment",
            a: call(|b| b.disabled(true)),
            a_value: "true",
            b: env(&[("OTEL_SDK_DISABLED", "false")]),
            b_value: "false",
            read: |s| s.disabled.to_string(),
        },
        Case {
            setting: "egress allow-list: setter and file",
            a: call(|b| b.egress_allow(["127.0.0.1"])),
            a_value: "Some([\"127.0.0.1\"])",
            b: file("[egress]\nallow = [\"10.0.0.0/8\"]"),
            b_value: "Some([\"10.0.0.0/8\"])",
            read: |s| format!("{:?}", s.config.egress.allow),
        },
        Case {
            setting: "file format: setter and file",
            a: call(|b| b.file_format(FileFormat::Protobuf)),
            a_value: "Protobuf",
            b: file("[files]\nformat = \"json\""),
            b_value: "Json",
            read: |s| format!("{:?}", s.files.format),
        },
        Case {
            setting: "stdout logs: setter and file",
            a: call(|b| b.stdout_logs(false)),
            a_value: "Some(false)",
            b: file("[log_outputs]\nstdout = true"),
            b_value: "Some(true)",
            read: |s| format!("{:?}", s.log_outputs.stdout),
        },
        Case {
            setting: "log events as span events: setter and file",
            a: call(|b| b.log_events_as_span_events(false)),
            a_value: "Some(false)",
            b: file("[log_outputs]\nspan_events = true"),
            b_value: "Some(true)",
            read: |s| format!("{:?}", s.log_outputs.span_events),
        },
        Case {
            setting: "log file: setter and file",
            a: call(|b| b.log_file("/tmp/a.log", 1_000, 2)),
            a_value: "Some(\"/tmp/a.log\")",
            b: file("[log_outputs]\nfile = \"/tmp/b.log\""),
            b_value: "Some(\"/tmp/b.log\")",
            read: |s| format!("{:?}", s.log_outputs.file),
        },
        Case {
            setting: "span and log queue bytes: setter and file",
            a: call(|b| b.max_queue_bytes(4_096)),
            a_value: "4096",
            b: file("[exporters]\nmax_queue_bytes = 8192"),
            b_value: "8192",
            read: |s| s.batch.max_queue_bytes.to_string(),
        },
        Case {
            setting: "log line queue bytes: setter and file",
            a: call(|b| b.max_log_line_queue_bytes(4_096)),
            a_value: "4096",
            b: file("[log_outputs]\nmax_queue_bytes = 8192"),
            b_value: "8192",
            read: |s| s.log_line_queue_bytes.to_string(),
        },
        Case {
            setting: "value limits: setter and file",
            a: call(|b| {
                b.value_limits(ValueLimits {
                    attribute_value_bytes: 100,
                    ..ValueLimits::default()
                })
            }),
            a_value: "100",
            b: file("[limits]\nattribute_value_bytes = 200"),
            b_value: "200",
            read: |s| s.bounds.limits().attribute_value_bytes.to_string(),
        },
        Case {
            setting: "SDK diagnostics level: file and environment",
            a: file("sdk_log_level = \"debug\""),
            a_value: "Debug",
            b: env(&[("OTEL_LOG_LEVEL", "error")]),
            b_value: "Error",
            read: |s| format!("{:?}", s.sdk_level),
        },
    ]
}

#[test]
fn every_setting_from_two_places_takes_the_later_call_in_both_orders() {
    let mut failures = Vec::new();
    for case in cases() {
        let ab = (case.read)(&settings(&[&case.a, &case.b]));
        let ba = (case.read)(&settings(&[&case.b, &case.a]));
        if ab != case.b_value || ba != case.a_value {
            failures.push(format!(
                "{}: a then b gave {ab:?} (want {:?}), b then a gave {ba:?} (want {:?})",
                case.setting, case.b_value, case.a_value
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_setting_alone_differs_from_the_default_so_the_matrix_can_fail() {
    let default = settings(&[]);
    for case in cases() {
        let a = (case.read)(&settings(&[&case.a]));
        let b = (case.read)(&settings(&[&case.b]));
        assert_ne!(a, b, "{}: both sources give the same value", case.setting);
        let _ = &default;
    }
}

#[test]
fn a_redaction_setter_after_a_config_file_wins_and_says_where_it_came_from() {
    let s = settings(&[
        &file("[redaction]\nkeys = [\"from_file\"]"),
        &call(|b| {
            b.redaction(RedactionSettings {
                keys: vec!["ticket".to_owned()],
                allow_list: None,
            })
        }),
    ]);
    assert_eq!(s.profile.redaction.keys, ["ticket"]);
    assert_eq!(s.config.origin_of("redaction"), Origin::Setter("redaction"));
    let verdict = s
        .redactor
        .redact_value("ticket", &opentelemetry::Value::from("T-1"));
    assert!(
        matches!(&verdict, crate::Verdict::Replace(v) if v.as_str() == crate::REDACTED),
        "{verdict:?}"
    );
}

#[test]
fn sealing_is_sticky_against_a_later_profile_but_not_a_later_explicit_setting() {
    let sealed_then_profile = settings(&[
        &call(|b| b.sealed(true)),
        &call(|b| b.profile(Profile::default_profile())),
    ]);
    assert!(sealed_then_profile.profile.sealed);
    let env_sealed_then_profile = settings(&[
        &env(&[("STELLAOPS_TELEMETRY_SEALED", "true")]),
        &call(|b| b.profile(Profile::forensic())),
    ]);
    assert!(env_sealed_then_profile.profile.sealed);
    let airgap_then_unsealed = settings(&[
        &call(|b| b.profile(Profile::airgap())),
        &call(|b| b.sealed(false)),
    ]);
    assert!(!airgap_then_unsealed.profile.sealed);
}

#[test]
fn a_limit_set_later_replaces_only_that_limit() {
    let s = settings(&[
        &call(|b| b.value_limits(ValueLimits::default().log_value_bytes(100))),
        &env(&[("OTEL_SPAN_EVENT_COUNT_LIMIT", "10")]),
        &file("[limits]\nlabel_value_bytes = 64"),
    ]);
    let limits = s.bounds.limits();
    assert_eq!(
        (
            limits.log_value_bytes,
            limits.span_event_count,
            limits.label_value_bytes
        ),
        (100, 10, 64)
    );
    assert_eq!(
        s.config.origin_of("limits"),
        Origin::File("limits".to_owned())
    );
}

#[test]
fn origins_name_the_call_that_set_each_value() {
    let s = settings(&[
        &call(|b| b.log_level(LogLevel::Warn)),
        &env(&[("OTEL_TRACES_SAMPLER", "always_on")]),
        &call(|b| b.profile(Profile::forensic())),
        &file("metric_export_interval_ms = 5000"),
        &env(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "900"),
        ]),
    ]);
    assert_eq!(
        s.config.origin_of("exporters.traces"),
        Origin::Environment("OTEL_TRACES_EXPORTER".to_owned())
    );
    assert_eq!(
        s.config.origin("otlp.timeout_ms"),
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    );
    assert_eq!(
        s.config.origin_of("log_level"),
        Origin::Profile("forensic".to_owned())
    );
    assert_eq!(
        s.config.origin_of("sampler"),
        Origin::Profile("forensic".to_owned())
    );
    assert_eq!(
        s.config.origin_of("metric_export_interval_ms"),
        Origin::File("metric_export_interval_ms".to_owned())
    );
    assert_eq!(
        s.config.origin_of("sampling.site"),
        Origin::Profile("forensic".to_owned())
    );
    let site = settings(&[
        &call(|b| b.profile(Profile::airgap())),
        &file("[sampling]\nsite = \"collector\""),
    ]);
    assert_eq!(
        site.config.origin_of("sampling.site"),
        Origin::File("sampling.site".to_owned())
    );
}
