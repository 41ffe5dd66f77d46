//! Sealed mode with OTLP endpoints on non-loopback addresses (documentation ranges and a
//! `.invalid` name only): no exporter is built for them, so nothing connects and nothing is
//! resolved; the data lands in the fallback files and each refusal is warned about once and
//! counted. `.ci/run` runs this test under `unshare -rn` and `strace` and fails on any
//! non-loopback connect or DNS traffic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/env.rs"]
mod env_support;

use env_support::env_config;
use stellaops_telemetry_core::opentelemetry_proto::tonic::metrics::v1::metric::Data;
use stellaops_telemetry_core::opentelemetry_proto::tonic::metrics::v1::number_data_point;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{FileFormat, Telemetry, segment_files};

#[test]
fn refused_endpoints_fall_back_to_files_without_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("sealed")
        .stdout_logs(false)
        .dir(dir.path())
        .test_exporters(&exporters)
        .config(env_config(&[
            ("STELLAOPS_TELEMETRY_SEALED", "true"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://192.0.2.10:4317",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://[2001:db8::10]:4317",
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "https://collector.invalid:4317",
            ),
        ]))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("scan.image").in_scope(|| tracing::info!(findings = 3u64, "scanned"));
    });
    telemetry
        .meter("sealed")
        .u64_counter("scans_total")
        .build()
        .add(1, &[]);
    telemetry.shutdown();

    let stats = telemetry.stats();
    assert_eq!(stats.egress_refusals, 3);
    for signal in ["traces", "metrics", "logs"] {
        assert!(
            !segment_files(dir.path(), signal, FileFormat::Json).is_empty(),
            "no fallback file for {signal}"
        );
    }
    assert_eq!(stats.spans.exported, 1);
    // The refusals are also a self-metric, exported with the service's metrics.
    let metrics = stellaops_telemetry_core::read_metrics(dir.path(), FileFormat::Json).unwrap();
    let refusals = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == "stellaops_telemetry_egress_refusals_total")
        .filter_map(|m| match &m.data {
            Some(Data::Sum(sum)) => sum.data_points.last().and_then(|p| p.value),
            _ => None,
        })
        .next_back();
    assert_eq!(refusals, Some(number_data_point::Value::AsInt(3)));
    assert_eq!(stats.spans.export_failures + stats.logs.export_failures, 0);

    // One structured warning per refused endpoint, naming it, the policy and the remedy.
    let warnings: Vec<_> = exporters
        .json_logs()
        .json()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("egress policy refused"))
        })
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let endpoints: Vec<&str> = warnings
        .iter()
        .map(|w| w["endpoint"].as_str().unwrap())
        .collect();
    assert!(endpoints.contains(&"http://192.0.2.10:4317"));
    assert!(endpoints.contains(&"http://[2001:db8::10]:4317"));
    assert!(endpoints.contains(&"https://collector.invalid:4317"));
    for w in &warnings {
        assert_eq!(w["policy"], "loopback-only");
        assert_eq!(w["level"], "warn");
        assert!(w["remedy"].as_str().unwrap().contains("allow-list"));
    }
}
