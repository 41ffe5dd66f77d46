//! Configuration: the serde [`TelemetryConfig`] (file form) and its validation.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::TelemetryConfig;
//!
//! let config = TelemetryConfig::from_toml_str(r#"
//!     service_name = "scanner"
//!     profile = "forensic"
//!     [otlp]
//!     endpoint = "http://127.0.0.1:4317"
//!     protocol = "grpc"
//! "#)?;
//! assert_eq!(config.profile.as_deref(), Some("forensic"));
//! # Ok::<(), stellaops_telemetry_core::ConfigError>(())
//! ```
//!
//! Two doors, one room: a config file (`deny_unknown_fields`) and the builder. A file is turned
//! into builder calls by [`TelemetryBuilder::config`](crate::TelemetryBuilder::config), so all
//! validation happens in `build()`. The environment is read only by [`TelemetryConfig::from_env`]
//! (see [`env`](crate::env) for the table of variables).

pub(crate) mod env;
pub(crate) mod parse;

use std::collections::BTreeMap;
#[cfg(feature = "config-file")]
use std::path::Path;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::profile::ExporterKind;

pub use env::{ENVIRONMENT, EnvVar};
pub(crate) use parse::*;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The SDK's default.
    Default,
    /// The named profile.
    Profile(String),
    /// A builder method (`TelemetryBuilder::<name>`).
    Setter(&'static str),
    /// An environment variable.
    Environment(String),
    /// A configuration field (dotted path).
    File(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::Profile(name) => write!(f, "profile `{name}`"),
            Origin::Setter(name) => write!(f, "TelemetryBuilder::{name}"),
            Origin::Environment(var) => f.write_str(var),
            Origin::File(field) => write!(f, "field `{field}`"),
        }
    }
}

/// Errors in configuration: every one names the variable or field and the bad value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting asks for a part of the SDK this build leaves out (a cargo feature that is
    /// off).
    #[error("{what} needs the SDK's `{feature}` feature, which this build leaves out")]
    NotBuiltIn {
        /// What was asked for, naming the setting.
        what: String,
        /// The feature (or features) that provide it.
        feature: &'static str,
    },
    /// A profile name that is not built in.
    #[error("unknown profile `{name}` (expected one of default, forensic, airgap)")]
    UnknownProfile {
        /// The name given.
        name: String,
    },
    /// A value that does not parse as its setting's type.
    #[error("invalid {name} `{value}`: {reason}")]
    InvalidValue {
        /// The variable, field or setter the value came from.
        name: String,
        /// The value given, with URL credentials and credential shapes masked (never a header
        /// value).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// An exporter endpoint that is not an absolute http(s) URL.
    #[error("invalid endpoint in {name} `{value}`: {reason}")]
    InvalidEndpoint {
        /// The variable, field or setter the endpoint came from.
        name: String,
        /// The endpoint given, with its userinfo (`REDACTED:REDACTED`), query values and
        /// fragment masked.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A header list entry that is not `key=value` with a valid header name.
    #[error("invalid header entry in {name} `{entry}`: {reason}")]
    InvalidHeader {
        /// The variable or field.
        name: String,
        /// The offending entry, with its value masked.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key file that cannot be read.
    #[error("cannot read {name} file `{}`", path.display())]
    UnreadableCertificate {
        /// The variable or field naming the file.
        name: String,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file that holds no usable PEM data.
    #[error("invalid {name} file `{}`: {reason}", path.display())]
    InvalidCertificate {
        /// The variable or field naming the file.
        name: String,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sampler argument outside its range.
    #[error("invalid {name} `{value}`: expected a ratio between 0.0 and 1.0")]
    SamplerArgOutOfRange {
        /// The variable or field.
        name: String,
        /// The value given (credential shapes masked).
        value: String,
    },
    /// A configuration file that cannot be read.
    #[error("cannot read configuration file `{}`", path.display())]
    UnreadableFile {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file that does not parse (unknown fields included).
    #[error("invalid configuration file `{path}`: {message}")]
    InvalidFile {
        /// The path, or `<string>` for in-memory text.
        path: String,
        /// Where (`line L, column C`) and the parser's message, without the text at fault:
        /// a quoted string in the message is left out and credential shapes are masked, so a
        /// secret on the offending line is never echoed.
        message: String,
    },
}

/// The file form of the configuration. Every field is optional; unset fields keep the
/// profile's or the builder's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `service.name` (OTEL_SERVICE_NAME).
    pub service_name: Option<String>,
    /// `service.version`.
    pub service_version: Option<String>,
    /// `deployment.environment`.
    pub deployment_environment: Option<String>,
    /// Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES).
    pub resource_attributes: BTreeMap<String, String>,
    /// Profile name (STELLAOPS_TELEMETRY_PROFILE).
    pub profile: Option<String>,
    /// Sealed mode (STELLAOPS_TELEMETRY_SEALED).
    pub sealed: Option<bool>,
    /// Local telemetry directory (STELLAOPS_TELEMETRY_DIR).
    pub dir: Option<PathBuf>,
    /// The watched incident file every instance of the service follows
    /// (STELLAOPS_TELEMETRY_INCIDENT_FILE).
    pub incident_file: Option<PathBuf>,
    /// Build a pipeline that records and exports nothing (OTEL_SDK_DISABLED).
    pub disabled: Option<bool>,
    /// Propagators installed globally by `install()` (OTEL_PROPAGATORS).
    pub propagators: Option<Vec<PropagatorKind>>,
    /// The level of the service's logs (overrides the profile's).
    pub log_level: Option<String>,
    /// `RUST_LOG` directives filtering the service's events instead of one level
    /// (`warn,scanner::db=debug`); in one configuration, they win over `log_level`.
    pub log_filter: Option<String>,
    /// The level of the SDK's own diagnostics (OTEL_LOG_LEVEL).
    pub sdk_log_level: Option<String>,
    /// Head sampler name (OTEL_TRACES_SAMPLER).
    pub sampler: Option<String>,
    /// Head sampler argument (OTEL_TRACES_SAMPLER_ARG).
    pub sampler_arg: Option<String>,
    /// Metric export interval in milliseconds (OTEL_METRIC_EXPORT_INTERVAL).
    pub metric_export_interval_ms: Option<u64>,
    /// Exporters per signal (OTEL_{TRACES,METRICS,LOGS}_EXPORTER) and the bound of their
    /// queues.
    pub exporters: ExportersConfig,
    /// OTLP exporter settings (OTEL_EXPORTER_OTLP_*).
    pub otlp: OtlpConfig,
    /// House JSON log outputs.
    pub log_outputs: LogOutputsConfig,
    /// File exporter settings.
    pub files: FilesConfig,
    /// Redaction settings (replace the profile's).
    pub redaction: Option<crate::redaction::RedactionSettings>,
    /// Trace sampling (`[sampling]`): where tail sampling runs.
    pub sampling: SamplingConfig,
    /// Egress settings.
    pub egress: EgressConfig,
    /// Length limits of kept values and count limits of span contents (`[limits]`): each
    /// field set replaces that limit, unset fields keep what earlier calls set (or the
    /// default); the `OTEL_*_LIMIT` variables win over the file's fields, field by field.
    pub limits: LimitsConfig,
    /// The batch processors of spans (`OTEL_BSP_*`) and of log records (`OTEL_BLRP_*`).
    pub batch: BatchConfig,
    /// Where each field's value came from, for error messages and the resolved settings.
    #[serde(skip)]
    pub(crate) origins: BTreeMap<String, Origin>,
    /// Values that were accepted with a warning (see [`TelemetryConfig::warnings`]).
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

/// `[limits]`: the limits of [`ValueLimits`](crate::ValueLimits), each one optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Longest span attribute value, in bytes.
    pub attribute_value_bytes: Option<usize>,
    /// Longest JSON log line field and OTLP log record value, in bytes.
    pub log_value_bytes: Option<usize>,
    /// Longest metric label value, in bytes.
    pub label_value_bytes: Option<usize>,
    /// Most attributes a span keeps.
    pub span_attribute_count: Option<usize>,
    /// Most events a span keeps.
    pub span_event_count: Option<usize>,
    /// Most links a span keeps.
    pub span_link_count: Option<usize>,
    /// Most attributes a span event keeps.
    pub event_attribute_count: Option<usize>,
    /// Most attributes a span link keeps.
    pub link_attribute_count: Option<usize>,
}

impl LimitsConfig {
    /// The fields as (setting, slot) pairs, in one place for `over` and `merge`.
    fn slots(&mut self) -> [&mut Option<usize>; 8] {
        [
            &mut self.attribute_value_bytes,
            &mut self.log_value_bytes,
            &mut self.label_value_bytes,
            &mut self.span_attribute_count,
            &mut self.span_event_count,
            &mut self.span_link_count,
            &mut self.event_attribute_count,
            &mut self.link_attribute_count,
        ]
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == LimitsConfig::default()
    }

    /// `base` with every field set here replacing its limit.
    ///
    /// ```
    /// use stellaops_telemetry_core::{TelemetryConfig, ValueLimits};
    ///
    /// let config = TelemetryConfig::from_toml_str("[limits]\nspan_event_count = 10\n")?;
    /// let limits = config.limits.over(ValueLimits::default().log_value_bytes(100));
    /// assert_eq!((limits.span_event_count, limits.log_value_bytes), (10, 100));
    /// # Ok::<(), stellaops_telemetry_core::ConfigError>(())
    /// ```
    pub fn over(&self, base: crate::limits::ValueLimits) -> crate::limits::ValueLimits {
        let mut limits = base;
        let targets = [
            &mut limits.attribute_value_bytes,
            &mut limits.log_value_bytes,
            &mut limits.label_value_bytes,
            &mut limits.span_attribute_count,
            &mut limits.span_event_count,
            &mut limits.span_link_count,
            &mut limits.event_attribute_count,
            &mut limits.link_attribute_count,
        ];
        let mut this = *self;
        for (slot, target) in this.slots().into_iter().zip(targets) {
            if let Some(value) = *slot {
                *target = value;
            }
        }
        limits
    }

    /// `self` with every field `other` sets replaced.
    fn merge(mut self, mut other: LimitsConfig) -> LimitsConfig {
        for (into, from) in self.slots().into_iter().zip(other.slots()) {
            if from.is_some() {
                *into = *from;
            }
        }
        self
    }
}

/// `[batch]`: the batch processors of spans and of log records.
///
/// ```
/// use stellaops_telemetry_core::TelemetryConfig;
///
/// let config = TelemetryConfig::from_toml_str("[batch.spans]\nmax_export_batch_size = 256\n")?;
/// assert_eq!(config.batch.spans.max_export_batch_size, Some(256));
/// # Ok::<(), stellaops_telemetry_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BatchConfig {
    /// The span processor (`OTEL_BSP_*`).
    pub spans: BatchProcessorConfig,
    /// The log-record processor (`OTEL_BLRP_*`).
    pub logs: BatchProcessorConfig,
}

/// One batch processor's settings; unset fields keep the default. A batch size above the
/// queue size is cut to the queue size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BatchProcessorConfig {
    /// The longest a record waits before it is exported, in milliseconds (default 1000; 0 is
    /// read as 1).
    pub schedule_delay_ms: Option<u64>,
    /// The bound of one OTLP export call, in milliseconds (default 10000; at least 1).
    pub export_timeout_ms: Option<u64>,
    /// Records held before new ones are dropped and counted (default 65536; at least 1).
    pub max_queue_size: Option<usize>,
    /// Records per export call (default 512; at least 1; at most `max_queue_size`).
    pub max_export_batch_size: Option<usize>,
}

impl BatchProcessorConfig {
    /// `self` with every field `other` sets replaced.
    fn merge(mut self, other: BatchProcessorConfig) -> BatchProcessorConfig {
        fn take<T>(into: &mut Option<T>, from: Option<T>) {
            if from.is_some() {
                *into = from;
            }
        }
        take(&mut self.schedule_delay_ms, other.schedule_delay_ms);
        take(&mut self.export_timeout_ms, other.export_timeout_ms);
        take(&mut self.max_queue_size, other.max_queue_size);
        take(&mut self.max_export_batch_size, other.max_export_batch_size);
        self
    }
}

/// `[sampling]`: each field set replaces the profile's.
///
/// ```
/// use stellaops_telemetry_core::{SamplingSite, TelemetryConfig};
///
/// let config = TelemetryConfig::from_toml_str("[sampling]\nsite = \"sdk\"\n")?;
/// assert_eq!(config.sampling.site, Some(SamplingSite::Sdk));
/// # Ok::<(), stellaops_telemetry_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SamplingConfig {
    /// Where tail sampling runs: `collector` or `sdk`.
    pub site: Option<crate::profile::SamplingSite>,
}

/// Exporters per signal; `None` keeps the profile's choice, an empty list exports nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ExportersConfig {
    /// Span exporters.
    pub traces: Option<Vec<ExporterKind>>,
    /// Metric exporters.
    pub metrics: Option<Vec<ExporterKind>>,
    /// Log-record exporters.
    pub logs: Option<Vec<ExporterKind>>,
    /// Estimated bytes the span queue and the log-record queue hold together before new
    /// records are dropped and counted (default 12 MiB, shared; at least 1).
    pub max_queue_bytes: Option<u64>,
}

/// A propagator of `OTEL_PROPAGATORS`: what `install()` registers globally and what the tower
/// layers extract and inject (see [`Propagators`](crate::propagation::Propagators)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PropagatorKind {
    /// W3C Trace Context (`traceparent`, `tracestate`), parsed strictly.
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
    /// Zipkin B3, the single `b3` header.
    B3,
    /// Zipkin B3, the `X-B3-*` headers.
    B3Multi,
    /// Jaeger: `uber-trace-id`, and `uberctx-{key}` headers for baggage.
    Jaeger,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// gRPC (default port 4317).
    #[serde(rename = "grpc")]
    Grpc,
    /// HTTP with protobuf bodies (default port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// `grpc` or `http/protobuf`, as the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Compression of OTLP payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// gzip.
    Gzip,
    /// No compression.
    None,
}

/// OTLP settings shared by all signals, with per-signal overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// Settings for every signal.
    #[serde(flatten)]
    pub common: OtlpSignalConfig,
    /// Overrides for spans.
    pub traces: OtlpSignalConfig,
    /// Overrides for metrics.
    pub metrics: OtlpSignalConfig,
    /// Overrides for log records.
    pub logs: OtlpSignalConfig,
}

/// OTLP settings for one signal (or all of them).
///
/// Its `Debug` shows the endpoint with credentials and query values masked and the header
/// names only:
///
/// ```
/// use stellaops_telemetry_core::TelemetryConfig;
///
/// let config = TelemetryConfig::from_toml_str(r#"
///     [otlp]
///     endpoint = "https://collector.example.com:4318/?sig=hunter2"
///     headers = { authorization = "Bearer hunter2" }
/// "#)?;
/// let shown = format!("{:?}", config.otlp.common);
/// assert!(shown.contains("sig=REDACTED") && shown.contains("authorization"));
/// assert!(!shown.contains("hunter2"));
/// # Ok::<(), stellaops_telemetry_core::ConfigError>(())
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OtlpSignalConfig {
    /// Collector URL. For HTTP, the shared endpoint gets `/v1/<signal>` appended, a per-signal
    /// endpoint is used as is.
    pub endpoint: Option<String>,
    /// Transport.
    pub protocol: Option<OtlpProtocol>,
    /// Extra request headers (values are never logged).
    pub headers: Option<BTreeMap<String, String>>,
    /// Export timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Payload compression.
    pub compression: Option<OtlpCompression>,
    /// PEM file of the CA certificate(s) that verify the collector.
    pub certificate: Option<PathBuf>,
    /// PEM file of the client private key (mTLS).
    pub client_key: Option<PathBuf>,
    /// PEM file of the client certificate chain (mTLS).
    pub client_certificate: Option<PathBuf>,
    /// The tenant of records without a `tenant.id`, sent as their requests'
    /// `X-StellaOps-Tenant` header (1 to 128 characters of `A-Z a-z 0-9 . _ - @ :`). Default: none, such
    /// requests go without the header.
    pub default_tenant: Option<String>,
}

impl std::fmt::Debug for OtlpSignalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers = self.headers.as_ref().map(|headers| {
            headers
                .keys()
                .map(|k| (k.as_str(), crate::redaction::REDACTED))
                .collect::<BTreeMap<_, _>>()
        });
        f.debug_struct("OtlpSignalConfig")
            .field("endpoint", &self.endpoint.as_deref().map(shown))
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("timeout_ms", &self.timeout_ms)
            .field("compression", &self.compression)
            .field("certificate", &self.certificate)
            .field("client_key", &self.client_key)
            .field("client_certificate", &self.client_certificate)
            .field("default_tenant", &self.default_tenant)
            .finish()
    }
}

/// House JSON log outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogOutputsConfig {
    /// Write JSON lines to stdout (default true).
    pub stdout: Option<bool>,
    /// Write JSON lines to this file, rotated by size.
    pub file: Option<PathBuf>,
    /// Rotate the file when it would exceed this many bytes (default 100 MB).
    pub file_max_bytes: Option<u64>,
    /// Keep at most this many files, the current one included (default 10).
    pub file_max_files: Option<usize>,
    /// Bytes of lines each output (stdout, the file) holds before new lines are dropped and
    /// counted (default 8 MiB; at least 1).
    pub max_queue_bytes: Option<u64>,
    /// Whether a log event inside a span is also added to that span as a span event (default
    /// true). False keeps only `ERROR` events on spans (they also mark the span as failed); the
    /// others still reach every log output, with the span's ids.
    pub span_events: Option<bool>,
}

/// Egress settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EgressConfig {
    /// Hosts, `*.domain` patterns and CIDRs exporters may reach (loopback always may).
    pub allow: Option<Vec<String>>,
}

/// File exporter settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FilesConfig {
    /// `json` (OTLP JSON Lines, default) or `protobuf` (length-delimited).
    pub format: Option<crate::FileFormat>,
    /// Start a new segment when the next record would exceed this many bytes.
    pub max_segment_bytes: Option<u64>,
    /// Start a new segment when the current one is older than this many seconds.
    pub max_segment_age_secs: Option<u64>,
    /// Keep at most this many segments per signal (0 keeps all).
    pub max_segments: Option<usize>,
}

impl TelemetryConfig {
    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidFile`] naming the field (unknown fields are refused).
    #[cfg(feature = "config-file")]
    pub fn from_toml_str(text: &str) -> Result<TelemetryConfig, ConfigError> {
        Self::parse_toml(text, "<string>")
    }

    /// Reads a TOML (`.toml`) or JSON (`.json`) configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnreadableFile`] or [`ConfigError::InvalidFile`].
    #[cfg(feature = "config-file")]
    pub fn from_file(path: impl AsRef<Path>) -> Result<TelemetryConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::UnreadableFile {
            path: path.to_owned(),
            source,
        })?;
        let shown_path = path.display().to_string();
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<TelemetryConfig>(&text).map_err(|e| {
                // serde_json's message ends with the position; it is said first instead.
                let full = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = full.strip_suffix(&suffix).unwrap_or(&full);
                ConfigError::InvalidFile {
                    path: shown_path.clone(),
                    message: format!(
                        "line {}, column {}: {}",
                        e.line(),
                        e.column(),
                        shown_parser_message(message)
                    ),
                }
            })
        } else {
            Self::parse_toml(&text, &shown_path)
        }
    }

    /// TOML's own `Display` quotes the offending line; only its position and the message
    /// are kept.
    #[cfg(feature = "config-file")]
    fn parse_toml(text: &str, path: &str) -> Result<TelemetryConfig, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let position = match e.span() {
                Some(span) => {
                    let (line, column) = line_and_column(text, span.start);
                    format!("line {line}, column {column}: ")
                }
                None => String::new(),
            };
            ConfigError::InvalidFile {
                path: path.to_owned(),
                message: format!("{position}{}", shown_parser_message(e.message())),
            }
        })
    }

    /// What was read with a warning rather than refused (an `OTEL_SDK_DISABLED` value other
    /// than `true` or `false`, which leaves the SDK enabled). `build()` writes each as a
    /// warning of the pipeline's own (target `stellaops_telemetry`).
    ///
    /// ```
    /// use stellaops_telemetry_core::TelemetryConfig;
    ///
    /// let config = TelemetryConfig::from_lookup(|name| {
    ///     (name == "OTEL_SDK_DISABLED").then(|| "yes".to_owned())
    /// })?;
    /// assert_eq!(config.disabled, Some(false));
    /// assert!(config.warnings()[0].contains("OTEL_SDK_DISABLED"));
    /// # Ok::<(), stellaops_telemetry_core::ConfigError>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Where a field's value came from, as errors name it: an environment variable, a file
    /// field or a setter.
    pub(crate) fn origin(&self, field: &str) -> String {
        self.origin_of(field).to_string()
    }

    /// Where a field's value came from (a file field unless recorded otherwise).
    pub(crate) fn origin_of(&self, field: &str) -> Origin {
        self.origins
            .get(field)
            .cloned()
            .unwrap_or_else(|| Origin::File(field.to_owned()))
    }

    /// Overlays `other` on `self`: every value set in `other` wins.
    pub fn merge(mut self, other: TelemetryConfig) -> TelemetryConfig {
        let other_shape = serde_json::to_value(&other).unwrap_or_default();
        fn take<T>(into: &mut Option<T>, from: Option<T>) {
            if from.is_some() {
                *into = from;
            }
        }
        take(&mut self.service_name, other.service_name);
        take(&mut self.service_version, other.service_version);
        take(
            &mut self.deployment_environment,
            other.deployment_environment,
        );
        self.resource_attributes.extend(other.resource_attributes);
        take(&mut self.profile, other.profile);
        take(&mut self.sealed, other.sealed);
        take(&mut self.dir, other.dir);
        take(&mut self.incident_file, other.incident_file);
        take(&mut self.disabled, other.disabled);
        take(&mut self.propagators, other.propagators);
        take(&mut self.log_level, other.log_level);
        take(&mut self.log_filter, other.log_filter);
        take(&mut self.sdk_log_level, other.sdk_log_level);
        take(&mut self.sampler, other.sampler);
        take(&mut self.sampler_arg, other.sampler_arg);
        take(
            &mut self.metric_export_interval_ms,
            other.metric_export_interval_ms,
        );
        self.limits = self.limits.merge(other.limits);
        self.batch.spans = self.batch.spans.merge(other.batch.spans);
        self.batch.logs = self.batch.logs.merge(other.batch.logs);
        take(&mut self.exporters.traces, other.exporters.traces);
        take(&mut self.exporters.metrics, other.exporters.metrics);
        take(&mut self.exporters.logs, other.exporters.logs);
        take(
            &mut self.exporters.max_queue_bytes,
            other.exporters.max_queue_bytes,
        );
        for (into, from) in [
            (&mut self.otlp.common, other.otlp.common),
            (&mut self.otlp.traces, other.otlp.traces),
            (&mut self.otlp.metrics, other.otlp.metrics),
            (&mut self.otlp.logs, other.otlp.logs),
        ] {
            take(&mut into.endpoint, from.endpoint);
            take(&mut into.protocol, from.protocol);
            take(&mut into.headers, from.headers);
            take(&mut into.timeout_ms, from.timeout_ms);
            take(&mut into.compression, from.compression);
            take(&mut into.certificate, from.certificate);
            take(&mut into.client_key, from.client_key);
            take(&mut into.client_certificate, from.client_certificate);
            take(&mut into.default_tenant, from.default_tenant);
        }
        take(&mut self.log_outputs.stdout, other.log_outputs.stdout);
        take(&mut self.log_outputs.file, other.log_outputs.file);
        take(
            &mut self.log_outputs.file_max_bytes,
            other.log_outputs.file_max_bytes,
        );
        take(
            &mut self.log_outputs.file_max_files,
            other.log_outputs.file_max_files,
        );
        take(
            &mut self.log_outputs.max_queue_bytes,
            other.log_outputs.max_queue_bytes,
        );
        take(
            &mut self.log_outputs.span_events,
            other.log_outputs.span_events,
        );
        take(&mut self.files.format, other.files.format);
        take(
            &mut self.files.max_segment_bytes,
            other.files.max_segment_bytes,
        );
        take(
            &mut self.files.max_segment_age_secs,
            other.files.max_segment_age_secs,
        );
        take(&mut self.files.max_segments, other.files.max_segments);
        take(&mut self.redaction, other.redaction);
        take(&mut self.sampling.site, other.sampling.site);
        take(&mut self.egress.allow, other.egress.allow);
        // A value `other` sets no longer comes from where the old one came from: forget the
        // old origin, so an error names the file field (or `other`'s own origin).
        for path in set_paths(&other_shape) {
            self.origins.remove(&path);
        }
        self.origins.extend(other.origins);
        self.warnings.extend(other.warnings);
        self
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
#[cfg(feature = "config-file")]
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted paths of every value set in a serialized config (`otlp.endpoint`, …).
fn set_paths(value: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(map) if !prefix.is_empty() && map.is_empty() => {}
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, v, out);
                }
                if !prefix.is_empty() {
                    out.push(prefix.to_owned());
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
#[cfg(feature = "config-file")]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_names_exporters_and_the_file_format_like_the_environment() {
        let config = TelemetryConfig::from_toml_str(
            "[exporters]\ntraces = [\"console\", \"otlp\"]\nlogs = []\n[files]\nformat = \"protobuf\"\n",
        )
        .unwrap();
        assert_eq!(
            config.exporters.traces,
            Some(vec![ExporterKind::Stdout, ExporterKind::Otlp])
        );
        assert_eq!(config.exporters.logs, Some(vec![]));
        assert_eq!(config.files.format, Some(crate::FileFormat::Protobuf));
        let bounded = TelemetryConfig::from_toml_str(
            "[exporters]\nmax_queue_bytes = 1048576\n[log_outputs]\nmax_queue_bytes = 4096\n",
        )
        .unwrap()
        .merge(TelemetryConfig::default());
        assert_eq!(bounded.exporters.max_queue_bytes, Some(1_048_576));
        assert_eq!(bounded.log_outputs.max_queue_bytes, Some(4096));
        let err = TelemetryConfig::from_toml_str("[files]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }

    #[test]
    fn a_merged_value_forgets_the_origin_of_the_value_it_replaced() {
        let mut first = TelemetryConfig::default();
        first.otlp.common.endpoint = Some("http://127.0.0.1:4317".to_owned());
        first
            .origins
            .insert("otlp.endpoint".to_owned(), Origin::Setter("otlp_endpoint"));
        let file =
            TelemetryConfig::from_toml_str("[otlp]\nendpoint = \"collector:4317\"\n").unwrap();
        let merged = first.merge(file);
        assert_eq!(merged.origin("otlp.endpoint"), "field `otlp.endpoint`");
    }
}
