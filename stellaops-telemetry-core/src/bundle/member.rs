//! Reading one OTLP file of a verified bundle as a stream, for replay: the archive is read
//! from its start up to that member, never held in memory.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use ring::digest::{Context, SHA256};

use super::archive::{BLOCK, MAX_MEMBERS, MemberPath, OpenArchive, canonical_member};
use super::{BundleError, FileEntry, VerifiedBundle, hex};

/// One of the three OTLP files a bundle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtlpSignal {
    /// `otlp/traces.pb`: `TracesData` messages.
    Traces,
    /// `otlp/metrics.pb`: `MetricsData` messages.
    Metrics,
    /// `otlp/logs.pb`: `LogsData` messages.
    Logs,
}

impl OtlpSignal {
    /// The three signals, in the order replay sends them.
    pub const ALL: [OtlpSignal; 3] = [OtlpSignal::Traces, OtlpSignal::Metrics, OtlpSignal::Logs];

    /// The member's path in the archive (`otlp/traces.pb`).
    ///
    /// ```
    /// use stellaops_telemetry_core::bundle::OtlpSignal;
    /// assert_eq!(OtlpSignal::Logs.member_path(), "otlp/logs.pb");
    /// ```
    pub const fn member_path(self) -> &'static str {
        self.member().as_str()
    }

    const fn member(self) -> MemberPath {
        match self {
            OtlpSignal::Traces => MemberPath::Traces,
            OtlpSignal::Metrics => MemberPath::Metrics,
            OtlpSignal::Logs => MemberPath::Logs,
        }
    }
}

impl VerifiedBundle {
    /// Opens the OTLP file of `signal` inside `archive` (the file this bundle was verified
    /// from) as a stream of varint-delimited messages, ready for
    /// [`Replay::send`](crate::Replay::send). Plain and zstd archives alike; memory is a read
    /// buffer (and zstd's window), whatever the member's size.
    ///
    /// The bytes read are checked against the verified manifest as they pass: when the
    /// member ends, its size and sha256 must be the ones verified, else the last read fails
    /// with [`io::ErrorKind::InvalidData`] naming the member. A file replaced after
    /// verification is thus caught, though only once its member has been read through.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use stellaops_telemetry_core::bundle::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let meta = BundleMeta { from: UNIX_EPOCH, to: UNIX_EPOCH + Duration::from_secs(60), tenant: None, profile: "default".into() };
    /// # let key = SigningKey::generate()?;
    /// let out = dir.path().join("b.tar.zst");
    /// pack(&meta, &OtlpFiles::empty(), &[], &key, Compression::Zstd, &out)?;
    /// let verified = verify(&out, &key.public_key())?;
    /// let mut traces = verified.otlp_reader(&out, OtlpSignal::Traces)?;
    /// let mut bytes = Vec::new();
    /// traces.read_to_end(&mut bytes)?;
    /// assert!(bytes.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] naming the archive when it cannot be opened or read,
    /// [`BundleError::NotAnArchive`] when it ends before the member,
    /// [`BundleError::MissingFile`] when the member is not there, a header error
    /// ([`BundleError::NonCanonicalHeader`]…) for a header on the way that is not a bundle's.
    pub fn otlp_reader(
        &self,
        archive: &Path,
        signal: OtlpSignal,
    ) -> Result<OtlpReader, BundleError> {
        let path = signal.member_path();
        let expected =
            self.manifest
                .file(path)
                .cloned()
                .ok_or_else(|| BundleError::MissingFile {
                    path: path.to_owned(),
                })?;
        let (stream, size) = seek_member(archive, path)?;
        Ok(OtlpReader {
            inner: stream.take(size),
            digest: Some(Context::new(&SHA256)),
            read: 0,
            expected,
            failed: false,
        })
    }
}

/// The contents of one OTLP file of a verified bundle: see [`VerifiedBundle::otlp_reader`].
pub struct OtlpReader {
    inner: io::Take<Box<dyn Read + Send>>,
    digest: Option<Context>,
    read: u64,
    expected: FileEntry,
    failed: bool,
}

impl OtlpReader {
    /// At the member's end: its size and digest must be the verified ones.
    fn check_end(&mut self) -> io::Result<()> {
        let Some(digest) = self.digest.take() else {
            return Ok(());
        };
        if self.read != self.expected.size || hex(digest.finish().as_ref()) != self.expected.sha256
        {
            self.failed = true;
        }
        self.fail_if_changed()
    }

    fn fail_if_changed(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "`{}` is not the file that was verified: the archive changed since",
                    self.expected.path
                ),
            ));
        }
        Ok(())
    }
}

impl Read for OtlpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fail_if_changed()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        if let Some(digest) = &mut self.digest {
            digest.update(buf.get(..n).unwrap_or_default());
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl fmt::Debug for OtlpReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpReader")
            .field("member", &self.expected.path)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// The archive's tar stream positioned at the contents of member `wanted`, and its size.
fn seek_member(archive: &Path, wanted: &str) -> Result<(Box<dyn Read + Send>, u64), BundleError> {
    let mut stream = OpenArchive::open(archive)?.into_tar_stream();
    let read_error = |source| BundleError::Io {
        action: "read",
        path: archive.to_path_buf(),
        source,
    };
    let ends_early = || BundleError::NotAnArchive {
        path: archive.to_path_buf(),
        reason: format!("it ends before member `{wanted}`"),
    };
    let mut block = [0u8; BLOCK];
    for _ in 0..MAX_MEMBERS {
        let filled = io::copy(
            &mut (&mut stream).take(BLOCK as u64),
            &mut io::Cursor::new(&mut block[..]),
        )
        .map_err(read_error)?;
        if filled != BLOCK as u64 {
            return Err(ends_early());
        }
        if block.iter().all(|b| *b == 0) {
            return Err(BundleError::MissingFile {
                path: wanted.to_owned(),
            });
        }
        let (path, size) = canonical_member(&block)?;
        if path == wanted {
            return Ok((stream, size));
        }
        let padded = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        let skipped =
            io::copy(&mut (&mut stream).take(padded), &mut io::sink()).map_err(read_error)?;
        if skipped != padded {
            return Err(ends_early());
        }
    }
    Err(BundleError::TooManyMembers { limit: MAX_MEMBERS })
}
