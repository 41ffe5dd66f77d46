//! The run-time controls of a built pipeline: the service's log level and per-tenant
//! overrides of sampling and log level take effect on the next event or span, and every change
//! is audited and counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    AUDIT_TARGET, ControlError, LogLevel, RequestContext, Telemetry, TenantOverride, TenantSampling,
};

fn pipeline(exporters: &TestExporters, sampler: Option<(&str, Option<f64>)>) -> Telemetry {
    let mut builder = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(exporters);
    if let Some((name, arg)) = sampler {
        builder = builder.sampler(name, arg);
    }
    builder.build().unwrap()
}

fn messages(exporters: &TestExporters) -> Vec<String> {
    exporters
        .json_logs()
        .json()
        .iter()
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_log_level_changed_at_run_time_takes_effect_on_the_next_event() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, None);
    let controls = telemetry.controls();
    assert_eq!(controls.log_level(), LogLevel::Info);
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::debug!("before the change");
        controls
            .set_log_level("ops@example.com", LogLevel::Debug)
            .unwrap();
        tracing::debug!("after the change");
        controls
            .set_log_level_str("ops@example.com", "warn")
            .unwrap();
        tracing::info!("after the second change");
        tracing::warn!("a warning");
    });
    telemetry.shutdown();
    let seen = messages(&exporters);
    assert!(!seen.contains(&"before the change".to_owned()), "{seen:?}");
    assert!(seen.contains(&"after the change".to_owned()), "{seen:?}");
    assert!(
        !seen.contains(&"after the second change".to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"a warning".to_owned()), "{seen:?}");
    assert_eq!(controls.changes(), 2);
}

#[test]
fn every_change_is_one_audit_line_with_who_what_before_and_after() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, None);
    let controls = telemetry.controls();
    controls
        .set_log_level("ops password=hunter2", LogLevel::Debug)
        .unwrap();
    controls
        .set_tenant(
            "ops@example.com",
            "acme-*",
            TenantOverride {
                sampling: TenantSampling::Always,
                log_level: None,
            },
        )
        .unwrap();
    telemetry.shutdown();
    let lines = exporters.json_logs().json();
    let audit: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == AUDIT_TARGET)
        .collect();
    assert_eq!(audit.len(), 2, "{lines:#?}");
    assert_eq!(audit[0]["control"], "log_level");
    assert_eq!(audit[0]["before"], "info");
    assert_eq!(audit[0]["after"], "debug");
    // The `who` passes the same redaction as every other field.
    assert!(!audit[0].to_string().contains("hunter2"), "{}", audit[0]);
    assert_eq!(audit[1]["control"], "tenant_sampling");
    assert_eq!(audit[1]["tenant_pattern"], "acme-*");
    assert_eq!(audit[1]["who"], "ops@example.com");
    let metrics = format!("{:?}", exporters.metrics());
    assert!(
        metrics.contains("stellaops_telemetry_control_changes_total"),
        "{metrics}"
    );
}

#[test]
fn bad_control_input_is_a_typed_error_and_changes_nothing() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, None);
    let controls = telemetry.controls();
    assert!(matches!(
        controls.set_log_level_str("ops", "loud"),
        Err(ControlError::InvalidLevel { .. })
    ));
    for pattern in ["", "ac me", "a*b*", "*", &"x".repeat(1 << 20)] {
        let err = controls
            .set_tenant("ops", pattern, TenantOverride::default())
            .unwrap_err();
        assert!(
            matches!(err, ControlError::InvalidTenantPattern { .. }),
            "{pattern:.20}: {err:?}"
        );
        assert!(err.to_string().len() < 400);
    }
    assert!(matches!(
        controls.clear_tenant("ops", "nobody"),
        Err(ControlError::UnknownTenantPattern { .. })
    ));
    assert_eq!(controls.changes(), 0);
    assert_eq!(controls.log_level(), LogLevel::Info);
}

/// Opens `count` root spans for `tenant` (a span field for half, the request context for the
/// other half) and returns how many were exported.
fn tenant_spans(telemetry: &Telemetry, exporters: &TestExporters, tenant: &str) -> usize {
    let name: &'static str = Box::leak(format!("work.{tenant}").into_boxed_str());
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for i in 0..200 {
            if i % 2 == 0 {
                tracing::info_span!("work", tenant.id = tenant, otel.name = name).in_scope(|| {});
            } else {
                let _cx = RequestContext::new().with_tenant(tenant).attach();
                tracing::info_span!("work", otel.name = name).in_scope(|| {});
            }
        }
    });
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    exporters
        .finished_spans()
        .iter()
        .filter(|s| s.name == name)
        .count()
}

#[test]
fn a_tenant_kept_always_keeps_every_span_under_a_zero_sampler_and_others_keep_none() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, Some(("traceidratio", Some(0.0))));
    telemetry
        .controls()
        .set_tenant(
            "ops",
            "acme",
            TenantOverride {
                sampling: TenantSampling::Always,
                log_level: None,
            },
        )
        .unwrap();
    assert_eq!(tenant_spans(&telemetry, &exporters, "acme"), 200);
    assert_eq!(tenant_spans(&telemetry, &exporters, "globex"), 0);
    assert_eq!(telemetry.stats().spans.dropped, 0);
}

#[test]
fn a_tenant_never_sampled_loses_its_spans_and_others_keep_all_the_sampler_keeps() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, Some(("always_on", None)));
    telemetry
        .controls()
        .set_tenant(
            "ops",
            "noisy-*",
            TenantOverride {
                sampling: TenantSampling::Never,
                log_level: None,
            },
        )
        .unwrap();
    assert_eq!(tenant_spans(&telemetry, &exporters, "noisy-1"), 0);
    assert_eq!(tenant_spans(&telemetry, &exporters, "acme"), 200);
    telemetry.controls().clear_tenant("ops", "noisy-*").unwrap();
    assert_eq!(tenant_spans(&telemetry, &exporters, "noisy-2"), 200);
}

#[test]
fn a_tenant_log_level_shows_that_tenants_debug_events_only() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, None);
    telemetry
        .controls()
        .set_tenant(
            "ops",
            "acme",
            TenantOverride {
                sampling: TenantSampling::Profile,
                log_level: Some(LogLevel::Debug),
            },
        )
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("req", tenant.id = "acme").in_scope(|| tracing::debug!("acme debug"));
        tracing::info_span!("req", tenant.id = "globex")
            .in_scope(|| tracing::debug!("globex debug"));
        let _cx = RequestContext::new().with_tenant("acme").attach();
        tracing::debug!("acme context debug");
    });
    telemetry.shutdown();
    let seen = messages(&exporters);
    assert!(seen.contains(&"acme debug".to_owned()), "{seen:?}");
    assert!(seen.contains(&"acme context debug".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"globex debug".to_owned()), "{seen:?}");
}

#[test]
fn a_tenant_level_reaches_events_inside_a_span_below_the_service_level() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .log_level(LogLevel::Warn)
        .build()
        .unwrap();
    telemetry
        .controls()
        .set_tenant(
            "ops",
            "acme",
            TenantOverride {
                sampling: TenantSampling::Profile,
                log_level: Some(LogLevel::Debug),
            },
        )
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("job", tenant.id = "acme").in_scope(|| tracing::debug!("acme job"));
        tracing::info_span!("job", tenant.id = "globex").in_scope(|| tracing::debug!("globex job"));
    });
    telemetry.shutdown();
    let seen = messages(&exporters);
    assert!(seen.contains(&"acme job".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"globex job".to_owned()), "{seen:?}");
    // The span itself stays below the service's level: not exported.
    assert!(exporters.finished_spans().is_empty());
}

#[test]
fn rust_log_directives_filter_the_service_events_until_a_run_time_change() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .log_filter("warn")
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info!("hidden by RUST_LOG");
        tracing::warn!("shown by RUST_LOG");
        telemetry
            .controls()
            .set_log_level("ops", LogLevel::Info)
            .unwrap();
        tracing::info!("shown after the change");
    });
    telemetry.shutdown();
    let seen = messages(&exporters);
    assert!(!seen.contains(&"hidden by RUST_LOG".to_owned()), "{seen:?}");
    assert!(seen.contains(&"shown by RUST_LOG".to_owned()), "{seen:?}");
    assert!(
        seen.contains(&"shown after the change".to_owned()),
        "{seen:?}"
    );
}

#[test]
fn a_bad_rust_log_directive_fails_the_build_naming_it() {
    let err = Telemetry::builder("scanner")
        .stdout_logs(false)
        .exporters(&[])
        .log_filter("scanner=loud")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("scanner=loud"), "{err}");
}
