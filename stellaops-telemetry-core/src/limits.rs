//! Length limits on the values a pipeline keeps (span attributes, log field values and metric
//! label values) and count limits on what a span keeps (attributes, events, links).
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{Redactor, ValueBounds, ValueLimits, TRUNCATED};
//!
//! let bounds = ValueBounds::new(ValueLimits::default().label_value_bytes(64))?;
//! let redactor = Redactor::default();
//! let tenant = "t".repeat(60_000);
//! let kept = bounds.label_value(&tenant, &redactor);
//! assert!(kept.len() <= 64 && kept.ends_with(TRUNCATED));
//! assert_eq!(bounds.counts().label_values, 1);
//! # Ok::<(), stellaops_telemetry_core::LimitError>(())
//! ```
//!
//! Anything a request controls (its path, host, user agent, headers, tenant, body) may be
//! hostile and arbitrarily long: hyper accepts header blocks of hundreds of kilobytes. Every
//! value the pipeline keeps is bounded before it is kept, so one request can neither grow the
//! export queues nor make a metric series out of a megabyte.
//!
//! A value over its limit is redacted whole first (so a secret cut in two by the limit is
//! still found), then cut on a character boundary and ended with the marker [`TRUNCATED`]; the
//! result, marker included, is at most the limit. Each cut is counted per kind
//! ([`ValueBounds::counts`], the `stellaops_telemetry_truncated_total{kind}` self-metric).
//! Values within their limit are returned as they are, without a copy.
//!
//! A span keeps at most [`ValueLimits::span_attribute_count`] attributes,
//! [`ValueLimits::span_event_count`] events and [`ValueLimits::span_link_count`] links, and each
//! event and link at most [`ValueLimits::event_attribute_count`] and
//! [`ValueLimits::link_attribute_count`] attributes (128 each, the OpenTelemetry defaults; 0
//! keeps none). The first ones are kept; what is dropped is added to the span's (event's,
//! link's) dropped count and counted per kind, as the cuts are. The tracer provider's own span
//! limits are set to the same numbers, so the SDK never drops at another number first; what it
//! drops itself is counted the same way when the span ends.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SpanData;
use serde::{Deserialize, Serialize};

use crate::redaction::Redactor;

/// The marker that ends every truncated value.
pub const TRUNCATED: &str = "…[truncated]";

/// The smallest limit accepted: room for the marker and a useful prefix.
pub const MIN_VALUE_LIMIT: usize = 32;

/// Length limits, in bytes of UTF-8, of the values a pipeline keeps.
///
/// Set with [`TelemetryBuilder::value_limits`](crate::TelemetryBuilder::value_limits) or the
/// `[limits]` section of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ValueLimits {
    /// Longest string value of a span attribute, including the attributes a layer takes from
    /// a request (`url.path`, `server.address`, `user_agent.original`, captured headers).
    /// Default: 2048.
    pub attribute_value_bytes: usize,
    /// Longest value of a JSON log line field (the message included) and of an OTLP log
    /// record's body and attributes. Default: 8192.
    pub log_value_bytes: usize,
    /// Longest metric label value. Default: 256.
    pub label_value_bytes: usize,
    /// Most attributes a span keeps (0: none). Default: 128.
    pub span_attribute_count: usize,
    /// Most events a span keeps (0: none). Default: 128.
    pub span_event_count: usize,
    /// Most links a span keeps (0: none). Default: 128.
    pub span_link_count: usize,
    /// Most attributes a span event keeps (0: none). Default: 128.
    pub event_attribute_count: usize,
    /// Most attributes a span link keeps (0: none). Default: 128.
    pub link_attribute_count: usize,
}

/// The OpenTelemetry default of every count limit.
const DEFAULT_COUNT_LIMIT: usize = 128;

impl Default for ValueLimits {
    fn default() -> Self {
        ValueLimits {
            attribute_value_bytes: 2048,
            log_value_bytes: 8192,
            label_value_bytes: 256,
            span_attribute_count: DEFAULT_COUNT_LIMIT,
            span_event_count: DEFAULT_COUNT_LIMIT,
            span_link_count: DEFAULT_COUNT_LIMIT,
            event_attribute_count: DEFAULT_COUNT_LIMIT,
            link_attribute_count: DEFAULT_COUNT_LIMIT,
        }
    }
}

impl ValueLimits {
    /// Sets [`ValueLimits::attribute_value_bytes`].
    pub fn attribute_value_bytes(mut self, bytes: usize) -> Self {
        self.attribute_value_bytes = bytes;
        self
    }

    /// Sets [`ValueLimits::log_value_bytes`].
    pub fn log_value_bytes(mut self, bytes: usize) -> Self {
        self.log_value_bytes = bytes;
        self
    }

    /// Sets [`ValueLimits::label_value_bytes`].
    pub fn label_value_bytes(mut self, bytes: usize) -> Self {
        self.label_value_bytes = bytes;
        self
    }

    /// Sets [`ValueLimits::span_attribute_count`].
    pub fn span_attribute_count(mut self, count: usize) -> Self {
        self.span_attribute_count = count;
        self
    }

    /// Sets [`ValueLimits::span_event_count`].
    pub fn span_event_count(mut self, count: usize) -> Self {
        self.span_event_count = count;
        self
    }

    /// Sets [`ValueLimits::span_link_count`].
    pub fn span_link_count(mut self, count: usize) -> Self {
        self.span_link_count = count;
        self
    }

    /// Sets [`ValueLimits::event_attribute_count`].
    pub fn event_attribute_count(mut self, count: usize) -> Self {
        self.event_attribute_count = count;
        self
    }

    /// Sets [`ValueLimits::link_attribute_count`].
    pub fn link_attribute_count(mut self, count: usize) -> Self {
        self.link_attribute_count = count;
        self
    }

    /// The tracer provider's span limits: the same count limits, so the SDK drops nothing
    /// these limits would keep (a count above `u32::MAX` is `u32::MAX`).
    ///
    /// ```
    /// use stellaops_telemetry_core::ValueLimits;
    ///
    /// let sdk = ValueLimits::default().span_event_count(16).span_limits();
    /// assert_eq!(sdk.max_events_per_span, 16);
    /// assert_eq!(sdk.max_attributes_per_span, 128);
    /// ```
    pub fn span_limits(&self) -> opentelemetry_sdk::trace::SpanLimits {
        let c = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        opentelemetry_sdk::trace::SpanLimits {
            max_attributes_per_span: c(self.span_attribute_count),
            max_events_per_span: c(self.span_event_count),
            max_links_per_span: c(self.span_link_count),
            max_attributes_per_event: c(self.event_attribute_count),
            max_attributes_per_link: c(self.link_attribute_count),
        }
    }

    /// Checks every length limit against [`MIN_VALUE_LIMIT`] (a count limit may be anything,
    /// 0 included).
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming the first limit below the minimum.
    pub fn validate(&self) -> Result<(), LimitError> {
        for (setting, value) in [
            ("attribute_value_bytes", self.attribute_value_bytes),
            ("log_value_bytes", self.log_value_bytes),
            ("label_value_bytes", self.label_value_bytes),
        ] {
            if value < MIN_VALUE_LIMIT {
                return Err(LimitError { setting, value });
            }
        }
        Ok(())
    }
}

/// A value limit too small to hold the truncation marker and a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value limit `{setting}` is {value} bytes; it must be at least {MIN_VALUE_LIMIT}")]
pub struct LimitError {
    /// The setting (`attribute_value_bytes`, `log_value_bytes` or `label_value_bytes`).
    pub setting: &'static str,
    /// The value it was given.
    pub value: usize,
}

/// How many values were truncated, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TruncationCounts {
    /// Span attribute values (and span names and event texts).
    pub attribute_values: u64,
    /// JSON log line field values and OTLP log record values.
    pub log_values: u64,
    /// Metric label values.
    pub label_values: u64,
    /// Attributes dropped from spans, span events and span links by the count limits.
    pub span_attributes_dropped: u64,
    /// Events dropped from spans by [`ValueLimits::span_event_count`].
    pub span_events_dropped: u64,
    /// Links dropped from spans by [`ValueLimits::span_link_count`].
    pub span_links_dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    attribute_values: AtomicU64,
    log_values: AtomicU64,
    label_values: AtomicU64,
    span_attributes_dropped: AtomicU64,
    span_events_dropped: AtomicU64,
    span_links_dropped: AtomicU64,
}

/// A pipeline's [`ValueLimits`] and the counts of what they cut: what every layer, log line
/// and metric series applies before it keeps a value. Cheap to clone; clones share counts.
#[derive(Debug, Clone, Default)]
pub struct ValueBounds {
    limits: ValueLimits,
    counters: Arc<Counters>,
}

impl ValueBounds {
    /// Bounds applying `limits`.
    ///
    /// # Errors
    ///
    /// [`LimitError`] when a limit is below [`MIN_VALUE_LIMIT`].
    pub fn new(limits: ValueLimits) -> Result<ValueBounds, LimitError> {
        limits.validate()?;
        Ok(ValueBounds {
            limits,
            counters: Arc::default(),
        })
    }

    /// The limits applied.
    pub fn limits(&self) -> &ValueLimits {
        &self.limits
    }

    /// A span attribute value within [`ValueLimits::attribute_value_bytes`].
    #[inline]
    pub fn attribute_value<'a>(&self, value: &'a str, redactor: &Redactor) -> Cow<'a, str> {
        bound(
            value,
            self.limits.attribute_value_bytes,
            redactor,
            &self.counters.attribute_values,
        )
    }

    /// A log field value within [`ValueLimits::log_value_bytes`].
    #[inline]
    pub fn log_value<'a>(&self, value: &'a str, redactor: &Redactor) -> Cow<'a, str> {
        bound(
            value,
            self.limits.log_value_bytes,
            redactor,
            &self.counters.log_values,
        )
    }

    /// A metric label value within [`ValueLimits::label_value_bytes`].
    #[inline]
    pub fn label_value<'a>(&self, value: &'a str, redactor: &Redactor) -> Cow<'a, str> {
        bound(
            value,
            self.limits.label_value_bytes,
            redactor,
            &self.counters.label_values,
        )
    }

    /// Whether a label value is over its limit (and would be cut by
    /// [`ValueBounds::label_value`]).
    #[inline]
    pub(crate) fn label_over(&self, value: &str) -> bool {
        value.len() > self.limits.label_value_bytes
    }

    /// Truncates an already redacted log value in place, counting the cut.
    pub(crate) fn cut_log_value(&self, value: &mut String) {
        if cut(value, self.limits.log_value_bytes) {
            self.counters.log_values.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `n` attributes a span record dropped itself by the count limit.
    pub(crate) fn count_span_attributes_dropped(&self, n: u64) {
        self.counters
            .span_attributes_dropped
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an attribute value cut in place by its holder.
    pub(crate) fn count_attribute_cut(&self) {
        self.counters
            .attribute_values
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Bounds every string attribute value of `attributes` (arrays of strings element by
    /// element), redacting an over-long value whole before it is cut.
    pub(crate) fn bound_attributes(&self, attributes: &mut [KeyValue], redactor: &Redactor) {
        let limit = self.limits.attribute_value_bytes;
        for attribute in attributes {
            match &mut attribute.value {
                Value::String(s) if s.as_str().len() > limit => {
                    let counter = &self.counters.attribute_values;
                    *s = StringValue::from(redact_and_cut(s.as_str(), limit, redactor, counter));
                }
                Value::Array(Array::String(values)) => {
                    let counter = &self.counters.attribute_values;
                    for s in values.iter_mut().filter(|s| s.as_str().len() > limit) {
                        *s =
                            StringValue::from(redact_and_cut(s.as_str(), limit, redactor, counter));
                    }
                }
                _ => {}
            }
        }
    }

    /// Bounds a finished span's name, attribute values, event names and attributes, link
    /// attributes and status message, and the number of its attributes, events and links (and
    /// of their attributes), before it is queued for export.
    pub(crate) fn bound_span(&self, span: &mut SpanData, redactor: &Redactor) {
        self.bound_span_counts(span);
        let limit = self.limits.attribute_value_bytes;
        let cut_text = |text: &mut Cow<'static, str>| {
            if text.len() > limit {
                let counter = &self.counters.attribute_values;
                *text = Cow::Owned(redact_and_cut(text, limit, redactor, counter));
            }
        };
        cut_text(&mut span.name);
        if let Status::Error { description } = &mut span.status {
            cut_text(description);
        }
        for event in &mut span.events.events {
            cut_text(&mut event.name);
        }
        self.bound_attributes(&mut span.attributes, redactor);
        for event in &mut span.events.events {
            self.bound_attributes(&mut event.attributes, redactor);
        }
        for link in &mut span.links.links {
            self.bound_attributes(&mut link.attributes, redactor);
        }
    }

    /// Keeps the first attributes, events and links of `span` (and of its events and links)
    /// within the count limits, adds what it drops to the dropped counts the span carries, and
    /// counts everything the span lost, what the SDK dropped before included. Within every
    /// limit this is one length comparison per list.
    fn bound_span_counts(&self, span: &mut SpanData) {
        let l = &self.limits;
        span.dropped_attributes_count = span
            .dropped_attributes_count
            .saturating_add(keep_first(&mut span.attributes, l.span_attribute_count));
        let mut attributes = u64::from(span.dropped_attributes_count);
        let events = &mut span.events;
        events.dropped_count = events
            .dropped_count
            .saturating_add(keep_first(&mut events.events, l.span_event_count));
        let links = &mut span.links;
        links.dropped_count = links
            .dropped_count
            .saturating_add(keep_first(&mut links.links, l.span_link_count));
        for event in &mut events.events {
            event.dropped_attributes_count = event
                .dropped_attributes_count
                .saturating_add(keep_first(&mut event.attributes, l.event_attribute_count));
            attributes += u64::from(event.dropped_attributes_count);
        }
        for link in &mut links.links {
            link.dropped_attributes_count = link
                .dropped_attributes_count
                .saturating_add(keep_first(&mut link.attributes, l.link_attribute_count));
            attributes += u64::from(link.dropped_attributes_count);
        }
        let c = &self.counters;
        for (counter, n) in [
            (&c.span_attributes_dropped, attributes),
            (&c.span_events_dropped, u64::from(events.dropped_count)),
            (&c.span_links_dropped, u64::from(links.dropped_count)),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// How many values were cut, and span items dropped, so far.
    pub fn counts(&self) -> TruncationCounts {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TruncationCounts {
            attribute_values: load(&c.attribute_values),
            log_values: load(&c.log_values),
            label_values: load(&c.label_values),
            span_attributes_dropped: load(&c.span_attributes_dropped),
            span_events_dropped: load(&c.span_events_dropped),
            span_links_dropped: load(&c.span_links_dropped),
        }
    }
}

/// Registers `stellaops_telemetry_truncated_total{kind}` (kinds `attribute_value`,
/// `log_value`, `label_value`, and `span_attribute`, `span_event`, `span_link` for what the
/// count limits drop) on the pipeline's own meter.
pub(crate) fn register(provider: &SdkMeterProvider, bounds: &ValueBounds) {
    let counters = bounds.counters.clone();
    let _ = provider
        .meter("stellaops-telemetry")
        .u64_observable_counter("stellaops_telemetry_truncated_total")
        .with_description("Values cut to the pipeline's value limits, by kind")
        .with_callback(move |observer| {
            for (kind, counter) in [
                ("attribute_value", &counters.attribute_values),
                ("log_value", &counters.log_values),
                ("label_value", &counters.label_values),
                ("span_attribute", &counters.span_attributes_dropped),
                ("span_event", &counters.span_events_dropped),
                ("span_link", &counters.span_links_dropped),
            ] {
                observer.observe(
                    counter.load(Ordering::Relaxed),
                    &[KeyValue::new("kind", kind)],
                );
            }
        })
        .build();
}

/// Keeps the first `limit` items of `items`; returns how many it dropped.
#[inline]
fn keep_first<T>(items: &mut Vec<T>, limit: usize) -> u32 {
    if items.len() <= limit {
        return 0;
    }
    let dropped = items.len() - limit;
    items.truncate(limit);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

#[inline]
fn bound<'a>(
    value: &'a str,
    limit: usize,
    redactor: &Redactor,
    counter: &AtomicU64,
) -> Cow<'a, str> {
    if value.len() <= limit {
        return Cow::Borrowed(value);
    }
    Cow::Owned(redact_and_cut(value, limit, redactor, counter))
}

/// Redacts `value` whole, then cuts it to `limit`, counting the cut (a value that redaction
/// alone brought within the limit is not cut, and not counted).
#[inline(never)]
fn redact_and_cut(value: &str, limit: usize, redactor: &Redactor, counter: &AtomicU64) -> String {
    let mut out = redactor.redact_str(value).into_owned();
    if cut(&mut out, limit) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// Cuts `value` so that it ends with [`TRUNCATED`] and is at most `limit` bytes (a limit too
/// small for the marker keeps a prefix of the marker, never more than `limit`).
fn cut(value: &mut String, limit: usize) -> bool {
    if value.len() <= limit {
        return false;
    }
    let mut keep = limit.saturating_sub(TRUNCATED.len());
    while keep > 0 && !value.is_char_boundary(keep) {
        keep -= 1;
    }
    value.truncate(keep);
    let mut marker = TRUNCATED.len().min(limit - keep);
    while !TRUNCATED.is_char_boundary(marker) {
        marker -= 1;
    }
    value.push_str(&TRUNCATED[..marker]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_within_the_limit_are_borrowed_and_not_counted() {
        let bounds = ValueBounds::default();
        let r = Redactor::default();
        assert!(matches!(
            bounds.attribute_value("/scans/42", &r),
            Cow::Borrowed("/scans/42")
        ));
        let exact = "a".repeat(256);
        assert!(matches!(bounds.label_value(&exact, &r), Cow::Borrowed(_)));
        assert_eq!(bounds.counts(), TruncationCounts::default());
    }

    #[test]
    fn long_values_end_with_the_marker_within_the_limit_on_a_char_boundary() {
        let r = Redactor::default();
        let bounds = ValueBounds::new(ValueLimits::default().attribute_value_bytes(40)).unwrap();
        for filler in ["a", "é", "€", "𝄞", "a€"] {
            for len in 10..60 {
                let value = filler.repeat(len);
                let kept = bounds.attribute_value(&value, &r);
                assert!(kept.len() <= 40, "{kept:?}");
                if value.len() > 40 {
                    assert!(kept.ends_with(TRUNCATED), "{kept:?}");
                    assert!(value.starts_with(kept.trim_end_matches(TRUNCATED)));
                } else {
                    assert_eq!(kept, value);
                }
            }
        }
    }

    #[test]
    fn a_secret_across_the_cut_is_redacted_before_the_cut() {
        let r = Redactor::default();
        let bounds = ValueBounds::new(ValueLimits::default().log_value_bytes(40)).unwrap();
        let value = format!(
            "{}password=hunter2-and-more {}",
            "x".repeat(20),
            "y".repeat(100)
        );
        let kept = bounds.log_value(&value, &r);
        assert!(!kept.contains("hunter"), "{kept:?}");
        assert_eq!(bounds.counts().log_values, 1);
    }

    #[test]
    fn attribute_lists_are_cut_value_by_value_and_counted() {
        let r = Redactor::default();
        let bounds = ValueBounds::new(ValueLimits::default().attribute_value_bytes(32)).unwrap();
        let mut attributes = vec![
            KeyValue::new("short", "kept"),
            KeyValue::new("long", "z".repeat(1_000)),
            KeyValue::new("n", 7),
            KeyValue::new(
                "list",
                Value::Array(Array::String(vec!["ok".into(), "y".repeat(99).into()])),
            ),
        ];
        bounds.bound_attributes(&mut attributes, &r);
        assert_eq!(attributes[0].value.as_str(), "kept");
        let long = attributes[1].value.as_str();
        assert_eq!(long.len(), 32);
        assert!(long.ends_with(TRUNCATED));
        assert_eq!(attributes[2].value, Value::I64(7));
        let Value::Array(Array::String(list)) = &attributes[3].value else {
            panic!("not a list");
        };
        assert_eq!(list[0].as_str(), "ok");
        assert!(list[1].as_str().len() <= 32);
        assert_eq!(bounds.counts().attribute_values, 2);
    }

    #[test]
    fn a_long_value_that_redaction_shortens_is_not_counted_as_cut() {
        let r = Redactor::default();
        let bounds = ValueBounds::default();
        let key = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            "A".repeat(3_000)
        );
        assert_eq!(bounds.attribute_value(&key, &r), "REDACTED");
        assert_eq!(bounds.counts(), TruncationCounts::default());
    }

    #[test]
    fn limits_below_the_minimum_are_errors_naming_the_setting() {
        let err = ValueBounds::new(ValueLimits::default().label_value_bytes(8)).unwrap_err();
        assert_eq!(err.setting, "label_value_bytes");
        assert_eq!(
            err.to_string(),
            "value limit `label_value_bytes` is 8 bytes; it must be at least 32"
        );
    }

    fn span_with(attributes: usize, events: usize, links: usize, inner: usize) -> SpanData {
        use opentelemetry::trace::{
            Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState,
        };
        use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
        let kvs = |n: usize| {
            (0..n)
                .map(|i| KeyValue::new(format!("k{i}"), i as i64))
                .collect()
        };
        let mut span_events = SpanEvents::default();
        span_events.events = (0..events)
            .map(|i| {
                Event::new(
                    format!("e{i}"),
                    std::time::SystemTime::UNIX_EPOCH,
                    kvs(inner),
                    0,
                )
            })
            .collect();
        let mut span_links = SpanLinks::default();
        span_links.links = (0..links)
            .map(|_| Link::new(SpanContext::empty_context(), kvs(inner), 0))
            .collect();
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1u128),
                SpanId::from(2u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: kvs(attributes),
            dropped_attributes_count: 0,
            events: span_events,
            links: span_links,
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn the_count_limits_default_to_128_each() {
        let l = ValueLimits::default();
        for n in [
            l.span_attribute_count,
            l.span_event_count,
            l.span_link_count,
            l.event_attribute_count,
            l.link_attribute_count,
        ] {
            assert_eq!(n, 128);
        }
        let sdk = l.span_limits();
        assert_eq!(sdk.max_attributes_per_span, 128);
        assert_eq!(sdk.max_attributes_per_link, 128);
    }

    #[test]
    fn a_span_within_every_count_limit_is_untouched_and_not_counted() {
        let bounds = ValueBounds::default();
        let mut span = span_with(128, 128, 128, 128);
        bounds.bound_span(&mut span, &Redactor::default());
        assert_eq!(span.attributes.len(), 128);
        assert_eq!(span.events.len(), 128);
        assert_eq!(span.links.len(), 128);
        assert_eq!(span.dropped_attributes_count, 0);
        assert_eq!(bounds.counts(), TruncationCounts::default());
    }

    #[test]
    fn the_first_items_are_kept_and_the_rest_dropped_and_counted() {
        let limits = ValueLimits::default()
            .span_attribute_count(3)
            .span_event_count(2)
            .span_link_count(1)
            .event_attribute_count(4)
            .link_attribute_count(0);
        let bounds = ValueBounds::new(limits).unwrap();
        let mut span = span_with(10, 5, 3, 6);
        bounds.bound_span(&mut span, &Redactor::default());
        let keys: Vec<_> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["k0", "k1", "k2"]);
        assert_eq!(span.dropped_attributes_count, 7);
        let names: Vec<_> = span.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["e0", "e1"]);
        assert_eq!(span.events.dropped_count, 3);
        assert_eq!(span.links.len(), 1);
        assert_eq!(span.links.dropped_count, 2);
        for event in span.events.iter() {
            assert_eq!(event.attributes.len(), 4);
            assert_eq!(event.dropped_attributes_count, 2);
        }
        assert!(span.links.links[0].attributes.is_empty());
        assert_eq!(span.links.links[0].dropped_attributes_count, 6);
        let counts = bounds.counts();
        // 7 of the span, 2 × 2 of its events, 6 of its link.
        assert_eq!(counts.span_attributes_dropped, 7 + 4 + 6);
        assert_eq!(counts.span_events_dropped, 3);
        assert_eq!(counts.span_links_dropped, 2);
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let limits = ValueLimits::default()
            .span_attribute_count(0)
            .span_event_count(0)
            .span_link_count(0);
        let bounds = ValueBounds::new(limits).unwrap();
        let mut span = span_with(2, 2, 2, 2);
        bounds.bound_span(&mut span, &Redactor::default());
        assert!(span.attributes.is_empty() && span.events.is_empty() && span.links.is_empty());
        assert_eq!(span.dropped_attributes_count, 2);
        assert_eq!(bounds.counts().span_attributes_dropped, 2);
    }

    #[test]
    fn what_the_sdk_dropped_before_is_counted_once() {
        let bounds = ValueBounds::new(ValueLimits::default().span_attribute_count(2)).unwrap();
        let mut span = span_with(3, 1, 0, 0);
        span.dropped_attributes_count = 5;
        span.events.dropped_count = 4;
        span.events.events[0].dropped_attributes_count = 1;
        bounds.bound_span(&mut span, &Redactor::default());
        assert_eq!(span.dropped_attributes_count, 6);
        let counts = bounds.counts();
        assert_eq!(counts.span_attributes_dropped, 6 + 1);
        assert_eq!(counts.span_events_dropped, 4);
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn a_limits_section_may_set_only_some_fields() {
        let config = crate::TelemetryConfig::from_toml_str(
            "[limits]\nspan_event_count = 4\nlink_attribute_count = 0\n",
        )
        .unwrap();
        let limits = config.limits.over(crate::limits::ValueLimits::default());
        assert_eq!(limits.span_event_count, 4);
        assert_eq!(limits.link_attribute_count, 0);
        assert_eq!(limits.span_attribute_count, 128);
        assert_eq!(limits.attribute_value_bytes, 2048);
    }
}
