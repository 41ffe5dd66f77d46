//! Resolve: the builder's calls become typed [`Settings`], by a pure function (nothing is
//! opened, started or dialled here).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::Sampler;

use crate::builder::{ServiceLayer, TelemetryBuilder};
use crate::config::{
    ConfigError, FilesConfig, HeadSampler, LogOutputsConfig, TelemetryConfig, parse_sampler,
};
use crate::egress::{AllowList, EgressPolicy, OpenPolicy, sealed_policy};
use crate::error::TelemetryError;
use crate::export::{BatchSettings, FileExportOptions};
use crate::limits::ValueBounds;
use crate::logs::LogOutput;
use crate::profile::{LogLevel, Profile, SamplingMode};
use crate::redaction::Redactor;

/// Every setting of a pipeline, typed, after every call in order.
pub(crate) struct Settings {
    pub(crate) service_name: String,
    pub(crate) service_version: String,
    /// The profile, sealing applied.
    pub(crate) profile: Profile,
    pub(crate) disabled: bool,
    pub(crate) dir: PathBuf,
    pub(crate) propagators: crate::propagation::Propagators,
    /// The level of the SDK's own diagnostics.
    pub(crate) sdk_level: LogLevel,
    /// `RUST_LOG` directives for the service's events, in place of the profile's level.
    pub(crate) log_filter: Option<String>,
    pub(crate) sampler: Sampler,
    /// The base batch settings (queue byte bound, report interval; the metric file and
    /// stdout exporters' timeout).
    pub(crate) batch: BatchSettings,
    /// The span processor's (`OTEL_BSP_*` over the base).
    pub(crate) span_batch: BatchSettings,
    /// The log-record processor's (`OTEL_BLRP_*` over the base).
    pub(crate) log_batch: BatchSettings,
    pub(crate) log_line_queue_bytes: usize,
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    pub(crate) files: FileExportOptions,
    pub(crate) log_outputs: LogOutputsConfig,
    pub(crate) redactor: Redactor,
    pub(crate) bounds: ValueBounds,
    pub(crate) resource: Resource,
    /// The policy every network exporter's endpoint is checked against.
    pub(crate) policy: Arc<dyn EgressPolicy>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) cardinality_limit: usize,
    /// Where incidents come from besides the API, and what they trigger.
    pub(crate) incidents: crate::incidents::IncidentSettings,
    /// The caps of the SDK's tail sampler (used where the profile samples in the SDK).
    pub(crate) tail_limits: crate::export::TailSamplingLimits,
    /// The OTLP settings (and every value's origin), for the export plan.
    #[cfg_attr(not(feature = "_otlp"), allow(dead_code))]
    pub(crate) config: TelemetryConfig,
}

/// What the builder carries that is not a setting: the service's layers and test exporters.
pub(crate) struct Extras {
    pub(crate) layers: Vec<ServiceLayer>,
    #[cfg(feature = "testing")]
    pub(crate) test: Option<crate::testing::TestExporters>,
}

/// The settings the builder's calls resolve to, and what passes through beside them.
pub(crate) fn resolve(builder: TelemetryBuilder) -> Result<(Settings, Extras), TelemetryError> {
    if let Some(error) = builder.error {
        return Err(error.into());
    }
    let TelemetryBuilder {
        service_name,
        config,
        mut profile,
        sealed,
        egress_policy,
        mut batch,
        shutdown_timeout,
        cardinality_limit,
        limits,
        tail_limits,
        layers,
        incident_hooks,
        error_rate_trigger,
        #[cfg(feature = "testing")]
        test,
        ..
    } = builder;
    let bounds = ValueBounds::new(limits)?;
    if let Some(sealed) = sealed {
        profile.sealed = sealed;
    }
    let (service_name, service_version) = service_identity(service_name, &config)?;
    let dir = config
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./telemetry-data"));
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
    let redactor = Redactor::new(&profile.redaction)?;
    let resource = crate::resource::build(
        &service_name,
        &service_version,
        config.deployment_environment.as_deref(),
        &config.resource_attributes,
        &redactor,
    );
    let span_batch = processor_batch(&config, "batch.spans.", &config.batch.spans, batch);
    let log_batch = processor_batch(&config, "batch.logs.", &config.batch.logs, batch);
    let settings = Settings {
        span_batch: span_batch?,
        log_batch: log_batch?,
        sdk_level: sdk_level(&config)?,
        sampler: sampler(&config, &profile)?,
        policy: egress_policy_of(&config, &profile, egress_policy)?,
        files: file_options(&config.files, &dir).retention(Duration::from_secs(
            u64::from(profile.retention_days) * 24 * 60 * 60,
        )),
        propagators: config
            .propagators
            .as_deref()
            .map_or(crate::propagation::Propagators::W3C, Into::into),
        disabled: config.disabled == Some(true),
        incidents: crate::incidents::IncidentSettings {
            file: config.incident_file.clone(),
            error_rate: error_rate_trigger,
            hooks: incident_hooks,
        },
        log_filter: log_filter(&config)?,
        log_outputs: config.log_outputs.clone(),
        service_name,
        service_version,
        profile,
        dir,
        batch,
        log_line_queue_bytes,
        redactor,
        bounds,
        resource,
        shutdown_timeout,
        cardinality_limit,
        tail_limits,
        config,
    };
    let extras = Extras {
        layers,
        #[cfg(feature = "testing")]
        test,
    };
    Ok((settings, extras))
}

/// What `build()` decides before it builds anything: the settings, the export plan (the
/// egress policy asked about every OTLP endpoint, certificate files read and checked) and the
/// parts this build leaves out refused by name, with the errors `build()` would return.
/// Nothing is created, started or dialled (`stella-telemetry config check`).
#[cfg(feature = "cli")]
pub(crate) fn check(
    builder: TelemetryBuilder,
) -> Result<(Settings, crate::plan::ExportPlan), TelemetryError> {
    let (settings, _extras) = resolve(builder)?;
    let plan = crate::plan::plan(&settings)?;
    Ok((settings, plan))
}

/// `service.name` and `service.version`. A configured name (`OTEL_SERVICE_NAME`) wins; then
/// `service.name` in the resource attributes; then the name the code gave the builder.
fn service_identity(
    code_name: String,
    config: &TelemetryConfig,
) -> Result<(String, String), ConfigError> {
    let name = match (
        &config.service_name,
        config.resource_attributes.get("service.name"),
    ) {
        (None, Some(name)) if !name.trim().is_empty() => name.clone(),
        _ => code_name,
    };
    if name.trim().is_empty() {
        return Err(ConfigError::InvalidValue {
            name: config.origin("service_name"),
            value: name,
            reason: "the service name must not be empty".to_owned(),
        });
    }
    let version = config
        .service_version
        .clone()
        .or_else(|| config.resource_attributes.get("service.version").cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    Ok((name, version))
}

/// The longest `RUST_LOG` filter accepted (a filter is a few directives).
const MAX_LOG_FILTER_BYTES: usize = 4096;

/// The `RUST_LOG` directives, checked: a directive `tracing` cannot parse is an error naming
/// where the filter came from.
fn log_filter(config: &TelemetryConfig) -> Result<Option<String>, ConfigError> {
    let Some(directives) = &config.log_filter else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::InvalidValue {
        name: config.origin("log_filter"),
        // At most 64 characters of it: the rest adds nothing an operator needs.
        value: crate::config::shown(&directives.chars().take(64).collect::<String>()),
        reason,
    };
    if directives.len() > MAX_LOG_FILTER_BYTES {
        return Err(invalid(format!("longer than {MAX_LOG_FILTER_BYTES} bytes")));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(directives)
        .map_err(|e| invalid(format!("expected `tracing` filter directives ({e})")))?;
    Ok(Some(directives.clone()))
}

/// The SDK's own diagnostics: `warn` unless `OTEL_LOG_LEVEL` (or the configuration) says
/// otherwise, so a service's logs carry no SDK chatter by default.
fn sdk_level(config: &TelemetryConfig) -> Result<LogLevel, ConfigError> {
    match &config.sdk_log_level {
        Some(v) => LogLevel::parse(v).ok_or_else(|| ConfigError::InvalidValue {
            name: config.origin("sdk_log_level"),
            value: v.clone(),
            reason: "expected error, warn, info, debug or trace".to_owned(),
        }),
        None => Ok(LogLevel::Warn),
    }
}

/// The head sampler: the configured one, else the profile's sampling, which records every
/// span: tail sampling (in the collector, or in the SDK's tail sampler where the profile says
/// so) decides what is kept, so every error trace can be.
fn sampler(config: &TelemetryConfig, profile: &Profile) -> Result<Sampler, ConfigError> {
    let Some(name) = &config.sampler else {
        return Ok(match profile.sampling.mode {
            SamplingMode::Tail | SamplingMode::AlwaysOn => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
            }
        });
    };
    let head = parse_sampler(
        &config.origin("sampler"),
        name,
        &config.origin("sampler_arg"),
        config.sampler_arg.as_deref(),
    )?;
    Ok(match head {
        HeadSampler::AlwaysOn => Sampler::AlwaysOn,
        HeadSampler::AlwaysOff => Sampler::AlwaysOff,
        HeadSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
        HeadSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        HeadSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        HeadSampler::ParentBasedRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    })
}

/// The egress policy: sealed mode is loopback only unless an allow-list is configured;
/// outside it, a policy set in code, else the allow-list, else open.
fn egress_policy_of(
    config: &TelemetryConfig,
    profile: &Profile,
    custom: Option<Arc<dyn EgressPolicy>>,
) -> Result<Arc<dyn EgressPolicy>, TelemetryError> {
    let allow = match &config.egress.allow {
        Some(entries) => Some(AllowList::parse(entries)?),
        None => None,
    };
    Ok(match (profile.sealed, custom, allow) {
        (true, _, allow) => Arc::from(sealed_policy(allow)),
        (false, Some(policy), _) => policy,
        (false, None, Some(list)) => Arc::new(list),
        (false, None, None) => Arc::new(OpenPolicy),
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

/// One batch processor's settings: `base` with every field `processor` sets, each checked
/// (an error names where the value came from); a batch size above the queue size is cut to
/// it.
fn processor_batch(
    config: &TelemetryConfig,
    field_prefix: &str,
    processor: &crate::config::BatchProcessorConfig,
    base: BatchSettings,
) -> Result<BatchSettings, ConfigError> {
    let at_least_one = |field: &str, value: u64, what: &str| {
        if value >= 1 {
            Ok(())
        } else {
            Err(ConfigError::InvalidValue {
                name: config.origin(&format!("{field_prefix}{field}")),
                value: value.to_string(),
                reason: format!("expected {what}, at least 1"),
            })
        }
    };
    let mut batch = base;
    if let Some(ms) = processor.schedule_delay_ms {
        // A delay of 0 would spin the worker: the shortest is 1 ms.
        batch.delay = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = processor.export_timeout_ms {
        at_least_one("export_timeout_ms", ms, "a whole number of milliseconds")?;
        batch.export_timeout = Duration::from_millis(ms);
    }
    if let Some(n) = processor.max_queue_size {
        at_least_one("max_queue_size", n as u64, "a whole number of records")?;
        batch.max_queue = n;
    }
    if let Some(n) = processor.max_export_batch_size {
        at_least_one(
            "max_export_batch_size",
            n as u64,
            "a whole number of records",
        )?;
        batch.max_batch = n;
    }
    batch.max_batch = batch.max_batch.min(batch.max_queue);
    Ok(batch)
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

#[cfg(test)]
#[cfg(feature = "config-file")]
#[path = "resolve_tests.rs"]
mod tests;
