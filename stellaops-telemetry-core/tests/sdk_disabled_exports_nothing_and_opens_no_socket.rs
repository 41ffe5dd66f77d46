//! OTEL_SDK_DISABLED=true builds a pipeline that records nothing and never connects, and
//! keeps the service's JSON log lines; only `true` disables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/env.rs"]
mod env_support;
use env_support::env_config;

use std::net::TcpListener;
use std::time::Duration;

use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;

fn connections_after_traffic(disabled: bool) -> (usize, TestExporters) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500".to_owned()),
    ];
    if disabled {
        vars.push(("OTEL_SDK_DISABLED", "true".to_owned()));
    }
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("disabled-test")
        .stdout_logs(false)
        .test_exporters(&exporters)
        .shutdown_timeout(Duration::from_secs(2))
        .config(env_config(&vars))
        .build()
        .unwrap();
    assert_eq!(telemetry.is_disabled(), disabled);
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("request").in_scope(|| tracing::info!("hello"));
    });
    telemetry
        .meter("m")
        .u64_counter("c_total")
        .build()
        .add(1, &[]);
    telemetry.shutdown();
    let mut accepted = 0;
    while listener.accept().is_ok() {
        accepted += 1;
    }
    (accepted, exporters)
}

#[test]
fn a_disabled_sdk_exports_nothing_and_never_connects() {
    let (accepted, exporters) = connections_after_traffic(true);
    assert_eq!(accepted, 0);
    assert!(exporters.finished_spans().is_empty());
    assert!(exporters.log_records().is_empty());
    // The service's own log lines go on.
    let lines = exporters.json_logs().json();
    assert!(lines.iter().any(|l| l["message"] == "hello"), "{lines:?}");
}

#[test]
fn the_same_pipeline_enabled_does_connect() {
    // The control case: proves the socket check above can fail.
    let (accepted, exporters) = connections_after_traffic(false);
    assert!(accepted > 0);
    assert_eq!(exporters.finished_spans().len(), 1);
}

mod values {
    use super::*;

    fn built(value: &str) -> (Telemetry, TestExporters) {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("disabled-values")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .config(env_config(&[("OTEL_SDK_DISABLED", value)]))
            .build()
            .unwrap();
        (telemetry, exporters)
    }

    #[test]
    fn true_in_any_case_disables_and_false_does_not_and_neither_warns() {
        for (value, disabled) in [("true", true), ("TRUE", true), ("false", false)] {
            let (telemetry, exporters) = built(value);
            assert_eq!(telemetry.is_disabled(), disabled, "{value}");
            tracing::dispatcher::with_default(telemetry.dispatch(), || {
                tracing::info_span!("work").in_scope(|| tracing::info!("line"));
            });
            telemetry.shutdown();
            let lines = exporters.json_logs().json();
            assert_eq!(
                lines.iter().filter(|l| l["message"] == "line").count(),
                1,
                "{value}: the log line is kept either way"
            );
            assert!(
                lines.iter().all(|l| l["level"] != "warn"),
                "{value}: {lines:?}"
            );
            assert_eq!(exporters.finished_spans().len(), usize::from(!disabled));
        }
    }

    #[test]
    fn any_other_value_keeps_the_sdk_enabled_with_a_warning_naming_the_variable() {
        for value in ["garbage", "1", "yes"] {
            let (telemetry, exporters) = built(value);
            assert!(!telemetry.is_disabled(), "{value}");
            telemetry.shutdown();
            let lines = exporters.json_logs().json();
            let warning = lines
                .iter()
                .find(|l| l["level"] == "warn")
                .unwrap_or_else(|| panic!("{value}: no warning in {lines:?}"));
            let message = warning["message"].as_str().unwrap();
            assert!(
                message.contains("OTEL_SDK_DISABLED") && message.contains(value),
                "{message}"
            );
        }
    }

    #[test]
    fn a_disabled_pipeline_keeps_the_configured_propagators() {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("disabled-propagators")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .config(env_config(&[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_PROPAGATORS", "b3,baggage"),
            ]))
            .build()
            .unwrap();
        assert!(telemetry.is_disabled());
        assert_eq!(
            telemetry.propagators().kinds(),
            &[
                stellaops_telemetry_core::PropagatorKind::B3,
                stellaops_telemetry_core::PropagatorKind::Baggage
            ]
        );
    }
}
