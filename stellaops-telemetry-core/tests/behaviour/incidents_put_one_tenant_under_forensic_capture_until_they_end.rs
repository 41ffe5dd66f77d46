//! Incident mode: one tenant's telemetry under the forensic profile at run time (every span
//! kept and naming the incident, debug events, the 180-day retention tag), others untouched;
//! started and stopped through the API, the watched file, the triggers; expiring by itself;
//! audited, counted and told to the hooks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    AUDIT_TARGET, ErrorRateTrigger, INCIDENT_ATTRIBUTE, Incident, IncidentError, IncidentEvent,
    IncidentEventKind, IncidentFile, IncidentHook, IncidentStart, IncidentTrigger, RequestContext,
    Telemetry, parse_incident_ttl,
};

fn pipeline(exporters: &TestExporters) -> Telemetry {
    Telemetry::builder("scanner")
        .exporters(&[])
        .stdout_logs(false)
        .sampler("always_off", None)
        .test_exporters(exporters)
        .build()
        .unwrap()
}

fn audit_lines(exporters: &TestExporters) -> Vec<serde_json::Value> {
    exporters
        .json_logs()
        .json()
        .into_iter()
        .filter(|l| l["target"] == AUDIT_TARGET && l["control"] == "incident")
        .collect()
}

/// Waits (up to 10 s) for `done`; the tests count work, they never assert on timing.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stellaops-incidents-{name}-{}-{:?}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

mod lifecycle {
    use super::*;

    #[test]
    fn start_status_extend_and_stop_with_an_audit_line_each() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let incidents = telemetry.incidents();
        let started = incidents
            .start(
                IncidentStart::new("acme", "CVE-2026-1 triage", "ops@example")
                    .ttl(Duration::from_secs(600)),
            )
            .unwrap();
        assert!(started.id.starts_with("inc-"), "{}", started.id);
        assert_eq!(started.trigger, IncidentTrigger::Manual);
        assert_eq!(
            started.expires.duration_since(started.started).unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(incidents.status(), std::slice::from_ref(&started));

        let extended = incidents
            .start(IncidentStart::new("acme", "still triaging", "ops@example"))
            .unwrap();
        assert_eq!(extended.id, started.id, "an extension keeps the id");
        assert!(
            extended.expires > started.expires,
            "the default hour is later"
        );
        assert_eq!(extended.reason, "still triaging");

        let stopped = incidents.stop("lead@example", "acme").unwrap();
        assert_eq!(stopped.id, started.id);
        assert!(incidents.status().is_empty());
        assert!(matches!(
            incidents.stop("lead@example", "acme"),
            Err(IncidentError::NotActive { .. })
        ));
        telemetry.shutdown();

        let lines = audit_lines(&exporters);
        let outcomes: Vec<&str> = lines
            .iter()
            .map(|l| l["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["started", "extended", "stopped"]);
        assert_eq!(lines[0]["actor"], "ops@example");
        assert_eq!(lines[0]["tenant"], "acme");
        assert_eq!(lines[0]["reason"], "CVE-2026-1 triage");
        assert_eq!(lines[0]["trigger"], "manual");
        assert_eq!(lines[0]["incident_id"], started.id.as_str());
        assert!(lines[0]["expires"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[2]["actor"], "lead@example");
        // The same audit events reach the OTLP log road, with the incident's tenant.
        let records: Vec<String> = exporters
            .log_records()
            .iter()
            .map(|r| format!("{r:?}"))
            .filter(|r| r.contains(started.id.as_str()))
            .collect();
        assert_eq!(records.len(), 3, "{records:#?}");
        assert!(
            records
                .iter()
                .all(|r| r.contains("tenant.id") && r.contains("acme"))
        );
        let counts = incidents.counts();
        assert_eq!(counts[0], (IncidentEventKind::Started, 1));
        assert_eq!(counts[1], (IncidentEventKind::Extended, 1));
        assert_eq!(counts[2], (IncidentEventKind::Stopped, 1));
    }

    #[test]
    fn an_expired_incident_ends_by_itself_with_an_expiry_audit_line() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let incidents = telemetry.incidents();
        incidents
            .start(IncidentStart::new("acme", "short", "ops").ttl(Duration::from_millis(30)))
            .unwrap();
        assert!(eventually(|| incidents.counts()[3].1 == 1), "it expired");
        assert!(incidents.status().is_empty());
        assert!(!incidents.is_active("acme"));
        telemetry.shutdown();
        let lines = audit_lines(&exporters);
        assert_eq!(lines.last().unwrap()["outcome"], "expired");
        assert_eq!(lines.last().unwrap()["actor"], "expiry");
    }

    #[test]
    fn two_tenants_toggled_from_many_threads_end_consistent_and_fully_audited() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let incidents = telemetry.incidents().clone();
                std::thread::spawn(move || {
                    let tenant = if t % 2 == 0 { "acme" } else { "globex" };
                    for _ in 0..200 {
                        let _ = incidents.start(IncidentStart::new(tenant, "drill", "ops"));
                        let _ = incidents.stop("ops", tenant);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let incidents = telemetry.incidents();
        for tenant in ["acme", "globex"] {
            incidents
                .start(IncidentStart::new(tenant, "final", "ops"))
                .unwrap();
        }
        let status = incidents.status();
        assert_eq!(status.len(), 2);
        assert_eq!(
            (status[0].tenant.as_str(), status[1].tenant.as_str()),
            ("acme", "globex")
        );
        telemetry.shutdown();
        let applied: u64 = incidents.counts().iter().map(|(_, n)| n).sum();
        assert_eq!(audit_lines(&exporters).len() as u64, applied);
        let counts = incidents.counts();
        // Every stop matched a start or an extension that was active.
        assert_eq!(counts[0].1, counts[2].1 + 2, "{counts:?}");
    }

    #[test]
    fn bad_input_is_a_typed_error_naming_the_field_and_changes_nothing() {
        let telemetry = pipeline(&TestExporters::new());
        let incidents = telemetry.incidents();
        let refused = [
            IncidentStart::new("", "r", "ops"),
            IncidentStart::new("acme corp", "r", "ops"),
            IncidentStart::new("a".repeat(129), "r", "ops"),
            IncidentStart::new("acme", "line\nbreak", "ops"),
            IncidentStart::new("acme", "x".repeat(513), "ops"),
            IncidentStart::new("acme", "r", "ops").ttl(Duration::ZERO),
            IncidentStart::new("acme", "r", "ops").ttl(Duration::from_secs(25 * 3600)),
        ];
        let messages: Vec<String> = refused
            .into_iter()
            .map(|s| incidents.start(s).unwrap_err().to_string())
            .collect();
        assert!(messages[0].contains("tenant"), "{messages:?}");
        assert!(messages[1].contains("A-Z a-z 0-9"), "{messages:?}");
        assert!(messages[2].contains("128 bytes"), "{messages:?}");
        assert!(messages[3].contains("reason"), "{messages:?}");
        assert!(messages[4].contains("512 bytes"), "{messages:?}");
        assert!(messages[5].contains("ttl"), "{messages:?}");
        assert!(messages[6].contains("24h"), "{messages:?}");
        assert!(incidents.status().is_empty());
        assert!(incidents.counts().iter().all(|(_, n)| *n == 0));
        assert!(parse_incident_ttl("0s").is_err());
        assert!(parse_incident_ttl(&"9".repeat(10_000)).is_err());
        assert_eq!(
            parse_incident_ttl("1h 30m").unwrap(),
            Duration::from_secs(5400)
        );
    }
}

mod forensic_effects {
    use super::*;

    /// Opens 100 root spans for `tenant` (a span field for half, the request context for the
    /// other half), each with a debug and an info event.
    fn work(telemetry: &Telemetry, tenant: &str) {
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for i in 0..100 {
                let run = || {
                    tracing::debug!(tenant.id = tenant, "debug detail");
                    tracing::info!("info line");
                };
                if i % 2 == 0 {
                    tracing::info_span!("work", tenant.id = tenant).in_scope(run);
                } else {
                    let _cx = RequestContext::new().with_tenant(tenant).attach();
                    tracing::info_span!("work").in_scope(run);
                }
            }
        });
    }

    #[test]
    fn the_tenant_under_incident_gets_every_span_debug_events_and_forensic_retention_others_none() {
        let exporters = TestExporters::new();
        let telemetry = pipeline(&exporters);
        let incident = telemetry
            .incidents()
            .start(IncidentStart::new("acme", "triage", "ops"))
            .unwrap();
        work(&telemetry, "acme");
        work(&telemetry, "globex");
        telemetry.flush(Duration::from_secs(5)).unwrap();

        let spans = exporters.finished_spans();
        let names: Vec<String> = spans
            .iter()
            .map(|s| format!("{} {:?}", s.name, s.attributes))
            .collect();
        assert_eq!(
            spans.len(),
            100,
            "every acme span, no globex span (always_off): {names:#?}"
        );
        for span in &spans {
            let id = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == INCIDENT_ATTRIBUTE)
                .map(|kv| kv.value.as_str().into_owned());
            assert_eq!(id.as_deref(), Some(incident.id.as_str()));
        }

        let lines = exporters.json_logs().json();
        let of = |tenant: &str, message: &str| -> Vec<serde_json::Value> {
            lines
                .iter()
                .filter(|l| l["tenant"] == tenant && l["message"] == message)
                .cloned()
                .collect()
        };
        assert_eq!(of("acme", "debug detail").len(), 100);
        assert_eq!(of("globex", "debug detail").len(), 0);
        assert!(
            of("acme", "info line")
                .iter()
                .all(|l| l["retention"] == "180d")
        );
        assert_eq!(of("globex", "info line").len(), 100);
        assert!(
            of("globex", "info line")
                .iter()
                .all(|l| l["retention"] == "30d")
        );

        let records = exporters.log_records();
        let retention_of = |tenant: &str| -> Vec<String> {
            records
                .iter()
                .filter(|r| {
                    r.attributes_iter().any(|(k, v)| {
                        k.as_str() == "tenant.id" && format!("{v:?}").contains(tenant)
                    })
                })
                .filter_map(|r| {
                    r.attributes_iter()
                        .find(|(k, _)| k.as_str() == "stellaops.retention")
                        .map(|(_, v)| format!("{v:?}"))
                })
                .collect()
        };
        let acme = retention_of("acme");
        assert!(!acme.is_empty());
        assert!(acme.iter().all(|r| r.contains("180d")), "{acme:?}");
        let globex = retention_of("globex");
        assert!(globex.iter().all(|r| !r.contains("180d")), "{globex:?}");

        telemetry.incidents().stop("ops", "acme").unwrap();
        exporters.clear();
        work(&telemetry, "acme");
        telemetry.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(exporters.finished_spans().len(), 0, "back to the profile");
    }
}

mod watched_file {
    use super::*;

    fn instance(file: &std::path::Path) -> (TestExporters, Telemetry) {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("scanner")
            .exporters(&[])
            .stdout_logs(false)
            .incident_file(file)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        (exporters, telemetry)
    }

    #[test]
    fn an_incident_started_on_one_instance_reaches_the_others_and_survives_a_restart() {
        let dir = temp_dir("fleet");
        let file = dir.join("incidents.json");
        let (_ea, a) = instance(&file);
        let (eb, b) = instance(&file);
        let started = a
            .incidents()
            .start(IncidentStart::new("acme", "fleet-wide", "ops"))
            .unwrap();
        assert!(
            eventually(|| b.incidents().is_active("acme")),
            "b follows the file"
        );
        assert_eq!(b.incidents().status(), std::slice::from_ref(&started));
        assert_eq!(
            IncidentFile::read(&file).unwrap(),
            std::slice::from_ref(&started)
        );

        // A restarted instance reads the file at start.
        let (_ec, c) = instance(&file);
        assert_eq!(c.incidents().status(), std::slice::from_ref(&started));

        a.incidents().stop("ops", "acme").unwrap();
        assert!(
            eventually(|| !b.incidents().is_active("acme")),
            "b follows the stop"
        );
        assert!(eventually(|| !c.incidents().is_active("acme")));
        b.shutdown();
        let outcomes: Vec<String> = audit_lines(&eb)
            .iter()
            .map(|l| format!("{}/{}", l["outcome"], l["actor"]))
            .collect();
        assert_eq!(
            outcomes,
            [
                "\"started\"/\"incident-file\"",
                "\"stopped\"/\"incident-file\""
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_command_line_writes_the_file_and_expired_or_broken_entries_change_nothing() {
        let dir = temp_dir("cli");
        let file = dir.join("incidents.json");
        let (_e, a) = instance(&file);
        let now = SystemTime::now();
        let listed = |tenant: &str, expires: SystemTime| Incident {
            id: format!("inc-{tenant}"),
            tenant: tenant.into(),
            reason: "written by hand".into(),
            actor: "cli".into(),
            trigger: IncidentTrigger::Manual,
            started: now,
            expires,
        };
        IncidentFile::write(
            &file,
            &[
                listed("acme", now + Duration::from_secs(600)),
                listed("old", now - Duration::from_secs(1)),
            ],
        )
        .unwrap();
        a.incidents().reload_file().unwrap();
        let tenants: Vec<String> = a
            .incidents()
            .status()
            .into_iter()
            .map(|i| i.tenant)
            .collect();
        assert_eq!(tenants, ["acme"]);

        std::fs::write(&file, b"{\"incidents\": [{\"tenant\": 7}]}").unwrap();
        let error = a.incidents().reload_file().unwrap_err();
        assert!(matches!(error, IncidentError::FileFormat { .. }), "{error}");
        assert!(error.to_string().contains("incidents.json"), "{error}");
        assert!(
            a.incidents().is_active("acme"),
            "a broken file changes nothing"
        );
        // A file truncated by an in-place edit is not "no incidents".
        std::fs::write(&file, b"").unwrap();
        assert!(a.incidents().reload_file().is_err());
        assert!(
            a.incidents().is_active("acme"),
            "an empty file changes nothing"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

mod triggers_and_hooks {
    use super::*;

    #[derive(Debug)]
    struct Recorder(parking_lot::Mutex<mpsc::Sender<IncidentEvent>>);

    impl IncidentHook for Recorder {
        fn notify(&self, event: &IncidentEvent) {
            let _ = self.0.lock().send(event.clone());
        }
    }

    #[test]
    fn error_rate_circuit_breaker_and_escalation_start_incidents_and_the_hooks_hear_of_them() {
        let (tx, rx) = mpsc::channel();
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("scanner")
            .exporters(&[])
            .stdout_logs(false)
            .error_rate_trigger(ErrorRateTrigger {
                threshold: 0.5,
                min_requests: 10,
                ..ErrorRateTrigger::default()
            })
            .incident_hook(Arc::new(Recorder(parking_lot::Mutex::new(tx))))
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let incidents = telemetry.incidents();
        for i in 0..20 {
            incidents.record_outcome("calm", i % 10 == 0);
        }
        assert!(!incidents.is_active("calm"), "10 % errors stay under 50 %");
        for i in 0..10 {
            incidents.record_outcome("failing", i % 2 == 0);
        }
        let failing = incidents
            .active_for("failing")
            .expect("50 % of 10 requests");
        assert_eq!(failing.trigger, IncidentTrigger::ErrorRate);
        assert!(failing.reason.contains("error rate"), "{}", failing.reason);

        let opened = incidents
            .circuit_breaker_opened("policy-db", "acme")
            .unwrap();
        assert_eq!(opened.trigger, IncidentTrigger::CircuitBreaker);
        let exposition = telemetry.prometheus().unwrap().render().unwrap();
        assert!(
            exposition.contains(
                "stellaops_circuit_breaker_open{breaker=\"policy-db\",service=\"scanner\"} 1"
            ),
            "{exposition}"
        );
        incidents.circuit_breaker_closed("policy-db").unwrap();
        let exposition = telemetry.prometheus().unwrap().render().unwrap();
        assert!(
            exposition.contains(
                "stellaops_circuit_breaker_open{breaker=\"policy-db\",service=\"scanner\"} 0"
            ),
            "{exposition}"
        );
        assert!(
            incidents.is_active("acme"),
            "closing the breaker ends nothing"
        );

        let escalated = incidents.escalate("pager", "globex", "sev1").unwrap();
        assert_eq!(escalated.trigger, IncidentTrigger::Escalation);
        incidents.stop("ops", "globex").unwrap();

        let heard: Vec<(IncidentEventKind, String)> = (0..4)
            .map(|_| {
                let e = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                (e.kind, e.incident.tenant)
            })
            .collect();
        assert_eq!(
            heard,
            [
                (IncidentEventKind::Started, "failing".to_owned()),
                (IncidentEventKind::Started, "acme".to_owned()),
                (IncidentEventKind::Started, "globex".to_owned()),
                (IncidentEventKind::Stopped, "globex".to_owned()),
            ]
        );
        assert_eq!(incidents.dropped_notifications(), 0);

        // A hook added to the built pipeline hears of the changes from then on.
        let (late_tx, late_rx) = mpsc::channel();
        incidents.add_hook(Arc::new(Recorder(parking_lot::Mutex::new(late_tx))));
        incidents.escalate("pager", "initech", "sev2").unwrap();
        let late = late_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (late.kind, late.incident.tenant.as_str()),
            (IncidentEventKind::Started, "initech")
        );
        assert!(matches!(
            incidents.circuit_breaker_opened("", "acme"),
            Err(IncidentError::InvalidField {
                field: "breaker",
                ..
            })
        ));
    }

    #[derive(Debug)]
    struct Slow;

    impl IncidentHook for Slow {
        fn notify(&self, _event: &IncidentEvent) {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    #[test]
    fn a_hook_that_never_returns_never_blocks_the_caller_and_what_it_misses_is_counted() {
        let telemetry = Telemetry::builder("scanner")
            .exporters(&[])
            .stdout_logs(false)
            .incident_hook(Arc::new(Slow))
            .build()
            .unwrap();
        let incidents = telemetry.incidents();
        for i in 0..1100 {
            let tenant = format!("t{i}");
            incidents
                .start(IncidentStart::new(&*tenant, "flood", "ops"))
                .unwrap();
        }
        assert_eq!(incidents.status().len(), 1100);
        // One notification is being delivered, 1,024 wait; the rest were dropped.
        assert!(
            incidents.dropped_notifications() >= 1100 - 1025,
            "{}",
            incidents.dropped_notifications()
        );
    }
}
