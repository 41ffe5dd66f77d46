//! The alert rules file parses, carries every platform and release-orchestrator alert with a severity,
//! a summary and a description, and its unit tests cover each alert firing and staying quiet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_norway::Value;
use stellaops_telemetry_core::artefacts;

const ALERTS: [(&str, &str); 11] = [
    ("HighErrorRate", "critical"),
    ("SlowScans", "warning"),
    ("QueueBacklog", "warning"),
    ("CircuitOpen", "critical"),
    ("DeploymentFailureRateHigh", "critical"),
    ("DeploymentDurationHigh", "warning"),
    ("RollbackRateHigh", "warning"),
    ("AgentOffline", "critical"),
    ("AgentPoolLow", "warning"),
    ("ApprovalBacklogHigh", "warning"),
    ("ApprovalWaitLong", "info"),
];

fn rules() -> Vec<Value> {
    let doc: Value = serde_norway::from_str(&artefacts::alert_rules().unwrap().contents).unwrap();
    doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn every_alert_has_its_severity_a_summary_and_a_description() {
    let rules = rules();
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(names, ALERTS.map(|(n, _)| n));
    for (rule, (name, severity)) in rules.iter().zip(ALERTS) {
        assert_eq!(
            rule["labels"]["severity"].as_str(),
            Some(severity),
            "{name}"
        );
        for field in ["summary", "description"] {
            assert!(
                rule["annotations"][field]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name} has no {field}"
            );
        }
        assert!(rule["for"].as_str().is_some(), "{name}");
    }
}

#[test]
fn the_house_rules_keep_their_thresholds_and_the_broken_ones_are_fixed() {
    let rules = rules();
    let expr = |name: &str| {
        rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(name))
            .unwrap()["expr"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(expr("HighErrorRate").ends_with("> 0.05"));
    assert!(expr("SlowScans").ends_with("> 300"));
    assert!(expr("DeploymentFailureRateHigh").ends_with("> 0.1"));
    assert!(
        expr("AgentPoolLow").starts_with("sum("),
        "counts agents, not series"
    );
    assert!(expr("RollbackRateHigh").contains("increase("));
    assert!(
        expr("ApprovalWaitLong")
            .contains("sum(rate(stella_approval_duration_seconds_bucket[1h])) by (le")
    );
}

#[test]
fn unit_tests_make_every_alert_fire_once_and_stay_quiet_once() {
    let tests = artefacts::alert_rule_tests().unwrap();
    let doc: Value = serde_norway::from_str(&tests.contents).unwrap();
    assert_eq!(
        doc["rule_files"][0].as_str(),
        Some(artefacts::ALERT_RULES_FILE)
    );
    let cases = doc["tests"].as_sequence().unwrap();
    for (name, severity) in ALERTS {
        let mine: Vec<&Value> = cases
            .iter()
            .filter(|c| c["alert_rule_test"][0]["alertname"].as_str() == Some(name))
            .collect();
        assert_eq!(mine.len(), 2, "{name}");
        let fired: Vec<&Value> = mine
            .iter()
            .map(|c| &c["alert_rule_test"][0]["exp_alerts"])
            .filter(|e| !e.as_sequence().unwrap().is_empty())
            .collect();
        assert_eq!(fired.len(), 1, "{name} needs one firing and one quiet case");
        let alert = &fired[0][0];
        assert_eq!(alert["exp_labels"]["severity"].as_str(), Some(severity));
        let summary = alert["exp_annotations"]["summary"].as_str().unwrap();
        assert!(
            !summary.contains("{{"),
            "{name}: unexpanded template in `{summary}`"
        );
    }
}

/// The Alertmanager configuration routes by severity and inhibits warnings under criticals.
mod alertmanager {
    use super::*;

    fn config() -> Value {
        serde_norway::from_str(&artefacts::alertmanager().contents).unwrap()
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    #[test]
    fn critical_goes_to_the_pager_and_warning_to_chat_grouped_by_alert_service_and_tenant() {
        let am = config();
        let route = &am["route"];
        assert_eq!(route["receiver"].as_str(), Some("chat"));
        assert_eq!(
            strings(&route["group_by"]),
            ["alertname", "service", "tenant"]
        );
        let routes: Vec<(&str, Vec<&str>)> = route["routes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| (r["receiver"].as_str().unwrap(), strings(&r["matchers"])))
            .collect();
        assert_eq!(
            routes,
            [
                ("pager", vec!["severity=\"critical\""]),
                ("chat", vec!["severity=\"warning\""]),
            ]
        );
        let receivers = am["receivers"].as_sequence().unwrap();
        assert_eq!(receivers.len(), 2);
        for r in receivers {
            let hook = &r["webhook_configs"][0];
            assert_eq!(hook["send_resolved"].as_bool(), Some(true));
            let url = hook["url"].as_str().unwrap();
            assert!(url.contains(".invalid/"), "{url} is not a placeholder");
        }
    }

    #[test]
    fn a_critical_alert_inhibits_the_same_alerts_warning() {
        let am = config();
        let rules = am["inhibit_rules"].as_sequence().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            strings(&rules[0]["source_matchers"]),
            ["severity=\"critical\""]
        );
        assert_eq!(
            strings(&rules[0]["target_matchers"]),
            ["severity=\"warning\""]
        );
        assert_eq!(
            strings(&rules[0]["equal"]),
            ["alertname", "service", "tenant"]
        );
    }
}

/// SLO recording rules and burn-rate alerts, and bad SLO declarations refused.
mod slo {
    use std::time::Duration;

    use super::*;
    use stellaops_telemetry_core::ArtefactError;
    use stellaops_telemetry_core::artefacts::slo::{self, Indicator, Slo, SloError};
    use stellaops_telemetry_core::metrics::catalogue::{
        STELLAOPS_QUEUE_DEPTH, STELLAOPS_REQUEST_DURATION_SECONDS,
    };

    fn rules() -> Vec<Value> {
        let doc: Value = serde_norway::from_str(&artefacts::slo_rules().unwrap().contents).unwrap();
        doc["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
            .collect()
    }

    #[test]
    fn every_slo_records_seven_ratios_and_alerts_on_the_four_workbook_pairs() {
        let rules = rules();
        let records: Vec<&str> = rules.iter().filter_map(|r| r["record"].as_str()).collect();
        let windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
        for name in [
            "stellaops_request_availability",
            "stellaops_request_latency",
        ] {
            for w in windows {
                let record = format!("service:{name}_errors:ratio_rate{w}");
                assert!(records.contains(&record.as_str()), "{record}");
            }
        }
        let availability_5m = rules
            .iter()
            .find(|r| {
                r["record"].as_str()
                    == Some("service:stellaops_request_availability_errors:ratio_rate5m")
            })
            .unwrap();
        assert_eq!(
            availability_5m["expr"].as_str(),
            Some(
                "sum by (service) (rate(stellaops_request_total{status=~\"5..\"}[5m]))\n  /\nsum by (service) (rate(stellaops_request_total[5m]))"
            )
        );
        let latency_1h = rules
            .iter()
            .find(|r| {
                r["record"].as_str()
                    == Some("service:stellaops_request_latency_errors:ratio_rate1h")
            })
            .unwrap();
        assert!(
            latency_1h["expr"]
                .as_str()
                .unwrap()
                .contains("stellaops_request_duration_seconds_bucket{le=\"0.5\"}[1h]")
        );

        let alerts: Vec<(&str, &str, &str, &str)> = rules
            .iter()
            .filter(|r| r["alert"].as_str() == Some("RequestAvailabilityBudgetBurn"))
            .map(|r| {
                (
                    r["labels"]["long_window"].as_str().unwrap(),
                    r["labels"]["short_window"].as_str().unwrap(),
                    r["labels"]["severity"].as_str().unwrap(),
                    r["expr"].as_str().unwrap(),
                )
            })
            .collect();
        let expected = [
            ("1h", "5m", "critical", "14.4"),
            ("6h", "30m", "critical", "6"),
            ("1d", "2h", "warning", "3"),
            ("3d", "6h", "warning", "1"),
        ];
        assert_eq!(alerts.len(), 4);
        for ((long, short, severity, expr), (l, s, sev, factor)) in alerts.iter().zip(expected) {
            assert_eq!((*long, *short, *severity), (l, s, sev));
            let ratio = |w: &str| {
                format!(
                    "service:stellaops_request_availability_errors:ratio_rate{w} > ({factor} * (1 - 0.999))"
                )
            };
            assert_eq!(*expr, format!("{}\nand\n{}", ratio(l), ratio(s)));
        }
    }

    #[test]
    fn the_unit_tests_fire_the_fast_page_at_15x_and_not_at_5x() {
        let doc: Value =
            serde_norway::from_str(&artefacts::slo_rule_tests().unwrap().contents).unwrap();
        let cases = doc["tests"].as_sequence().unwrap();
        let windows_fired = |prefix: &str| -> Vec<String> {
            let case = cases
                .iter()
                .find(|c| c["name"].as_str().unwrap().starts_with(prefix))
                .unwrap();
            case["alert_rule_test"][0]["exp_alerts"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a["exp_labels"]["long_window"].as_str().unwrap().to_owned())
                .collect()
        };
        for alert in ["RequestAvailabilityBudgetBurn", "RequestLatencyBudgetBurn"] {
            assert_eq!(windows_fired(&format!("{alert}: 15x ")), ["1h", "6h"]);
            assert_eq!(windows_fired(&format!("{alert}: 7x ")), ["6h"]);
            assert!(windows_fired(&format!("{alert}: 5x ")).is_empty());
            assert_eq!(windows_fired(&format!("{alert}: 4x ")), ["1d"]);
            assert_eq!(windows_fired(&format!("{alert}: 2x ")), ["3d"]);
            assert!(windows_fired(&format!("{alert}: 0.5x ")).is_empty());
        }
    }

    fn availability() -> Slo {
        Slo::builtin()[0]
    }

    #[test]
    fn bad_declarations_are_refused_with_typed_errors() {
        for objective in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let bad = Slo {
                objective,
                ..availability()
            };
            assert!(
                matches!(bad.validate(), Err(SloError::Objective { .. })),
                "{objective}"
            );
        }
        let zero = Slo {
            window: Duration::ZERO,
            ..availability()
        };
        let err = zero.validate().unwrap_err();
        assert_eq!(
            err,
            SloError::ZeroWindow {
                slo: "stellaops_request_availability".to_owned()
            }
        );
        assert_eq!(
            err.to_string(),
            "slo `stellaops_request_availability`: the window is zero"
        );
        let short = Slo {
            window: Duration::from_secs(86_400),
            ..availability()
        };
        assert!(matches!(
            short.validate(),
            Err(SloError::WindowTooShort {
                seconds: 86_400,
                ..
            })
        ));
        let name = Slo {
            name: "Bad-Name",
            ..availability()
        };
        assert!(matches!(name.validate(), Err(SloError::Name { .. })));
        let gauge = Slo {
            indicator: Indicator::Errors {
                requests: STELLAOPS_QUEUE_DEPTH.descriptor(),
                label: "queue",
                errors: "x",
                error_example: "x",
                ok_example: "y",
            },
            ..availability()
        };
        assert!(matches!(gauge.validate(), Err(SloError::Kind { .. })));
        let threshold = Slo {
            indicator: Indicator::Latency {
                histogram: STELLAOPS_REQUEST_DURATION_SECONDS.descriptor(),
                threshold: 0.3,
            },
            ..availability()
        };
        assert!(matches!(
            threshold.validate(),
            Err(SloError::Threshold { .. })
        ));
        let label = Slo {
            by: &["tenant"],
            ..availability()
        };
        assert!(matches!(label.validate(), Err(SloError::Label { .. })));
        // Generation refuses them too, with the SLO error inside.
        assert!(matches!(
            slo::rules_for(&[zero]),
            Err(ArtefactError::Slo(SloError::ZeroWindow { .. }))
        ));
        assert!(matches!(
            slo::tests_for(&[Slo {
                objective: 2.0,
                ..availability()
            }]),
            Err(ArtefactError::Slo(SloError::Objective { .. }))
        ));
    }

    #[test]
    fn burn_factors_follow_the_window() {
        assert_eq!(availability().burn_factors(), [14.4, 6.0, 3.0, 1.0]);
        let quarter = Slo {
            window: Duration::from_secs(90 * 86_400),
            ..availability()
        };
        assert_eq!(quarter.burn_factors(), [43.2, 18.0, 9.0, 3.0]);
    }
}

/// The telemetry stack's alerts on itself.
mod stack {
    use super::*;

    const STACK: [(&str, &str); 8] = [
        (
            "TelemetryRecordsDropped",
            "stellaops_telemetry_dropped_total",
        ),
        (
            "TelemetryExportFailing",
            "stellaops_telemetry_export_failures_total",
        ),
        (
            "TelemetryEgressRefused",
            "stellaops_telemetry_egress_refusals_total",
        ),
        (
            "TelemetryCardinalityOverflow",
            "stellaops_telemetry_cardinality_overflow_total",
        ),
        ("CollectorDown", "up{job=~\".*collector.*\"} == 0"),
        (
            "CollectorExporterQueueNearFull",
            "otelcol_exporter_queue_size / otelcol_exporter_queue_capacity > 0.8",
        ),
        ("CollectorRefusingSpans", "otelcol_receiver_refused_spans"),
        (
            "CollectorTracesOfUnlistedTenant",
            "otelcol_exporter_sent_spans_total{exporter=\"otlp/tempo-unlisted\"}",
        ),
    ];

    #[test]
    fn every_self_alert_watches_its_metric_and_has_a_firing_and_a_quiet_case() {
        let doc: Value =
            serde_norway::from_str(&artefacts::stack_rules().unwrap().contents).unwrap();
        let rules: Vec<Value> = doc["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
            .collect();
        let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(names, STACK.map(|(n, _)| n));
        for (rule, (name, watched)) in rules.iter().zip(STACK) {
            assert!(
                rule["expr"].as_str().unwrap().contains(watched),
                "{name}: {}",
                rule["expr"].as_str().unwrap()
            );
        }
        let tests: Value =
            serde_norway::from_str(&artefacts::stack_rule_tests().unwrap().contents).unwrap();
        let cases = tests["tests"].as_sequence().unwrap();
        for (name, _) in STACK {
            let fired: Vec<usize> = cases
                .iter()
                .filter(|c| c["alert_rule_test"][0]["alertname"].as_str() == Some(name))
                .map(|c| {
                    c["alert_rule_test"][0]["exp_alerts"]
                        .as_sequence()
                        .unwrap()
                        .len()
                })
                .collect();
            assert_eq!(fired, [1, 0], "{name}");
        }
    }
}
