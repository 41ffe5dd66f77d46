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

/// Replay: varint-delimited OTLP streams (what a bundle holds) re-sent to a receiver deliver
/// exactly the records they hold, over both protocols; the egress policy is asked first.
mod replay {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, MetricsData, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
    use prost::Message;
    use stellaops_telemetry_core::{
        LoopbackOnly, Replay, ReplayError, ReplayProtocol, ReplayReport, sealed_policy,
    };

    use super::*;

    fn tenant(t: &str) -> KeyValue {
        KeyValue {
            key: "tenant.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(t.into())),
            }),
            ..KeyValue::default()
        }
    }

    /// Three streams: `messages` messages per signal, each with `per` records.
    fn streams(messages: u64, per: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (mut traces, mut metrics, mut logs) = (Vec::new(), Vec::new(), Vec::new());
        for m in 0..messages {
            let spans = (0..per)
                .map(|i| Span {
                    trace_id: vec![1; 16],
                    span_id: (m * per + i + 1).to_be_bytes().to_vec(),
                    name: format!("span-{m}-{i}"),
                    start_time_unix_nano: 1_000 + i,
                    end_time_unix_nano: 2_000 + i,
                    attributes: vec![tenant("acme")],
                    ..Span::default()
                })
                .collect();
            TracesData {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                }],
            }
            .encode_length_delimited(&mut traces)
            .unwrap();
            let points = (0..per)
                .map(|i| NumberDataPoint {
                    time_unix_nano: 1_000 + i,
                    attributes: vec![tenant("acme")],
                    ..NumberDataPoint::default()
                })
                .collect();
            MetricsData {
                resource_metrics: vec![ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![Metric {
                            name: format!("gauge_{m}"),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: points,
                            })),
                            ..Metric::default()
                        }],
                        ..ScopeMetrics::default()
                    }],
                    ..ResourceMetrics::default()
                }],
            }
            .encode_length_delimited(&mut metrics)
            .unwrap();
            let records = (0..per)
                .map(|i| LogRecord {
                    time_unix_nano: 1_000 + i,
                    attributes: vec![tenant("acme")],
                    ..LogRecord::default()
                })
                .collect();
            LogsData {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: records,
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            }
            .encode_length_delimited(&mut logs)
            .unwrap();
        }
        (traces, metrics, logs)
    }

    fn replay_to(receiver: &OtlpReceiver, protocol: ReplayProtocol) -> ReplayReport {
        let (traces, metrics, logs) = streams(40, 50);
        let replay = Replay::new(&receiver.endpoint(), protocol, Arc::new(LoopbackOnly)).unwrap();
        replay
            .send(&mut &traces[..], &mut &metrics[..], &mut &logs[..])
            .unwrap()
    }

    #[test]
    fn a_replay_over_grpc_and_http_delivers_exactly_what_the_streams_hold() {
        for (receiver, protocol) in [
            (OtlpReceiver::grpc_blocking().unwrap(), ReplayProtocol::Grpc),
            (
                OtlpReceiver::http_blocking().unwrap(),
                ReplayProtocol::HttpProtobuf,
            ),
        ] {
            let report = replay_to(&receiver, protocol);
            assert_eq!(
                (report.spans, report.points, report.log_records),
                (2_000, 2_000, 2_000),
                "{protocol:?}"
            );
            assert_eq!(receiver.span_count(), 2_000, "{protocol:?}");
            assert_eq!(receiver.log_record_count(), 2_000, "{protocol:?}");
            let points: usize = receiver
                .metrics()
                .iter()
                .map(|m| match &m.data {
                    Some(metric::Data::Gauge(g)) => g.data_points.len(),
                    _ => 0,
                })
                .sum();
            assert_eq!(points, 2_000, "{protocol:?}");
            let names: std::collections::BTreeSet<String> =
                receiver.spans().into_iter().map(|s| s.name).collect();
            assert_eq!(names.len(), 2_000, "every span once, none twice");
            assert_eq!(
                report.requests as usize,
                receiver.requests(),
                "{protocol:?}"
            );
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_replay_called_inside_an_async_runtime_still_delivers() {
        let receiver = OtlpReceiver::grpc_blocking().unwrap();
        let report = replay_to(&receiver, ReplayProtocol::Grpc);
        assert_eq!(report.spans, 2_000);
        assert_eq!(receiver.span_count(), 2_000);
    }

    #[test]
    fn a_sealed_policy_refuses_a_remote_target_and_a_corrupt_stream_is_named() {
        let refused = Replay::new(
            "http://192.0.2.10:4318",
            ReplayProtocol::HttpProtobuf,
            Arc::from(sealed_policy(None)),
        );
        assert!(
            matches!(refused, Err(ReplayError::Refused { .. })),
            "{refused:?}"
        );
        assert!(matches!(
            Replay::new(
                "ftp://127.0.0.1",
                ReplayProtocol::Grpc,
                Arc::new(LoopbackOnly)
            ),
            Err(ReplayError::Endpoint(_))
        ));
        let receiver = OtlpReceiver::http_blocking().unwrap();
        let replay = Replay::new(
            &receiver.endpoint(),
            ReplayProtocol::HttpProtobuf,
            Arc::new(LoopbackOnly),
        )
        .unwrap();
        let (traces, _, _) = streams(2, 3);
        let cut = &traces[..traces.len() - 1];
        let error = replay
            .send(&mut &cut[..], &mut &[][..], &mut &[][..])
            .unwrap_err();
        assert!(
            matches!(
                error,
                ReplayError::Corrupt {
                    signal: "traces",
                    index: 1,
                    ..
                }
            ),
            "{error}"
        );
    }
}
