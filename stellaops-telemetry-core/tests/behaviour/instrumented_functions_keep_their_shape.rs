//! What `#[instrument]` must not change about a function: its future stays `Send` with
//! arguments that are only `Send`, `Result<impl Trait, E>` and `&mut` reborrows compile,
//! `-> !` compiles, metric paths resolve in function scopes, labels may read arguments the body
//! consumes, keyword labels work, and log lines inside carry the instrumented span's ids.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::fmt::Display;
use std::time::Duration;

use opentelemetry::Value;
use stellaops_telemetry_core::metrics::catalogue::STELLA_AGENT_TASKS_TOTAL;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument};

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("agent")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[instrument(span = "agent.execute", task_type = "cell")]
async fn with_a_cell(counter: Cell<u32>) -> u32 {
    counter.set(counter.get() + 1);
    tokio::task::yield_now().await;
    counter.get()
}

#[instrument(span = "agent.execute", task_type = "display")]
fn displayable(n: u8) -> Result<impl Display, std::io::Error> {
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
    }
    Ok(n)
}

struct Agent {
    name: String,
}

impl Agent {
    #[instrument(span = "agent.execute", task_type = "rename")]
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
}

#[instrument(span = "agent.execute", task_type = "diverge")]
fn diverges(message: &str) -> ! {
    panic!("{message}")
}

#[instrument(
    span = "agent.execute",
    task_type = kind,
    outcome = STELLA_AGENT_TASKS_TOTAL(agent = agent, type = kind, status = outcome),
)]
fn consume(agent: String, kind: &str) -> usize {
    let owned = agent; // the body consumes an argument a label reads
    tracing::info!(len = owned.len(), "consumed");
    owned.len()
}

#[tokio::test(flavor = "current_thread")]
async fn instrumented_functions_keep_their_shape() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters);
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());

    assert_eq!(assert_send(with_a_cell(Cell::new(1))).await, 2);
    assert_eq!(displayable(3).unwrap().to_string(), "3");
    assert!(displayable(0).is_err());
    let mut agent = Agent {
        name: "a".to_owned(),
    };
    agent.name_mut().push('b');
    assert_eq!(agent.name, "ab");
    assert!(std::panic::catch_unwind(|| diverges("gone")).is_err());

    // A metric path imported in a function scope.
    {
        use stellaops_telemetry_core::metrics::catalogue::STELLAOPS_SCAN_DURATION_SECONDS;
        #[instrument(duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = "local"))]
        fn scoped() -> u8 {
            1
        }
        assert_eq!(scoped(), 1);
    }

    // Log lines inside carry the instrumented span's ids, under an outer tracing span too.
    let outer = tracing::info_span!("workflow.run");
    outer.in_scope(|| assert_eq!(consume("agent-7".to_owned(), "deploy"), 7));
    drop(outer);

    telemetry.flush(Duration::from_secs(5)).unwrap();
    let spans = exporters.finished_spans();
    let timed_out = spans
        .iter()
        .find(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "error.type" && kv.value == Value::from("timed_out"))
        })
        .map(|s| s.name.to_string());
    assert_eq!(timed_out.as_deref(), Some("agent.execute"));
    let diverged = spans.iter().any(|s| {
        s.attributes
            .iter()
            .any(|kv| kv.key.as_str() == "error.type" && kv.value == Value::from("panic"))
    });
    assert!(diverged);
    let consumed = spans
        .iter()
        .find(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "task_type" && kv.value == Value::from("deploy"))
        })
        .unwrap();
    let outer_span = spans.iter().find(|s| s.name == "workflow.run").unwrap();
    assert_eq!(consumed.parent_span_id, outer_span.span_context.span_id());
    let line = exporters
        .json_logs()
        .json()
        .into_iter()
        .find(|l| l["message"] == "consumed")
        .unwrap();
    assert_eq!(line["spanId"], consumed.span_context.span_id().to_string());
    assert_eq!(
        line["traceId"],
        consumed.span_context.trace_id().to_string()
    );

    let body = telemetry.prometheus().unwrap().render().unwrap();
    assert!(
        body.contains(
            "stella_agent_tasks_total{agent=\"agent-7\",status=\"ok\",type=\"deploy\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("stellaops_scan_duration_seconds_count{tenant=\"local\"} 1"),
        "{body}"
    );
    telemetry.shutdown();
}
