//! Egress policies decide from the endpoint URL alone: names are never resolved, so a name is
//! judged as a name, and closures and `()` work as policies through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use stellaops_telemetry_core::{
    AllowList, EgressDecision, EgressError, EgressPolicy, EgressTarget, Host, LoopbackOnly,
    OpenPolicy, PolicyFn, parse_endpoint, sealed_policy,
};

fn decide(policy: &dyn EgressPolicy, signal: &str, url: &str) -> EgressDecision {
    let (host, port) = parse_endpoint(url).unwrap();
    policy.check(&EgressTarget {
        signal,
        url,
        host: &host,
        port,
    })
}

#[test]
fn sealed_mode_without_an_allow_list_reaches_loopback_only() {
    let policy = sealed_policy(None);
    assert_eq!(policy.name(), "loopback-only");
    for url in [
        "http://127.0.0.1:4317",
        "http://[::1]:4317",
        "http://[::ffff:127.0.0.1]:4318",
        "http://localhost:4317",
        "http://otel.localhost:4318/v1/traces",
    ] {
        assert!(decide(&*policy, "traces", url).is_allowed(), "{url}");
    }
    for url in [
        "https://collector.invalid/v1/traces",
        "https://localhost.invalid.example",
        "http://192.0.2.1:4317",
        "http://[2001:db8::1]:4317",
    ] {
        assert!(!decide(&*policy, "traces", url).is_allowed(), "{url}");
    }
}

#[test]
fn a_name_that_would_resolve_into_an_allowed_network_is_still_refused() {
    // No DNS lookup is made, so `*.invalid` (which cannot resolve) is judged by its name alone.
    let list = AllowList::parse(&["198.51.100.0/24", "*.corp.example"]).unwrap();
    assert!(decide(&list, "logs", "http://198.51.100.20:4318").is_allowed());
    assert!(decide(&list, "logs", "https://otel.corp.example").is_allowed());
    let EgressDecision::Refuse { reason } = decide(&list, "logs", "https://collector.invalid")
    else {
        panic!("a name matched a network entry");
    };
    assert_eq!(
        reason,
        "`collector.invalid` is not a loopback address and matches no egress allow-list entry \
         (198.51.100.0/24, *.corp.example); host names are never matched against address \
         entries, since no DNS lookup is made"
    );
}

#[test]
fn closures_unit_and_shared_policies_are_policies() {
    let metrics_only = PolicyFn::new(|target: &EgressTarget<'_>| {
        if target.signal == "metrics" {
            EgressDecision::Allow
        } else {
            EgressDecision::refuse(format!(
                "{} may not leave for `{}`",
                target.signal, target.host
            ))
        }
    });
    assert_eq!(metrics_only.name(), "custom");
    assert!(decide(&metrics_only, "metrics", "https://collector.example.com").is_allowed());
    assert_eq!(
        decide(&metrics_only, "logs", "https://collector.example.com"),
        EgressDecision::refuse("logs may not leave for `collector.example.com`")
    );

    assert!(decide(&(), "traces", "https://collector.invalid").is_allowed());
    assert!(decide(&OpenPolicy, "traces", "https://collector.invalid").is_allowed());

    let shared: Arc<dyn EgressPolicy> = Arc::new(LoopbackOnly);
    let boxed: Box<dyn EgressPolicy> = Box::new(Arc::clone(&shared));
    assert_eq!(boxed.name(), "loopback-only");
    assert!(!decide(&boxed, "traces", "https://collector.invalid").is_allowed());
}

#[test]
fn hosts_and_errors_are_reported_as_written_down() {
    assert_eq!(
        parse_endpoint("https://Collector.Example.COM.").unwrap(),
        (Host::Name("collector.example.com".to_owned()), 443)
    );
    let err = parse_endpoint("ftp://collector.example.com").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid endpoint `ftp://collector.example.com`: the scheme must be http or https"
    );
    let err =
        AllowList::parse(&["collector.example.com", "http://collector.example.com"]).unwrap_err();
    assert!(matches!(
        &err,
        EgressError::InvalidEntry { entry, .. } if entry == "http://collector.example.com"
    ));
}
