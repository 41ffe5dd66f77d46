//! Metric attributes are redacted when they are recorded, before aggregation, so no secret
//! ever becomes a series: the pipeline's meters come from [`RedactingMeterProvider`].

use std::sync::Arc;

use opentelemetry::metrics::{
    AsyncInstrument, AsyncInstrumentBuilder, BoundSyncInstrument, Counter, Gauge, Histogram,
    HistogramBuilder, InstrumentBuilder, InstrumentProvider, Meter, MeterProvider,
    ObservableCounter, ObservableGauge, ObservableUpDownCounter, SyncInstrument, UpDownCounter,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use super::Redactor;
use crate::limits::ValueBounds;

/// A meter provider whose instruments pass every attribute set through the [`Redactor`]
/// before the SDK aggregates it. `install()` makes it the global meter provider.
/// String attribute values are also cut to the pipeline's label value limit first.
#[derive(Clone, Debug)]
pub struct RedactingMeterProvider {
    sdk: SdkMeterProvider,
    redactor: LabelGuard,
}

impl RedactingMeterProvider {
    pub(crate) fn new(sdk: SdkMeterProvider, redactor: Redactor, bounds: ValueBounds) -> Self {
        RedactingMeterProvider {
            sdk,
            redactor: LabelGuard { redactor, bounds },
        }
    }
}

/// What every attribute set recorded through the provider passes: the label value limit,
/// then the redactor.
#[derive(Clone, Debug)]
struct LabelGuard {
    redactor: Redactor,
    bounds: ValueBounds,
}

impl LabelGuard {
    /// The attributes to record instead of `attributes`, when any must change.
    fn redact_attribute_slice(&self, attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
        let limit = self.bounds.limits().label_value_bytes;
        let long = attributes.iter().any(|kv| match &kv.value {
            Value::String(s) => s.as_str().len() > limit,
            _ => false,
        });
        if !long {
            return self.redactor.redact_attribute_slice(attributes);
        }
        let mut bounded = attributes.to_vec();
        for kv in &mut bounded {
            if let Value::String(s) = &kv.value {
                let cut = self.bounds.label_value(s.as_str(), &self.redactor);
                if let std::borrow::Cow::Owned(cut) = cut {
                    kv.value = Value::String(cut.into());
                }
            }
        }
        Some(
            self.redactor
                .redact_attribute_slice(&bounded)
                .unwrap_or(bounded),
        )
    }
}

impl MeterProvider for RedactingMeterProvider {
    fn meter_with_scope(&self, scope: InstrumentationScope) -> Meter {
        Meter::new(Arc::new(RedactingInstruments {
            meter: self.sdk.meter_with_scope(scope),
            redactor: self.redactor.clone(),
        }))
    }
}

struct RedactingInstruments {
    meter: Meter,
    redactor: LabelGuard,
}

type Record<T> = Box<dyn Fn(T, &[KeyValue]) + Send + Sync>;
type BoundRecord<T> = Box<dyn Fn(T) + Send + Sync>;
type Bind<T> = Box<dyn Fn(&[KeyValue]) -> BoundRecord<T> + Send + Sync>;

struct RedactingSync<T> {
    record: Record<T>,
    bind: Bind<T>,
    redactor: LabelGuard,
}

impl<T: 'static> SyncInstrument<T> for RedactingSync<T> {
    fn measure(&self, measurement: T, attributes: &[KeyValue]) {
        match self.redactor.redact_attribute_slice(attributes) {
            None => (self.record)(measurement, attributes),
            Some(redacted) => (self.record)(measurement, &redacted),
        }
    }

    /// Bound instruments are redacted once, when bound (without this, the API's default
    /// would hand out a handle that drops every measurement).
    fn bind(&self, attributes: &[KeyValue]) -> Box<dyn BoundSyncInstrument<T> + Send + Sync> {
        let record = match self.redactor.redact_attribute_slice(attributes) {
            None => (self.bind)(attributes),
            Some(redacted) => (self.bind)(&redacted),
        };
        Box::new(RedactedBound(record))
    }
}

/// A handle bound to redacted attributes.
struct RedactedBound<T>(BoundRecord<T>);

impl<T> BoundSyncInstrument<T> for RedactedBound<T> {
    fn measure(&self, measurement: T) {
        (self.0)(measurement)
    }
}

struct RedactingObserver<'a, T> {
    inner: &'a dyn AsyncInstrument<T>,
    redactor: &'a LabelGuard,
}

impl<T> AsyncInstrument<T> for RedactingObserver<'_, T> {
    fn observe(&self, measurement: T, attributes: &[KeyValue]) {
        match self.redactor.redact_attribute_slice(attributes) {
            None => self.inner.observe(measurement, attributes),
            Some(redacted) => self.inner.observe(measurement, &redacted),
        }
    }
}

macro_rules! sync_instrument {
    ($method:ident, $kind:ident, $value:ty, $record:ident) => {
        fn $method(&self, b: InstrumentBuilder<'_, $kind<$value>>) -> $kind<$value> {
            let mut builder = self.meter.$method(b.name);
            if let Some(description) = b.description {
                builder = builder.with_description(description);
            }
            if let Some(unit) = b.unit {
                builder = builder.with_unit(unit);
            }
            let inner = builder.build();
            let to_bind = inner.clone();
            $kind::new(Arc::new(RedactingSync::<$value> {
                record: Box::new(move |v, a| inner.$record(v, a)),
                bind: Box::new(move |a| {
                    let bound = to_bind.bind(a);
                    Box::new(move |v| bound.$record(v))
                }),
                redactor: self.redactor.clone(),
            }))
        }
    };
}

macro_rules! histogram {
    ($method:ident, $value:ty) => {
        fn $method(&self, b: HistogramBuilder<'_, Histogram<$value>>) -> Histogram<$value> {
            let mut builder = self.meter.$method(b.name);
            if let Some(description) = b.description {
                builder = builder.with_description(description);
            }
            if let Some(unit) = b.unit {
                builder = builder.with_unit(unit);
            }
            if let Some(boundaries) = b.boundaries {
                builder = builder.with_boundaries(boundaries);
            }
            let inner = builder.build();
            let to_bind = inner.clone();
            Histogram::new(Arc::new(RedactingSync::<$value> {
                record: Box::new(move |v, a| inner.record(v, a)),
                bind: Box::new(move |a| {
                    let bound = to_bind.bind(a);
                    Box::new(move |v| bound.record(v))
                }),
                redactor: self.redactor.clone(),
            }))
        }
    };
}

macro_rules! observable {
    ($method:ident, $kind:ident, $value:ty) => {
        fn $method(&self, b: AsyncInstrumentBuilder<'_, $kind<$value>, $value>) -> $kind<$value> {
            let mut builder = self.meter.$method(b.name);
            if let Some(description) = b.description {
                builder = builder.with_description(description);
            }
            if let Some(unit) = b.unit {
                builder = builder.with_unit(unit);
            }
            for callback in b.callbacks {
                let redactor = self.redactor.clone();
                builder = builder.with_callback(move |observer| {
                    callback(&RedactingObserver {
                        inner: observer,
                        redactor: &redactor,
                    })
                });
            }
            builder.build()
        }
    };
}

impl InstrumentProvider for RedactingInstruments {
    sync_instrument!(u64_counter, Counter, u64, add);
    sync_instrument!(f64_counter, Counter, f64, add);
    sync_instrument!(i64_up_down_counter, UpDownCounter, i64, add);
    sync_instrument!(f64_up_down_counter, UpDownCounter, f64, add);
    sync_instrument!(u64_gauge, Gauge, u64, record);
    sync_instrument!(f64_gauge, Gauge, f64, record);
    sync_instrument!(i64_gauge, Gauge, i64, record);
    histogram!(f64_histogram, f64);
    histogram!(u64_histogram, u64);
    observable!(u64_observable_counter, ObservableCounter, u64);
    observable!(f64_observable_counter, ObservableCounter, f64);
    observable!(i64_observable_up_down_counter, ObservableUpDownCounter, i64);
    observable!(f64_observable_up_down_counter, ObservableUpDownCounter, f64);
    observable!(u64_observable_gauge, ObservableGauge, u64);
    observable!(i64_observable_gauge, ObservableGauge, i64);
    observable!(f64_observable_gauge, ObservableGauge, f64);
}

#[cfg(test)]
#[cfg(feature = "testing")]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    use super::*;
    use crate::redaction::REDACTED;

    #[test]
    fn bound_instruments_record_under_redacted_attributes() {
        let exporter = InMemoryMetricExporter::default();
        let sdk = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let provider =
            RedactingMeterProvider::new(sdk.clone(), Redactor::default(), ValueBounds::default());
        let meter = provider.meter("test");
        let attributes = [KeyValue::new("password", "hunter2")];
        let histogram = meter.f64_histogram("h").build().bind(&attributes);
        let counter = meter.u64_counter("c").build().bind(&attributes);
        histogram.record(0.5);
        histogram.record(1.5);
        counter.add(3);
        sdk.force_flush().unwrap();

        let mut seen = Vec::new();
        for rm in exporter.get_finished_metrics().unwrap() {
            for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
                let (count, attrs): (f64, Vec<KeyValue>) = match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        let p = h.data_points().next().unwrap();
                        (p.count() as f64, p.attributes().cloned().collect())
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        let p = s.data_points().next().unwrap();
                        (p.value() as f64, p.attributes().cloned().collect())
                    }
                    _ => continue,
                };
                assert_eq!(attrs, [KeyValue::new("password", REDACTED)]);
                seen.push((metric.name().to_owned(), count));
            }
        }
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(seen, [("c".to_owned(), 3.0), ("h".to_owned(), 2.0)]);
    }
}
