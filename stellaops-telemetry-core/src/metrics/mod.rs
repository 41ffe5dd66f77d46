//! Metrics: the house catalogue as typed handles, the naming rules, per-metric cardinality
//! limits, and the Prometheus exposition.

pub mod catalogue;
mod declare;
mod descriptor;
pub mod naming;

pub use descriptor::{
    CounterDef, GaugeDef, HistogramDef, LabelValues, Labels, MetricDescriptor, MetricKind,
    UpDownCounterDef, label_name,
};
mod registry;

pub(crate) use registry::set_global;
pub use registry::{
    BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter, Counter,
    DEFAULT_CARDINALITY_LIMIT, Gauge, Histogram, Metrics, OVERFLOW_ATTRIBUTE, UpDownCounter,
    global,
};
mod prometheus;

pub use prometheus::{CONTENT_TYPE, ExpositionError, MetricsService, PrometheusExposition};
