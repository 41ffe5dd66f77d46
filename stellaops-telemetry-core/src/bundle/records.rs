//! Reading the OTLP files of a bundle one message at a time, and the records inside them.

use std::borrow::Cow;
use std::io::{BufReader, Read};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::{MetricsData, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::archive::MemberPath;
use super::{BundleError, MAX_OTLP_MESSAGE_BYTES};

/// The attribute that names a record's tenant.
pub(crate) const TENANT_ATTRIBUTE: &str = "tenant.id";
const SERVICE_NAME: &str = "service.name";

/// One span, metric data point or log record, as the checks see it.
pub(crate) struct RecordView<'a> {
    /// Its index in the file (records of this signal, in file order), from 0.
    pub(crate) index: u64,
    /// Span start, data point time, log time (or observed time when the time is unset).
    pub(crate) time_unix_nano: u64,
    /// Its `tenant.id`, when a string (a value of another type names no tenant).
    pub(crate) tenant: Option<Cow<'a, str>>,
    /// The `service.name` of its resource.
    pub(crate) service: Option<&'a str>,
}

/// Visits every record of an OTLP member of `size` bytes; returns how many there were.
///
/// Holds one message at a time (at most [`MAX_OTLP_MESSAGE_BYTES`]).
pub(crate) fn for_each_record(
    member: MemberPath,
    reader: &mut dyn Read,
    size: u64,
    visit: &mut dyn FnMut(&RecordView<'_>) -> Result<(), BundleError>,
) -> Result<u64, BundleError> {
    let mut messages = MessageReader {
        reader: BufReader::with_capacity(64 * 1024, reader),
        member,
        size,
        offset: 0,
        index: 0,
        buf: Vec::new(),
    };
    let mut records = 0u64;
    while let Some(message_start) = messages.next_message()? {
        let corrupt = |e: prost::DecodeError| messages.corrupt(message_start, e.to_string());
        let bytes = messages.buf.as_slice();
        match member {
            MemberPath::Traces => {
                let data = TracesData::decode(bytes).map_err(corrupt)?;
                visit_traces(&data, &mut records, visit)?;
            }
            MemberPath::Metrics => {
                let data = MetricsData::decode(bytes).map_err(corrupt)?;
                visit_metrics(&data, &mut records, visit)?;
            }
            _ => {
                let data = LogsData::decode(bytes).map_err(corrupt)?;
                visit_logs(&data, &mut records, visit)?;
            }
        }
        messages.index += 1;
    }
    Ok(records)
}

/// Splits a member into its varint-length-delimited messages.
struct MessageReader<R> {
    reader: R,
    member: MemberPath,
    size: u64,
    offset: u64,
    index: u64,
    buf: Vec<u8>,
}

impl<R: Read> MessageReader<R> {
    /// Reads the next message into `buf`; returns its offset, or `None` at the end.
    fn next_message(&mut self) -> Result<Option<u64>, BundleError> {
        let start = self.offset;
        let Some(len) = self.read_length(start)? else {
            return Ok(None);
        };
        let remaining = self.size.saturating_sub(self.offset);
        if len > MAX_OTLP_MESSAGE_BYTES || len > remaining {
            return Err(self.corrupt(
                start,
                format!("length {len} exceeds the {remaining} bytes left or the 32 MiB bound"),
            ));
        }
        // `len` is bounded above, so it fits in memory and in usize.
        self.buf.clear();
        self.buf.resize(usize::try_from(len).unwrap_or(0), 0);
        self.reader
            .read_exact(&mut self.buf)
            .map_err(|e| self.corrupt(start, format!("truncated ({e})")))?;
        self.offset += len;
        Ok(Some(start))
    }

    /// The varint length prefix, or `None` at a clean end of the member.
    fn read_length(&mut self, start: u64) -> Result<Option<u64>, BundleError> {
        let mut prefix = [0u8; 10];
        for i in 0..prefix.len() {
            let mut byte = [0u8; 1];
            let n = self
                .reader
                .read(&mut byte)
                .map_err(|e| self.corrupt(start, format!("unreadable ({e})")))?;
            if n == 0 {
                return if i == 0 {
                    Ok(None)
                } else {
                    Err(self.corrupt(start, "truncated inside a length prefix".to_owned()))
                };
            }
            self.offset += 1;
            prefix[i] = byte[0];
            if byte[0] < 0x80 {
                let mut bytes = prefix.get(..=i).unwrap_or_default();
                return prost::encoding::decode_varint(&mut bytes)
                    .map(Some)
                    .map_err(|e| self.corrupt(start, e.to_string()));
            }
        }
        Err(self.corrupt(start, "length prefix longer than 10 bytes".to_owned()))
    }

    fn corrupt(&self, offset: u64, reason: String) -> BundleError {
        BundleError::CorruptOtlp {
            path: self.member.as_str().to_owned(),
            message: self.index,
            offset,
            reason,
        }
    }
}

fn visit_traces(
    data: &TracesData,
    records: &mut u64,
    visit: &mut dyn FnMut(&RecordView<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    for resource in &data.resource_spans {
        let service = service_name(resource.resource.as_ref());
        for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
            visit(&view(
                records,
                span.start_time_unix_nano,
                &span.attributes,
                service,
            ))?;
        }
    }
    Ok(())
}

fn visit_logs(
    data: &LogsData,
    records: &mut u64,
    visit: &mut dyn FnMut(&RecordView<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    for resource in &data.resource_logs {
        let service = service_name(resource.resource.as_ref());
        for record in resource.scope_logs.iter().flat_map(|s| &s.log_records) {
            let time = if record.time_unix_nano != 0 {
                record.time_unix_nano
            } else {
                record.observed_time_unix_nano
            };
            visit(&view(records, time, &record.attributes, service))?;
        }
    }
    Ok(())
}

fn visit_metrics(
    data: &MetricsData,
    records: &mut u64,
    visit: &mut dyn FnMut(&RecordView<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    for resource in &data.resource_metrics {
        let service = service_name(resource.resource.as_ref());
        let metrics = resource.scope_metrics.iter().flat_map(|s| &s.metrics);
        for data in metrics.filter_map(|m| m.data.as_ref()) {
            let mut point = |time: u64, attributes: &[KeyValue]| {
                visit(&view(records, time, attributes, service))
            };
            match data {
                metric::Data::Gauge(g) => g
                    .data_points
                    .iter()
                    .try_for_each(|p| point(p.time_unix_nano, &p.attributes))?,
                metric::Data::Sum(s) => s
                    .data_points
                    .iter()
                    .try_for_each(|p| point(p.time_unix_nano, &p.attributes))?,
                metric::Data::Histogram(h) => h
                    .data_points
                    .iter()
                    .try_for_each(|p| point(p.time_unix_nano, &p.attributes))?,
                metric::Data::ExponentialHistogram(h) => h
                    .data_points
                    .iter()
                    .try_for_each(|p| point(p.time_unix_nano, &p.attributes))?,
                metric::Data::Summary(s) => s
                    .data_points
                    .iter()
                    .try_for_each(|p| point(p.time_unix_nano, &p.attributes))?,
            }
        }
    }
    Ok(())
}

/// The view of the next record; advances the record counter.
fn view<'a>(
    records: &mut u64,
    time_unix_nano: u64,
    attributes: &'a [KeyValue],
    service: Option<&'a str>,
) -> RecordView<'a> {
    let index = *records;
    *records += 1;
    RecordView {
        index,
        time_unix_nano,
        tenant: attribute(attributes, TENANT_ATTRIBUTE).and_then(text_of),
        service,
    }
}

fn service_name(resource: Option<&Resource>) -> Option<&str> {
    let value = attribute(&resource?.attributes, SERVICE_NAME)?;
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()
}

/// A `tenant.id` value: only a string names a tenant (as for selection).
fn text_of(value: &AnyValue) -> Option<Cow<'_, str>> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Some(Cow::Borrowed(s)),
        _ => None,
    }
}
