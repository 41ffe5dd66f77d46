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

/// `config check`, through the built binary with an environment of the test's own (the
/// command reads the process environment, as `TelemetryConfig::from_env` does).
mod config_check {
    use std::process::Command;

    const BIN: &str = env!("CARGO_BIN_EXE_stella-telemetry");

    fn check(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let output = Command::new(BIN)
            .args(["config", "check"])
            .args(args)
            .env_clear()
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// The line of `name`, which must be there.
    fn setting<'a>(out: &'a str, name: &str) -> &'a str {
        let prefix = format!("{name} = ");
        out.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{name}` in:\n{out}"))
    }

    #[test]
    fn a_file_and_the_environment_show_where_each_setting_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("telemetry.toml");
        std::fs::write(
            &file,
            "service_name = \"scanner\"\n\
             [batch.spans]\nschedule_delay_ms = 5000\nmax_queue_size = 1000\n\
             [limits]\nspan_event_count = 10\n\
             [otlp]\nendpoint = \"http://127.0.0.1:4317\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let data = dir.path().join("data");
        let vars = [
            ("STELLAOPS_TELEMETRY_PROFILE", "forensic"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "7"),
            ("STELLAOPS_TELEMETRY_DIR", data.to_str().unwrap()),
        ];
        let (code, out, err) = check(&[path], &vars);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.is_empty(), "{err}");
        let from_file = |field: &str| format!("(file {path} field {field})");
        assert_eq!(
            setting(&out, "config_file"),
            format!("config_file = {path}  (argument)")
        );
        assert!(setting(&out, "service.name").ends_with(&from_file("service_name")));
        assert_eq!(
            setting(&out, "profile"),
            "profile = forensic  (env STELLAOPS_TELEMETRY_PROFILE)"
        );
        assert_eq!(
            setting(&out, "log_level"),
            "log_level = debug  (profile forensic)"
        );
        // The variable wins over the file's field, field by field.
        assert_eq!(
            setting(&out, "batch.spans.schedule_delay_ms"),
            "batch.spans.schedule_delay_ms = 200  (env OTEL_BSP_SCHEDULE_DELAY)"
        );
        assert!(
            setting(&out, "batch.spans.max_queue_size")
                .ends_with(&from_file("batch.spans.max_queue_size"))
        );
        assert!(
            setting(&out, "limits.span_event_count")
                .ends_with(&from_file("limits.span_event_count"))
        );
        assert_eq!(
            setting(&out, "limits.span_link_count"),
            "limits.span_link_count = 7  (env OTEL_SPAN_LINK_COUNT_LIMIT)"
        );
        assert_eq!(
            setting(&out, "batch.logs.max_queue_size"),
            "batch.logs.max_queue_size = 65536  (default)"
        );
        assert!(setting(&out, "otlp.traces.endpoint").ends_with(&from_file("otlp.endpoint")));
        assert_eq!(
            setting(&out, "egress.traces"),
            "egress.traces = allowed http://127.0.0.1:4317 by policy open  (default)"
        );
        // Nothing was created: the telemetry directory is only named.
        assert!(!data.exists());

        // Without FILE, the file STELLAOPS_TELEMETRY_CONFIG names is read, the variables over it.
        let mut vars = vars.to_vec();
        vars.push(("STELLAOPS_TELEMETRY_CONFIG", path));
        vars.push(("OTEL_SERVICE_NAME", "billing"));
        let (code, out, err) = check(&[], &vars);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            setting(&out, "config_file"),
            format!("config_file = {path}  (env STELLAOPS_TELEMETRY_CONFIG)")
        );
        assert_eq!(
            setting(&out, "service.name"),
            "service.name = billing  (env OTEL_SERVICE_NAME)"
        );
        assert!(
            setting(&out, "limits.span_event_count")
                .ends_with(&from_file("limits.span_event_count"))
        );
    }

    #[test]
    fn a_bad_value_exits_1_naming_the_variable_or_field_as_build_does() {
        let (code, out, err) = check(&[], &[("OTEL_BSP_MAX_QUEUE_SIZE", "lots")]);
        assert_eq!(code, Some(1));
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with("error: invalid OTEL_BSP_MAX_QUEUE_SIZE `lots`"),
            "{err}"
        );

        // Checked where build() checks it, after the environment was read.
        let (code, _, err) = check(
            &[],
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ],
        );
        assert_eq!(code, Some(1));
        assert!(err.contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
        assert!(err.contains("1.5"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[egress]\nallow = [\"10.0.0.0/99\"]\n").unwrap();
        let (code, _, err) = check(&[file.to_str().unwrap()], &[]);
        assert_eq!(code, Some(1));
        assert!(err.contains("10.0.0.0/99"), "{err}");

        std::fs::write(&file, "servce_name = \"typo\"\n").unwrap();
        let (code, _, err) = check(&[file.to_str().unwrap()], &[]);
        assert_eq!(code, Some(1));
        assert!(err.contains("invalid configuration file"), "{err}");
        assert!(err.contains("servce_name"), "{err}");

        let (code, _, err) = check(&["/nonexistent/telemetry.toml"], &[]);
        assert_eq!(code, Some(1));
        assert!(err.contains("cannot read configuration file"), "{err}");
    }

    #[test]
    fn sealed_mode_shows_the_endpoint_refused_and_the_file_exporter_instead() {
        let (code, out, err) = check(
            &[],
            &[
                ("STELLAOPS_TELEMETRY_SEALED", "true"),
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "http://collector.example.com:4317",
                ),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4317",
                ),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            setting(&out, "sealed"),
            "sealed = true  (env STELLAOPS_TELEMETRY_SEALED)"
        );
        assert_eq!(
            setting(&out, "egress.policy"),
            "egress.policy = loopback-only  (env STELLAOPS_TELEMETRY_SEALED)"
        );
        assert_eq!(
            setting(&out, "egress.traces"),
            "egress.traces = allowed http://127.0.0.1:4317 by policy loopback-only  (env STELLAOPS_TELEMETRY_SEALED)"
        );
        let metrics = setting(&out, "egress.metrics");
        assert!(
            metrics.starts_with(
                "egress.metrics = refused http://collector.example.com:4317 by policy loopback-only: "
            ),
            "{metrics}"
        );
        assert!(
            metrics.contains("replaced by the file exporter (under ./telemetry-data/metrics)"),
            "{metrics}"
        );
        assert!(
            setting(&out, "otlp.metrics.endpoint").ends_with("(env OTEL_EXPORTER_OTLP_ENDPOINT)")
        );

        // The airgap profile seals by itself and exports to files only: nothing to ask.
        let (code, out, _) = check(&[], &[("STELLAOPS_TELEMETRY_PROFILE", "airgap")]);
        assert_eq!(code, Some(0));
        assert_eq!(setting(&out, "sealed"), "sealed = true  (profile airgap)");
        assert_eq!(
            setting(&out, "exporters.traces"),
            "exporters.traces = file  (profile airgap)"
        );
        assert!(!out.contains("egress.traces"), "{out}");
    }

    #[test]
    fn header_values_and_credentials_are_masked() {
        let (code, out, err) = check(
            &[],
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Bearer%20hunter2,x-api-key=s3cr3tvalue",
                ),
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "http://127.0.0.1:4317/?token=abc123secret",
                ),
                ("OTEL_RESOURCE_ATTRIBUTES", "password=pa55word,team=blue"),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        for secret in ["hunter2", "s3cr3tvalue", "abc123secret", "pa55word"] {
            assert!(!out.contains(secret), "{secret} in:\n{out}");
        }
        assert_eq!(
            setting(&out, "otlp.logs.headers"),
            "otlp.logs.headers = authorization=REDACTED, x-api-key=REDACTED  (env OTEL_EXPORTER_OTLP_HEADERS)"
        );
        assert!(setting(&out, "otlp.traces.endpoint").contains("token=REDACTED"));
        assert_eq!(
            setting(&out, "resource.team"),
            "resource.team = blue  (env OTEL_RESOURCE_ATTRIBUTES)"
        );
    }

    #[test]
    fn json_output_parses_with_the_same_settings_and_decisions() {
        let (code, out, err) = check(
            &["--json", "--service", "scanner"],
            &[
                ("STELLAOPS_TELEMETRY_SEALED", "true"),
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "http://collector.example.com:4317",
                ),
                ("OTEL_SDK_DISABLED", "maybe"),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["valid"], true);
        assert_eq!(report["settings"]["service.name"]["value"], "scanner");
        assert_eq!(
            report["settings"]["service.name"]["origin"],
            "argument --service"
        );
        assert_eq!(
            report["settings"]["sealed"]["origin"],
            "env STELLAOPS_TELEMETRY_SEALED"
        );
        let egress = report["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert!(egress.iter().all(|e| e["decision"] == "refused"), "{out}");
        assert_eq!(egress[0]["signal"], "traces");
        assert_eq!(egress[0]["policy"], "loopback-only");
        assert!(
            egress[0]["replaced_by"]
                .as_str()
                .unwrap()
                .contains("file exporter")
        );
        assert!(
            report["warnings"][0]
                .as_str()
                .unwrap()
                .contains("OTEL_SDK_DISABLED")
        );

        let (code, out, err) = check(&["--json"], &[("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert_eq!(code, Some(1));
        let failure: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(failure["valid"], false);
        assert!(
            failure["error"]
                .as_str()
                .unwrap()
                .contains("OTEL_TRACES_EXPORTER"),
            "{out}"
        );
        assert!(err.contains("OTEL_TRACES_EXPORTER"), "{err}");
    }
}
