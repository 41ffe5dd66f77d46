//! A `jsonwebtoken` crypto provider backed by `ring`, which rustls already brings into the
//! graph: the tower crate verifies tokens without a second crypto library.
//!
//! It is installed as the process default only when none is: an application that enables
//! one of jsonwebtoken's own backends (or installs its own provider first) keeps it, and
//! this crate's verifier uses that one.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};
use ring::{digest, hmac};

/// The ring-backed provider: every algorithm jsonwebtoken names (HS, RS, PS, ES256/384,
/// EdDSA), for verifying and signing.
pub(crate) static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: rsa_components_from_public_key,
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: ed_components_from_private_key,
        compute_digest,
    },
};

/// Makes sure jsonwebtoken has a provider: installs [`RING_PROVIDER`] unless one is already
/// there (chosen by jsonwebtoken's features or installed by the application).
pub(crate) fn ensure_installed() {
    if CryptoProvider::try_get_default().is_none() {
        // Losing a race to another installer is fine: a provider is then installed.
        let _ = RING_PROVIDER.install_default();
    }
}

fn rsa_verification(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn rsa_encoding(alg: Algorithm) -> Option<&'static dyn sig::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn hmac_algorithm(alg: Algorithm) -> Option<hmac::Algorithm> {
    Some(match alg {
        Algorithm::HS256 => hmac::HMAC_SHA256,
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    })
}

fn ecdsa_verification(alg: Algorithm) -> Option<&'static sig::EcdsaVerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        _ => return None,
    })
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => return None,
    })
}

/// How a signature is checked.
enum Check {
    Hmac(hmac::Key),
    /// A public key in the form ring reads for the algorithm (DER `RSAPublicKey`, an
    /// uncompressed EC point, a raw Ed25519 key).
    Public(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
    /// An RSA key given as its modulus and exponent (a JWK).
    RsaComponents(&'static sig::RsaParameters, Vec<u8>, Vec<u8>),
}

struct RingVerifier {
    alg: Algorithm,
    check: Check,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let verified = match &self.check {
            Check::Hmac(key) => hmac::verify(key, msg, signature),
            Check::Public(alg, key) => {
                sig::UnparsedPublicKey::new(*alg, key).verify(msg, signature)
            }
            Check::RsaComponents(params, n, e) => {
                sig::RsaPublicKeyComponents { n, e }.verify(params, msg, signature)
            }
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let alg = *alg;
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let check = match (alg.family(), key.kind()) {
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
            let hmac_alg = hmac_algorithm(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            Check::Hmac(hmac::Key::new(hmac_alg, secret))
        }
        (AlgorithmFamily::Rsa, DecodingKeyKind::SecretOrDer(der)) => {
            let params = rsa_verification(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            Check::Public(params, der.clone())
        }
        (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            let params = rsa_verification(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            Check::RsaComponents(params, n.clone(), e.clone())
        }
        (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            let ecdsa = ecdsa_verification(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            Check::Public(ecdsa, point.clone())
        }
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(raw)) => {
            Check::Public(&sig::ED25519, raw.clone())
        }
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RingVerifier { alg, check }))
}

/// A signing key, ready to sign.
enum SigningKey {
    Hmac(hmac::Key),
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ecdsa(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
}

struct RingSigner {
    alg: Algorithm,
    key: SigningKey,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Hmac(key) => Ok(hmac::sign(key, msg).as_ref().to_vec()),
            SigningKey::Ed(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            SigningKey::Ecdsa(pair) => pair
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            SigningKey::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn rsa_key_pair(der: &[u8]) -> Result<sig::RsaKeyPair> {
    sig::RsaKeyPair::from_der(der)
        .or_else(|_| sig::RsaKeyPair::from_pkcs8(der))
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let alg = *alg;
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes = key.as_bytes();
    let key = match alg.family() {
        AlgorithmFamily::Hmac => {
            let hmac_alg = hmac_algorithm(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            SigningKey::Hmac(hmac::Key::new(hmac_alg, bytes))
        }
        AlgorithmFamily::Rsa => {
            let encoding = rsa_encoding(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            SigningKey::Rsa(rsa_key_pair(bytes)?, encoding)
        }
        AlgorithmFamily::Ec => {
            let signing = ecdsa_signing(alg).ok_or(ErrorKind::UnsupportedAlgorithm)?;
            let pair = sig::EcdsaKeyPair::from_pkcs8(signing, bytes, &SystemRandom::new())
                .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            SigningKey::Ecdsa(pair)
        }
        AlgorithmFamily::Ed => SigningKey::Ed(
            sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?,
        ),
    };
    Ok(Box::new(RingSigner { alg, key }))
}

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsa_key_pair(der)?;
    let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

fn rsa_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    // ring does not take a DER public key apart; a JWK of such a key is not needed here.
    Err(ErrorKind::Provider("rsa public key components are not available".to_owned()).into())
}

fn ec_components_from_private_key(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (curve, half) = match alg {
        Algorithm::ES256 => (EllipticCurve::P256, 32),
        Algorithm::ES384 => (EllipticCurve::P384, 48),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let signing = ecdsa_signing(alg).ok_or(ErrorKind::InvalidEcdsaKey)?;
    let pair = sig::EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    match pair.public_key().as_ref().split_first() {
        Some((4, point)) if point.len() == 2 * half => {
            let (x, y) = point.split_at(half);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(Error::from(ErrorKind::UnsupportedAlgorithm)),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}
