//! [`WebhookHook`]: incident changes POSTed as JSON to a URL the egress policy allows, and
//! the blocking HTTP client it shares with the command line.

use std::fmt;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{IncidentEvent, IncidentHook};
use crate::egress::{
    EgressDecision, EgressError, EgressPolicy, EgressTarget, Host, SealedResolver, parse_endpoint,
};

/// How long one delivery may take by default: 5 seconds.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The signal name a webhook's connections are checked under.
const SIGNAL: &str = "incidents";

/// The most of a webhook's answer read (and thrown away) so the connection can be reused.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// An [`IncidentHook`] that POSTs every incident change ([`IncidentEvent`] as JSON) to a URL.
///
/// Before each delivery the hook asks its egress policy about the URL (signal `incidents`);
/// a refusal makes no connection at all: it is counted ([`refused`](WebhookHook::refused))
/// and reported as one warning. An allowed delivery that fails (no connection, timeout, an
/// answer other than 2xx) is counted in [`failed`](WebhookHook::failed) with a warning; a
/// delivered one in [`delivered`](WebhookHook::delivered). Nothing is retried.
///
/// Warnings and [`Debug`](fmt::Debug) show only the URL's scheme, host and port: webhook
/// paths and queries often carry a secret (chat webhooks do).
///
/// The hook blocks while it delivers (at most the [timeout](WebhookHook::timeout), 5 s by
/// default); the pipeline calls it on the hooks' own thread, so the caller of
/// [`Incidents::start`](crate::Incidents::start) never waits for it. Give it the pipeline's
/// policy ([`Telemetry::egress_policy`](crate::Telemetry::egress_policy)) so a sealed service
/// stays sealed: add it once the pipeline is built, with
/// [`Incidents::add_hook`](crate::Incidents::add_hook). No proxy is used and no redirect
/// followed; host names are resolved by the system, loopback names as 127.0.0.1 and ::1.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stellaops_telemetry_core::{Telemetry, WebhookHook};
///
/// let telemetry = Telemetry::builder("scanner").exporters(&[]).sealed(true).build()?;
/// let hook = Arc::new(
///     WebhookHook::new("http://127.0.0.1:9000/incidents", telemetry.egress_policy().clone())?
///         .timeout(Duration::from_secs(2)),
/// );
/// telemetry.incidents().add_hook(hook.clone());
/// assert_eq!((hook.delivered(), hook.failed(), hook.refused()), (0, 0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WebhookHook {
    url: String,
    host: Host,
    port: u16,
    https: bool,
    policy: Arc<dyn EgressPolicy>,
    timeout: Duration,
    /// Built on first delivery (on the hooks' thread), never for a refused URL.
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

impl fmt::Debug for WebhookHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHook")
            .field("url", &self.shown())
            .field("policy", &self.policy.name())
            .field("timeout", &self.timeout)
            .field("delivered", &self.delivered())
            .field("failed", &self.failed())
            .field("refused", &self.refused())
            .finish()
    }
}

impl WebhookHook {
    /// A hook POSTing to `url` (http or https) when `policy` allows it, with the default
    /// timeout of 5 s. Builds no client and makes no connection.
    ///
    /// # Errors
    ///
    /// [`EgressError::InvalidEndpoint`] when `url` is not an http(s) URL whose host and port
    /// can be read with certainty, or carries credentials (shown masked).
    pub fn new(
        url: impl Into<String>,
        policy: Arc<dyn EgressPolicy>,
    ) -> Result<WebhookHook, EgressError> {
        let url = url.into().trim().to_owned();
        let (host, port) = parse_endpoint(&url)?;
        let https = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        Ok(WebhookHook {
            url,
            host,
            port,
            https,
            policy,
            timeout: DEFAULT_WEBHOOK_TIMEOUT,
            client: OnceLock::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// How long one delivery (connection, request and answer) may take. Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> WebhookHook {
        self.timeout = timeout;
        self
    }

    /// Events delivered (answered with a 2xx status).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Events whose delivery was tried and failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Events not sent because the egress policy refused the URL (no connection made).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The URL as warnings show it: scheme, host and port.
    fn shown(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match &self.host {
            Host::Ip(std::net::IpAddr::V6(ip)) => format!("{scheme}://[{ip}]:{}", self.port),
            host => format!("{scheme}://{host}:{}", self.port),
        }
    }

    /// Sends one event (the policy has allowed it).
    fn deliver(&self, event: &IncidentEvent) -> Result<(), String> {
        let client = self
            .client
            .get_or_init(|| blocking_client(&self.host, self.https, self.timeout))
            .as_ref()
            .map_err(Clone::clone)?;
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let answer = client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .map_err(|e| error_chain(&e.without_url()))?;
        let status = answer.status();
        let _ = answer.take(MAX_ANSWER_BYTES).read_to_end(&mut Vec::new());
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered HTTP {status}"))
        }
    }
}

impl IncidentHook for WebhookHook {
    fn notify(&self, event: &IncidentEvent) {
        let target = EgressTarget {
            signal: SIGNAL,
            url: &self.url,
            host: &self.host,
            port: self.port,
        };
        if let EgressDecision::Refuse { reason } = self.policy.check(&target) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "stellaops_telemetry",
                signal = SIGNAL,
                endpoint = %self.shown(),
                policy = self.policy.name(),
                reason = %reason,
                outcome = event.kind.as_str(),
                tenant = %event.incident.tenant,
                "egress policy refused the incident webhook; the notification was not sent"
            );
            return;
        }
        match outside_runtime(|| self.deliver(event)) {
            Ok(()) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target: "stellaops_telemetry",
                    signal = SIGNAL,
                    endpoint = %self.shown(),
                    error = %error,
                    outcome = event.kind.as_str(),
                    tenant = %event.incident.tenant,
                    "incident webhook delivery failed"
                );
            }
        }
    }
}

/// Runs `f` where a blocking HTTP client may be built and used: right here, or on a thread
/// of its own when the caller is inside an async runtime (where reqwest's blocking client
/// refuses to work).
pub(crate) fn outside_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A blocking HTTP client for one checked `host`: rustls with the ring provider passed in
/// (no process-wide default is installed), the system roots only for https, no proxy from
/// the environment and no redirects (only the URL the policy judged is dialled), IP
/// addresses and loopback names dialled as written, `timeout` for a whole exchange.
///
/// Must be called outside an async runtime (see [`outside_runtime`]).
pub(crate) fn blocking_client(
    host: &Host,
    https: bool,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, String> {
    let provider = Arc::new(crate::tls::provider());
    let mut roots = rustls::RootCertStore::empty();
    if https {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    blocking_client_with_tls(host, tls, timeout)
}

/// As [`blocking_client`], with the TLS settings given (a CA of its own, a client
/// certificate).
pub(crate) fn blocking_client_with_tls(
    host: &Host,
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, String> {
    let builder = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    // A loopback name never goes to the system resolver; other names do (the policy allowed
    // them, so this is not a sealed pipeline's loopback-only dial).
    let resolver = SealedResolver::for_host(host);
    let builder = match host {
        Host::Name(_) if !resolver.addresses().is_empty() => {
            builder.dns_resolver(Arc::new(resolver))
        }
        _ => builder,
    };
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

/// The error's message followed by its causes, each once (reqwest repeats its source's text).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
