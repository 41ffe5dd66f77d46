//! [`SpanRecord`]: a finished span in a fixed-size form, filled on the request path without
//! allocating and turned into `SpanData` on the export worker.
//!
//! Handing an SDK `SpanData` to the worker moves half a dozen heap blocks (name, attribute
//! vector, owned strings) from the thread that allocated them to the one that frees them; the
//! allocator then serialises both threads on its arena lock. A record keeps its short texts
//! inline and its attributes in a fixed array; the worker builds (and frees) the `SpanData`
//! itself, then gives the emptied record back to a [`RecordPool`] for the next request, so in
//! the steady state nothing is allocated or freed for it at all.

use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_queue::ArrayQueue;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Attributes held inline; more go to the overflow vector.
const INLINE_ATTRIBUTES: usize = 12;
/// Bytes of attribute text held inline; longer texts go to the overflow vector.
const INLINE_TEXT: usize = 256;
/// Overflow slots a pooled record keeps (more are freed when it is given back).
const POOLED_OVERFLOW: usize = 16;

/// Without drop glue (no owned values), so filling a slot is a plain store.
#[derive(Default, Clone, Copy)]
enum Attribute {
    #[default]
    Empty,
    Static(&'static str, &'static str),
    Int(&'static str, i64),
    Float(&'static str, f64),
    Bool(&'static str, bool),
    /// A text stored in the record's inline buffer: key, start, length.
    Text(&'static str, u16, u16),
}

/// A finished span in a fixed-size form: up to a few attributes and their short texts held
/// inline, more in an overflow vector, so that a pooled record is reused without allocating.
/// Filled with `push_*`, then
/// handed to [`SpanRecorder::submit_record`](crate::SpanRecorder::submit_record).
pub struct SpanRecord {
    /// The span's context (ids, flags, trace state).
    pub span_context: SpanContext,
    /// The parent's span id, `SpanId::INVALID` for a root.
    pub parent_span_id: SpanId,
    /// Whether the parent came from another process.
    pub parent_is_remote: bool,
    /// The span kind.
    pub kind: SpanKind,
    /// The name: the first part, then a space and the second part unless it is empty.
    pub name: (&'static str, &'static str),
    /// When the span started.
    pub start_time: SystemTime,
    /// When the span ended.
    pub end_time: SystemTime,
    /// Whether the span's status is an error.
    pub error: bool,
    attributes: [Attribute; INLINE_ATTRIBUTES],
    attribute_count: u8,
    text: [u8; INLINE_TEXT],
    text_len: u16,
    overflow: Vec<KeyValue>,
    /// Attributes dropped by the count limit (the span's `dropped_attributes_count`).
    dropped_attributes: u32,
}

impl std::fmt::Debug for SpanRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRecord")
            .field("span_context", &self.span_context)
            .field("name", &self.name)
            .field(
                "attributes",
                &(self.attribute_count as usize + self.overflow.len()),
            )
            .finish_non_exhaustive()
    }
}

impl SpanRecord {
    /// A record with no attributes; the end time is the start time until it is set.
    pub fn new(
        span_context: SpanContext,
        parent_span_id: SpanId,
        parent_is_remote: bool,
        kind: SpanKind,
        start_time: SystemTime,
    ) -> Self {
        let mut record = SpanRecord::empty();
        record.begin(
            span_context,
            parent_span_id,
            parent_is_remote,
            kind,
            start_time,
        );
        record
    }

    /// A record with no span in it yet (start one with `begin`).
    pub(crate) fn empty() -> Self {
        SpanRecord {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_is_remote: false,
            kind: SpanKind::Internal,
            name: ("", ""),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            error: false,
            attributes: Default::default(),
            attribute_count: 0,
            text: [0; INLINE_TEXT],
            text_len: 0,
            overflow: Vec::new(),
            dropped_attributes: 0,
        }
    }

    /// Starts a new span in this (empty or emptied) record: its context, parent, kind and
    /// start; no name, no error, the end time at the start.
    pub(crate) fn begin(
        &mut self,
        span_context: SpanContext,
        parent_span_id: SpanId,
        parent_is_remote: bool,
        kind: SpanKind,
        start_time: SystemTime,
    ) {
        self.span_context = span_context;
        self.parent_span_id = parent_span_id;
        self.parent_is_remote = parent_is_remote;
        self.kind = kind;
        self.name = ("", "");
        self.start_time = start_time;
        self.end_time = start_time;
        self.error = false;
        self.dropped_attributes = 0;
    }

    fn push(&mut self, attribute: Attribute) -> Result<(), Attribute> {
        match self.attributes.get_mut(usize::from(self.attribute_count)) {
            Some(slot) => {
                *slot = attribute;
                self.attribute_count += 1;
                Ok(())
            }
            None => Err(attribute),
        }
    }

    /// A static string attribute.
    pub fn push_static(&mut self, key: &'static str, value: &'static str) {
        if self.push(Attribute::Static(key, value)).is_err() {
            self.overflow.push(KeyValue::new(key, value));
        }
    }

    /// A shared string attribute (kept in the overflow vector, which allocates).
    pub fn push_shared(&mut self, key: &'static str, value: Arc<str>) {
        self.overflow
            .push(KeyValue::new(key, StringValue::from(value)));
    }

    /// An integer attribute.
    pub fn push_int(&mut self, key: &'static str, value: i64) {
        if self.push(Attribute::Int(key, value)).is_err() {
            self.overflow.push(KeyValue::new(key, value));
        }
    }

    /// A floating-point attribute.
    pub fn push_float(&mut self, key: &'static str, value: f64) {
        if self.push(Attribute::Float(key, value)).is_err() {
            self.overflow.push(KeyValue::new(key, value));
        }
    }

    /// A boolean attribute.
    pub fn push_bool(&mut self, key: &'static str, value: bool) {
        if self.push(Attribute::Bool(key, value)).is_err() {
            self.overflow.push(KeyValue::new(key, value));
        }
    }

    /// A string attribute, copied: inline when it fits, else into the overflow vector.
    pub fn push_text(&mut self, key: &'static str, value: &str) {
        let start = usize::from(self.text_len);
        let end = start + value.len();
        if let Some(buffer) = self.text.get_mut(start..end)
            && usize::from(self.attribute_count) < INLINE_ATTRIBUTES
        {
            buffer.copy_from_slice(value.as_bytes());
            // Both fit in u16: `end` is at most INLINE_TEXT.
            self.text_len = end as u16;
            let _ = self.push(Attribute::Text(key, start as u16, value.len() as u16));
        } else {
            self.overflow.push(KeyValue::new(key, value.to_owned()));
        }
    }

    /// Whether an attribute named `key` was pushed.
    pub fn has_attribute(&self, key: &str) -> bool {
        self.attributes
            .iter()
            .take(usize::from(self.attribute_count))
            .any(|a| match a {
                Attribute::Empty => false,
                Attribute::Static(k, _)
                | Attribute::Int(k, _)
                | Attribute::Float(k, _)
                | Attribute::Bool(k, _)
                | Attribute::Text(k, _, _) => *k == key,
            })
            || self.overflow.iter().any(|kv| kv.key.as_str() == key)
    }

    /// Keeps the first [`span_attribute_count`](crate::ValueLimits::span_attribute_count)
    /// attributes (in the order they are exported: the inline ones, then the others), counting
    /// what it drops; then bounds the attribute values: those kept outside the inline buffer
    /// (redacted whole first), and inline texts longer than a limit set below the inline room
    /// (cut in place; the export worker redacts what is left).
    pub(crate) fn bound_values(
        &mut self,
        bounds: &crate::limits::ValueBounds,
        redactor: &crate::redaction::Redactor,
    ) {
        let count_limit = bounds.limits().span_attribute_count;
        if usize::from(self.attribute_count) + self.overflow.len() > count_limit {
            self.drop_attributes_over(count_limit, bounds);
        }
        if !self.overflow.is_empty() {
            bounds.bound_attributes(&mut self.overflow, redactor);
        }
        let limit = bounds.limits().attribute_value_bytes;
        if limit < INLINE_TEXT {
            self.cut_inline_texts(limit, bounds);
        }
    }

    #[inline(never)]
    fn drop_attributes_over(&mut self, limit: usize, bounds: &crate::limits::ValueBounds) {
        let inline = usize::from(self.attribute_count);
        let dropped = inline + self.overflow.len() - limit;
        if limit < inline {
            // Below `inline`, so it fits in u8.
            self.attribute_count = limit as u8;
            self.overflow.clear();
        } else {
            self.overflow.truncate(limit - inline);
        }
        let dropped = u32::try_from(dropped).unwrap_or(u32::MAX);
        self.dropped_attributes = self.dropped_attributes.saturating_add(dropped);
        bounds.count_span_attributes_dropped(u64::from(dropped));
    }

    #[inline(never)]
    fn cut_inline_texts(&mut self, limit: usize, bounds: &crate::limits::ValueBounds) {
        let marker = crate::limits::TRUNCATED.as_bytes();
        for i in 0..usize::from(self.attribute_count) {
            let Some(&Attribute::Text(key, start, len)) = self.attributes.get(i) else {
                continue;
            };
            if usize::from(len) <= limit {
                continue;
            }
            let text = self.text(start, len);
            let mut keep = limit.saturating_sub(marker.len());
            while keep > 0 && !text.is_char_boundary(keep) {
                keep -= 1;
            }
            let at = usize::from(start) + keep;
            if let Some(room) = self.text.get_mut(at..at + marker.len()) {
                room.copy_from_slice(marker);
                // At most `limit`, which is below INLINE_TEXT: fits in u16.
                self.attributes[i] = Attribute::Text(key, start, (keep + marker.len()) as u16);
                bounds.count_attribute_cut();
            }
        }
    }

    /// Any attribute (kept in the overflow vector, which allocates).
    pub fn push_key_value(&mut self, attribute: KeyValue) {
        self.overflow.push(attribute);
    }

    fn text(&self, start: u16, len: u16) -> &str {
        let range = usize::from(start)..usize::from(start) + usize::from(len);
        // Always whole `&str`s copied in by `push_text`; a failure would be a bug here, and
        // yields an empty value rather than a panic.
        self.text
            .get(range)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// Bytes this record holds while queued: its fixed size plus its overflow attributes (the
    /// name is two static texts and the short texts live inline, so nothing else is owned).
    pub(crate) fn estimated_size(&self) -> usize {
        std::mem::size_of::<SpanRecord>()
            + self
                .overflow
                .iter()
                .map(super::size::key_value)
                .sum::<usize>()
    }

    /// Empties the record without building its span (a span sampled out), ready for reuse.
    pub(crate) fn clear(&mut self) {
        self.attribute_count = 0;
        self.text_len = 0;
        self.overflow.clear();
    }

    /// The `SpanData` this record describes; the record is left empty, ready for reuse.
    pub(crate) fn take_span_data(&mut self, scope: &InstrumentationScope) -> SpanData {
        let count = usize::from(std::mem::take(&mut self.attribute_count));
        let mut attributes = Vec::with_capacity(count + self.overflow.len());
        // Slots past the count are stale and never read again.
        for attribute in self.attributes.iter().take(count).copied() {
            let kv = match attribute {
                Attribute::Empty => continue,
                Attribute::Static(k, v) => KeyValue::new(k, v),
                Attribute::Int(k, v) => KeyValue::new(k, v),
                Attribute::Float(k, v) => KeyValue::new(k, v),
                Attribute::Bool(k, v) => KeyValue::new(k, v),
                Attribute::Text(k, start, len) => KeyValue::new(
                    Key::from_static_str(k),
                    Value::from(self.text(start, len).to_owned()),
                ),
            };
            attributes.push(kv);
        }
        attributes.append(&mut self.overflow);
        self.text_len = 0;
        let name = match self.name {
            (first, "") => std::borrow::Cow::Borrowed(first),
            (first, second) => {
                let mut name = String::with_capacity(first.len() + 1 + second.len());
                name.push_str(first);
                name.push(' ');
                name.push_str(second);
                std::borrow::Cow::Owned(name)
            }
        };
        let span_context = std::mem::replace(&mut self.span_context, SpanContext::empty_context());
        SpanData {
            span_context,
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind.clone(),
            name,
            start_time: self.start_time,
            end_time: self.end_time,
            attributes,
            dropped_attributes_count: std::mem::take(&mut self.dropped_attributes),
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if self.error {
                Status::error("")
            } else {
                Status::Unset
            },
            instrumentation_scope: scope.clone(),
        }
    }
}

/// Emptied records, handed back by the export worker and taken again by the request path
/// (bounded: beyond its capacity a record is simply freed).
#[derive(Debug)]
pub(crate) struct RecordPool(ArrayQueue<Box<SpanRecord>>);

impl RecordPool {
    pub(crate) fn new(capacity: usize) -> Self {
        RecordPool(ArrayQueue::new(capacity.max(1)))
    }

    /// An emptied record: a recycled one when there is one (start it with `begin`).
    pub(crate) fn take(&self) -> Option<Box<SpanRecord>> {
        self.0.pop()
    }

    /// Gives an emptied record back.
    pub(crate) fn give_back(&self, mut record: Box<SpanRecord>) {
        // A record that once held many attributes gives its room back, so the pool's memory
        // is bounded by its count whatever the spans were.
        record.overflow.shrink_to(POOLED_OVERFLOW);
        let _ = self.0.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceFlags, TraceId, TraceState};

    fn record() -> SpanRecord {
        let cx = SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        SpanRecord::new(
            cx,
            SpanId::from(3u64),
            true,
            SpanKind::Server,
            SystemTime::UNIX_EPOCH,
        )
    }

    fn value<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn every_kind_of_attribute_comes_out_in_order_with_its_value() {
        let mut r = record();
        r.name = ("GET", "/scans/{id}");
        r.push_static("http.request.method", "GET");
        r.push_static("http.route", "/scans/{id}");
        r.push_text("url.path", "/scans/s-1");
        r.push_int("http.response.status_code", 200);
        r.push_float("ratio", 0.5);
        r.push_bool("cached", true);
        r.push_key_value(KeyValue::new("extra", true));
        r.push_shared("tenant.id", Arc::from("acme"));
        r.error = true;
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(span.name, "GET /scans/{id}");
        let keys: Vec<_> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.request.method",
                "http.route",
                "url.path",
                "http.response.status_code",
                "ratio",
                "cached",
                "extra",
                "tenant.id"
            ]
        );
        assert_eq!(value(&span, "url.path"), Some(&Value::from("/scans/s-1")));
        assert_eq!(
            value(&span, "http.response.status_code"),
            Some(&Value::I64(200))
        );
        assert_eq!(span.parent_span_id, SpanId::from(3u64));
        assert!(span.parent_span_is_remote);
        assert_eq!(span.status, Status::error(""));
    }

    #[test]
    fn texts_and_attributes_beyond_the_inline_room_are_kept_in_the_overflow() {
        let mut r = record();
        let long = "x".repeat(INLINE_TEXT + 1);
        r.push_text("long", &long);
        let fits = "y".repeat(INLINE_TEXT);
        r.push_text("fits", &fits);
        r.push_text("no_room_left", "z");
        for i in 0..INLINE_ATTRIBUTES + 3 {
            r.push_int(["a", "b", "c"][i % 3], i as i64);
        }
        r.push_static("last", "s");
        r.push_shared("shared", Arc::from("t"));
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(span.attributes.len(), 3 + INLINE_ATTRIBUTES + 3 + 2);
        assert_eq!(value(&span, "long"), Some(&Value::from(long)));
        assert_eq!(value(&span, "fits"), Some(&Value::from(fits)));
        assert_eq!(value(&span, "no_room_left"), Some(&Value::from("z")));
        assert_eq!(value(&span, "last"), Some(&Value::from("s")));
        assert_eq!(value(&span, "shared"), Some(&Value::from("t")));
        assert_eq!(span.name, "");
    }

    #[test]
    fn the_size_estimate_counts_the_record_and_its_overflow_texts() {
        let mut r = record();
        let fixed = r.estimated_size();
        assert_eq!(fixed, std::mem::size_of::<SpanRecord>());
        r.push_text("url.path", "/inline");
        assert_eq!(
            r.estimated_size(),
            fixed,
            "inline texts are part of the fixed size"
        );
        let ua = "@".repeat(200_000);
        r.push_text("user_agent.original", &ua);
        let size = r.estimated_size();
        assert!(size >= fixed + 200_000, "{size}");
        assert!(size < fixed + 200_000 + 256, "{size}");
    }

    #[test]
    fn inline_texts_over_a_small_attribute_limit_are_cut_in_place_and_counted() {
        let bounds = crate::limits::ValueBounds::new(
            crate::limits::ValueLimits::default().attribute_value_bytes(64),
        )
        .unwrap();
        let mut r = record();
        r.push_text("tenant.id", &"t".repeat(128));
        r.push_text("request.id", "short");
        r.push_text("user_agent.original", &"é".repeat(40));
        r.bound_values(&bounds, &crate::redaction::Redactor::default());
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        for key in ["tenant.id", "user_agent.original"] {
            let text = value(&span, key).unwrap().as_str();
            assert!(text.len() <= 64, "{key}: {text}");
            assert!(text.ends_with(crate::limits::TRUNCATED), "{key}: {text}");
        }
        assert_eq!(value(&span, "request.id").unwrap().as_str(), "short");
        assert_eq!(bounds.counts().attribute_values, 2);
    }

    #[test]
    fn a_recycled_record_starts_empty_and_keeps_nothing_of_its_last_span() {
        let pool = RecordPool::new(2);
        let mut r = record();
        r.push_text("url.path", "/secret/old/path");
        r.push_key_value(KeyValue::new("old", 1));
        r.error = true;
        r.name = ("GET", "/old");
        let first = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(first.attributes.len(), 2);
        pool.give_back(Box::new(r));
        let mut again = pool.take().unwrap();
        again.begin(
            SpanContext::empty_context(),
            SpanId::INVALID,
            false,
            SpanKind::Internal,
            SystemTime::UNIX_EPOCH,
        );
        again.push_text("url.path", "/new");
        let span = again.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(span.attributes.len(), 1);
        assert_eq!(value(&span, "url.path"), Some(&Value::from("/new")));
        assert_eq!(span.status, Status::Unset);
        assert_eq!(span.span_kind, SpanKind::Internal);
        assert_eq!(span.name, "");
    }

    fn bounds_with_count(count: usize) -> crate::limits::ValueBounds {
        crate::limits::ValueBounds::new(
            crate::limits::ValueLimits::default().span_attribute_count(count),
        )
        .unwrap()
    }

    fn keys(span: &SpanData) -> Vec<&str> {
        span.attributes.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn a_record_within_the_count_limit_keeps_every_attribute_and_counts_nothing() {
        let bounds = bounds_with_count(3);
        let mut r = record();
        r.push_static("a", "1");
        r.push_int("b", 2);
        r.push_key_value(KeyValue::new("c", true));
        r.bound_values(&bounds, &crate::redaction::Redactor::default());
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(keys(&span), ["a", "b", "c"]);
        assert_eq!(span.dropped_attributes_count, 0);
        assert_eq!(bounds.counts(), crate::limits::TruncationCounts::default());
    }

    #[test]
    fn attributes_over_the_count_limit_are_dropped_from_the_overflow_first_and_counted() {
        let bounds = bounds_with_count(INLINE_ATTRIBUTES + 2);
        let mut r = record();
        for i in 0..INLINE_ATTRIBUTES + 5 {
            r.push_int(["a", "b", "c"][i % 3], i as i64);
        }
        r.bound_values(&bounds, &crate::redaction::Redactor::default());
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(span.attributes.len(), INLINE_ATTRIBUTES + 2);
        assert_eq!(
            span.attributes.last().unwrap().value,
            Value::I64(INLINE_ATTRIBUTES as i64 + 1)
        );
        assert_eq!(span.dropped_attributes_count, 3);
        assert_eq!(bounds.counts().span_attributes_dropped, 3);
    }

    #[test]
    fn a_count_limit_below_the_inline_attributes_drops_inline_ones_and_the_overflow() {
        let bounds = bounds_with_count(2);
        let mut r = record();
        r.push_static("a", "1");
        r.push_text("b", "two");
        r.push_text("c", "three");
        r.push_shared("d", Arc::from("four"));
        r.bound_values(&bounds, &crate::redaction::Redactor::default());
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(keys(&span), ["a", "b"]);
        assert_eq!(span.dropped_attributes_count, 2);
        assert_eq!(bounds.counts().span_attributes_dropped, 2);
    }

    #[test]
    fn a_count_limit_of_zero_keeps_no_attribute_and_a_reused_record_starts_at_zero_dropped() {
        let bounds = bounds_with_count(0);
        let mut r = record();
        r.push_static("a", "1");
        r.push_key_value(KeyValue::new("b", 2));
        r.bound_values(&bounds, &crate::redaction::Redactor::default());
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert!(span.attributes.is_empty());
        assert_eq!(span.dropped_attributes_count, 2);
        r.begin(
            SpanContext::empty_context(),
            SpanId::INVALID,
            false,
            SpanKind::Internal,
            SystemTime::UNIX_EPOCH,
        );
        let again = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(again.dropped_attributes_count, 0);
    }

    #[test]
    fn both_span_roads_keep_the_same_attributes_under_the_same_limit() {
        let bounds = bounds_with_count(5);
        let redactor = crate::redaction::Redactor::default();
        let mut r = record();
        for i in 0..9 {
            r.push_int(["a", "b", "c", "d", "e", "f", "g", "h", "i"][i], i as i64);
        }
        let mut whole = r.take_span_data(&InstrumentationScope::builder("t").build());
        bounds.bound_span(&mut whole, &redactor);
        let mut r = record();
        for i in 0..9 {
            r.push_int(["a", "b", "c", "d", "e", "f", "g", "h", "i"][i], i as i64);
        }
        r.bound_values(&bounds, &redactor);
        let direct = r.take_span_data(&InstrumentationScope::builder("t").build());
        assert_eq!(keys(&whole), keys(&direct));
        assert_eq!(
            whole.dropped_attributes_count,
            direct.dropped_attributes_count
        );
        assert_eq!(bounds.counts().span_attributes_dropped, 8);
    }
}
