//! Sealed mode with OTLP endpoints on non-loopback addresses (documentation ranges and a
//! `.invalid` name only): no exporter is built for them, so nothing connects and nothing is
//! resolved; the data lands in the fallback files and each refusal is warned about once and
//! counted. Loopback names in every spelling (`localhost.`, `Collector.LOCALHOST`) and an
//! IPv4-mapped loopback address reach an in-process collector on 127.0.0.1 over gRPC and
//! HTTP, dialled by the SDK without the system resolver. `.ci/sealed-strace` runs this test
//! under `unshare -rn` and `strace` and fails on any non-loopback connect or DNS traffic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use stellaops_telemetry_core::opentelemetry_proto::tonic::metrics::v1::metric::Data;
use stellaops_telemetry_core::opentelemetry_proto::tonic::metrics::v1::number_data_point;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{ExporterKind, FileFormat, OtlpProtocol, Telemetry, segment_files};
use support::OtlpReceiver;
use support::env::env_config;

const WAIT: Duration = Duration::from_secs(20);

/// A sealed pipeline exporting every signal to `host` (as written in the URL) on the
/// receiver's port delivers all three, and nothing is refused.
fn sealed_delivery(receiver: &OtlpReceiver, protocol: OtlpProtocol, host: &str) {
    let endpoint = format!("http://{host}:{}", receiver.addr().port());
    let telemetry = Telemetry::builder("sealed")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(&endpoint)
        .otlp_protocol(protocol)
        .otlp_timeout(Duration::from_secs(5))
        .sealed(true)
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("scan.image").in_scope(|| tracing::info!(findings = 3u64, "scanned"));
    });
    let scans = telemetry.meter("sealed").u64_counter("scans_total").build();
    scans.add(1, &[]);
    // A second tenant in the collection: it is split, and each request dials the same way.
    scans.add(1, &[opentelemetry::KeyValue::new("tenant.id", "tenant-a")]);
    telemetry.shutdown();
    assert!(receiver.wait_for_spans(1, WAIT), "{endpoint}: no span");
    assert!(receiver.wait_for_log_records(1, WAIT), "{endpoint}: no log");
    assert!(receiver.wait_for_metrics(1, WAIT), "{endpoint}: no metric");
    assert!(
        receiver
            .received_requests()
            .iter()
            .any(|r| r.header("x-stellaops-tenant") == Some("tenant-a")),
        "{endpoint}: no tenant-a metrics request"
    );
    let stats = telemetry.stats();
    assert_eq!(stats.egress_refusals, 0, "{endpoint}");
    assert_eq!(stats.metrics.dropped, 0, "{endpoint}");
    assert_eq!(
        (stats.spans.exported, stats.spans.dropped),
        (1, 0),
        "{endpoint}"
    );
    receiver.clear();
}

/// The hosts a sealed site may write for a collector on this machine.
const LOOPBACK_HOSTS: [&str; 4] = [
    "localhost.",
    "Collector.LOCALHOST",
    "collector.localhost.",
    "[::ffff:127.0.0.1]",
];

#[test]
fn loopback_names_reach_a_local_grpc_collector_without_the_resolver() {
    let receiver = OtlpReceiver::grpc_blocking().unwrap();
    for host in LOOPBACK_HOSTS {
        sealed_delivery(&receiver, OtlpProtocol::Grpc, host);
    }
}

#[test]
fn loopback_names_reach_a_local_http_collector_without_the_resolver() {
    let receiver = OtlpReceiver::http_blocking().unwrap();
    for host in LOOPBACK_HOSTS {
        sealed_delivery(&receiver, OtlpProtocol::HttpProtobuf, host);
    }
}

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

/// Over TLS the certificate is checked against the name in the endpoint, not against the
/// address the SDK dialled: the test certificate names `localhost` and `127.0.0.1`, so
/// `collector.localhost` (dialled at 127.0.0.1) must fail the handshake.
fn sealed_tls_delivery(protocol: OtlpProtocol, host: &str, delivers: bool) {
    let pki = support::TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = pki.write_to(dir.path()).unwrap();
    let receiver = match protocol {
        OtlpProtocol::Grpc => OtlpReceiver::grpc_tls_blocking(&pki, false).unwrap(),
        OtlpProtocol::HttpProtobuf => OtlpReceiver::http_tls_blocking(&pki, false).unwrap(),
    };
    let endpoint = format!("https://{host}:{}", receiver.addr().port());
    let telemetry = Telemetry::builder("sealed")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(&endpoint)
        .otlp_protocol(protocol)
        .otlp_certificate(&paths.ca)
        // A refused handshake is retried until the timeouts: keep those short.
        .otlp_timeout(Duration::from_secs(if delivers { 5 } else { 1 }))
        .shutdown_timeout(Duration::from_secs(if delivers { 5 } else { 1 }))
        .sealed(true)
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("scan.image").in_scope(|| tracing::info!("scanned"));
    });
    telemetry.shutdown();
    let stats = telemetry.stats();
    if delivers {
        assert!(receiver.wait_for_spans(1, WAIT), "{endpoint}: no span");
        assert_eq!(stats.spans.exported, 1, "{endpoint}");
    } else {
        assert_eq!(stats.spans.exported, 0, "{endpoint}");
        assert!(receiver.tls_handshake_failures() > 0, "{endpoint}");
        assert_eq!(receiver.span_count(), 0, "{endpoint}");
    }
}

#[test]
fn tls_names_are_verified_against_the_endpoint_name_not_the_dialled_address() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        for host in ["localhost", "LOCALHOST", "localhost."] {
            sealed_tls_delivery(protocol, host, true);
        }
        sealed_tls_delivery(protocol, "collector.localhost", false);
    }
}
