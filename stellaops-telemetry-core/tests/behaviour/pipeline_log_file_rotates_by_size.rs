//! Size-based rotation of the JSON log file keeps the configured number of files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stellaops_telemetry_core::Telemetry;

#[test]
fn rotation_at_the_size_limit_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("service.log");
    let telemetry = Telemetry::builder("rotating")
        .exporters(&[])
        .stdout_logs(false)
        .log_file(&log, 2_000, 4)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for i in 0..400 {
            tracing::info!(
                i,
                padding = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "line"
            );
        }
    });
    assert!(telemetry.flush(Duration::from_secs(5)).is_ok());
    telemetry.shutdown();
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "service.log",
            "service.log.1",
            "service.log.2",
            "service.log.3"
        ]
    );
    let mut last_index = None;
    for file in files.iter().rev() {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.len() <= 2_000,
            "{} is {} bytes",
            file.display(),
            text.len()
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let i = v["i"].as_i64().unwrap();
            // Oldest file first: line numbers keep increasing across the rotated files.
            assert!(last_index.is_none_or(|l| i == l + 1), "gap before {i}");
            last_index = Some(i);
        }
    }
    assert_eq!(last_index, Some(399));
    let stats = telemetry.stats().log_lines;
    assert_eq!(stats.exported + stats.dropped, 400);
}

#[test]
fn an_unwritable_log_file_is_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let err = Telemetry::builder("rotating")
        .exporters(&[])
        .stdout_logs(false)
        .log_file(blocker.join("service.log"), 1_000, 2)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
