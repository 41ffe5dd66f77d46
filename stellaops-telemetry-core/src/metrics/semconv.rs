//! OpenTelemetry semantic-convention metrics recorded beside the catalogue. Their names are
//! dotted (`http.server.request.duration`), as the conventions spell them, so they sit outside
//! the house naming rules and outside [`catalogue::all`](super::catalogue::all).

use super::catalogue::REQUEST_BUCKETS;
use super::descriptor::{HistogramDef, LabelValues, Labels};

/// The attributes of `http.server.request.duration`. An empty value is an absent attribute
/// (`http.route` when no route matched, `http.response.status_code` when none was sent,
/// `error.type` on success); `http.response.status_code` is exported as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpServerDurationLabels<'a> {
    /// `http.request.method`.
    pub method: &'a str,
    /// `http.route` (the template, never the raw path).
    pub route: &'a str,
    /// `http.response.status_code`.
    pub status_code: &'a str,
    /// `url.scheme`.
    pub scheme: &'a str,
    /// `network.protocol.version` (`1.0`, `1.1`, `2`, `3`).
    pub protocol_version: &'a str,
    /// `error.type`: empty when the request did not fail.
    pub error_type: &'a str,
}

impl Labels for HttpServerDurationLabels<'static> {
    const NAMES: &'static [&'static str] = &[
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "url.scheme",
        "network.protocol.version",
        "error.type",
    ];
    type At<'a> = HttpServerDurationLabels<'a>;
}

impl LabelValues for HttpServerDurationLabels<'_> {
    fn each_value(&self, f: &mut dyn FnMut(&str)) {
        f(self.method);
        f(self.route);
        f(self.status_code);
        f(self.scheme);
        f(self.protocol_version);
        f(self.error_type);
    }
}

/// `http.server.request.duration` (seconds, the conventions' recommended buckets). The
/// Prometheus exposition names it `http_server_request_duration_seconds`, as a collector's
/// Prometheus exporter does.
pub const HTTP_SERVER_REQUEST_DURATION: HistogramDef<HttpServerDurationLabels<'static>> =
    HistogramDef::__new(
        "http.server.request.duration",
        "s",
        "Duration of HTTP server requests",
        &REQUEST_BUCKETS,
    );
