//! Throwaway PKI for TLS / mTLS tests, generated in memory with rcgen.
//!
//! `TestPki::generate()` creates:
//! * a self-signed CA (`ca.pem`),
//! * a server certificate for DNS `localhost` and IP `127.0.0.1`, signed by the CA
//!   (`server.pem` / `server.key`, EKU serverAuth),
//! * a client certificate signed by the CA (`client.pem` / `client.key`, EKU clientAuth).
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
//!
//! The rustls helpers always pass the ring provider explicitly and never install a
//! process-wide default `CryptoProvider` (see `receiver.rs` for why that matters).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA plus a server and a client certificate issued by it.
#[derive(Clone)]
pub struct TestPki {
    /// CA certificate, PEM.
    pub ca_pem: String,
    /// Server certificate (localhost, 127.0.0.1), PEM.
    pub server_cert_pem: String,
    /// Server private key, PKCS#8 PEM.
    pub server_key_pem: String,
    /// Client certificate, PEM.
    pub client_cert_pem: String,
    /// Client private key, PKCS#8 PEM.
    pub client_key_pem: String,
    ca_der: Vec<u8>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    client_cert_der: Vec<u8>,
    client_key_der: Vec<u8>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

/// Paths of the PEM files written by [`TestPki::write_to`].
#[derive(Clone, Debug)]
pub struct PkiPaths {
    /// Directory the files were written to.
    pub dir: PathBuf,
    /// `ca.pem`
    pub ca: PathBuf,
    /// `server.pem`
    pub server_cert: PathBuf,
    /// `server.key`
    pub server_key: PathBuf,
    /// `client.pem`
    pub client_cert: PathBuf,
    /// `client.key`
    pub client_key: PathBuf,
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "StellaOps Telemetry SDK tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl TestPki {
    /// Generates a fresh CA, server and client certificate. Each call yields an
    /// independent PKI, so two calls can be used to test "wrong CA" rejections.
    pub fn generate() -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = dn("StellaOps Test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let server_key = KeyPair::generate()?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        server_params.distinguished_name = dn("localhost");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(vec!["stellaops-test-client".to_owned()])?;
        client_params.distinguished_name = dn("stellaops-test-client");
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_cert = client_params.signed_by(&client_key, &ca)?;

        Ok(Self {
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca_der: ca.der().to_vec(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            client_cert_der: client_cert.der().to_vec(),
            client_key_der: client_key.serialize_der(),
        })
    }

    /// Writes `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key` into `dir`
    /// (created if missing) and returns their paths.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> io::Result<PkiPaths> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let paths = PkiPaths {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            dir,
        };
        std::fs::write(&paths.ca, &self.ca_pem)?;
        std::fs::write(&paths.server_cert, &self.server_cert_pem)?;
        std::fs::write(&paths.server_key, &self.server_key_pem)?;
        std::fs::write(&paths.client_cert, &self.client_cert_pem)?;
        std::fs::write(&paths.client_key, &self.client_key_pem)?;
        Ok(paths)
    }

    /// CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.ca_der.clone())
    }

    /// Server certificate chain (leaf only), DER.
    pub fn server_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.server_cert_der.clone())]
    }

    /// Server private key, DER.
    pub fn server_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()))
    }

    /// Client certificate chain (leaf only), DER.
    pub fn client_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.client_cert_der.clone())]
    }

    /// Client private key, DER.
    pub fn client_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_der.clone()))
    }

    /// Root store containing only this PKI's CA.
    pub fn root_store(&self) -> Result<rustls::RootCertStore, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der())?;
        Ok(roots)
    }

    /// A rustls client config (ring provider passed explicitly) trusting only this CA and,
    /// if `present_client_cert`, presenting the client certificate. Suitable for
    /// `reqwest::ClientBuilder::tls_backend_preconfigured`.
    pub fn rustls_client_config(
        &self,
        present_client_cert: bool,
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(self.root_store()?);
        if present_client_cert {
            builder.with_client_auth_cert(self.client_cert_chain(), self.client_key_der())
        } else {
            Ok(builder.with_no_client_auth())
        }
    }

    /// A tonic client TLS config trusting only this CA, verifying the server as `localhost`
    /// and, if `present_client_cert`, presenting the client certificate.
    pub fn tonic_client_tls(&self, present_client_cert: bool) -> tonic::transport::ClientTlsConfig {
        let cfg = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if present_client_cert {
            cfg.identity(tonic::transport::Identity::from_pem(
                &self.client_cert_pem,
                &self.client_key_pem,
            ))
        } else {
            cfg
        }
    }
}
