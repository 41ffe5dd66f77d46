//! The built `stella-telemetry` binary: results on stdout with status 0, errors on stderr
//! with a non-zero status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stella-telemetry");

#[test]
fn the_binary_prints_the_catalogue_and_fails_loudly() {
    let ok = Command::new(BIN).args(["catalogue"]).output().unwrap();
    assert!(ok.status.success());
    assert!(
        String::from_utf8(ok.stdout)
            .unwrap()
            .contains("stella_agents_connected")
    );
    assert!(ok.stderr.is_empty());

    let bad = Command::new(BIN)
        .args(["profile", "diff", "default", "forensik"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty());
    assert!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .contains("unknown profile `forensik`")
    );
}

#[test]
fn the_binary_generates_what_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "all", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("generated/alerts/stellaops-alerts.yaml");
    assert_eq!(
        std::fs::read(dir.path().join("alerts/stellaops-alerts.yaml")).unwrap(),
        std::fs::read(committed).unwrap()
    );
}
