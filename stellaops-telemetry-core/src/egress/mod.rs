//! Egress policies: where exporters may connect, decided from the endpoint URL without DNS.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::{
//!     AllowList, EgressDecision, EgressPolicy, EgressTarget, parse_endpoint, sealed_policy,
//! };
//!
//! // Sealed mode with an allow-list: loopback and the listed addresses and networks, nothing
//! // else; a listed name is refused, since sealed mode resolves no names.
//! let policy = sealed_policy(Some(AllowList::parse(&["collector.example.com", "10.0.0.0/8"])?));
//!
//! let url = "https://collector.invalid:4318/v1/traces";
//! let (host, port) = parse_endpoint(url)?;
//! let target = EgressTarget { signal: "traces", url, host: &host, port };
//! let EgressDecision::Refuse { reason } = policy.check(&target) else {
//!     panic!("collector.invalid is not on the list");
//! };
//! assert_eq!(policy.name(), "allow-list");
//! assert!(reason.starts_with("`collector.invalid` is not a loopback address"));
//! # Ok::<(), stellaops_telemetry_core::EgressError>(())
//! ```
//!
//! Every exporter connection is checked against the pipeline's [`EgressPolicy`] before it is
//! made: the [`EgressTarget`] carries the signal, the URL, and the [`Host`] and port that
//! [`parse_endpoint`] read from it. A policy only looks at what the URL says: it never resolves a
//! name, so a host name is never matched against an address or a network, and deciding makes no
//! network traffic of its own.
//!
//! In sealed mode nothing the exporters dial is looked up either: an IP address is dialled as
//! written, `localhost` and `*.localhost` (any case, with or without a trailing dot) as
//! 127.0.0.1 and then ::1 by the SDK itself, and every other name is refused before any lookup
//! — even one on the allow-list, whose IP addresses and networks still work. IPv4-mapped
//! addresses are judged as their IPv4 address (`[::ffff:127.0.0.1]` is loopback) and dialled
//! as written; the unspecified addresses (`0.0.0.0`, `[::]`) are not loopback; IPv6 zone ids
//! (`[fe80::1%25eth0]`) are refused by [`parse_endpoint`]. Outside sealed mode names are
//! resolved by the system as usual, after the policy allowed them.
//!
//! Shipped policies: [`OpenPolicy`] (everything; the default outside sealed mode),
//! [`LoopbackOnly`] and [`AllowList`] (loopback plus listed hosts and networks);
//! [`sealed_policy`] picks sealed mode's. Any closure wrapped in [`PolicyFn`] is a policy, and
//! `()` is one that allows everything. [`EgressPolicy::name`] is the `policy` field of the
//! warning a refusal is reported with.

#[cfg(feature = "_otlp")]
mod dial;
mod policies;
mod target;

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "_otlp")]
pub(crate) use dial::SealedResolver;
pub use policies::{AllowList, LoopbackOnly, OpenPolicy};
pub(crate) use target::mask_url;
pub use target::{EgressTarget, Host, parse_endpoint};

/// Errors in egress configuration: each names the entry or URL at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// An allow-list entry that is not an IP address, a CIDR, a host name or `*.` + host name.
    /// A URL given as an entry is shown with its credentials and query values masked.
    #[error("invalid egress allow-list entry `{entry}`: {reason}")]
    InvalidEntry {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An endpoint URL whose host and port cannot be read with certainty.
    #[error("invalid endpoint `{url}`: {reason}")]
    InvalidEndpoint {
        /// The URL as given, with its userinfo, query values and fragment masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A policy's verdict on one [`EgressTarget`].
///
/// ```
/// use stellaops_telemetry_core::EgressDecision;
///
/// assert!(EgressDecision::Allow.is_allowed());
/// assert!(!EgressDecision::refuse("`192.0.2.1` is not on the list").is_allowed());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDecision {
    /// The connection may be made.
    Allow,
    /// The connection must not be made.
    Refuse {
        /// Why, naming the host; reported in the refusal warning.
        reason: String,
    },
}

impl EgressDecision {
    /// A refusal with the given reason.
    pub fn refuse(reason: impl Into<String>) -> EgressDecision {
        EgressDecision::Refuse {
            reason: reason.into(),
        }
    }

    /// Whether the connection may be made.
    pub fn is_allowed(&self) -> bool {
        matches!(self, EgressDecision::Allow)
    }
}

/// Decides whether an exporter may connect to an [`EgressTarget`].
///
/// Implemented by the built-in policies, by `()` (allows everything), by [`PolicyFn`] around a
/// closure, and by `Box` and `Arc` of any policy. A policy must decide from the target alone: no
/// DNS lookups, no I/O, and no panics.
///
/// ```
/// use stellaops_telemetry_core::{EgressDecision, EgressPolicy, EgressTarget, Host, PolicyFn};
///
/// let tls_only = PolicyFn::new(|target: &EgressTarget<'_>| {
///     if target.url.starts_with("https://") {
///         EgressDecision::Allow
///     } else {
///         EgressDecision::refuse(format!("`{}` is not https", target.url))
///     }
/// });
/// let host = Host::Name("collector.example.com".into());
/// let url = "http://collector.example.com:4318";
/// let target = EgressTarget { signal: "logs", url, host: &host, port: 4318 };
/// assert!(!tls_only.check(&target).is_allowed());
/// assert!(().check(&target).is_allowed());
/// assert_eq!(tls_only.name(), "custom");
/// ```
pub trait EgressPolicy: Send + Sync + fmt::Debug {
    /// The decision for one connection about to be made.
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision;

    /// A short name for the policy, the `policy` field of a refusal warning. Defaults to
    /// `custom`.
    fn name(&self) -> &str {
        "custom"
    }
}

impl EgressPolicy for () {
    fn check(&self, _target: &EgressTarget<'_>) -> EgressDecision {
        EgressDecision::Allow
    }

    fn name(&self) -> &str {
        "open"
    }
}

impl<P: EgressPolicy + ?Sized> EgressPolicy for Box<P> {
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision {
        (**self).check(target)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

impl<P: EgressPolicy + ?Sized> EgressPolicy for Arc<P> {
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision {
        (**self).check(target)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

/// A closure as an [`EgressPolicy`], named `custom`.
///
/// The wrapper exists because policies are `Debug` (so pipelines holding one can be printed)
/// and closures are not.
///
/// ```
/// use stellaops_telemetry_core::{EgressDecision, EgressPolicy, PolicyFn};
///
/// let no_logs = PolicyFn::new(|target| match target.signal {
///     "logs" => EgressDecision::refuse("logs stay on this host"),
///     _ => EgressDecision::Allow,
/// });
/// let policy: Box<dyn EgressPolicy> = Box::new(no_logs);
/// assert_eq!(format!("{policy:?}"), "PolicyFn(..)");
/// ```
#[derive(Clone, Copy)]
pub struct PolicyFn<F>(F);

impl<F> PolicyFn<F>
where
    F: Fn(&EgressTarget<'_>) -> EgressDecision + Send + Sync,
{
    /// Wraps `check` as a policy.
    pub fn new(check: F) -> PolicyFn<F> {
        PolicyFn(check)
    }
}

impl<F> fmt::Debug for PolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PolicyFn(..)")
    }
}

impl<F> EgressPolicy for PolicyFn<F>
where
    F: Fn(&EgressTarget<'_>) -> EgressDecision + Send + Sync,
{
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision {
        (self.0)(target)
    }
}

/// Sealed mode's policy: [`LoopbackOnly`] when no allow-list is configured, otherwise the
/// [`AllowList`] as [`AllowList::sealed`] applies it (loopback, listed addresses and
/// networks; no names but loopback ones).
///
/// ```
/// use stellaops_telemetry_core::{AllowList, EgressPolicy, sealed_policy};
///
/// assert_eq!(sealed_policy(None).name(), "loopback-only");
/// let list = AllowList::parse(&["*.corp.example"])?;
/// assert_eq!(sealed_policy(Some(list)).name(), "allow-list");
/// # Ok::<(), stellaops_telemetry_core::EgressError>(())
/// ```
pub fn sealed_policy(allow: Option<AllowList>) -> Box<dyn EgressPolicy> {
    match allow {
        Some(list) => Box::new(list.sealed()),
        None => Box::new(LoopbackOnly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_for(url: &str, f: impl FnOnce(&EgressTarget<'_>)) {
        match parse_endpoint(url) {
            Ok((host, port)) => f(&EgressTarget {
                signal: "metrics",
                url,
                host: &host,
                port,
            }),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn sealed_mode_is_loopback_only_unless_an_allow_list_is_set() {
        let loopback = sealed_policy(None);
        let listed = match AllowList::parse(&["collector.example.com"]) {
            Ok(list) => sealed_policy(Some(list)),
            Err(e) => panic!("{e}"),
        };
        target_for("http://127.0.0.1:4317", |t| {
            assert!(loopback.check(t).is_allowed());
            assert!(listed.check(t).is_allowed());
        });
        // Listed, but a name: reaching it would need DNS, which sealed mode never asks.
        target_for("https://collector.example.com", |t| {
            assert!(!loopback.check(t).is_allowed());
            assert!(!listed.check(t).is_allowed());
        });
        target_for("https://collector.invalid", |t| {
            assert!(!loopback.check(t).is_allowed());
            assert!(!listed.check(t).is_allowed());
        });
    }

    #[test]
    fn open_policies_allow_everything_and_have_names() {
        let policies: [(&dyn EgressPolicy, &str); 3] = [
            (&OpenPolicy, "open"),
            (&(), "open"),
            (
                &PolicyFn::new(|_: &EgressTarget<'_>| EgressDecision::Allow),
                "custom",
            ),
        ];
        for (policy, name) in policies {
            assert_eq!(policy.name(), name);
            target_for("https://[2001:db8::1]", |t| {
                assert!(policy.check(t).is_allowed())
            });
        }
        assert_eq!(Arc::new(LoopbackOnly).name(), "loopback-only");
    }
}
