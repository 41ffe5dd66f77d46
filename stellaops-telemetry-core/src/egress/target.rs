//! What is about to be dialled: [`EgressTarget`], [`Host`] and [`parse_endpoint`].
//!
//! The parser is deliberately strict: the host it reports must be the host an HTTP client
//! would dial, so anything a client might read differently (numeric shorthands such as
//! `127.1`, percent-encoded or non-ASCII hosts, backslashes, whitespace inside the URL,
//! unbracketed IPv6) is refused rather than guessed at.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::EgressError;
use crate::redaction::REDACTED;

/// What userinfo is shown as (the OpenTelemetry URL convention).
const REDACTED_USERINFO: &str = "REDACTED:REDACTED";

/// The longest host name DNS can carry, without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// The host part of an endpoint: an IP address or a host name. No DNS lookup is ever made.
///
/// Names produced by [`parse_endpoint`] and [`AllowList::parse`](crate::AllowList::parse) are
/// lowercase and have no trailing dot; the built-in policies compare names case-insensitively
/// and ignore a trailing dot anyway, so a hand-built `Host` is judged the same way.
///
/// ```
/// use std::net::{IpAddr, Ipv6Addr};
/// use stellaops_telemetry_core::{Host, parse_endpoint};
///
/// let (host, port) = parse_endpoint("http://[2001:db8::1]:4317")?;
/// assert_eq!(host, Host::Ip(IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>()?)));
/// assert_eq!(port, 4317);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address literal.
    Ip(IpAddr),
    /// A DNS host name.
    Name(String),
}

impl fmt::Display for Host {
    /// IPv6 addresses are written without brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// One connection about to be made by an exporter, as an [`EgressPolicy`](crate::EgressPolicy)
/// sees it.
///
/// ```
/// use stellaops_telemetry_core::{EgressTarget, parse_endpoint};
///
/// let url = "https://collector.example.com/v1/traces";
/// let (host, port) = parse_endpoint(url)?;
/// let target = EgressTarget { signal: "traces", url, host: &host, port };
/// assert_eq!(target.port, 443);
/// assert_eq!(target.host.to_string(), "collector.example.com");
/// # Ok::<(), stellaops_telemetry_core::EgressError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EgressTarget<'a> {
    /// The signal being exported: `traces`, `metrics` or `logs`.
    pub signal: &'a str,
    /// The full endpoint URL.
    pub url: &'a str,
    /// The host that will be dialled.
    pub host: &'a Host,
    /// The port that will be dialled (the scheme's default when the URL has none).
    pub port: u16,
}

/// The URL is shown with its userinfo, query values and fragment masked.
impl std::fmt::Debug for EgressTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressTarget")
            .field("signal", &self.signal)
            .field("url", &mask_url(self.url))
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

/// Splits an `http` or `https` endpoint URL into the host and port that will be dialled.
///
/// The scheme is case-insensitive; a missing port is 80 for `http` and 443 for `https`.
/// IPv6 addresses must be in brackets (`http://[2001:db8::1]:4317`). Names are lowercased and
/// a trailing dot is removed (`Collector.Example.COM.` becomes `collector.example.com`).
/// Leading and trailing whitespace is ignored.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use stellaops_telemetry_core::{Host, parse_endpoint};
///
/// assert_eq!(
///     parse_endpoint("http://192.0.2.10/v1/logs")?,
///     (Host::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))), 80),
/// );
/// assert_eq!(
///     parse_endpoint("HTTPS://Collector.Example.COM.:4318")?,
///     (Host::Name("collector.example.com".into()), 4318),
/// );
/// assert!(parse_endpoint("collector.example.com:4317").is_err());
/// # Ok::<(), stellaops_telemetry_core::EgressError>(())
/// ```
///
/// # Errors
///
/// [`EgressError::InvalidEndpoint`] naming the URL when the scheme is not `http` or `https`,
/// the URL carries credentials, or the host or port is missing or malformed. Credentials are
/// masked in the error.
pub fn parse_endpoint(url: &str) -> Result<(Host, u16), EgressError> {
    let trimmed = url.trim();
    let bad = |reason: &str| EgressError::InvalidEndpoint {
        url: mask_url(trimmed),
        reason: reason.to_owned(),
    };

    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the URL contains whitespace or control characters"));
    }
    // WHATWG parsers (reqwest's) read `\` as `/`; refusing it keeps every client reading the
    // same host as the one judged here.
    if trimmed.contains('\\') {
        return Err(bad("the URL contains a backslash"));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(bad(
            "expected an absolute URL such as http://collector:4317",
        ));
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return Err(bad("the scheme must be http or https"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not allowed (use headers)"));
    }

    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((literal, after)) = bracketed.split_once(']') else {
            return Err(bad("the IPv6 address has no closing `]`"));
        };
        // A zone id names an interface, which clients resolve in different ways (some through
        // the system resolver); the policy could not judge where such an address leads.
        if literal.contains('%') {
            return Err(bad(
                "IPv6 zone ids (`%25<interface>`) are not supported; write the address without one, \
                 as in http://[::1]:4317",
            ));
        }
        let ip: Ipv6Addr = literal
            .parse()
            .map_err(|_| bad("the bracketed host is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(bad("unexpected characters after the IPv6 address")),
            },
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(bad(
                "IPv6 addresses must be in brackets, as in http://[::1]:4317",
            ));
        }
        if host.is_empty() {
            return Err(bad("the URL has no host"));
        }
        (parse_host(host).map_err(|reason| bad(&reason))?, port)
    };

    let port = match port {
        None => default_port,
        Some(digits) => {
            parse_port(digits).ok_or_else(|| bad("the port is not a number from 0 to 65535"))?
        }
    };
    Ok((host, port))
}

/// Parses a bare host (no brackets, no port): an IPv4 address or a host name, normalised.
fn parse_host(host: &str) -> Result<Host, String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = host.to_ascii_lowercase();
    check_name(&name)?;
    Ok(Host::Name(name))
}

/// Only ASCII digits: `u16::from_str` would also take a leading `+`.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks a lowercase host name without a trailing dot against RFC 1123, and refuses names an
/// IPv4 parser could read as an address (`127.1`, `0x7f000001`, `2130706433`).
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the host name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the host name has an empty label".to_owned());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "the label `{label}` is longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "the label `{label}` may hold only letters, digits and hyphens"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label `{label}` starts or ends with a hyphen"));
        }
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "a numeric last label reads as an IPv4 address; write addresses as four decimal parts"
                .to_owned(),
        );
    }
    Ok(())
}

/// A URL as it may be shown in an error or a warning: userinfo becomes `REDACTED:REDACTED`,
/// the value of every query parameter and the fragment become `REDACTED`. Malformed text is
/// masked the same way, so a credential never reaches a message whatever else is wrong.
///
/// Credentials written without escaping may hold `/`, `?` or `#`, so everything between the
/// scheme and the last `@` counts as userinfo.
pub(crate) fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let mut out = String::with_capacity(url.len() + 16);
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    let rest = match rest.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED_USERINFO);
            &rest[at..]
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (rest, false),
    };
    match rest.split_once('?') {
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            for (i, parameter) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match parameter.split_once('=') {
                    Some((name, _)) => {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(REDACTED);
                    }
                    None if parameter.is_empty() => {}
                    None => out.push_str(REDACTED),
                }
            }
        }
        None => out.push_str(rest),
    }
    if fragment {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Host {
        Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn v6(s: &str) -> Host {
        Host::Ip(IpAddr::V6(s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED)))
    }

    fn name(s: &str) -> Host {
        Host::Name(s.to_owned())
    }

    #[test]
    fn endpoints_parse_to_the_host_and_port_dialled() {
        let cases = [
            ("http://192.0.2.1:4317", v4(192, 0, 2, 1), 4317),
            ("http://192.0.2.1", v4(192, 0, 2, 1), 80),
            ("https://192.0.2.1/v1/traces", v4(192, 0, 2, 1), 443),
            ("http://[2001:db8::1]:4317", v6("2001:db8::1"), 4317),
            ("https://[2001:db8::1]/v1/logs", v6("2001:db8::1"), 443),
            ("http://[::1]", v6("::1"), 80),
            (
                "http://[::ffff:127.0.0.1]:4318",
                v6("::ffff:127.0.0.1"),
                4318,
            ),
            (
                "http://Collector.Example.COM:4317",
                name("collector.example.com"),
                4317,
            ),
            (
                "HTTPS://collector.example.com./v1/metrics",
                name("collector.example.com"),
                443,
            ),
            (
                "http://collector.invalid?x=1",
                name("collector.invalid"),
                80,
            ),
            (
                "http://collector.invalid#frag",
                name("collector.invalid"),
                80,
            ),
            ("  http://localhost:4317  ", name("localhost"), 4317),
            ("http://192.0.2.1.:8080", v4(192, 0, 2, 1), 8080),
            (
                "http://collector.invalid:04317",
                name("collector.invalid"),
                4317,
            ),
            (
                "http://xn--bcher-kva.example",
                name("xn--bcher-kva.example"),
                80,
            ),
        ];
        for (url, host, port) in cases {
            match parse_endpoint(url) {
                Ok(got) => assert_eq!(got, (host, port), "{url}"),
                Err(e) => panic!("{url}: {e}"),
            }
        }
    }

    #[test]
    fn malformed_endpoints_are_errors_naming_the_url() {
        let cases = [
            "",
            "collector.example.com:4317",
            "ftp://collector.example.com",
            "http://",
            "http:///v1/traces",
            "http://:4317",
            "http://collector.example.com:",
            "http://collector.example.com:65536",
            "http://collector.example.com:+80",
            "http://collector.example.com:http",
            "http://2001:db8::1:4317",
            "http://[2001:db8::1:4317",
            "http://[2001:db8::1]x",
            "http://[192.0.2.1]:4317",
            "http://exa mple.com",
            "http://collector\t.example.com",
            "http://collector_1.example.com",
            "http://-collector.example.com",
            "http://collector..example.com",
            "http://b\u{fc}cher.example",
            "http://127.0.0.%31",
            "http://127.1",
            "http://2130706433",
            "http://0x7f000001",
            "http://127.0.0.01",
            "http://collector.invalid\\.example.com",
        ];
        for url in cases {
            match parse_endpoint(url) {
                Ok(got) => panic!("{url:?} parsed as {got:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.starts_with(&format!("invalid endpoint `{}`: ", url.trim())),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn backslashes_are_refused_so_no_client_reads_another_host() {
        let Err(e) = parse_endpoint("http://collector.invalid\\@192.0.2.1/") else {
            panic!("a backslash was accepted");
        };
        assert!(
            e.to_string().ends_with(": the URL contains a backslash"),
            "{e}"
        );
    }

    #[test]
    fn credentials_are_refused_and_masked_in_the_error() {
        let Err(e) = parse_endpoint("https://user:s3cret@collector.example.com/v1/traces") else {
            panic!("credentials were accepted");
        };
        let message = e.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(
            message.contains("`https://REDACTED:REDACTED@collector.example.com/v1/traces`"),
            "{message}"
        );
    }

    #[test]
    fn masked_urls_keep_the_host_and_lose_every_secret() {
        let cases = [
            ("http://127.0.0.1:4317", "http://127.0.0.1:4317"),
            (
                "http://user:hunter2@192.0.2.1:4317",
                "http://REDACTED:REDACTED@192.0.2.1:4317",
            ),
            ("http://user:hunter2@[bad", "http://REDACTED:REDACTED@[bad"),
            ("http://hunter2@host/v1", "http://REDACTED:REDACTED@host/v1"),
            (
                "http://user:hun/ter?2#x@host:4317/v1",
                "http://REDACTED:REDACTED@host:4317/v1",
            ),
            ("user:hunter2@host:4317", "REDACTED:REDACTED@host:4317"),
            (
                "https://host/v1/traces?sig=hunter2&tenant=a&hunter2",
                "https://host/v1/traces?sig=REDACTED&tenant=REDACTED&REDACTED",
            ),
            ("https://host/v1#hunter2", "https://host/v1#REDACTED"),
            ("https://host/v1?", "https://host/v1?"),
        ];
        for (url, shown) in cases {
            assert_eq!(mask_url(url), shown, "{url}");
        }
    }

    #[test]
    fn zone_ids_are_refused_and_never_read_as_a_name() {
        for url in ["http://[fe80::1%25eth0]:4317", "http://[::1%25lo]:4317"] {
            let Err(e) = parse_endpoint(url) else {
                panic!("{url} was accepted");
            };
            assert!(e.to_string().contains("zone ids"), "{e}");
        }
    }

    #[test]
    fn long_names_and_labels_are_refused() {
        let label = "a".repeat(64);
        assert!(parse_endpoint(&format!("http://{label}.example")).is_err());
        let long = format!("{}example", "abcdefghi.".repeat(25));
        assert!(long.len() > MAX_NAME_LEN);
        assert!(parse_endpoint(&format!("http://{long}")).is_err());
        let fits = format!("{}.example", "a".repeat(63));
        assert!(parse_endpoint(&format!("http://{fits}")).is_ok());
    }
}
