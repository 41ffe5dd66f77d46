//! `GET exports/forensic/{window}`: one window of the local store as a signed bundle,
//! streamed to the client while it is written.
//!
//! The export runs on a blocking thread: it spools the selection to the work folder, then
//! writes the archive into a [`ChunkWriter`], which sends whole chunks over a bounded channel
//! to the response body. Memory is bounded by the channel, whatever the window's size; a
//! client that stops reading stops the export, and one that goes away ends it.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use stellaops_telemetry_core::bundle::{
    self, BundleError, Compression, ExportReport, ExportRequest, SigningKey, Store, StoreError,
};
use stellaops_telemetry_core::{AUDIT_TARGET, Profile, RequestContext, Telemetry};
use tokio::sync::{mpsc, oneshot};

use super::body::ControlBody;
use super::routes::{Refusal, shown};
use super::{Call, Claims};

/// The variable naming the bundle signing key (a PKCS#8 `PRIVATE KEY` PEM file, Ed25519)
/// read by [`ForensicExports::from_env`].
pub const ENV_BUNDLE_KEY: &str = "STELLAOPS_TELEMETRY_BUNDLE_KEY";

/// The size of each chunk of a streamed archive, in bytes: 64 KiB. No body frame is larger.
pub const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

/// How many chunks wait between the export's thread and the response body: 4. An export
/// holds at most this many chunks, plus the one being written and the one being sent.
pub const EXPORT_CHANNEL_CHUNKS: usize = 4;

/// How many exports run at once by default: 2. Another one is refused (429).
pub const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 2;

/// The longest `{window}` read, in bytes.
const MAX_WINDOW_BYTES: usize = 128;

/// The longest query string read, in bytes.
const MAX_QUERY_BYTES: usize = 1024;

/// Forensic exports over the control plane: the local store to read, and the key that signs
/// the bundles. Given to [`ControlPlaneBuilder::forensic_exports`](super::ControlPlaneBuilder::forensic_exports);
/// without it the export route answers 503 (`no signing key configured`).
///
/// Defaults: the bundle carries the pipeline's profile (whose retention is the longest window
/// accepted), the selection is spooled inside the store folder, and at most
/// [`DEFAULT_MAX_CONCURRENT_EXPORTS`] exports run at once.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::bundle::SigningKey;
/// use stellaops_telemetry_tower::control::{ControlPlane, ForensicExports};
/// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
/// let exports = ForensicExports::new(telemetry.dir(), SigningKey::generate()?);
/// let control = ControlPlane::for_telemetry(&telemetry).forensic_exports(exports).build();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ForensicExports {
    store_dir: PathBuf,
    key: Arc<SigningKey>,
    work_dir: Option<PathBuf>,
    profile: Option<Profile>,
    max_concurrent: usize,
    running: Arc<AtomicUsize>,
}

impl fmt::Debug for ForensicExports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForensicExports")
            .field("store_dir", &self.store_dir)
            .field("key_id", &self.key.key_id())
            .field("work_dir", &self.work_dir)
            .field("profile", &self.profile.as_ref().map(|p| &p.name))
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

impl ForensicExports {
    /// Exports from the store under `store_dir` (the pipeline's [`Telemetry::dir`]), signed
    /// with `key`.
    pub fn new(store_dir: impl Into<PathBuf>, key: SigningKey) -> ForensicExports {
        ForensicExports {
            store_dir: store_dir.into(),
            key: Arc::new(key),
            work_dir: None,
            profile: None,
            max_concurrent: DEFAULT_MAX_CONCURRENT_EXPORTS,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Exports from `store_dir` signed with the key in [`ENV_BUNDLE_KEY`]; `None` when the
    /// variable is unset or empty.
    ///
    /// # Errors
    ///
    /// [`BundleError::Key`] or [`BundleError::Io`] naming the file when the key cannot be
    /// read.
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::ForensicExports;
    /// # let telemetry = stellaops_telemetry_core::Telemetry::builder("svc").exporters(&[]).stdout_logs(false).build()?;
    /// let exports = ForensicExports::from_env(telemetry.dir())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env(store_dir: impl Into<PathBuf>) -> Result<Option<ForensicExports>, BundleError> {
        Self::from_vars(store_dir, |name| std::env::var_os(name))
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    ///
    /// # Example
    ///
    /// ```
    /// use stellaops_telemetry_tower::control::ForensicExports;
    /// let exports = ForensicExports::from_vars("/var/lib/telemetry", |_| None)?;
    /// assert!(exports.is_none());
    /// # Ok::<(), stellaops_telemetry_core::BundleError>(())
    /// ```
    pub fn from_vars(
        store_dir: impl Into<PathBuf>,
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Option<ForensicExports>, BundleError> {
        let Some(path) = var(ENV_BUNDLE_KEY).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let key = SigningKey::from_pem_file(Path::new(&path))?;
        Ok(Some(ForensicExports::new(store_dir, key)))
    }

    /// Spools selections under `dir` (default: the store folder). It needs room for the
    /// largest selection; each export's spool is removed when it ends.
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> ForensicExports {
        self.work_dir = Some(dir.into());
        self
    }

    /// The profile the bundles carry, whose retention is the longest window accepted
    /// (default: the pipeline's profile).
    pub fn profile(mut self, profile: Profile) -> ForensicExports {
        self.profile = Some(profile);
        self
    }

    /// At most `max` exports at once (default [`DEFAULT_MAX_CONCURRENT_EXPORTS`]; at least
    /// 1). Another one is refused with 429.
    pub fn max_concurrent(mut self, max: usize) -> ForensicExports {
        self.max_concurrent = max.max(1);
        self
    }
}

/// What the export's thread sends to the response body.
pub(super) enum Piece {
    /// The next chunk of the archive.
    Data(Bytes),
    /// The archive is complete.
    Done,
    /// The export failed: the answer when nothing was sent yet, and what the audit line says.
    Failed { refusal: Refusal, detail: String },
}

/// One running export, counted against [`ForensicExports::max_concurrent`] until dropped.
struct Permit(Arc<AtomicUsize>);

impl Permit {
    fn acquire(exports: &ForensicExports) -> Option<Permit> {
        exports
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < exports.max_concurrent).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(exports.running.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers `GET exports/forensic/{window}`: checks the window, query and tenant, starts the
/// export, and answers once its first chunk is written (or it failed before that).
pub(super) async fn answer(
    exports: &ForensicExports,
    telemetry: &Telemetry,
    parts: &Parts,
    raw_window: &str,
    claims: &Claims,
    call: &mut Call,
) -> Result<Response<ControlBody>, Refusal> {
    call.window = Some(shown(raw_window));
    let profile = exports
        .profile
        .clone()
        .unwrap_or_else(|| telemetry.profile().clone());
    let retention = Duration::from_secs(u64::from(profile.retention_days) * 86_400);
    let (from, to) = parse_window(raw_window, SystemTime::now(), retention)?;
    call.window = Some(format!("{}..{}", rfc3339(from), rfc3339(to)));
    let query = parse_query(parts.uri.query())?;
    let tenant = export_tenant(claims, query.tenant, call)?;
    let permit = Permit::acquire(exports).ok_or_else(|| {
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many exports running (at most {})",
                exports.max_concurrent
            ),
        )
    })?;
    let (pieces, mut received) = mpsc::channel(EXPORT_CHANNEL_CHUNKS);
    let (audited, head_audited) = oneshot::channel();
    call.audited = Some(audited);
    let job = Job {
        telemetry: telemetry.clone(),
        store_dir: exports.store_dir.clone(),
        work_dir: exports
            .work_dir
            .clone()
            .unwrap_or_else(|| exports.store_dir.clone()),
        key: exports.key.clone(),
        profile,
        max_window: retention,
        from,
        to,
        tenant: tenant.clone(),
        compression: query.compression,
        audit: Finished::of(call),
        head_audited,
    };
    spawn(job, permit, pieces).map_err(|_| {
        call.error = Some("cannot start the export thread".to_owned());
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the export could not start",
        )
    })?;
    match received.recv().await {
        Some(Piece::Data(first)) => Ok(archive_response(
            ControlBody::stream(first, received),
            tenant.as_deref(),
            (from, to),
            query.compression,
        )),
        Some(Piece::Failed { refusal, detail }) => {
            call.error = Some(detail);
            Err(refusal)
        }
        Some(Piece::Done) | None => {
            call.error = Some("the export wrote nothing".to_owned());
            Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the export failed",
            ))
        }
    }
}

/// The 200 answer: the archive's headers, and the body streaming it.
fn archive_response(
    body: ControlBody,
    tenant: Option<&str>,
    (from, to): (SystemTime, SystemTime),
    compression: Compression,
) -> Response<ControlBody> {
    let (content_type, extension) = match compression {
        Compression::Zstd => ("application/zstd", "tar.zst"),
        _ => ("application/x-tar", "tar"),
    };
    // Tenant ids are `A-Z a-z 0-9 . _ - @ :`; a colon is no file name character everywhere.
    let who = tenant.map_or_else(|| "all".to_owned(), |t| t.replace(':', "_"));
    let name = format!(
        "stellaops-{who}-{}-{}.{extension}",
        compact(from),
        compact(to)
    );
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The tenant exported: the token's when it is bound to one (the query may only repeat it),
/// else the query's, else every tenant.
fn export_tenant(
    claims: &Claims,
    asked: Option<String>,
    call: &mut Call,
) -> Result<Option<String>, Refusal> {
    let tenant = match (&claims.tenant, asked) {
        (Some(bound), None) => Some(bound.clone()),
        (Some(bound), Some(asked)) if *bound == asked => Some(asked),
        (Some(_), Some(asked)) => {
            call.tenant = Some(asked);
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "the token is bound to another tenant",
            )
            .field("tenant"));
        }
        (None, asked) => asked,
    };
    call.tenant.clone_from(&tenant);
    Ok(tenant)
}

/// The window: `FROM..TO` (RFC 3339, UTC) or a duration ending `now` (`1h`, `30m`), not
/// empty and at most `retention` long.
fn parse_window(
    raw: &str,
    now: SystemTime,
    retention: Duration,
) -> Result<(SystemTime, SystemTime), Refusal> {
    let bad = |why: String| Refusal::bad_request("window", why);
    let expected = "expected FROM..TO in RFC 3339, UTC (2026-12-05T09:00:00Z..2026-12-05T10:00:00Z), or a duration ending now (1h, 30m)";
    if raw.len() > MAX_WINDOW_BYTES {
        return Err(bad(format!(
            "window longer than {MAX_WINDOW_BYTES} bytes ({expected})"
        )));
    }
    let text = percent_decode(raw)
        .ok_or_else(|| bad(format!("malformed window `{}` ({expected})", shown(raw))))?;
    let (from, to) = match text.split_once("..") {
        Some((from, to)) => {
            let time = |which: &str, value: &str| {
                humantime::parse_rfc3339(value).map_err(|_| {
                    bad(format!(
                        "the window's {which} `{}` is not an RFC 3339 time in UTC ({expected})",
                        shown(value)
                    ))
                })
            };
            (time("start", from)?, time("end", to)?)
        }
        None => {
            let length = humantime::parse_duration(&text)
                .map_err(|_| bad(format!("malformed window `{}` ({expected})", shown(&text))))?;
            let from = now
                .checked_sub(length)
                .ok_or_else(|| bad(format!("the window `{}` starts too early", shown(&text))))?;
            (from, now)
        }
    };
    let length = to.duration_since(from).ok().filter(|d| !d.is_zero());
    let Some(length) = length else {
        return Err(bad(format!(
            "the window is empty: its end ({}) is not after its start ({})",
            rfc3339(to),
            rfc3339(from)
        )));
    };
    if length > retention {
        return Err(bad(format!(
            "the window of {}s is longer than the profile's retention of {} days",
            length.as_secs(),
            retention.as_secs() / 86_400
        )));
    }
    Ok((from, to))
}

/// The query of an export.
#[derive(Debug, Default)]
struct ExportQuery {
    tenant: Option<String>,
    compression: Compression,
}

/// Reads `tenant` (a tenant id) and `compression` (`none` or `zstd`), each at most once, and
/// nothing else.
fn parse_query(query: Option<&str>) -> Result<ExportQuery, Refusal> {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("query longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let mut out = ExportQuery::default();
    let mut compression_seen = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |why: String| Refusal::bad_request(&shown(key), why);
        let value = percent_decode(value)
            .ok_or_else(|| bad(format!("malformed value of `{}`", shown(key))))?;
        match key {
            "tenant" if out.tenant.is_some() => return Err(bad("tenant given twice".into())),
            "tenant" => {
                let tenant = crate::server::Tenant::parse(value.as_bytes()).ok_or_else(|| {
                    bad(format!(
                        "invalid tenant `{}`: a tenant id is 1 to 128 bytes of A-Z a-z 0-9 . _ - @ :",
                        shown(&value)
                    ))
                })?;
                out.tenant = Some(tenant.as_str().to_owned());
            }
            "compression" if compression_seen => {
                return Err(bad("compression given twice".into()));
            }
            "compression" => {
                compression_seen = true;
                out.compression = match value.as_str() {
                    "none" => Compression::None,
                    "zstd" => Compression::Zstd,
                    other => {
                        return Err(bad(format!(
                            "unknown compression `{}` (expected none or zstd)",
                            shown(other)
                        )));
                    }
                };
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter `{}` (expected tenant, compression)",
                    shown(other)
                )));
            }
        }
    }
    Ok(out)
}

/// `%XX`-decodes `text`; `None` when the result is not UTF-8. A `%` not followed by two hex
/// digits stays as written (and is then refused by the window, tenant or compression rules).
fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// RFC 3339 in UTC, as the bundle's manifest writes it.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339(t).to_string()
}

/// `20261205T090000Z`: a time in a file name (whole seconds, no separators).
fn compact(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// Everything the export's thread needs.
struct Job {
    telemetry: Telemetry,
    store_dir: PathBuf,
    work_dir: PathBuf,
    key: Arc<SigningKey>,
    profile: Profile,
    max_window: Duration,
    from: SystemTime,
    to: SystemTime,
    tenant: Option<String>,
    compression: Compression,
    audit: Finished,
    /// Fires once the call's own audit line is written, so the closing line follows it.
    head_audited: oneshot::Receiver<()>,
}

/// Runs `job` on the runtime's blocking threads, or on a thread of its own outside a runtime.
fn spawn(job: Job, permit: Permit, pieces: mpsc::Sender<Piece>) -> io::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            // Detached: the export ends on its own, or when the body is dropped.
            drop(runtime.spawn_blocking(move || run(job, permit, &pieces)));
            Ok(())
        }
        Err(_) => std::thread::Builder::new()
            .name("stellaops-export".to_owned())
            .spawn(move || run(job, permit, &pieces))
            .map(drop),
    }
}

/// The export's thread: writes the archive into the channel, then says how it ended.
fn run(job: Job, permit: Permit, pieces: &mpsc::Sender<Piece>) {
    let mut out = ChunkWriter::new(pieces.clone());
    let result = export(&job, &mut out).and_then(|report| {
        out.finish()
            .map(|()| report)
            .map_err(|source| BundleError::Write { source })
    });
    let detail = result.as_ref().err().map(chain);
    let last = match &result {
        Ok(_) => Piece::Done,
        Err(e) => Piece::Failed {
            refusal: refusal_of(e),
            detail: detail.clone().unwrap_or_default(),
        },
    };
    // Free the place before the client can see the end, so that it may export again at once.
    drop(permit);
    // The body may be gone already; the audit line is written either way.
    let _ = pieces.blocking_send(last);
    if out.sent_any {
        // The answer's head went out: its audit line is written (or the call was dropped).
        let Job {
            telemetry,
            audit,
            head_audited,
            ..
        } = job;
        let _ = head_audited.blocking_recv();
        audit.write(&telemetry, result.as_ref().ok(), detail.as_deref());
    }
}

/// Opens the store and exports the window into `out`.
fn export(job: &Job, out: &mut ChunkWriter) -> Result<ExportReport, BundleError> {
    let store = Store::open(&job.store_dir)?.max_window(job.max_window);
    let request = ExportRequest {
        from: job.from,
        to: job.to,
        tenant: job.tenant.as_deref(),
        profile: &job.profile,
        compression: job.compression,
    };
    bundle::export_into(&store, &request, &job.key, &job.work_dir, out, &mut |_| {})
}

/// The answer to an export that failed before anything was sent. Messages name the window
/// or tenant at fault, never a local path.
fn refusal_of(e: &BundleError) -> Refusal {
    match e {
        BundleError::InvalidWindow { .. }
        | BundleError::Store(StoreError::EmptyWindow { .. } | StoreError::WindowTooLong { .. }) => {
            Refusal::bad_request("window", e.to_string())
        }
        BundleError::Store(StoreError::EmptyTenant) => {
            Refusal::bad_request("tenant", e.to_string())
        }
        BundleError::InvalidMeta { field, .. } => Refusal::bad_request(field, e.to_string()),
        BundleError::Store(StoreError::MissingDir { .. } | StoreError::NotADirectory { .. }) => {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the telemetry store cannot be opened",
            )
        }
        _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "the export failed"),
    }
}

/// `e` with its sources, for the audit line.
fn chain(e: &BundleError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An [`io::Write`] that sends what it is given as chunks of [`EXPORT_CHUNK_BYTES`] over the
/// channel, waiting while the channel is full. A closed channel (the client went away) is a
/// [`io::ErrorKind::BrokenPipe`] error, which stops the export.
struct ChunkWriter {
    pieces: mpsc::Sender<Piece>,
    buffer: Vec<u8>,
    sent_any: bool,
}

impl ChunkWriter {
    fn new(pieces: mpsc::Sender<Piece>) -> ChunkWriter {
        ChunkWriter {
            pieces,
            buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
            sent_any: false,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(EXPORT_CHUNK_BYTES));
        self.pieces
            .blocking_send(Piece::Data(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        self.sent_any = true;
        Ok(())
    }

    /// Sends the last, partial chunk.
    fn finish(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let taken = data.len().min(EXPORT_CHUNK_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == EXPORT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(taken)
    }

    /// Chunks are sent whole, so that every frame but the last is full; [`finish`]
    /// (Self::finish) sends the rest.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The closing audit line of an export whose answer's head was sent.
struct Finished {
    actor: String,
    route: String,
    method: String,
    tenant: Option<String>,
    window: Option<String>,
}

impl Finished {
    fn of(call: &Call) -> Finished {
        Finished {
            actor: call.actor.clone(),
            route: call.route.clone(),
            method: call.method.to_string(),
            tenant: call.tenant.clone(),
            window: call.window.clone(),
        }
    }

    /// Writes the line: `export` `complete` with the archive's sha256, size and counts, or
    /// `failed` with what went wrong.
    fn write(&self, telemetry: &Telemetry, report: Option<&ExportReport>, error: Option<&str>) {
        let packed = report.map(|r| &r.packed);
        let counts = report.map(|r| r.selection.counts);
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            let _context = self
                .tenant
                .as_deref()
                .map(|t| RequestContext::new().with_tenant(t).attach());
            tracing::info!(
                target: AUDIT_TARGET,
                control = "control_plane",
                actor = %self.actor,
                route = %self.route,
                method = %self.method,
                outcome = StatusCode::OK.as_u16(),
                target_tenant = self.tenant.as_deref(),
                window = self.window.as_deref(),
                export = if report.is_some() { "complete" } else { "failed" },
                archive_sha256 = packed.map(|p| p.sha256.as_str()),
                archive_bytes = packed.map(|p| p.size),
                spans = counts.map(|c| c.spans),
                points = counts.map(|c| c.points),
                log_records = counts.map(|c| c.log_records),
                error,
                "telemetry forensic export finished"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn windows_are_ranges_or_durations_and_refused_when_empty_or_too_long() {
        let now =
            humantime::parse_rfc3339("2026-12-05T10:00:00Z").unwrap_or(SystemTime::UNIX_EPOCH);
        let at = |s: &str| humantime::parse_rfc3339(s).unwrap_or(SystemTime::UNIX_EPOCH);
        let range = parse_window("2026-12-05T09:00:00Z..2026-12-05T10:00:00Z", now, DAY);
        assert_eq!(
            range.ok(),
            Some((at("2026-12-05T09:00:00Z"), at("2026-12-05T10:00:00Z")))
        );
        let encoded = parse_window(
            "2026-12-05T09%3A00%3A00Z..2026-12-05T10%3A00%3A00Z",
            now,
            DAY,
        );
        assert_eq!(encoded.ok(), range_of(at, "09", "10"));
        assert_eq!(
            parse_window("30m", now, DAY).ok(),
            Some((at("2026-12-05T09:30:00Z"), now))
        );
        for bad in [
            "",
            "0s",
            "yesterday",
            "2026-12-05T10:00:00Z..2026-12-05T09:00:00Z",
            "2026-12-05T10:00:00Z..2026-12-05T10:00:00Z",
            "2026-12-05T09:00:00+01:00..2026-12-05T10:00:00Z",
            "2026-12-05T09:00:00Z..",
            "2d",
            "%zz",
            &"1".repeat(200),
        ] {
            let refused = parse_window(bad, now, DAY).err();
            assert_eq!(
                refused.as_ref().and_then(|r| r.field.as_deref()),
                Some("window"),
                "{bad:?}"
            );
        }
    }

    fn range_of(
        at: impl Fn(&str) -> SystemTime,
        from: &str,
        to: &str,
    ) -> Option<(SystemTime, SystemTime)> {
        Some((
            at(&format!("2026-12-05T{from}:00:00Z")),
            at(&format!("2026-12-05T{to}:00:00Z")),
        ))
    }

    #[test]
    fn the_query_takes_a_tenant_and_a_compression_once_and_nothing_else() {
        let query = parse_query(Some("tenant=acme&compression=zstd")).ok();
        assert_eq!(
            query.as_ref().and_then(|q| q.tenant.as_deref()),
            Some("acme")
        );
        assert_eq!(query.map(|q| q.compression), Some(Compression::Zstd));
        for (bad, field) in [
            ("tenant=", "tenant"),
            ("tenant=a%0Ab", "tenant"),
            ("tenant=a&tenant=b", "tenant"),
            ("compression=gzip", "compression"),
            ("compression=none&compression=zstd", "compression"),
            ("token=eyJabc", "token"),
        ] {
            let refused = parse_query(Some(bad)).err();
            assert_eq!(
                refused.as_ref().and_then(|r| r.field.as_deref()),
                Some(field),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_name_times_are_compact() {
        let t =
            humantime::parse_rfc3339("2026-12-05T09:00:00.5Z").unwrap_or(SystemTime::UNIX_EPOCH);
        assert_eq!(compact(t), "20261205T090000Z");
    }
}
