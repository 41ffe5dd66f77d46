//! Size-based rotation keeps at most `max_files` files of at most `max_bytes` each.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use stellaops_telemetry_core::{
    JsonLogLayer, LogOutput, LogOutputError, RotatingFile, SignalStats,
};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn many_lines_leave_max_files_files_none_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let stats = Arc::new(SignalStats::default());
    let output =
        LogOutput::file(RotatingFile::new(&path, 2_000, 4).unwrap(), stats.clone()).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(JsonLogLayer::new("scanner").output(output.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..500u64 {
            tracing::info!(i, "line");
        }
    });
    assert!(output.flush(Duration::from_secs(10)));
    assert_eq!(stats.snapshot().exported, 500);

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["app.log", "app.log.1", "app.log.2", "app.log.3"]);
    for name in &names {
        let content = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(content.len() <= 2_000, "{name}: {} bytes", content.len());
        assert!(content.ends_with('\n'), "{name} ends mid-line");
        for line in content.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }
    // The newest line is in the current file, older ones in higher-numbered files.
    let current = std::fs::read_to_string(&path).unwrap();
    assert!(current.contains(r#""i":499"#));
    let oldest = std::fs::read_to_string(dir.path().join("app.log.3")).unwrap();
    let first_i = |s: &str| -> u64 {
        let v: serde_json::Value = serde_json::from_str(s.lines().next().unwrap()).unwrap();
        v["i"].as_u64().unwrap()
    };
    assert!(first_i(&oldest) < first_i(&current));
}

#[test]
fn one_file_means_truncating_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = RotatingFile::new(&path, 10, 1).unwrap();
    for _ in 0..5 {
        file.write_all(b"12345678\n").unwrap();
    }
    file.flush().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "12345678\n");
}

#[test]
fn bad_paths_and_limits_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created; a path under a regular file cannot be.
    let nested = dir.path().join("new-dir").join("app.log");
    assert!(RotatingFile::new(&nested, 1_000, 2).is_ok());
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let blocked = dir.path().join("not-a-dir").join("app.log");
    let err = RotatingFile::new(&blocked, 1_000, 2).unwrap_err();
    assert!(matches!(err, LogOutputError::OpenFile { .. }));
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    assert!(std::error::Error::source(&err).is_some());

    let err = RotatingFile::new(dir.path().join("app.log"), 1_000, 0).unwrap_err();
    assert!(matches!(
        err,
        LogOutputError::InvalidRotation { max_files: 0, .. }
    ));
}

#[test]
fn a_batch_of_lines_is_split_only_between_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = RotatingFile::new(&path, 25, 3).unwrap();
    // Ten-byte lines: two fit in 25 bytes, the third goes to the next file.
    file.write_all(b"line-0001\nline-0002\nline-0003\nline-0004\nline-0005\n")
        .unwrap();
    file.flush().unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("app.log"), "line-0005\n");
    assert_eq!(read("app.log.1"), "line-0003\nline-0004\n");
    assert_eq!(read("app.log.2"), "line-0001\nline-0002\n");
}
