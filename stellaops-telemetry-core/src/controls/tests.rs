//! The controls on a hand-built registry (the filter on a capturing layer) and the sampler
//! called directly. Interest rebuilds are process-wide and tests run in parallel: nothing here
//! asserts on the global max level or on a callsite's cached interest, only on what this
//! test's filter answers and what this test's layer saw.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry::{Context as OtelContext, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{LevelFilter, Metadata};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt as _};

use super::*;
use crate::RequestContext;

// ---------------------------------------------------------------------------------------------
// Support: a layer keeping what it saw, a pipeline around it, static metadata.

#[derive(Debug, Clone)]
struct Seen {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

impl Capture {
    /// The messages of the service events seen (audit lines left out).
    fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter(|s| s.target != AUDIT_TARGET)
            .map(|s| s.message().to_owned())
            .collect()
    }

    fn audits(&self) -> Vec<Seen> {
        self.0
            .lock()
            .iter()
            .filter(|s| s.target == AUDIT_TARGET)
            .cloned()
            .collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().push(Seen {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
}

fn pipeline(
    controls: &Controls,
    statics: Vec<(String, LevelFilter)>,
    env: Option<&str>,
) -> (Dispatch, Capture) {
    let capture = Capture::default();
    let filter = ControlledFilter::new(controls.clone(), statics, env).unwrap();
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(capture.clone().with_filter(filter)));
    controls.set_dispatch(&dispatch);
    (dispatch, capture)
}

struct TestCallsite;
static CALLSITE: TestCallsite = TestCallsite;
static DUMMY: Metadata<'static> = Metadata::new(
    "dummy",
    "dummy",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&CALLSITE)),
    Kind::EVENT,
);

impl Callsite for TestCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &DUMMY
    }
}

/// Event metadata of `target` at `level` (leaked: callsite metadata is `'static`).
fn meta(target: &'static str, level: Level) -> &'static Metadata<'static> {
    Box::leak(Box::new(Metadata::new(
        "event",
        target,
        level,
        None,
        None,
        None,
        FieldSet::new(&[], Identifier(&CALLSITE)),
        Kind::EVENT,
    )))
}

fn interest(filter: &ControlledFilter, meta: &'static Metadata<'static>) -> &'static str {
    let interest = Filter::<Registry>::callsite_enabled(filter, meta);
    if interest.is_always() {
        "always"
    } else if interest.is_never() {
        "never"
    } else {
        "sometimes"
    }
}

fn debug_for(tenant_level: LogLevel) -> TenantOverride {
    TenantOverride {
        log_level: Some(tenant_level),
        ..TenantOverride::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The level.

#[test]
fn a_level_change_takes_effect_on_the_next_event() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let (dispatch, capture) = pipeline(&controls, vec![], None);
    let emit = |n: u32| {
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(target: "svc", "debug {n}");
            tracing::info!(target: "svc", "info {n}");
        });
    };
    emit(1);
    assert_eq!(capture.messages(), ["info 1"]);

    controls.set_log_level("ops", LogLevel::Debug).unwrap();
    assert_eq!(controls.log_level(), LogLevel::Debug);
    emit(2);
    assert_eq!(capture.messages(), ["info 1", "debug 2", "info 2"]);

    controls.set_log_level_str("ops", "WARN").unwrap();
    emit(3);
    assert_eq!(capture.messages(), ["info 1", "debug 2", "info 2"]);
}

#[test]
fn a_disabled_level_callsite_is_never_interesting_and_its_events_stay_skipped() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let filter = ControlledFilter::new(controls.clone(), vec![], None).unwrap();
    let debug = meta("svc", Level::DEBUG);
    assert_eq!(interest(&filter, debug), "never");
    assert_eq!(interest(&filter, meta("svc", Level::INFO)), "always");
    assert_eq!(
        Filter::<Registry>::max_level_hint(&filter),
        Some(LevelFilter::INFO)
    );

    let (dispatch, capture) = pipeline(&controls, vec![], None);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            tracing::debug!(target: "svc", "skipped {i}");
        }
    });
    assert!(capture.messages().is_empty());

    // Only a tenant override's level: the callsite is asked per event.
    controls
        .set_tenant("ops", "acme", debug_for(LogLevel::Debug))
        .unwrap();
    assert_eq!(interest(&filter, debug), "sometimes");
    assert_eq!(interest(&filter, meta("svc", Level::TRACE)), "never");
    assert_eq!(
        Filter::<Registry>::max_level_hint(&filter),
        Some(LevelFilter::DEBUG)
    );
    controls.set_log_level("ops", LogLevel::Trace).unwrap();
    assert_eq!(interest(&filter, debug), "always");
}

// ---------------------------------------------------------------------------------------------
// Tenant log levels.

#[test]
fn a_tenant_log_level_enables_debug_events_only_for_that_tenant() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let (dispatch, capture) = pipeline(&controls, vec![], None);
    controls
        .set_tenant("ops", "acme", debug_for(LogLevel::Debug))
        .unwrap();
    controls
        .set_tenant("ops", "beta-*", debug_for(LogLevel::Trace))
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!(target: "svc", "no tenant");
        {
            let span = tracing::info_span!(target: "svc", "req", tenant.id = "acme");
            let _entered = span.enter();
            tracing::debug!(target: "svc", "acme span");
            tracing::trace!(target: "svc", "acme trace");
            // The nearest span's tenant decides.
            let inner = tracing::info_span!(target: "svc", "inner", tenant = "other");
            inner.in_scope(|| tracing::debug!(target: "svc", "other inside acme"));
        }
        {
            let span = tracing::info_span!(target: "svc", "req", tenant.id = "other");
            let _entered = span.enter();
            tracing::debug!(target: "svc", "other span");
        }
        {
            let _cx = RequestContext::new().with_tenant("acme").attach();
            tracing::debug!(target: "svc", "acme context");
        }
        {
            let _cx = RequestContext::new().with_tenant("beta-7").attach();
            tracing::trace!(target: "svc", "beta prefix");
        }
        // A tenant recorded after the span started.
        let span = tracing::info_span!(target: "svc", "late", tenant.id = tracing::field::Empty);
        span.record("tenant.id", "acme");
        span.in_scope(|| tracing::debug!(target: "svc", "acme recorded later"));
    });
    assert_eq!(
        capture.messages(),
        [
            "acme span",
            "acme context",
            "beta prefix",
            "acme recorded later"
        ]
    );

    controls.clear_tenant("ops", "acme").unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let _cx = RequestContext::new().with_tenant("acme").attach();
        tracing::debug!(target: "svc", "acme after clear");
    });
    assert_eq!(capture.messages().len(), 4);
}

#[test]
fn an_exact_tenant_wins_over_prefixes_and_the_longest_prefix_over_shorter_ones() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    controls
        .set_tenant("ops", "acme-*", debug_for(LogLevel::Debug))
        .unwrap();
    controls
        .set_tenant("ops", "acme-eu-*", debug_for(LogLevel::Trace))
        .unwrap();
    controls
        .set_tenant("ops", "acme-eu-1", debug_for(LogLevel::Warn))
        .unwrap();
    let level = |t: &str| controls.override_for(t).and_then(|o| o.log_level);
    assert_eq!(level("acme-us"), Some(LogLevel::Debug));
    assert_eq!(level("acme-eu-2"), Some(LogLevel::Trace));
    assert_eq!(level("acme-eu-1"), Some(LogLevel::Warn));
    assert_eq!(level("acme"), None);
    assert_eq!(level(&"acme-".repeat(100_000)), Some(LogLevel::Debug));
    assert_eq!(
        controls
            .tenant_overrides()
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        ["acme-*", "acme-eu-*", "acme-eu-1"]
    );
    assert!(controls.has_tenant_overrides());
    assert!(!controls.has_sampling_overrides());
}

#[test]
fn a_tenant_sampling_override_does_not_change_logs() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let (dispatch, capture) = pipeline(&controls, vec![], None);
    let always = TenantOverride {
        sampling: TenantSampling::Always,
        log_level: None,
    };
    controls.set_tenant("ops", "acme", always).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let _cx = RequestContext::new().with_tenant("acme").attach();
        tracing::debug!(target: "svc", "acme debug");
        tracing::info!(target: "svc", "acme info");
    });
    assert_eq!(capture.messages(), ["acme info"]);
    assert_eq!(controls.max_override_level(), None);
}

// ---------------------------------------------------------------------------------------------
// Statics and the audit target.

#[test]
fn static_rules_win_and_the_longest_matching_rule_decides() {
    let controls = Controls::new(
        LogLevel::Trace,
        crate::incidents::Incidents::new(Default::default()),
    );
    let statics = vec![
        ("opentelemetry".to_owned(), LevelFilter::WARN),
        ("noisy".to_owned(), LevelFilter::DEBUG),
        ("noisy::inner".to_owned(), LevelFilter::OFF),
    ];
    let (dispatch, capture) = pipeline(&controls, statics.clone(), None);
    controls
        .set_tenant("ops", "acme", debug_for(LogLevel::Trace))
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let _cx = RequestContext::new().with_tenant("acme").attach();
        tracing::info!(target: "opentelemetry", "otel info");
        tracing::warn!(target: "opentelemetry::export", "otel warn");
        // A module-path prefix: `opentelemetry_sdk` is not below `opentelemetry`.
        tracing::info!(target: "opentelemetry_sdk", "sdk info");
        tracing::debug!(target: "noisy::outer", "noisy debug");
        tracing::trace!(target: "noisy", "noisy trace");
        tracing::error!(target: "noisy::inner::deep", "inner error");
    });
    assert_eq!(capture.messages(), ["otel warn", "sdk info", "noisy debug"]);

    let filter = ControlledFilter::new(controls.clone(), statics, None).unwrap();
    assert_eq!(
        interest(&filter, meta("noisy::inner", Level::ERROR)),
        "never"
    );
    assert_eq!(
        interest(&filter, meta("opentelemetry", Level::WARN)),
        "always"
    );
}

#[test]
fn the_audit_target_passes_at_info_whatever_the_statics_say() {
    let controls = Controls::new(
        LogLevel::Error,
        crate::incidents::Incidents::new(Default::default()),
    );
    let statics = vec![("stellaops_telemetry".to_owned(), LevelFilter::OFF)];
    let filter = ControlledFilter::new(controls.clone(), statics.clone(), None).unwrap();
    assert_eq!(interest(&filter, meta(AUDIT_TARGET, Level::INFO)), "always");
    assert_eq!(interest(&filter, meta(AUDIT_TARGET, Level::DEBUG)), "never");
    assert_eq!(
        interest(&filter, meta("stellaops_telemetry::other", Level::ERROR)),
        "never"
    );
    assert_eq!(
        Filter::<Registry>::max_level_hint(&filter),
        Some(LevelFilter::INFO)
    );

    let (_dispatch, capture) = pipeline(&controls, statics, None);
    controls.set_log_level("ops", LogLevel::Warn).unwrap();
    assert_eq!(capture.audits().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Audit lines and counts.

#[test]
fn every_applied_change_writes_one_audit_line_with_who_before_and_after() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    // Before the dispatch is known: applied and counted, not audited.
    controls.set_log_level("early", LogLevel::Warn).unwrap();
    assert_eq!(controls.changes(), 1);

    let (_dispatch, capture) = pipeline(&controls, vec![], None);
    controls
        .set_log_level("ops@example", LogLevel::Debug)
        .unwrap();
    let both = TenantOverride {
        sampling: TenantSampling::Never,
        log_level: Some(LogLevel::Trace),
    };
    let who = "x".repeat(10_000);
    controls.set_tenant(&who, "acme-*", both).unwrap();
    // The same again is no change: nothing counted, nothing written.
    controls.set_tenant("ops", "acme-*", both).unwrap();
    controls.clear_tenant("ops", "acme-*").unwrap();

    let audits = capture.audits();
    let row = |s: &Seen| {
        ["who", "control", "tenant_pattern", "before", "after"]
            .map(|k| s.fields.get(k).cloned().unwrap_or_default())
    };
    assert_eq!(audits.len(), 5, "{audits:?}");
    assert!(
        audits
            .iter()
            .all(|a| a.level == Level::INFO && a.message() == "telemetry control changed")
    );
    assert_eq!(
        row(&audits[0]),
        ["ops@example", "log_level", "", "warn", "debug"]
    );
    let cut = "x".repeat(128);
    assert_eq!(
        row(&audits[1]),
        [&*cut, "tenant_sampling", "acme-*", "profile", "never"]
    );
    assert_eq!(
        row(&audits[2]),
        [&*cut, "tenant_log_level", "acme-*", "none", "trace"]
    );
    assert_eq!(
        row(&audits[3]),
        ["ops", "tenant_sampling", "acme-*", "never", "profile"]
    );
    assert_eq!(
        row(&audits[4]),
        ["ops", "tenant_log_level", "acme-*", "trace", "none"]
    );

    assert_eq!(controls.changes(), 6);
    assert_eq!(
        controls.change_counts(),
        [
            ("log_level", 2),
            ("tenant_sampling", 2),
            ("tenant_log_level", 2)
        ]
    );
    assert!(!controls.has_tenant_overrides());
}

#[cfg(feature = "testing")]
#[test]
fn the_change_counter_is_a_self_metric_by_control() {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    register(&provider, &controls);
    controls.set_log_level("ops", LogLevel::Debug).unwrap();
    controls
        .set_tenant("ops", "acme", debug_for(LogLevel::Trace))
        .unwrap();
    provider.force_flush().unwrap();

    let mut counts = BTreeMap::new();
    for rm in exporter.get_finished_metrics().unwrap() {
        for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
            if metric.name() != "stellaops_telemetry_control_changes_total" {
                continue;
            }
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                for point in sum.data_points() {
                    let control = point
                        .attributes()
                        .find(|kv| kv.key.as_str() == "control")
                        .map(|kv| kv.value.to_string())
                        .unwrap();
                    counts.insert(control, point.value());
                }
            }
        }
    }
    assert_eq!(counts.get("log_level"), Some(&1));
    assert_eq!(counts.get("tenant_log_level"), Some(&1));
    assert_eq!(counts.get("tenant_sampling"), Some(&0));
    assert!(crate::metrics::catalogue::find("stellaops_telemetry_control_changes_total").is_some());
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[test]
fn an_invalid_level_is_refused_naming_it() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    for bad in ["verbose", "", "debugging", "in\nfo"] {
        let err = controls.set_log_level_str("ops", bad).unwrap_err();
        assert!(matches!(err, ControlError::InvalidLevel { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("invalid log level `"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    assert_eq!(controls.changes(), 0);
    assert_eq!(controls.log_level(), LogLevel::Info);
}

#[test]
fn invalid_tenant_patterns_are_refused_naming_them() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let o = debug_for(LogLevel::Debug);
    for (bad, reason) in [
        ("", "it is empty"),
        ("*", "`*` needs a tenant id prefix before it"),
        ("acme corp", "a tenant id is made of"),
        ("acme**", "`*` may only end the pattern"),
        ("ac*me", "`*` may only end the pattern"),
        ("*acme", "`*` may only end the pattern"),
        ("acme\r\nx", "a tenant id is made of"),
        ("acmé", "a tenant id is made of"),
    ] {
        for result in [
            controls.set_tenant("ops", bad, o),
            controls.clear_tenant("ops", bad),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, ControlError::InvalidTenantPattern { reason: r, .. } if r.starts_with(reason)),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("invalid tenant pattern `"));
        }
    }
    let long = "a".repeat(129);
    let err = controls.set_tenant("ops", &long, o).unwrap_err();
    assert!(err.to_string().contains("at most 128 bytes"), "{err}");
    // 128 bytes, with or without a `*` after them, is fine.
    controls.set_tenant("ops", &long[..128], o).unwrap();
    controls
        .set_tenant("ops", &format!("{}*", &long[..128]), o)
        .unwrap();
    controls.set_tenant("ops", "a.b_c-d@e:f", o).unwrap();
}

#[test]
fn clearing_an_unknown_pattern_is_a_typed_error() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let err = controls.clear_tenant("ops", "acme-*").unwrap_err();
    assert!(
        matches!(&err, ControlError::UnknownTenantPattern { pattern } if pattern == "acme-*"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no tenant override is set for pattern `acme-*`"
    );
    assert_eq!(controls.changes(), 0);
}

#[test]
fn overrides_beyond_the_capacity_are_refused() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let o = debug_for(LogLevel::Debug);
    // The table is filled in one change: each change copies the table (readers never wait),
    // so filling it one call at a time would take minutes in a debug build. A few calls
    // through the public API first, so both roads meet at the same limit.
    for i in 0..3 {
        controls.set_tenant("ops", &format!("t{i}"), o).unwrap();
    }
    controls
        .change_table("ops", "t0", |table| {
            let mut entries = table.entries().clone();
            entries.extend((3..MAX_TENANT_OVERRIDES).map(|i| (format!("t{i}").into(), o)));
            Ok((o, entries))
        })
        .unwrap();
    assert_eq!(controls.tenant_overrides().len(), MAX_TENANT_OVERRIDES);
    let err = controls.set_tenant("ops", "one-more", o).unwrap_err();
    assert!(
        matches!(err, ControlError::TooManyOverrides { limit } if limit == MAX_TENANT_OVERRIDES)
    );
    // Changing an existing one is still allowed, and clearing one makes room.
    controls
        .set_tenant("ops", "t0", debug_for(LogLevel::Trace))
        .unwrap();
    controls.clear_tenant("ops", "t1").unwrap();
    controls.set_tenant("ops", "one-more", o).unwrap();
    assert_eq!(controls.tenant_overrides().len(), MAX_TENANT_OVERRIDES);
}

#[test]
fn hostile_strings_are_refused_with_a_bounded_message() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let megabyte = "\u{1b}[31m".repeat(1 << 18);
    let o = debug_for(LogLevel::Debug);
    let errors = [
        controls.set_tenant("ops", &megabyte, o).unwrap_err(),
        controls
            .set_tenant("ops", &format!("a*{megabyte}"), o)
            .unwrap_err(),
        controls.clear_tenant("ops", &megabyte).unwrap_err(),
        controls.set_log_level_str("ops", &megabyte).unwrap_err(),
        ControlledFilter::new(controls.clone(), vec![], Some(&format!("svc={megabyte}")))
            .err()
            .unwrap(),
    ];
    for err in errors {
        let message = err.to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
        assert!(!message.contains('\u{1b}'), "{message}");
    }
    // A short pattern is shown whole.
    let err = controls.set_tenant("ops", "bad pattern", o).unwrap_err();
    assert!(err.to_string().contains("`bad pattern`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// RUST_LOG.

#[test]
fn rust_log_directives_decide_until_the_first_run_time_level_change() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let env = Some("svc=debug,svc::quiet=error,[window]=trace");
    let (dispatch, capture) = pipeline(&controls, vec![], env);
    let emit = |n: u32| {
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(target: "svc::api", "svc debug {n}");
            tracing::warn!(target: "svc::quiet", "quiet warn {n}");
            tracing::info!(target: "other", "other info {n}");
            tracing::info_span!(target: "other", "window")
                .in_scope(|| tracing::trace!(target: "other", "window trace {n}"));
        });
    };
    emit(1);
    assert_eq!(capture.messages(), ["svc debug 1", "window trace 1"]);

    // Other tests of this binary rebuild every callsite's interest meanwhile, each on its own
    // thread: a rebuild that read this filter just before the change can write its stale
    // interest after the change's own rebuild, and on a loaded machine that thread may sleep
    // between the two for a whole time slice. So when such a race swallowed the change, it is
    // made again (it rebuilds again) after a pause, a few times at most.
    for attempt in 2..=8 {
        if attempt > 2 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        controls.set_log_level("ops", LogLevel::Info).unwrap();
        let before = capture.messages().len();
        emit(attempt);
        let seen = capture.messages().split_off(before);
        let expected = [
            format!("quiet warn {attempt}"),
            format!("other info {attempt}"),
        ];
        if seen == expected || attempt == 8 {
            assert_eq!(seen, expected, "after {} level changes", attempt - 1);
            break;
        }
    }
}

#[test]
fn a_bad_rust_log_directive_is_refused_naming_it() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let err = ControlledFilter::new(controls.clone(), vec![], Some("svc=debug,svc=loud"))
        .err()
        .unwrap();
    match &err {
        ControlError::InvalidFilter {
            variable,
            directive,
            ..
        } => {
            assert_eq!(*variable, "RUST_LOG");
            assert_eq!(directive, "svc=loud");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("invalid RUST_LOG directive `svc=loud`: ")
    );
    // Empty counts as unset: the controls' level decides.
    let filter = ControlledFilter::new(controls, vec![], Some(" ")).unwrap();
    assert_eq!(interest(&filter, meta("svc", Level::INFO)), "always");
}

// ---------------------------------------------------------------------------------------------
// The sampler.

fn sampled(sampler: &PipelineSampler, cx: Option<&OtelContext>, attrs: &[KeyValue]) -> usize {
    (0u128..1000)
        .filter(|i| {
            let trace_id =
                TraceId::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1);
            let result = sampler.should_sample(cx, trace_id, "op", &SpanKind::Server, attrs, &[]);
            result.decision == SamplingDecision::RecordAndSample
        })
        .count()
}

#[test]
fn a_tenant_with_always_keeps_every_span_under_a_zero_ratio_head() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let sampler = PipelineSampler::new(Sampler::TraceIdRatioBased(0.0), controls.clone());
    let acme = [KeyValue::new("tenant.id", "acme")];
    assert_eq!(sampled(&sampler, None, &acme), 0);

    let always = TenantOverride {
        sampling: TenantSampling::Always,
        log_level: None,
    };
    controls.set_tenant("ops", "acme", always).unwrap();
    assert_eq!(sampled(&sampler, None, &acme), 1000);
    assert_eq!(
        sampled(&sampler, None, &[KeyValue::new("tenant", "acme")]),
        1000
    );
    let cx = OtelContext::new().with_value(RequestContext::new().with_tenant("acme"));
    assert_eq!(sampled(&sampler, Some(&cx), &[]), 1000);
    // Others keep what the head keeps.
    assert_eq!(
        sampled(&sampler, None, &[KeyValue::new("tenant.id", "other")]),
        0
    );
    assert_eq!(sampled(&sampler, None, &[]), 0);
}

#[test]
fn a_tenant_with_never_drops_every_span_under_always_on() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let sampler = PipelineSampler::new(Sampler::AlwaysOn, controls.clone());
    let never = TenantOverride {
        sampling: TenantSampling::Never,
        log_level: None,
    };
    controls.set_tenant("ops", "acme-*", never).unwrap();
    assert_eq!(
        sampled(&sampler, None, &[KeyValue::new("tenant.id", "acme-eu")]),
        0
    );
    let cx = OtelContext::new().with_value(RequestContext::new().with_tenant("acme-us"));
    assert_eq!(sampled(&sampler, Some(&cx), &[]), 0);
    // The span's own attribute wins over the context's tenant.
    assert_eq!(
        sampled(&sampler, Some(&cx), &[KeyValue::new("tenant.id", "beta")]),
        1000
    );
    assert_eq!(
        sampled(&sampler, None, &[KeyValue::new("tenant.id", "beta")]),
        1000
    );
    assert_eq!(sampled(&sampler, None, &[]), 1000);
    // A log-level-only override leaves sampling to the head.
    controls
        .set_tenant(
            "ops",
            "acme-*",
            TenantOverride {
                sampling: TenantSampling::Profile,
                log_level: Some(LogLevel::Debug),
            },
        )
        .unwrap();
    assert_eq!(
        sampled(&sampler, None, &[KeyValue::new("tenant.id", "acme-eu")]),
        1000
    );
}

// ---------------------------------------------------------------------------------------------
// Threads.

#[test]
fn a_change_made_on_another_thread_applies_to_the_pipeline() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let (dispatch, capture) = pipeline(&controls, vec![], None);
    let emit = || {
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(target: "svc", "debug");
            tracing::info!(target: "svc", "info");
        });
    };
    emit();
    let admin = controls.clone();
    std::thread::spawn(move || admin.set_log_level("ops", LogLevel::Debug))
        .join()
        .unwrap()
        .unwrap();
    emit();
    assert_eq!(capture.messages(), ["info", "debug", "info"]);
    assert_eq!(capture.audits().len(), 1);
}

#[test]
fn readers_see_whole_tables_while_a_writer_changes_them() {
    let controls = Controls::new(
        LogLevel::Info,
        crate::incidents::Incidents::new(Default::default()),
    );
    let writer = controls.clone();
    let handle = std::thread::spawn(move || {
        for i in 0..500 {
            let level = if i % 2 == 0 {
                LogLevel::Debug
            } else {
                LogLevel::Trace
            };
            writer
                .set_tenant("ops", "acme-*", debug_for(level))
                .unwrap();
            writer
                .set_tenant("ops", "acme-eu", debug_for(level))
                .unwrap();
        }
    });
    while !handle.is_finished() {
        for tenant in ["acme-eu", "acme-us", "beta"] {
            let level = controls.override_for(tenant).and_then(|o| o.log_level);
            assert!(matches!(
                level,
                None | Some(LogLevel::Debug | LogLevel::Trace)
            ));
        }
    }
    handle.join().unwrap();
    assert_eq!(controls.tenant_overrides().len(), 2);
    assert_eq!(controls.changes(), 1000);
}
