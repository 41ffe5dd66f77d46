#![allow(dead_code)]

//! An in-process OTLP receiver (gRPC or HTTP/protobuf) that can be switched off and on, for
//! outage drills.
//!
//! Included with `#[path]` by the binaries that need it (it is not part of `support/mod.rs`,
//! so the other test binaries do not compile it).
//!
//! * Binds `127.0.0.1:0` only: a front listener (the endpoint handed to the exporter) that
//!   pipes each connection to a tonic (gRPC) or axum (HTTP) server on a second loopback port.
//! * Off: the front port is closed (connections are refused) and every open pipe is cut, as
//!   when a collector goes away; requests that reach the server meanwhile are answered
//!   `UNAVAILABLE` (HTTP 503) and not counted.
//! * Counts what it accepted per signal (spans, log records, metric data points), so a drill
//!   can check delivered + dropped == produced.
//! * Runs on its own runtime; usable from plain `#[test]`s and from async tests alike.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the receiver accepted, and whether it is up.
#[derive(Debug, Default)]
struct Counts {
    up: AtomicBool,
    in_flight: AtomicUsize,
    spans: AtomicU64,
    logs: AtomicU64,
    points: AtomicU64,
    refused_requests: AtomicU64,
    refused_connections: AtomicU64,
}

#[derive(Clone)]
struct Sink(Arc<Counts>);

impl Sink {
    /// Counts `n` into `counter` when up; `UNAVAILABLE` otherwise. The in-flight count lets
    /// `switch_off` wait for requests already counted to be answered before it cuts pipes.
    fn accept(&self, counter: &AtomicU64, n: u64) -> Result<(), tonic::Status> {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = if self.0.up.load(Ordering::SeqCst) {
            counter.fetch_add(n, Ordering::SeqCst);
            Ok(())
        } else {
            self.0.refused_requests.fetch_add(1, Ordering::SeqCst);
            Err(tonic::Status::unavailable("collector is down"))
        };
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn span_count(r: &ExportTraceServiceRequest) -> u64 {
    r.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

fn log_count(r: &ExportLogsServiceRequest) -> u64 {
    r.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum()
}

fn point_count(r: &ExportMetricsServiceRequest) -> u64 {
    r.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len() as u64,
            Some(Data::Sum(s)) => s.data_points.len() as u64,
            Some(Data::Histogram(h)) => h.data_points.len() as u64,
            Some(Data::ExponentialHistogram(e)) => e.data_points.len() as u64,
            Some(Data::Summary(s)) => s.data_points.len() as u64,
            None => 0,
        })
        .sum()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.accept(&self.0.spans, span_count(request.get_ref()))?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.accept(&self.0.logs, log_count(request.get_ref()))?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.accept(&self.0.points, point_count(request.get_ref()))?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with protobuf bodies: 503 while off.
fn http_router(sink: Sink) -> axum::Router {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::routing::post;
    use prost::Message;

    async fn answer<Req: Message + Default, Resp: Message + Default>(
        body: Bytes,
        count: impl FnOnce(&Req) -> Result<(), tonic::Status>,
    ) -> (StatusCode, Vec<u8>) {
        let Ok(request) = Req::decode(body) else {
            return (StatusCode::BAD_REQUEST, Vec::new());
        };
        match count(&request) {
            Ok(()) => (StatusCode::OK, Resp::default().encode_to_vec()),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
        }
    }

    let (traces, logs, metrics) = (sink.clone(), sink.clone(), sink);
    axum::Router::new()
        .route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                answer::<ExportTraceServiceRequest, ExportTraceServiceResponse>(body, |r| {
                    traces.accept(&traces.0.spans, span_count(r))
                })
                .await
            }),
        )
        .route(
            "/v1/logs",
            post(move |body: Bytes| async move {
                answer::<ExportLogsServiceRequest, ExportLogsServiceResponse>(body, |r| {
                    logs.accept(&logs.0.logs, log_count(r))
                })
                .await
            }),
        )
        .route(
            "/v1/metrics",
            post(move |body: Bytes| async move {
                answer::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(body, |r| {
                    metrics.accept(&metrics.0.points, point_count(r))
                })
                .await
            }),
        )
}

/// Delivered counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivered {
    /// Spans accepted.
    pub spans: u64,
    /// Log records accepted.
    pub logs: u64,
    /// Metric data points accepted.
    pub points: u64,
}

/// The receiver; stops (in the background) when dropped.
pub struct SwitchableReceiver {
    front: SocketAddr,
    back: SocketAddr,
    counts: Arc<Counts>,
    cut: watch::Sender<u64>,
    /// The accept loop on the front port while up; `None` while off (the port is closed).
    accepting: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SwitchableReceiver {
    /// Starts the receiver, up, answering OTLP/gRPC.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(false)
    }

    /// Starts the receiver, up, answering OTLP/HTTP with protobuf bodies.
    pub fn start_http() -> std::io::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(http: bool) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("drill-receiver")
            .enable_all()
            .build()?;
        let counts = Arc::new(Counts::default());
        counts.up.store(true, Ordering::SeqCst);
        let (cut, _) = watch::channel(0u64);
        // Bound without `block_on`, which would panic when called inside an async test.
        let bind = || {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            listener.set_nonblocking(true)?;
            std::io::Result::Ok(listener)
        };
        let (front, back) = (bind()?, bind()?);
        let _entered = runtime.enter();
        let (front, back) = (TcpListener::from_std(front)?, TcpListener::from_std(back)?);
        let back_addr = back.local_addr()?;
        let front_addr = front.local_addr()?;
        let sink = Sink(counts.clone());
        if http {
            runtime.spawn(async move {
                let _ = axum::serve(back, http_router(sink)).await;
            });
        } else {
            runtime.spawn(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(back);
                let _ = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(sink.clone()))
                    .add_service(LogsServiceServer::new(sink.clone()))
                    .add_service(MetricsServiceServer::new(sink))
                    .serve_with_incoming(incoming)
                    .await;
            });
        }
        let accepting = runtime.spawn(accept_loop(front, back_addr, counts.clone(), cut.clone()));
        Ok(SwitchableReceiver {
            front: front_addr,
            back: back_addr,
            accepting: std::sync::Mutex::new(Some(accepting)),
            counts,
            cut,
            runtime: Some(runtime),
        })
    }

    /// The endpoint to hand to the exporter (`http://127.0.0.1:port`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.front)
    }

    /// Whether it is up.
    pub fn is_up(&self) -> bool {
        self.counts.up.load(Ordering::SeqCst)
    }

    /// Takes the collector away: new requests are refused (not counted); once the requests
    /// already counted have been answered, the front port is closed (connections to it are
    /// refused by the kernel, as when a collector is down) and every open connection is cut.
    pub fn switch_off(&self) {
        self.counts.up.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.counts.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The answers of requests counted just before: let them reach the client, or the
        // client would count as lost what the receiver counted as delivered.
        std::thread::sleep(Duration::from_millis(100));
        if let Some(accepting) = self.accepting.lock().unwrap().take() {
            accepting.abort();
            // The listener closes when the aborted task is dropped.
            while !accepting.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// Brings the collector back on the same port.
    pub fn switch_on(&self) {
        self.counts.up.store(true, Ordering::SeqCst);
        let mut accepting = self.accepting.lock().unwrap();
        if accepting.is_some() {
            return;
        }
        let runtime = self.runtime.as_ref().unwrap();
        // The port was ours a moment ago; std sets SO_REUSEADDR, so the connections of the
        // previous listener waiting out TIME_WAIT do not keep it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.front) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", self.front);
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.front),
            }
        };
        listener.set_nonblocking(true).unwrap();
        let _entered = runtime.enter();
        let listener = TcpListener::from_std(listener).unwrap();
        *accepting = Some(runtime.spawn(accept_loop(
            listener,
            self.back,
            self.counts.clone(),
            self.cut.clone(),
        )));
    }

    /// What it accepted so far.
    pub fn delivered(&self) -> Delivered {
        Delivered {
            spans: self.counts.spans.load(Ordering::SeqCst),
            logs: self.counts.logs.load(Ordering::SeqCst),
            points: self.counts.points.load(Ordering::SeqCst),
        }
    }

    /// Requests answered `UNAVAILABLE` and connections closed on accept while it was off.
    pub fn refused(&self) -> (u64, u64) {
        (
            self.counts.refused_requests.load(Ordering::SeqCst),
            self.counts.refused_connections.load(Ordering::SeqCst),
        )
    }

    /// Waits until `done(delivered)` holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(Delivered) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self.delivered()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SwitchableReceiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Pipes each accepted connection to the server while up; closes it at once while off.
async fn accept_loop(
    front: TcpListener,
    back: SocketAddr,
    counts: Arc<Counts>,
    cut: watch::Sender<u64>,
) {
    loop {
        let Ok((mut client, _)) = front.accept().await else {
            continue;
        };
        if !counts.up.load(Ordering::SeqCst) {
            counts.refused_connections.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let mut cut = cut.subscribe();
        cut.borrow_and_update();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(back).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
