//! Two `build()` pipelines touch no global: each sees only its own data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;

fn run(name: &'static str, spans: usize) -> TestExporters {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder(name)
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for _ in 0..spans {
            tracing::info_span!("unit", pipeline = name)
                .in_scope(|| tracing::info!(pipeline = name, "hello"));
        }
    });
    telemetry.shutdown();
    exporters
}

#[test]
fn concurrent_pipelines_keep_their_data_apart() {
    let a = std::thread::spawn(|| run("pipeline-a", 50));
    let b = std::thread::spawn(|| run("pipeline-b", 70));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for (exporters, name, n) in [(&a, "pipeline-a", 50), (&b, "pipeline-b", 70)] {
        let spans = exporters.finished_spans();
        assert_eq!(spans.len(), n);
        assert!(spans.iter().all(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "pipeline" && kv.value.as_str() == name)
        }));
        let logs = exporters.json_logs().json();
        assert_eq!(logs.len(), n);
        assert!(logs.iter().all(|l| l["service"] == name));
        assert_eq!(exporters.log_records().len(), n);
    }
}

#[test]
fn a_pipeline_that_is_not_the_default_sees_nothing() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("idle")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    tracing::info_span!("outside").in_scope(|| tracing::info!("not ours"));
    telemetry.shutdown();
    assert!(exporters.finished_spans().is_empty());
    assert!(exporters.json_logs().lines().is_empty());
}
