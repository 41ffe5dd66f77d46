//! The sampler's bookkeeping on plain test spans: decisions, caps and remembered decisions.

use super::*;

#[derive(Debug, Clone)]
struct T {
    trace: u128,
    root: bool,
    error: bool,
    incident: bool,
    start: SystemTime,
    end: SystemTime,
}

impl TailSpan for T {
    fn trace_id(&self) -> TraceId {
        TraceId::from_bytes(self.trace.to_be_bytes())
    }
    fn is_local_root(&self) -> bool {
        self.root
    }
    fn is_error(&self) -> bool {
        self.error
    }
    fn has_attribute(&self, key: &str) -> bool {
        self.incident && key == INCIDENT_ID_ATTRIBUTE
    }
    fn start_time(&self) -> SystemTime {
        self.start
    }
    fn end_time(&self) -> SystemTime {
        self.end
    }
}

fn span(trace: u128, root: bool) -> T {
    let start = SystemTime::now();
    T {
        trace,
        root,
        error: false,
        incident: false,
        start,
        end: start,
    }
}

fn sampler(limits: TailSamplingLimits) -> TailSampler<T> {
    let mut sampling = crate::Profile::airgap().sampling;
    sampling.base_ratio = 0.0;
    TailSampler::new(&sampling, limits)
}

/// Spans passed on, (trace, kept).
fn run(sampler: &TailSampler<T>, spans: Vec<T>) -> Vec<(u128, bool)> {
    let mut out = Vec::new();
    for s in spans {
        sampler.on_end(s, 100, |s, _, keep| out.push((s.trace, keep)));
    }
    out
}

#[test]
fn thresholds_match_exact_rational_arithmetic() {
    // u64::MAX × (p / 100) exactly, rounded to 64 significant bits (ties to even), truncated:
    // each value is what the collector's `calculateThreshold` (its tail-sampling
    // `probabilistic.go`) returns for it, printed by running that function.
    for (percentage, expected) in [
        (0.0, 0),
        (0.1, 18_446_744_073_709_551),
        (1.0, 184_467_440_737_095_519),
        (10.0, 1_844_674_407_370_955_263),
        (25.0, 4_611_686_018_427_387_903),
        (33.0, 6_087_425_544_324_152_319),
        (33.333, 6_148_853_202_089_604_095),
        (50.0, 9_223_372_036_854_775_807),
        (99.9, 18_428_297_329_635_844_095),
        (100.0, u64::MAX),
        (150.0, u64::MAX),
        (-50.0, 0),
    ] {
        assert_eq!(
            ProbabilisticPolicy::from_percentage(percentage).threshold(),
            expected,
            "{percentage} %"
        );
    }
    assert_eq!(threshold(f64::NAN), 0);
    assert_eq!(threshold(f64::INFINITY), u64::MAX);
    assert_eq!(threshold(f64::MIN_POSITIVE), 0);
}

#[test]
fn a_trace_is_held_until_its_local_root_ends_then_passed_on_whole() {
    let s = sampler(TailSamplingLimits::default());
    let mut child = span(1, false);
    child.error = true;
    assert!(run(&s, vec![child, span(1, false)]).is_empty());
    assert_eq!(s.snapshot().held_spans, 2);
    let out = run(&s, vec![span(1, true)]);
    assert_eq!(out, [(1, true), (1, true), (1, true)]);
    let snap = s.snapshot();
    assert_eq!((snap.kept[0], snap.held_spans, snap.spans_kept), (1, 0, 3));
    // A span ending after the decision follows it.
    assert_eq!(run(&s, vec![span(1, false)]), [(1, true)]);
}

#[test]
fn without_error_slow_or_incident_a_zero_share_drops_and_a_late_error_turns_it_to_keep() {
    let s = sampler(TailSamplingLimits::default());
    assert_eq!(
        run(&s, vec![span(2, false), span(2, true)]),
        [(2, false), (2, false)]
    );
    let mut late = span(2, false);
    late.error = true;
    assert_eq!(run(&s, vec![late, span(2, false)]), [(2, true), (2, true)]);
    let snap = s.snapshot();
    assert_eq!(
        (snap.dropped, snap.kept[0], snap.spans_sampled_out),
        (1, 1, 2)
    );
}

#[test]
fn slow_roots_and_incident_spans_keep_their_trace() {
    let s = sampler(TailSamplingLimits::default());
    let mut slow = span(3, true);
    slow.end = slow.start + Duration::from_millis(2_000);
    let mut incident = span(4, false);
    incident.incident = true;
    let out = run(&s, vec![slow, incident, span(4, true)]);
    assert_eq!(out, [(3, true), (4, true), (4, true)]);
    assert_eq!(s.snapshot().kept, [0, 1, 1, 0]);
}

#[test]
fn full_shards_decide_their_oldest_trace_early_and_hold_no_more_than_the_caps() {
    let s = sampler(
        TailSamplingLimits::default()
            .max_traces(8)
            .max_spans_per_trace(3)
            .max_bytes(1 << 20),
    );
    let passed = run(&s, (0..100).map(|t| span(t, false)).collect());
    let snap = s.snapshot();
    assert!(snap.held_traces <= 8, "{snap:?}");
    assert_eq!(passed.len() as u64 + snap.held_spans, 100);
    assert_eq!(snap.decided_early[1], 100 - snap.held_traces);
    // The span cap decides a trace at its third span; its later spans follow.
    let passed = run(&s, (0..5).map(|_| span(1_000, false)).collect());
    assert!(passed.iter().filter(|(t, _)| *t == 1_000).count() == 5);
    assert_eq!(s.snapshot().decided_early[2], 1);
}

#[test]
fn the_byte_cap_decides_early_too_and_release_empties_the_sampler() {
    let s = sampler(TailSamplingLimits::default().max_bytes(1_000));
    run(&s, (0..50).map(|t| span(t, false)).collect());
    let snap = s.snapshot();
    assert!(snap.held_bytes <= 1_000, "{snap:?}");
    assert!(snap.decided_early[3] >= 40, "{snap:?}");
    let mut released = 0;
    s.release(|_, _, _| released += 1);
    assert_eq!(released as u64, snap.held_spans);
    let after = s.snapshot();
    assert_eq!(
        (after.held_traces, after.held_spans, after.held_bytes),
        (0, 0, 0)
    );
    assert_eq!(after.decided(), 50);
}

#[test]
fn the_sweep_decides_traces_past_the_decision_wait_and_counts_open_roots_as_slow() {
    let s = sampler(TailSamplingLimits::default().decision_wait(Duration::ZERO));
    let mut old = span(9, false);
    old.start = SystemTime::now() - Duration::from_secs(10);
    run(&s, vec![old, span(10, false)]);
    let mut out = Vec::new();
    s.sweep(|t, _, keep| out.push((t.trace, keep)));
    out.sort_unstable();
    // Trace 9's open root began at least 10 s ago: slow, kept; trace 10 just began: dropped.
    assert_eq!(out, [(9, true), (10, false)]);
    assert_eq!(s.snapshot().decided_early[0], 2);
}

#[test]
fn stale_order_entries_are_compacted() {
    let s = sampler(TailSamplingLimits::default());
    let _long = run(&s, vec![span(7, false)]);
    for t in 100..10_000 {
        run(&s, vec![span(t, false), span(t, true)]);
    }
    for shard in s.shards.iter() {
        let shard = shard.lock();
        assert!(
            shard.order.len() <= 2 * shard.pending.len() + 65,
            "{}",
            shard.order.len()
        );
    }
}
