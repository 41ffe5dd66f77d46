//! The house JSON line, field by field, and its trace ids equal the exported span's ids.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{Profile, Telemetry};

fn pipeline(exporters: &TestExporters, profile: Profile) -> Telemetry {
    Telemetry::builder("scanner")
        .service_version("1.4.0")
        .profile(profile)
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

#[test]
fn a_line_carries_every_house_field_in_order_with_typed_event_fields() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, Profile::default_profile());
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        let outer = tracing::info_span!(
            "http.request",
            tenant.id = "acme",
            correlation_id = "req-42"
        );
        let _o = outer.enter();
        let inner = tracing::info_span!("scan.image");
        let _i = inner.enter();
        tracing::warn!(
            target: "scanner::queue",
            findings = 17u64,
            delta = -3i64,
            ratio = 0.5f64,
            cached = true,
            image = "registry.example/app:1.2",
            quoted = "a \"b\"\nc\u{1}",
            level = "not the level",
            "queue is deep"
        );
    });
    telemetry.shutdown();
    let line = exporters.json_logs().lines().remove(0);
    let order = [
        "\"timestamp\":",
        "\"level\":",
        "\"message\":",
        "\"service\":",
        "\"version\":",
        "\"traceId\":",
        "\"spanId\":",
        "\"tenant\":",
        "\"correlationId\":",
        "\"target\":",
        "\"findings\":",
        "\"retention\":",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| {
            line.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {line}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys out of order: {line}"
    );
    assert!(line.ends_with('}') && !line.contains('\n'));

    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let ts = v["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(
        ts.ends_with('Z') && &ts[10..11] == "T" && &ts[19..20] == ".",
        "{ts}"
    );
    assert!(ts[20..23].chars().all(|c| c.is_ascii_digit()));
    assert_eq!(v["level"], "warn");
    assert_eq!(v["message"], "queue is deep");
    assert_eq!(v["service"], "scanner");
    assert_eq!(v["version"], "1.4.0");
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["correlationId"], "req-42");
    assert_eq!(v["target"], "scanner::queue");
    assert_eq!(v["findings"], 17);
    assert_eq!(v["delta"], -3);
    assert_eq!(v["ratio"], 0.5);
    assert_eq!(v["cached"], true);
    assert_eq!(v["image"], "registry.example/app:1.2");
    assert_eq!(v["quoted"], "a \"b\"\nc\u{1}");
    assert_eq!(v["field.level"], "not the level");
    assert_eq!(v["retention"], "90d");
    assert_eq!(v["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(v["spanId"].as_str().unwrap().len(), 16);
}

#[test]
fn trace_and_span_ids_are_the_exported_spans_ids() {
    let exporters = TestExporters::new();
    let telemetry = pipeline(&exporters, Profile::default_profile());
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("outer").in_scope(|| {
            tracing::info!("in outer");
            tracing::info_span!("inner").in_scope(|| tracing::info!("in inner"));
            tracing::info!("outer again");
        });
        tracing::info!("outside any span");
    });
    telemetry.shutdown();
    let spans = exporters.finished_spans();
    let id_of = |name: &str| {
        let s = spans.iter().find(|s| s.name == name).unwrap();
        (
            s.span_context.trace_id().to_string(),
            s.span_context.span_id().to_string(),
        )
    };
    let logs = exporters.json_logs().json();
    let ids = |i: usize| {
        (
            logs[i]["traceId"].as_str().unwrap().to_owned(),
            logs[i]["spanId"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(ids(0), id_of("outer"));
    assert_eq!(ids(1), id_of("inner"));
    assert_eq!(ids(2), id_of("outer"));
    assert!(logs[3].get("traceId").is_none() && logs[3].get("spanId").is_none());
    // The same ids reach the OTLP log records through the bridge.
    let records = exporters.log_records();
    let inner = records.iter().find(|r| {
        r.body()
            .is_some_and(|b| format!("{b:?}").contains("in inner"))
    });
    let trace = inner
        .and_then(|r| r.trace_context())
        .map(|t| t.trace_id.to_string());
    assert_eq!(trace, Some(id_of("inner").0));
}

#[test]
fn retention_follows_the_level_and_the_profile_floor() {
    for (profile, expected) in [
        (Profile::default_profile(), ["180d", "90d", "30d", "7d"]),
        (Profile::forensic(), ["180d", "180d", "180d", "180d"]),
    ] {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters, profile);
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            tracing::error!("e");
            tracing::warn!("w");
            tracing::info!("i");
            tracing::debug!("d");
        });
        telemetry.shutdown();
        let got: Vec<String> = exporters
            .json_logs()
            .json()
            .iter()
            .map(|l| l["retention"].as_str().unwrap().to_owned())
            .collect();
        // The default profile logs at info: its debug line is filtered out.
        assert_eq!(got, expected[..got.len()]);
        assert_eq!(got.len(), if expected[3] == "7d" { 3 } else { 4 });
    }
}

/// The OTLP log records the bridge makes carry the same house context as the JSON line.
mod otlp_log_records {
    use opentelemetry::logs::AnyValue;
    use opentelemetry_sdk::logs::SdkLogRecord;
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_core::{Profile, RequestContext, TRUNCATED};

    use super::pipeline;

    fn text(record: &SdkLogRecord, key: &str) -> Option<String> {
        record
            .attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| match v {
                AnyValue::String(s) => s.as_str().to_owned(),
                other => format!("{other:?}"),
            })
    }

    fn count(record: &SdkLogRecord, key: &str) -> usize {
        record
            .attributes_iter()
            .filter(|(k, _)| k.as_str() == key)
            .count()
    }

    /// The log records of `emit`, run inside a pipeline of `profile`.
    fn records(profile: Profile, emit: impl FnOnce()) -> (Vec<SdkLogRecord>, TestExporters) {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters, profile);
        tracing::dispatcher::with_default(telemetry.dispatch(), emit);
        telemetry.shutdown();
        (exporters.log_records(), exporters)
    }

    #[test]
    fn an_event_inside_a_span_with_a_tenant_carries_tenant_and_correlation_id() {
        let (records, exporters) = records(Profile::default_profile(), || {
            let outer =
                tracing::info_span!("http.request", tenant.id = "acme", request.id = "req-7");
            let _o = outer.enter();
            tracing::info_span!("scan.image").in_scope(|| tracing::info!("scanned"));
        });
        assert_eq!(records.len(), 1);
        assert_eq!(text(&records[0], "tenant.id").as_deref(), Some("acme"));
        assert_eq!(text(&records[0], "request.id").as_deref(), Some("req-7"));
        // The JSON line of the same event agrees.
        let line = &exporters.json_logs().json()[0];
        assert_eq!(line["tenant"], "acme");
        assert_eq!(line["correlationId"], "req-7");
    }

    #[test]
    fn an_event_inside_an_attached_request_context_carries_tenant_and_correlation_id() {
        let (records, _) = records(Profile::default_profile(), || {
            let _cx = RequestContext::new()
                .with_tenant("globex")
                .with_correlation_id("job-42")
                .attach();
            tracing::warn!("queue is deep");
        });
        assert_eq!(text(&records[0], "tenant.id").as_deref(), Some("globex"));
        assert_eq!(text(&records[0], "request.id").as_deref(), Some("job-42"));
    }

    #[test]
    fn a_span_field_wins_over_the_request_context_as_on_the_json_line() {
        let (records, exporters) = records(Profile::default_profile(), || {
            let _cx = RequestContext::new()
                .with_tenant("from-context")
                .with_correlation_id("c-1")
                .attach();
            tracing::info_span!("job", tenant = "from-span").in_scope(|| tracing::info!("x"));
        });
        assert_eq!(text(&records[0], "tenant.id").as_deref(), Some("from-span"));
        assert_eq!(text(&records[0], "request.id").as_deref(), Some("c-1"));
        assert_eq!(exporters.json_logs().json()[0]["tenant"], "from-span");
    }

    #[test]
    fn a_record_without_context_has_no_tenant_and_no_correlation_id() {
        let (records, _) = records(Profile::default_profile(), || tracing::info!("alone"));
        assert_eq!(text(&records[0], "tenant.id"), None);
        assert_eq!(text(&records[0], "request.id"), None);
        assert_eq!(
            text(&records[0], "stellaops.retention").as_deref(),
            Some("30d")
        );
    }

    #[test]
    fn a_secret_shaped_tenant_is_redacted() {
        let (records, exporters) = records(Profile::default_profile(), || {
            tracing::info_span!(
                "req",
                tenant.id = "password=hunter2",
                request.id = "Bearer abcdefghijklmnop1234"
            )
            .in_scope(|| tracing::info!("x"));
        });
        let tenant = text(&records[0], "tenant.id").unwrap();
        let correlation = text(&records[0], "request.id").unwrap();
        assert!(!tenant.contains("hunter2"), "{tenant}");
        assert!(
            !correlation.contains("abcdefghijklmnop1234"),
            "{correlation}"
        );
        let everything = format!("{:?}", exporters.log_records());
        assert!(!everything.contains("hunter2"));
    }

    #[test]
    fn an_over_long_tenant_is_cut_to_the_log_value_limit() {
        let long = "t".repeat(20_000);
        let (records, _) = records(Profile::default_profile(), || {
            tracing::info_span!("req", tenant.id = long.as_str()).in_scope(|| tracing::info!("x"));
        });
        let tenant = text(&records[0], "tenant.id").unwrap();
        assert!(tenant.len() <= 8192, "{}", tenant.len());
        assert!(tenant.ends_with(TRUNCATED));
    }

    #[test]
    fn retention_follows_the_level_and_the_profile_floor() {
        for (profile, expected) in [
            (Profile::default_profile(), ["180d", "90d", "30d"]),
            (Profile::forensic(), ["180d", "180d", "180d"]),
        ] {
            let (records, _) = records(profile, || {
                tracing::error!("e");
                tracing::warn!("w");
                tracing::info!("i");
            });
            let got: Vec<String> = records
                .iter()
                .map(|r| text(r, "stellaops.retention").unwrap())
                .collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn event_fields_named_like_house_attributes_never_shadow_them() {
        let (records, _) = records(Profile::default_profile(), || {
            tracing::info_span!("req", tenant.id = "acme").in_scope(|| {
                tracing::info!(
                    tenant.id = "evil",
                    request.id = "forged",
                    stellaops.retention = "0d",
                    "spoof"
                )
            });
        });
        let r = &records[0];
        assert_eq!(text(r, "tenant.id").as_deref(), Some("acme"));
        assert_eq!(text(r, "field.tenant.id").as_deref(), Some("evil"));
        assert_eq!(text(r, "request.id"), None);
        assert_eq!(text(r, "field.request.id").as_deref(), Some("forged"));
        assert_eq!(text(r, "stellaops.retention").as_deref(), Some("30d"));
        assert_eq!(text(r, "field.stellaops.retention").as_deref(), Some("0d"));
        for key in ["tenant.id", "request.id", "stellaops.retention"] {
            assert!(count(r, key) <= 1, "{key} twice");
        }
    }
}
