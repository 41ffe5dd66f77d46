//! Values of any length — span attributes, JSON log fields, OTLP log records, metric label
//! values — are cut to the pipeline's value limits before they are kept: redacted whole first,
//! marked, counted; the limits come from the builder or a configuration file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use opentelemetry::Value;
use opentelemetry::logs::AnyValue;
use stellaops_telemetry_core::metrics::catalogue::{
    RequestDurationLabels, STELLAOPS_REQUEST_DURATION_SECONDS,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    TRUNCATED, Telemetry, TelemetryConfig, TelemetryError, ValueLimits, tracing,
};

fn pipeline(test: &TestExporters, limits: ValueLimits) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .value_limits(limits)
        .test_exporters(test)
        .build()
        .unwrap()
}

#[test]
fn span_names_attributes_and_events_from_tracing_are_cut() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test, ValueLimits::default().attribute_value_bytes(256));
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let path = "@".repeat(100_000);
        let span = tracing::info_span!("scan.image", imageRef = %path, digest = "sha256:0f1e");
        let _entered = span.enter();
    });
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = test.finished_spans();
    let span = spans.iter().find(|s| s.name == "scan.image").unwrap();
    let value = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    let image = value("imageRef").unwrap().as_str().into_owned();
    assert!(image.len() <= 256 && image.ends_with(TRUNCATED), "{image}");
    assert_eq!(value("digest"), Some(Value::from("sha256:0f1e")));
    assert_eq!(telemetry.stats().truncated.attribute_values, 1);
}

#[test]
fn json_log_fields_and_otlp_log_records_are_cut_after_redaction() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test, ValueLimits::default().log_value_bytes(1024));
    let secret_across_the_cut = format!(
        "{}token=hunter2hunter2 {}",
        "x".repeat(1010),
        "?".repeat(50_000)
    );
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let span = tracing::info_span!("job", correlation_id = %"c".repeat(30_000));
        let _entered = span.enter();
        tracing::warn!(
            user_agent = %"@".repeat(200_000),
            note = %secret_across_the_cut,
            short = "kept",
            "{}",
            "m".repeat(20_000)
        );
    });
    telemetry.flush(Duration::from_secs(5)).unwrap();
    let lines = test.json_logs().lines();
    let line = lines
        .iter()
        .find(|l| l.contains("\"short\":\"kept\""))
        .unwrap();
    assert!(line.len() < 4 * 1024 + 512, "{} bytes", line.len());
    assert!(!line.contains("hunter2"), "{line}");
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    for field in ["message", "user_agent", "note", "correlationId"] {
        let value = json[field].as_str().unwrap();
        assert!(value.len() <= 1024, "{field}: {}", value.len());
        assert!(value.ends_with(TRUNCATED), "{field}");
    }
    let records = test.log_records();
    let record = records
        .iter()
        .find(|r| r.attributes_iter().any(|(k, _)| k.as_str() == "short"))
        .unwrap();
    let Some(AnyValue::String(body)) = record.body() else {
        panic!("no body");
    };
    assert!(body.as_str().len() <= 1024 && body.as_str().ends_with(TRUNCATED));
    for (key, value) in record.attributes_iter() {
        if let AnyValue::String(s) = value {
            assert!(s.as_str().len() <= 1024, "{key}");
            assert!(!s.as_str().contains("hunter2"), "{key}");
        }
    }
    // Four cuts on the JSON line and four on the OTLP record (the span's correlation id is on
    // both, as `correlationId` and `request.id`).
    let correlation = record
        .attributes_iter()
        .find(|(k, _)| k.as_str() == "request.id")
        .map(|(_, v)| format!("{v:?}"))
        .unwrap();
    assert!(correlation.len() <= 1024 + 32, "{}", correlation.len());
    assert_eq!(telemetry.stats().truncated.log_values, 8);
}

#[test]
fn long_label_values_become_short_series_and_the_scrape_stays_small() {
    let test = TestExporters::new();
    let telemetry = pipeline(&test, ValueLimits::default());
    let histogram = telemetry
        .metrics()
        .histogram(&STELLAOPS_REQUEST_DURATION_SECONDS);
    // 300 distinct 60 KB values: each is cut to 256 bytes before it is hashed or kept.
    for i in 0..300 {
        let endpoint = format!("{i:04}{}", "e".repeat(60_000));
        histogram.record(
            0.01,
            RequestDurationLabels {
                service: "scanner",
                endpoint: &endpoint,
            },
        );
    }
    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    assert!(
        exposition.len() < 2 * 1024 * 1024,
        "{} bytes",
        exposition.len()
    );
    let longest_label = exposition
        .lines()
        .filter_map(|l| l.split("endpoint=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or("").len())
        .max()
        .unwrap();
    assert!(longest_label <= 256, "{longest_label}");
    assert_eq!(telemetry.stats().truncated.label_values, 300);

    // Instruments of the OpenTelemetry API (`Telemetry::meter`) are bounded the same way.
    use opentelemetry::metrics::MeterProvider as _;
    let counter = telemetry
        .meter_provider()
        .meter("svc")
        .u64_counter("svc_jobs")
        .build();
    counter.add(
        1,
        &[opentelemetry::KeyValue::new("queue", "q".repeat(60_000))],
    );
    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    let line = exposition
        .lines()
        .find(|l| l.starts_with("svc_jobs") && l.contains("queue="))
        .unwrap();
    assert!(line.len() < 400, "{line}");
    assert!(line.contains(TRUNCATED), "{line}");
    assert!(exposition.contains("stellaops_telemetry_truncated_total{kind=\"label_value\""));
}

#[test]
fn limits_come_from_a_configuration_file_and_tiny_limits_are_refused() {
    let config = TelemetryConfig::from_toml_str(
        "[limits]\nattribute_value_bytes = 100\nlabel_value_bytes = 64\n",
    )
    .unwrap();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .config(config)
        .build()
        .unwrap();
    let limits = telemetry.value_bounds().limits();
    assert_eq!(limits.attribute_value_bytes, 100);
    assert_eq!(limits.label_value_bytes, 64);
    assert_eq!(
        limits.log_value_bytes,
        ValueLimits::default().log_value_bytes
    );

    let err = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .value_limits(ValueLimits::default().log_value_bytes(4))
        .build()
        .unwrap_err();
    assert!(matches!(err, TelemetryError::Limits(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "value limit `log_value_bytes` is 4 bytes; it must be at least 32"
    );
    assert!(TelemetryConfig::from_toml_str("[limits]\nlabel_bytes = 64\n").is_err());
}

/// The count limits keep a span's first events and count the rest; the tracer provider cuts
/// at the same number, not at its own default.
mod span_count_limits {
    use super::*;

    fn events_kept(limits: ValueLimits, emitted: usize) -> (usize, u32, Telemetry, TestExporters) {
        let test = TestExporters::new();
        let telemetry = pipeline(&test, limits);
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            let span = tracing::info_span!("scan.image");
            let _entered = span.enter();
            for i in 0..emitted {
                tracing::info!(i, "step");
            }
        });
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = test.finished_spans();
        let span = spans.iter().find(|s| s.name == "scan.image").unwrap();
        (
            span.events.len(),
            span.events.dropped_count,
            telemetry,
            test,
        )
    }

    #[test]
    fn events_beyond_the_limit_are_dropped_and_counted() {
        let (kept, dropped, telemetry, _test) =
            events_kept(ValueLimits::default().span_event_count(2), 5);
        assert_eq!((kept, dropped), (2, 3));
        assert_eq!(telemetry.stats().truncated.span_events_dropped, 3);
    }

    #[test]
    fn a_limit_above_the_sdk_default_is_the_one_applied() {
        let (kept, dropped, telemetry, _test) =
            events_kept(ValueLimits::default().span_event_count(300), 200);
        assert_eq!((kept, dropped), (200, 0));
        assert_eq!(telemetry.stats().truncated.span_events_dropped, 0);
    }
}
