//! Export throughput of the local store, for `benches/load/bundle-export.sh`.
//!
//! ```text
//! bundle_store generate --dir DIR --format pb|json [--rps 1000] [--seconds 3600]
//! bundle_store export --dir DIR --out FILE [--zstd] [--tenant T]
//! ```
//!
//! `generate` writes a store as the file exporter lays it out (`traces/`, `logs/`,
//! `metrics/`, segments of about 64 MiB): `rps` requests a second for `seconds`, each one
//! server span with eleven attributes and one log record, ten tenants in turn, and every 10 s
//! a gauge and a histogram point per tenant. Times start at 2026-01-01T00:00:00Z.
//!
//! `export` selects the whole window (or one tenant's records in it), packs it and signs it
//! with a fresh key (what `stella-telemetry bundle export` does); it prints the records,
//! segments, bytes and seconds and the process's peak resident memory.

#![allow(missing_docs)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, MetricsData, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

/// 2026-01-01T00:00:00Z in unix nanoseconds.
const START_NS: u64 = 1_767_225_600_000_000_000;

/// Records per message, as the file exporter batches them.
const BATCH: u64 = 512;

/// Bytes per segment before the next one starts.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let dir = PathBuf::from(flag("--dir").ok_or("--dir DIR is required")?);
    match args.first().map(String::as_str) {
        Some("generate") => {
            let json = match flag("--format").as_deref() {
                Some("json") => true,
                Some("pb") | None => false,
                Some(other) => return Err(format!("--format {other}: pb or json").into()),
            };
            let rps: u64 = flag("--rps").map_or(Ok(1000), |v| v.parse())?;
            let seconds: u64 = flag("--seconds").map_or(Ok(3600), |v| v.parse())?;
            generate(&dir, json, rps, seconds)
        }
        Some("export") => {
            let out = PathBuf::from(flag("--out").ok_or("--out FILE is required")?);
            let tenant = flag("--tenant");
            export(
                &dir,
                &out,
                args.iter().any(|a| a == "--zstd"),
                tenant.as_deref(),
            )
        }
        _ => Err("usage: bundle_store generate|export --dir DIR ...".into()),
    }
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            text("service.name", "scanner"),
            text("service.version", "1.4.2"),
        ],
        ..Resource::default()
    })
}

/// One signal's segment writer: rotates at [`SEGMENT_BYTES`].
struct Segments {
    dir: PathBuf,
    signal: &'static str,
    json: bool,
    seq: u64,
    written: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Segments {
    fn new(root: &Path, signal: &'static str, json: bool) -> Result<Segments, Error> {
        let dir = root.join(signal);
        std::fs::create_dir_all(&dir)?;
        Ok(Segments {
            dir,
            signal,
            json,
            seq: 0,
            written: 0,
            file: None,
        })
    }

    fn write<M: Message + serde::Serialize>(&mut self, message: &M) -> Result<(), Error> {
        if self.file.is_none() || self.written >= SEGMENT_BYTES {
            if let Some(mut f) = self.file.take() {
                f.flush()?;
            }
            let ext = if self.json { "jsonl" } else { "binpb" };
            let path = self.dir.join(format!(
                "{}-20260101T000000Z-{:06}.{ext}",
                self.signal, self.seq
            ));
            self.seq += 1;
            self.written = 0;
            self.file = Some(std::io::BufWriter::new(std::fs::File::create(path)?));
        }
        let Some(file) = self.file.as_mut() else {
            return Err("no segment open".into());
        };
        let bytes = if self.json {
            let mut line = serde_json::to_vec(message)?;
            line.push(b'\n');
            line
        } else {
            message.encode_length_delimited_to_vec()
        };
        file.write_all(&bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        Ok(())
    }
}

fn generate(dir: &Path, json: bool, rps: u64, seconds: u64) -> Result<(), Error> {
    let started = Instant::now();
    let mut traces = Segments::new(dir, "traces", json)?;
    let mut logs = Segments::new(dir, "logs", json)?;
    let mut metrics = Segments::new(dir, "metrics", json)?;
    let total = rps * seconds;
    let step = 1_000_000_000 / rps.max(1);
    let mut n = 0;
    while n < total {
        let end = (n + BATCH).min(total);
        let (spans, records): (Vec<Span>, Vec<LogRecord>) =
            (n..end).map(|i| request(i, START_NS + i * step)).unzip();
        traces.write(&TracesData {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        })?;
        logs.write(&LogsData {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        })?;
        n = end;
    }
    for second in (0..seconds).step_by(10) {
        metrics.write(&collection(START_NS + second * 1_000_000_000))?;
    }
    traces.finish()?;
    logs.finish()?;
    metrics.finish()?;
    println!(
        "generated {total} spans and log records, {} metric collections, in {:.1} s",
        seconds.div_ceil(10),
        started.elapsed().as_secs_f64()
    );
    // The file exporter writes a sidecar index as it closes each segment; a store written
    // here has none until a first selection scans it and leaves them behind.
    let indexing = Instant::now();
    let store = stellaops_telemetry_core::bundle::Store::open(dir)?;
    let from = SystemTime::UNIX_EPOCH + Duration::from_nanos(START_NS);
    let scratch = dir.join(".scratch");
    std::fs::create_dir_all(&scratch)?;
    let (_, report) = store.select(
        from,
        from + Duration::from_nanos(1),
        None,
        &scratch,
        &mut |_| {},
    )?;
    std::fs::remove_dir_all(&scratch)?;
    println!(
        "indexed {} segments (as the file exporter would have) in {:.1} s",
        report.segments_scanned,
        indexing.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The span and log record of request `i` at `t` (unix ns).
fn request(i: u64, t: u64) -> (Span, LogRecord) {
    let tenant = format!("tenant-{}", i % 10);
    let request_id = format!("req-{i:012x}");
    let span = Span {
        trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
        span_id: (i + 1).to_be_bytes().to_vec(),
        name: "GET /scans/{id}".into(),
        kind: 2,
        start_time_unix_nano: t,
        end_time_unix_nano: t + 4_000_000,
        attributes: vec![
            text("http.request.method", "GET"),
            text("http.route", "/scans/{id}"),
            int("http.response.status_code", 200),
            text("url.path", format!("/scans/img-{}", i % 5000)),
            text("url.scheme", "http"),
            text("server.address", "scanner.stellaops.svc"),
            int("server.port", 8080),
            text("network.protocol.version", "1.1"),
            text("user_agent.original", "stella-cli/2.1"),
            text("tenant.id", tenant.clone()),
            text("request.id", request_id.clone()),
        ],
        ..Span::default()
    };
    let record = LogRecord {
        time_unix_nano: t + 1_000_000,
        observed_time_unix_nano: t + 1_000_000,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("scan verdict served".into())),
        }),
        attributes: vec![
            text("tenant.id", tenant),
            text("request.id", request_id),
            text("stellaops.retention", "30d"),
        ],
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        ..LogRecord::default()
    };
    (span, record)
}

/// One metric collection at `t`: a gauge and a histogram point per tenant.
fn collection(t: u64) -> MetricsData {
    let tenants = || (0..10).map(|k| vec![text("tenant.id", format!("tenant-{k}"))]);
    let gauge = Metric {
        name: "stellaops_queue_depth".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: tenants()
                .map(|attributes| NumberDataPoint {
                    attributes,
                    time_unix_nano: t,
                    value: Some(number_data_point::Value::AsInt(42)),
                    ..NumberDataPoint::default()
                })
                .collect(),
        })),
        ..Metric::default()
    };
    let histogram = Metric {
        name: "stellaops_request_duration_seconds".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: tenants()
                .map(|attributes| HistogramDataPoint {
                    attributes,
                    time_unix_nano: t,
                    count: 1000,
                    sum: Some(4.0),
                    bucket_counts: vec![0, 900, 90, 10, 0],
                    explicit_bounds: vec![0.001, 0.005, 0.01, 0.05],
                    ..HistogramDataPoint::default()
                })
                .collect(),
            aggregation_temporality: 2,
        })),
        ..Metric::default()
    };
    MetricsData {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge, histogram],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

/// The process's peak resident memory, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn export(dir: &Path, out: &Path, zstd: bool, tenant: Option<&str>) -> Result<(), Error> {
    use stellaops_telemetry_core::Profile;
    use stellaops_telemetry_core::bundle::{Compression, ExportRequest, SigningKey, Store};
    let from = SystemTime::UNIX_EPOCH + Duration::from_nanos(START_NS);
    let to = from + Duration::from_secs(24 * 3600);
    let key = SigningKey::generate()?;
    let profile = Profile::default_profile();
    let request = ExportRequest {
        from,
        to,
        tenant,
        profile: &profile,
        compression: if zstd {
            Compression::Zstd
        } else {
            Compression::None
        },
    };
    let work = out.parent().unwrap_or(Path::new("."));
    let started = Instant::now();
    let store = Store::open(dir)?;
    let report =
        stellaops_telemetry_core::bundle::export(&store, &request, &key, work, out, &mut |_| {})?;
    let elapsed = started.elapsed().as_secs_f64();
    let selection = &report.selection;
    let counts = selection.counts;
    println!(
        "exported {} spans, {} points, {} log records into {} bytes in {elapsed:.2} s ({:.2} s selecting)",
        counts.spans,
        counts.points,
        counts.log_records,
        report.packed.size,
        selection.elapsed.as_secs_f64(),
    );
    println!(
        "segments: {} copied whole, {} decoded and filtered ({} bytes decoded), {} pruned",
        selection.segments_copied,
        selection.segments_read,
        selection.bytes_read,
        selection.segments_pruned,
    );
    println!(
        "throughput {:.0} spans/s, {:.0} MB/s written; peak RSS {} KiB",
        counts.spans as f64 / elapsed,
        report.packed.size as f64 / elapsed / 1e6,
        peak_rss_kib()
    );
    Ok(())
}
