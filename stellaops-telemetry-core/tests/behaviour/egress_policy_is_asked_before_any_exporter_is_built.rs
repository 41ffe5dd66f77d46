//! The egress policy decides before an exporter exists: a refused endpoint never sees a
//! connection, even on loopback; sealed mode allows loopback; a malformed allow-list entry
//! is a build error naming it; a refusal's warning masks the endpoint's query values, also
//! where the policy quoted the URL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::Duration;

use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::{
    EgressDecision, ExporterKind, OtlpProtocol, PolicyFn, Telemetry, TelemetryError,
};

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

fn traffic(t: &Telemetry) {
    tracing::dispatcher::with_default(t.dispatch(), || {
        tracing::info_span!("work").in_scope(|| tracing::info!("done"));
    });
    t.shutdown();
}

#[test]
fn a_custom_policy_refusing_an_endpoint_means_no_connection_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (l, url) = listener();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let t = Telemetry::builder("svc")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(&url)
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .egress_policy(PolicyFn::new(move |target| {
            record
                .lock()
                .unwrap()
                .push((target.signal.to_owned(), target.url.to_owned()));
            EgressDecision::refuse("not in this test")
        }))
        .dir(dir.path())
        .stdout_logs(false)
        .build()
        .unwrap();
    traffic(&t);
    assert!(l.accept().is_err(), "a refused exporter connected");
    assert_eq!(t.stats().egress_refusals, 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .any(|(s, u)| s == "traces" && *u == format!("{url}/v1/traces"))
    );
}

#[test]
fn sealed_mode_still_allows_a_loopback_collector() {
    let (l, url) = listener();
    let t = Telemetry::builder("svc")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(&url)
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .otlp_timeout(Duration::from_millis(300))
        .sealed(true)
        .stdout_logs(false)
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    traffic(&t);
    assert!(l.accept().is_ok(), "the loopback collector was not reached");
    assert_eq!(t.stats().egress_refusals, 0);
}

#[test]
fn a_malformed_allow_list_entry_fails_the_build_naming_it() {
    let err = Telemetry::builder("svc")
        .egress_allow(["collector.example", "exa mple.com"])
        .stdout_logs(false)
        .build()
        .unwrap_err();
    assert!(matches!(err, TelemetryError::Egress(_)));
    assert!(err.to_string().contains("exa mple.com"), "{err}");
}

#[test]
fn a_refusal_warning_masks_the_endpoints_query_values() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    let url = "http://127.0.0.1:9/?sig=hunter2&tenant=acme";
    let t = Telemetry::builder("svc")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(url)
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .egress_policy(PolicyFn::new(|target| {
            EgressDecision::refuse(format!("`{}` is not for this test", target.url))
        }))
        .dir(dir.path())
        .test_exporters(&exporters)
        .stdout_logs(false)
        .build()
        .unwrap();
    traffic(&t);
    let warnings: Vec<_> = exporters
        .json_logs()
        .json()
        .into_iter()
        .filter(|l| {
            l["message"] == "egress policy refused the OTLP exporter; writing files instead"
        })
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for w in &warnings {
        // The signal's path goes before the query, which keeps its names only.
        let shown = format!(
            "http://127.0.0.1:9/v1/{}?sig=REDACTED&tenant=REDACTED",
            w["signal"].as_str().unwrap()
        );
        assert!(!w.to_string().contains("hunter2"), "{w}");
        assert_eq!(w["endpoint"], shown);
        assert_eq!(w["reason"], format!("`{shown}` is not for this test"));
    }
}
