//! Every dashboard query and alert expression selects only catalogue metrics (with the
//! `_bucket`/`_sum`/`_count` series of histograms) and only labels those metrics carry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use serde_json::Value;
use stellaops_telemetry_core::artefacts::{self, ArtefactKind, promql};
use stellaops_telemetry_core::metrics::catalogue;

fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut todo: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = todo.pop() {
        if let Some(inner) = p["panels"].as_array() {
            todo.extend(inner);
        }
        out.push(p);
    }
    out
}

fn base(series: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(b) = series.strip_suffix(suffix)
            && catalogue::find(b).is_some()
        {
            return b;
        }
    }
    series
}

#[test]
fn every_dashboard_query_fits_the_catalogue_and_every_metric_is_shown() {
    let mut shown = BTreeSet::new();
    let dashboards = artefacts::generate(ArtefactKind::Dashboards).unwrap();
    assert_eq!(dashboards.len(), 6);
    for d in &dashboards {
        let json: Value = serde_json::from_str(&d.contents).unwrap();
        assert_eq!(json["schemaVersion"], 39, "{}", d.file_name);
        assert!(json["uid"].as_str().unwrap().starts_with("stellaops-"));
        assert!(
            json["description"]
                .as_str()
                .unwrap()
                .contains("do not edit")
        );
        let vars = json["templating"]["list"].as_array().unwrap();
        assert!(vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"));
        let mut ids = BTreeSet::new();
        for p in panels(&json) {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "duplicate panel id in {}",
                d.file_name
            );
            let grid = &p["gridPos"];
            assert!(grid["w"].as_u64().unwrap() + grid["x"].as_u64().unwrap() <= 24);
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}");
            let targets = p["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty(),
                "{}: panel {} has no query",
                d.file_name,
                p["title"]
            );
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                assert!(t["refId"].is_string());
                match promql::check(expr) {
                    Ok(metrics) => shown.extend(metrics.iter().map(|m| base(m).to_owned())),
                    Err(e) => panic!("{}: panel {}: `{expr}`: {e}", d.file_name, p["title"]),
                }
            }
        }
    }
    let unshown: Vec<_> = catalogue::all()
        .map(|d| d.name)
        .filter(|n| !shown.contains(*n))
        .collect();
    assert!(unshown.is_empty(), "metrics on no dashboard: {unshown:?}");
}

#[test]
fn every_alert_expression_fits_the_catalogue() {
    let rules = artefacts::alert_rules().unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&rules.contents).unwrap();
    let mut count = 0;
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            if let Err(e) = promql::check(expr) {
                panic!("{}: `{expr}`: {e}", rule["alert"].as_str().unwrap());
            }
            count += 1;
        }
    }
    assert_eq!(count, 11);
}

#[test]
fn self_alerts_and_slo_recording_rules_fit_the_catalogue_and_the_collector_metrics() {
    let mut checked = 0;
    for rules in [
        artefacts::stack_rules().unwrap(),
        artefacts::slo_rules().unwrap(),
    ] {
        let doc: serde_norway::Value = serde_norway::from_str(&rules.contents).unwrap();
        for group in doc["groups"].as_sequence().unwrap() {
            for rule in group["rules"].as_sequence().unwrap() {
                let expr = rule["expr"].as_str().unwrap();
                // Burn-rate alerts compare recorded ratios, whose own queries are checked.
                if expr.contains(":ratio_rate") {
                    continue;
                }
                if let Err(e) = promql::check(expr) {
                    panic!("{}: `{expr}`: {e}", rules.file_name);
                }
                checked += 1;
            }
        }
    }
    // 8 self-alerts, 7 ratios for each of the 2 SLOs.
    assert_eq!(checked, 8 + 14);
}

#[test]
fn dashboards_with_tenant_metrics_have_a_tenant_variable_and_filter_on_it() {
    let dashboards = artefacts::generate(ArtefactKind::Dashboards).unwrap();
    let mut with_tenant = Vec::new();
    for d in &dashboards {
        let json: Value = serde_json::from_str(&d.contents).unwrap();
        let vars = json["templating"]["list"].as_array().unwrap();
        let tenant_var = vars.iter().find(|v| v["name"] == "tenant");
        let mut tenant_metric_seen = false;
        for p in panels(&json) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap();
                for m in promql::check(expr).unwrap() {
                    let (desc, _) = promql::resolve(&m).unwrap();
                    if !desc.has_label("tenant") {
                        continue;
                    }
                    tenant_metric_seen = true;
                    // Every selector of that series filters on the variable.
                    let selections = expr.matches(&format!("{m}{{")).count()
                        + expr.matches(&format!("{m}[")).count()
                        + expr.matches(&format!("{m})")).count();
                    let filtered = expr.matches(&format!("{m}{{tenant=~\"$tenant\"")).count();
                    assert_eq!(selections, filtered, "{}: `{expr}`", d.file_name);
                }
            }
        }
        assert_eq!(
            tenant_var.is_some(),
            tenant_metric_seen,
            "{}: a tenant variable exactly where metrics carry `tenant`",
            d.file_name
        );
        if let Some(v) = tenant_var {
            assert_eq!(v["includeAll"], true);
            assert_eq!(v["multi"], true);
            assert_eq!(v["allValue"], ".*");
            with_tenant.push(d.file_name.clone());
        }
    }
    assert_eq!(
        with_tenant,
        [
            "platform-health.json",
            "scan-operations.json",
            "policy-engine.json",
            "job-orchestration.json",
            "release-orchestrator.json",
            "telemetry-stack.json"
        ]
    );
    let stack = dashboards
        .iter()
        .find(|d| d.file_name == "telemetry-stack.json")
        .unwrap();
    for metric in [
        "stellaops_telemetry_dropped_total",
        "otelcol_exporter_queue_size",
        "otelcol_receiver_refused_spans",
        "up{job=~",
    ] {
        assert!(stack.contents.contains(metric), "{metric}");
    }
}

#[test]
fn the_check_rejects_unknown_metrics_labels_and_groupings() {
    for bad in [
        "rate(stellaops_requests_total[5m])",
        r#"stellaops_request_total{tenant="a"}"#,
        "sum by (endpoint) (rate(stellaops_request_total[5m]))",
        "sum(rate(stellaops_request_total[5m])) by (le)",
        "histogram_quantile(0.9, sum by (le) (rate(stellaops_queue_depth_bucket[5m])))",
        r#"count(stella_agents_connected{status="online"}) by (agent)"#,
    ] {
        assert!(promql::check(bad).is_err(), "accepted `{bad}`");
    }
}
