//! Per-pipeline metric storage: typed handles, bound series, the cardinality limit, and the
//! bridge that hands everything to the OpenTelemetry SDK at collection time.
//!
//! ```text
//! record ─► bound series (one atomic, or one uncontended lock for a histogram)
//! collect (OTLP interval, Prometheus scrape) ─► flush: each series' pending delta ─►
//!         SDK instrument (redacting meter) ─► every reader: OTLP, files, Prometheus, tests
//! ```
//!
//! The request path touches only the series: no attribute hashing, no SDK lock. A histogram
//! series keeps per-bucket counts and sums, and the flush replays them into the SDK
//! histogram (same explicit buckets) so that counts, sums, min and max are exact; that replay
//! costs one SDK record per observation, on the collecting thread, never on the request path.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter as SdkCounter, Gauge as SdkGauge, Histogram as SdkHistogram};
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
    /// the SDK's own (not the redacting wrapper: the flush would pay the redaction again per
    /// replayed observation). Registers the `stellaops_telemetry_cardinality_overflow_total`
    /// self-metric on `meter`; its callback is also what flushes the series into the SDK at
    /// every collection.
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
    fn with_descriptor(descriptor: &MetricDescriptor) -> Self;
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
        Family {
            descriptor,
            redactor,
            bounds,
            sdk,
            limit,
            series: RwLock::new(HashMap::default()),
            count: AtomicU64::new(0),
            overflow: Arc::new(Series {
                values: Box::new([]),
                attributes: vec![KeyValue::new(OVERFLOW_ATTRIBUTE, true)],
                cell: C::with_descriptor(&descriptor),
            }),
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
            cell: C::with_descriptor(&self.descriptor),
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
    fn with_descriptor(_: &MetricDescriptor) -> Self {
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
    fn with_descriptor(_: &MetricDescriptor) -> Self {
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
    fn with_descriptor(_: &MetricDescriptor) -> Self {
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

struct HistogramCell {
    bounds: &'static [f64],
    state: Mutex<HistogramState>,
}

#[derive(Clone, Default)]
struct HistogramState {
    /// Per bucket (the last is `+Inf`): observations and their sum.
    counts: Vec<u64>,
    sums: Vec<f64>,
    min: f64,
    max: f64,
    total: u64,
}

impl Default for HistogramCell {
    fn default() -> Self {
        HistogramCell {
            bounds: &[],
            state: Mutex::new(HistogramState::empty(0)),
        }
    }
}

impl HistogramState {
    fn empty(bounds: usize) -> Self {
        HistogramState {
            counts: vec![0; bounds + 1],
            sums: vec![0.0; bounds + 1],
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            total: 0,
        }
    }
}

impl HistogramCell {
    #[inline]
    fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        // Buckets are `(previous, bound]`, as in OpenTelemetry and Prometheus.
        let i = self.bounds.partition_point(|b| *b < value);
        let mut guard = self.state.lock();
        let s = &mut *guard;
        if let (Some(count), Some(sum)) = (s.counts.get_mut(i), s.sums.get_mut(i)) {
            *count += 1;
            *sum += value;
        }
        s.total += 1;
        if value < s.min {
            s.min = value;
        }
        if value > s.max {
            s.max = value;
        }
    }
}

impl Cell for HistogramCell {
    type Instrument = SdkHistogram<f64>;
    fn with_descriptor(descriptor: &MetricDescriptor) -> Self {
        HistogramCell {
            bounds: descriptor.buckets,
            state: Mutex::new(HistogramState::empty(descriptor.buckets.len())),
        }
    }
    fn flush(&self, instrument: &Self::Instrument, attributes: &[KeyValue]) {
        let taken = {
            let mut s = self.state.lock();
            if s.total == 0 {
                return;
            }
            std::mem::replace(&mut *s, HistogramState::empty(self.bounds.len()))
        };
        replay(self.bounds, &taken, &mut |v| {
            instrument.record(v, attributes)
        });
    }
}

/// Replays per-bucket counts and sums as observations: the minimum and the maximum as
/// themselves, and the rest of each bucket at its mean (which lies in the bucket), so that
/// the receiving histogram gets exactly the same bucket counts, count, sum, min and max.
fn replay(bounds: &[f64], s: &HistogramState, record: &mut dyn FnMut(f64)) {
    let bucket_of = |v: f64| bounds.partition_point(|b| *b < v);
    let (min_bucket, max_bucket) = (bucket_of(s.min), bucket_of(s.max));
    for (i, (&count, &sum)) in s.counts.iter().zip(&s.sums).enumerate() {
        let (mut left, mut rest) = (count, sum);
        if left > 0 && i == min_bucket {
            record(s.min);
            left -= 1;
            rest -= s.min;
        }
        if left > 0 && i == max_bucket {
            record(s.max);
            left -= 1;
            rest -= s.max;
        }
        if left == 0 {
            continue;
        }
        let mut mean = rest / left as f64;
        // Rounding must not move the mean out of its bucket (or past min / max).
        let low = if i == 0 {
            f64::NEG_INFINITY
        } else {
            bounds[i - 1]
        };
        let high = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        mean = mean.clamp(s.min.max(low), s.max.min(high));
        if mean <= low {
            mean = next_up(low).min(high);
        }
        for _ in 0..left {
            record(mean);
        }
    }
}

fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
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
        self.family.series(&labels).cell.record(value);
    }

    /// The metric's catalogue entry.
    pub fn descriptor(&self) -> &MetricDescriptor {
        &self.family.descriptor
    }
}

impl BoundHistogram {
    /// Records `value` (NaN is ignored).
    #[inline]
    pub fn record(&self, value: f64) {
        self.series.cell.record(value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_reproduces_counts_sums_min_and_max_exactly() {
        let bounds = [1.0, 5.0, 10.0];
        let cell = HistogramCell {
            bounds: &[1.0, 5.0, 10.0],
            state: Mutex::new(HistogramState::empty(3)),
        };
        let values = [0.5, 0.7, 1.0, 2.0, 3.0, 4.5, 5.0, 9.9, 12.0, 40.0, 0.1];
        for v in values {
            cell.record(v);
        }
        let state = cell.state.lock().clone();
        let mut replayed = Vec::new();
        replay(&bounds, &state, &mut |v| replayed.push(v));
        let count = |vs: &[f64], i: usize| {
            vs.iter()
                .filter(|v| bounds.partition_point(|b| *b < **v) == i)
                .count()
        };
        for i in 0..4 {
            assert_eq!(count(&replayed, i), count(&values, i), "bucket {i}");
        }
        let sum = |vs: &[f64]| vs.iter().sum::<f64>();
        assert!((sum(&replayed) - sum(&values)).abs() < 1e-9);
        let min = replayed.iter().copied().fold(f64::INFINITY, f64::min);
        let max = replayed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((min, max), (0.1, 40.0));
        assert_eq!(replayed.len(), values.len());
    }
}
