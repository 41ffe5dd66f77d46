//! What goes into a bundle and its manifest.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{BundleError, time};

/// The bundle format this version writes and reads (the manifest's `format_version`).
pub const FORMAT_VERSION: u64 = 2;
/// The largest OTLP message (one length-delimited record of an OTLP file) a bundle may hold:
/// 32 MiB. Verification refuses longer ones, which bounds its memory.
pub const MAX_OTLP_MESSAGE_BYTES: u64 = 32 * 1024 * 1024;
/// The most configuration files one bundle may hold.
pub const MAX_CONFIG_FILES: usize = 256;
/// The zstd level bundles are compressed with.
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// The zstd window (log2 bytes) bundles are compressed with; verification accepts no larger.
pub(crate) const ZSTD_WINDOW_LOG: u32 = 22;

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

/// What [`pack`](super::pack) wrote.
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

    /// Parses `manifest.json`: the format version first (any other than [`FORMAT_VERSION`]
    /// is refused before the rest is read), then the whole manifest, which must be in
    /// canonical form.
    ///
    /// # Errors
    ///
    /// [`BundleError::UnsupportedFormatVersion`] for another format version,
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
