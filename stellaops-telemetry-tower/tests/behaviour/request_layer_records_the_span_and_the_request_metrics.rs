//! The request layer opens one `http.request` span per request with the route template, the
//! integer status and a validated tenant, and records duration and count metrics, also for
//! requests whose client went away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt;

fn app(telemetry: &Telemetry) -> Router {
    Router::new()
        .route("/scans/{id}", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .layer(ServerTelemetryLayer::new(telemetry))
}

fn attr<'a>(span: &'a opentelemetry_sdk::trace::SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[tokio::test(flavor = "current_thread")]
async fn spans_and_metrics_follow_each_request() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = app(&telemetry);

    let request = |uri: &str, tenant: Option<&str>| {
        let mut r = Request::get(uri);
        if let Some(t) = tenant {
            r = r.header("X-StellaOps-Tenant", t);
        }
        r.body(Body::empty()).unwrap()
    };
    let ok = app
        .clone()
        .oneshot(request("/scans/s-1", Some("acme")))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The request is recorded when its body ends (here: when it is dropped unread).
    drop(ok);
    let failed = app
        .clone()
        .oneshot(request("/fail", Some("bad tenant; drop")))
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    drop(failed);
    // A client that goes away: the future is dropped before the handler answers.
    let hang = app.clone().oneshot(request("/hang", None));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), hang)
            .await
            .is_err()
    );

    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 3);
    let ok_span = spans
        .iter()
        .find(|s| s.name == "GET /scans/{id}")
        .expect("named {method} {route}");
    assert_eq!(
        attr(ok_span, "http.route"),
        Some(&Value::from("/scans/{id}"))
    );
    assert_eq!(
        attr(ok_span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(attr(ok_span, "tenant.id"), Some(&Value::from("acme")));
    let fail_span = spans.iter().find(|s| s.name == "GET /fail").unwrap();
    assert_eq!(
        attr(fail_span, "http.response.status_code"),
        Some(&Value::I64(502))
    );
    assert!(matches!(
        fail_span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        attr(fail_span, "tenant.id"),
        None,
        "an invalid tenant is never recorded"
    );

    let metrics = exporters.metrics();
    let last = metrics.last().expect("a metric export");
    let mut statuses = Vec::new();
    let mut histogram_points = 0;
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            match (metric.name(), metric.data()) {
                ("stellaops_request_total", AggregatedMetrics::U64(MetricData::Sum(sum))) => {
                    for p in sum.data_points() {
                        let status = p
                            .attributes()
                            .find(|kv| kv.key.as_str() == "status")
                            .unwrap();
                        statuses.push((status.value.clone(), p.value()));
                    }
                }
                (
                    "stellaops_request_duration_seconds",
                    AggregatedMetrics::F64(MetricData::Histogram(h)),
                ) => {
                    for p in h.data_points() {
                        histogram_points += 1;
                        // Seconds-scale boundaries, not the SDK's millisecond defaults.
                        assert_eq!(p.bounds().next(), Some(0.005));
                        assert!(p.attributes().any(|kv| kv.key.as_str() == "endpoint"));
                    }
                }
                _ => {}
            }
        }
    }
    statuses.sort_by_key(|(v, _)| v.to_string());
    assert_eq!(
        statuses,
        [
            (Value::from("200"), 1),
            (Value::from("499"), 1),
            (Value::from("502"), 1)
        ]
    );
    assert_eq!(histogram_points, 3);
}

/// The HTTP semantic conventions to the letter: failures are failures, names and routes,
/// attributes, and the duration metric's attributes.
mod semantic_conventions {
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Method, Request, Version};
    use axum::routing::{any, get};
    use opentelemetry::trace::Status;
    use opentelemetry::{KeyValue, Value};
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::trace::SpanData;
    use stellaops_telemetry_core::Telemetry;
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_tower::server::{
        ABORTED, KNOWN_METHODS_VARIABLE, PANIC, ServerTelemetryLayer,
    };
    use stellaops_telemetry_tower::services::Health;
    use tower::ServiceExt;

    fn pipeline(exporters: &TestExporters) -> Telemetry {
        Telemetry::builder("scanner")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(exporters)
            .build()
            .unwrap()
    }

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        super::attr(span, key)
    }

    fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span named {name}: {spans:#?}"))
    }

    /// The attributes of every `http.server.request.duration` data point.
    fn duration_points(exporters: &TestExporters) -> Vec<Vec<KeyValue>> {
        let metrics = exporters.metrics();
        let last = metrics.last().expect("a metric export");
        let mut points = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                if let (
                    "http.server.request.duration",
                    AggregatedMetrics::F64(MetricData::Histogram(h)),
                ) = (metric.name(), metric.data())
                {
                    for p in h.data_points() {
                        points.push(p.attributes().cloned().collect());
                    }
                }
            }
        }
        points
    }

    /// Sends `request` and reads the whole response body, as a client that stays does.
    async fn send(app: &Router, request: Request<Body>) {
        use http_body_util::BodyExt as _;
        let response = app.clone().oneshot(request).await.unwrap();
        let _ = response.into_body().collect().await.unwrap();
    }

    fn get_attr<'a>(point: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        point
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// A body that sends one frame, then never ends.
    struct Endless {
        sent: bool,
    }

    impl http_body::Body for Endless {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            if std::mem::replace(&mut self.sent, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(http_body::Frame::data(
                    axum::body::Bytes::from_static(b"first"),
                ))))
            }
        }
    }

    fn app(telemetry: &Telemetry, layer: ServerTelemetryLayer) -> Router {
        let _ = telemetry;
        Router::new()
            .route("/scans/{id}", any(|| async { "ok" }))
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("handler bug");
                    }
                    "never"
                }),
            )
            .route(
                "/hang",
                get(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .route(
                "/stream",
                get(|| async { Body::new(Endless { sent: false }) }),
            )
            .nest_service("/health", Health::builder("1.2.3").build())
            .layer(layer)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_is_a_500_with_error_type_panic_and_the_panic_goes_on() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let app = app(&telemetry, ServerTelemetryLayer::new(&telemetry));
        let request = Request::get("/panic").body(Body::empty()).unwrap();
        let joined = tokio::spawn(app.oneshot(request)).await;
        assert!(
            joined.is_err_and(|e| e.is_panic()),
            "the layer never swallows a panic"
        );
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let s = span(&spans, "GET /panic");
        assert!(matches!(s.status, Status::Error { .. }));
        assert_eq!(attr(s, "error.type"), Some(&Value::from(PANIC)));
        assert_eq!(attr(s, "http.response.status_code"), Some(&Value::I64(500)));
        let points = duration_points(&exporters);
        assert!(
            points
                .iter()
                .any(|p| get_attr(p, "error.type") == Some(&Value::from("panic"))
                    && get_attr(p, "http.response.status_code") == Some(&Value::I64(500))),
            "{points:?}"
        );
        telemetry.shutdown();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_client_gone_before_the_head_or_mid_body_is_an_aborted_error() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let app = app(&telemetry, ServerTelemetryLayer::new(&telemetry));

        // Before the head: the response future is polled once, then dropped.
        let hang = app
            .clone()
            .oneshot(Request::get("/hang").body(Body::empty()).unwrap());
        tokio::select! {
            biased;
            _ = hang => panic!("the handler never answers"),
            () = tokio::task::yield_now() => {}
        }

        // Mid-body: the head and one frame arrive, then the body is dropped.
        let response = app
            .clone()
            .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let mut body = response.into_body();
        let first =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await;
        assert!(first.is_some_and(|f| f.is_ok()));
        drop(body);

        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let before = span(&spans, "GET /hang");
        assert!(matches!(before.status, Status::Error { .. }));
        assert_eq!(attr(before, "error.type"), Some(&Value::from(ABORTED)));
        assert_eq!(
            attr(before, "http.response.status_code"),
            None,
            "none was sent"
        );
        let mid = span(&spans, "GET /stream");
        assert!(matches!(mid.status, Status::Error { .. }));
        assert_eq!(attr(mid, "error.type"), Some(&Value::from(ABORTED)));
        assert_eq!(
            attr(mid, "http.response.status_code"),
            Some(&Value::I64(200))
        );

        let points = duration_points(&exporters);
        let of = |route: &str| {
            points
                .iter()
                .find(|p| get_attr(p, "http.route") == Some(&Value::from(route.to_owned())))
                .unwrap_or_else(|| panic!("no point for {route}: {points:?}"))
        };
        assert_eq!(
            get_attr(of("/hang"), "error.type"),
            Some(&Value::from("aborted"))
        );
        assert_eq!(get_attr(of("/hang"), "http.response.status_code"), None);
        assert_eq!(
            get_attr(of("/stream"), "error.type"),
            Some(&Value::from("aborted"))
        );
        assert_eq!(
            get_attr(of("/stream"), "http.response.status_code"),
            Some(&Value::I64(200))
        );
        telemetry.shutdown();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn names_routes_and_methods_follow_the_conventions() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let app = app(&telemetry, ServerTelemetryLayer::new(&telemetry));
        for (method, uri) in [
            ("PURGE", "/scans/1"),
            ("GET", "/nowhere"),
            ("GET", "/health/ready"),
        ] {
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            send(&app, request).await;
        }
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let other = span(&spans, "HTTP /scans/{id}");
        assert_eq!(
            attr(other, "http.request.method"),
            Some(&Value::from("_OTHER"))
        );
        assert_eq!(
            attr(other, "http.request.method_original"),
            Some(&Value::from("PURGE"))
        );
        let unmatched = span(&spans, "GET");
        assert!(
            matches!(unmatched.status, Status::Unset),
            "a 404 is no server error"
        );
        assert_eq!(attr(unmatched, "http.route"), None);
        assert_eq!(
            attr(unmatched, "http.response.status_code"),
            Some(&Value::I64(404))
        );
        let nested = span(&spans, "GET /health/ready");
        assert_eq!(
            attr(nested, "http.route"),
            Some(&Value::from("/health/ready"))
        );
        let points = duration_points(&exporters);
        assert!(
            points
                .iter()
                .any(|p| get_attr(p, "http.route") == Some(&Value::from("/health/ready"))),
            "{points:?}"
        );
        telemetry.shutdown();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_known_methods_can_be_overridden() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let layer = ServerTelemetryLayer::new(&telemetry)
            .known_methods(["GET", "PURGE"])
            .unwrap();
        let app = app(&telemetry, layer);
        for method in ["PURGE", "POST"] {
            let request = Request::builder()
                .method(method)
                .uri("/scans/1")
                .body(Body::empty())
                .unwrap();
            send(&app, request).await;
        }
        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let purge = span(&spans, "PURGE /scans/{id}");
        assert_eq!(
            attr(purge, "http.request.method"),
            Some(&Value::from("PURGE"))
        );
        let post = span(&spans, "HTTP /scans/{id}");
        assert_eq!(
            attr(post, "http.request.method"),
            Some(&Value::from("_OTHER"))
        );
        assert_eq!(
            attr(post, "http.request.method_original"),
            Some(&Value::from("POST"))
        );
        let bad = ServerTelemetryLayer::new(&telemetry)
            .known_methods(["GET", "NOT A METHOD"])
            .unwrap_err();
        assert_eq!(bad.variable, KNOWN_METHODS_VARIABLE);
        assert!(bad.to_string().contains("NOT A METHOD"), "{bad}");
        telemetry.shutdown();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn query_addresses_protocol_and_trusted_proxies() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let peer: SocketAddr = "192.0.2.7:51000".parse().unwrap();
        let request = |uri: &str| {
            let mut r = Request::get(uri)
                .version(Version::HTTP_2)
                .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "api.example:8443")
                .body(Body::empty())
                .unwrap();
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        };
        let direct = app(&telemetry, ServerTelemetryLayer::new(&telemetry));
        send(&direct, request("/scans/direct?a=1&password=hunter2")).await;
        let proxied = app(
            &telemetry,
            ServerTelemetryLayer::new(&telemetry).trust_forwarded_headers(true),
        );
        send(&proxied, request("/scans/proxied")).await;

        telemetry.flush(Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        let path = |s: &&SpanData| attr(s, "url.path").map(|v| v.to_string());
        let direct = spans
            .iter()
            .find(|s| path(s).as_deref() == Some("/scans/direct"))
            .unwrap();
        let query = attr(direct, "url.query").unwrap().to_string();
        assert!(query.starts_with("a=1&password="), "{query}");
        assert!(!query.contains("hunter2"), "{query}");
        assert_eq!(
            attr(direct, "client.address"),
            Some(&Value::from("192.0.2.7"))
        );
        assert_eq!(
            attr(direct, "network.peer.address"),
            Some(&Value::from("192.0.2.7"))
        );
        assert_eq!(attr(direct, "network.peer.port"), Some(&Value::I64(51000)));
        assert_eq!(
            attr(direct, "network.protocol.version"),
            Some(&Value::from("2"))
        );
        assert_eq!(attr(direct, "url.scheme"), Some(&Value::from("http")));
        assert_eq!(
            attr(direct, "server.address"),
            None,
            "no Host, untrusted proxy"
        );

        let proxied = spans
            .iter()
            .find(|s| path(s).as_deref() == Some("/scans/proxied"))
            .unwrap();
        assert_eq!(
            attr(proxied, "client.address"),
            Some(&Value::from("203.0.113.9"))
        );
        assert_eq!(
            attr(proxied, "network.peer.address"),
            Some(&Value::from("192.0.2.7"))
        );
        assert_eq!(attr(proxied, "url.scheme"), Some(&Value::from("https")));
        assert_eq!(
            attr(proxied, "server.address"),
            Some(&Value::from("api.example"))
        );
        assert_eq!(attr(proxied, "server.port"), Some(&Value::I64(8443)));

        // The metric: an integer status, no `error.type` on success, the protocol version.
        let points = duration_points(&exporters);
        let ok = points
            .iter()
            .find(|p| get_attr(p, "http.route") == Some(&Value::from("/scans/{id}")))
            .unwrap();
        assert_eq!(
            get_attr(ok, "http.response.status_code"),
            Some(&Value::I64(200))
        );
        assert_eq!(get_attr(ok, "error.type"), None);
        assert_eq!(
            get_attr(ok, "network.protocol.version"),
            Some(&Value::from("2"))
        );
        telemetry.shutdown();
    }

    /// Through a real server (hyper over TCP): a response read to its end is a success, and a
    /// client that closes its connection in the middle of a body is an abort.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_a_real_connection_a_full_body_succeeds_and_a_closed_one_is_aborted() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let app = app(&telemetry, ServerTelemetryLayer::new(&telemetry));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });

        let mut full = tokio::net::TcpStream::connect(address).await.unwrap();
        full.write_all(b"GET /scans/1 HTTP/1.1\r\nhost: scanner\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        full.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"));

        let mut partial = tokio::net::TcpStream::connect(address).await.unwrap();
        partial
            .write_all(b"GET /stream HTTP/1.1\r\nhost: scanner\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 64];
        let n = partial.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
        drop(partial);

        // The server notices the closed connection when it next writes or reads: wait for
        // the span (counting flushes, not time).
        let mut spans = Vec::new();
        for _ in 0..200 {
            telemetry.flush(Duration::from_secs(5)).unwrap();
            spans = exporters.finished_spans();
            if spans.iter().any(|s| s.name == "GET /stream") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ok = span(&spans, "GET /scans/{id}");
        assert!(matches!(ok.status, Status::Unset), "{ok:?}");
        assert_eq!(attr(ok, "error.type"), None);
        assert_eq!(
            attr(ok, "network.protocol.version"),
            Some(&Value::from("1.1"))
        );
        assert_eq!(attr(ok, "client.address"), Some(&Value::from("127.0.0.1")));
        assert!(attr(ok, "network.peer.port").is_some());
        let aborted = span(&spans, "GET /stream");
        assert_eq!(attr(aborted, "error.type"), Some(&Value::from(ABORTED)));
        assert!(matches!(aborted.status, Status::Error { .. }));
        server.abort();
        telemetry.shutdown();
    }
}

/// The release orchestrator's HTTP family: off by default, and with the option on one counter
/// and one histogram series per route, labelled by the route and the status code.
mod release_orchestrator_metrics {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use stellaops_telemetry_core::Telemetry;
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_tower::server::ServerTelemetryLayer;
    use tower::ServiceExt;

    fn pipeline(exporters: &TestExporters) -> Telemetry {
        Telemetry::builder("release-orchestrator")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(exporters)
            .build()
            .unwrap()
    }

    async fn serve_two_routes(layer: ServerTelemetryLayer) {
        use http_body_util::BodyExt as _;
        let app = Router::new()
            .route("/releases/{id}", get(|| async { "ok" }))
            .route("/deployments", post(|| async { StatusCode::CONFLICT }))
            .layer(layer);
        for (method, uri) in [
            ("GET", "/releases/r-1"),
            ("GET", "/releases/r-2"),
            ("POST", "/deployments"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let _ = response.into_body().collect().await.unwrap();
        }
    }

    fn labels(attributes: impl Iterator<Item = KeyValue>) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = attributes
            .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
            .collect();
        labels.sort();
        labels
    }

    type Series = Vec<(Vec<(String, String)>, u64)>;

    /// The counter's series with their values, and the histogram's with their counts.
    fn family(exporters: &TestExporters) -> (Series, Series) {
        let metrics = exporters.metrics();
        let last = metrics.last().expect("a metric export");
        let (mut total, mut duration) = (Vec::new(), Vec::new());
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                match (metric.name(), metric.data()) {
                    ("stella_http_requests_total", AggregatedMetrics::U64(MetricData::Sum(s))) => {
                        for p in s.data_points() {
                            total.push((labels(p.attributes().cloned()), p.value()));
                        }
                    }
                    (
                        "stella_http_request_duration_seconds",
                        AggregatedMetrics::F64(MetricData::Histogram(h)),
                    ) => {
                        for p in h.data_points() {
                            duration.push((labels(p.attributes().cloned()), p.count()));
                        }
                    }
                    _ => {}
                }
            }
        }
        total.sort();
        duration.sort();
        (total, duration)
    }

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_the_option_on_two_routes_give_route_labelled_series() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        serve_two_routes(ServerTelemetryLayer::new(&telemetry).release_orchestrator_metrics(true))
            .await;
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
        let (total, duration) = family(&exporters);
        assert_eq!(
            total,
            [
                (
                    pairs(&[
                        ("method", "GET"),
                        ("path", "/releases/{id}"),
                        ("status", "200")
                    ]),
                    2
                ),
                (
                    pairs(&[
                        ("method", "POST"),
                        ("path", "/deployments"),
                        ("status", "409")
                    ]),
                    1
                ),
            ]
        );
        assert_eq!(
            duration,
            [
                (pairs(&[("method", "GET"), ("path", "/releases/{id}")]), 2),
                (pairs(&[("method", "POST"), ("path", "/deployments")]), 1),
            ]
        );
        // The raw path is never a label value.
        assert!(
            total
                .iter()
                .all(|(l, _)| l.iter().all(|(_, v)| !v.contains("r-1")))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_the_option_off_there_is_no_such_series() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        serve_two_routes(ServerTelemetryLayer::new(&telemetry)).await;
        // Turned on, then off again: the builder's last word counts.
        serve_two_routes(
            ServerTelemetryLayer::new(&telemetry)
                .release_orchestrator_metrics(true)
                .release_orchestrator_metrics(false),
        )
        .await;
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
        let (total, duration) = family(&exporters);
        assert!(total.is_empty(), "{total:?}");
        assert!(duration.is_empty(), "{duration:?}");
        // The house metrics are still there.
        let metrics = exporters.metrics();
        let last = metrics.last().expect("a metric export");
        assert!(
            last.scope_metrics()
                .flat_map(|s| s.metrics())
                .any(|m| m.name() == "stellaops_request_total")
        );
    }
}
