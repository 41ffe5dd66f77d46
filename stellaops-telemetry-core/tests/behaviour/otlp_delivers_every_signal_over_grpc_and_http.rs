//! OTLP over gRPC and over HTTP/protobuf delivers spans, log records and metrics to an
//! in-process receiver built on the official OTLP protobuf definitions, also over mTLS with
//! certificates generated in the test and named by the certificate variables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

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

/// One metric point of tenant-b, next to the untenanted ones of [`emit`].
fn emit_tenant_point(telemetry: &Telemetry) {
    telemetry
        .meter("otlp-test")
        .u64_counter("tenant_runs_total")
        .build()
        .add(1, &[opentelemetry::KeyValue::new("tenant.id", "tenant-b")]);
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
    emit_tenant_point(&telemetry);
    telemetry.shutdown();
    assert_delivered(&receiver, &telemetry, &trace_id);
    assert!(receiver.client_cert_connections() > 0);
    // The collection mixed tenant-b with untenanted points: tenant-b's request went over the
    // same mTLS connection settings, with the configured headers.
    assert!(receiver.received_requests().iter().any(|r| {
        r.header("x-stellaops-tenant") == Some("tenant-b")
            && r.header("x-stellaops-scope") == Some("tenant-a")
    }));

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
    emit_tenant_point(&refused);
    refused.shutdown();
    assert_eq!(receiver.span_count(), 0);
    let stats = refused.stats();
    // The per-tenant metric requests failed too: their points count as dropped.
    assert_eq!(stats.metrics.exported, 0);
    assert!(stats.metrics.dropped > 0);
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

/// Tenant-true export: every OTLP request holds one tenant's spans or log records and names
/// that tenant in its `X-StellaOps-Tenant` header; records without a (usable) tenant go
/// without the header, or under the default tenant when one is configured.
mod tenants {
    use std::collections::BTreeMap;

    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use support::receiver::{ReceivedRequest, Signal};

    use super::*;

    const HEADER: &str = "x-stellaops-tenant";

    /// Too long for a header, and not header-safe: both exported as without a tenant.
    fn hostile() -> [String; 2] {
        ["t".repeat(200), "evil\r\nx-injected: 1".to_owned()]
    }

    /// The tenants of the spans and log records emitted, in order (`None`: no tenant).
    fn tenants() -> Vec<Option<String>> {
        let [long, crlf] = hostile();
        [
            Some("tenant-a"),
            Some("tenant-b"),
            None,
            Some("tenant-a"),
            Some(&long),
            Some("tenant-b"),
            Some(&crlf),
            Some("tenant-a"),
        ]
        .into_iter()
        .map(|t| t.map(str::to_owned))
        .collect()
    }

    /// One span per entry of [`tenants`], each with one log record inside, numbered.
    fn emit_tenants(telemetry: &Telemetry) {
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for (seq, tenant) in tenants().iter().enumerate() {
                let seq = seq as i64;
                let span = match tenant {
                    Some(t) => tracing::info_span!("tenant.work", tenant.id = t.as_str(), seq),
                    None => tracing::info_span!("tenant.work", seq),
                };
                span.in_scope(|| tracing::info!(seq, "tenant work done"));
            }
        });
        // One collection holding points of tenant-a, tenant-b and none (the self-metrics are
        // untenanted too).
        let meter = telemetry.meter("otlp-test");
        let runs = meter.u64_counter("tenant_runs_total").build();
        let latency = meter.f64_histogram("tenant_latency_ms").build();
        for tenant in ["tenant-a", "tenant-b"] {
            let attributes = [opentelemetry::KeyValue::new("tenant.id", tenant)];
            runs.add(1, &attributes);
            latency.record(3.0, &attributes);
        }
        runs.add(1, &[opentelemetry::KeyValue::new("mode", "untenanted")]);
    }

    /// Every data point of a metrics request: its metric's name and its tenant attribute.
    fn metric_points(
        message: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    ) -> Vec<(String, Option<String>)> {
        let mut points = Vec::new();
        for metric in message
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
        {
            let attributes: Vec<&Vec<KeyValue>> = match &metric.data {
                Some(Data::Sum(d)) => d.data_points.iter().map(|p| &p.attributes).collect(),
                Some(Data::Gauge(d)) => d.data_points.iter().map(|p| &p.attributes).collect(),
                Some(Data::Histogram(d)) => d.data_points.iter().map(|p| &p.attributes).collect(),
                Some(Data::ExponentialHistogram(d)) => {
                    d.data_points.iter().map(|p| &p.attributes).collect()
                }
                Some(Data::Summary(d)) => d.data_points.iter().map(|p| &p.attributes).collect(),
                None => Vec::new(),
            };
            // A metric left without a point of the request's tenant is not sent at all.
            assert!(!attributes.is_empty(), "empty metric {}", metric.name);
            for a in attributes {
                points.push((metric.name.clone(), str_attr(a, "tenant.id")));
            }
        }
        points
    }

    /// Every metrics request holds the points of one tenant and carries its header; the
    /// collection mixing tenant-a, tenant-b and untenanted points was split three ways.
    fn check_metric_requests(receiver: &OtlpReceiver, default: Option<&str>) {
        let requests = requests_of(receiver, Signal::Metrics);
        let messages = receiver.metrics_requests();
        assert_eq!(requests.len(), messages.len());
        let mut headers = std::collections::BTreeSet::new();
        let mut runs = std::collections::BTreeSet::new();
        for (request, message) in requests.iter().zip(&messages) {
            let header = request.header(HEADER).map(str::to_owned);
            let points = metric_points(message);
            assert!(!points.is_empty(), "an empty metrics request");
            for (name, tenant) in &points {
                assert_eq!(
                    expected_header(tenant.as_deref(), default),
                    header,
                    "metric {name} (tenant {tenant:?}) arrived under {header:?}"
                );
                if name == "tenant_runs_total" || name == "tenant_latency_ms" {
                    runs.insert((name.clone(), header.clone()));
                }
            }
            headers.insert(header);
        }
        let untenanted = default.map(str::to_owned);
        let a = Some("tenant-a".to_owned());
        let b = Some("tenant-b".to_owned());
        for expected in [&a, &b, &untenanted] {
            assert!(headers.contains(expected), "{expected:?} in {headers:?}");
        }
        let run = |h: &Option<String>| ("tenant_runs_total".to_owned(), h.clone());
        let latency = |h: &Option<String>| ("tenant_latency_ms".to_owned(), h.clone());
        assert!(
            runs.contains(&run(&a)) && runs.contains(&latency(&a)),
            "{runs:?}"
        );
        assert!(
            runs.contains(&run(&b)) && runs.contains(&latency(&b)),
            "{runs:?}"
        );
        assert!(runs.contains(&run(&untenanted)), "{runs:?}");
        assert!(!runs.contains(&latency(&untenanted)), "{runs:?}");
    }

    fn str_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            }
        })
    }

    fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::IntValue(i)) => Some(*i),
                _ => None,
            }
        })
    }

    /// The header a record of `tenant` must arrive under.
    fn expected_header(tenant: Option<&str>, default: Option<&str>) -> Option<String> {
        match tenant {
            Some(t) if (1..=128).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(t.to_owned())
            }
            _ => default.map(str::to_owned),
        }
    }

    /// The requests of `signal`, in arrival order (the receiver records both lists under one
    /// lock, so the n-th request of a signal is the n-th message of that signal).
    fn requests_of(receiver: &OtlpReceiver, signal: Signal) -> Vec<ReceivedRequest> {
        receiver
            .received_requests()
            .into_iter()
            .filter(|r| r.signal == signal)
            .collect()
    }

    /// Checks one request: all its records resolve to one header, the one it carries; returns
    /// the sequence numbers it held.
    fn check_request(
        signal: &str,
        request: &ReceivedRequest,
        records: &[(Option<String>, i64)],
        default: Option<&str>,
    ) -> Vec<i64> {
        assert!(!records.is_empty(), "an empty {signal} request");
        let header = request.header(HEADER).map(str::to_owned);
        for (tenant, seq) in records {
            assert_eq!(
                expected_header(tenant.as_deref(), default),
                header,
                "{signal} record {seq} (tenant {tenant:?}) arrived under {header:?}"
            );
        }
        // The header is one and only one value: nothing was injected.
        assert!(request.header("x-injected").is_none());
        records.iter().map(|(_, seq)| *seq).collect()
    }

    /// The per-tenant export counter's last value per (signal, tenant), from the self-metrics
    /// the receiver got.
    fn tenant_counter(receiver: &OtlpReceiver, name: &str) -> BTreeMap<(String, String), i64> {
        let mut values = BTreeMap::new();
        for metric in receiver.metrics().iter().filter(|m| m.name == name) {
            let Some(Data::Sum(sum)) = &metric.data else {
                panic!("{name} is not a sum");
            };
            for point in &sum.data_points {
                let signal = str_attr(&point.attributes, "signal").unwrap();
                let tenant = str_attr(&point.attributes, "tenant").unwrap_or_default();
                let value = match point.value {
                    Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v),
                    ) => v,
                    other => panic!("{other:?}"),
                };
                let slot = values.entry((signal, tenant)).or_insert(0);
                *slot = value.max(*slot);
            }
        }
        values
    }

    fn run(protocol: OtlpProtocol, default: Option<&str>) {
        let receiver = match protocol {
            OtlpProtocol::Grpc => OtlpReceiver::grpc_blocking().unwrap(),
            OtlpProtocol::HttpProtobuf => OtlpReceiver::http_blocking().unwrap(),
        };
        let protocol_name = match protocol {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        };
        let mut vars = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol_name.to_owned()),
            // A configured tenant header never reaches another tenant's request.
            ("OTEL_EXPORTER_OTLP_HEADERS", format!("{HEADER}=configured")),
        ];
        if let Some(default) = default {
            vars.push(("STELLAOPS_TELEMETRY_DEFAULT_TENANT", default.to_owned()));
        }
        let telemetry = Telemetry::builder("otlp-test")
            .exporters(&[ExporterKind::Otlp])
            .stdout_logs(false)
            .config(env_config(&vars))
            .build()
            .unwrap();
        emit_tenants(&telemetry);
        // Traces and logs first, then the metrics: the last collection counts every export.
        telemetry.flush(WAIT).unwrap();
        telemetry.shutdown();
        let emitted = tenants().len();
        assert!(receiver.wait_for_spans(emitted, WAIT), "spans missing");
        assert!(receiver.wait_for_log_records(emitted, WAIT), "logs missing");

        let mut seen = Vec::new();
        let trace_requests = requests_of(&receiver, Signal::Traces);
        for (request, message) in trace_requests.iter().zip(receiver.trace_requests()) {
            let records: Vec<_> = message
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .filter(|s| s.name == "tenant.work")
                .map(|s| {
                    (
                        str_attr(&s.attributes, "tenant.id"),
                        int_attr(&s.attributes, "seq").unwrap(),
                    )
                })
                .collect();
            seen.extend(check_request("span", request, &records, default));
        }
        // Each tenant's spans keep their order; none is lost or doubled.
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..emitted as i64).collect::<Vec<_>>());
        let a: Vec<i64> = seen
            .iter()
            .copied()
            .filter(|s| [0, 3, 7].contains(s))
            .collect();
        assert_eq!(a, vec![0, 3, 7]);
        // One request per tenant route at least: a, b and the untenanted (or default) one.
        assert!(trace_requests.len() >= 3, "{}", trace_requests.len());

        let mut seen = Vec::new();
        let log_requests = requests_of(&receiver, Signal::Logs);
        for (request, message) in log_requests.iter().zip(receiver.logs_requests()) {
            let records: Vec<_> = message
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .filter_map(|r| {
                    let seq = int_attr(&r.attributes, "seq")?;
                    Some((str_attr(&r.attributes, "tenant.id"), seq))
                })
                .collect();
            if !records.is_empty() {
                seen.extend(check_request("log", request, &records, default));
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..emitted as i64).collect::<Vec<_>>());

        assert!(receiver.wait_for_metrics(1, WAIT));
        check_metric_requests(&receiver, default);

        let untenanted = default.unwrap_or("_none").to_owned();
        let exported = tenant_counter(&receiver, "stellaops_telemetry_tenant_exported_total");
        for signal in ["spans", "logs"] {
            let count = |tenant: &str| exported.get(&(signal.to_owned(), tenant.to_owned()));
            assert_eq!(count("tenant-a"), Some(&3), "{signal}: {exported:?}");
            assert_eq!(count("tenant-b"), Some(&2), "{signal}: {exported:?}");
            assert_eq!(count(&untenanted), Some(&3), "{signal}: {exported:?}");
        }
        // Metric points are counted per tenant too (the counter is read from a collection
        // made after the mixed one was exported).
        for tenant in ["tenant-a", "tenant-b", untenanted.as_str()] {
            let count = exported.get(&("metrics".to_owned(), tenant.to_owned()));
            assert!(count.is_some_and(|n| *n > 0), "{tenant}: {exported:?}");
        }
        let rejected = tenant_counter(&receiver, "stellaops_telemetry_tenant_rejected_total");
        for signal in ["spans", "logs"] {
            assert_eq!(
                rejected.get(&(signal.to_owned(), String::new())),
                Some(&2),
                "{rejected:?}"
            );
        }
    }

    #[test]
    fn grpc_sends_one_request_per_tenant_with_its_header() {
        run(OtlpProtocol::Grpc, None);
    }

    #[test]
    fn http_sends_one_request_per_tenant_with_its_header() {
        run(OtlpProtocol::HttpProtobuf, None);
    }

    #[test]
    fn grpc_sends_untenanted_records_under_the_default_tenant() {
        run(OtlpProtocol::Grpc, Some("platform"));
    }

    #[test]
    fn http_sends_untenanted_records_under_the_default_tenant() {
        run(OtlpProtocol::HttpProtobuf, Some("platform"));
    }

    /// The receiver refuses tenant-b: its spans and log records are dropped and counted as
    /// such, the other tenants' are delivered and counted as exported, and nothing is counted
    /// twice.
    fn one_tenant_refused(protocol: OtlpProtocol) {
        let receiver = match protocol {
            OtlpProtocol::Grpc => OtlpReceiver::grpc_blocking().unwrap(),
            OtlpProtocol::HttpProtobuf => OtlpReceiver::http_blocking().unwrap(),
        };
        receiver.refuse_tenant("tenant-b");
        let telemetry = Telemetry::builder("otlp-test")
            .exporters(&[ExporterKind::Otlp])
            .otlp_endpoint(receiver.endpoint())
            .otlp_protocol(protocol)
            .otlp_timeout(Duration::from_secs(5))
            .stdout_logs(false)
            .build()
            .unwrap();
        emit_tenants(&telemetry);
        let _ = telemetry.flush(WAIT);
        let stats = telemetry.stats();
        telemetry.shutdown();
        // 8 records each: tenant-a 3, tenant-b 2, none (or hostile) 3.
        for (signal, s) in [("spans", &stats.spans), ("logs", &stats.logs)] {
            assert_eq!(s.dropped, 2, "{signal}: {s:?}");
            assert!(s.export_failures >= 1, "{signal}: {s:?}");
        }
        // Nothing counted twice: the spans are exactly those emitted. (The SDK's own warning
        // about the failure is a log record too, so logs may count one more.)
        assert_eq!(stats.spans.exported, 6, "{:?}", stats.spans);
        assert!(stats.logs.exported >= 6, "{:?}", stats.logs);
        assert!(receiver.wait_for_spans(6, WAIT));
        let spans = receiver.spans();
        assert!(
            spans
                .iter()
                .filter(|s| s.name == "tenant.work")
                .all(|s| str_attr(&s.attributes, "tenant.id").as_deref() != Some("tenant-b"))
        );
    }

    #[test]
    fn a_tenant_refused_over_grpc_loses_only_its_own_records() {
        one_tenant_refused(OtlpProtocol::Grpc);
    }

    #[test]
    fn a_tenant_refused_over_http_loses_only_its_own_records() {
        one_tenant_refused(OtlpProtocol::HttpProtobuf);
    }

    #[test]
    fn a_default_tenant_that_cannot_be_a_header_is_refused_naming_the_variable() {
        for bad in ["two words", "x".repeat(129).as_str(), "caf\u{e9}"] {
            let error = Telemetry::builder("otlp-test")
                .exporters(&[ExporterKind::Otlp])
                .stdout_logs(false)
                .config(env_config(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                    ("STELLAOPS_TELEMETRY_DEFAULT_TENANT", bad),
                ]))
                .build()
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("STELLAOPS_TELEMETRY_DEFAULT_TENANT"),
                "{error}"
            );
            assert!(error.contains("tenant id"), "{error}");
        }
    }
}
