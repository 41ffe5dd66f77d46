//! In-memory exporters and JSON log capture for tests (feature `testing`).
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::Telemetry;
//! use stellaops_telemetry_core::testing::TestExporters;
//!
//! let exporters = TestExporters::new();
//! let telemetry = Telemetry::builder("test")
//!     .exporters(&[])
//!     .stdout_logs(false)
//!     .test_exporters(&exporters)
//!     .build()?;
//! tracing::dispatcher::with_default(telemetry.dispatch(), || {
//!     tracing::info_span!("scan.image").in_scope(|| tracing::info!(findings = 3, "scanned"));
//! });
//! telemetry.shutdown();
//! assert_eq!(exporters.finished_spans().len(), 1);
//! assert_eq!(exporters.json_logs().json()[0]["findings"], 3);
//! # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
//! ```
//!
//! Pipelines built with [`TelemetryBuilder::build`](crate::TelemetryBuilder::build) touch no
//! global, so tests using them run in parallel without seeing each other's data.

use std::sync::Arc;

use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

pub use crate::logs::LogCapture;

/// In-memory span, log-record and metric exporters plus a JSON log capture, shared by clones.
#[derive(Debug, Clone)]
pub struct TestExporters {
    pub(crate) spans: InMemorySpanExporter,
    pub(crate) logs: InMemoryLogExporter,
    pub(crate) metrics: InMemoryMetricExporter,
    pub(crate) json_logs: LogCapture,
    /// Whether exported spans are kept (see [`TestExporters::discarding_spans`]).
    pub(crate) keep_spans: bool,
    /// The gate span exports wait on (see [`TestExporters::stalled_spans`]).
    span_gate: Option<Gate>,
}

/// A gate span exports wait on until it opens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate(Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>);

impl Gate {
    /// Blocks the calling (export worker) thread until the gate opens.
    pub(crate) fn wait(&self) {
        let mut open = self.0.0.lock();
        while !*open {
            self.0.1.wait(&mut open);
        }
    }

    fn open(&self) {
        *self.0.0.lock() = true;
        self.0.1.notify_all();
    }
}

impl Default for TestExporters {
    fn default() -> Self {
        Self::new()
    }
}

impl TestExporters {
    /// Empty exporters.
    pub fn new() -> Self {
        TestExporters {
            spans: InMemorySpanExporter::default(),
            logs: InMemoryLogExporter::default(),
            metrics: InMemoryMetricExporter::default(),
            json_logs: LogCapture::new(),
            keep_spans: true,
            span_gate: None,
        }
    }

    /// Exporters whose span exporter blocks every export until
    /// [`release_spans`](Self::release_spans) is called: the span worker stalls in its first
    /// export, as it would behind a collector that accepts connections and never answers, so
    /// records pile up in the pipeline's queue. Release before shutting the pipeline down, or
    /// the shutdown waits for its deadline.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use stellaops_telemetry_core::Telemetry;
    /// use stellaops_telemetry_core::testing::TestExporters;
    ///
    /// let exporters = TestExporters::stalled_spans();
    /// let telemetry = Telemetry::builder("test")
    ///     .exporters(&[])
    ///     .stdout_logs(false)
    ///     .test_exporters(&exporters)
    ///     .build()?;
    /// tracing::dispatcher::with_default(telemetry.dispatch(), || {
    ///     tracing::info_span!("scan.image").in_scope(|| {});
    /// });
    /// assert_eq!(telemetry.stats().spans.queue_depth, 1);
    /// exporters.release_spans();
    /// telemetry.flush(Duration::from_secs(10))?;
    /// assert_eq!(telemetry.stats().spans.queue_depth, 0);
    /// # telemetry.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stalled_spans() -> Self {
        TestExporters {
            span_gate: Some(Gate::default()),
            ..Self::new()
        }
    }

    /// Lets the span exports of [`stalled_spans`](Self::stalled_spans) exporters through, the
    /// blocked one and every later one. Does nothing for other exporters.
    pub fn release_spans(&self) {
        if let Some(gate) = &self.span_gate {
            gate.open();
        }
    }

    /// The span target a pipeline built with these exporters fans out to.
    pub(crate) fn span_target(&self) -> crate::export::SpanTarget {
        use crate::export::SpanTarget;
        match (&self.span_gate, self.keep_spans) {
            (Some(gate), _) => SpanTarget::Stalled(gate.clone(), self.spans.clone()),
            (None, true) => SpanTarget::Memory(self.spans.clone()),
            (None, false) => SpanTarget::Discard,
        }
    }

    /// Exporters whose span exporter keeps nothing: spans still go all the way through the
    /// pipeline (queue, redaction, export, the exported count in
    /// [`Telemetry::stats`](crate::Telemetry::stats)) and are dropped on the export worker.
    /// For load tests and benchmarks, whose memory then stays flat; `finished_spans` stays
    /// empty.
    pub fn discarding_spans() -> Self {
        TestExporters {
            keep_spans: false,
            ..Self::new()
        }
    }

    /// Every span exported so far.
    pub fn finished_spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap_or_default()
    }

    /// Every OpenTelemetry log record exported so far.
    pub fn log_records(&self) -> Vec<SdkLogRecord> {
        self.logs
            .get_emitted_logs()
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.record)
            .collect()
    }

    /// Every metric collection exported so far.
    pub fn metrics(&self) -> Vec<ResourceMetrics> {
        self.metrics.get_finished_metrics().unwrap_or_default()
    }

    /// The captured house JSON log lines.
    pub fn json_logs(&self) -> &LogCapture {
        &self.json_logs
    }

    /// Forgets the spans, log records and metric collections exported so far (long-running
    /// benchmarks keep memory bounded this way).
    pub fn clear(&self) {
        self.spans.reset();
        self.logs.reset();
        self.metrics.reset();
    }
}
