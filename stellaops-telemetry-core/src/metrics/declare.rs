//! `declare_metrics!`: how the catalogue, and every service, declares a metric.

/// Declares metrics with typed label structs, checked at compile time against the
/// [naming rules](crate::metrics::naming).
///
/// Each entry declares a constant (the metric's definition) and its label struct, whose
/// fields are the label names: a missing or extra label, or a misspelled metric, does not
/// compile. A raw identifier (`r#type`) declares a label named like a keyword.
///
/// ```
/// stellaops_telemetry_core::declare_metrics! {
///     /// Exports the vault rotated, by outcome.
///     pub counter VAULT_ROTATIONS_TOTAL = "vault_rotations_total" {
///         unit: "{rotation}",
///         help: "Secret rotations, by outcome",
///         labels: VaultRotationLabels { outcome, r#type },
///     }
///     /// How long a rotation took.
///     pub histogram VAULT_ROTATION_DURATION_SECONDS = "vault_rotation_duration_seconds" {
///         unit: "s",
///         help: "Secret rotation duration",
///         labels: VaultRotationDurationLabels {},
///         buckets: &[0.1, 0.5, 1.0, 5.0, 30.0],
///     }
/// }
///
/// assert_eq!(VAULT_ROTATIONS_TOTAL.descriptor().labels, ["outcome", "type"]);
/// let _labels = VaultRotationLabels { outcome: "ok", r#type: "kv" };
/// ```
///
/// A counter that does not end in `_total` (or any other broken rule) fails to compile:
///
/// ```compile_fail,E0080
/// stellaops_telemetry_core::declare_metrics! {
///     pub counter REQUESTS = "vault_requests" {
///         unit: "{request}",
///         help: "Requests",
///         labels: RequestLabels { status },
///     }
/// }
/// ```
#[macro_export]
macro_rules! declare_metrics {
    ($(
        $(#[$meta:meta])*
        $vis:vis $kind:ident $ident:ident = $name:literal {
            unit: $unit:literal,
            help: $help:literal,
            labels: $labels:ident { $($label:ident),* $(,)? }
            $(, buckets: $buckets:expr)?
            $(,)?
        }
    )*) => {
        $(
            $crate::__metric_labels!($vis $ident $labels { $($label),* });
            $(#[$meta])*
            $vis const $ident: $crate::__metric_def!($kind $labels { $($label),* }) =
                <$crate::__metric_def!($kind $labels { $($label),* })>::__new(
                    $name,
                    $unit,
                    $help,
                    $crate::__metric_buckets!($($buckets)?),
                );
            const _: () = $crate::metrics::naming::assert_valid($ident.descriptor());
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_buckets {
    () => {
        &[]
    };
    ($buckets:expr) => {
        $buckets
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_def {
    ($kind:ident $labels:ident {}) => { $crate::__metric_def!(@kind $kind $labels) };
    ($kind:ident $labels:ident { $($label:ident),+ }) => {
        $crate::__metric_def!(@kind $kind $labels<'static>)
    };
    (@kind counter $labels:ty) => { $crate::metrics::CounterDef<$labels> };
    (@kind histogram $labels:ty) => { $crate::metrics::HistogramDef<$labels> };
    (@kind gauge $labels:ty) => { $crate::metrics::GaugeDef<$labels> };
    (@kind updown_counter $labels:ty) => { $crate::metrics::UpDownCounterDef<$labels> };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_labels {
    ($vis:vis $ident:ident $labels:ident {}) => {
        // In a module named like the metric, so `#[instrument]` finds the label struct from
        // the metric's path alone; re-exported under its own name.
        #[doc(hidden)]
        #[allow(non_snake_case)]
        $vis mod $ident {
            /// The (empty) label set of a metric without labels.
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            pub struct Labels {}

            impl $crate::metrics::Labels for Labels {
                const NAMES: &'static [&'static str] = &[];
                type At<'a> = Labels;
            }

            impl $crate::metrics::LabelValues for Labels {
                fn each_value(&self, _f: &mut dyn FnMut(&str)) {}
            }
        }
        $vis use $ident::Labels as $labels;
    };
    ($vis:vis $ident:ident $labels:ident { $($label:ident),+ }) => {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        $vis mod $ident {
            /// The labels of one series, one field per label.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            #[allow(non_snake_case)]
            pub struct Labels<'a> {
                $(
                    #[allow(missing_docs)]
                    pub $label: &'a str,
                )+
            }

            impl $crate::metrics::Labels for Labels<'static> {
                const NAMES: &'static [&'static str] =
                    &[$($crate::metrics::label_name(stringify!($label))),+];
                type At<'a> = Labels<'a>;
            }

            impl $crate::metrics::LabelValues for Labels<'_> {
                fn each_value(&self, f: &mut dyn FnMut(&str)) {
                    $(f(self.$label);)+
                }
            }
        }
        $vis use $ident::Labels as $labels;
    };
}
