//! Storage configuration from a tenants file: Loki and Tempo per-tenant runtime overrides
//! (retention and ingestion limits) and the Prometheus scrape job for the collectors'
//! scrape endpoint.
//!
//! The tenants file is TOML, one `[[tenant]]` table per tenant:
//!
//! ```toml
//! [[tenant]]
//! id = "acme"                # required: 1-64 of a-z 0-9 - _, starting with a letter or digit
//! retention = "30d"          # required: whole hours, days or weeks (h, d, w), 24h to 3650d
//! ingestion_rate_mb = 8      # MiB/s, default 4
//! ingestion_burst_mb = 16    # MiB, at least the rate, default 6
//! max_streams = 10000        # Loki streams, default 5000
//! max_traces = 20000         # Tempo live traces, default 10000
//! ```
//!
//! Reading is strict: an unknown key, a missing or malformed value, a repeated id or a file
//! with no tenant is a [`TenantsError`] naming the tenant and the field.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::yaml::{MapBuilder, Yaml, document};
use super::{Artefact, ArtefactKind, generated_notice};

/// The example tenants file, also written as `storage/tenants.example.toml` by
/// [`write_all`](super::write_all), from which the committed storage files are generated.
pub const EXAMPLE_TENANTS: &str = include_str!("tenants.example.toml");
/// The example's file name.
pub const EXAMPLE_TENANTS_FILE: &str = "tenants.example.toml";
/// The Loki runtime overrides file written by [`storage`].
pub const LOKI_OVERRIDES_FILE: &str = "loki-overrides.yaml";
/// The Tempo per-tenant overrides file written by [`storage`].
pub const TEMPO_OVERRIDES_FILE: &str = "tempo-overrides.yaml";
/// The Prometheus scrape configuration written by [`storage`].
pub const PROMETHEUS_SCRAPE_FILE: &str = "prometheus-scrape.yaml";

/// The largest tenants file read (1 MiB); larger ones are refused before parsing.
pub const MAX_TENANTS_FILE_BYTES: usize = 1 << 20;
/// The most tenants one file may hold.
pub const MAX_TENANTS: usize = 10_000;

const MIB: u64 = 1 << 20;
const MIN_RETENTION_HOURS: u64 = 24;
const MAX_RETENTION_HOURS: u64 = 3650 * 24;
/// Upper bound of every limit, far above any real tenant's, so a typo is caught.
const MAX_LIMIT: i64 = 1_000_000;
const KEYS: [&str; 6] = [
    "id",
    "retention",
    "ingestion_rate_mb",
    "ingestion_burst_mb",
    "max_streams",
    "max_traces",
];

/// One tenant's retention and ingestion limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant id, as in the `x-stellaops-tenant` header and `X-Scope-OrgID`.
    pub id: String,
    /// How long its logs and traces are kept, in hours.
    pub retention_hours: u64,
    /// Sustained ingestion, MiB per second (default 4).
    pub ingestion_rate_mb: u32,
    /// Burst size, MiB (default 6; at least the rate).
    pub ingestion_burst_mb: u32,
    /// Loki streams at once (default 5000).
    pub max_streams: u32,
    /// Tempo live traces at once (default 10000).
    pub max_traces: u32,
}

/// Why a tenants file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantsError {
    /// The file could not be read.
    #[error("cannot read the tenants file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TENANTS_FILE_BYTES`].
    #[error("tenants file is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The file is not valid TOML.
    #[error("tenants file is not valid TOML")]
    Toml(#[source] toml::de::Error),
    /// A top-level key other than `tenant`.
    #[error("unknown top-level key `{key}` (only `[[tenant]]` tables are allowed)")]
    UnknownTopLevelKey {
        /// The key.
        key: String,
    },
    /// `tenant` is not an array of tables, or holds no tenant.
    #[error("no tenant: the file needs at least one `[[tenant]]` table")]
    NoTenant,
    /// More tenants than [`MAX_TENANTS`].
    #[error("more than {max} tenants")]
    TooManyTenants {
        /// The limit.
        max: usize,
    },
    /// A `[[tenant]]` entry is not a table.
    #[error("tenant #{index} is not a table")]
    NotATable {
        /// Its position, from 1.
        index: usize,
    },
    /// A tenant without an `id`, or with one that is not a string.
    #[error("tenant #{index}: `id` is missing or not a string")]
    MissingId {
        /// Its position, from 1.
        index: usize,
    },
    /// An id that breaks the id rules.
    #[error("tenant `{tenant}`: invalid id: {reason}")]
    InvalidId {
        /// The id as written.
        tenant: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same id twice.
    #[error("tenant `{tenant}` is listed more than once")]
    DuplicateId {
        /// The id.
        tenant: String,
    },
    /// A key the tenant table does not know.
    #[error("tenant `{tenant}`: unknown field `{field}`")]
    UnknownField {
        /// The tenant.
        tenant: String,
        /// The key.
        field: String,
    },
    /// A required field left out.
    #[error("tenant `{tenant}`: missing field `{field}`")]
    MissingField {
        /// The tenant.
        tenant: String,
        /// The field.
        field: &'static str,
    },
    /// A field whose value is malformed or out of range.
    #[error("tenant `{tenant}`: invalid `{field}` = {value}: {reason}")]
    InvalidField {
        /// The tenant.
        tenant: String,
        /// The field.
        field: &'static str,
        /// The value as written in TOML.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads and checks a tenants file.
///
/// # Errors
///
/// [`TenantsError::Read`] when it cannot be read, else as [`parse_tenants`].
pub fn read_tenants(path: &Path) -> Result<Vec<Tenant>, TenantsError> {
    let read = |source| TenantsError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    // Reads at most one byte past the limit, whatever the file grows to meanwhile.
    let mut text = String::new();
    file.take(MAX_TENANTS_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    parse_tenants(&text)
}

/// Parses and checks the text of a tenants file; tenants come back in file order.
///
/// ```
/// use stellaops_telemetry_core::artefacts::{TenantsError, parse_tenants};
///
/// let tenants = parse_tenants("[[tenant]]\nid = \"acme\"\nretention = \"30d\"\n")?;
/// assert_eq!(tenants[0].retention_hours, 720);
/// let err = parse_tenants("[[tenant]]\nid = \"acme\"\nretention = \"30d\"\nretention_days = 3\n");
/// assert!(matches!(err, Err(TenantsError::UnknownField { .. })));
/// # Ok::<(), TenantsError>(())
/// ```
///
/// # Errors
///
/// A [`TenantsError`] naming the tenant and field at fault.
pub fn parse_tenants(text: &str) -> Result<Vec<Tenant>, TenantsError> {
    if text.len() > MAX_TENANTS_FILE_BYTES {
        return Err(TenantsError::TooLarge {
            len: text.len() as u64,
            max: MAX_TENANTS_FILE_BYTES,
        });
    }
    let table: toml::Table = text.parse().map_err(TenantsError::Toml)?;
    if let Some(key) = table.keys().find(|k| k.as_str() != "tenant") {
        return Err(TenantsError::UnknownTopLevelKey { key: key.clone() });
    }
    let entries = match table.get("tenant") {
        Some(toml::Value::Array(entries)) if !entries.is_empty() => entries,
        _ => return Err(TenantsError::NoTenant),
    };
    if entries.len() > MAX_TENANTS {
        return Err(TenantsError::TooManyTenants { max: MAX_TENANTS });
    }
    let mut seen = HashSet::with_capacity(entries.len());
    let mut tenants = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let toml::Value::Table(fields) = entry else {
            return Err(TenantsError::NotATable { index: i + 1 });
        };
        let tenant = tenant(i + 1, fields)?;
        if !seen.insert(tenant.id.clone()) {
            return Err(TenantsError::DuplicateId { tenant: tenant.id });
        }
        tenants.push(tenant);
    }
    Ok(tenants)
}

/// One `[[tenant]]` table, checked.
fn tenant(index: usize, fields: &toml::Table) -> Result<Tenant, TenantsError> {
    let Some(toml::Value::String(id)) = fields.get("id") else {
        return Err(TenantsError::MissingId { index });
    };
    check_id(id)?;
    if let Some(field) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(TenantsError::UnknownField {
            tenant: id.clone(),
            field: field.clone(),
        });
    }
    let invalid =
        |field: &'static str, value: &toml::Value, reason: String| TenantsError::InvalidField {
            tenant: id.clone(),
            field,
            value: value.to_string(),
            reason,
        };
    let retention_hours = match fields.get("retention") {
        None => {
            return Err(TenantsError::MissingField {
                tenant: id.clone(),
                field: "retention",
            });
        }
        Some(value) => retention(value).map_err(|reason| invalid("retention", value, reason))?,
    };
    let limit = |field: &'static str, default: u32| -> Result<u32, TenantsError> {
        match fields.get(field) {
            None => Ok(default),
            Some(value @ toml::Value::Integer(n)) if (1..=MAX_LIMIT).contains(n) => {
                u32::try_from(*n).map_err(|_| invalid(field, value, "out of range".to_owned()))
            }
            Some(value) => Err(invalid(
                field,
                value,
                format!("expected a whole number from 1 to {MAX_LIMIT}"),
            )),
        }
    };
    let ingestion_rate_mb = limit("ingestion_rate_mb", 4)?;
    let ingestion_burst_mb = limit("ingestion_burst_mb", 6.max(ingestion_rate_mb))?;
    if ingestion_burst_mb < ingestion_rate_mb {
        let value = toml::Value::Integer(i64::from(ingestion_burst_mb));
        return Err(invalid(
            "ingestion_burst_mb",
            &value,
            format!("less than ingestion_rate_mb ({ingestion_rate_mb})"),
        ));
    }
    Ok(Tenant {
        id: id.clone(),
        retention_hours,
        ingestion_rate_mb,
        ingestion_burst_mb,
        max_streams: limit("max_streams", 5000)?,
        max_traces: limit("max_traces", 10_000)?,
    })
}

pub(crate) fn check_id(id: &str) -> Result<(), TenantsError> {
    let invalid = |reason| TenantsError::InvalidId {
        tenant: id.to_owned(),
        reason,
    };
    if id.is_empty() || id.len() > 64 {
        return Err(invalid("it must be 1 to 64 characters long"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "only lowercase letters, digits, `-` and `_` are allowed",
        ));
    }
    if !id
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(invalid("it must start with a letter or a digit"));
    }
    Ok(())
}

/// A retention (`"720h"`, `"30d"`, `"4w"`) in hours, within the bounds.
fn retention(value: &toml::Value) -> Result<u64, String> {
    let toml::Value::String(text) = value else {
        return Err("expected a string such as \"30d\"".to_owned());
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let hours_per_unit = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => return Err("expected a whole number followed by `h`, `d` or `w`".to_owned()),
    };
    // At most 12 digits: the value stays far below u64::MAX before the range check.
    if digits.is_empty() || digits.len() > 12 {
        return Err("expected a whole number followed by `h`, `d` or `w`".to_owned());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a whole number followed by `h`, `d` or `w`".to_owned())?;
    let hours = n * hours_per_unit;
    if !(MIN_RETENTION_HOURS..=MAX_RETENTION_HOURS).contains(&hours) {
        return Err(format!(
            "must be from {MIN_RETENTION_HOURS}h to {MAX_RETENTION_HOURS}h (3650d)"
        ));
    }
    Ok(hours)
}

/// The storage configuration for `tenants`: [`LOKI_OVERRIDES_FILE`],
/// [`TEMPO_OVERRIDES_FILE`] and [`PROMETHEUS_SCRAPE_FILE`] (kind
/// [`ArtefactKind::Storage`]). `source` names the tenants file in each file's first line.
///
/// ```
/// use stellaops_telemetry_core::artefacts::{parse_tenants, storage, EXAMPLE_TENANTS};
///
/// let files = storage(&parse_tenants(EXAMPLE_TENANTS)?, "tenants.example.toml");
/// assert_eq!(files.len(), 3);
/// assert!(files[0].contents.contains("retention_period: \"720h\""));
/// # Ok::<(), stellaops_telemetry_core::artefacts::TenantsError>(())
/// ```
pub fn storage(tenants: &[Tenant], source: &str) -> Vec<Artefact> {
    let notice = |command: &str| {
        vec![generated_notice(
            &format!("generate storage --tenants {source}"),
            command,
        )]
    };
    vec![
        Artefact {
            kind: ArtefactKind::Storage,
            file_name: LOKI_OVERRIDES_FILE.to_owned(),
            contents: document(&loki_header(&notice("the tenants file")), &loki(tenants)),
        },
        Artefact {
            kind: ArtefactKind::Storage,
            file_name: TEMPO_OVERRIDES_FILE.to_owned(),
            contents: document(&tempo_header(&notice("the tenants file")), &tempo(tenants)),
        },
        Artefact {
            kind: ArtefactKind::Storage,
            file_name: PROMETHEUS_SCRAPE_FILE.to_owned(),
            contents: document(
                &scrape_header(&notice("the collector configuration")),
                &scrape(),
            ),
        },
    ]
}

/// The storage files of the example tenants, and the example itself: what `generate all`
/// writes to `storage/`.
pub(crate) fn example() -> Result<Vec<Artefact>, TenantsError> {
    let mut files = storage(&parse_tenants(EXAMPLE_TENANTS)?, EXAMPLE_TENANTS_FILE);
    files.push(Artefact {
        kind: ArtefactKind::Storage,
        file_name: EXAMPLE_TENANTS_FILE.to_owned(),
        contents: format!(
            "# {}\n{EXAMPLE_TENANTS}",
            generated_notice(
                "generate all",
                "its built-in example (copy it to write your own)"
            )
        ),
    });
    Ok(files)
}

fn with(lines: &[String], more: &[&str]) -> Vec<String> {
    let mut out = lines.to_vec();
    out.extend(more.iter().map(|l| (*l).to_owned()));
    out
}

fn loki_header(notice: &[String]) -> Vec<String> {
    with(
        notice,
        &[
            "Loki runtime configuration (limits_config.per_tenant_override_config): retention and",
            "ingestion limits per tenant; retention needs the compactor with retention_enabled.",
        ],
    )
}

fn tempo_header(notice: &[String]) -> Vec<String> {
    with(
        notice,
        &[
            "Tempo per-tenant overrides (overrides.per_tenant_override_config), in the scoped format",
            "of Tempo 2.3 and later. A tenant's block may leave unset fields at zero rather than at the",
            "defaults, so every block sets each limit; max_bytes_per_trace is Tempo's default, 5 MB.",
        ],
    )
}

fn scrape_header(notice: &[String]) -> Vec<String> {
    with(
        notice,
        &[
            "Prometheus scrape jobs for the collectors: their scrape endpoint (:9464, the alternative to",
            "remote write; mTLS and the Authority token the collector checks) and their own metrics (:8888).",
            "Merge its scrape_configs into prometheus.yml (Prometheus 2.43 and later can load it as it is",
            "with scrape_config_files).",
            "Replicas are found in DNS; certificates and the token file are read from /etc/prometheus/stellaops.",
        ],
    )
}

fn loki(tenants: &[Tenant]) -> Yaml {
    let mut overrides = MapBuilder::new();
    for t in tenants {
        overrides = overrides.entry(
            t.id.clone(),
            MapBuilder::new()
                .str("retention_period", format!("{}h", t.retention_hours))
                .raw("ingestion_rate_mb", t.ingestion_rate_mb)
                .raw("ingestion_burst_size_mb", t.ingestion_burst_mb)
                .raw("max_global_streams_per_user", t.max_streams)
                .build(),
        );
    }
    MapBuilder::new()
        .entry("overrides", overrides.build())
        .build()
}

fn tempo(tenants: &[Tenant]) -> Yaml {
    let mut overrides = MapBuilder::new();
    for t in tenants {
        overrides = overrides.entry(
            t.id.clone(),
            MapBuilder::new()
                .entry(
                    "ingestion",
                    MapBuilder::new()
                        .raw("rate_limit_bytes", u64::from(t.ingestion_rate_mb) * MIB)
                        .raw("burst_size_bytes", u64::from(t.ingestion_burst_mb) * MIB)
                        .raw("max_traces_per_user", t.max_traces)
                        .build(),
                )
                .entry(
                    "global",
                    MapBuilder::new()
                        .raw("max_bytes_per_trace", 5_000_000)
                        .build(),
                )
                .entry(
                    "compaction",
                    MapBuilder::new()
                        .str("block_retention", format!("{}h", t.retention_hours))
                        .build(),
                )
                .build(),
        );
    }
    MapBuilder::new()
        .entry("overrides", overrides.build())
        .build()
}

const PROMETHEUS_DIR: &str = "/etc/prometheus/stellaops";

/// Collector replicas, found in DNS under the name their certificate holds.
fn dns_targets(port: u16) -> Yaml {
    Yaml::Seq(vec![
        MapBuilder::new()
            .entry("names", Yaml::Flow(vec!["otelcol".to_owned()]))
            .str("type", "A")
            .raw("port", port)
            .build(),
    ])
}

fn scrape() -> Yaml {
    let exporter = MapBuilder::new()
        .str("job_name", "stellaops-collector")
        .str("scheme", "https")
        .entry(
            "tls_config",
            MapBuilder::new()
                .str("ca_file", format!("{PROMETHEUS_DIR}/ca.crt"))
                .str("cert_file", format!("{PROMETHEUS_DIR}/client.crt"))
                .str("key_file", format!("{PROMETHEUS_DIR}/client.key"))
                // Targets are addresses; the certificate names the service.
                .str("server_name", "otelcol")
                .build(),
        )
        .entry(
            "authorization",
            MapBuilder::new()
                .str("type", "Bearer")
                .str(
                    "credentials_file",
                    format!("{PROMETHEUS_DIR}/collector-scrape.token"),
                )
                .build(),
        )
        .entry("dns_sd_configs", dns_targets(9464))
        .build();
    let own = MapBuilder::new()
        .str("job_name", "stellaops-collector-self")
        .str("scheme", "http")
        .entry("dns_sd_configs", dns_targets(8888))
        .build();
    MapBuilder::new()
        .entry("scrape_configs", Yaml::Seq(vec![exporter, own]))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> TenantsError {
        parse_tenants(text).unwrap_err()
    }

    #[test]
    fn retention_units_convert_to_hours_and_bounds_hold() {
        let r = |s: &str| retention(&toml::Value::String(s.to_owned()));
        assert_eq!(r("24h"), Ok(24));
        assert_eq!(r("30d"), Ok(720));
        assert_eq!(r("2w"), Ok(336));
        assert!(r("23h").is_err());
        assert!(r("3651d").is_err());
        assert!(r("30").is_err());
        assert!(r("d").is_err());
        assert!(r("1.5d").is_err());
        assert!(r("99999999999999999999h").is_err());
        assert!(retention(&toml::Value::Integer(30)).is_err());
    }

    #[test]
    fn deeply_nested_values_are_refused_without_exhausting_the_stack() {
        let depth = MAX_TENANTS_FILE_BYTES / 2 - 16;
        let text = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_tenants(&text).is_err());
    }

    #[test]
    fn burst_below_rate_names_the_field() {
        let e = err(
            "[[tenant]]\nid = \"a\"\nretention = \"1d\"\ningestion_rate_mb = 8\ningestion_burst_mb = 4\n",
        );
        assert!(
            matches!(&e, TenantsError::InvalidField { tenant, field: "ingestion_burst_mb", .. } if tenant == "a"),
            "{e}"
        );
    }

    #[test]
    fn defaults_fill_the_limits_and_the_burst_follows_a_high_rate() {
        let t = parse_tenants(
            "[[tenant]]\nid = \"a\"\nretention = \"1d\"\n[[tenant]]\nid = \"b\"\nretention = \"1d\"\ningestion_rate_mb = 10\n",
        )
        .unwrap();
        assert_eq!(
            (
                t[0].ingestion_rate_mb,
                t[0].ingestion_burst_mb,
                t[0].max_streams,
                t[0].max_traces
            ),
            (4, 6, 5000, 10_000)
        );
        assert_eq!(t[1].ingestion_burst_mb, 10);
    }
}
