//! Per-pipeline metric storage: typed handles, bound series, the cardinality limit, and the
//! bridge that hands everything to the OpenTelemetry SDK.
//!
//! ```text
//! counter, gauge ─► bound series (one atomic)
//!     collect (OTLP interval, Prometheus scrape) ─► flush: each series' pending delta ─►
//!     SDK instrument ─► every reader: OTLP, files, Prometheus, tests
//! histogram ─► bound series ─► SDK aggregator of its attributes (bound handle: no lookup)
//!     collect ─► the SDK reads each series' buckets ─► every reader
//! ```
//!
//! The request path touches only the series: no attribute hashing, no SDK attribute lookup;
//! attributes are redacted once per series, when it is created. A counter or gauge series is
//! one atomic, handed to the SDK as one delta per collection. A histogram series records into
//! the SDK's own per-series aggregator through a handle bound to its attributes at its first
//! observation (one short per-series lock per reader pipeline), so bucket counts, count, sum,
//! min and max are the SDK's own, exact, and a collection costs per bucket and series, however
//! many observations came before it.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram as SdkBoundHistogram, Histogram as SdkHistogram};
use opentelemetry::metrics::{Counter as SdkCounter, Gauge as SdkGauge};
use opentelemetry::metrics::{Meter, UpDownCounter as SdkUpDownCounter};
use parking_lot::{Mutex, RwLock};

use crate::limits::ValueBounds;
use crate::redaction::Redactor;

use super::descriptor::{
    CounterDef, GaugeDef, HistogramDef, LabelValues, Labels, MetricDescriptor, UpDownCounterDef,
};

/// The default number of series a metric keeps before folding new label sets into its
/// overflow series.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 1_000;

/// The attribute of the overflow series (the OpenTelemetry convention).
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// The metrics of one pipeline: `Telemetry::metrics()`, or [`global()`] once installed.
/// Cheap to clone; clones share storage.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Registry>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("families", &self.inner.families.lock().len())
            .field("cardinality_limit", &self.inner.limit)
            .field("exported", &self.inner.meter.is_some())
            .finish()
    }
}

struct Registry {
    meter: Option<Meter>,
    redactor: Redactor,
    bounds: ValueBounds,
    limit: usize,
    families: Mutex<HashMap<&'static str, Entry>>,
}

struct Entry {
    descriptor: MetricDescriptor,
    family: Arc<dyn Any + Send + Sync>,
    flush: Arc<dyn Flush>,
}

trait Flush: Send + Sync {
    fn flush(&self);
    fn overflowed(&self) -> u64;
}

static GLOBAL: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();

/// The installed pipeline's metrics; `None` before `install()` (or without it), so that no
/// handle is ever taken from a registry that would not export it. A pipeline built with
/// `build()` gives its own through `Telemetry::metrics()`.
///
/// ```
/// // No pipeline is installed in this example.
/// assert!(stellaops_telemetry_core::metrics::global().is_none());
/// ```
pub fn global() -> Option<Metrics> {
    GLOBAL.get().cloned()
}

pub(crate) fn set_global(metrics: Metrics) -> bool {
    GLOBAL.set(metrics).is_ok()
}

impl Metrics {
    /// Metrics that are recorded but never exported (a disabled pipeline's).
    pub fn detached() -> Metrics {
        Metrics::new(
            None,
            DEFAULT_CARDINALITY_LIMIT,
            Redactor::default(),
            ValueBounds::default(),
        )
    }

    /// Metrics exported through `meter`, with at most `limit` series per metric and label
    /// values cut to `bounds`. Each
    /// series' attributes pass `redactor` once, when the series is created, so `meter` is
    /// the SDK's own (not the redacting wrapper: every flushed delta and every histogram
    /// observation would pay the redaction again). Registers the
    /// `stellaops_telemetry_cardinality_overflow_total` self-metric on `meter`; its callback
    /// is also what flushes the counter and gauge series into the SDK at every collection.
    pub(crate) fn new(
        meter: Option<Meter>,
        limit: usize,
        redactor: Redactor,
        bounds: ValueBounds,
    ) -> Metrics {
        let metrics = Metrics {
            inner: Arc::new(Registry {
                meter,
                redactor,
                bounds,
                limit: limit.max(1),
                families: Mutex::new(HashMap::new()),
            }),
        };
        if let Some(meter) = &metrics.inner.meter {
            let registry = Arc::downgrade(&metrics.inner);
            let _ = meter
                .u64_observable_counter("stellaops_telemetry_cardinality_overflow_total")
                .with_unit("{record}")
                .with_description(
                    "Label sets beyond a metric's cardinality limit, folded into its overflow series",
                )
                .with_callback(move |observer| {
                    let Some(registry) = registry.upgrade() else {
                        return;
                    };
                    for (name, overflowed) in registry.flush_all() {
                        if overflowed > 0 {
                            observer.observe(overflowed, &[KeyValue::new("metric", name)]);
                        }
                    }
                })
                .build();
        }
        metrics
    }

    /// The cardinality limit per metric.
    pub fn cardinality_limit(&self) -> usize {
        self.inner.limit
    }

    /// Hands every pending delta to the SDK now (a collection does this by itself).
    pub fn flush(&self) {
        let _ = self.inner.flush_all();
    }

    /// How many label sets were folded into each metric's overflow series so far.
    pub fn overflow_counts(&self) -> Vec<(&'static str, u64)> {
        let families = self.inner.families.lock();
        let mut out: Vec<_> = families
            .iter()
            .map(|(name, e)| (*name, e.flush.overflowed()))
            .collect();
        out.sort_unstable();
        out
    }

    /// The handle of a catalogue (or service-declared) counter.
    pub fn counter<L: Labels>(&self, def: &CounterDef<L>) -> Counter<L> {
        Counter {
            family: self.family(def.descriptor(), |meter, d| {
                meter
                    .u64_counter(d.name)
                    .with_unit(d.unit)
                    .with_description(d.help)
                    .build()
            }),
            labels: std::marker::PhantomData,
        }
    }

    /// The handle of a histogram.
    pub fn histogram<L: Labels>(&self, def: &HistogramDef<L>) -> Histogram<L> {
        Histogram {
            family: self.family(def.descriptor(), |meter, d| {
                meter
                    .f64_histogram(d.name)
                    .with_unit(d.unit)
                    .with_description(d.help)
                    .with_boundaries(d.buckets.to_vec())
                    .build()
            }),
            labels: std::marker::PhantomData,
        }
    }

    /// The handle of a gauge.
    pub fn gauge<L: Labels>(&self, def: &GaugeDef<L>) -> Gauge<L> {
        Gauge {
            family: self.family(def.descriptor(), |meter, d| {
                meter
                    .f64_gauge(d.name)
                    .with_unit(d.unit)
                    .with_description(d.help)
                    .build()
            }),
            labels: std::marker::PhantomData,
        }
    }

    /// The handle of an up-down counter.
    pub fn up_down_counter<L: Labels>(&self, def: &UpDownCounterDef<L>) -> UpDownCounter<L> {
        UpDownCounter {
            family: self.family(def.descriptor(), |meter, d| {
                meter
                    .i64_up_down_counter(d.name)
                    .with_unit(d.unit)
                    .with_description(d.help)
                    .build()
            }),
            labels: std::marker::PhantomData,
        }
    }

    fn family<C: Cell>(
        &self,
        descriptor: &MetricDescriptor,
        instrument: impl FnOnce(&Meter, &MetricDescriptor) -> C::Instrument,
    ) -> Arc<Family<C>> {
        if let Some(found) = self.existing::<C>(descriptor) {
            return found;
        }
        // The SDK instrument is built outside the registry lock: a collection holds the SDK
        // pipeline's lock while its callback flushes (and takes the registry lock), and
        // building an instrument takes the pipeline's lock.
        let sdk = self
            .inner
            .meter
            .as_ref()
            .map(|meter| instrument(meter, descriptor));
        let mut families = self.inner.families.lock();
        if families.contains_key(descriptor.name) {
            drop(families);
            return self.existing::<C>(descriptor).unwrap_or_else(|| {
                Arc::new(Family::new(
                    *descriptor,
                    None,
                    self.inner.limit,
                    self.inner.redactor.clone(),
                    self.inner.bounds.clone(),
                ))
            });
        }
        let family = Arc::new(Family::<C>::new(
            *descriptor,
            sdk,
            self.inner.limit,
            self.inner.redactor.clone(),
            self.inner.bounds.clone(),
        ));
        families.insert(
            descriptor.name,
            Entry {
                descriptor: *descriptor,
                family: family.clone(),
                flush: family.clone(),
            },
        );
        family
    }

    /// The registered family of `descriptor`; a detached one (and a warning) when the name is
    /// registered with another kind, unit, help, labels or buckets; `None` when unregistered.
    fn existing<C: Cell>(&self, descriptor: &MetricDescriptor) -> Option<Arc<Family<C>>> {
        let families = self.inner.families.lock();
        let entry = families.get(descriptor.name)?;
        if entry.descriptor == *descriptor
            && let Ok(family) = Arc::clone(&entry.family).downcast::<Family<C>>()
        {
            return Some(family);
        }
        drop(families);
        // The same name declared twice, differently: the first declaration owns the name;
        // this one records into a detached family.
        tracing::warn!(
            target: "stellaops_telemetry",
            metric = descriptor.name,
            "a metric of this name is already registered with another kind, unit, help, \
             labels or buckets; this handle records nothing that is exported"
        );
        Some(Arc::new(Family::new(
            *descriptor,
            None,
            self.inner.limit,
            self.inner.redactor.clone(),
            self.inner.bounds.clone(),
        )))
    }
}

impl Registry {
    fn flush_all(&self) -> Vec<(&'static str, u64)> {
        let entries: Vec<(&'static str, Arc<dyn Flush>)> = self
            .families
            .lock()
            .iter()
            .map(|(name, e)| (*name, e.flush.clone()))
            .collect();
        entries
            .into_iter()
            .map(|(name, f)| {
                f.flush();
                (name, f.overflowed())
            })
            .collect()
    }
}

/// The storage of one series, by kind.
trait Cell: Default + Send + Sync + 'static {
    type Instrument: Send + Sync + 'static;
    /// A new series' storage; `sdk` is the family's SDK instrument (`None` when detached).
    fn new(descriptor: &MetricDescriptor, sdk: Option<&Self::Instrument>) -> Self;
    fn flush(&self, instrument: &Self::Instrument, attributes: &[KeyValue]);
}

/// Hashes a `u64` that already is a hash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Series<C> {
    values: Box<[Box<str>]>,
    attributes: Vec<KeyValue>,
    cell: C,
}

/// Series by the hash of their label values (collisions share a bucket).
type SeriesMap<C> = HashMap<u64, Vec<Arc<Series<C>>>, BuildHasherDefault<PassThrough>>;

struct Family<C: Cell> {
    descriptor: MetricDescriptor,
    redactor: Redactor,
    bounds: ValueBounds,
    sdk: Option<C::Instrument>,
    limit: usize,
    series: RwLock<SeriesMap<C>>,
    count: AtomicU64,
    overflow: Arc<Series<C>>,
    overflowed: AtomicU64,
}

/// FNV-1a over the values, each followed by a separator byte that UTF-8 never holds.
fn hash_values(values: &dyn LabelValues) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    values.each_value(&mut |v| {
        for &b in v.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    });
    h
}

fn same_values(series: &[Box<str>], values: &dyn LabelValues) -> bool {
    let mut i = 0;
    let mut same = true;
    values.each_value(&mut |v| {
        same &= series.get(i).is_some_and(|s| **s == *v);
        i += 1;
    });
    same && i == series.len()
}

impl<C: Cell> Family<C> {
    fn new(
        descriptor: MetricDescriptor,
        sdk: Option<C::Instrument>,
        limit: usize,
        redactor: Redactor,
        bounds: ValueBounds,
    ) -> Self {
        let overflow = Arc::new(Series {
            values: Box::new([]),
            attributes: vec![KeyValue::new(OVERFLOW_ATTRIBUTE, true)],
            cell: C::new(&descriptor, sdk.as_ref()),
        });
        Family {
            descriptor,
            redactor,
            bounds,
            sdk,
            limit,
            series: RwLock::new(HashMap::default()),
            count: AtomicU64::new(0),
            overflow,
            overflowed: AtomicU64::new(0),
        }
    }

    /// The series of `values`: found, created, or (beyond the limit) the overflow series.
    /// Label values over the label value limit are cut first (redacted whole, then cut), so
    /// a value of any length costs at most the limit to hash and to keep.
    fn series(&self, values: &dyn LabelValues) -> Arc<Series<C>> {
        let mut over = false;
        values.each_value(&mut |v| over |= self.bounds.label_over(v));
        if over {
            return self.series_of_long_values(values);
        }
        let hash = hash_values(values);
        if let Some(found) = self.find(hash, values) {
            return found;
        }
        self.create(hash, values)
    }

    #[inline(never)]
    fn series_of_long_values(&self, values: &dyn LabelValues) -> Arc<Series<C>> {
        let mut bounded: Vec<String> = Vec::with_capacity(self.descriptor.labels.len());
        values.each_value(&mut |v| {
            bounded.push(self.bounds.label_value(v, &self.redactor).into_owned());
        });
        let bounded = Bounded(bounded);
        let hash = hash_values(&bounded);
        if let Some(found) = self.find(hash, &bounded) {
            return found;
        }
        self.create(hash, &bounded)
    }

    fn find(&self, hash: u64, values: &dyn LabelValues) -> Option<Arc<Series<C>>> {
        self.series
            .read()
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|s| same_values(&s.values, values)))
            .cloned()
    }

    /// A new series for `values`, built and redacted before the write lock is taken, so no
    /// recording thread waits on another thread's redaction.
    #[inline(never)]
    fn create(&self, hash: u64, values: &dyn LabelValues) -> Arc<Series<C>> {
        if self.count.load(Ordering::Relaxed) >= self.limit as u64 {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return self.overflow.clone();
        }
        let mut owned = Vec::with_capacity(self.descriptor.labels.len());
        values.each_value(&mut |v| owned.push(Box::<str>::from(v)));
        let mut attributes = self
            .descriptor
            .labels
            .iter()
            .zip(&owned)
            .filter_map(|(k, v)| series_attribute(k, v))
            .collect();
        // Redacted once per series, before anything reaches the SDK.
        self.redactor.redact_attributes(&mut attributes);
        let series = Arc::new(Series {
            values: owned.into_boxed_slice(),
            attributes,
            cell: C::new(&self.descriptor, self.sdk.as_ref()),
        });
        let mut map = self.series.write();
        if let Some(found) = map
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|s| same_values(&s.values, values)))
        {
            return found.clone();
        }
        // Checked again under the lock: the limit holds however many threads raced here.
        if self.count.load(Ordering::Relaxed) >= self.limit as u64 {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return self.overflow.clone();
        }
        map.entry(hash).or_default().push(series.clone());
        self.count.fetch_add(1, Ordering::Relaxed);
        series
    }
}

/// Label values after the label value limit.
struct Bounded(Vec<String>);

impl LabelValues for Bounded {
    fn each_value(&self, f: &mut dyn FnMut(&str)) {
        for v in &self.0 {
            f(v);
        }
    }
}

impl<C: Cell> Flush for Family<C> {
    fn flush(&self) {
        let Some(sdk) = &self.sdk else {
            return;
        };
        let all: Vec<Arc<Series<C>>> = self.series.read().values().flatten().cloned().collect();
        for series in all.iter().chain(std::iter::once(&self.overflow)) {
            series.cell.flush(sdk, &series.attributes);
        }
    }

    fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

// ---- counters ---------------------------------------------------------------------------

#[derive(Default)]
struct CounterCell(AtomicU64);

impl Cell for CounterCell {
    type Instrument = SdkCounter<u64>;
    fn new(_: &MetricDescriptor, _: Option<&Self::Instrument>) -> Self {
        Self::default()
    }
    fn flush(&self, instrument: &Self::Instrument, attributes: &[KeyValue]) {
        let delta = self.0.swap(0, Ordering::Relaxed);
        if delta > 0 {
            instrument.add(delta, attributes);
        }
    }
}

/// A counter's handle: [`bind`](Counter::bind) a label set once and add to the bound
/// series on the hot path, or [`add`](Counter::add) with labels (one lookup per call).
pub struct Counter<L: Labels> {
    family: Arc<Family<CounterCell>>,
    labels: std::marker::PhantomData<fn() -> L>,
}

/// One series of a counter.
#[derive(Clone)]
pub struct BoundCounter {
    series: Arc<Series<CounterCell>>,
}

impl<L: Labels> Counter<L> {
    /// The series of `labels` (the overflow series beyond the cardinality limit).
    pub fn bind(&self, labels: L::At<'_>) -> BoundCounter {
        BoundCounter {
            series: self.family.series(&labels),
        }
    }

    /// Adds `n` to the series of `labels`.
    pub fn add(&self, n: u64, labels: L::At<'_>) {
        self.family
            .series(&labels)
            .cell
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    /// The metric's catalogue entry.
    pub fn descriptor(&self) -> &MetricDescriptor {
        &self.family.descriptor
    }
}

impl BoundCounter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.series.cell.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds 1.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
}

// ---- up-down counters -------------------------------------------------------------------

#[derive(Default)]
struct UpDownCell(AtomicI64);

impl Cell for UpDownCell {
    type Instrument = SdkUpDownCounter<i64>;
    fn new(_: &MetricDescriptor, _: Option<&Self::Instrument>) -> Self {
        Self::default()
    }
    fn flush(&self, instrument: &Self::Instrument, attributes: &[KeyValue]) {
        let delta = self.0.swap(0, Ordering::Relaxed);
        if delta != 0 {
            instrument.add(delta, attributes);
        }
    }
}

/// An up-down counter's handle (in-flight requests, active jobs).
pub struct UpDownCounter<L: Labels> {
    family: Arc<Family<UpDownCell>>,
    labels: std::marker::PhantomData<fn() -> L>,
}

/// One series of an up-down counter.
#[derive(Clone)]
pub struct BoundUpDownCounter {
    series: Arc<Series<UpDownCell>>,
}

impl<L: Labels> UpDownCounter<L> {
    /// The series of `labels`.
    pub fn bind(&self, labels: L::At<'_>) -> BoundUpDownCounter {
        BoundUpDownCounter {
            series: self.family.series(&labels),
        }
    }

    /// Adds `n` (negative to decrease) to the series of `labels`.
    pub fn add(&self, n: i64, labels: L::At<'_>) {
        self.family
            .series(&labels)
            .cell
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    /// The metric's catalogue entry.
    pub fn descriptor(&self) -> &MetricDescriptor {
        &self.family.descriptor
    }
}

impl BoundUpDownCounter {
    /// Adds `n` (negative to decrease).
    #[inline]
    pub fn add(&self, n: i64) {
        self.series.cell.0.fetch_add(n, Ordering::Relaxed);
    }
}

// ---- gauges ----------------------------------------------------------------------------

#[derive(Default)]
struct GaugeCell {
    bits: AtomicU64,
    dirty: AtomicBool,
}

impl Cell for GaugeCell {
    type Instrument = SdkGauge<f64>;
    fn new(_: &MetricDescriptor, _: Option<&Self::Instrument>) -> Self {
        Self::default()
    }
    fn flush(&self, instrument: &Self::Instrument, attributes: &[KeyValue]) {
        if self.dirty.swap(false, Ordering::Acquire) {
            instrument.record(
                f64::from_bits(self.bits.load(Ordering::Relaxed)),
                attributes,
            );
        }
    }
}

/// A gauge's handle (last value wins).
pub struct Gauge<L: Labels> {
    family: Arc<Family<GaugeCell>>,
    labels: std::marker::PhantomData<fn() -> L>,
}

/// One series of a gauge.
#[derive(Clone)]
pub struct BoundGauge {
    series: Arc<Series<GaugeCell>>,
}

impl<L: Labels> Gauge<L> {
    /// The series of `labels`.
    pub fn bind(&self, labels: L::At<'_>) -> BoundGauge {
        BoundGauge {
            series: self.family.series(&labels),
        }
    }

    /// Sets the series of `labels` to `value`.
    pub fn set(&self, value: f64, labels: L::At<'_>) {
        BoundGauge {
            series: self.family.series(&labels),
        }
        .set(value);
    }

    /// The metric's catalogue entry.
    pub fn descriptor(&self) -> &MetricDescriptor {
        &self.family.descriptor
    }
}

impl BoundGauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.series
            .cell
            .bits
            .store(value.to_bits(), Ordering::Relaxed);
        self.series.cell.dirty.store(true, Ordering::Release);
    }
}

// ---- histograms ------------------------------------------------------------------------

/// A histogram series records straight into the SDK's own aggregator for its attributes
/// (per-bucket counts, sum, min and max, kept by the SDK under a per-series lock, one per
/// reader pipeline), through a handle bound at the series' first observation: no attribute
/// lookup per observation, and nothing pending to hand over at collection, which therefore
/// costs per bucket, whatever the number of observations. The SDK has no way to take
/// per-bucket counts from outside (its data points cannot be built outside it, and its
/// aggregator counts one per measurement), so a series that kept its own buckets would
/// have to replay every observation at collection.
#[derive(Default)]
struct HistogramCell {
    /// The SDK histogram; `None` in a detached family (nothing is exported).
    sdk: Option<SdkHistogram<f64>>,
    /// Bound at the first observation, not at series creation: a bound series that never
    /// observes anything exports no empty data point.
    bound: OnceLock<SdkBoundHistogram<f64>>,
}

impl HistogramCell {
    #[inline]
    fn record(&self, value: f64, attributes: &[KeyValue]) {
        match self.bound.get() {
            Some(bound) => bound.record(value),
            None => self.first_record(value, attributes),
        }
    }

    #[cold]
    #[inline(never)]
    fn first_record(&self, value: f64, attributes: &[KeyValue]) {
        // NaN and infinities are ignored (as the SDK does); they bind nothing either.
        let Some(sdk) = self.sdk.as_ref().filter(|_| value.is_finite()) else {
            return;
        };
        self.bound
            .get_or_init(|| sdk.bind(attributes))
            .record(value);
    }
}

impl Cell for HistogramCell {
    type Instrument = SdkHistogram<f64>;
    fn new(_: &MetricDescriptor, sdk: Option<&Self::Instrument>) -> Self {
        HistogramCell {
            sdk: sdk.cloned(),
            bound: OnceLock::new(),
        }
    }
    fn flush(&self, _: &Self::Instrument, _: &[KeyValue]) {
        // Every observation is already in the SDK's aggregator.
    }
}

/// A histogram's handle.
pub struct Histogram<L: Labels> {
    family: Arc<Family<HistogramCell>>,
    labels: std::marker::PhantomData<fn() -> L>,
}

/// One series of a histogram.
#[derive(Clone)]
pub struct BoundHistogram {
    series: Arc<Series<HistogramCell>>,
}

impl<L: Labels> Histogram<L> {
    /// The series of `labels`.
    pub fn bind(&self, labels: L::At<'_>) -> BoundHistogram {
        BoundHistogram {
            series: self.family.series(&labels),
        }
    }

    /// Records `value` in the series of `labels`.
    pub fn record(&self, value: f64, labels: L::At<'_>) {
        let series = self.family.series(&labels);
        series.cell.record(value, &series.attributes);
    }

    /// The metric's catalogue entry.
    pub fn descriptor(&self) -> &MetricDescriptor {
        &self.family.descriptor
    }
}

impl BoundHistogram {
    /// Records `value` (NaN and infinities are ignored, as the OpenTelemetry SDK does).
    #[inline]
    pub fn record(&self, value: f64) {
        self.series.cell.record(value, &self.series.attributes);
    }
}

macro_rules! debug_handles {
    ($($t:ident),*) => {$(
        impl<L: Labels> std::fmt::Debug for $t<L> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($t)).field(&self.family.descriptor.name).finish()
            }
        }
        impl<L: Labels> Clone for $t<L> {
            fn clone(&self) -> Self {
                $t { family: self.family.clone(), labels: std::marker::PhantomData }
            }
        }
    )*};
}
debug_handles!(Counter, UpDownCounter, Gauge, Histogram);

macro_rules! debug_bound {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($t)).field(&self.series.values).finish()
            }
        }
    )*};
}
debug_bound!(BoundCounter, BoundUpDownCounter, BoundGauge, BoundHistogram);

/// Semantic-convention attributes whose values are integers.
const INTEGER_ATTRIBUTES: &[&str] = &["http.response.status_code", "rpc.grpc.status_code"];

/// A series' exported attribute. A semantic-convention attribute (a dotted name) with an
/// empty value is absent, as the conventions want an attribute that does not apply; its
/// integer attributes are exported as integers. Catalogue labels are exported as written.
fn series_attribute(key: &'static str, value: &str) -> Option<KeyValue> {
    if !key.contains('.') {
        return Some(KeyValue::new(key, value.to_owned()));
    }
    if value.is_empty() {
        return None;
    }
    if INTEGER_ATTRIBUTES.contains(&key)
        && let Ok(n) = value.parse::<i64>()
    {
        return Some(KeyValue::new(key, n));
    }
    Some(KeyValue::new(key, value.to_owned()))
}
