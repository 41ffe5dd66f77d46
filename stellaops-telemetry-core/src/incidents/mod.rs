//! Incident (forensic) mode per tenant, switched at run time.
//!
//! An [`Incident`] puts one tenant's telemetry under the forensic profile until it expires or
//! is stopped: every span of the tenant kept (and carrying [`INCIDENT_ATTRIBUTE`]), its debug
//! events, the 180-day retention tag on its log lines and log records, and the extended
//! request attributes the server layer records for it. Other tenants are untouched.
//!
//! [`Incidents`] holds the active incidents (a table swapped whole on change, so the sampler
//! and the filters read it without a lock), ends expired ones on a background thread, follows
//! a watched incident file shared by every instance of the service, runs the triggers (error
//! rate, circuit breaker, escalation), writes an audit line for every start and stop and hands
//! each change to the notification hooks on a thread of their own.

mod file;
mod hooks;
mod triggers;
#[cfg(feature = "otlp-http")]
mod webhook;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;

pub use file::IncidentFile;
pub use hooks::{IncidentEvent, IncidentEventKind, IncidentHook};
pub use triggers::ErrorRateTrigger;
#[cfg(feature = "otlp-http")]
pub use webhook::{DEFAULT_WEBHOOK_TIMEOUT, WebhookHook};
#[cfg(all(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) use webhook::{blocking_client, blocking_client_with_tls, error_chain, outside_runtime};

use crate::controls::{AUDIT_TARGET, MAX_TENANT_LEN, cut_to, shown, tenant_byte};

/// How long an incident lasts when its start names no expiry: 60 minutes.
pub const DEFAULT_INCIDENT_TTL: Duration = Duration::from_secs(60 * 60);

/// The longest an incident may last: 24 hours.
pub const MAX_INCIDENT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The most incidents active at once; one more is [`IncidentError::TooMany`].
pub const MAX_ACTIVE_INCIDENTS: usize = 16_384;

/// The span attribute naming the incident a span was recorded under. Collectors keep such
/// spans whatever their sampling policy says.
pub const INCIDENT_ATTRIBUTE: &str = "stellaops.incident.id";

/// The actor named when an incident ends because it expired.
pub const EXPIRY_ACTOR: &str = "expiry";

/// The actor named for changes read from the incident file.
pub const FILE_ACTOR: &str = "incident-file";

/// The longest reason kept, in bytes.
const MAX_REASON_LEN: usize = 512;

/// The longest actor kept, in bytes.
const MAX_ACTOR_LEN: usize = 128;

/// What started an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentTrigger {
    /// An operator, through the API or the command line (the default).
    Manual,
    /// The tenant's error rate crossed its threshold over the rolling window.
    ErrorRate,
    /// A circuit breaker of the service opened.
    CircuitBreaker,
    /// The service escalated (an explicit call, e.g. from its own incident logic).
    Escalation,
}

impl IncidentTrigger {
    /// The name written to the audit line and the incident file.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentTrigger::Manual => "manual",
            IncidentTrigger::ErrorRate => "error_rate",
            IncidentTrigger::CircuitBreaker => "circuit_breaker",
            IncidentTrigger::Escalation => "escalation",
        }
    }
}

/// One tenant's incident: who started it, why, and until when.
///
/// Serialized (in the incident file, the control plane's status) with RFC 3339 times:
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use stellaops_telemetry_core::{Incident, IncidentTrigger};
///
/// let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let incident = Incident {
///     id: "inc-1".into(),
///     tenant: "acme".into(),
///     reason: "CVE triage".into(),
///     actor: "ops@example".into(),
///     trigger: IncidentTrigger::Manual,
///     started,
///     expires: started + Duration::from_secs(3600),
/// };
/// let json = serde_json::to_string(&incident)?;
/// assert!(json.contains(r#""expires":"2027-01-15T09:00:00.000Z""#), "{json}");
/// assert_eq!(serde_json::from_str::<Incident>(&json)?, incident);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// A unique id (`inc-…`), the value of [`INCIDENT_ATTRIBUTE`] on the tenant's spans.
    pub id: String,
    /// The tenant under incident.
    pub tenant: String,
    /// Why (free text, at most 512 bytes).
    pub reason: String,
    /// Who started it (an operator, a token's subject, or the trigger's name).
    pub actor: String,
    /// What started it.
    pub trigger: IncidentTrigger,
    /// When it started.
    #[serde(with = "rfc3339")]
    pub started: SystemTime,
    /// When it ends by itself.
    #[serde(with = "rfc3339")]
    pub expires: SystemTime,
}

impl Incident {
    /// Whether the incident has ended by `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires
    }
}

/// A request to start an incident.
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_core::{IncidentStart, IncidentTrigger};
///
/// let start = IncidentStart::new("acme", "CVE triage", "ops@example")
///     .ttl(Duration::from_secs(30 * 60))
///     .trigger(IncidentTrigger::Escalation);
/// assert_eq!(start.tenant, "acme");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncidentStart {
    /// The tenant (1–128 bytes of `A-Z a-z 0-9 . _ - @ :`).
    pub tenant: String,
    /// Why (at most 512 bytes, no control characters).
    pub reason: String,
    /// Who (cut to 128 bytes).
    pub actor: String,
    /// How long it lasts (default [`DEFAULT_INCIDENT_TTL`], at most [`MAX_INCIDENT_TTL`]).
    pub ttl: Option<Duration>,
    /// What started it (default [`IncidentTrigger::Manual`]).
    pub trigger: IncidentTrigger,
}

impl IncidentStart {
    /// A manual start with the default expiry.
    pub fn new(
        tenant: impl Into<String>,
        reason: impl Into<String>,
        actor: impl Into<String>,
    ) -> IncidentStart {
        IncidentStart {
            tenant: tenant.into(),
            reason: reason.into(),
            actor: actor.into(),
            ttl: None,
            trigger: IncidentTrigger::Manual,
        }
    }

    /// The incident lasts `ttl` from now.
    pub fn ttl(mut self, ttl: Duration) -> IncidentStart {
        self.ttl = Some(ttl);
        self
    }

    /// What started it.
    pub fn trigger(mut self, trigger: IncidentTrigger) -> IncidentStart {
        self.trigger = trigger;
        self
    }
}

/// A refused incident change, naming what was wrong. Refused values are shown cut to 64
/// characters, control characters replaced by `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IncidentError {
    /// Not a tenant id.
    #[error("invalid tenant `{tenant}`: {reason}")]
    InvalidTenant {
        /// The refused tenant, as shown.
        tenant: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A field (`reason`, `breaker`) that is too long or holds control characters.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An expiry of zero or beyond [`MAX_INCIDENT_TTL`], or a TTL text that does not parse.
    #[error("invalid ttl `{ttl}`: expected a duration from 1ms to 24h (e.g. `30m`, `2h`)")]
    InvalidTtl {
        /// The refused TTL, as shown.
        ttl: String,
    },
    /// No incident is active for the tenant.
    #[error("no incident is active for tenant `{tenant}`")]
    NotActive {
        /// The tenant, as shown.
        tenant: String,
    },
    /// A new incident beyond [`MAX_ACTIVE_INCIDENTS`].
    #[error("too many incidents: at most {limit} may be active at once")]
    TooMany {
        /// The capacity.
        limit: usize,
    },
    /// The incident file could not be read or written.
    #[error("incident file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The incident file holds something other than an incident list.
    #[error("incident file {path}: {reason}")]
    FileFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where incidents come from besides the API, and what they trigger: the pipeline's
/// incident settings.
#[derive(Clone, Default)]
pub(crate) struct IncidentSettings {
    /// The watched incident file, if any.
    pub(crate) file: Option<PathBuf>,
    /// The error-rate trigger (off by default).
    pub(crate) error_rate: Option<ErrorRateTrigger>,
    /// The notification hooks.
    pub(crate) hooks: Vec<Arc<dyn IncidentHook>>,
}

impl fmt::Debug for IncidentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncidentSettings")
            .field("file", &self.file)
            .field("error_rate", &self.error_rate)
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// Counters of applied incident changes, by [`IncidentEventKind`].
#[derive(Default)]
struct Counts([AtomicU64; 4]);

/// The active incidents of one pipeline, and everything that starts and stops them.
///
/// Cheap to clone (every clone is the same registry). Readers (the sampler on every span, the
/// filters and log layers on every event) never lock: one atomic load when no incident is
/// active, one table load and a hash lookup otherwise. Writers serialize among themselves.
///
/// Starting an incident for a tenant already under one extends it (same id; the later
/// expiry, the new reason) rather than failing, so a trigger that fires again is harmless.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_core::{IncidentStart, Telemetry};
///
/// let telemetry = Telemetry::builder("scanner").exporters(&[]).build()?;
/// let incidents = telemetry.incidents();
/// let incident = incidents.start(
///     IncidentStart::new("acme", "CVE triage", "ops@example").ttl(Duration::from_secs(1800)),
/// )?;
/// assert!(incidents.is_active("acme"));
/// assert!(!incidents.is_active("globex"));
/// assert_eq!(incidents.status(), [incident.clone()]);
/// incidents.stop("ops@example", "acme")?;
/// assert!(incidents.status().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Incidents {
    inner: Arc<Inner>,
}

struct Inner {
    /// Active incidents by tenant, swapped whole by each change.
    table: ArcSwap<HashMap<Box<str>, Arc<Incident>>>,
    /// Whether the table holds any incident (the readers' first, and usually only, load).
    any: AtomicBool,
    /// `any` changed since the callsites' interest was last rebuilt.
    interest_stale: AtomicBool,
    /// Serializes writers, and holds what the file follower remembers.
    writer: Mutex<file::Follower>,
    /// The watched incident file.
    file: Option<PathBuf>,
    /// The error-rate trigger's windows, when it is on.
    error_rates: Option<triggers::ErrorRates>,
    /// The notification hooks and their thread.
    hooks: hooks::Hooks,
    /// The pipeline's dispatch, for the audit lines.
    dispatch: OnceLock<WeakDispatch>,
    /// The circuit breaker gauge and the service name it is labelled with.
    breakers: OnceLock<(crate::metrics::Metrics, String)>,
    /// The expiry and file-follower thread.
    worker: worker::Worker,
    /// Applied changes by kind.
    counts: Counts,
    /// Makes incident ids unique within the process.
    sequence: AtomicU64,
}

impl fmt::Debug for Incidents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incidents")
            .field("active", &self.inner.table.load().len())
            .field("file", &self.inner.file)
            .finish()
    }
}

impl Incidents {
    /// A registry with `settings`; reads the incident file once, so that incidents survive a
    /// restart of the process. An unreadable file is reported (once) and followed anyway.
    pub(crate) fn new(settings: IncidentSettings) -> Incidents {
        let incidents = Incidents {
            inner: Arc::new(Inner {
                table: ArcSwap::from_pointee(HashMap::new()),
                any: AtomicBool::new(false),
                interest_stale: AtomicBool::new(false),
                writer: Mutex::new(file::Follower::default()),
                file: settings.file,
                error_rates: settings.error_rate.map(triggers::ErrorRates::new),
                hooks: hooks::Hooks::new(settings.hooks),
                dispatch: OnceLock::new(),
                breakers: OnceLock::new(),
                worker: worker::Worker::default(),
                counts: Counts::default(),
                sequence: AtomicU64::new(0),
            }),
        };
        if incidents.inner.file.is_some() {
            let _ = incidents.reload_file();
            incidents.wake_worker();
        }
        incidents
    }

    /// Keeps (weakly) the pipeline's dispatch, through which the audit lines are written.
    pub(crate) fn set_dispatch(&self, d: &Dispatch) {
        let _ = self.inner.dispatch.set(d.downgrade());
    }

    /// Keeps the pipeline's metrics, for `stellaops_circuit_breaker_open`.
    pub(crate) fn set_metrics(&self, metrics: crate::metrics::Metrics, service: String) {
        let _ = self.inner.breakers.set((metrics, service));
    }

    /// Starts an incident (or extends the tenant's active one) and returns it.
    ///
    /// # Errors
    ///
    /// [`IncidentError::InvalidTenant`], [`IncidentError::InvalidField`] (the reason),
    /// [`IncidentError::InvalidTtl`] or [`IncidentError::TooMany`]. An incident file that
    /// cannot be written does not fail the start: the incident is active on this instance,
    /// and the failure is reported as a warning.
    pub fn start(&self, start: IncidentStart) -> Result<Incident, IncidentError> {
        check_tenant(&start.tenant)?;
        check_text("reason", &start.reason, MAX_REASON_LEN)?;
        let ttl = start.ttl.unwrap_or(DEFAULT_INCIDENT_TTL);
        if ttl.is_zero() || ttl > MAX_INCIDENT_TTL {
            return Err(IncidentError::InvalidTtl {
                ttl: format!("{}ms", ttl.as_millis()),
            });
        }
        // Whole milliseconds: what the file and the API carry, so every copy compares equal.
        let now = whole_millis(SystemTime::now());
        let actor = cut_to(&start.actor, MAX_ACTOR_LEN).to_owned();
        let (incident, kind) = {
            let mut follower = self.inner.writer.lock();
            let table = self.inner.table.load_full();
            let (incident, kind) = match table.get(start.tenant.as_str()) {
                Some(current) if !current.is_expired_at(now) => {
                    let mut extended = Incident::clone(current);
                    extended.expires = extended.expires.max(now + ttl);
                    extended.reason.clone_from(&start.reason);
                    (extended, IncidentEventKind::Extended)
                }
                _ => {
                    if table.len() >= MAX_ACTIVE_INCIDENTS {
                        return Err(IncidentError::TooMany {
                            limit: MAX_ACTIVE_INCIDENTS,
                        });
                    }
                    let incident = Incident {
                        id: self.next_id(now),
                        tenant: start.tenant.clone(),
                        reason: start.reason.clone(),
                        actor: actor.clone(),
                        trigger: start.trigger,
                        started: now,
                        expires: now + ttl,
                    };
                    (incident, IncidentEventKind::Started)
                }
            };
            self.store(&table, |t| {
                t.insert(
                    Box::from(incident.tenant.as_str()),
                    Arc::new(incident.clone()),
                );
            });
            follower.forget(&incident.tenant);
            self.write_file(&mut follower, |list| file::upsert(list, &incident));
            (incident, kind)
        };
        self.wake_worker();
        self.announce(kind, &incident, &actor);
        Ok(incident)
    }

    /// Stops the tenant's incident and returns it.
    ///
    /// # Errors
    ///
    /// [`IncidentError::InvalidTenant`], or [`IncidentError::NotActive`] when the tenant has
    /// no active incident.
    pub fn stop(&self, actor: &str, tenant: &str) -> Result<Incident, IncidentError> {
        check_tenant(tenant)?;
        let incident = {
            let mut follower = self.inner.writer.lock();
            let incident = self.remove_locked(tenant, SystemTime::now())?;
            follower.forget(tenant);
            self.write_file(&mut follower, |list| file::remove(list, tenant));
            incident
        };
        self.announce(
            IncidentEventKind::Stopped,
            &incident,
            cut_to(actor, MAX_ACTOR_LEN),
        );
        Ok(incident)
    }

    /// Every active incident, by tenant.
    pub fn status(&self) -> Vec<Incident> {
        let now = SystemTime::now();
        let mut list: Vec<Incident> = self
            .inner
            .table
            .load()
            .values()
            .filter(|i| !i.is_expired_at(now))
            .map(|i| Incident::clone(i))
            .collect();
        list.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        list
    }

    /// The tenant's active incident (lock-free; one load when no incident is active).
    pub fn active_for(&self, tenant: &str) -> Option<Arc<Incident>> {
        if !self.inner.any.load(Ordering::Acquire) || tenant.len() > MAX_TENANT_LEN {
            return None;
        }
        let incident = self.inner.table.load().get(tenant).cloned()?;
        (!incident.is_expired_at(SystemTime::now())).then_some(incident)
    }

    /// Whether the tenant is under an active incident.
    pub fn is_active(&self, tenant: &str) -> bool {
        self.active_for(tenant).is_some()
    }

    /// The error-rate trigger, when it is on (the server layer then reports each request's
    /// outcome through [`record_outcome`](Incidents::record_outcome)).
    pub fn error_rate_trigger(&self) -> Option<&ErrorRateTrigger> {
        self.inner
            .error_rates
            .as_ref()
            .map(triggers::ErrorRates::trigger)
    }

    /// Whether any incident is active (one load).
    pub fn any_active(&self) -> bool {
        self.inner.any.load(Ordering::Acquire)
    }

    /// The watched incident file, if one is configured.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    /// An escalation: starts (or extends) the tenant's incident with trigger
    /// [`IncidentTrigger::Escalation`] and the default expiry.
    ///
    /// # Errors
    ///
    /// As [`start`](Incidents::start).
    pub fn escalate(
        &self,
        actor: &str,
        tenant: &str,
        reason: &str,
    ) -> Result<Incident, IncidentError> {
        self.start(IncidentStart::new(tenant, reason, actor).trigger(IncidentTrigger::Escalation))
    }

    /// Reports that circuit breaker `breaker` opened while serving `tenant`: sets
    /// `stellaops_circuit_breaker_open{service,breaker}` to 1 and starts (or extends) the
    /// tenant's incident with trigger [`IncidentTrigger::CircuitBreaker`].
    ///
    /// # Errors
    ///
    /// [`IncidentError::InvalidField`] for a breaker name that is empty, longer than 64
    /// bytes or holds control characters, else as [`start`](Incidents::start).
    pub fn circuit_breaker_opened(
        &self,
        breaker: &str,
        tenant: &str,
    ) -> Result<Incident, IncidentError> {
        check_breaker(breaker)?;
        self.set_breaker(breaker, 1.0);
        self.start(
            IncidentStart::new(
                tenant,
                format!("circuit breaker `{breaker}` opened"),
                breaker,
            )
            .trigger(IncidentTrigger::CircuitBreaker),
        )
    }

    /// Reports that circuit breaker `breaker` closed: sets its gauge to 0. The incident it
    /// started runs until it expires or is stopped.
    ///
    /// # Errors
    ///
    /// [`IncidentError::InvalidField`] for a breaker name as refused by
    /// [`circuit_breaker_opened`](Incidents::circuit_breaker_opened).
    pub fn circuit_breaker_closed(&self, breaker: &str) -> Result<(), IncidentError> {
        check_breaker(breaker)?;
        self.set_breaker(breaker, 0.0);
        Ok(())
    }

    /// Counts one finished request of `tenant` for the error-rate trigger, which starts an
    /// incident when the tenant's error share over the rolling window reaches the threshold.
    /// One atomic load when the trigger is off (the default).
    pub fn record_outcome(&self, tenant: &str, error: bool) {
        let Some(rates) = &self.inner.error_rates else {
            return;
        };
        if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
            return;
        }
        if let Some(reason) = rates.record(tenant, error) {
            if self.is_active(tenant) {
                return;
            }
            let start = IncidentStart::new(tenant, reason, "error-rate-trigger")
                .ttl(rates.trigger().ttl)
                .trigger(IncidentTrigger::ErrorRate);
            let _ = self.start(start);
        }
    }

    /// Reads the incident file now (the background thread does so whenever it changes) and
    /// applies it: incidents listed and not expired become active, incidents that came from
    /// the file and are no longer listed stop.
    ///
    /// # Errors
    ///
    /// [`IncidentError::File`] or [`IncidentError::FileFormat`]; nothing changes then.
    pub fn reload_file(&self) -> Result<(), IncidentError> {
        let Some(path) = self.inner.file.clone() else {
            return Ok(());
        };
        let listed = match IncidentFile::read(&path) {
            Ok(listed) => listed,
            Err(e) => {
                self.inner
                    .writer
                    .lock()
                    .report_once(&e, || self.warn_file(&e));
                return Err(e);
            }
        };
        let events = {
            let mut follower = self.inner.writer.lock();
            follower.clear_report();
            self.apply_listed(&mut follower, listed)
        };
        for (kind, incident, actor) in events {
            self.announce(kind, &incident, actor);
        }
        self.wake_worker();
        Ok(())
    }

    /// Reloads the incident file when it changed since it was last read.
    fn poll_file(&self) {
        let Some(path) = &self.inner.file else {
            return;
        };
        let stamp = file::stamp(path);
        if self.inner.writer.lock().stamp == stamp {
            return;
        }
        if self.reload_file().is_ok() {
            self.inner.writer.lock().stamp = stamp;
        }
    }

    /// How many incidents started, were extended, stopped and expired since start.
    pub fn counts(&self) -> [(IncidentEventKind, u64); 4] {
        IncidentEventKind::ALL.map(|k| (k, self.inner.counts.0[k as usize].load(Ordering::Relaxed)))
    }

    /// Adds a notification hook, told of every change from now on (beside those given to
    /// [`TelemetryBuilder::incident_hook`](crate::TelemetryBuilder::incident_hook)). A hook
    /// that needs the built pipeline, a [`WebhookHook`](crate::WebhookHook) asking its
    /// egress policy for one, is added here.
    pub fn add_hook(&self, hook: Arc<dyn IncidentHook>) {
        self.inner.hooks.add(hook);
    }

    /// How many hook notifications were dropped because the hooks' queue was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.inner.hooks.dropped()
    }

    /// Stops the background threads (pipeline shutdown). Incidents stay readable.
    pub(crate) fn shutdown(&self) {
        self.inner.worker.stop();
        self.inner.hooks.stop();
    }

    /// Ends every incident whose expiry has passed, with an audit line each; returns the
    /// earliest expiry still ahead.
    fn sweep_expired(&self) -> Option<SystemTime> {
        let now = SystemTime::now();
        let table = self.inner.table.load_full();
        if table.values().any(|i| i.is_expired_at(now)) {
            let expired = {
                let mut follower = self.inner.writer.lock();
                let table = self.inner.table.load_full();
                let expired: Vec<Arc<Incident>> = table
                    .values()
                    .filter(|i| i.is_expired_at(now))
                    .cloned()
                    .collect();
                self.store(&table, |t| t.retain(|_, i| !i.is_expired_at(now)));
                for i in &expired {
                    follower.forget(&i.tenant);
                }
                if !expired.is_empty() {
                    self.write_file(&mut follower, |list| file::prune(list, now));
                }
                expired
            };
            for incident in expired {
                self.announce(IncidentEventKind::Expired, &incident, EXPIRY_ACTOR);
            }
        }
        self.inner.table.load().values().map(|i| i.expires).min()
    }

    /// Applies the file's list; returns the events to announce (outside the writer lock).
    fn apply_listed(
        &self,
        follower: &mut file::Follower,
        listed: Vec<Incident>,
    ) -> Vec<(IncidentEventKind, Incident, &'static str)> {
        let now = SystemTime::now();
        let listed: HashMap<String, Incident> = listed
            .into_iter()
            .filter(|i| !i.is_expired_at(now) && check_tenant(&i.tenant).is_ok())
            .map(|i| (i.tenant.clone(), i))
            .collect();
        let table = self.inner.table.load_full();
        let mut events = Vec::new();
        let mut next = HashMap::clone(&table);
        for (tenant, incident) in &listed {
            let same = next
                .get(tenant.as_str())
                .is_some_and(|current| **current == *incident);
            if same {
                continue;
            }
            if !next.contains_key(tenant.as_str()) && next.len() >= MAX_ACTIVE_INCIDENTS {
                continue;
            }
            let kind = match next.get(tenant.as_str()) {
                Some(current) if current.id == incident.id => IncidentEventKind::Extended,
                _ => IncidentEventKind::Started,
            };
            next.insert(Box::from(tenant.as_str()), Arc::new(incident.clone()));
            follower.remember(tenant);
            events.push((kind, incident.clone(), FILE_ACTOR));
        }
        let gone: Vec<Box<str>> = next
            .keys()
            .filter(|t| follower.came_from_file(t) && !listed.contains_key(&***t))
            .cloned()
            .collect();
        for tenant in gone {
            if let Some(incident) = next.remove(&tenant) {
                follower.forget(&tenant);
                events.push((
                    IncidentEventKind::Stopped,
                    Incident::clone(&incident),
                    FILE_ACTOR,
                ));
            }
        }
        if !events.is_empty() {
            self.store(&table, |t| *t = next);
        }
        events
    }

    /// Removes the tenant's incident under the writer lock.
    fn remove_locked(&self, tenant: &str, now: SystemTime) -> Result<Incident, IncidentError> {
        let table = self.inner.table.load_full();
        match table.get(tenant) {
            Some(incident) if !incident.is_expired_at(now) => {
                let incident = Incident::clone(incident);
                self.store(&table, |t| {
                    t.remove(tenant);
                });
                Ok(incident)
            }
            _ => Err(IncidentError::NotActive {
                tenant: shown(tenant),
            }),
        }
    }

    /// Stores the table `change` makes of a copy of `current` (writer lock held).
    fn store(
        &self,
        current: &HashMap<Box<str>, Arc<Incident>>,
        change: impl FnOnce(&mut HashMap<Box<str>, Arc<Incident>>),
    ) {
        let mut next = current.clone();
        change(&mut next);
        let any = !next.is_empty();
        self.inner.table.store(Arc::new(next));
        if self.inner.any.swap(any, Ordering::AcqRel) != any {
            self.inner.interest_stale.store(true, Ordering::Release);
        }
    }

    /// Rewrites the incident file (writer lock held), when one is configured. A failure is a
    /// warning: the change holds on this instance.
    fn write_file(&self, follower: &mut file::Follower, change: impl FnOnce(&mut Vec<Incident>)) {
        let Some(path) = &self.inner.file else {
            return;
        };
        if let Err(e) = IncidentFile::update(path, change) {
            follower.report_once(&e, || self.warn_file(&e));
        }
    }

    fn warn_file(&self, e: &IncidentError) {
        self.with_dispatch(|| {
            tracing::warn!(target: AUDIT_TARGET, error = %e, "incident file not applied");
        });
    }

    /// Counts, audits and notifies one applied change.
    fn announce(&self, kind: IncidentEventKind, incident: &Incident, actor: &str) {
        // The filters let debug events through while any incident is active: every
        // callsite's cached interest (and the global max level) must follow.
        if self.inner.interest_stale.swap(false, Ordering::AcqRel) {
            self.with_dispatch(tracing_core::callsite::rebuild_interest_cache);
        }
        let expires = humantime::format_rfc3339_millis(incident.expires).to_string();
        self.with_dispatch(|| {
            // The line's house `tenant` (and the log record's `tenant.id`) is the incident's.
            let _tenant = crate::RequestContext::new()
                .with_tenant(incident.tenant.as_str())
                .attach();
            tracing::info!(
                target: AUDIT_TARGET,
                control = "incident",
                outcome = kind.as_str(),
                incident_id = %incident.id,
                actor = %actor,
                reason = %incident.reason,
                trigger = incident.trigger.as_str(),
                expires = %expires,
                "telemetry incident {}",
                kind.as_str()
            );
        });
        let event = IncidentEvent {
            kind,
            incident: incident.clone(),
            actor: actor.to_owned(),
        };
        self.inner.hooks.notify(event, self.inner.dispatch.get());
        // Counted last: a change that is counted has been audited.
        self.inner.counts.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `f` inside the pipeline's dispatch (nothing before it is known or after it is gone).
    fn with_dispatch(&self, f: impl FnOnce()) {
        if let Some(dispatch) = self.inner.dispatch.get().and_then(WeakDispatch::upgrade) {
            tracing::dispatcher::with_default(&dispatch, f);
        }
    }

    fn set_breaker(&self, breaker: &str, value: f64) {
        if let Some((metrics, service)) = self.inner.breakers.get() {
            use crate::metrics::catalogue::{CircuitBreakerLabels, STELLAOPS_CIRCUIT_BREAKER_OPEN};
            metrics
                .gauge(&STELLAOPS_CIRCUIT_BREAKER_OPEN)
                .set(value, CircuitBreakerLabels { service, breaker });
        }
    }

    fn next_id(&self, now: SystemTime) -> String {
        let millis = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let sequence = self.inner.sequence.fetch_add(1, Ordering::Relaxed);
        let random = {
            use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
            RandomIdGenerator::default().new_span_id()
        };
        format!("inc-{millis:x}-{sequence:x}-{random}")
    }

    /// Starts the background thread if needed and has it look at the table again.
    fn wake_worker(&self) {
        self.inner.worker.wake(Arc::downgrade(&self.inner));
    }
}

/// Registers `stellaops_telemetry_incidents_total{outcome}` and
/// `stellaops_telemetry_incidents_active` on the pipeline's own meter.
pub(crate) fn register(meter_provider: &SdkMeterProvider, incidents: &Incidents) {
    let meter = meter_provider.meter("stellaops-telemetry");
    let counted = incidents.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_incidents_total")
        .with_description("Incident changes applied, by outcome")
        .with_callback(move |observer| {
            for (kind, count) in counted.counts() {
                observer.observe(count, &[KeyValue::new("outcome", kind.as_str())]);
            }
        })
        .build();
    let active = incidents.clone();
    let _ = meter
        .u64_observable_gauge("stellaops_telemetry_incidents_active")
        .with_description("Incidents active now")
        .with_callback(move |observer| observer.observe(active.status().len() as u64, &[]))
        .build();
}

/// Checks a tenant id: 1–128 bytes of `A-Z a-z 0-9 . _ - @ :`.
fn check_tenant(tenant: &str) -> Result<(), IncidentError> {
    let invalid = |reason| IncidentError::InvalidTenant {
        tenant: shown(tenant),
        reason,
    };
    if tenant.is_empty() {
        return Err(invalid("it is empty"));
    }
    if tenant.len() > MAX_TENANT_LEN {
        return Err(invalid("a tenant id is at most 128 bytes"));
    }
    if !tenant.bytes().all(tenant_byte) {
        return Err(invalid("a tenant id is made of A-Z a-z 0-9 . _ - @ :"));
    }
    Ok(())
}

/// Checks a free-text field: at most `limit` bytes, no control characters.
fn check_text(field: &'static str, value: &str, limit: usize) -> Result<(), IncidentError> {
    if value.len() > limit {
        return Err(IncidentError::InvalidField {
            field,
            reason: format!("at most {limit} bytes (got {})", value.len()),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(IncidentError::InvalidField {
            field,
            reason: "control characters are not allowed".to_owned(),
        });
    }
    Ok(())
}

/// Checks a circuit breaker name (a metric label value): 1–64 bytes, no control characters.
fn check_breaker(breaker: &str) -> Result<(), IncidentError> {
    if breaker.is_empty() {
        return Err(IncidentError::InvalidField {
            field: "breaker",
            reason: "it is empty".to_owned(),
        });
    }
    check_text("breaker", breaker, 64)
}

/// `t` without its sub-millisecond part.
fn whole_millis(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_millis(d.as_millis() as u64),
        Err(_) => t,
    }
}

/// Parses a TTL as the API and the command line take it: `30m`, `2h`, `90s`, `1h 30m`
/// (at most 32 characters), from 1 ms to 24 h.
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_core::parse_incident_ttl;
///
/// assert_eq!(parse_incident_ttl("30m")?, Duration::from_secs(1800));
/// assert!(parse_incident_ttl("25h").is_err());
/// assert!(parse_incident_ttl("soon").is_err());
/// # Ok::<(), stellaops_telemetry_core::IncidentError>(())
/// ```
///
/// # Errors
///
/// [`IncidentError::InvalidTtl`] naming the text.
pub fn parse_incident_ttl(text: &str) -> Result<Duration, IncidentError> {
    let invalid = || IncidentError::InvalidTtl { ttl: shown(text) };
    if text.len() > 32 {
        return Err(invalid());
    }
    let ttl = humantime::parse_duration(text.trim()).map_err(|_| invalid())?;
    if ttl.is_zero() || ttl > MAX_INCIDENT_TTL {
        return Err(invalid());
    }
    Ok(ttl)
}

/// RFC 3339 (UTC, milliseconds) for incident times.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.len() > 64 {
            return Err(serde::de::Error::custom("a time is at most 64 characters"));
        }
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}
