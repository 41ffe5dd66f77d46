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
    assert_eq!(dashboards.len(), 5);
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
