//! Egress policies decide from the endpoint URL alone: names are never resolved, so a name is
//! judged as a name, and closures and `()` work as policies through the public API. Sealed
//! policies decide every spelling of loopback (trailing dots, case, `*.localhost`,
//! IPv4-mapped), refuse the unspecified addresses and every name but loopback ones, listed
//! or not, while listed addresses and networks still pass; zone ids never parse.
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

/// What a sealed policy must say about one endpoint: allowed, refused with a reason holding
/// this text, or not even an endpoint (a `parse_endpoint` error holding this text).
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Allow,
    Refuse(&'static str),
    Malformed(&'static str),
}

fn check_table(policy: &dyn EgressPolicy, table: &[(&str, Verdict)]) {
    for &(url, verdict) in table {
        let parsed = parse_endpoint(url);
        match (verdict, parsed) {
            (Verdict::Malformed(why), Err(e)) => {
                assert!(e.to_string().contains(why), "{url}: {e}");
            }
            (Verdict::Malformed(_), Ok(parsed)) => panic!("{url} parsed as {parsed:?}"),
            (_, Err(e)) => panic!("{url}: {e}"),
            (verdict, Ok((host, port))) => {
                let decision = policy.check(&EgressTarget {
                    signal: "traces",
                    url,
                    host: &host,
                    port,
                });
                match (verdict, decision) {
                    (Verdict::Allow, EgressDecision::Allow) => {}
                    (Verdict::Refuse(why), EgressDecision::Refuse { reason }) => {
                        assert!(reason.contains(why), "{url}: {reason}");
                        assert!(reason.contains(&format!("`{host}`")), "{url}: {reason}");
                    }
                    (verdict, decision) => panic!("{url}: expected {verdict:?}, got {decision:?}"),
                }
            }
        }
    }
}

/// Every spelling of loopback, mapped, scoped and unspecified address a sealed site may be
/// handed, decided without a lookup.
const SEALED_FORMS: &[(&str, Verdict)] = &[
    ("http://localhost:4317", Verdict::Allow),
    ("http://localhost.:4317", Verdict::Allow),
    ("http://LOCALHOST:4317", Verdict::Allow),
    ("http://LocalHost.:4317", Verdict::Allow),
    ("http://collector.localhost:4317", Verdict::Allow),
    ("http://Collector.LOCALHOST:4317", Verdict::Allow),
    ("http://collector.localhost.:4318/v1/traces", Verdict::Allow),
    ("http://127.0.0.1:4317", Verdict::Allow),
    ("http://127.0.0.1.:4317", Verdict::Allow),
    ("http://127.8.9.10:4317", Verdict::Allow),
    ("http://[::1]:4317", Verdict::Allow),
    ("http://[::ffff:127.0.0.1]:4317", Verdict::Allow),
    ("http://[0:0:0:0:0:ffff:7f00:1]:4317", Verdict::Allow),
    (
        "http://0.0.0.0:4317",
        Verdict::Refuse("is the unspecified address, not a loopback address"),
    ),
    (
        "http://[::]:4317",
        Verdict::Refuse("is the unspecified address, not a loopback address"),
    ),
    (
        "http://[::ffff:0.0.0.0]:4317",
        Verdict::Refuse("is the unspecified address, not a loopback address"),
    ),
    (
        "http://[fe80::1%25eth0]:4317",
        Verdict::Malformed("zone ids"),
    ),
    ("http://[::1%25lo]:4317", Verdict::Malformed("zone ids")),
    ("http://[::1%lo]:4317", Verdict::Malformed("zone ids")),
    (
        "http://localhost.localdomain:4317",
        Verdict::Refuse("not a loopback address"),
    ),
    (
        "http://localhost.example:4317",
        Verdict::Refuse("not a loopback address"),
    ),
    (
        "http://notlocalhost:4317",
        Verdict::Refuse("not a loopback address"),
    ),
];

#[test]
fn sealed_loopback_only_decides_every_form_of_loopback() {
    let policy = sealed_policy(None);
    check_table(&*policy, SEALED_FORMS);
    check_table(
        &*policy,
        &[
            (
                "http://[::ffff:192.0.2.1]:4317",
                Verdict::Refuse("not a loopback address"),
            ),
            (
                "http://192.0.2.10:4317",
                Verdict::Refuse("not a loopback address"),
            ),
            (
                "http://collector.example.invalid:4317",
                Verdict::Refuse("only 127.0.0.0/8, ::1, localhost and *.localhost are allowed"),
            ),
        ],
    );
}

#[test]
fn a_sealed_allow_list_allows_addresses_and_networks_but_no_name() {
    let list = AllowList::parse(&[
        "collector.example.com",
        "*.corp.example",
        "192.0.2.0/24",
        "2001:db8::10",
        "0.0.0.0/0",
    ])
    .unwrap();
    let policy = sealed_policy(Some(list.clone()));
    assert_eq!(policy.name(), "allow-list");
    check_table(&*policy, SEALED_FORMS);
    let use_an_ip = "sealed mode resolves no host names (only localhost and *.localhost, dialled \
                     as 127.0.0.1 and ::1): use the collector's IP address in the endpoint and \
                     list that address or its network";
    check_table(
        &*policy,
        &[
            ("http://192.0.2.10:4317", Verdict::Allow),
            ("http://[::ffff:192.0.2.1]:4317", Verdict::Allow),
            ("http://[2001:db8::10]:4317", Verdict::Allow),
            ("http://198.51.100.7:4317", Verdict::Allow),
            (
                "http://collector.example.com:4317",
                Verdict::Refuse(use_an_ip),
            ),
            (
                "http://Collector.Example.COM.:4317",
                Verdict::Refuse("is on the egress allow-list"),
            ),
            ("http://otel.corp.example:4317", Verdict::Refuse(use_an_ip)),
            (
                "http://collector.example.invalid:4317",
                Verdict::Refuse(use_an_ip),
            ),
            (
                "http://[2001:db8::11]:4317",
                Verdict::Refuse("matches no egress allow-list entry"),
            ),
        ],
    );
    // The unspecified address is refused even though 0.0.0.0/0 lists it.
    let (host, port) = parse_endpoint("http://0.0.0.0:4317").unwrap();
    let target = EgressTarget {
        signal: "logs",
        url: "http://0.0.0.0:4317",
        host: &host,
        port,
    };
    let EgressDecision::Refuse { reason } = policy.check(&target) else {
        panic!("0.0.0.0 was allowed in sealed mode");
    };
    assert!(
        reason.contains("sealed mode refuses it even though it is listed"),
        "{reason}"
    );

    // Outside sealed mode the same list still allows the listed names (the system resolves
    // them after the policy said yes).
    assert!(!list.is_sealed());
    assert!(decide(&list, "traces", "http://collector.example.com:4317").is_allowed());
    assert!(list.clone().sealed().is_sealed());
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
