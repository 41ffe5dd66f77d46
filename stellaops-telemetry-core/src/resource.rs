//! The resource every signal carries: who is emitting.
//!
//! `service.name`, `service.version`, `deployment.environment` (and its newer semantic
//! convention name `deployment.environment.name`), `host.name`, the `telemetry.sdk.*`
//! attributes, then the extra attributes of `OTEL_RESOURCE_ATTRIBUTES`. The SDK's own
//! environment detectors are not used: the environment is read only by `from_env()`.

use std::collections::BTreeMap;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;

use crate::redaction::Redactor;

/// Builds the resource. Explicit settings win over the same keys in `extra`.
pub(crate) fn build(
    service_name: &str,
    service_version: &str,
    environment: Option<&str>,
    extra: &BTreeMap<String, String>,
    redactor: &Redactor,
) -> Resource {
    // Masked like any attribute (a token in OTEL_RESOURCE_ATTRIBUTES never leaves), but never
    // dropped: strict mode applies to records, not to the identity of the service.
    let mut attributes: Vec<KeyValue> = extra
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "service.name" | "service.version"))
        .map(|(k, v)| {
            let value = if redactor.is_sensitive_key(k) {
                redactor.count(crate::redaction::Rule::SensitiveKey, 1);
                crate::redaction::REDACTED.to_owned()
            } else {
                redactor.redact_str(v).into_owned()
            };
            KeyValue::new(k.clone(), value)
        })
        .collect();
    attributes.push(KeyValue::new("service.version", service_version.to_owned()));
    if let Some(env) = environment {
        attributes.push(KeyValue::new("deployment.environment", env.to_owned()));
        attributes.push(KeyValue::new("deployment.environment.name", env.to_owned()));
    }
    if !extra.contains_key("host.name") {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        if !host.is_empty() {
            attributes.push(KeyValue::new("host.name", host));
        }
    }
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attributes)
        .with_service_name(service_name.to_owned())
        .build()
}
