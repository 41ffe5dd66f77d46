//! `#[instrument]`: sync, async, methods, generics and `Result`s record their catalogue span
//! (attributes evaluated only when recorded, `Err` as an error with `error.type`, a panic still
//! ending the span), nest under the current span, and record their catalogue metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Value;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use stellaops_telemetry_core::metrics::catalogue::{
    STELLA_DEPLOYMENTS_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{ErrorKind, RequestContext, Sensitive, Telemetry, instrument};

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

static EVALUATED: AtomicUsize = AtomicUsize::new(0);

fn counted(digest: &str) -> &str {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    digest
}

#[derive(Debug)]
enum ScanError {
    Timeout,
}

impl ErrorKind for ScanError {
    fn error_kind(&self) -> &'static str {
        match self {
            ScanError::Timeout => "timeout",
        }
    }
}

#[instrument(
    span = "scan.image",
    imageRef = image,
    digest = counted(digest),
    fields(layers = layers, password = Sensitive::new(password)),
    duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "acme"),
)]
fn scan(image: &str, digest: &str, layers: usize, password: &str) -> Result<usize, ScanError> {
    let _ = password;
    if layers == 0 {
        return Err(ScanError::Timeout);
    }
    Ok(layers * 2)
}

struct Deployer {
    env: String,
}

impl Deployer {
    #[instrument(
        span = "deployment.execute",
        release_id,
        environment = self.env,
        outcome = STELLA_DEPLOYMENTS_TOTAL(
            tenant = "acme",
            env = &self.env,
            strategy = "rolling",
            status = outcome,
        ),
    )]
    async fn deploy<T: std::fmt::Debug>(
        &self,
        release_id: &str,
        extra: T,
    ) -> Result<String, std::io::Error> {
        tokio::task::yield_now().await;
        if release_id == "bad" {
            return Err(std::io::Error::other("boom"));
        }
        Ok(format!("{release_id}:{extra:?}"))
    }
}

#[instrument(span = "gate.evaluate", gate_type = "cvss", result = "pass")]
fn gate() -> u8 {
    7
}

#[instrument(span = "approval.wait", promotion_id = "p-1")]
fn panics() {
    panic!("in the body");
}

#[tokio::test(flavor = "current_thread")]
async fn spans_metrics_errors_and_nesting() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());

    EVALUATED.store(0, Ordering::SeqCst);
    assert_eq!(scan("registry/app:1", "sha256:1", 2, "hunter2").unwrap(), 4);
    assert!(matches!(
        scan("registry/app:1", "sha256:2", 0, "x"),
        Err(ScanError::Timeout)
    ));
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 2);

    let deployer = Deployer {
        env: "prod".to_owned(),
    };
    {
        let _cx = RequestContext::new().with_tenant("acme").attach();
        let outer = tracing::info_span!("workflow.run");
        let _entered = outer.enter();
        assert_eq!(deployer.deploy("r-1", 5).await.unwrap(), "r-1:5");
    }
    assert!(deployer.deploy("bad", ()).await.is_err());
    assert_eq!(gate(), 7);
    assert!(std::panic::catch_unwind(panics).is_err());

    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    let named =
        |name: &str| -> Vec<&SpanData> { spans.iter().filter(|s| s.name == name).collect() };

    let scans = named("scan.image");
    assert_eq!(scans.len(), 2);
    assert_eq!(
        attr(scans[0], "imageRef"),
        Some(Value::from("registry/app:1"))
    );
    assert_eq!(attr(scans[0], "digest"), Some(Value::from("sha256:1")));
    assert_eq!(attr(scans[0], "layers"), Some(Value::I64(2)));
    assert_eq!(
        attr(scans[0], "password"),
        Some(Value::from(stellaops_telemetry_core::REDACTED))
    );
    assert_eq!(scans[0].status, Status::Unset);
    assert_eq!(scans[1].status, Status::error(""));
    assert_eq!(attr(scans[1], "error.type"), Some(Value::from("timeout")));

    let deploys = named("deployment.execute");
    assert_eq!(deploys.len(), 2);
    assert_eq!(attr(deploys[0], "release_id"), Some(Value::from("r-1")));
    assert_eq!(attr(deploys[0], "environment"), Some(Value::from("prod")));
    assert_eq!(attr(deploys[0], "tenant.id"), Some(Value::from("acme")));
    // `io::Error` has a kind of its own (`io` for `Error::other`).
    assert_eq!(attr(deploys[1], "error.type"), Some(Value::from("io")));
    let workflow = named("workflow.run");
    assert_eq!(workflow.len(), 1);
    assert_eq!(
        deploys[0].parent_span_id,
        workflow[0].span_context.span_id()
    );
    assert_eq!(
        deploys[0].span_context.trace_id(),
        workflow[0].span_context.trace_id()
    );

    let gates = named("gate.evaluate");
    assert_eq!(attr(gates[0], "gate_type"), Some(Value::from("cvss")));
    let panicked = named("approval.wait");
    assert_eq!(panicked.len(), 1);
    assert_eq!(attr(panicked[0], "error.type"), Some(Value::from("panic")));

    let body = telemetry.prometheus().unwrap().render().unwrap();
    assert!(
        body.contains("stellaops_scan_duration_seconds_count{tenant=\"acme\"} 2"),
        "{body}"
    );
    assert!(
        body.contains(
            "stella_deployments_total{env=\"prod\",status=\"ok\",strategy=\"rolling\",tenant=\"acme\"} 1"
        ),
        "{body}"
    );
    assert!(body.contains("status=\"error\""), "{body}");
    telemetry.shutdown();
}

static UNRECORDED: AtomicUsize = AtomicUsize::new(0);

fn noted(value: &str) -> &str {
    UNRECORDED.fetch_add(1, Ordering::SeqCst);
    value
}

#[instrument(span = "sign.dsse", predicateType = noted(kind))]
fn sign(kind: &str) -> usize {
    kind.len()
}

#[test]
fn without_a_pipeline_nothing_is_evaluated_and_the_function_still_runs() {
    assert_eq!(sign("slsa"), 4);
    assert_eq!(UNRECORDED.load(Ordering::SeqCst), 0);
}

static SAMPLED_OUT: AtomicUsize = AtomicUsize::new(0);

fn observed(value: &str) -> &str {
    SAMPLED_OUT.fetch_add(1, Ordering::SeqCst);
    value
}

#[instrument(span = "agent.execute", task_type = observed(kind))]
fn execute(kind: &str) -> usize {
    kind.len()
}

#[test]
fn a_sampled_out_span_evaluates_no_attribute_and_exports_nothing() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("agent")
        .exporters(&[])
        .stdout_logs(false)
        .sampler("always_off", None)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        assert_eq!(execute("deploy"), 6);
    });
    telemetry.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(SAMPLED_OUT.load(Ordering::SeqCst), 0);
    assert!(exporters.finished_spans().is_empty());
    telemetry.shutdown();
}
