//! Every metric of the catalogue obeys the naming rules, carries the labels and kinds the
//! specification gives, and the span catalogue opens spans with their required attributes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::metrics::naming::{self, NamingViolation};
use stellaops_telemetry_core::metrics::{MetricDescriptor, MetricKind, catalogue};
use stellaops_telemetry_core::spans::{self, SpanTenantExt as _};
use stellaops_telemetry_core::testing::TestExporters;

#[test]
fn every_catalogue_metric_passes_every_naming_rule() {
    let all: Vec<&MetricDescriptor> = catalogue::all().collect();
    assert_eq!(all.len(), 6 + 9 + 17 + 19);
    for d in &all {
        assert_eq!(naming::check(d), Ok(()), "{}", d.name);
        if d.kind == MetricKind::Histogram {
            // Seconds-scale buckets for durations: never the SDK's millisecond defaults.
            const SDK_DEFAULT: [f64; 15] = [
                0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
                5000.0, 7500.0, 10000.0,
            ];
            assert!(d.unit == "s" && d.buckets != SDK_DEFAULT, "{}", d.name);
        }
    }
    let mut names: Vec<&str> = all.iter().map(|d| d.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "a name is declared twice");
}

#[test]
fn the_catalogue_matches_the_specification_tables() {
    for (name, kind, labels) in [
        (
            "stellaops_request_duration_seconds",
            MetricKind::Histogram,
            &["service", "endpoint"][..],
        ),
        (
            "stellaops_request_total",
            MetricKind::Counter,
            &["service", "status"],
        ),
        (
            "stellaops_active_jobs",
            MetricKind::UpDownCounter,
            &["tenant", "jobType"],
        ),
        ("stellaops_queue_depth", MetricKind::Gauge, &["queue"]),
        (
            "stellaops_scan_duration_seconds",
            MetricKind::Histogram,
            &["tenant"],
        ),
        (
            "policy_run_seconds",
            MetricKind::Histogram,
            &["mode", "tenant", "policy"],
        ),
        (
            "policy_rules_fired_total",
            MetricKind::Counter,
            &["policy", "rule"],
        ),
        (
            "scanner_attestations_logged_total",
            MetricKind::Counter,
            &[],
        ),
        (
            "authority_token_issued_total",
            MetricKind::Counter,
            &["grant_type", "audience"],
        ),
        (
            "stella_targets",
            MetricKind::Gauge,
            &["tenant", "env", "type"],
        ),
        (
            "stella_http_requests_in_flight",
            MetricKind::UpDownCounter,
            &["method"],
        ),
        (
            "stella_agent_heartbeat_age_seconds",
            MetricKind::Gauge,
            &["agent"],
        ),
    ] {
        let d = catalogue::find(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((d.kind, d.labels), (kind, labels), "{name}");
    }
}

#[test]
fn broken_names_are_refused_with_the_rule_they_break() {
    let base = MetricDescriptor {
        name: "vault_rotations_total",
        kind: MetricKind::Counter,
        unit: "{rotation}",
        help: "Rotations",
        labels: &["outcome"],
        buckets: &[],
    };
    assert_eq!(naming::check(&base), Ok(()));
    for (broken, violation) in [
        (
            MetricDescriptor {
                name: "vaultRotations_total",
                ..base
            },
            NamingViolation::NotSnakeCase,
        ),
        (
            MetricDescriptor {
                name: "vault__rotations_total",
                ..base
            },
            NamingViolation::NotSnakeCase,
        ),
        (
            MetricDescriptor { help: "", ..base },
            NamingViolation::MissingHelp,
        ),
        (
            MetricDescriptor { unit: "ms", ..base },
            NamingViolation::NotBaseUnit,
        ),
        (
            MetricDescriptor {
                name: "vault_rotations",
                ..base
            },
            NamingViolation::CounterWithoutTotal,
        ),
        (
            MetricDescriptor {
                kind: MetricKind::Gauge,
                ..base
            },
            NamingViolation::TotalOnNonCounter,
        ),
        (
            MetricDescriptor {
                name: "vault_rotation_milliseconds_total",
                ..base
            },
            NamingViolation::NonBaseUnitInName,
        ),
        (
            MetricDescriptor {
                name: "vault_rotation_seconds_total",
                ..base
            },
            NamingViolation::UnitSuffixMismatch,
        ),
        (
            MetricDescriptor { unit: "s", ..base },
            NamingViolation::MissingUnitSuffix,
        ),
        (
            MetricDescriptor {
                name: "vault_rotation_duration",
                kind: MetricKind::Histogram,
                buckets: &[1.0],
                ..base
            },
            NamingViolation::HistogramWithoutUnitSuffix,
        ),
        (
            MetricDescriptor {
                name: "vault_rotation_seconds",
                kind: MetricKind::Histogram,
                unit: "s",
                buckets: &[1.0, 1.0],
                ..base
            },
            NamingViolation::BadBuckets,
        ),
        (
            MetricDescriptor {
                buckets: &[1.0],
                ..base
            },
            NamingViolation::BucketsOnNonHistogram,
        ),
        (
            MetricDescriptor {
                labels: &["le"],
                ..base
            },
            NamingViolation::BadLabelName,
        ),
        (
            MetricDescriptor {
                labels: &["a-b"],
                ..base
            },
            NamingViolation::BadLabelName,
        ),
        (
            MetricDescriptor {
                labels: &["x", "x"],
                ..base
            },
            NamingViolation::DuplicateLabel,
        ),
    ] {
        assert_eq!(naming::check(&broken), Err(violation), "{broken:?}");
    }
}

#[test]
fn catalogue_spans_carry_their_required_attributes_and_the_tenant() {
    let test = TestExporters::new();
    let telemetry = Telemetry::builder("spans")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&test)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        spans::catalogue::policy_evaluate("baseline", "7")
            .with_tenant(Some("acme"))
            .in_scope(|| {});
        spans::catalogue::deployment_execute("rel-1", "prod")
            .with_tenant(None)
            .in_scope(|| {});
    });
    telemetry.shutdown();
    let exported = test.finished_spans();
    let attr = |name: &str, key: &str| {
        exported
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not exported"))
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        attr("policy.evaluate", "policyId").as_deref(),
        Some("baseline")
    );
    assert_eq!(attr("policy.evaluate", "version").as_deref(), Some("7"));
    assert_eq!(
        attr("policy.evaluate", "tenant.id").as_deref(),
        Some("acme")
    );
    assert_eq!(
        attr("deployment.execute", "release_id").as_deref(),
        Some("rel-1")
    );
    assert_eq!(attr("deployment.execute", "tenant.id"), None);
    for d in spans::catalogue::ALL {
        assert!(!d.attributes.is_empty(), "{}", d.name);
    }
}
