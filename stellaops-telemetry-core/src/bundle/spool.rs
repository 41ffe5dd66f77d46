//! The segments a selection must decode (the window's edges, segments that mix tenants for a
//! tenant's selection, JSON Lines segments), read on as many threads as there are cores, up
//! to four: each thread takes whole segments in turn and writes their kept records to a
//! spool file of its own. The results come back in the segments' order, so the selection's
//! bytes do not depend on which thread read what.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use super::MAX_OTLP_MESSAGE_BYTES;
use super::select::{Filter, RecordReader, SegmentFault, Selectable};
use super::store::{Candidate, StoreError};

/// The most threads one selection decodes on (each holds one record, up to 32 MiB, and its
/// decoded form).
const MAX_THREADS: usize = 2;
/// Bytes read between two progress reports of a reading thread.
const REPORT_EVERY_BYTES: u64 = 4 << 20;

/// The kept records of one segment: `len` bytes of the spool file `path` from `offset`.
#[derive(Debug)]
pub(super) struct Spooled {
    pub(super) path: PathBuf,
    pub(super) offset: u64,
    pub(super) len: u64,
    /// The items they hold.
    pub(super) items: u64,
}

/// What a reading thread reports.
enum Event {
    /// Bytes read and records decoded since the last report.
    Read { bytes: u64, records: u64 },
    /// Segment `index` is done.
    Done {
        index: usize,
        result: Result<Spooled, SegmentFault>,
    },
    /// A spool file could not be written: the selection fails.
    Failed(StoreError),
}

/// Reads `segments` (in their canonical order), keeping what `filter` keeps, into spool files
/// named after `spool` (`spool`, then `spool.1`, `spool.2`…, one per thread). Returns one
/// result per segment, in order: where its kept records are, or why it could not be read to
/// its end (nothing of it is then in any spool). `note` is called on this thread with the
/// bytes read and records decoded as they go.
///
/// Memory is bounded by one record per thread: two records, and their decoded forms.
pub(super) fn read_segments<M: Selectable>(
    segments: &[&Candidate],
    filter: &Filter,
    spool: &Path,
    note: &mut dyn FnMut(u64, u64),
) -> Result<Vec<Result<Spooled, SegmentFault>>, StoreError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(segments.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut results: Vec<Option<Result<Spooled, SegmentFault>>> =
        segments.iter().map(|_| None).collect();
    let mut failure = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Event>();
        for thread in 0..threads {
            let path = spool_path(spool, thread);
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                if let Err(e) = worker::<M>(segments, filter, &path, next, stop, &tx) {
                    stop.store(true, Ordering::Relaxed);
                    let _ = tx.send(Event::Failed(e));
                }
            });
        }
        drop(tx);
        for event in rx {
            match event {
                Event::Read { bytes, records } => note(bytes, records),
                Event::Done { index, result } => {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some(result);
                    }
                }
                Event::Failed(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(SegmentFault::Corrupt(
                    "it was not read (a reading thread stopped)".to_owned(),
                ))
            })
        })
        .collect())
}

fn spool_path(spool: &Path, thread: usize) -> PathBuf {
    if thread == 0 {
        return spool.to_path_buf();
    }
    let mut name = spool.as_os_str().to_owned();
    name.push(format!(".{thread}"));
    PathBuf::from(name)
}

/// One reading thread: takes the next unread segment until there is none.
fn worker<M: Selectable>(
    segments: &[&Candidate],
    filter: &Filter,
    path: &Path,
    next: &AtomicUsize,
    stop: &AtomicBool,
    events: &mpsc::Sender<Event>,
) -> Result<(), StoreError> {
    let mut output = Output::create(path)?;
    while !stop.load(Ordering::Relaxed) {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(segment) = segments.get(index) else {
            break;
        };
        let mark = output.written;
        let mut note = |bytes, records| {
            let _ = events.send(Event::Read { bytes, records });
        };
        let result = match select_segment::<M>(segment, filter, &mut output, &mut note)? {
            Ok(items) => Ok(Spooled {
                path: path.to_path_buf(),
                offset: mark,
                len: output.written - mark,
                items,
            }),
            Err(fault) => {
                output.rewind(mark)?;
                Err(fault)
            }
        };
        if events.send(Event::Done { index, result }).is_err() {
            break;
        }
    }
    output.flush()
}

/// Writes the selected part of every record of one segment; the outer error is a failed
/// write, the inner one a segment that cannot be read to its end.
fn select_segment<M: Selectable>(
    candidate: &Candidate,
    filter: &Filter,
    output: &mut Output,
    note: &mut dyn FnMut(u64, u64),
) -> Result<Result<u64, SegmentFault>, StoreError> {
    let mut reader = match RecordReader::open(&candidate.path, candidate.len, candidate.format) {
        Ok(reader) => reader,
        Err(e) => return Ok(Err(SegmentFault::Io(e))),
    };
    let mut kept = 0u64;
    // Bytes and records read since the last report.
    let (mut bytes, mut records) = (0, 0);
    let mut consumed = 0;
    let result = loop {
        let next = reader.next::<M>();
        bytes += reader.offset() - consumed;
        consumed = reader.offset();
        if bytes >= REPORT_EVERY_BYTES {
            note(std::mem::take(&mut bytes), std::mem::take(&mut records));
        }
        let mut message = match next {
            Ok(Some(message)) => message,
            Ok(None) => break Ok(kept),
            Err(fault) => break Err(fault),
        };
        records += 1;
        let items = message.retain(filter);
        if items == 0 {
            continue;
        }
        if let Err(fault) = output.write(&message)? {
            break Err(fault);
        }
        kept = kept.saturating_add(items);
    };
    note(bytes, records);
    Ok(result)
}

/// A spool file being written.
struct Output {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
    buffer: Vec<u8>,
}

impl Output {
    fn create(path: &Path) -> Result<Self, StoreError> {
        let file = File::create(path).map_err(|source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Output {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(64 * 1024, file),
            written: 0,
            buffer: Vec::new(),
        })
    }

    fn error(&self, source: io::Error) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `message`, length-delimited; the inner error is a message longer than a bundle
    /// may hold (nothing is written then).
    fn write<M: prost::Message>(
        &mut self,
        message: &M,
    ) -> Result<Result<(), SegmentFault>, StoreError> {
        let len = message.encoded_len() as u64;
        if len > MAX_OTLP_MESSAGE_BYTES {
            return Ok(Err(SegmentFault::Corrupt(format!(
                "a record keeps {len} bytes, more than the {MAX_OTLP_MESSAGE_BYTES} a bundle holds"
            ))));
        }
        self.buffer.clear();
        message
            .encode_length_delimited(&mut self.buffer)
            .map_err(|e| self.error(io::Error::other(e)))?;
        self.file
            .write_all(&self.buffer)
            .map_err(|e| self.error(e))?;
        self.written += u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        Ok(Ok(()))
    }

    /// Cuts the file back to `mark` bytes: what a corrupt segment had added goes.
    fn rewind(&mut self, mark: u64) -> Result<(), StoreError> {
        self.flush()?;
        let file = self.file.get_mut();
        let result = file
            .set_len(mark)
            .and_then(|()| file.seek(SeekFrom::Start(mark)).map(drop));
        result.map_err(|e| self.error(e))?;
        self.written = mark;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.file.flush().map_err(|e| self.error(e))
    }
}
