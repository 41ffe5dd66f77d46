//! The tracing layer that writes the house JSON line.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_core::dispatcher::WeakDispatch;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::format::{
    Escaper, write_escaped, write_f64, write_hex, write_i64, write_str, write_u64,
};
use super::output::LogOutput;
use crate::clock::Civil;

/// The retention tag written on every line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Raises every record's retention to at least this many days (forensic: 180).
    pub floor_days: Option<u32>,
}

impl RetentionPolicy {
    /// The retention class of a level: error 180 d, warn 90 d, info 30 d, debug/trace 7 d.
    pub fn days(&self, level: Level) -> u32 {
        let base = match level {
            Level::ERROR => 180,
            Level::WARN => 90,
            Level::INFO => 30,
            _ => 7,
        };
        self.floor_days.map_or(base, |floor| base.max(floor))
    }
}

/// Builds a [`JsonLogLayer`].
#[derive(Debug)]
#[must_use]
pub struct JsonLogLayerBuilder {
    service: String,
    version: String,
    retention: RetentionPolicy,
    outputs: Vec<LogOutput>,
}

impl JsonLogLayerBuilder {
    /// The retention policy. Default: by level, no floor.
    pub fn retention(mut self, retention: RetentionPolicy) -> Self {
        self.retention = retention;
        self
    }

    /// Adds an output. Default: none (lines are formatted and discarded).
    pub fn output(mut self, output: LogOutput) -> Self {
        self.outputs.push(output);
        self
    }

    /// Adds several outputs.
    pub fn outputs(mut self, outputs: impl IntoIterator<Item = LogOutput>) -> Self {
        self.outputs.extend(outputs);
        self
    }

    /// The layer.
    pub fn build(self) -> JsonLogLayer {
        let mut identity = Vec::new();
        identity.extend_from_slice(b",\"service\":");
        write_str(&mut identity, &self.service);
        identity.extend_from_slice(b",\"version\":");
        write_str(&mut identity, &self.version);
        let tail = |level: Level| {
            format!(",\"retention\":\"{}d\"}}\n", self.retention.days(level)).into_bytes()
        };
        JsonLogLayer {
            identity,
            tails: [
                tail(Level::ERROR),
                tail(Level::WARN),
                tail(Level::INFO),
                tail(Level::DEBUG),
                tail(Level::TRACE),
            ],
            outputs: self.outputs,
            dispatch: OnceLock::new(),
        }
    }
}

/// A tracing layer writing one house JSON line per event to its outputs.
///
/// Add it to a registry that also has the `tracing-opentelemetry` layer to get `traceId` and
/// `spanId`; without it those keys are left out.
#[derive(Debug)]
pub struct JsonLogLayer {
    /// `,"service":"…","version":"…"`, escaped once.
    identity: Vec<u8>,
    /// `,"retention":"…d"}\n` per level (error, warn, info, debug, trace).
    tails: [Vec<u8>; 5],
    outputs: Vec<LogOutput>,
    dispatch: OnceLock<WeakDispatch>,
}

impl JsonLogLayer {
    /// Starts a builder for lines tagged with `service` and `version`.
    pub fn builder(service: impl Into<String>, version: impl Into<String>) -> JsonLogLayerBuilder {
        JsonLogLayerBuilder {
            service: service.into(),
            version: version.into(),
            retention: RetentionPolicy::default(),
            outputs: Vec::new(),
        }
    }
}

/// The OTel ids of a span, cached in its extensions after the first event.
#[derive(Clone, Copy)]
struct SpanIds(Option<([u8; 16], [u8; 8])>);

/// `tenant` and `correlationId` recorded on a span.
#[derive(Default)]
struct LogContext {
    tenant: Option<String>,
    correlation: Option<String>,
}

impl Visit for LogContext {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "tenant.id" | "tenant" => self.tenant = Some(value.to_owned()),
            "correlation_id" | "correlationId" | "request.id" => {
                self.correlation = Some(value.to_owned())
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(
            field.name(),
            "tenant.id" | "tenant" | "correlation_id" | "correlationId" | "request.id"
        ) {
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            // `%value` records through Display, `?value` through Debug (quoted strings).
            let text = text.trim_matches('"').to_owned();
            self.record_str(field, &text);
        }
    }
}

fn is_context_field(name: &str) -> bool {
    matches!(
        name,
        "tenant.id" | "tenant" | "correlation_id" | "correlationId" | "request.id"
    )
}

const HOUSE_KEYS: [&str; 11] = [
    "timestamp",
    "level",
    "message",
    "service",
    "version",
    "traceId",
    "spanId",
    "tenant",
    "correlationId",
    "target",
    "retention",
];

/// Per-thread buffers, reused for every event.
struct Buffers {
    line: Vec<u8>,
    message: Vec<u8>,
    fields: Vec<u8>,
    /// Whole seconds of the cached timestamp prefix, and the prefix `YYYY-MM-DDTHH:MM:SS.`.
    second: u64,
    prefix: [u8; 20],
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers {
        line: Vec::new(),
        message: Vec::new(),
        fields: Vec::new(),
        second: u64::MAX,
        prefix: [0; 20],
    }) };
}

/// Writes the event's fields: the one place every field value passes through.
struct FieldWriter<'a> {
    message: &'a mut Vec<u8>,
    fields: &'a mut Vec<u8>,
}

/// A field value on its way into the line.
enum FieldValue<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Debug(&'a dyn std::fmt::Debug),
}

impl FieldWriter<'_> {
    /// The single choke point for event fields: redaction plugs in here (redaction issue), so
    /// no field can reach an output around it.
    fn write_field(&mut self, key: &str, value: FieldValue<'_>) {
        if key == "message" {
            match value {
                FieldValue::Str(s) => write_escaped(self.message, s),
                FieldValue::Debug(d) => {
                    let _ = write!(Escaper(self.message), "{d:?}");
                }
                FieldValue::I64(v) => write_i64(self.message, v),
                FieldValue::U64(v) => write_u64(self.message, v),
                FieldValue::F64(v) => {
                    let _ = write!(Escaper(self.message), "{v}");
                }
                FieldValue::Bool(v) => {
                    self.message
                        .extend_from_slice(if v { b"true" } else { b"false" })
                }
            }
            return;
        }
        let out = &mut *self.fields;
        out.extend_from_slice(b",\"");
        if HOUSE_KEYS.contains(&key) {
            out.extend_from_slice(b"field.");
        }
        write_escaped(out, key);
        out.extend_from_slice(b"\":");
        match value {
            FieldValue::Str(s) => write_str(out, s),
            FieldValue::I64(v) => write_i64(out, v),
            FieldValue::U64(v) => write_u64(out, v),
            FieldValue::F64(v) => write_f64(out, v),
            FieldValue::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
            FieldValue::Debug(d) => {
                out.push(b'"');
                let _ = write!(Escaper(out), "{d:?}");
                out.push(b'"');
            }
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write_field(field.name(), FieldValue::Str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write_field(field.name(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write_field(field.name(), FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.write_field(field.name(), FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write_field(field.name(), FieldValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write_field(field.name(), FieldValue::Debug(&format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.write_field(field.name(), FieldValue::Debug(value));
    }
}

impl JsonLogLayer {
    /// The OTel ids of `id`, from the cache or (first event in the span) from
    /// tracing-opentelemetry's public context API.
    fn span_ids<S>(&self, span: &tracing_subscriber::registry::SpanRef<'_, S>) -> SpanIds
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(ids) = span.extensions().get::<SpanIds>() {
            return *ids;
        }
        // Never hold the extensions while asking: the OTel layer locks them too.
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
        let ids = dispatch
            .and_then(|d| tracing_opentelemetry::get_otel_context(&span.id(), &d))
            .map(|cx| {
                let sc = cx.span().span_context().clone();
                if sc.is_valid() {
                    SpanIds(Some((sc.trace_id().to_bytes(), sc.span_id().to_bytes())))
                } else {
                    SpanIds(None)
                }
            })
            .unwrap_or(SpanIds(None));
        span.extensions_mut().insert(ids);
        ids
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !attrs.fields().iter().any(|f| is_context_field(f.name())) {
            return;
        }
        let mut context = LogContext::default();
        attrs.record(&mut context);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(context);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut update = LogContext::default();
        values.record(&mut update);
        if update.tenant.is_none() && update.correlation.is_none() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<LogContext>() {
                Some(context) => {
                    if update.tenant.is_some() {
                        context.tenant = update.tenant;
                    }
                    if update.correlation.is_some() {
                        context.correlation = update.correlation;
                    }
                }
                None => extensions.insert(update),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.outputs.is_empty() {
            return;
        }
        let meta = event.metadata();
        let level = *meta.level();
        let (level_key, tail) = match level {
            Level::ERROR => (&b"error"[..], &self.tails[0]),
            Level::WARN => (&b"warn"[..], &self.tails[1]),
            Level::INFO => (&b"info"[..], &self.tails[2]),
            Level::DEBUG => (&b"debug"[..], &self.tails[3]),
            _ => (&b"trace"[..], &self.tails[4]),
        };
        let span = ctx.event_span(event);
        let ids = span
            .as_ref()
            .map(|s| self.span_ids(s))
            .unwrap_or(SpanIds(None));

        BUFFERS.with(|cell| {
            let Ok(mut buffers) = cell.try_borrow_mut() else {
                return; // re-entrant event from inside an output: dropped rather than panic
            };
            let b = &mut *buffers;
            b.line.clear();
            b.message.clear();
            b.fields.clear();
            event.record(&mut FieldWriter {
                message: &mut b.message,
                fields: &mut b.fields,
            });

            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let secs = now.as_secs();
            if secs != b.second {
                let mut prefix = Vec::with_capacity(24);
                Civil::from_unix_millis(secs as i64 * 1000).write_rfc3339_millis(&mut prefix);
                b.prefix.copy_from_slice(&prefix[..20]);
                b.second = secs;
            }
            let millis = now.subsec_millis();
            let line = &mut b.line;
            line.extend_from_slice(b"{\"timestamp\":\"");
            line.extend_from_slice(&b.prefix);
            line.push(b'0' + (millis / 100) as u8);
            line.push(b'0' + (millis / 10 % 10) as u8);
            line.push(b'0' + (millis % 10) as u8);
            line.extend_from_slice(b"Z\",\"level\":\"");
            line.extend_from_slice(level_key);
            line.extend_from_slice(b"\",\"message\":\"");
            line.extend_from_slice(&b.message);
            line.push(b'"');
            line.extend_from_slice(&self.identity);
            if let SpanIds(Some((trace_id, span_id))) = ids {
                line.extend_from_slice(b",\"traceId\":\"");
                write_hex(line, &trace_id);
                line.extend_from_slice(b"\",\"spanId\":\"");
                write_hex(line, &span_id);
                line.push(b'"');
            }
            // Nearest span wins; tenant before correlationId whatever spans hold them.
            for (key, pick) in [
                (
                    &b",\"tenant\":"[..],
                    (|c: &LogContext| c.tenant.as_deref()) as fn(&LogContext) -> Option<&str>,
                ),
                (&b",\"correlationId\":"[..], |c: &LogContext| {
                    c.correlation.as_deref()
                }),
            ] {
                let Some(scope) = ctx.event_scope(event) else {
                    break;
                };
                for span in scope {
                    let ext = span.extensions();
                    if let Some(value) = ext.get::<LogContext>().and_then(pick) {
                        line.extend_from_slice(key);
                        write_str(line, value);
                        break;
                    }
                }
            }
            line.extend_from_slice(b",\"target\":");
            write_str(line, meta.target());
            line.extend_from_slice(&b.fields);
            line.extend_from_slice(tail);
            for output in &self.outputs {
                output.write_line(line);
            }
        });
    }
}
