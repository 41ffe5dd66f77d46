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

/// The collector's `probabilistic` policy, against vectors the collector's own code produced.
///
/// Every threshold, hash, decision and effective share in the tables below was printed by running the
/// functions of opentelemetry-collector-contrib's
/// `processor/tailsamplingprocessor/internal/sampling/probabilistic.go` (`calculateThreshold`,
/// `hashTraceID`, the comparison in `Evaluate`, the default hash salt) copied verbatim into a
/// Go program, over the trace ids of `genRandomTraceIDs` in its `probabilistic_test.go`
/// (`math/rand` seeded with 1), with that test's cases plus the profile's default 10 %.
mod collector_probabilistic_policy {
    use super::*;

    /// The collector test's cases, then the profile's default share: percentage, hash salt
    /// (empty: the default one), the collector's threshold, how many of the test's 100,000
    /// ids it samples and the effective share the test computes from that (in `f32`).
    const CASES: [(f64, &str, u64, u32, f32); 8] = [
        (100.0, "", u64::MAX, 100_000, 100.0),
        (0.0, "", 0, 0, 0.0),
        (25.0, "", 4_611_686_018_427_387_903, 24_958, 24.958),
        (33.0, "", 6_087_425_544_324_152_319, 33_027, 33.027),
        (
            33.0,
            "test-salt",
            6_087_425_544_324_152_319,
            33_178,
            33.177998,
        ),
        (-50.0, "", 0, 0, 0.0),
        (150.0, "", u64::MAX, 100_000, 100.0),
        (10.0, "", 1_844_674_407_370_955_263, 10_121, 10.121),
    ];

    /// Trace id, the collector's hash of it with the default salt and with `test-salt`, and
    /// its decision under each of [`CASES`] in order (`1`: sampled). The first 20 ids of
    /// `genRandomTraceIDs`, then fixed ids: all ones, counting bytes, common example ids and the
    /// all-zero id.
    #[rustfmt::skip] // One vector a line.
    const VECTORS: [(&str, u64, u64, &str); 30] = [
        ("4d65822107fcfd5278629a0f5f3f164f", 0xd91cd26ae4f711f2, 0x9ce2b4ebc2f52dc7, "10000010"),
        ("d5104dc76695721db80704bb7b4d7c03", 0x41eb16e3da820851, 0x365bbf481acba560, "10011010"),
        ("365a858149c6e2d157e9d1860d1d68d8", 0x68ffa1dcccca5958, 0x17a463e52d1ea7f1, "10001010"),
        ("8866cb397916001e9408d2ac22c4d294", 0x2d3876602e6d4878, 0x76b561758e9b60a5, "10110010"),
        ("0c697f48392907a0a68447a4189deb99", 0x7834c3584e6c7bd2, 0x114d0ab17b1f819f, "10001010"),
        ("41f27cc6f3875d0468255aaf95e94627", 0x6f5dd5e849c531c6, 0xc9a2f9361a7e1753, "10000010"),
        ("9b6cffa2ba51793630b95ff183c471d4", 0x913135d171217858, 0x2fd337cc8cc5ef99, "10001010"),
        ("a8b621587cb3ad0b3c04951aa42655d9", 0xe4a531ebb875a340, 0xaa141241f3e38f45, "10000010"),
        ("a43a768b7c4e0b68a5845c95d4491d1b", 0x82f6af91d3c6c9b8, 0x771c9ebf75460dad, "10000010"),
        ("56ec3f25256321869bf98be2a9d78d73", 0x2a0dae7ca23d1c5d, 0x010431f003351e08, "10111010"),
        ("1a02070f169c11212e3108dabb158644", 0x12ef4e9d7236f092, 0xcd20a879c71c797b, "10110011"),
        ("c90bd268b68e6a3f6e661e92759805f5", 0xe3c6a7cfe2c815b3, 0xeb000e5bf5641516, "10000010"),
        ("a584c47f2cdf5b8a2606cd2b57d29245", 0x0933bd0169f23e69, 0x81d861790c47523c, "10110011"),
        ("6054502fc5d6d2681a714cf86b83d0e2", 0xc240e3454bbbb370, 0x625b38f7f162cd91, "10000010"),
        ("eec34c367674cb74d92e17f7b068d9db", 0xb9bdbecc10dd33e4, 0x696bb7e5009ee699, "10000010"),
        ("430c8b35bb9457d8039f6f78a15d523b", 0x02f93624b7434ad6, 0x84580a057f3ceda3, "10110011"),
        ("944419db794209ff4dba7b0f9da1d7eb", 0xe17068faea9871cf, 0x29d24facb422d41e, "10001010"),
        ("fcd4b7a55a25e0cb8a2b894cf840ec4b", 0x160c9aa45a3db53e, 0xab9bb0249313411b, "10110011"),
        ("4c22b02936d4ff9b879143f7f4a5ee3b", 0x5e51a7c5cdd1bb7e, 0x70371b3c5490b88b, "10000010"),
        ("589442fd5ad145f426984b92f6740304", 0x56de40a19aa935d2, 0xf1f646544816ac6b, "10000010"),
        ("ffffffffffffffffffffffffffffffff", 0x17bec3739634fe2d, 0x49f70bce284974b0, "10111011"),
        ("0102030405060708090a0b0c0d0e0f10", 0xdbcf64d5420f4cad, 0x08ee52deda923930, "10001010"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", 0xa54533ba2e4970b5, 0xabb7bd9f983cd93c, "10000010"),
        ("0af7651916cd43dd8448eb211c80319c", 0x33bf83d45f51634c, 0xdf9caa2a9f0d52f1, "10110010"),
        ("073353003c4c4dd36a6635d1f9769faf", 0xe52a2666fe9c8913, 0x2042038ca0bf3e22, "10001010"),
        ("3fd65c5fc586b9d26db20b8dc425eaed", 0x0af887e08f35873c, 0xfb38323149eb43c5, "10110011"),
        ("09166f6b113d178d6c0fd3901ff239a1", 0x0fac8bc697054207, 0x43bab0315f753bce, "10111011"),
        ("745c4c3fcb2eb2c73e14934c867ee057", 0x0e54358aa1ffe3b6, 0x679082f3e7a9cdab, "10110011"),
        ("0af6ab13c38e92cae0d15057b159987f", 0x11895cf830d93d77, 0x0cb70c294a1d7c06, "10111011"),
        ("00000000000000000000000000000000", 0xe19536eed1bbac3d, 0x8149711e69875cc0, "10000010"),
    ];

    /// Further thresholds of `calculateThreshold(percentage / 100)`.
    const THRESHOLDS: [(f64, u64); 5] = [
        (0.1, 18_446_744_073_709_551),
        (1.0, 184_467_440_737_095_519),
        (33.333, 6_148_853_202_089_604_095),
        (50.0, 9_223_372_036_854_775_807),
        (99.9, 18_428_297_329_635_844_095),
    ];

    fn policy(percentage: f64, salt: &str) -> ProbabilisticPolicy {
        ProbabilisticPolicy::with_salt(percentage, salt)
    }

    #[test]
    fn thresholds_are_the_collectors() {
        for (percentage, salt, threshold, _, _) in CASES {
            assert_eq!(
                policy(percentage, salt).threshold(),
                threshold,
                "{percentage} %"
            );
        }
        for (percentage, threshold) in THRESHOLDS {
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
    fn hashes_and_decisions_are_the_collectors_for_every_vector() {
        let mut checked = 0;
        for (hex, default_salt_hash, test_salt_hash, decisions) in VECTORS {
            // The all-zero id is not a valid trace id; its hash is still the collector's.
            let id = TraceId::from_hex(hex).unwrap();
            assert_eq!(decisions.len(), CASES.len());
            for ((percentage, salt, threshold, _, _), decision) in
                CASES.iter().zip(decisions.chars())
            {
                let policy = policy(*percentage, salt);
                let hash = if *salt == "test-salt" {
                    test_salt_hash
                } else {
                    default_salt_hash
                };
                let sampled = decision == '1';
                // The table agrees with itself: the collector samples when hash <= threshold.
                assert_eq!(
                    sampled,
                    hash <= *threshold,
                    "{hex} at {percentage} % {salt:?}"
                );
                assert_eq!(policy.hash(id), hash, "{hex} with salt {salt:?}");
                assert_eq!(
                    policy.keeps(id),
                    sampled,
                    "{hex} at {percentage} % {salt:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 240);
    }

    #[test]
    fn effective_shares_are_the_collectors_and_the_sdk_keeps_the_same_share_of_other_ids() {
        // The collector's shares over its test's ids, recomputed as its test computes them
        // and held to its test's bound: within 0.2 of the percentage, clamped to 0..=100.
        for (percentage, salt, _, sampled, effective) in CASES {
            let share = sampled as f32 / 100_000_f32 * 100.0;
            assert_eq!(
                share.to_bits(),
                effective.to_bits(),
                "{percentage} % {salt:?}"
            );
            let expected = percentage.clamp(0.0, 100.0);
            assert!((f64::from(effective) - expected).abs() <= 0.2);
        }
        // The SDK's share over 100,000 ids of its own (these tests do not carry Go's `math/rand`
        // stream) is held to the same bound.
        let mut ids = Ids(1);
        let ids: Vec<TraceId> = (0..100_000).map(|_| ids.trace_id()).collect();
        for (percentage, salt, _, _, _) in CASES {
            let policy = policy(percentage, salt);
            let kept = ids.iter().filter(|id| policy.keeps(**id)).count();
            let share = 100.0 * kept as f64 / ids.len() as f64;
            let expected = percentage.clamp(0.0, 100.0);
            assert!(
                (share - expected).abs() <= 0.2,
                "{percentage} % salt {salt:?}: {share}"
            );
        }
    }
}
