//! The error-rate trigger: per tenant, the share of failed requests over a rolling window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The rolling window is kept as this many buckets.
const BUCKETS: usize = 10;

/// The most tenants followed at once; requests of further tenants are not counted (and the
/// requests left out are counted) until windows fall idle.
pub const MAX_TRIGGER_TENANTS: usize = 10_000;

/// Starts an incident for a tenant whose error share reaches `threshold` over `window`, once
/// at least `min_requests` of its requests finished in that window. Off unless configured.
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_core::ErrorRateTrigger;
///
/// let trigger = ErrorRateTrigger { threshold: 0.25, ..ErrorRateTrigger::default() };
/// assert_eq!(trigger.window, Duration::from_secs(60));
/// assert_eq!(trigger.min_requests, 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorRateTrigger {
    /// The error share (0.0–1.0] that starts an incident. Default 0.5.
    pub threshold: f64,
    /// The rolling window. Default 60 s.
    pub window: Duration,
    /// The fewest requests in the window before the share counts. Default 20.
    pub min_requests: u64,
    /// How long the incident it starts lasts. Default 60 minutes.
    pub ttl: Duration,
}

impl Default for ErrorRateTrigger {
    fn default() -> Self {
        ErrorRateTrigger {
            threshold: 0.5,
            window: Duration::from_secs(60),
            min_requests: 20,
            ttl: super::DEFAULT_INCIDENT_TTL,
        }
    }
}

/// One tenant's window: requests and errors per bucket, each bucket tagged with its epoch.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    buckets: [(u64, u32, u32); BUCKETS],
    newest: u64,
}

impl Window {
    /// Counts one request in bucket `epoch`; returns the totals over the window.
    fn record(&mut self, epoch: u64, error: bool) -> (u64, u64) {
        let slot = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if slot.0 != epoch {
            *slot = (epoch, 0, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.2 = slot.2.saturating_add(u32::from(error));
        self.newest = self.newest.max(epoch);
        let oldest = epoch.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.0 >= oldest && b.0 <= epoch)
            .fold((0, 0), |(t, e), b| (t + u64::from(b.1), e + u64::from(b.2)))
    }
}

/// The trigger's per-tenant windows.
pub(super) struct ErrorRates {
    trigger: ErrorRateTrigger,
    start: Instant,
    bucket_nanos: u64,
    windows: Mutex<State>,
    /// Requests not counted because the tenant table was full.
    pub(super) uncounted: AtomicU64,
}

#[derive(Default)]
struct State {
    windows: HashMap<Box<str>, Window>,
    /// The epoch of the last sweep of idle windows, plus one (0: never swept); at most one
    /// sweep per bucket.
    swept: u64,
}

impl ErrorRates {
    pub(super) fn new(trigger: ErrorRateTrigger) -> ErrorRates {
        let bucket = trigger.window.as_nanos() / BUCKETS as u128;
        ErrorRates {
            trigger,
            start: Instant::now(),
            bucket_nanos: u64::try_from(bucket).unwrap_or(u64::MAX).max(1),
            windows: Mutex::new(State::default()),
            uncounted: AtomicU64::new(0),
        }
    }

    pub(super) fn trigger(&self) -> &ErrorRateTrigger {
        &self.trigger
    }

    /// Counts one request; returns the reason of a new incident when the threshold is reached.
    pub(super) fn record(&self, tenant: &str, error: bool) -> Option<String> {
        // Checked on every request: the share may cross the threshold on a success too (the
        // window moved on).
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let epoch = elapsed / self.bucket_nanos;
        let (total, errors) = {
            let mut state = self.windows.lock();
            if !state.windows.contains_key(tenant) && state.windows.len() >= MAX_TRIGGER_TENANTS {
                state.sweep_idle(epoch);
                if state.windows.len() >= MAX_TRIGGER_TENANTS {
                    self.uncounted.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
            let window = state.windows.entry(Box::from(tenant)).or_default();
            window.record(epoch, error)
        };
        if total < self.trigger.min_requests.max(1) {
            return None;
        }
        let share = errors as f64 / total as f64;
        (share >= self.trigger.threshold).then(|| {
            format!(
                "error rate {:.1} % over {} requests in {} s reached the {:.1} % threshold",
                share * 100.0,
                total,
                self.trigger.window.as_secs(),
                self.trigger.threshold * 100.0
            )
        })
    }
}

impl State {
    /// Removes the windows with no request in the last window, at most once per bucket.
    fn sweep_idle(&mut self, epoch: u64) {
        if self.swept == epoch.saturating_add(1) {
            return;
        }
        self.swept = epoch.saturating_add(1);
        let oldest = epoch.saturating_sub(BUCKETS as u64 - 1);
        self.windows.retain(|_, w| w.newest >= oldest);
    }
}
