//! The tenants file becomes Loki and Tempo per-tenant overrides and a Prometheus scrape job
//! that `promtool check config` accepts; a bad file is a typed error naming the tenant and the
//! field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_norway::Value;
use stellaops_telemetry_core::artefacts::{
    self, EXAMPLE_TENANTS, MAX_TENANTS_FILE_BYTES, TenantsError, parse_tenants, storage,
};

fn files() -> Vec<(String, Value)> {
    let tenants = parse_tenants(EXAMPLE_TENANTS).unwrap();
    storage(&tenants, "tenants.example.toml")
        .into_iter()
        .map(|a| {
            (
                a.file_name.clone(),
                serde_norway::from_str(&a.contents).unwrap(),
            )
        })
        .collect()
}

fn file(name: &str) -> Value {
    files().into_iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn loki_overrides_carry_each_tenants_retention_and_limits() {
    let loki = file(artefacts::LOKI_OVERRIDES_FILE);
    let acme = &loki["overrides"]["acme"];
    assert_eq!(acme["retention_period"].as_str(), Some("720h"));
    assert_eq!(acme["ingestion_rate_mb"].as_u64(), Some(8));
    assert_eq!(acme["ingestion_burst_size_mb"].as_u64(), Some(16));
    assert_eq!(acme["max_global_streams_per_user"].as_u64(), Some(10_000));
    // Defaults fill what a tenant leaves out.
    let globex = &loki["overrides"]["globex"];
    assert_eq!(globex["retention_period"].as_str(), Some("2160h"));
    assert_eq!(globex["ingestion_rate_mb"].as_u64(), Some(4));
    assert_eq!(loki["overrides"].as_mapping().unwrap().len(), 3);
}

#[test]
fn tempo_overrides_use_the_scoped_format_in_bytes() {
    let tempo = file(artefacts::TEMPO_OVERRIDES_FILE);
    let acme = &tempo["overrides"]["acme"];
    assert_eq!(
        acme["ingestion"]["rate_limit_bytes"].as_u64(),
        Some(8 * 1024 * 1024)
    );
    assert_eq!(
        acme["ingestion"]["burst_size_bytes"].as_u64(),
        Some(16 * 1024 * 1024)
    );
    assert_eq!(
        acme["ingestion"]["max_traces_per_user"].as_u64(),
        Some(20_000)
    );
    assert_eq!(acme["compaction"]["block_retention"].as_str(), Some("720h"));
    assert_eq!(
        tempo["overrides"]["initech-eu"]["compaction"]["block_retention"].as_str(),
        Some("336h")
    );
}

#[test]
fn the_scrape_job_reaches_the_collector_endpoint_over_tls_with_a_token() {
    let scrape = file(artefacts::PROMETHEUS_SCRAPE_FILE);
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["scheme"].as_str(), Some("https"));
    for key in ["ca_file", "cert_file", "key_file"] {
        assert!(job["tls_config"][key].is_string(), "{key}");
    }
    assert_eq!(job["authorization"]["type"].as_str(), Some("Bearer"));
    assert!(job["authorization"]["credentials_file"].is_string());
    let port = artefacts::SCRAPE_ENDPOINT.rsplit(':').next().unwrap();
    assert_eq!(
        job["dns_sd_configs"][0]["port"]
            .as_u64()
            .map(|p| p.to_string()),
        Some(port.to_owned())
    );
}

/// `promtool check config` on a prometheus.yml made of a global section and the generated
/// scrape jobs, with the certificate and token paths pointed at files that exist.
#[test]
fn promtool_accepts_the_scrape_configuration() {
    let Ok(version) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        println!("promtool is not installed: skipping `promtool check config`");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().to_str().unwrap();
    for name in [
        "ca.crt",
        "client.crt",
        "client.key",
        "collector-scrape.token",
    ] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let generated = storage(&parse_tenants(EXAMPLE_TENANTS).unwrap(), "t.toml")
        .into_iter()
        .find(|a| a.file_name == artefacts::PROMETHEUS_SCRAPE_FILE)
        .unwrap()
        .contents
        .replace("/etc/prometheus/stellaops", secrets);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 30s\n{generated}"),
    )
    .unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const GOOD: &str = "[[tenant]]\nid = \"acme\"\nretention = \"30d\"\n";

fn refused(text: &str) -> TenantsError {
    parse_tenants(text).expect_err(text)
}

#[test]
fn unknown_keys_are_refused_naming_the_tenant_and_field() {
    let e = refused(&format!("{GOOD}retention_days = 30\n"));
    assert!(
        matches!(&e, TenantsError::UnknownField { tenant, field } if tenant == "acme" && field == "retention_days"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "tenant `acme`: unknown field `retention_days`"
    );
    let e = refused(&format!("tenants = 1\n{GOOD}"));
    assert!(
        matches!(&e, TenantsError::UnknownTopLevelKey { key } if key == "tenants"),
        "{e}"
    );
}

#[test]
fn duplicate_and_invalid_ids_are_refused() {
    let e = refused(&format!("{GOOD}{GOOD}"));
    assert!(
        matches!(&e, TenantsError::DuplicateId { tenant } if tenant == "acme"),
        "{e}"
    );
    for id in ["", "Acme", "-acme", "ac me", "acme/x", &"a".repeat(65)] {
        let e = refused(&format!("[[tenant]]\nid = \"{id}\"\nretention = \"30d\"\n"));
        assert!(
            matches!(&e, TenantsError::InvalidId { tenant, .. } if tenant == id),
            "{id:?}: {e}"
        );
    }
    let e = refused("[[tenant]]\nid = 7\nretention = \"30d\"\n");
    assert!(matches!(e, TenantsError::MissingId { index: 1 }), "{e}");
}

#[test]
fn bad_durations_and_limits_name_the_tenant_and_field() {
    for (line, field) in [
        ("retention = \"30 days\"", "retention"),
        ("retention = \"12h\"", "retention"),
        ("retention = 30", "retention"),
        ("retention = \"1y\"", "retention"),
    ] {
        let e = refused(&format!("[[tenant]]\nid = \"acme\"\n{line}\n"));
        assert!(
            matches!(&e, TenantsError::InvalidField { tenant, field: f, .. } if tenant == "acme" && *f == field),
            "{line}: {e}"
        );
    }
    for line in [
        "ingestion_rate_mb = 0",
        "ingestion_rate_mb = -3",
        "ingestion_rate_mb = 2.5",
        "max_streams = \"many\"",
        "max_traces = 99999999999",
    ] {
        let field = line.split(' ').next().unwrap();
        let e = refused(&format!("{GOOD}{line}\n"));
        assert!(
            matches!(&e, TenantsError::InvalidField { tenant, field: f, .. } if tenant == "acme" && *f == field),
            "{line}: {e}"
        );
    }
    let e = refused("[[tenant]]\nid = \"acme\"\n");
    assert!(
        matches!(&e, TenantsError::MissingField { tenant, field: "retention" } if tenant == "acme"),
        "{e}"
    );
}

#[test]
fn empty_malformed_and_oversized_files_are_refused() {
    assert!(matches!(refused(""), TenantsError::NoTenant));
    assert!(matches!(refused("tenant = []\n"), TenantsError::NoTenant));
    assert!(matches!(refused("tenant = 3\n"), TenantsError::NoTenant));
    assert!(matches!(refused("[[tenant]\n"), TenantsError::Toml(_)));
    assert!(matches!(
        refused("tenant = [1]\n"),
        TenantsError::NotATable { index: 1 }
    ));
    let huge = format!("{GOOD}#{}\n", "x".repeat(MAX_TENANTS_FILE_BYTES));
    assert!(matches!(refused(&huge), TenantsError::TooLarge { .. }));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    assert!(matches!(
        artefacts::read_tenants(&path),
        Err(TenantsError::Read { .. })
    ));
}

#[test]
fn many_tenants_parse_in_one_pass() {
    let mut text = String::new();
    for i in 0..artefacts::MAX_TENANTS {
        text.push_str(&format!("[[tenant]]\nid = \"t{i}\"\nretention = \"7d\"\n"));
    }
    assert_eq!(parse_tenants(&text).unwrap().len(), artefacts::MAX_TENANTS);
    text.push_str("[[tenant]]\nid = \"one-more\"\nretention = \"7d\"\n");
    assert!(matches!(
        refused(&text),
        TenantsError::TooManyTenants { .. }
    ));
}
