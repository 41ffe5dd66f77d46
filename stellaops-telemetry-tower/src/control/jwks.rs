//! [`JwtVerifier`]: JSON Web Tokens signed with EdDSA (Ed25519), ES256 or RS256, checked
//! against the keys of a local JWKS file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::auth::{AuthError, Claims, MAX_SCOPES, MAX_SUBJECT_BYTES, TokenVerifier};
use super::ring_provider;

/// The variable naming the JWKS file ([`JwtVerifier::from_env`]).
pub const ENV_JWKS: &str = "STELLAOPS_TELEMETRY_AUTH_JWKS";

/// The variable holding the expected issuer (`iss`).
pub const ENV_ISSUER: &str = "STELLAOPS_TELEMETRY_AUTH_ISSUER";

/// The variable holding the expected audience (`aud`).
pub const ENV_AUDIENCE: &str = "STELLAOPS_TELEMETRY_AUTH_AUDIENCE";

/// The claim binding a token to one tenant. The plain `tenant` claim is read as well when
/// this one is absent; a token carrying both with different values is refused.
pub const TENANT_CLAIM: &str = "stellaops:tenant";

/// The largest JWKS file read, in bytes.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// The most keys taken from a JWKS.
pub const MAX_JWKS_KEYS: usize = 256;

/// The longest tenant claim accepted, in bytes (the tenant id rule's limit).
const MAX_TENANT_BYTES: usize = 128;

/// The longest `scope` claim accepted, in bytes.
const MAX_SCOPE_BYTES: usize = 4096;

/// The longest `kid` looked up, in bytes.
const MAX_KID_BYTES: usize = 256;

/// The largest leeway [`JwtVerifier::leeway`] takes: one hour.
const MAX_LEEWAY: Duration = Duration::from_secs(60 * 60);

/// Why a verifier could not be configured. Messages name the variable or the file, never a
/// key's material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// A variable that must be set with the JWKS is missing or empty.
    #[error("{variable} must be set when {ENV_JWKS} is set")]
    MissingVariable {
        /// The variable.
        variable: &'static str,
    },
    /// A variable that is not valid UTF-8, or too long.
    #[error("{variable}: {reason}")]
    InvalidVariable {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JWKS file could not be read.
    #[error("JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JWKS file is larger than [`MAX_JWKS_BYTES`].
    #[error("JWKS file {path}: larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The JWKS is not a JSON Web Key Set, or one of its keys is unusable.
    #[error("JWKS {origin}: {reason}")]
    Jwks {
        /// The file, or `(inline)`.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One verification key and the one algorithm it verifies.
struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies JSON Web Tokens against the keys of a local JWKS (no network).
///
/// A token is accepted when:
///
/// - its header names `EdDSA`, `ES256` or `RS256` (never `none`, never an HMAC) and a `kid`
///   present in the JWKS whose key is of that algorithm. A token without `kid` is accepted
///   only when the JWKS holds exactly one usable key;
/// - its signature verifies with that key;
/// - `exp` is present and not past, and `nbf` (when present) is reached, both with a leeway
///   of [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY);
/// - `iss` equals the configured issuer and `aud` holds the configured audience;
/// - `sub` is present (at most 256 bytes, no control characters).
///
/// Its claims: `sub` (the subject), `scope` (space-separated scopes, at most 64) and the
/// tenant binding: [`TENANT_CLAIM`] (`stellaops:tenant`), else `tenant`.
///
/// Keys: `OKP`/`Ed25519` (EdDSA), `EC`/`P-256` (ES256) and `RSA` (RS256, at least 2048
/// bits), each used for the algorithm its `alg` names (or its type implies). Keys of other
/// types, curves or algorithms, and keys whose `use` is not `sig`, are skipped; symmetric
/// (`oct`) keys are never used.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::{JwtVerifier, TokenVerifier};
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ops-1","alg":"EdDSA",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = JwtVerifier::from_jwks_json(jwks, "https://id.example", "stellaops-telemetry")?;
/// assert_eq!(verifier.key_count(), 1);
/// assert!(verifier.verify("not.a.token").is_err());
/// # Ok::<(), stellaops_telemetry_tower::control::AuthConfigError>(())
/// ```
pub struct JwtVerifier {
    keys: HashMap<String, VerificationKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("JwtVerifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtVerifier {
    /// The clock skew allowed on `exp` and `nbf`: 60 s.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

    /// A verifier configured by the environment: the JWKS file named by
    /// `STELLAOPS_TELEMETRY_AUTH_JWKS`, the issuer in `STELLAOPS_TELEMETRY_AUTH_ISSUER` and the
    /// audience in `STELLAOPS_TELEMETRY_AUTH_AUDIENCE`. `Ok(None)` when the JWKS variable is
    /// unset or empty (the control plane then refuses every call).
    ///
    /// # Errors
    ///
    /// [`AuthConfigError`] naming the variable (issuer or audience missing, not UTF-8) or the
    /// file (unreadable, too large, not a usable JWKS).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::JwtVerifier;
    ///
    /// match JwtVerifier::from_env() {
    ///     Ok(Some(verifier)) => println!("control plane guarded by {verifier:?}"),
    ///     Ok(None) => println!("no verifier: the control plane refuses every call"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    pub fn from_env() -> Result<Option<JwtVerifier>, AuthConfigError> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// As [`from_env`](Self::from_env), reading variables through `var` (for tests and
    /// configuration layers that do not use the process environment).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::JwtVerifier;
    ///
    /// let none = JwtVerifier::from_vars(|_| None)?;
    /// assert!(none.is_none());
    /// # Ok::<(), stellaops_telemetry_tower::control::AuthConfigError>(())
    /// ```
    pub fn from_vars(
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Option<JwtVerifier>, AuthConfigError> {
        let Some(jwks) = var(ENV_JWKS).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let text = |variable: &'static str| -> Result<String, AuthConfigError> {
            let value = var(variable)
                .filter(|v| !v.is_empty())
                .ok_or(AuthConfigError::MissingVariable { variable })?;
            let value = value
                .into_string()
                .map_err(|_| AuthConfigError::InvalidVariable {
                    variable,
                    reason: "not valid UTF-8",
                })?;
            if value.len() > 1024 {
                return Err(AuthConfigError::InvalidVariable {
                    variable,
                    reason: "longer than 1024 bytes",
                });
            }
            Ok(value.trim().to_owned())
        };
        let (issuer, audience) = (text(ENV_ISSUER)?, text(ENV_AUDIENCE)?);
        Self::from_jwks_file(Path::new(&jwks), issuer, audience).map(Some)
    }

    /// A verifier with the keys of the JWKS file at `path`.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::Read`], [`AuthConfigError::TooLarge`] or [`AuthConfigError::Jwks`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// use stellaops_telemetry_tower::control::JwtVerifier;
    ///
    /// let verifier = JwtVerifier::from_jwks_file(
    ///     "/etc/stellaops/jwks.json".as_ref(),
    ///     "https://id.example",
    ///     "stellaops-telemetry",
    /// )?;
    /// # Ok::<(), stellaops_telemetry_tower::control::AuthConfigError>(())
    /// ```
    pub fn from_jwks_file(
        path: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<JwtVerifier, AuthConfigError> {
        let read = |source| AuthConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        let mut limited = std::io::Read::take(file, MAX_JWKS_BYTES + 1);
        std::io::Read::read_to_string(&mut limited, &mut text).map_err(read)?;
        if text.len() as u64 > MAX_JWKS_BYTES {
            return Err(AuthConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        Self::build(&text, &path.display().to_string(), issuer, audience)
    }

    /// A verifier with the keys of a JWKS given as JSON text.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::Jwks`] when it is not a JWKS or holds no usable key.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::JwtVerifier;
    ///
    /// let refused = JwtVerifier::from_jwks_json(r#"{"keys":[]}"#, "iss", "aud");
    /// assert!(refused.unwrap_err().to_string().contains("no usable key"));
    /// ```
    pub fn from_jwks_json(
        json: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<JwtVerifier, AuthConfigError> {
        Self::build(json, "(inline)", issuer, audience)
    }

    fn build(
        json: &str,
        origin: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<JwtVerifier, AuthConfigError> {
        let refused = |reason: String| AuthConfigError::Jwks {
            origin: origin.to_owned(),
            reason,
        };
        if json.len() as u64 > MAX_JWKS_BYTES {
            return Err(refused(format!("larger than {MAX_JWKS_BYTES} bytes")));
        }
        let (issuer, audience) = (issuer.into(), audience.into());
        if issuer.is_empty() || audience.is_empty() {
            return Err(refused(
                "the issuer and the audience must not be empty".into(),
            ));
        }
        let set: JwkSet = serde_json::from_str(json).map_err(|e| {
            refused(format!(
                "not a JSON Web Key Set (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if set.keys.len() > MAX_JWKS_KEYS {
            return Err(refused(format!("more than {MAX_JWKS_KEYS} keys")));
        }
        let mut keys = HashMap::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let Some(algorithm) = usable_algorithm(jwk) else {
                continue;
            };
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|_| refused(format!("key {index} (`{kid}`) is malformed")))?;
            check_key_material(algorithm, &key)
                .map_err(|reason| refused(format!("key {index} (`{kid}`): {reason}")))?;
            if keys
                .insert(kid.clone(), VerificationKey { algorithm, key })
                .is_some()
            {
                return Err(refused(format!("key id `{kid}` appears twice")));
            }
        }
        if keys.is_empty() {
            return Err(refused(
                "no usable key (EdDSA/Ed25519, ES256/P-256 or RS256 signing keys)".into(),
            ));
        }
        ring_provider::ensure_installed();
        Ok(JwtVerifier {
            keys,
            issuer,
            audience,
            leeway: Self::DEFAULT_LEEWAY,
        })
    }

    /// The clock skew allowed on `exp` and `nbf` (default
    /// [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY); at most one hour, longer is cut to it).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use stellaops_telemetry_tower::control::JwtVerifier;
    ///
    /// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let verifier = JwtVerifier::from_jwks_json(jwks, "iss", "aud")?.leeway(Duration::from_secs(5));
    /// # Ok::<(), stellaops_telemetry_tower::control::AuthConfigError>(())
    /// ```
    pub fn leeway(mut self, leeway: Duration) -> JwtVerifier {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// How many keys the verifier holds.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The key a token's header names, or the only key when it names none.
    fn key_for(&self, kid: Option<&str>) -> Result<&VerificationKey, AuthError> {
        match kid {
            Some(kid) if kid.len() > MAX_KID_BYTES => Err(AuthError::invalid("unknown key id")),
            Some(kid) => self
                .keys
                .get(kid)
                .ok_or(AuthError::invalid("unknown key id")),
            None if self.keys.len() == 1 => self
                .keys
                .values()
                .next()
                .ok_or(AuthError::invalid("unknown key id")),
            None => Err(AuthError::invalid("no key id")),
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > super::auth::MAX_TOKEN_BYTES {
            return Err(AuthError::invalid("token too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid("malformed token"))?;
        if !matches!(
            header.alg,
            Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256
        ) {
            return Err(AuthError::invalid("unsupported algorithm"));
        }
        let key = self.key_for(header.kid.as_deref())?;
        if key.algorithm != header.alg {
            return Err(AuthError::invalid("algorithm does not match the key"));
        }
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &key.key, &self.validation(key.algorithm))
                .map_err(|e| AuthError::invalid(reason_of(e.kind())))?;
        data.claims.into_claims()
    }
}

/// The algorithm a JWKS key verifies, when it is a signing key this verifier uses.
fn usable_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Some(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(implied),
        Some(_) => None,
    }
}

/// Refuses key material ring will never verify with, at load rather than per token.
fn check_key_material(algorithm: Algorithm, key: &DecodingKey) -> Result<(), &'static str> {
    use jsonwebtoken::DecodingKeyKind;
    match (algorithm, key.kind()) {
        (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(raw)) if raw.len() == 32 => Ok(()),
        (Algorithm::EdDSA, _) => Err("an Ed25519 key is 32 bytes"),
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) if point.len() == 65 => Ok(()),
        (Algorithm::ES256, _) => Err("a P-256 key has 32-byte x and y"),
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, .. }) => {
            let bits = n
                .iter()
                .position(|&b| b != 0)
                .map_or(0, |first| (n.len() - first) * 8);
            if bits >= 2048 {
                Ok(())
            } else {
                Err("an RSA key has at least 2048 bits")
            }
        }
        _ => Err("unsupported key"),
    }
}

/// What was wrong with a token, from jsonwebtoken's error (never its text, which may quote
/// the token's claims).
fn reason_of(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "missing claim",
        ErrorKind::InvalidClaimFormat(_) => "malformed claim",
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => "unsupported algorithm",
        _ => "malformed token",
    }
}

/// The claims read from a verified token (the registered ones are checked by jsonwebtoken).
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    scope: Option<String>,
    #[serde(rename = "stellaops:tenant")]
    stellaops_tenant: Option<String>,
    tenant: Option<String>,
}

impl RawClaims {
    fn into_claims(self) -> Result<Claims, AuthError> {
        let subject = self.sub.ok_or(AuthError::invalid("missing claim"))?;
        if subject.is_empty()
            || subject.len() > MAX_SUBJECT_BYTES
            || subject.chars().any(char::is_control)
        {
            return Err(AuthError::invalid("malformed subject"));
        }
        let scope = self.scope.unwrap_or_default();
        if scope.len() > MAX_SCOPE_BYTES {
            return Err(AuthError::invalid("malformed scope"));
        }
        let scopes: Vec<String> = scope.split_ascii_whitespace().map(str::to_owned).collect();
        if scopes.len() > MAX_SCOPES {
            return Err(AuthError::invalid("malformed scope"));
        }
        let tenant = match (self.stellaops_tenant, self.tenant) {
            (Some(a), Some(b)) if a != b => {
                return Err(AuthError::invalid("conflicting tenant claims"));
            }
            (Some(t), _) | (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        if let Some(t) = &tenant
            && (t.is_empty() || t.len() > MAX_TENANT_BYTES || t.chars().any(char::is_control))
        {
            return Err(AuthError::invalid("malformed tenant claim"));
        }
        let mut claims = Claims::new(subject).with_scopes(scopes);
        claims.tenant = tenant;
        Ok(claims)
    }
}
