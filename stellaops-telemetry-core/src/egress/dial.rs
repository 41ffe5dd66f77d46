//! How a sealed pipeline's exporters reach the endpoint the policy allowed: through
//! [`SealedResolver`], which answers from the checked host alone and never asks the system
//! resolver, so no name leaves the process as a DNS query.

#[cfg(feature = "otlp-grpc")]
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
#[cfg(feature = "otlp-grpc")]
use std::pin::Pin;
use std::sync::Arc;
#[cfg(feature = "otlp-grpc")]
use std::task::{Context, Poll};

#[cfg(feature = "otlp-grpc")]
use hyper_util::client::legacy::connect::dns::Name as HyperName;

use super::Host;
use super::policies::is_loopback_name;

/// The addresses a loopback name (`localhost`, `*.localhost`) is dialled at, in this order.
const LOOPBACK: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// A lookup the sealed resolver refused: the name is not the host the policy checked.
#[derive(Debug, thiserror::Error)]
#[error(
    "sealed mode resolves no host names: `{0}` is not the endpoint host the egress policy checked"
)]
pub(crate) struct NameRefused(String);

/// The resolver of a sealed pipeline's exporter, built from the host the egress policy
/// allowed: an IP address is dialled as itself; a loopback name as 127.0.0.1, then ::1; any
/// other name, and any name but the checked one, is refused without a lookup.
///
/// HTTP clients parse IP literals themselves and only ask a resolver for names, so the
/// addresses dialled are exactly the ones the policy judged.
#[derive(Debug, Clone)]
pub(crate) struct SealedResolver {
    /// The checked host, lowercase and without a trailing dot.
    host: Arc<str>,
    addrs: Arc<[IpAddr]>,
}

impl SealedResolver {
    /// The resolver for `host`, which the sealed policy allowed.
    pub(crate) fn for_host(host: &Host) -> SealedResolver {
        let addrs: Arc<[IpAddr]> = match host {
            Host::Ip(ip) => Arc::new([*ip]),
            Host::Name(name) if is_loopback_name(name) => Arc::new(LOOPBACK),
            // Never allowed in sealed mode; dialling it fails instead of resolving it.
            Host::Name(_) => Arc::new([]),
        };
        SealedResolver {
            host: normalise(&host.to_string()).into(),
            addrs,
        }
    }

    /// The addresses the checked host is dialled at.
    pub(crate) fn addresses(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The addresses for `name` as a client asks for it (any case, maybe a trailing dot, an
    /// IPv6 address without brackets); port 0 lets the client use the URL's port.
    pub(crate) fn lookup(&self, name: &str) -> Result<Vec<SocketAddr>, NameRefused> {
        let wanted = normalise(name.trim_start_matches('[').trim_end_matches(']'));
        if wanted != *self.host || self.addrs.is_empty() {
            return Err(NameRefused(name.to_owned()));
        }
        Ok(self
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect())
    }
}

/// Lowercase, without one trailing dot.
fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// reqwest's hook (the blocking HTTP exporter).
#[cfg(feature = "otlp-http")]
impl reqwest::dns::Resolve for SealedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer = self
            .lookup(name.as_str())
            .map(|addrs| Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
        Box::pin(std::future::ready(answer))
    }
}

/// hyper-util's hook (the connector of the gRPC exporter's channel).
#[cfg(feature = "otlp-grpc")]
impl tower_service::Service<HyperName> for SealedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = NameRefused;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, NameRefused>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), NameRefused>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: HyperName) -> Self::Future {
        let answer = self.lookup(name.as_str()).map(Vec::into_iter);
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_endpoint;

    fn resolver(url: &str) -> SealedResolver {
        match parse_endpoint(url) {
            Ok((host, _)) => SealedResolver::for_host(&host),
            Err(e) => panic!("{e}"),
        }
    }

    fn ips(addrs: &[SocketAddr]) -> Vec<IpAddr> {
        addrs.iter().map(SocketAddr::ip).collect()
    }

    #[test]
    fn loopback_names_are_answered_as_loopback_addresses_in_every_spelling() {
        for (url, asked) in [
            ("http://localhost:4317", "localhost"),
            ("http://localhost.:4317", "localhost."),
            ("http://LOCALHOST:4317", "LOCALHOST"),
            ("http://Collector.LOCALHOST:4317", "collector.localhost"),
            ("http://collector.localhost.:4318", "Collector.Localhost."),
        ] {
            match resolver(url).lookup(asked) {
                Ok(addrs) => assert_eq!(ips(&addrs), LOOPBACK.to_vec(), "{url}"),
                Err(e) => panic!("{url}: {e}"),
            }
        }
    }

    #[test]
    fn addresses_answer_for_themselves_and_nothing_else_resolves() {
        let mapped = resolver("http://[::ffff:127.0.0.1]:4317");
        let expected: IpAddr = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert_eq!(mapped.addresses(), &[expected]);
        assert!(mapped.lookup("[::ffff:127.0.0.1]").is_ok());
        assert!(mapped.lookup("localhost").is_err());

        let v4 = resolver("http://127.0.0.1.:4317");
        assert!(v4.lookup("127.0.0.1.").is_ok());
        assert!(v4.lookup("127.0.0.2").is_err());

        // A name the sealed policy never allows dials nothing, even when asked for itself.
        let named = resolver("http://collector.example.com:4317");
        assert!(named.addresses().is_empty());
        let Err(e) = named.lookup("collector.example.com") else {
            panic!("a non-loopback name was answered");
        };
        assert!(e.to_string().contains("resolves no host names"), "{e}");
    }

    #[test]
    fn port_zero_leaves_the_port_to_the_url() {
        let addrs = resolver("http://localhost:4317")
            .lookup("localhost")
            .unwrap_or_default();
        assert!(addrs.iter().all(|a| a.port() == 0));
    }
}
