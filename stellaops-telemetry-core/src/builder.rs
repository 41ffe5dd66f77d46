//! [`TelemetryBuilder`]: the calls a service makes, recorded in the order made.
//!
//! # Example
//!
//! ```no_run
//! use stellaops_telemetry_core::{Profile, Telemetry};
//!
//! let _telemetry = Telemetry::builder("scanner")
//!     .service_version(env!("CARGO_PKG_VERSION"))
//!     .profile(Profile::forensic())
//!     .from_env() // last, so the operator's environment wins over the code's choices
//!     .install()?; // flushes and shuts every provider down when dropped
//! tracing::info!(scan_id = "s-1", "scan started");
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! # Precedence
//!
//! One rule holds for every setting: the default profile first, then every call in the order
//! made — [`profile`](TelemetryBuilder::profile), [`config`](TelemetryBuilder::config),
//! [`from_env`](TelemetryBuilder::from_env) and the setters alike — a later call winning over
//! an earlier one for each setting it sets. A profile sets every profile setting (sampling,
//! log level, export interval, exporters, Prometheus scrape, redaction); a configuration
//! applies its own profile first, then its other values. Sealing is sticky: an explicit sealed
//! setting is never undone by a profile chosen later, only by a later explicit sealed setting.
//! Three pairs are one setting seen twice rather than two: `service.name`, `service.version`
//! and `deployment.environment` given by name (setter, file, `OTEL_SERVICE_NAME`) win over the
//! same key inside the resource attributes; and an egress policy given in code
//! ([`egress_policy`](TelemetryBuilder::egress_policy)) is asked instead of an allow-list
//! outside sealed mode.
//! [`TelemetryBuilder::build`] resolves the calls into settings (a pure step), plans the
//! exporters of each signal (asking the egress policy) and assembles the pipeline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::Registry;

use crate::config::{ConfigError, Origin, OtlpProtocol, TelemetryConfig};
use crate::egress::EgressPolicy;
use crate::error::TelemetryError;
use crate::export::{BatchSettings, FileFormat};
use crate::limits::ValueLimits;
use crate::profile::{ExporterKind, LogLevel, Profile};
use crate::redaction::RedactionSettings;
use crate::telemetry::{Telemetry, TelemetryGuard};

/// The settings a profile carries, by the field names errors and origins use.
pub(crate) const PROFILE_FIELDS: [&str; 10] = [
    "sampler",
    "sampler_arg",
    "sampling.site",
    "log_level",
    "metric_export_interval_ms",
    "exporters.traces",
    "exporters.metrics",
    "exporters.logs",
    "prometheus_scrape",
    "redaction",
];

/// A layer of the service's own, run beside the pipeline's (see [`TelemetryBuilder::layer`]).
pub type ServiceLayer = Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync + 'static>;

/// How long a guard's drop waits for the final flush by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a telemetry pipeline. Create one with [`Telemetry::builder`].
///
/// Setters consume the builder and are named after their setting. One precedence rule holds
/// for every setting: the default profile, then every call in the order made (a profile,
/// [`config`](Self::config), [`from_env`](Self::from_env) and the setters alike), a later call
/// winning; call `from_env()` last so the operator's environment wins. Sealing is sticky: no
/// profile chosen later can unseal a site an explicit setting sealed.
#[must_use = "a builder does nothing until build() or install()"]
pub struct TelemetryBuilder {
    pub(crate) service_name: String,
    /// Every value but the profile's, merged in call order, with its origin.
    pub(crate) config: TelemetryConfig,
    /// The profile settings, after every call in order.
    pub(crate) profile: Profile,
    /// The last explicit sealed setting (setter, configuration or environment).
    pub(crate) sealed: Option<bool>,
    /// A policy set in code (outside sealed mode).
    pub(crate) egress_policy: Option<Arc<dyn EgressPolicy>>,
    pub(crate) error: Option<ConfigError>,
    pub(crate) batch: BatchSettings,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) cardinality_limit: usize,
    pub(crate) limits: ValueLimits,
    pub(crate) tail_limits: crate::export::TailSamplingLimits,
    pub(crate) layers: Vec<ServiceLayer>,
    /// The incident notification hooks.
    pub(crate) incident_hooks: Vec<Arc<dyn crate::IncidentHook>>,
    /// The error-rate incident trigger (off by default).
    pub(crate) error_rate_trigger: Option<crate::ErrorRateTrigger>,
    #[cfg(feature = "testing")]
    pub(crate) test: Option<crate::testing::TestExporters>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("service_name", &self.service_name)
            .field("profile", &self.profile.name)
            .field("config", &self.config)
            .field("sealed", &self.sealed)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    pub(crate) fn new(service_name: impl Into<String>) -> Self {
        TelemetryBuilder {
            service_name: service_name.into(),
            config: TelemetryConfig::default(),
            profile: Profile::default_profile(),
            sealed: None,
            egress_policy: None,
            error: None,
            batch: BatchSettings::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            cardinality_limit: crate::metrics::DEFAULT_CARDINALITY_LIMIT,
            limits: ValueLimits::default(),
            tail_limits: crate::export::TailSamplingLimits::default(),
            layers: Vec::new(),
            incident_hooks: Vec::new(),
            error_rate_trigger: None,
            #[cfg(feature = "testing")]
            test: None,
        }
    }

    /// Records where the value of `field` came from.
    fn came_from(&mut self, field: &str, origin: Origin) {
        self.config.origins.insert(field.to_owned(), origin);
    }

    fn defer(mut self, error: ConfigError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    fn setter(
        mut self,
        field: &str,
        setter: &'static str,
        f: impl FnOnce(&mut TelemetryConfig),
    ) -> Self {
        f(&mut self.config);
        self.came_from(field, Origin::Setter(setter));
        self
    }

    /// A setter of a profile setting.
    fn profile_setter(
        mut self,
        field: &str,
        setter: &'static str,
        f: impl FnOnce(&mut Profile),
    ) -> Self {
        f(&mut self.profile);
        self.came_from(field, Origin::Setter(setter));
        self
    }

    /// Applies a profile: every profile setting is replaced (an explicit sealed setting
    /// stays). Default: [`Profile::default_profile`].
    pub fn profile(mut self, profile: Profile) -> Self {
        for field in PROFILE_FIELDS {
            self.came_from(field, Origin::Profile(profile.name.clone()));
        }
        // The head sampler and the log filter are the profile's sampling and level in
        // another form: the profile replaces them too.
        self.config.sampler = None;
        self.config.sampler_arg = None;
        self.config.log_filter = None;
        self.profile = profile;
        self
    }

    /// Applies a built-in profile by name; an unknown name fails `build()`.
    pub fn profile_name(self, name: &str) -> Self {
        match Profile::by_name(name) {
            Ok(p) => self.profile(p),
            Err(e) => self.defer(e),
        }
    }

    /// Applies a configuration (file form): its profile first, then its other values, each
    /// winning over what earlier calls set.
    pub fn config(mut self, mut config: TelemetryConfig) -> Self {
        if let Some(name) = config.profile.take() {
            match Profile::by_name(&name) {
                Ok(profile) => self = self.profile(profile),
                Err(_) => {
                    return self.defer(ConfigError::InvalidValue {
                        name: config.origin("profile"),
                        value: name,
                        reason: "unknown profile (expected one of default, forensic, airgap)"
                            .to_owned(),
                    });
                }
            }
        }
        let mut applied = Vec::new();
        if let Some(level) = config.log_level.take() {
            match LogLevel::parse(&level) {
                Some(level) => {
                    self.profile.log_level = level;
                    self.config.log_filter = None;
                    applied.push("log_level");
                }
                None => {
                    let name = config.origin("log_level");
                    return self.defer(ConfigError::InvalidValue {
                        name,
                        value: level,
                        reason: "expected error, warn, info, debug or trace".to_owned(),
                    });
                }
            }
        }
        if let Some(ms) = config.metric_export_interval_ms.take() {
            self.profile.export_interval_ms = ms;
            applied.push("metric_export_interval_ms");
        }
        if let Some(sealed) = config.sealed.take() {
            self.sealed = Some(sealed);
            applied.push("sealed");
        }
        for (field, from, into) in [
            (
                "exporters.traces",
                config.exporters.traces.take(),
                &mut self.profile.exporters.traces,
            ),
            (
                "exporters.metrics",
                config.exporters.metrics.take(),
                &mut self.profile.exporters.metrics,
            ),
            (
                "exporters.logs",
                config.exporters.logs.take(),
                &mut self.profile.exporters.logs,
            ),
        ] {
            if let Some(list) = from {
                *into = list;
                applied.push(field);
            }
        }
        if let Some(redaction) = config.redaction.take() {
            self.profile.redaction = redaction;
            applied.push("redaction");
        }
        if let Some(site) = config.sampling.site.take() {
            self.profile.sampling.site = site;
            applied.push("sampling.site");
        }
        let limits = std::mem::take(&mut config.limits);
        if !limits.is_empty() {
            self.limits = limits.over(self.limits);
            applied.push("limits");
        }
        if let Some(name) = &config.service_name {
            self.service_name = name.clone();
        }
        let origins: Vec<(&str, Origin)> = applied
            .into_iter()
            .map(|field| (field, config.origin_of(field)))
            .collect();
        self.config = std::mem::take(&mut self.config).merge(config);
        for (field, origin) in origins {
            self.came_from(field, origin);
        }
        self
    }

    /// Reads the environment (see [`ENVIRONMENT`](crate::ENVIRONMENT)) and applies it as
    /// [`TelemetryBuilder::config`] does. A malformed variable fails `build()`, naming it.
    pub fn from_env(self) -> Self {
        match TelemetryConfig::from_env() {
            Ok(config) => self.config(config),
            Err(e) => self.defer(e),
        }
    }

    /// `service.version`. Default: `unknown` (pass `env!("CARGO_PKG_VERSION")`).
    pub fn service_version(self, version: impl Into<String>) -> Self {
        let v = version.into();
        self.setter("service_version", "service_version", |c| {
            c.service_version = Some(v)
        })
    }

    /// `deployment.environment`. Default: unset.
    pub fn deployment_environment(self, environment: impl Into<String>) -> Self {
        let v = environment.into();
        self.setter("deployment_environment", "deployment_environment", |c| {
            c.deployment_environment = Some(v)
        })
    }

    /// Adds one resource attribute. Default: none beyond the standard ones.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.came_from(
            &format!("resource_attributes.{key}"),
            Origin::Setter("resource_attribute"),
        );
        self.config.resource_attributes.insert(key, value.into());
        self
    }

    /// The level of the service's logs (replaces a `RUST_LOG` filter set before it).
    /// Default: the profile's (info; forensic debug). It can be changed at run time through
    /// [`Telemetry::controls`].
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.config.log_filter = None;
        self.profile_setter("log_level", "log_level", |p| p.log_level = level)
    }

    /// Filters the service's events with `RUST_LOG` directives (`warn,scanner::db=debug`)
    /// instead of one level; a bad directive fails `build()`, naming it. A later
    /// [`log_level`](Self::log_level) or profile replaces it, and a run-time level change
    /// ([`Telemetry::controls`]) wins over it. Default: none (the profile's level);
    /// [`from_env`](Self::from_env) reads `RUST_LOG`.
    pub fn log_filter(self, directives: impl Into<String>) -> Self {
        let directives = directives.into();
        self.setter("log_filter", "log_filter", |c| {
            c.log_filter = Some(directives)
        })
    }

    /// The metric export interval. Default: the profile's (60 s; forensic 10 s).
    pub fn export_interval(self, interval: Duration) -> Self {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.profile_setter("metric_export_interval_ms", "export_interval", |p| {
            p.export_interval_ms = ms
        })
    }

    /// The exporters of every signal. Default: the profile's (OTLP; airgap files).
    pub fn exporters(mut self, kinds: &[ExporterKind]) -> Self {
        for field in ["exporters.traces", "exporters.metrics", "exporters.logs"] {
            self.came_from(field, Origin::Setter("exporters"));
        }
        self.profile.exporters = crate::profile::ExporterSelection::all(kinds);
        self
    }

    /// Sealed mode: network exporters are refused and fall back to files. An explicit
    /// setting wins over every profile, whatever the order. Default: the profile's (false;
    /// airgap true).
    pub fn sealed(mut self, sealed: bool) -> Self {
        self.sealed = Some(sealed);
        self.came_from("sealed", Origin::Setter("sealed"));
        self
    }

    /// Redaction settings: extra sensitive keys and the strict (allow-list) mode. Default: the
    /// profile's (default rules only, strict mode off).
    pub fn redaction(self, settings: RedactionSettings) -> Self {
        self.profile_setter("redaction", "redaction", |p| p.redaction = settings)
    }

    /// Adds a `tracing` layer of the service's own beside the pipeline's (tokio-console,
    /// sentry, a pretty `fmt` layer for development). It sees every span and event its own
    /// filter enables (give it one with `Layer::with_filter`), under `install()` and `build()`
    /// alike. Default: none.
    ///
    /// ```
    /// use stellaops_telemetry_core::Telemetry;
    /// use stellaops_telemetry_core::tracing_subscriber::{Layer as _, filter::LevelFilter, fmt};
    ///
    /// let telemetry = Telemetry::builder("scanner")
    ///     .stdout_logs(false)
    ///     .layer(fmt::layer().pretty().with_filter(LevelFilter::WARN))
    ///     .build()?;
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tracing_subscriber::Layer<Registry> + Send + Sync + 'static,
    {
        self.layers.push(Box::new(layer));
        self
    }

    /// The egress policy asked before any exporter is built (outside sealed mode; sealed mode
    /// is loopback only, or the allow-list). Default: open, or the allow-list when one is set.
    pub fn egress_policy(mut self, policy: impl EgressPolicy + 'static) -> Self {
        self.egress_policy = Some(Arc::new(policy));
        self
    }

    /// Hosts, `*.domain` patterns and CIDRs exporters may reach (loopback always may). A
    /// malformed entry fails `build()`, naming it. Default: none.
    pub fn egress_allow<I, E>(self, entries: I) -> Self
    where
        I: IntoIterator<Item = E>,
        E: Into<String>,
    {
        let entries: Vec<String> = entries.into_iter().map(Into::into).collect();
        self.setter("egress.allow", "egress_allow", |c| {
            c.egress.allow = Some(entries)
        })
    }

    /// Builds a pipeline that records and exports nothing. Default: false.
    pub fn disabled(self, disabled: bool) -> Self {
        self.setter("disabled", "disabled", |c| c.disabled = Some(disabled))
    }

    /// The head sampler by its `OTEL_TRACES_SAMPLER` name, with an optional argument.
    /// Default: the profile's sampling (every span is recorded; the tail sampler of the
    /// collector, or of the SDK where the profile says so, decides what is kept).
    pub fn sampler(mut self, name: impl Into<String>, arg: Option<f64>) -> Self {
        self.config.sampler = Some(name.into());
        self.config.sampler_arg = arg.map(|a| a.to_string());
        for field in ["sampler", "sampler_arg"] {
            self.came_from(field, Origin::Setter("sampler"));
        }
        self
    }

    /// Where tail sampling runs: in the SDK (before export) or in the collector (the SDK
    /// keeps every span). Default: the profile's (collector; airgap the SDK).
    pub fn sampling_site(self, site: crate::profile::SamplingSite) -> Self {
        self.profile_setter("sampling.site", "sampling_site", |p| p.sampling.site = site)
    }

    /// The caps of the SDK's tail sampler (where the profile samples in the SDK): decision
    /// wait, traces held, spans per trace, bytes held. Default:
    /// [`TailSamplingLimits::default`](crate::TailSamplingLimits::default) (5 s, 10,000
    /// traces, 1,000 spans per trace, 8 MiB).
    pub fn tail_sampling_limits(mut self, limits: crate::export::TailSamplingLimits) -> Self {
        self.tail_limits = limits;
        self
    }

    /// The OTLP endpoint of every signal. Default: the OTLP exporter's own default.
    pub fn otlp_endpoint(self, endpoint: impl Into<String>) -> Self {
        let v = endpoint.into();
        self.setter("otlp.endpoint", "otlp_endpoint", |c| {
            c.otlp.common.endpoint = Some(v)
        })
    }

    /// The OTLP transport. Default: gRPC.
    pub fn otlp_protocol(self, protocol: OtlpProtocol) -> Self {
        self.setter("otlp.protocol", "otlp_protocol", |c| {
            c.otlp.common.protocol = Some(protocol)
        })
    }

    /// Adds an OTLP request header. Default: none.
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.came_from("otlp.headers", Origin::Setter("otlp_header"));
        self.config
            .otlp
            .common
            .headers
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), value.into());
        self
    }

    /// The OTLP export timeout. Default: 10 s.
    pub fn otlp_timeout(self, timeout: Duration) -> Self {
        self.setter("otlp.timeout_ms", "otlp_timeout", |c| {
            c.otlp.common.timeout_ms = Some(timeout.as_millis() as u64)
        })
    }

    /// The PEM file of the CA that verifies the collector. Default: the system roots.
    pub fn otlp_certificate(self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.setter("otlp.certificate", "otlp_certificate", |c| {
            c.otlp.common.certificate = Some(p)
        })
    }

    /// The client certificate chain and key (PEM files) for mTLS. Default: none.
    pub fn otlp_client_identity(
        self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        let (cert, key) = (certificate.into(), key.into());
        self.setter("otlp.client_certificate", "otlp_client_identity", |c| {
            c.otlp.common.client_certificate = Some(cert)
        })
        .setter("otlp.client_key", "otlp_client_identity", |c| {
            c.otlp.common.client_key = Some(key)
        })
    }

    /// The watched incident file every instance of the service follows (and the control
    /// plane writes). Default: none (incidents live in this process only).
    pub fn incident_file(self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.setter("incident_file", "incident_file", |c| {
            c.incident_file = Some(p)
        })
    }

    /// Adds a hook told of every incident start, extension, stop and expiry, on a thread of
    /// its own.
    pub fn incident_hook(mut self, hook: Arc<dyn crate::IncidentHook>) -> Self {
        self.incident_hooks.push(hook);
        self
    }

    /// Starts an incident for a tenant whose error share crosses the trigger's threshold.
    /// Default: off. The server layer reports each request's outcome.
    pub fn error_rate_trigger(mut self, trigger: crate::ErrorRateTrigger) -> Self {
        self.error_rate_trigger = Some(trigger);
        self
    }

    /// The local telemetry directory. Default: `./telemetry-data`.
    pub fn dir(self, dir: impl Into<PathBuf>) -> Self {
        let d = dir.into();
        self.setter("dir", "dir", |c| c.dir = Some(d))
    }

    /// The file exporter's framing. Default: JSON Lines.
    pub fn file_format(self, format: FileFormat) -> Self {
        self.setter("files.format", "file_format", |c| {
            c.files.format = Some(format)
        })
    }

    /// Whether JSON log lines go to stdout. Default: true.
    pub fn stdout_logs(self, enabled: bool) -> Self {
        self.setter("log_outputs.stdout", "stdout_logs", |c| {
            c.log_outputs.stdout = Some(enabled)
        })
    }

    /// Whether a log event inside a span is also added to that span as a span event. Default:
    /// true. False keeps only `ERROR` events on spans (they also mark the span as failed): the
    /// others still reach every log output with the span's trace and span ids, and no longer
    /// pay for a copy of their fields in the span (about half of a JSON log event's cost inside
    /// a span). `[log_outputs] span_events` in a file.
    pub fn log_events_as_span_events(self, enabled: bool) -> Self {
        self.setter(
            "log_outputs.span_events",
            "log_events_as_span_events",
            |c| c.log_outputs.span_events = Some(enabled),
        )
    }

    /// Also writes JSON log lines to `path`, rotated at `max_bytes` keeping `max_files` files.
    /// Default: no log file; rotation 100 MB × 10 files.
    pub fn log_file(self, path: impl Into<PathBuf>, max_bytes: u64, max_files: usize) -> Self {
        let p = path.into();
        self.setter("log_outputs.file", "log_file", |c| {
            c.log_outputs.file = Some(p);
            c.log_outputs.file_max_bytes = Some(max_bytes);
            c.log_outputs.file_max_files = Some(max_files);
        })
    }

    /// Spans and log records held in each exporter queue before new ones are dropped (and
    /// counted); at least 1. Default: 65,536 (`OTEL_BSP_MAX_QUEUE_SIZE`,
    /// `OTEL_BLRP_MAX_QUEUE_SIZE`).
    pub fn max_queue_size(self, records: usize) -> Self {
        let records = records.max(1);
        self.setter("batch", "max_queue_size", |c| {
            c.batch.spans.max_queue_size = Some(records);
            c.batch.logs.max_queue_size = Some(records);
        })
    }

    /// Estimated bytes the span queue and the log-record queue hold together before new
    /// records are dropped (and counted): a record's fixed size plus its texts, so a few huge
    /// records cannot hold more memory than this while the exporter falls behind. One bound
    /// for both queues: either may use all of it while the other is empty. A value of 0 fails
    /// `build()`. Default: 12 MiB ([`DEFAULT_MAX_QUEUE_BYTES`](crate::DEFAULT_MAX_QUEUE_BYTES)).
    pub fn max_queue_bytes(self, bytes: usize) -> Self {
        self.setter("exporters.max_queue_bytes", "max_queue_bytes", |c| {
            c.exporters.max_queue_bytes = Some(u64::try_from(bytes).unwrap_or(u64::MAX))
        })
    }

    /// Bytes of JSON log lines each output (stdout, the log file) holds before new lines are
    /// dropped (and counted). A value of 0 fails `build()`. Default: 8 MiB
    /// ([`LogOutput::DEFAULT_QUEUE_BYTES`](crate::LogOutput::DEFAULT_QUEUE_BYTES)).
    pub fn max_log_line_queue_bytes(self, bytes: usize) -> Self {
        self.setter(
            "log_outputs.max_queue_bytes",
            "max_log_line_queue_bytes",
            |c| c.log_outputs.max_queue_bytes = Some(u64::try_from(bytes).unwrap_or(u64::MAX)),
        )
    }

    /// The longest a span or log record waits in the queue before export (at least 1 ms).
    /// Default: 1 s (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BLRP_SCHEDULE_DELAY`).
    pub fn export_delay(self, delay: Duration) -> Self {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.setter("batch", "export_delay", |c| {
            c.batch.spans.schedule_delay_ms = Some(ms);
            c.batch.logs.schedule_delay_ms = Some(ms);
        })
    }

    /// How long dropping the guard (or [`Telemetry::shutdown`]) waits for the final flush.
    /// Default: 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The number of series each catalogue metric keeps before further label sets fold into
    /// its overflow series (counted by `stellaops_telemetry_cardinality_overflow_total`).
    /// Default: [`DEFAULT_CARDINALITY_LIMIT`](crate::metrics::DEFAULT_CARDINALITY_LIMIT).
    pub fn metric_cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit.max(1);
        self
    }

    /// Length limits of the values the pipeline keeps: span attribute values (including what
    /// the tower layer takes from a request), log field values and metric label values. An
    /// over-long value is redacted whole, then cut and marked with
    /// [`TRUNCATED`](crate::TRUNCATED), and counted. Default: [`ValueLimits::default`]
    /// (2048, 8192 and 256 bytes).
    pub fn value_limits(mut self, limits: ValueLimits) -> Self {
        self.limits = limits;
        self.came_from("limits", Origin::Setter("value_limits"));
        self
    }

    /// Whether the pipeline serves the Prometheus exposition
    /// ([`Telemetry::metrics_service`]). Default: the profile's (on; airgap off).
    pub fn prometheus_scrape(self, enabled: bool) -> Self {
        self.profile_setter("prometheus_scrape", "prometheus_scrape", |p| {
            p.prometheus_scrape = enabled
        })
    }

    /// Sends every signal to in-memory exporters and captures the JSON log lines, in
    /// addition to the configured exporters (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn test_exporters(mut self, exporters: &crate::testing::TestExporters) -> Self {
        self.test = Some(exporters.clone());
        self
    }

    /// Builds the pipeline without registering anything globally.
    ///
    /// # Errors
    ///
    /// A [`TelemetryError`] naming the bad setting, or the directory or thread that could not
    /// be created. Nothing is left running on error.
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let (settings, parts) = crate::resolve::resolve(self)?;
        let plan = crate::plan::plan(&settings)?;
        crate::assemble::assemble(settings, plan, parts)
    }

    /// Builds the pipeline and makes it the process's telemetry: the global tracing
    /// dispatcher, the OpenTelemetry global tracer and meter providers and the propagators.
    ///
    /// # Errors
    ///
    /// As [`TelemetryBuilder::build`], and [`TelemetryError::AlreadyInstalled`].
    pub fn install(self) -> Result<TelemetryGuard, TelemetryError> {
        let telemetry = self.build()?;
        telemetry.install_globals()?;
        Ok(telemetry.into_guard())
    }
}
