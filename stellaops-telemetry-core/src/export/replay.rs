//! Replay: OTLP records kept on disk (a bundle's varint-delimited `TracesData`, `MetricsData`
//! and `LogsData` streams) sent again to an OTLP endpoint, through the egress policy.
//!
//! The endpoint is checked against the policy before anything is read or dialled: a sealed
//! pipeline's policy refuses a non-loopback target here as it refuses any exporter. Messages
//! are read one at a time (a message is at most 64 MiB) and sent in requests of at most
//! 2 MiB, over OTLP/HTTP (protobuf) or OTLP/gRPC.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::{MetricsData, metric};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use crate::egress::{EgressPolicy, EgressTarget, Host, parse_endpoint};

/// The largest message read from a stream, in bytes.
const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// The most encoded bytes gathered into one request.
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

/// How the records are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayProtocol {
    /// OTLP/HTTP with protobuf bodies: `POST {endpoint}/v1/{traces,metrics,logs}`.
    HttpProtobuf,
    /// OTLP/gRPC to `{endpoint}`.
    Grpc,
}

/// What a replay sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Spans sent.
    pub spans: u64,
    /// Metric data points sent.
    pub points: u64,
    /// Log records sent.
    pub log_records: u64,
    /// Export requests made (each answered with success).
    pub requests: u64,
}

/// A replay that could not be made or was cut short, naming what was wrong. Records sent
/// before a failure are counted in `sent`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The endpoint is not an `http` or `https` URL with a host.
    #[error("invalid replay endpoint: {0}")]
    Endpoint(#[from] crate::EgressError),
    /// The egress policy refused the endpoint; nothing was sent.
    #[error("replay to {endpoint} refused by the egress policy ({policy}): {reason}")]
    Refused {
        /// The endpoint, masked.
        endpoint: String,
        /// The policy's name.
        policy: String,
        /// The policy's reason.
        reason: String,
    },
    /// A stream ended inside a message, or holds something that is not the signal's message.
    #[error("{signal} stream: message {index}: {reason}")]
    Corrupt {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The message's index in its stream.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The endpoint refused or failed a request.
    #[error("{signal} export to {endpoint} failed: {reason} (sent before: {sent:?})")]
    Export {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The endpoint, masked.
        endpoint: String,
        /// What the endpoint or the transport said.
        reason: String,
        /// What had been sent before.
        sent: ReplayReport,
    },
}

/// Sends OTLP streams to one endpoint.
///
/// ```
/// use std::sync::Arc;
/// use stellaops_telemetry_core::{Replay, ReplayError, ReplayProtocol, sealed_policy};
///
/// // A sealed pipeline's policy refuses a remote collector before anything is read.
/// let policy = Arc::from(sealed_policy(None));
/// let refused = Replay::new("http://192.0.2.10:4318", ReplayProtocol::HttpProtobuf, policy);
/// assert!(matches!(refused, Err(ReplayError::Refused { .. })));
/// ```
#[derive(Debug)]
pub struct Replay {
    endpoint: String,
    host: Host,
    https: bool,
    protocol: ReplayProtocol,
    timeout: Duration,
    tls: ReplayTls,
    /// The tenant header of every request ([`Replay::probe`] only).
    tenant: Option<http::HeaderValue>,
}

/// PEM material for an https endpoint: a CA trusted instead of the system's roots, and a
/// client certificate and key for mutual TLS. Default: the system's roots, no client
/// certificate.
#[derive(Clone, Default)]
pub(crate) struct ReplayTls {
    /// The CA certificates (PEM) that verify the endpoint.
    pub(crate) ca: Option<Vec<u8>>,
    /// The client certificate chain and its private key (PEM).
    pub(crate) client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ReplayTls {
    /// Whether each part is set; the key is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayTls")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// What the endpoint answered to one export request it accepted: the records it rejected
/// all the same (OTLP's partial success), and its message.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Spans, data points or log records rejected.
    pub(crate) rejected: i64,
    /// The endpoint's message (empty when it sent none).
    pub(crate) message: String,
}

/// One export request sent on its own and timed.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct Probe {
    /// `traces`, `metrics` or `logs`.
    pub(crate) signal: &'static str,
    /// From the request's start to its answer (or failure), connection set-up included.
    pub(crate) elapsed: Duration,
    /// The answer of an accepted request, or what the endpoint or the transport said.
    pub(crate) result: Result<Answer, String>,
}

impl Replay {
    /// A replay to `endpoint` (the collector's base URL, e.g. `http://127.0.0.1:4318`), checked
    /// now against `policy` for every signal.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Endpoint`] for a malformed URL, [`ReplayError::Refused`] when the policy
    /// refuses it.
    pub fn new(
        endpoint: &str,
        protocol: ReplayProtocol,
        policy: Arc<dyn EgressPolicy>,
    ) -> Result<Replay, ReplayError> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let (host, port) = parse_endpoint(&endpoint)?;
        for signal in ["traces", "metrics", "logs"] {
            let target = EgressTarget {
                signal,
                url: &endpoint,
                host: &host,
                port,
            };
            if let crate::EgressDecision::Refuse { reason } = policy.check(&target) {
                return Err(ReplayError::Refused {
                    endpoint: crate::egress::mask_url(&endpoint),
                    policy: policy.name().to_owned(),
                    reason,
                });
            }
        }
        let https = endpoint
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        Ok(Replay {
            endpoint,
            host,
            https,
            protocol,
            timeout: Duration::from_secs(10),
            tls: ReplayTls::default(),
            tenant: None,
        })
    }

    /// The TLS material used for an https endpoint. Default: the system's roots, no client
    /// certificate.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn tls(mut self, tls: ReplayTls) -> Replay {
        self.tls = tls;
        self
    }

    /// The tenant every probe request names in its `X-StellaOps-Tenant` header (gRPC metadata
    /// `x-stellaops-tenant`), as the SDK's exporters do, so a collector that routes by tenant
    /// routes it.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn tenant(mut self, tenant: Option<http::HeaderValue>) -> Replay {
        self.tenant = tenant;
        self
    }

    /// Sends each request on its own, in order, and times it: every request is tried, even
    /// after one failed.
    ///
    /// Blocks the calling thread; called inside an async runtime, it does its work on a
    /// thread of its own.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn probe(&self, requests: Vec<Request>) -> Vec<Probe> {
        crate::incidents::outside_runtime(|| {
            let transport = Transport::new(self).map(|t| t.with_tenant(self.tenant.clone()));
            requests
                .into_iter()
                .map(|request| {
                    let signal = request.signal();
                    let start = std::time::Instant::now();
                    let result = match &transport {
                        Ok(transport) => transport.export(request),
                        Err(ReplayError::Export { reason, .. }) => Err(reason.clone()),
                        Err(other) => Err(other.to_string()),
                    };
                    Probe {
                        signal,
                        elapsed: start.elapsed(),
                        result,
                    }
                })
                .collect()
        })
    }

    /// The bound of one export request. Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Replay {
        self.timeout = timeout;
        self
    }

    /// Reads the three streams (varint-delimited messages) and sends every record; returns
    /// what was sent.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Corrupt`] for a stream that does not decode, [`ReplayError::Export`] for
    /// a request the endpoint refused or that failed.
    ///
    /// Blocks the calling thread; called inside an async runtime, it does its work on a
    /// thread of its own (its clients cannot run on, or be dropped in, another runtime).
    pub fn send(
        &self,
        traces: &mut (dyn Read + Send),
        metrics: &mut (dyn Read + Send),
        logs: &mut (dyn Read + Send),
    ) -> Result<ReplayReport, ReplayError> {
        crate::incidents::outside_runtime(|| {
            let transport = Transport::new(self)?;
            let mut report = ReplayReport::default();
            self.send_signal::<TracesData>(&transport, traces, &mut report)?;
            self.send_signal::<MetricsData>(&transport, metrics, &mut report)?;
            self.send_signal::<LogsData>(&transport, logs, &mut report)?;
            Ok(report)
        })
    }

    /// Sends one signal's stream, gathering messages into requests of at most 2 MiB.
    fn send_signal<M: Signal>(
        &self,
        transport: &Transport,
        stream: &mut (dyn Read + Send),
        report: &mut ReplayReport,
    ) -> Result<(), ReplayError> {
        let mut pending = M::default();
        let mut index = 0u64;
        while let Some(message) = read_message::<M>(stream, index)? {
            index += 1;
            pending.absorb(message);
            if pending.encoded_len() >= MAX_REQUEST_BYTES {
                self.flush(transport, &mut pending, report)?;
            }
        }
        self.flush(transport, &mut pending, report)
    }

    fn flush<M: Signal>(
        &self,
        transport: &Transport,
        pending: &mut M,
        report: &mut ReplayReport,
    ) -> Result<(), ReplayError> {
        if pending.is_empty() {
            return Ok(());
        }
        let message = std::mem::take(pending);
        let count = message.count();
        // A partial success still counts as sent: replay reports what the endpoint took.
        transport
            .export(message.into_request())
            .map(drop)
            .map_err(|reason| ReplayError::Export {
                signal: M::NAME,
                endpoint: crate::egress::mask_url(&self.endpoint),
                reason,
                sent: *report,
            })?;
        M::add(report, count);
        report.requests += 1;
        Ok(())
    }
}

/// Reads the next varint-delimited message; `None` at a clean end of the stream.
fn read_message<M: Message + Default>(
    stream: &mut (dyn Read + Send),
    index: u64,
) -> Result<Option<M>, ReplayError> {
    let corrupt = |reason: String| ReplayError::Corrupt {
        signal: std::any::type_name::<M>()
            .rsplit("::")
            .next()
            .map_or("otlp", |n| match n {
                "TracesData" => "traces",
                "MetricsData" => "metrics",
                _ => "logs",
            }),
        index,
        reason,
    };
    let mut length = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) if shift == 0 => return Ok(None),
            Ok(0) => return Err(corrupt("the stream ends inside a length".to_owned())),
            Ok(_) => {}
            Err(e) => return Err(corrupt(format!("cannot read: {e}"))),
        }
        length |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            if length > MAX_MESSAGE_BYTES {
                return Err(corrupt(format!(
                    "a message of {length} bytes is over 64 MiB"
                )));
            }
            let mut body = Vec::new();
            stream
                .take(length)
                .read_to_end(&mut body)
                .map_err(|e| corrupt(format!("cannot read: {e}")))?;
            if body.len() as u64 != length {
                return Err(corrupt("the stream ends inside a message".to_owned()));
            }
            return M::decode(body.as_slice())
                .map(Some)
                .map_err(|e| corrupt(format!("does not decode: {e}")));
        }
    }
    Err(corrupt("a length longer than 10 bytes".to_owned()))
}

/// One signal's message: how requests are made of it and what it counts.
trait Signal: Message + Default + Sized {
    const NAME: &'static str;
    fn absorb(&mut self, other: Self);
    fn is_empty(&self) -> bool;
    fn count(&self) -> u64;
    fn add(report: &mut ReplayReport, n: u64);
    fn into_request(self) -> Request;
}

/// One export request, of one signal.
pub(crate) enum Request {
    /// `POST /v1/traces`, `TraceService/Export`.
    Traces(ExportTraceServiceRequest),
    /// `POST /v1/metrics`, `MetricsService/Export`.
    Metrics(ExportMetricsServiceRequest),
    /// `POST /v1/logs`, `LogsService/Export`.
    Logs(ExportLogsServiceRequest),
}

impl Request {
    fn signal(&self) -> &'static str {
        match self {
            Request::Traces(_) => "traces",
            Request::Metrics(_) => "metrics",
            Request::Logs(_) => "logs",
        }
    }

    /// The partial success in an OTLP/HTTP response body (protobuf); an empty body is a full
    /// success. A body that is not an OTLP response (a proxy's page, say) came with a success
    /// status all the same: the request was accepted, and the answer says what was odd.
    fn answer_of(&self, body: &[u8]) -> Answer {
        let partial = match self {
            Request::Traces(_) => ExportTraceServiceResponse::decode(body).map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_spans, p.error_message))
            }),
            Request::Metrics(_) => ExportMetricsServiceResponse::decode(body).map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_data_points, p.error_message))
            }),
            Request::Logs(_) => ExportLogsServiceResponse::decode(body).map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_log_records, p.error_message))
            }),
        };
        match partial {
            Ok(partial) => partial.map_or_else(Answer::default, |(rejected, message)| Answer {
                rejected,
                message,
            }),
            Err(e) => Answer {
                rejected: 0,
                message: format!("the success response is not an OTLP response: {e}"),
            },
        }
    }

    fn path(&self) -> &'static str {
        match self {
            Request::Traces(_) => "/v1/traces",
            Request::Metrics(_) => "/v1/metrics",
            Request::Logs(_) => "/v1/logs",
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Request::Traces(r) => r.encode_to_vec(),
            Request::Metrics(r) => r.encode_to_vec(),
            Request::Logs(r) => r.encode_to_vec(),
        }
    }
}

impl Signal for TracesData {
    const NAME: &'static str = "traces";
    fn absorb(&mut self, other: Self) {
        self.resource_spans.extend(other.resource_spans);
    }
    fn is_empty(&self) -> bool {
        self.resource_spans.is_empty()
    }
    fn count(&self) -> u64 {
        let spans = self.resource_spans.iter().flat_map(|r| &r.scope_spans);
        spans.map(|s| s.spans.len() as u64).sum()
    }
    fn add(report: &mut ReplayReport, n: u64) {
        report.spans += n;
    }
    fn into_request(self) -> Request {
        Request::Traces(ExportTraceServiceRequest {
            resource_spans: self.resource_spans,
        })
    }
}

impl Signal for MetricsData {
    const NAME: &'static str = "metrics";
    fn absorb(&mut self, other: Self) {
        self.resource_metrics.extend(other.resource_metrics);
    }
    fn is_empty(&self) -> bool {
        self.resource_metrics.is_empty()
    }
    fn count(&self) -> u64 {
        let metrics = self
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics);
        metrics.map(|m| points(m.data.as_ref())).sum()
    }
    fn add(report: &mut ReplayReport, n: u64) {
        report.points += n;
    }
    fn into_request(self) -> Request {
        Request::Metrics(ExportMetricsServiceRequest {
            resource_metrics: self.resource_metrics,
        })
    }
}

impl Signal for LogsData {
    const NAME: &'static str = "logs";
    fn absorb(&mut self, other: Self) {
        self.resource_logs.extend(other.resource_logs);
    }
    fn is_empty(&self) -> bool {
        self.resource_logs.is_empty()
    }
    fn count(&self) -> u64 {
        let logs = self.resource_logs.iter().flat_map(|r| &r.scope_logs);
        logs.map(|s| s.log_records.len() as u64).sum()
    }
    fn add(report: &mut ReplayReport, n: u64) {
        report.log_records += n;
    }
    fn into_request(self) -> Request {
        Request::Logs(ExportLogsServiceRequest {
            resource_logs: self.resource_logs,
        })
    }
}

/// The data points of one metric.
fn points(data: Option<&metric::Data>) -> u64 {
    match data {
        Some(metric::Data::Gauge(g)) => g.data_points.len() as u64,
        Some(metric::Data::Sum(s)) => s.data_points.len() as u64,
        Some(metric::Data::Histogram(h)) => h.data_points.len() as u64,
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
        Some(metric::Data::Summary(s)) => s.data_points.len() as u64,
        None => 0,
    }
}

/// The connection the requests go through.
enum Transport {
    Http {
        client: reqwest::blocking::Client,
        base: String,
        tenant: Option<http::HeaderValue>,
    },
    Grpc {
        runtime: tokio::runtime::Runtime,
        channel: tonic::transport::Channel,
        tenant: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    },
}

impl Transport {
    fn new(replay: &Replay) -> Result<Transport, ReplayError> {
        let failed = |reason: String| ReplayError::Export {
            signal: "traces",
            endpoint: crate::egress::mask_url(&replay.endpoint),
            reason,
            sent: ReplayReport::default(),
        };
        match replay.protocol {
            ReplayProtocol::HttpProtobuf => {
                let client = http_client(replay).map_err(failed)?;
                Ok(Transport::Http {
                    client,
                    base: replay.endpoint.clone(),
                    tenant: None,
                })
            }
            ReplayProtocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| failed(format!("cannot start the gRPC runtime: {e}")))?;
                let mut endpoint = tonic::transport::Endpoint::from_shared(replay.endpoint.clone())
                    .map_err(|e| failed(e.to_string()))?
                    .timeout(replay.timeout)
                    .connect_timeout(replay.timeout);
                if replay.https {
                    let mut tls = tonic::transport::ClientTlsConfig::new();
                    tls = match &replay.tls.ca {
                        Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                        None => tls.with_native_roots(),
                    };
                    if let Some((cert, key)) = &replay.tls.client {
                        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
                    }
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|e| failed(e.to_string()))?;
                }
                // tonic spawns the channel's worker on the runtime current at this call.
                let channel = {
                    let _entered = runtime.enter();
                    endpoint.connect_lazy()
                };
                Ok(Transport::Grpc {
                    runtime,
                    channel,
                    tenant: None,
                })
            }
        }
    }

    /// The transport with every request naming `tenant`.
    fn with_tenant(mut self, tenant: Option<http::HeaderValue>) -> Transport {
        match &mut self {
            Transport::Http { tenant: slot, .. } => *slot = tenant,
            Transport::Grpc { tenant: slot, .. } => {
                // A header value of the tenant alphabet is always valid ASCII metadata.
                *slot = tenant.and_then(|t| t.to_str().ok().and_then(|t| t.parse().ok()));
            }
        }
        self
    }

    fn export(&self, request: Request) -> Result<Answer, String> {
        match self {
            Transport::Http {
                client,
                base,
                tenant,
            } => {
                let url = format!("{base}{}", request.path());
                let body = request.encode();
                let send = || {
                    let mut post = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf");
                    if let Some(tenant) = tenant {
                        post = post.header(crate::export::TENANT_HEADER, tenant.clone());
                    }
                    post.body(body).send()
                };
                let response = send().map_err(|e| crate::incidents::error_chain(&e))?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                // An OTLP response is small; a longer body is cut (and then will not decode).
                let mut answer = Vec::new();
                response
                    .take(MAX_RESPONSE_BYTES)
                    .read_to_end(&mut answer)
                    .map_err(|e| format!("cannot read the response: {e}"))?;
                Ok(request.answer_of(&answer))
            }
            Transport::Grpc {
                runtime,
                channel,
                tenant,
            } => runtime.block_on(grpc_export(channel.clone(), request, tenant.clone())),
        }
    }
}

/// The blocking HTTP client: the system's roots, or the CA and client certificate given.
fn http_client(replay: &Replay) -> Result<reqwest::blocking::Client, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let tls = &replay.tls;
    if tls.ca.is_none() && tls.client.is_none() {
        return crate::incidents::blocking_client(&replay.host, replay.https, replay.timeout);
    }
    let provider = Arc::new(crate::tls::provider());
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| format!("CA certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate: {e}"))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match &tls.client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    crate::incidents::blocking_client_with_tls(&replay.host, config, replay.timeout)
}

/// The most bytes of an OTLP/HTTP response read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// `message` as a gRPC request with the tenant in its metadata, as the SDK's gRPC exporter
/// sends it.
fn with_tenant<M>(
    message: M,
    tenant: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    if let Some(tenant) = tenant {
        request
            .metadata_mut()
            .insert(crate::export::TENANT_HEADER, tenant.clone());
    }
    request
}

/// One gRPC export.
async fn grpc_export(
    channel: tonic::transport::Channel,
    request: Request,
    tenant: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
) -> Result<Answer, String> {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    // The status's causes too: a connection failure says what failed only there.
    let status = |s: tonic::Status| {
        let mut text = format!("gRPC {:?}: {}", s.code(), s.message());
        let mut source = std::error::Error::source(&s);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    };
    let answer = |partial: Option<(i64, String)>| {
        partial.map_or_else(Answer::default, |(rejected, message)| Answer {
            rejected,
            message,
        })
    };
    Ok(match request {
        Request::Traces(r) => answer(
            TraceServiceClient::new(channel)
                .export(with_tenant(r, tenant.as_ref()))
                .await
                .map_err(status)?
                .into_inner()
                .partial_success
                .map(|p| (p.rejected_spans, p.error_message)),
        ),
        Request::Metrics(r) => answer(
            MetricsServiceClient::new(channel)
                .export(with_tenant(r, tenant.as_ref()))
                .await
                .map_err(status)?
                .into_inner()
                .partial_success
                .map(|p| (p.rejected_data_points, p.error_message)),
        ),
        Request::Logs(r) => answer(
            LogsServiceClient::new(channel)
                .export(with_tenant(r, tenant.as_ref()))
                .await
                .map_err(status)?
                .into_inner()
                .partial_success
                .map(|p| (p.rejected_log_records, p.error_message)),
        ),
    })
}
