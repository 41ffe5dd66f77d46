//! Per-request overhead over the bare service, in one run, side by side: (a) our server
//! layer, (b) opentelemetry-instrumentation-tower's layer, (c) tower-http's `TraceLayer` with
//! tracing-opentelemetry plus request metrics. Each records a span and request metrics into
//! a pipeline whose spans go through a batch processor to an exporter that discards them (ours:
//! `TestExporters::discarding_spans`, after the pipeline's queue and redaction).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench http_layers
//! ```

#![allow(missing_docs)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use stellaops_telemetry_benches::peers::{
    CountingDiscard, sdk_tracer_provider, with_tower_http_trace_layer,
};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// The service as `axum::serve` runs it: its handlers made into routes once, not per request.
fn routes() -> Router {
    Router::new()
        .route("/scans/{id}", get(|| async { "ok" }))
        .with_state(())
}

/// One request through `app`, body read to its end: its status and body.
fn round_trip(app: &Router) -> (http::StatusCode, Option<axum::body::Bytes>) {
    futures_executor::block_on(async {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = http::Uri::from_static("/scans/s-1");
        request
            .headers_mut()
            .insert("x-stellaops-tenant", http::HeaderValue::from_static("acme"));
        let response = match app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        (
            status,
            axum::body::to_bytes(response.into_body(), 64).await.ok(),
        )
    })
}

/// One request proves `app` answers `200 ok` before it is measured.
fn check_answers(name: &str, app: &Router) {
    let (status, body) = round_trip(app);
    assert!(
        status == 200 && body.as_deref() == Some(&b"ok"[..]),
        "{name}: the service answered {status} {body:?}"
    );
}

/// Measures `app` under `name`.
fn bench_app(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    app: &Router,
) {
    check_answers(name, app);
    group.bench_function(name, |b| b.iter(|| std::hint::black_box(round_trip(app))));
}

/// A pipeline for the bench, or the reason it could not be built.
fn pipeline(
    memory: Option<&TestExporters>,
) -> Result<Telemetry, stellaops_telemetry_core::TelemetryError> {
    let builder = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true);
    match memory {
        Some(memory) => builder.test_exporters(memory).build(),
        None => builder.build(),
    }
}

fn http_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_request_overhead");

    bench_app(&mut group, "bare_service", &routes());
    // (0) A layer that does nothing but wrap the response body, as every layer that records the
    // body's end must: what axum's boxing of a layered route and of its body costs by itself.
    bench_app(
        &mut group,
        "a0_pass_through_layer_wrapping_the_body",
        &routes().layer(tower::util::MapResponseLayer::new(
            |response: http::Response<Body>| response.map(Wrapped),
        )),
    );

    // (a) Ours: the pipeline's span queue (redaction included) to an exporter that discards;
    // Prometheus reader on. (a2) The same without a span exporter: the layer's own cost,
    // without the span handoff.
    let memory = TestExporters::discarding_spans();
    let (telemetry, bare_pipeline) = match (pipeline(Some(&memory)), pipeline(None)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping http_layers: the pipeline could not be built: {e}");
            return;
        }
    };
    let ours = routes().layer(ServerTelemetryLayer::new(&telemetry));
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        bench_app(&mut group, "a_stellaops_server_layer", &ours);
    });
    let ours_no_export = routes().layer(ServerTelemetryLayer::new(&bare_pipeline));
    tracing::dispatcher::with_default(bare_pipeline.dispatch(), || {
        bench_app(
            &mut group,
            "a2_stellaops_server_layer_no_span_exporter",
            &ours_no_export,
        );
    });
    // (a3) The same pipeline with every request span sampled out: the layer without its span
    // record and hand-off (the context, tenant, request id and metrics remain).
    if let Ok(sampled_out) = Telemetry::builder("bench")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&memory)
        .sampler("traceidratio", Some(0.0))
        .build()
    {
        let app = routes().layer(ServerTelemetryLayer::new(&sampled_out));
        tracing::dispatcher::with_default(sampled_out.dispatch(), || {
            bench_app(&mut group, "a3_stellaops_server_layer_sampled_out", &app);
        });
        sampled_out.shutdown();
    }

    // (b) opentelemetry-instrumentation-tower: it reads the global providers.
    let tracer_b = sdk_tracer_provider(CountingDiscard::default());
    let meters_b = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    opentelemetry::global::set_tracer_provider(tracer_b.clone());
    opentelemetry::global::set_meter_provider(meters_b.clone());
    let otel_layer = opentelemetry_instrumentation_tower::http::server::Layer::new();
    let theirs = routes().layer(otel_layer);
    bench_app(&mut group, "b_opentelemetry_instrumentation_tower", &theirs);

    // (c) tower-http TraceLayer + tracing-opentelemetry, request metrics in on_response.
    let tracer_c = sdk_tracer_provider(CountingDiscard::default());
    let meters_c = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_c.tracer("bench")));
    let dispatch = tracing::Dispatch::new(subscriber);
    let tower_http = with_tower_http_trace_layer(routes(), &meters_c.meter("bench"));
    tracing::dispatcher::with_default(&dispatch, || {
        bench_app(
            &mut group,
            "c_tower_http_trace_layer_tracing_opentelemetry",
            &tower_http,
        );
    });
    group.finish();

    // The layers really recorded: a check after the measurements.
    let _ = telemetry.flush(Duration::from_secs(10));
    let exported = telemetry.stats().spans.exported;
    assert!(exported > 0, "no span was exported");
    let body = telemetry
        .prometheus()
        .map(|p| p.render().map_err(|e| e.to_string()))
        .unwrap_or_else(|| Err("no exposition".to_owned()));
    assert!(
        body.as_deref()
            .is_ok_and(|b| b.contains("stellaops_request_total")),
        "{body:?}"
    );
    telemetry.shutdown();
    bare_pipeline.shutdown();
    let _ = tracer_b.shutdown();
    let _ = tracer_c.shutdown();
    let _ = meters_b.shutdown();
    let _ = meters_c.shutdown();
}

/// A response body passed through unchanged.
struct Wrapped(Body);

impl http_body::Body for Wrapped {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// A `HeaderMap` as an OpenTelemetry `Extractor` (what opentelemetry-http provides).
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Reading the caller's trace context from a request's headers: ours (the strict W3C parser
/// the layer uses, through the pipeline's propagators) against the OpenTelemetry SDK's
/// `TraceContextPropagator`, on a request with a `traceparent`, and with a `tracestate` too;
/// and the three header lookups ours makes, alone.
fn trace_context_extract(c: &mut Criterion) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    let mut group = c.benchmark_group("traceparent_extract");
    let Ok(telemetry) = pipeline(None) else {
        return;
    };
    let propagators = telemetry.propagators();
    let sdk = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let mut only_parent = http::HeaderMap::new();
    only_parent.insert(
        "traceparent",
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let mut with_state = only_parent.clone();
    with_state.insert(
        "tracestate",
        http::HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    );
    for (label, headers) in [
        ("traceparent", &only_parent),
        ("with_tracestate", &with_state),
    ] {
        let ours = propagators.extract(headers);
        let theirs = sdk.extract(&Headers(headers));
        assert_eq!(
            ours.parent.as_ref().map(|p| p.trace_id()),
            Some(theirs.span().span_context().trace_id()),
            "both read the same parent"
        );
        group.bench_function(format!("a_stellaops_{label}"), |b| {
            b.iter(|| std::hint::black_box(propagators.extract(std::hint::black_box(headers))))
        });
        group.bench_function(format!("b_opentelemetry_sdk_{label}"), |b| {
            b.iter(|| std::hint::black_box(sdk.extract(&Headers(std::hint::black_box(headers)))))
        });
    }
    // The floor under ours: the three header lookups alone, in the http crate's map, with the
    // same header names (the parse is what ours adds).
    let names = [
        stellaops_telemetry_core::propagation::TRACEPARENT,
        stellaops_telemetry_core::propagation::TRACESTATE,
        stellaops_telemetry_core::propagation::BAGGAGE,
    ];
    group.bench_function("c_http_header_map_three_lookups", |b| {
        b.iter(|| {
            let headers = std::hint::black_box(&only_parent);
            names
                .iter()
                .map(|name| headers.get_all(name).iter().count())
                .sum::<usize>()
        })
    });
    group.finish();
    telemetry.shutdown();
}

/// What the server layer's work costs in the crates it builds on, each piece alone, in the
/// same run as the layer: the floor each piece sets, whoever writes the layer.
///
/// - `clock_reads`: the monotonic start and end and the span's wall-clock start;
/// - `sdk_ids_and_sampler`: a trace and a span id and the SDK's parent-based sampler;
/// - `otel_context_*`: the OpenTelemetry `Context` the handler runs in (what
///   tracing-opentelemetry, `Context::current()` and the client layer read), built, attached
///   and detached for the response future's poll and the body's, then dropped: with the
///   request's span only, and with one value besides (the request's tenant and ids);
/// - `request_extension_insert`: one value put in a request's extensions (a handler's
///   `Extension<Tenant>`; the request is built and dropped outside the timing);
/// - `sdk_bound_metrics`: the three request metrics through the SDK's bound instruments
///   (duration, count, in-flight up and down);
/// - `pooled_record_hand_off`: a 1 KiB record taken from the pool another thread refills,
///   10 attributes' worth written, and handed to that thread (what every sampled span costs
///   to leave the request's thread, without building anything).
fn layer_parts(c: &mut Criterion) {
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, Sampler, ShouldSample};
    let mut group = c.benchmark_group("layer_parts");
    group.bench_function("clock_reads", |b| {
        b.iter(|| {
            let start = std::time::Instant::now();
            let wall = std::time::SystemTime::now();
            std::hint::black_box((start, wall, start.elapsed()))
        })
    });
    let ids = RandomIdGenerator::default();
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let root = opentelemetry::Context::new();
    group.bench_function("sdk_ids_and_sampler", |b| {
        b.iter(|| {
            let trace_id = ids.new_trace_id();
            let decision = sampler.should_sample(
                Some(&root),
                trace_id,
                "http.request",
                &SpanKind::Server,
                &[],
                &[],
            );
            std::hint::black_box((trace_id, ids.new_span_id(), decision))
        })
    });
    let span_context = SpanContext::new(
        TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
        SpanId::from(0xb7ad_6b71_6920_3331),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    /// What the request's context carries besides its span, as one value.
    #[derive(Clone)]
    struct RequestValues {
        _tenant: std::sync::Arc<str>,
        _request_id: std::sync::Arc<str>,
    }
    let values = RequestValues {
        _tenant: "acme".into(),
        _request_id: "req-1".into(),
    };
    let attach_twice = |cx: opentelemetry::Context| {
        for _ in 0..2 {
            let _guard = cx.clone().attach();
            std::hint::black_box(opentelemetry::Context::map_current(|c| c.has_active_span()));
        }
    };
    group.bench_function("otel_context_span_only", |b| {
        b.iter(|| {
            attach_twice(
                opentelemetry::Context::new().with_remote_span_context(span_context.clone()),
            )
        })
    });
    group.bench_function("otel_context_span_and_one_value", |b| {
        b.iter(|| {
            attach_twice(
                opentelemetry::Context::new()
                    .with_remote_span_context(span_context.clone())
                    .with_value(values.clone()),
            )
        })
    });
    group.bench_function("request_extension_insert", |b| {
        b.iter_batched(
            || Request::new(Body::empty()),
            |mut request| {
                request.extensions_mut().insert(values.clone());
                request
            },
            criterion::BatchSize::SmallInput,
        )
    });
    bound_metrics(&mut group);
    record_hand_off(&mut group);
    group.finish();
}

/// The layer's three request metrics, recorded through the SDK's bound instruments.
fn bound_metrics(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let meters = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let meter = meters.meter("bench");
    let attributes = [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/scans/{id}"),
        KeyValue::new("http.response.status_code", 200),
    ];
    let duration = meter
        .f64_histogram("http.server.request.duration")
        .build()
        .bind(&attributes);
    let requests = meter.u64_counter("requests").build().bind(&attributes);
    let in_flight = meter
        .i64_up_down_counter("in_flight")
        .build()
        .bind(&attributes[..1]);
    group.bench_function("sdk_bound_metrics", |b| {
        b.iter(|| {
            in_flight.add(1);
            duration.record(std::hint::black_box(0.000_25));
            requests.add(1);
            in_flight.add(-1);
        })
    });
    let _ = meters.shutdown();
}

/// A fixed-size record taken from a pool another thread refills, written, handed over.
fn record_hand_off(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    type Record = Box<[u8; 1024]>;
    const POOL: usize = 4_096;
    let (to_worker, worker_in) = std::sync::mpsc::sync_channel::<Record>(POOL);
    let (to_pool, pool) = std::sync::mpsc::sync_channel::<Record>(POOL);
    let worker = std::thread::spawn(move || {
        let mut read = 0u64;
        for record in worker_in {
            // The worker reads what was written, as building a span does.
            read = read.wrapping_add(record.iter().step_by(64).map(|&b| u64::from(b)).sum());
            let _ = to_pool.try_send(record);
        }
        read
    });
    let mut dropped = 0u64;
    group.bench_function("pooled_record_hand_off", |b| {
        b.iter(|| {
            let mut record = pool.try_recv().unwrap_or_else(|_| Box::new([0u8; 1024]));
            // 10 attributes of a record: about 600 bytes across its lines.
            for (i, byte) in record.iter_mut().take(600).enumerate() {
                *byte = i as u8;
            }
            if to_worker.try_send(record).is_err() {
                dropped += 1;
            }
        })
    });
    drop(to_worker);
    let _ = worker.join();
    if dropped > 0 {
        eprintln!("pooled_record_hand_off: {dropped} records found the worker's queue full");
    }
}

/// The names `prefix-00000` .. for `n`, leaked once for `'static` uses.
fn names(prefix: &str, n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|i| &*Box::leak(format!("{prefix}-{i:05}").into_boxed_str()))
        .collect()
}

/// Per-request cost as the work grows: one route and one tenant, against 10,000 routes and
/// 10,000 tenants taken in turn (every request metric then at its 1,000-series limit), and
/// against the same 10,000 with every request on one of them, for the bare service and
/// behind our layer, in one run.
fn flat_cost(c: &mut Criterion) {
    const MANY: usize = 10_000;
    let mut group = c.benchmark_group("flat_cost_per_request");
    let routes_many = names("/r", MANY);
    let tenants_many = names("tenant", MANY);
    let router = |n: usize| {
        routes_many[..n]
            .iter()
            .fold(Router::new(), |r, route| {
                r.route(&format!("{route}/{{id}}"), get(|| async { "ok" }))
            })
            .with_state(())
    };
    let uris: Vec<http::Uri> = routes_many
        .iter()
        .map(|r| format!("{r}/s-1").parse().unwrap_or_default())
        .collect();
    let memory = TestExporters::discarding_spans();
    let Ok(telemetry) = pipeline(Some(&memory)) else {
        return;
    };
    let one = (
        router(1),
        router(1).layer(ServerTelemetryLayer::new(&telemetry)),
    );
    let many = (
        router(MANY),
        router(MANY).layer(ServerTelemetryLayer::new(&telemetry)),
    );
    let send = |app: &Router, i: usize, n: usize| {
        futures_executor::block_on(async {
            let mut request = Request::new(Body::empty());
            *request.uri_mut() = uris[i % n].clone();
            request.headers_mut().insert(
                "x-stellaops-tenant",
                http::HeaderValue::from_static(tenants_many[i % n]),
            );
            let response = match app.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status();
            let _ = axum::body::to_bytes(response.into_body(), 64).await;
            status
        })
    };
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        // Every route and tenant seen once: the caches and the metric series are full.
        for i in 0..MANY {
            assert_eq!(send(&many.1, i, MANY), 200);
            assert_eq!(send(&many.0, i, MANY), 200);
        }
        // `10000_one_hot`: the same full tables, every request the same route and tenant
        // (what grows is the tables, not the memory each request touches).
        for (label, (bare, ours), n) in [
            ("1", &one, 1),
            ("10000", &many, MANY),
            ("10000_one_hot", &many, 1),
        ] {
            let mut i = 0usize;
            group.bench_function(format!("bare_service_{label}"), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    std::hint::black_box(send(bare, i, n))
                })
            });
            group.bench_function(format!("a_stellaops_server_layer_{label}"), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    std::hint::black_box(send(ours, i, n))
                })
            });
        }
    });
    group.finish();
    telemetry.shutdown();
}

criterion_group!(
    benches,
    http_layers,
    layer_parts,
    trace_context_extract,
    flat_cost
);
criterion_main!(benches);
