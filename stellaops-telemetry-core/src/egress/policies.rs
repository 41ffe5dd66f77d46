//! The built-in policies: [`OpenPolicy`], [`LoopbackOnly`] and [`AllowList`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::target::{check_name, mask_url};
use super::{EgressDecision, EgressError, EgressPolicy, EgressTarget, Host};

/// Allows every connection. The policy of a pipeline that is not sealed.
///
/// ```
/// use stellaops_telemetry_core::{EgressPolicy, EgressTarget, Host, OpenPolicy};
///
/// let host = Host::Name("collector.example.com".into());
/// let target = EgressTarget { signal: "logs", url: "https://collector.example.com", host: &host, port: 443 };
/// assert!(OpenPolicy.check(&target).is_allowed());
/// assert_eq!(OpenPolicy.name(), "open");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenPolicy;

impl EgressPolicy for OpenPolicy {
    fn check(&self, _target: &EgressTarget<'_>) -> EgressDecision {
        EgressDecision::Allow
    }

    fn name(&self) -> &str {
        "open"
    }
}

/// Allows loopback hosts only, without resolving anything: the IP loopback ranges
/// (127.0.0.0/8, `::1`, and `::ffff:127.0.0.0/104`, IPv4-mapped loopback) and the names
/// `localhost` and `*.localhost` (RFC 6761). Sealed mode's policy when no allow-list is set.
///
/// The unspecified addresses (`0.0.0.0`, `::`) are refused: they are not loopback, although
/// some systems dial them as this host.
///
/// The names are trusted to mean loopback as RFC 6761 asks. In sealed mode the SDK dials them
/// as 127.0.0.1 and ::1 itself, so they never reach the system resolver; a pipeline that is
/// not sealed lets the system resolve them as it resolves any name.
///
/// ```
/// use stellaops_telemetry_core::{EgressDecision, EgressPolicy, LoopbackOnly, parse_endpoint};
/// # use stellaops_telemetry_core::EgressTarget;
///
/// let check = |url: &str| -> Result<EgressDecision, Box<dyn std::error::Error>> {
///     let (host, port) = parse_endpoint(url)?;
///     Ok(LoopbackOnly.check(&EgressTarget { signal: "traces", url, host: &host, port }))
/// };
/// assert!(check("http://127.0.0.1:4317")?.is_allowed());
/// assert!(check("http://[::1]:4317")?.is_allowed());
/// assert!(check("http://api.localhost:4318")?.is_allowed());
/// assert_eq!(
///     check("https://collector.invalid")?,
///     EgressDecision::refuse("`collector.invalid` is not a loopback address; only 127.0.0.0/8, ::1, localhost and *.localhost are allowed"),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopbackOnly;

impl EgressPolicy for LoopbackOnly {
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision {
        if is_loopback(target.host) {
            EgressDecision::Allow
        } else {
            EgressDecision::Refuse {
                reason: format!("{}; {LOOPBACK_ONLY}", not_loopback(target.host)),
            }
        }
    }

    fn name(&self) -> &str {
        "loopback-only"
    }
}

/// Allows loopback hosts (as [`LoopbackOnly`]) and the hosts and networks listed. No DNS lookup
/// is ever made by the policy.
///
/// Sealed mode applies the list as [`AllowList::sealed`] does: listed addresses and networks
/// and loopback only. A listed host name is refused there, because reaching it would need the
/// system resolver: put the collector's IP address in the endpoint and list that address or
/// its network instead.
///
/// Entries, as accepted by [`AllowList::parse`]:
///
/// | entry | allows |
/// |---|---|
/// | `192.0.2.10`, `2001:db8::10` | that address (an IPv4-mapped IPv6 address counts as its IPv4 address) |
/// | `10.0.0.0/8`, `2001:db8::/32` | addresses in that network; never a host name |
/// | `collector.example.com` | that name, case-insensitively, with or without a trailing dot |
/// | `*.corp.example` | every name below `corp.example` (not `corp.example` itself) |
///
/// A name is never matched against a CIDR or IP entry: that would need a DNS lookup, and the
/// answer could change between the check and the dial.
///
/// ```
/// use stellaops_telemetry_core::{AllowList, EgressPolicy, EgressTarget, parse_endpoint};
///
/// let list = AllowList::parse(&["collector.example.com", "*.corp.example", "10.0.0.0/8"])?;
/// let allowed = |url: &str| -> Result<bool, Box<dyn std::error::Error>> {
///     let (host, port) = parse_endpoint(url)?;
///     Ok(list.check(&EgressTarget { signal: "metrics", url, host: &host, port }).is_allowed())
/// };
/// assert!(allowed("https://collector.example.com")?);
/// assert!(allowed("http://otel.eu.corp.example:4317")?);
/// assert!(allowed("http://10.1.2.3:4317")?);
/// assert!(allowed("http://localhost:4317")?);
/// assert!(!allowed("http://corp.example:4317")?);
/// assert!(!allowed("http://192.0.2.1:4317")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
    /// Names other than loopback ones are refused, listed or not (sealed mode).
    sealed: bool,
}

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Ip(IpAddr),
    Net(IpNet),
    Name(String),
    /// `*.corp.example`, stored as `.corp.example`.
    Wildcard(String),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Ip(ip) => ip.fmt(f),
            Entry::Net(net) => net.fmt(f),
            Entry::Name(name) => f.write_str(name),
            Entry::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl AllowList {
    /// Parses allow-list entries: IP addresses, CIDRs, host names and `*.` wildcards (see the
    /// table on [`AllowList`]). Names are lowercased and lose a trailing dot. An empty list
    /// allows loopback only.
    ///
    /// ```
    /// use stellaops_telemetry_core::{AllowList, EgressError};
    ///
    /// assert!(AllowList::parse(&["2001:db8::/32", "collector.example.com"]).is_ok());
    /// let err = AllowList::parse(&["10.0.0.0/33"]).unwrap_err();
    /// assert!(matches!(err, EgressError::InvalidEntry { ref entry, .. } if entry == "10.0.0.0/33"));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid egress allow-list entry `10.0.0.0/33`: the prefix length 33 is longer than 32 bits",
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`EgressError::InvalidEntry`] naming the first entry that is empty, holds whitespace, is a
    /// URL or carries a port, is a CIDR with a bad prefix length or host bits set, or is not a
    /// valid RFC 1123 host name (letters, digits and hyphens, at most 253 characters).
    pub fn parse(entries: &[impl AsRef<str>]) -> Result<AllowList, EgressError> {
        let entries = entries
            .iter()
            .map(|entry| parse_entry(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList {
            entries,
            sealed: false,
        })
    }

    /// The list as sealed mode applies it: loopback and the listed addresses and networks
    /// only. Host names other than `localhost` and `*.localhost` are refused even when listed,
    /// since reaching them would need a DNS lookup; the refusal says to use an IP address.
    /// [`sealed_policy`](crate::sealed_policy) applies this. Default: not sealed.
    ///
    /// ```
    /// use stellaops_telemetry_core::{AllowList, EgressDecision, EgressPolicy, EgressTarget, parse_endpoint};
    ///
    /// let list = AllowList::parse(&["collector.example.com", "192.0.2.0/24"])?.sealed();
    /// let check = |url: &str| -> Result<EgressDecision, Box<dyn std::error::Error>> {
    ///     let (host, port) = parse_endpoint(url)?;
    ///     Ok(list.check(&EgressTarget { signal: "traces", url, host: &host, port }))
    /// };
    /// assert!(check("http://192.0.2.10:4317")?.is_allowed());
    /// assert!(check("http://localhost.:4317")?.is_allowed());
    /// let EgressDecision::Refuse { reason } = check("http://collector.example.com:4317")? else {
    ///     panic!("a listed name was allowed in sealed mode");
    /// };
    /// assert!(reason.contains("use the collector's IP address"), "{reason}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sealed(mut self) -> AllowList {
        self.sealed = true;
        self
    }

    /// Whether names other than loopback ones are refused ([`AllowList::sealed`]).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Whether the list has no entries (it then allows loopback only).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn matches(&self, host: &Host) -> bool {
        match host {
            Host::Ip(ip) => {
                let canonical = ip.to_canonical();
                self.entries.iter().any(|entry| match entry {
                    Entry::Ip(listed) => *listed == canonical || listed == ip,
                    Entry::Net(net) => net.contains(&canonical) || net.contains(ip),
                    Entry::Name(_) | Entry::Wildcard(_) => false,
                })
            }
            Host::Name(name) => {
                let name = normalise(name);
                self.entries.iter().any(|entry| match entry {
                    Entry::Name(listed) => *listed == name,
                    Entry::Wildcard(suffix) => {
                        name.len() > suffix.len() && name.ends_with(suffix.as_str())
                    }
                    Entry::Ip(_) | Entry::Net(_) => false,
                })
            }
        }
    }
}

impl fmt::Display for AllowList {
    /// The entries, comma-separated, in their normalised form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            entry.fmt(f)?;
        }
        Ok(())
    }
}

impl EgressPolicy for AllowList {
    fn check(&self, target: &EgressTarget<'_>) -> EgressDecision {
        let host = target.host;
        let unspecified = is_unspecified(host);
        if !unspecified && is_loopback(host) {
            return EgressDecision::Allow;
        }
        let listed = self.matches(host);
        let name = matches!(host, Host::Name(_));
        if listed && !(self.sealed && (name || unspecified)) {
            return EgressDecision::Allow;
        }
        let reason = if listed && name {
            format!(
                "{} is on the egress allow-list, but {SEALED_NAMES}",
                quoted(host)
            )
        } else if listed {
            format!(
                "{}, so sealed mode refuses it even though it is listed",
                not_loopback(host)
            )
        } else {
            self.unlisted_reason(host)
        };
        EgressDecision::Refuse { reason }
    }

    fn name(&self) -> &str {
        "allow-list"
    }
}

impl AllowList {
    /// Why a host that matches no entry is refused.
    fn unlisted_reason(&self, host: &Host) -> String {
        let mut reason = if self.entries.is_empty() {
            format!("{} and the egress allow-list is empty", not_loopback(host))
        } else {
            format!(
                "{} and matches no egress allow-list entry ({self})",
                not_loopback(host)
            )
        };
        let has_networks = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Ip(_) | Entry::Net(_)));
        if matches!(host, Host::Name(_)) {
            if self.sealed {
                reason.push_str("; ");
                reason.push_str(SEALED_NAMES);
            } else if has_networks {
                reason.push_str(
                    "; host names are never matched against address entries, since no DNS lookup is made",
                );
            }
        }
        reason
    }
}

/// The end of a refusal of a name in sealed mode: why, and what to do instead.
const SEALED_NAMES: &str = "sealed mode resolves no host names (only localhost and *.localhost, \
     dialled as 127.0.0.1 and ::1): use the collector's IP address in the endpoint and list that \
     address or its network";

/// The end of a refusal by [`LoopbackOnly`].
const LOOPBACK_ONLY: &str = "only 127.0.0.0/8, ::1, localhost and *.localhost are allowed";

/// The host in backquotes, as refusals name it.
fn quoted(host: &Host) -> String {
    format!("`{host}`")
}

/// "`host` is not a loopback address", saying so when it is the unspecified address.
fn not_loopback(host: &Host) -> String {
    if is_unspecified(host) {
        format!(
            "{} is the unspecified address, not a loopback address (for a collector on this \
             host use 127.0.0.1 or [::1])",
            quoted(host)
        )
    } else {
        format!("{} is not a loopback address", quoted(host))
    }
}

fn parse_entry(entry: &str) -> Result<Entry, EgressError> {
    let bad = |reason: String| EgressError::InvalidEntry {
        entry: mask_url(entry),
        reason,
    };
    if entry.is_empty() {
        return Err(bad("the entry is empty".to_owned()));
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the entry contains whitespace".to_owned()));
    }
    if entry.contains("://") {
        return Err(bad(
            "expected a host name, IP address or CIDR, not a URL".to_owned()
        ));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Entry::Ip(ip.to_canonical()));
    }
    if let Some((addr, prefix)) = entry.split_once('/') {
        return parse_cidr(addr, prefix).map(Entry::Net).map_err(bad);
    }
    if entry.contains(':') {
        return Err(bad(
            "expected a host name, IP address or CIDR, without a port or brackets".to_owned(),
        ));
    }
    if let Some(suffix) = entry.strip_prefix("*.") {
        let suffix = normalise(suffix);
        check_name(&suffix).map_err(bad)?;
        return Ok(Entry::Wildcard(format!(".{suffix}")));
    }
    if entry.contains('*') {
        return Err(bad(
            "a wildcard must be `*.` followed by a host name, as in `*.corp.example`".to_owned(),
        ));
    }
    let name = normalise(entry);
    check_name(&name).map_err(bad)?;
    Ok(Entry::Name(name))
}

fn parse_cidr(addr: &str, prefix: &str) -> Result<IpNet, String> {
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the prefix length `{prefix}` is not a number"));
    }
    let net = prefix
        .parse::<u8>()
        .ok()
        .and_then(|len| IpNet::new(addr, len).ok())
        .ok_or_else(|| format!("the prefix length {prefix} is longer than {max} bits"))?;
    if net.trunc() != net {
        return Err(format!(
            "the address has bits set beyond the prefix; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Lowercase, without one trailing dot.
fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Loopback addresses (IPv4-mapped ones included) and the names `localhost` and
/// `*.localhost`, in any case and with or without a trailing dot.
pub(super) fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Ip(ip) => ip.to_canonical().is_loopback(),
        Host::Name(name) => is_loopback_name(name),
    }
}

/// `localhost` and `*.localhost`, in any case and with or without a trailing dot.
pub(super) fn is_loopback_name(name: &str) -> bool {
    let name = normalise(name);
    name == "localhost" || name.ends_with(".localhost")
}

/// `0.0.0.0`, `::` and `::ffff:0.0.0.0`.
fn is_unspecified(host: &Host) -> bool {
    matches!(host, Host::Ip(ip) if ip.to_canonical().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(policy: &dyn EgressPolicy, host: &str) -> EgressDecision {
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.to_owned()),
        };
        let target = EgressTarget {
            signal: "traces",
            url: "http://unused.invalid",
            host: &host,
            port: 4317,
        };
        policy.check(&target)
    }

    #[test]
    fn loopback_only_allows_loopback_addresses_and_localhost_names() {
        let cases = [
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("localhost", true),
            ("LocalHost.", true),
            ("api.localhost", true),
            ("192.0.2.1", false),
            ("198.51.100.7", false),
            ("::ffff:192.0.2.1", false),
            ("2001:db8::1", false),
            ("::", false),
            ("0.0.0.0", false),
            ("collector.invalid", false),
            ("localhost.invalid.example", false),
            ("notlocalhost", false),
        ];
        for (host, allowed) in cases {
            assert_eq!(decide(&LoopbackOnly, host).is_allowed(), allowed, "{host}");
        }
    }

    #[test]
    fn loopback_only_says_which_host_it_refused() {
        let EgressDecision::Refuse { reason } = decide(&LoopbackOnly, "collector.invalid") else {
            panic!("collector.invalid was allowed");
        };
        assert!(
            reason.starts_with("`collector.invalid` is not a loopback address"),
            "{reason}"
        );
        let EgressDecision::Refuse { reason } = decide(&LoopbackOnly, "2001:db8::1") else {
            panic!("2001:db8::1 was allowed");
        };
        assert!(reason.starts_with("`2001:db8::1` is not"), "{reason}");
    }

    fn example_list() -> AllowList {
        match AllowList::parse(&[
            "collector.example.com",
            "*.corp.example",
            "10.0.0.0/8",
            "2001:db8::/32",
        ]) {
            Ok(list) => list,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn allow_list_matches_names_wildcards_addresses_and_networks() {
        let list = example_list();
        let cases = [
            ("collector.example.com", true),
            ("Collector.Example.COM.", true),
            ("eu.collector.example.com", false),
            ("example.com", false),
            ("otel.corp.example", true),
            ("a.b.corp.example", true),
            ("corp.example", false),
            ("evilcorp.example", false),
            ("corp.example.invalid", false),
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("::ffff:10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.0.2.1", false),
            ("2001:db8::1", true),
            ("2001:db8:ffff::1", true),
            ("2001:db9::1", false),
            ("127.0.0.1", true),
            ("::1", true),
            ("localhost", true),
            ("collector.invalid", false),
        ];
        for (host, allowed) in cases {
            assert_eq!(decide(&list, host).is_allowed(), allowed, "{host}");
        }
    }

    #[test]
    fn a_name_never_matches_a_cidr_or_address_entry() {
        let list = match AllowList::parse(&["10.0.0.0/8", "192.0.2.10"]) {
            Ok(list) => list,
            Err(e) => panic!("{e}"),
        };
        for name in ["10.corp.example", "collector.invalid", "192.0.2.10.example"] {
            let EgressDecision::Refuse { reason } = decide(&list, name) else {
                panic!("{name} was allowed by an address entry");
            };
            assert!(reason.contains(&format!("`{name}`")), "{reason}");
            assert!(reason.contains("10.0.0.0/8, 192.0.2.10"), "{reason}");
            assert!(reason.contains("no DNS lookup"), "{reason}");
        }
    }

    #[test]
    fn an_empty_allow_list_allows_loopback_only() {
        let list = match AllowList::parse(&[] as &[&str]) {
            Ok(list) => list,
            Err(e) => panic!("{e}"),
        };
        assert!(list.is_empty());
        assert!(decide(&list, "127.0.0.1").is_allowed());
        assert_eq!(
            decide(&list, "192.0.2.1"),
            EgressDecision::refuse(
                "`192.0.2.1` is not a loopback address and the egress allow-list is empty"
            )
        );
    }

    #[test]
    fn malformed_allow_list_entries_are_errors_naming_the_entry() {
        let cases = [
            ("", "empty"),
            (" ", "whitespace"),
            (" collector.example.com", "whitespace"),
            ("exa mple.com", "whitespace"),
            ("http://collector.example.com", "not a URL"),
            ("10.0.0.0/33", "longer than 32 bits"),
            ("2001:db8::/129", "longer than 128 bits"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/x", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.1.0.0/8", "did you mean `10.0.0.0/8`"),
            ("collector.example/8", "is not an IP address"),
            ("collector.example.com:4317", "without a port"),
            ("*", "wildcard"),
            ("*.", "empty"),
            ("*.*.example", "letters, digits and hyphens"),
            ("api.*.example", "wildcard"),
            ("collector_1.example", "letters, digits and hyphens"),
            ("-collector.example", "hyphen"),
            ("collector..example", "empty label"),
            ("127.1", "numeric"),
            ("b\u{fc}cher.example", "letters, digits and hyphens"),
        ];
        for (entry, why) in cases {
            match AllowList::parse(&[entry]) {
                Ok(list) => panic!("{entry:?} parsed as {list:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message
                            .starts_with(&format!("invalid egress allow-list entry `{entry}`: ")),
                        "{message}"
                    );
                    assert!(message.contains(why), "{entry:?}: {message}");
                }
            }
        }
        let long = format!("{}example", "abcdefghi.".repeat(25));
        assert!(AllowList::parse(&[long.as_str()]).is_err());
    }

    #[test]
    fn allow_list_entries_are_normalised() {
        let list = match AllowList::parse(&[
            "Collector.Example.COM.",
            "*.Corp.Example",
            "::ffff:192.0.2.1",
        ]) {
            Ok(list) => list,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            list.to_string(),
            "collector.example.com, *.corp.example, 192.0.2.1"
        );
        assert!(decide(&list, "192.0.2.1").is_allowed());
    }
}
