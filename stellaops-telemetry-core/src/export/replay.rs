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

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
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
        transport
            .export(message.into_request())
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
enum Request {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Request {
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
    },
    Grpc {
        runtime: tokio::runtime::Runtime,
        channel: tonic::transport::Channel,
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
                let client =
                    crate::incidents::blocking_client(&replay.host, replay.https, replay.timeout)
                        .map_err(failed)?;
                Ok(Transport::Http {
                    client,
                    base: replay.endpoint.clone(),
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
                    let tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|e| failed(e.to_string()))?;
                }
                // tonic spawns the channel's worker on the runtime current at this call.
                let channel = {
                    let _entered = runtime.enter();
                    endpoint.connect_lazy()
                };
                Ok(Transport::Grpc { runtime, channel })
            }
        }
    }

    fn export(&self, request: Request) -> Result<(), String> {
        match self {
            Transport::Http { client, base } => {
                let url = format!("{base}{}", request.path());
                let body = request.encode();
                let send = || {
                    client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body)
                        .send()
                };
                let response = send().map_err(|e| crate::incidents::error_chain(&e))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", response.status()))
                }
            }
            Transport::Grpc { runtime, channel } => {
                runtime.block_on(grpc_export(channel.clone(), request))
            }
        }
    }
}

/// One gRPC export.
async fn grpc_export(channel: tonic::transport::Channel, request: Request) -> Result<(), String> {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let status = |s: tonic::Status| format!("gRPC {:?}: {}", s.code(), s.message());
    match request {
        Request::Traces(r) => TraceServiceClient::new(channel).export(r).await.map(drop),
        Request::Metrics(r) => MetricsServiceClient::new(channel).export(r).await.map(drop),
        Request::Logs(r) => LogsServiceClient::new(channel).export(r).await.map(drop),
    }
    .map_err(status)
}
