//! The `tracing` subscriber: the service's own layers on the registry, then the pipeline's —
//! spans to the SDK tracer, house JSON lines, the OTLP log bridge and the carrier of what
//! `#[instrument]` finds — each behind its own filter.

use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::BTreeMap;

use tracing::{Dispatch, Subscriber};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, span};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, Targets, filter_fn};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::builder::ServiceLayer;
use crate::controls::{ControlError, ControlledFilter, Controls};
use crate::instrument::{Pipeline, PipelineLayer};
use crate::logs::{JsonLogLayer, LogBridge, LogOutput, RetentionPolicy};
use crate::metrics::Metrics;
use crate::recorder::SpanRecorder;
use crate::resolve::Settings;

/// The OpenTelemetry crates' own targets. Their internal diagnostics use the package name,
/// which is hyphenated for some (`opentelemetry-otlp`), their `tracing` spans the module path
/// (`opentelemetry_otlp::…`): both spellings are listed.
const OTEL_TARGETS: [&str; 11] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry-otlp",
    "opentelemetry_http",
    "opentelemetry-http",
    "opentelemetry_proto",
    "opentelemetry-proto",
    "opentelemetry_stdout",
    "opentelemetry-stdout",
    "opentelemetry-prometheus",
];

/// Targets never exported as spans or OTLP log records: the exporters' own transports and the
/// OpenTelemetry crates (at trace level they would export themselves without end).
const TRANSPORT_TARGETS: [&str; 10] = [
    "h2",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "hyper_timeout",
    "tonic",
    "tower",
    "tower_http",
    "reqwest",
    "rustls",
];

/// The SDK's own targets (and the modules below them), filtered at the SDK diagnostics level
/// with the OpenTelemetry crates'. The tower crate's request and client spans are the
/// service's, not diagnostics.
const SDK_TARGETS: [&str; 2] = ["stellaops_telemetry", "stellaops_telemetry_core"];

/// The target of tracing spans whose OpenTelemetry span the SDK records directly (the server
/// layer's request span). No layer of the pipeline enables it: its OpenTelemetry span is
/// recorded directly, and its log context travels in the [`RequestContext`](crate::RequestContext).
/// A subscriber of the service's own still sees it.
pub const DIRECT_SPAN_TARGET: &str = "stellaops_telemetry_tower::request";

/// What the subscriber is made of.
pub(super) struct Parts<'a> {
    pub(super) settings: &'a Settings,
    /// `None` when `tracing` spans become no OpenTelemetry spans (a disabled pipeline: the
    /// context a request carries is then passed on as received).
    pub(super) tracer_provider: Option<&'a SdkTracerProvider>,
    /// `None` when the plan exports no log records.
    pub(super) logger_provider: Option<&'a SdkLoggerProvider>,
    pub(super) log_outputs: &'a [LogOutput],
    pub(super) recorder: &'a SpanRecorder,
    pub(super) metrics: &'a Metrics,
    pub(super) controls: &'a Controls,
    pub(super) layers: Vec<ServiceLayer>,
}

/// The filters of the pipeline's layers.
struct Filters {
    spans: ControlledFilter,
    json: ControlledFilter,
    bridge: BridgeFilter,
}

/// The fixed rules of one layer: later rules replace earlier ones for the same target.
fn statics(rules: &[(&[&str], LevelFilter)]) -> Vec<(String, LevelFilter)> {
    let mut map = BTreeMap::new();
    for (targets, level) in rules {
        for target in *targets {
            map.insert((*target).to_owned(), *level);
        }
    }
    map.into_iter().collect()
}

/// Service events at the controls' level (the profile's, `RUST_LOG`, or a run-time change),
/// the SDK's own at its diagnostics level; what is exported never includes the exporters' own
/// transport, and the request span of the tower layer (recorded directly, its log context in
/// the request context) is never enabled.
fn filters(
    settings: &Settings,
    controls: &Controls,
    bridge_enabled: bool,
) -> Result<Filters, ControlError> {
    let sdk_level = settings.sdk_level.to_filter();
    let sdk = (&SDK_TARGETS[..], sdk_level);
    let otel = (&OTEL_TARGETS[..], sdk_level);
    let direct = (&[DIRECT_SPAN_TARGET][..], LevelFilter::OFF);
    let transport = (&TRANSPORT_TARGETS[..], LevelFilter::OFF);
    let otel_off = (&OTEL_TARGETS[..], LevelFilter::OFF);
    let ours = (
        &["stellaops_telemetry", "stellaops_telemetry_core"][..],
        LevelFilter::OFF,
    );
    let env = settings.log_filter.as_deref();
    let filter = |rules: &[(&[&str], LevelFilter)]| {
        ControlledFilter::new(controls.clone(), statics(rules), env)
    };
    Ok(Filters {
        spans: filter(&[sdk, otel_off, transport, direct])?,
        json: filter(&[sdk, otel, direct])?.with_tenant_spans(),
        // Without log targets the bridge is filtered to nothing rather than left out: an
        // absent layer would make every callsite "sometimes" interesting, and the callsites
        // every layer refuses would no longer be skipped where they are.
        bridge: if bridge_enabled {
            BridgeFilter::On(Box::new(
                filter(&[otel_off, transport, direct, ours])?.with_tenant_spans(),
            ))
        } else {
            BridgeFilter::Off
        },
    })
}

/// The OTLP log bridge's filter: the controlled one, or nothing at all when no exporter takes
/// log records.
enum BridgeFilter {
    On(Box<ControlledFilter>),
    Off,
}

impl<S> Filter<S> for BridgeFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        match self {
            BridgeFilter::On(f) => Filter::<S>::enabled(&**f, meta, cx),
            BridgeFilter::Off => false,
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        match self {
            BridgeFilter::On(f) => Filter::<S>::event_enabled(&**f, event, cx),
            BridgeFilter::Off => false,
        }
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match self {
            BridgeFilter::On(f) => Filter::<S>::callsite_enabled(&**f, meta),
            BridgeFilter::Off => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match self {
            BridgeFilter::On(f) => Filter::<S>::max_level_hint(&**f),
            BridgeFilter::Off => Some(LevelFilter::OFF),
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if let BridgeFilter::On(f) = self {
            Filter::<S>::on_new_span(&**f, attrs, id, cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let BridgeFilter::On(f) = self {
            Filter::<S>::on_record(&**f, id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let BridgeFilter::On(f) = self {
            Filter::<S>::on_enter(&**f, id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let BridgeFilter::On(f) = self {
            Filter::<S>::on_exit(&**f, id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let BridgeFilter::On(f) = self {
            Filter::<S>::on_close(&**f, id, cx);
        }
    }
}

/// The pipeline's dispatch: the service's layers first (on the registry itself), then ours.
/// The controls write their audit lines through it.
pub(super) fn dispatch(mut parts: Parts<'_>) -> Result<Dispatch, ControlError> {
    let layers = std::mem::take(&mut parts.layers);
    let dispatch = if layers.is_empty() {
        Dispatch::new(pipeline_layers(tracing_subscriber::registry(), &parts)?)
    } else {
        Dispatch::new(pipeline_layers(
            tracing_subscriber::registry().with(layers),
            &parts,
        )?)
    };
    parts.controls.set_dispatch(&dispatch);
    Ok(dispatch)
}

/// The pipeline's layers on `base`.
fn pipeline_layers<S>(
    base: S,
    parts: &Parts<'_>,
) -> Result<impl Subscriber + Send + Sync + use<S>, ControlError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let settings = parts.settings;
    let filters = filters(settings, parts.controls, parts.logger_provider.is_some())?;
    let retention = RetentionPolicy::of_profile(&settings.profile);
    let mut json = JsonLogLayer::new(&settings.service_name)
        .service_version(&settings.service_version)
        .retention(retention)
        .incidents(parts.controls.incidents().clone());
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
        .retention(retention)
        .incidents(parts.controls.incidents().clone());
    // Events reach the span layer only to become span events (and, at `ERROR`, to mark the
    // span as failed): without span events, it sees spans and `ERROR` events alone, and the
    // other events never pay for a copy of their fields.
    let span_events = settings.log_outputs.span_events.unwrap_or(true);
    let spans = parts.tracer_provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("stellaops-telemetry"))
            .with_filter(
                filters.spans.and(
                    filter_fn(move |meta| {
                        span_events || meta.is_span() || *meta.level() == tracing::Level::ERROR
                    })
                    // No narrower than the level filter: the pipeline's level hint is kept.
                    .with_max_level_hint(LevelFilter::TRACE),
                ),
            )
    });
    Ok(base
        .with(spans)
        .with(json.with_filter(filters.json))
        .with(bridge.with_filter(filters.bridge))
        // What `#[instrument]` finds through the dispatcher: this pipeline's span recorder and
        // metrics. It sees no callsite.
        .with(
            PipelineLayer(Pipeline::new(parts.recorder.clone(), parts.metrics.clone()))
                .with_filter(Targets::new()),
        ))
}
