//! The OTLP log road: tracing events become OpenTelemetry log records, redacted as they are
//! built (the SDK's log record has no way to remove an attribute afterwards).
//!
//! Every record carries the house context of the JSON log line under the attribute names the
//! tower server layer puts on its request span, so a record and its span agree:
//!
//! | attribute | JSON line field | value |
//! |---|---|---|
//! | `tenant.id` | `tenant` | from the nearest span with a `tenant.id` or `tenant` field, else the current `RequestContext`; when known |
//! | `request.id` | `correlationId` | from the nearest span with a `correlation_id`, `correlationId` or `request.id` field, else the current `RequestContext`; when known |
//! | `stellaops.retention` | `retention` | the level's retention class, `"180d"`, `"90d"`, `"30d"` or `"7d"` (raised to the profile's floor) |
//!
//! Tenant and correlation id pass the redactor's value rules and the log value limit, as the
//! JSON line's do (like the line's house fields they are not subject to the strict-mode
//! allow-list). An event field with one of these three names never shadows the house value:
//! it is kept as `field.<name>` (`field.tenant.id`), the rule the JSON line applies to its
//! house keys.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use std::sync::Arc;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::{Key, StringValue};
use opentelemetry_sdk::logs::SdkLogger;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::RetentionPolicy;
use super::layer::{capture_context_fields, event_context, event_span_ids, update_context_fields};
use crate::limits::ValueBounds;
use crate::redaction::{Redactor, Verdict};

/// The attribute of the tenant (the tower server layer's span attribute).
pub(crate) const TENANT_ATTRIBUTE: &str = "tenant.id";
/// The attribute of the correlation id (the tower server layer's span attribute).
pub(crate) const CORRELATION_ATTRIBUTE: &str = "request.id";
/// The attribute of the retention class.
pub(crate) const RETENTION_ATTRIBUTE: &str = "stellaops.retention";
/// The attributes only the bridge sets; event fields of these names get a `field.` prefix.
const HOUSE_ATTRIBUTES: [&str; 3] = [TENANT_ATTRIBUTE, CORRELATION_ATTRIBUTE, RETENTION_ATTRIBUTE];

/// Turns every tracing event into an OpenTelemetry log record: the message is the body,
/// the other fields are attributes, the trace context is the event's span, and the house
/// context (tenant, correlation id, retention) is added; every value passes the redactor
/// first.
pub(crate) struct LogBridge {
    logger: SdkLogger,
    redactor: Redactor,
    bounds: ValueBounds,
    /// `stellaops.retention` values by level index (error, warn, info, debug, trace).
    retention: [AnyValue; 5],
    /// The values of a tenant under incident (the forensic classes), and the incidents.
    incident_retention: [AnyValue; 5],
    incidents: Option<crate::Incidents>,
    dispatch: OnceLock<WeakDispatch>,
}

impl LogBridge {
    pub(crate) fn new(logger: SdkLogger, redactor: Redactor, bounds: ValueBounds) -> Self {
        LogBridge {
            logger,
            redactor,
            bounds,
            retention: retention_values(RetentionPolicy::default()),
            incident_retention: retention_values(RetentionPolicy::of_profile(
                &crate::Profile::forensic(),
            )),
            incidents: None,
            dispatch: OnceLock::new(),
        }
    }

    /// How the retention class of each record is chosen. Default:
    /// [`RetentionPolicy::default`], no floor (the pipeline passes the profile's).
    pub(crate) fn retention(mut self, retention: RetentionPolicy) -> Self {
        self.retention = retention_values(retention);
        self
    }

    /// Gives the records of a tenant under incident the forensic retention classes.
    pub(crate) fn incidents(mut self, incidents: crate::Incidents) -> Self {
        self.incidents = Some(incidents);
        self
    }

    /// Adds the tenant and correlation id, redacted and within the log value limit.
    fn put_context(
        &self,
        record: &mut impl opentelemetry::logs::LogRecord,
        key: &'static str,
        value: &Arc<str>,
    ) {
        let value = match self.redactor.redact_str(value) {
            Cow::Borrowed(_) if value.len() <= self.bounds.limits().log_value_bytes => {
                // Shared with the span or request context: no copy.
                AnyValue::String(StringValue::from(Arc::clone(value)))
            }
            redacted => {
                let mut text = redacted.into_owned();
                self.bounds.cut_log_value(&mut text);
                AnyValue::from(text)
            }
        };
        record.add_attribute(Key::from_static_str(key), value);
    }
}

/// The retention values by level index, made once (each record clones a shared string).
fn retention_values(policy: RetentionPolicy) -> [AnyValue; 5] {
    [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ]
    .map(|level| {
        let text: Arc<str> = Arc::from(format!("{}d", policy.days(level)));
        AnyValue::String(StringValue::from(text))
    })
}

/// Severity number, text and level index (as in `LogBridge::retention`).
fn severity(level: &Level) -> (Severity, &'static str, usize) {
    match *level {
        Level::ERROR => (Severity::Error, "ERROR", 0),
        Level::WARN => (Severity::Warn, "WARN", 1),
        Level::INFO => (Severity::Info, "INFO", 2),
        Level::DEBUG => (Severity::Debug, "DEBUG", 3),
        _ => (Severity::Trace, "TRACE", 4),
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
        let value = match self.redactor.redact_any_value(name, &value) {
            Verdict::Keep => self.bounded(value),
            Verdict::Replace(v) => self.bounded(v),
            Verdict::Drop => return,
        };
        if HOUSE_ATTRIBUTES.contains(&name) {
            // Never shadows (or spoofs) the house value the bridge adds.
            self.record.add_attribute(format!("field.{name}"), value);
        } else {
            self.record.add_attribute(name, value);
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

    // The JSON log layer keeps the same span fields; whichever layer sees the span first
    // stores them, so the bridge does not depend on that layer's filter.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        capture_context_fields(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        update_context_fields(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut record = self.logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        let (number, text, level) = severity(meta.level());
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
        let (tenant, correlation) = event_context(event, &ctx);
        let under_incident = match (&self.incidents, &tenant) {
            (Some(incidents), Some(tenant)) => incidents.is_active(tenant),
            _ => false,
        };
        if let Some(tenant) = tenant {
            self.put_context(&mut record, TENANT_ATTRIBUTE, &tenant);
        }
        if let Some(correlation) = correlation {
            self.put_context(&mut record, CORRELATION_ATTRIBUTE, &correlation);
        }
        record.add_attribute(
            Key::from_static_str(RETENTION_ATTRIBUTE),
            if under_incident {
                self.incident_retention[level].clone()
            } else {
                self.retention[level].clone()
            },
        );
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
