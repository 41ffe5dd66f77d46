//! Attribute macros for StellaOps services, checked at compile time against the house
//! catalogue. Use them through `stellaops-telemetry-core`, which re-exports them and pins this
//! crate's exact version: a service depends on core alone.
//!
//! Each macro reads `parse (args.rs) → validate (validate.rs) → expand (expand.rs)`. The
//! generated code names the catalogue's items by path, spanned on the user's own tokens, so
//! the compiler itself reports an unknown span or metric, a missing attribute or a wrong label
//! exactly where it was typed; it calls core only through its hidden `__private` module.

// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
mod expand;
mod sensitive;
mod validate;

use proc_macro::TokenStream;

/// Instruments a function — sync or async, free function or method, generic or not — with a
/// catalogue span and, optionally, catalogue metrics for the call.
///
/// ```
/// use stellaops_telemetry_core::metrics::catalogue::{
///     STELLA_DEPLOYMENTS_TOTAL, STELLAOPS_SCAN_DURATION_SECONDS,
/// };
/// use stellaops_telemetry_core::{Sensitive, instrument};
///
/// #[derive(Debug)]
/// struct ScanError;
///
/// #[instrument(
///     span = "scan.image",     // a catalogue span (or a path to a `declare_spans!` one)
///     imageRef = image,        // its required attributes: `name = expr` ...
///     digest,                  // ... or the argument of that name
///     fields(layers = layers.len(), token = Sensitive::new(token)), // more, by name only
///     duration = STELLAOPS_SCAN_DURATION_SECONDS(tenant = tenant),
/// )]
/// async fn scan(
///     image: &str,
///     digest: &str,
///     layers: &[u8],
///     token: &str,
///     tenant: &str,
/// ) -> Result<usize, ScanError> {
///     Ok(layers.len())
/// }
///
/// #[instrument(
///     span = "deployment.execute",
///     release_id,
///     environment = env,
///     outcome = STELLA_DEPLOYMENTS_TOTAL(tenant = "acme", env = env, strategy = "rolling", status = outcome),
/// )]
/// fn deploy(release_id: &str, env: &str) -> Result<(), std::io::Error> {
///     Ok(())
/// }
/// # fn main() { let _ = deploy("r-1", "prod"); }
/// ```
///
/// - The span opens when the function is called and ends when it returns (or panics, or its
///   future is dropped). Its attributes are evaluated only when the span is recorded; the
///   current request's tenant becomes `tenant.id` unless `tenant = expr` says otherwise.
/// - Arguments are recorded only when named. Naming one that looks like a secret (`password`,
///   `token`, `secret`, `authorization`, `credentials`, …) without wrapping it in
///   `Sensitive::new(..)` does not compile.
/// - A returned `Err` sets the span's status to error and records `error.type`: the error's
///   [`ErrorKind`](../stellaops_telemetry_core/trait.ErrorKind.html), else its type name.
/// - `duration = HISTOGRAM(labels…)` records the call's seconds; `outcome = COUNTER(labels…)`
///   counts it. In labels, the bare words `outcome` (`ok` / `error`) and `error_kind` (the
///   error's kind, `none` on success) stand for the call's result.
/// - `crate = path` names the core crate when it is renamed.
#[proc_macro_attribute]
pub fn instrument(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(args.into(), item.into()).into()
}
