//! One `info!` event with five fields inside an entered span: the house JSON layer beside
//! `tracing_subscriber::fmt().json()`, both over the tracing-opentelemetry layer and both
//! writing to the same byte-counting writer; the house layer with span events off (the span
//! layer no longer sees the event); and the tracing-opentelemetry layer alone (what both pay
//! before either writes a byte). Then the same event under each JSON layer alone,
//! the house layer taking its trace ids from an attached OpenTelemetry context, beside two
//! floors: what any layer does before it writes (dispatch, field visits, clock, span walk),
//! and serde_json writing the same line with nothing to look up or redact. Then a
//! `debug!` event below the level: under the whole pipeline (its controlled filters), under
//! `fmt()` with an `INFO` filter and with no subscriber at all.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use stellaops_telemetry_core::{JsonLogLayer, LogOutput, Redactor, SignalStats};
use tracing::Dispatch;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Counts the bytes written to it and keeps none.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Counter {
    type Writer = Counter;

    fn make_writer(&'a self) -> Counter {
        self.clone()
    }
}

/// Does what every JSON layer must before it writes: visits the event's fields (into nothing),
/// reads the clock and walks the event's spans for their extensions.
struct FloorLayer;

/// A field visitor that keeps nothing.
struct Discard;

impl tracing::field::Visit for Discard {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        std::hint::black_box((field, value));
    }
}

impl<S> tracing_subscriber::Layer<S> for FloorLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let now = std::time::SystemTime::now();
        event.record(&mut Discard);
        let mut next = ctx.event_span(event);
        while let Some(span) = next {
            std::hint::black_box(span.extensions().get::<u64>().is_some());
            next = span.parent();
        }
        std::hint::black_box(now);
    }
}

/// The house line of the benched event, as serde_json writes it.
#[derive(serde::Serialize)]
struct Line {
    timestamp: &'static str,
    level: &'static str,
    message: &'static str,
    service: &'static str,
    version: &'static str,
    #[serde(rename = "traceId")]
    trace_id: &'static str,
    #[serde(rename = "spanId")]
    span_id: &'static str,
    tenant: &'static str,
    #[serde(rename = "correlationId")]
    correlation_id: &'static str,
    target: &'static str,
    scan_id: &'static str,
    image: &'static str,
    findings: u64,
    severity: &'static str,
    cached: bool,
    retention: &'static str,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            timestamp: "2026-12-06T01:02:03.456Z",
            level: "info",
            message: "scan finished",
            service: "scanner",
            version: "1.4.2",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id: "00f067aa0ba902b7",
            tenant: "acme",
            correlation_id: "req-7",
            target: "json_log",
            scan_id: "s-123",
            image: "registry.example/app:1.2",
            findings: 17,
            severity: "high",
            cached: true,
            retention: "30d",
        }
    }
}

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(InMemorySpanExporter::default())
        .build()
}

fn emit() {
    tracing::info!(
        scan_id = "s-123",
        image = "registry.example/app:1.2",
        findings = 17u64,
        severity = "high",
        cached = true,
        "scan finished"
    );
}

fn run(c: &mut Criterion, name: &str, dispatch: &Dispatch) {
    let span = tracing::dispatcher::with_default(dispatch, || {
        tracing::info_span!("scan", tenant.id = "acme", correlation_id = "req-7")
    });
    c.benchmark_group("json_log_event")
        .bench_function(name, |b| {
            let _default = tracing::dispatcher::set_default(dispatch);
            let _entered = span.enter();
            b.iter(emit);
        });
}

fn json_log_event(c: &mut Criterion) {
    let stats = Arc::new(SignalStats::default());
    let ours_bytes = Counter::default();
    let output = match LogOutput::writer(
        ours_bytes.clone(),
        LogOutput::DEFAULT_QUEUE_CAPACITY,
        stats.clone(),
    ) {
        Ok(output) => output,
        Err(e) => return eprintln!("cannot start the JSON log output: {e}"),
    };
    let ours_provider = provider();
    let ours = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(ours_provider.tracer("bench")))
            .with(
                JsonLogLayer::new("scanner")
                    .service_version("1.4.2")
                    .without_redaction()
                    .output(output.clone()),
            ),
    );

    let fmt_bytes = Counter::default();
    let fmt_provider = provider();
    let fmt = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(fmt_provider.tracer("bench")))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(fmt_bytes.clone()),
            ),
    );

    // The pipeline's configuration: the same layer with the default redaction rules on.
    let redacted_provider = provider();
    let redacted = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(redacted_provider.tracer("bench")))
            .with(
                JsonLogLayer::new("scanner")
                    .service_version("1.4.2")
                    .redactor(Redactor::default())
                    .output(output.clone()),
            ),
    );

    // The pipeline with `log_events_as_span_events(false)`: the span layer sees spans and
    // `ERROR` events only, so this `INFO` event is not copied into the span.
    let no_span_events_provider = provider();
    let no_span_events = Dispatch::new(
        tracing_subscriber::registry()
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(no_span_events_provider.tracer("bench"))
                    .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                        meta.is_span() || *meta.level() == tracing::Level::ERROR
                    })),
            )
            .with(
                JsonLogLayer::new("scanner")
                    .service_version("1.4.2")
                    .redactor(Redactor::default())
                    .output(output.clone()),
            ),
    );

    // The floor under both: the tracing-opentelemetry layer turns the event into a span event.
    let alone_provider = provider();
    let otel_alone = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(alone_provider.tracer("bench"))),
    );

    run(c, "stellaops_json_layer", &ours);
    run(c, "stellaops_json_layer_redaction_on", &redacted);
    run(
        c,
        "stellaops_json_layer_redaction_on_no_span_events",
        &no_span_events,
    );
    run(c, "tracing_subscriber_fmt_json", &fmt);
    run(c, "tracing_opentelemetry_alone", &otel_alone);

    output.flush(Duration::from_secs(10));
    let snap = stats.snapshot();
    eprintln!(
        "stellaops_json_layer: {} lines written, {} dropped, {} bytes; fmt json: {} bytes",
        snap.exported,
        snap.dropped,
        ours_bytes.0.load(Ordering::Relaxed),
        fmt_bytes.0.load(Ordering::Relaxed),
    );
}

/// Each JSON layer on its own (no tracing-opentelemetry layer); the house layer reads the
/// trace and span ids from the attached OpenTelemetry context, with redaction on.
fn json_log_event_layer_alone(c: &mut Criterion) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    let stats = Arc::new(SignalStats::default());
    let output = match LogOutput::writer(
        Counter::default(),
        LogOutput::DEFAULT_QUEUE_CAPACITY,
        stats.clone(),
    ) {
        Ok(output) => output,
        Err(e) => return eprintln!("cannot start the JSON log output: {e}"),
    };
    let ours = Dispatch::new(
        tracing_subscriber::registry().with(
            JsonLogLayer::new("scanner")
                .service_version("1.4.2")
                .redactor(Redactor::default())
                .output(output.clone()),
        ),
    );
    let fmt = Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(Counter::default()),
        ),
    );
    let remote = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _cx = opentelemetry::Context::current()
        .with_remote_span_context(remote)
        .attach();
    // The floor under every JSON layer: tracing hands the event over, its fields are visited
    // (into nothing), the clock is read and the event's spans walked for their extensions.
    let floor = Dispatch::new(tracing_subscriber::registry().with(FloorLayer));
    let mut group = c.benchmark_group("json_log_event_layer_alone");
    for (name, dispatch) in [
        ("stellaops_json_layer_redaction_on", &ours),
        ("tracing_subscriber_fmt_json", &fmt),
        ("floor_dispatch_visit_clock_and_span_walk", &floor),
    ] {
        let span = tracing::dispatcher::with_default(dispatch, || {
            tracing::info_span!("scan", tenant.id = "acme", correlation_id = "req-7")
        });
        group.bench_function(name, |b| {
            let _default = tracing::dispatcher::set_default(dispatch);
            let _entered = span.enter();
            b.iter(emit);
        });
    }
    // The floor of the writing: the same line (house fields and the event's five) written by
    // serde_json into a reused buffer, with nothing to look up, escape-check or redact.
    let line = Line::default();
    let mut buffer = Vec::with_capacity(512);
    group.bench_function("floor_serde_json_writes_the_same_line", |b| {
        b.iter(|| {
            buffer.clear();
            let written = serde_json::to_writer(&mut buffer, std::hint::black_box(&line));
            std::hint::black_box((written.is_ok(), buffer.len()))
        })
    });
    group.finish();
    output.flush(Duration::from_secs(10));
    let snap = stats.snapshot();
    eprintln!(
        "stellaops_json_layer alone: {} lines written, {} dropped",
        snap.exported, snap.dropped
    );
}

fn debug_event() {
    tracing::debug!(scan_id = "s-123", findings = 17u64, "cache probe");
}

fn disabled(c: &mut Criterion, name: &str, dispatch: &Dispatch) {
    c.benchmark_group("disabled_level_event")
        .bench_function(name, |b| {
            let _default = tracing::dispatcher::set_default(dispatch);
            b.iter(debug_event);
        });
}

fn disabled_level_event(c: &mut Criterion) {
    let pipeline = match stellaops_telemetry_core::Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .build()
    {
        Ok(telemetry) => telemetry,
        Err(e) => return eprintln!("cannot build the pipeline: {e}"),
    };
    let fmt = Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(Counter::default())
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        ),
    );
    disabled(c, "no_subscriber", &Dispatch::none());
    disabled(c, "stellaops_pipeline", pipeline.dispatch());
    disabled(c, "tracing_subscriber_fmt_info_filter", &fmt);
    // A tenant override at debug makes debug callsites "sometimes": each one is then asked
    // for the tenant of the work (here none).
    let override_debug = stellaops_telemetry_core::TenantOverride {
        sampling: stellaops_telemetry_core::TenantSampling::Profile,
        log_level: Some(stellaops_telemetry_core::LogLevel::Debug),
    };
    if let Err(e) = pipeline
        .controls()
        .set_tenant("bench", "acme", override_debug)
    {
        return eprintln!("cannot set the tenant override: {e}");
    }
    disabled(
        c,
        "stellaops_pipeline_tenant_debug_override",
        pipeline.dispatch(),
    );
    pipeline.shutdown();
}

criterion_group!(
    benches,
    json_log_event,
    json_log_event_layer_alone,
    disabled_level_event
);
criterion_main!(benches);
