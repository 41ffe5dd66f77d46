//! Verifying a bundle offline: layout, signature, every file, every record.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::archive::{HashingReader, MemberKind, MemberPath, OpenArchive, explain_early_error};
use super::records::{self, RecordView};
use super::{BundleError, Compression, Envelope, FileEntry, Manifest, VerifyingKey, time};

/// The largest `manifest.json` accepted: 1 MiB (a manifest lists at most a few hundred files).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// The largest `signatures/manifest.sig` accepted: 2 MiB (the manifest in base64, signatures).
pub(crate) const MAX_SIGNATURE_BYTES: u64 = 2 * MAX_MANIFEST_BYTES;

/// A bundle that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedBundle {
    /// Its manifest.
    pub manifest: Manifest,
    /// The id of the key whose signature verified.
    pub key_id: String,
    /// The sha256 of the archive file, lower-case hex.
    pub archive_sha256: String,
    /// The archive file's size in bytes.
    pub archive_size: u64,
    /// Whether it is zstd-compressed.
    pub compression: Compression,
}

/// Verifies the bundle at `archive` with `key`, reading it from start to end (a `.tar.zst`
/// twice: see below).
///
/// Checks the layout as it reads (member order, paths, canonical tar headers, zero padding,
/// the end-of-archive marker and nothing after it; for zstd, one frame with a valid checksum
/// and nothing after it), decodes every OTLP message, and hashes every file. When
/// `manifest.json` comes (after the files it lists), it checks its format version, then its
/// canonical form, each configuration and OTLP file's size and sha256 against it, no missing
/// and no extra file, every record inside the window `[from, to)` and carrying the
/// manifest's `tenant.id` (when it names a tenant), and the record counts; last, the DSSE
/// signature over `manifest.json` by `key`. The first problem found is returned; nothing
/// about a bundle should be trusted unless this returns `Ok`.
///
/// A record outside the window is named by its index: the earliest record when it is before
/// the window, else the latest. A record of another tenant is the first such record.
///
/// Memory is bounded: one OTLP message (at most [`MAX_OTLP_MESSAGE_BYTES`]) at a time, the
/// manifest and signature (at most 1 and 2 MiB).
///
/// [`MAX_OTLP_MESSAGE_BYTES`]: super::MAX_OTLP_MESSAGE_BYTES
///
/// ```
/// # use std::time::{Duration, UNIX_EPOCH};
/// # use stellaops_telemetry_core::bundle::*;
/// # let dir = tempfile::tempdir()?;
/// # let meta = BundleMeta { from: UNIX_EPOCH, to: UNIX_EPOCH + Duration::from_secs(60), tenant: None, profile: "default".into() };
/// # let key = SigningKey::generate()?;
/// # let out = dir.path().join("b.tar");
/// # pack(&meta, &OtlpFiles::empty(), &[], &key, Compression::None, &out)?;
/// let verified = verify(&out, &key.public_key())?;
/// assert_eq!(verified.key_id, key.key_id());
///
/// let stranger = SigningKey::generate()?.public_key();
/// assert!(matches!(verify(&out, &stranger), Err(BundleError::UnknownKeyId { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The [`BundleError`] naming the first problem: a layout variant
/// ([`BundleError::UnexpectedMember`], [`BundleError::NonCanonicalHeader`]…),
/// [`BundleError::MissingFile`], [`BundleError::ExtraFile`], [`BundleError::SizeMismatch`],
/// [`BundleError::HashMismatch`], [`BundleError::UnsupportedFormatVersion`],
/// [`BundleError::MalformedManifest`], [`BundleError::CorruptOtlp`],
/// [`BundleError::RecordOutsideWindow`], [`BundleError::RecordOfAnotherTenant`],
/// [`BundleError::CountMismatch`], [`BundleError::UnknownKeyId`],
/// [`BundleError::BadSignature`], or [`BundleError::Io`] naming the archive.
pub fn verify(archive: &Path, key: &VerifyingKey) -> Result<VerifiedBundle, BundleError> {
    let archive_path = archive.to_path_buf();
    let archive = OpenArchive::open(archive)?;
    let compression = archive.compression;
    let mut state = Verifier::default();
    let walked =
        archive.walk(&mut |path, kind, size, body| state.member(path, kind, size, body, key));
    let (archive_sha256, archive_size) = match walked {
        Err(e) if state.manifest.is_none() => {
            return Err(explain_early_error(&archive_path, MAX_MANIFEST_BYTES, e));
        }
        other => other?,
    };
    if compression == Compression::Zstd {
        same_compression(&archive_path)?;
    }
    let (Some(manifest), Some(key_id)) = (state.manifest, state.key_id) else {
        // The layout cursor has already required both members; this is defensive.
        return Err(BundleError::MissingFile {
            path: MemberPath::Signature.as_str().to_owned(),
        });
    };
    Ok(VerifiedBundle {
        manifest,
        key_id,
        archive_sha256,
        archive_size,
        compression,
    })
}

/// What verification has learned so far, member by member.
#[derive(Default)]
struct Verifier {
    /// Configuration members seen before the manifest: (path, size, sha256).
    config: Vec<FileEntry>,
    /// The OTLP members seen before the manifest.
    otlp: Vec<OtlpSummary>,
    manifest_bytes: Vec<u8>,
    manifest: Option<Manifest>,
    key_id: Option<String>,
}

/// What the checks against the manifest need to know of one OTLP member, gathered as it is
/// read (the manifest comes after it): its size and digest, its record count, its earliest
/// and latest record, and the first record of each of its first two tenants. That is enough
/// to name a record outside any window, and the first record of another tenant than any one.
struct OtlpSummary {
    member: MemberPath,
    entry: FileEntry,
    count: u64,
    /// (time, index) of the first record with the earliest time.
    earliest: Option<(u64, u64)>,
    /// (time, index) of the first record with the latest time.
    latest: Option<(u64, u64)>,
    /// The first two distinct `tenant.id` values (`None`: no tenant), each with the index of
    /// its first record, in the order met.
    tenants: Vec<(Option<String>, u64)>,
}

impl OtlpSummary {
    fn note(&mut self, record: &RecordView<'_>) {
        let (time, index) = (record.time_unix_nano, record.index);
        if self.earliest.is_none_or(|(t, _)| time < t) {
            self.earliest = Some((time, index));
        }
        if self.latest.is_none_or(|(t, _)| time > t) {
            self.latest = Some((time, index));
        }
        let tenant = record.tenant.as_deref();
        if self.tenants.len() < 2 && !self.tenants.iter().any(|(t, _)| t.as_deref() == tenant) {
            self.tenants.push((tenant.map(str::to_owned), index));
        }
    }

    /// Every record inside `[from, to)` and of `tenant` (when given), and as many records as
    /// the manifest counts.
    fn check(&self, manifest: &Manifest, (from, to): (u64, u64)) -> Result<(), BundleError> {
        let path = self.member.as_str();
        let outside = [self.earliest, self.latest]
            .into_iter()
            .flatten()
            .find(|(time, _)| *time < from || *time >= to);
        if let Some((time_unix_nano, index)) = outside {
            return Err(BundleError::RecordOutsideWindow {
                path: path.to_owned(),
                index,
                time_unix_nano,
                from: time::rfc3339_nanos(from),
                to: time::rfc3339_nanos(to),
            });
        }
        if let Some(expected) = manifest.tenant.as_deref()
            && let Some((found, index)) = self
                .tenants
                .iter()
                .find(|(t, _)| t.as_deref() != Some(expected))
        {
            return Err(BundleError::RecordOfAnotherTenant {
                path: path.to_owned(),
                index: *index,
                expected: expected.to_owned(),
                found: found.clone(),
            });
        }
        let expected = match self.member {
            MemberPath::Logs => manifest.counts.log_records,
            MemberPath::Metrics => manifest.counts.points,
            _ => manifest.counts.spans,
        };
        if self.count != expected {
            return Err(BundleError::CountMismatch {
                path: path.to_owned(),
                expected,
                actual: self.count,
            });
        }
        Ok(())
    }
}

impl Verifier {
    fn member(
        &mut self,
        path: &str,
        kind: MemberKind,
        size: u64,
        body: &mut dyn Read,
        key: &VerifyingKey,
    ) -> Result<(), BundleError> {
        match kind {
            MemberKind::Config => {
                let (sha256, size) = digest(body)?;
                self.config.push(FileEntry {
                    path: path.to_owned(),
                    sha256,
                    size,
                });
                Ok(())
            }
            MemberKind::Fixed(MemberPath::Manifest) => self.manifest(path, size, body),
            MemberKind::Fixed(MemberPath::Signature) => {
                let bytes = read_small(path, size, MAX_SIGNATURE_BYTES, body)?;
                let envelope = Envelope::from_json(&bytes)?;
                self.key_id = Some(envelope.verify(&self.manifest_bytes, key)?);
                Ok(())
            }
            MemberKind::Fixed(member) => self.otlp(member, size, body),
        }
    }

    /// The manifest, then everything read before it checked against it.
    fn manifest(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), BundleError> {
        let bytes = read_small(path, size, MAX_MANIFEST_BYTES, body)?;
        let manifest = Manifest::from_json(&bytes)?;
        let window = manifest.window_nanos()?;
        let otlp: Vec<FileEntry> = self.otlp.iter().map(|s| s.entry.clone()).collect();
        check_listing(&manifest, &self.config, &otlp)?;
        for summary in &self.otlp {
            summary.check(&manifest, window)?;
        }
        self.manifest_bytes = bytes;
        self.manifest = Some(manifest);
        Ok(())
    }

    fn otlp(
        &mut self,
        member: MemberPath,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let path = member.as_str();
        let mut summary = OtlpSummary {
            member,
            entry: FileEntry {
                path: path.to_owned(),
                sha256: String::new(),
                size: 0,
            },
            count: 0,
            earliest: None,
            latest: None,
            tenants: Vec::new(),
        };
        let mut hashing = HashingReader::new(body);
        let mut note = |record: &RecordView<'_>| {
            summary.note(record);
            Ok(())
        };
        let count = records::for_each_record(member, &mut hashing, size, &mut note)?;
        let (sha256, actual) = hashing.finish();
        summary.count = count;
        summary.entry.sha256 = sha256;
        summary.entry.size = actual;
        self.otlp.push(summary);
        Ok(())
    }
}

/// The manifest lists exactly the configuration and OTLP files seen, with their sizes and
/// digests.
fn check_listing(
    manifest: &Manifest,
    config: &[FileEntry],
    otlp: &[FileEntry],
) -> Result<(), BundleError> {
    for entry in config.iter().chain(otlp) {
        compare(manifest, entry)?;
    }
    for listed in &manifest.files {
        let seen = |files: &[FileEntry]| files.iter().any(|f| f.path == listed.path);
        if !seen(config) && !seen(otlp) {
            return Err(BundleError::MissingFile {
                path: listed.path.clone(),
            });
        }
    }
    Ok(())
}

/// Compares a member's size and digest with the manifest's entry for it.
fn compare(manifest: &Manifest, actual: &FileEntry) -> Result<(), BundleError> {
    let Some(listed) = manifest.file(&actual.path) else {
        return Err(BundleError::ExtraFile {
            path: actual.path.clone(),
        });
    };
    if listed.size != actual.size {
        return Err(BundleError::SizeMismatch {
            path: actual.path.clone(),
            expected: listed.size,
            actual: actual.size,
        });
    }
    if listed.sha256 != actual.sha256 {
        return Err(BundleError::HashMismatch {
            path: actual.path.clone(),
            expected: listed.sha256.clone(),
            actual: actual.sha256.clone(),
        });
    }
    Ok(())
}

fn digest(body: &mut dyn Read) -> Result<(String, u64), BundleError> {
    let mut hashing = HashingReader::new(body);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(body_error)?;
    Ok(hashing.finish())
}

/// A member's body fails only when the archive's stream does; the archive walker reports
/// that failure (with the archive's path) in place of this one.
fn body_error(source: std::io::Error) -> BundleError {
    BundleError::Write { source }
}

/// Reads a small member (manifest, signature) whole, refusing one above `limit`.
pub(crate) fn read_small(
    path: &str,
    size: u64,
    limit: u64,
    body: &mut dyn Read,
) -> Result<Vec<u8>, BundleError> {
    if size > limit {
        return Err(BundleError::MemberTooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    body.read_to_end(&mut bytes).map_err(body_error)?;
    if bytes.len() as u64 != size {
        return Err(body_error(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(bytes)
}

/// Checks that a `.tar.zst` is byte for byte the frame `pack` writes for the tar inside it:
/// re-encodes the tar with the pinned encoder and compares. Without it, a change inside a
/// compressed block that happens to decompress to the same tar (zstd has such slack) would
/// pass; with it, a bundle verifies only as the exact bytes that were signed and packed.
fn same_compression(path: &Path) -> Result<(), BundleError> {
    let io = |action: &'static str| {
        move |source| BundleError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let differs = || BundleError::NotAnArchive {
        path: path.to_path_buf(),
        reason: "its zstd frame is not the one bundles are written with for its contents \
                 (it was re-compressed or changed)"
            .to_owned(),
    };
    let mut tar = OpenArchive::open(path)?.into_tar_stream();
    let raw = std::fs::File::open(path).map_err(io("open"))?;
    let mut same = SameBytes {
        expected: BufReader::with_capacity(64 * 1024, raw),
        scratch: Vec::new(),
        differs: false,
    };
    let encoded = super::pack::zstd_encoder(&mut same).and_then(|mut encoder| {
        std::io::copy(&mut tar, &mut encoder)?;
        encoder.finish().map(drop)
    });
    if same.differs {
        return Err(differs());
    }
    encoded.map_err(io("read"))?;
    // Nothing may be left over in the archive.
    let mut byte = [0u8; 1];
    match same.expected.read(&mut byte).map_err(io("read"))? {
        0 => Ok(()),
        _ => Err(differs()),
    }
}

/// A writer that only accepts the bytes `expected` holds next.
struct SameBytes<R> {
    expected: R,
    scratch: Vec<u8>,
    differs: bool,
}

impl<R: Read> Write for SameBytes<R> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        let matches = self.expected.read_exact(&mut self.scratch).is_ok() && self.scratch == buf;
        if matches {
            Ok(buf.len())
        } else {
            self.differs = true;
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the archive's bytes differ from the canonical frame",
            ))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
