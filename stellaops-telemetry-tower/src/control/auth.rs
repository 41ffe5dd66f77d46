//! Bearer tokens: the verifier trait, the claims a verified token carries, the refusals, and
//! [`RequireScope`], which guards any service with one scope.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "stellaops-telemetry";

/// The longest bearer token read, in bytes; a longer one is refused unread (401).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The longest subject a verified token may carry, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// The most scopes a verified token may carry.
pub const MAX_SCOPES: usize = 64;

/// Why a request was not authenticated.
///
/// Messages never hold any part of a token: a verifier names what was wrong with a
/// `&'static str`, so nothing taken from the token can reach a log line or an answer.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::AuthError;
///
/// let refused = AuthError::invalid("expired");
/// assert_eq!(refused.to_string(), "invalid bearer token: expired");
/// assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no `Authorization: Bearer …` header (401).
    #[error("missing bearer token")]
    MissingToken,
    /// The token is malformed, unverifiable or refused by its claims (401).
    #[error("invalid bearer token: {reason}")]
    InvalidToken {
        /// What was wrong (never a part of the token).
        reason: &'static str,
    },
    /// No verifier is configured, so no token can be accepted (503).
    #[error("no token verifier configured")]
    NotConfigured,
}

impl AuthError {
    /// An [`AuthError::InvalidToken`] naming `reason`.
    pub fn invalid(reason: &'static str) -> AuthError {
        AuthError::InvalidToken { reason }
    }

    /// The answer's status: 401, or 503 when no verifier is configured.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::MissingToken | AuthError::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (none for a 503).
    pub fn challenge(&self) -> Option<HeaderValue> {
        match self {
            AuthError::MissingToken => Some(HeaderValue::from_static(
                "Bearer realm=\"stellaops-telemetry\"",
            )),
            AuthError::InvalidToken { .. } => Some(HeaderValue::from_static(
                "Bearer realm=\"stellaops-telemetry\", error=\"invalid_token\"",
            )),
            AuthError::NotConfigured => None,
        }
    }
}

/// What a verified token says about its bearer.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::Claims;
///
/// let claims = Claims::new("ops@example").with_scopes(["telemetry:read"]).with_tenant("acme");
/// assert!(claims.has_scope("telemetry:read"));
/// assert!(!claims.has_scope("telemetry:admin"));
/// assert!(claims.may_act_on("acme"));
/// assert!(!claims.may_act_on("globex"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// Who (the token's `sub`); the actor in audit lines and incidents.
    pub subject: String,
    /// What the token allows (its space-separated `scope`).
    pub scopes: Vec<String>,
    /// The one tenant the token may act on, when it is bound to one; `None` for every tenant.
    pub tenant: Option<String>,
}

impl Claims {
    /// Claims of `subject`, with no scope and no tenant binding.
    pub fn new(subject: impl Into<String>) -> Claims {
        Claims {
            subject: subject.into(),
            scopes: Vec::new(),
            tenant: None,
        }
    }

    /// The claims with `scopes`.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Claims
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The claims bound to `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Claims {
        self.tenant = Some(tenant.into());
        self
    }

    /// Whether the token holds `scope` (exactly; no scope implies another).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the token may act on `tenant`: it is bound to no tenant, or to this one.
    pub fn may_act_on(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }
}

/// Checks a bearer token and says who holds it and what it allows.
///
/// Implementations must not log the token, and must not put any part of it in an error:
/// [`AuthError::InvalidToken`] takes a `&'static str` for that reason.
/// [`JwtVerifier`](super::JwtVerifier) is the shipped implementation.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::{AuthError, Claims, TokenVerifier};
///
/// /// Accepts one fixed token (tests, local tools).
/// struct Fixed(String);
///
/// impl TokenVerifier for Fixed {
///     fn verify(&self, token: &str) -> Result<Claims, AuthError> {
///         if token == self.0 {
///             Ok(Claims::new("local").with_scopes(["telemetry:read"]))
///         } else {
///             Err(AuthError::invalid("unknown token"))
///         }
///     }
/// }
/// ```
pub trait TokenVerifier: Send + Sync + 'static {
    /// The claims of `token` (the text after `Bearer `), or why it is refused.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidToken`] for a token that is not accepted.
    fn verify(&self, token: &str) -> Result<Claims, AuthError>;
}

impl<T: TokenVerifier + ?Sized> TokenVerifier for Arc<T> {
    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        (**self).verify(token)
    }
}

impl<T: TokenVerifier + ?Sized> TokenVerifier for Box<T> {
    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        (**self).verify(token)
    }
}

/// A verifier shared by services.
pub(crate) type SharedVerifier = Arc<dyn TokenVerifier>;

/// The bearer token of `headers`: exactly one `Authorization` header, scheme `Bearer`
/// (any case), and a token of at most [`MAX_TOKEN_BYTES`] in the RFC 6750 alphabet.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::invalid("more than one authorization header"));
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_TOKEN_BYTES + 16 {
        return Err(AuthError::invalid("token too long"));
    }
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(space) => bytes.split_at(space),
        None => return Err(AuthError::invalid("not a bearer token")),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::invalid("not a bearer token"));
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Err(AuthError::invalid("empty token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::invalid("token too long"));
    }
    let body_end = token
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(0, |last| last + 1);
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(b);
    if body_end == 0 || !token[..body_end].iter().all(alphabet) {
        return Err(AuthError::invalid("malformed token"));
    }
    // Checked above: every byte is ASCII.
    std::str::from_utf8(token).map_err(|_| AuthError::invalid("malformed token"))
}

/// Authenticates a request: its bearer token through `verifier`.
pub(crate) fn authenticate(
    verifier: Option<&SharedVerifier>,
    headers: &HeaderMap,
) -> Result<Claims, AuthError> {
    let verifier = verifier.ok_or(AuthError::NotConfigured)?;
    let token = bearer_token(headers)?;
    verifier.verify(token)
}

/// A refusal answered as JSON: `{"error":…[,"field":…]}`.
pub(crate) fn refusal<B: From<String>>(
    status: StatusCode,
    error: &str,
    field: Option<&str>,
    challenge: Option<HeaderValue>,
) -> Response<B> {
    let body = match field {
        Some(field) => serde_json::json!({ "error": error, "field": field }),
        None => serde_json::json!({ "error": error }),
    };
    let mut response = Response::new(B::from(format!("{body}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(challenge) = challenge {
        headers.insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// The answer to a request refused authentication.
pub(crate) fn auth_refusal<B: From<String>>(error: &AuthError) -> Response<B> {
    refusal(error.status(), &error.to_string(), None, error.challenge())
}

/// The answer to a token without `scope` (403, `error="insufficient_scope"`).
pub(crate) fn scope_refusal<B: From<String>>(scope: &str) -> Response<B> {
    let challenge = HeaderValue::from_str(&format!(
        "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
    ))
    .ok();
    refusal(
        StatusCode::FORBIDDEN,
        &format!("missing scope {scope}"),
        None,
        challenge,
    )
}

/// A tower layer that lets a request through only with a bearer token holding one scope:
/// 401 (with a `WWW-Authenticate` challenge) without a valid token, 403 without the scope,
/// 503 when built without a verifier. Refusals are JSON (`{"error":…}`).
///
/// Guarded services answer `Response<B>` for any body `B: From<String>` (`String`,
/// axum's `Body`, `Full<Bytes>`…); the refusal is written into the same body type. The guard
/// writes no audit line: a scraper calling every few seconds would drown the audit log.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::{Claims, AuthError, RequireScope, TokenVerifier};
/// use tower::Layer;
///
/// struct Fixed;
/// impl TokenVerifier for Fixed {
///     fn verify(&self, token: &str) -> Result<Claims, AuthError> {
///         match token {
///             "scrape" => Ok(Claims::new("prometheus").with_scopes(["obs:read"])),
///             _ => Err(AuthError::invalid("unknown token")),
///         }
///     }
/// }
///
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
/// let metrics = RequireScope::new(Fixed, "obs:read").layer(telemetry.metrics_service());
/// let app: axum::Router = axum::Router::new().route_service("/metrics", metrics);
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[derive(Clone)]
pub struct RequireScope {
    verifier: Option<SharedVerifier>,
    scope: Arc<str>,
}

impl fmt::Debug for RequireScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &self.scope)
            .field("verifier", &self.verifier.is_some())
            .finish()
    }
}

impl RequireScope {
    /// Requires `scope` of tokens that `verifier` accepts.
    pub fn new(verifier: impl TokenVerifier, scope: impl Into<String>) -> RequireScope {
        RequireScope {
            verifier: Some(Arc::new(verifier)),
            scope: Arc::from(scope.into()),
        }
    }

    /// Requires `scope`, with the verifier when there is one; without one every request is
    /// refused (503, `no token verifier configured`), so a guard configured from the
    /// environment never leaves the service open.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::{JwtVerifier, RequireScope};
    ///
    /// # fn guard() -> Result<RequireScope, stellaops_telemetry_tower::control::AuthConfigError> {
    /// let guard = RequireScope::maybe(JwtVerifier::from_env()?, "obs:read");
    /// # Ok(guard) }
    /// ```
    pub fn maybe<V: TokenVerifier>(verifier: Option<V>, scope: impl Into<String>) -> RequireScope {
        RequireScope {
            verifier: verifier.map(|v| Arc::new(v) as SharedVerifier),
            scope: Arc::from(scope.into()),
        }
    }
}

impl<S> tower::Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> RequireScopeService<S> {
        RequireScopeService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service [`RequireScope`] wraps around another.
#[derive(Clone, Debug)]
pub struct RequireScopeService<S> {
    inner: S,
    guard: RequireScope,
}

impl<S, B, ResBody> tower::Service<Request<B>> for RequireScopeService<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GuardFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refused = match authenticate(self.guard.verifier.as_ref(), request.headers()) {
            Err(e) => Some(auth_refusal(&e)),
            Ok(claims) if !claims.has_scope(&self.guard.scope) => {
                Some(scope_refusal(&self.guard.scope))
            }
            Ok(_) => None,
        };
        match refused {
            Some(response) => GuardFuture::refused(response),
            None => GuardFuture::inner(self.inner.call(request)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`RequireScopeService`] answer: the guarded service's, or a refusal.
    pub struct GuardFuture<F, B> {
        #[pin]
        state: GuardState<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = GuardProjection]
    enum GuardState<F, B> {
        Inner {
            #[pin]
            future: F,
        },
        Refused {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B> GuardFuture<F, B> {
    fn inner(future: F) -> Self {
        GuardFuture {
            state: GuardState::Inner { future },
        }
    }

    fn refused(response: Response<B>) -> Self {
        GuardFuture {
            state: GuardState::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, B> fmt::Debug for GuardFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            GuardState::Inner { .. } => "inner",
            GuardState::Refused { .. } => "refused",
        };
        f.debug_struct("GuardFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for GuardFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            GuardProjection::Inner { future } => future.poll(cx),
            GuardProjection::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: stay pending rather than panic.
                None => Poll::Pending,
            },
        }
    }
}
