//! Where the profile samples in the SDK, the tail sampler keeps every trace with an error, a
//! slow local root or an incident id, keeps the share of the rest the collector's
//! `probabilistic` policy would keep (the same trace ids), holds no more than its caps under a
//! flood of traces that never end, and counts every decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    INCIDENT_ATTRIBUTE, ProbabilisticPolicy, Profile, SamplingSite, SpanRecorder,
    TailSamplingLimits, Telemetry,
};

/// splitmix64: deterministic, well-spread trace ids.
struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn trace_id(&mut self) -> TraceId {
        let (hi, lo) = (self.next_u64(), self.next_u64());
        TraceId::from_bytes(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
    }
}

/// A pipeline that samples in the SDK, into memory only.
fn pipeline(exporters: &TestExporters, limits: TailSamplingLimits) -> Telemetry {
    Telemetry::builder("tail")
        .exporters(&[])
        .stdout_logs(false)
        .sampling_site(SamplingSite::Sdk)
        .tail_sampling_limits(limits)
        .max_queue_size(1 << 20)
        .max_queue_bytes(1 << 30)
        .export_delay(Duration::from_millis(10))
        .test_exporters(exporters)
        .build()
        .unwrap()
}

/// What a generated trace carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plain,
    /// The root lasted just under the slow threshold: not slow.
    AlmostSlow,
    Error,
    Slow,
    Incident,
}

/// One trace of two spans on the record road: a child, then its local root.
fn record_trace(recorder: &SpanRecorder, id: TraceId, kind: Kind, at: SystemTime) {
    let context = |span: u64| {
        SpanContext::new(
            id,
            SpanId::from_bytes(span.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        )
    };
    let root_id = SpanId::from_bytes(1u64.to_be_bytes());
    let mut child = recorder.new_record(context(2), root_id, false, SpanKind::Internal, at);
    child.name = ("db", "query");
    child.end_time = at + Duration::from_millis(5);
    child.error = kind == Kind::Error;
    if kind == Kind::Incident {
        child.push_text(INCIDENT_ATTRIBUTE, "INC-42");
    }
    recorder.submit_record(child);
    let mut root = recorder.new_record(context(1), SpanId::INVALID, false, SpanKind::Server, at);
    root.name = ("GET", "/scan");
    root.end_time = at
        + match kind {
            Kind::Slow => Duration::from_millis(2_000),
            Kind::AlmostSlow => Duration::from_millis(1_999),
            _ => Duration::from_millis(10),
        };
    recorder.submit_record(root);
}

/// The trace ids among the exported spans, and how many spans there were.
fn exported(exporters: &TestExporters) -> (HashSet<TraceId>, usize) {
    let spans = exporters.finished_spans();
    let ids = spans.iter().map(|s| s.span_context.trace_id()).collect();
    (ids, spans.len())
}

#[test]
fn over_130_000_traces_every_special_trace_is_kept_and_the_share_matches_the_collectors() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, TailSamplingLimits::default());
    let recorder = telemetry.span_recorder();
    let base = ProbabilisticPolicy::from_ratio(Profile::default_profile().sampling.base_ratio);
    let mut ids = Ids(2024);
    let at = SystemTime::now();
    let mut plain = Vec::new();
    let mut special = Vec::new();
    for i in 0..130_000u32 {
        let kind = match i {
            0..100_000 => Kind::Plain,
            100_000..110_000 => Kind::Error,
            110_000..120_000 => Kind::Slow,
            120_000..125_000 => Kind::Incident,
            _ => Kind::AlmostSlow,
        };
        let id = ids.trace_id();
        record_trace(recorder, id, kind, at);
        match kind {
            Kind::Plain | Kind::AlmostSlow => plain.push(id),
            _ => special.push(id),
        }
        if i % 10_000 == 9_999 {
            telemetry.flush(Duration::from_secs(30)).unwrap();
        }
    }
    telemetry.flush(Duration::from_secs(30)).unwrap();
    let (kept, spans) = exported(&exporters);
    let stats = telemetry.stats();
    assert_eq!(stats.spans.dropped, 0, "{stats:?}");

    // 100 % of error, slow and incident traces, both spans of each.
    let missing: Vec<_> = special.iter().filter(|id| !kept.contains(id)).collect();
    assert!(missing.is_empty(), "{} special traces lost", missing.len());

    // The rest: exactly the traces the collector's policy keeps, within 0.3 points of 10 %.
    let expected: HashSet<TraceId> = plain.iter().copied().filter(|id| base.keeps(*id)).collect();
    let kept_plain: HashSet<TraceId> = plain
        .iter()
        .copied()
        .filter(|id| kept.contains(id))
        .collect();
    assert_eq!(kept_plain, expected, "the SDK and the collector disagree");
    let share = 100.0 * kept_plain.len() as f64 / plain.len() as f64;
    assert!((share - 10.0).abs() <= 0.3, "share {share:.3} %");
    assert_eq!(spans, 2 * kept.len());

    let tail = &stats.tail_sampling;
    // Kept by policy: error, slow, incident; then the probabilistic share.
    assert_eq!(tail.kept[..3], [10_000, 10_000, 5_000], "{tail:?}");
    assert_eq!(tail.kept[3], expected.len() as u64);
    assert_eq!(tail.decided(), 130_000);
    assert_eq!(tail.spans_kept, spans as u64);
    assert_eq!(tail.spans_kept + tail.spans_sampled_out, 260_000);
    assert_eq!(
        (tail.held_traces, tail.held_spans, tail.held_bytes),
        (0, 0, 0)
    );
    assert_eq!(tail.decided_early, [0; 5], "every root ended");
    assert_eq!(stats.spans.exported, spans as u64);

    // The decisions are self-metrics too.
    let names: Vec<String> = exporters
        .metrics()
        .iter()
        .flat_map(|m| m.scope_metrics().flat_map(|s| s.metrics()))
        .map(|m| m.name().to_owned())
        .collect();
    for name in [
        "stellaops_telemetry_tail_sampling_decisions_total",
        "stellaops_telemetry_tail_sampling_early_decisions_total",
        "stellaops_telemetry_tail_sampling_held_traces",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    telemetry.shutdown();
}

#[test]
fn sdk_spans_under_a_remote_parent_are_sampled_the_same_way() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, TailSamplingLimits::default());
    let tracer = telemetry.tracer_provider().tracer("tail");
    let base = ProbabilisticPolicy::from_percentage(10.0);
    let mut ids = Ids(7);
    let (mut errors, mut slow, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let start = SystemTime::now();
    for i in 0..600 {
        let id = ids.trace_id();
        let remote = SpanContext::new(
            id,
            SpanId::from_bytes([9; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        );
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        let root = tracer
            .span_builder("GET /scan")
            .with_start_time(start)
            .start_with_context(&tracer, &parent);
        let cx = parent.with_span(root);
        let mut child = tracer
            .span_builder("db.query")
            .with_start_time(start)
            .start_with_context(&tracer, &cx);
        let root = cx.span();
        let lasted = match i % 3 {
            0 => {
                child.set_status(Status::error("timeout"));
                errors.push(id);
                Duration::from_millis(20)
            }
            1 => {
                slow.push(id);
                Duration::from_secs(3)
            }
            _ => {
                plain.push(id);
                Duration::from_millis(20)
            }
        };
        child.end_with_timestamp(start + Duration::from_millis(10));
        root.end_with_timestamp(start + lasted);
    }
    telemetry.flush(Duration::from_secs(30)).unwrap();
    let (kept, spans) = exported(&exporters);
    for id in errors.iter().chain(&slow) {
        assert!(kept.contains(id), "{id} lost");
    }
    for id in &plain {
        assert_eq!(kept.contains(id), base.keeps(*id), "{id}");
    }
    assert_eq!(spans, 2 * kept.len());
    telemetry.shutdown();
}

#[test]
fn a_flood_of_traces_that_never_end_stays_within_the_caps_and_every_span_is_counted() {
    let exporters = TestExporters::discarding_spans();
    let limits = TailSamplingLimits::default()
        .decision_wait(Duration::from_secs(3_600))
        .max_traces(1_000)
        .max_spans_per_trace(10)
        .max_bytes(4 << 20);
    let telemetry = pipeline(&exporters, limits);
    let recorder = telemetry.span_recorder();
    let mut ids = Ids(99);
    let at = SystemTime::now();
    let mut submitted = 0u64;
    // Children whose local root never ends: 50,000 traces of one span.
    for i in 0..50_000u64 {
        let id = ids.trace_id();
        let context = SpanContext::new(
            id,
            SpanId::from_bytes(2u64.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let parent = SpanId::from_bytes(1u64.to_be_bytes());
        let mut child = recorder.new_record(context, parent, false, SpanKind::Internal, at);
        child.name = ("db", "query");
        child.end_time = at;
        recorder.submit_record(child);
        submitted += 1;
        if i % 1_000 == 0 {
            let tail = telemetry.stats().tail_sampling;
            assert!(tail.held_traces <= 1_000, "{tail:?}");
            assert!(tail.held_bytes <= 4 << 20, "{tail:?}");
        }
    }
    // One trace with more spans than the per-trace cap.
    let id = ids.trace_id();
    for span in 0..25u64 {
        let context = SpanContext::new(
            id,
            SpanId::from_bytes((span + 10).to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let parent = SpanId::from_bytes(1u64.to_be_bytes());
        let record = recorder.new_record(context, parent, false, SpanKind::Internal, at);
        recorder.submit_record(record);
        submitted += 1;
    }
    let tail = telemetry.stats().tail_sampling;
    assert!(tail.held_traces <= 1_000, "{tail:?}");
    // The trace cap decided the oldest traces early, the span cap the long trace.
    assert_eq!(
        tail.decided_early[1],
        50_001 - tail.held_traces - 1,
        "{tail:?}"
    );
    assert_eq!(tail.decided_early[2], 1, "{tail:?}");
    assert_eq!(
        tail.spans_kept + tail.spans_sampled_out + tail.held_spans,
        submitted,
        "{tail:?}"
    );

    // A flush decides the rest; nothing is held, every span is accounted for.
    let held = tail.held_traces;
    telemetry.flush(Duration::from_secs(30)).unwrap();
    let stats = telemetry.stats();
    let tail = &stats.tail_sampling;
    assert_eq!(tail.decided_early[4], held);
    assert_eq!((tail.held_traces, tail.held_spans), (0, 0));
    assert_eq!(tail.spans_kept + tail.spans_sampled_out, submitted);
    assert_eq!(stats.spans.exported + stats.spans.dropped, tail.spans_kept);
    telemetry.shutdown();
}

#[test]
fn a_trace_whose_root_never_ends_is_decided_once_its_decision_wait_passes() {
    let exporters = TestExporters::new();
    let limits = TailSamplingLimits::default().decision_wait(Duration::from_millis(1));
    let telemetry = pipeline(&exporters, limits);
    let recorder = telemetry.span_recorder();
    let id = TraceId::from_bytes([7; 16]);
    let context = SpanContext::new(
        id,
        SpanId::from_bytes([2; 8]),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let mut child = recorder.new_record(
        context,
        SpanId::from_bytes([1; 8]),
        false,
        SpanKind::Internal,
        SystemTime::now(),
    );
    child.error = true;
    recorder.submit_record(child);
    // Whatever the machine's speed, the worker's sweep decides it; no flush is involved.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while telemetry.stats().tail_sampling.decided_early[0] == 0 {
        assert!(std::time::Instant::now() < deadline, "never decided");
        std::thread::sleep(Duration::from_millis(5));
    }
    telemetry.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(exporters.finished_spans().len(), 1);
    assert_eq!(telemetry.stats().tail_sampling.kept[0], 1);
    telemetry.shutdown();
}

#[test]
fn profiles_that_leave_sampling_to_the_collector_keep_every_span() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("tail")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let mut ids = Ids(5);
    for _ in 0..200 {
        record_trace(
            telemetry.span_recorder(),
            ids.trace_id(),
            Kind::Plain,
            SystemTime::now(),
        );
    }
    telemetry.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(exporters.finished_spans().len(), 400);
    assert_eq!(telemetry.stats().tail_sampling.decided(), 0);
    telemetry.shutdown();
}

/// The collector's `probabilistic` policy: thresholds and decisions computed independently
/// (exact rational arithmetic and FNV-1a), and the effective shares of the collector's own
/// test table (processor/tailsamplingprocessor/internal/sampling/probabilistic_test.go).
mod collector_probabilistic_policy {
    use super::*;

    #[test]
    fn thresholds_agree_with_exact_arithmetic() {
        for (percentage, threshold) in [
            (0.0, 0),
            (1.0, 184_467_440_737_095_519),
            (10.0, 1_844_674_407_370_955_263),
            (25.0, 4_611_686_018_427_387_903),
            (33.0, 6_087_425_544_324_152_319),
            (50.0, 9_223_372_036_854_775_807),
            (100.0, u64::MAX),
            (150.0, u64::MAX),
            (-50.0, 0),
        ] {
            let policy = ProbabilisticPolicy::from_percentage(percentage);
            assert_eq!(policy.threshold(), threshold, "{percentage} %");
        }
        // The percentage the generated configuration writes for the profile's base ratio.
        assert_eq!(
            ProbabilisticPolicy::from_ratio(0.1),
            ProbabilisticPolicy::from_percentage(10.0)
        );
    }

    #[test]
    fn golden_trace_ids_hash_and_decide_as_the_collector_does() {
        let ten = ProbabilisticPolicy::from_percentage(10.0);
        let salted = ProbabilisticPolicy::with_salt(33.0, "test-salt");
        for (hex, hash, kept_at_10, kept_at_33_salted) in [
            (
                "ffffffffffffffffffffffffffffffff",
                Some(0x17be_c373_9634_fe2d),
                Some(true),
                Some(true),
            ),
            (
                "0102030405060708090a0b0c0d0e0f10",
                Some(0xdbcf_64d5_420f_4cad),
                Some(false),
                Some(true),
            ),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736",
                Some(0xa545_33ba_2e49_70b5),
                Some(false),
                Some(false),
            ),
            (
                "0af7651916cd43dd8448eb211c80319c",
                Some(0x33bf_83d4_5f51_634c),
                Some(false),
                Some(false),
            ),
            (
                "073353003c4c4dd36a6635d1f9769faf",
                Some(0xe52a_2666_fe9c_8913),
                Some(false),
                Some(true),
            ),
            (
                "3fd65c5fc586b9d26db20b8dc425eaed",
                Some(0x0af8_87e0_8f35_873c),
                Some(true),
                Some(false),
            ),
            (
                "09166f6b113d178d6c0fd3901ff239a1",
                Some(0x0fac_8bc6_9705_4207),
                Some(true),
                None,
            ),
            (
                "745c4c3fcb2eb2c73e14934c867ee057",
                Some(0x0e54_358a_a1ff_e3b6),
                Some(true),
                None,
            ),
            (
                "0af6ab13c38e92cae0d15057b159987f",
                Some(0x1189_5cf8_30d9_3d77),
                Some(true),
                None,
            ),
        ] {
            let id = TraceId::from_hex(hex).unwrap();
            if let Some(hash) = hash {
                assert_eq!(ten.hash(id), hash, "{hex}");
            }
            if let Some(kept) = kept_at_10 {
                assert_eq!(ten.keeps(id), kept, "{hex} at 10 %");
            }
            if let Some(kept) = kept_at_33_salted {
                assert_eq!(salted.keeps(id), kept, "{hex} at 33 % salted");
            }
        }
        // The all-zero id is not a valid trace id; its hash is still the collector's.
        let zero = TraceId::from_bytes([0; 16]);
        assert_eq!(ten.hash(zero), 0xe195_36ee_d1bb_ac3d);
    }

    #[test]
    fn effective_shares_over_100_000_ids_match_the_collectors_table() {
        let mut ids = Ids(1);
        let ids: Vec<TraceId> = (0..100_000).map(|_| ids.trace_id()).collect();
        for (percentage, salt, expected) in [
            (100.0, "", 100.0),
            (0.0, "", 0.0),
            (25.0, "", 25.0),
            (33.0, "", 33.0),
            (33.0, "test-salt", 33.0),
            (-50.0, "", 0.0),
            (150.0, "", 100.0),
            (10.0, "", 10.0),
        ] {
            let policy = ProbabilisticPolicy::with_salt(percentage, salt);
            let kept = ids.iter().filter(|id| policy.keeps(**id)).count();
            let share = 100.0 * kept as f64 / ids.len() as f64;
            assert!(
                (share - expected).abs() <= 0.2,
                "{percentage} % salt {salt:?}: {share}"
            );
        }
    }
}
