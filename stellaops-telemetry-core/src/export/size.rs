//! Cheap estimates of what a queued record holds in memory, for the queues' byte bounds.
//!
//! An estimate is the record's fixed size plus the lengths of its owned texts and the fixed
//! size of each element of its vectors (attributes, events, links, list values): one pass over
//! the record, no allocation, no formatting. Static texts are counted too (their length is as
//! cheap to read as an owned one's, and a record built from them is rare enough that the
//! overstatement does not matter); allocator overhead and unused vector capacity are not.

use std::mem::size_of;

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::Status;
use opentelemetry::{InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;

/// Bytes an attribute holds: its slot, its key and its value's heap part.
pub(crate) fn key_value(kv: &KeyValue) -> usize {
    size_of::<KeyValue>() + kv.key.as_str().len() + value(&kv.value)
}

/// The heap part of an attribute value.
fn value(value: &Value) -> usize {
    use opentelemetry::Array;
    match value {
        Value::Bool(_) | Value::I64(_) | Value::F64(_) => 0,
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::Bool(v)) => v.len(),
        Value::Array(Array::I64(v)) => v.len() * size_of::<i64>(),
        Value::Array(Array::F64(v)) => v.len() * size_of::<f64>(),
        Value::Array(Array::String(v)) => v
            .iter()
            .map(|s| size_of::<opentelemetry::StringValue>() + s.as_str().len())
            .sum(),
        // `Array` and `Value` are non-exhaustive: a future variant counts as its slot only.
        _ => 0,
    }
}

fn attributes(attributes: &[KeyValue]) -> usize {
    attributes.iter().map(key_value).sum()
}

/// Bytes a finished SDK span holds: name, attributes, events, links, status message and scope.
pub(crate) fn span_data(span: &SpanData) -> usize {
    let events: usize = span
        .events
        .iter()
        .map(|e| {
            size_of::<opentelemetry::trace::Event>() + e.name.len() + attributes(&e.attributes)
        })
        .sum();
    let links: usize = span
        .links
        .iter()
        .map(|l| size_of::<opentelemetry::trace::Link>() + attributes(&l.attributes))
        .sum();
    let status = match &span.status {
        Status::Error { description } => description.len(),
        _ => 0,
    };
    size_of::<SpanData>()
        + span.name.len()
        + attributes(&span.attributes)
        + events
        + links
        + status
        + scope(&span.instrumentation_scope)
}

/// The heap part of an instrumentation scope (shared by most records, counted for each: a
/// clone per record is what the log processor queues).
fn scope(scope: &InstrumentationScope) -> usize {
    scope.name().len()
        + scope.version().map_or(0, str::len)
        + scope.schema_url().map_or(0, str::len)
        + scope.attributes().map(key_value).sum::<usize>()
}

/// Bytes a queued log record holds: the record and its scope, body and attributes.
pub(crate) fn log_record(record: &SdkLogRecord, scope_of: &InstrumentationScope) -> usize {
    size_of::<(SdkLogRecord, InstrumentationScope)>()
        + record.target().map_or(0, |t| t.len())
        + record.body().map_or(0, any_value)
        + record
            .attributes_iter()
            .map(|(key, v)| size_of::<(Key, AnyValue)>() + key.as_str().len() + any_value(v))
            .sum::<usize>()
        + scope(scope_of)
}

/// The heap part of a log value, nested lists and maps included: walked with an explicit
/// stack, so a deeply nested value costs time in proportion to its size and never overflows
/// the thread's stack.
fn any_value(root: &AnyValue) -> usize {
    let mut total = 0;
    let mut stack: Vec<&AnyValue> = Vec::new();
    let mut next = Some(root);
    while let Some(v) = next {
        match v {
            AnyValue::String(s) => total += s.as_str().len(),
            AnyValue::Bytes(b) => total += size_of::<Vec<u8>>() + b.len(),
            AnyValue::ListAny(list) => {
                total += size_of::<Vec<AnyValue>>() + list.len() * size_of::<AnyValue>();
                stack.extend(list.iter());
            }
            AnyValue::Map(map) => {
                total += size_of::<std::collections::HashMap<Key, AnyValue>>()
                    + map.len() * size_of::<(Key, AnyValue)>();
                for (key, v) in map.iter() {
                    total += key.as_str().len();
                    stack.push(v);
                }
            }
            // Scalars live in their slot; a future variant counts as its slot only.
            _ => {}
        }
        next = stack.pop();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::LogRecord as _;
    use opentelemetry::trace::{Event, SpanContext, SpanId, SpanKind};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(name: &str, attrs: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: name.to_owned().into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    #[test]
    fn a_span_counts_its_fixed_size_and_every_text_it_holds() {
        let empty = span_data(&span("", vec![]));
        assert!(empty >= size_of::<SpanData>());
        let big = "@".repeat(200_000);
        let mut s = span(
            "GET /",
            vec![KeyValue::new("user_agent.original", big.clone())],
        );
        s.events.events.push(Event::new(
            "exception",
            SystemTime::UNIX_EPOCH,
            vec![KeyValue::new("exception.message", "x".repeat(1000))],
            0,
        ));
        s.status = Status::error("y".repeat(500));
        let size = span_data(&s);
        assert!(size >= empty + 200_000 + 1000 + 500, "{size}");
        // Linear in what the record holds, not a multiple of it.
        assert!(size < empty + 200_000 + 1000 + 500 + 4096, "{size}");
    }

    #[test]
    fn a_log_record_counts_its_body_attributes_and_nested_values() {
        use opentelemetry::logs::{Logger as _, LoggerProvider as _};
        let scope = InstrumentationScope::builder("stellaops-telemetry").build();
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
        let mut record = provider.logger("t").create_log_record();
        let small = log_record(&record, &scope);
        record.set_body(AnyValue::from("z".repeat(10_000)));
        let mut nested = AnyValue::from("w".repeat(100));
        for _ in 0..1_000 {
            nested = AnyValue::ListAny(Box::new(vec![nested]));
        }
        record.add_attribute("deep", nested);
        let size = log_record(&record, &scope);
        assert!(
            size >= small + 10_000 + 100 + 1_000 * size_of::<AnyValue>(),
            "{size}"
        );
    }
}
