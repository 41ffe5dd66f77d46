//! A log file rotated by size: `app.log`, `app.log.1`, … `app.log.<N-1>`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Rotate when the file would exceed 100 MB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1000 * 1000;
/// Keep 10 files, the current one included.
pub const DEFAULT_MAX_FILES: usize = 10;

/// A log file cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file `{}`", path.display())]
pub struct LogFileError {
    /// The path.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// A file that rotates when the next line would push it past `max_bytes`, keeping at most
/// `max_files` files (the current one included); the oldest is deleted.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: BufWriter<File>,
    size: u64,
}

fn open(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::new(file), size))
}

impl RotatingFile {
    /// Opens (or creates) `path` for appending; its parent directory is created.
    ///
    /// # Errors
    ///
    /// [`LogFileError`] naming the path.
    pub fn new(
        path: impl Into<PathBuf>,
        max_bytes: u64,
        max_files: usize,
    ) -> Result<Self, LogFileError> {
        let path = path.into();
        let err = |source| LogFileError {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let (file, size) = open(&path).map_err(err)?;
        Ok(RotatingFile {
            path,
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file,
            size,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.max_files == 1 {
            let (file, _) = {
                let f = File::create(&self.path)?;
                (BufWriter::new(f), 0)
            };
            self.file = file;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.rotated(self.max_files - 1));
        for n in (1..self.max_files - 1).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        let (file, size) = open(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }

    /// Appends one line, rotating first when it would not fit.
    ///
    /// # Errors
    ///
    /// The I/O error of the write or the rotation.
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// Flushes buffered lines to the file.
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
