//! `stella-telemetry smoke`: one span, one metric data point and one log record sent to a
//! collector, one OTLP request per signal, each carrying the same smoke id, through the
//! egress policy; reports per signal whether the collector accepted it and how long it took.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};

use super::{FAILURE, Failure, UNREACHABLE, chain};
use crate::controls::MAX_TENANT_LEN;
use crate::export::{Probe, ReplayRequest, ReplayTls};
use crate::{Replay, ReplayError, ReplayProtocol};

/// The attribute every record of a smoke test carries: the test's id (its trace id, in hex).
pub(super) const SMOKE_ID_ATTRIBUTE: &str = "stellaops.smoke.id";

/// The `service.name` of the records a smoke test sends.
const SERVICE_NAME: &str = "stella-telemetry-smoke";

/// The name of the smoke test's span, its metric and its log record's scope.
const SMOKE_NAME: &str = "stellaops.smoke";

/// The largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// `stella-telemetry smoke`.
#[derive(Debug, Args)]
pub(super) struct SmokeArgs {
    /// The collector's base URL (http://127.0.0.1:4318 for OTLP/HTTP, :4317 for gRPC).
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// The OTLP transport.
    #[arg(long, value_enum, default_value_t = SmokeProtocol::HttpProtobuf)]
    protocol: SmokeProtocol,
    /// The tenant recorded on every record (tenant.id).
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// The CA certificate (PEM) that verifies an https endpoint, instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The bound of each request, in seconds (connection set-up included).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

/// The OTLP transports a smoke test can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SmokeProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[value(name = "http/protobuf", alias = "http")]
    HttpProtobuf,
}

impl SmokeProtocol {
    fn as_str(self) -> &'static str {
        match self {
            SmokeProtocol::Grpc => "grpc",
            SmokeProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Runs `smoke`: checks the endpoint against the egress policy, sends the three requests and
/// prints one line per signal.
pub(super) fn run(args: SmokeArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let tenant = args.tenant.as_deref().map(checked_tenant).transpose()?;
    let tls = tls_material(&args)?;
    let policy = super::bundle::replay_policy()?;
    let protocol = match args.protocol {
        SmokeProtocol::Grpc => ReplayProtocol::Grpc,
        SmokeProtocol::HttpProtobuf => ReplayProtocol::HttpProtobuf,
    };
    let replay = Replay::new(&args.endpoint, protocol, policy).map_err(refused)?;
    let endpoint = crate::egress::mask_url(args.endpoint.trim().trim_end_matches('/'));
    let header = tenant
        .as_deref()
        .and_then(crate::export::tenant_header_value);
    let replay = replay
        .timeout(Duration::from_secs(args.timeout))
        .tls(tls)
        .tenant(header);

    let trace_id = RandomIdGenerator::default().new_trace_id();
    let smoke_id = trace_id.to_string();
    let records = Records::new(trace_id, &smoke_id, tenant);
    let probes = replay.probe(records.into_requests());
    print_probes(&smoke_id, &endpoint, args.protocol, &probes, out)
        .map_err(|e| Failure::from(format!("cannot write the output: {e}")))?;
    verdict(&endpoint, &probes)
}

/// The tenant as given, when it is a valid tenant id.
fn checked_tenant(tenant: &str) -> Result<String, Failure> {
    let valid = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant.bytes().all(crate::controls::tenant_byte);
    if valid {
        Ok(tenant.to_owned())
    } else {
        let shown: String = tenant.chars().take(MAX_TENANT_LEN).collect();
        Err(Failure::from(format!(
            "invalid tenant `{}`: 1 to {MAX_TENANT_LEN} of A-Z a-z 0-9 . _ - @ :",
            shown.escape_debug()
        )))
    }
}

/// The certificate files read; they are for an https endpoint only.
fn tls_material(args: &SmokeArgs) -> Result<ReplayTls, Failure> {
    if args.ca.is_none() && args.cert.is_none() {
        return Ok(ReplayTls::default());
    }
    let https = args
        .endpoint
        .trim()
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    if !https {
        return Err(Failure::from(format!(
            "--ca, --cert and --key need an https endpoint, not {}",
            crate::egress::mask_url(args.endpoint.trim())
        )));
    }
    let ca = args
        .ca
        .as_deref()
        .map(|p| read_pem(p, "CA certificate"))
        .transpose()?;
    let client = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some((
            read_pem(cert, "client certificate")?,
            read_pem(key, "client key")?,
        )),
        // clap requires both or neither.
        _ => None,
    };
    Ok(ReplayTls { ca, client })
}

/// Reads a PEM file of at most 1 MiB.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let cannot =
        |e: io::Error| Failure::from(format!("cannot read the {what} {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(Failure::from(format!(
            "the {what} {} is over 1 MiB: not a PEM file",
            path.display()
        )));
    }
    Ok(bytes)
}

/// An egress refusal or a malformed endpoint, said as the smoke test's.
fn refused(err: ReplayError) -> Failure {
    let message = match err {
        ReplayError::Refused {
            endpoint,
            policy,
            reason,
        } => format!(
            "smoke test to {endpoint} refused by the egress policy ({policy}): {reason}; nothing was sent"
        ),
        other => chain(&other),
    };
    Failure {
        code: FAILURE,
        message,
    }
}

/// The span, the data point and the log record of one smoke test.
struct Records {
    trace_id: TraceId,
    span_id: SpanId,
    now: u64,
    attributes: Vec<KeyValue>,
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

impl Records {
    fn new(trace_id: TraceId, smoke_id: &str, tenant: Option<String>) -> Records {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut attributes = vec![text(SMOKE_ID_ATTRIBUTE, smoke_id)];
        if let Some(tenant) = tenant {
            attributes.push(text("tenant.id", &tenant));
        }
        Records {
            trace_id,
            span_id: RandomIdGenerator::default().new_span_id(),
            now,
            attributes,
        }
    }

    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: vec![text("service.name", SERVICE_NAME)],
            ..Default::default()
        })
    }

    fn scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: SMOKE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
    }

    fn span(&self) -> Span {
        Span {
            trace_id: self.trace_id.to_bytes().to_vec(),
            span_id: self.span_id.to_bytes().to_vec(),
            flags: 0x01,
            name: SMOKE_NAME.to_owned(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: self.now,
            end_time_unix_nano: self.now,
            attributes: self.attributes.clone(),
            ..Default::default()
        }
    }

    fn point(&self) -> Metric {
        Metric {
            name: SMOKE_NAME.to_owned(),
            description: "A smoke test's data point".to_owned(),
            unit: "1".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: self.attributes.clone(),
                    time_unix_nano: self.now,
                    value: Some(number_data_point::Value::AsInt(1)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }
    }

    fn log_record(&self) -> LogRecord {
        LogRecord {
            time_unix_nano: self.now,
            observed_time_unix_nano: self.now,
            severity_number: SeverityNumber::Info as i32,
            severity_text: "INFO".to_owned(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(
                    "stella-telemetry smoke test".to_owned(),
                )),
            }),
            attributes: self.attributes.clone(),
            trace_id: self.trace_id.to_bytes().to_vec(),
            span_id: self.span_id.to_bytes().to_vec(),
            flags: 0x01,
            ..Default::default()
        }
    }

    /// One request per signal: traces, metrics, logs.
    fn into_requests(self) -> Vec<ReplayRequest> {
        vec![
            ReplayRequest::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Self::resource(),
                    scope_spans: vec![ScopeSpans {
                        scope: Self::scope(),
                        spans: vec![self.span()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
            ReplayRequest::Metrics(ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: Self::resource(),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Self::scope(),
                        metrics: vec![self.point()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
            ReplayRequest::Logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Self::resource(),
                    scope_logs: vec![ScopeLogs {
                        scope: Self::scope(),
                        log_records: vec![self.log_record()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
        ]
    }
}

/// The most characters of the collector's own text (messages, errors) printed, escapes
/// included.
const MAX_SHOWN_CHARS: usize = 512;

/// Text from the collector or the network as it is safe to print: control characters and
/// the invisible format characters that reorder or hide text (bidirectional overrides, zero
/// width characters, line and paragraph separators) escaped, so no terminal escape sequence,
/// forged line or disguised text reaches the output; at most [`MAX_SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS));
    let mut len = 0;
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}');
        let piece: String = if hidden {
            c.escape_unicode().collect()
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if len + width > MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        len += width;
    }
    out
}

/// What one signal's request came to: `None` when the collector took the record.
fn problem(probe: &Probe) -> Option<String> {
    match &probe.result {
        Ok(answer) if answer.rejected > 0 => Some(format!(
            "the collector rejected it (partial success, {} rejected{})",
            answer.rejected,
            if answer.message.is_empty() {
                String::new()
            } else {
                format!(": {}", shown(&answer.message))
            }
        )),
        Ok(_) => None,
        Err(reason) => Some(shown(reason)),
    }
}

fn print_probes(
    smoke_id: &str,
    endpoint: &str,
    protocol: SmokeProtocol,
    probes: &[Probe],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "smoke {SMOKE_ID_ATTRIBUTE}={smoke_id} to {endpoint} over {}",
        protocol.as_str()
    )?;
    for probe in probes {
        let record = match probe.signal {
            "traces" => "1 span",
            "metrics" => "1 data point",
            _ => "1 log record",
        };
        let millis = probe.elapsed.as_secs_f64() * 1000.0;
        match problem(probe) {
            None => {
                write!(
                    out,
                    "{:<8} accepted  {record:<12}  {millis:>8.1} ms",
                    probe.signal
                )?;
                // A warning the collector sent with a full success.
                match &probe.result {
                    Ok(answer) if !answer.message.is_empty() => {
                        writeln!(out, "  ({})", shown(&answer.message))?;
                    }
                    _ => writeln!(out)?,
                }
            }
            Some(reason) => writeln!(
                out,
                "{:<8} FAILED    {record:<12}  {millis:>8.1} ms  {reason}",
                probe.signal
            )?,
        }
    }
    Ok(())
}

/// Success when every signal was accepted; otherwise the failures, with exit status 3 when
/// the endpoint could not be reached at all.
fn verdict(endpoint: &str, probes: &[Probe]) -> Result<(), Failure> {
    let failures: Vec<(&str, String)> = probes
        .iter()
        .filter_map(|p| problem(p).map(|reason| (p.signal, reason)))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    let unreachable = probes.iter().all(|p| match &p.result {
        Err(reason) => {
            !reason.starts_with("HTTP ")
                && (!reason.starts_with("gRPC ") || reason.starts_with("gRPC Unavailable"))
        }
        Ok(_) => false,
    });
    let details: Vec<String> = failures
        .iter()
        .map(|(signal, reason)| format!("{signal}: {reason}"))
        .collect();
    Err(Failure {
        code: if unreachable { UNREACHABLE } else { FAILURE },
        message: format!(
            "smoke test to {endpoint} failed for {} of 3 signals: {}",
            failures.len(),
            details.join("; ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_text_is_shown_escaped_and_bounded() {
        assert_eq!(shown("span too old"), "span too old");
        assert_eq!(shown("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\u{a}c");
        // A right-to-left override and a line separator cannot disguise or split the line.
        assert_eq!(shown("x\u{202E}y\u{2028}z"), "x\\u{202e}y\\u{2028}z");
        let long = shown(&"é".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(long.ends_with('…'));
        // The bound counts the escapes too.
        let escaped = shown(&"\u{1b}".repeat(10_000));
        assert!(
            escaped.chars().count() <= MAX_SHOWN_CHARS + 1,
            "{}",
            escaped.len()
        );
        assert!(escaped.starts_with("\\u{1b}\\u{1b}"));
    }
}
