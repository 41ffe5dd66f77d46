//! The naming rules every metric obeys, catalogue and service alike, checked at compile time
//! by [`declare_metrics!`](crate::declare_metrics) and at run time by [`check`].
//!
//! - names are snake_case: `[a-z][a-z0-9_]*`, no `__`, no trailing `_`;
//! - help text is required;
//! - units are base units: `s`, `By`, `1`, or an annotation such as `{request}` (no `ms`,
//!   `KiBy`, `min`; no `_milliseconds` in a name);
//! - counters end in `_total`, and nothing else does;
//! - a name carries its unit's suffix: `_seconds` for `s`, `_bytes` for `By` (before `_total`
//!   on a counter), and a name with such a suffix has that unit;
//! - histograms have a unit suffix and explicit, finite, strictly increasing buckets; other
//!   kinds have none;
//! - label names are `[a-zA-Z_][a-zA-Z0-9_]*`, unique, not reserved (`le`, `quantile`, a
//!   leading `__`).

use super::descriptor::{MetricDescriptor, MetricKind};

/// One broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamingViolation {
    /// The name is not snake_case.
    #[error("metric names are snake_case: [a-z][a-z0-9_]*, no `__`, no trailing `_`")]
    NotSnakeCase,
    /// No help text.
    #[error("every metric needs help text")]
    MissingHelp,
    /// The unit is not a base unit or an annotation.
    #[error("units are base units (`s`, `By`, `1`) or annotations such as `{{request}}`")]
    NotBaseUnit,
    /// The name spells a non-base unit.
    #[error("names use base units: `_seconds`, `_bytes`, not `_milliseconds`, `_kilobytes`, …")]
    NonBaseUnitInName,
    /// A counter whose name does not end in `_total`.
    #[error("counter names end in `_total`")]
    CounterWithoutTotal,
    /// A non-counter whose name ends in `_total`.
    #[error("only counters end in `_total`")]
    TotalOnNonCounter,
    /// The name lacks the suffix of its unit.
    #[error("the name must carry its unit's suffix (`_seconds` for `s`, `_bytes` for `By`)")]
    MissingUnitSuffix,
    /// The name's unit suffix contradicts its unit.
    #[error("a name ending in `_seconds` / `_bytes` has unit `s` / `By`")]
    UnitSuffixMismatch,
    /// A histogram without a unit suffix.
    #[error("histogram names end in a unit suffix (`_seconds`, `_bytes`, `_ratio`)")]
    HistogramWithoutUnitSuffix,
    /// A histogram without buckets, or with buckets not finite and strictly increasing.
    #[error("histograms set explicit buckets: finite and strictly increasing")]
    BadBuckets,
    /// Buckets on a kind that has none.
    #[error("only histograms have buckets")]
    BucketsOnNonHistogram,
    /// A malformed or reserved label name.
    #[error("label names are [a-zA-Z_][a-zA-Z0-9_]*, not `le`, `quantile` or `__…`")]
    BadLabelName,
    /// The same label twice.
    #[error("label names are unique")]
    DuplicateLabel,
}

impl NamingViolation {
    /// The rule, as a sentence (the compile-time message).
    pub const fn message(self) -> &'static str {
        match self {
            NamingViolation::NotSnakeCase => {
                "metric names are snake_case: [a-z][a-z0-9_]*, no `__`, no trailing `_`"
            }
            NamingViolation::MissingHelp => "every metric needs help text",
            NamingViolation::NotBaseUnit => {
                "units are base units (`s`, `By`, `1`) or annotations such as `{request}`"
            }
            NamingViolation::NonBaseUnitInName => {
                "names use base units: `_seconds`, `_bytes`, not `_milliseconds`, `_kilobytes`, …"
            }
            NamingViolation::CounterWithoutTotal => "counter names end in `_total`",
            NamingViolation::TotalOnNonCounter => "only counters end in `_total`",
            NamingViolation::MissingUnitSuffix => {
                "the name must carry its unit's suffix (`_seconds` for `s`, `_bytes` for `By`)"
            }
            NamingViolation::UnitSuffixMismatch => {
                "a name ending in `_seconds` / `_bytes` has unit `s` / `By`"
            }
            NamingViolation::HistogramWithoutUnitSuffix => {
                "histogram names end in a unit suffix (`_seconds`, `_bytes`, `_ratio`)"
            }
            NamingViolation::BadBuckets => {
                "histograms set explicit buckets: finite and strictly increasing"
            }
            NamingViolation::BucketsOnNonHistogram => "only histograms have buckets",
            NamingViolation::BadLabelName => {
                "label names are [a-zA-Z_][a-zA-Z0-9_]*, not `le`, `quantile` or `__…`"
            }
            NamingViolation::DuplicateLabel => "label names are unique",
        }
    }
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn ends_with(a: &[u8], suffix: &[u8]) -> bool {
    if a.len() < suffix.len() {
        return false;
    }
    let (_, tail) = a.split_at(a.len() - suffix.len());
    eq(tail, suffix)
}

const fn strip_suffix<'a>(a: &'a [u8], suffix: &[u8]) -> &'a [u8] {
    if ends_with(a, suffix) {
        a.split_at(a.len() - suffix.len()).0
    } else {
        a
    }
}

const fn contains(a: &[u8], needle: &[u8]) -> bool {
    if a.len() < needle.len() {
        return false;
    }
    let mut i = 0;
    while i + needle.len() <= a.len() {
        let (_, rest) = a.split_at(i);
        let (window, _) = rest.split_at(needle.len());
        if eq(window, needle) {
            return true;
        }
        i += 1;
    }
    false
}

const fn is_snake_case(name: &[u8]) -> bool {
    if name.is_empty() || !name[0].is_ascii_lowercase() || name[name.len() - 1] == b'_' {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
        if b == b'_' && i + 1 < name.len() && name[i + 1] == b'_' {
            return false;
        }
        i += 1;
    }
    true
}

const fn is_base_unit(unit: &[u8]) -> bool {
    if eq(unit, b"s") || eq(unit, b"By") || eq(unit, b"1") {
        return true;
    }
    // `{annotation}`: a count of something, no unit to convert.
    if unit.len() < 3 || unit[0] != b'{' || unit[unit.len() - 1] != b'}' {
        return false;
    }
    let mut i = 1;
    while i + 1 < unit.len() {
        let b = unit[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            return false;
        }
        i += 1;
    }
    true
}

const NON_BASE_WORDS: [&[u8]; 10] = [
    b"_milliseconds",
    b"_microseconds",
    b"_nanoseconds",
    b"_minutes",
    b"_hours",
    b"_days",
    b"_kilobytes",
    b"_megabytes",
    b"_gigabytes",
    b"_ms",
];

const fn is_label_name(label: &[u8]) -> bool {
    if label.is_empty() || eq(label, b"le") || eq(label, b"quantile") {
        return false;
    }
    if label.len() >= 2 && label[0] == b'_' && label[1] == b'_' {
        return false;
    }
    if label[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < label.len() {
        if !(label[i].is_ascii_alphanumeric() || label[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Checks `d` against every rule; the first broken one is the error.
pub const fn check(d: &MetricDescriptor) -> Result<(), NamingViolation> {
    let name = d.name.as_bytes();
    let unit = d.unit.as_bytes();
    if !is_snake_case(name) {
        return Err(NamingViolation::NotSnakeCase);
    }
    if d.help.is_empty() {
        return Err(NamingViolation::MissingHelp);
    }
    if !is_base_unit(unit) {
        return Err(NamingViolation::NotBaseUnit);
    }
    let mut w = 0;
    while w < NON_BASE_WORDS.len() {
        let word = NON_BASE_WORDS[w];
        let mut padded = [0u8; 16];
        let mut k = 0;
        while k < word.len() {
            padded[k] = word[k];
            k += 1;
        }
        padded[word.len()] = b'_';
        let (with_sep, _) = padded.split_at(word.len() + 1);
        if ends_with(name, word) || contains(name, with_sep) {
            return Err(NamingViolation::NonBaseUnitInName);
        }
        w += 1;
    }
    let is_counter = matches!(d.kind, MetricKind::Counter);
    let total = ends_with(name, b"_total");
    if is_counter && !total {
        return Err(NamingViolation::CounterWithoutTotal);
    }
    if !is_counter && total {
        return Err(NamingViolation::TotalOnNonCounter);
    }
    // The part of the name that carries the unit (before `_total`).
    let stem = strip_suffix(name, b"_total");
    let seconds = ends_with(stem, b"_seconds");
    let bytes = ends_with(stem, b"_bytes");
    let ratio = ends_with(stem, b"_ratio");
    if (eq(unit, b"s") && !seconds) || (eq(unit, b"By") && !bytes) {
        return Err(NamingViolation::MissingUnitSuffix);
    }
    if (seconds && !eq(unit, b"s")) || (bytes && !eq(unit, b"By")) || (ratio && !eq(unit, b"1")) {
        return Err(NamingViolation::UnitSuffixMismatch);
    }
    let is_histogram = matches!(d.kind, MetricKind::Histogram);
    if is_histogram {
        if !(seconds || bytes || ratio) {
            return Err(NamingViolation::HistogramWithoutUnitSuffix);
        }
        if d.buckets.is_empty() {
            return Err(NamingViolation::BadBuckets);
        }
        let mut i = 0;
        while i < d.buckets.len() {
            let b = d.buckets[i];
            if !b.is_finite() || (i > 0 && b <= d.buckets[i - 1]) {
                return Err(NamingViolation::BadBuckets);
            }
            i += 1;
        }
    } else if !d.buckets.is_empty() {
        return Err(NamingViolation::BucketsOnNonHistogram);
    }
    let mut i = 0;
    while i < d.labels.len() {
        let label = d.labels[i].as_bytes();
        if !is_label_name(label) {
            return Err(NamingViolation::BadLabelName);
        }
        let mut j = 0;
        while j < i {
            if eq(d.labels[j].as_bytes(), label) {
                return Err(NamingViolation::DuplicateLabel);
            }
            j += 1;
        }
        i += 1;
    }
    Ok(())
}

/// [`check`], failing compilation when it is used in a constant.
#[doc(hidden)]
#[allow(clippy::panic)]
pub const fn assert_valid(d: &MetricDescriptor) {
    if let Err(violation) = check(d) {
        panic!("{}", violation.message())
    }
}
