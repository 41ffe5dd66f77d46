//! `stella-telemetry` through its library entry point: profiles, the catalogue, generation,
//! help, and errors on stderr with a non-zero status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stellaops_telemetry_core::cli::{self, FAILURE, SUCCESS, USAGE};

fn run(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut all = vec!["stella-telemetry"];
    all.extend_from_slice(args);
    let code = cli::run(all, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn profile_list_show_and_diff() {
    let (code, out, err) = run(&["profile", "list"]);
    assert_eq!((code, err.as_str()), (SUCCESS, ""));
    for name in ["default", "forensic", "airgap"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{out}");
    }
    assert!(out.contains("sealed"));

    let (code, out, _) = run(&["profile", "show", "forensic"]);
    assert_eq!(code, SUCCESS);
    let profile: stellaops_telemetry_core::Profile = serde_json::from_str(&out).unwrap();
    assert_eq!(profile, stellaops_telemetry_core::Profile::forensic());

    let (code, out, _) = run(&["profile", "diff", "default", "airgap"]);
    assert_eq!(code, SUCCESS);
    assert!(out.contains("sealed: false -> true"), "{out}");

    let (code, out, _) = run(&["profile", "diff", "forensic", "forensic"]);
    assert_eq!(code, SUCCESS);
    assert!(out.contains("are the same"));
}

#[test]
fn unknown_profiles_fail_on_stderr() {
    let (code, out, err) = run(&["profile", "show", "forensik"]);
    assert_eq!(code, FAILURE);
    assert!(out.is_empty());
    assert!(err.contains("unknown profile `forensik`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "generate",
        "collector",
        "--profile",
        "nope",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, FAILURE);
    assert!(err.contains("unknown profile `nope`"), "{err}");
}

#[test]
fn catalogue_prints_a_table_or_json() {
    let (code, out, _) = run(&["catalogue"]);
    assert_eq!(code, SUCCESS);
    let header = out.lines().next().unwrap();
    for column in ["NAME", "KIND", "UNIT", "LABELS", "HELP"] {
        assert!(header.contains(column));
    }
    let row = out
        .lines()
        .find(|l| l.starts_with("stellaops_request_total "))
        .unwrap();
    assert!(
        row.contains("counter") && row.contains("service,status") && row.contains("Request count"),
        "{row}"
    );
    let span = out.lines().find(|l| l.starts_with("scan.image ")).unwrap();
    assert!(span.ends_with("imageRef,digest"), "{span}");

    let (code, out, _) = run(&["catalogue", "--json"]);
    assert_eq!(code, SUCCESS);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let count = stellaops_telemetry_core::metrics::catalogue::all().count();
    assert_eq!(json["metrics"].as_array().unwrap().len(), count);
    assert_eq!(
        json["metrics"][0]["name"],
        "stellaops_request_duration_seconds"
    );
    assert_eq!(json["spans"].as_array().unwrap().len(), 12);
    assert_eq!(json["spans"][2]["name"], "policy.evaluate");
    assert_eq!(json["spans"][2]["attributes"][0], "policyId");
}

#[test]
fn generate_writes_each_kind_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = |sub: &str| dir.path().join(sub).to_str().unwrap().to_owned();

    let (code, out, _) = run(&["generate", "rules", "--out", &path("rules")]);
    assert_eq!(code, SUCCESS);
    assert_eq!(out.lines().count(), 6);
    assert!(dir.path().join("rules/stellaops-alerts.yaml").is_file());
    assert!(dir.path().join("rules/stellaops-slo.test.yaml").is_file());
    assert!(
        dir.path()
            .join("rules/stellaops-telemetry-stack.yaml")
            .is_file()
    );
    assert!(
        dir.path()
            .join("rules/stellaops-alerts.test.yaml")
            .is_file()
    );

    let (code, _, _) = run(&["generate", "dashboards", "--out", &path("dash")]);
    assert_eq!(code, SUCCESS);
    assert_eq!(
        std::fs::read_dir(dir.path().join("dash")).unwrap().count(),
        6
    );

    let (code, out, _) = run(&["generate", "alertmanager", "--out", &path("am")]);
    assert_eq!(code, SUCCESS);
    assert_eq!(out.lines().count(), 1);
    assert!(dir.path().join("am/alertmanager.yaml").is_file());

    let (code, _, _) = run(&[
        "generate",
        "collector",
        "--profile",
        "airgap",
        "--out",
        &path("one"),
    ]);
    assert_eq!(code, SUCCESS);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("one"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["collector-airgap.yaml"]);

    // Each profile's collector, and the two tiers of the one that tail-samples in a collector.
    let (code, out, _) = run(&["generate", "collector", "--out", &path("all-profiles")]);
    assert_eq!(code, SUCCESS);
    assert_eq!(out.lines().count(), 5);

    let (code, out, _) = run(&["generate", "all", "--out", &path("all")]);
    assert_eq!(code, SUCCESS);
    assert_eq!(
        out.lines().count(),
        stellaops_telemetry_core::artefacts::all().unwrap().len()
    );
    assert!(
        dir.path()
            .join("all/alertmanager/alertmanager.yaml")
            .exists()
    );
    assert!(
        dir.path()
            .join("all/storage/tempo-overrides.yaml")
            .is_file()
    );
    assert!(
        dir.path()
            .join("all/collector/collector-forensic.yaml")
            .is_file()
    );
}

#[test]
fn every_command_has_help_and_bad_usage_exits_2() {
    for args in [
        &["--help"][..],
        &["profile", "--help"],
        &["profile", "list", "--help"],
        &["profile", "show", "--help"],
        &["profile", "diff", "--help"],
        &["generate", "--help"],
        &["generate", "rules", "--help"],
        &["generate", "dashboards", "--help"],
        &["generate", "collector", "--help"],
        &["generate", "storage", "--help"],
        &["generate", "alertmanager", "--help"],
        &["generate", "all", "--help"],
        &["catalogue", "--help"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, SUCCESS, "{args:?}: {err}");
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    let (code, out, err) = run(&["generate", "rules"]);
    assert_eq!(code, USAGE);
    assert!(out.is_empty());
    assert!(err.contains("--out"), "{err}");
    let (code, _, err) = run(&["frobnicate"]);
    assert_eq!(code, USAGE);
    assert!(err.contains("frobnicate"));
}

#[test]
fn generate_storage_writes_the_overrides_or_names_the_bad_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        stellaops_telemetry_core::artefacts::EXAMPLE_TENANTS,
    )
    .unwrap();
    let out_dir = dir.path().join("storage");
    let (code, out, _) = run(&[
        "generate",
        "storage",
        "--tenants",
        tenants.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, SUCCESS);
    assert_eq!(out.lines().count(), 3);
    let loki = std::fs::read_to_string(out_dir.join("loki-overrides.yaml")).unwrap();
    assert!(loki.contains("--tenants tenants.toml"), "{loki}");

    std::fs::write(
        &tenants,
        "[[tenant]]\nid = \"acme\"\nretention = \"30 days\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "generate",
        "storage",
        "--tenants",
        tenants.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, FAILURE);
    assert!(out.is_empty());
    assert!(err.contains("tenant `acme`: invalid `retention`"), "{err}");

    let missing = dir.path().join("absent.toml");
    let (code, _, err) = run(&[
        "generate",
        "storage",
        "--tenants",
        missing.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, FAILURE);
    assert!(err.contains("cannot read the tenants file"), "{err}");
}
