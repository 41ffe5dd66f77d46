//! Profiles, the configuration, the environment and the setters decide the pipeline's settings
//! and exporters, in that documented order; the resource carries the identity.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::env as env_support;
use env_support::env_config;

use opentelemetry::Key;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{FileFormat, LogLevel, Profile, Telemetry, segment_files};

#[test]
fn setters_after_the_profile_win_and_the_profile_wins_over_earlier_setters() {
    let t = Telemetry::builder("svc")
        .profile(Profile::forensic())
        .log_level(LogLevel::Warn)
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap();
    assert_eq!(t.profile().log_level, LogLevel::Warn);
    assert_eq!(t.profile().export_interval_ms, 10_000);
    let t = Telemetry::builder("svc")
        .log_level(LogLevel::Warn)
        .profile(Profile::forensic())
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap();
    assert_eq!(t.profile().log_level, LogLevel::Debug);
}

#[test]
fn the_environment_selects_the_profile_and_overrides_its_values() {
    let t = Telemetry::builder("svc")
        .stdout_logs(false)
        .config(env_config(&[
            ("STELLAOPS_TELEMETRY_PROFILE", "forensic"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "2500"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ]))
        .build()
        .unwrap();
    assert_eq!(t.profile().name, "forensic");
    assert_eq!(t.profile().export_interval_ms, 2_500);
    assert_eq!(t.profile().retention_days, 180);
    assert!(t.profile().exporters.traces.is_empty());
}

#[test]
fn the_exporters_come_from_the_profile_and_the_exporter_variables() {
    let dir = tempfile::tempdir().unwrap();
    let t = Telemetry::builder("svc")
        .stdout_logs(false)
        .dir(dir.path())
        .config(env_config(&[
            ("STELLAOPS_TELEMETRY_PROFILE", "airgap"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ]))
        .build()
        .unwrap();
    assert!(t.profile().sealed);
    // Airgap samples in the SDK: an incident's trace is always kept.
    tracing::dispatcher::with_default(t.dispatch(), || {
        tracing::info_span!("work", stellaops.incident.id = "INC-1")
            .in_scope(|| tracing::info!("done"));
    });
    t.meter("svc").u64_counter("work_total").build().add(1, &[]);
    t.shutdown();
    assert!(!segment_files(dir.path(), "traces", FileFormat::Json).is_empty());
    let metrics = stellaops_telemetry_core::read_metrics(dir.path(), FileFormat::Json).unwrap();
    let names: Vec<String> = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect();
    assert!(names.contains(&"work_total".to_owned()), "{names:?}");
    // The SDK's own counters and backlog gauges travel with the service's metrics.
    for sdk in [
        "stellaops_telemetry_redactions_total",
        "stellaops_telemetry_exported_total",
        "stellaops_telemetry_queue_depth",
        "stellaops_telemetry_queue_bytes",
        "stellaops_telemetry_queue_oldest_age_seconds",
    ] {
        assert!(names.contains(&sdk.to_owned()), "{sdk}: {names:?}");
    }
    assert!(segment_files(dir.path(), "logs", FileFormat::Json).is_empty());
    assert_eq!(t.stats().logs.exported, 0);
}

#[test]
fn the_resource_carries_identity_and_the_resource_variable() {
    let t = Telemetry::builder("builder-name")
        .service_version("9.9.9")
        .deployment_environment("staging")
        .exporters(&[])
        .stdout_logs(false)
        .config(env_config(&[
            ("OTEL_SERVICE_NAME", "policy-engine"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=sec,service.name=ignored"),
        ]))
        .build()
        .unwrap();
    let r = t.resource();
    let get = |k: &'static str| r.get(&Key::from_static_str(k)).map(|v| v.to_string());
    assert_eq!(get("service.name").as_deref(), Some("policy-engine"));
    assert_eq!(get("service.version").as_deref(), Some("9.9.9"));
    assert_eq!(get("deployment.environment").as_deref(), Some("staging"));
    assert_eq!(get("team").as_deref(), Some("sec"));
    assert!(get("host.name").is_some_and(|h| !h.is_empty()));
    assert_eq!(get("telemetry.sdk.language").as_deref(), Some("rust"));
}

#[test]
fn the_log_bridge_does_not_forward_the_exporters_own_transport_logs() {
    let exporters = TestExporters::new();
    let t = Telemetry::builder("svc")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(t.dispatch(), || {
        tracing::warn!(target: "h2::proto", "connection reset");
        tracing::warn!(target: "tonic::transport", "reconnecting");
        tracing::warn!(target: "opentelemetry_otlp", "export failed");
        // The OpenTelemetry crates' internal logs name the (hyphenated) package.
        tracing::warn!(target: "opentelemetry-otlp", "partial success");
        tracing::debug!(target: "opentelemetry-otlp", "export succeeded");
        tracing::warn!(target: "hyper_rustls::connector", "handshake");
        tracing::warn!(target: "scanner", "service event");
    });
    t.shutdown();
    let records = exporters.log_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(format!("{:?}", records[0].body()).contains("service event"));
    // The JSON log still shows transport warnings to the operator (not the SDK's debug).
    assert_eq!(exporters.json_logs().lines().len(), 6);
}

#[test]
fn transport_spans_are_never_exported_even_at_trace_level() {
    let exporters = TestExporters::new();
    let t = Telemetry::builder("svc")
        .log_level(LogLevel::Trace)
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(t.dispatch(), || {
        tracing::trace_span!(target: "h2::codec", "FramedWrite::buffer").in_scope(|| {
            tracing::trace!(target: "h2::codec", "send frame");
        });
        tracing::trace_span!(target: "hyper_util::client", "connect").in_scope(|| {});
        tracing::trace_span!(target: "scanner", "scan.image").in_scope(|| {});
    });
    t.shutdown();
    let names: Vec<String> = exporters
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["scan.image"]);
    assert!(exporters.log_records().is_empty());
}

#[test]
fn a_sealed_environment_stays_sealed_whatever_profile_the_code_picks_later() {
    let t = Telemetry::builder("svc")
        .config(env_config(&[("STELLAOPS_TELEMETRY_SEALED", "true")]))
        .profile(Profile::forensic())
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap();
    assert!(t.profile().sealed);
    let t = Telemetry::builder("svc")
        .sealed(false)
        .profile(Profile::airgap())
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap();
    assert!(
        !t.profile().sealed,
        "an explicit unseal is the operator's choice"
    );
}

#[test]
fn service_name_in_the_resource_variable_renames_the_service_unless_otel_service_name_is_set() {
    let t = Telemetry::builder("from-code")
        .exporters(&[])
        .stdout_logs(false)
        .config(env_config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attributes",
        )]))
        .build()
        .unwrap();
    assert_eq!(t.service_name(), "from-attributes");
}

mod batch_processor_variables {
    use super::*;

    /// Waits (bounded) until `done` holds; the assertions after it count work, not time.
    fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..2000 {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("never happened: {what}");
    }

    fn pipeline(vars: &[(&str, &str)], exporters: &TestExporters) -> Telemetry {
        Telemetry::builder("batch")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(exporters)
            .config(env_config(vars))
            .build()
            .unwrap()
    }

    #[test]
    fn the_span_batch_size_cuts_exports_and_the_schedule_delay_holds_the_rest() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(
            &[
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
                ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ],
            &exporters,
        );
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for _ in 0..5 {
                tracing::info_span!("work").in_scope(|| {});
            }
        });
        until("two full batches exported", || {
            telemetry.stats().spans.exported == 4
        });
        // Only full batches leave before the hour-long delay: the fifth span waits.
        assert_eq!(exporters.finished_spans().len(), 4);
        assert_eq!(telemetry.stats().spans.queue_depth, 1);
        telemetry.flush(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(exporters.finished_spans().len(), 5);
        telemetry.shutdown();
    }

    #[test]
    fn the_log_record_batch_size_cuts_exports_and_the_schedule_delay_holds_the_rest() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(
            &[
                ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "3"),
                ("OTEL_BLRP_SCHEDULE_DELAY", "3600000"),
                ("OTEL_LOGS_EXPORTER", "none"),
            ],
            &exporters,
        );
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for i in 0..7 {
                tracing::info!(i, "record");
            }
        });
        until("two full batches exported", || {
            telemetry.stats().logs.exported == 6
        });
        assert_eq!(exporters.log_records().len(), 6);
        assert_eq!(telemetry.stats().logs.queue_depth, 1);
        telemetry.flush(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(exporters.log_records().len(), 7);
        telemetry.shutdown();
    }

    #[test]
    fn the_span_queue_size_bounds_what_waits_behind_a_stalled_export() {
        let exporters = TestExporters::stalled_spans();
        let telemetry = pipeline(
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "3"),
                // One span per export: the worker holds one span in the stalled export.
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1"),
                ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ],
            &exporters,
        );
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for _ in 0..20 {
                tracing::info_span!("work").in_scope(|| {});
            }
        });
        // The worker holds at most one span in the stalled export, the queue at most three.
        let dropped = telemetry.stats().spans.dropped;
        assert!(dropped == 16 || dropped == 17, "dropped {dropped}");
        exporters.release_spans();
        telemetry.flush(std::time::Duration::from_secs(10)).unwrap();
        let stats = telemetry.stats().spans;
        assert_eq!(stats.exported + stats.dropped, 20);
        telemetry.shutdown();
    }

    #[test]
    fn a_batch_size_above_the_queue_size_is_cut_to_it() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "2"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
                ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ],
            &exporters,
        );
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            tracing::info_span!("one").in_scope(|| {});
            tracing::info_span!("two").in_scope(|| {});
        });
        // A batch of 512 would wait an hour; one cut to the queue's 2 leaves at once.
        until("a full batch of two exported", || {
            telemetry.stats().spans.exported == 2
        });
        telemetry.shutdown();
    }

    #[test]
    fn a_later_builder_call_wins_over_the_environment_as_for_every_setting() {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("batch")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .config(env_config(&[("OTEL_BSP_SCHEDULE_DELAY", "3600000")]))
            .export_delay(std::time::Duration::from_millis(10))
            .build()
            .unwrap();
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            tracing::info_span!("soon").in_scope(|| {});
        });
        // Exported without a flush: the 10 ms delay applies, not the hour.
        until("the span exported by the delay", || {
            telemetry.stats().spans.exported == 1
        });
        telemetry.shutdown();
    }
}
