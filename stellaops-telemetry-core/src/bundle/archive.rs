//! The archive's byte layout: canonical tar headers, the fixed member order, digests while
//! streaming, and a strict reader that accepts only what [`pack`](super::pack) writes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use super::format::{Compression, FORMAT_VERSION, MAX_CONFIG_FILES, ZSTD_WINDOW_LOG};
use super::{BundleError, hex};

pub(crate) const BLOCK: usize = 512;
/// The most members an archive may hold: the configuration files and the five fixed members.
pub(crate) const MAX_MEMBERS: usize = MAX_CONFIG_FILES + 5;
pub(crate) const CONFIG_PREFIX: &str = "config/";
const MAX_CONFIG_PATH_BYTES: usize = 100;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The frame header [`pack`](super::pack) writes: the magic number, a descriptor saying
/// "content checksum, no content size, no dictionary, not single-segment", and the window
/// descriptor for a 4 MiB window. Any other header is refused.
const ZSTD_FRAME_HEADER: [u8; 6] = [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x60];

/// The fixed members, in archive order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MemberPath {
    Logs,
    Metrics,
    Traces,
    Manifest,
    Signature,
}

impl MemberPath {
    pub(crate) const ORDER: [MemberPath; 5] = [
        MemberPath::Logs,
        MemberPath::Metrics,
        MemberPath::Traces,
        MemberPath::Manifest,
        MemberPath::Signature,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            MemberPath::Manifest => "manifest.json",
            MemberPath::Logs => "otlp/logs.pb",
            MemberPath::Metrics => "otlp/metrics.pb",
            MemberPath::Traces => "otlp/traces.pb",
            MemberPath::Signature => "signatures/manifest.sig",
        }
    }

    fn parse(path: &str) -> Option<MemberPath> {
        MemberPath::ORDER.into_iter().find(|m| m.as_str() == path)
    }
}

/// What a member is, by its path and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberKind {
    Config,
    Fixed(MemberPath),
}

/// The canonical header of a member: ustar, regular file, mode 0644, owner 0:0 with empty
/// names, time 0.
pub(crate) fn member_header(path: &str, size: u64) -> io::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_username("")?;
    header.set_groupname("")?;
    header.set_cksum();
    Ok(header)
}

/// Checks a configuration file's path: `config/` then `[A-Za-z0-9._-]` segments joined by
/// `/`, none empty, `.` or `..`, at most 100 bytes.
pub(crate) fn check_config_path(path: &str) -> Result<(), BundleError> {
    let refuse = |reason| {
        Err(BundleError::InvalidConfigPath {
            path: path.chars().take(128).collect(),
            reason,
        })
    };
    let Some(rest) = path.strip_prefix(CONFIG_PREFIX) else {
        return refuse("it does not start with `config/`");
    };
    if path.len() > MAX_CONFIG_PATH_BYTES {
        return refuse("it is longer than 100 bytes");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return refuse("it has an empty, `.` or `..` segment");
        }
        if !segment.chars().all(allowed) {
            return refuse("only letters, digits, `.`, `_`, `-` and `/` are allowed");
        }
    }
    Ok(())
}

/// The sha256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    digest: Context,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            digest: Context::new(&SHA256),
            count: 0,
        }
    }

    /// The sha256 (hex) and byte count of everything read so far.
    pub(crate) fn finish(self) -> (String, u64) {
        (hex(self.digest.finish().as_ref()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(buf.get(..n).unwrap_or_default());
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    digest: Context,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            digest: Context::new(&SHA256),
            count: 0,
        }
    }

    /// The sha256 (hex) and byte count of everything written.
    pub(crate) fn finish(self) -> (String, u64) {
        (hex(self.digest.finish().as_ref()), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(buf.get(..n).unwrap_or_default());
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Follows the fixed member order: configuration files (strictly increasing), then the
/// fixed members one after the other.
#[derive(Default)]
pub(crate) struct LayoutCursor {
    last_config: Option<String>,
    next_fixed: usize,
}

impl LayoutCursor {
    /// Classifies the next member, or says why it cannot come here.
    pub(crate) fn accept(&mut self, path: &str) -> Result<MemberKind, BundleError> {
        let expected = || {
            MemberPath::ORDER
                .get(self.next_fixed)
                .map_or("the end of the archive", |m| m.as_str())
                .to_owned()
        };
        if path.starts_with(CONFIG_PREFIX) {
            let in_order = self.last_config.as_deref().is_none_or(|last| last < path);
            if self.next_fixed > 0 || !in_order {
                return Err(BundleError::UnexpectedMember {
                    path: path.to_owned(),
                    expected: expected(),
                });
            }
            self.last_config = Some(path.to_owned());
            return Ok(MemberKind::Config);
        }
        let Some(member) = MemberPath::parse(path) else {
            return Err(BundleError::ExtraFile {
                path: path.to_owned(),
            });
        };
        let position = MemberPath::ORDER
            .iter()
            .position(|m| *m == member)
            .unwrap_or(0);
        if position > self.next_fixed {
            return Err(BundleError::MissingFile { path: expected() });
        }
        if position < self.next_fixed {
            return Err(BundleError::UnexpectedMember {
                path: path.to_owned(),
                expected: expected(),
            });
        }
        self.next_fixed += 1;
        Ok(MemberKind::Fixed(member))
    }

    /// At the end of the archive: every fixed member must have been seen.
    pub(crate) fn finish(&self) -> Result<(), BundleError> {
        match MemberPath::ORDER.get(self.next_fixed) {
            Some(missing) => Err(BundleError::MissingFile {
                path: missing.as_str().to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// Called for each member with its path, kind, size and contents.
pub(crate) type Visitor<'a> =
    dyn FnMut(&str, MemberKind, u64, &mut dyn Read) -> Result<(), BundleError> + 'a;

/// An archive opened for reading: the tar stream (decompressed if need be) over the file,
/// which is hashed as it is read.
pub(crate) struct OpenArchive {
    pub(crate) path: PathBuf,
    pub(crate) compression: Compression,
    stream: Stream,
}

enum Stream {
    Plain(BufReader<HashingReader<File>>),
    Zstd(zstd::Decoder<'static, BufReader<HashingReader<File>>>),
}

impl OpenArchive {
    /// Opens `path`, telling a zstd frame from a plain tar by its first four bytes.
    pub(crate) fn open(path: &Path) -> Result<OpenArchive, BundleError> {
        let io_error = |action: &'static str| {
            move |source| BundleError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = File::open(path).map_err(io_error("open"))?;
        let mut reader = BufReader::with_capacity(64 * 1024, HashingReader::new(file));
        let start = reader.fill_buf().map_err(io_error("read"))?;
        let is_zstd = start.starts_with(&ZSTD_MAGIC);
        if is_zstd && !start.starts_with(&ZSTD_FRAME_HEADER) {
            return Err(BundleError::NotAnArchive {
                path: path.to_path_buf(),
                reason: "its zstd frame header is not the one bundles are written with".to_owned(),
            });
        }
        let (compression, stream) = if is_zstd {
            let mut decoder = zstd::Decoder::with_buffer(reader).map_err(io_error("read"))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG)
                .map_err(io_error("read"))?;
            (Compression::Zstd, Stream::Zstd(decoder.single_frame()))
        } else {
            (Compression::None, Stream::Plain(reader))
        };
        Ok(OpenArchive {
            path: path.to_path_buf(),
            compression,
            stream,
        })
    }

    /// The tar stream (decompressed when the archive is zstd), for reading its members in
    /// order; no layout check is made on it.
    pub(crate) fn into_tar_stream(self) -> Box<dyn Read + Send> {
        match self.stream {
            Stream::Plain(reader) => Box::new(reader),
            Stream::Zstd(decoder) => Box::new(decoder),
        }
    }

    /// Walks every member in order, calling `visit` with its path, kind, size and contents;
    /// checks headers, padding and the end of the archive byte for byte. Returns the archive's
    /// sha256 (hex) and size once everything has been read.
    pub(crate) fn walk(self, visit: &mut Visitor<'_>) -> Result<(String, u64), BundleError> {
        let path = self.path;
        match self.stream {
            Stream::Plain(reader) => {
                let mut tar = TarReader::new(reader, &path);
                tar.walk(visit)?;
                Ok(tar.inner.inner.into_inner().finish())
            }
            Stream::Zstd(decoder) => {
                let mut tar = TarReader::new(decoder, &path);
                tar.walk(visit)?;
                // Nothing may follow the zstd frame.
                let mut rest = tar.inner.inner.finish();
                let mut byte = [0u8; 1];
                let n = rest.read(&mut byte).map_err(|source| BundleError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?;
                if n != 0 {
                    return Err(BundleError::TrailingData {
                        place: "after the zstd frame".to_owned(),
                    });
                }
                Ok(rest.into_inner().finish())
            }
        }
    }
}

/// A reader that keeps a copy of the first error of its source, so that the archive's own
/// failures (I/O, zstd) are told apart from a visitor's complaints about what it read.
struct ErrorKeeping<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for ErrorKeeping<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.error.is_none() && e.kind() != io::ErrorKind::Interrupted {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// A strict tar reader: every header must be the canonical one for its path and size.
struct TarReader<'p, R> {
    inner: ErrorKeeping<R>,
    archive: &'p Path,
}

impl<'p, R: Read> TarReader<'p, R> {
    fn new(inner: R, archive: &'p Path) -> Self {
        TarReader {
            inner: ErrorKeeping { inner, error: None },
            archive,
        }
    }

    fn walk(&mut self, visit: &mut Visitor<'_>) -> Result<(), BundleError> {
        let mut cursor = LayoutCursor::default();
        let mut members = 0usize;
        let mut block = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut block, "a tar header")? {
                return Err(self.not_an_archive("it ends without an end-of-archive marker"));
            }
            if block.iter().all(|b| *b == 0) {
                self.end_of_archive(&mut block)?;
                return cursor.finish();
            }
            members += 1;
            if members > MAX_MEMBERS {
                return Err(BundleError::TooManyMembers { limit: MAX_MEMBERS });
            }
            let (path, size) = canonical_member(&block)?;
            let kind = cursor.accept(&path)?;
            self.member(&path, kind, size, visit)?;
        }
    }

    /// One member's contents and padding.
    fn member(
        &mut self,
        path: &str,
        kind: MemberKind,
        size: u64,
        visit: &mut Visitor<'_>,
    ) -> Result<(), BundleError> {
        let mut body = (&mut self.inner).take(size);
        let visited = visit(path, kind, size, &mut body);
        let unread = body.limit();
        // A failure of the archive's own stream (I/O, zstd) explains any error of the visitor.
        if let Some(source) = self.inner.error.take() {
            return Err(self.stream_error(source));
        }
        // The rest of the member is read even after a complaint: an archive cut short inside
        // it explains the complaint better.
        let mut rest = (&mut self.inner).take(unread);
        let drained = io::copy(&mut rest, &mut io::sink());
        let left = rest.limit();
        drained.map_err(|e| self.stream_error(e))?;
        if left != 0 {
            return Err(self.not_an_archive(&format!("it ends inside member `{path}`")));
        }
        visited?;
        let padding = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        let mut pad = [0u8; BLOCK];
        let pad = pad.get_mut(..padding).unwrap_or_default();
        if !self.read_exact_or_eof(pad)? {
            return Err(self.not_an_archive(&format!("it ends inside member `{path}`")));
        }
        if pad.iter().any(|b| *b != 0) {
            return Err(BundleError::TrailingData {
                place: format!("in the padding after member `{path}`"),
            });
        }
        Ok(())
    }

    /// The second zero block, then nothing.
    fn end_of_archive(&mut self, block: &mut [u8; BLOCK]) -> Result<(), BundleError> {
        if !self.read_block(block, "the end-of-archive marker")? || block.iter().any(|b| *b != 0) {
            return Err(BundleError::TrailingData {
                place: "in the end-of-archive marker".to_owned(),
            });
        }
        let mut byte = [0u8; 1];
        if self.read_exact_or_eof(&mut byte)? {
            return Err(BundleError::TrailingData {
                place: "after the end-of-archive marker".to_owned(),
            });
        }
        Ok(())
    }

    /// Reads a whole block; `false` at a clean end of the stream.
    fn read_block(&mut self, block: &mut [u8; BLOCK], what: &str) -> Result<bool, BundleError> {
        match self.read_exact_or_eof(block) {
            Ok(read) => Ok(read),
            Err(BundleError::NotAnArchive { .. }) => {
                Err(self.not_an_archive(&format!("it ends inside {what}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Fills `buf`; `Ok(false)` when the stream ends before the first byte.
    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> Result<bool, BundleError> {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = buf.get_mut(filled..).unwrap_or_default();
            match self.inner.read(rest) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(self.not_an_archive("it is truncated")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.stream_error(e)),
            }
        }
        Ok(true)
    }

    fn not_an_archive(&self, reason: &str) -> BundleError {
        BundleError::NotAnArchive {
            path: self.archive.to_path_buf(),
            reason: reason.to_owned(),
        }
    }

    fn stream_error(&self, source: io::Error) -> BundleError {
        BundleError::Io {
            action: "read",
            path: self.archive.to_path_buf(),
            source,
        }
    }
}

/// The `format_version` of the archive's `manifest.json`, wherever it lies, read without any
/// layout check: to tell a bundle of another format version from a damaged one when the
/// layout is not this version's. Reads at most [`MAX_MEMBERS`] headers and a manifest of at
/// most `max_manifest` bytes; `None` when there is no such manifest.
pub(crate) fn sniff_format_version(path: &Path, max_manifest: u64) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: u64,
    }
    let mut stream = OpenArchive::open(path).ok()?.into_tar_stream();
    let mut block = [0u8; BLOCK];
    for _ in 0..MAX_MEMBERS {
        stream.read_exact(&mut block).ok()?;
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size().ok()?;
        if header.path_bytes().as_ref() == MemberPath::Manifest.as_str().as_bytes() {
            if size > max_manifest {
                return None;
            }
            let mut bytes = Vec::new();
            (&mut stream).take(size).read_to_end(&mut bytes).ok()?;
            return serde_json::from_slice::<Version>(&bytes)
                .ok()
                .map(|v| v.format_version);
        }
        let padded = size.div_ceil(BLOCK as u64).checked_mul(BLOCK as u64)?;
        io::copy(&mut (&mut stream).take(padded), &mut io::sink()).ok()?;
    }
    None
}

/// An error met before the archive's manifest was read, explained: when the archive's
/// manifest (wherever it lies) names another format version than this one, that is the
/// error, since a bundle of another version is laid out and encoded otherwise; else `error`.
pub(crate) fn explain_early_error(
    path: &Path,
    max_manifest: u64,
    error: BundleError,
) -> BundleError {
    match sniff_format_version(path, max_manifest) {
        Some(found) if found != FORMAT_VERSION => BundleError::UnsupportedFormatVersion {
            found,
            supported: FORMAT_VERSION,
        },
        _ => error,
    }
}

/// The path and size of a member whose header is exactly the canonical one.
pub(crate) fn canonical_member(block: &[u8; BLOCK]) -> Result<(String, u64), BundleError> {
    let header = tar::Header::from_byte_slice(block);
    let path = String::from_utf8_lossy(&header.path_bytes()).into_owned();
    let kind = header.entry_type();
    if kind != tar::EntryType::Regular {
        return Err(BundleError::NonRegularEntry {
            path,
            kind: char::from(kind.as_byte()),
        });
    }
    if path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(BundleError::UnsafePath { path });
    }
    let non_canonical = |field| BundleError::NonCanonicalHeader {
        path: path.clone(),
        field,
    };
    let size = header.entry_size().map_err(|_| non_canonical("size"))?;
    let expected = member_header(&path, size).map_err(|_| non_canonical("path"))?;
    if let Some(offset) = expected
        .as_bytes()
        .iter()
        .zip(block)
        .position(|(a, b)| a != b)
    {
        return Err(non_canonical(header_field(offset)));
    }
    Ok((path, size))
}

/// The ustar field at `offset` of a header block.
fn header_field(offset: usize) -> &'static str {
    match offset {
        0..100 => "name",
        100..108 => "mode",
        108..124 => "owner",
        124..136 => "size",
        136..148 => "modification time",
        148..156 => "checksum",
        156 => "type",
        157..257 => "link name",
        257..265 => "format magic",
        265..329 => "owner names",
        329..345 => "device numbers",
        345..500 => "name prefix",
        _ => "padding",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_are_checked() {
        assert!(check_config_path("config/collector.yaml").is_ok());
        assert!(check_config_path("config/dashboards/platform-health.json").is_ok());
        for bad in [
            "collector.yaml",
            "config/../x",
            "config//x",
            "config/a b",
            "config/",
            "/config/x",
        ] {
            assert!(check_config_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_layout_names_missing_extra_and_misplaced_members() {
        let mut c = LayoutCursor::default();
        assert_eq!(c.accept("config/a").unwrap(), MemberKind::Config);
        assert!(matches!(
            c.accept("config/a"),
            Err(BundleError::UnexpectedMember { .. })
        ));
        let mut c = LayoutCursor::default();
        c.accept("otlp/logs.pb").unwrap();
        assert!(
            matches!(c.accept("otlp/traces.pb"), Err(BundleError::MissingFile { path }) if path == "otlp/metrics.pb")
        );
        assert!(matches!(
            c.accept("otlp/extra.pb"),
            Err(BundleError::ExtraFile { .. })
        ));
        assert!(matches!(
            c.accept("config/a"),
            Err(BundleError::UnexpectedMember { .. })
        ));
        assert!(
            matches!(c.finish(), Err(BundleError::MissingFile { path }) if path == "otlp/metrics.pb")
        );
    }
}
