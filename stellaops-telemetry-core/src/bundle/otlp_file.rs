//! The OTLP files a bundle is packed from: each one a run of byte ranges of local files (whole
//! segments of the store copied as they are, and the filtered part of the others), read one
//! after the other; and the varint framing every one of them must follow.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{BundleError, MAX_OTLP_MESSAGE_BYTES, SignalCounts};

/// One OTLP file of a bundle, varint-length-delimited messages, held as byte ranges of local
/// files that are read one after the other when the bundle is packed.
///
/// ```
/// # use std::io::Read;
/// use stellaops_telemetry_core::bundle::OtlpFile;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("traces.pb");
/// std::fs::write(&path, [3u8, 1, 2, 3])?; // one message of three bytes
/// let file = OtlpFile::from_path(&path)?;
/// assert_eq!(file.len(), 4);
/// assert_eq!(file.read_all()?, [3, 1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpFile {
    parts: Vec<FilePart>,
    len: u64,
}

/// `len` bytes of the local file `path` from `offset`; read through `handle` when the file was
/// opened at selection (so that it can still be read if it is removed before packing).
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    pub(crate) path: PathBuf,
    pub(crate) handle: Option<Arc<File>>,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl PartialEq for FilePart {
    fn eq(&self, other: &Self) -> bool {
        (&self.path, self.offset, self.len) == (&other.path, other.offset, other.len)
    }
}

impl Eq for FilePart {}

impl OtlpFile {
    /// An OTLP file with no messages.
    pub fn empty() -> OtlpFile {
        OtlpFile::default()
    }

    /// The whole local file at `path`, as long as it is now.
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] naming `path` when it cannot be read.
    pub fn from_path(path: &Path) -> Result<OtlpFile, BundleError> {
        let len = std::fs::metadata(path)
            .map_err(|source| BundleError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut file = OtlpFile::empty();
        file.push(path, 0, len);
        Ok(file)
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads it whole into memory (for tests and small selections; packing streams it).
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] naming the local file that cannot be read, or
    /// [`BundleError::ChangedWhilePacking`] naming one that became shorter.
    pub fn read_all(&self) -> Result<Vec<u8>, BundleError> {
        let mut bytes = Vec::new();
        let mut chunk = Vec::new();
        for part in &self.parts {
            let mut reader = part.open()?;
            loop {
                chunk.clear();
                if !reader.next_chunk(&mut chunk, 1 << 20)? {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        Ok(bytes)
    }

    /// Appends `len` bytes of `path` from `offset`; a range that continues the previous one
    /// of the same file extends it.
    pub(crate) fn push(&mut self, path: &Path, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.len = self.len.saturating_add(len);
        if let Some(last) = self.parts.last_mut()
            && last.handle.is_none()
            && last.path == path
            && last.offset.saturating_add(last.len) == offset
        {
            last.len = last.len.saturating_add(len);
            return;
        }
        self.parts.push(FilePart {
            path: path.to_path_buf(),
            handle: None,
            offset,
            len,
        });
    }

    /// Appends the first `len` bytes of the open file `handle` (which is `path`).
    pub(crate) fn push_open(&mut self, path: &Path, handle: Arc<File>, len: u64) {
        if len == 0 {
            return;
        }
        self.len = self.len.saturating_add(len);
        self.parts.push(FilePart {
            path: path.to_path_buf(),
            handle: Some(handle),
            offset: 0,
            len,
        });
    }

    /// The ranges, in order.
    pub(crate) fn parts(&self) -> &[FilePart] {
        &self.parts
    }
}

/// The three OTLP files of a bundle, with their record counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpFiles {
    /// `TracesData` messages.
    pub traces: OtlpFile,
    /// `MetricsData` messages.
    pub metrics: OtlpFile,
    /// `LogsData` messages.
    pub logs: OtlpFile,
    /// How many spans, points and log records they hold.
    pub counts: SignalCounts,
}

impl OtlpFiles {
    /// No records: a bundle of configuration only.
    pub fn empty() -> OtlpFiles {
        OtlpFiles::default()
    }

    /// The three whole local files, with their counts.
    ///
    /// # Errors
    ///
    /// [`BundleError::Io`] naming a file that cannot be read.
    pub fn from_paths(
        traces: &Path,
        metrics: &Path,
        logs: &Path,
        counts: SignalCounts,
    ) -> Result<OtlpFiles, BundleError> {
        Ok(OtlpFiles {
            traces: OtlpFile::from_path(traces)?,
            metrics: OtlpFile::from_path(metrics)?,
            logs: OtlpFile::from_path(logs)?,
            counts,
        })
    }
}

/// One range being read, in large chunks.
pub(crate) struct PartReader<'a> {
    part: &'a FilePart,
    input: io::Take<File>,
}

impl FilePart {
    pub(crate) fn open(&self) -> Result<PartReader<'_>, BundleError> {
        let file = match &self.handle {
            Some(handle) => handle.try_clone(),
            None => File::open(&self.path),
        };
        let mut file = file.map_err(|source| self.io("open", source))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|source| self.io("read", source))?;
        Ok(PartReader {
            part: self,
            input: file.take(self.len),
        })
    }

    fn io(&self, action: &'static str, source: io::Error) -> BundleError {
        BundleError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

impl PartReader<'_> {
    /// Fills `chunk` (emptied first) with up to `max` next bytes; `false` once the range is
    /// read through. A file that ends before the range does is an error.
    pub(crate) fn next_chunk(
        &mut self,
        chunk: &mut Vec<u8>,
        max: u64,
    ) -> Result<bool, BundleError> {
        chunk.clear();
        let left = self.input.limit();
        if left == 0 {
            return Ok(false);
        }
        let read = (&mut self.input)
            .take(max)
            .read_to_end(chunk)
            .map_err(|source| self.part.io("read", source))?;
        if read == 0 {
            return Err(BundleError::ChangedWhilePacking {
                path: self.part.path.clone(),
                reason: format!("it ends {left} bytes before the range selected"),
            });
        }
        Ok(true)
    }
}

/// Follows varint-length-delimited framing across chunks in linear time: every message's
/// length prefix is at most ten bytes, its length at most [`MAX_OTLP_MESSAGE_BYTES`], and
/// the bytes end at a message boundary.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    /// Bytes of the current message body still to come.
    body_left: u64,
    /// The length prefix read so far, and how many of its bytes.
    prefix: u64,
    prefix_bytes: u32,
    /// Messages begun.
    pub(crate) messages: u64,
    /// Bytes fed so far.
    offset: u64,
}

impl Framing {
    /// Follows `bytes`; says what is wrong, with its byte offset, when they break the framing.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = bytes.get(skip..).unwrap_or_default();
                self.body_left -= skip as u64;
                self.offset += skip as u64;
                continue;
            }
            let Some((&byte, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            if self.prefix_bytes == 10 {
                return Err(format!(
                    "the length prefix at byte {} is longer than ten bytes",
                    self.offset - 10
                ));
            }
            if self.prefix_bytes == 9 && byte > 1 {
                return Err(format!(
                    "the length prefix at byte {} overflows 64 bits",
                    self.offset - 9
                ));
            }
            self.prefix |= u64::from(byte & 0x7f) << (7 * self.prefix_bytes);
            self.prefix_bytes += 1;
            self.offset += 1;
            if byte & 0x80 == 0 {
                let start = self.offset - u64::from(self.prefix_bytes);
                let len = self.prefix;
                if len > MAX_OTLP_MESSAGE_BYTES {
                    return Err(format!(
                        "the message at byte {start} claims {len} bytes, more than the 32 MiB bound"
                    ));
                }
                self.messages += 1;
                self.body_left = len;
                self.prefix = 0;
                self.prefix_bytes = 0;
            }
        }
        Ok(())
    }

    /// At the end: the bytes must have ended at a message boundary.
    pub(crate) fn finish(&self) -> Result<u64, String> {
        if self.body_left > 0 || self.prefix_bytes > 0 {
            return Err(format!("it ends inside a message, at byte {}", self.offset));
        }
        Ok(self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_messages_across_chunks() {
        let mut bytes = Vec::new();
        for len in [0usize, 1, 127, 128, 300] {
            prost::encoding::encode_varint(len as u64, &mut bytes);
            bytes.extend(std::iter::repeat_n(7u8, len));
        }
        for chunk in [1, 2, 3, 64, bytes.len()] {
            let mut framing = Framing::default();
            for piece in bytes.chunks(chunk) {
                framing.feed(piece).unwrap();
            }
            assert_eq!(framing.finish().unwrap(), 5, "chunks of {chunk}");
        }
        let mut cut = Framing::default();
        cut.feed(&bytes[..bytes.len() - 1]).unwrap();
        assert!(cut.finish().is_err());
        let mut long = Framing::default();
        assert!(long.feed(&[0xff; 11]).is_err());
        let mut overflow = Framing::default();
        let mut prefix = vec![0x80; 9];
        prefix.push(0x02);
        assert!(overflow.feed(&prefix).is_err());
        let mut huge = Framing::default();
        let mut prefix = Vec::new();
        prost::encoding::encode_varint(MAX_OTLP_MESSAGE_BYTES + 1, &mut prefix);
        assert!(huge.feed(&prefix).is_err());
    }

    #[test]
    fn adjacent_ranges_of_one_file_merge() {
        let mut file = OtlpFile::empty();
        file.push(Path::new("a"), 0, 10);
        file.push(Path::new("a"), 10, 5);
        file.push(Path::new("b"), 15, 5);
        file.push(Path::new("a"), 15, 0);
        assert_eq!(file.parts().len(), 2);
        assert_eq!(file.len(), 20);
    }
}
