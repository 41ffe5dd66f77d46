//! Packing: the archive written in one pass over the OTLP files. Each OTLP file is streamed
//! into its member in large chunks while other threads hash it for the manifest (which
//! follows the files it describes) and for the archive's own digest.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, mpsc};

use ring::digest::{Context, SHA256};

use super::archive::{self, BLOCK, HashingWriter, MemberPath};
use super::format::{
    BundleMeta, Compression, FORMAT_VERSION, FileEntry, MAX_CONFIG_FILES, Manifest, PackedBundle,
    Window, ZSTD_LEVEL, ZSTD_WINDOW_LOG,
};
use super::otlp_file::{FilePart, Framing, OtlpFile, OtlpFiles};
use super::{BundleError, Envelope, SigningKey, hex, time};

/// The chunk OTLP files are copied in.
const CHUNK_BYTES: u64 = 1 << 20;
/// Chunks in flight between the copying thread and each hashing thread.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Written bytes after which [`pack`] asks for them to reach the disk, in the background.
const SYNC_EVERY_BYTES: u64 = 32 << 20;
const MAX_NAME_BYTES: usize = 256;

/// Packs, signs and writes the archive to `out`, through a temporary file in the same folder
/// that is synced and renamed into place at the end: on error nothing is left at `out` (an
/// existing file there is replaced only on success). While the archive is written, what is
/// already written is flushed to the disk in the background, so that the final sync is short.
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
/// let otlp = OtlpFiles::empty();
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
    pack_to_file(meta, otlp, config, key, compression, out, &mut |_| {})
}

/// [`pack`], calling `progress` with the running total of OTLP bytes copied.
pub(crate) fn pack_to_file(
    meta: &BundleMeta,
    otlp: &OtlpFiles,
    config: &[(String, Vec<u8>)],
    key: &SigningKey,
    compression: Compression,
    out: &Path,
    progress: &mut dyn FnMut(u64),
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
    let syncer = tmp
        .as_file()
        .try_clone()
        .map_err(io_error("open", tmp.path()))?;
    let packed = std::thread::scope(|scope| {
        let (sync_tx, sync_rx) = mpsc::sync_channel::<()>(1);
        let background = scope.spawn(move || {
            // Errors here are met again by the final sync, which reports them.
            while sync_rx.recv().is_ok() {
                let _ = syncer.sync_data();
            }
        });
        let mut writer = SyncingWriter {
            inner: BufWriter::with_capacity(CHUNK_BYTES as usize, tmp.as_file()),
            unsynced: 0,
            sync: Some(sync_tx),
        };
        let packed = pack_stream(meta, otlp, config, key, compression, &mut writer, progress)
            .map_err(|e| match e {
                BundleError::Write { source } => io_error("write", tmp.path())(source),
                other => other,
            });
        let flushed = writer.inner.flush();
        drop(writer);
        let _ = background.join();
        let packed = packed?;
        flushed.map_err(io_error("write", tmp.path()))?;
        Ok::<_, BundleError>(packed)
    })?;
    tmp.as_file()
        .sync_all()
        .map_err(io_error("sync", tmp.path()))?;
    tmp.persist(out)
        .map_err(|e| io_error("rename a temporary file to", out)(e.error))?;
    Ok(packed)
}

/// A file writer that asks a background thread to sync every [`SYNC_EVERY_BYTES`] written.
struct SyncingWriter<W> {
    inner: W,
    unsynced: u64,
    sync: Option<mpsc::SyncSender<()>>,
}

impl<W: Write> Write for SyncingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.unsynced = 0;
            if let Some(sync) = &self.sync
                && matches!(sync.try_send(()), Err(mpsc::TrySendError::Disconnected(())))
            {
                self.sync = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the same archive as [`pack`] into `w` (an HTTP response body, say), reading each
/// OTLP file once and never holding the archive in memory.
///
/// # Errors
///
/// [`BundleError::InvalidWindow`], [`BundleError::InvalidMeta`] or
/// [`BundleError::InvalidConfigPath`] for bad input, [`BundleError::Io`] naming a local file
/// that cannot be read, [`BundleError::ChangedWhilePacking`] when one became shorter,
/// [`BundleError::UnframedOtlp`] when one is not whole length-delimited messages (a segment
/// that changed since it was selected, say), [`BundleError::Write`] when `w` fails. On error, `w`
/// has received part of an archive that does not verify.
pub fn pack_into(
    meta: &BundleMeta,
    otlp: &OtlpFiles,
    config: &[(String, Vec<u8>)],
    key: &SigningKey,
    compression: Compression,
    w: &mut dyn Write,
) -> Result<PackedBundle, BundleError> {
    pack_stream(meta, otlp, config, key, compression, w, &mut |_| {})
}

/// [`pack_into`], calling `progress` with the running total of OTLP bytes copied.
pub(crate) fn pack_stream(
    meta: &BundleMeta,
    otlp: &OtlpFiles,
    config: &[(String, Vec<u8>)],
    key: &SigningKey,
    compression: Compression,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<PackedBundle, BundleError> {
    let window = window_of(meta)?;
    check_name("profile", &meta.profile)?;
    if let Some(tenant) = &meta.tenant {
        check_name("tenant", tenant)?;
    }
    let config = sorted_config(config)?;
    let write_error = |source| BundleError::Write { source };
    let mut archive = Archive {
        meta,
        window,
        config: &config,
        otlp,
        key,
        progress,
        copied: 0,
    };
    std::thread::scope(|scope| {
        let (manifest, sha256, size) = match compression {
            Compression::None => {
                // The archive is the tar stream: its digest is taken on a thread of its own.
                let mut sink = TarSink::new(scope, w, true);
                let manifest = archive.write(&mut sink)?;
                let (sha256, size) = sink.finish()?;
                (manifest, sha256, size)
            }
            Compression::Zstd => {
                let mut out = HashingWriter::new(w);
                let mut encoder = zstd_encoder(&mut out).map_err(write_error)?;
                let mut sink = TarSink::new(scope, &mut encoder, false);
                let manifest = archive.write(&mut sink)?;
                sink.finish()?;
                encoder.finish().map_err(write_error)?;
                out.flush().map_err(write_error)?;
                let (sha256, size) = out.finish();
                (manifest, sha256, size)
            }
        };
        Ok(PackedBundle {
            sha256,
            size,
            manifest,
        })
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

/// Everything that goes into one archive, written member by member in the fixed order:
/// configuration, the OTLP files, then the manifest listing them and its signature.
struct Archive<'a, 'p> {
    meta: &'a BundleMeta,
    window: Window,
    config: &'a [(&'a str, &'a [u8])],
    otlp: &'a OtlpFiles,
    key: &'a SigningKey,
    progress: &'p mut dyn FnMut(u64),
    copied: u64,
}

impl Archive<'_, '_> {
    fn write(&mut self, sink: &mut TarSink<'_, '_>) -> Result<Manifest, BundleError> {
        let write_error = |source| BundleError::Write { source };
        let mut tar = tar::Builder::new(sink);
        let mut files = Vec::with_capacity(self.config.len() + 3);
        for (path, contents) in self.config {
            append(&mut tar, path, contents)?;
            files.push(FileEntry {
                path: (*path).to_owned(),
                sha256: archive::sha256_hex(contents),
                size: contents.len() as u64,
            });
        }
        let otlp = [
            (MemberPath::Logs, &self.otlp.logs),
            (MemberPath::Metrics, &self.otlp.metrics),
            (MemberPath::Traces, &self.otlp.traces),
        ];
        for (member, file) in otlp {
            files.push(self.append_otlp(tar.get_mut(), member, file)?);
        }
        files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            counts: self.otlp.counts,
            files,
            format_version: FORMAT_VERSION,
            profile: self.meta.profile.clone(),
            tenant: self.meta.tenant.clone(),
            tool: format!("stella-telemetry {}", env!("CARGO_PKG_VERSION")),
            window: self.window.clone(),
        };
        let manifest_json = manifest.to_canonical_json()?;
        let signature = Envelope::sign(&manifest_json, self.key).to_json()?;
        append(&mut tar, MemberPath::Manifest.as_str(), &manifest_json)?;
        append(&mut tar, MemberPath::Signature.as_str(), &signature)?;
        tar.into_inner().map_err(write_error)?;
        Ok(manifest)
    }

    /// One OTLP member: the canonical header, the file's bytes copied in large chunks (hashed
    /// on another thread), the zero padding. Returns the file's manifest entry.
    fn append_otlp(
        &mut self,
        sink: &mut TarSink<'_, '_>,
        member: MemberPath,
        file: &OtlpFile,
    ) -> Result<FileEntry, BundleError> {
        let write_error = |source| BundleError::Write { source };
        let header = archive::member_header(member.as_str(), file.len()).map_err(write_error)?;
        sink.write_all(header.as_bytes()).map_err(write_error)?;
        for part in file.parts() {
            let mut reader = part.open()?;
            let mut framing = Framing::default();
            loop {
                let mut chunk = sink.buffer();
                if !reader.next_chunk(&mut chunk, CHUNK_BYTES)? {
                    break;
                }
                framing
                    .feed(&chunk)
                    .map_err(|reason| unframed(part, reason))?;
                self.copied += chunk.len() as u64;
                sink.write_member_chunk(chunk)?;
                (self.progress)(self.copied);
            }
            framing.finish().map_err(|reason| unframed(part, reason))?;
        }
        let sha256 = sink.end_member()?;
        let padding = (BLOCK - (file.len() % BLOCK as u64) as usize) % BLOCK;
        sink.write_all(&[0u8; BLOCK][..padding])
            .map_err(write_error)?;
        Ok(FileEntry {
            path: member.as_str().to_owned(),
            sha256,
            size: file.len(),
        })
    }
}

/// The thread taking the whole tar stream's digest, and what feeds it.
type TarDigest<'scope> = (
    mpsc::SyncSender<Arc<Vec<u8>>>,
    std::thread::ScopedJoinHandle<'scope, String>,
);

/// What the member-digest thread is told.
enum MemberBytes {
    Chunk(Arc<Vec<u8>>),
    End,
}

/// Where the tar stream goes: written to the output on the calling thread, hashed on two
/// others (the OTLP members for the manifest, and the whole stream for the archive's digest
/// when the archive is the tar itself), so that copying and both digests run side by side.
struct TarSink<'scope, 'w> {
    inner: &'w mut dyn Write,
    tar: Option<TarDigest<'scope>>,
    member: mpsc::SyncSender<MemberBytes>,
    member_digests: mpsc::Receiver<String>,
    spare: mpsc::Receiver<Vec<u8>>,
    written: u64,
}

impl<'scope, 'w> TarSink<'scope, 'w> {
    fn new<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        inner: &'w mut dyn Write,
        hash_tar: bool,
    ) -> Self {
        // Chunk buffers go back to the copying side once both digests have them, so that
        // the copy reuses a few warm buffers instead of allocating one per chunk.
        let (spare_tx, spare) = mpsc::sync_channel::<Vec<u8>>(2 * CHUNKS_IN_FLIGHT);
        let tar = hash_tar.then(|| {
            let (tx, rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(CHUNKS_IN_FLIGHT);
            let spare_tx = spare_tx.clone();
            let handle = scope.spawn(move || {
                let mut digest = Context::new(&SHA256);
                for bytes in rx {
                    digest.update(&bytes);
                    give_back(bytes, &spare_tx);
                }
                hex(digest.finish().as_ref())
            });
            (tx, handle)
        });
        let (member, member_rx) = mpsc::sync_channel::<MemberBytes>(CHUNKS_IN_FLIGHT);
        let (digest_tx, member_digests) = mpsc::sync_channel::<String>(1);
        scope.spawn(move || {
            let mut digest = Context::new(&SHA256);
            for bytes in member_rx {
                match bytes {
                    MemberBytes::Chunk(chunk) => {
                        digest.update(&chunk);
                        give_back(chunk, &spare_tx);
                    }
                    MemberBytes::End => {
                        let done = std::mem::replace(&mut digest, Context::new(&SHA256));
                        if digest_tx.send(hex(done.finish().as_ref())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        TarSink {
            inner,
            tar,
            member,
            member_digests,
            spare,
            written: 0,
        }
    }

    /// An empty buffer for the next chunk: a returned one when there is one.
    fn buffer(&self) -> Vec<u8> {
        match self.spare.try_recv() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            Err(_) => Vec::with_capacity(CHUNK_BYTES as usize),
        }
    }

    /// Writes one chunk of an OTLP member, and hands it to both digests.
    fn write_member_chunk(&mut self, chunk: Vec<u8>) -> Result<(), BundleError> {
        self.inner
            .write_all(&chunk)
            .map_err(|source| BundleError::Write { source })?;
        self.written += chunk.len() as u64;
        let chunk = Arc::new(chunk);
        if let Some((tar, _)) = &self.tar {
            tar.send(Arc::clone(&chunk)).map_err(|_| hasher_stopped())?;
        }
        self.member
            .send(MemberBytes::Chunk(chunk))
            .map_err(|_| hasher_stopped())
    }

    /// The digest of the OTLP member's bytes written since the last one ended.
    fn end_member(&mut self) -> Result<String, BundleError> {
        self.member
            .send(MemberBytes::End)
            .map_err(|_| hasher_stopped())?;
        self.member_digests.recv().map_err(|_| hasher_stopped())
    }

    /// The tar stream's digest and length (an empty digest when it was not asked for).
    fn finish(self) -> Result<(String, u64), BundleError> {
        let written = self.written;
        let digest = match self.tar {
            Some((tx, handle)) => {
                drop(tx);
                handle.join().map_err(|_| hasher_stopped())?
            }
            None => String::new(),
        };
        Ok((digest, written))
    }
}

impl Write for TarSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.written += n as u64;
        if let Some((tar, _)) = &self.tar {
            tar.send(Arc::new(written.to_vec()))
                .map_err(|_| io::Error::other("the hashing thread stopped"))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hands a chunk buffer back for reuse when this was its last holder (small buffers, and
/// any the full pool has no room for, are dropped).
fn give_back(chunk: Arc<Vec<u8>>, spare: &mpsc::SyncSender<Vec<u8>>) {
    if let Some(buffer) = Arc::into_inner(chunk)
        && buffer.capacity() >= CHUNK_BYTES as usize
    {
        let _ = spare.try_send(buffer);
    }
}

fn hasher_stopped() -> BundleError {
    BundleError::Write {
        source: io::Error::other("a hashing thread stopped"),
    }
}

fn unframed(part: &FilePart, reason: String) -> BundleError {
    BundleError::UnframedOtlp {
        path: part.path.clone(),
        reason: format!("in the range from byte {}, {reason}", part.offset),
    }
}

fn append(
    tar: &mut tar::Builder<&mut TarSink<'_, '_>>,
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
