//! Reading one segment record by record and keeping the items a selection asks for.
//!
//! Memory is bounded by one record per reading thread: a record is read, filtered, written
//! out and dropped before the next one is read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Take};
use std::path::Path;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::{Metric, MetricsData, metric};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use serde::de::DeserializeOwned;

use crate::export::FileFormat;
use crate::export::index::{DataPoint, Items, SegmentIndex, log_time, tenant_of};

/// The largest record a segment may hold, the largest message a bundle may hold; a longer
/// one makes the segment corrupt.
pub(crate) const MAX_RECORD_BYTES: u64 = super::MAX_OTLP_MESSAGE_BYTES;

/// The longest OTLP/JSON line a segment may hold (JSON is about twice the size of the
/// protobuf it encodes); a longer one makes the segment corrupt.
pub(crate) const MAX_LINE_BYTES: u64 = 2 * MAX_RECORD_BYTES;

/// Which items a selection keeps: `from <= time < to` (unix nanoseconds) and, when a tenant
/// is given, a `tenant.id` attribute equal to it.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) tenant: Option<String>,
}

impl Filter {
    fn keeps(&self, time: u64, attributes: &[KeyValue]) -> bool {
        self.from <= time
            && time < self.to
            && self
                .tenant
                .as_deref()
                .is_none_or(|tenant| tenant_of(attributes) == Some(tenant))
    }

    /// Whether a segment described by `index` may hold a kept item.
    pub(crate) fn may_keep(&self, index: &SegmentIndex) -> bool {
        index.may_overlap(self.from, self.to) && index.may_hold_tenant(self.tenant.as_deref())
    }
}

/// An OTLP message a selection can read from a segment and filter.
pub(crate) trait Selectable: prost::Message + Default + DeserializeOwned + Items {
    /// Drops the items `filter` does not keep, and the containers left empty; returns the
    /// items kept.
    fn retain(&mut self, filter: &Filter) -> u64;
}

/// Counts what `retain` keeps, as `u64`.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Selectable for TracesData {
    fn retain(&mut self, filter: &Filter) -> u64 {
        let mut kept = 0;
        self.resource_spans.retain_mut(|resource| {
            resource.scope_spans.retain_mut(|scope| {
                scope
                    .spans
                    .retain(|span| filter.keeps(span.start_time_unix_nano, &span.attributes));
                kept += count(scope.spans.len());
                !scope.spans.is_empty()
            });
            !resource.scope_spans.is_empty()
        });
        kept
    }
}

impl Selectable for LogsData {
    fn retain(&mut self, filter: &Filter) -> u64 {
        let mut kept = 0;
        self.resource_logs.retain_mut(|resource| {
            resource.scope_logs.retain_mut(|scope| {
                scope
                    .log_records
                    .retain(|record| filter.keeps(log_time(record), &record.attributes));
                kept += count(scope.log_records.len());
                !scope.log_records.is_empty()
            });
            !resource.scope_logs.is_empty()
        });
        kept
    }
}

impl Selectable for MetricsData {
    fn retain(&mut self, filter: &Filter) -> u64 {
        let mut kept = 0;
        self.resource_metrics.retain_mut(|resource| {
            resource.scope_metrics.retain_mut(|scope| {
                scope.metrics.retain_mut(|metric| {
                    let points = retain_points(metric, filter);
                    kept += points;
                    points > 0
                });
                !scope.metrics.is_empty()
            });
            !resource.scope_metrics.is_empty()
        });
        kept
    }
}

/// Keeps the data points of `metric` that `filter` keeps, whatever the metric's type;
/// returns how many are left.
fn retain_points(metric: &mut Metric, filter: &Filter) -> u64 {
    fn keep<P: DataPoint>(points: &mut Vec<P>, filter: &Filter) -> u64 {
        points.retain(|point| filter.keeps(point.time(), point.attributes()));
        count(points.len())
    }
    match &mut metric.data {
        Some(metric::Data::Gauge(g)) => keep(&mut g.data_points, filter),
        Some(metric::Data::Sum(s)) => keep(&mut s.data_points, filter),
        Some(metric::Data::Histogram(h)) => keep(&mut h.data_points, filter),
        Some(metric::Data::ExponentialHistogram(h)) => keep(&mut h.data_points, filter),
        Some(metric::Data::Summary(s)) => keep(&mut s.data_points, filter),
        None => 0,
    }
}

/// Why a segment cannot be read to its end.
#[derive(Debug)]
pub(crate) enum SegmentFault {
    /// The file could not be opened or read.
    Io(io::Error),
    /// A record that does not decode, or is cut short.
    Corrupt(String),
}

impl std::fmt::Display for SegmentFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentFault::Io(e) => write!(f, "cannot read: {e}"),
            SegmentFault::Corrupt(reason) => f.write_str(reason),
        }
    }
}

impl From<io::Error> for SegmentFault {
    fn from(error: io::Error) -> Self {
        SegmentFault::Io(error)
    }
}

/// Reads the records of one segment, the first `len` bytes of the file (the length it had
/// when listed, so that a record being appended by a live exporter is not half read).
pub(crate) struct RecordReader {
    input: Take<BufReader<File>>,
    format: FileFormat,
    buffer: Vec<u8>,
    /// Bytes consumed so far, including blank lines and length prefixes.
    offset: u64,
    /// Records read so far.
    records: u64,
}

impl RecordReader {
    /// Opens `path` for its first `len` bytes of `format` records.
    pub(crate) fn open(path: &Path, len: u64, format: FileFormat) -> io::Result<Self> {
        let file = File::open(path)?;
        Ok(RecordReader {
            input: BufReader::with_capacity(64 * 1024, file).take(len),
            format,
            buffer: Vec::new(),
            offset: 0,
            records: 0,
        })
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `None` at the end.
    pub(crate) fn next<M: Selectable>(&mut self) -> Result<Option<M>, SegmentFault> {
        let found = match self.format {
            FileFormat::Json => self.next_line()?,
            FileFormat::Protobuf => self.next_delimited()?,
        };
        if !found {
            return Ok(None);
        }
        self.records += 1;
        let record = self.records;
        let decoded = match self.format {
            FileFormat::Json => serde_json::from_slice(&self.buffer)
                .map_err(|e| format!("record {record} is not an OTLP/JSON message: {e}")),
            FileFormat::Protobuf => M::decode(self.buffer.as_slice())
                .map_err(|e| format!("record {record} is not an OTLP protobuf message: {e}")),
        };
        decoded.map(Some).map_err(SegmentFault::Corrupt)
    }

    /// Reads the next non-blank line into the buffer; `false` at the end.
    fn next_line(&mut self) -> Result<bool, SegmentFault> {
        loop {
            self.buffer.clear();
            let limit = MAX_LINE_BYTES + 1;
            let read = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)?;
            if read == 0 {
                return Ok(false);
            }
            self.offset += count(read);
            if count(read) >= limit && self.buffer.last() != Some(&b'\n') {
                return Err(SegmentFault::Corrupt(format!(
                    "the line after byte {} is longer than {MAX_LINE_BYTES} bytes",
                    self.offset - count(read)
                )));
            }
            if !self.buffer.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// Reads the next length-delimited record into the buffer; `false` at the end.
    fn next_delimited(&mut self) -> Result<bool, SegmentFault> {
        let start = self.offset;
        let Some(len) = self.varint()? else {
            return Ok(false);
        };
        let remaining = self.input.limit();
        if len > MAX_RECORD_BYTES || len > remaining {
            return Err(SegmentFault::Corrupt(format!(
                "the record at byte {start} claims {len} bytes, {remaining} are left"
            )));
        }
        self.buffer.clear();
        let read = (&mut self.input).take(len).read_to_end(&mut self.buffer)?;
        self.offset += count(read);
        if count(read) != len {
            return Err(SegmentFault::Corrupt(format!(
                "the record at byte {start} is cut short"
            )));
        }
        Ok(true)
    }

    /// A base-128 varint; `None` at a clean end of the segment.
    fn varint(&mut self) -> Result<Option<u64>, SegmentFault> {
        let start = self.offset;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            if self.input.read(&mut byte)? == 0 {
                return if self.offset == start {
                    Ok(None)
                } else {
                    Err(SegmentFault::Corrupt(format!(
                        "the length prefix at byte {start} is cut short"
                    )))
                };
            }
            self.offset += 1;
            if shift == 63 && byte[0] > 1 {
                return Err(SegmentFault::Corrupt(format!(
                    "the length prefix at byte {start} overflows 64 bits"
                )));
            }
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(SegmentFault::Corrupt(format!(
            "the length prefix at byte {start} is longer than ten bytes"
        )))
    }
}

/// Follows the length prefixes of a protobuf segment's first `len` bytes, seeking over the
/// messages (only the prefixes are read): checks that it is whole messages of at most
/// [`MAX_RECORD_BYTES`] each. Returns the open file and how many messages it holds.
pub(crate) fn walk_frames(path: &Path, len: u64) -> Result<(File, u64), SegmentFault> {
    let file = File::open(path)?;
    let actual = file.metadata()?.len();
    if actual < len {
        return Err(SegmentFault::Corrupt(format!(
            "it is {actual} bytes long, shorter than the {len} listed"
        )));
    }
    let mut input = BufReader::with_capacity(8 * 1024, file);
    let mut offset = 0u64;
    let mut messages = 0u64;
    while offset < len {
        let start = offset;
        let mut prefix = Vec::with_capacity(10);
        loop {
            let mut byte = [0u8; 1];
            if offset >= len || input.read(&mut byte)? == 0 {
                return Err(SegmentFault::Corrupt(format!(
                    "the length prefix at byte {start} is cut short"
                )));
            }
            offset += 1;
            prefix.push(byte[0]);
            if byte[0] & 0x80 == 0 {
                break;
            }
            if prefix.len() == 10 {
                return Err(SegmentFault::Corrupt(format!(
                    "the length prefix at byte {start} is longer than ten bytes"
                )));
            }
        }
        let value = prost::encoding::decode_varint(&mut prefix.as_slice()).map_err(|e| {
            SegmentFault::Corrupt(format!("the length prefix at byte {start}: {e}"))
        })?;
        if value > MAX_RECORD_BYTES || value > len - offset {
            return Err(SegmentFault::Corrupt(format!(
                "the record at byte {start} claims {value} bytes, {} are left (at most {MAX_RECORD_BYTES})",
                len - offset
            )));
        }
        // `value` is at most MAX_RECORD_BYTES: it fits in i64.
        input.seek_relative(i64::try_from(value).unwrap_or(i64::MAX))?;
        offset += value;
        messages += 1;
    }
    Ok((input.into_inner(), messages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, NumberDataPoint, ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint,
    };

    fn tenant(name: &str) -> Vec<KeyValue> {
        vec![KeyValue {
            key: "tenant.id".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(name.to_owned())),
            }),
            ..KeyValue::default()
        }]
    }

    fn point(time: u64, name: &str) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano: time,
            attributes: tenant(name),
            ..NumberDataPoint::default()
        }
    }

    #[test]
    fn metrics_keep_points_in_the_window_of_the_tenant_and_drop_empty_metrics() {
        let gauge = Metric {
            name: "g".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    point(9, "a"),
                    point(10, "a"),
                    point(19, "b"),
                    point(20, "a"),
                ],
            })),
            ..Metric::default()
        };
        let summary = Metric {
            name: "s".to_owned(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: 30,
                    ..SummaryDataPoint::default()
                }],
            })),
            ..Metric::default()
        };
        let mut data = MetricsData {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge, summary],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        };
        let filter = Filter {
            from: 10,
            to: 20,
            tenant: Some("a".to_owned()),
        };
        assert_eq!(data.retain(&filter), 1);
        let metrics = &data.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1);
        let Some(metric::Data::Gauge(gauge)) = &metrics[0].data else {
            panic!("the gauge is kept");
        };
        assert_eq!(gauge.data_points[0].time_unix_nano, 10);
    }
}
