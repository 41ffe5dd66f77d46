//! The running pipeline: [`Telemetry`] (providers, the tracing dispatch, the counters and the
//! run-time controls) and the [`TelemetryGuard`] that shuts it down.
//!
//! `install()` is the only code that touches process-wide state: the tracing dispatcher, the
//! OpenTelemetry global providers and the W3C propagators. `build()` builds the same pipeline
//! and hands it back unregistered, for tests and embedding.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::global;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use parking_lot::Mutex;
use tracing::Dispatch;

use crate::builder::TelemetryBuilder;
use crate::controls::Controls;
use crate::error::TelemetryError;
use crate::limits::ValueBounds;
use crate::logs::LogOutput;
use crate::profile::Profile;
use crate::propagation::Propagators;
use crate::recorder::SpanRecorder;
use crate::redaction::{RedactingMeterProvider, Redactor};
use crate::stats::{PipelineStats, StatsSnapshot};

/// A built telemetry pipeline: providers, the tracing dispatch and the counters.
///
/// Cheap to clone; the pipeline shuts down when [`Telemetry::shutdown`] is called or the
/// [`TelemetryGuard`] is dropped.
#[derive(Clone)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) service_name: String,
    pub(crate) service_version: String,
    pub(crate) profile: Profile,
    pub(crate) dir: PathBuf,
    pub(crate) disabled: bool,
    pub(crate) propagators: Propagators,
    pub(crate) resource: Resource,
    pub(crate) tracer_provider: SdkTracerProvider,
    pub(crate) meter_provider: SdkMeterProvider,
    pub(crate) meters: RedactingMeterProvider,
    pub(crate) redactor: Redactor,
    pub(crate) bounds: ValueBounds,
    pub(crate) logger_provider: SdkLoggerProvider,
    pub(crate) dispatch: Dispatch,
    pub(crate) log_outputs: Vec<LogOutput>,
    pub(crate) stats: Arc<PipelineStats>,
    pub(crate) metrics: crate::metrics::Metrics,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<crate::metrics::PrometheusExposition>,
    pub(crate) recorder: SpanRecorder,
    pub(crate) controls: Controls,
    /// The policy every network connection of the pipeline is checked against.
    pub(crate) egress_policy: Arc<dyn crate::EgressPolicy>,
    pub(crate) runtime: Mutex<Option<ExportRuntime>>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) shut_down: AtomicBool,
}

impl Inner {
    /// Flushes and shuts every output and provider down within one deadline: the local JSON
    /// outputs first (they cannot hang), then spans, log records and metrics, each with what
    /// is left of the budget. Runs on its own thread; returns `false` when the deadline passed.
    fn shut_down_parts(&self) -> bool {
        let timeout = self.shutdown_timeout;
        // The parts get the budget less a margin, so that what they report arrives before
        // the caller's deadline, which is kept to the letter.
        let margin = (timeout / 10).min(Duration::from_millis(250));
        let deadline = std::time::Instant::now() + timeout.saturating_sub(margin);
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
pub(crate) struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    pub(crate) fn start() -> Result<Self, TelemetryError> {
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

    pub(crate) fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
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

    /// The pipeline's span recorder: the one road every span takes to export (`tracing`
    /// spans, the tower layer's request spans and `#[instrument]` spans alike), with the
    /// pipeline's sampler, span limits, redaction and counts.
    pub fn span_recorder(&self) -> &SpanRecorder {
        &self.inner.recorder
    }

    /// The run-time controls: the service's log level and per-tenant overrides of sampling
    /// and log level, changed without a restart. Readers on the hot path never lock; every
    /// change is counted (`stellaops_telemetry_control_changes_total`) and written as one
    /// audit line (who, what, before, after) through the pipeline's redaction.
    ///
    /// ```
    /// use stellaops_telemetry_core::{LogLevel, Telemetry, TenantOverride, TenantSampling};
    ///
    /// let telemetry = Telemetry::builder("scanner").stdout_logs(false).exporters(&[]).build()?;
    /// let controls = telemetry.controls();
    /// controls.set_log_level("ops@example", LogLevel::Debug)?;
    /// controls.set_tenant(
    ///     "ops@example",
    ///     "acme",
    ///     TenantOverride { sampling: TenantSampling::Always, log_level: Some(LogLevel::Trace) },
    /// )?;
    /// assert_eq!(controls.log_level(), LogLevel::Debug);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn controls(&self) -> &Controls {
        &self.inner.controls
    }

    /// The tenants' incidents: start, stop and list forensic capture per tenant at run time
    /// (see [`Incidents`](crate::Incidents)).
    pub fn incidents(&self) -> &crate::Incidents {
        self.inner.controls.incidents()
    }

    /// The policy the pipeline checks every network connection against: the one set with
    /// [`TelemetryBuilder::egress_policy`](crate::TelemetryBuilder::egress_policy), sealed
    /// mode's, the allow-list, or (by default) an open one. Hand it to anything else the
    /// service connects to on the pipeline's behalf, such as a [`WebhookHook`](crate::WebhookHook).
    ///
    /// ```
    /// use stellaops_telemetry_core::{EgressPolicy, Telemetry};
    ///
    /// let telemetry = Telemetry::builder("scanner").exporters(&[]).sealed(true).build()?;
    /// assert_eq!(telemetry.egress_policy().name(), "loopback-only");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn egress_policy(&self) -> &Arc<dyn crate::EgressPolicy> {
        &self.inner.egress_policy
    }

    /// The Prometheus exposition, when the profile scrapes.
    #[cfg(feature = "prometheus")]
    pub fn prometheus(&self) -> Option<&crate::metrics::PrometheusExposition> {
        self.inner.prometheus.as_ref()
    }

    /// `GET /metrics` as a tower service (404 when the profile does not scrape).
    #[cfg(feature = "prometheus")]
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

    /// A copy of the pipeline's counters: exported, dropped and failed per signal, each
    /// signal's backlog (records and bytes queued, the oldest record's age), and the tail
    /// sampler's decisions where the SDK samples.
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.inner.stats.snapshot();
        snapshot.truncated = self.inner.bounds.counts();
        snapshot.tail_sampling = self.inner.recorder.tail_sampling();
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
        self.inner.controls.incidents().shutdown();
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
        TelemetryGuard { telemetry: self }
    }

    /// The propagators the pipeline was configured with (`OTEL_PROPAGATORS`, default
    /// `tracecontext,baggage`): what `install()` registers globally and what the tower layers
    /// built for this pipeline extract and inject. A disabled pipeline propagates too.
    ///
    /// ```
    /// use stellaops_telemetry_core::Telemetry;
    /// use stellaops_telemetry_core::propagation::Propagators;
    ///
    /// let telemetry = Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
    /// assert_eq!(telemetry.propagators(), Propagators::W3C);
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn propagators(&self) -> Propagators {
        self.inner.propagators
    }

    pub(crate) fn install_globals(&self) -> Result<(), TelemetryError> {
        tracing::dispatcher::set_global_default(self.inner.dispatch.clone())
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        // Propagation works whether or not the SDK is disabled: a disabled service still
        // passes its callers' trace context on.
        self.inner.propagators.install();
        global::set_text_map_propagator(self.inner.propagators.text_map_propagator());
        if self.inner.disabled {
            return Ok(());
        }
        // The dispatcher can be set once per process, so these cannot be taken already;
        // should one be, the install says so rather than leaving a half-installed pipeline
        // unnoticed.
        if !crate::metrics::set_global(self.inner.metrics.clone()) {
            return Err(TelemetryError::GlobalInUse {
                what: "metrics registry",
            });
        }
        if let Some(pipeline) = crate::instrument::Pipeline::of(&self.inner.dispatch)
            && !pipeline.install()
        {
            return Err(TelemetryError::GlobalInUse {
                what: "instrumentation pipeline",
            });
        }
        global::set_tracer_provider(self.inner.tracer_provider.clone());
        global::set_meter_provider(self.inner.meters.clone());
        Ok(())
    }
}

/// Runs `f` on its own thread and waits at most `timeout` for it.
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
        Ok(_) => rx.recv_timeout(timeout).ok(),
        Err(_) => None,
    }
}

/// Shuts the pipeline down when dropped: flushes every provider and output, bounded by the
/// shutdown timeout. Returned by [`TelemetryBuilder::install`] and [`Telemetry::into_guard`];
/// it gives the pipeline it owns ([`TelemetryGuard::telemetry`], or through `Deref`).
///
/// ```
/// use stellaops_telemetry_core::Telemetry;
///
/// let guard = Telemetry::builder("scanner").stdout_logs(false).build()?.into_guard();
/// assert_eq!(guard.telemetry().service_name(), "scanner");
/// assert_eq!(guard.service_name(), "scanner"); // the same, through `Deref`
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[must_use = "dropping the guard shuts telemetry down at once"]
#[derive(Debug)]
pub struct TelemetryGuard {
    telemetry: Telemetry,
}

impl TelemetryGuard {
    /// The pipeline this guard owns.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }
}

impl std::ops::Deref for TelemetryGuard {
    type Target = Telemetry;

    fn deref(&self) -> &Telemetry {
        &self.telemetry
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.telemetry.shutdown();
    }
}
