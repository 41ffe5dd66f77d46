//! The `tracing` subscriber: the service's own layers on the registry, then the pipeline's —
//! spans to the SDK tracer, house JSON lines, the OTLP log bridge and the carrier of what
//! `#[instrument]` finds — each behind its own filter.

use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Dispatch, Subscriber};
use tracing_core::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

use crate::builder::ServiceLayer;
use crate::instrument::{Pipeline, PipelineLayer};
use crate::logs::{JsonLogLayer, LogBridge, LogOutput, RetentionPolicy};
use crate::metrics::Metrics;
use crate::recorder::SpanRecorder;
use crate::resolve::Settings;

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

/// The SDK's own targets, filtered at the SDK diagnostics level.
const SDK_TARGETS: [&str; 5] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "stellaops_telemetry",
    "stellaops_telemetry_core",
];

/// The target of tracing spans whose OpenTelemetry span the SDK records directly (the server
/// layer's request span). No layer of the pipeline enables it: its OpenTelemetry span is
/// recorded directly, and its log context travels in the [`RequestContext`](crate::RequestContext).
/// A subscriber of the service's own still sees it.
pub const DIRECT_SPAN_TARGET: &str = "stellaops_telemetry_tower::request";

/// What the subscriber is made of.
pub(super) struct Parts<'a> {
    pub(super) settings: &'a Settings,
    pub(super) tracer_provider: &'a SdkTracerProvider,
    /// `None` when the plan exports no log records.
    pub(super) logger_provider: Option<&'a SdkLoggerProvider>,
    pub(super) log_outputs: &'a [LogOutput],
    pub(super) recorder: &'a SpanRecorder,
    pub(super) metrics: &'a Metrics,
    pub(super) layers: Vec<ServiceLayer>,
}

/// The filters of the pipeline's layers.
struct Filters {
    spans: Targets,
    json: Targets,
    bridge: Targets,
}

/// Service events at the profile's level, the SDK's own at its diagnostics level; what is
/// exported never includes the exporters' own transport, and the request span of the tower
/// layer (recorded directly, its log context in the request context) is never enabled.
fn filters(settings: &Settings, bridge_enabled: bool) -> Filters {
    let mut base = Targets::new().with_default(settings.profile.log_level.to_filter());
    for target in SDK_TARGETS {
        base = base.with_target(target, settings.sdk_level.to_filter());
    }
    let mut spans = base.clone();
    for target in TRANSPORT_TARGETS.iter().chain(&[DIRECT_SPAN_TARGET]) {
        spans = spans.with_target(*target, LevelFilter::OFF);
    }
    let json = base.with_target(DIRECT_SPAN_TARGET, LevelFilter::OFF);
    // Without log targets the bridge is filtered to nothing rather than left out: an absent
    // layer would make every callsite "sometimes" interesting, and the callsites every layer
    // refuses would no longer be skipped where they are.
    let bridge = if bridge_enabled {
        let mut bridge = spans.clone();
        for target in ["stellaops_telemetry", "stellaops_telemetry_core"] {
            bridge = bridge.with_target(target, LevelFilter::OFF);
        }
        bridge
    } else {
        Targets::new()
    };
    Filters {
        spans,
        json,
        bridge,
    }
}

/// The pipeline's dispatch: the service's layers first (on the registry itself), then ours.
pub(super) fn dispatch(mut parts: Parts<'_>) -> Dispatch {
    let layers = std::mem::take(&mut parts.layers);
    if layers.is_empty() {
        Dispatch::new(pipeline_layers(tracing_subscriber::registry(), &parts))
    } else {
        Dispatch::new(pipeline_layers(
            tracing_subscriber::registry().with(layers),
            &parts,
        ))
    }
}

/// The pipeline's layers on `base`.
fn pipeline_layers<S>(base: S, parts: &Parts<'_>) -> impl Subscriber + Send + Sync + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let settings = parts.settings;
    let filters = filters(settings, parts.logger_provider.is_some());
    let retention = RetentionPolicy::of_profile(&settings.profile);
    let mut json = JsonLogLayer::new(&settings.service_name)
        .service_version(&settings.service_version)
        .retention(retention.clone());
    for output in parts.log_outputs {
        json = json.output(output.clone());
    }
    let json = json
        .redactor(settings.redactor.clone())
        .value_bounds(settings.bounds.clone());
    let logger = match parts.logger_provider {
        Some(provider) => provider.logger("stellaops-telemetry"),
        None => SdkLoggerProvider::builder()
            .build()
            .logger("stellaops-telemetry"),
    };
    let bridge = LogBridge::new(logger, settings.redactor.clone(), settings.bounds.clone())
        .retention(retention);
    base.with(
        tracing_opentelemetry::layer()
            .with_tracer(parts.tracer_provider.tracer("stellaops-telemetry"))
            .with_filter(filters.spans),
    )
    .with(json.with_filter(filters.json))
    .with(bridge.with_filter(filters.bridge))
    // What `#[instrument]` finds through the dispatcher: this pipeline's span recorder and
    // metrics. It sees no callsite.
    .with(
        PipelineLayer(Pipeline::new(parts.recorder.clone(), parts.metrics.clone()))
            .with_filter(Targets::new()),
    )
}
