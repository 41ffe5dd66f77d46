//! The local store written by the real file exporters is selected exactly: `from <= t < to`
//! on span start, log time (else observed time) and metric point time, and the `tenant.id`
//! attribute when a tenant is given. Sidecar indexes let the selection skip segments; the
//! selection files do not depend on the segments' names or order; corrupt segments are
//! skipped and reported; retention removes old segments and counts them; both framings read.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_executor::block_on;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, MetricsData, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, metric,
};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use prost::Message;
use stellaops_telemetry_core::bundle::{OtlpFile, SelectionReport, Store, StoreError};
use stellaops_telemetry_core::{
    FileExportOptions, FileFormat, FileLogExporter, FileMetricExporter, FileSpanExporter,
};

type TestResult = Result<(), Box<dyn Error>>;

/// The window's start, unix seconds (2023-11-14T22:13:20Z), and its length.
const FROM_SECS: u64 = 1_700_000_000;
const WINDOW_SECS: u64 = 100;
const SIGNALS: [&str; 3] = ["traces", "metrics", "logs"];

fn from() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(FROM_SECS)
}

fn to() -> SystemTime {
    from() + Duration::from_secs(WINDOW_SECS)
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The interesting instants around the window, each with a name.
fn boundaries() -> [(&'static str, SystemTime); 4] {
    let ns = Duration::from_nanos(1);
    [
        ("before", from() - ns),
        ("at-from", from()),
        ("last", to() - ns),
        ("at-to", to()),
    ]
}

fn span(name: &str, seq: u64, start: SystemTime, tenant: &str) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(seq) + 1),
            SpanId::from(seq + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.to_owned().into(),
        start_time: start,
        end_time: start + Duration::from_millis(5),
        attributes: vec![KeyValue::new("tenant.id", tenant.to_owned())],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("store-test").build(),
    }
}

fn options(dir: &Path, format: FileFormat) -> FileExportOptions {
    FileExportOptions::new(dir)
        .format(format)
        .max_segment_bytes(700)
}

/// Spans of acme and globex at every boundary, one record each, then a spread of spans
/// through the window, several sharing a start time (so that segments tie on their times).
fn write_spans(dir: &Path, format: FileFormat) -> TestResult {
    let exporter = FileSpanExporter::new(options(dir, format))?;
    let mut seq = 0;
    for tenant in ["acme", "globex"] {
        for (name, time) in boundaries() {
            seq += 1;
            block_on(exporter.export(vec![span(&format!("{tenant}-{name}"), seq, time, tenant)]))?;
        }
    }
    for i in 0..24u64 {
        seq += 1;
        let tenant = if i % 3 == 0 { "globex" } else { "acme" };
        let start = from() + Duration::from_secs(10 + (i / 4) * 10);
        block_on(exporter.export(vec![span(&format!("spread-{i}"), seq, start, tenant)]))?;
    }
    exporter.shutdown()?;
    Ok(())
}

/// Log records of acme and globex at every boundary, plus one with only an observed time
/// at `from` (kept) and one with a time before the window but observed inside it (dropped).
fn write_logs(dir: &Path, format: FileFormat) -> TestResult {
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(FileLogExporter::new(options(dir, format))?)
        .build();
    let logger = provider.logger("store-test");
    for tenant in ["acme", "globex"] {
        for (name, time) in boundaries() {
            let mut record = logger.create_log_record();
            record.set_timestamp(time);
            record.set_observed_timestamp(time);
            record.set_body(format!("{tenant}-{name}").into());
            record.add_attribute("tenant.id", tenant);
            logger.emit(record);
        }
    }
    let mut observed_only = logger.create_log_record();
    observed_only.set_observed_timestamp(from());
    observed_only.set_body("acme-observed".into());
    observed_only.add_attribute("tenant.id", "acme");
    logger.emit(observed_only);
    let mut early = logger.create_log_record();
    early.set_timestamp(from() - Duration::from_secs(1));
    early.set_observed_timestamp(from() + Duration::from_secs(1));
    early.set_body("acme-early".into());
    early.add_attribute("tenant.id", "acme");
    logger.emit(early);
    provider.shutdown()?;
    Ok(())
}

fn tenant(name: &str) -> Vec<ProtoKeyValue> {
    vec![ProtoKeyValue {
        key: "tenant.id".to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(name.to_owned())),
        }),
        ..ProtoKeyValue::default()
    }]
}

/// One metric of every type, each with a point of acme and globex at every boundary.
fn metrics_of_every_type() -> MetricsData {
    let times: Vec<(u64, &str)> = ["acme", "globex"]
        .into_iter()
        .flat_map(|t| boundaries().map(|(_, time)| (nanos(time), t)))
        .collect();
    let number = |(time, t): &(u64, &str)| NumberDataPoint {
        time_unix_nano: *time,
        attributes: tenant(t),
        ..NumberDataPoint::default()
    };
    let data = [
        metric::Data::Gauge(Gauge {
            data_points: times.iter().map(number).collect(),
        }),
        metric::Data::Sum(Sum {
            data_points: times.iter().map(number).collect(),
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
        metric::Data::Histogram(Histogram {
            data_points: times
                .iter()
                .map(|(time, t)| HistogramDataPoint {
                    time_unix_nano: *time,
                    attributes: tenant(t),
                    count: 1,
                    ..HistogramDataPoint::default()
                })
                .collect(),
            aggregation_temporality: 2,
        }),
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: times
                .iter()
                .map(|(time, t)| ExponentialHistogramDataPoint {
                    time_unix_nano: *time,
                    attributes: tenant(t),
                    ..ExponentialHistogramDataPoint::default()
                })
                .collect(),
            aggregation_temporality: 2,
        }),
        metric::Data::Summary(Summary {
            data_points: times
                .iter()
                .map(|(time, t)| SummaryDataPoint {
                    time_unix_nano: *time,
                    attributes: tenant(t),
                    ..SummaryDataPoint::default()
                })
                .collect(),
        }),
    ];
    let metrics = data
        .into_iter()
        .enumerate()
        .map(|(i, data)| Metric {
            name: format!("metric-{i}"),
            data: Some(data),
            ..Metric::default()
        })
        .collect();
    MetricsData {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

/// Metric segments as an older writer (no sidecar) leaves them, in `format`.
fn write_metrics(dir: &Path, format: FileFormat) -> TestResult {
    let metrics_dir = dir.join("metrics");
    fs::create_dir_all(&metrics_dir)?;
    let message = metrics_of_every_type();
    let bytes = match format {
        FileFormat::Protobuf => message.encode_length_delimited_to_vec(),
        _ => {
            let mut line = serde_json::to_vec(&message)?;
            line.push(b'\n');
            line
        }
    };
    let name = format!("metrics-20231114T221320Z-000001.{}", format.extension());
    fs::write(metrics_dir.join(name), bytes)?;
    Ok(())
}

fn write_store(dir: &Path, format: FileFormat) -> TestResult {
    write_spans(dir, format)?;
    write_logs(dir, format)?;
    write_metrics(dir, format)
}

/// Every length-delimited message of a selection file.
fn decode_all<M: Message + Default>(file: &OtlpFile) -> Result<Vec<M>, Box<dyn Error>> {
    let bytes = file.read_all()?;
    let mut rest = bytes.as_slice();
    let mut messages = Vec::new();
    while !rest.is_empty() {
        messages.push(M::decode_length_delimited(&mut rest)?);
    }
    Ok(messages)
}

fn span_names(file: &OtlpFile) -> Result<Vec<String>, Box<dyn Error>> {
    let mut names: Vec<String> = decode_all::<TracesData>(file)?
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    Ok(names)
}

fn log_bodies(file: &OtlpFile) -> Result<Vec<String>, Box<dyn Error>> {
    let mut bodies: Vec<String> = decode_all::<LogsData>(file)?
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|r| match r.body.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    bodies.sort();
    Ok(bodies)
}

/// Per metric name, the number of points selected.
fn points_per_metric(file: &OtlpFile) -> Result<Vec<(String, usize)>, Box<dyn Error>> {
    let mut out = Vec::new();
    for data in decode_all::<MetricsData>(file)? {
        for metric in data
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
        {
            let points = match &metric.data {
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Histogram(h)) => h.data_points.len(),
                Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(metric::Data::Summary(s)) => s.data_points.len(),
                None => 0,
            };
            out.push((metric.name.clone(), points));
        }
    }
    Ok(out)
}

fn select(
    store: &Path,
    tenant: Option<&str>,
    out: &Path,
) -> Result<(stellaops_telemetry_core::bundle::OtlpFiles, SelectionReport), Box<dyn Error>> {
    Ok(Store::open(store)?.select(from(), to(), tenant, out, &mut |_| {})?)
}

fn selection_bytes(files: &stellaops_telemetry_core::bundle::OtlpFiles) -> Vec<Vec<u8>> {
    [&files.traces, &files.metrics, &files.logs]
        .map(|f| f.read_all().unwrap_or_default())
        .to_vec()
}

mod boundaries_and_tenants {
    use super::*;

    #[test]
    fn a_tenant_selection_keeps_its_items_from_from_up_to_but_not_including_to() -> TestResult {
        for format in [FileFormat::Json, FileFormat::Protobuf] {
            let store = tempfile::tempdir()?;
            let out = tempfile::tempdir()?;
            write_store(store.path(), format)?;
            let (files, report) = select(store.path(), Some("acme"), out.path())?;
            let spread_acme = (0..24).filter(|i| i % 3 != 0).count();
            let mut expected: Vec<String> = (0..24)
                .filter(|i| i % 3 != 0)
                .map(|i| format!("spread-{i}"))
                .chain(["acme-at-from".to_owned(), "acme-last".to_owned()])
                .collect();
            expected.sort();
            assert_eq!(span_names(&files.traces)?, expected, "{format:?}");
            assert_eq!(
                log_bodies(&files.logs)?,
                ["acme-at-from", "acme-last", "acme-observed"],
                "{format:?}"
            );
            let per_metric = points_per_metric(&files.metrics)?;
            assert_eq!(per_metric.len(), 5, "every metric type keeps its points");
            assert!(per_metric.iter().all(|(_, n)| *n == 2), "{per_metric:?}");
            assert_eq!(files.counts.spans, 2 + spread_acme as u64);
            assert_eq!(files.counts.log_records, 3);
            assert_eq!(files.counts.points, 10);
            assert_eq!(report.counts, files.counts);
            assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
        }
        Ok(())
    }

    #[test]
    fn without_a_tenant_every_tenant_in_the_window_is_kept() -> TestResult {
        let store = tempfile::tempdir()?;
        let out = tempfile::tempdir()?;
        write_store(store.path(), FileFormat::Json)?;
        let (files, _) = select(store.path(), None, out.path())?;
        let names = span_names(&files.traces)?;
        for kept in ["acme-at-from", "acme-last", "globex-at-from", "globex-last"] {
            assert!(names.contains(&kept.to_owned()), "{kept} kept");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with("before") || n.ends_with("at-to"))
        );
        assert_eq!(files.counts.spans, 4 + 24);
        assert_eq!(files.counts.points, 20);
        assert_eq!(files.counts.log_records, 5);
        let (globex, _) = select(store.path(), Some("globex"), out.path())?;
        assert_eq!(globex.counts.spans, 2 + 8);
        let nobody = tempfile::tempdir()?;
        let (none, report) = select(store.path(), Some("initech"), nobody.path())?;
        assert_eq!(none.counts, Default::default());
        assert_eq!(report.segments_read, 0, "no segment lists initech");
        Ok(())
    }

    #[test]
    fn the_exported_metrics_of_a_real_meter_are_selected_by_tenant() -> TestResult {
        let store = tempfile::tempdir()?;
        let out = tempfile::tempdir()?;
        let before = SystemTime::now();
        let exporter = FileMetricExporter::new(options(store.path(), FileFormat::Protobuf))?;
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .build();
        let meter = provider.meter("store-test");
        let counter = meter.u64_counter("orders").build();
        let histogram = meter.f64_histogram("latency").build();
        for tenant in ["acme", "globex"] {
            counter.add(1, &[KeyValue::new("tenant.id", tenant)]);
            histogram.record(0.5, &[KeyValue::new("tenant.id", tenant)]);
        }
        provider.shutdown()?;
        let after = SystemTime::now() + Duration::from_secs(1);
        let (files, _) = Store::open(store.path())?.select(
            before,
            after,
            Some("acme"),
            out.path(),
            &mut |_| {},
        )?;
        assert_eq!(files.counts.points, 2);
        let mut names: Vec<String> = points_per_metric(&files.metrics)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        assert_eq!(names, ["latency", "orders"]);
        Ok(())
    }
}

mod sidecars {
    use super::*;

    fn sidecars(store: &Path, signal: &str) -> Result<Vec<PathBuf>, Box<dyn Error>> {
        let dir = store.join(".index").join(signal);
        Ok(fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?)
    }

    #[test]
    fn every_closed_segment_has_a_sidecar_and_the_signal_folders_hold_only_segments() -> TestResult
    {
        let store = tempfile::tempdir()?;
        write_spans(store.path(), FileFormat::Json)?;
        let segments: Vec<PathBuf> = fs::read_dir(store.path().join("traces"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        assert!(segments.len() > 5, "a small bound makes many segments");
        assert!(
            segments
                .iter()
                .all(|p| p.extension() == Some("jsonl".as_ref()))
        );
        let index = sidecars(store.path(), "traces")?;
        assert_eq!(index.len(), segments.len());
        let sidecar: serde_json::Value = serde_json::from_slice(&fs::read(&index[0])?)?;
        for key in [
            "format",
            "bytes",
            "records",
            "items",
            "min_time_unix_nano",
            "max_time_unix_nano",
            "tenants",
            "many_tenants",
        ] {
            assert!(sidecar.get(key).is_some(), "the sidecar has `{key}`");
        }
        Ok(())
    }

    #[test]
    fn a_narrow_window_opens_only_the_segments_it_overlaps_and_selects_as_a_scan_does() -> TestResult
    {
        let store = tempfile::tempdir()?;
        write_spans(store.path(), FileFormat::Protobuf)?;
        let narrow_from = from() + Duration::from_secs(30);
        let narrow_to = from() + Duration::from_secs(40);
        let indexed_out = tempfile::tempdir()?;
        let mut progress = Vec::new();
        let (indexed, report) = Store::open(store.path())?.select(
            narrow_from,
            narrow_to,
            None,
            indexed_out.path(),
            &mut |bytes| progress.push(bytes),
        )?;
        assert_eq!(
            indexed.counts.spans, 4,
            "the four spans starting at from + 30 s"
        );
        assert_eq!(report.segments_scanned, 0, "every segment has its sidecar");
        assert!(report.segments_read >= 1);
        assert_eq!(
            report.segments_pruned + report.segments_read,
            report.segments_listed
        );
        assert!(
            report.segments_pruned > 0 && report.segments_read < report.segments_listed,
            "segments are skipped: {report:?}"
        );
        assert_eq!(progress.last().copied(), Some(report.bytes_read));
        assert!(progress.windows(2).all(|w| w[0] < w[1]));

        fs::remove_dir_all(store.path().join(".index"))?;
        let scanned_out = tempfile::tempdir()?;
        let (scanned, report) = Store::open(store.path())?.select(
            narrow_from,
            narrow_to,
            None,
            scanned_out.path(),
            &mut |_| {},
        )?;
        assert_eq!(report.segments_scanned, report.segments_listed);
        assert_eq!(report.segments_pruned, 0);
        assert_eq!(selection_bytes(&scanned), selection_bytes(&indexed));

        // The scan left the sidecars behind: the next selection prunes again.
        let healed_out = tempfile::tempdir()?;
        let (healed, report) = Store::open(store.path())?.select(
            narrow_from,
            narrow_to,
            None,
            healed_out.path(),
            &mut |_| {},
        )?;
        assert_eq!(report.segments_scanned, 0, "{report:?}");
        assert!(report.segments_pruned > 0, "{report:?}");
        assert_eq!(selection_bytes(&healed), selection_bytes(&indexed));
        Ok(())
    }
}

mod canonical_order {
    use super::*;

    /// A small deterministic generator (xorshift64*), so that failures replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                items.swap(i, j);
            }
        }
    }

    type SegmentAndSidecar = (PathBuf, Option<PathBuf>);

    /// The segments of one signal with their sidecars (if any).
    fn segments(store: &Path, signal: &str) -> Result<Vec<SegmentAndSidecar>, Box<dyn Error>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(store.join(signal))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .ok_or("no name")?
                .to_string_lossy()
                .into_owned();
            let sidecar = store
                .join(".index")
                .join(signal)
                .join(format!("{name}.idx"));
            out.push((path, sidecar.exists().then_some(sidecar)));
        }
        out.sort();
        Ok(out)
    }

    /// Copies `source`'s segments into `target` in a shuffled order under new names (other
    /// times, other sequence numbers), keeping each sidecar or not at random.
    fn shuffled_copy(source: &Path, target: &Path, rng: &mut Rng) -> TestResult {
        for signal in SIGNALS {
            let mut segments = segments(source, signal)?;
            rng.shuffle(&mut segments);
            fs::create_dir_all(target.join(signal))?;
            fs::create_dir_all(target.join(".index").join(signal))?;
            for (i, (segment, sidecar)) in segments.iter().enumerate() {
                let extension = segment.extension().ok_or("no extension")?.to_string_lossy();
                let name = format!(
                    "{signal}-2031{:02}01T000000Z-{:06}.{extension}",
                    1 + rng.next() % 12,
                    i + 1
                );
                fs::copy(segment, target.join(signal).join(&name))?;
                if let (Some(sidecar), true) = (sidecar, rng.next().is_multiple_of(2)) {
                    let copy = target
                        .join(".index")
                        .join(signal)
                        .join(format!("{name}.idx"));
                    fs::copy(sidecar, copy)?;
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_hundred_shuffled_copies_of_a_store_select_byte_identical_files() -> TestResult {
        let store = tempfile::tempdir()?;
        write_spans(store.path(), FileFormat::Json)?;
        write_logs(store.path(), FileFormat::Protobuf)?;
        write_metrics(store.path(), FileFormat::Protobuf)?;
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        assert!(
            report.segments_hashed > 0,
            "some segments tie on their times"
        );
        let expected = selection_bytes(&files);
        assert!(expected.iter().all(|bytes| !bytes.is_empty()));
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for round in 0..100 {
            let copy = tempfile::tempdir()?;
            shuffled_copy(store.path(), copy.path(), &mut rng)?;
            let out = tempfile::tempdir()?;
            let (files, _) = select(copy.path(), None, out.path())?;
            assert!(selection_bytes(&files) == expected, "round {round} differs");
        }
        Ok(())
    }

    /// The messages of each selection file, each encoded, sorted.
    fn sorted_messages(files: &stellaops_telemetry_core::bundle::OtlpFiles) -> Vec<Vec<Vec<u8>>> {
        fn encoded<M: Message + Default>(file: &OtlpFile) -> Vec<Vec<u8>> {
            let mut all: Vec<Vec<u8>> = decode_all::<M>(file)
                .unwrap_or_default()
                .iter()
                .map(M::encode_to_vec)
                .collect();
            all.sort();
            all
        }
        vec![
            encoded::<TracesData>(&files.traces),
            encoded::<MetricsData>(&files.metrics),
        ]
    }

    #[test]
    fn the_two_framings_select_the_same_messages() -> TestResult {
        // The order of segments tying on their times follows their bytes, which differ
        // between framings; the messages selected are the same.
        let json = tempfile::tempdir()?;
        let protobuf = tempfile::tempdir()?;
        for (dir, format) in [(&json, FileFormat::Json), (&protobuf, FileFormat::Protobuf)] {
            let exporter = FileSpanExporter::new(options(dir.path(), format))?;
            for i in 0..12u64 {
                let start = from() + Duration::from_secs(i * 7);
                block_on(exporter.export(vec![span(&format!("s{i}"), i, start, "acme")]))?;
            }
            exporter.shutdown()?;
            write_logs(dir.path(), format)?;
            write_metrics(dir.path(), format)?;
        }
        let (a_out, b_out) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (a, _) = select(json.path(), Some("acme"), a_out.path())?;
        let (b, _) = select(protobuf.path(), Some("acme"), b_out.path())?;
        // Without a tenant, whole protobuf segments are copied as written, and still hold the
        // same messages; JSON is always re-encoded.
        let (all_a_out, all_b_out) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (all_a, a_report) = select(json.path(), None, all_a_out.path())?;
        let (all_b, b_report) = select(protobuf.path(), None, all_b_out.path())?;
        assert_eq!(a_report.segments_copied, 0);
        assert!(b_report.segments_copied > 0, "{b_report:?}");
        assert_eq!(all_a.counts, all_b.counts);
        assert!(sorted_messages(&all_a) == sorted_messages(&all_b));
        assert_eq!(a.counts.spans, 12);
        assert_eq!(a.counts, b.counts);
        assert!(sorted_messages(&a) == sorted_messages(&b));
        // Two logger providers list the SDK's resource attributes in different orders.
        assert_eq!(log_bodies(&a.logs)?, log_bodies(&b.logs)?);
        Ok(())
    }
}

mod whole_segments {
    use super::*;
    use stellaops_telemetry_core::bundle::{
        self, BundleError, BundleMeta, Compression, SigningKey,
    };

    /// Twelve spans in the window, in segments of about four, `untenanted` of them without a
    /// tenant.
    fn write_acme(dir: &Path, untenanted: &[u64]) -> TestResult {
        let exporter = FileSpanExporter::new(
            FileExportOptions::new(dir)
                .format(FileFormat::Protobuf)
                .max_segment_bytes(300),
        )?;
        for i in 0..12u64 {
            let mut data = span(&format!("s{i}"), i, from() + Duration::from_secs(i), "acme");
            if untenanted.contains(&i) {
                data.attributes.clear();
            }
            block_on(exporter.export(vec![data]))?;
        }
        exporter.shutdown()?;
        Ok(())
    }

    fn segments(store: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
        let mut all: Vec<PathBuf> = fs::read_dir(store.join("traces"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        all.sort();
        Ok(all)
    }

    #[test]
    fn a_tenants_selection_decodes_every_segment_and_a_selection_of_all_copies_them() -> TestResult
    {
        let store = tempfile::tempdir()?;
        write_acme(store.path(), &[5])?;
        let count = segments(store.path())?.len() as u64;
        assert!(count >= 3, "{count} segments");
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), Some("acme"), out.path())?;
        assert_eq!(files.counts.spans, 11);
        assert_eq!(report.segments_copied, 0, "{report:?}");
        assert_eq!(report.segments_read, count);
        assert!(!span_names(&files.traces)?.contains(&"s5".to_owned()));
        let (files, report) = select(store.path(), None, out.path())?;
        assert_eq!(files.counts.spans, 12);
        assert_eq!(report.segments_copied, count, "{report:?}");
        assert_eq!(report.records_read, 0, "nothing was decoded");
        Ok(())
    }

    #[test]
    fn a_segment_holding_a_deeply_nested_value_is_decoded_not_copied() -> TestResult {
        use opentelemetry::logs::AnyValue as LogValue;
        let store = tempfile::tempdir()?;
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(FileLogExporter::new(
                FileExportOptions::new(store.path()).format(FileFormat::Protobuf),
            )?)
            .build();
        let logger = provider.logger("store-test");
        for depth in [1usize, 17] {
            let mut body = LogValue::from(format!("depth-{depth}"));
            for _ in 1..depth {
                body = LogValue::ListAny(Box::new(vec![body]));
            }
            let mut record = logger.create_log_record();
            record.set_timestamp(from() + Duration::from_secs(depth as u64));
            record.set_body(body);
            logger.emit(record);
        }
        provider.shutdown()?;
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        assert_eq!(files.counts.log_records, 2);
        assert_eq!(report.segments_copied, 0, "{report:?}");
        assert_eq!(report.segments_read, 1);
        Ok(())
    }

    #[test]
    fn a_copied_segment_removed_before_packing_is_still_packed_from_its_open_file() -> TestResult {
        let store = tempfile::tempdir()?;
        write_acme(store.path(), &[])?;
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        assert!(report.segments_copied > 0);
        for segment in segments(store.path())? {
            fs::remove_file(segment)?;
        }
        let meta = BundleMeta {
            from: from(),
            to: to(),
            tenant: None,
            profile: "default".into(),
        };
        let key = SigningKey::generate()?;
        let bundle_path = out.path().join("b.tar");
        let packed = bundle::pack(&meta, &files, &[], &key, Compression::None, &bundle_path)?;
        assert_eq!(packed.manifest.counts.spans, 12);
        bundle::verify(&bundle_path, &key.public_key())?;
        Ok(())
    }

    #[test]
    fn a_segment_whose_framing_broke_after_it_was_indexed_is_skipped_and_reported() -> TestResult {
        let store = tempfile::tempdir()?;
        write_acme(store.path(), &[])?;
        let all = segments(store.path())?;
        // Same length (the sidecar still matches), but the first prefix now claims too much.
        let mut bytes = fs::read(&all[1])?;
        bytes[0] = 0x7f;
        fs::write(&all[1], &bytes)?;
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        let reported: Vec<&Path> = report.corrupt.iter().map(|c| c.path.as_path()).collect();
        assert_eq!(reported, [all[1].as_path()]);
        assert_eq!(report.segments_copied, all.len() as u64 - 1);
        let names = span_names(&files.traces)?;
        assert_eq!(names.len() as u64, files.counts.spans);
        Ok(())
    }

    #[test]
    fn a_copied_segment_that_changes_before_packing_fails_the_pack_and_leaves_nothing() -> TestResult
    {
        let store = tempfile::tempdir()?;
        write_acme(store.path(), &[])?;
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        assert!(report.segments_copied > 0);
        let meta = BundleMeta {
            from: from(),
            to: to(),
            tenant: None,
            profile: "default".into(),
        };
        let key = SigningKey::generate()?;
        let bundle_path = out.path().join("b.tar");
        bundle::pack(&meta, &files, &[], &key, Compression::None, &bundle_path)?;
        bundle::verify(&bundle_path, &key.public_key())?;

        let victim = &segments(store.path())?[0];
        let len = fs::metadata(victim)?.len();
        fs::OpenOptions::new()
            .write(true)
            .open(victim)?
            .set_len(len - 1)?;
        let err =
            bundle::pack(&meta, &files, &[], &key, Compression::None, &bundle_path).unwrap_err();
        assert!(
            matches!(&err, BundleError::ChangedWhilePacking { path, .. } if path == victim),
            "{err}"
        );
        let mut bytes = fs::read(victim)?;
        bytes.resize(len as usize, 0);
        bytes[..11].fill(0xff);
        fs::write(victim, &bytes)?;
        let err =
            bundle::pack(&meta, &files, &[], &key, Compression::None, &bundle_path).unwrap_err();
        assert!(
            matches!(&err, BundleError::UnframedOtlp { path, .. } if path == victim),
            "{err}"
        );
        // The bundle packed before the damage is still the one in place.
        bundle::verify(&bundle_path, &key.public_key())?;
        Ok(())
    }
}

mod damage {
    use super::*;

    #[test]
    fn a_corrupt_segment_is_skipped_reported_and_the_rest_still_selected() -> TestResult {
        for format in [FileFormat::Json, FileFormat::Protobuf] {
            let store = tempfile::tempdir()?;
            write_spans(store.path(), format)?;
            let clean_out = tempfile::tempdir()?;
            let (clean, _) = select(store.path(), None, clean_out.path())?;
            let mut segments: Vec<PathBuf> = fs::read_dir(store.path().join("traces"))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            segments.sort();
            // One segment cut short (its sidecar no longer fits: scanned), one damaged in
            // place (its sidecar still fits: found while selecting, after some output).
            let truncated = &segments[segments.len() / 2];
            let damaged = &segments[segments.len() / 2 + 1];
            let items = |path: &Path| -> Result<u64, Box<dyn Error>> {
                let name = path
                    .file_name()
                    .ok_or("name")?
                    .to_string_lossy()
                    .into_owned();
                let sidecar = store
                    .path()
                    .join(".index/traces")
                    .join(format!("{name}.idx"));
                let index: serde_json::Value = serde_json::from_slice(&fs::read(sidecar)?)?;
                index["items"].as_u64().ok_or_else(|| "items".into())
            };
            let lost = items(truncated)? + items(damaged)?;
            let bytes = fs::read(truncated)?;
            fs::write(truncated, &bytes[..bytes.len() - 3])?;
            damage_last_record(damaged, format)?;

            let out = tempfile::tempdir()?;
            let (files, report) = select(store.path(), None, out.path())?;
            let mut reported: Vec<&Path> =
                report.corrupt.iter().map(|c| c.path.as_path()).collect();
            reported.sort();
            assert_eq!(
                reported,
                [truncated.as_path(), damaged.as_path()],
                "{format:?}"
            );
            assert!(report.corrupt.iter().all(|c| !c.reason.is_empty()));
            assert_eq!(files.counts.spans, clean.counts.spans - lost, "{format:?}");
            let spans: usize = decode_all::<TracesData>(&files.traces)?
                .iter()
                .flat_map(|t| &t.resource_spans)
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert_eq!(
                spans as u64, files.counts.spans,
                "nothing of a corrupt segment is left"
            );
        }
        Ok(())
    }

    /// Damages the last record of a segment without changing its length: invalid UTF-8 in
    /// a JSON line, a length prefix claiming more bytes than are left in a protobuf one.
    fn damage_last_record(path: &Path, format: FileFormat) -> TestResult {
        let mut bytes = fs::read(path)?;
        if format == FileFormat::Json {
            let end = bytes.len() - 1;
            bytes[end - 5..end].copy_from_slice(b"\xff\xff\xff\xff\xff");
        } else {
            let mut offset = 0;
            let mut last = 0;
            while offset < bytes.len() {
                last = offset;
                let mut rest = &bytes[offset..];
                let len = prost::encoding::decode_varint(&mut rest)? as usize;
                offset = bytes.len() - rest.len() + len;
            }
            let mut end = last;
            while bytes[end] & 0x80 != 0 {
                end += 1;
            }
            assert!(
                end > last || bytes[last] < 0x7f - 1,
                "a short record at the end"
            );
            bytes[end] = 0x7f;
        }
        fs::write(path, &bytes)?;
        Ok(())
    }

    #[test]
    fn garbage_in_every_segment_never_panics() -> TestResult {
        let store = tempfile::tempdir()?;
        for signal in SIGNALS {
            fs::create_dir_all(store.path().join(signal))?;
            for (i, bytes) in [
                &b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..],
                b"\x7f",
                b"{\"resourceSpans\":[",
                b"\n\n  \n",
                b"",
            ]
            .iter()
            .enumerate()
            {
                for ext in ["jsonl", "binpb"] {
                    let name = format!("{signal}-20231114T221320Z-{i:06}.{ext}");
                    fs::write(store.path().join(signal).join(name), bytes)?;
                }
            }
        }
        let out = tempfile::tempdir()?;
        let (files, report) = select(store.path(), None, out.path())?;
        assert_eq!(files.counts, Default::default());
        assert_eq!(report.segments_listed, 30);
        assert!(!report.corrupt.is_empty());
        Ok(())
    }
}

mod retention {
    use super::*;

    #[test]
    fn segments_whose_last_item_is_past_retention_are_removed_and_counted() -> TestResult {
        let store = tempfile::tempdir()?;
        // One record per segment; the count bound is far away.
        let options = options(store.path(), FileFormat::Json)
            .max_segment_bytes(1)
            .retention(Duration::from_secs(24 * 60 * 60))
            .max_segments_per_signal(1000);
        let exporter = FileSpanExporter::new(options)?;
        for i in 0..10u64 {
            let start = from() + Duration::from_secs(i);
            block_on(exporter.export(vec![span("old", i, start, "acme")]))?;
        }
        // Each closed old segment went when the next one opened; the open one stays.
        assert_eq!(exporter.segments_removed_by_retention(), 9);
        assert_eq!(fs::read_dir(store.path().join("traces"))?.count(), 1);
        for i in 0..6u64 {
            let start = SystemTime::now();
            block_on(exporter.export(vec![span("recent", 100 + i, start, "acme")]))?;
        }
        exporter.shutdown()?;
        assert_eq!(exporter.segments_removed_by_retention(), 10);
        assert_eq!(fs::read_dir(store.path().join("traces"))?.count(), 6);
        let out = tempfile::tempdir()?;
        let (files, _) = Store::open(store.path())?.select(
            from(),
            SystemTime::now() + Duration::from_secs(1),
            None,
            out.path(),
            &mut |_| {},
        )?;
        assert_eq!(files.counts.spans, 6, "only the recent spans are left");
        let segments = fs::read_dir(store.path().join("traces"))?.count();
        let sidecars = fs::read_dir(store.path().join(".index/traces"))?.count();
        assert_eq!(segments, sidecars, "sidecars go with their segments");
        Ok(())
    }
}

mod bad_input {
    use super::*;

    #[test]
    fn bad_windows_tenants_and_folders_are_typed_errors() -> TestResult {
        let store = tempfile::tempdir()?;
        let out = tempfile::tempdir()?;
        let open = Store::open(store.path())?;
        let empty = open.select(to(), to(), None, out.path(), &mut |_| {});
        assert!(matches!(empty, Err(StoreError::EmptyWindow { .. })));
        let backwards = open.select(to(), from(), None, out.path(), &mut |_| {});
        let message = backwards
            .err()
            .ok_or("a backwards window is refused")?
            .to_string();
        assert!(message.contains("2023-11-14T22:13:20"), "{message}");
        let limited = open
            .clone()
            .max_window(Duration::from_secs(WINDOW_SECS - 1));
        let long = limited.select(from(), to(), None, out.path(), &mut |_| {});
        assert!(matches!(long, Err(StoreError::WindowTooLong { .. })));
        let exact = open.clone().max_window(Duration::from_secs(WINDOW_SECS));
        assert!(
            exact
                .select(from(), to(), None, out.path(), &mut |_| {})
                .is_ok()
        );
        let blank = open.select(from(), to(), Some(""), out.path(), &mut |_| {});
        assert!(matches!(blank, Err(StoreError::EmptyTenant)));
        let missing = Store::open(&store.path().join("missing"));
        assert!(matches!(missing, Err(StoreError::MissingDir { .. })));
        let file = store.path().join("a-file");
        fs::write(&file, b"")?;
        assert!(matches!(
            Store::open(&file),
            Err(StoreError::NotADirectory { .. })
        ));
        Ok(())
    }
}

mod pipeline {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use stellaops_telemetry_core::{ExporterKind, Telemetry, TelemetryConfig};

    #[test]
    fn a_pipeline_keeps_its_profiles_retention_counts_removals_and_its_store_selects() -> TestResult
    {
        let store = tempfile::tempdir()?;
        let mut config = TelemetryConfig::default();
        // One record per segment: every flush rotates.
        config.files.max_segment_bytes = Some(1);
        let telemetry = Telemetry::builder("store-test")
            .config(config)
            .exporters(&[ExporterKind::File])
            .dir(store.path())
            .build()?;
        let tracer = telemetry.tracer_provider().tracer("store-test");
        let now = SystemTime::now();
        // Two spans far past the default profile's 30 days, then a recent one per tenant.
        for (name, start, tenant) in [
            ("old-1", from(), "acme"),
            ("old-2", from(), "acme"),
            ("recent-acme", now, "acme"),
            ("recent-globex", now, "globex"),
        ] {
            tracer
                .span_builder(name)
                .with_start_time(start)
                .with_attributes([KeyValue::new("tenant.id", tenant)])
                .start(&tracer)
                .end();
            telemetry.flush(Duration::from_secs(10))?;
        }
        telemetry.shutdown();
        assert_eq!(telemetry.stats().file_segments_removed, 2);
        let out = tempfile::tempdir()?;
        let (files, report) = Store::open(store.path())?.select(
            now - Duration::from_secs(3600),
            now + Duration::from_secs(3600),
            Some("acme"),
            out.path(),
            &mut |_| {},
        )?;
        assert_eq!(span_names(&files.traces)?, ["recent-acme"]);
        assert_eq!(
            report.segments_scanned, 0,
            "shutdown wrote the last sidecar"
        );
        Ok(())
    }
}
