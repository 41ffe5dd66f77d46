//! The exporters a pipeline can fan a signal out to, as closed enums.
//!
//! The SDK's exporter traits return `impl Future`, so they cannot be boxed; an enum keeps the
//! set explicit and lets the batch processor bound every export the same way.

#[cfg(feature = "_otlp")]
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

#[cfg(feature = "file")]
use super::file::{FileLogExporter, FileMetricExporter, FileSpanExporter};
#[cfg(feature = "_otlp")]
use super::tenant::{Tenancy, log_tenant, point_tenant, span_tenant, valid_tenant};
#[cfg(feature = "_otlp")]
use super::tenant_metrics::{MetricTransport, send_split, split_request};
#[cfg(feature = "_otlp")]
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

/// Runs an export future to completion on the calling (worker) thread, bounded by `timeout`.
///
/// gRPC exporters need the pipeline's export runtime (tonic's channel lives there); the others
/// are synchronous or carry their own client timeout and run without a runtime context, so a
/// blocking HTTP client never finds itself inside one.
pub(crate) fn run_bounded<F>(
    runtime: Option<&tokio::runtime::Handle>,
    timeout: Duration,
    future: F,
) -> OTelSdkResult
where
    F: std::future::Future<Output = OTelSdkResult>,
{
    match runtime {
        Some(handle) => {
            match handle.block_on(async { tokio::time::timeout(timeout, future).await }) {
                Ok(result) => result,
                Err(_) => Err(OTelSdkError::Timeout(timeout)),
            }
        }
        None => futures_executor::block_on(future),
    }
}

/// A span exporter the pipeline can build.
#[derive(Debug)]
pub(crate) enum SpanTarget {
    /// The exporter, whether it speaks gRPC, and how it names tenants.
    #[cfg(feature = "_otlp")]
    Otlp(opentelemetry_otlp::SpanExporter, bool, Tenancy),
    #[cfg(feature = "file")]
    File(FileSpanExporter),
    Stdout(opentelemetry_stdout::SpanExporter),
    #[cfg(feature = "testing")]
    Memory(opentelemetry_sdk::trace::InMemorySpanExporter),
    /// Accepts every batch and keeps nothing (`TestExporters::discarding_spans`).
    #[cfg(feature = "testing")]
    Discard,
    /// Waits for the gate, then keeps the batch (`TestExporters::stalled_spans`).
    #[cfg(feature = "testing")]
    Stalled(
        crate::testing::Gate,
        opentelemetry_sdk::trace::InMemorySpanExporter,
    ),
}

impl SpanTarget {
    /// Whether exports must run inside the export runtime (gRPC).
    pub(crate) fn needs_runtime(&self) -> bool {
        match self {
            #[cfg(feature = "_otlp")]
            SpanTarget::Otlp(_, grpc, _) => *grpc,
            _ => false,
        }
    }

    /// Exports `batch`; an OTLP target sends one request per tenant, all of them within
    /// `timeout`, and adds the spans of each request delivered to `delivered` as it goes (on
    /// an error, the others were lost).
    pub(crate) async fn export(
        &self,
        batch: Vec<SpanData>,
        timeout: Duration,
        delivered: &AtomicU64,
    ) -> OTelSdkResult {
        #[cfg(not(feature = "_otlp"))]
        let _ = (timeout, delivered);
        match self {
            #[cfg(feature = "_otlp")]
            SpanTarget::Otlp(e, _, tenancy) => {
                let shares = tenancy.split(batch, |span| span_tenant(&span.attributes));
                tenancy
                    .send_each(shares, timeout, delivered, |share| e.export(share))
                    .await
            }
            #[cfg(feature = "file")]
            SpanTarget::File(e) => e.export(batch).await,
            SpanTarget::Stdout(e) => e.export(batch).await,
            #[cfg(feature = "testing")]
            SpanTarget::Memory(e) => e.export(batch).await,
            #[cfg(feature = "testing")]
            SpanTarget::Discard => {
                drop(batch);
                Ok(())
            }
            #[cfg(feature = "testing")]
            SpanTarget::Stalled(gate, e) => {
                // Blocks the export worker, which runs this future on its own thread.
                gate.wait();
                e.export(batch).await
            }
        }
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        match self {
            #[cfg(feature = "_otlp")]
            SpanTarget::Otlp(e, ..) => e.set_resource(resource),
            #[cfg(feature = "file")]
            SpanTarget::File(e) => e.set_resource(resource),
            SpanTarget::Stdout(e) => e.set_resource(resource),
            #[cfg(feature = "testing")]
            SpanTarget::Memory(e) | SpanTarget::Stalled(_, e) => e.set_resource(resource),
            #[cfg(feature = "testing")]
            SpanTarget::Discard => {}
        }
    }

    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            #[cfg(feature = "_otlp")]
            SpanTarget::Otlp(e, ..) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "file")]
            SpanTarget::File(e) => e.shutdown_with_timeout(timeout),
            SpanTarget::Stdout(e) => e.shutdown_with_timeout(timeout),
            // The in-memory exporter's shutdown clears what tests want to read.
            #[cfg(feature = "testing")]
            SpanTarget::Memory(_) | SpanTarget::Discard | SpanTarget::Stalled(..) => Ok(()),
        }
    }
}

/// A log-record exporter the pipeline can build.
#[derive(Debug)]
pub(crate) enum LogTarget {
    /// The exporter, whether it speaks gRPC, and how it names tenants.
    #[cfg(feature = "_otlp")]
    Otlp(opentelemetry_otlp::LogExporter, bool, Tenancy),
    #[cfg(feature = "file")]
    File(FileLogExporter),
    Stdout(opentelemetry_stdout::LogExporter),
    #[cfg(feature = "testing")]
    Memory(opentelemetry_sdk::logs::InMemoryLogExporter),
}

impl LogTarget {
    pub(crate) fn needs_runtime(&self) -> bool {
        match self {
            #[cfg(feature = "_otlp")]
            LogTarget::Otlp(_, grpc, _) => *grpc,
            _ => false,
        }
    }

    /// Exports `records`; an OTLP target sends one request per tenant, all of them within
    /// `timeout`, and adds the records of each request delivered to `delivered` as it goes
    /// (on an error, the others were lost).
    pub(crate) async fn export(
        &self,
        records: &[(SdkLogRecord, InstrumentationScope)],
        timeout: Duration,
        delivered: &AtomicU64,
    ) -> OTelSdkResult {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|(r, s)| (r, s)).collect();
        #[cfg(not(feature = "_otlp"))]
        let _ = (timeout, delivered);
        match self {
            #[cfg(feature = "_otlp")]
            LogTarget::Otlp(e, _, tenancy) => {
                let shares = tenancy.split(refs, |(record, _)| log_tenant(record));
                tenancy
                    .send_each(shares, timeout, delivered, |share| async move {
                        e.export(LogBatch::new(&share)).await
                    })
                    .await
            }
            #[cfg(feature = "file")]
            LogTarget::File(e) => e.export(LogBatch::new(&refs)).await,
            LogTarget::Stdout(e) => e.export(LogBatch::new(&refs)).await,
            #[cfg(feature = "testing")]
            LogTarget::Memory(e) => e.export(LogBatch::new(&refs)).await,
        }
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        match self {
            #[cfg(feature = "_otlp")]
            LogTarget::Otlp(e, ..) => e.set_resource(resource),
            #[cfg(feature = "file")]
            LogTarget::File(e) => e.set_resource(resource),
            LogTarget::Stdout(e) => e.set_resource(resource),
            #[cfg(feature = "testing")]
            LogTarget::Memory(e) => e.set_resource(resource),
        }
    }

    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            #[cfg(feature = "_otlp")]
            LogTarget::Otlp(e, ..) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "file")]
            LogTarget::File(e) => e.shutdown_with_timeout(timeout),
            LogTarget::Stdout(e) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "testing")]
            LogTarget::Memory(_) => Ok(()),
        }
    }
}

/// A metric exporter the pipeline can build, wrapped so every export is bounded and counted.
#[cfg_attr(not(feature = "_otlp"), allow(dead_code))]
pub(crate) struct MetricTarget {
    pub(crate) kind: MetricKind,
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    pub(crate) timeout: Duration,
    pub(crate) stats: std::sync::Arc<crate::stats::PipelineStats>,
    pub(crate) report_interval: Duration,
}

pub(crate) enum MetricKind {
    /// The exporter, how it names tenants, and the transport of collections split by tenant.
    #[cfg(feature = "_otlp")]
    Otlp(
        opentelemetry_otlp::MetricExporter,
        Tenancy,
        Box<MetricTransport>,
    ),
    #[cfg(feature = "file")]
    File(FileMetricExporter),
    Stdout(opentelemetry_stdout::MetricExporter),
    #[cfg(feature = "testing")]
    Memory(opentelemetry_sdk::metrics::InMemoryMetricExporter),
}

impl std::fmt::Debug for MetricTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.kind {
            #[cfg(feature = "_otlp")]
            MetricKind::Otlp(..) => "otlp",
            #[cfg(feature = "file")]
            MetricKind::File(_) => "file",
            MetricKind::Stdout(_) => "stdout",
            #[cfg(feature = "testing")]
            MetricKind::Memory(_) => "memory",
        };
        f.debug_struct("MetricTarget").field("kind", &name).finish()
    }
}

impl MetricTarget {
    /// Exports `metrics` through the OTLP exporter: a collection of one tenant goes whole
    /// under its header, one of several tenants is split into one request per tenant.
    /// Returns the result with the data points delivered and not delivered.
    #[cfg(feature = "_otlp")]
    async fn export_otlp(
        &self,
        exporter: &opentelemetry_otlp::MetricExporter,
        tenancy: &Tenancy,
        transport: &MetricTransport,
        metrics: &ResourceMetrics,
    ) -> (OTelSdkResult, u64, u64) {
        let tenants = collection_tenant(tenancy, metrics);
        let total: u64 = tenants.iter().map(|(_, n)| n).sum();
        if tenants.len() > 1 {
            let requests = split_request(ExportMetricsServiceRequest::from(metrics), tenancy);
            let send = send_split(transport, tenancy, requests, self.timeout);
            // Each request is bounded by the transport's timeout, and none starts after the
            // first one's timeout, so every point ends up counted as delivered or failed.
            let outcome = match &self.runtime {
                Some(handle) => handle.block_on(send),
                None => send.await,
            };
            return (outcome.result, outcome.exported, outcome.failed);
        }
        let header = tenants.first().and_then(|(header, _)| header.clone());
        let export = tenancy.send_as(header.clone(), exporter.export(metrics));
        let result = match &self.runtime {
            Some(handle) => run_bounded(Some(handle), self.timeout, export),
            None => export.await,
        };
        if result.is_ok() {
            tenancy
                .counts
                .record_exported(tenancy.signal, header.as_ref(), total);
            (result, total, 0)
        } else {
            (result, 0, total)
        }
    }
}

impl PushMetricExporter for MetricTarget {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        // The periodic reader already polls this inside `futures_executor::block_on`: only the
        // gRPC exporter hops onto the export runtime (tokio's `block_on` does not nest with the
        // futures executor's); the others are awaited in place.
        let (result, exported, dropped) = match &self.kind {
            #[cfg(feature = "_otlp")]
            MetricKind::Otlp(e, tenancy, transport) => {
                self.export_otlp(e, tenancy, transport, metrics).await
            }
            other => {
                let result = match other {
                    // Exported above.
                    #[cfg(feature = "_otlp")]
                    MetricKind::Otlp(..) => Ok(()),
                    #[cfg(feature = "file")]
                    MetricKind::File(e) => e.export(metrics).await,
                    MetricKind::Stdout(e) => e.export(metrics).await,
                    #[cfg(feature = "testing")]
                    MetricKind::Memory(e) => e.export(metrics).await,
                };
                let points = data_points(metrics);
                match result {
                    Ok(()) => (result, points, 0),
                    Err(_) => (result, 0, points),
                }
            }
        };
        self.stats.metrics.record_exported(exported);
        self.stats.metrics.record_dropped(dropped);
        if let Err(error) = &result
            && self
                .stats
                .metrics
                .record_failure(error.to_string(), self.report_interval)
        {
            tracing::warn!(target: "stellaops_telemetry", exporter = ?self, error = %error, "metric export failed");
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        match &self.kind {
            #[cfg(feature = "_otlp")]
            MetricKind::Otlp(e, ..) => e.force_flush(),
            #[cfg(feature = "file")]
            MetricKind::File(e) => e.force_flush(),
            MetricKind::Stdout(e) => e.force_flush(),
            #[cfg(feature = "testing")]
            MetricKind::Memory(e) => e.force_flush(),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match &self.kind {
            #[cfg(feature = "_otlp")]
            MetricKind::Otlp(e, ..) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "file")]
            MetricKind::File(e) => e.shutdown_with_timeout(timeout),
            MetricKind::Stdout(e) => e.shutdown_with_timeout(timeout),
            #[cfg(feature = "testing")]
            MetricKind::Memory(_) => Ok(()),
        }
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The number of data points in one collection: what the metric counters count.
fn data_points(metrics: &ResourceMetrics) -> u64 {
    fn count<T>(data: &MetricData<T>) -> usize {
        match data {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(e) => e.data_points().count(),
        }
    }
    metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .map(|metric| match metric.data() {
            AggregatedMetrics::F64(d) => count(d),
            AggregatedMetrics::U64(d) => count(d),
            AggregatedMetrics::I64(d) => count(d),
        })
        .sum::<usize>() as u64
}

/// The data points of one metric collection per tenant route, each tenant (a header value,
/// `None` for points sent without the header) once.
///
/// A point's route follows the rules of spans and log records: its own `tenant.id` when that
/// can be a header value, else the default tenant (refused values are counted here). A
/// collection with one route is exported whole under it; one with several is split into one
/// request per route.
#[cfg(feature = "_otlp")]
fn collection_tenant<'m>(
    tenancy: &Tenancy,
    metrics: &'m ResourceMetrics,
) -> Vec<(Option<http::HeaderValue>, u64)> {
    fn visit<'a, T>(data: &'a MetricData<T>, f: &mut dyn FnMut(Option<&'a str>)) {
        match data {
            MetricData::Gauge(g) => g
                .data_points()
                .for_each(|p| f(point_tenant(p.attributes()))),
            MetricData::Sum(s) => s
                .data_points()
                .for_each(|p| f(point_tenant(p.attributes()))),
            MetricData::Histogram(h) => {
                h.data_points()
                    .for_each(|p| f(point_tenant(p.attributes())));
            }
            MetricData::ExponentialHistogram(e) => {
                e.data_points()
                    .for_each(|p| f(point_tenant(p.attributes())));
            }
        }
    }
    // Keyed by valid tenant (`None`: no tenant or a refused one); bounded by the distinct
    // tenants of the collection, which the cardinality limits bound.
    let mut points: HashMap<Option<&'m str>, u64> = HashMap::new();
    let mut rejected = 0u64;
    let mut count = |tenant: Option<&'m str>| {
        let valid = tenant.filter(|t| valid_tenant(t));
        rejected += u64::from(tenant.is_some() && valid.is_none());
        *points.entry(valid).or_default() += 1;
    };
    for metric in metrics.scope_metrics().flat_map(|scope| scope.metrics()) {
        match metric.data() {
            AggregatedMetrics::F64(d) => visit(d, &mut count),
            AggregatedMetrics::U64(d) => visit(d, &mut count),
            AggregatedMetrics::I64(d) => visit(d, &mut count),
        }
    }
    tenancy.counts.record_rejected(tenancy.signal, rejected);
    // Several tenants may route to one header (the default tenant): merged through a map, so
    // the cost stays linear in the number of tenants.
    let mut merged: HashMap<Option<http::HeaderValue>, u64> = HashMap::with_capacity(points.len());
    for (tenant, n) in points {
        let (header, _) = tenancy.route(tenant);
        *merged.entry(header).or_default() += n;
    }
    merged.into_iter().collect()
}

#[cfg(test)]
#[cfg(all(feature = "_otlp", feature = "testing"))]
mod tests {
    use std::sync::Arc;

    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};

    use super::*;
    use crate::export::Signal;
    use crate::export::tenant::header_value;

    /// One collection of a counter with one point per entry (`None`: no tenant).
    fn collection(tenants: &[Option<&str>]) -> ResourceMetrics {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_periodic_exporter(exporter.clone())
            .build();
        let counter = provider.meter("t").u64_counter("c").build();
        for (i, tenant) in tenants.iter().enumerate() {
            let mut attributes = vec![KeyValue::new("i", i as i64)];
            if let Some(tenant) = tenant {
                attributes.push(KeyValue::new("tenant.id", tenant.to_string()));
            }
            counter.add(1, &attributes);
        }
        provider.force_flush().unwrap();
        exporter.get_finished_metrics().unwrap().pop().unwrap()
    }

    fn tenancy(default: Option<&str>) -> Tenancy {
        Tenancy {
            signal: Signal::Metrics,
            default: default.and_then(header_value),
            counts: Arc::default(),
        }
    }

    fn header(h: &Option<http::HeaderValue>) -> Option<&str> {
        h.as_ref().and_then(|h| h.to_str().ok())
    }

    #[test]
    fn a_collection_of_one_tenant_has_one_route_and_a_mixed_one_several() {
        let routes = |t: &Tenancy, tenants: &[Option<&str>]| -> Vec<(Option<String>, u64)> {
            let mut routes: Vec<_> = collection_tenant(t, &collection(tenants))
                .iter()
                .map(|(h, n)| (header(h).map(str::to_owned), *n))
                .collect();
            routes.sort();
            routes
        };
        let t = tenancy(None);
        assert_eq!(
            routes(&t, &[Some("a"), Some("a")]),
            vec![(Some("a".to_owned()), 2)]
        );
        assert_eq!(
            routes(&t, &[Some("a"), Some("b"), None]),
            vec![
                (None, 1),
                (Some("a".to_owned()), 1),
                (Some("b".to_owned()), 1)
            ]
        );

        // Untenanted points and refused tenants resolve to the default tenant.
        let t = tenancy(Some("a"));
        assert_eq!(
            routes(&t, &[Some("a"), None, Some("x y")]),
            vec![(Some("a".to_owned()), 3)]
        );
        assert_eq!(t.counts.rejected()[1], ("metrics", 1));
    }
}
