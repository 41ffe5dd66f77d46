//! Assemble: the export plan becomes running parts — per signal, the exporters behind their
//! bounded batch processors and the SDK provider; then the house JSON outputs and the
//! `tracing` subscriber that feeds them all.

mod subscriber;

pub use subscriber::DIRECT_SPAN_TARGET;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use parking_lot::Mutex;
use tracing::Dispatch;

#[cfg(feature = "_otlp")]
use crate::config::OtlpProtocol;
use crate::controls::{Controls, PipelineSampler};
use crate::error::TelemetryError;
use crate::export::{
    BatchLogProcessor, BatchSpanProcessor, LogTarget, MetricKind, MetricTarget, SpanTarget,
};
#[cfg(feature = "file")]
use crate::export::{FileLogExporter, FileMetricExporter, FileSpanExporter};
#[cfg(feature = "_otlp")]
use crate::export::{
    otlp_log_exporter, otlp_metric_exporter, otlp_metric_transport, otlp_span_exporter,
};
use crate::logs::{LogOutput, RotatingFile};
use crate::metrics::Metrics;
#[cfg(feature = "prometheus")]
use crate::metrics::PrometheusExposition;
use crate::plan::{ExportPlan, Planned, Refusal};
use crate::recorder::{RecorderProcessor, SharedSampler, SpanRecorder};
use crate::redaction::RedactingMeterProvider;
use crate::resolve::{Extras, Settings};
use crate::stats::PipelineStats;
use crate::telemetry::{ExportRuntime, Inner, Telemetry};

/// The name of the pipeline's own instrumentation scope and meter.
const SCOPE: &str = "stellaops-telemetry";

/// Builds the pipeline `settings` and `plan` describe. Nothing is left running on error.
pub(crate) fn assemble(
    settings: Settings,
    plan: ExportPlan,
    extras: Extras,
) -> Result<Telemetry, TelemetryError> {
    let stats = Arc::new(PipelineStats::default());
    let incidents = crate::incidents::Incidents::new(settings.incidents.clone());
    let controls = Controls::new(settings.profile.log_level, incidents);
    if settings.disabled {
        return disabled(settings, stats, controls, extras);
    }
    stats
        .egress_refusals
        .fetch_add(plan.refused.len() as u64, Ordering::Relaxed);
    let runtime = if plan.needs_runtime() {
        Some(ExportRuntime::start()?)
    } else {
        None
    };
    let handle = runtime
        .as_ref()
        .and_then(ExportRuntime::runtime)
        .map(|r| r.handle().clone());
    // tonic's channel spawns its worker on the runtime current at construction.
    let entered = runtime
        .as_ref()
        .and_then(ExportRuntime::runtime)
        .map(|r| r.enter());
    if plan.needs_files() {
        std::fs::create_dir_all(&settings.dir).map_err(|source| TelemetryError::Io {
            path: settings.dir.clone(),
            source,
        })?;
    }
    let (tracer_provider, recorder) =
        spans(&settings, &plan, handle.clone(), &stats, &extras, &controls)?;
    let logger_provider = logs(&settings, &plan, handle.clone(), &stats, &extras)?;
    let meters = metrics(&settings, &plan, handle, &stats, &extras)?;
    crate::controls::register(&meters.provider, &controls);
    crate::incidents::register(&meters.provider, controls.incidents());
    controls
        .incidents()
        .set_metrics(meters.metrics.clone(), settings.service_name.clone());
    if let Some(read) = recorder.tail_sampling_reader() {
        crate::export::register_tail_sampling(&meters.provider, read);
    }
    let log_outputs = outputs(&settings, &stats, &extras)?;
    let dispatch = subscriber::dispatch(subscriber::Parts {
        settings: &settings,
        tracer_provider: Some(&tracer_provider),
        logger_provider: logger_provider.as_ref(),
        log_outputs: &log_outputs,
        recorder: &recorder,
        metrics: &meters.metrics,
        controls: &controls,
        layers: extras.layers,
    })?;
    report_refusals(&settings, &plan.refused, &dispatch);
    report_warnings(&settings, &dispatch);
    drop(entered);
    Ok(Telemetry {
        inner: Arc::new(Inner {
            disabled: false,
            propagators: settings.propagators,
            resource: settings.resource,
            tracer_provider,
            meter_provider: meters.provider,
            meters: meters.redacting,
            redactor: settings.redactor,
            bounds: settings.bounds,
            logger_provider: logger_provider
                .unwrap_or_else(|| SdkLoggerProvider::builder().build()),
            dispatch,
            log_outputs,
            stats,
            metrics: meters.metrics,
            #[cfg(feature = "prometheus")]
            prometheus: meters.prometheus,
            recorder,
            controls,
            egress_policy: settings.policy,
            runtime: Mutex::new(runtime),
            shutdown_timeout: settings.shutdown_timeout,
            shut_down: AtomicBool::new(false),
            service_name: settings.service_name,
            service_version: settings.service_version,
            profile: settings.profile,
            dir: settings.dir,
        }),
    })
}

/// A pipeline that records and exports nothing and opens no socket: no exporter, no span
/// recorded, no metric collected. The service's JSON log lines go on (its own layers too),
/// and so does propagation (see [`Telemetry::propagators`]).
fn disabled(
    settings: Settings,
    stats: Arc<PipelineStats>,
    controls: Controls,
    extras: Extras,
) -> Result<Telemetry, TelemetryError> {
    // `tracing` spans become no OpenTelemetry spans: nothing decides about the caller's
    // trace, which the tower layers pass on as received.
    let tracer_provider = SdkTracerProvider::builder().build();
    let recorder = SpanRecorder::disabled();
    let metrics = Metrics::detached();
    let log_outputs = outputs(&settings, &stats, &extras)?;
    let dispatch = subscriber::dispatch(subscriber::Parts {
        settings: &settings,
        tracer_provider: None,
        logger_provider: None,
        log_outputs: &log_outputs,
        recorder: &recorder,
        metrics: &metrics,
        controls: &controls,
        layers: extras.layers,
    })?;
    report_warnings(&settings, &dispatch);
    Ok(Telemetry {
        inner: Arc::new(Inner {
            disabled: true,
            propagators: settings.propagators,
            resource: settings.resource,
            tracer_provider,
            meter_provider: SdkMeterProvider::builder().build(),
            meters: RedactingMeterProvider::new(
                SdkMeterProvider::builder().build(),
                settings.redactor.clone(),
                settings.bounds.clone(),
            ),
            redactor: settings.redactor,
            bounds: settings.bounds,
            logger_provider: SdkLoggerProvider::builder().build(),
            dispatch,
            log_outputs,
            stats,
            metrics,
            #[cfg(feature = "prometheus")]
            prometheus: None,
            recorder,
            controls,
            egress_policy: settings.policy,
            runtime: Mutex::new(None),
            shutdown_timeout: settings.shutdown_timeout,
            shut_down: AtomicBool::new(false),
            service_name: settings.service_name,
            service_version: settings.service_version,
            profile: settings.profile,
            dir: settings.dir,
        }),
    })
}

/// One structured warning per value the configuration accepted with a warning.
fn report_warnings(settings: &Settings, dispatch: &Dispatch) {
    for warning in settings.config.warnings() {
        tracing::dispatcher::with_default(dispatch, || {
            tracing::warn!(target: "stellaops_telemetry", "{warning}");
        });
    }
}

/// The span road: the exporters behind one batch processor, the [`SpanRecorder`] in front of
/// it, and the SDK tracer provider (for `tracing` spans) with the recorder's sampler, ending
/// its spans in the recorder.
fn spans(
    settings: &Settings,
    plan: &ExportPlan,
    runtime: Option<tokio::runtime::Handle>,
    stats: &Arc<PipelineStats>,
    extras: &Extras,
    controls: &Controls,
) -> Result<(SdkTracerProvider, SpanRecorder), TelemetryError> {
    let mut targets = Vec::new();
    for planned in &plan.traces {
        targets.push(match planned {
            #[cfg(feature = "_otlp")]
            Planned::Otlp(s) => SpanTarget::Otlp(
                otlp_span_exporter(s)?,
                s.protocol == OtlpProtocol::Grpc,
                s.tenancy(&stats.tenants),
            ),
            #[cfg(feature = "file")]
            Planned::File => SpanTarget::File(
                FileSpanExporter::new(settings.files.clone())?
                    .count_removals_into(stats.file_segments_removed.clone()),
            ),
            Planned::Stdout => SpanTarget::Stdout(opentelemetry_stdout::SpanExporter::default()),
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &extras.test {
        targets.push(t.span_target());
    }
    #[cfg(not(feature = "testing"))]
    let _ = extras;
    let scope = InstrumentationScope::builder(SCOPE).build();
    // One sampler for every road: the head sampler, under the run-time tenant overrides.
    let sampler = SharedSampler::new(PipelineSampler::new(
        settings.sampler.clone(),
        controls.clone(),
    ));
    // The provider's own limits are ours, so it never cuts first at another number.
    let builder = SdkTracerProvider::builder()
        .with_resource(settings.resource.clone())
        .with_sampler(sampler.clone())
        .with_span_limits(settings.bounds.limits().span_limits());
    if targets.is_empty() {
        let recorder = SpanRecorder::new(
            None,
            sampler,
            scope,
            settings.bounds.clone(),
            settings.redactor.clone(),
        );
        return Ok((builder.build(), recorder));
    }
    let batch = BatchSpanProcessor::start(
        targets,
        &settings.resource,
        runtime,
        settings.span_batch,
        stats.spans.clone(),
        settings.redactor.clone(),
        scope.clone(),
        crate::export::tail_sampler(&settings.profile.sampling, settings.tail_limits),
    )
    .map_err(|source| TelemetryError::Thread {
        what: "span processor",
        source,
    })?;
    let recorder = SpanRecorder::new(
        Some(batch.sink()),
        sampler,
        scope,
        settings.bounds.clone(),
        settings.redactor.clone(),
    );
    let provider = builder
        .with_span_processor(RecorderProcessor {
            recorder: recorder.clone(),
            batch,
        })
        .build();
    Ok((provider, recorder))
}

/// The OTLP log road's provider, when the plan exports log records.
fn logs(
    settings: &Settings,
    plan: &ExportPlan,
    runtime: Option<tokio::runtime::Handle>,
    stats: &Arc<PipelineStats>,
    extras: &Extras,
) -> Result<Option<SdkLoggerProvider>, TelemetryError> {
    let mut targets = Vec::new();
    for planned in &plan.logs {
        targets.push(match planned {
            #[cfg(feature = "_otlp")]
            Planned::Otlp(s) => LogTarget::Otlp(
                otlp_log_exporter(s)?,
                s.protocol == OtlpProtocol::Grpc,
                s.tenancy(&stats.tenants),
            ),
            #[cfg(feature = "file")]
            Planned::File => LogTarget::File(
                FileLogExporter::new(settings.files.clone())?
                    .count_removals_into(stats.file_segments_removed.clone()),
            ),
            Planned::Stdout => LogTarget::Stdout(opentelemetry_stdout::LogExporter::default()),
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &extras.test {
        targets.push(LogTarget::Memory(t.logs.clone()));
    }
    #[cfg(not(feature = "testing"))]
    let _ = extras;
    if targets.is_empty() {
        return Ok(None);
    }
    let processor = BatchLogProcessor::start(
        targets,
        &settings.resource,
        runtime,
        settings.log_batch,
        stats.logs.clone(),
    )
    .map_err(|source| TelemetryError::Thread {
        what: "log processor",
        source,
    })?;
    Ok(Some(
        SdkLoggerProvider::builder()
            .with_resource(settings.resource.clone())
            .with_log_processor(processor)
            .build(),
    ))
}

/// The metric road's parts.
struct MetricParts {
    provider: SdkMeterProvider,
    redacting: RedactingMeterProvider,
    metrics: Metrics,
    #[cfg(feature = "prometheus")]
    prometheus: Option<PrometheusExposition>,
}

/// The metric road: one periodic reader per exporter (each export bounded and counted), the
/// Prometheus exposition as one more reader, the self-metrics and the catalogue's registry.
#[cfg_attr(not(feature = "_otlp"), allow(unused_variables))]
fn metrics(
    settings: &Settings,
    plan: &ExportPlan,
    runtime: Option<tokio::runtime::Handle>,
    stats: &Arc<PipelineStats>,
    extras: &Extras,
) -> Result<MetricParts, TelemetryError> {
    let batch = &settings.batch;
    let mut kinds = Vec::new();
    for planned in &plan.metrics {
        kinds.push(match planned {
            #[cfg(feature = "_otlp")]
            Planned::Otlp(s) => {
                let grpc = s.protocol == OtlpProtocol::Grpc;
                let runtime = if grpc { runtime.clone() } else { None };
                (
                    MetricKind::Otlp(
                        otlp_metric_exporter(s)?,
                        s.tenancy(&stats.tenants),
                        Box::new(otlp_metric_transport(s)?),
                    ),
                    runtime,
                    s.timeout,
                )
            }
            #[cfg(feature = "file")]
            Planned::File => (
                MetricKind::File(
                    FileMetricExporter::new(settings.files.clone())?
                        .count_removals_into(stats.file_segments_removed.clone()),
                ),
                None,
                batch.export_timeout,
            ),
            Planned::Stdout => (
                MetricKind::Stdout(opentelemetry_stdout::MetricExporter::default()),
                None,
                batch.export_timeout,
            ),
        });
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &extras.test {
        kinds.push((
            MetricKind::Memory(t.metrics.clone()),
            None,
            batch.export_timeout,
        ));
    }
    #[cfg(not(feature = "testing"))]
    let _ = extras;
    let interval = Duration::from_millis(settings.profile.export_interval_ms.max(1));
    let mut builder = SdkMeterProvider::builder().with_resource(settings.resource.clone());
    for (kind, runtime, timeout) in kinds {
        let target = MetricTarget {
            kind,
            runtime,
            timeout,
            stats: stats.clone(),
            report_interval: batch.report_interval,
        };
        builder = builder.with_reader(
            PeriodicReader::builder(target)
                .with_interval(interval)
                .build(),
        );
    }
    // A scrape collects like an export does.
    #[cfg(feature = "prometheus")]
    let prometheus = if settings.profile.prometheus_scrape {
        let (exposition, reader) = PrometheusExposition::new()?;
        builder = builder.with_reader(reader);
        Some(exposition)
    } else {
        None
    };
    let provider = builder.build();
    crate::self_metrics::register(&provider, stats.clone(), settings.redactor.clone());
    crate::limits::register(&provider, &settings.bounds);
    let redacting = RedactingMeterProvider::new(
        provider.clone(),
        settings.redactor.clone(),
        settings.bounds.clone(),
    );
    let metrics = Metrics::new(
        Some(opentelemetry::metrics::MeterProvider::meter(
            &provider, SCOPE,
        )),
        settings.cardinality_limit,
        settings.redactor.clone(),
        settings.bounds.clone(),
    );
    Ok(MetricParts {
        provider,
        redacting,
        metrics,
        #[cfg(feature = "prometheus")]
        prometheus,
    })
}

/// The house JSON log outputs: stdout, the rotating file, the test capture.
fn outputs(
    settings: &Settings,
    stats: &Arc<PipelineStats>,
    extras: &Extras,
) -> Result<Vec<LogOutput>, TelemetryError> {
    let config = &settings.log_outputs;
    let bytes = settings.log_line_queue_bytes;
    let mut outputs = Vec::new();
    if config.stdout.unwrap_or(true) {
        outputs.push(LogOutput::stdout(stats.log_lines.clone())?.max_queue_bytes(bytes));
    }
    if let Some(path) = &config.file {
        let file = RotatingFile::new(
            path,
            config
                .file_max_bytes
                .unwrap_or(RotatingFile::DEFAULT_MAX_BYTES),
            config
                .file_max_files
                .unwrap_or(RotatingFile::DEFAULT_MAX_FILES),
        )?;
        outputs.push(LogOutput::file(file, stats.log_lines.clone())?.max_queue_bytes(bytes));
    }
    #[cfg(feature = "testing")]
    if let Some(t) = &extras.test {
        outputs.push(t.json_logs.output());
    }
    #[cfg(not(feature = "testing"))]
    let _ = extras;
    Ok(outputs)
}

/// One structured warning per refused endpoint; no DNS lookup was made for it.
fn report_refusals(settings: &Settings, refused: &[Refusal], dispatch: &Dispatch) {
    let sealed = settings.profile.sealed;
    for refusal in refused {
        let allow = if sealed {
            "use the collector's IP address in the endpoint and allow it in the egress allow-list \
             ([egress] allow = [\"<IP or CIDR>\"] or TelemetryBuilder::egress_allow; sealed mode \
             resolves no host names)"
        } else {
            "allow the host in the egress allow-list ([egress] allow = [\"<host or CIDR>\"] or \
             TelemetryBuilder::egress_allow)"
        };
        let signal = refusal.signal.as_str();
        let remedy = format!(
            "{allow}, or collect the OTLP files under {}/{signal}/",
            settings.dir.display()
        );
        tracing::dispatcher::with_default(dispatch, || {
            tracing::warn!(
                target: "stellaops_telemetry",
                signal,
                endpoint = %refusal.endpoint,
                policy = settings.policy.name(),
                sealed,
                reason = %refusal.reason,
                remedy = %remedy,
                "egress policy refused the OTLP exporter; writing files instead"
            );
        });
    }
}
