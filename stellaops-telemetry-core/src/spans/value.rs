//! [`AttributeValue`]: what an instrumented function may record as a span attribute.

use crate::export::record::SpanRecord;
use crate::redaction::Sensitive;

/// A value `#[instrument]` can record as a span attribute: strings, integers, floats, bools,
/// `Option`s of them (`None` records nothing), references to them, and [`Sensitive`] values
/// (recorded as the redaction placeholder).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as a span attribute",
    label = "not a string, number or bool",
    note = "record a string, number or bool (e.g. `.to_string()`, `.len()`), or wrap a secret in `Sensitive`"
)]
pub trait AttributeValue {
    /// Adds `self` to `record` under `key`.
    #[doc(hidden)]
    fn push_to(&self, key: &'static str, record: &mut SpanRecord);
}

impl AttributeValue for str {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_text(key, self);
    }
}

impl AttributeValue for String {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_text(key, self);
    }
}

impl AttributeValue for std::borrow::Cow<'_, str> {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_text(key, self);
    }
}

impl AttributeValue for bool {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_bool(key, *self);
    }
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
                record.push_int(key, i64::from(*self));
            }
        }
    )*};
}
ints!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_ints {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
                // Beyond i64 (OpenTelemetry's integer) the value saturates.
                record.push_int(key, i64::try_from(*self).unwrap_or(i64::MAX));
            }
        }
    )*};
}
wide_ints!(u64, usize, isize, u128, i128);

impl AttributeValue for f64 {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_float(key, *self);
    }
}

impl AttributeValue for f32 {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_float(key, f64::from(*self));
    }
}

impl<T: AttributeValue + ?Sized> AttributeValue for &T {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        (**self).push_to(key, record);
    }
}

impl<T: AttributeValue> AttributeValue for Option<T> {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        if let Some(value) = self {
            value.push_to(key, record);
        }
    }
}

impl<T> AttributeValue for Sensitive<T> {
    fn push_to(&self, key: &'static str, record: &mut SpanRecord) {
        record.push_static(key, crate::redaction::REDACTED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind};
    use opentelemetry::{InstrumentationScope, Value};

    #[test]
    fn each_kind_of_value_keeps_its_type_and_none_and_secrets_stay_out() {
        let mut r = SpanRecord::new(
            SpanContext::empty_context(),
            SpanId::INVALID,
            false,
            SpanKind::Internal,
            std::time::SystemTime::UNIX_EPOCH,
        );
        "text".push_to("a", &mut r);
        String::from("owned").push_to("b", &mut r);
        7u16.push_to("c", &mut r);
        u64::MAX.push_to("d", &mut r);
        1.5f32.push_to("e", &mut r);
        true.push_to("f", &mut r);
        None::<&str>.push_to("g", &mut r);
        Some(&&3i32).push_to("h", &mut r);
        Sensitive::new("hunter2").push_to("i", &mut r);
        let span = r.take_span_data(&InstrumentationScope::builder("t").build());
        let values: Vec<(String, Value)> = span
            .attributes
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value))
            .collect();
        assert_eq!(
            values,
            [
                ("a".to_owned(), Value::from("text")),
                ("b".to_owned(), Value::from("owned")),
                ("c".to_owned(), Value::I64(7)),
                ("d".to_owned(), Value::I64(i64::MAX)),
                ("e".to_owned(), Value::F64(1.5)),
                ("f".to_owned(), Value::Bool(true)),
                ("h".to_owned(), Value::I64(3)),
                ("i".to_owned(), Value::from(crate::redaction::REDACTED)),
            ]
        );
    }
}
