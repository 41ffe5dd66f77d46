//! Metric attributes are redacted when they are recorded, before aggregation, so no secret
//! ever becomes a series: the pipeline's meters come from [`RedactingMeterProvider`].

use std::sync::Arc;

use opentelemetry::metrics::{
    AsyncInstrument, AsyncInstrumentBuilder, Counter, Gauge, Histogram, HistogramBuilder,
    InstrumentBuilder, InstrumentProvider, Meter, MeterProvider, ObservableCounter,
    ObservableGauge, ObservableUpDownCounter, SyncInstrument, UpDownCounter,
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

struct RedactingSync<T> {
    record: Record<T>,
    redactor: LabelGuard,
}

impl<T> SyncInstrument<T> for RedactingSync<T> {
    fn measure(&self, measurement: T, attributes: &[KeyValue]) {
        match self.redactor.redact_attribute_slice(attributes) {
            None => (self.record)(measurement, attributes),
            Some(redacted) => (self.record)(measurement, &redacted),
        }
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
            $kind::new(Arc::new(RedactingSync::<$value> {
                record: Box::new(move |v, a| inner.$record(v, a)),
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
            Histogram::new(Arc::new(RedactingSync::<$value> {
                record: Box::new(move |v, a| inner.record(v, a)),
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
