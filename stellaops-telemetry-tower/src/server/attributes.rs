//! The request's attributes: what the span and the metrics say about it, taken from the
//! request (method, route, scheme, protocol, addresses, query), proxies' headers only when
//! the layer trusts them.

use std::borrow::Cow;
use std::net::SocketAddr;

use stellaops_telemetry_core::opentelemetry::{Array, KeyValue, StringValue, Value};
use stellaops_telemetry_core::{Redactor, SpanRecord};

use super::layer::Shared;
use super::route::{DefaultMakeRoute, MakeRoute as _, is_unmatched, known_method};

/// What the layer decides about a request before the inner service sees it.
pub(crate) struct RequestFacts {
    /// `http.request.method`: a known method, or `_OTHER`.
    pub(crate) method: &'static str,
    /// The span name's first part: the method, or `HTTP` for `_OTHER`.
    pub(crate) name: &'static str,
    /// The interned template, [`UNMATCHED_ROUTE`](super::UNMATCHED_ROUTE) when none matched.
    pub(crate) route: &'static str,
    /// `url.scheme`: `http` or `https`.
    pub(crate) scheme: &'static str,
    /// `network.protocol.version`.
    pub(crate) protocol: &'static str,
    /// The request is gRPC (`application/grpc`): its status is the `grpc-status`, and its span
    /// gets the `rpc.*` attributes.
    pub(crate) grpc: bool,
}

impl RequestFacts {
    pub(crate) fn of<B>(shared: &Shared, request: &http::Request<B>) -> Self {
        let method = known_method(request.method(), shared.known_methods.as_deref());
        let route = {
            let (method, uri, extensions) = (request.method(), request.uri(), request.extensions());
            let made = shared
                .make_route
                .make_route(method, uri, extensions)
                .or_else(|| DefaultMakeRoute.make_route(method, uri, extensions));
            shared.routes.intern(made.as_deref())
        };
        let forwarded_https = shared.trust_forwarded
            && forwarded(request.headers())
                .proto
                .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let scheme = if forwarded_https || request.uri().scheme() == Some(&http::uri::Scheme::HTTPS)
        {
            "https"
        } else {
            "http"
        };
        RequestFacts {
            method,
            name: if method == "_OTHER" { "HTTP" } else { method },
            route,
            scheme,
            protocol: protocol_version(request.version()),
            grpc: crate::grpc::is_grpc(request.headers()),
        }
    }
}

/// `network.protocol.version` of an HTTP version.
fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Every attribute the request span takes from the request, in one step.
pub(crate) fn push_request_attributes<B>(
    r: &mut SpanRecord,
    shared: &Shared,
    request: &http::Request<B>,
    facts: &RequestFacts,
) {
    r.push_static("http.request.method", facts.method);
    if facts.method == "_OTHER" {
        let original = request.method().as_str();
        r.push_text(
            "http.request.method_original",
            &shared.bounds.attribute_value(original, &shared.redactor),
        );
    }
    if !is_unmatched(facts.route) {
        r.push_static("http.route", facts.route);
    }
    r.push_static("network.protocol.version", facts.protocol);
    push_request_texts(r, shared, request, facts);
    if facts.grpc {
        push_rpc_attributes(r, shared, request.uri().path());
    }
    push_addresses(r, shared, request);
    push_captured_headers(r, shared, request.headers());
}

/// `rpc.system`, and `rpc.service` / `rpc.method` when the path has the gRPC shape
/// `/pkg.Service/Method` (each cut to the attribute value limit). `rpc.grpc.status_code`
/// comes with the response.
fn push_rpc_attributes(r: &mut SpanRecord, shared: &Shared, path: &str) {
    use crate::grpc::{RPC_METHOD, RPC_SERVICE, RPC_SYSTEM, service_and_method};
    r.push_static(RPC_SYSTEM, "grpc");
    if let Some((service, method)) = service_and_method(path) {
        let bounded = |text| shared.bounds.attribute_value(text, &shared.redactor);
        r.push_text(RPC_SERVICE, &bounded(service));
        r.push_text(RPC_METHOD, &bounded(method));
    }
}

/// `client.address` (the first proxy hop's client when proxies are trusted, else the peer)
/// and `network.peer.address` / `network.peer.port` (the connection's, when the server puts
/// it in the request: axum's `ConnectInfo<SocketAddr>`, or a `SocketAddr` extension).
fn push_addresses<B>(r: &mut SpanRecord, shared: &Shared, request: &http::Request<B>) {
    let peer = peer_address(request.extensions());
    let mut ip = IpText::default();
    if let Some(peer) = peer {
        ip.write(peer);
        r.push_text("network.peer.address", ip.as_str());
        r.push_int("network.peer.port", i64::from(peer.port()));
    }
    let forwarded_client = if shared.trust_forwarded {
        forwarded(request.headers()).client
    } else {
        None
    };
    match forwarded_client {
        Some(client) => {
            let (host, _) = split_host_port(client);
            if let Some(host) = host.filter(|h| !h.is_empty()) {
                r.push_text(
                    "client.address",
                    &shared.bounds.attribute_value(host, &shared.redactor),
                );
            }
        }
        None if peer.is_some() => r.push_text("client.address", ip.as_str()),
        None => {}
    }
}

/// The connection's peer, when the server put it in the request's extensions.
fn peer_address(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

/// An IP address as text, on the stack (the longest IPv6 form is 45 bytes).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        IpText {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl IpText {
    fn write(&mut self, addr: SocketAddr) {
        use std::fmt::Write as _;
        self.len = 0;
        let _ = write!(self, "{}", addr.ip());
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What a trusted proxy says about the original request: from the first element of
/// `Forwarded`, else from `X-Forwarded-For` (its first address), `X-Forwarded-Proto` and
/// `X-Forwarded-Host`.
#[derive(Debug, Default, PartialEq)]
struct Forwarded<'a> {
    client: Option<&'a str>,
    proto: Option<&'a str>,
    host: Option<&'a str>,
}

fn forwarded(headers: &http::HeaderMap) -> Forwarded<'_> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut found = Forwarded::default();
    if let Some(first) = text("forwarded").and_then(|f| f.split(',').next()) {
        for pair in first.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim() {
                k if k.eq_ignore_ascii_case("for") => found.client = Some(value),
                k if k.eq_ignore_ascii_case("proto") => found.proto = Some(value),
                k if k.eq_ignore_ascii_case("host") => found.host = Some(value),
                _ => {}
            }
        }
    }
    let first = |name| text(name).and_then(|v| v.split(',').next()).map(str::trim);
    found.client = found.client.or_else(|| first("x-forwarded-for"));
    found.proto = found.proto.or_else(|| first("x-forwarded-proto"));
    found.host = found.host.or_else(|| first("x-forwarded-host"));
    found
}

/// Query parameters whose values are always redacted (signed URLs' secrets), beside the
/// redactor's sensitive keys.
const SENSITIVE_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// `url.query` with the values of sensitive parameters replaced by `REDACTED`, then through
/// the redactor's value rules. Borrowed when nothing is redacted.
fn redact_query<'a>(query: &'a str, redactor: &Redactor) -> Cow<'a, str> {
    let sensitive = |pair: &str| {
        pair.split_once('=').is_some_and(|(key, _)| {
            SENSITIVE_QUERY_KEYS.contains(&key) || redactor.is_sensitive_key(key)
        })
    };
    if !query.split('&').any(sensitive) {
        return redactor.redact_str(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if sensitive(pair) => {
                out.push_str(key);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(redactor.redact_str(&out).into_owned())
}

/// `url.path`, `url.scheme`, `server.address`, `server.port` and `user_agent.original`. Every
/// text taken from the request is cut to the attribute value limit before it is kept (an
/// over-long one is redacted whole first).
fn push_request_texts<B>(
    r: &mut SpanRecord,
    shared: &Shared,
    request: &http::Request<B>,
    facts: &RequestFacts,
) {
    let bounded = |text| shared.bounds.attribute_value(text, &shared.redactor);
    r.push_text("url.path", &bounded(request.uri().path()));
    if let Some(query) = request.uri().query() {
        let redacted = redact_query(query, &shared.redactor);
        r.push_text(
            "url.query",
            &shared.bounds.attribute_value(&redacted, &shared.redactor),
        );
    }
    r.push_static("url.scheme", facts.scheme);
    let forwarded_host = if shared.trust_forwarded {
        forwarded(request.headers()).host
    } else {
        None
    };
    let (address, port) = match forwarded_host {
        Some(host) => split_host_port(host),
        None => server_address(request),
    };
    if let Some(address) = address {
        r.push_text("server.address", &bounded(address));
    }
    if let Some(port) = port {
        r.push_int("server.port", i64::from(port));
    }
    if let Some(ua) = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        r.push_text("user_agent.original", &bounded(ua));
    }
}

/// The headers the layer was asked to capture, as `http.request.header.<name>`: redacted,
/// then cut to the attribute value limit.
fn push_captured_headers(r: &mut SpanRecord, shared: &Shared, headers: &http::HeaderMap) {
    push_headers(r, shared, &shared.captured_headers, &[], headers);
}

/// The extended attributes known when the request arrives: `http.request.body.size` (its
/// `Content-Length`) and the forensic header list.
pub(crate) fn push_extended_request_attributes<B>(
    r: &mut SpanRecord,
    shared: &Shared,
    request: &http::Request<B>,
) {
    let length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(|v| i64::try_from(v).ok());
    if let Some(length) = length {
        r.push_int("http.request.body.size", length);
    }
    // A header on both lists is recorded once, from the always-captured one.
    let always = &shared.captured_headers;
    push_headers(
        r,
        shared,
        &shared.forensic_headers,
        always,
        request.headers(),
    );
}

/// `names` (except those in `skip`) of `headers` as `http.request.header.<name>` arrays,
/// redacted and bounded.
fn push_headers(
    r: &mut SpanRecord,
    shared: &Shared,
    names: &[http::HeaderName],
    skip: &[http::HeaderName],
    headers: &http::HeaderMap,
) {
    for name in names.iter().filter(|n| !skip.contains(n)) {
        let values: Vec<StringValue> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let redacted = shared.redactor.redact_header(name.as_str(), v.as_bytes());
                shared
                    .bounds
                    .attribute_value(&redacted, &shared.redactor)
                    .into_owned()
                    .into()
            })
            .collect();
        if !values.is_empty() {
            r.push_key_value(KeyValue::new(
                format!("http.request.header.{}", name.as_str()),
                Value::Array(Array::String(values)),
            ));
        }
    }
}

/// `server.address` and `server.port` from the `Host` header, else the URI's authority.
fn server_address<B>(request: &http::Request<B>) -> (Option<&str>, Option<u16>) {
    let authority = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match authority {
        Some(authority) => split_host_port(authority),
        None => (None, None),
    }
}

/// `[::1]:8080`, `host:8080`, `host`: the host without brackets, and the port when valid.
fn split_host_port(authority: &str) -> (Option<&str>, Option<u16>) {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, None),
    };
    (
        Some(host.trim_start_matches('[').trim_end_matches(']')),
        port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_handles_ipv6_and_missing_ports() {
        let req = |host: &str| {
            http::Request::builder()
                .header("host", host)
                .body(())
                .unwrap()
        };
        assert_eq!(
            server_address(&req("[::1]:8080")),
            (Some("::1"), Some(8080))
        );
        assert_eq!(
            server_address(&req("scanner.internal")),
            (Some("scanner.internal"), None)
        );
        assert_eq!(server_address(&req("[::1]")), (Some("::1"), None));
        assert_eq!(server_address(&req("h:99999")), (Some("h"), None));
    }

    #[test]
    fn proxies_headers_give_the_first_hop() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        let f = headers(&[(
            "forwarded",
            "for=\"[2001:db8::17]:4711\";proto=https;host=api.example, for=10.0.0.1",
        )]);
        assert_eq!(
            forwarded(&f),
            Forwarded {
                client: Some("[2001:db8::17]:4711"),
                proto: Some("https"),
                host: Some("api.example"),
            }
        );
        let x = headers(&[
            ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(forwarded(&x).client, Some("203.0.113.9"));
        assert_eq!(forwarded(&x).proto, Some("https"));
        assert_eq!(
            split_host_port("[2001:db8::17]:4711").0,
            Some("2001:db8::17")
        );
    }

    #[test]
    fn sensitive_query_values_are_redacted() {
        let redactor = Redactor::new(&Default::default()).unwrap();
        assert_eq!(redact_query("a=1&b=2", &redactor), "a=1&b=2");
        assert_eq!(
            redact_query("a=1&sig=abc&password=x", &redactor),
            "a=1&sig=REDACTED&password=REDACTED"
        );
    }

    #[test]
    fn the_request_span_target_is_the_one_the_pipeline_keeps_from_opentelemetry() {
        assert_eq!(
            "stellaops_telemetry_tower::request",
            stellaops_telemetry_core::DIRECT_SPAN_TARGET
        );
    }
}
