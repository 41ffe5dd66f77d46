//! Profiles: the named sets of settings (default, forensic, airgap), as data.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::Profile;
//!
//! let diff = Profile::diff(&Profile::default_profile(), &Profile::forensic());
//! assert!(diff.iter().any(|d| d.setting == "log_level"));
//! assert!(diff.iter().any(|d| d.setting == "sampling.base_ratio"));
//! ```
//!
//! A profile changes settings on the road (sampler share, log filter, attribute set, export
//! cadence, exporters), never the road itself. Builder setters called after
//! [`TelemetryBuilder::profile`](crate::TelemetryBuilder::profile) win over the profile.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The severity threshold of a pipeline's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational records and above.
    Info,
    /// Debug records and above.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The lowercase name, as written in JSON log lines and `OTEL_LOG_LEVEL`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// Parses a level name case-insensitively (`warning` is accepted for `warn`).
    pub fn parse(value: &str) -> Option<LogLevel> {
        match value.trim().to_ascii_lowercase().as_str() {
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" => Some(LogLevel::Trace),
            _ => None,
        }
    }

    /// The matching `tracing` level filter.
    pub fn to_filter(self) -> tracing_core::LevelFilter {
        match self {
            LogLevel::Error => tracing_core::LevelFilter::ERROR,
            LogLevel::Warn => tracing_core::LevelFilter::WARN,
            LogLevel::Info => tracing_core::LevelFilter::INFO,
            LogLevel::Debug => tracing_core::LevelFilter::DEBUG,
            LogLevel::Trace => tracing_core::LevelFilter::TRACE,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which attributes instrumentation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeSet {
    /// The catalogue's required attributes and the stable semantic conventions.
    Standard,
    /// Standard plus the optional, more detailed attributes (forensic investigations).
    Extended,
}

/// Trace sampling settings.
///
/// The profile carries the tail-sampling policy of the profile table and where it runs
/// ([`SamplingSite`]): in the generated collector configuration (default, forensic), or in the
/// SDK's own tail sampler, for sites without a collector (airgap). Where the collector samples,
/// the SDK keeps every span; `OTEL_TRACES_SAMPLER` can choose a head sampler either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSettings {
    /// `tail` (decide when a trace completes) or `always_on`.
    pub mode: SamplingMode,
    /// Share of traces containing an error that is kept (0.0–1.0).
    pub error_ratio: f64,
    /// A trace slower than this many milliseconds counts as slow.
    pub slow_threshold_ms: u64,
    /// Share of slow traces kept (0.0–1.0).
    pub slow_ratio: f64,
    /// Share of all other traces kept (0.0–1.0).
    pub base_ratio: f64,
    /// Where tail sampling runs (default `collector`; airgap `sdk`).
    #[serde(default)]
    pub site: SamplingSite,
}

/// Where a profile's tail sampling runs.
///
/// ```
/// use stellaops_telemetry_core::{Profile, SamplingSite};
///
/// assert_eq!(Profile::default_profile().sampling.site, SamplingSite::Collector);
/// assert_eq!(Profile::airgap().sampling.site, SamplingSite::Sdk);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplingSite {
    /// The generated collector configuration samples; the SDK keeps every span (the default).
    #[default]
    Collector,
    /// The SDK's tail sampler decides before export, and the collector keeps what it receives.
    Sdk,
}

impl SamplingSite {
    /// The lowercase name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingSite::Collector => "collector",
            SamplingSite::Sdk => "sdk",
        }
    }
}

/// How traces are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// Decide per trace once it completes (errors, slow traces, then a share of the rest).
    Tail,
    /// Keep every trace.
    AlwaysOn,
}

/// An exporter a signal can be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExporterKind {
    /// OTLP over gRPC or HTTP/protobuf (see `OTEL_EXPORTER_OTLP_PROTOCOL`).
    Otlp,
    /// OTLP files under the telemetry directory (JSON Lines or delimited protobuf).
    File,
    /// Human-readable output on stdout, for development (`console` in `OTEL_*_EXPORTER`).
    #[serde(alias = "console")]
    Stdout,
}

impl ExporterKind {
    /// The name used in configuration files and `OTEL_*_EXPORTER`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExporterKind::Otlp => "otlp",
            ExporterKind::File => "file",
            ExporterKind::Stdout => "stdout",
        }
    }
}

/// The exporters of each signal. An empty list exports nothing for that signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterSelection {
    /// Span exporters.
    pub traces: Vec<ExporterKind>,
    /// Metric exporters.
    pub metrics: Vec<ExporterKind>,
    /// OpenTelemetry log-record exporters (the JSON log lines are configured separately).
    pub logs: Vec<ExporterKind>,
}

impl ExporterSelection {
    /// The same exporters for every signal.
    pub fn all(kinds: &[ExporterKind]) -> Self {
        ExporterSelection {
            traces: kinds.to_vec(),
            metrics: kinds.to_vec(),
            logs: kinds.to_vec(),
        }
    }
}

/// A named set of telemetry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// The profile's name (`default`, `forensic`, `airgap`).
    pub name: String,
    /// Trace sampling.
    pub sampling: SamplingSettings,
    /// Log severity threshold.
    pub log_level: LogLevel,
    /// Retention tag, in days. Log lines carry their level's class (error 180 d, warn 90 d,
    /// info 30 d, debug 7 d); a profile value above 30 d raises every record to it (forensic).
    pub retention_days: u32,
    /// Which attributes instrumentation records.
    pub attributes: AttributeSet,
    /// Metric export interval in milliseconds.
    pub export_interval_ms: u64,
    /// Which exporters run for each signal.
    pub exporters: ExporterSelection,
    /// Whether metrics are also offered for a Prometheus scrape (`GET /metrics`).
    pub prometheus_scrape: bool,
    /// Sealed mode: no exporter may leave the host (network exporters fall back to files).
    pub sealed: bool,
    /// Redaction: extra sensitive keys and the strict (allow-list) mode, off in every
    /// built-in profile.
    #[serde(default)]
    pub redaction: crate::redaction::RedactionSettings,
}

impl Profile {
    /// The names of the built-in profiles.
    pub const NAMES: [&'static str; 3] = ["default", "forensic", "airgap"];

    /// The everyday profile: tail sampling (errors and slow traces kept, 10 % of the rest),
    /// info logs, 30-day retention, OTLP every 60 s plus a Prometheus scrape.
    pub fn default_profile() -> Profile {
        Profile {
            name: "default".to_owned(),
            sampling: SamplingSettings {
                mode: SamplingMode::Tail,
                error_ratio: 1.0,
                slow_threshold_ms: 2_000,
                slow_ratio: 1.0,
                base_ratio: 0.1,
                site: SamplingSite::Collector,
            },
            log_level: LogLevel::Info,
            retention_days: 30,
            attributes: AttributeSet::Standard,
            export_interval_ms: 60_000,
            exporters: ExporterSelection::all(&[ExporterKind::Otlp]),
            prometheus_scrape: true,
            sealed: false,
            redaction: crate::redaction::RedactionSettings::default(),
        }
    }

    /// Incident investigation: every trace kept, debug logs, 180-day retention, extended
    /// attributes, export every 10 s.
    pub fn forensic() -> Profile {
        Profile {
            name: "forensic".to_owned(),
            sampling: SamplingSettings {
                mode: SamplingMode::AlwaysOn,
                error_ratio: 1.0,
                slow_threshold_ms: 2_000,
                slow_ratio: 1.0,
                base_ratio: 1.0,
                site: SamplingSite::Collector,
            },
            log_level: LogLevel::Debug,
            retention_days: 180,
            attributes: AttributeSet::Extended,
            export_interval_ms: 10_000,
            ..Profile::default_profile()
        }
    }

    /// Air-gapped sites: as default, but files only, sealed (no network exporter), and tail
    /// sampling in the SDK (there is no collector to do it).
    pub fn airgap() -> Profile {
        let default = Profile::default_profile();
        Profile {
            name: "airgap".to_owned(),
            sampling: SamplingSettings {
                site: SamplingSite::Sdk,
                ..default.sampling
            },
            exporters: ExporterSelection::all(&[ExporterKind::File]),
            prometheus_scrape: false,
            sealed: true,
            ..default
        }
    }

    /// Every built-in profile, in the order of [`Profile::NAMES`].
    pub fn builtin() -> Vec<Profile> {
        vec![
            Profile::default_profile(),
            Profile::forensic(),
            Profile::airgap(),
        ]
    }

    /// Looks a built-in profile up by name (case-insensitive).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProfile`] naming the value when it is not a built-in profile.
    pub fn by_name(name: &str) -> Result<Profile, ConfigError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(Profile::default_profile()),
            "forensic" => Ok(Profile::forensic()),
            "airgap" | "air-gap" => Ok(Profile::airgap()),
            _ => Err(ConfigError::UnknownProfile {
                name: name.to_owned(),
            }),
        }
    }

    /// The settings whose values differ between `a` and `b`, sorted by dotted setting name
    /// (the profile name itself is not a setting and is left out).
    pub fn diff(a: &Profile, b: &Profile) -> Vec<ProfileDifference> {
        let mut out = Vec::new();
        let (Ok(left), Ok(right)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
            return out;
        };
        diff_values("", &left, &right, &mut out);
        out.retain(|d| d.setting != "name");
        out
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::default_profile()
    }
}

/// One setting that differs between two profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDifference {
    /// Dotted setting name, e.g. `sampling.base_ratio`.
    pub setting: String,
    /// The value in the first profile, as JSON.
    pub left: String,
    /// The value in the second profile, as JSON.
    pub right: String,
}

impl fmt::Display for ProfileDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.setting, self.left, self.right)
    }
}

fn diff_values(
    prefix: &str,
    left: &serde_json::Value,
    right: &serde_json::Value,
    out: &mut Vec<ProfileDifference>,
) {
    use serde_json::Value;
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            for (key, lv) in l {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match r.get(key) {
                    Some(rv) => diff_values(&path, lv, rv, out),
                    None => out.push(ProfileDifference {
                        setting: path,
                        left: lv.to_string(),
                        right: "null".to_owned(),
                    }),
                }
            }
        }
        _ if left != right => out.push(ProfileDifference {
            setting: prefix.to_owned(),
            left: left.to_string(),
            right: right.to_string(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_carry_the_spec_values() {
        let d = Profile::default_profile();
        assert_eq!(d.sampling.mode, SamplingMode::Tail);
        assert_eq!(
            (
                d.sampling.error_ratio,
                d.sampling.slow_threshold_ms,
                d.sampling.base_ratio
            ),
            (1.0, 2_000, 0.1)
        );
        assert_eq!(
            (d.log_level, d.retention_days, d.export_interval_ms),
            (LogLevel::Info, 30, 60_000)
        );
        let f = Profile::forensic();
        assert_eq!(f.sampling.base_ratio, 1.0);
        assert_eq!(
            (
                f.log_level,
                f.retention_days,
                f.export_interval_ms,
                f.attributes
            ),
            (LogLevel::Debug, 180, 10_000, AttributeSet::Extended)
        );
        let a = Profile::airgap();
        assert!(a.sealed);
        assert_eq!(a.sampling.site, SamplingSite::Sdk);
        assert_eq!(d.sampling.site, SamplingSite::Collector);
        assert_eq!(a.exporters, ExporterSelection::all(&[ExporterKind::File]));
    }

    #[test]
    fn diff_lists_exactly_the_differing_settings() {
        let diff = Profile::diff(&Profile::default_profile(), &Profile::airgap());
        let names: Vec<_> = diff.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(
            names,
            [
                "exporters.logs",
                "exporters.metrics",
                "exporters.traces",
                "prometheus_scrape",
                "sampling.site",
                "sealed"
            ]
        );
        assert!(Profile::diff(&Profile::forensic(), &Profile::forensic()).is_empty());
    }

    #[test]
    fn profiles_round_trip_through_serde_and_reject_unknown_fields() {
        for p in Profile::builtin() {
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Profile>(&text).unwrap(), p);
        }
        let mut v = serde_json::to_value(Profile::forensic()).unwrap();
        v["sampling"]["bogus"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Profile>(v).is_err());
        // A profile written before the sampling site existed still reads, as `collector`.
        let mut old = serde_json::to_value(Profile::airgap()).unwrap();
        old["sampling"].as_object_mut().unwrap().remove("site");
        let read: Profile = serde_json::from_value(old).unwrap();
        assert_eq!(read.sampling.site, SamplingSite::Collector);
    }

    #[test]
    fn unknown_profile_names_the_value() {
        let err = Profile::by_name("forensik").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `forensik` (expected one of default, forensic, airgap)"
        );
    }
}
