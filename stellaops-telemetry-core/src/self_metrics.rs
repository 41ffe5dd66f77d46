//! The SDK's own metrics, under one prefix, exported with the service's: every loss, every
//! redaction and every egress refusal is visible where the service's metrics are.
//!
//! | metric | labels |
//! |---|---|
//! | `stellaops_telemetry_exported_total` | `signal` (spans, logs, metrics, log_lines) |
//! | `stellaops_telemetry_dropped_total` | `signal` |
//! | `stellaops_telemetry_tenant_exported_total` | `signal` (spans, logs, metrics), `tenant` (at most 100 values, then `_other`; `_none` without a tenant) |
//! | `stellaops_telemetry_tenant_rejected_total` | `signal` |
//! | `stellaops_telemetry_export_failures_total` | `signal` |
//! | `stellaops_telemetry_redactions_total` | `rule` |
//! | `stellaops_telemetry_egress_refusals_total` | — |
//! | `stellaops_telemetry_truncated_total` | `kind` (attribute_value, log_value, label_value, span_attribute, span_event, span_link) |
//! | `stellaops_telemetry_control_changes_total` | `control` (log_level, tenant_sampling, tenant_log_level) |
//! | `stellaops_telemetry_queue_depth` (gauge) | `signal` (spans, logs, log_lines) |
//! | `stellaops_telemetry_queue_bytes` (gauge) | `signal` |
//! | `stellaops_telemetry_queue_oldest_age_seconds` (gauge) | `signal` |
//! | `stellaops_telemetry_tail_sampling_decisions_total` | `policy` (error, slow, incident, probabilistic), `decision` (keep, drop) |
//! | `stellaops_telemetry_tail_sampling_early_decisions_total` | `reason` (decision_wait, trace_limit, span_limit, byte_limit, flush) |
//! | `stellaops_telemetry_tail_sampling_spans_total` | `decision` |
//! | `stellaops_telemetry_tail_sampling_held_{traces,spans,bytes}` (gauges) | — |
//!
//! The tail-sampling metrics exist where the profile samples in the SDK.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::redaction::Redactor;
use crate::stats::{PipelineStats, SignalSnapshot, StatsSnapshot};

fn per_signal(
    s: &StatsSnapshot,
    pick: fn(&crate::stats::SignalSnapshot) -> u64,
) -> [(&'static str, u64); 4] {
    [
        ("spans", pick(&s.spans)),
        ("logs", pick(&s.logs)),
        ("metrics", pick(&s.metrics)),
        ("log_lines", pick(&s.log_lines)),
    ]
}

/// The signals that queue records for export (metric data points are collected, not queued).
fn queued_signals(s: &StatsSnapshot) -> [(&'static str, &SignalSnapshot); 3] {
    [
        ("spans", &s.spans),
        ("logs", &s.logs),
        ("log_lines", &s.log_lines),
    ]
}

/// The backlog gauges: depth, bytes and the oldest record's age of each queued signal.
fn register_backlog(meter: &opentelemetry::metrics::Meter, stats: &Arc<PipelineStats>) {
    for (name, description, pick) in [
        (
            "stellaops_telemetry_queue_depth",
            "Records queued for export and not yet exported or dropped",
            (|s: &SignalSnapshot| s.queue_depth) as fn(&SignalSnapshot) -> u64,
        ),
        (
            "stellaops_telemetry_queue_bytes",
            "Estimated bytes of the records queued for export",
            |s| s.queue_bytes,
        ),
    ] {
        let stats = stats.clone();
        let _ = meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (signal, s) in queued_signals(&stats.snapshot()) {
                    observer.observe(pick(s), &[KeyValue::new("signal", signal)]);
                }
            })
            .build();
    }
    let stats = stats.clone();
    let _ = meter
        .f64_observable_gauge("stellaops_telemetry_queue_oldest_age_seconds")
        .with_description("Age of the oldest record queued for export (0 when none is)")
        .with_callback(move |observer| {
            for (signal, s) in queued_signals(&stats.snapshot()) {
                let age = s.queue_oldest_age.unwrap_or_default().as_secs_f64();
                observer.observe(age, &[KeyValue::new("signal", signal)]);
            }
        })
        .build();
}

/// The per-tenant OTLP export counters.
fn register_tenants(meter: &opentelemetry::metrics::Meter, stats: &Arc<PipelineStats>) {
    let tenants = stats.tenants.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_tenant_exported_total")
        .with_description("Records (metric data points) the OTLP exporters delivered, by tenant")
        .with_callback(move |observer| {
            for (signal, tenant, value) in tenants.exported() {
                observer.observe(
                    value,
                    &[
                        KeyValue::new("signal", signal),
                        KeyValue::new("tenant", tenant.to_string()),
                    ],
                );
            }
        })
        .build();
    let tenants = stats.tenants.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_tenant_rejected_total")
        .with_description(
            "Records whose tenant.id cannot be a header value (sent as without a tenant)",
        )
        .with_callback(move |observer| {
            for (signal, value) in tenants.rejected() {
                observer.observe(value, &[KeyValue::new("signal", signal)]);
            }
        })
        .build();
}

/// Registers the self-metrics on the pipeline's (non-redacting: the labels are the SDK's
/// own) meter. The instruments live as long as the provider.
pub(crate) fn register(provider: &SdkMeterProvider, stats: Arc<PipelineStats>, redactor: Redactor) {
    let meter = provider.meter("stellaops-telemetry");
    register_backlog(&meter, &stats);
    for (name, description, pick) in [
        (
            "stellaops_telemetry_exported_total",
            "Records accepted by every exporter of the signal",
            (|s: &crate::stats::SignalSnapshot| s.exported)
                as fn(&crate::stats::SignalSnapshot) -> u64,
        ),
        (
            "stellaops_telemetry_dropped_total",
            "Records lost: full queue, failed or timed-out export, shutdown deadline",
            |s| s.dropped,
        ),
        (
            "stellaops_telemetry_export_failures_total",
            "Export calls that failed or timed out",
            |s| s.export_failures,
        ),
    ] {
        let stats = stats.clone();
        let _ = meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (signal, value) in per_signal(&stats.snapshot(), pick) {
                    observer.observe(value, &[KeyValue::new("signal", signal)]);
                }
            })
            .build();
    }
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_redactions_total")
        .with_description("Values redacted or dropped, by rule")
        .with_callback(move |observer| {
            for (rule, count) in redactor.counts() {
                observer.observe(count, &[KeyValue::new("rule", rule.as_str())]);
            }
        })
        .build();
    register_tenants(&meter, &stats);
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_egress_refusals_total")
        .with_description("Exporters the egress policy refused (replaced by files)")
        .with_callback(move |observer| {
            observer.observe(stats.egress_refusals.load(Ordering::Relaxed), &[]);
        })
        .build();
}
