//! `Sensitive<T>`: a value a service knows to be secret, which never prints.

use std::fmt;

use super::rules::REDACTED;

/// Wraps a secret so that `Debug`, `Display` and tracing's `%`/`?` recording print only the
/// marker, and so that it becomes the marker as an OpenTelemetry value.
///
/// ```
/// use stellaops_telemetry_core::Sensitive;
///
/// let token = Sensitive::new("s3cr3t".to_owned());
/// assert_eq!(format!("{token} {token:?}"), "REDACTED REDACTED");
/// tracing::info!(token = %token, "calling the registry"); // records `REDACTED`
/// assert_eq!(token.expose(), "s3cr3t");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The secret itself, for the code that needs it (never for telemetry).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> From<Sensitive<T>> for opentelemetry::Value {
    fn from(_: Sensitive<T>) -> Self {
        opentelemetry::Value::from(REDACTED)
    }
}

impl<T> From<Sensitive<T>> for opentelemetry::logs::AnyValue {
    fn from(_: Sensitive<T>) -> Self {
        opentelemetry::logs::AnyValue::from(REDACTED)
    }
}
