//! `install()` is the one place that sets the process-wide state: the tracing dispatcher, the
//! OpenTelemetry global tracer and meter providers, the W3C propagators and the pipeline
//! `#[instrument]` falls back to. (Its own test
//! binary, hence its own process.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::trace::{TraceContextExt, Tracer};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, TelemetryError};

#[stellaops_telemetry_core::instrument(span = "gate.evaluate", gate_type, result = "pass")]
fn instrumented(gate_type: &str) -> usize {
    gate_type.len()
}

/// A layer of the service's own: counts the events named `message`.
struct Counting {
    message: &'static str,
    seen: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(bool, &'static str);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}") == self.1 {
                    self.0 = true;
                }
            }
        }
        let mut found = Message(false, self.message);
        event.record(&mut found);
        if found.0 {
            self.seen.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_layer_of_the_service_sees_events_beside_a_built_pipeline() {
    let seen = Arc::new(AtomicUsize::new(0));
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("built")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .layer(Counting {
            message: "built hello",
            seen: seen.clone(),
        })
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("built.span").in_scope(|| tracing::info!("built hello"));
        tracing::debug!("built hello"); // below the profile's level: ours skip it, the layer sees it
    });
    telemetry.shutdown();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let lines = exporters.json_logs().json();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"] == "built hello")
            .count(),
        1,
        "{lines:?}"
    );
    assert!(
        exporters
            .finished_spans()
            .iter()
            .any(|s| s.name == "built.span")
    );
}

#[test]
fn install_registers_globals_refuses_a_second_install_and_the_guard_flushes() {
    assert!(stellaops_telemetry_core::metrics::global().is_none());
    let seen = Arc::new(AtomicUsize::new(0));
    let exporters = TestExporters::new();
    let propagators = stellaops_telemetry_core::TelemetryConfig::from_lookup(|name| {
        (name == "OTEL_PROPAGATORS").then(|| "tracecontext,baggage,b3,jaeger".to_owned())
    })
    .unwrap();
    let guard = Telemetry::builder("installed")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .config(propagators)
        .layer(Counting {
            message: "hello",
            seen: seen.clone(),
        })
        .install()
        .unwrap();
    assert!(stellaops_telemetry_core::metrics::global().is_some());
    assert_eq!(guard.telemetry().service_name(), "installed");

    // The global tracing dispatcher.
    tracing::info_span!("via.tracing").in_scope(|| tracing::info!(answer = 42, "hello"));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the service's layer sees the event"
    );
    let lines = exporters.json_logs().json();
    // The SDK's own diagnostics are at warn by default: no "global tracer provider is set".
    assert!(
        lines
            .iter()
            .all(|l| l["level"] != "info" || l["message"] == "hello"),
        "{lines:?}"
    );
    let hello = lines
        .iter()
        .find(|l| l["message"] == "hello")
        .expect("the event");
    assert_eq!(hello["answer"], 42);

    // The global tracer provider.
    let tracer = opentelemetry::global::tracer("direct");
    // The global propagator: trace context and baggage. (The span ends with the closure.)
    let (carrier, trace_id) = tracer.in_span("via.otel.api", |cx| {
        let mut carrier = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
        (carrier, cx.span().span_context().trace_id().to_string())
    });
    let traceparent = carrier.get("traceparent").expect("traceparent injected");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    let fields = opentelemetry::global::get_text_map_propagator(|p| {
        p.fields().map(str::to_owned).collect::<Vec<_>>()
    });
    assert!(fields.contains(&"baggage".to_owned()), "{fields:?}");
    // The configured propagators, B3 and Jaeger included, with the strict W3C parser.
    let b3 = carrier.get("b3").expect("b3 injected");
    assert!(b3.starts_with(&format!("{trace_id}-")), "{b3}");
    let uber = carrier
        .get("uber-trace-id")
        .expect("uber-trace-id injected");
    assert!(uber.starts_with(&format!("{trace_id}:")), "{uber}");
    assert!(uber.ends_with(":0:1"), "{uber}");
    assert!(fields.contains(&"uber-trace-id".to_owned()), "{fields:?}");
    assert_eq!(
        stellaops_telemetry_core::propagation::Propagators::installed(),
        guard.telemetry().propagators()
    );
    let lenient = HashMap::from([(
        "traceparent".to_owned(),
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_owned(),
    )]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&lenient));
    assert!(
        !cx.span().span_context().is_valid(),
        "uppercase hex is refused"
    );
    let from_b3 = HashMap::from([(
        "b3".to_owned(),
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned(),
    )]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&from_b3));
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );

    // Jaeger, URL-encoded form, with its baggage; a malformed `uber-trace-id` starts nothing.
    let from_jaeger = HashMap::from([
        (
            "uber-trace-id".to_owned(),
            "4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A3".to_owned(),
        ),
        ("uberctx-user".to_owned(), "Am%C3%A9lie".to_owned()),
    ]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&from_jaeger));
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(
        cx.span().span_context().is_sampled(),
        "debug reads as sampled"
    );
    {
        use opentelemetry::baggage::BaggageExt as _;
        assert_eq!(cx.baggage().get("user").map(|v| v.as_str()), Some("Amélie"));
        let mut out = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut out));
        assert_eq!(
            out["uber-trace-id"],
            "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"
        );
        assert_eq!(out["uberctx-user"], "Am%C3%A9lie");
        assert_eq!(out["baggage"], "user=Am%C3%A9lie");
    }
    let malformed = HashMap::from([(
        "uber-trace-id".to_owned(),
        "4BF92F3577B34DA6A3CE929D0E0E4736:00f067aa0ba902b7:0:1".to_owned(),
    )]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&malformed));
    assert!(
        !cx.span().span_context().is_valid(),
        "uppercase hex is refused"
    );

    // The global meter provider.
    opentelemetry::global::meter("direct")
        .u64_counter("installed_total")
        .build()
        .add(1, &[]);

    // `#[instrument]`: under the global dispatcher, and under a subscriber of the service's
    // own scoped in front of it (the installed pipeline still records the span).
    assert_eq!(instrumented("global"), 6);
    let own = tracing_subscriber::registry();
    tracing::subscriber::with_default(own, || assert_eq!(instrumented("scoped"), 6));

    // A second install finds the dispatcher taken and says so.
    let second = Telemetry::builder("second")
        .exporters(&[])
        .stdout_logs(false)
        .install();
    assert!(matches!(second, Err(TelemetryError::AlreadyInstalled)));

    drop(guard);
    let names: Vec<String> = exporters
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert!(
        names.contains(&"via.tracing".to_owned()) && names.contains(&"via.otel.api".to_owned()),
        "{names:?}"
    );
    let gates = exporters
        .finished_spans()
        .into_iter()
        .filter(|s| s.name == "gate.evaluate")
        .count();
    assert_eq!(gates, 2, "{names:?}");
    let metrics = format!("{:?}", exporters.metrics());
    assert!(metrics.contains("installed_total"));
}
