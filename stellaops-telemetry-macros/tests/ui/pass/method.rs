//! Methods taking `&self` and `&mut self`: attributes may read `self`, and the body may
//! mutate it.

use std::time::Duration;

use stellaops_telemetry_core::opentelemetry::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Telemetry, instrument, tracing};

struct Dispatcher {
    agent: String,
    sent: usize,
}

impl Dispatcher {
    #[instrument(span = "task.dispatch", target_id, agent_id = self.agent)]
    fn send(&mut self, target_id: &str) -> usize {
        self.sent += 1;
        self.sent
    }

    #[instrument(span = "agent.execute", task_type = "deploy")]
    fn agent(&self) -> &str {
        &self.agent
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("orchestrator")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()?;
    let mut dispatcher = Dispatcher {
        agent: "agent-7".to_owned(),
        sent: 0,
    };
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        assert_eq!(dispatcher.send("t-1"), 1);
        assert_eq!(dispatcher.send("t-2"), 2);
        assert_eq!(dispatcher.agent(), "agent-7");
    });

    telemetry.flush(Duration::from_secs(5))?;
    let spans = exporters.finished_spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["task.dispatch", "task.dispatch", "agent.execute"]);
    let attribute = |index: usize, key: &str| {
        spans[index]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute(1, "target_id"), Some(Value::from("t-2")));
    assert_eq!(attribute(1, "agent_id"), Some(Value::from("agent-7")));
    assert_eq!(attribute(2, "task_type"), Some(Value::from("deploy")));
    telemetry.shutdown();
    Ok(())
}
