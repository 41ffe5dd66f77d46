//! `stella-telemetry keygen` and `stella-telemetry bundle export|verify|inspect|replay`:
//! offline bundles from the local store, signed with an Ed25519 key.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{FAILURE, Failure, UNREACHABLE, by_name, chain};
use crate::bundle::{
    self, BundleError, Compression, ExportReport, ExportRequest, OtlpSignal, SigningKey, Store,
    VerifiedBundle, VerifyingKey,
};
use crate::{EgressPolicy, OpenPolicy, Replay, ReplayError, ReplayProtocol, ReplayReport};

/// The environment variable that puts replay under the sealed egress policy.
const SEALED_VARIABLE: &str = "STELLAOPS_TELEMETRY_SEALED";

/// The profile whose retention and configuration an export uses when none is named.
const DEFAULT_PROFILE: &str = "default";

/// Whether progress bars may be drawn (on standard error, and only when it is a terminal).
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    pub(super) shown: bool,
}

impl Progress {
    /// A bar of `total` bytes, or a byte counter when the total is unknown; hidden unless
    /// progress is shown and standard error is a terminal.
    fn bar(self, total: Option<u64>, message: &'static str) -> ProgressBar {
        if !self.shown {
            return ProgressBar::hidden();
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{spinner} {msg}: {bytes} read ({bytes_per_sec})",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar
    }
}

/// `stella-telemetry keygen`.
#[derive(Debug, Args)]
pub(super) struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); the public key goes to
    /// KEY.pub (SubjectPublicKeyInfo PEM).
    #[arg(long, value_name = "KEY")]
    out: PathBuf,
    /// Replace KEY and KEY.pub when they exist (by default an existing file is refused).
    #[arg(long)]
    force: bool,
}

/// The bundle commands.
#[derive(Debug, Subcommand)]
pub(super) enum BundleCommand {
    /// Exports one window (and tenant) of the local store to a signed bundle.
    Export(ExportArgs),
    /// Verifies a bundle offline with the public key: layout, signature, every file's
    /// digest, every record's time and tenant. Exit 0 and one line when it verifies, 1 and
    /// the first problem found when it does not.
    Verify {
        /// The public key (SubjectPublicKeyInfo PEM, as `keygen` writes to KEY.pub).
        #[arg(long = "pub", value_name = "PUB")]
        public: PathBuf,
        /// The bundle.
        file: PathBuf,
    },
    /// Shows what a bundle says it holds, without a key and without verifying it.
    Inspect {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The bundle.
        file: PathBuf,
    },
    /// Verifies a bundle, then sends its records to an OTLP endpoint. The endpoint goes
    /// through the egress policy: with STELLAOPS_TELEMETRY_SEALED=true the sealed policy
    /// (loopback endpoints only), otherwise any endpoint. Exit 3 when the endpoint cannot
    /// be reached.
    Replay {
        /// The collector's base URL (http://127.0.0.1:4318 for OTLP/HTTP, :4317 for gRPC).
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// The OTLP transport.
        #[arg(long, value_enum, default_value_t = Protocol::Http)]
        protocol: Protocol,
        /// The public key (SubjectPublicKeyInfo PEM).
        #[arg(long = "pub", value_name = "PUB")]
        public: PathBuf,
        /// The bundle.
        file: PathBuf,
    },
}

/// `stella-telemetry bundle export`.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// The telemetry directory the file exporters write (its traces/, metrics/, logs/).
    #[arg(long, value_name = "DATA")]
    dir: PathBuf,
    /// The window's start (included): an RFC 3339 time in UTC (2026-12-05T09:00:00Z), or a
    /// duration back from --to (1h, 30m, 2days).
    #[arg(long, value_name = "T", value_parser = parse_from)]
    from: From,
    /// The window's end (excluded): an RFC 3339 time in UTC. Default: now.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    to: Option<SystemTime>,
    /// Only this tenant's records (their `tenant.id`); every tenant's when left out.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// The profile whose configuration the bundle carries and whose retention bounds the
    /// window (default, forensic, airgap).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    profile: String,
    /// The private key to sign with (PKCS#8 PEM, as `keygen` writes).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The bundle to write (through a temporary file renamed into place at the end).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Compress the archive with zstd (`.tar.zst`); a plain tar otherwise.
    #[arg(long)]
    zstd: bool,
    /// Replace FILE when it exists (by default an existing file is refused).
    #[arg(long)]
    force: bool,
}

/// `--from`: a time, or a duration back from `--to`.
#[derive(Debug, Clone, Copy)]
enum From {
    At(SystemTime),
    Ago(Duration),
}

/// The OTLP transport of `bundle replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Protocol {
    /// OTLP/HTTP with protobuf bodies (POST URL/v1/traces, …).
    Http,
    /// OTLP/gRPC.
    Grpc,
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text.trim())
        .map_err(|e| format!("expected an RFC 3339 time in UTC such as 2026-12-05T09:00:00Z ({e})"))
}

fn parse_from(text: &str) -> Result<From, String> {
    if let Ok(at) = humantime::parse_rfc3339(text.trim()) {
        return Ok(From::At(at));
    }
    humantime::parse_duration(text.trim())
        .map(From::Ago)
        .map_err(|_| {
            "expected an RFC 3339 time in UTC such as 2026-12-05T09:00:00Z, or a duration such \
             as 1h or 30m"
                .to_owned()
        })
}

/// Runs `keygen`.
pub(super) fn keygen(args: KeygenArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let public_path = {
        let mut name = OsString::from(args.out.as_os_str());
        name.push(".pub");
        PathBuf::from(name)
    };
    if !args.force {
        for path in [&args.out, &public_path] {
            refuse_existing(path)?;
        }
    }
    let key = SigningKey::generate().map_err(|e| Failure::from(chain(&e)))?;
    let private = staged(&args.out, key.to_pem().as_bytes(), 0o600)?;
    let public = staged(&public_path, key.public_key().to_pem().as_bytes(), 0o644)?;
    persist(private, &args.out, args.force)?;
    if let Err(failure) = persist(public, &public_path, args.force) {
        // Nothing half-written: no private key without its public half.
        let _ = fs::remove_file(&args.out);
        return Err(failure);
    }
    writeln!(
        out,
        "key id {}\nprivate key {} (keep it secret)\npublic key {}",
        key.key_id(),
        args.out.display(),
        public_path.display()
    )
    .map_err(write_error)
}

fn refuse_existing(path: &Path) -> Result<(), Failure> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(Failure::from(format!(
            "`{}` already exists; pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// `contents` in a temporary file beside `path`, with `mode` on Unix, synced.
fn staged(path: &Path, contents: &[u8], mode: u32) -> Result<tempfile::NamedTempFile, Failure> {
    let dir = parent_of(path);
    let failed = |action: &str, e: io::Error| {
        Failure::from(format!("cannot {action} `{}`: {e}", path.display()))
    };
    let mut file = tempfile::Builder::new()
        .prefix(".stella-key-")
        .tempfile_in(dir)
        .map_err(|e| failed("write", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(file.path(), fs::Permissions::from_mode(mode))
            .map_err(|e| failed("set the mode of", e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| failed("write", e))?;
    Ok(file)
}

fn persist(file: tempfile::NamedTempFile, path: &Path, replace: bool) -> Result<(), Failure> {
    let persisted = if replace {
        file.persist(path).map(drop)
    } else {
        file.persist_noclobber(path).map(drop)
    };
    persisted.map_err(|e| {
        Failure::from(if e.error.kind() == io::ErrorKind::AlreadyExists {
            format!(
                "`{}` already exists; pass --force to replace it",
                path.display()
            )
        } else {
            format!("cannot write `{}`: {}", path.display(), e.error)
        })
    })
}

/// The folder of `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Runs one bundle command.
pub(super) fn run(
    command: BundleCommand,
    out: &mut dyn Write,
    progress: Progress,
) -> Result<(), Failure> {
    match command {
        BundleCommand::Export(args) => export(args, out, progress),
        BundleCommand::Verify { public, file } => {
            let key = load_public(&public)?;
            let verified = verify(&file, &key)?;
            print_verified(&file, &verified, out)
        }
        BundleCommand::Inspect { json, file } => {
            let inspection = bundle::inspect(&file).map_err(|e| not_a_bundle(&file, &e))?;
            let text = if json {
                serde_json::to_string_pretty(&inspection).map_err(|e| e.to_string())?
            } else {
                inspection.to_string()
            };
            writeln!(out, "{}", text.trim_end()).map_err(write_error)
        }
        BundleCommand::Replay {
            endpoint,
            protocol,
            public,
            file,
        } => replay(&endpoint, protocol, &public, &file, out, progress),
    }
}

fn write_error(err: io::Error) -> Failure {
    Failure::from(super::io(err))
}

/// A bundle command's failure on `file`, naming it unless the message already does.
fn not_a_bundle(file: &Path, err: &BundleError) -> Failure {
    let text = chain(err);
    let shown = file.display().to_string();
    Failure::from(if text.contains(&shown) {
        text
    } else {
        format!("bundle `{shown}`: {text}")
    })
}

fn load_public(path: &Path) -> Result<VerifyingKey, Failure> {
    VerifyingKey::from_pem_file(path)
        .map_err(|e| Failure::from(format!("cannot load the public key: {}", chain(&e))))
}

fn verify(file: &Path, key: &VerifyingKey) -> Result<VerifiedBundle, Failure> {
    bundle::verify(file, key).map_err(|e| {
        let failure = not_a_bundle(file, &e);
        Failure::from(format!("verification failed: {}", failure.message))
    })
}

fn print_verified(
    file: &Path,
    verified: &VerifiedBundle,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let m = &verified.manifest;
    writeln!(
        out,
        "OK {}: signed by key {}; tenant {}, profile {}, {} to {}; {} spans, {} metric points, {} log records; sha256 {}",
        file.display(),
        verified.key_id,
        m.tenant
            .as_deref()
            .map_or_else(|| "(all)".to_owned(), |t| format!("`{t}`")),
        m.profile,
        m.window.from,
        m.window.to,
        m.counts.spans,
        m.counts.points,
        m.counts.log_records,
        verified.archive_sha256,
    )
    .map_err(write_error)
}

/// The window `[from, to)` of an export, checked against the profile's retention.
fn window(args: &ExportArgs, retention: Duration, profile: &str) -> Result<Window, Failure> {
    let to = args.to.unwrap_or_else(SystemTime::now);
    let from = match args.from {
        From::At(at) => at,
        From::Ago(ago) => to.checked_sub(ago).ok_or_else(|| {
            Failure::from(format!(
                "--from {} reaches before 1970",
                humantime::format_duration(ago)
            ))
        })?,
    };
    let shown = |t: SystemTime| humantime::format_rfc3339(t).to_string();
    let Ok(length) = to.duration_since(from) else {
        return Err(empty_window(&shown(from), &shown(to)));
    };
    if length.is_zero() {
        return Err(empty_window(&shown(from), &shown(to)));
    }
    if length > retention {
        return Err(Failure::from(format!(
            "the window from {} to {} ({:.1} days) is longer than profile `{profile}`'s retention of {} days; export a shorter window, or name the profile the data was kept under (--profile)",
            shown(from),
            shown(to),
            length.as_secs_f64() / 86_400.0,
            retention.as_secs() / 86_400,
        )));
    }
    Ok(Window { from, to })
}

fn empty_window(from: &str, to: &str) -> Failure {
    Failure::from(format!(
        "the window is empty: --to ({to}) is not after --from ({from})"
    ))
}

/// An export's window.
struct Window {
    from: SystemTime,
    to: SystemTime,
}

/// Runs `bundle export`.
fn export(args: ExportArgs, out: &mut dyn Write, progress: Progress) -> Result<(), Failure> {
    let profile = by_name(&args.profile)?;
    let retention = Duration::from_secs(u64::from(profile.retention_days) * 86_400);
    let window = window(&args, retention, &profile.name)?;
    let key = SigningKey::from_pem_file(&args.key)
        .map_err(|e| Failure::from(format!("cannot load the signing key: {}", chain(&e))))?;
    if !args.force {
        refuse_existing(&args.out)?;
    }
    let store = Store::open(&args.dir)
        .map_err(|e| Failure::from(chain(&e)))?
        .max_window(retention);
    let request = ExportRequest {
        from: window.from,
        to: window.to,
        tenant: args.tenant.as_deref(),
        profile: &profile,
        compression: if args.zstd {
            Compression::Zstd
        } else {
            Compression::None
        },
    };
    let bar = progress.bar(None, "exporting");
    let exported = bundle::export(
        &store,
        &request,
        &key,
        parent_of(&args.out),
        &args.out,
        &mut |bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    let report = exported.map_err(|e| Failure::from(chain(&e)))?;
    print_export(&args.out, request.compression, &key, &report, out).map_err(write_error)
}

fn print_export(
    file: &Path,
    compression: Compression,
    key: &SigningKey,
    report: &ExportReport,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (m, s) = (&report.packed.manifest, &report.selection);
    let tenant = m
        .tenant
        .as_deref()
        .map_or_else(|| "every tenant".to_owned(), |t| format!("tenant `{t}`"));
    writeln!(
        out,
        "exported {tenant}, {} to {} (end excluded), profile {}",
        m.window.from, m.window.to, m.profile
    )?;
    writeln!(
        out,
        "records   {} spans, {} metric points, {} log records",
        m.counts.spans, m.counts.points, m.counts.log_records
    )?;
    writeln!(
        out,
        "segments  {} found, {} skipped by their index, {} copied whole, {} decoded, {} bytes read, {} corrupt",
        s.segments_listed,
        s.segments_pruned,
        s.segments_copied,
        s.segments_read,
        s.bytes_read,
        s.corrupt.len()
    )?;
    for corrupt in &s.corrupt {
        writeln!(
            out,
            "skipped   corrupt segment `{}`: {}",
            corrupt.path.display(),
            corrupt.reason
        )?;
    }
    let compression = match compression {
        Compression::None => "tar",
        Compression::Zstd => "tar + zstd",
    };
    writeln!(
        out,
        "wrote     {} ({} bytes, {compression})",
        file.display(),
        report.packed.size
    )?;
    writeln!(out, "sha256    {}", report.packed.sha256)?;
    writeln!(out, "key id    {}", key.key_id())
}

/// The egress policy replay goes through: sealed when `STELLAOPS_TELEMETRY_SEALED=true`.
pub(super) fn replay_policy() -> Result<Arc<dyn EgressPolicy>, Failure> {
    let sealed = match std::env::var(SEALED_VARIABLE) {
        Ok(value) => crate::config::parse::parse_bool(SEALED_VARIABLE, &value)
            .map_err(|e| Failure::from(chain(&e)))?,
        Err(_) => false,
    };
    Ok(if sealed {
        Arc::from(crate::sealed_policy(None))
    } else {
        Arc::new(OpenPolicy)
    })
}

/// Runs `bundle replay`: verify, then send every record.
fn replay(
    endpoint: &str,
    protocol: Protocol,
    public: &Path,
    file: &Path,
    out: &mut dyn Write,
    progress: Progress,
) -> Result<(), Failure> {
    let key = load_public(public)?;
    let policy = replay_policy()?;
    let verified = verify(file, &key)?;
    let protocol = match protocol {
        Protocol::Http => ReplayProtocol::HttpProtobuf,
        Protocol::Grpc => ReplayProtocol::Grpc,
    };
    let replay = Replay::new(endpoint, protocol, policy).map_err(replay_failure)?;
    let total = OtlpSignal::ALL
        .iter()
        .filter_map(|s| verified.manifest.file(s.member_path()))
        .map(|f| f.size)
        .sum();
    let bar = progress.bar(Some(total), "replaying");
    let open = |signal| -> Result<Counted, Failure> {
        let reader = verified
            .otlp_reader(file, signal)
            .map_err(|e| not_a_bundle(file, &e))?;
        Ok(Counted {
            inner: reader,
            bar: bar.clone(),
        })
    };
    let [mut traces, mut metrics, mut logs] = [
        open(OtlpSignal::Traces)?,
        open(OtlpSignal::Metrics)?,
        open(OtlpSignal::Logs)?,
    ];
    let sent = replay.send(&mut traces, &mut metrics, &mut logs);
    bar.finish_and_clear();
    let report = sent.map_err(replay_failure)?;
    print_replayed(endpoint, &report, out).map_err(write_error)
}

fn print_replayed(endpoint: &str, report: &ReplayReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "replayed {} spans, {} metric points, {} log records to {} in {} requests",
        report.spans,
        report.points,
        report.log_records,
        crate::egress::mask_url(endpoint.trim()),
        report.requests
    )
}

/// A replay error and its exit status: 3 when the endpoint could not be reached (no
/// connection, no answer), 1 otherwise (refused by the policy or the endpoint, corrupt data).
fn replay_failure(err: ReplayError) -> Failure {
    let code = match &err {
        ReplayError::Export { reason, .. }
            if !reason.starts_with("HTTP ")
                && (!reason.starts_with("gRPC ") || reason.starts_with("gRPC Unavailable")) =>
        {
            UNREACHABLE
        }
        _ => FAILURE,
    };
    Failure {
        code,
        message: chain(&err),
    }
}

/// A reader that moves a progress bar by the bytes read.
struct Counted {
    inner: bundle::OtlpReader,
    bar: ProgressBar,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
