//! In-process OTLP receiver for integration tests.
//!
//! Built only on the official OTLP protobuf definitions from `opentelemetry-proto`
//! (generated tonic server traits for gRPC, prost messages for HTTP/protobuf).
//!
//! * Always binds `127.0.0.1:0` (ephemeral port, loopback only).
//! * gRPC: tonic server implementing `TraceService`, `MetricsService`, `LogsService`
//!   (accepts gzip-compressed messages).
//! * HTTP: axum server with `POST /v1/traces`, `/v1/metrics`, `/v1/logs`, accepting
//!   `application/x-protobuf` (answered with a protobuf response) and `application/json`
//!   (answered with JSON), optionally `Content-Encoding: gzip`.
//! * TLS / mTLS for both: the TLS handshake is done here with tokio-rustls and an explicit
//!   ring `CryptoProvider` (not with tonic's `ServerTlsConfig`, whose
//!   `ServerConfig::builder()` silently installs ring as the *process-wide default*
//!   provider; that would mask "no crypto provider installed" bugs of the SDK under test
//!   in the same test binary).
//! * Async constructors spawn onto the caller's tokio runtime; `*_blocking` constructors
//!   run the server on a dedicated runtime in a background thread (for plain `#[test]`s).
//! * Shutdown is graceful (bounded by [`SHUTDOWN_GRACE`]) and also triggered on drop; the
//!   listening socket is closed once the accept loop stops.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::{Condvar, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::pki::TestPki;

/// Upper bound for graceful shutdown before in-flight connections are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Upper bound for one TLS handshake on the server side.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for waiting on a background server thread to report that it listens.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// OTLP signal of a received export request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `ExportTraceServiceRequest`
    Traces,
    /// `ExportMetricsServiceRequest`
    Metrics,
    /// `ExportLogsServiceRequest`
    Logs,
}

/// Wire transport of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC (tonic).
    Grpc,
    /// OTLP/HTTP (axum).
    Http,
}

/// Metadata of one successfully decoded export request.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// Which signal the request carried.
    pub signal: Signal,
    /// How it arrived.
    pub transport: Transport,
    /// Request headers (gRPC: metadata), lower-case names, non-UTF-8 values skipped.
    pub headers: Vec<(String, String)>,
    /// `Content-Encoding` (HTTP) or `grpc-encoding` (gRPC), if any.
    pub content_encoding: Option<String>,
    /// `Content-Type` as sent by the client.
    pub content_type: Option<String>,
}

impl ReceivedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Recorded {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    requests: Vec<ReceivedRequest>,
}

impl Recorded {
    fn span_count(&self) -> usize {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    fn log_record_count(&self) -> usize {
        self.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum()
    }

    fn metric_count(&self) -> usize {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .map(|sm| sm.metrics.len())
            .sum()
    }
}

#[derive(Default)]
struct Shared {
    recorded: Mutex<Recorded>,
    changed: Condvar,
    connections: AtomicUsize,
    tls_handshake_failures: AtomicUsize,
    client_cert_connections: AtomicUsize,
    rejected_requests: AtomicUsize,
    /// Requests whose `x-stellaops-tenant` is this value are refused (HTTP 403, gRPC
    /// `PERMISSION_DENIED`: neither is retried) and not recorded.
    refused_tenant: Mutex<Option<String>>,
}

impl Shared {
    /// Whether `request` names the refused tenant.
    fn refuses(&self, request: &ReceivedRequest) -> bool {
        let refused = self.refused_tenant.lock();
        refused.is_some() && request.header("x-stellaops-tenant") == refused.as_deref()
    }

    fn record(&self, request: ReceivedRequest, store: impl FnOnce(&mut Recorded)) {
        let mut recorded = self.recorded.lock();
        store(&mut recorded);
        recorded.requests.push(request);
        drop(recorded);
        self.changed.notify_all();
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// gRPC services
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct GrpcSink(Arc<Shared>);

impl GrpcSink {
    fn meta<T>(request: &tonic::Request<T>, signal: Signal) -> ReceivedRequest {
        let headers = request.metadata().clone().into_headers();
        ReceivedRequest {
            signal,
            transport: Transport::Grpc,
            headers: header_pairs(&headers),
            content_encoding: header_str(&headers, "grpc-encoding"),
            content_type: header_str(&headers, "content-type"),
        }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let meta = Self::meta(&request, Signal::Traces);
        if self.0.refuses(&meta) {
            self.0.rejected_requests.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::permission_denied("tenant refused"));
        }
        let message = request.into_inner();
        self.0.record(meta, |r| r.traces.push(message));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let meta = Self::meta(&request, Signal::Metrics);
        let message = request.into_inner();
        self.0.record(meta, |r| r.metrics.push(message));
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let meta = Self::meta(&request, Signal::Logs);
        if self.0.refuses(&meta) {
            self.0.rejected_requests.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::permission_denied("tenant refused"));
        }
        let message = request.into_inner();
        self.0.record(meta, |r| r.logs.push(message));
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn serve_grpc<Io>(
    rx: mpsc::Receiver<(Io, SocketAddr)>,
    shared: Arc<Shared>,
    signal: BoxFuture,
) where
    Io: AsyncRead + AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
    Io::ConnectInfo: Clone + Send + Sync + 'static,
{
    use tonic::codec::CompressionEncoding;
    let sink = GrpcSink(shared);
    let incoming = ReceiverStream::new(rx).map(|(io, _peer)| Ok::<_, io::Error>(io));
    let result = tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(sink.clone()).accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            MetricsServiceServer::new(sink.clone()).accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(LogsServiceServer::new(sink).accept_compressed(CompressionEncoding::Gzip))
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    if let Err(err) = result {
        eprintln!("OtlpReceiver(gRPC): server error: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// HTTP handlers
// ---------------------------------------------------------------------------------------

fn reject(shared: &Shared, status: StatusCode, message: String) -> Response {
    shared.rejected_requests.fetch_add(1, Ordering::SeqCst);
    eprintln!("OtlpReceiver(HTTP): rejecting request: {status} {message}");
    (status, message).into_response()
}

fn gunzip(body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

fn http_export<Req, Resp>(
    shared: &Shared,
    signal: Signal,
    headers: &HeaderMap,
    body: &Bytes,
    store: fn(&mut Recorded, Req),
) -> Response
where
    Req: prost::Message + Default + serde::de::DeserializeOwned,
    Resp: prost::Message + Default + serde::Serialize,
{
    let content_encoding = header_str(headers, header::CONTENT_ENCODING.as_str());
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str());
    let decoded_body;
    let body: &[u8] = match content_encoding.as_deref().map(str::to_ascii_lowercase) {
        None => body,
        Some(enc) if enc == "identity" => body,
        Some(enc) if enc == "gzip" => match gunzip(body) {
            Ok(b) => {
                decoded_body = b;
                &decoded_body
            }
            Err(err) => {
                return reject(
                    shared,
                    StatusCode::BAD_REQUEST,
                    format!("bad gzip body: {err}"),
                );
            }
        },
        Some(enc) => {
            return reject(
                shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {enc:?}"),
            );
        }
    };
    let mime = content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let meta = ReceivedRequest {
        signal,
        transport: Transport::Http,
        headers: header_pairs(headers),
        content_encoding,
        content_type,
    };
    if shared.refuses(&meta) {
        return reject(shared, StatusCode::FORBIDDEN, "tenant refused".to_owned());
    }
    match mime.as_deref() {
        Some("application/x-protobuf") => match Req::decode(body) {
            Ok(message) => {
                shared.record(meta, |r| store(r, message));
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Resp::default().encode_to_vec(),
                )
                    .into_response()
            }
            Err(err) => reject(
                shared,
                StatusCode::BAD_REQUEST,
                format!("bad protobuf: {err}"),
            ),
        },
        Some("application/json") => match serde_json::from_slice::<Req>(body) {
            Ok(message) => {
                shared.record(meta, |r| store(r, message));
                match serde_json::to_vec(&Resp::default()) {
                    Ok(json) => {
                        ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                    }
                    Err(err) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
                    }
                }
            }
            Err(err) => reject(shared, StatusCode::BAD_REQUEST, format!("bad JSON: {err}")),
        },
        other => reject(
            shared,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type {other:?}"),
        ),
    }
}

async fn http_traces(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    http_export::<ExportTraceServiceRequest, ExportTraceServiceResponse>(
        &shared,
        Signal::Traces,
        &headers,
        &body,
        |r, m| r.traces.push(m),
    )
}

async fn http_metrics(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    http_export::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(
        &shared,
        Signal::Metrics,
        &headers,
        &body,
        |r, m| r.metrics.push(m),
    )
}

async fn http_logs(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    http_export::<ExportLogsServiceRequest, ExportLogsServiceResponse>(
        &shared,
        Signal::Logs,
        &headers,
        &body,
        |r, m| r.logs.push(m),
    )
}

/// axum listener fed by the accept loop (plain TCP or completed TLS handshakes).
struct ChannelListener<Io> {
    rx: mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
}

impl<Io> axum::serve::Listener for ChannelListener<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // Accept loop is gone (shutting down): never yield another connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn serve_http<Io>(
    rx: mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
    shared: Arc<Shared>,
    signal: BoxFuture,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = axum::Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/metrics", post(http_metrics))
        .route("/v1/logs", post(http_logs))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared);
    let result = axum::serve(ChannelListener { rx, local }, app)
        .with_graceful_shutdown(signal)
        .await;
    if let Err(err) = result {
        eprintln!("OtlpReceiver(HTTP): server error: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Accept loop, TLS
// ---------------------------------------------------------------------------------------

/// Accepts TCP connections, counts them, runs `handshake` per connection concurrently and
/// hands successful results to the server through a channel. Aborting the returned task
/// closes the listening socket.
fn spawn_acceptor<Io, F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    handshake: F,
) -> (
    mpsc::Receiver<(Io, SocketAddr)>,
    tokio::task::JoinHandle<()>,
)
where
    Io: Send + 'static,
    F: Fn(TcpStream, Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<Io>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    eprintln!("OtlpReceiver: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            let handshake = handshake(stream, Arc::clone(&shared));
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(io)) => {
                        let _ = tx.send((io, peer)).await;
                    }
                    Ok(Err(err)) => eprintln!("OtlpReceiver: TLS handshake failed: {err}"),
                    Err(_) => eprintln!("OtlpReceiver: TLS handshake timed out"),
                }
            });
        }
    });
    (rx, task)
}

async fn tls_handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    shared: Arc<Shared>,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    match acceptor.accept(stream).await {
        Ok(tls) => {
            if tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty())
            {
                shared
                    .client_cert_connections
                    .fetch_add(1, Ordering::SeqCst);
            }
            Ok(tls)
        }
        Err(err) => {
            shared.tls_handshake_failures.fetch_add(1, Ordering::SeqCst);
            Err(err)
        }
    }
}

fn io_other(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// Server-side rustls config with an explicit ring provider (never the process default).
/// `require_client_cert`: request and require a client certificate issued by the PKI's CA;
/// otherwise no client certificate is requested at all.
fn server_tls_config(
    pki: &TestPki,
    require_client_cert: bool,
    alpn: &[&[u8]],
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io_other)?;
    let builder = if require_client_cert {
        let roots = Arc::new(pki.root_store().map_err(io_other)?);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(io_other)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(pki.server_cert_chain(), pki.server_key_der())
        .map_err(io_other)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

async fn run_server(
    transport: Transport,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    done: std::sync::mpsc::Sender<()>,
) {
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("OtlpReceiver: local_addr failed: {err}");
            let _ = done.send(());
            return;
        }
    };
    let signal = {
        let mut stop = stop.clone();
        Box::pin(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }) as BoxFuture
    };
    let plain = |stream: TcpStream, _shared: Arc<Shared>| std::future::ready(Ok(stream));
    let (serve, acceptor): (BoxFuture, _) = match (transport, tls) {
        (Transport::Grpc, None) => {
            let (rx, acceptor) = spawn_acceptor(listener, Arc::clone(&shared), plain);
            (Box::pin(serve_grpc(rx, shared, signal)), acceptor)
        }
        (Transport::Http, None) => {
            let (rx, acceptor) = spawn_acceptor(listener, Arc::clone(&shared), plain);
            (Box::pin(serve_http(rx, local, shared, signal)), acceptor)
        }
        (Transport::Grpc, Some(config)) => {
            let tls = tokio_rustls::TlsAcceptor::from(config);
            let (rx, acceptor) = spawn_acceptor(listener, Arc::clone(&shared), move |s, sh| {
                tls_handshake(tls.clone(), s, sh)
            });
            (Box::pin(serve_grpc(rx, shared, signal)), acceptor)
        }
        (Transport::Http, Some(config)) => {
            let tls = tokio_rustls::TlsAcceptor::from(config);
            let (rx, acceptor) = spawn_acceptor(listener, Arc::clone(&shared), move |s, sh| {
                tls_handshake(tls.clone(), s, sh)
            });
            (Box::pin(serve_http(rx, local, shared, signal)), acceptor)
        }
    };
    let grace = {
        let mut stop = stop;
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    tokio::select! {
        () = serve => {}
        () = grace => eprintln!("OtlpReceiver: graceful shutdown exceeded {SHUTDOWN_GRACE:?}; dropping connections"),
    }
    acceptor.abort();
    let _ = acceptor.await; // listener socket is closed once the task is gone
    let _ = done.send(());
}

// ---------------------------------------------------------------------------------------
// Public handle
// ---------------------------------------------------------------------------------------

/// An in-process OTLP receiver that records everything it receives.
pub struct OtlpReceiver {
    shared: Arc<Shared>,
    transport: Transport,
    tls: bool,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("transport", &self.transport)
            .field("tls", &self.tls)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

const GRPC_ALPN: &[&[u8]] = &[b"h2"];
const HTTP_ALPN: &[&[u8]] = &[b"http/1.1"];

impl OtlpReceiver {
    /// Plain OTLP/gRPC receiver on the current tokio runtime.
    pub async fn grpc() -> io::Result<Self> {
        Self::start(Transport::Grpc, None).await
    }

    /// Plain OTLP/HTTP receiver on the current tokio runtime.
    pub async fn http() -> io::Result<Self> {
        Self::start(Transport::Http, None).await
    }

    /// OTLP/gRPC over TLS (server cert for `localhost`/`127.0.0.1` from `pki`);
    /// with `require_client_cert` the handshake requires a client cert issued by `pki`'s CA.
    pub async fn grpc_tls(pki: &TestPki, require_client_cert: bool) -> io::Result<Self> {
        let config = server_tls_config(pki, require_client_cert, GRPC_ALPN)?;
        Self::start(Transport::Grpc, Some(config)).await
    }

    /// OTLP/HTTP over TLS; see [`OtlpReceiver::grpc_tls`].
    pub async fn http_tls(pki: &TestPki, require_client_cert: bool) -> io::Result<Self> {
        let config = server_tls_config(pki, require_client_cert, HTTP_ALPN)?;
        Self::start(Transport::Http, Some(config)).await
    }

    /// Refuses every trace and log request (and HTTP metrics request) naming `tenant` in
    /// `x-stellaops-tenant` from now on, recording none of them.
    pub fn refuse_tenant(&self, tenant: &str) {
        *self.shared.refused_tenant.lock() = Some(tenant.to_owned());
    }

    /// [`OtlpReceiver::grpc`] on a dedicated runtime in a background thread.
    pub fn grpc_blocking() -> io::Result<Self> {
        Self::start_blocking(Transport::Grpc, None)
    }

    /// [`OtlpReceiver::http`] on a dedicated runtime in a background thread.
    pub fn http_blocking() -> io::Result<Self> {
        Self::start_blocking(Transport::Http, None)
    }

    /// [`OtlpReceiver::grpc_tls`] on a dedicated runtime in a background thread.
    pub fn grpc_tls_blocking(pki: &TestPki, require_client_cert: bool) -> io::Result<Self> {
        let config = server_tls_config(pki, require_client_cert, GRPC_ALPN)?;
        Self::start_blocking(Transport::Grpc, Some(config))
    }

    /// [`OtlpReceiver::http_tls`] on a dedicated runtime in a background thread.
    pub fn http_tls_blocking(pki: &TestPki, require_client_cert: bool) -> io::Result<Self> {
        let config = server_tls_config(pki, require_client_cert, HTTP_ALPN)?;
        Self::start_blocking(Transport::Http, Some(config))
    }

    /// Binds 127.0.0.1:0 and spawns the server onto the current runtime. Returns once the
    /// socket is listening (connections queue in the backlog until accepted).
    async fn start(
        transport: Transport,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let (receiver, _task) = Self::start_inner(transport, tls).await?;
        Ok(receiver)
    }

    async fn start_inner(
        transport: Transport,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let is_tls = tls.is_some();
        let task = tokio::spawn(run_server(
            transport,
            listener,
            tls,
            Arc::clone(&shared),
            stop_rx,
            done_tx,
        ));
        Ok((
            Self {
                shared,
                transport,
                tls: is_tls,
                addr,
                stop: stop_tx,
                done: Mutex::new(Some(done_rx)),
                thread: Mutex::new(None),
            },
            task,
        ))
    }

    fn start_blocking(
        transport: Transport,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Self>>();
        let thread = std::thread::Builder::new()
            .name("otlp-test-receiver".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("otlp-test-receiver-rt")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Self::start_inner(transport, tls).await {
                        Ok((receiver, task)) => {
                            if ready_tx.send(Ok(receiver)).is_ok() {
                                let _ = task.await;
                            }
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                        }
                    }
                });
                // Dropping the runtime here cancels any remaining connection tasks.
            })?;
        let receiver = ready_rx
            .recv_timeout(STARTUP_TIMEOUT)
            .map_err(|err| io_other(format!("receiver thread did not start: {err}")))??;
        *receiver.thread.lock() = Some(thread);
        Ok(receiver)
    }

    // --- addressing -----------------------------------------------------------------

    /// Base endpoint: `http://127.0.0.1:PORT`, or `https://localhost:PORT` for TLS
    /// (the server certificate is valid for `localhost` and `127.0.0.1`).
    pub fn endpoint(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}", self.addr.port())
        }
    }

    /// Like [`OtlpReceiver::endpoint`] but always with the IP literal host
    /// (`https://127.0.0.1:PORT` for TLS, verified against the certificate's IP SAN).
    pub fn endpoint_ip(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }

    /// Full OTLP/HTTP traces URL (`{endpoint}/v1/traces`), for exporters' `with_endpoint`.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint())
    }

    /// Full OTLP/HTTP metrics URL (`{endpoint}/v1/metrics`).
    pub fn metrics_url(&self) -> String {
        format!("{}/v1/metrics", self.endpoint())
    }

    /// Full OTLP/HTTP logs URL (`{endpoint}/v1/logs`).
    pub fn logs_url(&self) -> String {
        format!("{}/v1/logs", self.endpoint())
    }

    /// Bound socket address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Transport served.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the receiver speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    // --- recorded data --------------------------------------------------------------

    /// All received spans, flattened across requests, resources and scopes.
    pub fn spans(&self) -> Vec<Span> {
        self.shared
            .recorded
            .lock()
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    /// Number of received spans.
    pub fn span_count(&self) -> usize {
        self.shared.recorded.lock().span_count()
    }

    /// All received log records, flattened.
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.shared
            .recorded
            .lock()
            .logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.iter().cloned())
            .collect()
    }

    /// Number of received log records.
    pub fn log_record_count(&self) -> usize {
        self.shared.recorded.lock().log_record_count()
    }

    /// All received metrics, flattened (one entry per `Metric` per export).
    pub fn metrics(&self) -> Vec<Metric> {
        self.shared
            .recorded
            .lock()
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.iter().cloned())
            .collect()
    }

    /// Number of received `Metric`s.
    pub fn metric_count(&self) -> usize {
        self.shared.recorded.lock().metric_count()
    }

    /// Raw trace export requests, in arrival order.
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.shared.recorded.lock().traces.clone()
    }

    /// Raw metrics export requests, in arrival order.
    pub fn metrics_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.shared.recorded.lock().metrics.clone()
    }

    /// Raw logs export requests, in arrival order.
    pub fn logs_requests(&self) -> Vec<ExportLogsServiceRequest> {
        self.shared.recorded.lock().logs.clone()
    }

    /// Attributes of the first resource received (traces, then logs, then metrics).
    /// Empty if nothing was received.
    pub fn resource_attributes(&self) -> Vec<KeyValue> {
        let recorded = self.shared.recorded.lock();
        let from_traces = recorded
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .find_map(|rs| rs.resource.as_ref());
        let from_logs = || {
            recorded
                .logs
                .iter()
                .flat_map(|r| &r.resource_logs)
                .find_map(|rl| rl.resource.as_ref())
        };
        let from_metrics = || {
            recorded
                .metrics
                .iter()
                .flat_map(|r| &r.resource_metrics)
                .find_map(|rm| rm.resource.as_ref())
        };
        from_traces
            .or_else(from_logs)
            .or_else(from_metrics)
            .map(|resource| resource.attributes.clone())
            .unwrap_or_default()
    }

    /// String value of resource attribute `key` of the first resource, if present.
    pub fn resource_attribute_str(&self, key: &str) -> Option<String> {
        self.resource_attributes()
            .into_iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value?.value? {
                Value::StringValue(s) => Some(s),
                _ => None,
            })
    }

    /// Metadata of every successfully decoded export request, in arrival order.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        self.shared.recorded.lock().requests.clone()
    }

    /// Number of successfully decoded export requests (all signals).
    pub fn requests(&self) -> usize {
        self.shared.recorded.lock().requests.len()
    }

    /// Number of accepted TCP connections (before any TLS handshake).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Number of failed TLS handshakes (e.g. missing/untrusted client certificate).
    pub fn tls_handshake_failures(&self) -> usize {
        self.shared.tls_handshake_failures.load(Ordering::SeqCst)
    }

    /// Number of TLS connections on which the client presented a (verified) certificate.
    pub fn client_cert_connections(&self) -> usize {
        self.shared.client_cert_connections.load(Ordering::SeqCst)
    }

    /// Number of HTTP requests answered with an error (bad body, media type, encoding).
    pub fn rejected_requests(&self) -> usize {
        self.shared.rejected_requests.load(Ordering::SeqCst)
    }

    /// Forgets everything recorded so far (counters of connections etc. are kept).
    pub fn clear(&self) {
        let mut recorded = self.shared.recorded.lock();
        *recorded = Recorded::default();
    }

    // --- waiting --------------------------------------------------------------------

    /// Blocks the calling thread until `pred` holds on the recorded data or `timeout`
    /// elapses; returns whether it holds. Wakes on every received request. Do not call
    /// from a current-thread tokio runtime that also drives an exporter or this receiver.
    fn wait_recorded(&self, timeout: Duration, pred: impl Fn(&Recorded) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut recorded = self.shared.recorded.lock();
        loop {
            if pred(&recorded) {
                return true;
            }
            if self
                .shared
                .changed
                .wait_until(&mut recorded, deadline)
                .timed_out()
            {
                return pred(&recorded);
            }
        }
    }

    async fn wait_recorded_async(
        &self,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.shared.recorded.lock()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Blocking: waits until at least `n` spans arrived; `timeout` is an upper bound only.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded(timeout, |r| r.span_count() >= n)
    }

    /// Blocking: waits until at least `n` log records arrived.
    pub fn wait_for_log_records(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded(timeout, |r| r.log_record_count() >= n)
    }

    /// Blocking: waits until at least `n` `Metric`s arrived.
    pub fn wait_for_metrics(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded(timeout, |r| r.metric_count() >= n)
    }

    /// Blocking: waits until at least `n` export requests were decoded.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded(timeout, |r| r.requests.len() >= n)
    }

    /// Async: waits until at least `n` spans arrived (polls every 10 ms).
    pub async fn wait_for_spans_async(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded_async(timeout, |r| r.span_count() >= n)
            .await
    }

    /// Async: waits until at least `n` log records arrived.
    pub async fn wait_for_log_records_async(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded_async(timeout, |r| r.log_record_count() >= n)
            .await
    }

    /// Async: waits until at least `n` `Metric`s arrived.
    pub async fn wait_for_metrics_async(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded_async(timeout, |r| r.metric_count() >= n)
            .await
    }

    /// Async: waits until at least `n` export requests were decoded.
    pub async fn wait_for_requests_async(&self, n: usize, timeout: Duration) -> bool {
        self.wait_recorded_async(timeout, |r| r.requests.len() >= n)
            .await
    }

    /// Blocking: polls `cond` every 10 ms until it returns true or `timeout` elapses.
    /// `cond` may call this receiver's accessors.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    // --- shutdown -------------------------------------------------------------------

    fn signal_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Graceful shutdown, awaiting until the listening socket is closed (bounded by
    /// [`SHUTDOWN_GRACE`] plus a little). Idempotent. Works for every constructor.
    pub async fn shutdown(&self) {
        self.signal_stop();
        let done = self.done.lock().take();
        if let Some(done) = done {
            let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE + Duration::from_secs(5);
            // Ok: finished; Disconnected: server task/runtime already gone.
            while let Err(std::sync::mpsc::TryRecvError::Empty) = done.try_recv() {
                if tokio::time::Instant::now() >= deadline {
                    eprintln!("OtlpReceiver: shutdown did not complete in time");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.join_thread();
    }

    /// Graceful shutdown blocking the calling thread. Idempotent. Intended for the
    /// `*_blocking` constructors (or any receiver whose runtime is driven by other
    /// threads); do not call it on a current-thread runtime that serves this receiver.
    pub fn shutdown_blocking(&self) {
        self.signal_stop();
        let done = self.done.lock().take();
        if let Some(done) = done
            && let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                done.recv_timeout(SHUTDOWN_GRACE + Duration::from_secs(5))
        {
            eprintln!("OtlpReceiver: shutdown did not complete in time");
            return;
        }
        self.join_thread();
    }

    fn join_thread(&self) {
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            // The thread exits right after the server task reported completion.
            let _ = thread.join();
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.signal_stop();
        // Receivers with their own thread: wait for it so the port is released on return.
        // Receivers on the caller's runtime shut down in the background (waiting here
        // could deadlock a current-thread runtime).
        if self.thread.lock().is_some() {
            self.shutdown_blocking();
        }
    }
}
