//! Each profile's collector configuration parses, its pipelines use only components it
//! defines and use every one, its numbers come from the profile, and airgap has no network
//! exporter. Tenants travel as client metadata to `X-Scope-OrgID`, and through tail sampling
//! on the spans to a Tempo exporter per tenant; backends get Authority tokens, and the
//! two-tier variant routes by trace id to a tier that tail-samples.
//! (Checked structurally: no collector binary runs here.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_norway::Value;
use stellaops_telemetry_core::artefacts::TenantRoutes;
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
        for (name, pipeline) in pipelines {
            for section in ["receivers", "processors", "exporters"] {
                for n in names(&pipeline[section]) {
                    let defined = keys(&doc[section]).contains(&n)
                        || (section != "processors" && keys(&doc["connectors"]).contains(&n));
                    assert!(
                        defined,
                        "{}: {section} `{n}` is used but not defined",
                        profile.name
                    );
                    used.push((section.to_owned(), n));
                }
            }
            // The signal pipelines; the tenant routes after tail sampling only batch.
            let name = name.as_str().unwrap();
            if name.contains('/') {
                assert_eq!(names(&pipeline["processors"]), ["batch"], "{name}");
                continue;
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
        // Tail-sampled here: Tempo through the tenant router.
        assert_eq!(names(&p["traces"]["exporters"]), ["routing/tenant"]);
        assert_eq!(
            names(&p["traces/fallback"]["exporters"]),
            ["otlp/tempo-fallback"]
        );
        assert_eq!(
            names(&p["metrics"]["exporters"]),
            ["prometheusremotewrite", "prometheus"]
        );
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

fn doc_of(a: &artefacts::Artefact) -> Value {
    serde_norway::from_str(&a.contents)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", a.file_name))
}

/// Every component a pipeline names is defined, every defined one is named, and every
/// authenticator an exporter names is a running extension.
fn assert_wired(file: &str, doc: &Value) {
    let service = &doc["service"];
    let extensions = names(&service["extensions"]);
    assert_eq!(keys(&doc["extensions"]), extensions, "{file}");
    let connectors = keys(&doc["connectors"]);
    let mut used: Vec<(String, String)> = Vec::new();
    for (_, pipeline) in service["pipelines"].as_mapping().unwrap() {
        for section in ["receivers", "processors", "exporters"] {
            for n in names(&pipeline[section]) {
                if section != "processors" && connectors.contains(&n) {
                    // A connector ends one pipeline and starts others.
                    used.push((format!("connectors as {section}"), n));
                    continue;
                }
                assert!(keys(&doc[section]).contains(&n), "{file}: `{n}` undefined");
                used.push((section.to_owned(), n));
            }
        }
    }
    for section in ["receivers", "processors", "exporters"] {
        for n in keys(&doc[section]) {
            assert!(
                used.contains(&(section.to_owned(), n.clone())),
                "{file}: {section} `{n}` unused"
            );
        }
    }
    for n in &connectors {
        for side in ["receivers", "exporters"] {
            assert!(
                used.contains(&(format!("connectors as {side}"), n.clone())),
                "{file}: connector `{n}` is not among any pipeline's {side}"
            );
        }
    }
    for (name, exporter) in doc["exporters"].as_mapping().unwrap() {
        let auth = exporter["auth"]["authenticator"]
            .as_str()
            .or_else(|| exporter["protocol"]["otlp"]["auth"]["authenticator"].as_str());
        if let Some(auth) = auth {
            assert!(
                extensions.contains(&auth.to_owned()),
                "{file}: {name:?} names `{auth}`, not an extension"
            );
        }
    }
}

#[test]
fn every_generated_yaml_parses_and_every_collector_file_is_wired() {
    let all = artefacts::all().unwrap();
    let mut yaml = 0;
    for a in &all {
        if a.file_name.ends_with(".yaml") {
            let doc = doc_of(a);
            yaml += 1;
            if a.kind == artefacts::ArtefactKind::Collector {
                assert_wired(&a.file_name, &doc);
            }
        }
    }
    // Rules, rule tests, five collector files and three storage files at least.
    assert!(yaml >= 10, "{yaml}");
}

#[test]
fn every_receiver_keeps_client_metadata_and_every_batch_splits_by_tenant() {
    for a in artefacts::collectors(&Profile::builtin(), TenantRoutes::NONE).unwrap() {
        let doc = doc_of(&a);
        for proto in ["grpc", "http"] {
            assert_eq!(
                doc["receivers"]["otlp"]["protocols"][proto]["include_metadata"].as_bool(),
                Some(true),
                "{}: {proto}",
                a.file_name
            );
        }
        let mut batches = 0;
        for (name, processor) in doc["processors"].as_mapping().unwrap() {
            if !name.as_str().unwrap().starts_with("batch") {
                continue;
            }
            batches += 1;
            assert_eq!(
                names(&processor["metadata_keys"]),
                [artefacts::TENANT_METADATA_KEY],
                "{}",
                a.file_name
            );
            let limit = processor["metadata_cardinality_limit"].as_u64().unwrap();
            assert!((1..=10_000).contains(&limit), "{}: {limit}", a.file_name);
        }
        assert!(batches >= 1, "{}", a.file_name);
        // The collector's own metrics, pulled by Prometheus.
        let reader =
            &doc["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"];
        assert_eq!(reader["port"].as_u64(), Some(8888), "{}", a.file_name);
        assert!(reader["host"].is_string());
        assert!(
            a.contents
                .lines()
                .take(8)
                .any(|l| l.starts_with("# Written for OpenTelemetry Collector Contrib v")),
            "{}",
            a.file_name
        );
    }
}

#[test]
fn networked_profiles_send_the_tenant_and_authority_tokens_to_the_backends() {
    // Sampled in the SDK: the collector keeps the request's metadata up to Tempo too.
    let mut sdk_sampled = Profile::default_profile();
    sdk_sampled.sampling.site = SamplingSite::Sdk;
    let doc = parse(&sdk_sampled);
    assert!(doc["connectors"].is_null());
    assert_eq!(
        names(&doc["service"]["pipelines"]["traces"]["exporters"]),
        ["otlp/tempo"]
    );
    for profile in [Profile::default_profile(), Profile::forensic(), sdk_sampled] {
        let doc = parse(&profile);
        let exporters = &doc["exporters"];
        let mut setters = vec![("otlphttp/loki", "headers_setter/loki", "loki.token")];
        if profile.sampling.site == SamplingSite::Sdk {
            setters.push(("otlp/tempo", "headers_setter/tempo", "tempo.token"));
        }
        for (backend, setter, token) in setters {
            assert_eq!(
                exporters[backend]["auth"]["authenticator"].as_str(),
                Some(setter),
                "{backend}"
            );
            assert!(exporters[backend]["tls"]["cert_file"].is_string());
            let headers = &doc["extensions"][setter]["headers"];
            assert_eq!(headers[0]["key"].as_str(), Some("X-Scope-OrgID"));
            assert_eq!(
                headers[0]["from_context"].as_str(),
                Some(artefacts::TENANT_METADATA_KEY)
            );
            // A request without a tenant is stored under the fallback, not refused.
            assert_eq!(
                headers[0]["default_value"].as_str(),
                Some(artefacts::FALLBACK_TENANT)
            );
            assert_eq!(headers[1]["key"].as_str(), Some("Authorization"));
            let value = headers[1]["value"].as_str().unwrap();
            assert!(
                value.starts_with("Bearer ${file:/") && value.ends_with(&format!("{token}}}")),
                "{value}"
            );
        }
        let remote_write = &exporters["prometheusremotewrite"];
        let token = remote_write["auth"]["authenticator"].as_str().unwrap();
        assert!(token.starts_with("bearertokenauth"));
        assert!(
            doc["extensions"][token]["filename"]
                .as_str()
                .unwrap()
                .ends_with(".token")
        );
        assert!(remote_write["tls"]["key_file"].is_string());

        let scrape = &exporters["prometheus"];
        assert_eq!(scrape["endpoint"].as_str(), Some("0.0.0.0:9464"));
        assert_eq!(artefacts::SCRAPE_ENDPOINT, "0.0.0.0:9464");
        assert!(scrape["tls"]["client_ca_file"].is_string());
        assert_eq!(
            scrape["resource_to_telemetry_conversion"]["enabled"].as_bool(),
            Some(true)
        );
        let check = scrape["auth"]["authenticator"].as_str().unwrap();
        assert!(doc["extensions"][check]["filename"].is_string());
    }
    // Sealed: no extension that talks to a backend.
    let airgap = parse(&Profile::airgap());
    assert_eq!(keys(&airgap["extensions"]), ["health_check"]);
}

#[test]
fn the_two_tier_variant_routes_whole_traces_to_the_tail_sampling_tier() {
    let default = Profile::default_profile();
    let tiers = artefacts::collector_tiers(&default, TenantRoutes::NONE).unwrap();
    let files: Vec<&str> = tiers.iter().map(|a| a.file_name.as_str()).collect();
    assert_eq!(
        files,
        [
            "collector-default-tier1-loadbalancer.yaml",
            "collector-default-tier2-sampling.yaml"
        ]
    );
    let (first, second) = (doc_of(&tiers[0]), doc_of(&tiers[1]));

    let p = &first["service"]["pipelines"];
    assert_eq!(names(&p["traces"]["exporters"]), ["loadbalancing"]);
    assert!(!names(&p["traces"]["processors"]).contains(&"tail_sampling".to_owned()));
    assert!(first["processors"]["tail_sampling"].is_null());
    // Metrics and logs need no trace affinity: straight to the backends.
    assert_eq!(names(&p["logs"]["exporters"]), ["otlphttp/loki"]);
    let lb = &first["exporters"]["loadbalancing"];
    assert_eq!(lb["routing_key"].as_str(), Some("traceID"));
    assert!(lb["resolver"]["dns"]["hostname"].is_string());
    assert!(lb["protocol"]["otlp"]["tls"]["cert_file"].is_string());
    let relay = lb["protocol"]["otlp"]["auth"]["authenticator"]
        .as_str()
        .unwrap();
    assert_eq!(
        first["extensions"][relay]["headers"][0]["key"].as_str(),
        Some(artefacts::TENANT_METADATA_KEY)
    );

    let p = &second["service"]["pipelines"];
    assert!(
        keys(p).iter().all(|k| k.starts_with("traces")),
        "{:?}",
        keys(p)
    );
    let processors = names(&p["traces"]["processors"]);
    assert_eq!(
        processors.first().map(String::as_str),
        Some("memory_limiter")
    );
    assert!(processors.contains(&"tail_sampling".to_owned()));
    assert_eq!(names(&p["traces"]["exporters"]), ["routing/tenant"]);
    // The very sampling of the single collector.
    assert_eq!(
        second["processors"]["tail_sampling"],
        parse(&default)["processors"]["tail_sampling"]
    );
    assert_eq!(
        second["receivers"]["otlp"]["protocols"]["grpc"]["include_metadata"].as_bool(),
        Some(true)
    );

    // Forensic keeps every trace and airgap samples in the SDK: one tier is enough.
    assert!(
        artefacts::collector_tiers(&Profile::forensic(), TenantRoutes::NONE)
            .unwrap()
            .is_empty()
    );
    assert!(
        artefacts::collector_tiers(&Profile::airgap(), TenantRoutes::NONE)
            .unwrap()
            .is_empty()
    );
}

mod tenants_through_tail_sampling {
    use super::*;

    fn tenants() -> Vec<artefacts::Tenant> {
        artefacts::parse_tenants(artefacts::EXAMPLE_TENANTS).unwrap()
    }

    fn routed(profile: &Profile, tenants: &[artefacts::Tenant]) -> Value {
        let routes = TenantRoutes {
            tenants,
            source: "tenants.toml",
        };
        let a = artefacts::collector_for(profile, routes).unwrap();
        // The header names where the routes come from, where there are routes.
        if doc_of(&a)["connectors"].is_mapping() && !tenants.is_empty() {
            let from = format!("({} from tenants.toml)", tenants.len());
            assert!(a.contents.contains(&from), "{}", a.contents);
        }
        doc_of(&a)
    }

    #[test]
    fn the_tenant_header_is_copied_onto_each_span_before_tail_sampling() {
        let doc = routed(&Profile::default_profile(), &tenants());
        let traces = names(&doc["service"]["pipelines"]["traces"]["processors"]);
        let at = |p: &str| traces.iter().position(|n| n == p).unwrap();
        assert_eq!(
            at("attributes/tenant") + 1,
            at("tail_sampling"),
            "{traces:?}"
        );
        // The batches are made per route, after the router.
        assert!(!traces.contains(&"batch".to_owned()));
        // The header is the only source: a span's own `tenant.id` goes first.
        let actions = &doc["processors"]["attributes/tenant"]["actions"];
        assert_eq!(actions[0]["key"].as_str(), Some("tenant.id"));
        assert_eq!(actions[0]["action"].as_str(), Some("delete"));
        let action = &actions[1];
        assert_eq!(action["key"].as_str(), Some("tenant.id"));
        assert_eq!(
            action["from_context"].as_str(),
            Some(&*format!("metadata.{}", artefacts::TENANT_METADATA_KEY))
        );
        assert_eq!(action["action"].as_str(), Some("upsert"));
        assert!(actions[2].is_null());
    }

    #[test]
    fn each_listed_tenant_gets_a_route_and_a_tempo_exporter_sending_its_org_id() {
        let tenants = tenants();
        let doc = routed(&Profile::default_profile(), &tenants);
        let router = &doc["connectors"]["routing/tenant"];
        let table = router["table"].as_sequence().unwrap();
        assert_eq!(table.len(), tenants.len() + 1);
        let pipelines = &doc["service"]["pipelines"];
        for (route, tenant) in table.iter().zip(&tenants) {
            assert_eq!(route["context"].as_str(), Some("span"));
            assert_eq!(
                route["condition"].as_str().unwrap(),
                format!("attributes[\"tenant.id\"] == \"{}\"", tenant.id)
            );
            let pipeline = format!("traces/tenant-{}", tenant.id);
            assert_eq!(names(&route["pipelines"]), std::slice::from_ref(&pipeline));
            assert_eq!(
                names(&pipelines[&*pipeline]["receivers"]),
                ["routing/tenant"]
            );
            let exporter = names(&pipelines[&*pipeline]["exporters"]);
            assert_eq!(exporter, [format!("otlp/tempo-tenant-{}", tenant.id)]);
            let definition = &doc["exporters"][&*exporter[0]];
            assert_eq!(
                definition["headers"]["X-Scope-OrgID"].as_str(),
                Some(&*tenant.id)
            );
            assert_eq!(
                definition["auth"]["authenticator"].as_str(),
                Some("bearertokenauth/tempo")
            );
            assert!(definition["tls"]["cert_file"].is_string());
        }
        // Another tenant, then none: both under the fallback tenant, apart.
        let last = &table[tenants.len()];
        assert_eq!(
            last["condition"].as_str(),
            Some("attributes[\"tenant.id\"] != nil")
        );
        assert_eq!(names(&last["pipelines"]), ["traces/unlisted"]);
        assert_eq!(names(&router["default_pipelines"]), ["traces/fallback"]);
        assert_eq!(router["error_mode"].as_str(), Some("ignore"));
        for route in ["unlisted", "fallback"] {
            let exporter = format!("otlp/tempo-{route}");
            assert_eq!(
                names(&pipelines[&*format!("traces/{route}")]["exporters"]),
                std::slice::from_ref(&exporter)
            );
            assert_eq!(
                doc["exporters"][&*exporter]["headers"]["X-Scope-OrgID"].as_str(),
                Some(artefacts::FALLBACK_TENANT)
            );
        }
        assert!(
            doc["extensions"]["bearertokenauth/tempo"]["filename"]
                .as_str()
                .unwrap()
                .ends_with("/tempo.token")
        );
        assert_wired("collector-default.yaml", &doc);
    }

    #[test]
    fn the_sampling_tier_routes_and_the_load_balancing_tier_does_not() {
        let tenants = tenants();
        let routes = TenantRoutes {
            tenants: &tenants,
            source: "tenants.toml",
        };
        let tiers = artefacts::collector_tiers(&Profile::default_profile(), routes).unwrap();
        let (first, second) = (doc_of(&tiers[0]), doc_of(&tiers[1]));
        assert!(first["connectors"].is_null());
        // The first tier sets the spans' tenant from the service's header; the second only
        // upserts the relayed one, so a lost relay header keeps the first tier's.
        let first_traces = names(&first["service"]["pipelines"]["traces"]["processors"]);
        assert!(first_traces.contains(&"attributes/tenant".to_owned()));
        let actions = |doc: &Value| -> Vec<String> {
            doc["processors"]["attributes/tenant"]["actions"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a["action"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(actions(&first), ["delete", "upsert"]);
        assert_eq!(actions(&second), ["upsert"]);
        let table = second["connectors"]["routing/tenant"]["table"]
            .as_sequence()
            .unwrap();
        assert_eq!(table.len(), tenants.len() + 1);
        let traces = names(&second["service"]["pipelines"]["traces"]["processors"]);
        assert!(
            traces.contains(&"attributes/tenant".to_owned()),
            "{traces:?}"
        );
        for (name, doc) in [("tier 1", &first), ("tier 2", &second)] {
            assert_wired(name, doc);
        }
    }

    #[test]
    fn profiles_that_keep_the_metadata_up_to_tempo_and_sealed_ones_route_nothing() {
        let tenants = tenants();
        let mut sdk_sampled = Profile::default_profile();
        sdk_sampled.sampling.site = SamplingSite::Sdk;
        for profile in [sdk_sampled, Profile::airgap()] {
            let doc = routed(&profile, &tenants);
            assert!(doc["connectors"].is_null(), "{}", profile.name);
            assert!(doc["processors"]["attributes/tenant"].is_null());
        }
    }

    #[test]
    fn without_tenants_every_sampled_span_goes_under_the_fallback_tenant_and_none_is_unlisted() {
        let doc = routed(&Profile::default_profile(), &[]);
        let router = &doc["connectors"]["routing/tenant"];
        assert_eq!(router["table"].as_sequence().unwrap().len(), 0);
        assert_eq!(names(&router["default_pipelines"]), ["traces/fallback"]);
        assert!(doc["exporters"]["otlp/tempo-unlisted"].is_null());
        assert_wired("collector-default.yaml", &doc);
    }

    #[test]
    fn a_profile_sampling_traces_to_files_routes_nothing_and_files_beside_tempo_keep_their_batch() {
        use stellaops_telemetry_core::ExporterKind;
        let tenants = tenants();
        let mut files_only = Profile::default_profile();
        files_only.exporters.traces = vec![ExporterKind::File];
        let doc = routed(&files_only, &tenants);
        assert!(doc["connectors"].is_null());
        assert_wired("files only", &doc);

        let mut both = Profile::default_profile();
        both.exporters.traces = vec![ExporterKind::Otlp, ExporterKind::File];
        let doc = routed(&both, &tenants);
        let traces = &doc["service"]["pipelines"]["traces"];
        assert_eq!(
            names(&traces["exporters"]),
            ["routing/tenant", "file/traces"]
        );
        assert_eq!(
            names(&traces["processors"]).last().map(String::as_str),
            Some("batch")
        );
        assert_wired("tempo and files", &doc);
    }

    #[test]
    fn route_tenant_ids_are_checked_as_a_tenants_file_checks_them() {
        let one = tenants().remove(0);
        let with_id = |id: &str| artefacts::Tenant {
            id: id.to_owned(),
            ..one.clone()
        };
        for bad in [r#"x" or true or ""#, "a/b", "Acme", "two words", ""] {
            let list = [with_id(bad)];
            let routes = TenantRoutes {
                tenants: &list,
                source: "built in code",
            };
            let err = artefacts::collector_for(&Profile::default_profile(), routes).unwrap_err();
            assert!(
                matches!(
                    &err,
                    artefacts::ArtefactError::Tenants(artefacts::TenantsError::InvalidId { tenant, .. })
                        if tenant == bad
                ),
                "{bad}: {err}"
            );
        }
        let twice = [with_id("acme"), with_id("acme")];
        let routes = TenantRoutes {
            tenants: &twice,
            source: "built in code",
        };
        let err = artefacts::collector_for(&Profile::default_profile(), routes).unwrap_err();
        assert!(
            matches!(
                err,
                artefacts::ArtefactError::Tenants(artefacts::TenantsError::DuplicateId { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn more_tenants_than_a_collector_routes_are_refused_by_name() {
        let one = tenants().remove(0);
        let many: Vec<artefacts::Tenant> = (0..=artefacts::MAX_ROUTED_TENANTS)
            .map(|i| artefacts::Tenant {
                id: format!("t{i}"),
                ..one.clone()
            })
            .collect();
        let routes = TenantRoutes {
            tenants: &many,
            source: "big.toml",
        };
        let err = artefacts::collector_for(&Profile::default_profile(), routes).unwrap_err();
        assert!(
            matches!(
                err,
                artefacts::ArtefactError::TooManyRoutedTenants { count, max }
                    if count == artefacts::MAX_ROUTED_TENANTS + 1 && max == artefacts::MAX_ROUTED_TENANTS
            ),
            "{err}"
        );
        assert!(err.to_string().contains("at most 1000"), "{err}");
        assert!(artefacts::collector_tiers(&Profile::default_profile(), routes).is_err());
        // A collector that routes nothing takes any number of tenants.
        assert!(artefacts::collector_for(&Profile::airgap(), routes).is_ok());
        assert!(artefacts::collector_tiers(&Profile::forensic(), routes).is_ok());
        // At the limit, every tenant is routed.
        let routes = TenantRoutes {
            tenants: &many[..artefacts::MAX_ROUTED_TENANTS],
            source: "big.toml",
        };
        let doc = doc_of(&artefacts::collector_for(&Profile::default_profile(), routes).unwrap());
        assert_eq!(
            doc["connectors"]["routing/tenant"]["table"]
                .as_sequence()
                .unwrap()
                .len(),
            artefacts::MAX_ROUTED_TENANTS + 1
        );
    }
}
