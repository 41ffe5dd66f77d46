//! Every configuration error is a typed error from `build()` naming the setting and value,
//! and no error, Debug output or quickstart output ever shows a credential it was handed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::env as env_support;
use env_support::env_config;

use stellaops_telemetry_core::{
    ConfigError, ExporterKind, OtlpProtocol, Telemetry, TelemetryConfig, TelemetryError,
};

fn build_err(builder: stellaops_telemetry_core::TelemetryBuilder) -> String {
    match builder.stdout_logs(false).build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_profile_is_named() {
    let msg = build_err(Telemetry::builder("svc").profile_name("forensik"));
    assert_eq!(
        msg,
        "unknown profile `forensik` (expected one of default, forensic, airgap)"
    );
    let msg = build_err(
        Telemetry::builder("svc").config(env_config(&[("STELLAOPS_TELEMETRY_PROFILE", "chaos")])),
    );
    assert!(
        msg.contains("STELLAOPS_TELEMETRY_PROFILE") && msg.contains("chaos"),
        "{msg}"
    );
}

#[test]
fn malformed_endpoint_names_its_variable() {
    let msg = build_err(Telemetry::builder("svc").config(env_config(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "collector:4317",
    )])));
    assert!(
        msg.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && msg.contains("collector:4317"),
        "{msg}"
    );
    let msg = build_err(Telemetry::builder("svc").otlp_endpoint("ftp://collector.invalid"));
    assert!(msg.contains("TelemetryBuilder::otlp_endpoint"), "{msg}");
}

#[test]
fn unreadable_certificate_names_its_variable_and_path() {
    let err = Telemetry::builder("svc")
        .stdout_logs(false)
        .config(env_config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]))
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        TelemetryError::Config(ConfigError::UnreadableCertificate { .. })
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && msg.contains("/nonexistent/ca.pem"),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let msg = build_err(Telemetry::builder("svc").otlp_certificate(&not_pem));
    assert!(msg.contains("no PEM block"), "{msg}");
}

#[test]
fn bad_header_syntax_is_named_without_its_value() {
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        "authorization Bearer s3cr3t".to_owned(),
    );
    let err = TelemetryConfig::from_lookup(|k| map.get(k).cloned()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    let msg = build_err(
        Telemetry::builder("svc")
            .exporters(&[ExporterKind::Otlp])
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_header("bad name", "s3cr3t"),
    );
    assert!(msg.contains("bad name") && !msg.contains("s3cr3t"), "{msg}");
}

#[test]
fn sampler_argument_out_of_range_is_named() {
    let msg = build_err(Telemetry::builder("svc").config(env_config(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ])));
    assert_eq!(
        msg,
        "invalid OTEL_TRACES_SAMPLER_ARG `1.5`: expected a ratio between 0.0 and 1.0"
    );
    let msg = build_err(Telemetry::builder("svc").sampler("coinflip", None));
    assert!(
        msg.contains("TelemetryBuilder::sampler") && msg.contains("coinflip"),
        "{msg}"
    );
}

#[test]
fn an_empty_service_name_is_refused() {
    let msg = build_err(Telemetry::builder("  "));
    assert!(msg.contains("service name"), "{msg}");
}

/// The password every case below hides somewhere; it must never be printed.
const PASSWORD: &str = "hunter2";

/// Endpoints that are refused, each with its password, and the masked form the error names.
const BAD_ENDPOINTS: [(&str, &str); 3] = [
    (
        "http://user:hunter2@192.0.2.1:4317",
        "`http://REDACTED:REDACTED@192.0.2.1:4317`",
    ),
    (
        "http://user:hunter2@[bad",
        "`http://REDACTED:REDACTED@[bad`",
    ),
    (
        "http://user:hun/ter2@127.0.0.1:4317",
        "`http://REDACTED:REDACTED@127.0.0.1:4317`",
    ),
];

/// Display, alternate Display, Debug and pretty Debug of `err`: none holds the password, the
/// Display names `what` and `masked`.
fn assert_masked(err: &dyn std::fmt::Debug, display: String, what: &str, masked: &str) {
    for shown in [display.clone(), format!("{err:?}"), format!("{err:#?}")] {
        assert!(!shown.contains(PASSWORD), "the password leaked: {shown}");
        assert!(!shown.contains("hun/ter2"), "the password leaked: {shown}");
    }
    assert!(display.contains(what), "{display}");
    assert!(display.contains(masked), "{display}");
}

fn sealed_otlp(builder: stellaops_telemetry_core::TelemetryBuilder) -> TelemetryError {
    match builder
        .exporters(&[ExporterKind::Otlp])
        .sealed(true)
        .stdout_logs(false)
        .build()
    {
        Ok(_) => panic!("a bad endpoint was accepted"),
        Err(e) => e,
    }
}

#[test]
fn a_rejected_endpoints_password_never_appears_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    for (url, masked) in BAD_ENDPOINTS {
        // The environment, shared and per signal.
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let err = sealed_otlp(Telemetry::builder("svc").config(env_config(&[(var, url)])));
            assert_masked(&err, err.to_string(), var, masked);
        }
        // A configuration file, TOML and JSON, read directly and through the environment.
        let toml = dir.path().join("telemetry.toml");
        std::fs::write(&toml, format!("[otlp]\nendpoint = \"{url}\"\n")).unwrap();
        let json = dir.path().join("telemetry.json");
        std::fs::write(&json, format!("{{\"otlp\": {{\"endpoint\": \"{url}\"}}}}")).unwrap();
        for file in [&toml, &json] {
            let config = TelemetryConfig::from_file(file).unwrap();
            let debug = format!("{config:?}");
            assert!(!debug.contains(PASSWORD), "{debug}");
            let err = sealed_otlp(Telemetry::builder("svc").config(config));
            assert_masked(&err, err.to_string(), "otlp.endpoint", masked);
            let path = file.display().to_string();
            let via_env = env_config(&[("STELLAOPS_TELEMETRY_CONFIG", path.as_str())]);
            let err = sealed_otlp(Telemetry::builder("svc").config(via_env));
            assert_masked(&err, err.to_string(), "otlp.endpoint", masked);
        }
        // The builder, whose Debug shows its configuration.
        let builder = Telemetry::builder("svc").otlp_endpoint(url);
        let debug = format!("{builder:?}");
        assert!(!debug.contains(PASSWORD), "{debug}");
        let err = sealed_otlp(builder);
        assert_masked(
            &err,
            err.to_string(),
            "TelemetryBuilder::otlp_endpoint",
            masked,
        );
        // Outside sealed mode too.
        let err = Telemetry::builder("svc")
            .exporters(&[ExporterKind::Otlp])
            .otlp_endpoint(url)
            .stdout_logs(false)
            .build()
            .unwrap_err();
        assert_masked(
            &err,
            err.to_string(),
            "TelemetryBuilder::otlp_endpoint",
            masked,
        );
    }
}

#[test]
fn header_values_never_appear_in_errors_or_debug_output() {
    let config = env_config(&[
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer hunter2,x-tenant=acme",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://user:hunter2@192.0.2.1:4317",
        ),
    ]);
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("authorization"), "{debug}");
    let builder = Telemetry::builder("svc")
        .config(config)
        .otlp_header("x-api-key", "hunter2");
    let debug = format!("{builder:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    let err = sealed_otlp(builder);
    assert_masked(
        &err,
        err.to_string(),
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "REDACTED:REDACTED@192.0.2.1",
    );
    // A malformed list: `:` written for `=` puts the credential where the name should be.
    for headers in [
        "authorization:Basic aHVudGVyMg==",
        "authorization Bearer hunter2",
        "authorization=Bearer%ZZhunter2",
    ] {
        let err = TelemetryConfig::from_lookup(|k| {
            (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| headers.to_owned())
        })
        .unwrap_err();
        let display = err.to_string();
        for shown in [display.clone(), format!("{err:?}")] {
            assert!(!shown.contains(PASSWORD), "{shown}");
            assert!(!shown.contains("aHVudGVyMg"), "{shown}");
        }
        assert!(display.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{display}");
    }
}

#[test]
fn a_config_syntax_error_gives_the_position_and_never_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "telemetry.toml",
            "sealed = true\n[otlp]\nendpoint = \"http://user:hunter2@192.0.2.1:4317\n",
            "line 3, column",
        ),
        (
            "telemetry.toml",
            "[otlp]\nheaders = \"authorization=Bearer hunter2\"\n",
            // `[otlp]` holds flattened settings, for which the parser knows no position.
            ": invalid type: string, expected a map",
        ),
        (
            "telemetry.toml",
            "[otlp.headers]\nauthorization = Bearer hunter2\n",
            "line 2, column 17: string values must be quoted",
        ),
        (
            "telemetry.toml",
            "[exporters]\ntraces = \"hunter2\"\n",
            "line 2, column 10: invalid type: string, expected a sequence",
        ),
        (
            "telemetry.json",
            "{\"otlp\": {\"endpoint\": \"http://user:hunter2@192.0.2.1:4317}}",
            "line 1, column",
        ),
        (
            "telemetry.json",
            "{\"otlp\": {\"headers\": \"authorization=Bearer hunter2\"}}",
            "line 1, column 52: invalid type: string, expected a map",
        ),
    ];
    for (name, text, position) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = TelemetryConfig::from_file(&path).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidFile { .. }), "{err:?}");
        let display = err.to_string();
        for shown in [display.clone(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!shown.contains(PASSWORD), "{name} {text:?}: {shown}");
        }
        assert!(display.contains(position), "{display}");
        assert!(display.contains(&path.display().to_string()), "{display}");
    }
    let err = TelemetryConfig::from_toml_str("[exporters]\nlogs = 'Bearer hunter2'\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration file `<string>`: line 2, column 8: invalid type: string, \
         expected a sequence"
    );
}

/// The quickstart example as built next to this test (`cargo test --workspace` and
/// `cargo build --example quickstart` build it).
fn quickstart() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> → target/<profile>/examples/quickstart
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --example quickstart` (`cargo test \
         --workspace` builds it too)",
        bin.display()
    );
    bin
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Runs the quickstart in a fresh directory with only `vars` set; returns whether it
/// succeeded, its stdout and stderr, after checking that no output and no file it wrote
/// holds the password.
fn run_quickstart(vars: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(quickstart())
        .env_clear()
        .current_dir(dir.path())
        .env("STELLAOPS_TELEMETRY_DIR", dir.path().join("telemetry"))
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stdout.contains(PASSWORD), "{vars:?}: stdout: {stdout}");
    assert!(!stderr.contains(PASSWORD), "{vars:?}: stderr: {stderr}");
    for file in files_under(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "{vars:?}: {} holds the password",
            file.display()
        );
    }
    (out.status.success(), stdout, stderr)
}

#[test]
fn the_quickstart_never_prints_or_writes_a_rejected_password() {
    let sealed_otlp = [
        ("STELLAOPS_TELEMETRY_SEALED", "true"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer hunter2"),
    ];
    // Refused at start-up: the error names the variable and the masked URL.
    for (url, masked) in BAD_ENDPOINTS {
        let mut vars = sealed_otlp.to_vec();
        vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", url));
        let (ok, _, stderr) = run_quickstart(&vars);
        assert!(!ok, "{url} was accepted");
        assert!(stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{stderr}");
        assert!(stderr.contains(masked.trim_matches('`')), "{stderr}");
    }
    // A configuration file whose bad line holds the password.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.toml");
    std::fs::write(
        &file,
        "[otlp]\nendpoint = \"http://user:hunter2@192.0.2.1:4317\nsealed = true\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let (ok, _, stderr) = run_quickstart(&[("STELLAOPS_TELEMETRY_CONFIG", path.as_str())]);
    assert!(!ok);
    assert!(stderr.contains("line 2, column"), "{stderr}");
    // Refused by the egress policy: the service runs on files and warns, masking the
    // endpoint's query values wherever the warning goes (stdout, the OTLP log files).
    let mut vars = sealed_otlp.to_vec();
    vars.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://192.0.2.1:4317/?sig=hunter2",
    ));
    let (ok, stdout, stderr) = run_quickstart(&vars);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("\"endpoint\":\"http://192.0.2.1:4317/?sig=REDACTED\""),
        "{stdout}"
    );
}
