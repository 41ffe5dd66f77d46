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
