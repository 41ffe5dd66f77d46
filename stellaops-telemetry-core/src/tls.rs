//! The TLS crypto provider of the SDK's own clients (OTLP over HTTP, the split metric
//! requests, incident webhooks, replay): ring with the `tls-ring` feature (the default), else
//! aws-lc-rs with `tls-aws-lc`. Each client is given the provider explicitly; the
//! process-wide default provider is never installed or changed, so the application's own
//! choice stands.

#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]
compile_error!(
    "stellaops-telemetry-core's OTLP transports need a TLS provider: enable `tls-ring` or `tls-aws-lc`"
);

/// The crypto provider the SDK's clients use.
#[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
#[cfg(feature = "tls-ring")]
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The crypto provider the SDK's clients use.
#[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
#[cfg(all(feature = "tls-aws-lc", not(feature = "tls-ring")))]
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}
