//! OpenTelemetry Collector configurations, one per profile: an mTLS OTLP receiver,
//! memory limiter, the SDK's redaction rules, tail sampling, batching, and exporters to Tempo,
//! Prometheus and Loki — or files only where the profile is sealed.

use super::yaml::{MapBuilder, Yaml, document, s};
use super::{Artefact, ArtefactError, ArtefactKind, generated_notice};
use crate::INCIDENT_ATTRIBUTE;
use crate::profile::{ExporterKind, SamplingMode, SamplingSite};
use crate::{CREDENTIAL_KEYS, Profile, REDACTED, SENSITIVE_QUERY_PARAMETERS};

const TLS_DIR: &str = "/etc/otelcol/tls";
const FILE_DIR: &str = "/var/lib/otelcol/stellaops";
/// Traces and logs are batched for at most this long, whatever the profile: the product promises
/// logs ingested within 5 s.
const BATCH_TIMEOUT: &str = "5s";

/// Value shapes the SDK redacts whatever the key (`redaction/rules.rs`), as RE2 regexes for
/// the contrib `redaction` processor's `blocked_values`.
const BLOCKED_VALUES: [(&str, &str); 5] = [
    ("bearer credentials", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    ("basic credentials", r"(?i)\bbasic\s+[A-Za-z0-9+/]+=*"),
    (
        "JSON Web Tokens",
        r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    ),
    (
        "PEM private-key blocks",
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----",
    ),
    (
        "URL userinfo",
        r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
    ),
];

fn tls_server() -> Yaml {
    MapBuilder::new()
        .str("cert_file", format!("{TLS_DIR}/server.crt"))
        .str("key_file", format!("{TLS_DIR}/server.key"))
        .str("client_ca_file", format!("{TLS_DIR}/ca.crt"))
        .build()
}

fn tls_client() -> Yaml {
    MapBuilder::new()
        .str("ca_file", format!("{TLS_DIR}/ca.crt"))
        .str("cert_file", format!("{TLS_DIR}/client.crt"))
        .str("key_file", format!("{TLS_DIR}/client.key"))
        .build()
}

fn flow(items: &[&str]) -> Yaml {
    Yaml::Flow(items.iter().map(|i| (*i).to_owned()).collect())
}

/// Milliseconds as a collector duration (`10s`, `1500ms`).
fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A ratio (0.0–1.0) as a percentage, without a trailing `.0`: the very number the SDK's tail
/// sampler decides with ([`ProbabilisticPolicy::from_ratio`](crate::ProbabilisticPolicy::from_ratio)).
fn percent(ratio: f64) -> String {
    crate::sampling_percentage(ratio)
}

/// The key pattern of the SDK's sensitive keys: the whole key or its last `.`, `_` or `-`
/// separated part is one of [`CREDENTIAL_KEYS`] (`-` or `_` inside a name), case-insensitively,
/// or it ends in `secretRef`.
/// Broader than the SDK's own rule (which takes the `_`/`-` suffix form only for credential
/// names), on the safe side.
fn key_pattern() -> String {
    let keys: Vec<String> = CREDENTIAL_KEYS
        .iter()
        .map(|key| key.replace('_', "[_-]"))
        .collect();
    format!("(?i)((^|[._-])({})|secret_?ref)$", keys.join("|"))
}

fn query_pattern() -> String {
    format!(
        r"(?i)[?&]({})=[^&#\s]+",
        SENSITIVE_QUERY_PARAMETERS.join("|")
    )
}

fn sampling_policy(name: &str, kind: &str, body: Yaml, ratio: f64) -> Yaml {
    if ratio >= 1.0 {
        MapBuilder::new()
            .str("name", name)
            .str("type", kind)
            .entry(kind, body)
            .build()
    } else {
        // Keep only a share of the matching traces: both sub-policies must sample.
        MapBuilder::new()
            .str("name", name)
            .str("type", "and")
            .entry(
                "and",
                MapBuilder::new()
                    .entry(
                        "and_sub_policy",
                        Yaml::Seq(vec![
                            MapBuilder::new()
                                .str("name", format!("{name}-match"))
                                .str("type", kind)
                                .entry(kind, body)
                                .build(),
                            MapBuilder::new()
                                .str("name", format!("{name}-share"))
                                .str("type", "probabilistic")
                                .entry(
                                    "probabilistic",
                                    MapBuilder::new()
                                        .raw("sampling_percentage", percent(ratio))
                                        .build(),
                                )
                                .build(),
                        ]),
                    )
                    .build(),
            )
            .build()
    }
}

/// Traces recorded for a forensic incident: any span carrying the incident id, whatever its
/// value, keeps the trace (as the SDK's tail sampler does).
fn incident_policy() -> Yaml {
    MapBuilder::new()
        .str("name", "incidents")
        .str("type", "string_attribute")
        .entry(
            "string_attribute",
            MapBuilder::new()
                .str("key", INCIDENT_ATTRIBUTE)
                .entry("values", flow(&[".+"]))
                .raw("enabled_regex_matching", true)
                .build(),
        )
        .build()
}

fn tail_sampling(profile: &Profile) -> Yaml {
    let sampling = &profile.sampling;
    let policies = match sampling.mode {
        SamplingMode::AlwaysOn => vec![
            MapBuilder::new()
                .str("name", "everything")
                .str("type", "always_sample")
                .build(),
        ],
        SamplingMode::Tail => vec![
            sampling_policy(
                "errors",
                "status_code",
                MapBuilder::new()
                    .entry("status_codes", flow(&["ERROR"]))
                    .build(),
                sampling.error_ratio,
            ),
            sampling_policy(
                "slow",
                "latency",
                MapBuilder::new()
                    .raw("threshold_ms", sampling.slow_threshold_ms)
                    .build(),
                sampling.slow_ratio,
            ),
            incident_policy(),
            MapBuilder::new()
                .str("name", "baseline")
                .str("type", "probabilistic")
                .entry(
                    "probabilistic",
                    MapBuilder::new()
                        .raw("sampling_percentage", percent(sampling.base_ratio))
                        .build(),
                )
                .build(),
        ],
    };
    MapBuilder::new()
        .str("decision_wait", "10s")
        .raw("num_traces", 100_000)
        .raw("expected_new_traces_per_sec", 1_000)
        .entry("policies", Yaml::Seq(policies))
        .build()
}

fn redact_keys() -> Yaml {
    let statement = format!("delete_matching_keys(attributes, \"{}\")", key_pattern());
    let context = |name: &str| {
        MapBuilder::new()
            .str("context", name)
            .entry("statements", Yaml::Seq(vec![s(statement.clone())]))
            .build()
    };
    MapBuilder::new()
        .str("error_mode", "ignore")
        .entry(
            "trace_statements",
            Yaml::Seq(vec![
                context("resource"),
                context("span"),
                context("spanevent"),
            ]),
        )
        .entry(
            "metric_statements",
            Yaml::Seq(vec![context("resource"), context("datapoint")]),
        )
        .entry(
            "log_statements",
            Yaml::Seq(vec![context("resource"), context("log")]),
        )
        .build()
}

fn redaction() -> Yaml {
    let mut values: Vec<Yaml> = BLOCKED_VALUES.iter().map(|(_, re)| s(*re)).collect();
    values.push(s(query_pattern()));
    MapBuilder::new()
        .raw("allow_all_keys", true)
        .commented(
            &[
                "The SDK's value rules: bearer and basic credentials, JWTs, PEM private keys,",
                "URL userinfo, and the sensitive query parameters of the OpenTelemetry URL convention.",
            ],
            "blocked_values",
            Yaml::Seq(values),
        )
        .str("summary", "info")
        .build()
}

/// Which signals go where: (signal, network exporter, file exporter).
fn signal_exporters(
    profile: &Profile,
) -> Vec<(&'static str, Option<&'static str>, Option<String>)> {
    let selections = [
        ("traces", &profile.exporters.traces, "otlp/tempo"),
        (
            "metrics",
            &profile.exporters.metrics,
            "prometheusremotewrite",
        ),
        ("logs", &profile.exporters.logs, "otlphttp/loki"),
    ];
    selections
        .into_iter()
        .map(|(signal, kinds, network)| {
            let net = (!profile.sealed && kinds.contains(&ExporterKind::Otlp)).then_some(network);
            // A sealed profile's network exporters fall back to files, as the SDK's do.
            let file = (kinds.contains(&ExporterKind::File)
                || (profile.sealed && kinds.contains(&ExporterKind::Otlp)))
            .then(|| format!("file/{signal}"));
            (signal, net, file)
        })
        .collect()
}

fn exporter(name: &str, profile: &Profile) -> Yaml {
    match name {
        "otlp/tempo" => MapBuilder::new()
            .str("endpoint", "${env:STELLAOPS_TEMPO_ENDPOINT:-tempo:4317}")
            .entry("tls", tls_client())
            .str("compression", "gzip")
            .build(),
        "prometheusremotewrite" => MapBuilder::new()
            .str(
                "endpoint",
                "${env:STELLAOPS_PROMETHEUS_REMOTE_WRITE:-https://prometheus:9090/api/v1/write}",
            )
            .entry("tls", tls_client())
            .entry(
                "resource_to_telemetry_conversion",
                MapBuilder::new().raw("enabled", true).build(),
            )
            .build(),
        "otlphttp/loki" => MapBuilder::new()
            .str(
                "endpoint",
                "${env:STELLAOPS_LOKI_OTLP_ENDPOINT:-https://loki:3100/otlp}",
            )
            .entry("tls", tls_client())
            .build(),
        _ => {
            let signal = name.trim_start_matches("file/");
            MapBuilder::new()
                .str("path", format!("{FILE_DIR}/{signal}.jsonl"))
                .str("format", "json")
                .entry(
                    "rotation",
                    MapBuilder::new()
                        .raw("max_megabytes", 100)
                        .raw("max_days", profile.retention_days)
                        .raw("max_backups", 10)
                        .build(),
                )
                .build()
        }
    }
}

/// The OpenTelemetry Collector configuration of `profile` (`collector-<name>.yaml`).
///
/// Numbers come from the profile: the tail-sampling shares and slow threshold, traces with an
/// incident id always kept (or keep everything when its sampling is `always_on`; no tail
/// sampling at all where the SDK samples), the metrics batch timeout (its export
/// interval), the file retention, and the exporters: Tempo (`otlp/tempo`), Prometheus
/// (`prometheusremotewrite`) and Loki (`otlphttp/loki`) for OTLP, `file` exporters for files,
/// and files only when the profile is sealed. Every pipeline redacts the SDK's sensitive keys
/// ([`CREDENTIAL_KEYS`]) and, for traces and logs, its credential value shapes.
///
/// # Errors
///
/// None today; the signature matches the other generators.
pub fn collector(profile: &Profile) -> Result<Artefact, ArtefactError> {
    let routes = signal_exporters(profile);
    let wiring = pipelines(profile, &routes);
    // Only the processors some pipeline names are written out.
    let processors = processors(profile)
        .retain(|name| wiring.used.contains(&name))
        .build();
    let doc = MapBuilder::new()
        .entry(
            "extensions",
            MapBuilder::new()
                .entry(
                    "health_check",
                    MapBuilder::new().str("endpoint", "0.0.0.0:13133").build(),
                )
                .build(),
        )
        .entry("receivers", receivers())
        .entry("processors", processors)
        .entry("exporters", wiring.exporters)
        .entry(
            "service",
            MapBuilder::new()
                .entry("extensions", flow(&["health_check"]))
                .entry("pipelines", wiring.pipelines)
                .build(),
        )
        .build();
    Ok(Artefact {
        kind: ArtefactKind::Collector,
        file_name: format!("collector-{}.yaml", profile.name),
        contents: document(&header(profile), &doc),
    })
}

/// The OTLP receiver: gRPC and HTTP on their standard ports, both behind mTLS.
fn receivers() -> Yaml {
    MapBuilder::new()
        .entry(
            "otlp",
            MapBuilder::new()
                .entry(
                    "protocols",
                    MapBuilder::new()
                        .entry(
                            "grpc",
                            MapBuilder::new()
                                .str("endpoint", "0.0.0.0:4317")
                                .entry("tls", tls_server())
                                .build(),
                        )
                        .entry(
                            "http",
                            MapBuilder::new()
                                .str("endpoint", "0.0.0.0:4318")
                                .entry("tls", tls_server())
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

/// Every processor a pipeline may name, in the order they are written; the caller keeps the
/// ones in use.
fn processors(profile: &Profile) -> MapBuilder {
    MapBuilder::new()
        .entry(
            "memory_limiter",
            MapBuilder::new()
                .str("check_interval", "1s")
                .raw("limit_percentage", 80)
                .raw("spike_limit_percentage", 20)
                .build(),
        )
        .commented(
            &["The SDK's sensitive keys (its CREDENTIAL_KEYS, also as the last `.`/`_`/`-` part), deleted."],
            "transform/redact-keys",
            redact_keys(),
        )
        .commented(
            &[&format!("Credential shapes in any value, masked (the SDK writes `{REDACTED}`).")],
            "redaction",
            redaction(),
        )
        .entry("tail_sampling", tail_sampling(profile))
        .commented(
            &["Traces and logs: at most 5 s in a batch (logs are promised to be ingested within 5 s)."],
            "batch",
            MapBuilder::new()
                .str("timeout", BATCH_TIMEOUT)
                .raw("send_batch_size", 8192)
                .raw("send_batch_max_size", 16384)
                .build(),
        )
        .commented(
            &[&format!(
                "Metrics: the profile's export interval ({}).",
                duration(profile.export_interval_ms)
            )],
            "batch/metrics",
            MapBuilder::new()
                .str("timeout", duration(profile.export_interval_ms))
                .raw("send_batch_size", 8192)
                .raw("send_batch_max_size", 16384)
                .build(),
        )
}

/// The exporters and pipelines of a profile, and the processors the pipelines name.
struct Wiring {
    exporters: Yaml,
    pipelines: Yaml,
    used: Vec<&'static str>,
}

/// One pipeline per signal that has an exporter, each with its exporters declared.
fn pipelines(
    profile: &Profile,
    routes: &[(&'static str, Option<&'static str>, Option<String>)],
) -> Wiring {
    let mut exporters = MapBuilder::new();
    let mut pipelines = MapBuilder::new();
    let mut used: Vec<&'static str> = Vec::new();
    for (signal, net, file) in routes {
        let mut names: Vec<String> = Vec::new();
        if let Some(n) = net {
            names.push((*n).to_owned());
        }
        if let Some(f) = file {
            names.push(f.clone());
        }
        if names.is_empty() {
            continue;
        }
        for n in &names {
            exporters = exporters.entry(n.clone(), exporter(n, profile));
        }
        let processors = signal_processors(profile, signal);
        used.extend(processors);
        pipelines = pipelines.entry(
            *signal,
            MapBuilder::new()
                .entry("receivers", flow(&["otlp"]))
                .entry("processors", flow(processors))
                .entry("exporters", Yaml::Flow(names))
                .build(),
        );
    }
    Wiring {
        exporters: exporters.build(),
        pipelines: pipelines.build(),
        used,
    }
}

/// The processors of a signal's pipeline, in order (only traces are tail-sampled, and not
/// again where the SDK samples; metrics skip the value masking).
fn signal_processors(profile: &Profile, signal: &str) -> &'static [&'static str] {
    match signal {
        "traces" if profile.sampling.site == SamplingSite::Sdk => &[
            "memory_limiter",
            "transform/redact-keys",
            "redaction",
            "batch",
        ],
        "traces" => &[
            "memory_limiter",
            "transform/redact-keys",
            "redaction",
            "tail_sampling",
            "batch",
        ],
        "metrics" => &["memory_limiter", "transform/redact-keys", "batch/metrics"],
        _ => &[
            "memory_limiter",
            "transform/redact-keys",
            "redaction",
            "batch",
        ],
    }
}

/// The comment lines at the top of the file: the generated notice, then what the profile
/// chose (sampling, metrics interval, destinations) and where certificates come from.
fn header(profile: &Profile) -> Vec<String> {
    let sampling = match (profile.sampling.mode, profile.sampling.site) {
        (SamplingMode::AlwaysOn, _) => "every trace kept".to_owned(),
        (SamplingMode::Tail, site) => format!(
            "tail sampling {}: errors {} %, slower than {} ms {} %, incidents 100 %, others {} %",
            match site {
                SamplingSite::Collector => "here",
                SamplingSite::Sdk => "in the SDK (the collector keeps what it receives)",
            },
            percent(profile.sampling.error_ratio),
            profile.sampling.slow_threshold_ms,
            percent(profile.sampling.slow_ratio),
            percent(profile.sampling.base_ratio)
        ),
    };
    let destinations = if profile.sealed {
        "files only, no network exporter (sealed)"
    } else {
        "Tempo, Prometheus (remote write) and Loki over mTLS"
    };
    vec![
        generated_notice(
            &format!("generate collector --profile {}", profile.name),
            "the profile and the SDK's redaction rules",
        ),
        format!(
            "Profile `{}`: {sampling}; metrics every {}; {destinations}.",
            profile.name,
            duration(profile.export_interval_ms)
        ),
        format!(
            "Certificates are read from {TLS_DIR}; endpoints can be overridden with the STELLAOPS_* variables."
        ),
    ]
}

/// The collector configuration of each profile, in order.
///
/// # Errors
///
/// As [`collector`].
pub fn collectors(profiles: &[Profile]) -> Result<Vec<Artefact>, ArtefactError> {
    profiles.iter().map(collector).collect()
}
