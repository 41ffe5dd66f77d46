//! Self-observation counters owned by a pipeline: what was exported, dropped or failed.
//!
//! Every loss on the road is counted here; later issues expose these counters as SDK
//! self-metrics. Counters are plain atomics so the request path never takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Counters for one signal (spans, log records, metric data points or JSON log lines).
#[derive(Debug, Default)]
pub struct SignalStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    export_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_error_report: AtomicU64,
}

impl SignalStats {
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
        SignalSnapshot {
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            export_failures: self.export_failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
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
}

/// All counters of one pipeline.
#[derive(Debug, Default)]
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
            truncated: crate::limits::TruncationCounts::default(),
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
    /// Values cut to the pipeline's value limits, per kind.
    pub truncated: crate::limits::TruncationCounts,
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
