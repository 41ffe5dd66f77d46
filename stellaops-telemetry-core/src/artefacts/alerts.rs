//! Prometheus alert rules (platform and release orchestrator; the telemetry stack itself)
//! and their `promtool test rules` unit tests, each file pair from one table so they cannot
//! drift apart.

use super::yaml::{MapBuilder, Yaml, document, s};
use super::{Artefact, ArtefactError, ArtefactKind, checked, generated_notice};
use crate::metrics::MetricDescriptor;
use crate::metrics::catalogue::{
    STELLA_AGENT_HEARTBEAT_AGE_SECONDS, STELLA_AGENTS_CONNECTED, STELLA_APPROVAL_DURATION_SECONDS,
    STELLA_APPROVAL_PENDING_COUNT, STELLA_DEPLOYMENT_DURATION_SECONDS, STELLA_DEPLOYMENTS_TOTAL,
    STELLA_ROLLBACKS_TOTAL, STELLAOPS_CIRCUIT_BREAKER_OPEN, STELLAOPS_QUEUE_DEPTH,
    STELLAOPS_REQUEST_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
};

/// The file name of the alert rules.
pub const ALERT_RULES_FILE: &str = "stellaops-alerts.yaml";
/// The file name of the rules' `promtool test rules` unit tests.
pub const ALERT_TESTS_FILE: &str = "stellaops-alerts.test.yaml";
/// The file name of the alert rules on the telemetry stack itself (SDK and collector).
pub const STACK_RULES_FILE: &str = "stellaops-telemetry-stack.yaml";
/// The file name of [`STACK_RULES_FILE`]'s `promtool test rules` unit tests.
pub const STACK_TESTS_FILE: &str = "stellaops-telemetry-stack.test.yaml";

/// One unit-test case of an alert: input series, when to evaluate, and the labels the alert
/// carries when it fires (none: it must stay quiet).
struct Case {
    name: &'static str,
    series: Vec<(String, String)>,
    eval_time: &'static str,
    fires: Option<Vec<(&'static str, &'static str)>>,
}

struct Alert {
    group: &'static str,
    name: &'static str,
    /// Comment lines above the rule (what it watches, and where a usual form of it was wrong).
    note: &'static [&'static str],
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: &'static str,
    description: &'static str,
    fires: Case,
    quiet: Case,
}

/// `name{a="x",b="y"}`, checked against the catalogue.
fn series(d: &MetricDescriptor, labels: &[(&str, &str)]) -> Result<String, ArtefactError> {
    if labels.is_empty() {
        return checked(ALERT_TESTS_FILE, d.name.to_owned());
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    checked(
        ALERT_TESTS_FILE,
        format!("{}{{{}}}", d.name, inner.join(",")),
    )
}

/// Input series of a counter (or gauge) with `values` in promtool's expanding notation.
fn input(
    d: &MetricDescriptor,
    labels: &[(&str, &str)],
    values: &str,
) -> Result<(String, String), ArtefactError> {
    Ok((series(d, labels)?, values.to_owned()))
}

/// The bucket series of histogram `d` where one observation of `observed` arrives every
/// interval, for `samples` intervals.
fn observations(
    d: &MetricDescriptor,
    labels: &[(&str, &str)],
    observed: f64,
    samples: u32,
) -> Result<Vec<(String, String)>, ArtefactError> {
    let bucket = format!("{}_bucket", d.name);
    let mut out = Vec::new();
    let bounds = d.buckets.iter().map(|b| (b.to_string(), *b >= observed));
    for (le, counts) in bounds.chain([("+Inf".to_owned(), true)]) {
        let mut all: Vec<(&str, &str)> = labels.to_vec();
        all.push(("le", &le));
        let inner: Vec<String> = all.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let name = checked(ALERT_TESTS_FILE, format!("{bucket}{{{}}}", inner.join(",")))?;
        let values = if counts {
            format!("0+1x{samples}")
        } else {
            format!("0x{samples}")
        };
        out.push((name, values));
    }
    Ok(out)
}

#[allow(clippy::too_many_lines)]
fn table() -> Result<Vec<Alert>, ArtefactError> {
    let requests = STELLAOPS_REQUEST_TOTAL.descriptor();
    let scans = STELLAOPS_SCAN_DURATION_SECONDS.descriptor();
    let queue = STELLAOPS_QUEUE_DEPTH.descriptor();
    let breaker = STELLAOPS_CIRCUIT_BREAKER_OPEN.descriptor();
    let deployments = STELLA_DEPLOYMENTS_TOTAL.descriptor();
    let deployment_duration = STELLA_DEPLOYMENT_DURATION_SECONDS.descriptor();
    let rollbacks = STELLA_ROLLBACKS_TOTAL.descriptor();
    let heartbeat = STELLA_AGENT_HEARTBEAT_AGE_SECONDS.descriptor();
    let agents = STELLA_AGENTS_CONNECTED.descriptor();
    let pending = STELLA_APPROVAL_PENDING_COUNT.descriptor();
    let approval = STELLA_APPROVAL_DURATION_SECONDS.descriptor();

    let scanner_ok = [("service", "scanner"), ("status", "200")];
    let scanner_5xx = [("service", "scanner"), ("status", "503")];
    let acme_prod = [("tenant", "acme"), ("env", "prod")];
    let deploy = |status| {
        [
            ("tenant", "acme"),
            ("env", "prod"),
            ("strategy", "rolling"),
            ("status", status),
        ]
    };

    Ok(vec![
        Alert {
            group: "stellaops.platform",
            name: "HighErrorRate",
            note: &["More than 5 % of a service's requests answered with a 5xx status."],
            expr: format!(
                "sum by (service) (rate({r}{{status=~\"5..\"}}[5m]))\n  /\nsum by (service) (rate({r}[5m])) > 0.05",
                r = requests.name
            ),
            for_: "5m",
            severity: "critical",
            summary: "High error rate on {{ $labels.service }}",
            description: "More than 5% of requests to {{ $labels.service }} fail with a 5xx status",
            fires: Case {
                name: "10 % of requests fail",
                series: vec![
                    input(requests, &scanner_5xx, "0+10x30")?,
                    input(requests, &scanner_ok, "0+90x30")?,
                ],
                eval_time: "20m",
                fires: Some(vec![("service", "scanner")]),
            },
            quiet: Case {
                name: "1 % of requests fail",
                series: vec![
                    input(requests, &scanner_5xx, "0+1x30")?,
                    input(requests, &scanner_ok, "0+99x30")?,
                ],
                eval_time: "20m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.platform",
            name: "SlowScans",
            note: &["The 95th percentile of scan duration above 5 minutes."],
            expr: format!(
                "histogram_quantile(0.95, sum by (le, tenant) (rate({}_bucket[15m]))) > 300",
                scans.name
            ),
            for_: "15m",
            severity: "warning",
            summary: "Slow scans for tenant {{ $labels.tenant }}",
            description: "P95 scan duration for tenant {{ $labels.tenant }} exceeds 5 minutes",
            fires: Case {
                name: "every scan takes 8 minutes",
                series: observations(scans, &[("tenant", "acme")], 480.0, 60)?,
                eval_time: "40m",
                fires: Some(vec![("tenant", "acme")]),
            },
            quiet: Case {
                name: "every scan takes 40 seconds",
                series: observations(scans, &[("tenant", "acme")], 40.0, 60)?,
                eval_time: "40m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.platform",
            name: "QueueBacklog",
            note: &["More than 1000 items waiting in a queue."],
            expr: format!("{} > 1000", queue.name),
            for_: "10m",
            severity: "warning",
            summary: "Queue {{ $labels.queue }} backlog",
            description: "More than 1000 items are waiting in queue {{ $labels.queue }}",
            fires: Case {
                name: "1500 items wait for 20 minutes",
                series: vec![input(queue, &[("queue", "scan-requests")], "1500x30")?],
                eval_time: "20m",
                fires: Some(vec![("queue", "scan-requests")]),
            },
            quiet: Case {
                name: "500 items wait",
                series: vec![input(queue, &[("queue", "scan-requests")], "500x30")?],
                eval_time: "20m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.platform",
            name: "CircuitOpen",
            note: &["A circuit breaker is open (the gauge is 1)."],
            expr: format!("{} == 1", breaker.name),
            for_: "1m",
            severity: "critical",
            summary: "Circuit breaker {{ $labels.breaker }} open on {{ $labels.service }}",
            description: "Circuit breaker {{ $labels.breaker }} of {{ $labels.service }} is open: calls to its dependency are failing fast",
            fires: Case {
                name: "the breaker stays open",
                series: vec![input(
                    breaker,
                    &[("service", "scanner"), ("breaker", "registry")],
                    "1x10",
                )?],
                eval_time: "5m",
                fires: Some(vec![("service", "scanner"), ("breaker", "registry")]),
            },
            quiet: Case {
                name: "the breaker stays closed",
                series: vec![input(
                    breaker,
                    &[("service", "scanner"), ("breaker", "registry")],
                    "0x10",
                )?],
                eval_time: "5m",
                fires: None,
            },
        },
        Alert {
            group: "stella.deployment",
            name: "DeploymentFailureRateHigh",
            note: &[
                "As commonly written (the catalogue gives stella_deployments_total a status label).",
            ],
            expr: format!(
                "sum(rate({d}{{status=\"failed\"}}[5m])) /\nsum(rate({d}[5m])) > 0.1",
                d = deployments.name
            ),
            for_: "5m",
            severity: "critical",
            summary: "High deployment failure rate",
            description: "More than 10% of deployments are failing",
            fires: Case {
                name: "20 % of deployments fail",
                series: vec![
                    input(deployments, &deploy("failed"), "0+2x30")?,
                    input(deployments, &deploy("succeeded"), "0+8x30")?,
                ],
                eval_time: "20m",
                fires: Some(vec![]),
            },
            quiet: Case {
                name: "no deployment fails",
                series: vec![
                    input(deployments, &deploy("failed"), "0x30")?,
                    input(deployments, &deploy("succeeded"), "0+10x30")?,
                ],
                eval_time: "20m",
                fires: None,
            },
        },
        Alert {
            group: "stella.deployment",
            name: "DeploymentDurationHigh",
            note: &["As commonly written."],
            expr: format!(
                "histogram_quantile(0.95, sum(rate({}_bucket[5m])) by (le, tenant)) > 600",
                deployment_duration.name
            ),
            for_: "10m",
            severity: "warning",
            summary: "Deployment duration high",
            description: "P95 deployment duration exceeds 10 minutes",
            fires: Case {
                name: "every deployment takes 14 minutes",
                series: observations(
                    deployment_duration,
                    &[("tenant", "acme"), ("env", "prod"), ("strategy", "rolling")],
                    840.0,
                    40,
                )?,
                eval_time: "30m",
                fires: Some(vec![("tenant", "acme")]),
            },
            quiet: Case {
                name: "every deployment takes 100 seconds",
                series: observations(
                    deployment_duration,
                    &[("tenant", "acme"), ("env", "prod"), ("strategy", "rolling")],
                    100.0,
                    40,
                )?,
                eval_time: "30m",
                fires: None,
            },
        },
        Alert {
            group: "stella.deployment",
            name: "RollbackRateHigh",
            note: &[
                "Fixed: the usual `sum(rate(stella_rollbacks_total[1h])) > 3` compares a",
                "per-second rate with a count per hour (it would need 10800 rollbacks an hour);",
                "`increase` over the hour counts the rollbacks.",
            ],
            expr: format!("sum(increase({}[1h])) > 3", rollbacks.name),
            for_: "5m",
            severity: "warning",
            summary: "High rollback rate",
            description: "More than 3 rollbacks in the last hour",
            fires: Case {
                name: "one rollback a minute",
                series: vec![input(
                    rollbacks,
                    &[
                        ("tenant", "acme"),
                        ("env", "prod"),
                        ("reason", "health-check"),
                    ],
                    "0+1x120",
                )?],
                eval_time: "90m",
                fires: Some(vec![]),
            },
            quiet: Case {
                name: "one rollback in the last hour",
                series: vec![input(
                    rollbacks,
                    &[
                        ("tenant", "acme"),
                        ("env", "prod"),
                        ("reason", "health-check"),
                    ],
                    "0x60 1x60",
                )?],
                eval_time: "100m",
                fires: None,
            },
        },
        Alert {
            group: "stella.agents",
            name: "AgentOffline",
            note: &["As commonly written."],
            expr: format!("{} > 120", heartbeat.name),
            for_: "2m",
            severity: "critical",
            summary: "Agent offline",
            description: "Agent {{ $labels.agent }} has not sent heartbeat for 2 minutes",
            fires: Case {
                name: "the heartbeat stops",
                series: vec![input(heartbeat, &[("agent", "agent-7")], "0+60x20")?],
                eval_time: "10m",
                fires: Some(vec![("agent", "agent-7")]),
            },
            quiet: Case {
                name: "the heartbeat keeps coming",
                series: vec![input(heartbeat, &[("agent", "agent-7")], "5x20")?],
                eval_time: "10m",
                fires: None,
            },
        },
        Alert {
            group: "stella.agents",
            name: "AgentPoolLow",
            note: &[
                "Fixed: the usual `count(stella_agents_connected{status=\"online\"}) by (tenant) < 2`",
                "counts series, not agents: one series says how many agents are connected, so a",
                "tenant with 3 online agents would alert. `sum` adds the gauge's values. A tenant",
                "whose series has disappeared altogether does not alert (absent() cannot name it).",
            ],
            expr: format!("sum({}{{status=\"online\"}}) by (tenant) < 2", agents.name),
            for_: "5m",
            severity: "warning",
            summary: "Low agent count",
            description: "Fewer than 2 agents online for tenant {{ $labels.tenant }}",
            fires: Case {
                name: "one agent online, three degraded",
                series: vec![
                    input(agents, &[("tenant", "acme"), ("status", "online")], "1x20")?,
                    input(
                        agents,
                        &[("tenant", "acme"), ("status", "degraded")],
                        "3x20",
                    )?,
                ],
                eval_time: "10m",
                fires: Some(vec![("tenant", "acme")]),
            },
            quiet: Case {
                name: "three agents online in one series (a count() of series would alert here)",
                series: vec![input(
                    agents,
                    &[("tenant", "acme"), ("status", "online")],
                    "3x20",
                )?],
                eval_time: "10m",
                fires: None,
            },
        },
        Alert {
            group: "stella.approvals",
            name: "ApprovalBacklogHigh",
            note: &["As commonly written."],
            expr: format!("{} > 10", pending.name),
            for_: "1h",
            severity: "warning",
            summary: "Approval backlog growing",
            description: "More than 10 pending approvals for over an hour",
            fires: Case {
                name: "15 approvals pending for 90 minutes",
                series: vec![input(pending, &acme_prod, "15x120")?],
                eval_time: "90m",
                fires: Some(vec![("tenant", "acme"), ("env", "prod")]),
            },
            quiet: Case {
                name: "3 approvals pending",
                series: vec![input(pending, &acme_prod, "3x120")?],
                eval_time: "90m",
                fires: None,
            },
        },
        Alert {
            group: "stella.approvals",
            name: "ApprovalWaitLong",
            note: &[
                "Fixed: the usual `histogram_quantile(0.90, stella_approval_duration_seconds_bucket)`",
                "takes the quantile of the raw cumulative counters: every wait since the process",
                "started, per series, never the recent ones. The rate over an hour, summed by `le`",
                "and the labels kept, gives the P90 of the approvals decided in the last hour (no",
                "approval decided in the hour: NaN, which does not alert).",
            ],
            expr: format!(
                "histogram_quantile(0.90, sum(rate({}_bucket[1h])) by (le, tenant, env)) > 86400",
                approval.name
            ),
            for_: "1h",
            severity: "info",
            summary: "Long approval wait times",
            description: "P90 approval wait time exceeds 24 hours",
            fires: Case {
                name: "every approval waited 40 hours",
                series: observations(approval, &acme_prod, 144_000.0, 200)?,
                eval_time: "150m",
                fires: Some(vec![("tenant", "acme"), ("env", "prod")]),
            },
            quiet: Case {
                name: "every approval waited 50 minutes",
                series: observations(approval, &acme_prod, 3_000.0, 200)?,
                eval_time: "150m",
                fires: None,
            },
        },
    ])
}

fn header(command: &str, about: &[&str]) -> Vec<String> {
    let mut lines = vec![generated_notice(command, "the metric catalogue")];
    lines.extend(about.iter().map(|l| (*l).to_owned()));
    lines
}

/// The Prometheus alert rules file ([`ALERT_RULES_FILE`]).
///
/// # Errors
///
/// [`ArtefactError::Query`] when a rule's query no longer fits the catalogue.
pub fn alert_rules() -> Result<Artefact, ArtefactError> {
    rules_file(
        ALERT_RULES_FILE,
        &[
            "Alert rules of the platform and the release orchestrator; check with",
            "`promtool check rules` and `promtool test rules stellaops-alerts.test.yaml`.",
        ],
        table()?,
    )
}

/// The alert rules on the telemetry stack itself ([`STACK_RULES_FILE`]): the SDK's dropped
/// records, export failures, egress refusals and cardinality overflow, and the collector
/// down, its exporter queue near capacity, or its receivers refusing spans.
///
/// # Errors
///
/// [`ArtefactError::Query`] when a rule's query no longer fits the catalogue.
pub fn stack_rules() -> Result<Artefact, ArtefactError> {
    rules_file(
        STACK_RULES_FILE,
        &[
            "Alert rules on the telemetry stack itself (SDK self-metrics, the collector); check with",
            "`promtool check rules` and `promtool test rules stellaops-telemetry-stack.test.yaml`.",
        ],
        stack_table()?,
    )
}

fn rules_file(file: &str, about: &[&str], alerts: Vec<Alert>) -> Result<Artefact, ArtefactError> {
    let mut groups: Vec<(&str, Vec<Yaml>)> = Vec::new();
    for alert in alerts {
        let expr = checked(file, alert.expr)?;
        let rule = MapBuilder::new()
            .commented(alert.note, "alert", s(alert.name))
            .entry("expr", Yaml::Block(expr))
            .str("for", alert.for_)
            .entry(
                "labels",
                MapBuilder::new().str("severity", alert.severity).build(),
            )
            .entry(
                "annotations",
                MapBuilder::new()
                    .str("summary", alert.summary)
                    .str("description", alert.description)
                    .build(),
            )
            .build();
        match groups.iter_mut().find(|(g, _)| *g == alert.group) {
            Some((_, rules)) => rules.push(rule),
            None => groups.push((alert.group, vec![rule])),
        }
    }
    let doc = MapBuilder::new()
        .entry(
            "groups",
            Yaml::Seq(
                groups
                    .into_iter()
                    .map(|(name, rules)| {
                        MapBuilder::new()
                            .str("name", name)
                            .entry("rules", Yaml::Seq(rules))
                            .build()
                    })
                    .collect(),
            ),
        )
        .build();
    Ok(Artefact {
        kind: ArtefactKind::Alerts,
        file_name: file.to_owned(),
        contents: document(&header("generate rules", about), &doc),
    })
}

/// Replaces `{{ $labels.NAME }}` with the label's value, as Prometheus expands annotations.
pub(super) fn expand(template: &str, labels: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in labels {
        out = out.replace(&format!("{{{{ $labels.{name} }}}}"), value);
    }
    out
}

fn case(alert: &Alert, case: &Case, fires: bool) -> Yaml {
    let verb = if fires { "fires" } else { "stays quiet" };
    let series = case
        .series
        .iter()
        .map(|(name, values)| {
            MapBuilder::new()
                .str("series", name.clone())
                .str("values", values.clone())
                .build()
        })
        .collect();
    let expected = match &case.fires {
        Some(labels) => {
            let mut all = labels.clone();
            all.push(("severity", alert.severity));
            all.sort_unstable();
            let mut exp_labels = MapBuilder::new();
            for (k, v) in &all {
                exp_labels = exp_labels.str(*k, *v);
            }
            Yaml::Seq(vec![
                MapBuilder::new()
                    .entry("exp_labels", exp_labels.build())
                    .entry(
                        "exp_annotations",
                        MapBuilder::new()
                            .str("summary", expand(alert.summary, &all))
                            .str("description", expand(alert.description, &all))
                            .build(),
                    )
                    .build(),
            ])
        }
        None => Yaml::Seq(Vec::new()),
    };
    MapBuilder::new()
        .str("name", format!("{} {verb}: {}", alert.name, case.name))
        .str("interval", "1m")
        .entry("input_series", Yaml::Seq(series))
        .entry(
            "alert_rule_test",
            Yaml::Seq(vec![
                MapBuilder::new()
                    .str("eval_time", case.eval_time)
                    .str("alertname", alert.name)
                    .entry("exp_alerts", expected)
                    .build(),
            ]),
        )
        .build()
}

/// The `promtool test rules` unit tests of [`alert_rules`] ([`ALERT_TESTS_FILE`]): for every
/// alert one case where it fires, with its labels and expanded annotations, and one where it
/// stays quiet.
///
/// # Errors
///
/// [`ArtefactError::Query`] when a test series no longer fits the catalogue.
pub fn alert_rule_tests() -> Result<Artefact, ArtefactError> {
    tests_file(ALERT_RULES_FILE, ALERT_TESTS_FILE, &table()?)
}

/// The `promtool test rules` unit tests of [`stack_rules`] ([`STACK_TESTS_FILE`]): for every
/// alert one case where it fires and one where it stays quiet.
///
/// # Errors
///
/// [`ArtefactError::Query`] when a test series no longer fits the catalogue.
pub fn stack_rule_tests() -> Result<Artefact, ArtefactError> {
    tests_file(STACK_RULES_FILE, STACK_TESTS_FILE, &stack_table()?)
}

fn tests_file(rules: &str, file: &str, alerts: &[Alert]) -> Result<Artefact, ArtefactError> {
    let mut tests = Vec::new();
    for alert in alerts {
        tests.push(case(alert, &alert.fires, true));
        tests.push(case(alert, &alert.quiet, false));
    }
    let doc = MapBuilder::new()
        .entry("rule_files", Yaml::Seq(vec![s(rules)]))
        .str("evaluation_interval", "1m")
        .entry("tests", Yaml::Seq(tests))
        .build();
    let about = format!("Unit tests of {rules}: `promtool test rules {file}`.");
    Ok(Artefact {
        kind: ArtefactKind::Alerts,
        file_name: file.to_owned(),
        contents: document(&header("generate rules", &[about.as_str()]), &doc),
    })
}

/// A descriptor of the SDK's self-metrics or of the scrape's and collector's metrics.
fn stack_metric(name: &str) -> Result<&'static MetricDescriptor, ArtefactError> {
    crate::metrics::catalogue::SDK
        .iter()
        .chain(super::promql::EXTERNAL.iter())
        .find(|d| d.name == name)
        .ok_or_else(|| ArtefactError::Query {
            file: STACK_RULES_FILE.to_owned(),
            expr: name.to_owned(),
            source: super::promql::QueryError::UnknownMetric {
                metric: name.to_owned(),
            },
        })
}

/// The SDK's alerts on its own losses.
fn sdk_alerts() -> Result<Vec<Alert>, ArtefactError> {
    let dropped = stack_metric("stellaops_telemetry_dropped_total")?;
    let failures = stack_metric("stellaops_telemetry_export_failures_total")?;
    let refusals = stack_metric("stellaops_telemetry_egress_refusals_total")?;
    let overflow = stack_metric("stellaops_telemetry_cardinality_overflow_total")?;
    let spans = [("signal", "spans")];
    let request_total = [("metric", "stellaops_request_total")];
    Ok(vec![
        Alert {
            group: "stellaops.telemetry.sdk",
            name: "TelemetryRecordsDropped",
            note: &["Any record the SDK lost (full queue, failed export, shutdown deadline)."],
            expr: format!("increase({}[10m]) > 0", dropped.name),
            for_: "5m",
            severity: "warning",
            summary: "Telemetry records dropped ({{ $labels.signal }})",
            description: "The SDK dropped {{ $labels.signal }} records in the last 10 minutes",
            fires: Case {
                name: "5 spans dropped a minute",
                series: vec![input(dropped, &spans, "0+5x30")?],
                eval_time: "20m",
                fires: Some(vec![("signal", "spans")]),
            },
            quiet: Case {
                name: "nothing dropped",
                series: vec![input(dropped, &spans, "0x30")?],
                eval_time: "20m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.telemetry.sdk",
            name: "TelemetryExportFailing",
            note: &["More than 3 failed or timed-out export calls in 15 minutes."],
            expr: format!("increase({}[15m]) > 3", failures.name),
            for_: "5m",
            severity: "warning",
            summary: "Telemetry export failing ({{ $labels.signal }})",
            description: "More than 3 {{ $labels.signal }} export calls failed in 15 minutes",
            fires: Case {
                name: "one failed export a minute",
                series: vec![input(failures, &spans, "0+1x40")?],
                eval_time: "30m",
                fires: Some(vec![("signal", "spans")]),
            },
            quiet: Case {
                name: "one failed export",
                series: vec![input(failures, &spans, "0x10 1x30")?],
                eval_time: "30m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.telemetry.sdk",
            name: "TelemetryEgressRefused",
            note: &[
                "The egress policy refused an exporter (its records go to files instead); the",
                "count rises when the pipeline is built, so the alert lasts an hour after it.",
            ],
            expr: format!("increase({}[1h]) > 0", refusals.name),
            for_: "1m",
            severity: "warning",
            summary: "Telemetry egress refused",
            description: "The egress policy refused an exporter in the last hour; its records go to files",
            fires: Case {
                name: "an exporter refused at start",
                series: vec![input(refusals, &[], "0x5 1x60")?],
                eval_time: "20m",
                fires: Some(vec![]),
            },
            quiet: Case {
                name: "no refusal",
                series: vec![input(refusals, &[], "0x60")?],
                eval_time: "20m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.telemetry.sdk",
            name: "TelemetryCardinalityOverflow",
            note: &[
                "Label sets beyond a metric's cardinality limit, folded into its overflow series.",
            ],
            expr: format!("increase({}[30m]) > 0", overflow.name),
            for_: "5m",
            severity: "warning",
            summary: "Metric {{ $labels.metric }} over its cardinality limit",
            description: "New label sets of {{ $labels.metric }} are folded into its overflow series",
            fires: Case {
                name: "20 label sets a minute overflow",
                series: vec![input(overflow, &request_total, "0+20x30")?],
                eval_time: "20m",
                fires: Some(vec![("metric", "stellaops_request_total")]),
            },
            quiet: Case {
                name: "no overflow",
                series: vec![input(overflow, &request_total, "0x30")?],
                eval_time: "20m",
                fires: None,
            },
        },
    ])
}

/// The collector's alerts, from Prometheus's scrape of it and its own metrics.
fn collector_alerts() -> Result<Vec<Alert>, ArtefactError> {
    let up = stack_metric("up")?;
    let queue = stack_metric("otelcol_exporter_queue_size")?;
    let capacity = stack_metric("otelcol_exporter_queue_capacity")?;
    let refused = stack_metric("otelcol_receiver_refused_spans")?;
    let refused_total = stack_metric("otelcol_receiver_refused_spans_total")?;
    let target = [("job", "otel-collector"), ("instance", "collector-0:8888")];
    let exporter = [
        ("job", "otel-collector"),
        ("instance", "collector-0:8888"),
        ("exporter", "otlp/tempo"),
    ];
    let receiver = [
        ("job", "otel-collector"),
        ("instance", "collector-0:8888"),
        ("receiver", "otlp"),
        ("transport", "grpc"),
    ];
    let receiver_out = vec![
        ("instance", "collector-0:8888"),
        ("job", "otel-collector"),
        ("receiver", "otlp"),
    ];
    Ok(vec![
        Alert {
            group: "stellaops.telemetry.collector",
            name: "CollectorDown",
            note: &["Prometheus cannot scrape a collector (any job whose name holds `collector`)."],
            expr: format!("{}{{job=~\".*collector.*\"}} == 0", up.name),
            for_: "2m",
            severity: "critical",
            summary: "Collector {{ $labels.instance }} down",
            description: "Prometheus cannot scrape collector {{ $labels.instance }} of job {{ $labels.job }}",
            fires: Case {
                name: "the scrape fails for 10 minutes",
                series: vec![input(up, &target, "0x20")?],
                eval_time: "10m",
                fires: Some(target.to_vec()),
            },
            quiet: Case {
                name: "the scrape succeeds",
                series: vec![input(up, &target, "1x20")?],
                eval_time: "10m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.telemetry.collector",
            name: "CollectorExporterQueueNearFull",
            note: &[
                "An exporter's sending queue more than 80 % full: its backend is slow or down.",
            ],
            expr: format!("{} / {} > 0.8", queue.name, capacity.name),
            for_: "5m",
            severity: "warning",
            summary: "Collector exporter {{ $labels.exporter }} queue near capacity",
            description: "The sending queue of exporter {{ $labels.exporter }} on {{ $labels.instance }} is more than 80% full",
            fires: Case {
                name: "900 of 1000 batches queued",
                series: vec![
                    input(queue, &exporter, "900x20")?,
                    input(capacity, &exporter, "1000x20")?,
                ],
                eval_time: "10m",
                fires: Some(exporter.to_vec()),
            },
            quiet: Case {
                name: "100 of 1000 batches queued",
                series: vec![
                    input(queue, &exporter, "100x20")?,
                    input(capacity, &exporter, "1000x20")?,
                ],
                eval_time: "10m",
                fires: None,
            },
        },
        Alert {
            group: "stellaops.telemetry.collector",
            name: "CollectorRefusingSpans",
            note: &[
                "A receiver refuses spans (memory limiter, full pipeline). Older collectors name the",
                "counter without `_total`, newer ones with it: either is matched.",
            ],
            expr: format!(
                "sum by (job, instance, receiver) (\n  rate({}[5m]) or rate({}[5m])\n) > 0",
                refused.name, refused_total.name
            ),
            for_: "5m",
            severity: "warning",
            summary: "Collector {{ $labels.instance }} refusing spans",
            description: "Receiver {{ $labels.receiver }} of collector {{ $labels.instance }} refuses spans",
            fires: Case {
                name: "10 spans refused a minute (newer `_total` name)",
                series: vec![input(refused_total, &receiver, "0+10x30")?],
                eval_time: "20m",
                fires: Some(receiver_out),
            },
            quiet: Case {
                name: "no span refused",
                series: vec![input(refused, &receiver, "0x30")?],
                eval_time: "20m",
                fires: None,
            },
        },
    ])
}

/// Sampled spans of a tenant missing from the collector's tenants file.
fn unlisted_tenant_alert() -> Result<Alert, ArtefactError> {
    let sent = stack_metric("otelcol_exporter_sent_spans")?;
    let sent_total = stack_metric("otelcol_exporter_sent_spans_total")?;
    let unlisted = [
        ("job", "otel-collector"),
        ("instance", "collector-0:8888"),
        ("exporter", "otlp/tempo-unlisted"),
    ];
    let listed = [
        ("job", "otel-collector"),
        ("instance", "collector-0:8888"),
        ("exporter", "otlp/tempo-tenant-acme"),
    ];
    Ok(Alert {
        group: "stellaops.telemetry.collector",
        name: "CollectorTracesOfUnlistedTenant",
        note: &[
            "Sampled spans of a tenant missing from the collector's tenants file go to Tempo under",
            "the fallback tenant (exporter `otlp/tempo-unlisted`): add the tenant and regenerate.",
        ],
        expr: format!(
            "sum by (job, instance) (\n  rate({}{{exporter=\"otlp/tempo-unlisted\"}}[15m])\n  or rate({}{{exporter=\"otlp/tempo-unlisted\"}}[15m])\n) > 0",
            sent.name, sent_total.name
        ),
        for_: "15m",
        severity: "warning",
        summary: "Collector {{ $labels.instance }} stores traces of an unlisted tenant",
        description: "Collector {{ $labels.instance }} sends sampled spans of a tenant missing from its tenants file to Tempo under the fallback tenant",
        fires: Case {
            name: "5 spans a minute of an unlisted tenant",
            series: vec![input(sent_total, &unlisted, "0+5x60")?],
            eval_time: "45m",
            fires: Some(vec![
                ("instance", "collector-0:8888"),
                ("job", "otel-collector"),
            ]),
        },
        quiet: Case {
            name: "spans of listed tenants only",
            series: vec![
                input(sent, &listed, "0+50x60")?,
                input(sent_total, &unlisted, "0x60")?,
            ],
            eval_time: "45m",
            fires: None,
        },
    })
}

fn stack_table() -> Result<Vec<Alert>, ArtefactError> {
    let mut alerts = sdk_alerts()?;
    alerts.extend(collector_alerts()?);
    alerts.push(unlisted_tenant_alert()?);
    Ok(alerts)
}
