//! Every variable of the environment table is read by `from_lookup`, changes the config as the
//! table says, and a malformed value is an error naming the variable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use stellaops_telemetry_core::{
    BatchProcessorConfig, ConfigError, ENVIRONMENT, ExporterKind, OtlpCompression, OtlpProtocol,
    OtlpSignalConfig, PropagatorKind, TelemetryConfig, ValueLimits,
};

fn with(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TelemetryConfig::from_lookup(|name| map.get(name).cloned())
}

type Check = Box<dyn Fn(&TelemetryConfig)>;

fn otlp_cases(
    signal: &str,
    pick: fn(&TelemetryConfig) -> &OtlpSignalConfig,
) -> Vec<(String, String, Check)> {
    let p = |suffix: &str| {
        if signal.is_empty() {
            format!("OTEL_EXPORTER_OTLP_{suffix}")
        } else {
            format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}")
        }
    };
    vec![
        (
            p("ENDPOINT"),
            "http://127.0.0.1:4317".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(pick(c).endpoint.as_deref(), Some("http://127.0.0.1:4317"))
            }) as Check,
        ),
        (
            p("PROTOCOL"),
            "http/protobuf".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(pick(c).protocol, Some(OtlpProtocol::HttpProtobuf))
            }),
        ),
        (
            p("HEADERS"),
            "api-key=abc%3D,x-scope=t1".into(),
            Box::new(move |c: &TelemetryConfig| {
                let h = pick(c).headers.clone().unwrap();
                assert_eq!(h["api-key"], "abc=");
                assert_eq!(h["x-scope"], "t1");
            }),
        ),
        (
            p("TIMEOUT"),
            "2500".into(),
            Box::new(move |c: &TelemetryConfig| assert_eq!(pick(c).timeout_ms, Some(2500))),
        ),
        (
            p("COMPRESSION"),
            "gzip".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(pick(c).compression, Some(OtlpCompression::Gzip))
            }),
        ),
        (
            p("CERTIFICATE"),
            "/etc/pki/ca.pem".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(pick(c).certificate, Some(PathBuf::from("/etc/pki/ca.pem")))
            }),
        ),
        (
            p("CLIENT_KEY"),
            "/etc/pki/client.key".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(
                    pick(c).client_key,
                    Some(PathBuf::from("/etc/pki/client.key"))
                )
            }),
        ),
        (
            p("CLIENT_CERTIFICATE"),
            "/etc/pki/client.pem".into(),
            Box::new(move |c: &TelemetryConfig| {
                assert_eq!(
                    pick(c).client_certificate,
                    Some(PathBuf::from("/etc/pki/client.pem"))
                )
            }),
        ),
    ]
}

fn cases() -> Vec<(String, String, Check)> {
    let mut cases: Vec<(String, String, Check)> = vec![
        (
            "OTEL_SERVICE_NAME".into(),
            "scanner".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.service_name.as_deref(), Some("scanner"))),
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES".into(),
            "team=sec,region=eu%2Dwest".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.resource_attributes["team"], "sec");
                assert_eq!(c.resource_attributes["region"], "eu-west");
            }),
        ),
        (
            "OTEL_SDK_DISABLED".into(),
            "TRUE".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.disabled, Some(true))),
        ),
        (
            "OTEL_PROPAGATORS".into(),
            "baggage,tracecontext".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(
                    c.propagators,
                    Some(vec![PropagatorKind::Baggage, PropagatorKind::TraceContext])
                )
            }),
        ),
        (
            "OTEL_TRACES_EXPORTER".into(),
            "otlp,file".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(
                    c.exporters.traces,
                    Some(vec![ExporterKind::Otlp, ExporterKind::File])
                )
            }),
        ),
        (
            "OTEL_METRICS_EXPORTER".into(),
            "none".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.exporters.metrics, Some(vec![]))),
        ),
        (
            "OTEL_LOGS_EXPORTER".into(),
            "console".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.exporters.logs, Some(vec![ExporterKind::Stdout]))
            }),
        ),
        (
            "OTEL_LOG_LEVEL".into(),
            "debug".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.sdk_log_level.as_deref(), Some("debug"))),
        ),
        (
            "RUST_LOG".into(),
            "warn,scanner::db=debug".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.log_filter.as_deref(), Some("warn,scanner::db=debug"))
            }),
        ),
        (
            "OTEL_TRACES_SAMPLER".into(),
            "parentbased_traceidratio".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.sampler.as_deref(), Some("parentbased_traceidratio"))
            }),
        ),
        (
            "OTEL_TRACES_SAMPLER_ARG".into(),
            "0.5".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.sampler_arg.as_deref(), Some("0.5"))),
        ),
        (
            "OTEL_METRIC_EXPORT_INTERVAL".into(),
            "15000".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.metric_export_interval_ms, Some(15000))),
        ),
        (
            "STELLAOPS_TELEMETRY_PROFILE".into(),
            "forensic".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.profile.as_deref(), Some("forensic"))),
        ),
        (
            "STELLAOPS_TELEMETRY_SEALED".into(),
            "true".into(),
            Box::new(|c: &TelemetryConfig| assert_eq!(c.sealed, Some(true))),
        ),
        (
            "STELLAOPS_TELEMETRY_DIR".into(),
            "/var/lib/stella/telemetry".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.dir, Some(PathBuf::from("/var/lib/stella/telemetry")))
            }),
        ),
        (
            "STELLAOPS_TELEMETRY_DEFAULT_TENANT".into(),
            "platform".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(c.otlp.common.default_tenant.as_deref(), Some("platform"))
            }),
        ),
        (
            "STELLAOPS_TELEMETRY_INCIDENT_FILE".into(),
            "/etc/stella/incidents.json".into(),
            Box::new(|c: &TelemetryConfig| {
                assert_eq!(
                    c.incident_file,
                    Some(PathBuf::from("/etc/stella/incidents.json"))
                )
            }),
        ),
    ];
    let limit = |name: &str, value: &str, pick: fn(&ValueLimits) -> usize, expected: usize| {
        (
            name.to_owned(),
            value.to_owned(),
            Box::new(move |c: &TelemetryConfig| {
                let limits = c
                    .limits
                    .over(stellaops_telemetry_core::ValueLimits::default());
                assert_eq!(pick(&limits), expected);
            }) as Check,
        )
    };
    cases.extend([
        limit(
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "512",
            |l| l.attribute_value_bytes,
            512,
        ),
        limit(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "1024",
            |l| l.attribute_value_bytes,
            1024,
        ),
        limit(
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "64",
            |l| l.span_attribute_count,
            64,
        ),
        limit(
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "32",
            |l| l.span_attribute_count,
            32,
        ),
        limit(
            "OTEL_SPAN_EVENT_COUNT_LIMIT",
            "0",
            |l| l.span_event_count,
            0,
        ),
        limit("OTEL_SPAN_LINK_COUNT_LIMIT", "7", |l| l.span_link_count, 7),
        limit(
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            "9",
            |l| l.event_attribute_count,
            9,
        ),
        limit(
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            "11",
            |l| l.link_attribute_count,
            11,
        ),
    ]);
    for (prefix, pick) in [
        (
            "OTEL_BSP",
            (|c: &TelemetryConfig| c.batch.spans) as fn(&TelemetryConfig) -> BatchProcessorConfig,
        ),
        ("OTEL_BLRP", |c: &TelemetryConfig| c.batch.logs),
    ] {
        cases.extend([
            (
                format!("{prefix}_SCHEDULE_DELAY"),
                "250".to_owned(),
                Box::new(move |c: &TelemetryConfig| {
                    assert_eq!(pick(c).schedule_delay_ms, Some(250))
                }) as Check,
            ),
            (
                format!("{prefix}_EXPORT_TIMEOUT"),
                "3000".to_owned(),
                Box::new(move |c: &TelemetryConfig| {
                    assert_eq!(pick(c).export_timeout_ms, Some(3000))
                }),
            ),
            (
                format!("{prefix}_MAX_QUEUE_SIZE"),
                "4096".to_owned(),
                Box::new(move |c: &TelemetryConfig| assert_eq!(pick(c).max_queue_size, Some(4096))),
            ),
            (
                format!("{prefix}_MAX_EXPORT_BATCH_SIZE"),
                "128".to_owned(),
                Box::new(move |c: &TelemetryConfig| {
                    assert_eq!(pick(c).max_export_batch_size, Some(128))
                }),
            ),
        ]);
    }
    cases.extend(otlp_cases("", |c| &c.otlp.common));
    cases.extend(otlp_cases("TRACES", |c| &c.otlp.traces));
    cases.extend(otlp_cases("METRICS", |c| &c.otlp.metrics));
    cases.extend(otlp_cases("LOGS", |c| &c.otlp.logs));
    cases
}

#[test]
fn every_variable_in_the_table_has_a_case_and_changes_the_config() {
    let cases = cases();
    let covered: Vec<&str> = cases.iter().map(|(n, _, _)| n.as_str()).collect();
    for var in ENVIRONMENT {
        if var.name == "STELLAOPS_TELEMETRY_CONFIG" {
            continue; // covered by its own test below
        }
        assert!(covered.contains(&var.name), "no test case for {}", var.name);
    }
    for (name, value, check) in &cases {
        assert!(
            ENVIRONMENT.iter().any(|v| v.name == name),
            "{name} missing from the table"
        );
        let config = with(&[(name, value)]).unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        check(&config);
        assert_ne!(config, TelemetryConfig::default(), "{name} changed nothing");
    }
}

#[test]
fn the_config_file_variable_is_read_first_and_variables_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.toml");
    std::fs::write(
        &path,
        "service_name = \"from-file\"\nprofile = \"airgap\"\n[log_outputs]\nfile_max_files = 3\n",
    )
    .unwrap();
    let config = with(&[
        ("STELLAOPS_TELEMETRY_CONFIG", path.to_str().unwrap()),
        ("OTEL_SERVICE_NAME", "from-env"),
    ])
    .unwrap();
    assert_eq!(config.service_name.as_deref(), Some("from-env"));
    assert_eq!(config.profile.as_deref(), Some("airgap"));
    assert_eq!(config.log_outputs.file_max_files, Some(3));

    let err = with(&[("STELLAOPS_TELEMETRY_CONFIG", "/nonexistent/telemetry.toml")]).unwrap_err();
    assert!(matches!(err, ConfigError::UnreadableFile { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/telemetry.toml"));

    std::fs::write(&path, "service_nme = \"typo\"\n").unwrap();
    let err = with(&[("STELLAOPS_TELEMETRY_CONFIG", path.to_str().unwrap())]).unwrap_err();
    assert!(err.to_string().contains("service_nme"), "{err}");
}

#[test]
fn malformed_values_are_errors_naming_the_variable_and_value() {
    for (name, value) in [
        ("OTEL_PROPAGATORS", "xray"),
        ("OTEL_PROPAGATORS", "tracecontext,ottrace"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-5"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "1.5"),
        ("OTEL_BLRP_EXPORT_TIMEOUT", "ten"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_METRICS_EXPORTER", "graphite"),
        ("OTEL_LOGS_EXPORTER", "syslog"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "novalue"),
        ("OTEL_RESOURCE_ATTRIBUTES", "=orphan"),
        ("STELLAOPS_TELEMETRY_SEALED", "maybe"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-1"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "many"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1.5"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "ten"),
        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "-3"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "x"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "long"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
    ] {
        let err = with(&[(name, value)]).expect_err(name);
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let config = with(&[("OTEL_SERVICE_NAME", ""), ("OTEL_SDK_DISABLED", "  ")]).unwrap();
    assert_eq!(config, TelemetryConfig::default());
}

#[test]
fn span_limit_variables_win_over_the_general_ones_and_over_the_file_field_by_field() {
    let config = with(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
    ])
    .unwrap();
    let limits = config
        .limits
        .over(stellaops_telemetry_core::ValueLimits::default());
    assert_eq!(limits.span_attribute_count, 20);
    assert_eq!(limits.attribute_value_bytes, 100);
    assert_eq!(limits.span_event_count, 128);

    // A malformed general variable is an error even when the span one is set.
    let err = with(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "lots"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20"),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("OTEL_ATTRIBUTE_COUNT_LIMIT"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.toml");
    std::fs::write(
        &path,
        "[limits]\nlog_value_bytes = 4096\nspan_link_count = 3\n",
    )
    .unwrap();
    let config = with(&[
        ("STELLAOPS_TELEMETRY_CONFIG", path.to_str().unwrap()),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "5"),
    ])
    .unwrap();
    let limits = config
        .limits
        .over(stellaops_telemetry_core::ValueLimits::default());
    assert_eq!(limits.log_value_bytes, 4096);
    assert_eq!(limits.span_link_count, 3);
    assert_eq!(limits.span_event_count, 5);

    // A value length too small for the truncation marker names the variable.
    let err = with(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT `8`: expected a whole number of bytes, at least 32"
    );
}

mod sdk_disabled {
    use super::*;

    #[test]
    fn only_true_in_any_case_disables_the_sdk_and_other_values_warn_without_failing() {
        for (value, disabled, warns) in [
            ("true", true, false),
            ("TRUE", true, false),
            (" True ", true, false),
            ("false", false, false),
            ("FALSE", false, false),
            ("1", false, true),
            ("yes", false, true),
            ("garbage value", false, true),
        ] {
            let config = with(&[("OTEL_SDK_DISABLED", value)])
                .unwrap_or_else(|e| panic!("{value:?} must not fail: {e}"));
            assert_eq!(config.disabled, Some(disabled), "{value:?}");
            assert_eq!(!config.warnings().is_empty(), warns, "{value:?}");
            if warns {
                let warning = &config.warnings()[0];
                assert!(
                    warning.contains("OTEL_SDK_DISABLED") && warning.contains(value.trim()),
                    "{warning}"
                );
            }
        }
    }
}

mod propagators {
    use super::*;

    #[test]
    fn the_list_keeps_its_order_ignores_duplicates_and_none_and_knows_b3() {
        let config = with(&[(
            "OTEL_PROPAGATORS",
            "b3multi, tracecontext,none,B3,baggage,tracecontext",
        )])
        .unwrap();
        assert_eq!(
            config.propagators,
            Some(vec![
                PropagatorKind::B3Multi,
                PropagatorKind::TraceContext,
                PropagatorKind::B3,
                PropagatorKind::Baggage,
            ])
        );
        assert_eq!(
            with(&[("OTEL_PROPAGATORS", "none")]).unwrap().propagators,
            Some(vec![])
        );
    }

    #[test]
    fn jaeger_is_read_and_an_unknown_name_is_a_typed_error_listing_it() {
        let config = with(&[("OTEL_PROPAGATORS", "tracecontext, Jaeger")]).unwrap();
        assert_eq!(
            config.propagators,
            Some(vec![PropagatorKind::TraceContext, PropagatorKind::Jaeger])
        );
        let err = with(&[("OTEL_PROPAGATORS", "ottrace")]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
        assert!(err.to_string().contains("b3multi, jaeger or none"), "{err}");
    }
}

mod batch_processors {
    use super::*;

    #[test]
    fn each_variable_is_a_typed_error_naming_it_and_the_file_fields_are_checked_at_build() {
        let err = with(&[("OTEL_BLRP_MAX_QUEUE_SIZE", "0")]).unwrap_err();
        match &err {
            ConfigError::InvalidValue { name, value, .. } => {
                assert_eq!(
                    (name.as_str(), value.as_str()),
                    ("OTEL_BLRP_MAX_QUEUE_SIZE", "0")
                )
            }
            other => panic!("{other}"),
        }
        let file = TelemetryConfig::from_toml_str("[batch.spans]\nmax_queue_size = 0\n").unwrap();
        let err = stellaops_telemetry_core::Telemetry::builder("svc")
            .exporters(&[])
            .stdout_logs(false)
            .config(file)
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("batch.spans.max_queue_size"),
            "{err}"
        );
    }

    #[test]
    fn the_environment_wins_over_the_file_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("telemetry.toml");
        std::fs::write(
            &path,
            "[batch.spans]\nmax_queue_size = 10\nmax_export_batch_size = 5\n",
        )
        .unwrap();
        let config = with(&[
            ("STELLAOPS_TELEMETRY_CONFIG", path.to_str().unwrap()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "20"),
        ])
        .unwrap();
        assert_eq!(config.batch.spans.max_queue_size, Some(20));
        assert_eq!(config.batch.spans.max_export_batch_size, Some(5));
        assert_eq!(config.batch.logs, BatchProcessorConfig::default());
    }
}
