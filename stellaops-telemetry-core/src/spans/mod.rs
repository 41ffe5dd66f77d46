//! Spans: the house span catalogue as constructors whose required attributes are
//! their parameters, and [`declare_spans!`](crate::declare_spans) for a service's own.
//!
//! ```
//! use stellaops_telemetry_core::spans::{self, SpanTenantExt as _};
//!
//! let span = spans::catalogue::policy_evaluate("baseline", "7").with_tenant(Some("acme"));
//! let _entered = span.enter();
//! ```
//!
//! Each constructor opens an `INFO` span named as the catalogue says (`policy.evaluate`) with
//! the required attributes under their catalogue names (`policyId`, `version`) and an empty
//! `tenant.id` that [`SpanTenantExt::with_tenant`] fills when the tenant is known.

pub mod catalogue;
mod value;

pub use value::AttributeValue;

/// The `tracing` target of every span a [`declare_spans!`](crate::declare_spans) function
/// opens: the service's spans, filtered at the service's level (not the SDK's own).
pub const CATALOGUE_TARGET: &str = "stellaops::spans";

/// A span of the catalogue: its name and required attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SpanDescriptor {
    /// The span name (`policy.evaluate`).
    pub name: &'static str,
    /// The required attributes, in parameter order.
    pub attributes: &'static [&'static str],
}

/// A span name breaks the rules: lowercase dotted words, `[a-z][a-z0-9_]*` each, at least two.
#[doc(hidden)]
#[allow(clippy::panic)]
pub const fn assert_valid_name(name: &str) {
    let b = name.as_bytes();
    let mut i = 0;
    let mut words = 1;
    let mut at_word_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'.' {
            if at_word_start {
                panic!("span names are lowercase dotted words: `scan.image`, not `scan..image`")
            }
            words += 1;
            at_word_start = true;
        } else if at_word_start {
            if !c.is_ascii_lowercase() {
                panic!("each word of a span name starts with a lowercase letter")
            }
            at_word_start = false;
        } else if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
            panic!("span names are lowercase dotted words of [a-z0-9_]")
        }
        i += 1;
    }
    if at_word_start || words < 2 {
        panic!("span names have at least two dotted words (`scan.image`)")
    }
}

/// Sets `tenant.id` on a catalogue span when the tenant is known.
pub trait SpanTenantExt: Sized {
    /// Records `tenant` as `tenant.id` (nothing when `None`) and returns the span.
    fn with_tenant(self, tenant: Option<&str>) -> Self;
}

impl SpanTenantExt for tracing::Span {
    fn with_tenant(self, tenant: Option<&str>) -> Self {
        if let Some(tenant) = tenant {
            self.record("tenant.id", tenant);
        }
        self
    }
}

/// Declares span constructors: one function per span, whose parameters are the span's
/// required attributes, and a [`SpanDescriptor`] constant listing them.
///
/// ```
/// stellaops_telemetry_core::declare_spans! {
///     /// Rotating one secret.
///     pub fn vault_rotate / VAULT_ROTATE = "vault.rotate" (secretName: &str, attempt: i64);
/// }
///
/// let span = vault_rotate("db", 2);
/// assert_eq!(VAULT_ROTATE.attributes, ["secretName", "attempt"]);
/// # drop(span);
/// ```
///
/// A span name that breaks the naming rules does not compile:
///
/// ```compile_fail,E0080
/// stellaops_telemetry_core::declare_spans! {
///     pub fn rotate / ROTATE = "VaultRotate" (attempt: i64);
/// }
/// ```
#[macro_export]
macro_rules! declare_spans {
    ($(
        $(#[$meta:meta])*
        $vis:vis fn $fn_name:ident / $const_name:ident = $name:literal ( $($attr:ident : $ty:ty),* $(,)? );
    )*) => {
        $(
            #[doc = concat!("The catalogue entry of `", $name, "`.")]
            $vis const $const_name: $crate::spans::SpanDescriptor = $crate::spans::SpanDescriptor {
                name: $name,
                attributes: &[$(stringify!($attr)),*],
            };
            const _: () = $crate::spans::assert_valid_name($name);

            #[doc = concat!("`", $name, "` for `#[instrument]`: its name and its required attributes, one field each.")]
            #[allow(non_snake_case, non_camel_case_types, missing_docs)]
            $vis mod $fn_name {
                /// The span's name.
                pub const NAME: &str = $name;

                /// The required attributes, one field (and one type parameter) each: a
                /// missing one does not compile.
                pub struct Attributes<$($attr),*> {
                    $(pub $attr: $attr,)*
                }

                impl<$($attr: $crate::spans::AttributeValue),*> Attributes<$($attr),*> {
                    /// Adds the attributes to `record`.
                    #[inline]
                    pub fn record(self, record: &mut $crate::SpanRecord) {
                        let _ = &record;
                        $({
                            const KEY: &str = $crate::metrics::label_name(stringify!($attr));
                            $crate::spans::AttributeValue::push_to(&self.$attr, KEY, record);
                        })*
                    }
                }
            }

            $(#[$meta])*
            #[doc = ""]
            #[doc = concat!("Opens `", $name, "` with its required attributes; `tenant.id` is left empty for `SpanTenantExt::with_tenant`.")]
            #[allow(non_snake_case)]
            #[must_use = "a span does nothing until it is entered or instrumented"]
            $vis fn $fn_name($($attr: $ty),*) -> $crate::tracing::Span {
                $crate::tracing::info_span!(
                    target: $crate::spans::CATALOGUE_TARGET,
                    $name,
                    $($attr = $attr,)*
                    tenant.id = $crate::tracing::field::Empty,
                )
            }
        )*
    };
}
