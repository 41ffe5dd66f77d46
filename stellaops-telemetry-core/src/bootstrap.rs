//! The one bootstrap: `Telemetry::builder(..)` → `build()` or `install()` → a guard.
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
//! `install()` is the only code that touches process-wide state: the tracing dispatcher, the
//! OpenTelemetry global providers and the W3C propagators. `build()` builds the same pipeline
//! and hands it back unregistered, for tests and embedding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use parking_lot::Mutex;
use tracing::Dispatch;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::config::{
    ConfigError, FilesConfig, HeadSampler, OtlpProtocol, PropagatorKind, TelemetryConfig,
    parse_sampler,
};
use crate::egress::{AllowList, EgressError, EgressPolicy, OpenPolicy, sealed_policy};
use crate::export::{
    BatchLogProcessor, BatchSettings, BatchSpanProcessor, Egress, FileExportOptions, FileFormat,
    FileLogExporter, FileMetricExporter, FileSpanExporter, LogTarget, MetricKind, MetricTarget,
    Signal, SpanTarget,
};
use crate::limits::{ValueBounds, ValueLimits};
use crate::logs::{
    JsonLogLayer, LogBridge, LogOutput, LogOutputError, RetentionPolicy, RotatingFile,
};
use crate::profile::{ExporterKind, LogLevel, Profile, SamplingMode};
use crate::redaction::{RedactingMeterProvider, RedactionSettings, Redactor};
use crate::stats::{PipelineStats, StatsSnapshot};

/// Errors from `build()` and `install()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// A configuration value is wrong; the error names it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The local telemetry directory or a log file cannot be created.
    #[error("cannot create `{}`", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A background thread or the export runtime cannot be started.
    #[error("cannot start the telemetry {what}")]
    Thread {
        /// What could not start.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exporter cannot create its directory under the telemetry directory.
    #[error(transparent)]
    FileExport(#[from] crate::export::FileExportError),
    /// A JSON log output (stdout or the log file) cannot be opened or started.
    #[error(transparent)]
    LogOutput(#[from] LogOutputError),
    /// A malformed egress allow-list entry.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// A malformed redaction rule or allow-list entry.
    #[error(transparent)]
    Redaction(#[from] crate::redaction::RedactionError),
    /// A value limit too small to be useful.
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
    /// `install()` found a global tracing dispatcher already set.
    #[error("a global tracing subscriber is already installed; use build() for a second pipeline")]
    AlreadyInstalled,
    /// The Prometheus exposition could not be set up.
    #[error(transparent)]
    Exposition(#[from] crate::metrics::ExpositionError),
}

/// How long a guard's drop waits for the final flush by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a telemetry pipeline. Create one with [`Telemetry::builder`].
///
/// Setters consume the builder and are named after their setting. Setters called after
/// [`TelemetryBuilder::profile`] win over the profile; the profile wins over setters called
/// before it. [`TelemetryBuilder::config`] and [`TelemetryBuilder::from_env`] apply like
/// setters (call `from_env()` last so the operator's environment wins). Sealing is the
/// exception: an explicit sealed setting wins over every profile, whatever the order, so no
/// profile chosen later can unseal a site the operator sealed.
#[derive(Debug)]
#[must_use = "a builder does nothing until build() or install()"]
pub struct TelemetryBuilder {
    service_name: String,
    config: TelemetryConfig,
    profile: Profile,
    /// The last explicit sealed setting (setter, configuration or environment).
    sealed: Option<bool>,
    /// A policy set in code (outside sealed mode).
    egress_policy: Option<Arc<dyn EgressPolicy>>,
    error: Option<ConfigError>,
    batch: BatchSettings,
    shutdown_timeout: Duration,
    cardinality_limit: usize,
    limits: ValueLimits,
    #[cfg(feature = "testing")]
    test: Option<crate::testing::TestExporters>,
}

impl TelemetryBuilder {
    fn new(service_name: impl Into<String>) -> Self {
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
            #[cfg(feature = "testing")]
            test: None,
        }
    }

    fn defer(mut self, error: ConfigError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    fn setter(mut self, field: &str, setter: &str, f: impl FnOnce(&mut TelemetryConfig)) -> Self {
        f(&mut self.config);
        self.config
            .origins
            .insert(field.to_owned(), format!("TelemetryBuilder::{setter}"));
        self
    }

    /// Applies a profile: every profile setting is replaced. Default: [`Profile::default_profile`].
    pub fn profile(mut self, profile: Profile) -> Self {
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

    /// Applies a configuration (file form): its profile first, then its other values, which
    /// win over earlier setters.
    pub fn config(mut self, config: TelemetryConfig) -> Self {
        if let Some(name) = &config.profile {
            match Profile::by_name(name) {
                Ok(p) => self.profile = p,
                Err(_) => {
                    let origin = config.origin("profile");
                    return self.defer(ConfigError::InvalidValue {
                        name: origin,
                        value: name.clone(),
                        reason: "unknown profile (expected one of default, forensic, airgap)"
                            .to_owned(),
                    });
                }
            }
        }
        if let Some(level) = &config.log_level {
            match LogLevel::parse(level) {
                Some(l) => self.profile.log_level = l,
                None => {
                    let name = config.origin("log_level");
                    return self.defer(ConfigError::InvalidValue {
                        name,
                        value: level.clone(),
                        reason: "expected error, warn, info, debug or trace".to_owned(),
                    });
                }
            }
        }
        if let Some(ms) = config.metric_export_interval_ms {
            self.profile.export_interval_ms = ms;
        }
        if let Some(sealed) = config.sealed {
            self.sealed = Some(sealed);
        }
        if let Some(list) = &config.exporters.traces {
            self.profile.exporters.traces = list.clone();
        }
        if let Some(list) = &config.exporters.metrics {
            self.profile.exporters.metrics = list.clone();
        }
        if let Some(list) = &config.exporters.logs {
            self.profile.exporters.logs = list.clone();
        }
        if let Some(name) = &config.service_name {
            self.service_name = name.clone();
        }
        if let Some(limits) = config.limits {
            self.limits = limits;
        }
        self.config = std::mem::take(&mut self.config).merge(config);
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
        self.config
            .resource_attributes
            .insert(key.into(), value.into());
        self
    }

    /// The level of the service's logs. Default: the profile's (info; forensic debug).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.profile.log_level = level;
        self
    }

    /// The metric export interval. Default: the profile's (60 s; forensic 10 s).
    pub fn export_interval(mut self, interval: Duration) -> Self {
        self.profile.export_interval_ms = interval.as_millis() as u64;
        self
    }

    /// The exporters of every signal. Default: the profile's (OTLP; airgap files).
    pub fn exporters(mut self, kinds: &[ExporterKind]) -> Self {
        self.profile.exporters = crate::profile::ExporterSelection::all(kinds);
        self
    }

    /// Sealed mode: network exporters are refused and fall back to files. An explicit
    /// setting wins over every profile, whatever the order. Default: the profile's (false;
    /// airgap true).
    pub fn sealed(mut self, sealed: bool) -> Self {
        self.sealed = Some(sealed);
        self
    }

    /// Redaction settings: extra sensitive keys and the strict (allow-list) mode. Default: the
    /// profile's (default rules only, strict mode off).
    pub fn redaction(mut self, settings: RedactionSettings) -> Self {
        self.profile.redaction = settings;
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
    /// Default: the profile's sampling (every span kept until tail sampling lands).
    pub fn sampler(mut self, name: impl Into<String>, arg: Option<f64>) -> Self {
        self.config.sampler = Some(name.into());
        self.config.sampler_arg = arg.map(|a| a.to_string());
        for field in ["sampler", "sampler_arg"] {
            self.config
                .origins
                .insert(field.to_owned(), "TelemetryBuilder::sampler".to_owned());
        }
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
    /// counted). Default: 65,536.
    pub fn max_queue_size(mut self, records: usize) -> Self {
        self.batch.max_queue = records.max(1);
        self
    }

    /// Estimated bytes the span queue and the log-record queue each hold before new records
    /// are dropped (and counted): a record's fixed size plus its texts, so a few huge records
    /// cannot hold more memory than this while the exporter falls behind. A value of 0 fails
    /// `build()`. Default: 16 MiB ([`DEFAULT_MAX_QUEUE_BYTES`](crate::DEFAULT_MAX_QUEUE_BYTES)).
    pub fn max_queue_bytes(self, bytes: usize) -> Self {
        self.setter("exporters.max_queue_bytes", "max_queue_bytes", |c| {
            c.exporters.max_queue_bytes = Some(u64::try_from(bytes).unwrap_or(u64::MAX))
        })
    }

    /// Bytes of JSON log lines each output (stdout, the log file) holds before new lines are
    /// dropped (and counted). A value of 0 fails `build()`. Default: 8 MiB
    /// ([`LogOutput::DEFAULT_QUEUE_BYTES`]).
    pub fn max_log_line_queue_bytes(self, bytes: usize) -> Self {
        self.setter(
            "log_outputs.max_queue_bytes",
            "max_log_line_queue_bytes",
            |c| c.log_outputs.max_queue_bytes = Some(u64::try_from(bytes).unwrap_or(u64::MAX)),
        )
    }

    /// The longest a span or log record waits in the queue before export. Default: 1 s.
    pub fn export_delay(mut self, delay: Duration) -> Self {
        self.batch.delay = delay;
        self
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
        self
    }

    /// Whether the pipeline serves the Prometheus exposition
    /// ([`Telemetry::metrics_service`]). Default: the profile's (on; airgap off).
    pub fn prometheus_scrape(mut self, enabled: bool) -> Self {
        self.profile.prometheus_scrape = enabled;
        self
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
        build(self)
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

/// A built telemetry pipeline: providers, the tracing dispatch and the counters.
///
/// Cheap to clone; the pipeline shuts down when [`Telemetry::shutdown`] is called or the
/// [`TelemetryGuard`] is dropped.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    service_name: String,
    service_version: String,
    profile: Profile,
    dir: PathBuf,
    disabled: bool,
    propagators: Vec<PropagatorKind>,
    resource: Resource,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    meters: RedactingMeterProvider,
    redactor: Redactor,
    bounds: ValueBounds,
    logger_provider: SdkLoggerProvider,
    dispatch: Dispatch,
    log_outputs: Vec<LogOutput>,
    stats: Arc<PipelineStats>,
    metrics: crate::metrics::Metrics,
    prometheus: Option<crate::metrics::PrometheusExposition>,
    direct_spans: crate::__private::DirectSpans,
    runtime: Mutex<Option<ExportRuntime>>,
    shutdown_timeout: Duration,
    shut_down: AtomicBool,
}

impl Inner {
    /// Flushes and shuts every output and provider down within one deadline: the local JSON
    /// outputs first (they cannot hang), then spans, log records and metrics, each with what
    /// is left of the budget. Runs on its own thread; returns `false` when the deadline passed.
    fn shut_down_parts(&self) -> bool {
        let timeout = self.shutdown_timeout;
        let deadline = std::time::Instant::now() + timeout;
        let (tracer, logger, meter, outputs) = (
            self.tracer_provider.clone(),
            self.logger_provider.clone(),
            self.meter_provider.clone(),
            self.log_outputs.clone(),
        );
        run_with_deadline(timeout, move || {
            let left = || deadline.saturating_duration_since(std::time::Instant::now());
            for output in &outputs {
                let _ = output.shutdown(left());
            }
            let _ = tracer.shutdown_with_timeout(left());
            let _ = logger.shutdown_with_timeout(left());
            let _ = meter.shutdown_with_timeout(left());
        })
        .is_some()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without `shutdown()`: flush now (bounded), while the export runtime still
        // runs; the runtime itself then stops without blocking (see `ExportRuntime`).
        if !self.shut_down.swap(true, Ordering::SeqCst) {
            let _ = self.shut_down_parts();
        }
    }
}

/// The runtime gRPC exporters run on. Never dropped in place: dropping a Tokio runtime inside
/// an async context panics, so it always stops in the background, also on `build()`'s error
/// paths and when a pipeline is dropped inside `#[tokio::main]`.
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    fn start() -> Result<Self, TelemetryError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stellaops-telemetry-export")
            .enable_all()
            .build()
            .map(|r| ExportRuntime(Some(r)))
            .map_err(|source| TelemetryError::Thread {
                what: "export runtime",
                source,
            })
    }

    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.0.as_ref()
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("service_name", &self.inner.service_name)
            .field("profile", &self.inner.profile.name)
            .field("disabled", &self.inner.disabled)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts a builder for `service_name` (`service.name`; `OTEL_SERVICE_NAME` wins when
    /// [`TelemetryBuilder::from_env`] is used).
    pub fn builder(service_name: impl Into<String>) -> TelemetryBuilder {
        TelemetryBuilder::new(service_name)
    }

    /// The tracing dispatch of this pipeline: use it with `tracing::subscriber::with_default`
    /// or `tracing::dispatcher::set_default` when the pipeline is not installed.
    pub fn dispatch(&self) -> &Dispatch {
        &self.inner.dispatch
    }

    /// The tracer provider.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.inner.tracer_provider
    }

    /// The meter provider: its instruments redact attributes before aggregation.
    pub fn meter_provider(&self) -> &RedactingMeterProvider {
        &self.inner.meters
    }

    /// The pipeline's metrics: handles of the catalogue and of service-declared metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    #[doc(hidden)]
    pub fn __direct_spans(&self) -> &crate::__private::DirectSpans {
        &self.inner.direct_spans
    }

    /// The Prometheus exposition, when the profile scrapes.
    pub fn prometheus(&self) -> Option<&crate::metrics::PrometheusExposition> {
        self.inner.prometheus.as_ref()
    }

    /// `GET /metrics` as a tower service (404 when the profile does not scrape).
    pub fn metrics_service(&self) -> crate::metrics::MetricsService {
        crate::metrics::MetricsService::new(self.inner.prometheus.clone())
    }

    /// The pipeline's redactor (for captured headers and other values a layer records).
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// The pipeline's value limits and their truncation counts (for values a layer takes from
    /// a request).
    pub fn value_bounds(&self) -> &ValueBounds {
        &self.inner.bounds
    }

    /// A meter of this pipeline.
    pub fn meter(&self, name: &'static str) -> opentelemetry::metrics::Meter {
        use opentelemetry::metrics::MeterProvider as _;
        self.inner.meters.meter(name)
    }

    /// The resource every signal carries.
    pub fn resource(&self) -> &Resource {
        &self.inner.resource
    }

    /// The effective profile (after setters, configuration and environment).
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// `service.name`.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// `service.version`.
    pub fn service_version(&self) -> &str {
        &self.inner.service_version
    }

    /// The local telemetry directory (file exporter segments).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether the SDK is disabled (`OTEL_SDK_DISABLED`).
    pub fn is_disabled(&self) -> bool {
        self.inner.disabled
    }

    /// A copy of the pipeline's counters: exported, dropped and failed per signal, and each
    /// signal's backlog (records and bytes queued, the oldest record's age).
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.inner.stats.snapshot();
        snapshot.truncated = self.inner.bounds.counts();
        snapshot
    }

    /// Exports everything recorded so far, waiting at most `timeout` in total.
    ///
    /// # Errors
    ///
    /// The first provider error (a timeout included); the other providers are flushed anyway.
    pub fn flush(&self, timeout: Duration) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        let inner = self.inner.clone();
        run_with_deadline(timeout, move || {
            let mut first = None;
            for r in [
                inner.tracer_provider.force_flush(),
                inner.logger_provider.force_flush(),
                inner.meter_provider.force_flush(),
            ] {
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
            for output in &inner.log_outputs {
                output.flush(Duration::from_secs(2));
            }
            first.map_or(Ok(()), Err)
        })
        .unwrap_or(Err(opentelemetry_sdk::error::OTelSdkError::Timeout(
            timeout,
        )))
    }

    /// Flushes and shuts every provider and output down, waiting at most the configured
    /// shutdown timeout. Idempotent; never hangs, also on a current-thread Tokio runtime.
    pub fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if !self.inner.shut_down_parts() {
            tracing::warn!(
                target: "stellaops_telemetry",
                timeout_ms = self.inner.shutdown_timeout.as_millis() as u64,
                "telemetry shutdown passed its deadline; unexported records are counted as dropped"
            );
        }
        // Stops in the background: never blocks, so it is safe inside an async context.
        drop(self.inner.runtime.lock().take());
    }

    /// Wraps the pipeline in a guard that shuts it down when dropped, without installing it.
    pub fn into_guard(self) -> TelemetryGuard {
        TelemetryGuard {
            telemetry: Some(self),
        }
    }

    fn install_globals(&self) -> Result<(), TelemetryError> {
        tracing::dispatcher::set_global_default(self.inner.dispatch.clone())
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        if self.inner.disabled {
            return Ok(());
        }
        crate::metrics::set_global(self.inner.metrics.clone());
        if let Some(pipeline) = crate::instrument::Pipeline::of(&self.inner.dispatch) {
            pipeline.install();
        }
        global::set_tracer_provider(self.inner.tracer_provider.clone());
        global::set_meter_provider(self.inner.meters.clone());
        let mut propagators: Vec<
            Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>,
        > = Vec::new();
        for kind in &self.inner.propagators {
            match kind {
                PropagatorKind::TraceContext => {
                    propagators.push(Box::new(TraceContextPropagator::new()))
                }
                PropagatorKind::Baggage => propagators.push(Box::new(BaggagePropagator::new())),
            }
        }
        global::set_text_map_propagator(
            opentelemetry::propagation::TextMapCompositePropagator::new(propagators),
        );
        Ok(())
    }
}

/// Runs `f` on its own thread and waits at most `timeout` (plus a small margin) for it.
/// Returns `None` when the deadline passed; the thread then finishes on its own.
fn run_with_deadline<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("stellaops-telemetry-shutdown".to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        });
    match spawned {
        Ok(_) => rx.recv_timeout(timeout + Duration::from_millis(250)).ok(),
        Err(_) => None,
    }
}

/// Shuts the pipeline down when dropped: flushes every provider and output, bounded by the
/// shutdown timeout. Returned by [`TelemetryBuilder::install`] and [`Telemetry::into_guard`].
#[must_use = "dropping the guard shuts telemetry down at once"]
#[derive(Debug)]
pub struct TelemetryGuard {
    telemetry: Option<Telemetry>,
}

impl TelemetryGuard {
    /// The pipeline this guard owns.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.telemetry.as_ref()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(telemetry) = self.telemetry.take() {
            telemetry.shutdown();
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Targets never exported as spans or OTLP log records: the exporters' own transports (at
/// trace level they would export themselves without end).
const TRANSPORT_TARGETS: [&str; 10] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// The target of tracing spans whose OpenTelemetry span the SDK records directly (the server
/// layer's request span). No layer of the pipeline enables it: its OpenTelemetry span is
/// recorded directly, and its log context travels in the [`RequestContext`](crate::RequestContext).
/// A subscriber of the service's own still sees it.
pub const DIRECT_SPAN_TARGET: &str = "stellaops_telemetry_tower::request";

fn build(builder: TelemetryBuilder) -> Result<Telemetry, TelemetryError> {
    if let Some(error) = builder.error {
        return Err(error.into());
    }
    let TelemetryBuilder {
        service_name,
        config,
        mut profile,
        sealed,
        egress_policy: custom_policy,
        mut batch,
        shutdown_timeout,
        cardinality_limit,
        limits,
        #[cfg(feature = "testing")]
        test,
        ..
    } = builder;
    let bounds = ValueBounds::new(limits)?;

    if let Some(sealed) = sealed {
        profile.sealed = sealed;
    }
    // OTEL_SERVICE_NAME (or a configured name) wins; then `service.name` in
    // OTEL_RESOURCE_ATTRIBUTES; then the name the code gave the builder.
    let service_name = match (
        &config.service_name,
        config.resource_attributes.get("service.name"),
    ) {
        (None, Some(name)) if !name.trim().is_empty() => name.clone(),
        _ => service_name,
    };
    if service_name.trim().is_empty() {
        return Err(ConfigError::InvalidValue {
            name: config.origin("service_name"),
            value: service_name,
            reason: "the service name must not be empty".to_owned(),
        }
        .into());
    }
    let service_version = config
        .service_version
        .clone()
        .or_else(|| config.resource_attributes.get("service.version").cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    let dir = config
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./telemetry-data"));
    let propagators = config
        .propagators
        .clone()
        .unwrap_or_else(|| vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]);
    let sdk_level = match &config.sdk_log_level {
        Some(v) => LogLevel::parse(v).ok_or_else(|| ConfigError::InvalidValue {
            name: config.origin("sdk_log_level"),
            value: v.clone(),
            reason: "expected error, warn, info, debug or trace".to_owned(),
        })?,
        None => LogLevel::Info,
    };
    let sampler = match &config.sampler {
        Some(name) => Some(parse_sampler(
            &config.origin("sampler"),
            name,
            &config.origin("sampler_arg"),
            config.sampler_arg.as_deref(),
        )?),
        None => None,
    };
    if let Some(bytes) = queue_bytes(
        &config,
        "exporters.max_queue_bytes",
        config.exporters.max_queue_bytes,
    )? {
        batch.max_queue_bytes = bytes;
    }
    let log_line_queue_bytes = queue_bytes(
        &config,
        "log_outputs.max_queue_bytes",
        config.log_outputs.max_queue_bytes,
    )?
    .unwrap_or(LogOutput::DEFAULT_QUEUE_BYTES);
    let files = file_options(&config.files, &dir);
    let outputs_config = config.log_outputs.clone();
    if let Some(redaction) = &config.redaction {
        profile.redaction = redaction.clone();
    }
    let redactor = Redactor::new(&profile.redaction)?;
    let resource = crate::resource::build(
        &service_name,
        &service_version,
        config.deployment_environment.as_deref(),
        &config.resource_attributes,
        &redactor,
    );
    let stats = Arc::new(PipelineStats::default());

    if config.disabled == Some(true) {
        return Ok(Telemetry {
            inner: Arc::new(Inner {
                service_name,
                service_version,
                profile,
                dir,
                disabled: true,
                propagators,
                resource,
                tracer_provider: SdkTracerProvider::builder().build(),
                meter_provider: SdkMeterProvider::builder().build(),
                meters: RedactingMeterProvider::new(
                    SdkMeterProvider::builder().build(),
                    redactor.clone(),
                    bounds.clone(),
                ),
                redactor,
                bounds,
                logger_provider: SdkLoggerProvider::builder().build(),
                dispatch: Dispatch::none(),
                log_outputs: Vec::new(),
                stats,
                metrics: crate::metrics::Metrics::detached(),
                prometheus: None,
                direct_spans: crate::__private::DirectSpans::disabled(),
                runtime: Mutex::new(None),
                shutdown_timeout,
                shut_down: AtomicBool::new(false),
            }),
        });
    }

    // The egress policy is asked before any exporter is built, for the exact endpoint each
    // one would dial. A refused exporter is replaced by the file exporter. Sealed mode means
    // loopback only unless an allow-list is configured.
    let allow = match &config.egress.allow {
        Some(entries) => Some(AllowList::parse(entries)?),
        None => None,
    };
    let policy: Arc<dyn EgressPolicy> = match (profile.sealed, custom_policy, allow) {
        (true, _, allow) => Arc::from(sealed_policy(allow)),
        (false, Some(policy), _) => policy,
        (false, None, Some(list)) => Arc::new(list),
        (false, None, None) => Arc::new(OpenPolicy),
    };
    let mut exporters = profile.exporters.clone();
    let mut otlp = BTreeMap::new();
    let mut refused = Vec::new();
    for (signal, list) in [
        (Signal::Traces, &mut exporters.traces),
        (Signal::Metrics, &mut exporters.metrics),
        (Signal::Logs, &mut exporters.logs),
    ] {
        let Some(pos) = list.iter().position(|k| *k == ExporterKind::Otlp) else {
            continue;
        };
        match crate::export::check_egress(&config, signal, &*policy, profile.sealed)? {
            Egress::Allowed(settings) => {
                otlp.insert(signal.as_str(), *settings);
            }
            Egress::Refused { endpoint, reason } => {
                list.remove(pos);
                if !list.contains(&ExporterKind::File) {
                    list.push(ExporterKind::File);
                }
                stats.egress_refusals.fetch_add(1, Ordering::Relaxed);
                refused.push((signal.as_str(), endpoint, reason));
            }
        }
    }
    let needs_runtime = otlp.values().any(|s| s.protocol == OtlpProtocol::Grpc);
    let runtime = if needs_runtime {
        Some(ExportRuntime::start()?)
    } else {
        None
    };
    let handle = runtime
        .as_ref()
        .and_then(ExportRuntime::runtime)
        .map(|r| r.handle().clone());
    // tonic's channel spawns its worker on the runtime current at construction.
    let _entered = runtime
        .as_ref()
        .and_then(ExportRuntime::runtime)
        .map(|r| r.enter());
    let needs_files = [&exporters.traces, &exporters.metrics, &exporters.logs]
        .iter()
        .any(|l| l.contains(&ExporterKind::File));
    if needs_files {
        std::fs::create_dir_all(&dir).map_err(|source| TelemetryError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    // Spans.
    let mut span_targets = Vec::new();
    for kind in &exporters.traces {
        span_targets.push(match kind {
            ExporterKind::Otlp => match otlp.get("traces") {
                Some(s) => SpanTarget::Otlp(
                    crate::export::otlp_span_exporter(s)?,
                    s.protocol == OtlpProtocol::Grpc,
                ),
                None => continue,
            },
            ExporterKind::File => SpanTarget::File(FileSpanExporter::new(files.clone())?),
            ExporterKind::Stdout => {
                SpanTarget::Stdout(opentelemetry_stdout::SpanExporter::default())
            }
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &test {
        span_targets.push(t.span_target());
    }
    let sampler = match sampler {
        Some(HeadSampler::AlwaysOn) => Sampler::AlwaysOn,
        Some(HeadSampler::AlwaysOff) => Sampler::AlwaysOff,
        Some(HeadSampler::Ratio(r)) => Sampler::TraceIdRatioBased(r),
        Some(HeadSampler::ParentBasedAlwaysOn) => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        Some(HeadSampler::ParentBasedAlwaysOff) => {
            Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
        }
        Some(HeadSampler::ParentBasedRatio(r)) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
        // The SDK does no tail sampling itself (the generated collector configurations do):
        // every span is kept, the safe side of "100 % of error traces kept".
        None => match profile.sampling.mode {
            SamplingMode::Tail | SamplingMode::AlwaysOn => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
            }
        },
    };
    let mut direct_spans = crate::__private::DirectSpans::disabled();
    direct_spans.sampler = sampler.clone();
    direct_spans.bounds = bounds.clone();
    direct_spans.redactor = redactor.clone();
    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(sampler)
        .with_span_limits(bounds.limits().span_limits());
    if !span_targets.is_empty() {
        let processor = BatchSpanProcessor::start(
            span_targets,
            &resource,
            handle.clone(),
            batch,
            stats.spans.clone(),
            redactor.clone(),
            direct_spans.scope.clone(),
        )
        .map_err(|source| TelemetryError::Thread {
            what: "span processor",
            source,
        })?;
        direct_spans.sink = Some(processor.sink());
        tracer_builder = tracer_builder.with_span_processor(crate::limits::BoundingSpanProcessor {
            inner: processor,
            bounds: bounds.clone(),
            redactor: redactor.clone(),
        });
    }
    let tracer_provider = tracer_builder.build();

    // OpenTelemetry log records (the bridge from tracing events).
    let mut log_targets = Vec::new();
    for kind in &exporters.logs {
        log_targets.push(match kind {
            ExporterKind::Otlp => match otlp.get("logs") {
                Some(s) => LogTarget::Otlp(
                    crate::export::otlp_log_exporter(s)?,
                    s.protocol == OtlpProtocol::Grpc,
                ),
                None => continue,
            },
            ExporterKind::File => LogTarget::File(FileLogExporter::new(files.clone())?),
            ExporterKind::Stdout => LogTarget::Stdout(opentelemetry_stdout::LogExporter::default()),
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &test {
        log_targets.push(LogTarget::Memory(t.logs.clone()));
    }
    let mut logger_builder = SdkLoggerProvider::builder().with_resource(resource.clone());
    let bridge_enabled = !log_targets.is_empty();
    if bridge_enabled {
        logger_builder = logger_builder.with_log_processor(
            BatchLogProcessor::start(
                log_targets,
                &resource,
                handle.clone(),
                batch,
                stats.logs.clone(),
            )
            .map_err(|source| TelemetryError::Thread {
                what: "log processor",
                source,
            })?,
        );
    }
    let logger_provider = logger_builder.build();

    // Metrics: one periodic reader per exporter, each export bounded and counted.
    let interval = Duration::from_millis(profile.export_interval_ms.max(1));
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource.clone());
    let mut metric_kinds = Vec::new();
    for kind in &exporters.metrics {
        metric_kinds.push(match kind {
            ExporterKind::Otlp => match otlp.get("metrics") {
                Some(s) => (
                    MetricKind::Otlp(crate::export::otlp_metric_exporter(s)?),
                    (s.protocol == OtlpProtocol::Grpc)
                        .then(|| handle.clone())
                        .flatten(),
                    s.timeout,
                ),
                None => continue,
            },
            ExporterKind::File => (
                MetricKind::File(FileMetricExporter::new(files.clone())?),
                None,
                batch.export_timeout,
            ),
            ExporterKind::Stdout => (
                MetricKind::Stdout(opentelemetry_stdout::MetricExporter::default()),
                None,
                batch.export_timeout,
            ),
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &test {
        metric_kinds.push((
            MetricKind::Memory(t.metrics.clone()),
            None,
            batch.export_timeout,
        ));
    }
    for (kind, runtime, timeout) in metric_kinds {
        let target = MetricTarget {
            kind,
            runtime,
            timeout,
            stats: stats.clone(),
            report_interval: batch.report_interval,
        };
        meter_builder = meter_builder.with_reader(
            PeriodicReader::builder(target)
                .with_interval(interval)
                .build(),
        );
    }
    // The Prometheus exposition is one more reader: a scrape collects like an export does.
    let prometheus = if profile.prometheus_scrape {
        let (exposition, reader) = crate::metrics::PrometheusExposition::new()?;
        meter_builder = meter_builder.with_reader(reader);
        Some(exposition)
    } else {
        None
    };
    let meter_provider = meter_builder.build();
    crate::self_metrics::register(&meter_provider, stats.clone(), redactor.clone());
    crate::limits::register(&meter_provider, &bounds);
    let meters =
        RedactingMeterProvider::new(meter_provider.clone(), redactor.clone(), bounds.clone());
    let metrics = crate::metrics::Metrics::new(
        Some(opentelemetry::metrics::MeterProvider::meter(
            &meter_provider,
            "stellaops-telemetry",
        )),
        cardinality_limit,
        redactor.clone(),
        bounds.clone(),
    );

    // House JSON log lines.
    let mut log_outputs = Vec::new();
    if outputs_config.stdout.unwrap_or(true) {
        log_outputs.push(
            LogOutput::stdout(stats.log_lines.clone())?.max_queue_bytes(log_line_queue_bytes),
        );
    }
    if let Some(path) = &outputs_config.file {
        let file = RotatingFile::new(
            path,
            outputs_config
                .file_max_bytes
                .unwrap_or(RotatingFile::DEFAULT_MAX_BYTES),
            outputs_config
                .file_max_files
                .unwrap_or(RotatingFile::DEFAULT_MAX_FILES),
        )?;
        log_outputs.push(
            LogOutput::file(file, stats.log_lines.clone())?.max_queue_bytes(log_line_queue_bytes),
        );
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &test {
        log_outputs.push(t.json_logs.output());
    }

    // The subscriber: service events at the profile's level, the SDK's own at OTEL_LOG_LEVEL.
    let mut filter = Targets::new().with_default(profile.log_level.to_filter());
    for target in [
        "opentelemetry",
        "opentelemetry_sdk",
        "opentelemetry_otlp",
        "stellaops_telemetry",
        "stellaops_telemetry_core",
    ] {
        filter = filter.with_target(target, sdk_level.to_filter());
    }
    // What is exported must never include the exporters' own transport: at trace level their
    // spans and events would otherwise export themselves, without end.
    let mut span_filter = filter.clone();
    for target in TRANSPORT_TARGETS.iter().chain(&[DIRECT_SPAN_TARGET]) {
        span_filter = span_filter.with_target(*target, tracing_core::LevelFilter::OFF);
    }
    // The request span of the tower layer is recorded directly and its log context travels
    // in the request context: no layer of the pipeline needs it, so it is never enabled.
    let json_filter = filter
        .clone()
        .with_target(DIRECT_SPAN_TARGET, tracing_core::LevelFilter::OFF);
    let mut bridge_filter = span_filter.clone();
    for target in ["stellaops_telemetry", "stellaops_telemetry_core"] {
        bridge_filter = bridge_filter.with_target(target, tracing_core::LevelFilter::OFF);
    }
    let tracer = tracer_provider.tracer("stellaops-telemetry");
    let mut json_layer = JsonLogLayer::new(&service_name)
        .service_version(&service_version)
        .retention(if profile.retention_days > 30 {
            RetentionPolicy::with_floor(profile.retention_days)
        } else {
            RetentionPolicy::default()
        });
    for output in &log_outputs {
        json_layer = json_layer.output(output.clone());
    }
    json_layer = json_layer
        .redactor(redactor.clone())
        .value_bounds(bounds.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(span_filter),
        )
        .with(json_layer.with_filter(json_filter))
        // Without log targets the bridge is filtered to nothing rather than left out: an
        // absent (`None`) layer would make every callsite "sometimes" interesting, and the
        // callsites every layer refuses would no longer be skipped where they are.
        .with({
            use opentelemetry::logs::LoggerProvider as _;
            LogBridge::new(
                logger_provider.logger("stellaops-telemetry"),
                redactor.clone(),
                bounds.clone(),
            )
            .retention(RetentionPolicy::of_profile(&profile))
            .with_filter(if bridge_enabled {
                bridge_filter
            } else {
                Targets::new()
            })
        })
        // What `#[instrument]` finds through the dispatcher: this pipeline's direct spans and
        // metrics. It sees no callsite.
        .with(
            crate::instrument::PipelineLayer(crate::instrument::Pipeline::new(
                direct_spans.clone(),
                metrics.clone(),
            ))
            .with_filter(Targets::new()),
        );
    let dispatch = Dispatch::new(subscriber);

    // One structured warning per refused endpoint; no DNS lookup was made for it.
    for (signal, endpoint, reason) in &refused {
        let allow = if profile.sealed {
            "use the collector's IP address in the endpoint and allow it in the egress allow-list \
             ([egress] allow = [\"<IP or CIDR>\"] or TelemetryBuilder::egress_allow; sealed mode \
             resolves no host names)"
        } else {
            "allow the host in the egress allow-list ([egress] allow = [\"<host or CIDR>\"] or \
             TelemetryBuilder::egress_allow)"
        };
        let remedy = format!(
            "{allow}, or collect the OTLP files under {}/{signal}/",
            dir.display()
        );
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(
                target: "stellaops_telemetry",
                signal = *signal,
                endpoint = %endpoint,
                policy = policy.name(),
                sealed = profile.sealed,
                reason = %reason,
                remedy = %remedy,
                "egress policy refused the OTLP exporter; writing files instead"
            );
        });
    }

    drop(_entered);
    Ok(Telemetry {
        inner: Arc::new(Inner {
            service_name,
            service_version,
            profile,
            dir,
            disabled: false,
            propagators,
            resource,
            tracer_provider,
            meters,
            meter_provider,
            redactor,
            bounds,
            logger_provider,
            dispatch,
            log_outputs,
            stats,
            metrics,
            prometheus,
            direct_spans,
            runtime: Mutex::new(runtime),
            shutdown_timeout,
            shut_down: AtomicBool::new(false),
        }),
    })
}

/// A queue's byte bound from the configuration field `field`: at least one byte.
fn queue_bytes(
    config: &TelemetryConfig,
    field: &str,
    value: Option<u64>,
) -> Result<Option<usize>, ConfigError> {
    match value {
        None => Ok(None),
        Some(0) => Err(ConfigError::InvalidValue {
            name: config.origin(field),
            value: "0".to_owned(),
            reason: "expected a positive number of bytes".to_owned(),
        }),
        Some(bytes) => Ok(Some(usize::try_from(bytes).unwrap_or(usize::MAX))),
    }
}

fn file_options(files: &FilesConfig, dir: &Path) -> FileExportOptions {
    let mut options = FileExportOptions::new(dir);
    if let Some(format) = files.format {
        options.format = format;
    }
    if let Some(bytes) = files.max_segment_bytes {
        options.max_segment_bytes = bytes;
    }
    if let Some(secs) = files.max_segment_age_secs {
        options.max_segment_age = Duration::from_secs(secs);
    }
    if let Some(n) = files.max_segments {
        options.max_segments_per_signal = n;
    }
    options
}
