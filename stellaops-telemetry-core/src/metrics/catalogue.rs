//! The house catalogue: every metric a StellaOps service records, with its label
//! struct. A service records them through [`Metrics`](super::Metrics) handles:
//!
//! ```
//! use stellaops_telemetry_core::metrics::catalogue::{STELLAOPS_REQUEST_TOTAL, RequestTotalLabels};
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").build()?;
//! let requests = telemetry.metrics().counter(&STELLAOPS_REQUEST_TOTAL);
//! let ok = requests.bind(RequestTotalLabels { service: "scanner", status: "200" });
//! ok.add(1);
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! Beyond the specification's tables: `stellaops_circuit_breaker_open` (the "circuit open"
//! alert's `breaker_open = 1`), a `status` label on `stella_deployments_total` and on
//! `stella_agents_connected` (the release orchestrator's alert rules select on it), the gauge
//! `stella_targets` (renamed from the seed's counter `stella_targets_total`), and the SDK's
//! self-metrics ([`SDK`]).

use super::descriptor::{MetricDescriptor, MetricKind};

/// Request-latency buckets (seconds): the OpenTelemetry HTTP semantic conventions'.
pub const REQUEST_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Task and workflow-step buckets (seconds): a tenth of a second to half an hour.
pub const TASK_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0];

crate::declare_metrics! {
    /// Request latency, by service and endpoint (the route, never the raw path).
    pub histogram STELLAOPS_REQUEST_DURATION_SECONDS = "stellaops_request_duration_seconds" {
        unit: "s",
        help: "Request latency",
        labels: RequestDurationLabels { service, endpoint },
        buckets: &REQUEST_BUCKETS,
    }
    /// Requests, by service and status code.
    pub counter STELLAOPS_REQUEST_TOTAL = "stellaops_request_total" {
        unit: "{request}",
        help: "Request count",
        labels: RequestTotalLabels { service, status },
    }
    /// Jobs running now, by tenant and job type.
    pub updown_counter STELLAOPS_ACTIVE_JOBS = "stellaops_active_jobs" {
        unit: "{job}",
        help: "Active job count",
        labels: ActiveJobsLabels { tenant, jobType },
    }
    /// Items waiting, by queue.
    pub gauge STELLAOPS_QUEUE_DEPTH = "stellaops_queue_depth" {
        unit: "{item}",
        help: "Queue depth",
        labels: QueueDepthLabels { queue },
    }
    /// Image scan duration, by tenant.
    pub histogram STELLAOPS_SCAN_DURATION_SECONDS = "stellaops_scan_duration_seconds" {
        unit: "s",
        help: "Scan duration",
        labels: ScanDurationLabels { tenant },
        buckets: &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0],
    }
    /// 1 while a circuit breaker is open, 0 while it is closed.
    pub gauge STELLAOPS_CIRCUIT_BREAKER_OPEN = "stellaops_circuit_breaker_open" {
        unit: "1",
        help: "Circuit breaker state: 1 open, 0 closed",
        labels: CircuitBreakerLabels { service, breaker },
    }
}

crate::declare_metrics! {
    /// Policy run duration.
    pub histogram POLICY_RUN_SECONDS = "policy_run_seconds" {
        unit: "s",
        help: "Policy run duration",
        labels: PolicyRunLabels { mode, tenant, policy },
        buckets: &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
    }
    /// Rules fired, by policy and rule.
    pub counter POLICY_RULES_FIRED_TOTAL = "policy_rules_fired_total" {
        unit: "{rule}",
        help: "Policy rules fired",
        labels: PolicyRulesFiredLabels { policy, rule },
    }
    /// VEX overrides applied, by policy and vendor.
    pub counter POLICY_VEX_OVERRIDES_TOTAL = "policy_vex_overrides_total" {
        unit: "{override}",
        help: "VEX overrides applied",
        labels: PolicyVexOverridesLabels { policy, vendor },
    }
    /// SBOM components found, by ecosystem.
    pub counter SCANNER_SBOM_COMPONENTS_TOTAL = "scanner_sbom_components_total" {
        unit: "{component}",
        help: "SBOM components found",
        labels: SbomComponentsLabels { ecosystem },
    }
    /// Vulnerabilities found, by severity.
    pub counter SCANNER_VULNERABILITIES_FOUND_TOTAL = "scanner_vulnerabilities_found_total" {
        unit: "{vulnerability}",
        help: "Vulnerabilities found",
        labels: VulnerabilitiesFoundLabels { severity },
    }
    /// Attestations written to the transparency log.
    pub counter SCANNER_ATTESTATIONS_LOGGED_TOTAL = "scanner_attestations_logged_total" {
        unit: "{attestation}",
        help: "Attestations logged",
        labels: AttestationsLoggedLabels {},
    }
    /// Tokens issued, by grant type and audience.
    pub counter AUTHORITY_TOKEN_ISSUED_TOTAL = "authority_token_issued_total" {
        unit: "{token}",
        help: "Tokens issued",
        labels: TokenIssuedLabels { grant_type, audience },
    }
    /// Token requests rejected, by reason.
    pub counter AUTHORITY_TOKEN_REJECTED_TOTAL = "authority_token_rejected_total" {
        unit: "{token}",
        help: "Token requests rejected",
        labels: TokenRejectedLabels { reason },
    }
    /// DPoP proofs that missed their nonce.
    pub counter AUTHORITY_DPOP_NONCE_MISS_TOTAL = "authority_dpop_nonce_miss_total" {
        unit: "{proof}",
        help: "DPoP nonce misses",
        labels: DpopNonceMissLabels {},
    }
}

crate::declare_metrics! {
    /// Releases, by tenant and status.
    pub counter STELLA_RELEASES_TOTAL = "stella_releases_total" {
        unit: "{release}",
        help: "Releases",
        labels: ReleasesLabels { tenant, status },
    }
    /// Promotions, by tenant, environment and status.
    pub counter STELLA_PROMOTIONS_TOTAL = "stella_promotions_total" {
        unit: "{promotion}",
        help: "Promotions",
        labels: PromotionsLabels { tenant, env, status },
    }
    /// Deployments, by tenant, environment, strategy and status.
    pub counter STELLA_DEPLOYMENTS_TOTAL = "stella_deployments_total" {
        unit: "{deployment}",
        help: "Deployments",
        labels: DeploymentsLabels { tenant, env, strategy, status },
    }
    /// Deployment duration.
    pub histogram STELLA_DEPLOYMENT_DURATION_SECONDS = "stella_deployment_duration_seconds" {
        unit: "s",
        help: "Deployment duration",
        labels: DeploymentDurationLabels { tenant, env, strategy },
        buckets: &[10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0],
    }
    /// Rollbacks, by tenant, environment and reason.
    pub counter STELLA_ROLLBACKS_TOTAL = "stella_rollbacks_total" {
        unit: "{rollback}",
        help: "Rollbacks",
        labels: RollbacksLabels { tenant, env, reason },
    }
    /// Agents connected now, by tenant and status (`online`, `degraded`).
    pub gauge STELLA_AGENTS_CONNECTED = "stella_agents_connected" {
        unit: "{agent}",
        help: "Connected agents",
        labels: AgentsConnectedLabels { tenant, status },
    }
    /// Deployment targets registered now, by tenant, environment and type. A gauge named
    /// `stella_targets`: renamed from the seed's `stella_targets_total`, which was declared a
    /// counter although it counts targets registered now (and a `_total` gauge breaks the
    /// naming rules).
    pub gauge STELLA_TARGETS = "stella_targets" {
        unit: "{target}",
        help: "Deployment targets registered",
        labels: TargetsLabels { tenant, env, r#type },
    }
    /// Workflow runs, by tenant, template and status.
    pub counter STELLA_WORKFLOW_RUNS_TOTAL = "stella_workflow_runs_total" {
        unit: "{run}",
        help: "Workflow runs",
        labels: WorkflowRunsLabels { tenant, template, status },
    }
    /// Workflow step duration, by step type.
    pub histogram STELLA_WORKFLOW_STEP_DURATION_SECONDS = "stella_workflow_step_duration_seconds" {
        unit: "s",
        help: "Workflow step duration",
        labels: WorkflowStepDurationLabels { step_type },
        buckets: &TASK_BUCKETS,
    }
    /// Approvals pending now, by tenant and environment.
    pub gauge STELLA_APPROVAL_PENDING_COUNT = "stella_approval_pending_count" {
        unit: "{approval}",
        help: "Pending approvals",
        labels: ApprovalPendingLabels { tenant, env },
    }
    /// Time from approval request to decision.
    pub histogram STELLA_APPROVAL_DURATION_SECONDS = "stella_approval_duration_seconds" {
        unit: "s",
        help: "Approval wait",
        labels: ApprovalDurationLabels { tenant, env },
        buckets: &[60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0, 172800.0, 604800.0],
    }
    /// HTTP requests, by method, route and status.
    pub counter STELLA_HTTP_REQUESTS_TOTAL = "stella_http_requests_total" {
        unit: "{request}",
        help: "HTTP requests",
        labels: HttpRequestsLabels { method, path, status },
    }
    /// HTTP request latency, by method and route.
    pub histogram STELLA_HTTP_REQUEST_DURATION_SECONDS = "stella_http_request_duration_seconds" {
        unit: "s",
        help: "HTTP request latency",
        labels: HttpRequestDurationLabels { method, path },
        buckets: &REQUEST_BUCKETS,
    }
    /// HTTP requests in flight, by method.
    pub updown_counter STELLA_HTTP_REQUESTS_IN_FLIGHT = "stella_http_requests_in_flight" {
        unit: "{request}",
        help: "HTTP requests in flight",
        labels: HttpInFlightLabels { method },
    }
    /// Agent tasks executed, by agent, type and status.
    pub counter STELLA_AGENT_TASKS_TOTAL = "stella_agent_tasks_total" {
        unit: "{task}",
        help: "Agent tasks executed",
        labels: AgentTasksLabels { agent, r#type, status },
    }
    /// Agent task duration, by agent and type.
    pub histogram STELLA_AGENT_TASK_DURATION_SECONDS = "stella_agent_task_duration_seconds" {
        unit: "s",
        help: "Agent task duration",
        labels: AgentTaskDurationLabels { agent, r#type },
        buckets: &TASK_BUCKETS,
    }
    /// Seconds since each agent's last heartbeat.
    pub gauge STELLA_AGENT_HEARTBEAT_AGE_SECONDS = "stella_agent_heartbeat_age_seconds" {
        unit: "s",
        help: "Seconds since the last heartbeat",
        labels: AgentHeartbeatLabels { agent },
    }
}

/// The standard metrics (plus the circuit breaker).
pub const STANDARD: [&MetricDescriptor; 6] = [
    STELLAOPS_REQUEST_DURATION_SECONDS.descriptor(),
    STELLAOPS_REQUEST_TOTAL.descriptor(),
    STELLAOPS_ACTIVE_JOBS.descriptor(),
    STELLAOPS_QUEUE_DEPTH.descriptor(),
    STELLAOPS_SCAN_DURATION_SECONDS.descriptor(),
    STELLAOPS_CIRCUIT_BREAKER_OPEN.descriptor(),
];

/// The module metrics: policy engine, scanner, authority.
pub const MODULES: [&MetricDescriptor; 9] = [
    POLICY_RUN_SECONDS.descriptor(),
    POLICY_RULES_FIRED_TOTAL.descriptor(),
    POLICY_VEX_OVERRIDES_TOTAL.descriptor(),
    SCANNER_SBOM_COMPONENTS_TOTAL.descriptor(),
    SCANNER_VULNERABILITIES_FOUND_TOTAL.descriptor(),
    SCANNER_ATTESTATIONS_LOGGED_TOTAL.descriptor(),
    AUTHORITY_TOKEN_ISSUED_TOTAL.descriptor(),
    AUTHORITY_TOKEN_REJECTED_TOTAL.descriptor(),
    AUTHORITY_DPOP_NONCE_MISS_TOTAL.descriptor(),
];

/// The release orchestrator's metrics.
pub const RELEASE: [&MetricDescriptor; 17] = [
    STELLA_RELEASES_TOTAL.descriptor(),
    STELLA_PROMOTIONS_TOTAL.descriptor(),
    STELLA_DEPLOYMENTS_TOTAL.descriptor(),
    STELLA_DEPLOYMENT_DURATION_SECONDS.descriptor(),
    STELLA_ROLLBACKS_TOTAL.descriptor(),
    STELLA_AGENTS_CONNECTED.descriptor(),
    STELLA_TARGETS.descriptor(),
    STELLA_WORKFLOW_RUNS_TOTAL.descriptor(),
    STELLA_WORKFLOW_STEP_DURATION_SECONDS.descriptor(),
    STELLA_APPROVAL_PENDING_COUNT.descriptor(),
    STELLA_APPROVAL_DURATION_SECONDS.descriptor(),
    STELLA_HTTP_REQUESTS_TOTAL.descriptor(),
    STELLA_HTTP_REQUEST_DURATION_SECONDS.descriptor(),
    STELLA_HTTP_REQUESTS_IN_FLIGHT.descriptor(),
    STELLA_AGENT_TASKS_TOTAL.descriptor(),
    STELLA_AGENT_TASK_DURATION_SECONDS.descriptor(),
    STELLA_AGENT_HEARTBEAT_AGE_SECONDS.descriptor(),
];

const fn sdk(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricDescriptor {
    MetricDescriptor {
        name,
        kind: MetricKind::Counter,
        unit: "{record}",
        help,
        labels,
        buckets: &[],
    }
}

/// One of the SDK's own gauges: a queue's backlog, per signal.
const fn sdk_gauge(name: &'static str, unit: &'static str, help: &'static str) -> MetricDescriptor {
    MetricDescriptor {
        name,
        kind: MetricKind::Gauge,
        unit,
        help,
        labels: &["signal"],
        buckets: &[],
    }
}

/// One of the SDK tail sampler's own metrics.
const fn tail(
    name: &'static str,
    kind: MetricKind,
    unit: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricDescriptor {
    MetricDescriptor {
        name,
        kind,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

/// The SDK's own metrics, under one prefix, in the same exposition as the service's.
pub const SDK: [MetricDescriptor; 19] = [
    sdk(
        "stellaops_telemetry_exported_total",
        "Records accepted by every exporter of the signal",
        &["signal"],
    ),
    sdk(
        "stellaops_telemetry_dropped_total",
        "Records lost: full queue, failed or timed-out export, shutdown deadline",
        &["signal"],
    ),
    sdk(
        "stellaops_telemetry_export_failures_total",
        "Export calls that failed or timed out",
        &["signal"],
    ),
    sdk(
        "stellaops_telemetry_redactions_total",
        "Values redacted or dropped, by rule",
        &["rule"],
    ),
    sdk(
        "stellaops_telemetry_tenant_exported_total",
        "Records in OTLP requests delivered, by signal and tenant (at most 100 tenants, then `_other`; `_none` without one)",
        &["signal", "tenant"],
    ),
    sdk(
        "stellaops_telemetry_tenant_rejected_total",
        "Records whose tenant could not be a request header, sent as untenanted",
        &["signal"],
    ),
    sdk(
        "stellaops_telemetry_egress_refusals_total",
        "Exporters the egress policy refused (replaced by files)",
        &[],
    ),
    sdk(
        "stellaops_telemetry_cardinality_overflow_total",
        "Label sets beyond a metric's cardinality limit, folded into its overflow series",
        &["metric"],
    ),
    sdk(
        "stellaops_telemetry_truncated_total",
        "Values cut to the pipeline's value limits, by kind",
        &["kind"],
    ),
    MetricDescriptor {
        name: "stellaops_telemetry_control_changes_total",
        kind: MetricKind::Counter,
        unit: "{change}",
        help: "Run-time control changes applied, by control",
        labels: &["control"],
        buckets: &[],
    },
    sdk_gauge(
        "stellaops_telemetry_queue_depth",
        "{record}",
        "Records queued for export and not yet exported or dropped",
    ),
    sdk_gauge(
        "stellaops_telemetry_queue_bytes",
        "By",
        "Estimated bytes of the records queued for export",
    ),
    sdk_gauge(
        "stellaops_telemetry_queue_oldest_age_seconds",
        "s",
        "Age of the oldest record queued for export (0 when none is)",
    ),
    tail(
        "stellaops_telemetry_tail_sampling_decisions_total",
        MetricKind::Counter,
        "{trace}",
        "Traces the SDK's tail sampler decided, by policy and decision",
        &["policy", "decision"],
    ),
    tail(
        "stellaops_telemetry_tail_sampling_early_decisions_total",
        MetricKind::Counter,
        "{trace}",
        "Traces decided before their local root ended, by reason",
        &["reason"],
    ),
    tail(
        "stellaops_telemetry_tail_sampling_spans_total",
        MetricKind::Counter,
        "{span}",
        "Spans the SDK's tail sampler kept or sampled out",
        &["decision"],
    ),
    tail(
        "stellaops_telemetry_tail_sampling_held_traces",
        MetricKind::Gauge,
        "{trace}",
        "Traces the tail sampler holds, awaiting their decision",
        &[],
    ),
    tail(
        "stellaops_telemetry_tail_sampling_held_spans",
        MetricKind::Gauge,
        "{span}",
        "Spans the tail sampler holds, awaiting their trace's decision",
        &[],
    ),
    tail(
        "stellaops_telemetry_tail_sampling_held_bytes",
        MetricKind::Gauge,
        "By",
        "Estimated bytes of the spans the tail sampler holds",
        &[],
    ),
];

/// Every metric of the catalogue, SDK self-metrics included.
pub fn all() -> impl Iterator<Item = &'static MetricDescriptor> {
    STANDARD
        .into_iter()
        .chain(MODULES)
        .chain(RELEASE)
        .chain(SDK.iter())
}

/// The catalogue entry named `name`.
pub fn find(name: &str) -> Option<&'static MetricDescriptor> {
    all().find(|d| d.name == name)
}
