//! server layer → handler → client layer → second server: one trace, the client span between
//! the two server spans, and the tenant, tracestate and baggage carried across. The reqwest
//! middleware (`reqwest-middleware` feature) does the same for a reqwest client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request};
use axum::routing::get;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::client::ClientTelemetryLayer;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The second server answers with the propagation headers it received.
async fn echo(headers: HeaderMap) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    serde_json::json!({
        "traceparent": get("traceparent"),
        "tracestate": get("tracestate"),
        "baggage": get("baggage"),
        "tenant": get("x-stellaops-tenant"),
    })
    .to_string()
}

async fn call(State(downstream): State<String>) -> String {
    let client = Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(ClientTelemetryLayer::new())
        .service(client);
    let request = Request::get(format!("http://{downstream}/echo"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn one_trace_spans_both_servers_and_the_client() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("roundtrip")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    // current_thread: the spawned server runs on this thread, under this dispatcher.
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());

    let second = Router::new()
        .route("/echo", get(echo))
        .layer(ServerTelemetryLayer::new(&telemetry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let downstream = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, second).await });

    let first = Router::new()
        .route("/call", get(call))
        .with_state(downstream)
        .layer(ServerTelemetryLayer::new(&telemetry));
    let response = first
        .oneshot(
            Request::get("/call")
                .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
                .header("tracestate", "rojo=00f067aa0ba902b7")
                .header("tracestate", "congo=t61rcWkgMzE")
                .header("baggage", "userId=alice,isProduction=false")
                .header("X-StellaOps-Tenant", "acme")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    server.abort();
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

    // What the second server received.
    assert_eq!(seen["tenant"], "acme");
    assert_eq!(
        seen["tracestate"],
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    );
    let baggage = seen["baggage"].as_str().unwrap();
    assert!(
        baggage.contains("userId=alice") && baggage.contains("isProduction=false"),
        "{baggage}"
    );
    let traceparent = seen["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE}-")),
        "{traceparent}"
    );
    assert!(traceparent.ends_with("-01"), "{traceparent}");

    // The spans: first server ← client ← second server, one trace.
    let spans = exporters.finished_spans();
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "{name} not exported: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let first_server = find("GET /call");
    let client = find("GET");
    let second_server = find("GET /echo");
    for s in [first_server, client, second_server] {
        assert_eq!(s.span_context.trace_id().to_string(), TRACE, "{}", s.name);
    }
    assert_eq!(client.parent_span_id, first_server.span_context.span_id());
    assert_eq!(client.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(second_server.parent_span_id, client.span_context.span_id());
    assert!(second_server.parent_span_is_remote);
    assert_eq!(
        traceparent,
        format!("00-{TRACE}-{}-01", client.span_context.span_id())
    );
    let tenant_of = |s: &opentelemetry_sdk::trace::SpanData| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "tenant.id")
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(tenant_of(first_server).as_deref(), Some("acme"));
    assert_eq!(tenant_of(second_server).as_deref(), Some("acme"));
    telemetry.shutdown();
}

/// What the second server received when a request with these headers went through the first
/// server's handler and its client layer, and the spans exported on the way.
async fn through_both(
    lines: &[(&str, String)],
) -> (serde_json::Value, Vec<opentelemetry_sdk::trace::SpanData>) {
    through_both_sampled_by(lines, None).await
}

/// [`through_both`] under the head sampler of that `OTEL_TRACES_SAMPLER` name.
async fn through_both_sampled_by(
    lines: &[(&str, String)],
    sampler: Option<&str>,
) -> (serde_json::Value, Vec<opentelemetry_sdk::trace::SpanData>) {
    let exporters = TestExporters::new();
    let mut builder = Telemetry::builder("roundtrip")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters);
    if let Some(sampler) = sampler {
        builder = builder.sampler(sampler, None);
    }
    let telemetry = builder.build().unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let second = Router::new()
        .route("/echo", get(echo))
        .layer(ServerTelemetryLayer::new(&telemetry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let downstream = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, second).await });
    let first = Router::new()
        .route("/call", get(call))
        .with_state(downstream)
        .layer(ServerTelemetryLayer::new(&telemetry));
    let mut request = Request::get("/call");
    for (name, value) in lines {
        request = request.header(*name, value.as_str());
    }
    let response = first
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    server.abort();
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    telemetry.shutdown();
    (serde_json::from_slice(&body).unwrap(), spans)
}

/// Level 2 keys that opentelemetry's `TraceState` refuses (two `@`, a tenant key at the
/// 256-character limit with a long system part) leave the client layer as they came, in order.
#[tokio::test(flavor = "current_thread")]
async fn level_2_tracestate_keys_propagate_unchanged_from_server_to_client() {
    let near_limit = format!("{}@{}=2", "t".repeat(241), "v".repeat(4));
    let at_limit = format!("{}@{}=3", "t".repeat(241), "v".repeat(14));
    let tracestate = format!("foo@@bar=1,{near_limit},rojo=00f067aa0ba902b7,{at_limit}");
    let (seen, _) = through_both(&[
        ("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01")),
        ("tracestate", "foo@@bar=1".to_owned()),
        (
            "tracestate",
            format!(" {near_limit} ,, rojo=00f067aa0ba902b7"),
        ),
        ("tracestate", at_limit.clone()),
    ])
    .await;
    assert_eq!(seen["tracestate"], tracestate.as_str());
}

/// Unsampled with the random flag: nothing is recorded, and the client layer sends the flags
/// it received (`02`) with the parent-id it received (no span of this service was recorded).
#[tokio::test(flavor = "current_thread")]
async fn an_unsampled_request_forwards_the_random_flag_from_the_client_layer() {
    let (seen, spans) = through_both(&[
        ("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-02")),
        ("tracestate", "foo@@bar=1".to_owned()),
    ])
    .await;
    assert!(spans.is_empty(), "{spans:?}");
    assert_eq!(
        seen["traceparent"],
        format!("00-{TRACE}-00f067aa0ba902b7-02").as_str()
    );
    assert_eq!(seen["tracestate"], "foo@@bar=1");
}

/// A new trace the server's sampler drops: the client layer still sends the random flag the
/// layer set on the trace it started (`02`), with the request span's id as the parent-id.
#[tokio::test(flavor = "current_thread")]
async fn a_new_trace_sampled_out_still_sends_the_random_flag_from_the_client_layer() {
    let (seen, spans) = through_both_sampled_by(&[], Some("always_off")).await;
    assert!(spans.is_empty(), "{spans:?}");
    let sent = seen["traceparent"].as_str().unwrap();
    let fields: Vec<&str> = sent.split('-').collect();
    assert_eq!(fields.len(), 4, "{sent}");
    assert_eq!(fields[0], "00");
    assert_ne!(fields[1], "0".repeat(32), "{sent}");
    assert_ne!(fields[2], "0".repeat(16), "{sent}");
    assert_eq!(fields[3], "02", "{sent}");
}

/// Sampled with the random flag: the client span's id replaces the parent-id, and the flags
/// are `03`.
#[tokio::test(flavor = "current_thread")]
async fn a_sampled_request_forwards_the_random_flag_from_the_client_layer() {
    let (seen, spans) =
        through_both(&[("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-03"))]).await;
    let client = spans.iter().find(|s| s.name == "GET").unwrap();
    assert_eq!(
        seen["traceparent"],
        format!("00-{TRACE}-{}-03", client.span_context.span_id()).as_str()
    );
    assert_eq!(seen["tracestate"], "");
}

/// Server then client: what the second server receives is what the first received, byte for
/// byte, but for the parent-id (the client span's) — for every flag combination.
#[tokio::test(flavor = "current_thread")]
async fn trace_headers_round_trip_byte_for_byte_through_server_and_client() {
    let tracestate = format!(
        "congo=t61rcWkgMzE,foo@@bar= a b,{}@{}=x,1abc=~",
        "t".repeat(241),
        "v".repeat(14)
    );
    for flags in ["00", "01", "02", "03"] {
        let (seen, spans) = through_both(&[
            (
                "traceparent",
                format!("00-{TRACE}-00f067aa0ba902b7-{flags}"),
            ),
            ("tracestate", tracestate.clone()),
        ])
        .await;
        let parent = match spans.iter().find(|s| s.name == "GET") {
            Some(client) => client.span_context.span_id().to_string(),
            None => "00f067aa0ba902b7".to_owned(),
        };
        assert_eq!(
            seen["traceparent"],
            format!("00-{TRACE}-{parent}-{flags}").as_str(),
            "flags {flags}"
        );
        assert_eq!(seen["tracestate"], tracestate.as_str(), "flags {flags}");
        assert_eq!(spans.is_empty(), flags == "00" || flags == "02");
    }
}

/// The echoed `traceparent` keeps the random flag received, sampled or not.
#[tokio::test(flavor = "current_thread")]
async fn the_echoed_traceparent_keeps_the_random_flag() {
    let telemetry = Telemetry::builder("echo")
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    for flags in ["00", "01", "02", "03"] {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(ServerTelemetryLayer::new(&telemetry).echo_traceparent(true));
        let response = app
            .oneshot(
                Request::get("/")
                    .header(
                        "traceparent",
                        format!("00-{TRACE}-00f067aa0ba902b7-{flags}"),
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let echoed = response.headers()["traceparent"].to_str().unwrap();
        assert!(echoed.starts_with(&format!("00-{TRACE}-")), "{echoed}");
        assert!(echoed.ends_with(&format!("-{flags}")), "{flags}: {echoed}");
    }
    telemetry.shutdown();
}

mod configured_propagators {
    use super::*;
    use stellaops_telemetry_core::TelemetryConfig;
    use stellaops_telemetry_core::propagation::Propagators;

    const SPAN: &str = "00f067aa0ba902b7";

    /// The second server answers with every propagation header it received.
    async fn echo_all(headers: HeaderMap) -> String {
        let mut seen = serde_json::Map::new();
        for name in [
            "traceparent",
            "tracestate",
            "baggage",
            "b3",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-sampled",
            "uber-trace-id",
        ] {
            if let Some(v) = headers.get(name) {
                seen.insert(name.to_owned(), v.to_str().unwrap().into());
            }
        }
        for (name, v) in &headers {
            if name.as_str().starts_with("uberctx-") {
                seen.insert(name.as_str().to_owned(), v.to_str().unwrap().into());
            }
        }
        serde_json::Value::Object(seen).to_string()
    }

    async fn call_with(State((downstream, propagators)): State<(String, Propagators)>) -> String {
        let client = Client::builder(TokioExecutor::new())
            .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
        let mut client = ServiceBuilder::new()
            .layer(ClientTelemetryLayer::new().propagators(propagators))
            .service(client);
        let request = Request::get(format!("http://{downstream}/echo"))
            .body(http_body_util::Empty::new())
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// What the second server received, and the spans exported, for a pipeline configured
    /// by `vars`.
    async fn through(
        vars: &[(&str, &str)],
        lines: &[(&str, String)],
    ) -> (serde_json::Value, Vec<opentelemetry_sdk::trace::SpanData>) {
        let exporters = TestExporters::new();
        let config = TelemetryConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        let telemetry = Telemetry::builder("propagators")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .config(config)
            .build()
            .unwrap();
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        let second = Router::new()
            .route("/echo", get(echo_all))
            .layer(ServerTelemetryLayer::new(&telemetry));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let downstream = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move { axum::serve(listener, second).await });
        let first = Router::new()
            .route("/call", get(call_with))
            .with_state((downstream, telemetry.propagators()))
            .layer(ServerTelemetryLayer::new(&telemetry));
        let mut request = Request::get("/call");
        for (name, value) in lines {
            request = request.header(*name, value.as_str());
        }
        let response = first
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        server.abort();
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
        let spans = exporters.finished_spans();
        telemetry.shutdown();
        (serde_json::from_slice(&body).unwrap(), spans)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_b3_the_server_layer_reads_b3_and_the_client_layer_writes_it() {
        let (seen, spans) = through(
            &[("OTEL_PROPAGATORS", "b3")],
            &[("b3", format!("{TRACE}-{SPAN}-1"))],
        )
        .await;
        let b3 = seen["b3"].as_str().unwrap();
        assert!(
            b3.starts_with(&format!("{TRACE}-")) && b3.ends_with("-1"),
            "{b3}"
        );
        assert!(seen.get("traceparent").is_none(), "{seen}");
        let first = spans
            .iter()
            .find(|s| s.parent_span_id.to_string() == SPAN)
            .expect("the first server's span continues the b3 parent");
        assert_eq!(first.span_context.trace_id().to_string(), TRACE);
        // The client span is the one the b3 header names as the second server's parent.
        let client = spans
            .iter()
            .find(|s| s.name == "GET" && s.span_kind == opentelemetry::trace::SpanKind::Client)
            .expect("the client span");
        assert_eq!(
            b3,
            format!("{TRACE}-{}-1", client.span_context.span_id()),
            "{spans:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_b3multi_the_x_b3_headers_carry_the_trace_and_a_lone_traceparent_is_ignored() {
        let (seen, spans) = through(
            &[("OTEL_PROPAGATORS", "b3multi")],
            &[("traceparent", format!("00-{TRACE}-{SPAN}-01"))],
        )
        .await;
        // tracecontext is not configured: the traceparent starts nothing, a new trace does.
        let sent = seen["x-b3-traceid"].as_str().unwrap();
        assert_ne!(sent, TRACE);
        assert!(
            spans
                .iter()
                .all(|s| s.span_context.trace_id().to_string() != TRACE)
        );
        assert_eq!(seen["x-b3-sampled"], "1");
        assert!(
            seen.get("traceparent").is_none() && seen.get("b3").is_none(),
            "{seen}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_jaeger_the_layers_read_and_write_uber_trace_id_and_uberctx_baggage() {
        let (seen, spans) = through(
            &[("OTEL_PROPAGATORS", "jaeger")],
            &[
                // The URL-encoded form, as some Jaeger clients send it.
                ("uber-trace-id", format!("{TRACE}%3A{SPAN}%3A0%3A1")),
                ("uberctx-user", "Am%C3%A9lie".to_owned()),
                ("baggage", "ignored=1".to_owned()),
            ],
        )
        .await;
        let uber = seen["uber-trace-id"].as_str().unwrap();
        assert!(
            uber.starts_with(&format!("{TRACE}:")) && uber.ends_with(":0:1"),
            "{uber}"
        );
        assert_eq!(seen["uberctx-user"], "Am%C3%A9lie", "{seen}");
        assert!(
            seen.get("traceparent").is_none() && seen.get("baggage").is_none(),
            "{seen}"
        );
        let first = spans
            .iter()
            .find(|s| s.parent_span_id.to_string() == SPAN)
            .expect("the first server's span continues the Jaeger parent");
        assert_eq!(first.span_context.trace_id().to_string(), TRACE);
        let client = spans
            .iter()
            .find(|s| s.name == "GET" && s.span_kind == opentelemetry::trace::SpanKind::Client)
            .expect("the client span");
        assert_eq!(
            uber,
            format!("{TRACE}:{}:0:1", client.span_context.span_id()),
            "{spans:?}"
        );
        // The second server continued the same trace under the client span.
        assert!(
            spans
                .iter()
                .any(|s| s.span_kind == opentelemetry::trace::SpanKind::Server
                    && s.parent_span_id == client.span_context.span_id()),
            "{spans:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_tracecontext_then_jaeger_a_short_jaeger_id_wins_and_both_headers_leave() {
        let short = "a3ce929d0e0e4736";
        let (seen, spans) = through(
            &[("OTEL_PROPAGATORS", "tracecontext,jaeger")],
            &[
                ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
                ("uber-trace-id", format!("{short}:{SPAN}:0:1")),
                ("uberctx-tenant", "acme".to_owned()),
            ],
        )
        .await;
        let padded = format!("{short:0>32}");
        let traceparent = seen["traceparent"].as_str().unwrap();
        let uber = seen["uber-trace-id"].as_str().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{padded}-")),
            "{traceparent}"
        );
        assert!(uber.starts_with(&format!("{padded}:")), "{uber}");
        // Both name the same parent: the client span.
        let parent_in_traceparent = traceparent.split('-').nth(2).unwrap();
        assert_eq!(uber.split(':').nth(1), Some(parent_in_traceparent));
        assert_eq!(seen["uberctx-tenant"], "acme");
        assert!(
            spans
                .iter()
                .all(|s| s.span_context.trace_id().to_string() == padded),
            "{spans:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_disabled_sdk_passes_traceparent_and_baggage_on_unchanged_and_records_nothing() {
        for flags in ["01", "00", "03"] {
            let traceparent = format!("00-{TRACE}-{SPAN}-{flags}");
            let (seen, spans) = through(
                &[("OTEL_SDK_DISABLED", "TRUE")],
                &[
                    ("traceparent", traceparent.clone()),
                    ("tracestate", "rojo=00f067aa0ba902b7".to_owned()),
                    ("baggage", "user=alice".to_owned()),
                ],
            )
            .await;
            assert_eq!(seen["traceparent"], traceparent.as_str(), "{flags}");
            assert_eq!(seen["tracestate"], "rojo=00f067aa0ba902b7");
            assert_eq!(seen["baggage"], "user=alice");
            assert!(spans.is_empty(), "{spans:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_pipelines_text_map_propagator_reads_and_writes_what_the_layers_do() {
        use opentelemetry::propagation::TextMapPropagator as _;
        use opentelemetry::trace::TraceContextExt as _;
        use std::collections::HashMap;

        let config = TelemetryConfig::from_lookup(|name| {
            (name == "OTEL_PROPAGATORS").then(|| "b3".to_owned())
        })
        .unwrap();
        let telemetry = Telemetry::builder("global")
            .exporters(&[])
            .stdout_logs(false)
            .config(config)
            .build()
            .unwrap();
        let propagator = telemetry.propagators().text_map_propagator();
        let carrier = HashMap::from([("b3".to_owned(), format!("{TRACE}-{SPAN}-1"))]);
        let cx = propagator.extract(&carrier);
        assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE);
        let mut out = HashMap::new();
        propagator.inject_context(&cx, &mut out);
        assert_eq!(out["b3"], format!("{TRACE}-{SPAN}-1"));
        assert!(!out.contains_key("traceparent"));
    }
}

/// A reqwest client with `ReqwestTelemetryMiddleware`.
#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware_client {
    use opentelemetry::Value;
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry_sdk::trace::SpanData;
    use reqwest_middleware::ClientBuilder;
    use reqwest_middleware::reqwest;
    use stellaops_telemetry_core::Telemetry;
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_tower::client::ReqwestTelemetryMiddleware;
    use stellaops_telemetry_tower::server::{ServerTelemetryLayer, Tenant};

    use super::{Router, echo, get};

    fn attribute(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_middleware_records_the_client_span_and_sends_its_context_and_the_tenant() {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("roundtrip")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        let app = Router::new()
            .route("/echo", get(echo))
            .layer(ServerTelemetryLayer::new(&telemetry));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        // The SDK installs no process-wide crypto provider; the client is given one.
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let reqwest = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        let client = ClientBuilder::new(reqwest)
            .with(
                ReqwestTelemetryMiddleware::new()
                    .redactor(telemetry.redactor().clone())
                    .propagators(telemetry.propagators()),
            )
            .build();
        let body = client
            .get(format!("http://{addr}/echo"))
            .with_extension(Tenant::parse(b"acme").unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        let missing = client
            .post(format!("http://{addr}/missing"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        // A port nothing listens on any more: the request gets no response.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(
            client
                .get(format!("http://{closed}/"))
                .send()
                .await
                .is_err()
        );
        server.abort();
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

        let spans = exporters.finished_spans();
        let clients: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        assert_eq!(clients.len(), 3, "{spans:#?}");
        let (ok, not_found, refused) = (clients[0], clients[1], clients[2]);

        // What the server received: the client span's ids, and the tenant.
        assert_eq!(
            seen["traceparent"],
            format!(
                "00-{}-{}-01",
                ok.span_context.trace_id(),
                ok.span_context.span_id()
            )
        );
        assert_eq!(seen["tenant"], "acme");
        let server = spans.iter().find(|s| s.name == "GET /echo").unwrap();
        assert_eq!(server.parent_span_id, ok.span_context.span_id());
        assert_eq!(attribute(server, "tenant.id"), Some("acme".into()));

        // The client span: the client layer's name, attributes and status rules.
        assert_eq!(ok.name, "GET");
        assert_eq!(attribute(ok, "http.request.method"), Some("GET".into()));
        assert_eq!(attribute(ok, "server.address"), Some("127.0.0.1".into()));
        assert_eq!(
            attribute(ok, "server.port"),
            Some(Value::I64(i64::from(addr.port())))
        );
        assert_eq!(
            attribute(ok, "url.full"),
            Some(format!("http://{addr}/echo").into())
        );
        assert_eq!(
            attribute(ok, "http.response.status_code"),
            Some(Value::I64(200))
        );
        assert_eq!(attribute(ok, "error.type"), None);
        assert_eq!(attribute(ok, "rpc.system"), None);
        assert!(!matches!(ok.status, Status::Error { .. }));

        assert_eq!(not_found.name, "POST");
        assert_eq!(
            attribute(not_found, "http.response.status_code"),
            Some(Value::I64(404))
        );
        assert_eq!(attribute(not_found, "error.type"), Some("404".into()));
        assert!(matches!(not_found.status, Status::Error { .. }));

        assert_eq!(attribute(refused, "http.response.status_code"), None);
        assert_eq!(attribute(refused, "error.type"), Some("_OTHER".into()));
        assert!(matches!(refused.status, Status::Error { .. }));
        telemetry.shutdown();
    }
}
