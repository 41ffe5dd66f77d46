//! The server layer: request ids kept or generated and echoed, malformed trace context and
//! tenants never fail a request nor get recorded, the duration covers the body stream, and
//! gRPC statuses (in the head or the trailers) become the status label and span status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use axum::body::Body;
use http::{Request, Response};
use http_body_util::{BodyExt as _, StreamBody};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("svc")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn ok_service() -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone {
    service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::from("ok"))) })
}

#[tokio::test(flavor = "current_thread")]
async fn request_ids_are_kept_when_valid_and_generated_otherwise() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let svc = ServiceBuilder::new()
        .layer(ServerTelemetryLayer::new(&telemetry).echo_traceparent(true))
        .service(ok_service());

    let kept = svc
        .clone()
        .oneshot(
            Request::get("/")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let traceparent = kept.headers()["traceparent"].to_str().unwrap().to_owned();
    drop(kept);

    for bad in ["<script>", "a b"] {
        let generated = svc
            .clone()
            .oneshot(
                Request::get("/")
                    .header("x-request-id", bad)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let id = generated.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    let first = spans
        .iter()
        .find(|s| attr(s, "request.id") == Some(Value::from("abc-123")))
        .unwrap();
    // Sampled, and random: the layer's own trace-ids are random.
    assert_eq!(
        traceparent,
        format!(
            "00-{}-{}-03",
            first.span_context.trace_id(),
            first.span_context.span_id()
        )
    );
    telemetry.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn handlers_extract_the_request_id_that_the_response_echoes() {
    use stellaops_telemetry_tower::server::RequestId;
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let app = axum::Router::new()
        .route(
            "/id",
            axum::routing::get(|id: RequestId| async move {
                // The same id from the request context, in a task spawned with the context.
                let spawned =
                    tokio::spawn(opentelemetry::context::FutureExt::with_current_context(
                        async { RequestId::current() },
                    ))
                    .await
                    .unwrap();
                assert_eq!(spawned.as_ref(), Some(&id));
                id.to_string()
            }),
        )
        .layer(ServerTelemetryLayer::new(&telemetry));
    for sent in [Some("req-7"), None] {
        let mut request = Request::get("/id");
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, echoed.as_bytes());
        if let Some(sent) = sent {
            assert_eq!(echoed, sent);
        }
    }
    assert_eq!(RequestId::current(), None);

    // Without the layer the extractor answers 500 and says why.
    let bare = axum::Router::new().route(
        "/id",
        axum::routing::get(|id: RequestId| async move { id.to_string() }),
    );
    let response = bare
        .oneshot(Request::get("/id").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("server telemetry layer"));
    telemetry.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_trace_context_and_tenants_start_a_new_trace_and_are_not_recorded() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let svc = ServiceBuilder::new()
        .layer(ServerTelemetryLayer::new(&telemetry))
        .service(ok_service());
    for (traceparent, tenant) in [
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            "acme\tx",
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "a".repeat(129).as_str(),
        ),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "acme corp",
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "tenant;drop",
        ),
    ] {
        let response = svc
            .clone()
            .oneshot(
                Request::get("/")
                    .header("traceparent", traceparent)
                    .header(
                        "x-stellaops-tenant",
                        http::HeaderValue::from_bytes(tenant.as_bytes()).unwrap(),
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), 4);
    for span in &spans {
        assert_eq!(
            span.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "a new trace"
        );
        assert_ne!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            attr(span, "tenant.id"),
            None,
            "an invalid tenant is never recorded"
        );
        // No route matched: no `http.route`, and the span is named by its method alone.
        assert_eq!(attr(span, "http.route"), None);
        assert_eq!(span.name, "GET");
    }
    telemetry.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_is_recorded_when_its_body_ends_not_when_its_head_is_sent() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let (chunks, stream) = tokio::sync::mpsc::channel::<Result<&'static str, Infallible>>(4);
    let stream = std::sync::Mutex::new(Some(stream));
    let svc = ServiceBuilder::new()
        .layer(ServerTelemetryLayer::new(&telemetry))
        .service(service_fn(move |_req: Request<Body>| {
            let stream = stream.lock().unwrap().take().unwrap();
            async move {
                Ok::<_, Infallible>(Response::new(Body::from_stream(
                    tokio_stream::wrappers::ReceiverStream::new(stream),
                )))
            }
        }));
    let response = svc
        .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let count = |t: &Telemetry| {
        t.prometheus()
            .unwrap()
            .render()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("stellaops_request_total{"))
            .count()
    };
    chunks.send(Ok("first ")).await.unwrap();
    assert_eq!(
        count(&telemetry),
        0,
        "the head alone does not finish the request"
    );
    chunks.send(Ok("second")).await.unwrap();
    drop(chunks);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"first second");
    assert_eq!(count(&telemetry), 1);
    telemetry.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn grpc_statuses_from_the_head_or_the_trailers_become_the_status() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let svc = ServiceBuilder::new()
        .layer(ServerTelemetryLayer::new(&telemetry))
        .service(service_fn(|req: Request<Body>| async move {
            let response = if req.uri().path() == "/svc/Fail" {
                // Trailers-only: the status in the head.
                Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "13")
                    .body(Body::empty())
                    .unwrap()
            } else {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let frames = vec![
                    Ok::<_, Infallible>(http_body::Frame::data(hyper::body::Bytes::from_static(
                        b"\0\0\0\0\0",
                    ))),
                    Ok(http_body::Frame::trailers(trailers)),
                ];
                Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Body::new(StreamBody::new(tokio_stream::iter(frames))))
                    .unwrap()
            };
            Ok::<_, Infallible>(response)
        }));
    for path in ["/svc/Fail", "/svc/Ok"] {
        let response = svc
            .clone()
            .oneshot(
                Request::post(path)
                    .header("content-type", "application/grpc")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    assert!(
        exposition.contains(r#"stellaops_request_total{service="svc",status="13"} 1"#),
        "{exposition}"
    );
    assert!(
        exposition.contains(r#"stellaops_request_total{service="svc",status="0"} 1"#),
        "{exposition}"
    );
    let spans = exporters.finished_spans();
    let by_code = |code: i64| {
        spans
            .iter()
            .find(|s| attr(s, "rpc.grpc.status_code") == Some(Value::I64(code)))
            .unwrap()
    };
    assert!(matches!(
        by_code(13).status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert!(!matches!(
        by_code(0).status,
        opentelemetry::trace::Status::Error { .. }
    ));
    telemetry.shutdown();
}

/// Path, host, user agent and captured headers of any length are cut to the attribute value
/// limit before they are kept: redacted whole first, marked, counted.
#[tokio::test(flavor = "current_thread")]
async fn request_texts_of_any_length_are_cut_to_the_attribute_limit() {
    use stellaops_telemetry_core::{TRUNCATED, ValueLimits};
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("svc")
        .exporters(&[])
        .stdout_logs(false)
        .value_limits(ValueLimits::default().attribute_value_bytes(512))
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let svc = ServiceBuilder::new()
        .layer(ServerTelemetryLayer::new(&telemetry).capture_request_headers(["x-note"]))
        .service(ok_service());

    // A secret placed just across the cut must still be masked (redaction runs first).
    let note = format!(
        "{}password=hunter2hunter2 {}",
        "n".repeat(500),
        "@".repeat(200_000)
    );
    let path = format!("/{}", "@".repeat(60_000));
    let host = format!("{}.example", "h".repeat(2_000));
    let response = svc
        .clone()
        .oneshot(
            Request::get(path.as_str())
                .header("host", host.as_str())
                .header("user-agent", "@".repeat(200_000))
                .header("x-note", note.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    // A request within the limits is recorded as it came.
    let plain = svc
        .oneshot(
            Request::get("/scans/42")
                .header("user-agent", "curl/8.5")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    drop(plain);

    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    let long = spans
        .iter()
        .find(|s| attr(s, "url.path") != Some(Value::from("/scans/42")))
        .expect("the long request's span");
    for key in ["url.path", "server.address", "user_agent.original"] {
        let value = attr(long, key).unwrap().as_str().into_owned();
        assert!(value.len() <= 512, "{key}: {} bytes", value.len());
        assert!(value.ends_with(TRUNCATED), "{key}: {value:?}");
    }
    let Some(Value::Array(opentelemetry::Array::String(notes))) =
        attr(long, "http.request.header.x-note")
    else {
        panic!("the captured header is missing");
    };
    assert!(notes[0].as_str().len() <= 512);
    assert!(!notes[0].as_str().contains("hunter2"), "{}", notes[0]);
    let short = spans
        .iter()
        .find(|s| attr(s, "url.path") == Some(Value::from("/scans/42")))
        .unwrap();
    assert_eq!(
        attr(short, "user_agent.original"),
        Some(Value::from("curl/8.5"))
    );
    assert_eq!(telemetry.stats().truncated.attribute_values, 4);
}
