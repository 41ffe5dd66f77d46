//! What goes into a bundle, its manifest, and packing: [`pack`] and [`pack_into`].

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::archive::{self, HashingReader, HashingWriter, MemberPath};
use super::{BundleError, Envelope, SigningKey, time};

/// The bundle format this version writes and reads (the manifest's `format_version`).
pub const FORMAT_VERSION: u64 = 1;
/// The largest OTLP message (one length-delimited record of an OTLP file) a bundle may hold:
/// 32 MiB. Verification refuses longer ones, which bounds its memory.
pub const MAX_OTLP_MESSAGE_BYTES: u64 = 32 * 1024 * 1024;
/// The most configuration files one bundle may hold.
pub const MAX_CONFIG_FILES: usize = 256;
/// The zstd level bundles are compressed with.
const ZSTD_LEVEL: i32 = 3;
/// The zstd window (log2 bytes) bundles are compressed with; verification accepts no larger.
pub(crate) const ZSTD_WINDOW_LOG: u32 = 22;
const MAX_NAME_BYTES: usize = 256;

/// What goes into one bundle besides the OTLP files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleMeta {
    /// The window's start, inclusive.
    pub from: SystemTime,
    /// The window's end, exclusive.
    pub to: SystemTime,
    /// The tenant every record belongs to, or `None` for all tenants.
    pub tenant: Option<String>,
    /// The profile whose configuration the bundle carries (`default`, `forensic`, `airgap`).
    pub profile: String,
}

/// Record counts per signal; in the manifest as `{"logs":…,"metrics":…,"traces":…}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalCounts {
    /// Log records in `otlp/logs.pb`.
    #[serde(rename = "logs")]
    pub log_records: u64,
    /// Metric data points in `otlp/metrics.pb`.
    #[serde(rename = "metrics")]
    pub points: u64,
    /// Spans in `otlp/traces.pb`.
    #[serde(rename = "traces")]
    pub spans: u64,
}

/// The three OTLP files, already written (varint-delimited) to local files, with their counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpFiles {
    /// `TracesData` messages.
    pub traces: PathBuf,
    /// `MetricsData` messages.
    pub metrics: PathBuf,
    /// `LogsData` messages.
    pub logs: PathBuf,
    /// How many spans, points and log records they hold.
    pub counts: SignalCounts,
}

impl OtlpFiles {
    /// Creates three empty files `traces.pb`, `metrics.pb` and `logs.pb` in `dir`: a bundle
    /// with no records.
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] naming the file that cannot be created.
    pub fn empty_in(dir: &Path) -> Result<OtlpFiles, BundleError> {
        let create = |name: &str| {
            let path = dir.join(name);
            File::create(&path).map_err(|source| BundleError::Io {
                action: "create",
                path: path.clone(),
                source,
            })?;
            Ok::<_, BundleError>(path)
        };
        Ok(OtlpFiles {
            traces: create("traces.pb")?,
            metrics: create("metrics.pb")?,
            logs: create("logs.pb")?,
            counts: SignalCounts::default(),
        })
    }
}

/// Whether the tar archive is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar archive (`.tar`). The default.
    #[default]
    None,
    /// One zstd frame (level 3, content checksum) around the tar archive (`.tar.zst`).
    Zstd,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBundle {
    /// The sha256 of the archive's bytes as written (after compression), lower-case hex.
    pub sha256: String,
    /// The archive's size in bytes, as written.
    pub size: u64,
    /// The manifest it carries.
    pub manifest: Manifest,
}

/// The window of a manifest, RFC 3339 in UTC (`2024-05-01T10:00:00Z`, nine fraction digits
/// when the time is not a whole second).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The start, inclusive.
    pub from: String,
    /// The end, exclusive.
    pub to: String,
}

/// One file the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The member path (`otlp/traces.pb`).
    pub path: String,
    /// Its sha256, lower-case hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `manifest.json`: what a bundle holds. Fields are declared in sorted order so that
/// serde's output is canonical JSON (sorted keys, no spaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Records per signal.
    pub counts: SignalCounts,
    /// Every file but `manifest.json` and the signature, sorted by path.
    pub files: Vec<FileEntry>,
    /// [`FORMAT_VERSION`].
    pub format_version: u64,
    /// The profile whose configuration the bundle carries.
    pub profile: String,
    /// The tenant every record belongs to, or `null`.
    pub tenant: Option<String>,
    /// The tool that wrote it: `stella-telemetry <version>`.
    pub tool: String,
    /// The window every record lies in.
    pub window: Window,
}

impl Manifest {
    /// The canonical bytes of `manifest.json`.
    ///
    /// ```
    /// # use stellaops_telemetry_core::bundle::*;
    /// let manifest = Manifest {
    ///     counts: SignalCounts::default(),
    ///     files: vec![],
    ///     format_version: FORMAT_VERSION,
    ///     profile: "default".into(),
    ///     tenant: None,
    ///     tool: "stella-telemetry 0.1.0".into(),
    ///     window: Window { from: "2024-05-01T10:00:00Z".into(), to: "2024-05-01T11:00:00Z".into() },
    /// };
    /// let json = String::from_utf8(manifest.to_canonical_json()?)?;
    /// assert!(json.starts_with(r#"{"counts":{"logs":0,"metrics":0,"traces":0},"files":[],"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BundleError::Encode`] if serialisation fails (it does not for this type).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec(self).map_err(|source| BundleError::Encode {
            what: "manifest",
            source,
        })
    }

    /// Parses `manifest.json`: the format version first (a newer one is refused before
    /// anything else is read), then the whole manifest, which must be in canonical form.
    ///
    /// # Errors
    ///
    /// [`BundleError::UnsupportedFormatVersion`] for a newer format,
    /// [`BundleError::MalformedManifest`] for anything else that is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, BundleError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u64,
        }
        let malformed = |reason: String| BundleError::MalformedManifest { reason };
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedFormatVersion {
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if manifest.to_canonical_json()? != bytes {
            return Err(malformed("not in canonical form".to_owned()));
        }
        manifest.window_nanos()?;
        if !manifest.files.windows(2).all(|w| w[0].path < w[1].path) {
            return Err(malformed("files are not sorted by path".to_owned()));
        }
        Ok(manifest)
    }

    /// The window as nanoseconds since 1970, `[from, to)`.
    pub(crate) fn window_nanos(&self) -> Result<(u64, u64), BundleError> {
        let parse = |s: &str| {
            time::parse_canonical(s).ok_or_else(|| BundleError::MalformedManifest {
                reason: format!("window time `{s}` is not RFC 3339 in canonical form"),
            })
        };
        let (from, to) = (parse(&self.window.from)?, parse(&self.window.to)?);
        if from >= to {
            return Err(BundleError::MalformedManifest {
                reason: "the window is empty or reversed".to_owned(),
            });
        }
        Ok((from, to))
    }

    /// The entry for `path`, if listed.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Packs, signs and writes the archive to `out`, through a temporary file in the same folder
/// renamed into place at the end: on error nothing is left at `out` (an existing file there
/// is replaced only on success).
///
/// `config` holds the profile's generated files as (path in the archive, contents); paths
/// start with `config/`, use `[A-Za-z0-9._-]` and `/`, and are at most 100 bytes. They are
/// sorted by path whatever their order here.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use stellaops_telemetry_core::bundle::*;
/// # let dir = tempfile::tempdir()?;
/// let meta = BundleMeta {
///     from: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
///     to: UNIX_EPOCH + Duration::from_secs(1_700_003_600),
///     tenant: None,
///     profile: "airgap".into(),
/// };
/// let otlp = OtlpFiles::empty_in(dir.path())?;
/// let config = [("config/collector.yaml".to_owned(), b"receivers: {}\n".to_vec())];
/// let key = SigningKey::generate()?;
/// let a = pack(&meta, &otlp, &config, &key, Compression::None, &dir.path().join("a.tar"))?;
/// let b = pack(&meta, &otlp, &config, &key, Compression::None, &dir.path().join("b.tar"))?;
/// assert_eq!(a.sha256, b.sha256);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As for [`pack_into`], and [`BundleError::Io`] naming `out` or its temporary file when it
/// cannot be created, written, synced or renamed.
pub fn pack(
    meta: &BundleMeta,
    otlp: &OtlpFiles,
    config: &[(String, Vec<u8>)],
    key: &SigningKey,
    compression: Compression,
    out: &Path,
) -> Result<PackedBundle, BundleError> {
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let io_error = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io {
            action,
            path,
            source,
        }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".bundle-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    let mut writer = BufWriter::new(tmp.as_file());
    let packed =
        pack_into(meta, otlp, config, key, compression, &mut writer).map_err(|e| match e {
            BundleError::Write { source } => io_error("write", tmp.path())(source),
            other => other,
        })?;
    writer.flush().map_err(io_error("write", tmp.path()))?;
    drop(writer);
    tmp.as_file()
        .sync_all()
        .map_err(io_error("sync", tmp.path()))?;
    tmp.persist(out)
        .map_err(|e| io_error("rename a temporary file to", out)(e.error))?;
    Ok(packed)
}

/// Streams the same archive as [`pack`] into `w` (an HTTP response body, say), reading the
/// OTLP files from disk twice (once to hash them for the manifest, once to copy them) and
/// never holding the archive in memory.
///
/// # Errors
///
/// [`BundleError::InvalidWindow`], [`BundleError::InvalidMeta`] or
/// [`BundleError::InvalidConfigPath`] for bad input, [`BundleError::Io`] naming an OTLP file
/// that cannot be read, [`BundleError::ChangedWhilePacking`] when one changed between the two
/// reads, [`BundleError::Write`] when `w` fails. On error, `w` has received part of an
/// archive that does not verify.
pub fn pack_into(
    meta: &BundleMeta,
    otlp: &OtlpFiles,
    config: &[(String, Vec<u8>)],
    key: &SigningKey,
    compression: Compression,
    w: &mut dyn Write,
) -> Result<PackedBundle, BundleError> {
    let window = window_of(meta)?;
    check_name("profile", &meta.profile)?;
    if let Some(tenant) = &meta.tenant {
        check_name("tenant", tenant)?;
    }
    let config = sorted_config(config)?;
    let sources = otlp_sources(otlp)?;
    let manifest = build_manifest(meta, window, &config, &sources, otlp.counts);
    let manifest_json = manifest.to_canonical_json()?;
    let signature = Envelope::sign(&manifest_json, key).to_json()?;
    let members = Members {
        config: &config,
        manifest: &manifest_json,
        otlp: &sources,
        signature: &signature,
    };
    let mut out = HashingWriter::new(w);
    match compression {
        Compression::None => members.write_tar(&mut out)?,
        Compression::Zstd => {
            let mut encoder =
                zstd_encoder(&mut out).map_err(|source| BundleError::Write { source })?;
            members.write_tar(&mut encoder)?;
            encoder
                .finish()
                .map_err(|source| BundleError::Write { source })?;
        }
    }
    out.flush()
        .map_err(|source| BundleError::Write { source })?;
    let (sha256, size) = out.finish();
    Ok(PackedBundle {
        sha256,
        size,
        manifest,
    })
}

/// The zstd encoder bundles are written with (level, checksum, window pinned): `verify`
/// re-encodes with it to check that a `.tar.zst` is exactly what `pack` writes.
pub(crate) fn zstd_encoder<W: Write>(w: W) -> io::Result<zstd::Encoder<'static, W>> {
    let mut encoder = zstd::Encoder::new(w, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(false)?;
    encoder.include_dictid(false)?;
    encoder.window_log(ZSTD_WINDOW_LOG)?;
    Ok(encoder)
}

fn window_of(meta: &BundleMeta) -> Result<Window, BundleError> {
    let invalid = || BundleError::InvalidWindow {
        from: format!("{:?}", meta.from),
        to: format!("{:?}", meta.to),
    };
    let from = time::to_nanos(meta.from).ok_or_else(invalid)?;
    let to = time::to_nanos(meta.to).ok_or_else(invalid)?;
    if from >= to {
        return Err(invalid());
    }
    Ok(Window {
        from: time::rfc3339(meta.from),
        to: time::rfc3339(meta.to),
    })
}

fn check_name(field: &'static str, value: &str) -> Result<(), BundleError> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.len() > MAX_NAME_BYTES {
        "it is longer than 256 bytes"
    } else if value.chars().any(char::is_control) {
        "it holds control characters"
    } else {
        return Ok(());
    };
    Err(BundleError::InvalidMeta {
        field,
        value: value.chars().take(64).collect(),
        reason,
    })
}

fn sorted_config(config: &[(String, Vec<u8>)]) -> Result<Vec<(&str, &[u8])>, BundleError> {
    if config.len() > MAX_CONFIG_FILES {
        return Err(BundleError::InvalidConfigPath {
            path: config.len().to_string(),
            reason: "more than 256 configuration files",
        });
    }
    let mut sorted = Vec::with_capacity(config.len());
    for (path, contents) in config {
        archive::check_config_path(path)?;
        sorted.push((path.as_str(), contents.as_slice()));
    }
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(BundleError::InvalidConfigPath {
            path: w[0].0.to_owned(),
            reason: "given twice",
        });
    }
    Ok(sorted)
}

/// One OTLP file on its way into the archive: where it is, and its size and digest when hashed.
struct OtlpSource<'a> {
    member: MemberPath,
    local: &'a Path,
    size: u64,
    sha256: String,
}

fn otlp_sources(otlp: &OtlpFiles) -> Result<Vec<OtlpSource<'_>>, BundleError> {
    // Member order: logs, metrics, traces (sorted by path).
    let files = [
        (MemberPath::Logs, otlp.logs.as_path()),
        (MemberPath::Metrics, otlp.metrics.as_path()),
        (MemberPath::Traces, otlp.traces.as_path()),
    ];
    files
        .into_iter()
        .map(|(member, local)| {
            let mut reader = HashingReader::new(open(local)?);
            io::copy(&mut reader, &mut io::sink()).map_err(|source| BundleError::Io {
                action: "read",
                path: local.to_path_buf(),
                source,
            })?;
            let (sha256, size) = reader.finish();
            Ok(OtlpSource {
                member,
                local,
                size,
                sha256,
            })
        })
        .collect()
}

fn open(path: &Path) -> Result<File, BundleError> {
    File::open(path).map_err(|source| BundleError::Io {
        action: "open",
        path: path.to_path_buf(),
        source,
    })
}

fn build_manifest(
    meta: &BundleMeta,
    window: Window,
    config: &[(&str, &[u8])],
    otlp: &[OtlpSource<'_>],
    counts: SignalCounts,
) -> Manifest {
    let mut files: Vec<FileEntry> = config
        .iter()
        .map(|(path, contents)| FileEntry {
            path: (*path).to_owned(),
            sha256: archive::sha256_hex(contents),
            size: contents.len() as u64,
        })
        .chain(otlp.iter().map(|s| FileEntry {
            path: s.member.as_str().to_owned(),
            sha256: s.sha256.clone(),
            size: s.size,
        }))
        .collect();
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Manifest {
        counts,
        files,
        format_version: FORMAT_VERSION,
        profile: meta.profile.clone(),
        tenant: meta.tenant.clone(),
        tool: format!("stella-telemetry {}", env!("CARGO_PKG_VERSION")),
        window,
    }
}

/// Everything that goes into the tar, in member order.
struct Members<'a> {
    config: &'a [(&'a str, &'a [u8])],
    manifest: &'a [u8],
    otlp: &'a [OtlpSource<'a>],
    signature: &'a [u8],
}

impl Members<'_> {
    fn write_tar(&self, w: &mut dyn Write) -> Result<(), BundleError> {
        let write_error = |source| BundleError::Write { source };
        let mut tar = tar::Builder::new(w);
        for (path, contents) in self.config {
            append(&mut tar, path, contents)?;
        }
        append(&mut tar, MemberPath::Manifest.as_str(), self.manifest)?;
        for source in self.otlp {
            append_file(&mut tar, source)?;
        }
        append(&mut tar, MemberPath::Signature.as_str(), self.signature)?;
        tar.into_inner().map_err(write_error)?;
        Ok(())
    }
}

fn append(
    tar: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    contents: &[u8],
) -> Result<(), BundleError> {
    let header = archive::member_header(path, contents.len() as u64).map_err(|_| {
        BundleError::InvalidConfigPath {
            path: path.to_owned(),
            reason: "not representable in a tar header",
        }
    })?;
    tar.append(&header, contents)
        .map_err(|source| BundleError::Write { source })
}

/// Copies one OTLP file, checking that it still has the size and digest the manifest lists.
fn append_file(
    tar: &mut tar::Builder<&mut dyn Write>,
    otlp: &OtlpSource<'_>,
) -> Result<(), BundleError> {
    let header = archive::member_header(otlp.member.as_str(), otlp.size)
        .map_err(|source| BundleError::Write { source })?;
    let mut reader = HashingReader::new(open(otlp.local)?.take(otlp.size));
    let appended = tar.append(&header, &mut reader);
    if let Some(source) = reader.take_error() {
        return Err(BundleError::Io {
            action: "read",
            path: otlp.local.to_path_buf(),
            source,
        });
    }
    appended.map_err(|source| BundleError::Write { source })?;
    let (sha256, size) = reader.finish();
    if size != otlp.size || sha256 != otlp.sha256 {
        return Err(BundleError::ChangedWhilePacking {
            path: otlp.local.to_path_buf(),
        });
    }
    Ok(())
}
