//! The segment files of one signal: naming, size and age rotation, the sidecar index,
//! retention.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::index::{Items, SegmentIndex, read_sidecar, sidecar_path, write_sidecar};
use super::{FileExportError, FileExportOptions, FileFormat};

/// One open segment and the index of what it holds so far.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    bytes: u64,
    opened: Instant,
    index: SegmentIndex,
}

impl Segment {
    /// Syncs the segment and writes its sidecar. Both are best effort: the data already
    /// written stays readable, and a segment without a sidecar is scanned by readers.
    fn close(mut self) {
        let _ = self.file.sync_data();
        self.index.bytes = self.bytes;
        let _ = write_sidecar(&self.path, &self.index);
    }
}

/// Appends whole records to the current segment of one signal, rotating and pruning as the
/// options say. Callers hold it behind a mutex; it never panics.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    signal: &'static str,
    format: FileFormat,
    extension: &'static str,
    max_bytes: u64,
    max_age: Duration,
    max_segments: usize,
    retention: Duration,
    /// Segments deleted because their last item was older than `retention`.
    removed_by_retention: Arc<AtomicU64>,
    next_seq: u64,
    current: Option<Segment>,
    shut_down: bool,
}

impl SegmentWriter {
    /// Creates `options.dir/<signal>/` and picks the next sequence number after any segments
    /// already there, so a restart within the same second still sorts after them. No segment
    /// is opened until the first record arrives.
    pub(crate) fn new(
        options: &FileExportOptions,
        signal: &'static str,
    ) -> Result<Self, FileExportError> {
        let dir = options.signal_dir(signal);
        fs::create_dir_all(&dir).map_err(|source| FileExportError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let extension = options.format.extension();
        let next_seq = list_segments(&dir, signal, extension)
            .map_err(|source| FileExportError::Read {
                path: dir.clone(),
                source,
            })?
            .iter()
            .filter_map(|path| segment_seq(path))
            .max()
            .map_or(1, |seq| seq.saturating_add(1));
        Ok(SegmentWriter {
            dir,
            signal,
            format: options.format,
            extension,
            max_bytes: options.max_segment_bytes,
            max_age: options.max_segment_age,
            max_segments: options.max_segments_per_signal,
            retention: options.retention,
            removed_by_retention: Arc::new(AtomicU64::new(0)),
            next_seq,
            current: None,
            shut_down: false,
        })
    }

    /// The count of segments deleted by retention, shared with whoever reports it.
    pub(crate) fn removed_by_retention(&self) -> Arc<AtomicU64> {
        self.removed_by_retention.clone()
    }

    /// Counts later deletions by retention into `counter` instead.
    pub(crate) fn count_removals_into(&mut self, counter: Arc<AtomicU64>) {
        self.removed_by_retention = counter;
    }

    /// Whether [`SegmentWriter::shutdown`] has run.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Appends one fully encoded record with a single `write_all`, opening a new segment first
    /// when the current one is too old or the record would take it past the size bound.
    ///
    /// `message` is the record's content, counted into the segment's index once written.
    /// On a failed write the segment is cut back to its previous length (best effort) and
    /// abandoned (closed with its index), so no partial record is followed by further data.
    pub(crate) fn write_record<M: Items>(
        &mut self,
        record: &[u8],
        message: &M,
    ) -> Result<(), String> {
        let record_len = u64::try_from(record.len()).unwrap_or(u64::MAX);
        let rotate = match &self.current {
            None => true,
            Some(segment) => {
                let too_big = self.max_bytes > 0
                    && segment.bytes > 0
                    && segment.bytes.saturating_add(record_len) > self.max_bytes;
                let too_old = !self.max_age.is_zero() && segment.opened.elapsed() >= self.max_age;
                too_big || too_old
            }
        };
        if rotate {
            self.rotate()?;
        }
        let Some(segment) = self.current.as_mut() else {
            return Err(format!(
                "no open {} segment in `{}`",
                self.signal,
                self.dir.display()
            ));
        };
        match segment
            .file
            .write_all(record)
            .and_then(|()| segment.file.flush())
        {
            Ok(()) => {
                segment.bytes = segment.bytes.saturating_add(record_len);
                segment.index.note_record(message);
                Ok(())
            }
            Err(error) => {
                let message = format!("cannot write to `{}`: {error}", segment.path.display());
                // Best effort: the error we report is the write error, not this one.
                let _ = segment.file.set_len(segment.bytes);
                if let Some(segment) = self.current.take() {
                    segment.close();
                }
                Err(message)
            }
        }
    }

    /// Asks the operating system to put the current segment on disk.
    pub(crate) fn sync(&mut self) -> Result<(), String> {
        match &self.current {
            Some(segment) => segment
                .file
                .sync_data()
                .map_err(|e| format!("cannot sync `{}`: {e}", segment.path.display())),
            None => Ok(()),
        }
    }

    /// Syncs and closes the current segment (writing its sidecar); later writes are refused.
    pub(crate) fn shutdown(&mut self) -> Result<(), String> {
        let result = self.sync();
        if let Some(segment) = self.current.take() {
            segment.close();
        }
        self.shut_down = true;
        result
    }

    /// Closes the current segment, opens the next one and prunes the oldest.
    fn rotate(&mut self) -> Result<(), String> {
        if let Some(old) = self.current.take() {
            // A failed sync does not lose the data already written; carry on with a new file.
            old.close();
        }
        let stamp = utc_stamp(SystemTime::now());
        // `create_new` never appends to a file we did not start; a name taken by another
        // writer on the same folder moves us to the next sequence number.
        let mut attempts = 0;
        let (path, file) = loop {
            let path = self.dir.join(segment_name(
                self.signal,
                &stamp,
                self.next_seq,
                self.extension,
            ));
            self.next_seq = self.next_seq.saturating_add(1);
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 1000 => {
                    attempts += 1;
                }
                Err(e) => return Err(format!("cannot create `{}`: {e}", path.display())),
            }
        };
        self.current = Some(Segment {
            path,
            file,
            bytes: 0,
            opened: Instant::now(),
            index: SegmentIndex::new(self.format),
        });
        self.prune()
    }

    /// Deletes the segments past retention, then the oldest beyond `max_segments`, never
    /// the current one; each with its sidecar.
    fn prune(&self) -> Result<(), String> {
        if self.max_segments == 0 && self.retention.is_zero() {
            return Ok(());
        }
        let mut segments = list_segments(&self.dir, self.signal, self.extension)
            .map_err(|e| format!("cannot list `{}`: {e}", self.dir.display()))?;
        let current = self.current.as_ref().map(|s| s.path.clone());
        if !self.retention.is_zero() {
            let cutoff = unix_nanos(SystemTime::now())
                .saturating_sub(u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX));
            let mut kept = Vec::with_capacity(segments.len());
            for path in segments {
                if Some(&path) != current.as_ref() && self.last_item_time(&path) < cutoff {
                    remove_segment(&path)?;
                    self.removed_by_retention.fetch_add(1, Ordering::Relaxed);
                } else {
                    kept.push(path);
                }
            }
            segments = kept;
        }
        if self.max_segments == 0 {
            return Ok(());
        }
        let excess = segments.len().saturating_sub(self.max_segments);
        for path in segments.iter().take(excess) {
            if Some(path) != current.as_ref() {
                remove_segment(path)?;
            }
        }
        Ok(())
    }

    /// When a closed segment's last item happened (unix nanoseconds): its sidecar's latest
    /// item time, else the file's modification time (a segment written by an older version,
    /// or by a process that stopped before closing it).
    fn last_item_time(&self, path: &Path) -> u64 {
        let Ok(metadata) = fs::metadata(path) else {
            return u64::MAX;
        };
        read_sidecar(path, metadata.len(), self.format)
            .and_then(|index| index.max_time_unix_nano)
            .or_else(|| metadata.modified().ok().map(unix_nanos))
            .unwrap_or(u64::MAX)
    }
}

/// Deletes a segment and its sidecar; one already gone is not an error.
fn remove_segment(path: &Path) -> Result<(), String> {
    for file in [path.to_path_buf(), sidecar_path(path)] {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot delete old segment `{}`: {e}",
                    file.display()
                ));
            }
        }
    }
    Ok(())
}

/// Nanoseconds since the unix epoch; 0 before it, `u64::MAX` past 2554.
fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The segments of one signal in `dir`, sorted by name (which is chronological).
pub(crate) fn list_segments(dir: &Path, signal: &str, extension: &str) -> io::Result<Vec<PathBuf>> {
    let prefix = format!("{signal}-");
    let suffix = format!(".{extension}");
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&prefix) && name.ends_with(&suffix) && entry.file_type()?.is_file() {
            segments.push(entry.path());
        }
    }
    segments.sort();
    Ok(segments)
}

/// `<signal>-<yyyymmddThhmmssZ>-<seq>.<extension>`, with `seq` zero-padded to six digits.
fn segment_name(signal: &str, stamp: &str, seq: u64, extension: &str) -> String {
    format!("{signal}-{stamp}-{seq:06}.{extension}")
}

/// The sequence number of a segment file name, if it is one of ours.
fn segment_seq(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    stem.rsplit('-').next()?.parse().ok()
}

/// `yyyymmddThhmmssZ` in UTC; times before 1970 are written as the epoch.
fn utc_stamp(time: SystemTime) -> String {
    crate::clock::Civil::from_system_time(time).file_stamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_700_000_000)), "20231114T221320Z");
        assert_eq!(utc_stamp(at(4_102_444_799)), "20991231T235959Z");
    }

    #[test]
    fn segment_names_sort_chronologically() {
        // Instants across second, minute, day, month, leap-day and year boundaries, with
        // several segments in the same second, in chronological order.
        let times = [
            (at(0), 1),
            (at(59), 2),
            (at(60), 3),
            (at(951_782_399), 4),
            (at(951_782_400), 5),
            (at(951_782_400), 6),
            (at(951_782_400), 10),
            (at(951_868_800), 11),
            (at(1_700_000_000), 999_999),
            (at(1_700_000_001), 1_000_000),
            (at(4_102_444_799), 1_000_001),
        ];
        let names: Vec<String> = times
            .iter()
            .map(|(time, seq)| segment_name("traces", &utc_stamp(*time), *seq, "jsonl"))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
        assert_eq!(names[0], "traces-19700101T000000Z-000001.jsonl");
        assert_eq!(segment_seq(Path::new(&names[8])), Some(999_999));
    }
}
