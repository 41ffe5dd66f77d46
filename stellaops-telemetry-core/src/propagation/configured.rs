//! [`Propagators`]: the propagators `OTEL_PROPAGATORS` names, in order, over header maps (what
//! the tower layers call) and as one OpenTelemetry [`TextMapPropagator`]
//! ([`ConfiguredPropagator`], what `install()` registers globally).

use std::sync::OnceLock;

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
// The crate's Zipkin exporter is deprecated (Zipkin takes OTLP); its B3 propagator is the one
// `opentelemetry` 0.33 has, and only it is used here.
#[allow(deprecated)]
use opentelemetry_zipkin::{B3Encoding, Propagator as B3Propagator};

use super::{
    BAGGAGE, Extracted, PropagatedTraceContext, TRACEPARENT, TRACESTATE, baggage,
    baggage_of_headers, baggage_value, inject_baggage, jaeger, trace_context_of,
    trace_context_of_headers,
};
use crate::config::PropagatorKind;

/// Room for every kind once (duplicates are ignored, so a set never holds more).
const KINDS: usize = 5;

/// B3's debug flag as `opentelemetry-zipkin` reads it: a sampled decision.
const B3_DEBUG: TraceFlags = TraceFlags::new(0x04);

/// The set `install()` registered, for clients built without a pipeline at hand.
static INSTALLED: OnceLock<Propagators> = OnceLock::new();

/// The propagators a service extracts and injects, in the order `OTEL_PROPAGATORS` names them
/// (duplicates ignored). Default: [`Propagators::W3C`] (`tracecontext,baggage`).
///
/// Extraction runs every propagator in order and a later one that finds a trace context wins
/// over an earlier one; injection writes every propagator's headers. `tracecontext` and
/// `baggage` are this module's strict W3C parsers and writers; `b3` (the single `b3` header)
/// and `b3multi` (`X-B3-*`) are `opentelemetry-zipkin`'s B3 propagator. A B3 debug flag is
/// read as sampled and a B3 context without a sampling decision as not sampled (W3C has no
/// flag for either). `jaeger` reads and writes `uber-trace-id` and one `uberctx-{key}` header
/// per baggage entry: ids of 1 to 32 (trace) and 1 to 16 (span) lowercase hex digits,
/// left-padded, the fields separated by `:` or `%3A`, the debug flag read as sampled, values
/// longer than [`MAX_UBER_TRACE_ID_BYTES`](super::MAX_UBER_TRACE_ID_BYTES) ignored, the
/// `uberctx-` entries within the W3C baggage limits, and written as
/// `{32 hex}:{16 hex}:0:{1|0}`. Baggage from `baggage` and `jaeger` is combined in order (for
/// a repeated key, the later propagator's value wins).
///
/// Cheap to copy: the tower layers keep one and call [`extract`](Self::extract) and
/// [`inject`](Self::inject) per request, which for `tracecontext` and `baggage` cost what
/// [`extract`](super::extract) and [`inject`](super::inject) cost.
///
/// # Example
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::PropagatorKind;
/// use stellaops_telemetry_core::propagation::Propagators;
///
/// let b3 = Propagators::new([PropagatorKind::B3]);
/// let mut incoming = HeaderMap::new();
/// incoming.insert("b3", HeaderValue::from_static("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
/// let extracted = b3.extract(&incoming);
/// assert!(extracted.is_sampled());
///
/// let cx = extracted.into_context(&opentelemetry::Context::new());
/// let mut outgoing = HeaderMap::new();
/// b3.inject(&cx, &mut outgoing);
/// assert_eq!(outgoing["b3"], "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1");
/// assert!(!outgoing.contains_key("traceparent"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Propagators {
    kinds: [PropagatorKind; KINDS],
    len: u8,
}

impl std::fmt::Debug for Propagators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}

impl Default for Propagators {
    fn default() -> Self {
        Propagators::W3C
    }
}

impl Propagators {
    /// W3C Trace Context, then W3C Baggage: the default.
    pub const W3C: Propagators = Propagators {
        kinds: [
            PropagatorKind::TraceContext,
            PropagatorKind::Baggage,
            PropagatorKind::TraceContext,
            PropagatorKind::TraceContext,
            PropagatorKind::TraceContext,
        ],
        len: 2,
    };

    /// No propagator (`OTEL_PROPAGATORS=none`): nothing is extracted or injected.
    pub const NONE: Propagators = Propagators {
        kinds: [PropagatorKind::TraceContext; KINDS],
        len: 0,
    };

    /// The propagators `kinds` names, in order, duplicates ignored.
    ///
    /// ```
    /// use stellaops_telemetry_core::PropagatorKind::{B3, Baggage};
    /// use stellaops_telemetry_core::propagation::Propagators;
    ///
    /// assert_eq!(Propagators::new([Baggage, B3, Baggage]).kinds(), &[Baggage, B3]);
    /// ```
    pub fn new(kinds: impl IntoIterator<Item = PropagatorKind>) -> Self {
        let mut set = Propagators::NONE;
        for kind in kinds {
            let len = usize::from(set.len);
            if len < KINDS && !set.kinds().contains(&kind) {
                set.kinds[len] = kind;
                set.len += 1;
            }
        }
        set
    }

    /// The propagators, in order.
    pub fn kinds(&self) -> &[PropagatorKind] {
        self.kinds.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The set the installed pipeline uses (`install()` registered it), else
    /// [`Propagators::W3C`]. One atomic load.
    ///
    /// ```
    /// use stellaops_telemetry_core::propagation::Propagators;
    ///
    /// // Nothing installed in this process.
    /// assert_eq!(Propagators::installed(), Propagators::W3C);
    /// ```
    pub fn installed() -> Propagators {
        INSTALLED.get().copied().unwrap_or(Propagators::W3C)
    }

    /// Records this set as the installed one; `false` when one already was.
    pub(crate) fn install(self) -> bool {
        INSTALLED.set(self).is_ok()
    }

    /// Reads the trace context and baggage of request headers with every propagator in order.
    /// Never fails: what is invalid is left out.
    pub fn extract(&self, headers: &HeaderMap) -> Extracted {
        let mut out = Extracted::default();
        for &kind in self.kinds() {
            let found = match kind {
                PropagatorKind::TraceContext => trace_context_of_headers(headers),
                PropagatorKind::Baggage => {
                    out.baggage.append(baggage_of_headers(headers));
                    None
                }
                PropagatorKind::B3 | PropagatorKind::B3Multi => {
                    b3_extract(kind, &HeaderExtractor(headers))
                }
                PropagatorKind::Jaeger => {
                    let (found, baggage) = jaeger::extract_headers(headers);
                    out.baggage.append(baggage);
                    found
                }
            };
            if let Some((parent, received)) = found {
                out.parent = Some(parent);
                out.trace_context = Some(received);
            }
        }
        out
    }

    /// Writes the trace context and baggage of `cx` into request headers with every
    /// propagator: the trace headers from [`PropagatedTraceContext::current`], the baggage as
    /// [`inject_baggage`](super::inject_baggage) writes it.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        let mut trace = None;
        for &kind in self.kinds() {
            match kind {
                PropagatorKind::Baggage => inject_baggage(cx.baggage(), headers),
                PropagatorKind::TraceContext => {
                    if let Some(p) =
                        trace.get_or_insert_with(|| PropagatedTraceContext::current(cx))
                    {
                        p.inject(headers);
                    }
                }
                PropagatorKind::B3 | PropagatorKind::B3Multi => {
                    if let Some(p) =
                        trace.get_or_insert_with(|| PropagatedTraceContext::current(cx))
                    {
                        b3_inject(kind, p, &mut HeaderInjector(headers));
                    }
                }
                PropagatorKind::Jaeger => {
                    let p = trace.get_or_insert_with(|| PropagatedTraceContext::current(cx));
                    jaeger::inject(p.as_ref(), cx.baggage(), &mut HeaderInjector(headers));
                }
            }
        }
    }

    /// The set as one OpenTelemetry [`TextMapPropagator`].
    pub fn text_map_propagator(&self) -> ConfiguredPropagator {
        ConfiguredPropagator::new(*self)
    }
}

/// [`Propagators`] as one OpenTelemetry [`TextMapPropagator`]: what `install()` registers as
/// the global propagator, so libraries that propagate through
/// `opentelemetry::global::get_text_map_propagator` read and write exactly what the tower
/// layers do (the strict W3C parsers included).
///
/// # Example
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use stellaops_telemetry_core::propagation::Propagators;
///
/// let propagator = Propagators::W3C.text_map_propagator();
/// let mut carrier = HashMap::new();
/// // Uppercase hex is not W3C: no parent.
/// carrier.insert("traceparent".to_owned(), "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_owned());
/// assert!(!propagator.extract(&carrier).span().span_context().is_valid());
/// carrier.insert("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
/// let cx = propagator.extract(&carrier);
/// assert!(cx.span().span_context().is_remote());
///
/// let mut out = HashMap::new();
/// propagator.inject_context(&cx, &mut out);
/// assert_eq!(out["traceparent"], carrier["traceparent"]);
/// ```
#[derive(Debug, Clone)]
pub struct ConfiguredPropagator {
    set: Propagators,
    fields: Vec<String>,
}

impl ConfiguredPropagator {
    /// The propagator of `set`.
    pub fn new(set: Propagators) -> Self {
        let mut fields = Vec::new();
        for kind in set.kinds() {
            let names: &[&str] = match kind {
                PropagatorKind::TraceContext => &["traceparent", "tracestate"],
                PropagatorKind::Baggage => &["baggage"],
                PropagatorKind::B3 => &["b3"],
                PropagatorKind::B3Multi => {
                    &["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"]
                }
                // The `uberctx-{key}` names depend on the baggage, so they are not listed.
                PropagatorKind::Jaeger => &["uber-trace-id"],
            };
            fields.extend(names.iter().map(|n| (*n).to_owned()));
        }
        ConfiguredPropagator { set, fields }
    }

    /// The propagators, in order.
    pub fn propagators(&self) -> Propagators {
        self.set
    }
}

impl TextMapPropagator for ConfiguredPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut trace = None;
        for &kind in self.set.kinds() {
            match kind {
                PropagatorKind::Baggage => {
                    let value = baggage_value(cx.baggage());
                    if !value.is_empty() {
                        injector.set(BAGGAGE.as_str(), value);
                    }
                }
                PropagatorKind::TraceContext => {
                    if let Some(p) =
                        trace.get_or_insert_with(|| PropagatedTraceContext::current(cx))
                    {
                        injector.set(TRACEPARENT.as_str(), p.traceparent());
                        if !p.tracestate().is_empty() {
                            injector.set(TRACESTATE.as_str(), p.tracestate().to_owned());
                        }
                    }
                }
                PropagatorKind::B3 | PropagatorKind::B3Multi => {
                    if let Some(p) =
                        trace.get_or_insert_with(|| PropagatedTraceContext::current(cx))
                    {
                        b3_inject(kind, p, injector);
                    }
                }
                PropagatorKind::Jaeger => {
                    let p = trace.get_or_insert_with(|| PropagatedTraceContext::current(cx));
                    jaeger::inject(p.as_ref(), cx.baggage(), injector);
                }
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut out = Extracted::default();
        for &kind in self.set.kinds() {
            let found = match kind {
                PropagatorKind::TraceContext => {
                    let parents = extractor.get_all(TRACEPARENT.as_str()).unwrap_or_default();
                    let states = extractor.get_all(TRACESTATE.as_str()).unwrap_or_default();
                    trace_context_of(
                        parents.iter().map(|line| line.as_bytes()),
                        states.iter().map(|line| line.as_bytes()),
                    )
                }
                PropagatorKind::Baggage => {
                    let lines = extractor.get_all(BAGGAGE.as_str()).unwrap_or_default();
                    out.baggage
                        .append(baggage::parse(|| lines.iter().map(|line| line.as_bytes())));
                    None
                }
                PropagatorKind::B3 | PropagatorKind::B3Multi => b3_extract(kind, extractor),
                PropagatorKind::Jaeger => {
                    let (found, baggage) = jaeger::extract(extractor);
                    out.baggage.append(baggage);
                    found
                }
            };
            if let Some((parent, received)) = found {
                out.parent = Some(parent);
                out.trace_context = Some(received);
            }
        }
        out.into_context(cx)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// `opentelemetry-zipkin`'s B3 propagator writing the single header (`b3`) or the multiple
/// headers (`b3multi`); it reads both either way.
#[allow(deprecated)]
fn b3_propagator(kind: PropagatorKind) -> B3Propagator {
    B3Propagator::with_encoding(if kind == PropagatorKind::B3 {
        B3Encoding::SingleHeader
    } else {
        B3Encoding::MultipleHeader
    })
}

/// The remote parent a B3 propagator finds, with only the sampled flag (B3's deferred and
/// debug bits are not W3C flags; debug is a sampled decision).
fn b3_extract(
    kind: PropagatorKind,
    extractor: &dyn Extractor,
) -> Option<(SpanContext, PropagatedTraceContext)> {
    let cx = b3_propagator(kind).extract_with_context(&Context::new(), extractor);
    let span = cx.span();
    let found = span.span_context();
    if !found.is_valid() {
        return None;
    }
    let sampled = found.is_sampled() || found.trace_flags() & B3_DEBUG == B3_DEBUG;
    let parent = SpanContext::new(
        found.trace_id(),
        found.span_id(),
        TraceFlags::default().with_sampled(sampled),
        true,
        TraceState::NONE,
    );
    let received = PropagatedTraceContext::from_span_context(&parent)?;
    Some((parent, received))
}

/// Writes B3 headers for what leaves: the propagated trace-id and parent-id, and the sampled
/// decision.
fn b3_inject(kind: PropagatorKind, trace: &PropagatedTraceContext, injector: &mut dyn Injector) {
    let span = SpanContext::new(
        trace.trace_id(),
        trace.parent_id(),
        TraceFlags::default().with_sampled(trace.is_sampled()),
        true,
        TraceState::NONE,
    );
    b3_propagator(kind).inject_context(&Context::new().with_remote_span_context(span), injector);
}

impl From<&[PropagatorKind]> for Propagators {
    fn from(kinds: &[PropagatorKind]) -> Self {
        Propagators::new(kinds.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn a_later_propagator_that_finds_a_parent_wins() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert(
            "b3",
            HeaderValue::from_static("0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0"),
        );
        let w3c_then_b3 =
            Propagators::new([PropagatorKind::TraceContext, PropagatorKind::B3]).extract(&headers);
        let parent = w3c_then_b3.parent.unwrap();
        assert_eq!(
            parent.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(!parent.is_sampled());
        let b3_then_w3c =
            Propagators::new([PropagatorKind::B3, PropagatorKind::TraceContext]).extract(&headers);
        assert_eq!(b3_then_w3c.parent.unwrap().trace_id().to_string(), TRACE);
        assert!(Propagators::NONE.extract(&headers).parent.is_none());
    }

    #[test]
    fn b3_debug_reads_as_sampled_and_deferred_as_not_sampled_without_the_random_flag() {
        for (value, sampled) in [("d", true), ("1", true), ("0", false)] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "b3",
                HeaderValue::try_from(format!("{TRACE}-{SPAN}-{value}")).unwrap(),
            );
            let extracted = Propagators::new([PropagatorKind::B3]).extract(&headers);
            assert_eq!(extracted.is_sampled(), sampled, "{value}");
            assert!(!extracted.is_random(), "{value}");
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-b3-traceid", HeaderValue::from_static(TRACE));
        headers.insert("x-b3-spanid", HeaderValue::from_static(SPAN));
        let deferred = Propagators::new([PropagatorKind::B3Multi]).extract(&headers);
        assert!(deferred.parent.is_some() && !deferred.is_sampled() && !deferred.is_random());
    }

    #[test]
    fn b3multi_writes_the_x_b3_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = Propagators::W3C
            .extract(&headers)
            .into_context(&Context::new());
        let mut out = HeaderMap::new();
        Propagators::new([PropagatorKind::B3Multi, PropagatorKind::TraceContext])
            .inject(&cx, &mut out);
        assert_eq!(out["x-b3-traceid"], TRACE);
        assert_eq!(out["x-b3-spanid"], SPAN);
        assert_eq!(out["x-b3-sampled"], "1");
        assert_eq!(out["traceparent"], headers["traceparent"]);
        assert!(!out.contains_key("b3"));
    }

    #[test]
    fn the_text_map_propagator_lists_the_fields_of_every_propagator_in_order() {
        let propagator =
            Propagators::new([PropagatorKind::Baggage, PropagatorKind::B3]).text_map_propagator();
        assert_eq!(propagator.fields().collect::<Vec<_>>(), ["baggage", "b3"]);
    }
}
