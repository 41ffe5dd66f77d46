//! OTLP over gRPC and over HTTP/protobuf delivers spans, log records and metrics to an
//! in-process receiver built on the official OTLP protobuf definitions, also over mTLS with
//! certificates generated in the test and named by the certificate variables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use stellaops_telemetry_core::{ExporterKind, OtlpProtocol, Telemetry, TelemetryBuilder};
use support::env::env_config;
use support::{OtlpReceiver, TestPki};

const WAIT: Duration = Duration::from_secs(20);

fn emit(telemetry: &Telemetry) -> String {
    let mut trace_id = String::new();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let span = tracing::info_span!("policy.evaluate", policyId = "baseline", version = 7i64);
        let _e = span.enter();
        use opentelemetry::trace::TraceContextExt;
        use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt;
        trace_id = span.context().span().span_context().trace_id().to_string();
        tracing::info!(verdict = "allow", "policy evaluated");
    });
    telemetry
        .meter("otlp-test")
        .u64_counter("policy_runs_total")
        .build()
        .add(1, &[opentelemetry::KeyValue::new("mode", "full")]);
    trace_id
}

fn base(endpoint: String, protocol: OtlpProtocol) -> TelemetryBuilder {
    Telemetry::builder("otlp-test")
        .service_version("3.1.0")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(endpoint)
        .otlp_protocol(protocol)
        .otlp_header("x-stellaops-scope", "tenant-a")
        .otlp_timeout(Duration::from_secs(5))
        .stdout_logs(false)
}

fn assert_delivered(receiver: &OtlpReceiver, telemetry: &Telemetry, trace_id: &str) {
    assert!(receiver.wait_for_spans(1, WAIT), "no span arrived");
    assert!(
        receiver.wait_for_log_records(1, WAIT),
        "no log record arrived"
    );
    assert!(receiver.wait_for_metrics(1, WAIT), "no metric arrived");
    let span = &receiver.spans()[0];
    assert_eq!(span.name, "policy.evaluate");
    let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, trace_id);
    assert_eq!(
        receiver.resource_attribute_str("service.name").as_deref(),
        Some("otlp-test")
    );
    assert_eq!(
        receiver
            .resource_attribute_str("service.version")
            .as_deref(),
        Some("3.1.0")
    );
    assert!(
        receiver
            .log_records()
            .iter()
            .any(|r| format!("{:?}", r.body).contains("policy evaluated"))
    );
    assert!(
        receiver
            .metrics()
            .iter()
            .any(|m| m.name == "policy_runs_total")
    );
    assert!(
        receiver
            .received_requests()
            .iter()
            .all(|r| r.header("x-stellaops-scope") == Some("tenant-a"))
    );
    let stats = telemetry.stats();
    assert_eq!((stats.spans.exported, stats.spans.dropped), (1, 0));
    assert_eq!(stats.logs.dropped, 0);
}

#[test]
fn grpc_delivers_all_three_signals() {
    let receiver = OtlpReceiver::grpc_blocking().unwrap();
    let telemetry = base(receiver.endpoint(), OtlpProtocol::Grpc)
        .build()
        .unwrap();
    let trace_id = emit(&telemetry);
    telemetry.shutdown();
    assert_delivered(&receiver, &telemetry, &trace_id);
}

#[test]
fn http_protobuf_delivers_all_three_signals() {
    let receiver = OtlpReceiver::http_blocking().unwrap();
    let telemetry = base(receiver.endpoint(), OtlpProtocol::HttpProtobuf)
        .build()
        .unwrap();
    let trace_id = emit(&telemetry);
    telemetry.shutdown();
    assert_delivered(&receiver, &telemetry, &trace_id);
}

fn mtls(protocol: OtlpProtocol) {
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = pki.write_to(dir.path()).unwrap();
    let receiver = match protocol {
        OtlpProtocol::Grpc => OtlpReceiver::grpc_tls_blocking(&pki, true).unwrap(),
        OtlpProtocol::HttpProtobuf => OtlpReceiver::http_tls_blocking(&pki, true).unwrap(),
    };
    let protocol_name = match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http/protobuf",
    };
    // The certificate variables, exactly as an operator would set them.
    let config = env_config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol_name.to_owned()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            paths.ca.display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            paths.client_cert.display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            paths.client_key.display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-stellaops-scope=tenant-a".to_owned(),
        ),
    ]);
    assert!(receiver.endpoint().starts_with("https://"));
    let telemetry = Telemetry::builder("otlp-test")
        .service_version("3.1.0")
        .exporters(&[ExporterKind::Otlp])
        .stdout_logs(false)
        .config(config)
        .build()
        .unwrap();
    let trace_id = emit(&telemetry);
    telemetry.shutdown();
    assert_delivered(&receiver, &telemetry, &trace_id);
    assert!(receiver.client_cert_connections() > 0);

    // Without the client identity the server refuses the handshake: nothing arrives, and the
    // loss is counted instead of propagated.
    receiver.clear();
    let refused = Telemetry::builder("otlp-test")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(receiver.endpoint())
        .otlp_protocol(protocol)
        .otlp_certificate(&paths.ca)
        .otlp_timeout(Duration::from_secs(2))
        .stdout_logs(false)
        .build()
        .unwrap();
    emit(&refused);
    refused.shutdown();
    assert_eq!(receiver.span_count(), 0);
    let stats = refused.stats();
    assert_eq!(stats.spans.exported, 0);
    assert_eq!(stats.spans.dropped, 1);
    assert!(stats.spans.export_failures >= 1);
    assert!(stats.spans.last_error.is_some());
}

#[test]
fn grpc_with_mutual_tls_from_the_certificate_variables() {
    mtls(OtlpProtocol::Grpc);
}

#[test]
fn http_with_mutual_tls_from_the_certificate_variables() {
    mtls(OtlpProtocol::HttpProtobuf);
}

#[test]
fn per_signal_endpoints_win_and_the_shared_http_endpoint_gets_the_signal_path() {
    let shared = OtlpReceiver::http_blocking().unwrap();
    let traces_only = OtlpReceiver::http_blocking().unwrap();
    let config = env_config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", shared.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            traces_only.traces_url(),
        ),
    ]);
    let telemetry = Telemetry::builder("otlp-test")
        .exporters(&[ExporterKind::Otlp])
        .stdout_logs(false)
        .config(config)
        .build()
        .unwrap();
    emit(&telemetry);
    telemetry.shutdown();
    assert!(traces_only.wait_for_spans(1, WAIT));
    assert!(shared.wait_for_log_records(1, WAIT));
    assert_eq!(shared.span_count(), 0);
    assert_eq!(traces_only.log_record_count(), 0);
}
