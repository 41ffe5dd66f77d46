//! The house span catalogue: `http.request` (opened by the tower layer), the
//! platform spans and the release orchestrator's.

use super::SpanDescriptor;

crate::declare_spans! {
    /// An HTTP handler (the tower layer opens it; use this outside tower stacks).
    pub fn http_request / HTTP_REQUEST = "http.request" (url: &str, method: &str, status: i64);
    /// A database operation.
    pub fn db_query / DB_QUERY = "db.query" (collection: &str, operation: &str);
    /// A policy run.
    pub fn policy_evaluate / POLICY_EVALUATE = "policy.evaluate" (policyId: &str, version: &str);
    /// An image scan.
    pub fn scan_image / SCAN_IMAGE = "scan.image" (imageRef: &str, digest: &str);
    /// DSSE signing.
    pub fn sign_dsse / SIGN_DSSE = "sign.dsse" (predicateType: &str);
    /// A full deployment.
    pub fn deployment_execute / DEPLOYMENT_EXECUTE = "deployment.execute" (release_id: &str, environment: &str);
    /// Dispatching a task to an agent.
    pub fn task_dispatch / TASK_DISPATCH = "task.dispatch" (target_id: &str, agent_id: &str);
    /// An agent executing a task.
    pub fn agent_execute / AGENT_EXECUTE = "agent.execute" (task_type: &str);
    /// A workflow run.
    pub fn workflow_run / WORKFLOW_RUN = "workflow.run" (template_id: &str, status: &str);
    /// One workflow step.
    pub fn workflow_step / WORKFLOW_STEP = "workflow.step" (step_type: &str, node_id: &str);
    /// Waiting for an approval.
    pub fn approval_wait / APPROVAL_WAIT = "approval.wait" (promotion_id: &str);
    /// A gate evaluation.
    pub fn gate_evaluate / GATE_EVALUATE = "gate.evaluate" (gate_type: &str, result: &str);
}

/// Every span of the catalogue.
pub const ALL: [SpanDescriptor; 12] = [
    HTTP_REQUEST,
    DB_QUERY,
    POLICY_EVALUATE,
    SCAN_IMAGE,
    SIGN_DSSE,
    DEPLOYMENT_EXECUTE,
    TASK_DISPATCH,
    AGENT_EXECUTE,
    WORKFLOW_RUN,
    WORKFLOW_STEP,
    APPROVAL_WAIT,
    GATE_EVALUATE,
];

/// The catalogue entry named `name`.
pub fn find(name: &str) -> Option<&'static SpanDescriptor> {
    ALL.iter().find(|d| d.name == name)
}
