//! The request metrics of the server layer, with bound series cached per (method, route,
//! status): the hot path is a cache hit and a few atomics, not a label lookup per metric.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::route::{FastHasher, is_unmatched};
use stellaops_telemetry_core::metrics::catalogue::{
    HttpInFlightLabels, HttpRequestDurationLabels, HttpRequestsLabels, RequestDurationLabels,
    RequestTotalLabels, STELLA_HTTP_REQUEST_DURATION_SECONDS, STELLA_HTTP_REQUESTS_IN_FLIGHT,
    STELLA_HTTP_REQUESTS_TOTAL, STELLAOPS_REQUEST_DURATION_SECONDS, STELLAOPS_REQUEST_TOTAL,
};
use stellaops_telemetry_core::metrics::semconv::{
    HTTP_SERVER_REQUEST_DURATION, HttpServerDurationLabels,
};
use stellaops_telemetry_core::metrics::{
    BoundCounter, BoundHistogram, BoundUpDownCounter, Counter, Histogram, Metrics, UpDownCounter,
};

/// The method labels, `_OTHER` last.
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "_OTHER",
];

/// More distinct (method, route, status) keys than this are recorded without caching.
const CACHE_LIMIT: usize = 32_768;

/// What a request is recorded under. Routes are interned and the rest are static strings
/// or numbers, so keys compare and hash by pointer: no string is read per request.
#[derive(Clone)]
struct Key {
    method: &'static str,
    route: &'static str,
    status: u16,
    http_status: u16,
    scheme: &'static str,
    protocol: &'static str,
    error: &'static str,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.method, other.method)
            && std::ptr::eq(self.route, other.route)
            && self.status == other.status
            && self.http_status == other.http_status
            && std::ptr::eq(self.scheme, other.scheme)
            && std::ptr::eq(self.protocol, other.protocol)
            && std::ptr::eq(self.error, other.error)
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.method.as_ptr() as usize);
        state.write_usize(self.route.as_ptr() as usize);
        state.write_u16(self.status);
        state.write_u16(self.http_status);
        state.write_usize(self.scheme.as_ptr() as usize);
        state.write_usize(self.protocol.as_ptr() as usize);
        state.write_usize(self.error.as_ptr() as usize);
    }
}

type FinishedMap = HashMap<Key, Finished, std::hash::BuildHasherDefault<FastHasher>>;

struct Finished {
    duration: BoundHistogram,
    total: BoundCounter,
    semconv: BoundHistogram,
    /// The release orchestrator's series, when that family is on.
    orchestrator: Option<(BoundCounter, BoundHistogram)>,
}

impl Finished {
    fn record(&self, seconds: f64) {
        self.duration.record(seconds);
        self.total.inc();
        self.semconv.record(seconds);
        if let Some((total, duration)) = &self.orchestrator {
            total.inc();
            duration.record(seconds);
        }
    }
}

/// The release orchestrator's HTTP family: `stella_http_requests_total{method,path,status}`
/// and `stella_http_request_duration_seconds{method,path}`.
struct Orchestrator {
    total: Counter<HttpRequestsLabels<'static>>,
    duration: Histogram<HttpRequestDurationLabels<'static>>,
}

impl Orchestrator {
    /// The bound series of one request: `path` is the route (the house metrics' endpoint,
    /// `unmatched` when none matched), `status` the HTTP status sent (499 when none was).
    fn bind(&self, o: &Outcome) -> (BoundCounter, BoundHistogram) {
        let status = if o.http_status == 0 {
            super::future::CLIENT_CLOSED
        } else {
            o.http_status
        };
        let mut code = itoa::Buffer::new();
        let total = self.total.bind(HttpRequestsLabels {
            method: o.method,
            path: o.route,
            status: code.format(status),
        });
        let duration = self.duration.bind(HttpRequestDurationLabels {
            method: o.method,
            path: o.route,
        });
        (total, duration)
    }
}

pub(crate) struct ServerMetrics {
    service: String,
    /// Kept to rebuild these metrics when a layer setting changes which families are recorded.
    metrics: Metrics,
    orchestrator: Option<Orchestrator>,
    duration: Histogram<RequestDurationLabels<'static>>,
    total: Counter<RequestTotalLabels<'static>>,
    in_flight: UpDownCounter<HttpInFlightLabels<'static>>,
    semconv: Histogram<HttpServerDurationLabels<'static>>,
    /// One bound series per standard method label and `_OTHER`.
    in_flight_bound: [std::sync::OnceLock<BoundUpDownCounter>; METHODS.len()],
    finished: RwLock<FinishedMap>,
}

/// What is known about a request when it is recorded.
pub(crate) struct Outcome {
    pub method: &'static str,
    pub route: &'static str,
    /// The HTTP status code, or the gRPC status code for gRPC requests; `CLIENT_CLOSED` when
    /// no response was sent.
    pub status: u16,
    /// The HTTP status sent, `0` when none was (`http.response.status_code` is then absent).
    pub http_status: u16,
    pub scheme: &'static str,
    /// `network.protocol.version`.
    pub protocol: &'static str,
    /// `error.type`, empty when the request did not fail.
    pub error: &'static str,
    pub seconds: f64,
}

impl ServerMetrics {
    pub(crate) fn new(service: String, metrics: &Metrics) -> Self {
        Self::with_orchestrator(service, metrics, false)
    }

    /// These metrics, with the release orchestrator's HTTP family on or off (fresh series
    /// cache; the in-flight gauge is the same series either way).
    pub(crate) fn release_orchestrator(&self, on: bool) -> Self {
        Self::with_orchestrator(self.service.clone(), &self.metrics, on)
    }

    fn with_orchestrator(service: String, metrics: &Metrics, orchestrator: bool) -> Self {
        ServerMetrics {
            service,
            metrics: metrics.clone(),
            orchestrator: orchestrator.then(|| Orchestrator {
                total: metrics.counter(&STELLA_HTTP_REQUESTS_TOTAL),
                duration: metrics.histogram(&STELLA_HTTP_REQUEST_DURATION_SECONDS),
            }),
            duration: metrics.histogram(&STELLAOPS_REQUEST_DURATION_SECONDS),
            total: metrics.counter(&STELLAOPS_REQUEST_TOTAL),
            in_flight: metrics.up_down_counter(&STELLA_HTTP_REQUESTS_IN_FLIGHT),
            semconv: metrics.histogram(&HTTP_SERVER_REQUEST_DURATION),
            in_flight_bound: Default::default(),
            finished: RwLock::new(FinishedMap::default()),
        }
    }

    /// The in-flight series of `method` (one of the ten method labels).
    pub(crate) fn in_flight(&self, method: &'static str) -> BoundUpDownCounter {
        let Some(slot) = METHODS.iter().position(|m| *m == method) else {
            // A method made known by the layer's settings: bound on each request.
            return self.in_flight.bind(HttpInFlightLabels { method });
        };
        self.in_flight_bound[slot]
            .get_or_init(|| self.in_flight.bind(HttpInFlightLabels { method }))
            .clone()
    }

    pub(crate) fn record(&self, o: &Outcome) {
        let key = Key {
            method: o.method,
            route: o.route,
            status: o.status,
            http_status: o.http_status,
            scheme: o.scheme,
            protocol: o.protocol,
            error: o.error,
        };
        // The common case: the series are bound already; record under the read lock.
        if let Some(finished) = self.finished.read().get(&key) {
            finished.record(o.seconds);
            return;
        }
        let mut code = itoa::Buffer::new();
        let status = code.format(o.status);
        let mut http_code = itoa::Buffer::new();
        let http_status = if o.http_status == 0 {
            ""
        } else {
            http_code.format(o.http_status)
        };
        let finished = Finished {
            duration: self.duration.bind(RequestDurationLabels {
                service: &self.service,
                endpoint: o.route,
            }),
            total: self.total.bind(RequestTotalLabels {
                service: &self.service,
                status,
            }),
            // Empty values are absent attributes: no route matched, no status sent, no error.
            semconv: self.semconv.bind(HttpServerDurationLabels {
                method: o.method,
                route: if is_unmatched(o.route) { "" } else { o.route },
                status_code: http_status,
                scheme: o.scheme,
                protocol_version: o.protocol,
                error_type: o.error,
            }),
            orchestrator: self.orchestrator.as_ref().map(|family| family.bind(o)),
        };
        finished.record(o.seconds);
        let mut map = self.finished.write();
        if map.len() < CACHE_LIMIT {
            map.insert(key, finished);
        }
    }
}
