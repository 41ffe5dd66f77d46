//! `GET /health` answers its fixed shape (`status`, `version`, `uptime`, `checks` with each
//! check's `status` and `latency`), check errors pass the pipeline's redactor, and
//! `checks.telemetry` mirrors `Telemetry::stats()`: `degraded` while the pipeline loses
//! records or export falls behind (a stalled exporter's backlog grows old or fills its
//! bytes), `healthy` again once a report passes without new losses and the backlog drains.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{ExporterKind, OtlpProtocol, SignalSnapshot, Telemetry};
use stellaops_telemetry_tower::services::Health;
use tower::ServiceExt;

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn quiet(name: &str) -> Telemetry {
    Telemetry::builder(name)
        .service_version("4.2.0")
        .exporters(&[])
        .stdout_logs(false)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn the_report_has_exactly_the_seed_keys_and_types() {
    let telemetry = quiet("shape");
    let health = Health::for_telemetry(&telemetry)
        .check("database", || async { Ok::<(), String>(()) })
        .check("redis", || async { Ok::<(), String>(()) })
        .build();
    let app = Router::new().nest_service("/health", health);
    let (status, body) = get(&app, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&body),
        BTreeSet::from(["status", "version", "uptime", "checks"])
    );
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], "4.2.0");
    assert!(body["uptime"].is_u64());
    assert_eq!(
        keys(&body["checks"]),
        BTreeSet::from(["database", "redis", "telemetry"])
    );
    for name in ["database", "redis"] {
        let check = &body["checks"][name];
        assert_eq!(keys(check), BTreeSet::from(["status", "latency"]), "{name}");
        assert_eq!(check["status"], "healthy");
        assert!(check["latency"].is_u64());
    }
    let pipeline = &body["checks"]["telemetry"];
    assert_eq!(pipeline["status"], "healthy");
    assert!(pipeline["latency"].is_u64());
    assert_eq!(pipeline["profile"], telemetry.profile().name.as_str());
    assert_eq!(pipeline["sealed"], telemetry.profile().sealed);
    assert_eq!(pipeline["disabled"], false);
    assert_eq!(
        keys(&pipeline["signals"]),
        BTreeSet::from(["spans", "logs", "metrics", "log_lines"])
    );
    for signal in ["spans", "logs", "metrics", "log_lines"] {
        let reported = &pipeline["signals"][signal];
        assert_eq!(
            keys(reported),
            BTreeSet::from([
                "exported",
                "dropped",
                "export_failures",
                "last_error",
                "backlog"
            ]),
            "{signal}"
        );
        assert_eq!(
            keys(&reported["backlog"]),
            BTreeSet::from(["depth", "bytes", "max_bytes", "oldest_age_seconds"]),
            "{signal}"
        );
        assert_eq!(reported["backlog"]["depth"], 0, "{signal}");
        assert!(
            reported["backlog"]["oldest_age_seconds"].is_null(),
            "{signal}"
        );
    }
    telemetry.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_check_makes_it_unhealthy_and_its_error_is_redacted() {
    let telemetry = quiet("redacted");
    let health = Health::for_telemetry(&telemetry)
        .check("redis", || async { Ok::<(), String>(()) })
        .check("database", || async {
            Err::<(), _>("connection refused: postgres://user:hunter2@db:5432/scans")
        })
        .build();
    let app = Router::new()
        .route_service("/health", health.clone())
        .route_service("/health/ready", health);
    for path in ["/health", "/health/ready"] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body["status"], "unhealthy");
        let database = &body["checks"]["database"];
        assert_eq!(
            keys(database),
            BTreeSet::from(["status", "latency", "error"])
        );
        assert_eq!(database["status"], "unhealthy");
        let error = database["error"].as_str().unwrap();
        assert!(error.starts_with("connection refused"), "{error}");
        assert!(!body.to_string().contains("hunter2"), "{body}");
        assert_eq!(body["checks"]["redis"]["status"], "healthy");
    }
    telemetry.shutdown();
}

fn assert_mirrors(reported: &Value, stats: &SignalSnapshot, telemetry: &Telemetry) {
    assert_eq!(reported["exported"], stats.exported);
    assert_eq!(reported["dropped"], stats.dropped);
    assert_eq!(reported["export_failures"], stats.export_failures);
    assert_eq!(reported["backlog"]["depth"], stats.queue_depth);
    assert_eq!(reported["backlog"]["bytes"], stats.queue_bytes);
    assert_eq!(reported["backlog"]["max_bytes"], stats.queue_capacity_bytes);
    match &stats.last_error {
        None => assert!(reported["last_error"].is_null()),
        Some(e) => assert_eq!(
            reported["last_error"],
            telemetry.redactor().redact_str(e).as_ref()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_telemetry_entry_mirrors_the_pipeline_stats() {
    // Nothing listens on the discard port: every export fails and is counted.
    let telemetry = Telemetry::builder("pipeline")
        .service_version("4.2.0")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint("http://127.0.0.1:9")
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .otlp_timeout(Duration::from_secs(1))
        .stdout_logs(false)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("scan.image").in_scope(|| tracing::info!("scanned"));
    });
    telemetry.shutdown();
    let stats = telemetry.stats();
    assert!(
        stats.spans.export_failures + stats.spans.dropped > 0,
        "{stats:?}"
    );

    let health = Health::for_telemetry(&telemetry)
        .check("database", || async { Ok::<(), String>(()) })
        .build();
    let app = Router::new().nest_service("/health", health);
    let (status, body) = get(&app, "/health").await;
    assert_eq!(status, StatusCode::OK, "degraded is still 200");
    assert_eq!(body["status"], "degraded", "{body}");
    let pipeline = &body["checks"]["telemetry"];
    assert_eq!(pipeline["status"], "degraded");
    assert!(
        pipeline["error"].as_str().unwrap().contains("spans"),
        "{pipeline}"
    );
    let stats = telemetry.stats();
    assert_eq!(pipeline["egress_refusals"], stats.egress_refusals);
    assert_eq!(pipeline["profile"], telemetry.profile().name.as_str());
    let signals = &pipeline["signals"];
    assert_mirrors(&signals["spans"], &stats.spans, &telemetry);
    assert_mirrors(&signals["logs"], &stats.logs, &telemetry);
    assert_mirrors(&signals["metrics"], &stats.metrics, &telemetry);
    assert_mirrors(&signals["log_lines"], &stats.log_lines, &telemetry);

    // Nothing was lost since that report: healthy again, counters unchanged.
    let (status, body) = get(&app, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy", "{body}");
    assert!(body["checks"]["telemetry"].get("error").is_none());
    assert_mirrors(
        &body["checks"]["telemetry"]["signals"]["spans"],
        &stats.spans,
        &telemetry,
    );
}

#[tokio::test(flavor = "current_thread")]
async fn liveness_and_readiness_leave_the_pipeline_out() {
    let telemetry = quiet("probes");
    let health = Health::for_telemetry(&telemetry).build();
    let app = Router::new().nest_service("/health", health);
    let (status, live) = get(&app, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&live), BTreeSet::from(["status", "version", "uptime"]));
    let (status, ready) = get(&app, "/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&ready["checks"]), BTreeSet::new());
    telemetry.shutdown();
}

mod backlog {
    //! A span exporter that blocks until released: the queue's backlog shows in `/health`
    //! and degrades it, readiness stays up, and the report recovers once export catches up.

    use super::*;
    use std::time::Instant;

    fn stalled(exporters: &TestExporters, max_queue_bytes: usize) -> Telemetry {
        Telemetry::builder("stalled")
            .service_version("4.2.0")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(exporters)
            .export_delay(Duration::from_millis(5))
            .max_queue_bytes(max_queue_bytes)
            .build()
            .unwrap()
    }

    fn spans(telemetry: &Telemetry, n: usize) {
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for i in 0..n {
                tracing::info_span!("scan.image", i).in_scope(|| {});
            }
        });
    }

    /// Polls `/health` until its status is `want` (a bound on waiting, not on speed).
    async fn eventually(app: &Router, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = get(app, "/health").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] == want {
                return body;
            }
            assert!(Instant::now() < deadline, "never {want}: {body}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Releases the exporter and waits until everything queued is exported.
    async fn release(exporters: &TestExporters, telemetry: &Telemetry) {
        exporters.release_spans();
        let telemetry = telemetry.clone();
        tokio::task::spawn_blocking(move || telemetry.flush(Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_old_backlog_degrades_the_report_until_the_exporter_catches_up() {
        let exporters = TestExporters::stalled_spans();
        let telemetry = stalled(&exporters, 16 << 20);
        let health = Health::for_telemetry(&telemetry)
            .backlog_max_age(Duration::from_millis(50))
            .build();
        let app = Router::new().nest_service("/health", health);
        spans(&telemetry, 10);

        let body = eventually(&app, "degraded").await;
        let pipeline = &body["checks"]["telemetry"];
        assert_eq!(pipeline["status"], "degraded");
        let error = pipeline["error"].as_str().unwrap();
        assert!(error.contains("spans: oldest queued record"), "{error}");
        let backlog = &pipeline["signals"]["spans"]["backlog"];
        assert_eq!(backlog["depth"], 10, "{backlog}");
        assert!(backlog["bytes"].as_u64().unwrap() > 0, "{backlog}");
        assert_eq!(backlog["max_bytes"], 16 << 20);
        // The report rounds the age to milliseconds: 50.4 ms reads 0.05.
        assert!(
            backlog["oldest_age_seconds"].as_f64().unwrap() >= 0.05,
            "{backlog}"
        );
        let stats = telemetry.stats().spans;
        assert_eq!(stats.queue_depth, 10);
        assert!(stats.queue_bytes > 0);
        assert!(stats.queue_oldest_age > Some(Duration::from_millis(50)));
        assert_eq!((stats.exported, stats.dropped), (0, 0));

        // Degraded is still 200, and readiness leaves the pipeline out.
        let (status, ready) = get(&app, "/health/ready").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ready["status"], "healthy");

        release(&exporters, &telemetry).await;
        let body = eventually(&app, "healthy").await;
        let backlog = &body["checks"]["telemetry"]["signals"]["spans"]["backlog"];
        assert_eq!(backlog["depth"], 0, "{backlog}");
        assert_eq!(backlog["bytes"], 0, "{backlog}");
        assert!(backlog["oldest_age_seconds"].is_null(), "{backlog}");
        assert_eq!(telemetry.stats().spans.exported, 10);
        assert_eq!(exporters.finished_spans().len(), 10);
        telemetry.shutdown();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn queued_bytes_past_the_high_water_mark_degrade_the_report() {
        let exporters = TestExporters::stalled_spans();
        let telemetry = stalled(&exporters, 64 * 1024);
        let health = Health::for_telemetry(&telemetry).build();
        let app = Router::new().nest_service("/health", health);
        // Spans until more than 80 % of the queue's bytes are in use, none dropped yet.
        let mut sent = 0;
        loop {
            let spans_now = telemetry.stats().spans;
            assert_eq!(spans_now.dropped, 0, "{spans_now:?}");
            if spans_now.queue_bytes * 10 > spans_now.queue_capacity_bytes * 8 {
                break;
            }
            spans(&telemetry, 1);
            sent += 1;
        }
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded", "{body}");
        let error = body["checks"]["telemetry"]["error"].as_str().unwrap();
        assert!(error.contains("queue bytes in use"), "{error}");
        assert!(!error.contains("oldest"), "{error}");
        assert_eq!(
            body["checks"]["telemetry"]["signals"]["spans"]["backlog"]["depth"],
            sent
        );

        release(&exporters, &telemetry).await;
        let body = eventually(&app, "healthy").await;
        assert_eq!(
            body["checks"]["telemetry"]["signals"]["spans"]["backlog"]["bytes"],
            0
        );
        assert_eq!(telemetry.stats().spans.exported, sent);
        telemetry.shutdown();
    }
}
