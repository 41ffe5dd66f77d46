//! A pragmatic PromQL check against the catalogue: every metric a query selects exists (in
//! the catalogue, or among the scrape's and the collector's own metrics, [`EXTERNAL`]), every
//! label it matches or groups by is one of that metric's labels.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::artefacts::promql;
//!
//! let metrics = promql::check(r#"sum by (service) (rate(stellaops_request_total{status=~"5.."}[5m]))"#)?;
//! assert_eq!(metrics, ["stellaops_request_total"]);
//! assert!(promql::check("sum by (tenant) (rate(stellaops_request_total[5m]))").is_err());
//! assert!(promql::check("stellaops_requests_total").is_err());
//! # Ok::<(), promql::QueryError>(())
//! ```
//!
//! This is not a PromQL parser: it tokenises the query, finds `metric{label op "value"}`
//! selectors, the label lists of `by`, `without`, `on` and `ignoring`, and the argument of
//! each aggregation, which is all the generated artefacts need checked. Histogram series are
//! named with their `_bucket`, `_sum` and `_count` suffixes; `le` is a label of `_bucket` only.
//! Grafana variables (`$__rate_interval`, `${datasource}`) are skipped.

use crate::metrics::{MetricDescriptor, MetricKind, catalogue};

/// What is wrong with a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query selects a metric the catalogue does not have.
    #[error("metric `{metric}` is not in the catalogue")]
    UnknownMetric {
        /// The series name as written.
        metric: String,
    },
    /// A selector matches on a label its metric does not carry.
    #[error("metric `{metric}` has no label `{label}`")]
    UnknownLabel {
        /// The series name as written.
        metric: String,
        /// The label.
        label: String,
    },
    /// An aggregation groups by a label that a metric of its argument does not carry.
    #[error("`{clause}` groups by `{label}`, which `{metric}` does not carry")]
    GroupingLabel {
        /// `by`, `without`, `on` or `ignoring`.
        clause: String,
        /// The label.
        label: String,
        /// A metric of the aggregated expression without it.
        metric: String,
    },
    /// The query could not be tokenised or its brackets do not balance.
    #[error("cannot read the query: {0}")]
    Syntax(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str,
    Num,
    Var,
    Range,
    Open,
    Close,
    OpenBrace,
    CloseBrace,
    Comma,
    Op(String),
}

const KEYWORDS: [&str; 14] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];

const AGGREGATIONS: [&str; 14] = [
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];

fn tokenise(expr: &str) -> Result<Vec<Token>, QueryError> {
    let bytes = expr.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if let Some(token) = punctuation(b) {
            tokens.push(token);
            i += 1;
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' | b'\'' | b'`' => {
                tokens.push(Token::Str);
                i = string_end(bytes, i)? + 1;
            }
            b'[' => {
                let end = expr[i..]
                    .find(']')
                    .ok_or_else(|| QueryError::Syntax("unterminated range".to_owned()))?;
                tokens.push(Token::Range);
                i += end + 1;
            }
            b'$' => {
                tokens.push(Token::Var);
                i = variable_end(expr, i)?;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let j = run_end(bytes, i, |c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
                });
                tokens.push(Token::Ident(expr[i..j].to_owned()));
                i = j;
            }
            c if c.is_ascii_digit() || c == b'.' => {
                // Numbers, durations (`5m`) and hex, as one token.
                tokens.push(Token::Num);
                i = run_end(bytes, i, |c| c.is_ascii_alphanumeric() || c == b'.');
            }
            _ => {
                let op = operator(expr, i)?;
                tokens.push(Token::Op(op.to_owned()));
                i += op.len();
            }
        }
    }
    Ok(tokens)
}

/// The token of a one-byte bracket or comma.
fn punctuation(b: u8) -> Option<Token> {
    match b {
        b'(' => Some(Token::Open),
        b')' => Some(Token::Close),
        b'{' => Some(Token::OpenBrace),
        b'}' => Some(Token::CloseBrace),
        b',' => Some(Token::Comma),
        _ => None,
    }
}

/// The index of the quote closing the string that opens at `open` (backslash escapes, except
/// in backtick strings).
fn string_end(bytes: &[u8], open: usize) -> Result<usize, QueryError> {
    let quote = bytes.get(open).copied();
    let mut j = open + 1;
    loop {
        match bytes.get(j) {
            None => return Err(QueryError::Syntax("unterminated string".to_owned())),
            Some(b'\\') if quote != Some(b'`') => j += 2,
            Some(&c) if Some(c) == quote => return Ok(j),
            Some(_) => j += 1,
        }
    }
}

/// The index just past the Grafana variable (`$name` or `${name}`) starting at `dollar`.
fn variable_end(expr: &str, dollar: usize) -> Result<usize, QueryError> {
    let bytes = expr.as_bytes();
    let j = dollar + 1;
    if bytes.get(j) == Some(&b'{') {
        let end = expr[j..]
            .find('}')
            .ok_or_else(|| QueryError::Syntax("unterminated variable".to_owned()))?;
        Ok(j + end + 1)
    } else {
        Ok(run_end(bytes, j, |c| {
            c.is_ascii_alphanumeric() || c == b'_'
        }))
    }
}

/// The index of the first byte from `start` on that is not `part` (or the end).
fn run_end(bytes: &[u8], start: usize, part: impl Fn(u8) -> bool) -> usize {
    let mut j = start;
    while bytes.get(j).is_some_and(|&c| part(c)) {
        j += 1;
    }
    j
}

/// The comparison, matching or arithmetic operator at `i`: two bytes when they form one.
fn operator(expr: &str, i: usize) -> Result<&str, QueryError> {
    let two = expr.get(i..i + 2).unwrap_or("");
    let op = if matches!(two, "=~" | "!~" | "!=" | "==" | ">=" | "<=") {
        two
    } else {
        expr.get(i..i + 1).unwrap_or("\u{fffd}")
    };
    if !matches!(
        op,
        "=~" | "!~"
            | "!="
            | "=="
            | ">="
            | "<="
            | "="
            | ">"
            | "<"
            | "+"
            | "-"
            | "*"
            | "/"
            | "%"
            | "^"
            | "@"
    ) {
        return Err(QueryError::Syntax(format!("unexpected character `{op}`")));
    }
    Ok(op)
}

/// A metric series as a query names it, resolved against the catalogue.
#[derive(Debug)]
struct Series {
    /// Token index of the name.
    at: usize,
    name: String,
    descriptor: &'static MetricDescriptor,
    bucket: bool,
}

impl Series {
    fn has_label(&self, label: &str) -> bool {
        self.descriptor.has_label(label) || (self.bucket && label == "le") || label == "__name__"
    }
}

/// The labels Prometheus adds to a scraped collector's own metrics, with the collector's.
const COLLECTOR_LABELS: &[&str] = &[
    "job",
    "instance",
    "service_instance_id",
    "service_name",
    "service_version",
    "receiver",
    "exporter",
    "transport",
    "data_type",
];

const fn collector(name: &'static str, kind: MetricKind, help: &'static str) -> MetricDescriptor {
    MetricDescriptor {
        name,
        kind,
        unit: "1",
        help,
        labels: COLLECTOR_LABELS,
        buckets: &[],
    }
}

/// Metrics outside the catalogue that the generated artefacts watch the telemetry stack
/// with: Prometheus's `up` and the OpenTelemetry Collector's own metrics (counters under both
/// their older names and the `_total` names newer collectors expose).
pub const EXTERNAL: [MetricDescriptor; 10] = [
    MetricDescriptor {
        name: "up",
        kind: MetricKind::Gauge,
        unit: "1",
        help: "1 when Prometheus's last scrape of the target succeeded, else 0",
        labels: &["job", "instance"],
        buckets: &[],
    },
    collector(
        "otelcol_exporter_queue_size",
        MetricKind::Gauge,
        "Batches in an exporter's sending queue",
    ),
    collector(
        "otelcol_exporter_queue_capacity",
        MetricKind::Gauge,
        "Capacity of an exporter's sending queue",
    ),
    collector(
        "otelcol_receiver_accepted_spans",
        MetricKind::Counter,
        "Spans a receiver pushed into the pipeline",
    ),
    collector(
        "otelcol_receiver_refused_spans",
        MetricKind::Counter,
        "Spans a receiver could not push into the pipeline",
    ),
    collector(
        "otelcol_receiver_refused_spans_total",
        MetricKind::Counter,
        "Spans a receiver could not push into the pipeline",
    ),
    collector(
        "otelcol_exporter_sent_spans",
        MetricKind::Counter,
        "Spans an exporter sent",
    ),
    collector(
        "otelcol_exporter_sent_spans_total",
        MetricKind::Counter,
        "Spans an exporter sent",
    ),
    collector(
        "otelcol_exporter_send_failed_spans",
        MetricKind::Counter,
        "Spans an exporter failed to send",
    ),
    collector(
        "otelcol_exporter_enqueue_failed_spans",
        MetricKind::Counter,
        "Spans an exporter could not queue (queue full)",
    ),
];

/// Resolves a series name to its catalogue entry (or its [`EXTERNAL`] entry): the name
/// itself, or a histogram's `_bucket`, `_sum` or `_count` series. The flag says whether it
/// is a `_bucket` series.
pub fn resolve(name: &str) -> Option<(&'static MetricDescriptor, bool)> {
    if let Some(d) = catalogue::find(name).or_else(|| EXTERNAL.iter().find(|d| d.name == name)) {
        return Some((d, false));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(d) = catalogue::find(base)
            && d.kind == MetricKind::Histogram
        {
            return Some((d, suffix == "_bucket"));
        }
    }
    None
}

fn matching_close(tokens: &[Token], open: usize) -> Result<usize, QueryError> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(QueryError::Syntax("unbalanced parentheses".to_owned()))
}

/// The label names of a `(a, b)` list starting at `open`; the index of its `)`.
fn label_list(tokens: &[Token], open: usize) -> Result<(Vec<String>, usize), QueryError> {
    if tokens.get(open) != Some(&Token::Open) {
        return Err(QueryError::Syntax(
            "expected `(` after a grouping keyword".to_owned(),
        ));
    }
    let mut labels = Vec::new();
    let mut i = open + 1;
    loop {
        match tokens.get(i) {
            Some(Token::Ident(l)) => labels.push(l.clone()),
            Some(Token::Comma) => {}
            Some(Token::Close) => return Ok((labels, i)),
            _ => return Err(QueryError::Syntax("malformed label list".to_owned())),
        }
        i += 1;
    }
}

/// A grouping or vector-matching clause: its keyword (lowercase), its labels and the token
/// index of the keyword.
type Clause = (String, Vec<String>, usize);

/// Checks `expr` against the catalogue and returns the series names it selects, in order of
/// first appearance.
///
/// # Errors
///
/// A [`QueryError`] naming the first unknown metric, unknown label or grouping label a
/// metric of the aggregated expression does not carry.
pub fn check(expr: &str) -> Result<Vec<String>, QueryError> {
    let tokens = tokenise(expr)?;
    let (series, clauses) = selectors_and_clauses(&tokens)?;
    check_aggregations(&tokens, &series, &clauses)?;
    check_vector_matching(&series, &clauses)?;
    let mut names: Vec<String> = Vec::new();
    for s in series {
        if !names.contains(&s.name) {
            names.push(s.name);
        }
    }
    Ok(names)
}

/// The series the query selects (each checked against the catalogue, with its selector's
/// labels) and the label lists of its grouping and vector-matching clauses.
fn selectors_and_clauses(tokens: &[Token]) -> Result<(Vec<Series>, Vec<Clause>), QueryError> {
    let mut series: Vec<Series> = Vec::new();
    let mut clauses: Vec<Clause> = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Ident(word) if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) => {
                let keyword = word.to_ascii_lowercase();
                if matches!(
                    keyword.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) && tokens.get(i + 1) == Some(&Token::Open)
                {
                    let (labels, close) = label_list(tokens, i + 1)?;
                    clauses.push((keyword, labels, i));
                    i = close;
                }
            }
            Token::Ident(_) if tokens.get(i + 1) == Some(&Token::Open) => {} // a function
            Token::Ident(word) if AGGREGATIONS.contains(&word.as_str()) => {} // `sum by (…)`
            Token::Ident(name) => {
                let (descriptor, bucket) =
                    resolve(name).ok_or_else(|| QueryError::UnknownMetric {
                        metric: name.clone(),
                    })?;
                let s = Series {
                    at: i,
                    name: name.clone(),
                    descriptor,
                    bucket,
                };
                if tokens.get(i + 1) == Some(&Token::OpenBrace) {
                    i = selector_end(tokens, i + 2, &s)?;
                }
                series.push(s);
            }
            Token::OpenBrace => {
                return Err(QueryError::Syntax(
                    "a selector without a metric name".to_owned(),
                ));
            }
            _ => {}
        }
        i += 1;
    }
    Ok((series, clauses))
}

/// Checks the `label op "value"` matchers of `s`'s selector, from `first` (just past its `{`);
/// returns the index of its `}`.
fn selector_end(tokens: &[Token], first: usize, s: &Series) -> Result<usize, QueryError> {
    let mut i = first;
    loop {
        match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(Token::CloseBrace), _, _) => return Ok(i),
            (Some(Token::Comma), _, _) => i += 1,
            (Some(Token::Ident(label)), Some(Token::Op(_)), Some(Token::Str)) => {
                if !s.has_label(label) {
                    return Err(QueryError::UnknownLabel {
                        metric: s.name.clone(),
                        label: label.clone(),
                    });
                }
                i += 3;
            }
            _ => {
                return Err(QueryError::Syntax(format!(
                    "malformed selector of `{}`",
                    s.name
                )));
            }
        }
    }
}

/// Each aggregation's grouping labels must be carried by every metric it aggregates.
fn check_aggregations(
    tokens: &[Token],
    series: &[Series],
    clauses: &[Clause],
) -> Result<(), QueryError> {
    for (at, token) in tokens.iter().enumerate() {
        let Token::Ident(word) = token else { continue };
        if !AGGREGATIONS.contains(&word.as_str()) {
            continue;
        }
        let (clause, arg_open) = match tokens.get(at + 1) {
            Some(Token::Ident(k)) if k == "by" || k == "without" => {
                let (_, close) = label_list(tokens, at + 2)?;
                (clauses.iter().find(|c| c.2 == at + 1), close + 1)
            }
            Some(Token::Open) => {
                let close = matching_close(tokens, at + 1)?;
                let after = clauses.iter().find(|c| c.2 == close + 1);
                (after, at + 1)
            }
            _ => continue,
        };
        let Some((keyword, labels, _)) = clause else {
            continue;
        };
        let arg_close = matching_close(tokens, arg_open)?;
        for s in series
            .iter()
            .filter(|s| s.at > arg_open && s.at < arg_close)
        {
            if let Some(label) = labels.iter().find(|l| !s.has_label(l)) {
                return Err(QueryError::GroupingLabel {
                    clause: keyword.clone(),
                    label: label.clone(),
                    metric: s.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Vector-matching labels (`on`, `ignoring`) must be carried by some metric of the query.
fn check_vector_matching(series: &[Series], clauses: &[Clause]) -> Result<(), QueryError> {
    for (keyword, labels, _) in clauses.iter().filter(|c| c.0 == "on" || c.0 == "ignoring") {
        if let Some(label) = labels
            .iter()
            .find(|l| !series.iter().any(|s| s.has_label(l)))
        {
            return Err(QueryError::GroupingLabel {
                clause: keyword.clone(),
                label: label.clone(),
                metric: series.first().map(|s| s.name.clone()).unwrap_or_default(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_series_take_their_suffixes_and_le_only_on_buckets() {
        let q = "histogram_quantile(0.95, sum by (le, tenant) (rate(stellaops_scan_duration_seconds_bucket[$__rate_interval])))";
        assert_eq!(
            check(q).unwrap(),
            ["stellaops_scan_duration_seconds_bucket"]
        );
        assert_eq!(
            check("sum by (le) (rate(stellaops_scan_duration_seconds_count[5m]))").unwrap_err(),
            QueryError::GroupingLabel {
                clause: "by".into(),
                label: "le".into(),
                metric: "stellaops_scan_duration_seconds_count".into()
            }
        );
        assert!(check("stellaops_queue_depth_bucket").is_err());
    }

    #[test]
    fn grouping_after_the_argument_is_checked_per_aggregation() {
        let ok = r#"sum(rate(stella_deployments_total{status="failed"}[5m])) by (tenant) / sum(rate(stella_deployments_total[5m])) by (tenant) > 0.1"#;
        assert!(check(ok).is_ok());
        let bad = "sum(stella_agents_connected) by (agent)";
        assert!(matches!(
            check(bad),
            Err(QueryError::GroupingLabel { label, .. }) if label == "agent"
        ));
    }

    #[test]
    fn selectors_name_only_labels_of_their_metric() {
        assert_eq!(
            check(r#"stellaops_queue_depth{tenant="a"}"#).unwrap_err(),
            QueryError::UnknownLabel {
                metric: "stellaops_queue_depth".into(),
                label: "tenant".into()
            }
        );
        assert!(check(r#"topk(5, sum by (policy, rule) (increase(policy_rules_fired_total[1h] offset 5m)))"#).is_ok());
        assert!(check("sum(rate(stellaops_request_total[5m])) or vector(0)").is_ok());
        assert!(check(r#"{__name__="x"}"#).is_err());
    }
}
