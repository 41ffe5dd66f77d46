//! The environment: the one place this crate reads variables.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::TelemetryConfig;
//!
//! let vars = [("OTEL_SERVICE_NAME", "scanner"), ("STELLAOPS_TELEMETRY_PROFILE", "airgap")];
//! let config = TelemetryConfig::from_lookup(|name| {
//!     vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
//! })?;
//! assert_eq!(config.service_name.as_deref(), Some("scanner"));
//! # Ok::<(), stellaops_telemetry_core::ConfigError>(())
//! ```
//!
//! An empty variable counts as unset, as the OpenTelemetry specification says. Values are
//! parsed here and a malformed one is a [`ConfigError`] naming the variable; endpoints,
//! certificates and samplers are checked by `build()`, which names the variable too.

use std::path::PathBuf;

use super::{
    BatchProcessorConfig, ConfigError, LimitsConfig, Origin, OtlpSignalConfig, TelemetryConfig,
    parse_bool, parse_compression, parse_count, parse_exporters, parse_headers, parse_positive_ms,
    parse_propagators, parse_protocol, parse_resource_attributes, parse_sdk_disabled, parse_size,
    parse_u64, parse_value_length,
};

/// One environment variable the SDK reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Its default when unset.
    pub default: &'static str,
    /// What it changes.
    pub effect: &'static str,
}

/// Every variable the SDK reads, with its default and effect (the table in the crate docs and
/// the README is this list).
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "OTEL_SERVICE_NAME",
        default: "the builder's service name",
        effect: "`service.name` of the resource; wins over `service.name` in OTEL_RESOURCE_ATTRIBUTES",
    },
    EnvVar {
        name: "OTEL_RESOURCE_ATTRIBUTES",
        default: "(none)",
        effect: "extra resource attributes, `key=value,…` (percent-decoded); its `service.name` wins over the builder's name",
    },
    EnvVar {
        name: "OTEL_SDK_DISABLED",
        default: "false",
        effect: "`true` (any case) builds a pipeline that records and exports nothing and opens no socket; JSON log lines and trace context propagation go on; any other value leaves the SDK enabled (with a warning unless `false`)",
    },
    EnvVar {
        name: "OTEL_PROPAGATORS",
        default: "tracecontext,baggage",
        effect: "propagators, comma-separated, in order: `tracecontext`, `baggage`, `b3` (single header), `b3multi` (`X-B3-*`), `jaeger` (`uber-trace-id`, `uberctx-*`), `none`; registered globally by `install()` and used by the tower layers",
    },
    EnvVar {
        name: "OTEL_TRACES_EXPORTER",
        default: "profile (`otlp`; airgap `file`)",
        effect: "span exporters, comma-separated: `otlp`, `file`, `console`, `none`",
    },
    EnvVar {
        name: "OTEL_METRICS_EXPORTER",
        default: "profile (`otlp`; airgap `file`)",
        effect: "metric exporters: `otlp`, `file`, `console`, `none`",
    },
    EnvVar {
        name: "OTEL_LOGS_EXPORTER",
        default: "profile (`otlp`; airgap `file`)",
        effect: "log-record exporters: `otlp`, `file`, `console`, `none` (JSON log lines are separate)",
    },
    EnvVar {
        name: "OTEL_LOG_LEVEL",
        default: "warn",
        effect: "level of the SDK's own diagnostics (targets `opentelemetry*`, `stellaops_telemetry*`)",
    },
    EnvVar {
        name: "RUST_LOG",
        default: "unset (the profile's level)",
        effect: "`tracing` filter directives (`warn,scanner::db=debug`) for the service's events, in place of the profile's level; a later `log_level()` call or a run-time level change wins over it",
    },
    EnvVar {
        name: "OTEL_TRACES_SAMPLER",
        default: "profile (record every span; tail sampling in the collector, or in the SDK where the profile says so)",
        effect: "head sampler: `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`",
    },
    EnvVar {
        name: "OTEL_TRACES_SAMPLER_ARG",
        default: "1.0",
        effect: "ratio for the `*traceidratio` samplers, 0.0–1.0",
    },
    EnvVar {
        name: "OTEL_METRIC_EXPORT_INTERVAL",
        default: "profile (60000; forensic 10000)",
        effect: "metric export interval, milliseconds",
    },
    EnvVar {
        name: "OTEL_BSP_SCHEDULE_DELAY",
        default: "1000",
        effect: "longest a span waits in the span queue before export, milliseconds (0 is read as 1); `[batch.spans] schedule_delay_ms`",
    },
    EnvVar {
        name: "OTEL_BSP_EXPORT_TIMEOUT",
        default: "10000",
        effect: "bound of one OTLP span export call, milliseconds (at least 1); `[batch.spans] export_timeout_ms`",
    },
    EnvVar {
        name: "OTEL_BSP_MAX_QUEUE_SIZE",
        default: "65536",
        effect: "spans held in the queue before new ones are dropped and counted (at least 1; the queue's byte bound applies too); `[batch.spans] max_queue_size`",
    },
    EnvVar {
        name: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        default: "512",
        effect: "spans per export call (at least 1; a value above the queue size is cut to it); `[batch.spans] max_export_batch_size`",
    },
    EnvVar {
        name: "OTEL_BLRP_SCHEDULE_DELAY",
        default: "1000",
        effect: "longest an OTLP log record waits in the log-record queue before export, milliseconds (0 is read as 1); `[batch.logs] schedule_delay_ms`",
    },
    EnvVar {
        name: "OTEL_BLRP_EXPORT_TIMEOUT",
        default: "10000",
        effect: "bound of one OTLP log-record export call, milliseconds (at least 1); `[batch.logs] export_timeout_ms`",
    },
    EnvVar {
        name: "OTEL_BLRP_MAX_QUEUE_SIZE",
        default: "65536",
        effect: "log records held in the queue before new ones are dropped and counted (at least 1; the queue's byte bound applies too); `[batch.logs] max_queue_size`",
    },
    EnvVar {
        name: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        default: "512",
        effect: "log records per export call (at least 1; a value above the queue size is cut to it); `[batch.logs] max_export_batch_size`",
    },
    EnvVar {
        name: "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        default: "2048",
        effect: "longest span attribute value, in bytes of UTF-8 (at least 32; longer values are cut and end with `…[truncated]`); `[limits] attribute_value_bytes`",
    },
    EnvVar {
        name: "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        default: "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        effect: "as OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, and wins over it",
    },
    EnvVar {
        name: "OTEL_ATTRIBUTE_COUNT_LIMIT",
        default: "128",
        effect: "most attributes a span keeps (the first ones; 0 keeps none; the rest are dropped and counted); `[limits] span_attribute_count`",
    },
    EnvVar {
        name: "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        default: "OTEL_ATTRIBUTE_COUNT_LIMIT",
        effect: "as OTEL_ATTRIBUTE_COUNT_LIMIT, and wins over it",
    },
    EnvVar {
        name: "OTEL_SPAN_EVENT_COUNT_LIMIT",
        default: "128",
        effect: "most events a span keeps (0 keeps none); `[limits] span_event_count`",
    },
    EnvVar {
        name: "OTEL_SPAN_LINK_COUNT_LIMIT",
        default: "128",
        effect: "most links a span keeps (0 keeps none); `[limits] span_link_count`",
    },
    EnvVar {
        name: "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
        default: "128",
        effect: "most attributes a span event keeps (0 keeps none); `[limits] event_attribute_count`",
    },
    EnvVar {
        name: "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
        default: "128",
        effect: "most attributes a span link keeps (0 keeps none); `[limits] link_attribute_count`",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        default: "SDK default (gRPC `http://localhost:4317`, HTTP `http://localhost:4318`)",
        effect: "collector URL; for HTTP the shared endpoint gets `/v1/<signal>` appended",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_PROTOCOL",
        default: "grpc",
        effect: "`grpc` or `http/protobuf`",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_HEADERS",
        default: "(none)",
        effect: "request headers `key=value,…` (percent-decoded; values never logged)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TIMEOUT",
        default: "10000",
        effect: "export timeout, milliseconds",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_COMPRESSION",
        default: "none",
        effect: "`gzip` or `none`",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_CERTIFICATE",
        default: "system roots",
        effect: "PEM file of the CA certificate(s) that verify the collector",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        default: "(none)",
        effect: "PEM file of the client private key (mTLS)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        default: "(none)",
        effect: "PEM file of the client certificate chain (mTLS)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        default: "OTEL_EXPORTER_OTLP_ENDPOINT",
        effect: "as OTEL_EXPORTER_OTLP_ENDPOINT, for traces only (used as is)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        default: "OTEL_EXPORTER_OTLP_PROTOCOL",
        effect: "as OTEL_EXPORTER_OTLP_PROTOCOL, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        default: "OTEL_EXPORTER_OTLP_HEADERS",
        effect: "as OTEL_EXPORTER_OTLP_HEADERS, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        default: "OTEL_EXPORTER_OTLP_TIMEOUT",
        effect: "as OTEL_EXPORTER_OTLP_TIMEOUT, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        default: "OTEL_EXPORTER_OTLP_COMPRESSION",
        effect: "as OTEL_EXPORTER_OTLP_COMPRESSION, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CERTIFICATE, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        default: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_KEY, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, for traces only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        default: "OTEL_EXPORTER_OTLP_ENDPOINT",
        effect: "as OTEL_EXPORTER_OTLP_ENDPOINT, for metrics only (used as is)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        default: "OTEL_EXPORTER_OTLP_PROTOCOL",
        effect: "as OTEL_EXPORTER_OTLP_PROTOCOL, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        default: "OTEL_EXPORTER_OTLP_HEADERS",
        effect: "as OTEL_EXPORTER_OTLP_HEADERS, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        default: "OTEL_EXPORTER_OTLP_TIMEOUT",
        effect: "as OTEL_EXPORTER_OTLP_TIMEOUT, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        default: "OTEL_EXPORTER_OTLP_COMPRESSION",
        effect: "as OTEL_EXPORTER_OTLP_COMPRESSION, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CERTIFICATE, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
        default: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_KEY, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, for metrics only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        default: "OTEL_EXPORTER_OTLP_ENDPOINT",
        effect: "as OTEL_EXPORTER_OTLP_ENDPOINT, for logs only (used as is)",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        default: "OTEL_EXPORTER_OTLP_PROTOCOL",
        effect: "as OTEL_EXPORTER_OTLP_PROTOCOL, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        default: "OTEL_EXPORTER_OTLP_HEADERS",
        effect: "as OTEL_EXPORTER_OTLP_HEADERS, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        default: "OTEL_EXPORTER_OTLP_TIMEOUT",
        effect: "as OTEL_EXPORTER_OTLP_TIMEOUT, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
        default: "OTEL_EXPORTER_OTLP_COMPRESSION",
        effect: "as OTEL_EXPORTER_OTLP_COMPRESSION, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CERTIFICATE, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
        default: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_KEY, for logs only",
    },
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
        default: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        effect: "as OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, for logs only",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_PROFILE",
        default: "default",
        effect: "`default`, `forensic` or `airgap`",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_SEALED",
        default: "false (airgap: true)",
        effect: "`true`: exporters reach loopback (or allow-listed IP addresses and networks) only, and no host name is resolved; refused exporters fall back to files",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_DIR",
        default: "./telemetry-data",
        effect: "local telemetry directory (file exporter segments)",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_INCIDENT_FILE",
        default: "(none)",
        effect: "the incident file every instance follows (JSON; incidents listed there put their tenant under forensic capture until they expire); the control plane and `stella-telemetry incident --file` write it",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_DEFAULT_TENANT",
        default: "(none)",
        effect: "tenant of records without `tenant.id`: their OTLP requests carry it as the `X-StellaOps-Tenant` header (otherwise none); 1 to 128 characters of `A-Z a-z 0-9 . _ - @ :`",
    },
    EnvVar {
        name: "STELLAOPS_TELEMETRY_CONFIG",
        default: "(none)",
        effect: "path of a TOML or JSON configuration file, read first; variables win over it",
    },
];

impl TelemetryConfig {
    /// Reads the process environment: the configuration file named by
    /// `STELLAOPS_TELEMETRY_CONFIG` first, then every variable of [`ENVIRONMENT`] over it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable and its bad value, or the unreadable file.
    pub fn from_env() -> Result<TelemetryConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`TelemetryConfig::from_env`], with variables from `lookup` instead of the process
    /// environment (tests, embedding).
    ///
    /// # Errors
    ///
    /// As [`TelemetryConfig::from_env`].
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TelemetryConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let c = match get("STELLAOPS_TELEMETRY_CONFIG") {
            #[cfg(feature = "config-file")]
            Some(path) => TelemetryConfig::from_file(PathBuf::from(path))?,
            #[cfg(not(feature = "config-file"))]
            Some(_) => {
                return Err(ConfigError::NotBuiltIn {
                    what: "reading the configuration file STELLAOPS_TELEMETRY_CONFIG names".into(),
                    feature: "config-file",
                });
            }
            None => TelemetryConfig::default(),
        };
        let mut env = TelemetryConfig::default();

        if let Some(v) = get("OTEL_SERVICE_NAME") {
            env.origins.insert(
                "service_name".into(),
                Origin::Environment("OTEL_SERVICE_NAME".into()),
            );
            env.service_name = Some(v);
        }
        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            env.resource_attributes = parse_resource_attributes("OTEL_RESOURCE_ATTRIBUTES", &v)?;
        }
        if let Some(v) = get("OTEL_SDK_DISABLED") {
            let (disabled, warning) = parse_sdk_disabled("OTEL_SDK_DISABLED", &v);
            env.disabled = Some(disabled);
            env.warnings.extend(warning);
        }
        if let Some(v) = get("OTEL_PROPAGATORS") {
            env.propagators = Some(parse_propagators("OTEL_PROPAGATORS", &v)?);
        }
        if let Some(v) = get("OTEL_TRACES_EXPORTER") {
            env.exporters.traces = Some(parse_exporters("OTEL_TRACES_EXPORTER", &v)?);
        }
        if let Some(v) = get("OTEL_METRICS_EXPORTER") {
            env.exporters.metrics = Some(parse_exporters("OTEL_METRICS_EXPORTER", &v)?);
        }
        if let Some(v) = get("OTEL_LOGS_EXPORTER") {
            env.exporters.logs = Some(parse_exporters("OTEL_LOGS_EXPORTER", &v)?);
        }
        if let Some(v) = get("OTEL_LOG_LEVEL") {
            env.origins.insert(
                "sdk_log_level".into(),
                Origin::Environment("OTEL_LOG_LEVEL".into()),
            );
            env.sdk_log_level = Some(v);
        }
        if let Some(v) = get("RUST_LOG") {
            env.origins
                .insert("log_filter".into(), Origin::Environment("RUST_LOG".into()));
            env.log_filter = Some(v);
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER") {
            env.origins.insert(
                "sampler".into(),
                Origin::Environment("OTEL_TRACES_SAMPLER".into()),
            );
            env.sampler = Some(v);
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER_ARG") {
            env.origins.insert(
                "sampler_arg".into(),
                Origin::Environment("OTEL_TRACES_SAMPLER_ARG".into()),
            );
            env.sampler_arg = Some(v);
        }
        if let Some(v) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            env.metric_export_interval_ms = Some(parse_u64("OTEL_METRIC_EXPORT_INTERVAL", &v)?);
        }
        env.limits = read_limits(&get, c.limits)?;
        env.batch.spans = read_batch(&get, "OTEL_BSP_", "batch.spans.", &mut env.origins)?;
        env.batch.logs = read_batch(&get, "OTEL_BLRP_", "batch.logs.", &mut env.origins)?;
        for (signal, target) in [
            ("", &mut env.otlp.common),
            ("TRACES_", &mut env.otlp.traces),
            ("METRICS_", &mut env.otlp.metrics),
            ("LOGS_", &mut env.otlp.logs),
        ] {
            let field_prefix = match signal {
                "TRACES_" => "otlp.traces.",
                "METRICS_" => "otlp.metrics.",
                "LOGS_" => "otlp.logs.",
                _ => "otlp.",
            };
            read_otlp(&get, signal, field_prefix, target, &mut env.origins)?;
        }
        if let Some(v) = get("STELLAOPS_TELEMETRY_PROFILE") {
            env.origins.insert(
                "profile".into(),
                Origin::Environment("STELLAOPS_TELEMETRY_PROFILE".into()),
            );
            env.profile = Some(v);
        }
        if let Some(v) = get("STELLAOPS_TELEMETRY_SEALED") {
            env.sealed = Some(parse_bool("STELLAOPS_TELEMETRY_SEALED", &v)?);
        }
        if let Some(v) = get("STELLAOPS_TELEMETRY_DIR") {
            env.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("STELLAOPS_TELEMETRY_DEFAULT_TENANT") {
            env.origins.insert(
                "otlp.default_tenant".into(),
                Origin::Environment("STELLAOPS_TELEMETRY_DEFAULT_TENANT".into()),
            );
            env.otlp.common.default_tenant = Some(v);
        }
        if let Some(v) = get("STELLAOPS_TELEMETRY_INCIDENT_FILE") {
            env.incident_file = Some(PathBuf::from(v));
        }
        record_origins(&mut env, &get);
        Ok(c.merge(env))
    }
}

/// Every setting a variable set names that variable as its origin (the OTLP fields and the
/// few recorded where they are read are already there).
fn record_origins(env: &mut TelemetryConfig, get: &impl Fn(&str) -> Option<String>) {
    const ORIGINS: [(&str, &str); 18] = [
        ("resource_attributes", "OTEL_RESOURCE_ATTRIBUTES"),
        ("disabled", "OTEL_SDK_DISABLED"),
        ("propagators", "OTEL_PROPAGATORS"),
        ("exporters.traces", "OTEL_TRACES_EXPORTER"),
        ("exporters.metrics", "OTEL_METRICS_EXPORTER"),
        ("exporters.logs", "OTEL_LOGS_EXPORTER"),
        ("metric_export_interval_ms", "OTEL_METRIC_EXPORT_INTERVAL"),
        ("sealed", "STELLAOPS_TELEMETRY_SEALED"),
        ("dir", "STELLAOPS_TELEMETRY_DIR"),
        ("incident_file", "STELLAOPS_TELEMETRY_INCIDENT_FILE"),
        ("limits", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        ("limits", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        ("limits", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
        ("limits", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
        ("limits", "OTEL_SPAN_EVENT_COUNT_LIMIT"),
        ("limits", "OTEL_SPAN_LINK_COUNT_LIMIT"),
        ("limits", "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"),
        ("limits", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"),
    ];
    for (field, var) in ORIGINS {
        if get(var).is_some() {
            env.origins
                .insert(field.to_owned(), Origin::Environment(var.to_owned()));
        }
    }
}

/// One batch processor's variables (`OTEL_BSP_*` or `OTEL_BLRP_*`), each recorded as its
/// field's origin.
fn read_batch(
    get: &impl Fn(&str) -> Option<String>,
    prefix: &str,
    field_prefix: &str,
    origins: &mut std::collections::BTreeMap<String, Origin>,
) -> Result<BatchProcessorConfig, ConfigError> {
    let mut batch = BatchProcessorConfig::default();
    let mut read = |suffix: &str, field: &str| {
        let name = format!("{prefix}{suffix}");
        let value = get(&name)?;
        origins.insert(
            format!("{field_prefix}{field}"),
            Origin::Environment(name.clone()),
        );
        Some((name, value))
    };
    if let Some((name, v)) = read("SCHEDULE_DELAY", "schedule_delay_ms") {
        batch.schedule_delay_ms = Some(parse_u64(&name, &v)?);
    }
    if let Some((name, v)) = read("EXPORT_TIMEOUT", "export_timeout_ms") {
        batch.export_timeout_ms = Some(parse_positive_ms(&name, &v)?);
    }
    if let Some((name, v)) = read("MAX_QUEUE_SIZE", "max_queue_size") {
        batch.max_queue_size = Some(parse_size(&name, &v)?);
    }
    if let Some((name, v)) = read("MAX_EXPORT_BATCH_SIZE", "max_export_batch_size") {
        batch.max_export_batch_size = Some(parse_size(&name, &v)?);
    }
    Ok(batch)
}

/// The span limits of the environment over `file`'s, field by field.
fn read_limits(
    get: &impl Fn(&str) -> Option<String>,
    file: LimitsConfig,
) -> Result<LimitsConfig, ConfigError> {
    let mut limits = file;
    // Both are checked; the span-specific variable wins over the general one.
    let pair = |span: &str, general: &str, parse: fn(&str, &str) -> Result<usize, ConfigError>| {
        let general = get(general).map(|v| parse(general, &v)).transpose()?;
        let span = get(span).map(|v| parse(span, &v)).transpose()?;
        Ok::<_, ConfigError>(span.or(general))
    };
    if let Some(n) = pair(
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        parse_value_length,
    )? {
        limits.attribute_value_bytes = Some(n);
    }
    if let Some(n) = pair(
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
        parse_count,
    )? {
        limits.span_attribute_count = Some(n);
    }
    for (name, slot) in [
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", &mut limits.span_event_count),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", &mut limits.span_link_count),
        (
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            &mut limits.event_attribute_count,
        ),
        (
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            &mut limits.link_attribute_count,
        ),
    ] {
        if let Some(v) = get(name) {
            *slot = Some(parse_count(name, &v)?);
        }
    }
    Ok(limits)
}

fn read_otlp(
    get: &impl Fn(&str) -> Option<String>,
    signal: &str,
    field_prefix: &str,
    target: &mut OtlpSignalConfig,
    origins: &mut std::collections::BTreeMap<String, Origin>,
) -> Result<(), ConfigError> {
    let var = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{signal}{suffix}");
    let field = |suffix: &str| format!("{field_prefix}{suffix}");
    if let Some(v) = get(&var("ENDPOINT")) {
        origins.insert(field("endpoint"), Origin::Environment(var("ENDPOINT")));
        target.endpoint = Some(v);
    }
    for suffix in ["PROTOCOL", "HEADERS", "TIMEOUT", "COMPRESSION"] {
        if get(&var(suffix)).is_some() {
            let name = if suffix == "TIMEOUT" {
                "timeout_ms".to_owned()
            } else {
                suffix.to_ascii_lowercase()
            };
            origins.insert(field(&name), Origin::Environment(var(suffix)));
        }
    }
    if let Some(v) = get(&var("PROTOCOL")) {
        target.protocol = Some(parse_protocol(&var("PROTOCOL"), &v)?);
    }
    if let Some(v) = get(&var("HEADERS")) {
        target.headers = Some(parse_headers(&var("HEADERS"), &v)?);
    }
    if let Some(v) = get(&var("TIMEOUT")) {
        target.timeout_ms = Some(parse_u64(&var("TIMEOUT"), &v)?);
    }
    if let Some(v) = get(&var("COMPRESSION")) {
        target.compression = Some(parse_compression(&var("COMPRESSION"), &v)?);
    }
    for (suffix, slot) in [
        ("CERTIFICATE", &mut target.certificate),
        ("CLIENT_KEY", &mut target.client_key),
        ("CLIENT_CERTIFICATE", &mut target.client_certificate),
    ] {
        if let Some(v) = get(&var(suffix)) {
            origins.insert(
                field(&suffix.to_ascii_lowercase()),
                Origin::Environment(var(suffix)),
            );
            *slot = Some(PathBuf::from(v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ENVIRONMENT;

    /// The markdown table in the crate docs (and the README) is this list.
    pub(crate) fn table() -> String {
        let mut out = String::from("| variable | default | effect |\n|---|---|---|\n");
        for v in ENVIRONMENT {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                v.name, v.default, v.effect
            ));
        }
        out
    }

    #[test]
    fn the_documented_table_is_the_environment_list() {
        assert_eq!(include_str!("../../docs/environment.md"), table());
    }

    #[test]
    fn the_readme_carries_the_same_table() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&table()),
            "README.md's environment table is out of date"
        );
    }

    #[test]
    fn every_variable_is_listed_once() {
        let mut names: Vec<_> = ENVIRONMENT.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENVIRONMENT.len());
    }
}
