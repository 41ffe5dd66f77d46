//! Ed25519 signing keys for bundles, in their PEM forms: PKCS#8 (`PRIVATE KEY`) for the
//! signing key, SubjectPublicKeyInfo (`PUBLIC KEY`) for the verifying key, as written by
//! `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.

use std::fmt;
use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use spki::der::asn1::BitStringRef;
use spki::der::{Decode, Encode};
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};

use super::BundleError;

/// The Ed25519 algorithm identifier (id-Ed25519, RFC 8410).
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
const PEM_TEXT: &str = "PEM text";
/// The length of a key id in hex digits (128 bits of the public key's sha256).
const KEY_ID_HEX_LEN: usize = 32;

/// The Ed25519 key a bundle is signed with.
///
/// ```
/// use stellaops_telemetry_core::bundle::SigningKey;
///
/// let key = SigningKey::generate()?;
/// let pem = key.to_pem();
/// assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
/// assert_eq!(SigningKey::from_pem(&pem)?.key_id(), key.key_id());
/// # Ok::<(), stellaops_telemetry_core::BundleError>(())
/// ```
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl SigningKey {
    /// A new key from the system's random source.
    ///
    /// # Errors
    ///
    /// [`BundleError::KeyGeneration`] when the random source fails.
    pub fn generate() -> Result<SigningKey, BundleError> {
        let rng = ring::rand::SystemRandom::new();
        let document =
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| BundleError::KeyGeneration)?;
        Self::from_pkcs8(document.as_ref(), PEM_TEXT)
    }

    /// Reads a PKCS#8 `PRIVATE KEY` PEM holding an Ed25519 key (version 1 or 2).
    ///
    /// # Errors
    ///
    /// [`BundleError::Key`] when the text is not PEM, not a private key, or not Ed25519.
    pub fn from_pem(pem: &str) -> Result<SigningKey, BundleError> {
        Self::from_pem_named(pem, PEM_TEXT)
    }

    /// Reads the key from a PEM file; errors name the file.
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] when the file cannot be read, [`BundleError::Key`] as for
    /// [`SigningKey::from_pem`].
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, BundleError> {
        let text = read_key_file(path)?;
        Self::from_pem_named(&text, &path.display().to_string())
    }

    fn from_pem_named(text: &str, origin: &str) -> Result<SigningKey, BundleError> {
        let der = pem_contents(text, PRIVATE_KEY_LABEL, origin)?;
        Self::from_pkcs8(&der, origin)
    }

    fn from_pkcs8(der: &[u8], origin: &str) -> Result<SigningKey, BundleError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| BundleError::Key {
                origin: origin.to_owned(),
                reason: format!("not an Ed25519 PKCS#8 private key ({e})"),
            })?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The PKCS#8 `PRIVATE KEY` PEM form (LF line endings).
    pub fn to_pem(&self) -> String {
        encode_pem(PRIVATE_KEY_LABEL, self.pkcs8.clone())
    }

    /// The matching public key, for verification.
    pub fn public_key(&self) -> VerifyingKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey { raw }
    }

    /// The key id: the first 32 hex digits of the sha256 of the raw 32-byte public key.
    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    /// Signs `message` (Ed25519 signatures are deterministic: same key and message, same bytes).
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// The Ed25519 public key bundles are verified with.
///
/// ```
/// use stellaops_telemetry_core::bundle::{SigningKey, VerifyingKey};
///
/// let public = SigningKey::generate()?.public_key();
/// let pem = public.to_pem();
/// assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
/// assert_eq!(VerifyingKey::from_pem(&pem)?, public);
/// assert_eq!(public.key_id().len(), 32);
/// # Ok::<(), stellaops_telemetry_core::BundleError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey {
    raw: [u8; 32],
}

impl VerifyingKey {
    /// The key from its raw 32 bytes.
    pub const fn from_bytes(raw: [u8; 32]) -> VerifyingKey {
        VerifyingKey { raw }
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.raw
    }

    /// Reads a SubjectPublicKeyInfo `PUBLIC KEY` PEM holding an Ed25519 key.
    ///
    /// # Errors
    ///
    /// [`BundleError::Key`] when the text is not PEM, not a public key, or not Ed25519.
    pub fn from_pem(pem: &str) -> Result<VerifyingKey, BundleError> {
        Self::from_pem_named(pem, PEM_TEXT)
    }

    /// Reads the key from a PEM file; errors name the file.
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] when the file cannot be read, [`BundleError::Key`] as for
    /// [`VerifyingKey::from_pem`].
    pub fn from_pem_file(path: &Path) -> Result<VerifyingKey, BundleError> {
        let text = read_key_file(path)?;
        Self::from_pem_named(&text, &path.display().to_string())
    }

    fn from_pem_named(text: &str, origin: &str) -> Result<VerifyingKey, BundleError> {
        let der = pem_contents(text, PUBLIC_KEY_LABEL, origin)?;
        let bad = |reason: String| BundleError::Key {
            origin: origin.to_owned(),
            reason,
        };
        let info = SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| bad(format!("not a SubjectPublicKeyInfo ({e})")))?;
        if info.algorithm.oid != ID_ED25519 || info.algorithm.parameters.is_some() {
            return Err(bad(format!(
                "algorithm {} is not Ed25519",
                info.algorithm.oid
            )));
        }
        let raw = info
            .subject_public_key
            .as_bytes()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| bad("an Ed25519 public key is 32 bytes".to_owned()))?;
        Ok(VerifyingKey { raw })
    }

    /// The SubjectPublicKeyInfo `PUBLIC KEY` PEM form (LF line endings).
    pub fn to_pem(&self) -> String {
        encode_pem(PUBLIC_KEY_LABEL, self.spki_der())
    }

    fn spki_der(&self) -> Vec<u8> {
        let info =
            BitStringRef::from_bytes(&self.raw).map(|subject_public_key| SubjectPublicKeyInfoRef {
                algorithm: AlgorithmIdentifierRef {
                    oid: ID_ED25519,
                    parameters: None,
                },
                subject_public_key,
            });
        // Encoding a 32-byte key under a fixed identifier cannot fail; the fixed RFC 8410
        // prefix stands in should the encoder ever refuse.
        info.and_then(|info| info.to_der()).unwrap_or_else(|_| {
            let mut der = ED25519_SPKI_PREFIX.to_vec();
            der.extend_from_slice(&self.raw);
            der
        })
    }

    /// The key id: the first 32 hex digits of the sha256 of the raw 32-byte public key.
    pub fn key_id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.raw);
        let mut id = super::hex(digest.as_ref());
        id.truncate(KEY_ID_HEX_LEN);
        id
    }

    /// Whether `signature` is this key's Ed25519 signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo before the 32 key bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

fn read_key_file(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|source| BundleError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn pem_contents(text: &str, label: &str, origin: &str) -> Result<Vec<u8>, BundleError> {
    let bad = |reason: String| BundleError::Key {
        origin: origin.to_owned(),
        reason,
    };
    let block = pem::parse(text).map_err(|e| bad(format!("not PEM ({e})")))?;
    if block.tag() != label {
        return Err(bad(format!(
            "expected a `{label}` PEM block, found `{}`",
            block.tag()
        )));
    }
    Ok(block.into_contents())
}

fn encode_pem(label: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spki_encoder_agrees_with_the_fixed_prefix() {
        let key = VerifyingKey::from_bytes([7; 32]);
        let der = key.spki_der();
        assert_eq!(der[..12], ED25519_SPKI_PREFIX);
        assert_eq!(der[12..], [7; 32]);
    }

    #[test]
    fn an_openssl_key_reads_and_signs() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 version 1, no public key inside).
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIJZc5k3jsIErnIV8t+nOZx37cbERiUXFS4MU4Ki1mgNG\n\
                   -----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        // `openssl pkey -pubout` of the same key.
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEADh4o7b2OsK23DReFBRAlIf0tUZbSZNOn9/bH7bnPIR4=\n-----END PUBLIC KEY-----\n";
        assert_eq!(key.public_key().to_pem(), public);
        assert_eq!(VerifyingKey::from_pem(public).unwrap(), key.public_key());
        let signature = key.sign(b"hello");
        assert!(key.public_key().verifies(b"hello", &signature));
        assert!(!key.public_key().verifies(b"hellO", &signature));
    }

    #[test]
    fn wrong_labels_and_algorithms_name_the_origin() {
        let key = SigningKey::generate().unwrap();
        let err = VerifyingKey::from_pem(&key.to_pem()).unwrap_err();
        assert!(err.to_string().contains("PEM text"), "{err}");
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        let err = SigningKey::from_pem("garbage").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid key in PEM text"),
            "{err}"
        );
    }
}
