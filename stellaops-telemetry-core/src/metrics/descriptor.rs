//! What a catalogue metric is: its name, kind, unit, help, label names and buckets, and the
//! typed definitions (`CounterDef<L>`, …) that carry its label struct.

use std::marker::PhantomData;

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A monotonic count (`_total`).
    Counter,
    /// A distribution over explicit buckets.
    Histogram,
    /// A value that is set (last value wins).
    Gauge,
    /// A value that goes up and down by increments (in-flight requests, active jobs).
    UpDownCounter,
}

impl MetricKind {
    /// The kind's name as the catalogue writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
            MetricKind::Gauge => "gauge",
            MetricKind::UpDownCounter => "updown_counter",
        }
    }

    /// The Prometheus `# TYPE` of the exposed metric.
    pub const fn prometheus_type(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
            MetricKind::Gauge | MetricKind::UpDownCounter => "gauge",
        }
    }
}

/// Everything the catalogue says about one metric.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MetricDescriptor {
    /// The exposed name, exactly (`stellaops_request_total`).
    pub name: &'static str,
    /// Its kind.
    pub kind: MetricKind,
    /// Its UCUM unit: a base unit (`s`, `By`, `1`) or an annotation (`{request}`).
    pub unit: &'static str,
    /// Help text (required).
    pub help: &'static str,
    /// Label names, in the order of the label struct's fields.
    pub labels: &'static [&'static str],
    /// Histogram bucket boundaries (upper bounds), empty for other kinds.
    pub buckets: &'static [f64],
}

impl MetricDescriptor {
    /// Whether the metric carries label `name`.
    pub fn has_label(&self, name: &str) -> bool {
        self.labels.contains(&name)
    }
}

/// A metric's label struct: its label names, and the same struct borrowing its values.
/// Written by [`declare_metrics!`](crate::declare_metrics), never by hand.
pub trait Labels: 'static {
    /// The label names, in field order.
    const NAMES: &'static [&'static str];
    /// The struct with borrowed values, as the recording methods take it.
    type At<'a>: LabelValues;
}

/// The label values of one series, in the order of [`Labels::NAMES`].
pub trait LabelValues {
    /// Calls `f` with each value in order.
    fn each_value(&self, f: &mut dyn FnMut(&str));
}

/// Strips the `r#` of a raw identifier (`r#type` labels a metric `type`).
#[doc(hidden)]
pub const fn label_name(ident: &'static str) -> &'static str {
    let bytes = ident.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'r' && bytes[1] == b'#' {
        let (_, rest) = bytes.split_at(2);
        match std::str::from_utf8(rest) {
            Ok(name) => name,
            Err(_) => ident,
        }
    } else {
        ident
    }
}

macro_rules! typed_def {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        pub struct $name<L: Labels> {
            descriptor: MetricDescriptor,
            labels: PhantomData<fn() -> L>,
        }

        impl<L: Labels> $name<L> {
            #[doc(hidden)]
            pub const fn __new(
                name: &'static str,
                unit: &'static str,
                help: &'static str,
                buckets: &'static [f64],
            ) -> Self {
                $name {
                    descriptor: MetricDescriptor {
                        name,
                        kind: $kind,
                        unit,
                        help,
                        labels: L::NAMES,
                        buckets,
                    },
                    labels: PhantomData,
                }
            }

            /// What the catalogue says about this metric.
            pub const fn descriptor(&self) -> &MetricDescriptor {
                &self.descriptor
            }
        }

        impl<L: Labels> std::fmt::Debug for $name<L> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.descriptor.name).finish()
            }
        }
    };
}

typed_def!(
    /// A counter of the catalogue; `Metrics::counter` gives its handle.
    CounterDef,
    MetricKind::Counter
);
typed_def!(
    /// A histogram of the catalogue; `Metrics::histogram` gives its handle.
    HistogramDef,
    MetricKind::Histogram
);
typed_def!(
    /// A gauge of the catalogue; `Metrics::gauge` gives its handle.
    GaugeDef,
    MetricKind::Gauge
);
typed_def!(
    /// An up-down counter of the catalogue; `Metrics::up_down_counter` gives its handle.
    UpDownCounterDef,
    MetricKind::UpDownCounter
);
