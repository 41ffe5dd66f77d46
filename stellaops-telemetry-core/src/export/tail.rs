//! Tail sampling in the SDK: each trace's ended spans are held until its local root ends, then
//! the whole trace is kept or dropped by the same policies the generated collector
//! configurations apply, for profiles that sample in the SDK
//! ([`SamplingSite::Sdk`](crate::SamplingSite::Sdk), airgap).
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::opentelemetry::trace::TraceId;
//! use stellaops_telemetry_core::{ProbabilisticPolicy, TailSamplingLimits};
//!
//! // The collector's `probabilistic` policy at 10 %, with its default hash salt.
//! let policy = ProbabilisticPolicy::from_percentage(10.0);
//! assert_eq!(policy.threshold(), 1_844_674_407_370_955_263);
//! assert!(policy.keeps(TraceId::from_hex("ffffffffffffffffffffffffffffffff")?));
//! assert_eq!(TailSamplingLimits::default().max_traces, 10_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A span ends on the request path; it joins its trace in one of 32 shards (one short lock, a
//! hash-map insert and a vector push; no I/O, and a clock reading only for a trace's first
//! span). The trace is decided when its *local root* ends (a span whose parent is remote or
//! absent), and its spans then join the span queue or are dropped, after the shard's lock is
//! released. Policies, in order:
//!
//! 1. `error`: a span of the trace has an error status (`error_ratio` of them kept);
//! 2. `slow`: the local root lasted at least `slow_threshold_ms` (`slow_ratio` kept);
//! 3. `incident`: a span carries [`INCIDENT_ID_ATTRIBUTE`];
//! 4. `probabilistic`: `base_ratio` of the rest, decided from the trace id exactly as the
//!    collector's `probabilistic` policy decides it ([`ProbabilisticPolicy`]), so the service
//!    and a collector agree on which traces make the share.
//!
//! Bounded memory ([`TailSamplingLimits`]): a trace is decided early, with the spans it has,
//! when its decision wait passes (checked by the span worker on each of its passes, about
//! once per export delay), when it reaches the span cap (its later spans follow the decision), or
//! when it is the oldest of its shard and the shard is full (traces or bytes, each cap split
//! evenly over the shards). A trace decided early whose local root is still open counts as
//! slow once it has been open for the slow threshold (the root began before its earliest
//! span). Recent decisions are remembered (a direct-mapped table of twice as many slots as
//! traces may be held), so spans ending after their trace was decided follow it; a late span
//! that is itself an error, a slow local root or an incident span turns a drop into a keep
//! from then on. Flushing or shutting the
//! pipeline down decides every held trace. No span is lost here: each is kept or sampled out,
//! and counted ([`TailSamplingSnapshot`], the `stellaops_telemetry_tail_sampling_*` metrics).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Status, TraceId};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use parking_lot::Mutex;

use super::batch::SpanItem;
use crate::profile::{SamplingMode, SamplingSettings, SamplingSite};

use crate::incidents::INCIDENT_ATTRIBUTE as INCIDENT_ID_ATTRIBUTE;

/// The hash salt of the collector's `probabilistic` policy when none is configured.
pub const COLLECTOR_DEFAULT_HASH_SALT: &str = "default-hash-seed";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Most shards a sampler splits its traces over.
const MAX_SHARDS: usize = 32;
/// Fewest traces a shard may hold before the sampler uses fewer shards.
const MIN_TRACES_PER_SHARD: usize = 256;

/// The OpenTelemetry Collector's tail-sampling `probabilistic` policy: a trace is kept when
/// the 64-bit FNV-1a hash of the salt followed by the trace id's 16 bytes is at most
/// `u64::MAX × percentage / 100` (the product rounded to 64 significant bits, to nearest
/// even, then truncated; 0 below 0 %, `u64::MAX` above 100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbabilisticPolicy {
    threshold: u64,
    /// The FNV-1a state after the salt.
    salted: u64,
}

impl ProbabilisticPolicy {
    /// The policy at `percentage` (the collector's `sampling_percentage`) with the
    /// collector's default salt.
    pub fn from_percentage(percentage: f64) -> Self {
        Self::with_salt(percentage, COLLECTOR_DEFAULT_HASH_SALT)
    }

    /// The policy at `percentage` with the collector's `hash_salt` set to `salt` (an empty
    /// salt means the default one, as in the collector).
    pub fn with_salt(percentage: f64, salt: &str) -> Self {
        let salt = if salt.is_empty() {
            COLLECTOR_DEFAULT_HASH_SALT
        } else {
            salt
        };
        ProbabilisticPolicy {
            threshold: threshold(percentage / 100.0),
            salted: fnv1a(FNV_OFFSET, salt.as_bytes()),
        }
    }

    /// The policy a generated collector configuration applies for `ratio` (0.0–1.0): the
    /// percentage exactly as the configuration writes it ([`sampling_percentage`]).
    pub fn from_ratio(ratio: f64) -> Self {
        Self::from_percentage(sampling_percentage(ratio).parse().unwrap_or(0.0))
    }

    /// The largest hash that is kept.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The hash of `trace_id` this policy compares with its threshold.
    pub fn hash(&self, trace_id: TraceId) -> u64 {
        fnv1a(self.salted, &trace_id.to_bytes())
    }

    /// Whether the trace is kept.
    pub fn keeps(&self, trace_id: TraceId) -> bool {
        self.hash(trace_id) <= self.threshold
    }
}

fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        state ^= u64::from(*byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// `u64::MAX × ratio`, computed as a 64-bit-precision binary float would (rounded to nearest
/// even at 64 significant bits), then truncated toward zero and clamped to `0..=u64::MAX`.
fn threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio.is_infinite() {
        return u64::MAX;
    }
    // ratio = mantissa × 2^exponent, exactly.
    let bits = ratio.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    // Below 2^117: exact in 128 bits.
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    let length = 128 - product.leading_zeros() as i32;
    let (mut rounded, mut shift) = (product, 0);
    if length > 64 {
        shift = length - 64;
        let kept = product >> shift;
        let rest = product & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        rounded = if rest > half || (rest == half && kept & 1 == 1) {
            kept + 1
        } else {
            kept
        };
        if rounded >> 64 != 0 {
            // Rounding carried into a 65th bit: the value is a power of two, still exact.
            rounded >>= 1;
            shift += 1;
        }
    }
    let scale = shift + exponent;
    if scale >= 0 {
        if scale >= 64 {
            return u64::MAX;
        }
        u64::try_from(rounded << scale).unwrap_or(u64::MAX)
    } else if -scale >= 128 {
        0
    } else {
        u64::try_from(rounded >> (-scale)).unwrap_or(u64::MAX)
    }
}

/// A ratio (0.0–1.0) as the percentage a generated collector configuration writes: clamped
/// to 0–100, at most three decimals, without trailing zeros (`0.1` → `10`).
///
/// ```
/// assert_eq!(stellaops_telemetry_core::sampling_percentage(0.125), "12.5");
/// ```
pub fn sampling_percentage(ratio: f64) -> String {
    let p = if ratio.is_nan() {
        0.0
    } else {
        (ratio * 100.0).clamp(0.0, 100.0)
    };
    let text = format!("{p:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The caps of the SDK's tail sampler.
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_core::TailSamplingLimits;
///
/// let limits = TailSamplingLimits::default().decision_wait(Duration::from_secs(2));
/// assert_eq!(limits.decision_wait, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailSamplingLimits {
    /// Longest a trace is held after its first span ended, when its local root does not end.
    /// Default: 5 s.
    pub decision_wait: Duration,
    /// Most traces held at once; beyond it the oldest is decided early. Default: 10,000.
    pub max_traces: usize,
    /// Most spans held for one trace; a trace reaching it is decided early. Default: 1,000.
    pub max_spans_per_trace: usize,
    /// Most estimated bytes of spans held at once; beyond it the oldest traces are decided
    /// early. Default: 8 MiB.
    pub max_bytes: usize,
}

impl Default for TailSamplingLimits {
    fn default() -> Self {
        TailSamplingLimits {
            decision_wait: Duration::from_secs(5),
            max_traces: 10_000,
            max_spans_per_trace: 1_000,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

impl TailSamplingLimits {
    /// Sets [`TailSamplingLimits::decision_wait`].
    pub fn decision_wait(mut self, wait: Duration) -> Self {
        self.decision_wait = wait;
        self
    }

    /// Sets [`TailSamplingLimits::max_traces`] (at least 1).
    pub fn max_traces(mut self, traces: usize) -> Self {
        self.max_traces = traces.max(1);
        self
    }

    /// Sets [`TailSamplingLimits::max_spans_per_trace`] (at least 1).
    pub fn max_spans_per_trace(mut self, spans: usize) -> Self {
        self.max_spans_per_trace = spans.max(1);
        self
    }

    /// Sets [`TailSamplingLimits::max_bytes`] (at least 1).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }
}

/// The policy that decided a trace, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Error,
    Slow,
    Incident,
    Probabilistic,
}

const POLICIES: [Policy; 4] = [
    Policy::Error,
    Policy::Slow,
    Policy::Incident,
    Policy::Probabilistic,
];

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Error => "error",
            Policy::Slow => "slow",
            Policy::Incident => "incident",
            Policy::Probabilistic => "probabilistic",
        }
    }
}

/// Why a trace was decided before its local root ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Early {
    DecisionWait,
    TraceLimit,
    SpanLimit,
    ByteLimit,
    Flush,
}

const EARLY: [Early; 5] = [
    Early::DecisionWait,
    Early::TraceLimit,
    Early::SpanLimit,
    Early::ByteLimit,
    Early::Flush,
];

impl Early {
    fn as_str(self) -> &'static str {
        match self {
            Early::DecisionWait => "decision_wait",
            Early::TraceLimit => "trace_limit",
            Early::SpanLimit => "span_limit",
            Early::ByteLimit => "byte_limit",
            Early::Flush => "flush",
        }
    }
}

/// The tail sampler's counters, from [`Telemetry::stats`](crate::Telemetry::stats) (all 0 when
/// the SDK does not sample).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailSamplingSnapshot {
    /// Traces kept, by the policy that kept them: error, slow, incident, probabilistic.
    pub kept: [u64; 4],
    /// Traces dropped (no policy kept them).
    pub dropped: u64,
    /// Traces decided before their local root ended, by reason: decision wait, trace cap,
    /// span cap, byte cap, flush or shutdown.
    pub decided_early: [u64; 5],
    /// Spans passed on to the span queue.
    pub spans_kept: u64,
    /// Spans dropped with their trace (sampled out: not a loss, not in `spans.dropped`).
    pub spans_sampled_out: u64,
    /// Traces held now.
    pub held_traces: u64,
    /// Spans held now.
    pub held_spans: u64,
    /// Estimated bytes of the spans held now.
    pub held_bytes: u64,
}

impl TailSamplingSnapshot {
    /// The policy names, in the order of [`kept`](Self::kept).
    pub const POLICIES: [&'static str; 4] = ["error", "slow", "incident", "probabilistic"];
    /// The reasons, in the order of [`decided_early`](Self::decided_early).
    pub const EARLY_REASONS: [&'static str; 5] = [
        "decision_wait",
        "trace_limit",
        "span_limit",
        "byte_limit",
        "flush",
    ];

    /// Traces decided, kept or dropped.
    pub fn decided(&self) -> u64 {
        self.kept.iter().sum::<u64>() + self.dropped
    }
}

/// What the sampler needs to know of a span.
pub(crate) trait TailSpan {
    fn trace_id(&self) -> TraceId;
    /// Whether its parent is remote or absent.
    fn is_local_root(&self) -> bool;
    fn is_error(&self) -> bool;
    fn has_attribute(&self, key: &str) -> bool;
    fn start_time(&self) -> SystemTime;
    fn end_time(&self) -> SystemTime;
}

impl TailSpan for SpanItem {
    fn trace_id(&self) -> TraceId {
        match self {
            SpanItem::Data(span) => span.span_context.trace_id(),
            SpanItem::Record(record) => record.span_context.trace_id(),
        }
    }

    fn is_local_root(&self) -> bool {
        match self {
            SpanItem::Data(span) => {
                span.parent_span_is_remote || span.parent_span_id == opentelemetry::SpanId::INVALID
            }
            SpanItem::Record(record) => {
                record.parent_is_remote || record.parent_span_id == opentelemetry::SpanId::INVALID
            }
        }
    }

    fn is_error(&self) -> bool {
        match self {
            SpanItem::Data(span) => matches!(span.status, Status::Error { .. }),
            SpanItem::Record(record) => record.error,
        }
    }

    fn has_attribute(&self, key: &str) -> bool {
        match self {
            SpanItem::Data(span) => span.attributes.iter().any(|kv| kv.key.as_str() == key),
            SpanItem::Record(record) => record.has_attribute(key),
        }
    }

    fn start_time(&self) -> SystemTime {
        match self {
            SpanItem::Data(span) => span.start_time,
            SpanItem::Record(record) => record.start_time,
        }
    }

    fn end_time(&self) -> SystemTime {
        match self {
            SpanItem::Data(span) => span.end_time,
            SpanItem::Record(record) => record.end_time,
        }
    }
}

/// The policies of one profile.
#[derive(Debug, Clone, Copy)]
struct Policies {
    error_share: ProbabilisticPolicy,
    slow_share: ProbabilisticPolicy,
    slow: Duration,
    base: ProbabilisticPolicy,
}

impl Policies {
    fn new(sampling: &SamplingSettings) -> Self {
        Policies {
            error_share: ProbabilisticPolicy::from_ratio(sampling.error_ratio),
            slow_share: ProbabilisticPolicy::from_ratio(sampling.slow_ratio),
            slow: Duration::from_millis(sampling.slow_threshold_ms),
            base: ProbabilisticPolicy::from_ratio(sampling.base_ratio),
        }
    }

    /// The decision for a trace of `spans`: `root` is its local root when it ended, else `now`
    /// bounds how long the open root has lasted.
    fn decide<H: TailSpan>(
        &self,
        id: TraceId,
        spans: &[(H, usize)],
        root: Option<&H>,
        now: SystemTime,
    ) -> (Policy, bool) {
        if spans.iter().any(|(s, _)| s.is_error()) && self.error_share.keeps(id) {
            return (Policy::Error, true);
        }
        let lasted = match root {
            Some(root) => lasted(root.start_time(), root.end_time()),
            // The open root began before the earliest span it holds.
            None => spans
                .iter()
                .map(|(s, _)| s.start_time())
                .min()
                .map_or(Duration::ZERO, |start| lasted(start, now)),
        };
        if lasted >= self.slow && self.slow_share.keeps(id) {
            return (Policy::Slow, true);
        }
        if spans
            .iter()
            .any(|(s, _)| s.has_attribute(INCIDENT_ID_ATTRIBUTE))
        {
            return (Policy::Incident, true);
        }
        (Policy::Probabilistic, self.base.keeps(id))
    }

    /// The policy that keeps a span ending after its trace was dropped, if one does.
    fn keeps_late<H: TailSpan>(&self, span: &H) -> Option<Policy> {
        let id = span.trace_id();
        if span.is_error() && self.error_share.keeps(id) {
            return Some(Policy::Error);
        }
        if span.is_local_root()
            && lasted(span.start_time(), span.end_time()) >= self.slow
            && self.slow_share.keeps(id)
        {
            return Some(Policy::Slow);
        }
        span.has_attribute(INCIDENT_ID_ATTRIBUTE)
            .then_some(Policy::Incident)
    }
}

fn lasted(start: SystemTime, end: SystemTime) -> Duration {
    end.duration_since(start).unwrap_or(Duration::ZERO)
}

/// Keyed hashing of trace ids: one multiply per id. Trace ids can come from remote parents;
/// the random key keeps crafted ids from piling into one bucket chain or one shard.
#[derive(Debug, Clone, Copy)]
struct IdKey(u64, u64);

impl IdKey {
    fn random() -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let mut a = state.build_hasher();
        a.write_u8(0);
        let mut b = state.build_hasher();
        b.write_u8(1);
        IdKey(a.finish(), b.finish() | 1)
    }

    fn hash(self, id: u128) -> u64 {
        let product = u128::from(id as u64 ^ self.0) * u128::from((id >> 64) as u64 ^ self.1);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

impl BuildHasher for IdKey {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            key: *self,
            state: 0,
        }
    }
}

struct IdHasher {
    key: IdKey,
    state: u64,
}

impl Hasher for IdHasher {
    fn write_u128(&mut self, id: u128) {
        self.state = self.key.hash(id ^ u128::from(self.state));
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for trace ids (they hash as one u128); correct for anything else.
        for chunk in bytes.chunks(16) {
            let mut buf = [0u8; 16];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u128(u128::from_le_bytes(buf));
        }
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// Recent decisions, for spans that end after their trace was decided: a direct-mapped
/// table (one slot per trace id hash; a newer decision takes an older one's slot), so
/// remembering and looking up cost one hash and no allocation.
struct Decisions {
    key: IdKey,
    /// Trace id and decision; the invalid trace id 0 marks an empty slot.
    slots: Box<[(u128, bool)]>,
}

impl Decisions {
    fn new(key: IdKey, slots: usize) -> Self {
        Decisions {
            key,
            slots: vec![(0, false); slots.next_power_of_two()].into_boxed_slice(),
        }
    }

    fn slot(&self, id: u128) -> usize {
        // Another bit order than the pending map's hash, so the two spread independently.
        (self.key.hash(id.rotate_left(32)) as usize) & (self.slots.len() - 1)
    }

    fn get_mut(&mut self, id: TraceId) -> Option<&mut bool> {
        let id = u128::from_be_bytes(id.to_bytes());
        let slot = self.slot(id);
        match &mut self.slots[slot] {
            (held, kept) if *held == id && id != 0 => Some(kept),
            _ => None,
        }
    }

    fn remember(&mut self, id: TraceId, keep: bool) {
        let id = u128::from_be_bytes(id.to_bytes());
        let slot = self.slot(id);
        self.slots[slot] = (id, keep);
    }
}

/// A trace held until its decision.
struct Pending<H> {
    spans: Vec<(H, usize)>,
    bytes: usize,
    /// Its place in the shard's age order.
    seq: u64,
    since: Instant,
}

/// Decided spans, passed on once the shard's lock is released.
enum Out<H> {
    Trace(Vec<(H, usize)>, bool),
    One(H, usize, bool),
}

/// The decisions of one call: most calls make none or one, held without allocating.
struct Outs<H> {
    first: Option<Out<H>>,
    rest: Vec<Out<H>>,
}

impl<H> Outs<H> {
    fn new() -> Self {
        Outs {
            first: None,
            rest: Vec::new(),
        }
    }

    fn push(&mut self, out: Out<H>) {
        if self.first.is_none() {
            self.first = Some(out);
        } else {
            self.rest.push(out);
        }
    }
}

/// The caps of one shard and the policies.
struct Config {
    policies: Policies,
    wait: Duration,
    traces: usize,
    spans_per_trace: usize,
    bytes: usize,
}

/// One shard's traces, its remembered decisions and its counters.
struct Shard<H> {
    pending: HashMap<TraceId, Pending<H>, IdKey>,
    /// Pending traces oldest first, with stale entries for traces decided meanwhile (skipped
    /// when met, compacted when they outnumber the live ones).
    order: VecDeque<(TraceId, u64)>,
    decided: Decisions,
    next_seq: u64,
    held_spans: usize,
    held_bytes: usize,
    kept: [u64; 4],
    dropped: u64,
    early: [u64; 5],
    spans_kept: u64,
    spans_sampled_out: u64,
}

impl<H: TailSpan> Shard<H> {
    fn new(key: IdKey, slots: usize) -> Self {
        Shard {
            pending: HashMap::with_hasher(key),
            order: VecDeque::new(),
            decided: Decisions::new(key, slots),
            next_seq: 0,
            held_spans: 0,
            held_bytes: 0,
            kept: [0; 4],
            dropped: 0,
            early: [0; 5],
            spans_kept: 0,
            spans_sampled_out: 0,
        }
    }

    /// Takes an ended span: holds it with its trace, or passes it on (in `out`) when its
    /// trace is decided.
    fn admit(&mut self, span: H, bytes: usize, config: &Config, out: &mut Outs<H>) {
        let id = span.trace_id();
        let root = span.is_local_root();
        if let Some(trace) = self.pending.get_mut(&id) {
            trace.spans.push((span, bytes));
            trace.bytes += bytes;
            self.held_spans += 1;
            self.held_bytes += bytes;
            let full = trace.spans.len() >= config.spans_per_trace;
            if root {
                self.decide(id, None, config, out);
            } else if full {
                self.decide(id, Some(Early::SpanLimit), config, out);
            }
        } else if let Some(kept) = self.decided.get_mut(id) {
            let mut keep = *kept;
            if !keep && let Some(policy) = config.policies.keeps_late(&span) {
                *kept = true;
                keep = true;
                self.count(policy, true, 0);
            }
            self.count_spans(keep, 1);
            out.push(Out::One(span, bytes, keep));
        } else if root {
            // A trace of one span here (the common case of a leaf service): decided at once.
            let one = [(span, bytes)];
            let (policy, keep) = config.policies.decide(id, &one, Some(&one[0].0), epoch());
            let [(span, bytes)] = one;
            self.count(policy, keep, 1);
            self.decided.remember(id, keep);
            out.push(Out::One(span, bytes, keep));
            return;
        } else {
            self.hold(id, span, bytes, config, out);
        }
        self.enforce_caps(config, out);
    }

    /// Starts holding a new trace with its first span.
    fn hold(&mut self, id: TraceId, span: H, bytes: usize, config: &Config, out: &mut Outs<H>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Room for a leaf service's trace of a request span and a child or two.
        let mut spans = Vec::with_capacity(2);
        spans.push((span, bytes));
        self.pending.insert(
            id,
            Pending {
                spans,
                bytes,
                seq,
                since: Instant::now(),
            },
        );
        self.order.push_back((id, seq));
        self.held_spans += 1;
        self.held_bytes += bytes;
        if config.spans_per_trace <= 1 {
            self.decide(id, Some(Early::SpanLimit), config, out);
        }
    }

    /// Decides the oldest traces while the shard holds more than its caps.
    fn enforce_caps(&mut self, config: &Config, out: &mut Outs<H>) {
        while self.pending.len() > config.traces {
            if !self.decide_oldest(Early::TraceLimit, config, out) {
                break;
            }
        }
        while self.held_bytes > config.bytes {
            if !self.decide_oldest(Early::ByteLimit, config, out) {
                break;
            }
        }
        if self.order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.order
                .retain(|(id, seq)| pending.get(id).is_some_and(|t| t.seq == *seq));
        }
    }

    /// The oldest held trace's id, dropping stale entries before it.
    fn oldest(&mut self) -> Option<(TraceId, Instant)> {
        while let Some(&(id, seq)) = self.order.front() {
            match self.pending.get(&id) {
                Some(trace) if trace.seq == seq => return Some((id, trace.since)),
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    fn decide_oldest(&mut self, why: Early, config: &Config, out: &mut Outs<H>) -> bool {
        match self.oldest() {
            Some((id, _)) => {
                self.order.pop_front();
                self.decide(id, Some(why), config, out);
                true
            }
            None => false,
        }
    }

    /// Decides a held trace: when its local root ended (`early` is `None`, the root is its
    /// last span) or early.
    fn decide(&mut self, id: TraceId, early: Option<Early>, config: &Config, out: &mut Outs<H>) {
        let Some(trace) = self.pending.remove(&id) else {
            return;
        };
        self.held_spans -= trace.spans.len();
        self.held_bytes -= trace.bytes;
        let (policy, keep) = match early {
            None => {
                let root = trace.spans.last().map(|(s, _)| s);
                config.policies.decide(id, &trace.spans, root, epoch())
            }
            Some(why) => {
                self.early[why as usize] += 1;
                config
                    .policies
                    .decide(id, &trace.spans, None, SystemTime::now())
            }
        };
        self.count(policy, keep, trace.spans.len() as u64);
        self.decided.remember(id, keep);
        out.push(Out::Trace(trace.spans, keep));
    }

    fn count(&mut self, policy: Policy, keep: bool, spans: u64) {
        if keep {
            self.kept[policy as usize] += 1;
        } else {
            self.dropped += 1;
        }
        self.count_spans(keep, spans);
    }

    fn count_spans(&mut self, keep: bool, spans: u64) {
        if keep {
            self.spans_kept += spans;
        } else {
            self.spans_sampled_out += spans;
        }
    }

    /// Decides every trace held longer than the decision wait.
    fn expire(&mut self, now: Instant, config: &Config, out: &mut Outs<H>) {
        while let Some((id, since)) = self.oldest() {
            if now.saturating_duration_since(since) < config.wait {
                break;
            }
            self.order.pop_front();
            self.decide(id, Some(Early::DecisionWait), config, out);
        }
    }

    /// Decides every held trace.
    fn release(&mut self, config: &Config, out: &mut Outs<H>) {
        while self.decide_oldest(Early::Flush, config, out) {}
        self.order.clear();
    }
}

/// A time no span ends before: the slow policy of a trace whose root ended never reads it.
fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH
}

/// The SDK's tail sampler for `sampling` when the profile samples in the SDK, by tail, and
/// keeps less than every trace (`None` otherwise: every span goes straight to the queue).
pub(crate) fn for_profile(
    sampling: &SamplingSettings,
    limits: TailSamplingLimits,
) -> Option<Arc<TailSampler<SpanItem>>> {
    let samples = sampling.site == SamplingSite::Sdk
        && sampling.mode == SamplingMode::Tail
        && ProbabilisticPolicy::from_ratio(sampling.base_ratio).threshold() < u64::MAX;
    samples.then(|| Arc::new(TailSampler::new(sampling, limits)))
}

/// The SDK's tail sampler: the shards, their caps and the policies.
pub(crate) struct TailSampler<H> {
    shards: Box<[Mutex<Shard<H>>]>,
    key: IdKey,
    config: Config,
}

impl<H> std::fmt::Debug for TailSampler<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailSampler")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<H: TailSpan> TailSampler<H> {
    /// The sampler of `sampling`'s policies under `limits`.
    pub(crate) fn new(sampling: &SamplingSettings, limits: TailSamplingLimits) -> Self {
        let max_traces = limits.max_traces.max(1);
        let wanted = (max_traces / MIN_TRACES_PER_SHARD).clamp(1, MAX_SHARDS);
        // A power of two, so a shard is picked with a mask.
        let shards = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
        let key = IdKey::random();
        TailSampler {
            // As many remembered decisions as traces may be held (twice the slots, as a
            // direct-mapped table loses some to collisions).
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(key, 2 * (max_traces / shards).max(1))))
                .collect(),
            key,
            config: Config {
                policies: Policies::new(sampling),
                wait: limits.decision_wait,
                traces: (max_traces / shards).max(1),
                spans_per_trace: limits.max_spans_per_trace.max(1),
                bytes: (limits.max_bytes / shards).max(1),
            },
        }
    }

    fn shard(&self, id: TraceId) -> &Mutex<Shard<H>> {
        let hash = self
            .key
            .hash(u128::from_be_bytes(id.to_bytes()).rotate_left(64));
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    /// Takes an ended span (`bytes` its estimated size); `emit` gets every span whose trace
    /// is decided now, with the decision, after the shard's lock is released.
    pub(crate) fn on_end(&self, span: H, bytes: usize, emit: impl FnMut(H, usize, bool)) {
        let mut out = Outs::new();
        self.shard(span.trace_id())
            .lock()
            .admit(span, bytes, &self.config, &mut out);
        pass_on(out, emit);
    }

    /// Decides every trace held longer than the decision wait.
    pub(crate) fn sweep(&self, mut emit: impl FnMut(H, usize, bool)) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            let mut out = Outs::new();
            shard.lock().expire(now, &self.config, &mut out);
            pass_on(out, &mut emit);
        }
    }

    /// Decides every held trace (flush and shutdown).
    pub(crate) fn release(&self, mut emit: impl FnMut(H, usize, bool)) {
        for shard in self.shards.iter() {
            let mut out = Outs::new();
            shard.lock().release(&self.config, &mut out);
            pass_on(out, &mut emit);
        }
    }

    /// The counters, summed over the shards.
    pub(crate) fn snapshot(&self) -> TailSamplingSnapshot {
        let mut s = TailSamplingSnapshot::default();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (into, from) in s.kept.iter_mut().zip(shard.kept) {
                *into += from;
            }
            for (into, from) in s.decided_early.iter_mut().zip(shard.early) {
                *into += from;
            }
            s.dropped += shard.dropped;
            s.spans_kept += shard.spans_kept;
            s.spans_sampled_out += shard.spans_sampled_out;
            s.held_traces += shard.pending.len() as u64;
            s.held_spans += shard.held_spans as u64;
            s.held_bytes += shard.held_bytes as u64;
        }
        s
    }
}

fn pass_on<H>(out: Outs<H>, mut emit: impl FnMut(H, usize, bool)) {
    for decided in out.first.into_iter().chain(out.rest) {
        match decided {
            Out::Trace(spans, keep) => {
                for (span, bytes) in spans {
                    emit(span, bytes, keep);
                }
            }
            Out::One(span, bytes, keep) => emit(span, bytes, keep),
        }
    }
}

/// Registers the tail sampler's self-metrics on the pipeline's meter:
/// `stellaops_telemetry_tail_sampling_decisions_total{policy,decision}`,
/// `stellaops_telemetry_tail_sampling_early_decisions_total{reason}`,
/// `stellaops_telemetry_tail_sampling_spans_total{decision}` and the gauges
/// `stellaops_telemetry_tail_sampling_held_{traces,spans,bytes}`.
pub(crate) fn register(
    provider: &SdkMeterProvider,
    snapshot: Arc<dyn Fn() -> TailSamplingSnapshot + Send + Sync>,
) {
    let meter = provider.meter("stellaops-telemetry");
    let read = snapshot.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_tail_sampling_decisions_total")
        .with_description("Traces the SDK's tail sampler decided, by policy and decision")
        .with_callback(move |observer| {
            let s = read();
            for policy in POLICIES {
                observer.observe(
                    s.kept[policy as usize],
                    &[
                        KeyValue::new("policy", policy.as_str()),
                        KeyValue::new("decision", "keep"),
                    ],
                );
            }
            observer.observe(
                s.dropped,
                &[
                    KeyValue::new("policy", Policy::Probabilistic.as_str()),
                    KeyValue::new("decision", "drop"),
                ],
            );
        })
        .build();
    let read = snapshot.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_tail_sampling_early_decisions_total")
        .with_description("Traces decided before their local root ended, by reason")
        .with_callback(move |observer| {
            let s = read();
            for why in EARLY {
                observer.observe(
                    s.decided_early[why as usize],
                    &[KeyValue::new("reason", why.as_str())],
                );
            }
        })
        .build();
    let read = snapshot.clone();
    let _ = meter
        .u64_observable_counter("stellaops_telemetry_tail_sampling_spans_total")
        .with_description("Spans the SDK's tail sampler kept or sampled out")
        .with_callback(move |observer| {
            let s = read();
            observer.observe(s.spans_kept, &[KeyValue::new("decision", "keep")]);
            observer.observe(s.spans_sampled_out, &[KeyValue::new("decision", "drop")]);
        })
        .build();
    for (name, description, pick) in [
        (
            "stellaops_telemetry_tail_sampling_held_traces",
            "Traces the tail sampler holds, awaiting their decision",
            (|s: &TailSamplingSnapshot| s.held_traces) as fn(&TailSamplingSnapshot) -> u64,
        ),
        (
            "stellaops_telemetry_tail_sampling_held_spans",
            "Spans the tail sampler holds, awaiting their trace's decision",
            |s| s.held_spans,
        ),
        (
            "stellaops_telemetry_tail_sampling_held_bytes",
            "Estimated bytes of the spans the tail sampler holds",
            |s| s.held_bytes,
        ),
    ] {
        let read = snapshot.clone();
        let _ = meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| observer.observe(pick(&read()), &[]))
            .build();
    }
}

#[cfg(test)]
mod tests;
