//! `/health`, `/health/ready` and `/health/live` as one tower service.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use stellaops_telemetry_tower::services::Health;
//!
//! let health = Health::builder("1.4.2")
//!     .timeout_default(Duration::from_millis(500))
//!     .check("database", || async { Ok::<(), String>(()) })
//!     .build();
//! let app: axum::Router = axum::Router::new().nest_service("/health", health);
//! ```
//!
//! # Endpoints
//!
//! | path | answers | status |
//! |---|---|---|
//! | `/health` | the full report: every check plus the telemetry pipeline | 200 `healthy`/`degraded`, 503 `unhealthy` |
//! | `/health/ready` | readiness: every registered check, concurrently | 200 when all pass, 503 otherwise |
//! | `/health/live` | liveness: nothing external is checked | 200 while the process answers |
//!
//! The service routes on the end of the path, so it works however it is mounted: nested at
//! `/health` (axum strips the prefix: it sees `/`, `/ready`, `/live`), routed per path
//! (`/health`, `/health/ready`, `/health/live`), or under any prefix (`/api/health/ready`).
//! Other paths answer 404; methods other than `GET` and `HEAD` answer 405 with `Allow`.
//!
//! # Runtime
//!
//! Checks run on the current Tokio runtime, each in its own task bounded by
//! [`tokio::time::timeout`]: the runtime needs its time driver (`enable_time`/`enable_all`,
//! as `#[tokio::main]` and axum's `serve` have). Without a runtime every check is reported
//! unhealthy instead of panicking. A check that panics is caught by its task and reported
//! unhealthy (`check panicked: …`); the panic hook still prints it. A timed-out check is
//! cancelled (its future dropped); when the response future is dropped, checks still running
//! are aborted.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use stellaops_telemetry_core::{Redactor, SignalSnapshot, StatsSnapshot, Telemetry};
use tokio::task::JoinHandle;

/// What a health check answers: `Ok(())` when healthy, `Err(reason)` otherwise.
///
/// Checks registered with [`HealthBuilder::check`] may return any `Result<(), E>` whose error
/// is [`Display`](fmt::Display); it is turned into this type and its message redacted.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_tower::services::CheckResult;
///
/// async fn cache_answers() -> CheckResult {
///     Err("connection refused".to_owned())
/// }
/// ```
pub type CheckResult = Result<(), String>;

type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The name of the telemetry pipeline's entry in the `/health` report's `checks`.
const TELEMETRY_ENTRY: &str = "telemetry";

struct Check {
    name: String,
    timeout: Option<Duration>,
    run: CheckFn,
}

/// Builds a [`Health`] service: the version, the readiness checks and the pipeline to report.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use stellaops_telemetry_tower::services::Health;
///
/// let health = Health::builder("2.0.1")
///     .timeout_default(Duration::from_secs(2))
///     .check("redis", || async { Ok::<(), std::io::Error>(()) })
///     .build();
/// ```
#[must_use = "a builder does nothing until `build()` is called"]
pub struct HealthBuilder {
    version: String,
    checks: Vec<Check>,
    timeout_default: Duration,
    telemetry: Option<Telemetry>,
    redactor: Option<Redactor>,
    started: Instant,
    backlog: BacklogLimits,
}

/// When the pipeline's backlog makes its `/health` entry `degraded`.
#[derive(Debug, Clone, Copy)]
struct BacklogLimits {
    max_age: Duration,
    high_water: f64,
}

impl fmt::Debug for HealthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthBuilder")
            .field("version", &self.version)
            .field(
                "checks",
                &self.checks.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field("timeout_default", &self.timeout_default)
            .field("telemetry", &self.telemetry)
            .field("backlog", &self.backlog)
            .finish_non_exhaustive()
    }
}

impl HealthBuilder {
    /// The timeout of a check registered without one: 1 s, Kubernetes' default probe
    /// `timeoutSeconds`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// The age past which a record still queued for export makes the pipeline `degraded`:
    /// 30 s, about three times what a record waits at worst while export keeps up (the
    /// pipeline's default export delay of 1 s plus its export timeout of 10 s).
    pub const DEFAULT_BACKLOG_MAX_AGE: Duration = Duration::from_secs(30);

    /// The share of a signal's queue bytes past which the pipeline is `degraded`: 0.8, so the
    /// report turns before the queue drops records.
    pub const DEFAULT_BACKLOG_HIGH_WATER: f64 = 0.8;

    fn new(version: String) -> Self {
        HealthBuilder {
            version,
            checks: Vec::new(),
            timeout_default: Self::DEFAULT_TIMEOUT,
            telemetry: None,
            redactor: None,
            started: Instant::now(),
            backlog: BacklogLimits {
                max_age: Self::DEFAULT_BACKLOG_MAX_AGE,
                high_water: Self::DEFAULT_BACKLOG_HIGH_WATER,
            },
        }
    }

    /// Registers a readiness check bounded by the default timeout
    /// ([`timeout_default`](Self::timeout_default), whenever it is set).
    ///
    /// `check` is called once per readiness or `/health` request and its future run in its own
    /// task; an error's message is redacted before it is reported. Registering a name again
    /// replaces the earlier check. The name `telemetry` replaces the pipeline's entry in the
    /// `/health` report.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// async fn ping_database() -> Result<(), String> {
    ///     Ok(())
    /// }
    ///
    /// let health = Health::builder("1.0.0").check("database", ping_database).build();
    /// ```
    pub fn check<F, Fut, E>(self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        self.register(name.into(), None, check)
    }

    /// Registers a readiness check with its own timeout: past it, the check is cancelled and
    /// reported unhealthy (`timed out after …`).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0")
    ///     .check_with_timeout("vault", Duration::from_millis(300), || async {
    ///         Ok::<(), String>(())
    ///     })
    ///     .build();
    /// ```
    pub fn check_with_timeout<F, Fut, E>(
        self,
        name: impl Into<String>,
        timeout: Duration,
        check: F,
    ) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        self.register(name.into(), Some(timeout), check)
    }

    fn register<F, Fut, E>(mut self, name: String, timeout: Option<Duration>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let run: CheckFn = Arc::new(move || {
            let future = check();
            Box::pin(async move { future.await.map_err(|e| e.to_string()) })
        });
        self.checks.retain(|c| c.name != name);
        self.checks.push(Check { name, timeout, run });
        self
    }

    /// The timeout of checks registered without one (default
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT)).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0").timeout_default(Duration::from_secs(3)).build();
    /// ```
    pub fn timeout_default(mut self, timeout: Duration) -> Self {
        self.timeout_default = timeout;
        self
    }

    /// Reports `telemetry`'s pipeline in `/health` and redacts check errors with its redactor
    /// (unless [`redactor`](Self::redactor) sets another). [`Health::for_telemetry`] calls it.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// let health = Health::builder("1.0.0").telemetry(&telemetry).build();
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn telemetry(mut self, telemetry: &Telemetry) -> Self {
        self.telemetry = Some(telemetry.clone());
        self
    }

    /// The redactor check errors and export errors pass through (default: the pipeline's,
    /// else [`Redactor::default`]).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_core::Redactor;
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0").redactor(Redactor::default()).build();
    /// ```
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The age past which a record still queued for export (any signal) makes the pipeline's
    /// entry `degraded`: export has fallen behind. Default
    /// [`DEFAULT_BACKLOG_MAX_AGE`](Self::DEFAULT_BACKLOG_MAX_AGE) (30 s).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0").backlog_max_age(Duration::from_secs(60)).build();
    /// ```
    pub fn backlog_max_age(mut self, age: Duration) -> Self {
        self.backlog.max_age = age;
        self
    }

    /// The share of a signal's queue byte limit (between 0 and 1) past which the pipeline's
    /// entry is `degraded`: the queue is close to dropping records. A value outside (0, 1]
    /// is clamped into it (NaN keeps the default). Default
    /// [`DEFAULT_BACKLOG_HIGH_WATER`](Self::DEFAULT_BACKLOG_HIGH_WATER) (0.8).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0").backlog_high_water(0.5).build();
    /// ```
    pub fn backlog_high_water(mut self, share: f64) -> Self {
        if !share.is_nan() {
            self.backlog.high_water = share.clamp(f64::MIN_POSITIVE, 1.0);
        }
        self
    }

    /// The instant `uptime` counts from (default: when the builder was created, normally at
    /// start-up).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Instant;
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let started = Instant::now();
    /// let health = Health::builder("1.0.0").started_at(started).build();
    /// ```
    pub fn started_at(mut self, started: Instant) -> Self {
        self.started = started;
        self
    }

    /// The service.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder("1.0.0").build();
    /// ```
    pub fn build(self) -> Health {
        let redactor = self
            .redactor
            .or_else(|| self.telemetry.as_ref().map(|t| t.redactor().clone()))
            .unwrap_or_default();
        let timeout_default = self.timeout_default;
        Health {
            inner: Arc::new(Inner {
                version: self.version,
                checks: self
                    .checks
                    .into_iter()
                    .map(|c| ResolvedCheck {
                        timeout: c.timeout.unwrap_or(timeout_default),
                        name: c.name,
                        run: c.run,
                    })
                    .collect(),
                telemetry: self.telemetry,
                redactor,
                started: self.started,
                backlog: self.backlog,
                baseline: Mutex::new(StatsSnapshot::default()),
            }),
        }
    }
}

/// `GET /health`, `/health/ready` and `/health/live` as one tower service.
///
/// `Service<Request<B>>` for any body `B` (never read), answering `Response<String>` with
/// `Content-Type: application/json` and error type [`Infallible`]. Cheap to clone.
///
/// - **`/health/live`**: `200 {"status":"healthy","version":…,"uptime":…}`; runs no check.
/// - **`/health/ready`**: runs every registered check concurrently, each bounded by its
///   timeout; 200 with `"status":"healthy"` when all pass, else 503 `"unhealthy"`. The body
///   has the `/health` shape without the pipeline entry. The pipeline never affects
///   readiness: a collector outage must not take instances out of rotation.
/// - **`/health`**: the full report, `{"status","version","uptime","checks"}`; every check
///   is `{"status","latency"}` (milliseconds), plus `"error"` (redacted) when unhealthy. With
///   a pipeline ([`Health::for_telemetry`]) `checks.telemetry` reports it: `status`,
///   `latency`, `profile`, `sealed`, `disabled`, `egress_refusals` and, per signal (`spans`,
///   `logs`, `metrics`, `log_lines`), `exported`, `dropped`, `export_failures`,
///   `last_error` (redacted, `null` when none) and `backlog`: `depth` (records queued and
///   not yet exported or dropped), `bytes` (their estimated size), `max_bytes` (the queue
///   limit; 0 for metrics, which are collected rather than queued) and
///   `oldest_age_seconds` (`null` when nothing is queued).
///
/// The report's `status` is `unhealthy` (503) when a check fails, else `degraded` (200) when
/// the pipeline dropped records or failed an export since the previous `/health` report (the
/// first report counts from the pipeline's start) or is falling behind (a signal's oldest
/// queued record is older than [`HealthBuilder::backlog_max_age`], or its queued bytes pass
/// [`HealthBuilder::backlog_high_water`] of its limit), else `healthy` (200); the telemetry
/// entry's `error` says which. `uptime` is in whole seconds since
/// [`HealthBuilder::started_at`].
///
/// # Mounting
///
/// In axum, nested (the service sees `/`, `/ready`, `/live`) or one route per path (it sees
/// the full path); both work:
///
/// ```
/// use stellaops_telemetry_tower::services::Health;
///
/// let health = Health::builder("1.0.0").build();
/// let nested: axum::Router = axum::Router::new().nest_service("/health", health.clone());
/// let routed: axum::Router = axum::Router::new()
///     .route_service("/health", health.clone())
///     .route_service("/health/ready", health.clone())
///     .route_service("/health/live", health);
/// ```
///
/// With a plain hyper server (`hyper` with `server` and `http1`, `hyper-util` with `tokio`
/// and `service`):
///
/// ```no_run
/// use hyper::server::conn::http1;
/// use hyper_util::rt::TokioIo;
/// use hyper_util::service::TowerToHyperService;
/// use stellaops_telemetry_tower::services::Health;
///
/// # async fn serve() -> std::io::Result<()> {
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build().map_err(std::io::Error::other)?;
/// let health = Health::for_telemetry(&telemetry).build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (stream, _) = listener.accept().await?;
///     let service = TowerToHyperService::new(health.clone());
///     tokio::spawn(async move {
///         let _ = http1::Builder::new()
///             .serve_connection(TokioIo::new(stream), service)
///             .await;
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct ResolvedCheck {
    name: String,
    timeout: Duration,
    run: CheckFn,
}

struct Inner {
    version: String,
    checks: Vec<ResolvedCheck>,
    telemetry: Option<Telemetry>,
    redactor: Redactor,
    started: Instant,
    backlog: BacklogLimits,
    /// The pipeline's counters at the previous `/health` report.
    baseline: Mutex<StatsSnapshot>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("version", &self.inner.version)
            .field(
                "checks",
                &self
                    .inner
                    .checks
                    .iter()
                    .map(|c| (&c.name, c.timeout))
                    .collect::<Vec<_>>(),
            )
            .field("telemetry", &self.inner.telemetry)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// A builder reporting `version` (usually `env!("CARGO_PKG_VERSION")`), without a pipeline.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    ///
    /// let health = Health::builder(env!("CARGO_PKG_VERSION")).build();
    /// ```
    pub fn builder(version: impl Into<String>) -> HealthBuilder {
        HealthBuilder::new(version.into())
    }

    /// A builder reporting `telemetry`'s `service.version` and pipeline, redacting with its
    /// redactor.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::services::Health;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// let health = Health::for_telemetry(&telemetry)
    ///     .check("database", || async { Ok::<(), String>(()) })
    ///     .build();
    /// # Ok::<(), stellaops_telemetry_core::TelemetryError>(())
    /// ```
    pub fn for_telemetry(telemetry: &Telemetry) -> HealthBuilder {
        HealthBuilder::new(telemetry.service_version().to_owned()).telemetry(telemetry)
    }
}

/// The future of a [`Health`] response.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<String>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B> tower::Service<Request<B>> for Health {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let endpoint = route(request.uri().path());
        let reported = reported_route(&request, endpoint);
        let head = request.method() == Method::HEAD;
        let allowed = head || request.method() == Method::GET;
        drop(request);
        let inner = self.inner.clone();
        ResponseFuture {
            inner: Box::pin(async move {
                let mut response = match endpoint {
                    None => plain(StatusCode::NOT_FOUND, "not found\n"),
                    Some(_) if !allowed => {
                        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
                        response
                            .headers_mut()
                            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                        response
                    }
                    Some(Endpoint::Live) => json(StatusCode::OK, &inner.report(None), head),
                    Some(Endpoint::Ready) => {
                        let checks = inner.run_checks().await;
                        let report = inner.report(Some(checks));
                        json(report.status.code(), &report, head)
                    }
                    Some(Endpoint::Report) => {
                        let mut checks = inner.run_checks().await;
                        if let Some(telemetry) = &inner.telemetry {
                            checks.entry(TELEMETRY_ENTRY.to_owned()).or_insert_with(|| {
                                Entry::Telemetry(Box::new(inner.pipeline(telemetry)))
                            });
                        }
                        let report = inner.report(Some(checks));
                        json(report.status.code(), &report, head)
                    }
                };
                if let Some(route) = reported {
                    response.extensions_mut().insert(route);
                }
                Ok(response)
            }),
        }
    }
}

/// The route the server layer records when the endpoints are nested (axum's `nest_service`
/// gives the layer no route): the prefix and the endpoint's path.
fn reported_route<B>(
    request: &Request<B>,
    endpoint: Option<Endpoint>,
) -> Option<crate::server::ReportedRoute> {
    #[cfg(feature = "axum")]
    if let Some(nested) = request.extensions().get::<axum::extract::NestedPath>() {
        let prefix = nested.as_str().trim_end_matches('/');
        let tail = match endpoint {
            Some(Endpoint::Report) => "",
            Some(Endpoint::Ready) => "/ready",
            Some(Endpoint::Live) => "/live",
            None => "/*",
        };
        let route = if prefix.is_empty() && tail.is_empty() {
            String::from("/")
        } else {
            format!("{prefix}{tail}")
        };
        return Some(crate::server::ReportedRoute(route.into()));
    }
    let _ = (request, endpoint);
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Report,
    Ready,
    Live,
}

/// Routes on the last path segments: `…/health` (or `/` when nested), `…/health/ready` (or
/// `/ready`), `…/health/live` (or `/live`). A trailing slash is ignored.
fn route(path: &str) -> Option<Endpoint> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let last = segments.next().unwrap_or_default();
    let parent_ok = matches!(segments.next(), None | Some("" | "health"));
    match last {
        "" | "health" => Some(Endpoint::Report),
        "ready" if parent_ok => Some(Endpoint::Ready),
        "live" if parent_ok => Some(Endpoint::Live),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Status {
    fn code(self) -> StatusCode {
        match self {
            Status::Healthy | Status::Degraded => StatusCode::OK,
            Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    status: Status,
    version: &'a str,
    uptime: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<BTreeMap<String, Entry>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry {
    Check(CheckReport),
    Telemetry(Box<PipelineReport>),
}

impl Entry {
    fn status(&self) -> Status {
        match self {
            Entry::Check(c) => c.status,
            Entry::Telemetry(t) => t.status,
        }
    }
}

#[derive(Serialize)]
struct CheckReport {
    status: Status,
    latency: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct PipelineReport {
    status: Status,
    latency: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    profile: String,
    sealed: bool,
    disabled: bool,
    egress_refusals: u64,
    signals: Signals,
}

#[derive(Serialize)]
struct Signals {
    spans: SignalReport,
    logs: SignalReport,
    metrics: SignalReport,
    log_lines: SignalReport,
}

#[derive(Serialize)]
struct SignalReport {
    exported: u64,
    dropped: u64,
    export_failures: u64,
    last_error: Option<String>,
    backlog: BacklogReport,
}

#[derive(Serialize)]
struct BacklogReport {
    depth: u64,
    bytes: u64,
    max_bytes: u64,
    oldest_age_seconds: Option<f64>,
}

/// Aborts the check tasks still running when the response future is dropped.
struct AbortOnDrop<T>(Vec<JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    fn report(&self, checks: Option<BTreeMap<String, Entry>>) -> Report<'_> {
        let status = checks
            .iter()
            .flat_map(|c| c.values())
            .map(Entry::status)
            .fold(Status::Healthy, |worst, s| match (worst, s) {
                (Status::Unhealthy, _) | (_, Status::Unhealthy) => Status::Unhealthy,
                (Status::Degraded, _) | (_, Status::Degraded) => Status::Degraded,
                _ => Status::Healthy,
            });
        Report {
            status,
            version: &self.version,
            uptime: self.started.elapsed().as_secs(),
            checks,
        }
    }

    fn unhealthy(&self, latency: Duration, error: &str) -> Entry {
        Entry::Check(CheckReport {
            status: Status::Unhealthy,
            latency: millis(latency),
            error: Some(self.redactor.redact_str(error).into_owned()),
        })
    }

    /// Runs every check concurrently, each in its own task bounded by its timeout.
    async fn run_checks(&self) -> BTreeMap<String, Entry> {
        let mut entries = BTreeMap::new();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            for check in &self.checks {
                entries.insert(
                    check.name.clone(),
                    self.unhealthy(
                        Duration::ZERO,
                        "not run: health checks need a Tokio runtime with its time driver",
                    ),
                );
            }
            return entries;
        };
        let started = tokio::time::Instant::now();
        let mut tasks = AbortOnDrop(
            self.checks
                .iter()
                .map(|check| {
                    let (run, timeout) = (check.run.clone(), check.timeout);
                    runtime.spawn(async move {
                        let start = tokio::time::Instant::now();
                        let outcome = tokio::time::timeout(timeout, async move { run().await });
                        (outcome.await, start.elapsed())
                    })
                })
                .collect(),
        );
        for (check, task) in self.checks.iter().zip(tasks.0.iter_mut()) {
            let entry = match task.await {
                Ok((Ok(Ok(())), latency)) => Entry::Check(CheckReport {
                    status: Status::Healthy,
                    latency: millis(latency),
                    error: None,
                }),
                Ok((Ok(Err(error)), latency)) => self.unhealthy(latency, &error),
                Ok((Err(_elapsed), latency)) => {
                    self.unhealthy(latency, &format!("timed out after {:?}", check.timeout))
                }
                Err(join) => {
                    let latency = started.elapsed();
                    if join.is_panic() {
                        let payload = join.into_panic();
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "no message".to_owned());
                        self.unhealthy(latency, &format!("check panicked: {message}"))
                    } else {
                        self.unhealthy(latency, "check was cancelled")
                    }
                }
            };
            entries.insert(check.name.clone(), entry);
        }
        entries
    }

    /// The pipeline's entry: its counters and backlog, and `degraded` when records were
    /// dropped or an export failed since the previous report, or export is falling behind.
    fn pipeline(&self, telemetry: &Telemetry) -> PipelineReport {
        let started = Instant::now();
        let stats = telemetry.stats();
        let previous = {
            let mut baseline = self
                .baseline
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *baseline, stats.clone())
        };
        let losses: Vec<String> = signals(&stats)
            .into_iter()
            .zip(signals(&previous))
            .filter_map(|((name, now), (_, before))| {
                let dropped = now.dropped.saturating_sub(before.dropped);
                let failures = now.export_failures.saturating_sub(before.export_failures);
                (dropped > 0 || failures > 0)
                    .then(|| format!("{name}: {dropped} dropped, {failures} failed exports"))
            })
            .collect();
        let behind: Vec<String> = signals(&stats)
            .into_iter()
            .filter_map(|(name, s)| self.behind(s).map(|why| format!("{name}: {why}")))
            .collect();
        let mut problems = Vec::new();
        if !losses.is_empty() {
            problems.push(format!("since the previous report: {}", losses.join("; ")));
        }
        if !behind.is_empty() {
            problems.push(format!("export is falling behind: {}", behind.join("; ")));
        }
        let profile = telemetry.profile();
        PipelineReport {
            status: if problems.is_empty() {
                Status::Healthy
            } else {
                Status::Degraded
            },
            error: (!problems.is_empty()).then(|| problems.join("; ")),
            profile: profile.name.clone(),
            sealed: profile.sealed,
            disabled: telemetry.is_disabled(),
            egress_refusals: stats.egress_refusals,
            signals: Signals {
                spans: self.signal(&stats.spans),
                logs: self.signal(&stats.logs),
                metrics: self.signal(&stats.metrics),
                log_lines: self.signal(&stats.log_lines),
            },
            latency: millis(started.elapsed()),
        }
    }

    /// Why a signal's backlog says export is falling behind, if it does.
    fn behind(&self, s: &SignalSnapshot) -> Option<String> {
        let mut why = Vec::new();
        if let Some(age) = s.queue_oldest_age.filter(|age| *age > self.backlog.max_age) {
            why.push(format!(
                "oldest queued record {:.1} s old (limit {:.1} s)",
                age.as_secs_f64(),
                self.backlog.max_age.as_secs_f64()
            ));
        }
        // The fullest queue decides (the stdout and file outputs of the log lines each have
        // their own); compared in f64, exact enough for a share.
        if s.queue_capacity_bytes > 0
            && f64::from(s.queue_fullest_permille) / 1000.0 > self.backlog.high_water
        {
            why.push(format!(
                "a queue is {:.1} % full ({} of {} queue bytes in use in all)",
                f64::from(s.queue_fullest_permille) / 10.0,
                s.queue_bytes,
                s.queue_capacity_bytes
            ));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    fn signal(&self, s: &SignalSnapshot) -> SignalReport {
        SignalReport {
            exported: s.exported,
            dropped: s.dropped,
            export_failures: s.export_failures,
            last_error: s
                .last_error
                .as_deref()
                .map(|e| self.redactor.redact_str(e).into_owned()),
            backlog: BacklogReport {
                depth: s.queue_depth,
                bytes: s.queue_bytes,
                max_bytes: s.queue_capacity_bytes,
                // Milliseconds are as precise as the figure is worth.
                oldest_age_seconds: s
                    .queue_oldest_age
                    .map(|age| (age.as_secs_f64() * 1000.0).round() / 1000.0),
            },
        }
    }
}

/// Each signal's counters, by the name the report gives it.
fn signals(s: &StatsSnapshot) -> [(&'static str, &SignalSnapshot); 4] {
    [
        ("spans", &s.spans),
        ("logs", &s.logs),
        ("metrics", &s.metrics),
        ("log_lines", &s.log_lines),
    ]
}

fn plain(status: StatusCode, body: &str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, body: &impl Serialize, head: bool) -> Response<String> {
    let Ok(text) = serde_json::to_string(body) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "health report could not be serialized\n",
        );
    };
    let mut response = Response::new(if head { String::new() } else { text });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_end_of_the_path_however_it_is_mounted() {
        for (path, endpoint) in [
            ("", Some(Endpoint::Report)),
            ("/", Some(Endpoint::Report)),
            ("/health", Some(Endpoint::Report)),
            ("/health/", Some(Endpoint::Report)),
            ("/api/health", Some(Endpoint::Report)),
            ("/ready", Some(Endpoint::Ready)),
            ("/health/ready", Some(Endpoint::Ready)),
            ("/api/health/ready/", Some(Endpoint::Ready)),
            ("/live", Some(Endpoint::Live)),
            ("/health/live", Some(Endpoint::Live)),
            ("/other/live", None),
            ("/health/metrics", None),
            ("/metrics", None),
        ] {
            assert_eq!(route(path), endpoint, "{path}");
        }
    }
}
