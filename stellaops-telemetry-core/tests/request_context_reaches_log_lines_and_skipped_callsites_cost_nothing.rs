//! The request context (tenant, correlation id) reaches the JSON lines of work outside any
//! span; a span's own fields win over it; callsites every pipeline layer refuses are
//! disabled outright (the tower layer's request span, events below the level), whether or
//! not the pipeline has log exporters; and discarding test exporters count spans without
//! keeping them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{DIRECT_SPAN_TARGET, RequestContext, Telemetry};

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("worker")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

#[test]
fn a_queue_consumer_attaches_a_request_context_and_its_lines_carry_it() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let _cx = RequestContext::new()
            .with_tenant("acme")
            .with_correlation_id("job-42")
            .attach();
        tracing::info!("outside any span");
        let span = tracing::info_span!("scan.image", tenant.id = "globex");
        span.in_scope(|| tracing::info!("inside a span with its own tenant"));
    });
    drop(telemetry);
    let lines = exporters.json_logs().json();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["tenant"], "acme");
    assert_eq!(lines[0]["correlationId"], "job-42");
    // The innermost record wins for the tenant; the correlation id still comes from the
    // request context.
    assert_eq!(lines[1]["tenant"], "globex");
    assert_eq!(lines[1]["correlationId"], "job-42");
}

#[test]
fn the_direct_request_span_and_events_below_the_level_are_disabled_callsites() {
    let memory = TestExporters::new();
    // With log exporters (the test ones) and without any.
    for telemetry in [
        pipeline(&memory),
        Telemetry::builder("bare")
            .exporters(&[])
            .stdout_logs(false)
            .build()
            .unwrap(),
    ] {
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            let span =
                tracing::info_span!(target: "stellaops_telemetry_tower::request", "http.request");
            assert!(
                span.is_disabled(),
                "the request span is created by a pipeline layer"
            );
            assert_eq!(DIRECT_SPAN_TARGET, "stellaops_telemetry_tower::request");
            let mut evaluated = false;
            tracing::trace!(
                value = {
                    evaluated = true;
                    1
                },
                "below the default level"
            );
            assert!(!evaluated, "a trace event's fields were evaluated");
            // An ordinary span is still recorded.
            assert!(!tracing::info_span!("scan.image").is_disabled());
        });
    }
}

#[test]
fn discarding_exporters_count_every_span_and_keep_none() {
    let exporters = TestExporters::discarding_spans();
    let telemetry = pipeline(&exporters);
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for _ in 0..25 {
            tracing::info_span!("scan.image").in_scope(|| {});
        }
    });
    telemetry.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(telemetry.stats().spans.exported, 25);
    assert_eq!(telemetry.stats().spans.dropped, 0);
    assert!(exporters.finished_spans().is_empty());
    telemetry.shutdown();
}
