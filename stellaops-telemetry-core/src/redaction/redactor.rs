//! The one `Redactor` every record passes before it leaves the process.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::logs::AnyValue;
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde::{Deserialize, Serialize};

use super::rules::{self, REDACTED, Rule};

/// Redaction settings: extra sensitive keys, and the strict (allow-list) mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedactionSettings {
    /// Keys redacted in addition to the default rules (matched like them).
    pub keys: Vec<String>,
    /// Strict PII mode: when set, only these keys keep their values; every other attribute
    /// (and JSON log field) is dropped and counted. Default: off in every profile.
    pub allow_list: Option<Vec<String>>,
}

impl RedactionSettings {
    /// Strict mode allowing only `keys` (plus [`Redactor::ALWAYS_ALLOWED`]).
    pub fn strict(keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RedactionSettings {
            keys: Vec::new(),
            allow_list: Some(keys.into_iter().map(Into::into).collect()),
        }
    }
}

/// A malformed redaction rule or allow-list entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid redaction {what} `{entry}`: {reason}")]
pub struct RedactionError {
    /// `key` or `allow-list entry`.
    pub what: &'static str,
    /// The entry.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn validate(what: &'static str, entry: &str) -> Result<String, RedactionError> {
    let bad = |reason| RedactionError {
        what,
        entry: entry.to_owned(),
        reason,
    };
    if entry.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if entry.len() > 256 {
        return Err(bad("longer than 256 characters"));
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("keys hold no whitespace or control characters"));
    }
    Ok(entry.to_ascii_lowercase())
}

/// What happens to one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<T> {
    /// Passes unchanged.
    Keep,
    /// Passes with this value instead.
    Replace(T),
    /// Dropped (allow-list mode).
    Drop,
}

/// Masks sensitive keys and credential-shaped values, and (strict mode) drops attributes
/// that are not allowed. Cheap to clone; clones share the per-rule counters.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    extra_keys: Vec<String>,
    allow: Option<Vec<String>>,
    counts: [AtomicU64; Rule::ALL.len()],
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("extra_keys", &self.inner.extra_keys)
            .field("strict", &self.inner.allow.is_some())
            .finish()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            inner: Arc::new(Inner {
                extra_keys: Vec::new(),
                allow: None,
                counts: Default::default(),
            }),
        }
    }
}

impl Redactor {
    /// Keys the SDK itself records, kept in strict mode without being listed.
    pub const ALWAYS_ALLOWED: [&'static str; 11] = [
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "url.path",
        "url.scheme",
        "server.address",
        "server.port",
        "error.type",
        "tenant.id",
        "service",
        "status",
    ];

    /// A redactor with the default rules and `settings`.
    ///
    /// # Errors
    ///
    /// [`RedactionError`] naming a malformed key or allow-list entry.
    pub fn new(settings: &RedactionSettings) -> Result<Redactor, RedactionError> {
        let extra_keys = settings
            .keys
            .iter()
            .map(|k| validate("key", k))
            .collect::<Result<Vec<_>, _>>()?;
        let allow = match &settings.allow_list {
            None => None,
            Some(list) => {
                let mut keys = list
                    .iter()
                    .map(|k| validate("allow-list entry", k))
                    .collect::<Result<Vec<_>, _>>()?;
                keys.extend(Self::ALWAYS_ALLOWED.iter().map(|k| k.to_string()));
                Some(keys)
            }
        };
        Ok(Redactor {
            inner: Arc::new(Inner {
                extra_keys,
                allow,
                counts: Default::default(),
            }),
        })
    }

    pub(crate) fn count(&self, rule: Rule, n: u64) {
        self.inner.counts[rule.index()].fetch_add(n, Ordering::Relaxed);
    }

    fn count_fired(&self, fired: rules::Fired) {
        for rule in Rule::ALL {
            if fired & (1 << rule.index()) != 0 {
                self.count(rule, 1);
            }
        }
    }

    /// How many values each rule redacted or dropped so far.
    pub fn counts(&self) -> Vec<(Rule, u64)> {
        Rule::ALL
            .iter()
            .map(|r| (*r, self.inner.counts[r.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Whether `key` names a credential (default rules and configured keys).
    #[inline]
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        rules::is_sensitive_key(key, &self.inner.extra_keys)
    }

    /// Whether `key` keeps its value: always, unless strict mode does not list it.
    #[inline]
    pub fn is_allowed(&self, key: &str) -> bool {
        match &self.inner.allow {
            None => true,
            Some(list) => list.iter().any(|k| k.eq_ignore_ascii_case(key)),
        }
    }

    /// Whether strict (allow-list) mode is on.
    pub fn is_strict(&self) -> bool {
        self.inner.allow.is_some()
    }

    /// Applies the value rules to free text (a message, a span name, a status message).
    #[inline]
    pub fn redact_str<'a>(&self, value: &'a str) -> Cow<'a, str> {
        match rules::redact_value(value) {
            None => Cow::Borrowed(value),
            Some((text, fired)) => {
                self.count_fired(fired);
                Cow::Owned(text)
            }
        }
    }

    /// The verdict on one attribute key and its value before it is dropped, masked or kept.
    /// Only the key decides in strict mode and for sensitive keys (whatever the value's type).
    #[inline]
    pub fn check_key(&self, key: &str) -> Verdict<()> {
        if !self.is_allowed(key) {
            self.count(Rule::AllowList, 1);
            return Verdict::Drop;
        }
        if self.is_sensitive_key(key) {
            self.count(Rule::SensitiveKey, 1);
            return Verdict::Replace(());
        }
        Verdict::Keep
    }

    /// The verdict on one OpenTelemetry attribute.
    #[inline]
    pub fn redact_value(&self, key: &str, value: &Value) -> Verdict<Value> {
        match self.check_key(key) {
            Verdict::Drop => return Verdict::Drop,
            Verdict::Replace(()) => return Verdict::Replace(Value::from(REDACTED)),
            Verdict::Keep => {}
        }
        match value {
            Value::String(s) => match self.redact_str(s.as_str()) {
                Cow::Owned(text) => Verdict::Replace(Value::from(text)),
                Cow::Borrowed(_) => Verdict::Keep,
            },
            Value::Array(Array::String(items)) => {
                let mut changed = false;
                let next: Vec<StringValue> = items
                    .iter()
                    .map(|s| match self.redact_str(s.as_str()) {
                        Cow::Owned(text) => {
                            changed = true;
                            StringValue::from(text)
                        }
                        Cow::Borrowed(_) => s.clone(),
                    })
                    .collect();
                if changed {
                    Verdict::Replace(Value::Array(Array::String(next)))
                } else {
                    Verdict::Keep
                }
            }
            _ => Verdict::Keep,
        }
    }

    /// Redacts a list of attributes in place (masking, and dropping in strict mode).
    pub fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) {
        if self.inner.allow.is_none() {
            // Nothing can be dropped outside strict mode: mask in place. A clean attribute
            // (the common case) is settled inline, without building a verdict.
            for kv in attributes.iter_mut() {
                if self.is_clean(kv.key.as_str(), &kv.value) {
                    continue;
                }
                if let Verdict::Replace(value) = self.redact_value(kv.key.as_str(), &kv.value) {
                    kv.value = value;
                }
            }
            return;
        }
        attributes.retain_mut(|kv| match self.redact_value(kv.key.as_str(), &kv.value) {
            Verdict::Keep => true,
            Verdict::Replace(value) => {
                kv.value = value;
                true
            }
            Verdict::Drop => false,
        });
    }

    /// Whether an attribute passes unchanged outside strict mode: no sensitive key, and no
    /// string that any value rule could match.
    #[inline(always)]
    fn is_clean(&self, key: &str, value: &Value) -> bool {
        !self.is_sensitive_key(key)
            && match value {
                Value::String(s) => !rules::needs_scan(s.as_str()),
                Value::Array(Array::String(items)) => {
                    items.iter().all(|s| !rules::needs_scan(s.as_str()))
                }
                _ => true,
            }
    }

    /// Redacts attributes handed over by reference; `None` (and no allocation) when
    /// nothing changes, which is the common case.
    pub fn redact_attribute_slice(&self, attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
        let clean = attributes.iter().all(|kv| {
            self.is_allowed(kv.key.as_str()) && self.is_clean(kv.key.as_str(), &kv.value)
        });
        if clean {
            return None;
        }
        let mut out = attributes.to_vec();
        self.redact_attributes(&mut out);
        Some(out)
    }

    /// Redacts a finished span: name, attributes, events (names and attributes), link
    /// attributes and the status message.
    pub fn redact_span(&self, span: &mut SpanData) {
        if let Cow::Owned(name) = self.redact_str(&span.name) {
            span.name = Cow::Owned(name);
        }
        self.redact_attributes(&mut span.attributes);
        for event in &mut span.events.events {
            if let Cow::Owned(name) = self.redact_str(&event.name) {
                event.name = Cow::Owned(name);
            }
            self.redact_attributes(&mut event.attributes);
        }
        for link in &mut span.links.links {
            self.redact_attributes(&mut link.attributes);
        }
        if let opentelemetry::trace::Status::Error { description } = &mut span.status
            && let Cow::Owned(text) = self.redact_str(description)
        {
            *description = Cow::Owned(text);
        }
    }

    /// The verdict on a log-record attribute or body. Nested maps are checked key by key;
    /// bytes cannot be inspected, so under a sensitive key they are masked like any value.
    pub fn redact_any_value(&self, key: &str, value: &AnyValue) -> Verdict<AnyValue> {
        match self.check_key(key) {
            Verdict::Drop => return Verdict::Drop,
            Verdict::Replace(()) => return Verdict::Replace(AnyValue::from(REDACTED)),
            Verdict::Keep => {}
        }
        self.redact_any_inner(value)
    }

    /// The value rules alone (no key, no allow-list) on a log body: `None` when unchanged.
    pub fn redact_text_value(&self, value: &AnyValue) -> Option<AnyValue> {
        match self.redact_any_inner(value) {
            Verdict::Replace(v) => Some(v),
            Verdict::Keep | Verdict::Drop => None,
        }
    }

    fn redact_any_inner(&self, value: &AnyValue) -> Verdict<AnyValue> {
        match value {
            AnyValue::String(s) => match self.redact_str(s.as_str()) {
                Cow::Owned(text) => Verdict::Replace(AnyValue::from(text)),
                Cow::Borrowed(_) => Verdict::Keep,
            },
            AnyValue::ListAny(items) => {
                let mut changed = false;
                let next: Vec<AnyValue> = items
                    .iter()
                    .map(|v| match self.redact_any_inner(v) {
                        Verdict::Replace(r) => {
                            changed = true;
                            r
                        }
                        _ => v.clone(),
                    })
                    .collect();
                if changed {
                    Verdict::Replace(AnyValue::ListAny(Box::new(next)))
                } else {
                    Verdict::Keep
                }
            }
            AnyValue::Map(map) => {
                let mut changed = false;
                let mut next: HashMap<Key, AnyValue> = HashMap::with_capacity(map.len());
                for (k, v) in map.iter() {
                    match self.redact_any_value(k.as_str(), v) {
                        Verdict::Keep => {
                            next.insert(k.clone(), v.clone());
                        }
                        Verdict::Replace(r) => {
                            changed = true;
                            next.insert(k.clone(), r);
                        }
                        Verdict::Drop => changed = true,
                    }
                }
                if changed {
                    Verdict::Replace(AnyValue::Map(Box::new(next)))
                } else {
                    Verdict::Keep
                }
            }
            _ => Verdict::Keep,
        }
    }

    /// A captured header value: masked under a sensitive name, and when it is not UTF-8
    /// (a value that cannot be inspected is never passed through); value rules otherwise.
    pub fn redact_header<'a>(&self, name: &str, value: &'a [u8]) -> Cow<'a, str> {
        if self.is_sensitive_key(name) {
            self.count(Rule::SensitiveKey, 1);
            return Cow::Borrowed(REDACTED);
        }
        match std::str::from_utf8(value) {
            Ok(text) => self.redact_str(text),
            Err(_) => {
                self.count(Rule::SensitiveKey, 1);
                Cow::Borrowed(REDACTED)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_mask_any_value_type_and_count() {
        let r = Redactor::default();
        let mut attrs = vec![
            KeyValue::new("http.request.header.authorization", "Bearer abcdefgh123"),
            KeyValue::new("password", 12345_i64),
            KeyValue::new("api_key", Value::Array(Array::I64(vec![1, 2]))),
            KeyValue::new("url.full", "https://u:p@h.invalid/?sig=abc"),
            KeyValue::new("scan.id", "s-1"),
        ];
        r.redact_attributes(&mut attrs);
        assert_eq!(attrs[0].value, Value::from(REDACTED));
        assert_eq!(attrs[1].value, Value::from(REDACTED));
        assert_eq!(attrs[2].value, Value::from(REDACTED));
        assert_eq!(
            attrs[3].value,
            Value::from("https://REDACTED:REDACTED@h.invalid/?sig=REDACTED")
        );
        assert_eq!(attrs[4].value, Value::from("s-1"));
        let counts: HashMap<Rule, u64> = r.counts().into_iter().collect();
        assert_eq!(counts[&Rule::SensitiveKey], 3);
        assert_eq!(counts[&Rule::UrlUserinfo], 1);
        assert_eq!(counts[&Rule::UrlQuery], 1);
    }

    #[test]
    fn strict_mode_keeps_only_allowed_keys_and_counts_the_drops() {
        let r = Redactor::new(&RedactionSettings::strict(["scan.id"])).unwrap();
        let mut attrs = vec![
            KeyValue::new("scan.id", "s-1"),
            KeyValue::new("user.email", "a@b.example"),
            KeyValue::new("http.route", "/x"),
        ];
        r.redact_attributes(&mut attrs);
        let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["scan.id", "http.route"]);
        assert_eq!(r.counts()[Rule::AllowList.index()].1, 1);
    }

    #[test]
    fn malformed_entries_are_errors_naming_them() {
        let err = Redactor::new(&RedactionSettings {
            keys: vec!["session id".into()],
            allow_list: None,
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid redaction key `session id`: keys hold no whitespace or control characters"
        );
        assert!(Redactor::new(&RedactionSettings::strict([""])).is_err());
    }

    #[test]
    fn headers_that_cannot_be_inspected_are_masked() {
        let r = Redactor::default();
        assert_eq!(r.redact_header("x-trace-note", &[0xff, 0xfe]), REDACTED);
        assert_eq!(r.redact_header("Cookie", b"a=b"), REDACTED);
        assert_eq!(r.redact_header("accept", b"text/plain"), "text/plain");
    }

    #[test]
    fn nested_log_values_are_checked_key_by_key() {
        let r = Redactor::default();
        let mut inner = HashMap::new();
        inner.insert(Key::from("password"), AnyValue::from("hunter2"));
        inner.insert(Key::from("user"), AnyValue::from("alice"));
        let value = AnyValue::Map(Box::new(inner));
        let Verdict::Replace(AnyValue::Map(map)) = r.redact_any_value("request", &value) else {
            panic!("the nested password was not masked");
        };
        assert_eq!(map[&Key::from("password")], AnyValue::from(REDACTED));
        assert_eq!(map[&Key::from("user")], AnyValue::from("alice"));
        let bytes = AnyValue::Bytes(Box::new(vec![0xff, 0x00]));
        assert_eq!(
            r.redact_any_value("private_key", &bytes),
            Verdict::Replace(AnyValue::from(REDACTED))
        );
    }
}
