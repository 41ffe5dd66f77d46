//! The OTLP log road: tracing events become OpenTelemetry log records, redacted as they are
//! built (the SDK's log record has no way to remove an attribute afterwards).

use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::logs::SdkLogger;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::layer::event_span_ids;
use crate::limits::ValueBounds;
use crate::redaction::{Redactor, Verdict};

/// Turns every tracing event into an OpenTelemetry log record: the message is the body,
/// the other fields are attributes, the trace context is the event's span; every value
/// passes the redactor first.
pub(crate) struct LogBridge {
    logger: SdkLogger,
    redactor: Redactor,
    bounds: ValueBounds,
    dispatch: OnceLock<WeakDispatch>,
}

impl LogBridge {
    pub(crate) fn new(logger: SdkLogger, redactor: Redactor, bounds: ValueBounds) -> Self {
        LogBridge {
            logger,
            redactor,
            bounds,
            dispatch: OnceLock::new(),
        }
    }
}

fn severity(level: &Level) -> (Severity, &'static str) {
    match *level {
        Level::ERROR => (Severity::Error, "ERROR"),
        Level::WARN => (Severity::Warn, "WARN"),
        Level::INFO => (Severity::Info, "INFO"),
        Level::DEBUG => (Severity::Debug, "DEBUG"),
        _ => (Severity::Trace, "TRACE"),
    }
}

struct Fields<'a, R> {
    record: &'a mut R,
    redactor: &'a Redactor,
    bounds: &'a ValueBounds,
    body_seen: bool,
}

impl<R: opentelemetry::logs::LogRecord> Fields<'_, R> {
    fn put(&mut self, field: &Field, value: AnyValue) {
        let name = field.name();
        if name == "message" && !self.body_seen {
            self.body_seen = true;
            // The body is free text: the value rules apply; key rules and strict mode are
            // about attributes and do not drop the message.
            let body = match self.redactor.redact_text_value(&value) {
                Some(redacted) => redacted,
                None => value,
            };
            self.record.set_body(self.bounded(body));
            return;
        }
        match self.redactor.redact_any_value(name, &value) {
            Verdict::Keep => self.record.add_attribute(name, self.bounded(value)),
            Verdict::Replace(v) => self.record.add_attribute(name, self.bounded(v)),
            Verdict::Drop => {}
        }
    }

    /// A redacted value within the log value limit.
    fn bounded(&self, value: AnyValue) -> AnyValue {
        match value {
            AnyValue::String(s) if s.as_str().len() > self.bounds.limits().log_value_bytes => {
                let mut text = s.as_str().to_owned();
                self.bounds.cut_log_value(&mut text);
                AnyValue::from(text)
            }
            other => other,
        }
    }
}

impl<R: opentelemetry::logs::LogRecord> Visit for Fields<'_, R> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AnyValue::Double(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AnyValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.put(field, AnyValue::Int(v)),
            Err(_) => self.put(field, AnyValue::from(value.to_string())),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AnyValue::Boolean(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AnyValue::from(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, AnyValue::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, AnyValue::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for LogBridge
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut record = self.logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        let (number, text) = severity(meta.level());
        record.set_severity_number(number);
        record.set_severity_text(text);
        record.set_target(meta.target().to_owned());
        let mut fields = Fields {
            record: &mut record,
            redactor: &self.redactor,
            bounds: &self.bounds,
            body_seen: false,
        };
        event.record(&mut fields);
        if let Some(ids) = event_span_ids(&self.dispatch, event, &ctx)
            && let (Ok(trace), Ok(span)) = (
                std::str::from_utf8(&ids[..32]),
                std::str::from_utf8(&ids[32..]),
            )
            && let (Ok(trace_id), Ok(span_id)) = (TraceId::from_hex(trace), SpanId::from_hex(span))
        {
            record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
        }
        self.logger.emit(record);
    }
}

impl fmt::Debug for LogBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogBridge").finish_non_exhaustive()
    }
}
