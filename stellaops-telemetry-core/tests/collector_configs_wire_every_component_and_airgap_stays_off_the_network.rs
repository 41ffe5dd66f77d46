//! Each profile's collector configuration parses, its pipelines use only components it
//! defines and use every one, its numbers come from the profile, and airgap has no network
//! exporter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_norway::Value;
use stellaops_telemetry_core::{
    CREDENTIAL_KEYS, INCIDENT_ATTRIBUTE, ProbabilisticPolicy, Profile, SamplingSite, artefacts,
};

fn parse(profile: &Profile) -> Value {
    let a = artefacts::collector(profile).unwrap();
    assert_eq!(a.file_name, format!("collector-{}.yaml", profile.name));
    serde_norway::from_str(&a.contents).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_mapping()
        .map(|m| m.keys().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn names(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn pipelines_reference_exactly_the_defined_components() {
    for profile in Profile::builtin() {
        let doc = parse(&profile);
        let service = &doc["service"];
        let mut used: Vec<(String, String)> = names(&service["extensions"])
            .into_iter()
            .map(|n| ("extensions".to_owned(), n))
            .collect();
        let pipelines = service["pipelines"].as_mapping().unwrap();
        assert_eq!(pipelines.len(), 3, "{}", profile.name);
        for (_, pipeline) in pipelines {
            for section in ["receivers", "processors", "exporters"] {
                for n in names(&pipeline[section]) {
                    assert!(
                        keys(&doc[section]).contains(&n),
                        "{}: {section} `{n}` is used but not defined",
                        profile.name
                    );
                    used.push((section.to_owned(), n));
                }
            }
            let processors = names(&pipeline["processors"]);
            assert_eq!(
                processors.first().map(String::as_str),
                Some("memory_limiter")
            );
            assert!(processors.contains(&"transform/redact-keys".to_owned()));
        }
        for section in ["extensions", "receivers", "processors", "exporters"] {
            for n in keys(&doc[section]) {
                assert!(
                    used.contains(&(section.to_owned(), n.clone())),
                    "{}: {section} `{n}` is defined but never used",
                    profile.name
                );
            }
        }
        for proto in ["grpc", "http"] {
            let tls = &doc["receivers"]["otlp"]["protocols"][proto]["tls"];
            for field in ["cert_file", "key_file", "client_ca_file"] {
                assert!(
                    tls[field].is_string(),
                    "{}: {proto} receiver lacks mTLS {field}",
                    profile.name
                );
            }
        }
    }
}

#[test]
fn default_and_forensic_export_to_tempo_prometheus_and_loki() {
    for profile in [Profile::default_profile(), Profile::forensic()] {
        let doc = parse(&profile);
        let p = &doc["service"]["pipelines"];
        assert_eq!(names(&p["traces"]["exporters"]), ["otlp/tempo"]);
        assert_eq!(names(&p["metrics"]["exporters"]), ["prometheusremotewrite"]);
        assert_eq!(names(&p["logs"]["exporters"]), ["otlphttp/loki"]);
        let seconds = profile.export_interval_ms / 1000;
        assert_eq!(
            doc["processors"]["batch/metrics"]["timeout"].as_str(),
            Some(&*format!("{seconds}s"))
        );
    }
}

#[test]
fn sampling_numbers_come_from_the_profile() {
    let default = Profile::default_profile();
    let doc = parse(&default);
    let policies = doc["processors"]["tail_sampling"]["policies"]
        .as_sequence()
        .unwrap();
    let by_type = |t: &str| {
        policies
            .iter()
            .find(|p| p["type"].as_str() == Some(t))
            .unwrap()
    };
    assert_eq!(
        by_type("status_code")["status_code"]["status_codes"][0].as_str(),
        Some("ERROR")
    );
    assert_eq!(
        by_type("latency")["latency"]["threshold_ms"].as_u64(),
        Some(default.sampling.slow_threshold_ms)
    );
    assert_eq!(
        by_type("probabilistic")["probabilistic"]["sampling_percentage"].as_f64(),
        Some(default.sampling.base_ratio * 100.0)
    );
    // The SDK's tail sampler decides with the very percentage the collector is given.
    let percentage = by_type("probabilistic")["probabilistic"]["sampling_percentage"]
        .as_f64()
        .unwrap();
    assert_eq!(
        ProbabilisticPolicy::from_percentage(percentage),
        ProbabilisticPolicy::from_ratio(default.sampling.base_ratio)
    );
    let incidents = &by_type("string_attribute")["string_attribute"];
    assert_eq!(incidents["key"].as_str(), Some(INCIDENT_ATTRIBUTE));
    assert_eq!(names(&incidents["values"]), [".+"]);
    assert_eq!(incidents["enabled_regex_matching"].as_bool(), Some(true));

    let forensic = parse(&Profile::forensic());
    let policies = forensic["processors"]["tail_sampling"]["policies"]
        .as_sequence()
        .unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["type"].as_str(), Some("always_sample"));
    assert_eq!(
        forensic["processors"]["batch/metrics"]["timeout"].as_str(),
        Some("10s")
    );
}

#[test]
fn redaction_mirrors_the_sdk_keys_and_value_shapes() {
    let doc = parse(&Profile::default_profile());
    let statements = &doc["processors"]["transform/redact-keys"]["trace_statements"];
    let span = statements
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["context"].as_str() == Some("span"))
        .unwrap();
    let statement = span["statements"][0].as_str().unwrap();
    assert!(statement.starts_with("delete_matching_keys(attributes, \""));
    for key in CREDENTIAL_KEYS {
        let key = key.replace('_', "[_-]");
        assert!(
            statement.contains(&format!("|{key}|"))
                || statement.contains(&format!("({key}|"))
                || statement.contains(&format!("|{key})")),
            "{key} missing from {statement}"
        );
    }
    let redaction = &doc["processors"]["redaction"];
    assert_eq!(redaction["allow_all_keys"].as_bool(), Some(true));
    let blocked = names(&redaction["blocked_values"]);
    for shape in [
        "bearer",
        "basic",
        "eyJ",
        "PRIVATE KEY",
        "://",
        "x-amz-signature",
    ] {
        assert!(
            blocked.iter().any(|b| b.contains(shape)),
            "no blocked value for {shape}"
        );
    }
}

#[test]
fn airgap_has_only_file_exporters() {
    let doc = parse(&Profile::airgap());
    let exporters = keys(&doc["exporters"]);
    assert_eq!(exporters, ["file/traces", "file/metrics", "file/logs"]);
    for name in &exporters {
        let kind = name.split('/').next().unwrap();
        assert_eq!(kind, "file", "network exporter `{name}` in airgap");
        assert!(doc["exporters"][name.as_str()]["endpoint"].is_null());
        assert!(doc["exporters"][name.as_str()]["path"].is_string());
    }
}

#[test]
fn profiles_sampled_in_the_sdk_are_not_sampled_again_by_the_collector() {
    for profile in Profile::builtin() {
        let doc = parse(&profile);
        let traces = names(&doc["service"]["pipelines"]["traces"]["processors"]);
        let sampled_here = traces.contains(&"tail_sampling".to_owned());
        assert_eq!(
            sampled_here,
            profile.sampling.site == SamplingSite::Collector,
            "{}: {traces:?}",
            profile.name
        );
        assert_eq!(
            doc["processors"]["tail_sampling"].is_null(),
            !sampled_here,
            "{}",
            profile.name
        );
    }
    assert_eq!(Profile::airgap().sampling.site, SamplingSite::Sdk);
}
