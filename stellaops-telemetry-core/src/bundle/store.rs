//! The local store: the file exporters' segments under one telemetry directory, and the
//! selection of a time window (and tenant) from them into three OTLP files.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::MetricsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;

use super::select::{Filter, RecordReader, SegmentFault, Selectable, walk_frames};
use super::spool;
use super::{OtlpFile, OtlpFiles, SignalCounts};
use crate::export::FileFormat;
use crate::export::index::{SegmentIndex, read_sidecar, write_sidecar};

/// The file exporters' segments under one telemetry directory (`traces/`, `metrics/`,
/// `logs/`), read-only.
///
/// Segments of both framings are read. A segment with a valid sidecar index is skipped
/// without being opened when its times or tenants cannot match; one without (the segment a
/// running exporter still writes, segments of older versions) is scanned.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use stellaops_telemetry_core::bundle::Store;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let store_dir = tempfile::tempdir()?;
/// # let tmp = tempfile::tempdir()?;
/// let store = Store::open(store_dir.path())?.max_window(Duration::from_secs(30 * 86_400));
/// let to = SystemTime::now();
/// let (files, report) = store.select(to - Duration::from_secs(3600), to, Some("acme"), tmp.path(), &mut |_| {})?;
/// assert_eq!(files.counts.spans, 0);
/// assert_eq!(report.segments_read, 0);
/// assert!(files.traces.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    max_window: Option<Duration>,
}

/// What a selection did: for measuring it, and for telling the user what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelectionReport {
    /// Segment files found (every signal, both framings).
    pub segments_listed: u64,
    /// Segments skipped by their sidecar index, never opened.
    pub segments_pruned: u64,
    /// Segments without a usable sidecar, read once to index them.
    pub segments_scanned: u64,
    /// Segments read once more to hash them (two segments with the same time span are
    /// ordered by the hash of their bytes).
    pub segments_hashed: u64,
    /// Segments whose records were read and filtered.
    pub segments_read: u64,
    /// Protobuf segments wholly inside the window whose bytes go into the bundle as they are,
    /// without being decoded (selections of every tenant only): their framing is checked
    /// here, and again as they are packed.
    pub segments_copied: u64,
    /// Segments skipped because they could not be read to their end, in the order met.
    pub corrupt: Vec<CorruptSegment>,
    /// Bytes read from segments, every pass counted.
    pub bytes_read: u64,
    /// OTLP messages decoded while selecting (scans not counted).
    pub records_read: u64,
    /// Items written to the OTLP files.
    pub counts: SignalCounts,
    /// How long the selection took.
    pub elapsed: Duration,
}

/// A segment the selection skipped because it could not be read to its end: nothing of it
/// is in the OTLP files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSegment {
    /// The segment file.
    pub path: PathBuf,
    /// What was wrong, with the byte offset or record number where it went wrong.
    pub reason: String,
}

/// What can go wrong opening a store or selecting from it. A corrupt segment is not an
/// error: it is skipped and listed in [`SelectionReport::corrupt`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The telemetry directory does not exist.
    #[error("telemetry directory `{}` does not exist", path.display())]
    MissingDir {
        /// The directory.
        path: PathBuf,
    },
    /// The telemetry directory is a file.
    #[error("telemetry directory `{}` is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A directory of the store that cannot be listed.
    #[error("cannot list `{}`", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The window's end is not after its start.
    #[error("the window is empty: its end ({to}) is not after its start ({from})")]
    EmptyWindow {
        /// The start, RFC 3339.
        from: String,
        /// The end, RFC 3339.
        to: String,
    },
    /// The window is longer than the store's maximum.
    #[error("the window of {}s is longer than the maximum of {}s", window.as_secs(), max.as_secs())]
    WindowTooLong {
        /// The window's length.
        window: Duration,
        /// The maximum ([`Store::max_window`]).
        max: Duration,
    },
    /// An empty tenant name.
    #[error("the tenant is empty")]
    EmptyTenant,
    /// A selection file that cannot be created or written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The deepest value nesting a segment copied whole may hold: far below the nesting any
/// protobuf decoder refuses (prost stops at 100 messages deep; a map level is three).
const MAX_COPIED_VALUE_DEPTH: u32 = 16;

/// Copied segments kept open from selection to packing (more are opened again by path).
const MAX_HELD_SEGMENTS: usize = 256;

/// The signals, their folders and the names of their selection files.
const SIGNALS: [(&str, &str); 3] = [
    ("traces", "traces.pb"),
    ("metrics", "metrics.pb"),
    ("logs", "logs.pb"),
];

impl Store {
    /// The store under the telemetry directory `dir` (the file exporters' root folder).
    /// Missing signal folders read as empty. No window maximum is set.
    ///
    /// ```
    /// # use stellaops_telemetry_core::bundle::{Store, StoreError};
    /// let missing = Store::open(std::path::Path::new("/no/such/telemetry-data"));
    /// assert!(matches!(missing, Err(StoreError::MissingDir { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::MissingDir`] or [`StoreError::NotADirectory`].
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        match fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => Ok(Store {
                dir: dir.to_path_buf(),
                max_window: None,
            }),
            Ok(_) => Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            }),
            Err(_) => Err(StoreError::MissingDir {
                path: dir.to_path_buf(),
            }),
        }
    }

    /// The longest window [`Store::select`] accepts, usually the profile's retention.
    /// Default: none.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use stellaops_telemetry_core::bundle::{Store, StoreError};
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?.max_window(Duration::from_secs(86_400));
    /// let to = SystemTime::now();
    /// let too_long = store.select(to - Duration::from_secs(2 * 86_400), to, None, dir.path(), &mut |_| {});
    /// assert!(matches!(too_long, Err(StoreError::WindowTooLong { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_window(mut self, max: Duration) -> Store {
        self.max_window = Some(max);
        self
    }

    /// The telemetry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Selects the items with `from <= t < to` and, when `tenant` is given, a `tenant.id`
    /// attribute equal to it, as three OTLP files for [`pack`](super::pack). They refer to
    /// the store's segments and to spool files in `tmp_dir` (`traces.pb`, `metrics.pb`,
    /// `logs.pb`, and `traces.pb.1`… when several threads decode), created or replaced; both
    /// must stay until the files are packed. The first copied segments are kept open, so
    /// that retention removing one of them before packing does not fail the export.
    ///
    /// `t` is a span's start time, a log record's timestamp (its observed timestamp when it
    /// has none) or a metric data point's `time_unix_nano`; the tenant is the item's own
    /// string attribute (an item without one is not selected for a tenant). A record keeps
    /// its resource and scope; the items not selected are dropped, and so are the containers
    /// they leave empty. Each record read that keeps an item is written as one message.
    ///
    /// Without a tenant, a protobuf segment whose index says that every item in it lies in
    /// the window (and that no value nests deeper than 16 levels) is not decoded: when its
    /// length prefixes frame whole messages, as many as its index counts, its bytes are taken
    /// as the exporter wrote them (see [`SelectionReport::segments_copied`]). They hold the
    /// items reading it would keep, though not necessarily in the same bytes (reading drops
    /// messages left without items and re-encodes the others). A tenant's selection always
    /// decodes, so what leaves for one tenant never rests on an index alone.
    ///
    /// The output does not depend on the segment files' names, times or the order they were
    /// written in, nor on which thread decoded what: segments are taken by their content
    /// (earliest item time, latest item time, then the SHA-256 of their bytes), records in
    /// file order within a segment. Memory is bounded by one record per decoding thread
    /// (two). A segment that cannot be read to its end is skipped whole and listed in the
    /// report. `progress` is called with the running total of bytes read.
    ///
    /// # Errors
    ///
    /// [`StoreError::EmptyWindow`], [`StoreError::WindowTooLong`],
    /// [`StoreError::EmptyTenant`], [`StoreError::List`] when a signal folder cannot be
    /// listed, [`StoreError::Write`] when a selection file cannot be written.
    pub fn select(
        &self,
        from: SystemTime,
        to: SystemTime,
        tenant: Option<&str>,
        tmp_dir: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(OtlpFiles, SelectionReport), StoreError> {
        let started = Instant::now();
        let filter = self.filter(from, to, tenant)?;
        fs::create_dir_all(tmp_dir).map_err(|source| StoreError::Write {
            path: tmp_dir.to_path_buf(),
            source,
        })?;
        let mut run = Run {
            report: SelectionReport::default(),
            progress,
        };
        let [traces, metrics, logs] = SIGNALS.map(|(_, file)| tmp_dir.join(file));
        let (traces, spans) =
            self.select_signal::<TracesData>(SIGNALS[0].0, &filter, &traces, &mut run)?;
        let (metrics, points) =
            self.select_signal::<MetricsData>(SIGNALS[1].0, &filter, &metrics, &mut run)?;
        let (logs, log_records) =
            self.select_signal::<LogsData>(SIGNALS[2].0, &filter, &logs, &mut run)?;
        let counts = SignalCounts {
            spans,
            points,
            log_records,
        };
        let mut report = run.report;
        report.counts = counts;
        report.elapsed = started.elapsed();
        let files = OtlpFiles {
            traces,
            metrics,
            logs,
            counts,
        };
        Ok((files, report))
    }

    /// Checks the window and the tenant.
    fn filter(
        &self,
        from: SystemTime,
        to: SystemTime,
        tenant: Option<&str>,
    ) -> Result<Filter, StoreError> {
        let Ok(window) = to.duration_since(from) else {
            return Err(empty_window(from, to));
        };
        if window.is_zero() {
            return Err(empty_window(from, to));
        }
        if let Some(max) = self.max_window.filter(|max| window > *max) {
            return Err(StoreError::WindowTooLong { window, max });
        }
        if tenant == Some("") {
            return Err(StoreError::EmptyTenant);
        }
        Ok(Filter {
            from: unix_nanos(from),
            to: unix_nanos(to),
            tenant: tenant.map(str::to_owned),
        })
    }

    /// Selects one signal: whole segments where they can be copied, the kept part of the
    /// others written to `spool`; returns the OTLP file and the items it holds.
    fn select_signal<M: Selectable>(
        &self,
        signal: &str,
        filter: &Filter,
        spool: &Path,
        run: &mut Run<'_>,
    ) -> Result<(OtlpFile, u64), StoreError> {
        let mut candidates = self.candidates::<M>(signal, filter, run)?;
        order(&mut candidates, run);
        let mut held = 0;
        let takes: Vec<Take> = candidates.iter().map(|c| take(c, &mut held, run)).collect();
        let to_read: Vec<&Candidate> = candidates
            .iter()
            .zip(&takes)
            .filter_map(|(c, t)| matches!(t, Take::Read).then_some(c))
            .collect();
        run.report.segments_read += to_read.len() as u64;
        let report = &mut run.report;
        let progress = &mut run.progress;
        let mut read =
            spool::read_segments::<M>(&to_read, filter, spool, &mut |bytes, records| {
                report.records_read += records;
                if bytes > 0 {
                    report.bytes_read = report.bytes_read.saturating_add(bytes);
                    progress(report.bytes_read);
                }
            })?
            .into_iter();
        let mut file = OtlpFile::empty();
        let mut kept = 0u64;
        for (candidate, take) in candidates.iter().zip(takes) {
            let result = match take {
                Take::Whole {
                    items,
                    file: Some(handle),
                } => {
                    file.push_open(&candidate.path, handle, candidate.len);
                    Ok(items)
                }
                Take::Whole { items, file: None } => {
                    file.push(&candidate.path, 0, candidate.len);
                    Ok(items)
                }
                Take::Read => match read.next() {
                    Some(Ok(spooled)) => {
                        file.push(&spooled.path, spooled.offset, spooled.len);
                        Ok(spooled.items)
                    }
                    Some(Err(fault)) => Err(fault),
                    None => continue,
                },
                Take::Skip(fault) => Err(fault),
            };
            match result {
                Ok(items) => kept = kept.saturating_add(items),
                Err(fault) => run.corrupt(&candidate.path, &fault),
            }
        }
        Ok((file, kept))
    }

    /// The segments of `signal` that may hold a selected item, each with its time span;
    /// segments without a usable sidecar are scanned.
    fn candidates<M: Selectable>(
        &self,
        signal: &str,
        filter: &Filter,
        run: &mut Run<'_>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let mut candidates = Vec::new();
        for (path, format) in list_segments(&self.dir.join(signal), signal)? {
            run.report.segments_listed += 1;
            let len = match fs::metadata(&path) {
                Ok(metadata) => metadata.len(),
                Err(e) => {
                    run.corrupt(&path, &SegmentFault::Io(e));
                    continue;
                }
            };
            let index = match read_sidecar(&path, len, format) {
                Some(index) => {
                    if !filter.may_keep(&index) {
                        run.report.segments_pruned += 1;
                        continue;
                    }
                    index
                }
                None => {
                    run.report.segments_scanned += 1;
                    let scanned = scan::<M>(&path, len, format, run);
                    if let Ok(index) = &scanned {
                        // The index is kept for the next selection (a store written before
                        // sidecars existed heals as it is read). A read-only store keeps none:
                        // it is scanned again next time. A segment still being written gets
                        // a sidecar that stops matching its length as soon as it grows.
                        let _ = write_sidecar(&path, index);
                    }
                    match scanned {
                        Ok(index) if filter.may_keep(&index) => index,
                        Ok(_) => continue,
                        Err(fault) => {
                            run.corrupt(&path, &fault);
                            continue;
                        }
                    }
                }
            };
            // Only a selection of every tenant copies: a tenant's selection always decodes,
            // so that what leaves for one tenant never rests on an index alone.
            let whole = format == FileFormat::Protobuf
                && filter.tenant.is_none()
                && index.lies_within(filter.from, filter.to)
                && index.max_value_depth <= MAX_COPIED_VALUE_DEPTH;
            candidates.push(Candidate {
                path,
                format,
                len,
                min: index.min_time_unix_nano.unwrap_or(u64::MAX),
                max: index.max_time_unix_nano.unwrap_or(0),
                sha256: None,
                whole: whole.then_some((index.records, index.items)),
            });
        }
        Ok(candidates)
    }
}

fn empty_window(from: SystemTime, to: SystemTime) -> StoreError {
    StoreError::EmptyWindow {
        from: rfc3339(from),
        to: rfc3339(to),
    }
}

/// A time as RFC 3339 (nanoseconds); times before 1970 as the epoch's offset.
fn rfc3339(time: SystemTime) -> String {
    match time.duration_since(UNIX_EPOCH) {
        Ok(_) => humantime::format_rfc3339_nanos(time).to_string(),
        Err(e) => format!(
            "{}s before 1970-01-01T00:00:00Z",
            e.duration().as_secs_f64()
        ),
    }
}

/// Nanoseconds since the unix epoch; 0 before it, `u64::MAX` past 2554.
fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The state of one selection: its report and its progress callback.
struct Run<'p> {
    report: SelectionReport,
    progress: &'p mut dyn FnMut(u64),
}

impl Run<'_> {
    fn advance(&mut self, bytes: u64) {
        if bytes > 0 {
            self.report.bytes_read = self.report.bytes_read.saturating_add(bytes);
            (self.progress)(self.report.bytes_read);
        }
    }

    fn corrupt(&mut self, path: &Path, fault: &SegmentFault) {
        self.report.corrupt.push(CorruptSegment {
            path: path.to_path_buf(),
            reason: fault.to_string(),
        });
    }
}

/// A segment that may hold selected items.
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) path: PathBuf,
    pub(super) format: FileFormat,
    /// Its length when listed: only these bytes are read.
    pub(super) len: u64,
    min: u64,
    max: u64,
    /// Computed only for segments sharing their time span with another.
    sha256: Option<[u8; 32]>,
    /// For a protobuf segment whose index says that every item is selected: the records and
    /// items the index counts.
    whole: Option<(u64, u64)>,
}

/// What becomes of one candidate segment.
enum Take {
    /// Its bytes, as they are: this many items, through this open file.
    Whole { items: u64, file: Option<Arc<File>> },
    /// Its records, read and filtered.
    Read,
    /// Nothing: it cannot be read to its end.
    Skip(SegmentFault),
}

/// A segment whose index says that every item is selected is copied whole when its framing
/// holds as many whole messages as the index counts (else it is read, as an index that does
/// not describe it is stale); a segment whose framing is broken is skipped. The first
/// [`MAX_HELD_SEGMENTS`] copied segments are kept open until they are packed.
fn take(candidate: &Candidate, held: &mut usize, run: &mut Run<'_>) -> Take {
    let Some((records, items)) = candidate.whole else {
        return Take::Read;
    };
    match walk_frames(&candidate.path, candidate.len) {
        Ok((file, messages)) if messages == records => {
            run.report.segments_copied += 1;
            let file = (*held < MAX_HELD_SEGMENTS).then(|| {
                *held += 1;
                Arc::new(file)
            });
            Take::Whole { items, file }
        }
        Ok(_) => Take::Read,
        Err(fault) => Take::Skip(fault),
    }
}

/// Puts the candidates in canonical order: by time span, then by the hash of their bytes.
/// A segment that cannot be hashed is dropped and reported.
fn order(candidates: &mut Vec<Candidate>, run: &mut Run<'_>) {
    candidates.sort_by_key(|c| (c.min, c.max));
    let tied: Vec<bool> = (0..candidates.len())
        .map(|i| {
            let span = (candidates[i].min, candidates[i].max);
            let same = |j: usize| candidates.get(j).is_some_and(|c| (c.min, c.max) == span);
            (i > 0 && same(i - 1)) || same(i + 1)
        })
        .collect();
    let mut unreadable = Vec::new();
    for (candidate, tied) in candidates.iter_mut().zip(tied) {
        if !tied {
            continue;
        }
        run.report.segments_hashed += 1;
        match hash_segment(&candidate.path, candidate.len, run) {
            Ok(digest) => candidate.sha256 = Some(digest),
            Err(e) => unreadable.push((candidate.path.clone(), e)),
        }
    }
    for (path, error) in unreadable {
        candidates.retain(|c| c.path != path);
        run.corrupt(&path, &SegmentFault::Io(error));
    }
    candidates.sort_by_key(|c| (c.min, c.max, c.sha256));
}

/// The SHA-256 of the first `len` bytes of `path`.
fn hash_segment(path: &Path, len: u64, run: &mut Run<'_>) -> io::Result<[u8; 32]> {
    let mut input = File::open(path)?.take(len);
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
        run.advance(u64::try_from(read).unwrap_or(u64::MAX));
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    Ok(digest)
}

/// Indexes a segment without a sidecar by reading every record.
fn scan<M: Selectable>(
    path: &Path,
    len: u64,
    format: FileFormat,
    run: &mut Run<'_>,
) -> Result<SegmentIndex, SegmentFault> {
    let mut reader = RecordReader::open(path, len, format)?;
    let mut index = SegmentIndex::new(format);
    let mut consumed = 0;
    while let Some(message) = reader.next::<M>()? {
        index.note_record(&message);
        run.advance(reader.offset() - consumed);
        consumed = reader.offset();
    }
    run.advance(reader.offset() - consumed);
    index.bytes = len;
    Ok(index)
}

/// The segment files of `signal` in `dir`, both framings, sorted by name; a missing folder
/// has none. (The order is made canonical later, by content.)
fn list_segments(dir: &Path, signal: &str) -> Result<Vec<(PathBuf, FileFormat)>, StoreError> {
    let error = |source| StoreError::List {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(e)),
    };
    let prefix = format!("{signal}-");
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(error)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let format = [FileFormat::Json, FileFormat::Protobuf]
            .into_iter()
            .find(|f| {
                name.strip_suffix(f.extension())
                    .is_some_and(|s| s.ends_with('.'))
            });
        let is_file = entry.file_type().map_err(error)?.is_file();
        if let (true, Some(format), true) = (name.starts_with(&prefix), format, is_file) {
            segments.push((entry.path(), format));
        }
    }
    segments.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(segments)
}
