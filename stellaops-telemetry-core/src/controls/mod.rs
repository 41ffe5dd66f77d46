//! Run-time controls: the service's log level and per-tenant overrides of sampling and log
//! level, changed while the process runs, audited and counted.
//!
//! [`Controls`] holds the state (an atomic level and an override table swapped whole on
//! change, so readers never lock); `ControlledFilter` applies it to the subscriber's layers and
//! `PipelineSampler` to the tracer provider's head sampling.

mod filter;
mod sampler;
mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use parking_lot::Mutex;
use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;

pub(crate) use filter::ControlledFilter;
pub(crate) use sampler::PipelineSampler;

use crate::incidents::Incidents;
use crate::profile::LogLevel;
pub(crate) use table::{MAX_TENANT_LEN, tenant_byte};
use table::{OverrideTable, Pattern, Summary};

/// The target of the audit line written for every applied control change. The pipeline's
/// filters always let it through at `INFO` and above.
pub const AUDIT_TARGET: &str = "stellaops_telemetry::audit";

/// The most tenant overrides held at once; one more is [`ControlError::TooManyOverrides`].
pub const MAX_TENANT_OVERRIDES: usize = 16_384;

/// The longest `who` written to the audit line, in bytes (longer ones are cut).
const MAX_WHO_LEN: usize = 128;

/// The most characters of a refused value shown in an error message.
const MAX_SHOWN_CHARS: usize = 64;

/// Set in the level atomic once a run-time change pinned the level (`RUST_LOG` no longer
/// decides).
const PINNED: u8 = 0x80;

/// How sampling treats one tenant's new traces.
///
/// ```
/// use stellaops_telemetry_core::TenantSampling;
/// assert_eq!(TenantSampling::default(), TenantSampling::Profile);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TenantSampling {
    /// The pipeline's head sampler decides (the default).
    #[default]
    Profile,
    /// Every span of the tenant is recorded and sampled.
    Always,
    /// No span of the tenant is recorded.
    Never,
}

impl TenantSampling {
    /// The lowercase name written to the audit line.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantSampling::Profile => "profile",
            TenantSampling::Always => "always",
            TenantSampling::Never => "never",
        }
    }
}

/// What a tenant override changes. The default changes nothing (setting it removes the
/// override).
///
/// ```
/// use stellaops_telemetry_core::{LogLevel, TenantOverride, TenantSampling};
/// let debug_everything = TenantOverride {
///     sampling: TenantSampling::Always,
///     log_level: Some(LogLevel::Debug),
/// };
/// assert_ne!(debug_everything, TenantOverride::default());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TenantOverride {
    /// How the tenant's traces are sampled (default: as the profile says).
    pub sampling: TenantSampling,
    /// A more verbose log level for the tenant's events (default `None`: the service's level).
    /// A level less verbose than the service's has no effect: the override only adds events.
    pub log_level: Option<LogLevel>,
}

/// A refused control change or filter, naming what was wrong. Refused values are shown cut
/// to 64 characters, control characters replaced by `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Not a log level name.
    #[error("invalid log level `{level}`: expected error, warn, info, debug or trace")]
    InvalidLevel {
        /// The refused value, as shown.
        level: String,
    },
    /// Not a tenant id, or a tenant id prefix followed by one `*`.
    #[error("invalid tenant pattern `{pattern}`: {reason}")]
    InvalidTenantPattern {
        /// The refused pattern, as shown.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No override is set under this pattern.
    #[error("no tenant override is set for pattern `{pattern}`")]
    UnknownTenantPattern {
        /// The pattern, as shown.
        pattern: String,
    },
    /// A new override beyond the table's capacity.
    #[error("too many tenant overrides: at most {limit} may be set; clear one first")]
    TooManyOverrides {
        /// The capacity ([`MAX_TENANT_OVERRIDES`]).
        limit: usize,
    },
    /// A log filter directive that does not parse.
    #[error("invalid {variable} directive `{directive}`: {reason}")]
    InvalidFilter {
        /// Where the directives came from (`RUST_LOG`).
        variable: &'static str,
        /// The refused directive, as shown.
        directive: String,
        /// The parser's reason.
        reason: String,
    },
}

/// The controls a change is counted and audited under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    LogLevel,
    TenantSampling,
    TenantLogLevel,
}

impl Control {
    const ALL: [Control; 3] = [
        Control::LogLevel,
        Control::TenantSampling,
        Control::TenantLogLevel,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Control::LogLevel => "log_level",
            Control::TenantSampling => "tenant_sampling",
            Control::TenantLogLevel => "tenant_log_level",
        }
    }
}

/// The run-time controls of one pipeline: the service's log level and the tenant overrides.
///
/// Cheap to clone (every clone is the same controls). Readers (the filters on every event,
/// the sampler on every span) never lock: the level is one atomic, the override table is
/// swapped whole by each change. Writers serialize among themselves and never block a reader.
///
/// Every applied change is counted in `stellaops_telemetry_control_changes_total{control}`
/// and writes one structured audit line (target [`AUDIT_TARGET`], fields `who`, `control`,
/// `tenant`, `before`, `after`), through the pipeline's own log layers and their redaction.
///
/// # Precedence
///
/// At start the profile's level decides, or the `RUST_LOG` directives when they are set. The
/// first run-time [`set_log_level`](Controls::set_log_level) wins over both until the process
/// restarts. A tenant override only adds: an event is kept when the service's level keeps it
/// or when the level of the tenant of the current work (the nearest span's `tenant.id` /
/// `tenant` field, else the [`RequestContext`](crate::RequestContext)) does. The SDK's own
/// targets keep their fixed levels whatever the controls say.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::{ControlError, Controls, LogLevel, TenantOverride, TenantSampling};
///
/// // `controls` is the pipeline's: `telemetry.controls()`.
/// fn admin(controls: &Controls) -> Result<(), ControlError> {
///     // Everyone, from now on: debug.
///     controls.set_log_level("ops@example", LogLevel::Debug)?;
///     // Or from an admin endpoint's text.
///     controls.set_log_level_str("ops@example", "info")?;
///     // One tenant family: every trace kept, debug logs.
///     let o = TenantOverride { sampling: TenantSampling::Always, log_level: Some(LogLevel::Debug) };
///     controls.set_tenant("ops@example", "acme-*", o)?;
///     assert_eq!(controls.tenant_overrides(), [("acme-*".to_owned(), o)]);
///     controls.clear_tenant("ops@example", "acme-*")
/// }
/// ```
#[derive(Clone)]
pub struct Controls {
    inner: Arc<Inner>,
}

struct Inner {
    /// The service events' level code, with [`PINNED`] once a run-time change set it.
    level: AtomicU8,
    /// The override table in force.
    table: ArcSwap<OverrideTable>,
    /// The table's summary, readable with one load.
    summary: AtomicU8,
    /// Applied changes, by [`Control`] (same order as [`Control::ALL`]).
    changes: [AtomicU64; 3],
    /// Serializes writers (readers never take it).
    writer: Mutex<()>,
    /// The pipeline's dispatch, for the audit lines.
    dispatch: OnceLock<WeakDispatch>,
    /// The tenants' incidents, which act as the forensic override of their tenants.
    incidents: Incidents,
}

impl fmt::Debug for Controls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controls")
            .field("log_level", &self.log_level())
            .field("tenant_overrides", &self.inner.table.load().entries().len())
            .field("changes", &self.changes())
            .finish()
    }
}

impl Controls {
    /// Controls starting at `initial` (the profile's level), with no tenant override.
    pub(crate) fn new(initial: LogLevel, incidents: Incidents) -> Controls {
        Controls {
            inner: Arc::new(Inner {
                level: AtomicU8::new(level_code(initial)),
                table: ArcSwap::from_pointee(OverrideTable::default()),
                summary: AtomicU8::new(0),
                changes: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
                writer: Mutex::new(()),
                dispatch: OnceLock::new(),
                incidents,
            }),
        }
    }

    /// Keeps (weakly) the pipeline's dispatch, through which the audit lines are written.
    /// Only the first call counts.
    pub(crate) fn set_dispatch(&self, d: &Dispatch) {
        let _ = self.inner.dispatch.set(d.downgrade());
        self.inner.incidents.set_dispatch(d);
    }

    /// The tenants' incidents. While a tenant is under one, it is treated as if it had the
    /// override `{ sampling: Always, log_level: Some(Debug) }` (a more verbose override level
    /// of its own still counts).
    pub fn incidents(&self) -> &Incidents {
        &self.inner.incidents
    }

    /// The service events' level now. While `RUST_LOG` directives decide (until the first
    /// run-time change) this is the profile's level, which they replace.
    pub fn log_level(&self) -> LogLevel {
        level_from_code(self.inner.level.load(Ordering::Relaxed))
    }

    /// The level and whether a run-time change set it (one load).
    pub(crate) fn level_state(&self) -> (LogLevel, bool) {
        let raw = self.inner.level.load(Ordering::Relaxed);
        (level_from_code(raw), raw & PINNED != 0)
    }

    /// Sets the service events' level from now until the process restarts (over the profile
    /// and `RUST_LOG`). `who` names the operator in the audit line.
    pub fn set_log_level(&self, who: &str, level: LogLevel) -> Result<(), ControlError> {
        let before = {
            let _writer = self.inner.writer.lock();
            let before = self
                .inner
                .level
                .swap(level_code(level) | PINNED, Ordering::AcqRel);
            self.count(Control::LogLevel);
            level_from_code(before)
        };
        self.rebuild_interest();
        self.audit(who, Control::LogLevel, "", before.as_str(), level.as_str());
        Ok(())
    }

    /// [`set_log_level`](Controls::set_log_level) from a level name (`error`, `warn`, `info`,
    /// `debug`, `trace`, any case).
    pub fn set_log_level_str(&self, who: &str, level: &str) -> Result<(), ControlError> {
        // Longer than any level name: refused without copying it.
        let parsed = (level.len() <= 16)
            .then(|| LogLevel::parse(level))
            .flatten();
        match parsed {
            Some(parsed) => self.set_log_level(who, parsed),
            None => Err(ControlError::InvalidLevel {
                level: shown(level),
            }),
        }
    }

    /// Sets the override of the tenants matching `pattern`: a tenant id (1–128 bytes of
    /// `A-Z a-z 0-9 . _ - @ :`), or such a prefix followed by `*` (`acme-*`). An exact id wins
    /// over prefixes, the longest prefix over shorter ones. Setting the default override
    /// removes the pattern's.
    pub fn set_tenant(
        &self,
        who: &str,
        pattern: &str,
        o: TenantOverride,
    ) -> Result<(), ControlError> {
        Pattern::parse(pattern)?;
        self.change_table(who, pattern, |table| {
            let before = table.get(pattern);
            let mut entries = table.entries().clone();
            if o == TenantOverride::default() {
                entries.remove(pattern);
            } else {
                if before.is_none() && entries.len() >= MAX_TENANT_OVERRIDES {
                    return Err(ControlError::TooManyOverrides {
                        limit: MAX_TENANT_OVERRIDES,
                    });
                }
                entries.insert(Box::from(pattern), o);
            }
            Ok((before.unwrap_or_default(), entries))
        })
    }

    /// Removes the override set under exactly `pattern`.
    pub fn clear_tenant(&self, who: &str, pattern: &str) -> Result<(), ControlError> {
        Pattern::parse(pattern)?;
        self.change_table(who, pattern, |table| {
            let mut entries = table.entries().clone();
            match entries.remove(pattern) {
                Some(before) => Ok((before, entries)),
                None => Err(ControlError::UnknownTenantPattern {
                    pattern: shown(pattern),
                }),
            }
        })
    }

    /// A copy of every tenant override, by pattern, for diagnostics.
    pub fn tenant_overrides(&self) -> Vec<(String, TenantOverride)> {
        self.inner.table.load().snapshot()
    }

    /// How many changes were applied since start.
    pub fn changes(&self) -> u64 {
        self.inner
            .changes
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The override of `tenant`, if any (lock-free).
    pub(crate) fn override_for(&self, tenant: &str) -> Option<TenantOverride> {
        let set = self.set_override_for(tenant);
        if !self.inner.incidents.is_active(tenant) {
            return set;
        }
        let set_level = set.and_then(|o| o.log_level);
        Some(TenantOverride {
            sampling: TenantSampling::Always,
            log_level: Some(set_level.map_or(LogLevel::Debug, |l| l.max(LogLevel::Debug))),
        })
    }

    /// The override set for `tenant` in the table, incidents aside (lock-free).
    pub(crate) fn set_override_for(&self, tenant: &str) -> Option<TenantOverride> {
        if !self.summary().any() {
            return None;
        }
        self.inner.table.load().lookup(tenant)
    }

    /// The tenant's active incident, if any (lock-free).
    pub(crate) fn incident_for(&self, tenant: &str) -> Option<Arc<crate::Incident>> {
        self.inner.incidents.active_for(tenant)
    }

    /// Whether any tenant override is set (one load).
    #[cfg(test)]
    pub(crate) fn has_tenant_overrides(&self) -> bool {
        self.summary().any()
    }

    /// Whether some tenant override changes sampling (one load).
    pub(crate) fn has_sampling_overrides(&self) -> bool {
        self.summary().sampling() || self.inner.incidents.any_active()
    }

    /// The most verbose tenant override log level, if any (one load).
    pub(crate) fn max_override_level(&self) -> Option<LogLevel> {
        let set = self.summary().max_level_code().map(level_from_code);
        if self.inner.incidents.any_active() {
            return Some(set.map_or(LogLevel::Debug, |l| l.max(LogLevel::Debug)));
        }
        set
    }

    fn summary(&self) -> Summary {
        Summary(self.inner.summary.load(Ordering::Acquire))
    }

    /// The applied changes by control label.
    fn change_counts(&self) -> [(&'static str, u64); 3] {
        Control::ALL.map(|c| {
            (
                c.as_str(),
                self.inner.changes[c as usize].load(Ordering::Relaxed),
            )
        })
    }

    fn count(&self, control: Control) {
        self.inner.changes[control as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Applies a change of the table: `change` returns the pattern's override before and
    /// the new entries. Each field that differs is counted and audited.
    fn change_table(
        &self,
        who: &str,
        pattern: &str,
        change: impl FnOnce(
            &OverrideTable,
        ) -> Result<
            (TenantOverride, BTreeMap<Box<str>, TenantOverride>),
            ControlError,
        >,
    ) -> Result<(), ControlError> {
        let (before, after) = {
            let _writer = self.inner.writer.lock();
            let current = self.inner.table.load_full();
            let (before, entries) = change(&current)?;
            let next = OverrideTable::from_entries(entries);
            let after = next.get(pattern).unwrap_or_default();
            let summary = next.summary;
            self.inner.table.store(Arc::new(next));
            self.inner.summary.store(summary.0, Ordering::Release);
            if before.sampling != after.sampling {
                self.count(Control::TenantSampling);
            }
            if before.log_level != after.log_level {
                self.count(Control::TenantLogLevel);
            }
            (before, after)
        };
        if before == after {
            return Ok(());
        }
        self.rebuild_interest();
        if before.sampling != after.sampling {
            let (b, a) = (before.sampling.as_str(), after.sampling.as_str());
            self.audit(who, Control::TenantSampling, pattern, b, a);
        }
        if before.log_level != after.log_level {
            let name = |l: Option<LogLevel>| l.map_or("none", LogLevel::as_str);
            let (b, a) = (name(before.log_level), name(after.log_level));
            self.audit(who, Control::TenantLogLevel, pattern, b, a);
        }
        Ok(())
    }

    /// Has every callsite's cached interest, and the global max level, follow the change.
    ///
    /// Run inside the pipeline's dispatch: while it is the only dispatch of the process,
    /// `tracing` asks the calling thread's default dispatch only, which on an admin thread
    /// outside the pipeline's scope would be none, and would disable every callsite.
    fn rebuild_interest(&self) {
        match self.inner.dispatch.get().and_then(WeakDispatch::upgrade) {
            Some(dispatch) => tracing::dispatcher::with_default(
                &dispatch,
                tracing_core::callsite::rebuild_interest_cache,
            ),
            None => tracing_core::callsite::rebuild_interest_cache(),
        }
    }

    /// Writes the audit line of one applied change through the pipeline's dispatch (nothing
    /// before the dispatch is known or after it is gone).
    fn audit(&self, who: &str, control: Control, tenant: &str, before: &str, after: &str) {
        let Some(dispatch) = self.inner.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let who = cut_to(who, MAX_WHO_LEN);
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(
                target: AUDIT_TARGET,
                who = %who,
                control = control.as_str(),
                tenant_pattern = %tenant,
                before = %before,
                after = %after,
                "telemetry control changed"
            );
        });
    }
}

/// Registers `stellaops_telemetry_control_changes_total{control}` on the pipeline's own
/// (non-redacting: the labels are the SDK's) meter.
pub(crate) fn register(meter_provider: &SdkMeterProvider, controls: &Controls) {
    let controls = controls.clone();
    let _ = meter_provider
        .meter("stellaops-telemetry")
        .u64_observable_counter("stellaops_telemetry_control_changes_total")
        .with_description("Run-time control changes applied, by control")
        .with_callback(move |observer| {
            for (control, count) in controls.change_counts() {
                observer.observe(count, &[KeyValue::new("control", control)]);
            }
        })
        .build();
}

/// The code of a level in the level atomic (error 0 … trace 4).
fn level_code(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 2,
        LogLevel::Debug => 3,
        LogLevel::Trace => 4,
    }
}

fn level_from_code(code: u8) -> LogLevel {
    match code & !PINNED {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        3 => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// `value` cut to at most `limit` bytes, on a character boundary.
pub(crate) fn cut_to(value: &str, limit: usize) -> &str {
    if value.len() <= limit {
        return value;
    }
    let mut end = limit;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A refused value as an error message shows it: at most 64 characters, control characters
/// as `?`, and the full length when it was cut. Reads at most 65 characters of `value`.
pub(crate) fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_SHOWN_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().nth(MAX_SHOWN_CHARS).is_some() {
        out.push_str(&format!("… ({} bytes)", value.len()));
    }
    out
}
