//! The DSSE envelope that signs `manifest.json`: `signatures/manifest.sig`.
//!
//! The signature is Ed25519 over the DSSE pre-authentication encoding (PAE) of the payload
//! type and the exact bytes of `manifest.json`, so neither can be swapped for another.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{BundleError, SigningKey, VerifyingKey};

/// The payload type of a bundle manifest's envelope.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.stellaops.telemetry.manifest+json";

/// The most signatures one envelope may carry.
const MAX_SIGNATURES: usize = 16;

/// A DSSE envelope, as stored in `signatures/manifest.sig` (keys in sorted order, no spaces).
///
/// ```
/// use stellaops_telemetry_core::bundle::{Envelope, SigningKey};
///
/// let key = SigningKey::generate()?;
/// let envelope = Envelope::sign(b"{}", &key);
/// assert_eq!(envelope.signatures[0].keyid, key.key_id());
/// assert_eq!(envelope.verify(b"{}", &key.public_key())?, key.key_id());
/// # Ok::<(), stellaops_telemetry_core::BundleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The signed bytes (`manifest.json`), base64 with padding.
    pub payload: String,
    /// [`MANIFEST_PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One signature per key (a bundle is signed by one key).
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature in an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// The signing key's id ([`VerifyingKey::key_id`]).
    pub keyid: String,
    /// The Ed25519 signature over the PAE, base64 with padding.
    pub sig: String,
}

/// The DSSE pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal.
///
/// ```
/// use stellaops_telemetry_core::bundle::pae;
///
/// assert_eq!(pae("t", b"body"), b"DSSEv1 1 t 4 body");
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// The payload type of an offline kit manifest's envelope (`stella-telemetry kit`).
pub const KIT_MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.stellaops.telemetry.kit-manifest+json";

impl Envelope {
    /// Signs `manifest` (the exact bytes of `manifest.json`) with `key`, as a bundle manifest.
    pub fn sign(manifest: &[u8], key: &SigningKey) -> Envelope {
        Envelope::sign_as(MANIFEST_PAYLOAD_TYPE, manifest, key)
    }

    /// Signs `payload` as `payload_type` with `key` (the type is signed too, so a payload
    /// signed as one type never verifies as another).
    pub fn sign_as(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let signature = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![EnvelopeSignature {
                keyid: key.key_id(),
                sig: STANDARD.encode(signature),
            }],
        }
    }

    /// The envelope's bytes: compact JSON with keys in sorted order.
    ///
    /// # Errors
    ///
    /// [`BundleError::Encode`] if serialisation fails (it does not for these types).
    pub fn to_json(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec(self).map_err(|source| BundleError::Encode {
            what: "signature envelope",
            source,
        })
    }

    /// Reads an envelope from `signatures/manifest.sig`.
    ///
    /// # Errors
    ///
    /// [`BundleError::MalformedSignature`] when it is not an envelope of this shape.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::MalformedSignature {
            reason: e.to_string(),
        })
    }

    /// The key ids the envelope names, in order.
    pub fn key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.keyid.clone()).collect()
    }

    /// Checks that the envelope signs exactly `manifest` with `key`; returns the key id.
    ///
    /// # Errors
    ///
    /// [`BundleError::MalformedSignature`] for a wrong payload type, a payload other than
    /// `manifest`, or bad base64; [`BundleError::UnknownKeyId`] when no signature names the
    /// key; [`BundleError::BadSignature`] when its signature does not verify.
    pub fn verify(&self, manifest: &[u8], key: &VerifyingKey) -> Result<String, BundleError> {
        self.verify_as(MANIFEST_PAYLOAD_TYPE, manifest, key)
    }

    /// Checks that the envelope signs exactly `payload` as `payload_type` with `key`;
    /// returns the key id.
    ///
    /// # Errors
    ///
    /// As [`Envelope::verify`].
    pub fn verify_as(
        &self,
        payload_type: &str,
        manifest: &[u8],
        key: &VerifyingKey,
    ) -> Result<String, BundleError> {
        let malformed = |reason: &str| BundleError::MalformedSignature {
            reason: reason.to_owned(),
        };
        if self.payload_type != payload_type {
            return Err(malformed("the payload type is not the one expected"));
        }
        if self.signatures.is_empty() || self.signatures.len() > MAX_SIGNATURES {
            return Err(malformed(
                "the envelope must hold between 1 and 16 signatures",
            ));
        }
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|_| malformed("the payload is not base64"))?;
        if payload != manifest {
            return Err(malformed(
                "the signed payload is not the manifest.json it signs",
            ));
        }
        let key_id = key.key_id();
        let signature = self
            .signatures
            .iter()
            .find(|s| s.keyid == key_id)
            .ok_or_else(|| BundleError::UnknownKeyId {
                expected: key_id.clone(),
                found: self.key_ids(),
            })?;
        let sig = STANDARD
            .decode(&signature.sig)
            .map_err(|_| malformed("the signature is not base64"))?;
        if !key.verifies(&pae(&self.payload_type, &payload), &sig) {
            return Err(BundleError::BadSignature { key_id });
        }
        Ok(key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_compact_sorted_json() {
        let key = SigningKey::generate().unwrap();
        let json = Envelope::sign(b"{\"a\":1}", &key).to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.starts_with("{\"payload\":\"eyJhIjoxfQ==\",\"payloadType\":"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), json);
    }

    #[test]
    fn another_key_or_payload_is_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let envelope = Envelope::sign(b"m", &key);
        assert!(matches!(
            envelope.verify(b"m", &other.public_key()),
            Err(BundleError::UnknownKeyId { .. })
        ));
        assert!(matches!(
            envelope.verify(b"n", &key.public_key()),
            Err(BundleError::MalformedSignature { .. })
        ));
        let mut forged = envelope.clone();
        forged.signatures[0].keyid = other.key_id();
        assert!(matches!(
            forged.verify(b"m", &other.public_key()),
            Err(BundleError::BadSignature { .. })
        ));
    }
}
