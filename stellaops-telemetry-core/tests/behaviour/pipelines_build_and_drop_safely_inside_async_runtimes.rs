//! A service builds, uses and drops its pipeline inside `#[tokio::main]`: nothing may panic or
//! hang there, whatever the runtime flavour and the OTLP transport.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use stellaops_telemetry_core::{ExporterKind, OtlpProtocol, Telemetry};
use support::OtlpReceiver;

async fn round_trip(protocol: OtlpProtocol, shutdown_explicitly: bool) {
    let receiver = match protocol {
        OtlpProtocol::Grpc => OtlpReceiver::grpc().await.unwrap(),
        OtlpProtocol::HttpProtobuf => OtlpReceiver::http().await.unwrap(),
    };
    let telemetry = Telemetry::builder("async-service")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(receiver.endpoint())
        .otlp_protocol(protocol)
        .export_delay(Duration::from_millis(50))
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("request").in_scope(|| tracing::info!("inside"));
    });
    assert!(
        receiver
            .wait_for_spans_async(1, Duration::from_secs(20))
            .await
    );
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("last").in_scope(|| {});
    });
    let stats = telemetry.clone();
    if shutdown_explicitly {
        telemetry.shutdown();
    }
    drop(telemetry); // inside the runtime: must neither panic nor hang
    if !shutdown_explicitly {
        // The last clone goes: the drop itself flushes the span ended just before it.
        drop(stats);
        assert!(
            receiver
                .wait_for_spans_async(2, Duration::from_secs(20))
                .await
        );
    } else {
        assert_eq!(stats.stats().spans.exported, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_a_multi_thread_runtime() {
    round_trip(OtlpProtocol::HttpProtobuf, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_a_multi_thread_runtime_dropped_without_shutdown() {
    round_trip(OtlpProtocol::Grpc, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_a_multi_thread_runtime_dropped_without_shutdown() {
    round_trip(OtlpProtocol::HttpProtobuf, false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn grpc_on_a_current_thread_runtime_builds_and_drops() {
    // The receiver needs a runtime of its own here: this one is busy in the test body.
    let receiver = OtlpReceiver::grpc_blocking().unwrap();
    let telemetry = Telemetry::builder("async-service")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(receiver.endpoint())
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("request").in_scope(|| tracing::info!("inside"));
    });
    telemetry.shutdown();
    assert_eq!(telemetry.stats().spans.exported, 1);
    assert_eq!(receiver.span_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_inside_a_runtime_returns_the_error_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    // The gRPC export runtime starts before the log file is opened, and must go quietly.
    let result = Telemetry::builder("async-service")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint("http://127.0.0.1:9")
        .log_file(dir.path().join("not-a-dir").join("service.log"), 1_000, 2)
        .stdout_logs(false)
        .build();
    let err = result.unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
