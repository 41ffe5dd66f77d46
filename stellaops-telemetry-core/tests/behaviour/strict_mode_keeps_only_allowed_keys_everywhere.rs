//! Strict (allow-list) mode: only configured keys keep their values in spans, JSON log lines,
//! OTLP log records and metrics; everything else is dropped and counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opentelemetry::KeyValue;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt;
use stellaops_telemetry_core::{
    RedactionSettings, Rule, Telemetry, TelemetryConfig, TelemetryError,
};

#[test]
fn only_allowed_keys_leave_the_process() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("strict")
        .exporters(&[])
        .stdout_logs(false)
        .redaction(RedactionSettings::strict(["scan.id", "findings"]))
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let span = tracing::info_span!("scan.image");
        span.set_attribute("scan.id", "s-1");
        span.set_attribute("user.email", "alice@example.invalid");
        span.in_scope(|| {
            tracing::info!(
                findings = 3u64,
                user.email = "alice@example.invalid",
                "scanned"
            )
        });
    });
    telemetry
        .meter("strict")
        .u64_counter("scans_total")
        .build()
        .add(
            1,
            &[
                KeyValue::new("scan.id", "s-1"),
                KeyValue::new("user.email", "alice@example.invalid"),
            ],
        );
    telemetry.shutdown();

    let span = &exporters.finished_spans()[0];
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert!(
        keys.contains(&"scan.id") && !keys.contains(&"user.email"),
        "{keys:?}"
    );
    let line = &exporters.json_logs().json()[0];
    assert_eq!(line["findings"], 3);
    assert!(line.get("user.email").is_none(), "{line}");
    let record = &exporters.log_records()[0];
    assert!(
        record
            .attributes_iter()
            .all(|(k, _)| k.as_str() != "user.email")
    );
    let everything = format!(
        "{:?}{:?}{:?}",
        exporters.finished_spans(),
        exporters.log_records(),
        exporters.metrics()
    );
    assert!(!everything.contains("alice@example.invalid"));
    let dropped = telemetry
        .redactor()
        .counts()
        .into_iter()
        .find(|(r, _)| *r == Rule::AllowList)
        .unwrap()
        .1;
    assert!(
        dropped >= 4,
        "span attribute, JSON field, log attribute and metric label: {dropped}"
    );
}

#[test]
fn a_config_file_turns_strict_mode_on_and_names_bad_entries() {
    let config = TelemetryConfig::from_toml_str(
        "[redaction]\nallow_list = [\"scan.id\"]\nkeys = [\"session_id\"]\n",
    )
    .unwrap();
    let t = Telemetry::builder("strict")
        .exporters(&[])
        .stdout_logs(false)
        .config(config)
        .build()
        .unwrap();
    assert!(t.redactor().is_strict());
    assert!(t.redactor().is_sensitive_key("http.session_id"));
    let bad = TelemetryConfig::from_toml_str("[redaction]\nkeys = [\"two words\"]\n").unwrap();
    let err = Telemetry::builder("strict")
        .stdout_logs(false)
        .config(bad)
        .build()
        .unwrap_err();
    assert!(matches!(err, TelemetryError::Redaction(_)));
    assert!(err.to_string().contains("two words"), "{err}");
}
