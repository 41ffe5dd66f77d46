//! The telemetry control plane: profiles, their collector configuration and per-tenant
//! incident (forensic) mode over HTTP, as one tower service behind bearer tokens; and
//! [`RequireScope`], which guards any other service (`/metrics`) with the same tokens.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_tower::control::{ControlPlane, JwtVerifier, RequireScope};
//! use tower::Layer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let telemetry = stellaops_telemetry_core::Telemetry::builder("scanner").exporters(&[]).stdout_logs(false).build()?;
//! let mut control = ControlPlane::for_telemetry(&telemetry);
//! if let Some(verifier) = JwtVerifier::from_env()? {
//!     control = control.verifier(verifier);
//! }
//! let app: axum::Router = axum::Router::new()
//!     .nest_service("/telemetry", control.build())
//!     .route_service(
//!         "/metrics",
//!         RequireScope::maybe(JwtVerifier::from_env()?, "obs:read").layer(telemetry.metrics_service()),
//!     );
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! # Routes
//!
//! Relative to where the service is mounted (`/telemetry` in the examples); the service
//! routes on the end of the path, so nesting and per-path routing both work.
//!
//! | method and path | scope | answer |
//! |---|---|---|
//! | `GET /config/profiles` | `telemetry:read` | `{"profiles":[…]}` |
//! | `GET /config/profile/{name}` | `telemetry:read` | `{"profile":…,"collector":"<YAML>"}`; unknown name 404 |
//! | `POST /incidents/mode` | `telemetry:admin` | `{"incident":…}` (forensic) or `{"stopped":…}` (default) |
//! | `GET /incidents/status` | `telemetry:read` | `{"incidents":[…]}` |
//! | `GET /exports/forensic/{window}` | `telemetry:export` | a signed bundle (`application/x-tar`, or `application/zstd` with `?compression=zstd`), streamed |
//!
//! `POST /incidents/mode` takes `{"tenant":"acme","mode":"forensic"|"default","reason":"…",
//! "ttl":"30m"}`: `reason` is required for `forensic`, `ttl` is optional (default 60m, at
//! most 24h). The incident's actor is the token's subject. Stopping a tenant with no active
//! incident answers 404.
//!
//! `GET /exports/forensic/{window}` streams one window of the local store as a signed
//! offline bundle (see `stellaops_telemetry_core::bundle`), configured with
//! [`ControlPlaneBuilder::forensic_exports`]. `{window}` is `FROM..TO` in RFC 3339, UTC
//! (`2026-12-05T09:00:00Z..2026-12-05T10:00:00Z`), or a duration ending now (`1h`, `30m`); it
//! must not be empty nor longer than the profile's retention. `?tenant=acme` exports one
//! tenant's records (a tenant-bound token exports its own tenant, and may only repeat it
//! here); without it an unbound token exports every tenant. `?compression=zstd` compresses
//! the archive. The answer is `Content-Disposition: attachment;
//! filename="stellaops-<tenant|all>-<from>-<to>.tar[.zst]"` (times as `20261205T090000Z`).
//!
//! The archive is never held in memory: the export runs on a blocking thread, spools the
//! selection to disk, and sends the archive in chunks of [`EXPORT_CHUNK_BYTES`] through a
//! channel of [`EXPORT_CHANNEL_CHUNKS`] to the body ([`ControlBody`]); a client that reads
//! slowly slows the export down, one that goes away stops it. The head is sent with the
//! first chunk: a failure before it is a JSON refusal, one after it ends the body with an
//! error, so the client sees a truncated transfer.
//!
//! # Refusals
//!
//! Every answer is JSON (`Content-Type: application/json`); a refusal is
//! `{"error":"<message>","field":"<field>"}` (`field` when one field is at fault).
//!
//! | status | when |
//! |---|---|
//! | 400 | malformed body, unknown field or mode, bad `ttl`, bad tenant, missing `reason`; a malformed, empty or too long `window`, an unknown query parameter or compression |
//! | 401 | no token, or a token that is malformed, unsigned (`alg: none`), badly signed, expired, not yet valid, for another issuer or audience, or of an unknown key; with `WWW-Authenticate: Bearer realm="stellaops-telemetry"` (`, error="invalid_token"` when a token was given) |
//! | 403 | the token lacks the route's scope (`missing scope telemetry:admin`), or is bound to another tenant |
//! | 404 | unknown route, unknown profile, no active incident to stop |
//! | 405 | wrong method (with `Allow`) |
//! | 409 | too many incidents active |
//! | 429 | too many exports running ([`ForensicExports::max_concurrent`]) |
//! | 413 | body over 16 KiB |
//! | 500 | an export that failed before its first chunk (`the export failed`) |
//! | 503 | no verifier configured: `no token verifier configured`; an export without [`ForensicExports`]: `no signing key configured` |
//!
//! Without a verifier ([`ControlPlaneBuilder::verifier`]) every call is refused: the control
//! plane is never an open admin surface. A token bound to a tenant (its `stellaops:tenant`
//! claim) acts on that tenant only, and sees only its incidents in the status.
//!
//! # Audit
//!
//! Every call, allowed or refused, writes one line through the pipeline at target
//! [`AUDIT_TARGET`]: `control` (`control_plane`),
//! `actor` (the token's subject, or `anonymous`), `route`, `method`, `outcome` (the status
//! code) and `target_tenant` (the tenant acted on, when there is one; it is also the line's
//! `tenant` unless the request's span names one); an export adds `window` (as resolved) and,
//! when it failed before its answer's head, `error`. An export whose head was sent writes a
//! second line when it ends: `export` (`complete` or `failed`), and `archive_sha256`,
//! `archive_bytes`, `spans`, `points` and `log_records`, or `error`. Nothing of the token is
//! ever written.

mod auth;
mod body;
mod export;
mod jwks;
mod ring_provider;
mod routes;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use stellaops_telemetry_core::{AUDIT_TARGET, RequestContext, Telemetry};

pub use auth::{
    AuthError, Claims, GuardFuture, MAX_SCOPES, MAX_SUBJECT_BYTES, MAX_TOKEN_BYTES, REALM,
    RequireScope, RequireScopeService, TokenVerifier,
};
pub use body::ControlBody;
pub use export::{
    DEFAULT_MAX_CONCURRENT_EXPORTS, ENV_BUNDLE_KEY, EXPORT_CHANNEL_CHUNKS, EXPORT_CHUNK_BYTES,
    ForensicExports,
};
pub use jwks::{
    AuthConfigError, ENV_AUDIENCE, ENV_ISSUER, ENV_JWKS, JwtVerifier, MAX_JWKS_BYTES,
    MAX_JWKS_KEYS, TENANT_CLAIM,
};

use auth::SharedVerifier;
use routes::{Endpoint, Refusal};

/// The scope of the reading routes (profiles, status).
pub const READ_SCOPE: &str = "telemetry:read";

/// The scope of the incident mode switch.
pub const ADMIN_SCOPE: &str = "telemetry:admin";

/// The scope of the forensic export.
pub const EXPORT_SCOPE: &str = "telemetry:export";

/// The largest request body read, in bytes: 16 KiB. A larger one is refused (413).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The actor of calls without an accepted token.
pub const ANONYMOUS: &str = "anonymous";

/// Builds a [`ControlPlane`]: the pipeline it controls and the verifier of its tokens.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::control::ControlPlane;
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
/// // No verifier: every call is refused (503).
/// let control = ControlPlane::for_telemetry(&telemetry).build();
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[must_use = "a builder does nothing until `build()` is called"]
pub struct ControlPlaneBuilder {
    telemetry: Telemetry,
    verifier: Option<SharedVerifier>,
    exports: Option<ForensicExports>,
}

impl fmt::Debug for ControlPlaneBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlaneBuilder")
            .field("telemetry", &self.telemetry)
            .field("verifier", &self.verifier.is_some())
            .field("exports", &self.exports)
            .finish()
    }
}

impl ControlPlaneBuilder {
    /// Accepts the tokens `verifier` accepts (default: none, every call refused).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::{ControlPlane, JwtVerifier};
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let verifier = JwtVerifier::from_jwks_json(jwks, "https://id.example", "stellaops-telemetry")?;
    /// let control = ControlPlane::for_telemetry(&telemetry).verifier(verifier).build();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verifier(mut self, verifier: impl TokenVerifier) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    /// Answers `GET exports/forensic/{window}` with bundles from `exports` (default: none,
    /// the route answers 503 `no signing key configured`).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::{ControlPlane, ForensicExports};
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// let mut control = ControlPlane::for_telemetry(&telemetry);
    /// if let Some(exports) = ForensicExports::from_env(telemetry.dir())? {
    ///     control = control.forensic_exports(exports);
    /// }
    /// let control = control.build();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forensic_exports(mut self, exports: ForensicExports) -> Self {
        self.exports = Some(exports);
        self
    }

    /// The service.
    pub fn build(self) -> ControlPlane {
        ControlPlane {
            inner: Arc::new(Inner {
                telemetry: self.telemetry,
                verifier: self.verifier,
                exports: self.exports,
            }),
        }
    }
}

/// The control plane as one tower service: `Service<Request<B>>` for any body `B` (read only
/// by `POST /incidents/mode`, at most [`MAX_BODY_BYTES`]), answering `Response<ControlBody>`
/// with error type [`Infallible`]. Cheap to clone. See the [module](self) for the routes.
///
/// # Mounting
///
/// ```
/// use stellaops_telemetry_tower::control::ControlPlane;
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
/// let control = ControlPlane::for_telemetry(&telemetry).build();
/// let app: axum::Router = axum::Router::new().nest_service("/telemetry", control);
/// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
/// ```
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

struct Inner {
    telemetry: Telemetry,
    verifier: Option<SharedVerifier>,
    exports: Option<ForensicExports>,
}

impl fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlane")
            .field("telemetry", &self.inner.telemetry)
            .field("verifier", &self.inner.verifier.is_some())
            .field("exports", &self.inner.exports)
            .finish()
    }
}

impl ControlPlane {
    /// A builder controlling `telemetry`'s incidents, without a verifier.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::ControlPlane;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// let builder = ControlPlane::for_telemetry(&telemetry);
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn for_telemetry(telemetry: &Telemetry) -> ControlPlaneBuilder {
        ControlPlaneBuilder {
            telemetry: telemetry.clone(),
            verifier: None,
            exports: None,
        }
    }
}

/// The future of a [`ControlPlane`] answer.
pub struct ControlFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<ControlBody>, Infallible>> + Send>>,
}

impl fmt::Debug for ControlFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlFuture").finish_non_exhaustive()
    }
}

impl Future for ControlFuture {
    type Output = Result<Response<ControlBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B> tower::Service<Request<B>> for ControlPlane
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ControlBody>;
    type Error = Infallible;
    type Future = ControlFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ControlFuture {
        let inner = self.inner.clone();
        ControlFuture {
            inner: Box::pin(async move {
                let (parts, body) = request.into_parts();
                let endpoint = routes::route(parts.uri.path());
                let mut call = Call::new(&parts, endpoint.as_ref());
                let mut response = match inner.answer(&parts, body, endpoint, &mut call).await {
                    Ok(response) => response,
                    Err(refused) => refused,
                };
                inner.audit(&call, response.status());
                if let Some(audited) = call.audited.take() {
                    // The export's closing line waits for this one.
                    let _ = audited.send(());
                }
                if let Some(route) = call.reported_route() {
                    response.extensions_mut().insert(route);
                }
                Ok(response)
            }),
        }
    }
}

/// What the audit line of one call says.
struct Call {
    actor: String,
    route: String,
    method: Method,
    tenant: Option<String>,
    nested: bool,
    /// The export's window, as resolved (or as given, when refused).
    window: Option<String>,
    /// Why an export failed before its answer's head was sent.
    error: Option<String>,
    /// Told once this call's audit line is written (an export's closing line follows it).
    audited: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Call {
    fn new(parts: &Parts, endpoint: Option<&Endpoint>) -> Call {
        let template = endpoint.map_or("/*", Endpoint::template);
        let (route, nested) = match nested_prefix(parts) {
            Some(prefix) => (format!("{prefix}{template}"), true),
            None => (template.to_owned(), false),
        };
        Call {
            actor: ANONYMOUS.to_owned(),
            route,
            method: parts.method.clone(),
            tenant: None,
            nested,
            window: None,
            error: None,
            audited: None,
        }
    }

    /// The route the server layer records when the control plane is nested (axum's
    /// `nest_service` gives the layer no route).
    fn reported_route(&self) -> Option<crate::server::ReportedRoute> {
        self.nested
            .then(|| crate::server::ReportedRoute(self.route.clone().into()))
    }
}

/// The prefix axum nested the control plane under, without its trailing slash.
fn nested_prefix(parts: &Parts) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(nested) = parts.extensions.get::<axum::extract::NestedPath>() {
        return Some(nested.as_str().trim_end_matches('/').to_owned());
    }
    let _ = parts;
    None
}

impl Inner {
    /// Answers one call, filling in its audit record on the way.
    async fn answer<B>(
        &self,
        parts: &Parts,
        body: B,
        endpoint: Option<Endpoint>,
        call: &mut Call,
    ) -> Result<Response<ControlBody>, Response<ControlBody>>
    where
        B: http_body::Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(endpoint) = endpoint else {
            return Err(
                Refusal::new(StatusCode::NOT_FOUND, "no such control route").into_response()
            );
        };
        if parts.method != endpoint.method() {
            let mut response = Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("use {}", endpoint.method()),
            )
            .into_response();
            let allow = HeaderValue::from_static(if endpoint == Endpoint::Mode {
                "POST"
            } else {
                "GET"
            });
            response.headers_mut().insert(header::ALLOW, allow);
            return Err(response);
        }
        let claims = auth::authenticate(self.verifier.as_ref(), &parts.headers)
            .map_err(|e| auth::auth_refusal(&e))?;
        call.actor.clone_from(&claims.subject);
        call.tenant.clone_from(&claims.tenant);
        if !claims.has_scope(endpoint.scope()) {
            return Err(auth::scope_refusal(endpoint.scope()));
        }
        let answer = match &endpoint {
            Endpoint::Profiles => routes::profiles(),
            Endpoint::Profile(name) => routes::profile(name),
            Endpoint::Status => routes::status(&self.telemetry, &claims),
            Endpoint::Mode => self.mode(parts, body, &claims, call).await,
            Endpoint::Export(window) => {
                let Some(exports) = &self.exports else {
                    return Err(Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no signing key configured",
                    )
                    .into_response());
                };
                return export::answer(exports, &self.telemetry, parts, window, &claims, call)
                    .await
                    .map_err(Refusal::into_response);
            }
        };
        answer
            .map(|value| routes::ok(&value))
            .map_err(Refusal::into_response)
    }

    /// `POST incidents/mode`: reads and checks the body, then applies it.
    async fn mode<B>(
        &self,
        parts: &Parts,
        body: B,
        claims: &Claims,
        call: &mut Call,
    ) -> Result<serde_json::Value, Refusal>
    where
        B: http_body::Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let too_large = || {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {MAX_BODY_BYTES} bytes"),
            )
        };
        if routes::declared_too_large(&parts.headers) {
            return Err(too_large());
        }
        let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read",
                ));
            }
        };
        let request = routes::parse_mode(&bytes)?;
        call.tenant = Some(routes::shown(&request.tenant));
        if !claims.may_act_on(&request.tenant) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "the token is bound to another tenant",
            )
            .field("tenant"));
        }
        routes::apply_mode(&self.telemetry, &claims.subject, request)
    }

    /// Writes the call's audit line through the pipeline.
    fn audit(&self, call: &Call, status: StatusCode) {
        tracing::dispatcher::with_default(self.telemetry.dispatch(), || {
            let _context = call
                .tenant
                .as_deref()
                .map(|t| RequestContext::new().with_tenant(t).attach());
            tracing::info!(
                target: AUDIT_TARGET,
                control = "control_plane",
                actor = %call.actor,
                route = %call.route,
                method = %call.method,
                outcome = status.as_u16(),
                target_tenant = call.tenant.as_deref(),
                window = call.window.as_deref(),
                error = call.error.as_deref(),
                "telemetry control plane call"
            );
        });
    }
}
