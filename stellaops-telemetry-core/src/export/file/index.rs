//! The per-segment index: a small JSON sidecar written when a segment is closed, so that
//! readers can skip a segment without opening it. The sidecar of `<dir>/<signal>/<name>` is
//! `<dir>/.index/<signal>/<name>.idx`, outside the signal folders, which hold only OTLP.
//!
//! The index is kept up to date as records are written (no re-read): the earliest and the
//! latest item time, the number of records and items, and the tenants seen. An item is a span
//! (its start time), a log record (its timestamp, else its observed timestamp) or a metric
//! data point (its `time_unix_nano`); its tenant is the string value of its own `tenant.id`
//! attribute.

// Only the bundle store reads an index back.
#![cfg_attr(not(feature = "bundle"), allow(dead_code))]

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, MetricsData, NumberDataPoint,
    SummaryDataPoint, metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData};
use serde::{Deserialize, Serialize};

use super::FileFormat;

/// The attribute naming an item's tenant.
pub(crate) const TENANT_ATTRIBUTE: &str = "tenant.id";
/// The most tenant names an index lists; beyond it the index says "many".
pub(crate) const MAX_INDEXED_TENANTS: usize = 256;
/// The longest tenant name an index lists; a longer one makes the index say "many".
const MAX_INDEXED_TENANT_BYTES: usize = 256;
/// The version of the sidecar layout.
const INDEX_VERSION: u32 = 2;
/// The largest sidecar a reader accepts (a full one is about 70 KiB).
const MAX_INDEX_BYTES: u64 = 1024 * 1024;

/// What one segment holds, as its sidecar says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentIndex {
    /// The sidecar layout version.
    pub(crate) version: u32,
    /// The framing of the segment.
    pub(crate) format: FileFormat,
    /// The segment's length in bytes when the sidecar was written; a segment of another
    /// length is not described by it.
    pub(crate) bytes: u64,
    /// Records (one OTLP message each).
    pub(crate) records: u64,
    /// Spans, log records or metric data points.
    pub(crate) items: u64,
    /// The earliest item time, unix nanoseconds; absent without items.
    pub(crate) min_time_unix_nano: Option<u64>,
    /// The latest item time, unix nanoseconds; absent without items.
    pub(crate) max_time_unix_nano: Option<u64>,
    /// The `tenant.id` values seen, unless `many_tenants`.
    pub(crate) tenants: BTreeSet<String>,
    /// More tenants (or longer names) than the index lists: any tenant may be in the segment.
    pub(crate) many_tenants: bool,
    /// The deepest nesting of an attribute value or log body in the segment (a scalar is 1,
    /// each list or map around it one more).
    pub(crate) max_value_depth: u32,
}

impl SegmentIndex {
    /// The index of an empty segment of `format`.
    pub(crate) fn new(format: FileFormat) -> Self {
        SegmentIndex {
            version: INDEX_VERSION,
            format,
            bytes: 0,
            records: 0,
            items: 0,
            min_time_unix_nano: None,
            max_time_unix_nano: None,
            tenants: BTreeSet::new(),
            many_tenants: false,
            max_value_depth: 0,
        }
    }

    /// Counts one item at `time` of `tenant`. Allocates only for a tenant not seen before.
    pub(crate) fn note(&mut self, time: u64, tenant: Option<&str>) {
        self.items = self.items.saturating_add(1);
        self.min_time_unix_nano = Some(self.min_time_unix_nano.map_or(time, |t| t.min(time)));
        self.max_time_unix_nano = Some(self.max_time_unix_nano.map_or(time, |t| t.max(time)));
        let Some(tenant) = tenant else { return };
        if self.many_tenants || self.tenants.contains(tenant) {
            return;
        }
        if self.tenants.len() >= MAX_INDEXED_TENANTS || tenant.len() > MAX_INDEXED_TENANT_BYTES {
            self.many_tenants = true;
            self.tenants = BTreeSet::new();
        } else {
            self.tenants.insert(tenant.to_owned());
        }
    }

    /// Counts one record and its items (the segment's length is set when it is closed).
    pub(crate) fn note_record<M: Items>(&mut self, message: &M) {
        self.records = self.records.saturating_add(1);
        message.for_each_item(&mut |time, tenant| self.note(time, tenant));
        self.max_value_depth = self.max_value_depth.max(message.value_depth());
    }

    /// Whether the segment may hold an item of `tenant` (every tenant when `None`).
    pub(crate) fn may_hold_tenant(&self, tenant: Option<&str>) -> bool {
        match tenant {
            None => true,
            Some(tenant) => self.many_tenants || self.tenants.contains(tenant),
        }
    }

    /// Whether every item of the segment lies in `from <= time < to` (unix nanoseconds).
    pub(crate) fn lies_within(&self, from: u64, to: u64) -> bool {
        match (self.min_time_unix_nano, self.max_time_unix_nano) {
            (Some(min), Some(max)) => from <= min && max < to,
            _ => false,
        }
    }

    /// Whether the segment may hold an item with `from <= time < to` (unix nanoseconds).
    pub(crate) fn may_overlap(&self, from: u64, to: u64) -> bool {
        match (self.min_time_unix_nano, self.max_time_unix_nano) {
            (Some(min), Some(max)) => min < to && max >= from,
            _ => false,
        }
    }
}

/// The folder of the sidecars, under the telemetry directory.
pub(crate) const INDEX_DIR: &str = ".index";

/// The sidecar of `segment` (`<dir>/<signal>/<name>`): `<dir>/.index/<signal>/<name>.idx`.
/// A segment outside that layout has its sidecar next to it.
pub(crate) fn sidecar_path(segment: &Path) -> PathBuf {
    let mut name = segment.file_name().unwrap_or_default().to_owned();
    name.push(".idx");
    let signal_dir = segment.parent();
    match (
        signal_dir.and_then(Path::parent),
        signal_dir.and_then(Path::file_name),
    ) {
        (Some(root), Some(signal)) => root.join(INDEX_DIR).join(signal).join(name),
        _ => segment.with_file_name(name),
    }
}

/// Writes the sidecar of `segment` through a temporary file and a rename, so that a reader
/// sees a whole sidecar or none.
pub(crate) fn write_sidecar(segment: &Path, index: &SegmentIndex) -> io::Result<()> {
    let path = sidecar_path(segment);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec(index).map_err(io::Error::other)?;
    fs::write(&tmp, json)?;
    fs::rename(&tmp, &path)
}

/// The sidecar of `segment`, when there is one that reads and describes a segment of
/// `bytes` bytes and `format`; `None` otherwise (the segment must then be scanned).
pub(crate) fn read_sidecar(segment: &Path, bytes: u64, format: FileFormat) -> Option<SegmentIndex> {
    let path = sidecar_path(segment);
    let metadata = fs::metadata(&path).ok()?;
    if metadata.len() > MAX_INDEX_BYTES {
        return None;
    }
    let index: SegmentIndex = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
    let fits = index.version == INDEX_VERSION
        && index.bytes == bytes
        && index.format == format
        && index.tenants.len() <= MAX_INDEXED_TENANTS;
    fits.then_some(index)
}

/// The string value of the `tenant.id` attribute among `attributes`.
pub(crate) fn tenant_of(attributes: &[KeyValue]) -> Option<&str> {
    attributes
        .iter()
        .find(|kv| kv.key == TENANT_ATTRIBUTE)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| match &value.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

/// The time a log record is selected by: its timestamp, else its observed timestamp.
pub(crate) fn log_time(record: &LogRecord) -> u64 {
    if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    }
}

/// A metric data point of any type: its time and its attributes.
pub(crate) trait DataPoint {
    /// `time_unix_nano`.
    fn time(&self) -> u64;
    /// The point's attributes.
    fn attributes(&self) -> &[KeyValue];
}

macro_rules! data_point {
    ($($point:ty),*) => {$(
        impl DataPoint for $point {
            fn time(&self) -> u64 {
                self.time_unix_nano
            }
            fn attributes(&self) -> &[KeyValue] {
                &self.attributes
            }
        }
    )*};
}
data_point!(
    NumberDataPoint,
    HistogramDataPoint,
    ExponentialHistogramDataPoint,
    SummaryDataPoint
);

/// The items of one OTLP message: spans, log records or metric data points.
pub(crate) trait Items {
    /// Calls `f` with every item's time and tenant, in message order.
    fn for_each_item(&self, f: &mut dyn FnMut(u64, Option<&str>));

    /// The deepest nesting of a value in the message: resource, scope and item attributes,
    /// span event and link attributes, log bodies.
    fn value_depth(&self) -> u32;
}

/// The nesting depth of the deepest of `values` (0 for none), walked with an explicit stack:
/// time in proportion to the values' size, whatever their depth.
fn depth<'a>(values: impl Iterator<Item = &'a AnyValue>) -> u32 {
    let mut deepest = 0;
    let mut stack: Vec<(&AnyValue, u32)> = values.map(|v| (v, 1)).collect();
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match &value.value {
            Some(any_value::Value::ArrayValue(array)) => {
                stack.extend(array.values.iter().map(|v| (v, depth + 1)));
            }
            Some(any_value::Value::KvlistValue(list)) => {
                let values = list.values.iter().filter_map(|kv| kv.value.as_ref());
                stack.extend(values.map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// The values of `attributes`.
fn values(attributes: &[KeyValue]) -> impl Iterator<Item = &AnyValue> {
    attributes.iter().filter_map(|kv| kv.value.as_ref())
}

/// The values of a resource's and a scope's attributes.
fn context_values<'a>(
    resource: Option<&'a Resource>,
    scope: Option<&'a InstrumentationScope>,
) -> impl Iterator<Item = &'a AnyValue> {
    let resource = resource.map(|r| values(&r.attributes));
    let scope = scope.map(|s| values(&s.attributes));
    resource
        .into_iter()
        .flatten()
        .chain(scope.into_iter().flatten())
}

impl Items for TracesData {
    fn for_each_item(&self, f: &mut dyn FnMut(u64, Option<&str>)) {
        let spans = self
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans);
        spans.for_each(|span: &Span| f(span.start_time_unix_nano, tenant_of(&span.attributes)));
    }

    fn value_depth(&self) -> u32 {
        let mut deepest = 0;
        for resource in &self.resource_spans {
            for scope in &resource.scope_spans {
                let context = context_values(resource.resource.as_ref(), scope.scope.as_ref());
                let spans = scope.spans.iter().flat_map(|span| {
                    let events = span.events.iter().flat_map(|e| values(&e.attributes));
                    let links = span.links.iter().flat_map(|l| values(&l.attributes));
                    values(&span.attributes).chain(events).chain(links)
                });
                deepest = deepest.max(depth(context.chain(spans)));
            }
        }
        deepest
    }
}

impl Items for LogsData {
    fn for_each_item(&self, f: &mut dyn FnMut(u64, Option<&str>)) {
        let records = self
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records);
        records.for_each(|record| f(log_time(record), tenant_of(&record.attributes)));
    }

    fn value_depth(&self) -> u32 {
        let mut deepest = 0;
        for resource in &self.resource_logs {
            for scope in &resource.scope_logs {
                let context = context_values(resource.resource.as_ref(), scope.scope.as_ref());
                let records = scope
                    .log_records
                    .iter()
                    .flat_map(|r| values(&r.attributes).chain(r.body.as_ref()));
                deepest = deepest.max(depth(context.chain(records)));
            }
        }
        deepest
    }
}

impl Items for MetricsData {
    fn for_each_item(&self, f: &mut dyn FnMut(u64, Option<&str>)) {
        let metrics = self
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics);
        for metric in metrics {
            for_each_point(metric, f);
        }
    }

    fn value_depth(&self) -> u32 {
        let mut deepest = 0;
        for resource in &self.resource_metrics {
            for scope in &resource.scope_metrics {
                let context = context_values(resource.resource.as_ref(), scope.scope.as_ref());
                let mut points = Vec::new();
                for metric in &scope.metrics {
                    for_each_data_point(metric, &mut |_, a| points.extend(values(a)));
                }
                deepest = deepest.max(depth(context.chain(points)));
            }
        }
        deepest
    }
}

fn for_each_point(metric: &Metric, f: &mut dyn FnMut(u64, Option<&str>)) {
    for_each_data_point(metric, &mut |time, attributes| {
        f(time, tenant_of(attributes))
    });
}

/// Calls `f` with every data point's time and attributes, whatever the metric's type.
fn for_each_data_point<'a>(metric: &'a Metric, f: &mut dyn FnMut(u64, &'a [KeyValue])) {
    fn each<'a, P: DataPoint>(points: &'a [P], f: &mut dyn FnMut(u64, &'a [KeyValue])) {
        points.iter().for_each(|p| f(p.time(), p.attributes()));
    }
    match &metric.data {
        Some(metric::Data::Gauge(g)) => each(&g.data_points, f),
        Some(metric::Data::Sum(s)) => each(&s.data_points, f),
        Some(metric::Data::Histogram(h)) => each(&h.data_points, f),
        Some(metric::Data::ExponentialHistogram(h)) => each(&h.data_points, f),
        Some(metric::Data::Summary(s)) => each(&s.data_points, f),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_list_is_bounded_and_then_says_many() {
        let mut index = SegmentIndex::new(FileFormat::Json);
        for i in 0..MAX_INDEXED_TENANTS {
            index.note(10, Some(&format!("t{i}")));
        }
        assert!(!index.many_tenants);
        assert!(!index.may_hold_tenant(Some("other")));
        index.note(5, Some("other"));
        assert!(index.many_tenants && index.tenants.is_empty());
        assert!(index.may_hold_tenant(Some("anyone")));
        assert_eq!(
            (index.min_time_unix_nano, index.max_time_unix_nano),
            (Some(5), Some(10))
        );
        assert_eq!(index.items, 257);
    }

    #[test]
    fn a_long_tenant_name_says_many() {
        let mut index = SegmentIndex::new(FileFormat::Json);
        index.note(1, Some(&"x".repeat(MAX_INDEXED_TENANT_BYTES + 1)));
        assert!(index.many_tenants);
    }

    #[test]
    fn sidecars_live_in_the_index_folder() {
        assert_eq!(
            sidecar_path(Path::new("/t/traces/traces-20250102T030405Z-000001.jsonl")),
            Path::new("/t/.index/traces/traces-20250102T030405Z-000001.jsonl.idx")
        );
    }

    #[test]
    fn overlap_is_half_open() {
        let mut index = SegmentIndex::new(FileFormat::Protobuf);
        assert!(!index.may_overlap(0, u64::MAX));
        index.note(100, None);
        index.note(200, None);
        assert!(index.may_overlap(200, 201));
        assert!(index.may_overlap(0, 101));
        assert!(!index.may_overlap(0, 100));
        assert!(!index.may_overlap(201, 300));
    }
}
