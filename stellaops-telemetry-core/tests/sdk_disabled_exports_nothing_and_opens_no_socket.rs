//! OTEL_SDK_DISABLED=true builds a pipeline that records nothing and never connects.

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
    assert!(exporters.json_logs().lines().is_empty());
}

#[test]
fn the_same_pipeline_enabled_does_connect() {
    // The control case: proves the socket check above can fail.
    let (accepted, exporters) = connections_after_traffic(false);
    assert!(accepted > 0);
    assert_eq!(exporters.finished_spans().len(), 1);
}
