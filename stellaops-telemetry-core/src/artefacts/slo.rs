//! Service-level objectives declared as data, and the Prometheus rules they generate: error
//! ratio recording rules over 5m, 30m, 1h, 2h, 6h, 1d and 3d, and multi-window,
//! multi-burn-rate alerts (the SRE workbook's pairs), with `promtool test rules` cases.
//!
//! An [`Slo`] names what is measured ([`Indicator`]), the objective (the share of good
//! events, e.g. `0.999`) and the window the error budget is spent over (e.g. 30 days). Each
//! [`BURN_RATES`] pair alerts when both its long and its short window burn the budget faster
//! than its factor; the factors are derived from the window (the share of the budget the
//! long window may spend), which gives the workbook's 14.4, 6, 3 and 1 for 30 days.
//!
//! ```
//! use std::time::Duration;
//! use stellaops_telemetry_core::artefacts::slo::{Indicator, Slo, SloError};
//! use stellaops_telemetry_core::metrics::catalogue::STELLAOPS_REQUEST_TOTAL;
//!
//! let slo = Slo {
//!     name: "stellaops_request_availability",
//!     alert: "RequestAvailabilityBudgetBurn",
//!     objective: 0.999,
//!     window: Duration::from_secs(30 * 86_400),
//!     by: &["service"],
//!     indicator: Indicator::Errors {
//!         requests: STELLAOPS_REQUEST_TOTAL.descriptor(),
//!         label: "status",
//!         errors: "5..",
//!         error_example: "503",
//!         ok_example: "200",
//!     },
//! };
//! assert_eq!(slo.validate(), Ok(()));
//! assert_eq!(slo.burn_factors(), [14.4, 6.0, 3.0, 1.0]);
//! let bad = Slo { objective: 1.0, ..slo };
//! assert!(matches!(bad.validate(), Err(SloError::Objective { .. })));
//! ```

use std::time::Duration;

use super::alerts::expand;
use super::yaml::{MapBuilder, Yaml, document, s};
use super::{Artefact, ArtefactError, ArtefactKind, checked, generated_notice};
use crate::metrics::catalogue::{STELLAOPS_REQUEST_DURATION_SECONDS, STELLAOPS_REQUEST_TOTAL};
use crate::metrics::{MetricDescriptor, MetricKind};

/// The file name of the SLO recording and alert rules.
pub const SLO_RULES_FILE: &str = "stellaops-slo.yaml";
/// The file name of [`SLO_RULES_FILE`]'s `promtool test rules` unit tests.
pub const SLO_TESTS_FILE: &str = "stellaops-slo.test.yaml";

/// The windows every SLO's error ratio is recorded over, with their length in seconds.
pub const RATIO_WINDOWS: [(&str, u64); 7] = [
    ("5m", 300),
    ("30m", 1_800),
    ("1h", 3_600),
    ("2h", 7_200),
    ("6h", 21_600),
    ("1d", 86_400),
    ("3d", 259_200),
];

/// One multi-window burn-rate alert: it fires when the error ratio over both `long` and
/// `short` exceeds `budget_percent` % of the budget spent in `long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnRate {
    /// The long window, e.g. `1h`.
    pub long: &'static str,
    /// The long window in seconds.
    pub long_seconds: u64,
    /// The short window (a twelfth of the long one), e.g. `5m`.
    pub short: &'static str,
    /// The share of the whole window's budget, in percent, spent in `long` at the alerting
    /// burn rate.
    pub budget_percent: u64,
    /// `critical` (page) or `warning` (ticket).
    pub severity: &'static str,
    /// How long the condition must hold before the alert fires.
    pub for_: &'static str,
}

/// The SRE workbook's pairs: 1h/5m and 6h/30m page (`critical`), 1d/2h and 3d/6h open a
/// ticket (`warning`).
pub const BURN_RATES: [BurnRate; 4] = [
    BurnRate {
        long: "1h",
        long_seconds: 3_600,
        short: "5m",
        budget_percent: 2,
        severity: "critical",
        for_: "2m",
    },
    BurnRate {
        long: "6h",
        long_seconds: 21_600,
        short: "30m",
        budget_percent: 5,
        severity: "critical",
        for_: "15m",
    },
    BurnRate {
        long: "1d",
        long_seconds: 86_400,
        short: "2h",
        budget_percent: 10,
        severity: "warning",
        for_: "1h",
    },
    BurnRate {
        long: "3d",
        long_seconds: 259_200,
        short: "6h",
        budget_percent: 10,
        severity: "warning",
        for_: "3h",
    },
];

/// What an SLO measures: which events are bad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Indicator {
    /// Availability: the events of counter `requests` whose `label` matches the regex
    /// `errors` are bad.
    Errors {
        /// The counter of every event (good and bad).
        requests: &'static MetricDescriptor,
        /// The label telling bad events apart, e.g. `status`.
        label: &'static str,
        /// The regex of `label`'s bad values, e.g. `5..`.
        errors: &'static str,
        /// A value of `label` that matches `errors` (for the generated tests).
        error_example: &'static str,
        /// A value of `label` that does not (for the generated tests).
        ok_example: &'static str,
    },
    /// Latency: observations of `histogram` above `threshold` seconds are bad.
    Latency {
        /// The histogram of every event.
        histogram: &'static MetricDescriptor,
        /// The bound, in the histogram's unit; must be one of its bucket bounds.
        threshold: f64,
    },
}

/// A service-level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// The snake_case name in the recording rules' names, e.g. `stellaops_request_availability`
    /// gives `service:stellaops_request_availability_errors:ratio_rate5m`.
    pub name: &'static str,
    /// The alert name of its burn-rate alerts (all four pairs share it, so a critical one
    /// inhibits the warning in Alertmanager).
    pub alert: &'static str,
    /// The share of good events, strictly between 0 and 1 (e.g. `0.999`).
    pub objective: f64,
    /// The window the error budget is spent over (e.g. 30 days); at least 3 days, the
    /// longest burn-rate window.
    pub window: Duration,
    /// The labels the ratios are kept by (each a label of the indicator's metric).
    pub by: &'static [&'static str],
    /// What is measured.
    pub indicator: Indicator,
}

/// Why an [`Slo`] cannot generate rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// The objective is not strictly between 0 and 1.
    #[error("slo `{slo}`: objective {objective} is not strictly between 0 and 1")]
    Objective {
        /// The SLO's name.
        slo: String,
        /// The objective given.
        objective: f64,
    },
    /// The window is zero.
    #[error("slo `{slo}`: the window is zero")]
    ZeroWindow {
        /// The SLO's name.
        slo: String,
    },
    /// The window is shorter than the longest burn-rate window.
    #[error("slo `{slo}`: window of {seconds} s is shorter than the 3d burn-rate window")]
    WindowTooShort {
        /// The SLO's name.
        slo: String,
        /// The window given, in seconds.
        seconds: u64,
    },
    /// A name is not usable in a rule name or an alert name.
    #[error("slo `{slo}`: `{name}` is not a valid {what}")]
    Name {
        /// The SLO's name.
        slo: String,
        /// The name given.
        name: String,
        /// `recording-rule name part` or `alert name`.
        what: &'static str,
    },
    /// The indicator's metric has the wrong kind.
    #[error("slo `{slo}`: `{metric}` is not a {expected}")]
    Kind {
        /// The SLO's name.
        slo: String,
        /// The metric.
        metric: &'static str,
        /// `counter` or `histogram`.
        expected: &'static str,
    },
    /// A latency threshold that is not a bucket bound of the histogram.
    #[error("slo `{slo}`: threshold {threshold} is not a bucket bound of `{metric}`")]
    Threshold {
        /// The SLO's name.
        slo: String,
        /// The threshold given.
        threshold: f64,
        /// The histogram.
        metric: &'static str,
    },
    /// A label the metric does not carry.
    #[error("slo `{slo}`: `{metric}` has no label `{label}`")]
    Label {
        /// The SLO's name.
        slo: String,
        /// The metric.
        metric: &'static str,
        /// The label.
        label: String,
    },
}

fn snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

fn alert_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

impl Slo {
    /// The built-in SLOs: availability 99.9 % over 30 days on `stellaops_request_total` by
    /// service (5xx statuses are errors), and latency 99 % of requests within 0.5 s over 30
    /// days on `stellaops_request_duration_seconds` by service.
    pub fn builtin() -> [Slo; 2] {
        let window = Duration::from_secs(30 * 86_400);
        [
            Slo {
                name: "stellaops_request_availability",
                alert: "RequestAvailabilityBudgetBurn",
                objective: 0.999,
                window,
                by: &["service"],
                indicator: Indicator::Errors {
                    requests: STELLAOPS_REQUEST_TOTAL.descriptor(),
                    label: "status",
                    errors: "5..",
                    error_example: "503",
                    ok_example: "200",
                },
            },
            Slo {
                name: "stellaops_request_latency",
                alert: "RequestLatencyBudgetBurn",
                objective: 0.99,
                window,
                by: &["service"],
                indicator: Indicator::Latency {
                    histogram: STELLAOPS_REQUEST_DURATION_SECONDS.descriptor(),
                    threshold: 0.5,
                },
            },
        ]
    }

    fn error<T>(&self, f: impl FnOnce(String) -> SloError) -> Result<T, SloError> {
        Err(f(self.name.to_owned()))
    }

    /// Checks the declaration: objective, window, names, the metric's kind and labels, and a
    /// latency threshold on a bucket bound.
    ///
    /// # Errors
    ///
    /// The first [`SloError`] found.
    pub fn validate(&self) -> Result<(), SloError> {
        if !(self.objective > 0.0 && self.objective < 1.0) {
            let objective = self.objective;
            return self.error(|slo| SloError::Objective { slo, objective });
        }
        let seconds = self.window.as_secs();
        if self.window.is_zero() {
            return self.error(|slo| SloError::ZeroWindow { slo });
        }
        if seconds < 259_200 {
            return self.error(|slo| SloError::WindowTooShort { slo, seconds });
        }
        for (ok, name, what) in [
            (snake_case(self.name), self.name, "recording-rule name part"),
            (alert_name(self.alert), self.alert, "alert name"),
        ] {
            if !ok {
                let name = name.to_owned();
                return self.error(|slo| SloError::Name { slo, name, what });
            }
        }
        let (metric, labels): (&MetricDescriptor, Vec<&str>) = match self.indicator {
            Indicator::Errors {
                requests, label, ..
            } => {
                if requests.kind != MetricKind::Counter {
                    let metric = requests.name;
                    return self.error(|slo| SloError::Kind {
                        slo,
                        metric,
                        expected: "counter",
                    });
                }
                (requests, vec![label])
            }
            Indicator::Latency {
                histogram,
                threshold,
            } => {
                let metric = histogram.name;
                if histogram.kind != MetricKind::Histogram {
                    return self.error(|slo| SloError::Kind {
                        slo,
                        metric,
                        expected: "histogram",
                    });
                }
                if !histogram.buckets.contains(&threshold) {
                    return self.error(|slo| SloError::Threshold {
                        slo,
                        threshold,
                        metric,
                    });
                }
                (histogram, Vec::new())
            }
        };
        for label in labels.into_iter().chain(self.by.iter().copied()) {
            if !metric.has_label(label) {
                let (metric, label) = (metric.name, label.to_owned());
                return self.error(|slo| SloError::Label { slo, metric, label });
            }
        }
        Ok(())
    }

    /// The burn-rate factor of each [`BURN_RATES`] pair: the multiple of the budget rate at
    /// which the pair's share of the budget is spent in its long window (14.4, 6, 3 and 1
    /// for a 30-day window).
    pub fn burn_factors(&self) -> [f64; 4] {
        let window = u128::from(self.window.as_secs());
        BURN_RATES.map(|b| {
            // One division of exact integers, so 30 days give exactly 14.4, not 14.400000000000002.
            (u128::from(b.budget_percent) * window) as f64
                / (100 * u128::from(b.long_seconds)) as f64
        })
    }

    /// The recorded error-ratio series over `window` (one of [`RATIO_WINDOWS`]), e.g.
    /// `service:stellaops_request_availability_errors:ratio_rate5m`.
    pub fn ratio_name(&self, window: &str) -> String {
        let level = if self.by.is_empty() {
            "slo".to_owned()
        } else {
            self.by.join("_")
        };
        format!("{level}:{}_errors:ratio_rate{window}", self.name)
    }

    /// The PromQL of the error ratio over `window`.
    fn ratio_expr(&self, window: &str) -> String {
        let by = if self.by.is_empty() {
            String::new()
        } else {
            format!(" by ({})", self.by.join(", "))
        };
        match self.indicator {
            Indicator::Errors {
                requests,
                label,
                errors,
                ..
            } => format!(
                "sum{by} (rate({m}{{{label}=~\"{errors}\"}}[{window}]))\n  /\nsum{by} (rate({m}[{window}]))",
                m = requests.name
            ),
            Indicator::Latency {
                histogram,
                threshold,
            } => format!(
                "1 - (\n  sum{by} (rate({m}_bucket{{le=\"{threshold}\"}}[{window}]))\n    /\n  sum{by} (rate({m}_count[{window}]))\n)",
                m = histogram.name
            ),
        }
    }

    /// The budget as PromQL: `(1 - objective)`.
    fn budget_expr(&self) -> String {
        format!("(1 - {})", self.objective)
    }

    fn what(&self) -> String {
        match self.indicator {
            Indicator::Errors {
                requests,
                label,
                errors,
                ..
            } => format!(
                "{}% of {} without {label} ~ {errors}",
                self.objective * 100.0,
                requests.name
            ),
            Indicator::Latency {
                histogram,
                threshold,
            } => format!(
                "{}% of {} within {threshold} s",
                self.objective * 100.0,
                histogram.name
            ),
        }
    }

    fn by_labels_text(&self) -> String {
        self.by
            .iter()
            .map(|l| format!("{{{{ $labels.{l} }}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn summary(&self, factor: f64) -> String {
        format!(
            "{} burns its error budget {factor}x too fast on {}",
            self.name,
            self.by_labels_text()
        )
    }

    fn description(&self, burn: &BurnRate) -> String {
        format!(
            "The {} SLO ({}) lost more than {}% of its {}-day error budget in {} (and still over the last {})",
            self.name,
            self.what(),
            burn.budget_percent,
            self.window.as_secs() / 86_400,
            burn.long,
            burn.short,
        )
    }
}

/// The recording rules and alerts of one SLO, as a rule group.
fn group(slo: &Slo) -> Result<Yaml, ArtefactError> {
    slo.validate()?;
    let mut rules = Vec::new();
    for (window, _) in RATIO_WINDOWS {
        let expr = checked(SLO_RULES_FILE, slo.ratio_expr(window))?;
        rules.push(
            MapBuilder::new()
                .str("record", slo.ratio_name(window))
                .entry("expr", Yaml::Block(expr))
                .build(),
        );
    }
    for (burn, factor) in BURN_RATES.iter().zip(slo.burn_factors()) {
        let budget = slo.budget_expr();
        let expr = format!(
            "{} > ({factor} * {budget})\nand\n{} > ({factor} * {budget})",
            slo.ratio_name(burn.long),
            slo.ratio_name(burn.short)
        );
        rules.push(
            MapBuilder::new()
                .str("alert", slo.alert)
                .entry("expr", Yaml::Block(expr))
                .str("for", burn.for_)
                .entry(
                    "labels",
                    MapBuilder::new()
                        .str("severity", burn.severity)
                        .str("slo", slo.name)
                        .str("long_window", burn.long)
                        .str("short_window", burn.short)
                        .build(),
                )
                .entry(
                    "annotations",
                    MapBuilder::new()
                        .str("summary", slo.summary(factor))
                        .str("description", slo.description(burn))
                        .build(),
                )
                .build(),
        );
    }
    Ok(MapBuilder::new()
        .str("name", format!("stellaops.slo.{}", slo.name))
        .entry("rules", Yaml::Seq(rules))
        .build())
}

fn header(about: &[&str]) -> Vec<String> {
    let mut lines = vec![generated_notice("generate rules", "the declared SLOs")];
    lines.extend(about.iter().map(|l| (*l).to_owned()));
    lines
}

/// The recording and burn-rate alert rules of `slos`.
///
/// # Errors
///
/// [`ArtefactError::Slo`] for an invalid declaration, [`ArtefactError::Query`] when a ratio
/// no longer fits the catalogue.
pub fn rules_for(slos: &[Slo]) -> Result<Artefact, ArtefactError> {
    let mut groups = Vec::new();
    for slo in slos {
        groups.push(group(slo)?);
    }
    let doc = MapBuilder::new().entry("groups", Yaml::Seq(groups)).build();
    Ok(Artefact {
        kind: ArtefactKind::Alerts,
        file_name: SLO_RULES_FILE.to_owned(),
        contents: document(
            &header(&[
                "SLO error-ratio recording rules and multi-window burn-rate alerts; check with",
                "`promtool check rules` and `promtool test rules stellaops-slo.test.yaml`.",
            ]),
            &doc,
        ),
    })
}

/// The rules of the built-in SLOs ([`Slo::builtin`], [`SLO_RULES_FILE`]).
///
/// # Errors
///
/// As [`rules_for`].
pub fn slo_rules() -> Result<Artefact, ArtefactError> {
    rules_for(&Slo::builtin())
}

/// One test case: a constant share of bad events from the start, and when to look.
struct Case {
    /// The bad share as a multiple of the budget.
    multiple: f64,
    /// When to evaluate, in minutes.
    minutes: u64,
}

/// Each case runs a steady bad share from time 0; it names which pairs are past their
/// threshold (and their `for`) when evaluated.
const CASES: [Case; 6] = [
    Case {
        multiple: 15.0,
        minutes: 30,
    },
    Case {
        multiple: 7.0,
        minutes: 30,
    },
    Case {
        multiple: 5.0,
        minutes: 30,
    },
    Case {
        multiple: 4.0,
        minutes: 150,
    },
    Case {
        multiple: 2.0,
        minutes: 240,
    },
    Case {
        multiple: 0.5,
        minutes: 240,
    },
];

/// Events per minute in the generated tests.
const EVENTS: f64 = 100_000.0;

fn minutes(text: &str) -> u64 {
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = n.parse().unwrap_or(0);
    match unit {
        "h" => n * 60,
        "d" => n * 1_440,
        _ => n,
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> Result<String, ArtefactError> {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    checked(SLO_TESTS_FILE, format!("{name}{{{}}}", inner.join(",")))
}

/// The input series of a case: `bad` bad and `EVENTS - bad` good events a minute.
fn inputs(slo: &Slo, bad: f64, samples: u64) -> Result<Vec<(String, String)>, ArtefactError> {
    let by: Vec<(&str, &str)> = slo.by.iter().map(|l| (*l, "example")).collect();
    let with = |extra: (&'static str, &'static str)| {
        let mut all = by.clone();
        all.push(extra);
        all
    };
    let good = EVENTS - bad;
    Ok(match slo.indicator {
        Indicator::Errors {
            requests,
            label,
            error_example,
            ok_example,
            ..
        } => vec![
            (
                series(requests.name, &with((label, error_example)))?,
                format!("0+{bad}x{samples}"),
            ),
            (
                series(requests.name, &with((label, ok_example)))?,
                format!("0+{good}x{samples}"),
            ),
        ],
        Indicator::Latency {
            histogram,
            threshold,
        } => {
            let le = threshold.to_string();
            let mut within = by.clone();
            within.push(("le", &le));
            vec![
                (
                    series(&format!("{}_bucket", histogram.name), &within)?,
                    format!("0+{good}x{samples}"),
                ),
                (
                    series(&format!("{}_bucket", histogram.name), &with(("le", "+Inf")))?,
                    format!("0+{EVENTS}x{samples}"),
                ),
                (
                    series(&format!("{}_count", histogram.name), &by)?,
                    format!("0+{EVENTS}x{samples}"),
                ),
            ]
        }
    })
}

/// The alerts expected to fire in `case`: pairs whose factor the share exceeds and whose
/// condition (true from the first minute, once two samples exist) has held for their `for`.
fn expected(slo: &Slo, case: &Case, bad: f64) -> Vec<Yaml> {
    let share = bad / EVENTS / (1.0 - slo.objective);
    let mut out = Vec::new();
    for (burn, factor) in BURN_RATES.iter().zip(slo.burn_factors()) {
        if share <= factor || case.minutes.saturating_sub(1) < minutes(burn.for_) {
            continue;
        }
        let mut labels: Vec<(&str, &str)> = slo.by.iter().map(|l| (*l, "example")).collect();
        labels.extend([
            ("severity", burn.severity),
            ("slo", slo.name),
            ("long_window", burn.long),
            ("short_window", burn.short),
        ]);
        labels.sort_unstable();
        let mut exp = MapBuilder::new();
        for (k, v) in &labels {
            exp = exp.str(*k, *v);
        }
        out.push(
            MapBuilder::new()
                .entry("exp_labels", exp.build())
                .entry(
                    "exp_annotations",
                    MapBuilder::new()
                        .str("summary", expand(&slo.summary(factor), &labels))
                        .str("description", slo.description(burn))
                        .build(),
                )
                .build(),
        );
    }
    out
}

fn test_case(slo: &Slo, case: &Case) -> Result<Yaml, ArtefactError> {
    let budget_per_minute = EVENTS * (1.0 - slo.objective);
    let bad = (case.multiple * budget_per_minute).round();
    let exp = expected(slo, case, bad);
    let firing: Vec<String> = BURN_RATES
        .iter()
        .zip(slo.burn_factors())
        .filter(|(b, f)| {
            bad / budget_per_minute > *f && case.minutes.saturating_sub(1) >= minutes(b.for_)
        })
        .map(|(b, _)| format!("{}/{}", b.long, b.short))
        .collect();
    let verdict = if firing.is_empty() {
        "no pair fires".to_owned()
    } else {
        let verb = if firing.len() == 1 { "fires" } else { "fire" };
        format!("{} {verb}", firing.join(" and "))
    };
    let series = inputs(slo, bad, case.minutes + 10)?
        .into_iter()
        .map(|(name, values)| {
            MapBuilder::new()
                .str("series", name)
                .str("values", values)
                .build()
        })
        .collect();
    Ok(MapBuilder::new()
        .str(
            "name",
            format!(
                "{}: {}x the budget rate for {} min: {verdict}",
                slo.alert, case.multiple, case.minutes
            ),
        )
        .str("interval", "1m")
        .entry("input_series", Yaml::Seq(series))
        .entry(
            "alert_rule_test",
            Yaml::Seq(vec![
                MapBuilder::new()
                    .str("eval_time", format!("{}m", case.minutes))
                    .str("alertname", slo.alert)
                    .entry("exp_alerts", Yaml::Seq(exp))
                    .build(),
            ]),
        )
        .build())
}

/// The `promtool test rules` unit tests of [`rules_for`]`(slos)`: for each SLO, a steady bad
/// share at 15, 7, 5, 4, 2 and 0.5 times the budget rate, each checking which burn-rate pairs
/// fire (15x fires the 1h/5m page, 5x fires neither page, 0.5x nothing).
///
/// # Errors
///
/// As [`rules_for`].
pub fn tests_for(slos: &[Slo]) -> Result<Artefact, ArtefactError> {
    let mut tests = Vec::new();
    for slo in slos {
        slo.validate()?;
        for case in &CASES {
            tests.push(test_case(slo, case)?);
        }
    }
    let doc = MapBuilder::new()
        .entry("rule_files", Yaml::Seq(vec![s(SLO_RULES_FILE)]))
        .str("evaluation_interval", "1m")
        .entry("tests", Yaml::Seq(tests))
        .build();
    Ok(Artefact {
        kind: ArtefactKind::Alerts,
        file_name: SLO_TESTS_FILE.to_owned(),
        contents: document(
            &header(&[
                "Unit tests of stellaops-slo.yaml: `promtool test rules stellaops-slo.test.yaml`.",
            ]),
            &doc,
        ),
    })
}

/// The unit tests of the built-in SLOs' rules ([`SLO_TESTS_FILE`]).
///
/// # Errors
///
/// As [`rules_for`].
pub fn slo_rule_tests() -> Result<Artefact, ArtefactError> {
    tests_for(&Slo::builtin())
}
