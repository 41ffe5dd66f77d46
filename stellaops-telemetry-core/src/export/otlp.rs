//! OTLP exporters (gRPC and HTTP/protobuf) built from validated settings, with TLS and mTLS.
//!
//! Nothing here invents an endpoint: when no endpoint is configured the OTLP builders keep
//! their own default (and their own reading of `OTEL_EXPORTER_OTLP_*`), because a value passed
//! to them would silently override the environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "otlp-grpc")]
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_otlp::{Compression, WithExportConfig};
#[cfg(feature = "otlp-http")]
use opentelemetry_otlp::{Protocol, WithHttpConfig};
#[cfg(feature = "otlp-http")]
use rustls_pki_types::pem::PemObject;
#[cfg(feature = "otlp-http")]
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::signal::Signal;
#[cfg(feature = "otlp-http")]
use super::tenant::TenantHttpClient;
#[cfg(feature = "otlp-grpc")]
use super::tenant::grpc_interceptor;
use super::tenant::{MAX_TENANT_HEADER_LEN, TENANT_HEADER, Tenancy, TenantCounts, header_value};
use super::tenant_metrics::MetricTransport;
use crate::config::{
    ConfigError, OtlpCompression, OtlpProtocol, OtlpSignalConfig, TelemetryConfig, check_headers,
    validate_endpoint,
};
use crate::egress::{
    EgressDecision, EgressError, EgressPolicy, EgressTarget, SealedResolver, mask_url,
    parse_endpoint,
};

/// The shared HTTP endpoint with `/v1/<signal>` appended to its path (before any query or
/// fragment).
fn signal_url(base: &str, signal: Signal) -> String {
    let end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|after| base[after..].find(['?', '#']).map(|j| after + j))
        .unwrap_or(base.len());
    let (path, tail) = base.split_at(end);
    format!(
        "{}/v1/{}{tail}",
        path.trim_end_matches('/'),
        signal.as_str()
    )
}

/// PEM material read from the certificate variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsMaterial {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The OTLP settings of one signal after the per-signal values were laid over the shared ones.
#[derive(Clone)]
pub(crate) struct OtlpSettings {
    pub(crate) signal: Signal,
    /// The endpoint and where it came from; `None` leaves the SDK's default.
    pub(crate) endpoint: Option<(String, String)>,
    pub(crate) protocol: OtlpProtocol,
    headers: BTreeMap<String, String>,
    pub(crate) timeout: Duration,
    compression: Option<OtlpCompression>,
    tls: TlsMaterial,
    /// Set in sealed mode once the policy allowed the endpoint: the exporter dials through it,
    /// so no name reaches the system resolver.
    sealed: Option<SealedResolver>,
    /// The tenant of records without one (a valid header value).
    default_tenant: Option<http::HeaderValue>,
}

impl std::fmt::Debug for OtlpSettings {
    /// Header values and the endpoint's credentials and query values are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSettings")
            .field("signal", &self.signal)
            .field(
                "endpoint",
                &self
                    .endpoint
                    .as_ref()
                    .map(|(url, origin)| (mask_url(url), origin)),
            )
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("tls", &(self.tls.ca.is_some(), self.tls.client.is_some()))
            .field(
                "sealed",
                &self.sealed.as_ref().map(SealedResolver::addresses),
            )
            .field("default_tenant", &self.default_tenant)
            .finish()
    }
}

/// What the egress policy said about one signal's OTLP endpoint.
pub(crate) enum Egress {
    /// The exporter may be built from these settings.
    Allowed(Box<OtlpSettings>),
    /// The exporter must not be built.
    Refused {
        /// The endpoint, masked as errors show URLs.
        endpoint: String,
        /// The policy's reason (the endpoint in it masked too).
        reason: String,
    },
}

/// Resolves the OTLP settings of `signal`, pins the endpoint its exporter would dial and asks
/// `policy` about it. In sealed mode an allowed exporter dials through a [`SealedResolver`]
/// built from the host the policy judged, and the OTLP crate's default endpoint is pinned too,
/// so nothing the exporter dials is resolved by the system.
pub(crate) fn check_egress(
    config: &TelemetryConfig,
    signal: Signal,
    policy: &dyn EgressPolicy,
    sealed: bool,
) -> Result<Egress, ConfigError> {
    let mut settings = OtlpSettings::resolve(config, signal)?;
    let url = settings.pin_endpoint()?;
    if sealed && settings.endpoint.is_none() {
        settings.endpoint = Some((url.clone(), "otlp.endpoint".to_owned()));
    }
    let (host, port) = parse_endpoint(&url).map_err(|e| {
        let reason = match e {
            EgressError::InvalidEndpoint { reason, .. } => reason,
            other => other.to_string(),
        };
        ConfigError::InvalidEndpoint {
            name: settings
                .endpoint
                .as_ref()
                .map(|(_, origin)| origin.clone())
                .unwrap_or_else(|| "otlp.endpoint".to_owned()),
            value: mask_url(&url),
            reason,
        }
    })?;
    let target = EgressTarget {
        signal: signal.as_str(),
        url: &url,
        host: &host,
        port,
    };
    match policy.check(&target) {
        EgressDecision::Allow => {
            if sealed {
                settings.sealed = Some(SealedResolver::for_host(&host));
            }
            Ok(Egress::Allowed(Box::new(settings)))
        }
        EgressDecision::Refuse { reason } => {
            let endpoint = mask_url(&url);
            // A custom policy may quote the URL; its query values stay out of the warning.
            let reason = if endpoint == url {
                reason
            } else {
                reason.replace(&url, &endpoint)
            };
            Ok(Egress::Refused { endpoint, reason })
        }
    }
}

/// The default tenant named by `field`, as a header value.
fn check_default_tenant(
    config: &TelemetryConfig,
    field: &str,
    tenant: &str,
) -> Result<http::HeaderValue, ConfigError> {
    let tenant = tenant.trim();
    header_value(tenant).ok_or_else(|| {
        let mut shown: String = tenant.chars().take(64).collect();
        if shown.len() < tenant.len() {
            shown.push('…');
        }
        ConfigError::InvalidValue {
            name: config.origin(field),
            value: shown,
            reason: format!(
                "a tenant id is 1 to {MAX_TENANT_HEADER_LEN} characters of `A-Z a-z 0-9 . _ - @ :` (it is sent as the {TENANT_HEADER} header)"
            ),
        }
    })
}

/// The export timeout when none is configured (the OTLP specification's 10 s).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn read_pem(config: &TelemetryConfig, field: &str, path: &PathBuf) -> Result<Vec<u8>, ConfigError> {
    let name = config.origin(field);
    let bytes = std::fs::read(path).map_err(|source| ConfigError::UnreadableCertificate {
        name: name.clone(),
        path: path.clone(),
        source,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConfigError::InvalidCertificate {
            name,
            path: path.clone(),
            reason: "no PEM block found".to_owned(),
        });
    }
    Ok(bytes)
}

impl OtlpSettings {
    /// Resolves and validates the settings of `signal`.
    pub(crate) fn resolve(config: &TelemetryConfig, signal: Signal) -> Result<Self, ConfigError> {
        let common = &config.otlp.common;
        let (specific, prefix): (&OtlpSignalConfig, &str) = match signal {
            Signal::Traces => (&config.otlp.traces, "otlp.traces."),
            Signal::Metrics => (&config.otlp.metrics, "otlp.metrics."),
            Signal::Logs => (&config.otlp.logs, "otlp.logs."),
        };
        let protocol = specific
            .protocol
            .or(common.protocol)
            .unwrap_or(OtlpProtocol::Grpc);
        check_built_in(config, prefix, protocol)?;
        let endpoint = match (&specific.endpoint, &common.endpoint) {
            (Some(url), _) => {
                let field = format!("{prefix}endpoint");
                let origin = config.origin(&field);
                validate_endpoint(&origin, url)?;
                Some((url.trim().to_owned(), origin))
            }
            (None, Some(url)) => {
                let origin = config.origin("otlp.endpoint");
                validate_endpoint(&origin, url)?;
                let url = url.trim();
                let url = match protocol {
                    OtlpProtocol::Grpc => url.to_owned(),
                    OtlpProtocol::HttpProtobuf => signal_url(url, signal),
                };
                Some((url, origin))
            }
            (None, None) => None,
        };
        let mut headers = common.headers.clone().unwrap_or_default();
        headers.extend(specific.headers.clone().unwrap_or_default());
        check_headers(&format!("{prefix}headers"), &headers)?;
        let timeout = specific
            .timeout_ms
            .or(common.timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let compression = specific.compression.or(common.compression);
        let default_tenant = match (&specific.default_tenant, &common.default_tenant) {
            (Some(t), _) => Some((t, format!("{prefix}default_tenant"))),
            (None, Some(t)) => Some((t, "otlp.default_tenant".to_owned())),
            (None, None) => None,
        };
        let default_tenant = match default_tenant {
            Some((tenant, field)) => Some(check_default_tenant(config, &field, tenant)?),
            None => None,
        };

        let pick = |s: &Option<PathBuf>, c: &Option<PathBuf>, field: &str| match (s, c) {
            (Some(p), _) => Some((p.clone(), format!("{prefix}{field}"))),
            (None, Some(p)) => Some((p.clone(), format!("otlp.{field}"))),
            (None, None) => None,
        };
        let ca = pick(&specific.certificate, &common.certificate, "certificate");
        let key = pick(&specific.client_key, &common.client_key, "client_key");
        let cert = pick(
            &specific.client_certificate,
            &common.client_certificate,
            "client_certificate",
        );
        let mut tls = TlsMaterial::default();
        if let Some((path, field)) = &ca {
            tls.ca = Some(read_pem(config, field, path)?);
        }
        match (cert, key) {
            (Some((cp, cf)), Some((kp, kf))) => {
                tls.client = Some((read_pem(config, &cf, &cp)?, read_pem(config, &kf, &kp)?));
            }
            (Some((_, field)), None) | (None, Some((_, field))) => {
                return Err(ConfigError::InvalidValue {
                    name: config.origin(&field),
                    value: "(set)".to_owned(),
                    reason: "mTLS needs both the client certificate and the client key".to_owned(),
                });
            }
            (None, None) => {}
        }
        Ok(OtlpSettings {
            signal,
            endpoint,
            protocol,
            headers,
            timeout,
            compression,
            tls,
            sealed: None,
            default_tenant,
        })
    }

    /// The endpoint the exporter will dial: the configured one; else the one the OTLP
    /// exporter would read from the process environment itself (then pinned, so what the
    /// egress policy checks is what gets dialled); else the OTLP exporter's own default,
    /// which is not passed to it.
    pub(crate) fn pin_endpoint(&mut self) -> Result<String, ConfigError> {
        if let Some((url, _)) = &self.endpoint {
            return Ok(url.clone());
        }
        let signal_var = format!(
            "OTEL_EXPORTER_OTLP_{}_ENDPOINT",
            self.signal.as_str().to_ascii_uppercase()
        );
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let from_env = match read(&signal_var) {
            Some(url) => Some((url.trim().to_owned(), signal_var)),
            None => read("OTEL_EXPORTER_OTLP_ENDPOINT").map(|url| {
                let url = match self.protocol {
                    OtlpProtocol::Grpc => url.trim().trim_end_matches('/').to_owned(),
                    OtlpProtocol::HttpProtobuf => signal_url(url.trim(), self.signal),
                };
                (url, "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned())
            }),
        };
        match from_env {
            Some((url, origin)) => {
                validate_endpoint(&origin, &url)?;
                self.endpoint = Some((url.clone(), origin));
                Ok(url)
            }
            None => Ok(match self.protocol {
                OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
                OtlpProtocol::HttpProtobuf => {
                    format!("http://localhost:4318/v1/{}", self.signal.as_str())
                }
            }),
        }
    }

    /// How this signal's OTLP exporter names the tenants of its requests, counting into
    /// `counts`.
    pub(crate) fn tenancy(&self, counts: &Arc<TenantCounts>) -> Tenancy {
        Tenancy {
            signal: self.signal,
            default: self.default_tenant.clone(),
            counts: counts.clone(),
        }
    }

    fn is_https(&self) -> bool {
        self.endpoint.as_ref().is_some_and(|(url, _)| {
            url.trim_start()
                .to_ascii_lowercase()
                .starts_with("https://")
        })
    }

    #[cfg(feature = "otlp-grpc")]
    fn tonic_tls(&self) -> Option<tonic::transport::ClientTlsConfig> {
        if self.tls.ca.is_none() && self.tls.client.is_none() && !self.is_https() {
            return None;
        }
        let mut tls = tonic::transport::ClientTlsConfig::new();
        tls = match &self.tls.ca {
            Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &self.tls.client {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        Some(tls)
    }

    /// The static headers as a header map.
    fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in &self.headers {
            // Validated by `check_headers`; an entry that still fails is skipped, not fatal.
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                map.insert(name, value);
            }
        }
        map
    }

    #[cfg(feature = "otlp-grpc")]
    fn metadata(&self) -> tonic::metadata::MetadataMap {
        tonic::metadata::MetadataMap::from_headers(self.header_map())
    }

    fn build_error(&self, reason: impl std::fmt::Display) -> ConfigError {
        let (name, value) = self
            .endpoint
            .as_ref()
            .map(|(url, origin)| (origin.clone(), mask_url(url)))
            .unwrap_or_else(|| ("otlp.endpoint".to_owned(), "(sdk default)".to_owned()));
        ConfigError::InvalidEndpoint {
            name,
            value,
            reason: format!(
                "cannot build the {} exporter: {reason}",
                self.signal.as_str()
            ),
        }
    }

    /// The blocking HTTP client, pinned explicitly so feature unification elsewhere cannot
    /// swap in an async client (which panics without a reactor in the SDK's threads).
    #[cfg(feature = "otlp-http")]
    fn http_client(&self) -> Result<reqwest::blocking::Client, ConfigError> {
        let provider = Arc::new(crate::tls::provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.tls.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert =
                        cert.map_err(|e| self.build_error(format!("CA certificate: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| self.build_error(format!("CA certificate: {e}")))?;
                }
            }
            None => {
                // Only an https endpoint needs the system roots; reading them is I/O.
                if self.is_https() {
                    let native = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(native.certs);
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.build_error(e))?
            .with_root_certificates(roots);
        let tls = match &self.tls.client {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.build_error(format!("client certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| self.build_error(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| self.build_error(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        // reqwest's blocking client refuses to be built inside an async runtime (a service
        // calling `install()` from `#[tokio::main]`), so it is built on a thread of its own.
        let timeout = self.timeout;
        let sealed = self.sealed.clone();
        std::thread::Builder::new()
            .name("stellaops-telemetry-http-client".to_owned())
            .spawn(move || {
                // No proxy from the environment and no redirects: the egress policy checked
                // this endpoint, and only this endpoint may be dialled.
                let builder = reqwest::blocking::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout);
                match sealed {
                    Some(resolver) => builder.dns_resolver(Arc::new(resolver)).build(),
                    None => builder.build(),
                }
            })
            .map_err(|e| self.build_error(format!("cannot start the HTTP client thread: {e}")))?
            .join()
            .map_err(|_| self.build_error("the HTTP client could not be built"))?
            .map_err(|e| self.build_error(e))
    }

    /// The gRPC channel of a sealed exporter: tonic's connector, asking `resolver` instead of
    /// the system for names, with the TLS settings the OTLP crate would apply (the server
    /// name checked is still the endpoint's host).
    #[cfg(feature = "otlp-grpc")]
    fn sealed_channel(
        &self,
        resolver: &SealedResolver,
    ) -> Result<tonic::transport::Channel, ConfigError> {
        let Some((url, _)) = &self.endpoint else {
            return Err(self.build_error("sealed mode needs an explicit endpoint"));
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| self.build_error(e))?;
        if let Some(tls) = self.tonic_tls() {
            endpoint = endpoint.tls_config(tls).map_err(|e| self.build_error(e))?;
        }
        let mut connector =
            hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(resolver.clone());
        connector.enforce_http(false);
        connector.set_nodelay(true);
        Ok(endpoint
            .timeout(self.timeout)
            .connect_with_connector_lazy(connector))
    }

    fn compression(&self) -> Option<Compression> {
        match self.compression {
            Some(OtlpCompression::Gzip) => Some(Compression::Gzip),
            _ => None,
        }
    }
}

/// Builds one OTLP exporter of type `$exporter` from `$settings` (both transports).
macro_rules! build_otlp {
    ($exporter:path, $settings:expr) => {{
        let s: &OtlpSettings = $settings;
        match s.protocol {
            #[cfg(feature = "otlp-grpc")]
            OtlpProtocol::Grpc => {
                let mut b = <$exporter>::builder()
                    .with_tonic()
                    .with_timeout(s.timeout)
                    .with_metadata(s.metadata())
                    .with_interceptor(grpc_interceptor);
                if let Some(resolver) = &s.sealed {
                    b = b.with_channel(s.sealed_channel(resolver)?);
                } else {
                    if let Some((url, _)) = &s.endpoint {
                        b = b.with_endpoint(url.clone());
                    }
                    if let Some(tls) = s.tonic_tls() {
                        b = b.with_tls_config(tls);
                    }
                }
                if let Some(c) = s.compression() {
                    b = b.with_compression(c);
                }
                b.build().map_err(|e| s.build_error(e))
            }
            #[cfg(feature = "otlp-http")]
            OtlpProtocol::HttpProtobuf => {
                let mut b = <$exporter>::builder()
                    .with_http()
                    .with_http_client(TenantHttpClient(s.http_client()?))
                    .with_protocol(Protocol::HttpBinary)
                    .with_timeout(s.timeout);
                if !s.headers.is_empty() {
                    b = b.with_headers(s.headers.clone().into_iter().collect());
                }
                if let Some((url, _)) = &s.endpoint {
                    b = b.with_endpoint(url.clone());
                }
                if let Some(c) = s.compression() {
                    b = b.with_compression(c);
                }
                b.build().map_err(|e| s.build_error(e))
            }
            // Refused when the settings were resolved; kept for the builds that leave a
            // transport out.
            #[allow(unreachable_patterns)]
            other => Err(not_built_in(other)),
        }
    }};
}

/// The feature that provides `protocol`.
fn protocol_feature(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::Grpc => "otlp-grpc",
        OtlpProtocol::HttpProtobuf => "otlp-http",
    }
}

fn protocol_built_in(protocol: OtlpProtocol) -> bool {
    match protocol {
        OtlpProtocol::Grpc => cfg!(feature = "otlp-grpc"),
        OtlpProtocol::HttpProtobuf => cfg!(feature = "otlp-http"),
    }
}

fn not_built_in(protocol: OtlpProtocol) -> ConfigError {
    ConfigError::NotBuiltIn {
        what: format!("OTLP over {}", protocol.as_str()),
        feature: protocol_feature(protocol),
    }
}

/// Refuses a protocol this build leaves out, naming the setting that chose it.
fn check_built_in(
    config: &TelemetryConfig,
    prefix: &str,
    protocol: OtlpProtocol,
) -> Result<(), ConfigError> {
    if protocol_built_in(protocol) {
        return Ok(());
    }
    let field = format!("{prefix}protocol");
    let origin = if config.origins.contains_key(&field) {
        config.origin(&field)
    } else if config.origins.contains_key("otlp.protocol") {
        config.origin("otlp.protocol")
    } else {
        "the default OTLP protocol (grpc)".to_owned()
    };
    Err(ConfigError::NotBuiltIn {
        what: format!("OTLP over {} ({origin})", protocol.as_str()),
        feature: protocol_feature(protocol),
    })
}

pub(crate) fn span_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::SpanExporter, ConfigError> {
    build_otlp!(opentelemetry_otlp::SpanExporter, s)
}

pub(crate) fn log_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::LogExporter, ConfigError> {
    build_otlp!(opentelemetry_otlp::LogExporter, s)
}

pub(crate) fn metric_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::MetricExporter, ConfigError> {
    build_otlp!(opentelemetry_otlp::MetricExporter, s)
}

/// The transport of a metric collection split by tenant, built from the settings of the
/// metric exporter: the endpoint it dials (the HTTP one with its `/v1/metrics` path), its
/// static headers, TLS material, compression and timeout; in sealed mode the same resolver.
/// A gRPC channel connects lazily, on the runtime current at construction.
pub(crate) fn metric_transport(s: &OtlpSettings) -> Result<MetricTransport, ConfigError> {
    let mut pinned = s.clone();
    let url = pinned.pin_endpoint()?;
    let gzip = matches!(s.compression, Some(OtlpCompression::Gzip));
    match s.protocol {
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            let channel = match &s.sealed {
                Some(resolver) => s.sealed_channel(resolver)?,
                None => {
                    let mut endpoint = tonic::transport::Endpoint::from_shared(url)
                        .map_err(|e| s.build_error(e))?;
                    if let Some(tls) = s.tonic_tls() {
                        endpoint = endpoint.tls_config(tls).map_err(|e| s.build_error(e))?;
                    }
                    endpoint.timeout(s.timeout).connect_lazy()
                }
            };
            let mut client =
                opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient::new(channel);
            if gzip {
                client = client
                    .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            }
            Ok(MetricTransport::Grpc {
                client,
                metadata: s.metadata(),
                timeout: s.timeout,
            })
        }
        #[cfg(feature = "otlp-http")]
        OtlpProtocol::HttpProtobuf => Ok(MetricTransport::Http {
            client: s.http_client()?,
            url,
            headers: s.header_map(),
            gzip,
        }),
        #[allow(unreachable_patterns)]
        other => Err(not_built_in(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_path_goes_before_the_query() {
        let cases = [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/logs"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/logs"),
            ("http://h:4318/otlp/", "http://h:4318/otlp/v1/logs"),
            ("http://h:4318/?sig=x", "http://h:4318/v1/logs?sig=x"),
            ("http://h:4318#f", "http://h:4318/v1/logs#f"),
        ];
        for (base, url) in cases {
            assert_eq!(signal_url(base, Signal::Logs), url, "{base}");
        }
    }
}
