//! `stella-telemetry keygen` and `bundle export|verify|inspect|replay` through the library
//! entry point, over a store a real pipeline wrote: one tenant's window exported, verified,
//! inspected, tampered with, replayed to an in-process OTLP receiver; bad input refused with
//! nothing written; and the same window exported 100 times gives the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use stellaops_telemetry_core::bundle::{self, Compression, ExportRequest, SigningKey, Store};
use stellaops_telemetry_core::cli::{self, FAILURE, SUCCESS, UNREACHABLE, USAGE};
use stellaops_telemetry_core::{ExporterKind, Profile, Telemetry};

const BIN: &str = env!("CARGO_BIN_EXE_stella-telemetry");

/// Spans (each with one log event inside) per tenant.
const ACME: usize = 7;
const GLOBEX: usize = 4;

fn run(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut all = vec!["stella-telemetry"];
    all.extend_from_slice(args);
    let code = cli::run(all, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339(t).to_string()
}

/// A telemetry directory written by a real pipeline (file exporters), and a window that
/// holds everything it wrote.
struct Store2 {
    dir: tempfile::TempDir,
    from: SystemTime,
    to: SystemTime,
}

impl Store2 {
    fn new() -> Store2 {
        let dir = tempfile::tempdir().unwrap();
        let from = SystemTime::now() - Duration::from_secs(1);
        let telemetry = Telemetry::builder("bundle-cli")
            .exporters(&[ExporterKind::File])
            .dir(dir.path())
            .stdout_logs(false)
            .build()
            .unwrap();
        tracing::dispatcher::with_default(telemetry.dispatch(), || {
            for (tenant, n) in [("acme", ACME), ("globex", GLOBEX)] {
                for i in 0..n {
                    let span = tracing::info_span!("scan.image", tenant.id = tenant, index = i);
                    let _entered = span.enter();
                    tracing::info!(index = i, "scanned for {tenant}");
                }
            }
        });
        let orders = telemetry
            .meter("bundle-cli")
            .u64_counter("orders_total")
            .build();
        for tenant in ["acme", "globex"] {
            orders.add(1, &[opentelemetry::KeyValue::new("tenant.id", tenant)]);
        }
        telemetry.shutdown();
        let to = SystemTime::now() + Duration::from_secs(1);
        Store2 { dir, from, to }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A key pair made with `keygen` in `dir`: (private, public).
fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("signing.pem");
    let (code, out, err) = run(&["keygen", "--out", s(&key)]);
    assert_eq!((code, err.as_str()), (SUCCESS, ""), "{out}");
    let public = dir.join("signing.pem.pub");
    let id = SigningKey::from_pem_file(&key).unwrap().key_id();
    assert!(out.contains(&id), "{out}");
    (key, public)
}

fn export_args<'a>(
    store: &'a Store2,
    from: &'a str,
    to: &'a str,
    key: &'a Path,
    out: &'a Path,
) -> Vec<&'a str> {
    vec![
        "bundle",
        "export",
        "--dir",
        s(store.path()),
        "--from",
        from,
        "--to",
        to,
        "--tenant",
        "acme",
        "--key",
        s(key),
        "--out",
        s(out),
    ]
}

/// The metric data points of everything the receiver got.
fn points(receiver: &support::OtlpReceiver) -> u64 {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    receiver
        .metrics()
        .iter()
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

#[test]
fn keygen_export_verify_inspect_tamper_and_replay() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let (from, to) = (rfc3339(store.from), rfc3339(store.to));

    // Export acme's records, plain and compressed.
    let plain = work.path().join("acme.tar");
    let (code, out, err) = run(&export_args(&store, &from, &to, &key, &plain));
    assert_eq!((code, err.as_str()), (SUCCESS, ""), "{out}");
    assert!(out.contains("tenant `acme`"), "{out}");
    assert!(
        out.contains(&format!("{ACME} spans")) && out.contains(&format!("{ACME} log records")),
        "{out}"
    );
    let id = SigningKey::from_pem_file(&key).unwrap().key_id();
    assert!(out.contains(&format!("key id    {id}")), "{out}");
    let sha = bundle::verify(
        &plain,
        &SigningKey::from_pem_file(&key).unwrap().public_key(),
    )
    .unwrap()
    .archive_sha256;
    assert!(out.contains(&sha), "{out}");
    let zst = work.path().join("acme.tar.zst");
    let mut args = export_args(&store, &from, &to, &key, &zst);
    args.push("--zstd");
    assert_eq!(run(&args).0, SUCCESS);

    // Verify: one line naming the key and the counts.
    for file in [&plain, &zst] {
        let (code, out, err) = run(&["bundle", "verify", "--pub", s(&public), s(file)]);
        assert_eq!((code, err.as_str()), (SUCCESS, ""));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("OK ") && out.contains(&id), "{out}");
        assert!(out.contains(&format!("{ACME} spans")), "{out}");
    }

    // Inspect: text, and JSON that parses.
    let (code, text, _) = run(&["bundle", "inspect", s(&zst)]);
    assert_eq!(code, SUCCESS);
    assert!(
        text.contains("not verified") && text.contains("acme"),
        "{text}"
    );
    let (code, json, _) = run(&["bundle", "inspect", "--json", s(&plain)]);
    assert_eq!(code, SUCCESS);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["counts"]["traces"], ACME as u64);
    assert_eq!(json["records"]["logs"], ACME as u64);
    assert_eq!(json["signed_by"][0], id.as_str());

    tampered_bundles_do_not_verify(&plain, &public, work.path());
    replay_delivers_exactly_the_exported_records(&plain, &zst, &public);
}

fn tampered_bundles_do_not_verify(plain: &Path, public: &Path, work: &Path) {
    let bytes = std::fs::read(plain).unwrap();
    // One byte changed inside the first span's name.
    let at = bytes
        .windows(b"scan.image".len())
        .position(|w| w == b"scan.image")
        .unwrap();
    let mut changed = bytes.clone();
    changed[at] ^= 0x20;
    let tampered = work.join("tampered.tar");
    std::fs::write(&tampered, &changed).unwrap();
    let (code, out, err) = run(&["bundle", "verify", "--pub", s(public), s(&tampered)]);
    assert_eq!((code, out.as_str()), (FAILURE, ""));
    assert!(err.contains("verification failed"), "{err}");
    assert!(err.contains("otlp/traces.pb"), "{err}");

    // A bundle whose manifest says a newer format (same length: headers stay valid).
    let manifest = bytes
        .windows(b"\"format_version\":2".len())
        .position(|w| w == b"\"format_version\":2")
        .unwrap();
    let mut newer = bytes.clone();
    newer[manifest + b"\"format_version\":".len()] = b'3';
    let newer_path = work.join("newer.tar");
    std::fs::write(&newer_path, &newer).unwrap();
    let (code, _, err) = run(&["bundle", "verify", "--pub", s(public), s(&newer_path)]);
    assert_eq!(code, FAILURE);
    assert!(err.contains("unsupported bundle format version 3"), "{err}");
    let (code, _, err) = run(&["bundle", "inspect", s(&newer_path)]);
    assert_eq!(code, FAILURE);
    assert!(err.contains("format version 3"), "{err}");

    // Not an archive at all.
    let junk = work.join("junk.tar");
    std::fs::write(&junk, b"hello, not a bundle").unwrap();
    let (code, _, err) = run(&["bundle", "verify", "--pub", s(public), s(&junk)]);
    assert_eq!(code, FAILURE);
    assert!(
        err.contains("junk.tar") && err.contains("not a bundle archive"),
        "{err}"
    );
}

fn replay_delivers_exactly_the_exported_records(plain: &Path, zst: &Path, public: &Path) {
    let manifest = bundle::inspect(plain).unwrap().counts;
    for (file, protocol) in [(plain, "http"), (zst, "http"), (zst, "grpc")] {
        let receiver = if protocol == "grpc" {
            support::OtlpReceiver::grpc_blocking().unwrap()
        } else {
            support::OtlpReceiver::http_blocking().unwrap()
        };
        let endpoint = receiver.endpoint();
        let (code, out, err) = run(&[
            "bundle",
            "replay",
            "--endpoint",
            &endpoint,
            "--protocol",
            protocol,
            "--pub",
            s(public),
            s(file),
        ]);
        assert_eq!((code, err.as_str()), (SUCCESS, ""), "{out}");
        assert!(
            out.contains(&format!(
                "replayed {} spans, {} metric points, {} log records",
                manifest.spans, manifest.points, manifest.log_records
            )),
            "{out}"
        );
        assert_eq!(receiver.span_count() as u64, manifest.spans);
        assert_eq!(receiver.log_record_count() as u64, manifest.log_records);
        assert_eq!(points(&receiver), manifest.points);
        assert!(receiver.spans().iter().all(|span| {
            span.attributes
                .iter()
                .any(|kv| kv.key == "tenant.id" && format!("{:?}", kv.value).contains("acme"))
        }));
    }
    assert_eq!(manifest.spans, ACME as u64);
    assert_eq!(manifest.log_records, ACME as u64);
    assert!(manifest.points >= 1, "{manifest:?}");
}

#[test]
fn a_tampered_bundle_is_not_replayed_and_a_closed_port_is_unreachable() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let file = work.path().join("b.tar");
    let (from, to) = (rfc3339(store.from), rfc3339(store.to));
    assert_eq!(
        run(&export_args(&store, &from, &to, &key, &file)).0,
        SUCCESS
    );

    let receiver = support::OtlpReceiver::http_blocking().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] = 1; // inside the end-of-archive marker
    let tampered = work.path().join("tampered.tar");
    std::fs::write(&tampered, &bytes).unwrap();
    let endpoint = receiver.endpoint();
    let replay = |file: &Path, endpoint: &str| {
        run(&[
            "bundle",
            "replay",
            "--endpoint",
            endpoint,
            "--pub",
            s(&public),
            s(file),
        ])
    };
    let (code, out, err) = replay(&tampered, &endpoint);
    assert_eq!((code, out.as_str()), (FAILURE, ""));
    assert!(err.contains("verification failed"), "{err}");
    assert_eq!(receiver.requests(), 0);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (code, _, err) = replay(&file, &format!("http://{closed}"));
    assert_eq!(code, UNREACHABLE, "{err}");
    let (code, _, err) = run(&[
        "bundle",
        "replay",
        "--endpoint",
        &format!("http://{closed}"),
        "--protocol",
        "grpc",
        "--pub",
        s(&public),
        s(&file),
    ]);
    assert_eq!(code, UNREACHABLE, "{err}");
}

#[test]
fn bad_windows_keys_and_command_lines_are_refused_and_nothing_is_written() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let out = work.path().join("never.tar");
    let (from, to) = (rfc3339(store.from), rfc3339(store.to));

    let refused = |args: Vec<&str>, code: u8, needle: &str| {
        let (got, stdout, err) = run(&args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };

    // The window reversed, empty, or longer than the profile's retention.
    refused(
        export_args(&store, &to, &from, &key, &out),
        FAILURE,
        "the window is empty",
    );
    refused(
        export_args(&store, &from, &from, &key, &out),
        FAILURE,
        "the window is empty",
    );
    let mut long = export_args(&store, "31days", &to, &key, &out);
    long.retain(|a| *a != "--to" && *a != to.as_str());
    refused(long, FAILURE, "retention of 30 days");
    let mut forensic = export_args(&store, "181days", &to, &key, &out);
    forensic.extend(["--profile", "forensic"]);
    refused(forensic, FAILURE, "retention of 180 days");

    // Keys: missing, unreadable as a private key (a public key given instead).
    let missing = work.path().join("no-such-key.pem");
    refused(
        export_args(&store, &from, &to, &missing, &out),
        FAILURE,
        "no-such-key.pem",
    );
    refused(
        export_args(&store, &from, &to, &public, &out),
        FAILURE,
        "signing.pem.pub",
    );
    refused(
        vec!["bundle", "verify", "--pub", s(&missing), s(&out)],
        FAILURE,
        "no-such-key.pem",
    );
    refused(
        vec!["bundle", "verify", "--pub", s(&key), s(&out)],
        FAILURE,
        "PUBLIC KEY",
    );

    // A missing store, and malformed command lines (exit 2).
    let mut no_store = export_args(&store, &from, &to, &key, &out);
    no_store[3] = "/no/such/telemetry-data";
    refused(no_store, FAILURE, "/no/such/telemetry-data");
    refused(
        export_args(&store, "yesterday", &to, &key, &out),
        USAGE,
        "RFC 3339",
    );
    refused(
        export_args(&store, &from, "tomorrow", &key, &out),
        USAGE,
        "RFC 3339",
    );
    refused(
        vec![
            "bundle",
            "replay",
            "--endpoint",
            "http://127.0.0.1:1",
            "--protocol",
            "udp",
            "--pub",
            s(&public),
            s(&out),
        ],
        USAGE,
        "udp",
    );
    refused(vec!["bundle", "verify", s(&out)], USAGE, "--pub");
}

#[test]
fn export_and_keygen_refuse_to_overwrite_without_force() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let before = (
        std::fs::read(&key).unwrap(),
        std::fs::read(&public).unwrap(),
    );
    let (code, _, err) = run(&["keygen", "--out", s(&key)]);
    assert_eq!(code, FAILURE);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        (
            std::fs::read(&key).unwrap(),
            std::fs::read(&public).unwrap()
        ),
        before
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, _) = run(&["keygen", "--out", s(&key), "--force"]);
    assert_eq!(code, SUCCESS);
    assert_ne!(std::fs::read(&key).unwrap(), before.0);
    assert!(
        bundle::VerifyingKey::from_pem_file(&public).unwrap()
            == SigningKey::from_pem_file(&key).unwrap().public_key()
    );

    let file = work.path().join("b.tar");
    let (from, to) = (rfc3339(store.from), rfc3339(store.to));
    assert_eq!(
        run(&export_args(&store, &from, &to, &key, &file)).0,
        SUCCESS
    );
    let (code, _, err) = run(&export_args(&store, &from, &to, &key, &file));
    assert_eq!(code, FAILURE);
    assert!(err.contains("already exists"), "{err}");
    let mut force = export_args(&store, &from, &to, &key, &file);
    force.push("--force");
    assert_eq!(run(&force).0, SUCCESS);

    // A duration back from now, --to left out.
    let recent = work.path().join("recent.tar");
    let mut args = export_args(&store, "1h", &to, &key, &recent);
    args.retain(|a| *a != "--to" && *a != to.as_str());
    let (code, out, err) = run(&args);
    assert_eq!((code, err.as_str()), (SUCCESS, ""));
    assert!(out.contains(&format!("{ACME} spans")), "{out}");
}

#[test]
fn a_sealed_replay_refuses_a_remote_endpoint_before_dialling() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keygen(work.path());
    let file = work.path().join("b.tar.zst");
    let (from, to) = (rfc3339(store.from), rfc3339(store.to));
    let mut args = export_args(&store, &from, &to, &key, &file);
    args.push("--zstd");
    assert_eq!(run(&args).0, SUCCESS);

    let replay = |sealed: &str| {
        Command::new(BIN)
            .args([
                "bundle",
                "replay",
                "--endpoint",
                "http://192.0.2.10:4318",
                "--pub",
            ])
            .arg(&public)
            .arg(&file)
            .env("STELLAOPS_TELEMETRY_SEALED", sealed)
            .output()
            .unwrap()
    };
    let sealed = replay(" TRUE ");
    let err = String::from_utf8(sealed.stderr).unwrap();
    assert_eq!(sealed.status.code(), Some(i32::from(FAILURE)), "{err}");
    assert!(err.contains("refused by the egress policy"), "{err}");
    assert!(sealed.stdout.is_empty());

    let bad = replay("yes");
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(bad.status.code(), Some(i32::from(FAILURE)), "{err}");
    assert!(err.contains("STELLAOPS_TELEMETRY_SEALED"), "{err}");
}

#[test]
fn a_hundred_exports_of_the_same_window_are_byte_identical() {
    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let profile = Profile::default_profile();
    let opened = Store::open(store.path()).unwrap();
    // The first archive of each compression; every later one must equal it.
    let mut firsts: [Option<Vec<u8>>; 2] = [None, None];
    for i in 0..100 {
        let compression = [Compression::Zstd, Compression::None][i % 2];
        let request = ExportRequest {
            from: store.from,
            to: store.to,
            tenant: Some("acme"),
            profile: &profile,
            compression,
        };
        let out = work.path().join(format!("b{}", i % 2));
        let report =
            bundle::export(&opened, &request, &key, work.path(), &out, &mut |_| {}).unwrap();
        assert_eq!(report.packed.manifest.counts.spans, ACME as u64);
        let bytes = std::fs::read(&out).unwrap();
        match &firsts[i % 2] {
            None => firsts[i % 2] = Some(bytes),
            Some(first) => assert!(bytes == *first, "export {i} differs"),
        }
    }
}

#[test]
fn otlp_readers_stream_each_member_and_catch_an_archive_replaced_after_verification() {
    use std::io::Read;
    use stellaops_telemetry_core::bundle::OtlpSignal;

    let store = Store2::new();
    let work = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let profile = Profile::default_profile();
    let opened = Store::open(store.path()).unwrap();
    let export = |tenant, out: &Path| {
        let request = ExportRequest {
            from: store.from,
            to: store.to,
            tenant: Some(tenant),
            profile: &profile,
            compression: Compression::Zstd,
        };
        bundle::export(&opened, &request, &key, work.path(), out, &mut |_| {}).unwrap()
    };
    let file = work.path().join("b.tar.zst");
    export("acme", &file);
    let verified = bundle::verify(&file, &key.public_key()).unwrap();
    for signal in OtlpSignal::ALL {
        let mut bytes = Vec::new();
        verified
            .otlp_reader(&file, signal)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let entry = verified.manifest.file(signal.member_path()).unwrap();
        assert_eq!(bytes.len() as u64, entry.size, "{signal:?}");
    }

    // Another tenant's bundle in its place: the old verification does not vouch for it.
    export("globex", &file);
    let mut reader = verified.otlp_reader(&file, OtlpSignal::Traces).unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("otlp/traces.pb"), "{err}");
}

/// `stella-telemetry smoke`: one span, one data point and one log record with one smoke id,
/// one request per signal, accepted or not; a closed port, a partial success and a sealed
/// pipeline's remote endpoint are failures with a clear message.
mod smoke {
    use std::process::Command;

    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    use super::{BIN, run, support};
    use stellaops_telemetry_core::cli::{FAILURE, SUCCESS, UNREACHABLE};

    fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .and_then(|v| match v {
                any_value::Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
    }

    /// The smoke id printed on the first line.
    fn smoke_id(out: &str) -> String {
        let first = out.lines().next().unwrap();
        let id = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix("stellaops.smoke.id="))
            .unwrap_or_else(|| panic!("no smoke id in {out}"));
        assert_eq!(id.len(), 32, "{out}");
        id.to_owned()
    }

    /// The receiver got exactly one span, one data point and one log record, each with the
    /// smoke id and the tenant, in one request per signal.
    fn assert_one_of_each(receiver: &support::OtlpReceiver, id: &str, tenant: &str) {
        // Every request names the tenant in its header too, as the SDK's exporters do.
        let requests = receiver.received_requests();
        assert_eq!(requests.len(), 3);
        for request in &requests {
            assert_eq!(
                request.header("x-stellaops-tenant"),
                Some(tenant),
                "{:?}",
                request.signal
            );
        }
        assert_eq!(receiver.trace_requests().len(), 1);
        assert_eq!(receiver.metrics_requests().len(), 1);
        assert_eq!(receiver.logs_requests().len(), 1);
        let spans = receiver.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            attr(&spans[0].attributes, "stellaops.smoke.id").as_deref(),
            Some(id)
        );
        assert_eq!(
            attr(&spans[0].attributes, "tenant.id").as_deref(),
            Some(tenant)
        );
        let metrics = receiver.metrics();
        assert_eq!(metrics.len(), 1);
        let Some(Data::Gauge(gauge)) = &metrics[0].data else {
            panic!("not a gauge: {:?}", metrics[0]);
        };
        assert_eq!(gauge.data_points.len(), 1);
        let point = &gauge.data_points[0];
        assert_eq!(
            attr(&point.attributes, "stellaops.smoke.id").as_deref(),
            Some(id)
        );
        assert_eq!(
            attr(&point.attributes, "tenant.id").as_deref(),
            Some(tenant)
        );
        let logs = receiver.log_records();
        assert_eq!(logs.len(), 1);
        assert_eq!(
            attr(&logs[0].attributes, "stellaops.smoke.id").as_deref(),
            Some(id)
        );
        assert_eq!(
            attr(&logs[0].attributes, "tenant.id").as_deref(),
            Some(tenant)
        );
        // The log record belongs to the span: the smoke id is the trace id.
        assert_eq!(logs[0].trace_id, spans[0].trace_id);
    }

    #[test]
    fn smoke_passes_over_grpc_and_http_with_one_record_of_each_signal() {
        for protocol in ["grpc", "http/protobuf"] {
            let receiver = if protocol == "grpc" {
                support::OtlpReceiver::grpc_blocking().unwrap()
            } else {
                support::OtlpReceiver::http_blocking().unwrap()
            };
            let endpoint = receiver.endpoint();
            let (code, out, err) = run(&[
                "smoke",
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--tenant",
                "acme",
            ]);
            assert_eq!(code, SUCCESS, "{protocol}: {out}{err}");
            assert_eq!(err, "");
            assert_eq!(out.matches(" accepted ").count(), 3, "{out}");
            assert!(out.contains(&endpoint), "{out}");
            assert!(out.contains(protocol), "{out}");
            let id = smoke_id(&out);
            assert_eq!(id, smoke_id(&out));
            assert_one_of_each(&receiver, &id, "acme");
            receiver.shutdown_blocking();
        }
    }

    #[test]
    fn smoke_passes_over_mutual_tls_with_the_certificate_options() {
        let pki = support::TestPki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = pki.write_to(dir.path()).unwrap();
        let receiver = support::OtlpReceiver::http_tls_blocking(&pki, true).unwrap();
        let (code, out, err) = run(&[
            "smoke",
            "--endpoint",
            &receiver.endpoint(),
            "--tenant",
            "acme",
            "--ca",
            super::s(&paths.ca),
            "--cert",
            super::s(&paths.client_cert),
            "--key",
            super::s(&paths.client_key),
        ]);
        assert_eq!(code, SUCCESS, "{out}{err}");
        assert_one_of_each(&receiver, &smoke_id(&out), "acme");
        assert!(receiver.client_cert_connections() >= 1);

        // Without the client certificate the receiver refuses the connection.
        let (code, out, err) = run(&[
            "smoke",
            "--endpoint",
            &receiver.endpoint(),
            "--ca",
            super::s(&paths.ca),
        ]);
        assert_ne!(code, SUCCESS, "{out}{err}");
        assert_eq!(out.matches(" FAILED ").count(), 3, "{out}");

        // Certificates for a plain http endpoint are a mistake, said before anything is sent.
        let (code, out, err) = run(&[
            "smoke",
            "--endpoint",
            "http://127.0.0.1:4318",
            "--ca",
            super::s(&paths.ca),
        ]);
        assert_eq!((code, out.as_str()), (FAILURE, ""));
        assert!(err.contains("need an https endpoint"), "{err}");
        receiver.shutdown_blocking();
    }

    #[test]
    fn smoke_against_a_closed_port_fails_naming_the_endpoint() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let endpoint = format!("http://{closed}");
        for protocol in ["http/protobuf", "grpc"] {
            let (code, out, err) = run(&[
                "smoke",
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--timeout",
                "5",
            ]);
            assert_eq!(code, UNREACHABLE, "{protocol}: {out}{err}");
            assert_eq!(out.matches(" FAILED ").count(), 3, "{out}");
            assert!(err.starts_with("error: smoke test to "), "{err}");
            assert!(err.contains(&endpoint), "{err}");
            assert!(err.contains("failed for 3 of 3 signals"), "{err}");
            assert!(
                err.to_ascii_lowercase().contains("connection refused"),
                "{protocol}: {err}"
            );
        }
    }

    /// An OTLP/HTTP collector that takes metrics and logs but rejects the span (partial
    /// success).
    fn partially_rejecting_collector() -> (String, tokio::runtime::Runtime) {
        use axum::http::header;
        use axum::routing::post;
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        use prost::Message as _;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        const PROTOBUF: [(header::HeaderName, &str); 1] =
            [(header::CONTENT_TYPE, "application/x-protobuf")];
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                post(|| async {
                    let answer = ExportTraceServiceResponse {
                        partial_success: Some(ExportTracePartialSuccess {
                            rejected_spans: 1,
                            // A terminal escape and a forged line: printed escaped.
                            error_message: "span too old\u{1b}[2J\nlogs     accepted".to_owned(),
                        }),
                    };
                    (PROTOBUF, answer.encode_to_vec())
                }),
            )
            // A success whose body is not OTLP (a proxy's page): accepted all the same.
            .route(
                "/v1/metrics",
                post(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        "<html>ok</html>".as_bytes().to_vec(),
                    )
                }),
            )
            .route("/v1/logs", post(|| async { (PROTOBUF, Vec::new()) }));
        runtime.spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), runtime)
    }

    #[test]
    fn a_partial_success_rejection_is_a_failure() {
        let (endpoint, _runtime) = partially_rejecting_collector();
        let (code, out, err) = run(&["smoke", "--endpoint", &endpoint]);
        assert_eq!(code, FAILURE, "{out}{err}");
        let traces = out.lines().find(|l| l.starts_with("traces")).unwrap();
        assert!(traces.contains("FAILED"), "{out}");
        assert!(
            traces.contains("partial success, 1 rejected: span too old\\u{1b}[2J\\u{a}logs"),
            "{out}"
        );
        assert!(
            !out.contains('\u{1b}') && !err.contains('\u{1b}'),
            "{out}{err}"
        );
        assert_eq!(out.lines().count(), 4, "{out}");
        assert_eq!(out.matches(" accepted ").count(), 2, "{out}");
        let metrics = out.lines().find(|l| l.starts_with("metrics")).unwrap();
        assert!(
            metrics.contains("accepted") && metrics.contains("not an OTLP response"),
            "{out}"
        );
        assert!(err.contains("failed for 1 of 3 signals"), "{err}");
        assert!(err.contains("traces: the collector rejected it"), "{err}");
    }

    #[test]
    fn a_sealed_smoke_refuses_a_remote_endpoint_before_dialling() {
        let sealed = Command::new(BIN)
            .args([
                "smoke",
                "--endpoint",
                "http://192.0.2.10:4318",
                "--protocol",
            ])
            .arg("grpc")
            .env("STELLAOPS_TELEMETRY_SEALED", "true")
            .output()
            .unwrap();
        let err = String::from_utf8(sealed.stderr).unwrap();
        assert_eq!(sealed.status.code(), Some(i32::from(FAILURE)), "{err}");
        assert!(
            err.contains("smoke test to http://192.0.2.10:4318 refused by the egress policy"),
            "{err}"
        );
        assert!(err.contains("nothing was sent"), "{err}");
        assert!(sealed.stdout.is_empty());

        // A bad tenant is refused before anything is sent, too.
        let (code, out, err) = run(&[
            "smoke",
            "--endpoint",
            "http://192.0.2.10:4318",
            "--tenant",
            "acme; drop",
        ]);
        assert_eq!((code, out.as_str()), (FAILURE, ""));
        assert!(err.contains("invalid tenant"), "{err}");
    }
}
