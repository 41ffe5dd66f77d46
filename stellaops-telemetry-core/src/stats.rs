//! Self-observation counters owned by a pipeline: what was exported, dropped or failed, and
//! what is still queued.
//!
//! Every loss on the road is counted here, and exported as the SDK's self-metrics. Counters
//! are plain atomics so the request path never takes a lock.
//!
//! # Backlog
//!
//! Each queue (the span and log-record processors, each JSON log output) keeps a backlog:
//! the records it accepted and has not yet exported or dropped, their estimated bytes, and a
//! lower bound of when the oldest of them was accepted. The age derived from it never
//! understates: it is measured from a moment at or before the oldest record's acceptance.
//! How much it may overstate depends on the queue and is documented where the queue keeps it
//! (the batch processors: by at most the arrival of the 64 records before the oldest or one
//! pass of their worker; the JSON log outputs: not at all).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// What one queue holds: records accepted and not yet exported or dropped, their estimated
/// bytes, and when the oldest of them was accepted (see the module docs).
///
/// Times are nanoseconds since the backlog was created, plus one, so that 0 means "never".
#[derive(Debug)]
pub(crate) struct Backlog {
    epoch: Instant,
    /// The queue's byte limit, reported beside what it holds.
    limit: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    /// When the backlog last grew from empty: the producer that made it non-empty reads the
    /// clock, so every record still queued was accepted at or after this.
    began: AtomicU64,
    /// A lower bound of when the oldest queued record was accepted, kept by the consumer as
    /// it takes records and finishes with them.
    head: AtomicU64,
    /// The bytes held by every queue sharing one byte bound with this one (the span and
    /// log-record queues), when it shares one.
    pool: Option<Arc<AtomicU64>>,
}

impl Backlog {
    fn new(limit: u64, pool: Option<Arc<AtomicU64>>) -> Self {
        Backlog {
            epoch: Instant::now(),
            limit: AtomicU64::new(limit),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            began: AtomicU64::new(0),
            head: AtomicU64::new(0),
            pool,
        }
    }

    /// Changes the byte limit reported for the queue.
    pub(crate) fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The current time on this backlog's scale (never 0).
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// The records accepted and not yet exported or dropped. Whoever takes records out of it
    /// counts them, exactly once (see [`Backlog::claim`]).
    pub(crate) fn records(&self) -> &AtomicU64 {
        &self.records
    }

    /// Takes `n` records out of the count; `false` when someone else already did (a shutdown
    /// that passed its deadline counts whatever is left as dropped).
    pub(crate) fn claim(&self, n: u64) -> bool {
        self.records
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(n))
            .is_ok()
    }

    /// Adds `n` bytes; returns the total held afterwards.
    /// With a shared bound, the total is what every sharing queue holds.
    pub(crate) fn add_bytes(&self, n: u64) -> u64 {
        let own = self.bytes.fetch_add(n, Ordering::AcqRel).saturating_add(n);
        match &self.pool {
            Some(pool) => pool.fetch_add(n, Ordering::AcqRel).saturating_add(n),
            None => own,
        }
    }

    /// Releases `n` bytes.
    pub(crate) fn sub_bytes(&self, n: u64) {
        // Never below zero, even if a caller released more than it added.
        let released = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(n))
            })
            .map_or(0, |before| before.min(n));
        if let Some(pool) = &self.pool {
            let _ = pool.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(released))
            });
        }
    }

    /// The backlog grew from empty at `at`.
    pub(crate) fn began(&self, at: u64) {
        self.began.store(at, Ordering::Release);
    }

    /// The oldest queued record was accepted at or after `at`.
    pub(crate) fn set_head(&self, at: u64) {
        self.head.store(at, Ordering::Release);
    }

    /// Records, bytes and the age of the oldest record (`None` when nothing is queued).
    fn read(&self) -> (u64, u64, Option<Duration>) {
        let records = self.records.load(Ordering::Acquire);
        let bytes = self.bytes.load(Ordering::Acquire);
        if records == 0 {
            return (0, bytes, None);
        }
        let since = self
            .began
            .load(Ordering::Acquire)
            .max(self.head.load(Ordering::Acquire));
        let age = (since > 0).then(|| Duration::from_nanos(self.now().saturating_sub(since)));
        (records, bytes, age)
    }
}

/// Counters for one signal (spans, log records, metric data points or JSON log lines).
#[derive(Debug, Default)]
pub struct SignalStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    export_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_error_report: AtomicU64,
    /// The queues of this signal (two JSON log outputs share the `log_lines` counters).
    backlogs: Mutex<Vec<Weak<Backlog>>>,
    /// The byte bound this signal's queues share with another signal's, if any.
    pool: Option<Arc<AtomicU64>>,
}

impl SignalStats {
    /// A new queue's backlog, counted in this signal's snapshots while the queue lives.
    pub(crate) fn backlog(&self, limit_bytes: u64) -> Arc<Backlog> {
        let backlog = Arc::new(Backlog::new(limit_bytes, self.pool.clone()));
        let mut backlogs = self.backlogs.lock();
        backlogs.retain(|b| b.strong_count() > 0);
        backlogs.push(Arc::downgrade(&backlog));
        backlog
    }

    /// Counts `n` items handed to an exporter successfully.
    pub fn record_exported(&self, n: u64) {
        self.exported.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` items dropped (full queue, failed export, shutdown deadline).
    pub fn record_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one failed export and remembers its error.
    ///
    /// Returns `true` when the caller should report the failure now: at most once per
    /// `interval`, so a dead collector cannot flood the service's own logs.
    pub fn record_failure(&self, error: impl Into<String>, interval: Duration) -> bool {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error.into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let last = self.last_error_report.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= interval.as_millis() as u64;
        due && self
            .last_error_report
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// A point-in-time copy of these counters.
    pub fn snapshot(&self) -> SignalSnapshot {
        let mut snapshot = SignalSnapshot {
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            export_failures: self.export_failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
            ..SignalSnapshot::default()
        };
        for backlog in self.backlogs.lock().iter().filter_map(Weak::upgrade) {
            let (records, bytes, age) = backlog.read();
            snapshot.queue_depth += records;
            snapshot.queue_bytes += bytes;
            let limit = backlog.limit.load(Ordering::Relaxed);
            snapshot.queue_capacity_bytes += limit;
            if limit > 0 {
                let permille = u128::from(bytes) * 1000 / u128::from(limit);
                snapshot.queue_fullest_permille = snapshot
                    .queue_fullest_permille
                    .max(u32::try_from(permille).unwrap_or(u32::MAX));
            }
            snapshot.queue_oldest_age = snapshot.queue_oldest_age.max(age);
        }
        snapshot
    }
}

/// A copy of one signal's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalSnapshot {
    /// Items accepted by every exporter of the signal.
    pub exported: u64,
    /// Items lost: queue full, export failed or timed out, shutdown deadline passed.
    pub dropped: u64,
    /// Export calls that returned an error or timed out.
    pub export_failures: u64,
    /// The most recent export error, if any.
    pub last_error: Option<String>,
    /// Records accepted and not yet exported or dropped (every queue of the signal).
    pub queue_depth: u64,
    /// Their estimated size in bytes: what a record holds in memory (its fixed size plus its
    /// names, attribute keys and texts, events and links; a JSON line's length).
    pub queue_bytes: u64,
    /// The byte limit of the signal's queues, summed (0 when the signal has no queue).
    pub queue_capacity_bytes: u64,
    /// How long ago the oldest of them was accepted, `None` when nothing is queued. Never
    /// less than the true age; see the module docs for how much more it can be.
    pub queue_oldest_age: Option<Duration>,
    /// The fullest of the signal's queues, in thousandths of its byte limit (one stuck
    /// output among several shows here even when the sums look comfortable).
    pub queue_fullest_permille: u32,
}

/// All counters of one pipeline. The span and log-record queues share one byte bound.
#[derive(Debug)]
pub struct PipelineStats {
    /// Spans.
    pub spans: Arc<SignalStats>,
    /// OpenTelemetry log records (the OTLP log road).
    pub logs: Arc<SignalStats>,
    /// Metric data points (each collection exports every point again: cumulative).
    pub metrics: Arc<SignalStats>,
    /// House JSON log lines (stdout and file outputs).
    pub log_lines: Arc<SignalStats>,
    /// Exporters the egress policy refused (each replaced by the file exporter).
    pub egress_refusals: AtomicU64,
    /// File segments deleted because their last item was older than the retention.
    pub file_segments_removed: Arc<AtomicU64>,
    /// Records the OTLP exporters delivered per tenant, and tenant values they refused.
    pub(crate) tenants: Arc<crate::export::TenantCounts>,
}

impl Default for PipelineStats {
    fn default() -> Self {
        let pool = Arc::new(AtomicU64::new(0));
        let sharing = |pool: &Arc<AtomicU64>| {
            Arc::new(SignalStats {
                pool: Some(pool.clone()),
                ..SignalStats::default()
            })
        };
        PipelineStats {
            spans: sharing(&pool),
            logs: sharing(&pool),
            metrics: Arc::default(),
            log_lines: Arc::default(),
            egress_refusals: AtomicU64::new(0),
            file_segments_removed: Arc::default(),
            tenants: Arc::default(),
        }
    }
}

impl PipelineStats {
    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            spans: self.spans.snapshot(),
            logs: self.logs.snapshot(),
            metrics: self.metrics.snapshot(),
            log_lines: self.log_lines.snapshot(),
            egress_refusals: self.egress_refusals.load(Ordering::Relaxed),
            file_segments_removed: self.file_segments_removed.load(Ordering::Relaxed),
            truncated: crate::limits::TruncationCounts::default(),
            tail_sampling: crate::export::TailSamplingSnapshot::default(),
        }
    }
}

/// A copy of every counter of a pipeline, from [`Telemetry::stats`](crate::Telemetry::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Spans.
    pub spans: SignalSnapshot,
    /// OpenTelemetry log records.
    pub logs: SignalSnapshot,
    /// Metric data points.
    pub metrics: SignalSnapshot,
    /// House JSON log lines.
    pub log_lines: SignalSnapshot,
    /// Exporters the egress policy refused.
    pub egress_refusals: u64,
    /// File segments (every signal) deleted because their last item was older than the
    /// profile's retention.
    pub file_segments_removed: u64,
    /// Values cut to the pipeline's value limits, per kind.
    pub truncated: crate::limits::TruncationCounts,
    /// The SDK's tail sampler: traces decided per policy, decided early, spans kept and
    /// sampled out, and what it holds (all 0 where the collector samples).
    pub tail_sampling: crate::export::TailSamplingSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_reported_at_most_once_per_interval() {
        let stats = SignalStats::default();
        assert!(stats.record_failure("first", Duration::from_secs(60)));
        assert!(!stats.record_failure("second", Duration::from_secs(60)));
        let snap = stats.snapshot();
        assert_eq!(snap.export_failures, 2);
        assert_eq!(snap.last_error.as_deref(), Some("second"));
    }
}
