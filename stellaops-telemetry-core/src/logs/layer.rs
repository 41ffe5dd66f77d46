//! The tracing layer that turns each event into one JSON line.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::LogOutput;
use super::format::{Clock, FieldValue, JsonBuf, hex_ids, write_json_str};
use crate::limits::ValueBounds;
use crate::redaction::{REDACTED, Redactor, Verdict};

/// Thread-local buffers larger than this are given back after the line that grew them.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// How long each record must be kept, by level, with an optional floor.
///
/// The classes are error 180 days, warn 90, info 30, debug and trace 7. A floor raises every
/// class below it (the forensic profile keeps everything for 180 days).
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::RetentionPolicy;
/// use tracing::Level;
///
/// assert_eq!(RetentionPolicy::default().days(Level::DEBUG), 7);
/// assert_eq!(RetentionPolicy::with_floor(180).days(Level::DEBUG), 180);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    floor_days: Option<u32>,
}

impl RetentionPolicy {
    /// The standard classes, raised to at least `floor_days` days.
    pub fn with_floor(floor_days: u32) -> Self {
        Self {
            floor_days: Some(floor_days),
        }
    }

    /// The floor, if any. Default: none.
    pub fn floor_days(self) -> Option<u32> {
        self.floor_days
    }

    /// The policy of `profile`: the standard classes, with the profile's retention as the
    /// floor when it is above the info class (forensic: 180 days for all).
    pub(crate) fn of_profile(profile: &crate::profile::Profile) -> Self {
        if profile.retention_days > 30 {
            Self::with_floor(profile.retention_days)
        } else {
            Self::default()
        }
    }

    /// The number of days a record of `level` is kept.
    pub fn days(self, level: Level) -> u32 {
        let class = match level {
            Level::ERROR => 180,
            Level::WARN => 90,
            Level::INFO => 30,
            _ => 7,
        };
        class.max(self.floor_days.unwrap_or(0))
    }
}

/// A [`Layer`] that writes one JSON object per line for every event.
///
/// Fields, in order: `timestamp` (RFC 3339 UTC, milliseconds), `level`, `message`, `service`,
/// `version`, `traceId` and `spanId` (of the OpenTelemetry span that `tracing-opentelemetry`
/// made for the nearest enclosing span, when there is one), `tenant` and `correlationId` (from
/// the nearest span with a `tenant.id` or `tenant` field, and a `correlation_id`,
/// `correlationId` or `request.id` field, when known), `target`, the event's own fields, and
/// `retention` (see [`RetentionPolicy`]).
///
/// The layer filters nothing; put a filter on it as needed (a built pipeline puts its
/// controlled filter on it: the service's level, `RUST_LOG`, tenant levels).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use stellaops_telemetry_core::{JsonLogLayer, LogOutput, RetentionPolicy, SignalStats};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let stats = Arc::new(SignalStats::default());
/// let layer = JsonLogLayer::new("scanner")
///     .service_version("1.4.2")
///     .retention(RetentionPolicy::with_floor(180))
///     .output(LogOutput::stdout(stats)?);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// # Ok::<(), stellaops_telemetry_core::LogOutputError>(())
/// ```
pub struct JsonLogLayer {
    service: String,
    version: String,
    retention: RetentionPolicy,
    outputs: Vec<LogOutput>,
    /// `,"service":"…","version":"…"`, escaped once.
    service_fragment: Vec<u8>,
    /// `,"retention":"…d"}` and the newline, by level index.
    retention_fragments: [Vec<u8>; 5],
    /// The pipeline's incidents: a tenant under one gets `incident_fragments`.
    incidents: Option<crate::Incidents>,
    /// The retention fragments of a tenant under incident (the forensic classes).
    incident_fragments: [Vec<u8>; 5],
    redactor: Option<Redactor>,
    bounds: ValueBounds,
    dispatch: OnceLock<WeakDispatch>,
}

impl fmt::Debug for JsonLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayer")
            .field("service", &self.service)
            .field("version", &self.version)
            .field("retention", &self.retention)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

const LEVELS: [Level; 5] = [
    Level::ERROR,
    Level::WARN,
    Level::INFO,
    Level::DEBUG,
    Level::TRACE,
];

/// `","level":"…"` by level index; the timestamp's closing quote comes first.
const LEVEL_FRAGMENTS: [&[u8]; 5] = [
    b"\",\"level\":\"error\"",
    b"\",\"level\":\"warn\"",
    b"\",\"level\":\"info\"",
    b"\",\"level\":\"debug\"",
    b"\",\"level\":\"trace\"",
];

fn level_index(level: &Level) -> usize {
    match *level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

impl JsonLogLayer {
    /// A layer for `service`, with no outputs yet.
    pub fn new(service: impl Into<String>) -> Self {
        let mut layer = Self {
            service: service.into(),
            version: "unknown".to_owned(),
            retention: RetentionPolicy::default(),
            outputs: Vec::new(),
            service_fragment: Vec::new(),
            retention_fragments: Default::default(),
            incidents: None,
            incident_fragments: Default::default(),
            redactor: Some(Redactor::default()),
            bounds: ValueBounds::default(),
            dispatch: OnceLock::new(),
        };
        layer.render_fragments();
        layer
    }

    /// The `version` written on every line. Default: `"unknown"`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self.render_fragments();
        self
    }

    /// How retention classes are chosen. Default: [`RetentionPolicy::default`], no floor.
    pub fn retention(mut self, retention: RetentionPolicy) -> Self {
        self.retention = retention;
        self.render_fragments();
        self
    }

    /// Redacts every field, the message, the tenant and the correlation id through
    /// `redactor` before they are written. Default: a redactor with the default rules (the
    /// pipeline passes its own, with the profile's settings and counters).
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Cuts every field value (the message included) longer than the bounds' log value limit,
    /// after redaction, and counts the cut. Default: [`ValueBounds::default`] (8192 bytes; the
    /// pipeline passes its own, with its limits and counters).
    pub fn value_bounds(mut self, bounds: ValueBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// Turns redaction off, to measure what it costs. Never for a service: nothing else
    /// stands between this layer's fields and its outputs.
    #[doc(hidden)]
    pub fn without_redaction(mut self) -> Self {
        self.redactor = None;
        self
    }

    /// Adds an output; every line goes to each output. Default: none (the layer writes nothing).
    pub fn output(mut self, output: LogOutput) -> Self {
        self.outputs.push(output);
        self
    }

    fn render_fragments(&mut self) {
        let mut service = JsonBuf::default();
        service.push_raw(b",\"service\":");
        write_json_str(&mut service.bytes, &self.service);
        service.push_raw(b",\"version\":");
        write_json_str(&mut service.bytes, &self.version);
        self.service_fragment = service.bytes;
        for (fragment, level) in self.retention_fragments.iter_mut().zip(LEVELS) {
            *fragment =
                format!(",\"retention\":\"{}d\"}}\n", self.retention.days(level)).into_bytes();
        }
        let forensic = RetentionPolicy::of_profile(&crate::Profile::forensic());
        for (fragment, level) in self.incident_fragments.iter_mut().zip(LEVELS) {
            *fragment = format!(",\"retention\":\"{}d\"}}\n", forensic.days(level)).into_bytes();
        }
    }

    /// Gives the lines of a tenant under incident the forensic retention classes.
    pub(crate) fn incidents(mut self, incidents: crate::Incidents) -> Self {
        self.incidents = Some(incidents);
        self
    }

    fn encode(&self, scratch: &mut Scratch, event: &Event<'_>, now: SystemTime, span: &SpanInfo) {
        let Scratch {
            line,
            fields,
            clock,
            text,
        } = scratch;
        line.bytes.clear();
        fields.bytes.clear();
        let meta = event.metadata();
        let level = level_index(meta.level());

        line.push_raw(b"{\"timestamp\":\"");
        clock.write(&mut line.bytes, now);
        line.push_raw(LEVEL_FRAGMENTS[level]);

        let mut visitor = EventVisitor {
            message: &mut *line,
            fields: &mut *fields,
            message_seen: false,
            redactor: self.redactor.as_ref(),
            bounds: &self.bounds,
            text,
        };
        event.record(&mut visitor);
        if !visitor.message_seen {
            line.write_field("message", FieldValue::Str(""));
        }

        line.push_raw(&self.service_fragment);
        if let Some(ids) = &span.ids {
            line.push_raw(b",\"traceId\":\"");
            line.push_raw(&ids[..32]);
            line.push_raw(b"\",\"spanId\":\"");
            line.push_raw(&ids[32..]);
            line.push_raw(b"\"");
        }
        // Redacted, then cut to the log value limit (a span field may hold anything).
        fn bounded<'v>(
            redactor: Option<&Redactor>,
            bounds: &ValueBounds,
            value: &'v str,
        ) -> std::borrow::Cow<'v, str> {
            let redacted = match redactor {
                Some(r) => r.redact_str(value),
                None => std::borrow::Cow::Borrowed(value),
            };
            if redacted.len() <= bounds.limits().log_value_bytes {
                return redacted;
            }
            let mut text = redacted.into_owned();
            bounds.cut_log_value(&mut text);
            std::borrow::Cow::Owned(text)
        }
        let (redactor, bounds) = (self.redactor.as_ref(), &self.bounds);
        if let Some(tenant) = &span.tenant {
            line.write_field(
                "tenant",
                FieldValue::Str(&bounded(redactor, bounds, tenant)),
            );
        }
        if let Some(correlation) = &span.correlation {
            let correlation = bounded(redactor, bounds, correlation);
            line.write_field("correlationId", FieldValue::Str(&correlation));
        }
        line.push_raw(b",\"target\":");
        write_json_str(&mut line.bytes, meta.target());
        line.push_raw(&fields.bytes);
        let under_incident = match (&self.incidents, &span.tenant) {
            (Some(incidents), Some(tenant)) => incidents.is_active(tenant),
            _ => false,
        };
        if under_incident {
            line.push_raw(&self.incident_fragments[level]);
        } else {
            line.push_raw(&self.retention_fragments[level]);
        }

        for output in &self.outputs {
            output.write_line(&line.bytes);
        }
    }

    /// Trace ids, tenant and correlation id from the event's span and its ancestors.
    fn span_info<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> SpanInfo
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut info = SpanInfo::default();
        // The current OpenTelemetry context is the innermost span (see `event_span_ids`).
        if event.is_contextual() {
            info.ids = current_context_ids();
        }
        // The event's span, then its parents: `event_scope` would look the first one up twice.
        let mut next = ctx.event_span(event);
        while let Some(span) = next {
            let mut resolve = false;
            {
                let extensions = span.extensions();
                if info.ids.is_none() {
                    match extensions.get::<OtelIds>() {
                        Some(OtelIds(ids)) => info.ids = *ids,
                        None => resolve = true,
                    }
                }
                if let Some(fields) = extensions.get::<ContextFields>() {
                    if info.tenant.is_none() {
                        info.tenant.clone_from(&fields.tenant);
                    }
                    if info.correlation.is_none() {
                        info.correlation.clone_from(&fields.correlation);
                    }
                }
            }
            if resolve {
                info.ids = self.resolve_ids(&span);
            }
            if info.ids.is_some() && info.tenant.is_some() && info.correlation.is_some() {
                break;
            }
            next = span.parent();
        }
        if info.ids.is_none() {
            info.ids = current_context_ids();
        }
        if info.tenant.is_none() || info.correlation.is_none() {
            // The request's own context (the server layer attaches one per request).
            crate::RequestContext::map_current(|cx| {
                if let Some(cx) = cx {
                    if info.tenant.is_none() {
                        info.tenant = cx.shared_tenant().cloned();
                    }
                    if info.correlation.is_none() {
                        info.correlation = cx.shared_correlation_id().cloned();
                    }
                }
            });
        }
        info
    }

    fn resolve_ids<S>(&self, span: &SpanRef<'_, S>) -> Option<[u8; 48]>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        resolve_span_ids(&self.dispatch, span)
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        capture_context_fields(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        update_context_fields(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.outputs.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let span = self.span_info(event, &ctx);
        with_scratch(|scratch| self.encode(scratch, event, now, &span));
    }
}

/// Keeps a new span's tenant and correlation id fields (if it has any) as a span extension,
/// for the events inside it. Every log layer calls this; the first one stores them.
pub(crate) fn capture_context_fields<S>(attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !attrs
        .metadata()
        .fields()
        .iter()
        .any(|f| ContextField::of(f.name()).is_some())
    {
        return;
    }
    let Some(span) = ctx.span(id) else { return };
    if span.extensions().get::<ContextFields>().is_some() {
        return;
    }
    let mut visitor = ContextFields::default();
    attrs.record(&mut visitor);
    if visitor.tenant.is_some() || visitor.correlation.is_some() {
        span.extensions_mut().replace(visitor);
    }
}

/// Updates a span's tenant and correlation id from values recorded after it started
/// (idempotent: every log layer may call it).
pub(crate) fn update_context_fields<S>(id: &Id, values: &Record<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut visitor = ContextFields::default();
    values.record(&mut visitor);
    if visitor.tenant.is_none() && visitor.correlation.is_none() {
        return;
    }
    let Some(span) = ctx.span(id) else { return };
    let mut extensions = span.extensions_mut();
    match extensions.get_mut::<ContextFields>() {
        Some(fields) => {
            if visitor.tenant.is_some() {
                fields.tenant = visitor.tenant;
            }
            if visitor.correlation.is_some() {
                fields.correlation = visitor.correlation;
            }
        }
        None => extensions.insert(visitor),
    }
}

/// The tenant and correlation id of `event`: from the nearest spans that recorded them, else
/// from the current [`RequestContext`](crate::RequestContext).
pub(super) fn event_context<S>(
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> (Option<Arc<str>>, Option<Arc<str>>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let (mut tenant, mut correlation) = (None, None);
    let mut next = ctx.event_span(event);
    while let Some(span) = next {
        if let Some(fields) = span.extensions().get::<ContextFields>() {
            if tenant.is_none() {
                tenant.clone_from(&fields.tenant);
            }
            if correlation.is_none() {
                correlation.clone_from(&fields.correlation);
            }
        }
        if tenant.is_some() && correlation.is_some() {
            return (tenant, correlation);
        }
        next = span.parent();
    }
    crate::RequestContext::map_current(|cx| {
        if let Some(cx) = cx {
            if tenant.is_none() {
                tenant = cx.shared_tenant().cloned();
            }
            if correlation.is_none() {
                correlation = cx.shared_correlation_id().cloned();
            }
        }
    });
    (tenant, correlation)
}

/// The tenant a span recorded (`tenant.id` or `tenant`), as kept by [`capture_context_fields`].
pub(crate) fn span_tenant<S>(span: &SpanRef<'_, S>) -> Option<Arc<str>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    span.extensions()
        .get::<ContextFields>()
        .and_then(|fields| fields.tenant.clone())
}

/// What an event needs from its spans.
#[derive(Default)]
struct SpanInfo {
    /// Trace id then span id, as 32 + 16 lowercase hex digits.
    ids: Option<[u8; 48]>,
    tenant: Option<Arc<str>>,
    correlation: Option<Arc<str>>,
}

/// Span extension: the OpenTelemetry ids of the span, once asked for (`None`: it has none).
struct OtelIds(Option<[u8; 48]>);

/// Span extension, present only on spans that recorded a tenant or correlation id field.
#[derive(Default)]
struct ContextFields {
    tenant: Option<Arc<str>>,
    correlation: Option<Arc<str>>,
}

enum ContextField {
    Tenant,
    Correlation,
}

impl ContextField {
    fn of(name: &str) -> Option<Self> {
        match name {
            "tenant.id" | "tenant" => Some(Self::Tenant),
            "correlation_id" | "correlationId" | "request.id" => Some(Self::Correlation),
            _ => None,
        }
    }
}

impl ContextFields {
    fn set(&mut self, field: &Field, value: impl FnOnce() -> Arc<str>) {
        match ContextField::of(field.name()) {
            Some(ContextField::Tenant) => self.tenant = Some(value()),
            Some(ContextField::Correlation) => self.correlation = Some(value()),
            None => {}
        }
    }
}

impl Visit for ContextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, || Arc::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, || Arc::from(value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, || Arc::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, || Arc::from(format!("{value:?}")));
    }
}

/// Sends the message to the line and every other field to the field buffer, so the message
/// lands before the house fields whatever its place among the event's fields.
struct EventVisitor<'a> {
    message: &'a mut JsonBuf,
    fields: &'a mut JsonBuf,
    message_seen: bool,
    redactor: Option<&'a Redactor>,
    bounds: &'a ValueBounds,
    /// Reused buffer for `Debug`/`Display` values that the redactor must read as text.
    text: &'a mut String,
}

impl EventVisitor<'_> {
    fn write(&mut self, field: &Field, value: FieldValue<'_>) {
        let name = field.name();
        let is_message = name == "message" && !self.message_seen;
        let Some(redactor) = self.redactor else {
            return self.emit(name, is_message, value);
        };
        // The redaction choke point: every value from the caller's code passes here.
        if !is_message {
            match redactor.check_key(name) {
                Verdict::Drop => return,
                Verdict::Replace(()) => return self.emit(name, false, FieldValue::Str(REDACTED)),
                Verdict::Keep => {}
            }
        }
        match value {
            FieldValue::Str(s) => {
                let redacted = redactor.redact_str(s);
                self.emit(name, is_message, FieldValue::Str(&redacted));
            }
            FieldValue::Debug(d) => {
                let mut text = std::mem::take(self.text);
                text.clear();
                let _ = fmt::write(&mut text, format_args!("{d:?}"));
                let redacted = redactor.redact_str(&text);
                self.emit(name, is_message, FieldValue::Str(&redacted));
                drop(redacted);
                *self.text = text;
            }
            other => self.emit(name, is_message, other),
        }
    }

    fn emit(&mut self, name: &str, is_message: bool, value: FieldValue<'_>) {
        if let FieldValue::Str(s) = value
            && s.len() > self.bounds.limits().log_value_bytes
        {
            let mut text = s.to_owned();
            self.bounds.cut_log_value(&mut text);
            return self.emit_bounded(name, is_message, FieldValue::Str(&text));
        }
        self.emit_bounded(name, is_message, value);
    }

    fn emit_bounded(&mut self, name: &str, is_message: bool, value: FieldValue<'_>) {
        if is_message {
            self.message_seen = true;
            self.message.write_field(name, value);
        } else {
            self.fields.write_event_field(name, value);
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.write(field, FieldValue::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, FieldValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.write(field, FieldValue::I128(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.write(field, FieldValue::U128(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, FieldValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, FieldValue::Str(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.write(field, FieldValue::Debug(&tracing::field::display(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, FieldValue::Debug(value));
    }
}

/// Per-thread buffers reused from line to line.
#[derive(Default)]
struct Scratch {
    line: JsonBuf,
    fields: JsonBuf,
    clock: Clock,
    text: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's buffers, or fresh ones when they are busy (an event emitted from
/// inside a field's `Debug` impl) or gone (thread teardown).
fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    let mut f = Some(f);
    let _ = SCRATCH.try_with(|cell| {
        if let Ok(mut scratch) = cell.try_borrow_mut() {
            if let Some(f) = f.take() {
                f(&mut scratch);
            }
            if scratch.line.bytes.capacity() > MAX_KEPT_BUFFER {
                scratch.line = JsonBuf::default();
            }
            if scratch.fields.bytes.capacity() > MAX_KEPT_BUFFER {
                scratch.fields = JsonBuf::default();
            }
            if scratch.text.capacity() > MAX_KEPT_BUFFER {
                scratch.text = String::new();
            }
        }
    });
    if let Some(f) = f {
        f(&mut Scratch::default());
    }
}

/// Asks `tracing-opentelemetry` for the span's OpenTelemetry ids and caches them on the span.
///
/// Runs at the first event of a span rather than in `on_new_span`: asking activates the
/// OpenTelemetry span, after which `OpenTelemetrySpanExt::set_parent` no longer has any
/// effect. No extensions may be held here, since `get_otel_context` locks them.
pub(super) fn resolve_span_ids<S>(
    dispatch: &OnceLock<WeakDispatch>,
    span: &SpanRef<'_, S>,
) -> Option<[u8; 48]>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    thread_local! {
        static RESOLVING: Cell<bool> = const { Cell::new(false) };
    }
    // An event emitted while the OpenTelemetry span starts would ask for a span whose
    // data is locked right now, so it goes out without ids (and without caching that).
    if RESOLVING.with(|r| r.replace(true)) {
        return None;
    }
    let dispatch = dispatch.get().and_then(WeakDispatch::upgrade);
    let cx = dispatch
        .as_ref()
        .and_then(|d| tracing_opentelemetry::get_otel_context(&span.id(), d));
    RESOLVING.with(|r| r.set(false));
    // Not registered with a dispatcher yet: try again at the next event.
    dispatch.as_ref()?;

    let ids = cx.and_then(|cx| {
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        sc.is_valid()
            .then(|| hex_ids(sc.trace_id().to_bytes(), sc.span_id().to_bytes()))
    });
    span.extensions_mut().replace(OtelIds(ids));
    ids
}

/// The OpenTelemetry ids (32 + 16 hex digits) of the nearest span of `event` that has them.
pub(super) fn event_span_ids<S>(
    dispatch: &OnceLock<WeakDispatch>,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> Option<[u8; 48]>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // The current OpenTelemetry context is the innermost span (tracing-opentelemetry attaches
    // each entered span's, and spans recorded directly attach theirs): it wins for contextual
    // events.
    if event.is_contextual()
        && let Some(ids) = current_context_ids()
    {
        return Some(ids);
    }
    let mut next = ctx.event_span(event);
    while let Some(span) = next {
        let cached = span.extensions().get::<OtelIds>().map(|OtelIds(ids)| *ids);
        let ids = match cached {
            Some(ids) => ids,
            None => resolve_span_ids(dispatch, &span),
        };
        if ids.is_some() {
            return ids;
        }
        next = span.parent();
    }
    current_context_ids()
}

/// The ids of the current OpenTelemetry context, for events whose enclosing spans are none of
/// them OpenTelemetry spans (the server layer records its request span directly and attaches
/// its context while the handler runs).
fn current_context_ids() -> Option<[u8; 48]> {
    opentelemetry::Context::map_current(|cx| {
        use opentelemetry::trace::TraceContextExt as _;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| hex_ids(sc.trace_id().to_bytes(), sc.span_id().to_bytes()))
    })
}
