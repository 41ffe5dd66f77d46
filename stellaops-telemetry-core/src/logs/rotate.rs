//! A log file that rotates by size: `app.log`, `app.log.1`, … `app.log.{max_files - 1}`.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::LogOutputError;

/// Buffer between the writer thread and the file; a flush happens whenever the queue empties.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// A file that is rotated before a write would push it past `max_bytes`.
///
/// Rotation renames `app.log` to `app.log.1`, `app.log.1` to `app.log.2` and so on, deleting the
/// oldest, so that at most `max_files` files exist (the current one included). A line never
/// spans two files, and a single line longer than `max_bytes` gets a file of its own.
///
/// # Example
///
/// ```
/// use stellaops_telemetry_core::RotatingFile;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.log");
/// let file = RotatingFile::new(
///     &path,
///     RotatingFile::DEFAULT_MAX_BYTES,
///     RotatingFile::DEFAULT_MAX_FILES,
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    /// `None` after a failed reopen; the next write tries again.
    file: Option<BufWriter<File>>,
    size: u64,
}

impl RotatingFile {
    /// The default size limit of one file: 100 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

    /// The default number of files kept, the current one included: 10.
    pub const DEFAULT_MAX_FILES: usize = 10;

    /// Opens (or creates, with its directory) `path` for appending; existing content counts
    /// towards `max_bytes`.
    ///
    /// # Errors
    ///
    /// [`LogOutputError::OpenFile`] when the file or its directory cannot be created, and [`LogOutputError::InvalidRotation`] when `max_bytes` or `max_files` is zero.
    pub fn new(
        path: impl AsRef<Path>,
        max_bytes: u64,
        max_files: usize,
    ) -> Result<Self, LogOutputError> {
        let path = path.as_ref().to_path_buf();
        if max_bytes == 0 || max_files == 0 {
            return Err(LogOutputError::InvalidRotation {
                max_bytes,
                max_files,
            });
        }
        let opened = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => std::fs::create_dir_all(dir).and_then(|()| open(&path)),
            None => open(&path),
        };
        let (file, size) = opened.map_err(|source| LogOutputError::OpenFile {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            max_bytes,
            max_files,
            file: Some(file),
            size,
        })
    }

    /// The path of the current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.flush()?;
        }
        // Close before renaming: not every platform renames open files.
        self.file = None;
        let shifted = self.shift();
        // Reopen either way: a fresh file after a good shift, the old one after a failed one.
        let (file, size) = open(&self.path)?;
        self.file = Some(file);
        self.size = size;
        shifted
    }

    fn shift(&self) -> io::Result<()> {
        if self.max_files == 1 {
            return ignore_missing(fs::remove_file(&self.path));
        }
        ignore_missing(fs::remove_file(self.rotated(self.max_files - 1)))?;
        for n in (1..self.max_files - 1).rev() {
            ignore_missing(fs::rename(self.rotated(n), self.rotated(n + 1)))?;
        }
        fs::rename(&self.path, self.rotated(1))
    }
}

impl Write for RotatingFile {
    /// Writes the longest run of whole lines from `buf` that fits in the current file, rotating
    /// first when not even one line fits. A line longer than `max_bytes` is written whole into a
    /// fresh file. Input that does not end in `\n` is treated as one last line.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let fits = |room: u64| buf.len() as u64 <= room;
        let mut room = self.max_bytes.saturating_sub(self.size);
        if !fits(room) && self.size > 0 && last_line_end(buf, room).is_none() {
            self.rotate()?;
            room = self.max_bytes.saturating_sub(self.size);
        }
        let take = if fits(room) {
            buf.len()
        } else {
            last_line_end(buf, room)
                .or_else(|| buf.iter().position(|&b| b == b'\n').map(|i| i + 1))
                .unwrap_or(buf.len())
        };
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let (file, size) = open(&self.path)?;
                self.size = size;
                self.file.insert(file)
            }
        };
        file.write_all(&buf[..take])?;
        self.size += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

fn open(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(FILE_BUFFER_BYTES, file), size))
}

/// The length of the longest prefix of `buf` that ends a line and is at most `room` bytes.
fn last_line_end(buf: &[u8], room: u64) -> Option<usize> {
    let room = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
    buf[..room].iter().rposition(|&b| b == b'\n').map(|i| i + 1)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
