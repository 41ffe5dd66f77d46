//! Every configuration error is a typed error from `build()` naming the setting and value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/env.rs"]
mod env_support;
use env_support::env_config;

use stellaops_telemetry_core::{
    ConfigError, ExporterKind, OtlpProtocol, Telemetry, TelemetryConfig, TelemetryError,
};

fn build_err(builder: stellaops_telemetry_core::TelemetryBuilder) -> String {
    match builder.stdout_logs(false).build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_profile_is_named() {
    let msg = build_err(Telemetry::builder("svc").profile_name("forensik"));
    assert_eq!(
        msg,
        "unknown profile `forensik` (expected one of default, forensic, airgap)"
    );
    let msg = build_err(
        Telemetry::builder("svc").config(env_config(&[("STELLAOPS_TELEMETRY_PROFILE", "chaos")])),
    );
    assert!(
        msg.contains("STELLAOPS_TELEMETRY_PROFILE") && msg.contains("chaos"),
        "{msg}"
    );
}

#[test]
fn malformed_endpoint_names_its_variable() {
    let msg = build_err(Telemetry::builder("svc").config(env_config(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "collector:4317",
    )])));
    assert!(
        msg.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && msg.contains("collector:4317"),
        "{msg}"
    );
    let msg = build_err(Telemetry::builder("svc").otlp_endpoint("ftp://collector.invalid"));
    assert!(msg.contains("TelemetryBuilder::otlp_endpoint"), "{msg}");
}

#[test]
fn unreadable_certificate_names_its_variable_and_path() {
    let err = Telemetry::builder("svc")
        .stdout_logs(false)
        .config(env_config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]))
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        TelemetryError::Config(ConfigError::UnreadableCertificate { .. })
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && msg.contains("/nonexistent/ca.pem"),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let msg = build_err(Telemetry::builder("svc").otlp_certificate(&not_pem));
    assert!(msg.contains("no PEM block"), "{msg}");
}

#[test]
fn bad_header_syntax_is_named_without_its_value() {
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        "authorization Bearer s3cr3t".to_owned(),
    );
    let err = TelemetryConfig::from_lookup(|k| map.get(k).cloned()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    let msg = build_err(
        Telemetry::builder("svc")
            .exporters(&[ExporterKind::Otlp])
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_header("bad name", "s3cr3t"),
    );
    assert!(msg.contains("bad name") && !msg.contains("s3cr3t"), "{msg}");
}

#[test]
fn sampler_argument_out_of_range_is_named() {
    let msg = build_err(Telemetry::builder("svc").config(env_config(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ])));
    assert_eq!(
        msg,
        "invalid OTEL_TRACES_SAMPLER_ARG `1.5`: expected a ratio between 0.0 and 1.0"
    );
    let msg = build_err(Telemetry::builder("svc").sampler("coinflip", None));
    assert!(
        msg.contains("TelemetryBuilder::sampler") && msg.contains("coinflip"),
        "{msg}"
    );
}

#[test]
fn an_empty_service_name_is_refused() {
    let msg = build_err(Telemetry::builder("  "));
    assert!(msg.contains("service name"), "{msg}");
}
