//! Grafana dashboards: platform health, scan operations, policy engine, job orchestration,
//! release orchestrator, and the telemetry stack itself (SDK and collector).
//!
//! A dashboard whose queries select a metric with a `tenant` label gets a `tenant` template
//! variable (multi-valued, "All" by default), and each such selector filters on
//! `tenant=~"$tenant"`.

use serde_json::{Value, json};

use super::{Artefact, ArtefactError, ArtefactKind, checked, generated_notice};
use crate::metrics::MetricDescriptor;
use crate::metrics::catalogue::{
    self, AUTHORITY_DPOP_NONCE_MISS_TOTAL, AUTHORITY_TOKEN_ISSUED_TOTAL,
    AUTHORITY_TOKEN_REJECTED_TOTAL, POLICY_RULES_FIRED_TOTAL, POLICY_RUN_SECONDS,
    POLICY_VEX_OVERRIDES_TOTAL, SCANNER_ATTESTATIONS_LOGGED_TOTAL, SCANNER_SBOM_COMPONENTS_TOTAL,
    SCANNER_VULNERABILITIES_FOUND_TOTAL, STELLA_AGENT_HEARTBEAT_AGE_SECONDS,
    STELLA_AGENT_TASK_DURATION_SECONDS, STELLA_AGENT_TASKS_TOTAL, STELLA_AGENTS_CONNECTED,
    STELLA_APPROVAL_DURATION_SECONDS, STELLA_APPROVAL_PENDING_COUNT,
    STELLA_DEPLOYMENT_DURATION_SECONDS, STELLA_DEPLOYMENTS_TOTAL,
    STELLA_HTTP_REQUEST_DURATION_SECONDS, STELLA_HTTP_REQUESTS_IN_FLIGHT,
    STELLA_HTTP_REQUESTS_TOTAL, STELLA_PROMOTIONS_TOTAL, STELLA_RELEASES_TOTAL,
    STELLA_ROLLBACKS_TOTAL, STELLA_TARGETS, STELLA_WORKFLOW_RUNS_TOTAL,
    STELLA_WORKFLOW_STEP_DURATION_SECONDS, STELLAOPS_ACTIVE_JOBS, STELLAOPS_CIRCUIT_BREAKER_OPEN,
    STELLAOPS_QUEUE_DEPTH, STELLAOPS_REQUEST_DURATION_SECONDS, STELLAOPS_REQUEST_TOTAL,
    STELLAOPS_SCAN_DURATION_SECONDS,
};

/// The range of every `rate`/`increase`: Grafana's own choice for the panel's resolution.
const RANGE: &str = "[$__rate_interval]";

#[derive(Clone, Copy)]
enum Viz {
    TimeSeries,
    Stat,
}

struct Panel {
    title: &'static str,
    description: &'static str,
    viz: Viz,
    unit: &'static str,
    width: u32,
    targets: Vec<(String, String)>,
}

enum Item {
    Row(&'static str),
    Panel(Panel),
}

struct Dashboard {
    file: &'static str,
    uid: &'static str,
    title: &'static str,
    description: &'static str,
    tags: &'static [&'static str],
    items: Vec<Item>,
}

fn name(d: &MetricDescriptor) -> &'static str {
    d.name
}

/// `sum by (by) (rate(metric{selector}[range]))`.
fn rate(d: &MetricDescriptor, selector: &str, by: &str) -> String {
    let sel = if selector.is_empty() {
        String::new()
    } else {
        format!("{{{selector}}}")
    };
    let group = if by.is_empty() {
        String::new()
    } else {
        format!(" by ({by})")
    };
    format!("sum{group} (rate({}{sel}{RANGE}))", name(d))
}

/// `sum by (by) (metric)`.
fn total(d: &MetricDescriptor, by: &str) -> String {
    if by.is_empty() {
        format!("sum({})", name(d))
    } else {
        format!("sum by ({by}) ({})", name(d))
    }
}

/// The P50, P95 and P99 targets of histogram `d`, grouped by `by` (besides `le`).
fn quantiles(d: &MetricDescriptor, by: &str) -> Vec<(String, String)> {
    let group = if by.is_empty() {
        "le".to_owned()
    } else {
        format!("le, {by}")
    };
    let suffix: String = by
        .split(", ")
        .filter(|l| !l.is_empty())
        .map(|l| format!(" {{{{{l}}}}}"))
        .collect();
    [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
        .into_iter()
        .map(|(q, label)| {
            (
                format!(
                    "histogram_quantile({q}, sum by ({group}) (rate({}_bucket{RANGE})))",
                    name(d)
                ),
                format!("{label}{suffix}"),
            )
        })
        .collect()
}

fn legend(by: &str) -> String {
    by.split(", ")
        .filter(|l| !l.is_empty())
        .map(|l| format!("{{{{{l}}}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ts(
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    targets: Vec<(String, String)>,
) -> Item {
    Item::Panel(Panel {
        title,
        description,
        viz: Viz::TimeSeries,
        unit,
        width: 12,
        targets,
    })
}

fn stat(
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    targets: Vec<(String, String)>,
) -> Item {
    Item::Panel(Panel {
        title,
        description,
        viz: Viz::Stat,
        unit,
        width: 6,
        targets,
    })
}

fn one(expr: String, by: &str) -> Vec<(String, String)> {
    vec![(expr, legend(by))]
}

fn sdk_health() -> Vec<Item> {
    let sdk = |metric: &str| catalogue::SDK.iter().find(|d| d.name.ends_with(metric));
    let mut items = vec![Item::Row("Telemetry SDK health")];
    let panels: [(&str, &'static str, &'static str, &str); 10] = [
        (
            "_exported_total",
            "Records exported",
            "Records accepted by every exporter, by signal",
            "signal",
        ),
        (
            "_dropped_total",
            "Records dropped",
            "Records lost to a full queue, a failed or timed-out export or the shutdown deadline",
            "signal",
        ),
        (
            "_export_failures_total",
            "Export failures",
            "Export calls that failed or timed out, by signal",
            "signal",
        ),
        (
            "_tenant_exported_total",
            "Records exported per tenant",
            "Records in OTLP requests delivered, one tenant per request, by tenant",
            "tenant",
        ),
        (
            "_tenant_rejected_total",
            "Unusable tenant ids",
            "Records whose tenant id could not be a request header, sent as untenanted, by signal",
            "signal",
        ),
        (
            "_redactions_total",
            "Redactions",
            "Values redacted or dropped before export, by rule",
            "rule",
        ),
        (
            "_egress_refusals_total",
            "Egress refusals",
            "Exporters the egress policy refused (replaced by files)",
            "",
        ),
        (
            "_cardinality_overflow_total",
            "Cardinality overflow",
            "Label sets beyond a metric's cardinality limit, by metric",
            "metric",
        ),
        (
            "_truncated_total",
            "Truncated values",
            "Values cut to the pipeline's value limits, by kind",
            "kind",
        ),
        (
            "_control_changes_total",
            "Control changes",
            "Run-time control changes applied (log level, tenant sampling, tenant log level), by control",
            "control",
        ),
    ];
    for (suffix, title, description, by) in panels {
        if let Some(d) = sdk(suffix) {
            let mut item = ts(title, description, "cps", one(rate(d, "", by), by));
            if let Item::Panel(p) = &mut item {
                p.width = 8;
            }
            items.push(item);
        }
    }
    // The export queues' backlog: what is waiting, how much memory it holds, how old it is.
    let backlog: [(&str, &'static str, &'static str, &'static str, &str); 3] = [
        (
            "_queue_depth",
            "Export queue depth",
            "Records queued for export and not yet exported or dropped, by signal",
            "short",
            "sum",
        ),
        (
            "_queue_bytes",
            "Export queue bytes",
            "Estimated bytes of the records queued for export, by signal",
            "bytes",
            "sum",
        ),
        (
            "_queue_oldest_age_seconds",
            "Oldest queued record",
            "Age of the oldest record queued for export, by signal (0 when none is)",
            "s",
            "max",
        ),
    ];
    for (suffix, title, description, unit, how) in backlog {
        if let Some(d) = sdk(suffix) {
            let expr = format!("{how} by (signal) ({})", name(d));
            let mut item = ts(title, description, unit, one(expr, "signal"));
            if let Item::Panel(p) = &mut item {
                p.width = 8;
            }
            items.push(item);
        }
    }
    items.extend(tail_sampling(sdk));
    items
}

/// The SDK's tail sampler (profiles that sample in the SDK): decisions, early decisions,
/// spans kept and sampled out, and what it holds.
fn tail_sampling(sdk: impl Fn(&str) -> Option<&'static MetricDescriptor>) -> Vec<Item> {
    let mut items = Vec::new();
    let rates: [(&str, &'static str, &'static str, &str); 3] = [
        (
            "_tail_sampling_decisions_total",
            "Tail-sampling decisions",
            "Traces the SDK's tail sampler decided, by policy and decision",
            "policy, decision",
        ),
        (
            "_tail_sampling_early_decisions_total",
            "Traces decided early",
            "Traces decided before their local root ended (decision wait, caps, flush), by reason",
            "reason",
        ),
        (
            "_tail_sampling_spans_total",
            "Tail-sampled spans",
            "Spans the SDK's tail sampler kept or sampled out",
            "decision",
        ),
    ];
    for (suffix, title, description, by) in rates {
        if let Some(d) = sdk(suffix) {
            let mut item = ts(title, description, "cps", one(rate(d, "", by), by));
            if let Item::Panel(p) = &mut item {
                p.width = 8;
            }
            items.push(item);
        }
    }
    let held: Vec<(String, String)> = ["_tail_sampling_held_traces", "_tail_sampling_held_spans"]
        .into_iter()
        .filter_map(&sdk)
        .map(|d| {
            (
                format!("sum ({})", name(d)),
                d.name
                    .trim_start_matches("stellaops_telemetry_tail_sampling_")
                    .to_owned(),
            )
        })
        .collect();
    if !held.is_empty() {
        items.push(ts(
            "Held by the tail sampler",
            "Traces and spans awaiting their decision",
            "short",
            held,
        ));
    }
    if let Some(d) = sdk("_tail_sampling_held_bytes") {
        items.push(ts(
            "Tail sampler memory",
            "Estimated bytes of the spans the tail sampler holds",
            "bytes",
            vec![(format!("sum ({})", name(d)), String::new())],
        ));
    }
    items
}

#[allow(clippy::too_many_lines)]
fn table() -> Vec<Dashboard> {
    let requests = STELLAOPS_REQUEST_TOTAL.descriptor();
    let latency = STELLAOPS_REQUEST_DURATION_SECONDS.descriptor();
    let breaker = STELLAOPS_CIRCUIT_BREAKER_OPEN.descriptor();
    let scans = STELLAOPS_SCAN_DURATION_SECONDS.descriptor();
    let vulns = SCANNER_VULNERABILITIES_FOUND_TOTAL.descriptor();
    let components = SCANNER_SBOM_COMPONENTS_TOTAL.descriptor();
    let attestations = SCANNER_ATTESTATIONS_LOGGED_TOTAL.descriptor();
    let policy_run = POLICY_RUN_SECONDS.descriptor();
    let rules_fired = POLICY_RULES_FIRED_TOTAL.descriptor();
    let vex = POLICY_VEX_OVERRIDES_TOTAL.descriptor();
    let queue = STELLAOPS_QUEUE_DEPTH.descriptor();
    let active_jobs = STELLAOPS_ACTIVE_JOBS.descriptor();
    let workflow_runs = STELLA_WORKFLOW_RUNS_TOTAL.descriptor();
    let step_duration = STELLA_WORKFLOW_STEP_DURATION_SECONDS.descriptor();
    let tasks = STELLA_AGENT_TASKS_TOTAL.descriptor();
    let task_duration = STELLA_AGENT_TASK_DURATION_SECONDS.descriptor();
    let deployments = STELLA_DEPLOYMENTS_TOTAL.descriptor();
    let deployment_duration = STELLA_DEPLOYMENT_DURATION_SECONDS.descriptor();
    let rollbacks = STELLA_ROLLBACKS_TOTAL.descriptor();
    let releases = STELLA_RELEASES_TOTAL.descriptor();
    let promotions = STELLA_PROMOTIONS_TOTAL.descriptor();
    let agents = STELLA_AGENTS_CONNECTED.descriptor();
    let heartbeat = STELLA_AGENT_HEARTBEAT_AGE_SECONDS.descriptor();
    let targets = STELLA_TARGETS.descriptor();
    let pending = STELLA_APPROVAL_PENDING_COUNT.descriptor();
    let approval = STELLA_APPROVAL_DURATION_SECONDS.descriptor();
    let http = STELLA_HTTP_REQUESTS_TOTAL.descriptor();
    let http_latency = STELLA_HTTP_REQUEST_DURATION_SECONDS.descriptor();
    let in_flight = STELLA_HTTP_REQUESTS_IN_FLIGHT.descriptor();
    let issued = AUTHORITY_TOKEN_ISSUED_TOTAL.descriptor();
    let rejected = AUTHORITY_TOKEN_REJECTED_TOTAL.descriptor();
    let nonce = AUTHORITY_DPOP_NONCE_MISS_TOTAL.descriptor();

    let ratio = |d: &MetricDescriptor, bad: &str, by: &str| {
        format!("{}\n  /\n{}", rate(d, bad, by), rate(d, "", by))
    };

    let mut platform = vec![
        Item::Row("Requests"),
        ts(
            "Request rate",
            "Requests per second, by service",
            "reqps",
            one(rate(requests, "", "service"), "service"),
        ),
        ts(
            "Error rate",
            "Share of requests answered with a 5xx status, by service (alert: above 5 %)",
            "percentunit",
            one(ratio(requests, "status=~\"5..\"", "service"), "service"),
        ),
        ts(
            "Latency",
            "Request latency percentiles over every service",
            "s",
            quantiles(latency, ""),
        ),
        ts(
            "Latency P95 by endpoint",
            "95th percentile of request latency, by service and endpoint",
            "s",
            vec![(
                format!(
                    "histogram_quantile(0.95, sum by (le, service, endpoint) (rate({}_bucket{RANGE})))",
                    name(latency)
                ),
                "{{service}} {{endpoint}}".to_owned(),
            )],
        ),
        ts(
            "Open circuit breakers",
            "Circuit breakers open (1) or closed (0), by service and breaker",
            "short",
            one(total(breaker, "service, breaker"), "service, breaker"),
        ),
        ts(
            "Requests by status",
            "Requests per second, by service and status",
            "reqps",
            one(rate(requests, "", "service, status"), "service, status"),
        ),
        Item::Row("Authority"),
        ts(
            "Tokens issued",
            "Tokens issued per second, by grant type",
            "cps",
            one(rate(issued, "", "grant_type"), "grant_type"),
        ),
        ts(
            "Tokens rejected",
            "Token requests rejected per second, by reason",
            "cps",
            one(rate(rejected, "", "reason"), "reason"),
        ),
        ts(
            "DPoP nonce misses",
            "DPoP proofs that missed their nonce, per second",
            "cps",
            one(rate(nonce, "", ""), ""),
        ),
    ];
    platform.extend(sdk_health());

    vec![
        Dashboard {
            file: "platform-health.json",
            uid: "stellaops-platform-health",
            title: "StellaOps / Platform Health",
            description: "Overall status: request rate, error rate, latency, circuit breakers, Authority, and the telemetry SDK's own health",
            tags: &["platform"],
            items: platform,
        },
        Dashboard {
            file: "scan-operations.json",
            uid: "stellaops-scan-operations",
            title: "StellaOps / Scan Operations",
            description: "Scanner: scan rate, scan duration, findings, SBOM components and attestations",
            tags: &["scanner"],
            items: vec![
                Item::Row("Scans"),
                ts(
                    "Scan rate",
                    "Scans finished per second, by tenant",
                    "ops",
                    one(
                        format!("sum by (tenant) (rate({}_count{RANGE}))", name(scans)),
                        "tenant",
                    ),
                ),
                ts(
                    "Scan duration",
                    "Scan duration percentiles (alert: P95 above 5 minutes)",
                    "s",
                    quantiles(scans, ""),
                ),
                ts(
                    "Scan duration P95 by tenant",
                    "95th percentile of scan duration, by tenant",
                    "s",
                    vec![(
                        format!(
                            "histogram_quantile(0.95, sum by (le, tenant) (rate({}_bucket{RANGE})))",
                            name(scans)
                        ),
                        "{{tenant}}".to_owned(),
                    )],
                ),
                ts(
                    "Average scan duration",
                    "Mean scan duration, by tenant",
                    "s",
                    one(
                        format!(
                            "sum by (tenant) (rate({s}_sum{RANGE}))\n  /\nsum by (tenant) (rate({s}_count{RANGE}))",
                            s = name(scans)
                        ),
                        "tenant",
                    ),
                ),
                Item::Row("Findings"),
                ts(
                    "Findings by severity",
                    "Vulnerabilities found per second, by severity",
                    "cps",
                    one(rate(vulns, "", "severity"), "severity"),
                ),
                stat(
                    "Findings in range",
                    "Vulnerabilities found over the dashboard's time range, by severity",
                    "short",
                    one(
                        format!("sum by (severity) (increase({}[$__range]))", name(vulns)),
                        "severity",
                    ),
                ),
                stat(
                    "Attestations logged",
                    "Attestations written to the transparency log over the time range",
                    "short",
                    one(
                        format!("sum(increase({}[$__range]))", name(attestations)),
                        "",
                    ),
                ),
                ts(
                    "SBOM components by ecosystem",
                    "SBOM components found per second, by ecosystem",
                    "cps",
                    one(rate(components, "", "ecosystem"), "ecosystem"),
                ),
            ],
        },
        Dashboard {
            file: "policy-engine.json",
            uid: "stellaops-policy-engine",
            title: "StellaOps / Policy Engine",
            description: "Policy engine: evaluation rate and duration, rule hits, VEX overrides",
            tags: &["policy"],
            items: vec![
                Item::Row("Evaluations"),
                ts(
                    "Evaluation rate",
                    "Policy runs per second, by mode",
                    "ops",
                    one(
                        format!("sum by (mode) (rate({}_count{RANGE}))", name(policy_run)),
                        "mode",
                    ),
                ),
                ts(
                    "Evaluation duration",
                    "Policy run duration percentiles",
                    "s",
                    quantiles(policy_run, ""),
                ),
                ts(
                    "Evaluation duration P95 by policy",
                    "95th percentile of policy run duration, by policy",
                    "s",
                    vec![(
                        format!(
                            "histogram_quantile(0.95, sum by (le, policy) (rate({}_bucket{RANGE})))",
                            name(policy_run)
                        ),
                        "{{policy}}".to_owned(),
                    )],
                ),
                Item::Row("Rules and overrides"),
                ts(
                    "Rule hits (top 10)",
                    "Rules fired per second: the ten busiest policy and rule pairs",
                    "cps",
                    one(
                        format!("topk(10, {})", rate(rules_fired, "", "policy, rule")),
                        "policy, rule",
                    ),
                ),
                ts(
                    "VEX overrides by vendor",
                    "VEX overrides applied per second, by vendor",
                    "cps",
                    one(rate(vex, "", "vendor"), "vendor"),
                ),
                ts(
                    "VEX overrides by policy",
                    "VEX overrides applied per second, by policy",
                    "cps",
                    one(rate(vex, "", "policy"), "policy"),
                ),
            ],
        },
        Dashboard {
            file: "job-orchestration.json",
            uid: "stellaops-job-orchestration",
            title: "StellaOps / Job Orchestration",
            description: "Queues and jobs: queue depth, active jobs, job latency, failures",
            tags: &["orchestrator"],
            items: vec![
                Item::Row("Queues and jobs"),
                ts(
                    "Queue depth",
                    "Items waiting, by queue (alert: above 1000)",
                    "short",
                    one(total(queue, "queue"), "queue"),
                ),
                ts(
                    "Active jobs",
                    "Jobs running now, by job type",
                    "short",
                    one(total(active_jobs, "jobType"), "jobType"),
                ),
                ts(
                    "Active jobs by tenant",
                    "Jobs running now, by tenant",
                    "short",
                    one(total(active_jobs, "tenant"), "tenant"),
                ),
                Item::Row("Latency and failures"),
                ts(
                    "Job step latency P95",
                    "95th percentile of workflow step duration, by step type",
                    "s",
                    vec![(
                        format!(
                            "histogram_quantile(0.95, sum by (le, step_type) (rate({}_bucket{RANGE})))",
                            name(step_duration)
                        ),
                        "{{step_type}}".to_owned(),
                    )],
                ),
                ts(
                    "Task latency P95",
                    "95th percentile of agent task duration, by task type",
                    "s",
                    vec![(
                        format!(
                            "histogram_quantile(0.95, sum by (le, type) (rate({}_bucket{RANGE})))",
                            name(task_duration)
                        ),
                        "{{type}}".to_owned(),
                    )],
                ),
                ts(
                    "Workflow runs by status",
                    "Workflow runs per second, by status",
                    "ops",
                    one(rate(workflow_runs, "", "status"), "status"),
                ),
                ts(
                    "Workflow failures",
                    "Failed workflow runs per second, by template",
                    "ops",
                    one(
                        rate(workflow_runs, "status=\"failed\"", "template"),
                        "template",
                    ),
                ),
                ts(
                    "Task failures",
                    "Failed agent tasks per second, by task type",
                    "ops",
                    one(rate(tasks, "status=\"failed\"", "type"), "type"),
                ),
            ],
        },
        Dashboard {
            file: "release-orchestrator.json",
            uid: "stellaops-release-orchestrator",
            title: "StellaOps / Release Orchestrator",
            description: "Release orchestrator: deployments, rollbacks, agents, approvals and the API",
            tags: &["release"],
            items: vec![
                Item::Row("Deployments"),
                ts(
                    "Deployment rate",
                    "Deployments per second, by environment",
                    "ops",
                    one(rate(deployments, "", "env"), "env"),
                ),
                ts(
                    "Deployment success ratio",
                    "Share of deployments that did not fail, by environment (alert: failures above 10 %)",
                    "percentunit",
                    one(ratio(deployments, "status!=\"failed\"", "env"), "env"),
                ),
                ts(
                    "Average deployment duration",
                    "Mean deployment duration, by environment",
                    "s",
                    one(
                        format!(
                            "sum by (env) (rate({d}_sum{RANGE}))\n  /\nsum by (env) (rate({d}_count{RANGE}))",
                            d = name(deployment_duration)
                        ),
                        "env",
                    ),
                ),
                ts(
                    "Deployment duration",
                    "Deployment duration percentiles (alert: P95 above 10 minutes)",
                    "s",
                    quantiles(deployment_duration, ""),
                ),
                ts(
                    "Rollbacks by reason",
                    "Rollbacks per second, by reason (alert: more than 3 an hour)",
                    "ops",
                    one(rate(rollbacks, "", "reason"), "reason"),
                ),
                ts(
                    "Releases and promotions",
                    "Releases and promotions per second, by status",
                    "ops",
                    vec![
                        (
                            rate(releases, "", "status"),
                            "release {{status}}".to_owned(),
                        ),
                        (
                            rate(promotions, "", "status"),
                            "promotion {{status}}".to_owned(),
                        ),
                    ],
                ),
                Item::Row("Agents"),
                stat(
                    "Connected agents",
                    "Agents connected now, by status",
                    "short",
                    one(total(agents, "status"), "status"),
                ),
                stat(
                    "Targets",
                    "Deployment targets registered, by environment",
                    "short",
                    one(total(targets, "env"), "env"),
                ),
                ts(
                    "Heartbeat age",
                    "Seconds since each agent's last heartbeat (alert: above 2 minutes)",
                    "s",
                    one(format!("max by (agent) ({})", name(heartbeat)), "agent"),
                ),
                ts(
                    "Tasks per agent",
                    "Agent tasks per second, by agent",
                    "ops",
                    one(rate(tasks, "", "agent"), "agent"),
                ),
                ts(
                    "Task success rate by agent",
                    "Share of each agent's tasks that did not fail",
                    "percentunit",
                    one(ratio(tasks, "status!=\"failed\"", "agent"), "agent"),
                ),
                Item::Row("Approvals"),
                ts(
                    "Pending approvals",
                    "Approvals pending now, by environment (alert: above 10 for an hour)",
                    "short",
                    one(total(pending, "env"), "env"),
                ),
                ts(
                    "Approval response time",
                    "Time from approval request to decision (alert: P90 above 24 hours)",
                    "s",
                    quantiles(approval, "env"),
                ),
                Item::Row("API"),
                ts(
                    "HTTP request rate",
                    "HTTP requests per second, by route",
                    "reqps",
                    one(rate(http, "", "path"), "path"),
                ),
                ts(
                    "HTTP error rate",
                    "Share of HTTP requests answered with a 5xx status, by route",
                    "percentunit",
                    one(ratio(http, "status=~\"5..\"", "path"), "path"),
                ),
                ts(
                    "HTTP latency P95",
                    "95th percentile of HTTP request latency, by method and route",
                    "s",
                    vec![(
                        format!(
                            "histogram_quantile(0.95, sum by (le, method, path) (rate({}_bucket{RANGE})))",
                            name(http_latency)
                        ),
                        "{{method}} {{path}}".to_owned(),
                    )],
                ),
                ts(
                    "HTTP requests in flight",
                    "HTTP requests being served now, by method",
                    "short",
                    one(total(in_flight, "method"), "method"),
                ),
            ],
        },
    ]
}

/// The collector's panels: scrape health, exporter queues, spans in and out.
fn collector_items() -> Vec<Item> {
    let rate = |m: &str, by: &str| format!("sum by ({by}) (rate({m}{RANGE}))");
    let mut items = vec![Item::Row("OpenTelemetry Collector")];
    items.push(stat(
        "Collectors up",
        "Collectors Prometheus scrapes successfully (alert: one down for 2 minutes)",
        "short",
        one("sum(up{job=~\".*collector.*\"})".to_owned(), ""),
    ));
    items.push(stat(
        "Collectors down",
        "Collectors Prometheus cannot scrape",
        "short",
        one(
            "count(up{job=~\".*collector.*\"} == 0) or vector(0)".to_owned(),
            "",
        ),
    ));
    items.push(ts(
        "Exporter queue usage",
        "Share of each exporter's sending queue in use (alert: above 80 %)",
        "percentunit",
        one(
            "max by (exporter) (otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)"
                .to_owned(),
            "exporter",
        ),
    ));
    items.push(ts(
        "Spans received",
        "Spans receivers accepted and refused per second (alert: any refused), by receiver",
        "cps",
        vec![
            (
                rate("otelcol_receiver_accepted_spans", "receiver"),
                "accepted {{receiver}}".to_owned(),
            ),
            (
                format!(
                    "sum by (receiver) (rate(otelcol_receiver_refused_spans{RANGE}) or rate(otelcol_receiver_refused_spans_total{RANGE}))"
                ),
                "refused {{receiver}}".to_owned(),
            ),
        ],
    ));
    items.push(ts(
        "Spans exported",
        "Spans exporters sent, failed to send and could not queue per second, by exporter",
        "cps",
        vec![
            (
                rate("otelcol_exporter_sent_spans", "exporter"),
                "sent {{exporter}}".to_owned(),
            ),
            (
                rate("otelcol_exporter_send_failed_spans", "exporter"),
                "failed {{exporter}}".to_owned(),
            ),
            (
                rate("otelcol_exporter_enqueue_failed_spans", "exporter"),
                "not queued {{exporter}}".to_owned(),
            ),
        ],
    ));
    items
}

/// The telemetry stack watching itself: the SDK's self-metrics and the collector's.
fn telemetry_stack() -> Dashboard {
    let mut items = sdk_health();
    items.extend(collector_items());
    Dashboard {
        file: "telemetry-stack.json",
        uid: "stellaops-telemetry-stack",
        title: "StellaOps / Telemetry Stack",
        description: "The telemetry stack itself: SDK exports, drops, failures, refusals, queues and sampling; collector health, queues and spans",
        tags: &["telemetry"],
        items,
    }
}

const TENANT_MATCHER: &str = "tenant=~\"$tenant\"";

/// `expr` with `tenant=~"$tenant"` added to each selector of a metric that has a `tenant`
/// label; the first such metric, if any. Quoted strings, label matchers and ranges are copied
/// as they are.
fn tenant_filtered(expr: &str) -> (String, Option<&'static str>) {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 32);
    let mut first = None;
    let (mut i, mut nested) = (0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(bytes.len());
                out.push_str(&expr[i..end]);
                i = end;
                continue;
            }
            b'{' | b'[' => nested += 1,
            b'}' | b']' => nested = nested.saturating_sub(1),
            _ => {}
        }
        let starts_ident = b.is_ascii_alphabetic() || b == b'_' || b == b':';
        let after_dollar = i > 0 && bytes[i - 1] == b'$';
        if nested > 0 || !starts_ident || after_dollar {
            // Whole characters, so a non-ASCII one in a comment or label survives.
            let ch = expr[i..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let mut j = i;
        while j < bytes.len()
            && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':')
        {
            j += 1;
        }
        let ident = &expr[i..j];
        out.push_str(ident);
        i = j;
        let Some((d, _)) = super::promql::resolve(ident) else {
            continue;
        };
        if !d.has_label("tenant") {
            continue;
        }
        first.get_or_insert(d.name);
        if bytes.get(i) == Some(&b'{') {
            let empty = bytes.get(i + 1) == Some(&b'}');
            out.push('{');
            out.push_str(TENANT_MATCHER);
            if !empty {
                out.push(',');
            }
            i += 1;
            nested += 1;
        } else {
            out.push('{');
            out.push_str(TENANT_MATCHER);
            out.push('}');
        }
    }
    (out, first)
}

/// Adds the tenant filter to every panel's queries; the first metric with a `tenant` label,
/// if any (the tenant variable's values come from it).
fn filter_by_tenant(d: &mut Dashboard) -> Option<&'static str> {
    let mut first = None;
    for item in &mut d.items {
        if let Item::Panel(panel) = item {
            for (expr, _) in &mut panel.targets {
                let (filtered, metric) = tenant_filtered(expr);
                *expr = filtered;
                first = first.or(metric);
            }
        }
    }
    first
}

/// The `tenant` template variable, its values read from `metric`.
fn tenant_variable(metric: &str) -> Value {
    let query = format!("label_values({metric}, tenant)");
    json!({
        "allValue": ".*",
        "current": { "selected": true, "text": ["All"], "value": ["$__all"] },
        "datasource": datasource(),
        "definition": query,
        "hide": 0,
        "includeAll": true,
        "label": "Tenant",
        "multi": true,
        "name": "tenant",
        "options": [],
        "query": { "query": query, "refId": "StandardVariableQuery" },
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    })
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

fn panel_json(panel: &Panel, id: u32, x: u32, y: u32, file: &str) -> Result<Value, ArtefactError> {
    let mut targets = Vec::new();
    for (i, (expr, legend)) in panel.targets.iter().enumerate() {
        let ref_id = char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)).to_string();
        targets.push(json!({
            "datasource": datasource(),
            "expr": checked(file, expr.clone())?,
            "legendFormat": if legend.is_empty() { "__auto" } else { legend.as_str() },
            "range": true,
            "refId": ref_id,
        }));
    }
    let (kind, options, custom) = match panel.viz {
        Viz::TimeSeries => (
            "timeseries",
            json!({
                "legend": { "calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true },
                "tooltip": { "mode": "multi", "sort": "desc" },
            }),
            json!({ "drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": false }),
        ),
        Viz::Stat => (
            "stat",
            json!({
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "textMode": "auto",
            }),
            json!({}),
        ),
    };
    Ok(json!({
        "datasource": datasource(),
        "description": panel.description,
        "fieldConfig": {
            "defaults": { "custom": custom, "unit": panel.unit },
            "overrides": [],
        },
        "gridPos": { "h": 8, "w": panel.width, "x": x, "y": y },
        "id": id,
        "options": options,
        "targets": targets,
        "title": panel.title,
        "type": kind,
    }))
}

fn dashboard_json(d: &Dashboard, tenant_metric: Option<&str>) -> Result<Value, ArtefactError> {
    let mut panels = Vec::new();
    let (mut x, mut y, mut id) = (0u32, 0u32, 1u32);
    for item in &d.items {
        match item {
            Item::Row(title) => {
                if x > 0 {
                    y += 8;
                    x = 0;
                }
                panels.push(json!({
                    "collapsed": false,
                    "gridPos": { "h": 1, "w": 24, "x": 0, "y": y },
                    "id": id,
                    "panels": [],
                    "title": title,
                    "type": "row",
                }));
                y += 1;
            }
            Item::Panel(panel) => {
                if x + panel.width > 24 {
                    x = 0;
                    y += 8;
                }
                panels.push(panel_json(panel, id, x, y, d.file)?);
                x += panel.width;
            }
        }
        id += 1;
    }
    let notice = generated_notice("generate dashboards", "the metric catalogue");
    let mut variables = vec![json!({
        "current": {},
        "hide": 0,
        "includeAll": false,
        "label": "Data source",
        "multi": false,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    })];
    variables.extend(tenant_metric.map(tenant_variable));
    let mut tags = vec!["stellaops", "generated"];
    tags.extend(d.tags);
    Ok(json!({
        "__generated": notice,
        "annotations": { "list": [] },
        "description": format!("{}. {notice}.", d.description),
        "editable": false,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": null,
        "links": [],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": tags,
        "templating": { "list": variables },
        "time": { "from": "now-6h", "to": "now" },
        "timepicker": {},
        "timezone": "utc",
        "title": d.title,
        "uid": d.uid,
        "version": 1,
    }))
}

/// Sorts every object's keys, so the output is the same whether or not serde_json's
/// `preserve_order` feature is on somewhere in the build (it puts `__generated` first).
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            for v in map.values_mut() {
                sort_keys(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// The Grafana dashboards, one JSON file each, using a `${datasource}` Prometheus data-source
/// variable and, where their metrics carry a `tenant` label, a `$tenant` variable every such
/// query filters on. The first key of each, `__generated`, says the file is generated (JSON has no
/// comments); the dashboard's description says so too.
///
/// # Errors
///
/// [`ArtefactError::Query`] when a panel's query no longer fits the catalogue,
/// [`ArtefactError::Json`] when a dashboard cannot be rendered.
pub fn dashboards() -> Result<Vec<Artefact>, ArtefactError> {
    let mut out = Vec::new();
    let mut all = table();
    all.push(telemetry_stack());
    for mut d in all {
        let tenant_metric = filter_by_tenant(&mut d);
        let mut value = dashboard_json(&d, tenant_metric)?;
        sort_keys(&mut value);
        let mut text =
            serde_json::to_string_pretty(&value).map_err(|source| ArtefactError::Json {
                file: d.file.to_owned(),
                source,
            })?;
        text.push('\n');
        out.push(Artefact {
            kind: ArtefactKind::Dashboards,
            file_name: d.file.to_owned(),
            contents: text,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::tenant_filtered;

    #[test]
    fn tenant_metrics_get_the_filter_and_others_stay_as_they_are() {
        let (out, first) = tenant_filtered(
            "sum by (tenant) (rate(stellaops_scan_duration_seconds_count[$__rate_interval]))",
        );
        assert_eq!(
            out,
            "sum by (tenant) (rate(stellaops_scan_duration_seconds_count{tenant=~\"$tenant\"}[$__rate_interval]))"
        );
        assert_eq!(first, Some("stellaops_scan_duration_seconds"));
        let (out, _) = tenant_filtered("sum(stella_targets{env=\"prod\"}) / sum(stella_targets{})");
        assert_eq!(
            out,
            "sum(stella_targets{tenant=~\"$tenant\",env=\"prod\"}) / sum(stella_targets{tenant=~\"$tenant\"})"
        );
        let untouched = "sum by (service) (rate(stellaops_request_total{status=~\"5..\"}[5m]))";
        assert_eq!(tenant_filtered(untouched), (untouched.to_owned(), None));
    }

    #[test]
    fn odd_input_is_copied_without_panicking() {
        for expr in [
            "\"unterminated \\",
            "é{\"x\\\"y\"}",
            "{{{",
            "]]]",
            "$",
            "stella_targets",
        ] {
            let (out, _) = tenant_filtered(expr);
            assert!(out.len() >= expr.len(), "{expr}");
        }
    }
}
