//! Reading what a bundle holds without a key: [`inspect`].

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::archive::{MemberKind, MemberPath, OpenArchive, explain_early_error};
use super::records::{self, RecordView};
use super::verify::{MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, read_small};
use super::{BundleError, Compression, Envelope, FileEntry, Manifest, SignalCounts, Window};

/// The most distinct service names an [`Inspection`] lists.
const MAX_SERVICES: usize = 1000;

/// What a bundle says it holds, read without a key: see [`inspect`].
///
/// `Display` gives the form for a terminal; `Serialize` the form for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// Always `false`: inspection checks no signature and no digest.
    pub verified: bool,
    /// The archive's size in bytes.
    pub archive_size: u64,
    /// The archive's sha256, lower-case hex.
    pub archive_sha256: String,
    /// Whether it is zstd-compressed.
    pub compression: Compression,
    /// The manifest's format version.
    pub format_version: u64,
    /// The tool that wrote it.
    pub tool: String,
    /// The window `[from, to)`.
    pub window: Window,
    /// The tenant, or `null` for all tenants.
    pub tenant: Option<String>,
    /// The profile.
    pub profile: String,
    /// The record counts the manifest states.
    pub counts: SignalCounts,
    /// The records counted in the OTLP files.
    pub records: SignalCounts,
    /// The distinct `service.name`s of the records' resources, sorted (at most 1000).
    pub services: Vec<String>,
    /// Whether there were more service names than listed.
    pub services_truncated: bool,
    /// The files the manifest lists, with their sizes and digests.
    pub files: Vec<FileEntry>,
    /// The key ids the signature envelope names (not checked).
    pub signed_by: Vec<String>,
}

/// Reads the bundle at `archive` without verifying it: the manifest, the key ids that signed
/// it, and the records (counted per signal, with their services). The layout is still
/// checked (member order, canonical tar headers, nothing after the end) and every OTLP message
/// must decode, but no signature, digest, window or tenant is checked: use
/// [`verify`](super::verify) with the public key before trusting anything shown.
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use stellaops_telemetry_core::bundle::*;
/// # let dir = tempfile::tempdir()?;
/// # let meta = BundleMeta { from: UNIX_EPOCH, to: UNIX_EPOCH + Duration::from_secs(60), tenant: Some("acme".into()), profile: "default".into() };
/// # let key = SigningKey::generate()?;
/// # let out = dir.path().join("b.tar");
/// # pack(&meta, &OtlpFiles::empty(), &[], &key, Compression::None, &out)?;
/// let inspection = inspect(&out)?;
/// assert_eq!(inspection.tenant.as_deref(), Some("acme"));
/// assert!(!inspection.verified);
/// assert!(inspection.to_string().contains("not verified"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The layout errors of [`verify`](super::verify), [`BundleError::UnsupportedFormatVersion`]
/// and [`BundleError::MalformedManifest`], [`BundleError::MalformedSignature`] when the
/// envelope does not parse, [`BundleError::CorruptOtlp`], or [`BundleError::Io`] naming the
/// archive.
pub fn inspect(archive: &Path) -> Result<Inspection, BundleError> {
    let path = archive;
    let archive = OpenArchive::open(archive)?;
    let compression = archive.compression;
    let mut state = Inspector::default();
    let walked = archive.walk(&mut |path, kind, size, body| state.member(path, kind, size, body));
    let (archive_sha256, archive_size) = match walked {
        Err(e) if state.manifest.is_none() => {
            return Err(explain_early_error(path, MAX_MANIFEST_BYTES, e));
        }
        other => other?,
    };
    let Some(manifest) = state.manifest else {
        return Err(BundleError::MissingFile {
            path: MemberPath::Manifest.as_str().to_owned(),
        });
    };
    Ok(Inspection {
        verified: false,
        archive_size,
        archive_sha256,
        compression,
        format_version: manifest.format_version,
        tool: manifest.tool,
        window: manifest.window,
        tenant: manifest.tenant,
        profile: manifest.profile,
        counts: manifest.counts,
        records: state.records,
        services: state.services.into_iter().collect(),
        services_truncated: state.services_truncated,
        files: manifest.files,
        signed_by: state.signed_by,
    })
}

#[derive(Default)]
struct Inspector {
    manifest: Option<Manifest>,
    records: SignalCounts,
    services: BTreeSet<String>,
    services_truncated: bool,
    signed_by: Vec<String>,
}

impl Inspector {
    fn member(
        &mut self,
        path: &str,
        kind: MemberKind,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<(), BundleError> {
        match kind {
            MemberKind::Config => Ok(()),
            MemberKind::Fixed(MemberPath::Manifest) => {
                let bytes = read_small(path, size, MAX_MANIFEST_BYTES, body)?;
                self.manifest = Some(Manifest::from_json(&bytes)?);
                Ok(())
            }
            MemberKind::Fixed(MemberPath::Signature) => {
                let bytes = read_small(path, size, MAX_SIGNATURE_BYTES, body)?;
                self.signed_by = Envelope::from_json(&bytes)?.key_ids();
                Ok(())
            }
            MemberKind::Fixed(member) => {
                let (services, truncated) = (&mut self.services, &mut self.services_truncated);
                let mut collect = |record: &RecordView<'_>| {
                    if let Some(service) = record.service
                        && !services.contains(service)
                    {
                        if services.len() < MAX_SERVICES {
                            services.insert(service.to_owned());
                        } else {
                            *truncated = true;
                        }
                    }
                    Ok(())
                };
                let count = records::for_each_record(member, body, size, &mut collect)?;
                match member {
                    MemberPath::Logs => self.records.log_records = count,
                    MemberPath::Metrics => self.records.points = count,
                    _ => self.records.spans = count,
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compression = match self.compression {
            Compression::None => "tar",
            Compression::Zstd => "tar + zstd",
        };
        writeln!(
            f,
            "not verified: inspect checks the layout only, no signature or digest"
        )?;
        writeln!(
            f,
            "archive    {} bytes, {compression}, sha256 {}",
            self.archive_size, self.archive_sha256
        )?;
        writeln!(f, "format     {} ({})", self.format_version, self.tool)?;
        writeln!(
            f,
            "window     {} to {} (end excluded)",
            self.window.from, self.window.to
        )?;
        writeln!(
            f,
            "tenant     {}",
            self.tenant.as_deref().unwrap_or("(all tenants)")
        )?;
        writeln!(f, "profile    {}", self.profile)?;
        writeln!(f, "signed by  {}", list_or_none(&self.signed_by))?;
        let (c, r) = (&self.counts, &self.records);
        writeln!(f, "traces     {} spans (manifest: {})", r.spans, c.spans)?;
        writeln!(f, "metrics    {} points (manifest: {})", r.points, c.points)?;
        writeln!(
            f,
            "logs       {} records (manifest: {})",
            r.log_records, c.log_records
        )?;
        let more = if self.services_truncated { ", …" } else { "" };
        writeln!(f, "services   {}{more}", list_or_none(&self.services))?;
        writeln!(f, "files")?;
        for file in &self.files {
            writeln!(
                f,
                "  {:<44} {:>12} bytes  sha256 {}",
                file.path, file.size, file.sha256
            )?;
        }
        Ok(())
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
