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
