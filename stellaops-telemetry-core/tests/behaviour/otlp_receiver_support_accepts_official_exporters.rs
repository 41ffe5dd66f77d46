//! Self-test of `tests/support`: the in-process OTLP receiver must accept what the stock
//! `opentelemetry-otlp` exporters send (gRPC and HTTP/protobuf, plain, TLS and mTLS),
//! and the generated PKI must be usable by tonic and by reqwest/rustls.
//!
//! Nothing here uses `stellaops-telemetry-core` itself: it validates the test harness.
//!
//! Invariant checked at the end of the TLS tests: nothing in this binary installs a
//! process-wide rustls `CryptoProvider` (so SDK tests using the receiver cannot have a
//! missing-provider bug masked by the harness).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, RetryPolicy, SpanExporter, WithExportConfig as _,
    WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use support::{OtlpReceiver, Signal, TestPki, Transport};

/// Generous upper bound for things that normally take milliseconds.
const WAIT: Duration = Duration::from_secs(20);
/// Export timeout for exporters expected to fail (bounded, no retries).
const FAIL_TIMEOUT: Duration = Duration::from_secs(5);

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "receiver-selftest"))
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build()
}

fn span(name: &'static str, n: u64) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10_u128),
            SpanId::from(n + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: now,
        end_time: now,
        attributes: vec![KeyValue::new("n", n as i64)],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("receiver-selftest").build(),
    }
}

fn batch(name: &'static str, len: u64) -> Vec<SpanData> {
    (0..len).map(|n| span(name, n)).collect()
}

fn assert_resource(receiver: &OtlpReceiver) {
    assert_eq!(
        receiver.resource_attribute_str("service.name").as_deref(),
        Some("receiver-selftest")
    );
}

fn assert_no_process_default_crypto_provider() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "something in this test binary installed a process-wide rustls CryptoProvider"
    );
}

/// reqwest blocking client for plain `http://` endpoints. With `rustls-no-provider` a
/// client must get a preconfigured rustls config (explicit provider) even for plain HTTP,
/// because `build()` constructs the TLS connector eagerly.
fn reqwest_plain() -> reqwest::blocking::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn reqwest_tls(pki: &TestPki, present_client_cert: bool) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(pki.rustls_client_config(present_client_cert).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn http_span_exporter(client: reqwest::blocking::Client, url: String) -> SpanExporter {
    SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(url)
        .with_timeout(FAIL_TIMEOUT)
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_plain_receives_spans_logs_and_metrics_from_tonic_exporters() {
    let receiver = OtlpReceiver::grpc().await.unwrap();
    assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));

    // Spans: export() awaited directly on the runtime that built the channel.
    let mut exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    exporter.set_resource(&resource());
    exporter.export(batch("grpc-span", 3)).await.unwrap();
    assert_eq!(
        receiver.span_count(),
        3,
        "export() returned Ok after delivery"
    );
    assert_eq!(receiver.spans()[0].name, "grpc-span");
    assert_resource(&receiver);
    let requests = receiver.received_requests();
    assert_eq!(requests[0].signal, Signal::Traces);
    assert_eq!(requests[0].transport, Transport::Grpc);
    assert_eq!(requests[0].content_encoding.as_deref(), Some("gzip"));

    // Logs: simple processor => futures_executor::block_on(export) on the emitting thread.
    // Emit from spawn_blocking (a runtime thread that may block) so the tonic channel's
    // background tasks keep running on the worker threads.
    let log_exporter = LogExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .build()
        .unwrap();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(log_exporter)
        .build();
    let lp = logger_provider.clone();
    tokio::task::spawn_blocking(move || {
        let logger = lp.logger("receiver-selftest");
        let mut record = logger.create_log_record();
        record.set_body("hello over grpc".into());
        record.set_severity_number(Severity::Info);
        logger.emit(record);
    })
    .await
    .unwrap();
    assert!(receiver.wait_for_log_records_async(1, WAIT).await);
    assert_eq!(receiver.log_records().len(), 1);

    // Metrics: PeriodicReader exports from its own (non-tokio) thread via block_on.
    let metric_exporter = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .build()
        .unwrap();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(
            PeriodicReader::builder(metric_exporter)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    let counter = meter_provider
        .meter("receiver-selftest")
        .u64_counter("selftest.requests")
        .build();
    counter.add(5, &[KeyValue::new("route", "/x")]);
    let mp = meter_provider.clone();
    tokio::task::spawn_blocking(move || mp.force_flush().unwrap())
        .await
        .unwrap();
    assert!(receiver.wait_for_metrics_async(1, WAIT).await);
    assert!(
        receiver
            .metrics()
            .iter()
            .any(|m| m.name == "selftest.requests")
    );

    tokio::task::spawn_blocking(move || {
        logger_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
    })
    .await
    .unwrap();
    assert!(receiver.connections() >= 1);
    assert_eq!(receiver.requests(), receiver.received_requests().len());
    receiver.shutdown().await;
}

/// The question behind the SDK's runtime design: the tonic channel is created inside a
/// runtime (tonic spawns its buffer worker there), and export futures are polled with
/// `futures_executor::block_on` from a plain OS thread that is not in any runtime context.
/// This works as long as the runtime that built the channel keeps running (here: a
/// multi-thread runtime owned by the test).
#[test]
fn grpc_export_polled_from_non_tokio_thread_works_while_building_runtime_runs() {
    let receiver = OtlpReceiver::grpc_blocking().unwrap();

    let exporter_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut exporter = {
        let _guard = exporter_rt.enter();
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.endpoint())
            .build()
            .unwrap()
    };
    exporter.set_resource(&resource());

    // This test thread has no runtime context.
    assert!(tokio::runtime::Handle::try_current().is_err());
    futures_executor::block_on(exporter.export(batch("from-plain-thread", 2))).unwrap();
    // ...and from yet another plain thread.
    let exporter = Arc::new(exporter);
    let e = Arc::clone(&exporter);
    std::thread::spawn(move || futures_executor::block_on(e.export(batch("from-other-thread", 1))))
        .join()
        .unwrap()
        .unwrap();
    assert!(receiver.wait_for_spans(3, WAIT));
    assert_resource(&receiver);

    drop(exporter);
    drop(exporter_rt);
    receiver.shutdown_blocking();
}

/// Building a tonic exporter outside any runtime context fails loudly (tonic's
/// `connect_lazy` spawns a worker via `tokio::spawn`).
#[test]
fn grpc_exporter_build_outside_runtime_panics() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let result = std::panic::catch_unwind(|| {
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint("http://127.0.0.1:9")
            .build()
    });
    assert!(
        result.is_err(),
        "expected tonic exporter build without a tokio runtime to panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mtls_delivers_with_client_cert_and_rejects_without() {
    let pki = TestPki::generate().unwrap();
    let receiver = OtlpReceiver::grpc_tls(&pki, true).await.unwrap();
    assert!(receiver.endpoint().starts_with("https://localhost:"));

    let mut with_cert = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(pki.tonic_client_tls(true))
        .build()
        .unwrap();
    with_cert.set_resource(&resource());
    with_cert.export(batch("mtls-span", 2)).await.unwrap();
    assert_eq!(receiver.span_count(), 2);
    assert!(receiver.client_cert_connections() >= 1);
    assert_resource(&receiver);

    // Same CA, but no client certificate: the server must refuse.
    let without_cert = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(pki.tonic_client_tls(false))
        .with_timeout(FAIL_TIMEOUT)
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap();
    let result = without_cert.export(batch("must-not-arrive", 1)).await;
    assert!(result.is_err(), "export without client cert must fail");
    assert!(receiver.wait_until(WAIT, |r| r.tls_handshake_failures() >= 1));

    // A client that trusts a different CA must refuse the server.
    let other = TestPki::generate().unwrap();
    let wrong_ca = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(other.tonic_client_tls(true))
        .with_timeout(FAIL_TIMEOUT)
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap();
    assert!(wrong_ca.export(batch("must-not-arrive", 1)).await.is_err());

    assert_eq!(
        receiver.span_count(),
        2,
        "rejected clients delivered nothing"
    );
    assert!(receiver.spans().iter().all(|s| s.name == "mtls-span"));
    receiver.shutdown().await;
    assert_no_process_default_crypto_provider();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_server_only_tls_accepts_client_without_cert() {
    let pki = TestPki::generate().unwrap();
    let receiver = OtlpReceiver::grpc_tls(&pki, false).await.unwrap();
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(pki.tonic_client_tls(false))
        .build()
        .unwrap();
    exporter.export(batch("tls-span", 1)).await.unwrap();
    assert_eq!(receiver.span_count(), 1);
    assert_eq!(receiver.client_cert_connections(), 0);
    receiver.shutdown().await;
    assert_no_process_default_crypto_provider();
}

// ---------------------------------------------------------------------------------------
// HTTP/protobuf (reqwest blocking client => plain #[test], no tokio context)
// ---------------------------------------------------------------------------------------

#[test]
fn http_plain_receives_spans_logs_and_metrics_from_http_exporters() {
    let receiver = OtlpReceiver::http_blocking().unwrap();
    assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));

    let mut exporter = http_span_exporter(reqwest_plain(), receiver.traces_url());
    exporter.set_resource(&resource());
    futures_executor::block_on(exporter.export(batch("http-span", 4))).unwrap();
    assert_eq!(receiver.span_count(), 4);
    assert_resource(&receiver);
    let request = &receiver.received_requests()[0];
    assert_eq!(request.transport, Transport::Http);
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-protobuf")
    );

    let log_exporter = LogExporter::builder()
        .with_http()
        .with_http_client(reqwest_plain())
        .with_endpoint(receiver.logs_url())
        .build()
        .unwrap();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(log_exporter)
        .build();
    let logger = logger_provider.logger("receiver-selftest");
    let mut record = logger.create_log_record();
    record.set_body("hello over http".into());
    logger.emit(record);
    assert!(receiver.wait_for_log_records(1, WAIT));

    let metric_exporter = MetricExporter::builder()
        .with_http()
        .with_http_client(reqwest_plain())
        .with_endpoint(receiver.metrics_url())
        .build()
        .unwrap();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(
            PeriodicReader::builder(metric_exporter)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    meter_provider
        .meter("receiver-selftest")
        .u64_counter("selftest.http")
        .build()
        .add(1, &[]);
    meter_provider.force_flush().unwrap();
    assert!(receiver.wait_for_metrics(1, WAIT));
    assert!(receiver.metrics().iter().any(|m| m.name == "selftest.http"));

    logger_provider.shutdown().unwrap();
    meter_provider.shutdown().unwrap();
    assert_eq!(receiver.rejected_requests(), 0);
    receiver.shutdown_blocking();
}

#[test]
fn http_accepts_gzip_and_json_and_rejects_garbage() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;
    use std::io::Write as _;

    let receiver = OtlpReceiver::http_blocking().unwrap();
    let client = reqwest_plain();
    let message = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "raw".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&message.encode_to_vec()).unwrap();
    let response = client
        .post(receiver.traces_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");

    let response = client
        .post(receiver.traces_url())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&message).unwrap())
        .send()
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(receiver.span_count(), 2);

    let response = client
        .post(receiver.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(receiver.rejected_requests(), 1);
    assert_eq!(receiver.requests(), 2);
}

#[test]
fn http_mtls_delivers_with_client_cert_and_rejects_without() {
    let pki = TestPki::generate().unwrap();
    let receiver = OtlpReceiver::http_tls_blocking(&pki, true).unwrap();
    assert!(receiver.endpoint().starts_with("https://localhost:"));

    let mut exporter = http_span_exporter(reqwest_tls(&pki, true), receiver.traces_url());
    exporter.set_resource(&resource());
    futures_executor::block_on(exporter.export(batch("https-span", 2))).unwrap();
    assert_eq!(receiver.span_count(), 2);
    assert_resource(&receiver);
    assert!(receiver.client_cert_connections() >= 1);

    // IP-literal endpoint: verified against the certificate's IP SAN.
    let by_ip = http_span_exporter(
        reqwest_tls(&pki, true),
        format!("{}/v1/traces", receiver.endpoint_ip()),
    );
    futures_executor::block_on(by_ip.export(batch("https-span", 1))).unwrap();
    assert_eq!(receiver.span_count(), 3);

    let without_cert = http_span_exporter(reqwest_tls(&pki, false), receiver.traces_url());
    assert!(futures_executor::block_on(without_cert.export(batch("must-not-arrive", 1))).is_err());
    assert!(receiver.wait_until(WAIT, |r| r.tls_handshake_failures() >= 1));

    let other = TestPki::generate().unwrap();
    let wrong_ca = http_span_exporter(reqwest_tls(&other, true), receiver.traces_url());
    assert!(futures_executor::block_on(wrong_ca.export(batch("must-not-arrive", 1))).is_err());

    assert_eq!(
        receiver.span_count(),
        3,
        "rejected clients delivered nothing"
    );
    receiver.shutdown_blocking();
    assert_no_process_default_crypto_provider();
}

/// With `rustls-no-provider` and no process-default provider, a reqwest client built
/// without a preconfigured TLS config panics in `build()` (inside reqwest's runtime
/// thread, re-raised as "event loop thread panicked") - even if only `http://` is used.
#[test]
fn reqwest_blocking_without_preconfigured_tls_panics_when_no_provider_installed() {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return; // cannot observe the failure mode in this process
    }
    let result = std::panic::catch_unwind(|| reqwest::blocking::Client::builder().build());
    assert!(
        result.is_err(),
        "expected reqwest build to panic without a provider"
    );
    // The preconfigured variant builds fine.
    drop(reqwest_plain());
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_port_async() {
    let receiver = OtlpReceiver::http().await.unwrap();
    let addr = receiver.addr();
    assert!(addr.ip().is_loopback());
    // An idle keep-alive connection must not block graceful shutdown.
    let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    receiver.shutdown().await;
    receiver.shutdown().await; // idempotent
    tokio::net::TcpListener::bind(addr).await.unwrap();
}

#[test]
fn drop_of_blocking_receiver_releases_port() {
    let receiver = OtlpReceiver::grpc_blocking().unwrap();
    let addr = receiver.addr();
    drop(receiver);
    std::net::TcpListener::bind(addr).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_files_written_to_disk_work_for_a_tonic_mtls_exporter() {
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = pki.write_to(dir.path()).unwrap();
    for path in [
        &paths.ca,
        &paths.server_cert,
        &paths.server_key,
        &paths.client_cert,
        &paths.client_key,
    ] {
        assert!(path.starts_with(dir.path()));
    }
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    assert!(read(&paths.ca).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(read(&paths.client_key).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(read(&paths.server_cert), pki.server_cert_pem);

    // Configure the client only from the files, as OTEL_EXPORTER_OTLP_CERTIFICATE /
    // _CLIENT_CERTIFICATE / _CLIENT_KEY would.
    let receiver = OtlpReceiver::grpc_tls(&pki, true).await.unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(&paths.ca)))
        .identity(tonic::transport::Identity::from_pem(
            read(&paths.client_cert),
            read(&paths.client_key),
        ));
    // No domain_name override: the `localhost` host of the endpoint is verified.
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(tls)
        .build()
        .unwrap();
    exporter.export(batch("from-files", 1)).await.unwrap();
    assert_eq!(receiver.span_count(), 1);
    receiver.shutdown().await;
}
