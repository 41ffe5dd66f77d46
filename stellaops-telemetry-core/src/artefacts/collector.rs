//! OpenTelemetry Collector configurations, one per profile: an mTLS OTLP receiver that keeps
//! the client metadata, memory limiter, the SDK's redaction rules, tail sampling, batching per
//! tenant, and exporters to Tempo and Loki (with the tenant as `X-Scope-OrgID`), Prometheus
//! (remote write with an Authority token, and a scrape endpoint) — or files only where the
//! profile is sealed. Profiles that tail-sample in the collector also get a two-tier variant
//! for several replicas: a load-balancing tier routing by trace id in front of a sampling tier.
//!
//! Tail sampling regroups spans into new batches and drops the request's metadata with them,
//! so after it the tenant header is gone. Where a collector tail-samples, the header is first
//! copied onto every span as `tenant.id`, and the sampled spans are routed by that attribute
//! (a `routing` connector) to one Tempo exporter per tenant of the tenants file, each sending
//! its tenant as a fixed `X-Scope-OrgID`.

use super::yaml::{MapBuilder, Yaml, document, s};
use super::{Artefact, ArtefactError, ArtefactKind, Tenant, generated_notice};
use crate::INCIDENT_ATTRIBUTE;
use crate::profile::{ExporterKind, SamplingMode, SamplingSite};
use crate::{CREDENTIAL_KEYS, Profile, REDACTED, SENSITIVE_QUERY_PARAMETERS};

const TLS_DIR: &str = "/etc/otelcol/tls";
const FILE_DIR: &str = "/var/lib/otelcol/stellaops";
/// Traces and logs are batched for at most this long, whatever the profile: the product promises
/// logs ingested within 5 s.
const BATCH_TIMEOUT: &str = "5s";
/// The collector version the generated YAML is written for (the `service.telemetry.metrics`
/// readers, the `headers_setter`, `bearertokenauth` and `loadbalancing` components).
pub const COLLECTOR_VERSION: &str = "OpenTelemetry Collector Contrib v0.130.0 or later";
/// The client metadata key (an OTLP request header) that names the tenant.
pub const TENANT_METADATA_KEY: &str = "x-stellaops-tenant";
/// How many tenants a batch processor keeps apart at once; batches of further tenants are
/// refused (and counted by the collector) rather than letting memory grow without bound.
const TENANT_BATCHES: u32 = 1000;
/// The span attribute that names a span's tenant (the SDK's, and the collector's copy of the
/// tenant header before tail sampling).
const TENANT_ATTRIBUTE: &str = "tenant.id";
/// The most tenants a collector routes sampled traces for: each costs one exporter (a queue
/// and a connection) and one routing condition evaluated per span.
pub const MAX_ROUTED_TENANTS: usize = 1000;
/// The Tempo and Loki tenant of records that name none, and of sampled spans whose tenant is
/// not in the tenants file (a collector configuration variable, `stellaops` unless set).
pub const FALLBACK_TENANT: &str = "${env:STELLAOPS_FALLBACK_TENANT:-stellaops}";
/// The connector routing sampled spans by tenant.
const ROUTING: &str = "routing/tenant";
/// The pipeline and exporter of sampled spans with no tenant.
const NO_TENANT_ROUTE: &str = "fallback";
/// The pipeline and exporter of sampled spans whose tenant is not in the tenants file.
const UNLISTED_ROUTE: &str = "unlisted";
/// Where Authority writes the bearer tokens it mints for the collector (rotated in place; the
/// `bearertokenauth` extension re-reads a changed file).
const TOKEN_DIR: &str = "/var/run/secrets/stellaops/authority";
/// The Prometheus scrape endpoint of the collector (the alternative to remote write).
pub const SCRAPE_ENDPOINT: &str = "0.0.0.0:9464";
/// The collector's own metrics, for Prometheus to pull.
const SELF_METRICS_PORT: u16 = 8888;

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

/// Which file a configuration is: the single collector of a profile, or one tier of its
/// two-tier variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `collector-<profile>.yaml`: every signal, tail sampling included.
    Single,
    /// `collector-<profile>-tier1-loadbalancer.yaml`: receives everything; traces go whole to
    /// the sampling tier (routed by trace id), metrics and logs straight to the backends.
    LoadBalancer,
    /// `collector-<profile>-tier2-sampling.yaml`: receives traces from the first tier only,
    /// tail-samples them and sends them to Tempo.
    Sampling,
}

impl Shape {
    fn file_name(self, profile: &Profile) -> String {
        match self {
            Shape::Single => format!("collector-{}.yaml", profile.name),
            Shape::LoadBalancer => format!("collector-{}-tier1-loadbalancer.yaml", profile.name),
            Shape::Sampling => format!("collector-{}-tier2-sampling.yaml", profile.name),
        }
    }
}

/// Which exporters each signal goes to, in order.
fn signal_exporters(profile: &Profile, shape: Shape) -> Vec<(&'static str, Vec<String>)> {
    if shape == Shape::Sampling {
        return vec![("traces", vec!["otlp/tempo".to_owned()])];
    }
    let traces_net = match shape {
        Shape::LoadBalancer => "loadbalancing",
        _ => "otlp/tempo",
    };
    let selections = [
        ("traces", &profile.exporters.traces, traces_net),
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
            let mut names = Vec::new();
            if !profile.sealed && kinds.contains(&ExporterKind::Otlp) {
                names.push(network.to_owned());
                if signal == "metrics" {
                    // The scrape endpoint beside remote write: Prometheus may pull instead.
                    names.push("prometheus".to_owned());
                }
            }
            // A sealed profile's network exporters fall back to files, as the SDK's do.
            if kinds.contains(&ExporterKind::File)
                || (profile.sealed && kinds.contains(&ExporterKind::Otlp))
            {
                names.push(format!("file/{signal}"));
            }
            (signal, names)
        })
        .collect()
}

/// The authenticator extension an exporter names, if any. An exporter takes one
/// authenticator: Tempo and Loki each get a `headers_setter` that sends the tenant and their
/// Authority token, Prometheus remote write gets a `bearertokenauth` reading its token file,
/// and the per-tenant Tempo exporters after tail sampling (whose tenant is fixed) one reading
/// Tempo's.
fn authenticator(exporter: &str) -> Option<&'static str> {
    match exporter {
        "otlp/tempo" => Some("headers_setter/tempo"),
        routed if routed.starts_with("otlp/tempo-") => Some("bearertokenauth/tempo"),
        "otlphttp/loki" => Some("headers_setter/loki"),
        "loadbalancing" => Some("headers_setter/relay"),
        "prometheusremotewrite" => Some("bearertokenauth/prometheus"),
        "prometheus" => Some("bearertokenauth/scrape"),
        _ => None,
    }
}

/// Every authenticator extension, in the order they are written.
const AUTHENTICATORS: [&str; 6] = [
    "headers_setter/tempo",
    "headers_setter/loki",
    "headers_setter/relay",
    "bearertokenauth/tempo",
    "bearertokenauth/prometheus",
    "bearertokenauth/scrape",
];

fn auth(name: &str) -> Yaml {
    MapBuilder::new().str("authenticator", name).build()
}

fn header_from_tenant(key: &str) -> Yaml {
    MapBuilder::new()
        .str("action", "upsert")
        .str("key", key)
        .str("from_context", TENANT_METADATA_KEY)
        .build()
}

/// The tenant as `X-Scope-OrgID` ([`FALLBACK_TENANT`] for a request that names none, which
/// Loki and Tempo would otherwise refuse), and `Authorization: Bearer` with the Authority token in
/// `<TOKEN_DIR>/<backend>.token`. The collector reads the token file when it loads its
/// configuration (the `file` configuration provider), so it must be restarted when Authority
/// rotates the token; remote write's `bearertokenauth` re-reads its own file by itself.
fn backend_headers(backend: &str) -> Yaml {
    MapBuilder::new()
        .entry(
            "headers",
            Yaml::Seq(vec![
                MapBuilder::new()
                    .str("action", "upsert")
                    .str("key", "X-Scope-OrgID")
                    .str("from_context", TENANT_METADATA_KEY)
                    .str("default_value", FALLBACK_TENANT)
                    .build(),
                MapBuilder::new()
                    .str("action", "upsert")
                    .str("key", "Authorization")
                    .str(
                        "value",
                        format!("Bearer ${{file:{TOKEN_DIR}/{backend}.token}}"),
                    )
                    .build(),
            ]),
        )
        .build()
}

/// The definition of an authenticator extension.
fn extension(name: &str) -> Yaml {
    match name {
        "headers_setter/tempo" => backend_headers("tempo"),
        "headers_setter/loki" => backend_headers("loki"),
        "headers_setter/relay" => MapBuilder::new()
            .entry(
                "headers",
                Yaml::Seq(vec![header_from_tenant(TENANT_METADATA_KEY)]),
            )
            .build(),
        "bearertokenauth/tempo" => MapBuilder::new()
            .str("filename", format!("{TOKEN_DIR}/tempo.token"))
            .build(),
        "bearertokenauth/prometheus" => MapBuilder::new()
            .str(
                "filename",
                format!("{TOKEN_DIR}/prometheus-remote-write.token"),
            )
            .build(),
        _ => MapBuilder::new()
            .str("filename", format!("{TOKEN_DIR}/prometheus-scrape.token"))
            .build(),
    }
}

/// Tempo over OTLP/gRPC: the endpoint, mTLS and compression every Tempo exporter shares.
fn tempo() -> MapBuilder {
    MapBuilder::new()
        .str("endpoint", "${env:STELLAOPS_TEMPO_ENDPOINT:-tempo:4317}")
        .entry("tls", tls_client())
        .str("compression", "gzip")
}

fn exporter(name: &str, profile: &Profile) -> Yaml {
    let built = match name {
        "otlp/tempo" => tempo(),
        "prometheusremotewrite" => MapBuilder::new()
            .str(
                "endpoint",
                "${env:STELLAOPS_PROMETHEUS_REMOTE_WRITE:-https://prometheus:9090/api/v1/write}",
            )
            .entry("tls", tls_client())
            .entry(
                "resource_to_telemetry_conversion",
                MapBuilder::new().raw("enabled", true).build(),
            ),
        "prometheus" => MapBuilder::new()
            .str("endpoint", SCRAPE_ENDPOINT)
            .entry("tls", tls_server())
            // No namespace: the catalogue's names already carry their `stellaops_` prefix,
            // and the dashboards and alerts query them as they are.
            .entry(
                "resource_to_telemetry_conversion",
                MapBuilder::new().raw("enabled", true).build(),
            )
            .str(
                "metric_expiration",
                duration(profile.export_interval_ms.saturating_mul(3).max(300_000)),
            ),
        "otlphttp/loki" => MapBuilder::new()
            .str(
                "endpoint",
                "${env:STELLAOPS_LOKI_OTLP_ENDPOINT:-https://loki:3100/otlp}",
            )
            .entry("tls", tls_client()),
        "loadbalancing" => return load_balancing(),
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
        }
    };
    match authenticator(name) {
        Some(a) => built.entry("auth", auth(a)).build(),
        None => built.build(),
    }
}

/// The first tier's trace exporter: every span of a trace to the same sampling-tier replica,
/// found through DNS (a headless service listing every replica), over mTLS, with the tenant
/// passed on as the request header the sampling tier's receiver reads back into metadata.
fn load_balancing() -> Yaml {
    MapBuilder::new()
        .str("routing_key", "traceID")
        .entry(
            "protocol",
            MapBuilder::new()
                .entry(
                    "otlp",
                    MapBuilder::new()
                        .entry("tls", tls_client())
                        .str("compression", "gzip")
                        .entry("auth", auth("headers_setter/relay"))
                        .build(),
                )
                .build(),
        )
        .entry(
            "resolver",
            MapBuilder::new()
                .entry(
                    "dns",
                    MapBuilder::new()
                        .str(
                            "hostname",
                            "${env:STELLAOPS_SAMPLING_TIER_HOSTNAME:-otelcol-sampling}",
                        )
                        .str("port", "4317")
                        .str("interval", "5s")
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The OpenTelemetry Collector configuration of `profile` (`collector-<name>.yaml`).
///
/// Numbers come from the profile: the tail-sampling shares and slow threshold, traces with an
/// incident id always kept (or keep everything when its sampling is `always_on`; no tail
/// sampling at all where the SDK samples), the metrics batch timeout (its export
/// interval), the file retention, and the exporters: Tempo (`otlp/tempo`), Prometheus
/// (`prometheusremotewrite`, and a `prometheus` scrape endpoint on [`SCRAPE_ENDPOINT`]) and
/// Loki (`otlphttp/loki`) for OTLP, `file` exporters for files, and files only when the
/// profile is sealed. Every pipeline redacts the SDK's sensitive keys ([`CREDENTIAL_KEYS`])
/// and, for traces and logs, its credential value shapes.
///
/// The receiver keeps the client metadata and every batch processor batches per tenant (the
/// [`TENANT_METADATA_KEY`] request header), so the `headers_setter` extension can send the
/// tenant to Tempo and Loki as `X-Scope-OrgID`. Remote write presents a bearer token read from
/// a file Authority keeps fresh; the scrape endpoint asks for one (and a client certificate).
/// The collector's own metrics are served for Prometheus on port 8888.
///
/// Where the collector tail-samples, it routes no tenant's traces by name: every sampled
/// trace goes to Tempo under [`FALLBACK_TENANT`]. Use [`collector_for`] with the site's
/// tenants to keep them apart.
///
/// # Errors
///
/// None today; the signature matches the other generators.
pub fn collector(profile: &Profile) -> Result<Artefact, ArtefactError> {
    collector_for(profile, TenantRoutes::NONE)
}

/// The tenants whose sampled traces a collector routes to Tempo under their own tenant, and
/// the file they come from (named in the generated file's header).
#[derive(Debug, Clone, Copy)]
pub struct TenantRoutes<'a> {
    /// The tenants (a tenants file, read with [`super::read_tenants`]).
    pub tenants: &'a [Tenant],
    /// Where they come from, e.g. the tenants file's name.
    pub source: &'a str,
}

impl TenantRoutes<'_> {
    /// No tenant routed by name.
    pub const NONE: TenantRoutes<'static> = TenantRoutes {
        tenants: &[],
        source: "no tenants file",
    };
}

/// As [`collector`], and where the collector tail-samples, each of `routes`' tenants gets its
/// own Tempo exporter after tail sampling (which drops the request's metadata, and with it
/// the tenant header): the tenant header is copied onto every span as `tenant.id` before
/// sampling, and a `routing` connector sends each sampled span to its tenant's exporter, which
/// sends that tenant as `X-Scope-OrgID`. Sampled spans of a tenant not in `routes` go to
/// `otlp/tempo-unlisted`, spans with no tenant to `otlp/tempo-fallback`, both under
/// [`FALLBACK_TENANT`]; the first are counted by the collector per exporter, and an alert
/// fires when any are sent.
///
/// # Errors
///
/// [`ArtefactError::TooManyRoutedTenants`] beyond [`MAX_ROUTED_TENANTS`] tenants.
pub fn collector_for(
    profile: &Profile,
    routes: TenantRoutes<'_>,
) -> Result<Artefact, ArtefactError> {
    if routed(profile, Shape::Single) {
        check_routes(routes)?;
    }
    Ok(build(profile, Shape::Single, routes))
}

/// Checks the tenants a collector routes: at most [`MAX_ROUTED_TENANTS`], each id a tenants
/// file's (it becomes part of a component name and of an OTTL string), none twice.
fn check_routes(routes: TenantRoutes<'_>) -> Result<(), ArtefactError> {
    if routes.tenants.len() > MAX_ROUTED_TENANTS {
        return Err(ArtefactError::TooManyRoutedTenants {
            count: routes.tenants.len(),
            max: MAX_ROUTED_TENANTS,
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(routes.tenants.len());
    for tenant in routes.tenants {
        super::storage::check_id(&tenant.id).map_err(ArtefactError::Tenants)?;
        if !seen.insert(tenant.id.as_str()) {
            return Err(ArtefactError::Tenants(super::TenantsError::DuplicateId {
                tenant: tenant.id.clone(),
            }));
        }
    }
    Ok(())
}

/// Whether `profile` gets the two-tier variant: it tail-samples in a collector that reaches
/// the network. (A profile that keeps every trace needs no trace-complete routing, and a
/// sealed one runs a single local collector.)
fn tiered(profile: &Profile) -> bool {
    !profile.sealed
        && profile.sampling.site == SamplingSite::Collector
        && profile.sampling.mode == SamplingMode::Tail
}

/// The two-tier variant of `profile`'s collector, for running several replicas:
/// `collector-<name>-tier1-loadbalancer.yaml` (receives everything, sends each trace whole to
/// one replica of the second tier with the `loadbalancing` exporter routing by trace id, and
/// metrics and logs straight to the backends) and `collector-<name>-tier2-sampling.yaml`
/// (holds the profile's `tail_sampling` processor, so it decides on whole traces, and exports
/// to Tempo, routing sampled traces by tenant as [`collector_for`] does). Empty for profiles
/// that do not tail-sample in a networked collector.
///
/// # Errors
///
/// As [`collector_for`].
pub fn collector_tiers(
    profile: &Profile,
    routes: TenantRoutes<'_>,
) -> Result<Vec<Artefact>, ArtefactError> {
    if !tiered(profile) {
        return Ok(Vec::new());
    }
    check_routes(routes)?;
    Ok(vec![
        build(profile, Shape::LoadBalancer, routes),
        build(profile, Shape::Sampling, routes),
    ])
}

fn build(profile: &Profile, shape: Shape, tenants: TenantRoutes<'_>) -> Artefact {
    let routes = signal_exporters(profile, shape);
    let wiring = pipelines(profile, shape, &routes, tenants);
    // Only the processors and extensions something names are written out.
    let processors = processors(profile, shape)
        .retain(|name| wiring.used.contains(&name))
        .build();
    let mut extensions = MapBuilder::new().entry(
        "health_check",
        MapBuilder::new().str("endpoint", "0.0.0.0:13133").build(),
    );
    let mut extension_names = vec!["health_check"];
    for name in AUTHENTICATORS {
        if wiring.authenticators.contains(&name) {
            extensions = extensions.entry(name, extension(name));
            extension_names.push(name);
        }
    }
    let mut doc = MapBuilder::new()
        .entry("extensions", extensions.build())
        .entry("receivers", receivers())
        .entry("processors", processors)
        .entry("exporters", wiring.exporters);
    if let Some(connectors) = wiring.connectors {
        doc = doc.entry("connectors", connectors);
    }
    let doc = doc
        .entry(
            "service",
            MapBuilder::new()
                .entry("extensions", flow(&extension_names))
                .entry("pipelines", wiring.pipelines)
                .entry("telemetry", self_telemetry())
                .build(),
        )
        .build();
    Artefact {
        kind: ArtefactKind::Collector,
        file_name: shape.file_name(profile),
        contents: document(
            &header(profile, shape, tenants, &wiring.authenticators),
            &doc,
        ),
    }
}

/// The collector's own metrics (queue sizes, refused and dropped records), pulled by
/// Prometheus.
fn self_telemetry() -> Yaml {
    let prometheus = MapBuilder::new()
        .str("host", "0.0.0.0")
        .raw("port", SELF_METRICS_PORT)
        .build();
    let reader = MapBuilder::new()
        .entry(
            "pull",
            MapBuilder::new()
                .entry(
                    "exporter",
                    MapBuilder::new().entry("prometheus", prometheus).build(),
                )
                .build(),
        )
        .build();
    MapBuilder::new()
        .entry(
            "metrics",
            MapBuilder::new()
                .str("level", "normal")
                .entry("readers", Yaml::Seq(vec![reader]))
                .build(),
        )
        .build()
}

/// One OTLP protocol of the receiver: mTLS, and the request headers kept as client metadata
/// (the tenant header among them).
fn protocol(endpoint: &str) -> Yaml {
    MapBuilder::new()
        .str("endpoint", endpoint)
        .raw("include_metadata", true)
        .entry("tls", tls_server())
        .build()
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
                        .entry("grpc", protocol("0.0.0.0:4317"))
                        .entry("http", protocol("0.0.0.0:4318"))
                        .build(),
                )
                .build(),
        )
        .build()
}

/// A batch processor that keeps each tenant's records in batches of their own.
fn batch(timeout: String) -> Yaml {
    MapBuilder::new()
        .str("timeout", timeout)
        .raw("send_batch_size", 8192)
        .raw("send_batch_max_size", 16384)
        .entry("metadata_keys", flow(&[TENANT_METADATA_KEY]))
        .raw("metadata_cardinality_limit", TENANT_BATCHES)
        .build()
}

/// Every processor a pipeline may name, in the order they are written; the caller keeps the
/// ones in use.
fn processors(profile: &Profile, shape: Shape) -> MapBuilder {
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
        .commented(
            &[
                "The tenant header onto every span as `tenant.id`: tail sampling drops the request's",
                "metadata, so the sampled spans are routed to their tenant by this attribute.",
            ],
            "attributes/tenant",
            tenant_attribute(shape),
        )
        .entry("tail_sampling", tail_sampling(profile))
        .commented(
            &[
                "Traces and logs: at most 5 s in a batch (logs are promised to be ingested within 5 s).",
                &format!("One batch per tenant (`{TENANT_METADATA_KEY}`), at most {TENANT_BATCHES} tenants at once."),
            ],
            "batch",
            batch(BATCH_TIMEOUT.to_owned()),
        )
        .commented(
            &[&format!(
                "Metrics: the profile's export interval ({}), one batch per tenant.",
                duration(profile.export_interval_ms)
            )],
            "batch/metrics",
            batch(duration(profile.export_interval_ms)),
        )
}

/// Makes the tenant header the spans' `tenant.id`, as it is the tenant of the request's logs
/// and metrics: where the request comes from a service, any `tenant.id` is removed first (a
/// request without the header is the fallback tenant's); in the sampling tier, which receives
/// spans the first tier already set, the relayed header only confirms it.
fn tenant_attribute(shape: Shape) -> Yaml {
    let mut actions = Vec::with_capacity(2);
    if shape != Shape::Sampling {
        actions.push(
            MapBuilder::new()
                .str("key", TENANT_ATTRIBUTE)
                .str("action", "delete")
                .build(),
        );
    }
    actions.push(
        MapBuilder::new()
            .str("key", TENANT_ATTRIBUTE)
            .str("from_context", format!("metadata.{TENANT_METADATA_KEY}"))
            .str("action", "upsert")
            .build(),
    );
    MapBuilder::new()
        .entry("actions", Yaml::Seq(actions))
        .build()
}

/// The exporters, connectors and pipelines of a profile, and the processors and
/// authenticators they name.
struct Wiring {
    exporters: Yaml,
    connectors: Option<Yaml>,
    pipelines: Yaml,
    used: Vec<&'static str>,
    authenticators: Vec<&'static str>,
}

/// Whether traces are tail-sampled here and sent on to Tempo, so that their tenant must be
/// carried through sampling on the spans and routed after it.
fn routed(profile: &Profile, shape: Shape) -> bool {
    signal_processors(profile, shape, "traces").contains(&"tail_sampling")
        && signal_exporters(profile, shape)
            .iter()
            .any(|(signal, names)| *signal == "traces" && names.iter().any(|n| n == "otlp/tempo"))
}

/// One pipeline per signal that has an exporter, each with its exporters declared; where
/// traces are tail-sampled ([`routed`]), the traces pipeline ends in the tenant router and
/// [`tenant_routes`] adds a pipeline per route.
fn pipelines(
    profile: &Profile,
    shape: Shape,
    routes: &[(&'static str, Vec<String>)],
    tenants: TenantRoutes<'_>,
) -> Wiring {
    let mut exporters = MapBuilder::new();
    let mut pipelines = MapBuilder::new();
    let mut used: Vec<&'static str> = Vec::new();
    let mut authenticators: Vec<&'static str> = Vec::new();
    let mut connectors = None;
    let mut routed_pipelines = Vec::new();
    for (signal, names) in routes {
        if names.is_empty() {
            continue;
        }
        let mut processors = signal_processors(profile, shape, signal).to_vec();
        let mut targets = names.clone();
        if *signal == "traces" && routed(profile, shape) {
            // The routes batch what they receive (the pipeline still batches for its other
            // exporters, such as files); the router needs the tenant on each span.
            if names.len() == 1 {
                processors.retain(|p| *p != "batch");
            }
            if let Some(at) = processors.iter().position(|p| *p == "tail_sampling") {
                processors.insert(at, "attributes/tenant");
            }
            for t in &mut targets {
                if t == "otlp/tempo" {
                    ROUTING.clone_into(t);
                }
            }
            let (table, routed_exporters, routes) = tenant_routes(tenants);
            connectors = Some(MapBuilder::new().entry(ROUTING, table).build());
            for (name, definition) in routed_exporters {
                exporters = exporters.entry(name, definition);
            }
            routed_pipelines = routes;
            authenticators.push("bearertokenauth/tempo");
            used.push("batch");
        }
        for n in targets.iter().filter(|n| n.as_str() != ROUTING) {
            exporters = exporters.entry(n.clone(), exporter(n, profile));
            authenticators.extend(authenticator(n));
        }
        used.extend(processors.iter().copied());
        pipelines = pipelines.entry(
            *signal,
            MapBuilder::new()
                .entry("receivers", flow(&["otlp"]))
                .entry("processors", flow(&processors))
                .entry("exporters", Yaml::Flow(targets))
                .build(),
        );
        for (name, definition) in routed_pipelines.drain(..) {
            pipelines = pipelines.entry(name, definition);
        }
    }
    Wiring {
        exporters: exporters.build(),
        connectors,
        pipelines: pipelines.build(),
        used,
        authenticators,
    }
}

/// A named collector component and its definition.
type Component = (String, Yaml);

/// The tenant router's table, and the exporter and pipeline of each route: one per listed
/// tenant (`traces/tenant-<id>` to `otlp/tempo-tenant-<id>`, whose `X-Scope-OrgID` is the
/// tenant), then `traces/unlisted` for spans naming another tenant and `traces/fallback` (the
/// router's default) for spans naming none, both under [`FALLBACK_TENANT`]. The router takes
/// the first route whose condition holds.
fn tenant_routes(tenants: TenantRoutes<'_>) -> (Yaml, Vec<Component>, Vec<Component>) {
    let mut table = Vec::with_capacity(tenants.tenants.len() + 1);
    let mut exporters = Vec::with_capacity(tenants.tenants.len() + 2);
    let mut pipelines = Vec::with_capacity(tenants.tenants.len() + 2);
    let mut route = |condition: String, name: String, org_id: &str| {
        let pipeline = format!("traces/{name}");
        let exporter = format!("otlp/tempo-{name}");
        if !condition.is_empty() {
            table.push(
                MapBuilder::new()
                    .str("context", "span")
                    .str("condition", condition)
                    .entry("pipelines", Yaml::Flow(vec![pipeline.clone()]))
                    .build(),
            );
        }
        pipelines.push((
            pipeline,
            MapBuilder::new()
                .entry("receivers", flow(&[ROUTING]))
                .entry("processors", flow(&["batch"]))
                .entry("exporters", Yaml::Flow(vec![exporter.clone()]))
                .build(),
        ));
        exporters.push((exporter, routed_exporter(org_id)));
    };
    for tenant in tenants.tenants {
        // Tenant ids are lowercase letters, digits, `-` and `_` (checked when the tenants
        // file is read): safe in a component name and inside an OTTL string.
        route(
            format!("attributes[\"{TENANT_ATTRIBUTE}\"] == \"{}\"", tenant.id),
            format!("tenant-{}", tenant.id),
            &tenant.id,
        );
    }
    // Without a tenants file every sampled span goes under the fallback tenant, as said in
    // the file's header, and none counts as unlisted.
    if !tenants.tenants.is_empty() {
        route(
            format!("attributes[\"{TENANT_ATTRIBUTE}\"] != nil"),
            UNLISTED_ROUTE.to_owned(),
            FALLBACK_TENANT,
        );
    }
    route(String::new(), NO_TENANT_ROUTE.to_owned(), FALLBACK_TENANT);
    let table = MapBuilder::new()
        .entry(
            "default_pipelines",
            Yaml::Flow(vec![format!("traces/{NO_TENANT_ROUTE}")]),
        )
        // A condition that cannot be evaluated sends the span to the default route.
        .str("error_mode", "ignore")
        .entry("table", Yaml::Seq(table))
        .build();
    (table, exporters, pipelines)
}

/// A Tempo exporter for one route: its tenant as a fixed `X-Scope-OrgID`, and Tempo's
/// Authority token (re-read when it changes).
fn routed_exporter(org_id: &str) -> Yaml {
    tempo()
        .entry(
            "headers",
            MapBuilder::new().str("X-Scope-OrgID", org_id).build(),
        )
        .entry("auth", auth("bearertokenauth/tempo"))
        .build()
}

/// The processors of a signal's pipeline, in order (only traces are tail-sampled, and not
/// again where the SDK samples, and only in the sampling tier of the two-tier variant; metrics
/// skip the value masking; the sampling tier receives traces already redacted by the first).
fn signal_processors(profile: &Profile, shape: Shape, signal: &str) -> &'static [&'static str] {
    match signal {
        "traces" if shape == Shape::Sampling => &[
            "memory_limiter",
            "transform/redact-keys",
            "tail_sampling",
            "batch",
        ],
        // The first tier sets the spans' tenant from the header, for the second to route by.
        "traces" if shape == Shape::LoadBalancer => &[
            "memory_limiter",
            "transform/redact-keys",
            "redaction",
            "attributes/tenant",
            "batch",
        ],
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
/// chose (sampling, metrics interval, destinations), the tier, the collector version it is
/// written for, and where certificates and tokens come from.
fn header(
    profile: &Profile,
    shape: Shape,
    tenants: TenantRoutes<'_>,
    authenticators: &[&str],
) -> Vec<String> {
    let sampling = match (profile.sampling.mode, profile.sampling.site) {
        (SamplingMode::AlwaysOn, _) => "every trace kept".to_owned(),
        (SamplingMode::Tail, site) => format!(
            "tail sampling {}: errors {} %, slower than {} ms {} %, incidents 100 %, others {} %",
            match (site, shape) {
                (SamplingSite::Sdk, _) => "in the SDK (the collector keeps what it receives)",
                (SamplingSite::Collector, Shape::LoadBalancer) => "in the second tier",
                (SamplingSite::Collector, _) => "here",
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
        "Tempo, Prometheus (remote write, and a scrape endpoint on :9464) and Loki over mTLS"
    };
    let command = match shape {
        Shape::Single => format!("generate collector --profile {}", profile.name),
        _ => format!("generate collector --profile {} (two tiers)", profile.name),
    };
    let mut lines = vec![
        generated_notice(&command, "the profile and the SDK's redaction rules"),
        format!(
            "Profile `{}`: {sampling}; metrics every {}; {destinations}.",
            profile.name,
            duration(profile.export_interval_ms)
        ),
    ];
    match shape {
        Shape::Single => {}
        Shape::LoadBalancer => lines.push(
            "Tier 1 of 2: every span of a trace goes to the same tier-2 replica (loadbalancing, routing_key traceID, replicas found in DNS at $STELLAOPS_SAMPLING_TIER_HOSTNAME); metrics and logs go straight to the backends."
                .to_owned(),
        ),
        Shape::Sampling => lines.push(
            "Tier 2 of 2: receives traces from tier 1 only, whole, tail-samples them and sends them to Tempo."
                .to_owned(),
        ),
    }
    lines.push(format!("Written for {COLLECTOR_VERSION}."));
    if !profile.sealed {
        lines.push(format!(
            "Tenant: the `{TENANT_METADATA_KEY}` request header, kept per batch and sent to Tempo and Loki as X-Scope-OrgID (records without one: $STELLAOPS_FALLBACK_TENANT, default `stellaops`)."
        ));
        if routed(profile, shape) && tenants.tenants.is_empty() {
            lines.push(format!(
                "Tail sampling drops the request's metadata, and no tenants file was given: every sampled span goes to otlp/tempo-{NO_TENANT_ROUTE}, under the fallback tenant. Generate with --tenants FILE to keep tenants' traces apart."
            ));
        } else if routed(profile, shape) {
            lines.push(format!(
                "Tail sampling drops the request's metadata: the header is copied onto each span as `{TENANT_ATTRIBUTE}` first, and sampled spans are routed by it to one Tempo exporter per tenant ({} from {}); spans of other tenants go to otlp/tempo-{UNLISTED_ROUTE} (alerted on), spans without one to otlp/tempo-{NO_TENANT_ROUTE}, both under the fallback tenant. Regenerate with --tenants FILE when tenants change.",
                tenants.tenants.len(),
                tenants.source
            ));
        }
        let read_at_start: Vec<&str> = [
            ("headers_setter/tempo", "tempo.token"),
            ("headers_setter/loki", "loki.token"),
        ]
        .into_iter()
        .filter(|(setter, _)| authenticators.contains(setter))
        .map(|(_, file)| file)
        .collect();
        let mut tokens = format!(
            "Bearer tokens are read from {TOKEN_DIR} (minted by Authority): bearertokenauth re-reads its file when it changes"
        );
        match read_at_start.as_slice() {
            [] => tokens.push('.'),
            [one] => tokens.push_str(&format!(
                "; {one} is read at start, so restart the collector when it rotates."
            )),
            files => tokens.push_str(&format!(
                "; {} are read at start, so restart the collector when they rotate.",
                files.join(" and ")
            )),
        }
        lines.push(tokens);
    }
    lines.push(format!(
        "Certificates are read from {TLS_DIR}; endpoints can be overridden with the STELLAOPS_* variables."
    ));
    lines
}

/// The collector configurations of each profile, in order: its single collector, then its
/// two-tier variant where it has one ([`collector_tiers`]), routing `routes`' tenants.
///
/// # Errors
///
/// As [`collector_for`].
pub fn collectors(
    profiles: &[Profile],
    routes: TenantRoutes<'_>,
) -> Result<Vec<Artefact>, ArtefactError> {
    let mut out = Vec::new();
    for profile in profiles {
        out.push(collector_for(profile, routes)?);
        out.extend(collector_tiers(profile, routes)?);
    }
    Ok(out)
}
