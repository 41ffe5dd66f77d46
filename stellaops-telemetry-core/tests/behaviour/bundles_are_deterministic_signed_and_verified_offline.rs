//! Offline bundles: packing is deterministic, the archive is signed, and verification
//! (offline, with the public key only) refuses every tampered, misplaced, foreign or
//! out-of-window byte.
//!
//! The OTLP files come from a small generator here (two tenants, two services, spans, log
//! records and metric points over one hour); the local store is not involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stellaops_telemetry_core::BundleError;
use stellaops_telemetry_core::bundle::{
    self, BundleMeta, Compression, Envelope, Manifest, OtlpFiles, SigningKey, VerifyingKey,
};

/// The window every test bundle covers: one hour from 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3600;

/// A fixed key (`openssl genpkey -algorithm ed25519`), so that the tampering tests flip the
/// same bytes of the same archive on every run.
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPZqRMw61/cjkr3H7/NGDyPsFdS7dfF8iXGukBhPZW3c
-----END PRIVATE KEY-----
";

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn meta(tenant: Option<&str>) -> BundleMeta {
    BundleMeta {
        from: at(T0),
        to: at(T0 + HOUR),
        tenant: tenant.map(str::to_owned),
        profile: "forensic".to_owned(),
    }
}

fn config() -> Vec<(String, Vec<u8>)> {
    vec![
        // Deliberately out of order: pack sorts them.
        (
            "config/dashboards/platform-health.json".to_owned(),
            b"{\"generated\":true}\n".to_vec(),
        ),
        (
            "config/collector.yaml".to_owned(),
            b"# generated\nreceivers: {}\n".to_vec(),
        ),
    ]
}

/// Generates varint-delimited OTLP files with the official protobuf types.
mod generate {
    use std::io::Write;
    use std::path::Path;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, MetricsData, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum, metric, number_data_point,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
    use prost::Message;
    use stellaops_telemetry_core::bundle::{OtlpFiles, SignalCounts};

    /// One record to generate: its tenant, service and time (nanoseconds since 1970).
    #[derive(Clone)]
    pub struct Record {
        pub tenant: &'static str,
        pub service: &'static str,
        pub time_unix_nano: u64,
    }

    /// `per_tenant` records for each tenant, spread over `[from, from + span)` seconds.
    pub fn records(tenants: &[&'static str], per_tenant: u64, from: u64, span: u64) -> Vec<Record> {
        let mut out = Vec::new();
        for (t, tenant) in tenants.iter().enumerate() {
            for i in 0..per_tenant {
                let offset_ns = (i * span * 1_000_000_000) / per_tenant + t as u64 * 1_000;
                out.push(Record {
                    tenant,
                    service: if i % 2 == 0 { "scanner" } else { "notify" },
                    time_unix_nano: from * 1_000_000_000 + offset_ns,
                });
            }
        }
        out
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        }
    }

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        })
    }

    fn traces(chunk: &[Record]) -> TracesData {
        let resource_spans = chunk
            .iter()
            .map(|r| ResourceSpans {
                resource: resource(r.service),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "scan.image".to_owned(),
                        start_time_unix_nano: r.time_unix_nano,
                        end_time_unix_nano: r.time_unix_nano + 5_000,
                        attributes: vec![kv("tenant.id", r.tenant)],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        TracesData { resource_spans }
    }

    fn logs(chunk: &[Record]) -> LogsData {
        let resource_logs = chunk
            .iter()
            .map(|r| ResourceLogs {
                resource: resource(r.service),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        // Every other record has only an observed time.
                        time_unix_nano: if r.time_unix_nano % 2 == 0 {
                            r.time_unix_nano
                        } else {
                            0
                        },
                        observed_time_unix_nano: r.time_unix_nano,
                        severity_text: "INFO".to_owned(),
                        attributes: vec![kv("tenant.id", r.tenant)],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        LogsData { resource_logs }
    }

    /// Each record gives two points: a sum and a histogram.
    fn metrics(chunk: &[Record]) -> MetricsData {
        let resource_metrics = chunk
            .iter()
            .map(|r| {
                let attributes = vec![kv("tenant.id", r.tenant)];
                let sum = Metric {
                    name: "scan_total".to_owned(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: attributes.clone(),
                            time_unix_nano: r.time_unix_nano,
                            value: Some(number_data_point::Value::AsInt(3)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                let histogram = Metric {
                    name: "scan_duration_seconds".to_owned(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            attributes,
                            time_unix_nano: r.time_unix_nano,
                            count: 1,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                ResourceMetrics {
                    resource: resource(r.service),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![sum, histogram],
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        MetricsData { resource_metrics }
    }

    fn write_delimited<M: Message>(path: &Path, messages: impl Iterator<Item = M>) {
        let mut file = std::fs::File::create(path).unwrap();
        for message in messages {
            file.write_all(&message.encode_length_delimited_to_vec())
                .unwrap();
        }
    }

    /// Writes the three files into `dir`, eight records per message.
    pub fn otlp_files(dir: &Path, records: &[Record]) -> OtlpFiles {
        let [traces_path, metrics_path, logs_path] =
            ["traces.pb", "metrics.pb", "logs.pb"].map(|name| dir.join(name));
        write_delimited(&traces_path, records.chunks(8).map(traces));
        write_delimited(&metrics_path, records.chunks(8).map(metrics));
        write_delimited(&logs_path, records.chunks(8).map(logs));
        let counts = SignalCounts {
            spans: records.len() as u64,
            points: 2 * records.len() as u64,
            log_records: records.len() as u64,
        };
        OtlpFiles::from_paths(&traces_path, &metrics_path, &logs_path, counts).unwrap()
    }
}

/// Reading archives apart and putting them back together, for the tampering tests.
mod members {
    use std::io::Read;
    use std::path::Path;

    /// Every member of a (plain or zstd) archive, in order.
    pub fn read(archive: &Path) -> Vec<(String, Vec<u8>)> {
        let bytes = std::fs::read(archive).unwrap();
        let tar_bytes = if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            zstd::decode_all(bytes.as_slice()).unwrap()
        } else {
            bytes
        };
        let mut tar = tar::Archive::new(tar_bytes.as_slice());
        tar.entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                (path, contents)
            })
            .collect()
    }

    /// A plain tar of `members` with the bundle's canonical headers.
    pub fn write(archive: &Path, members: &[(String, Vec<u8>)]) {
        let mut tar = tar::Builder::new(std::fs::File::create(archive).unwrap());
        for (path, contents) in members {
            let mut header = tar::Header::new_ustar();
            header.set_path(path).unwrap();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_username("").unwrap();
            header.set_groupname("").unwrap();
            header.set_cksum();
            tar.append(&header, contents.as_slice()).unwrap();
        }
        tar.into_inner().unwrap();
    }

    pub fn get<'a>(members: &'a [(String, Vec<u8>)], path: &str) -> &'a [u8] {
        &members.iter().find(|(p, _)| p == path).unwrap().1
    }

    pub fn set(members: &mut [(String, Vec<u8>)], path: &str, contents: Vec<u8>) {
        members.iter_mut().find(|(p, _)| p == path).unwrap().1 = contents;
    }
}

/// A packed bundle in its own folder, with the key that signed it.
struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    otlp: OtlpFiles,
}

impl Fixture {
    fn new(tenants: &[&'static str]) -> Fixture {
        let records = generate::records(tenants, 40, T0, HOUR);
        Fixture::with_records(&records)
    }

    fn with_records(records: &[generate::Record]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let otlp = generate::otlp_files(dir.path(), records);
        Fixture {
            dir,
            key: SigningKey::from_pem(TEST_KEY).unwrap(),
            otlp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pack(&self, tenant: Option<&str>, compression: Compression, name: &str) -> PathBuf {
        let out = self.path(name);
        bundle::pack(
            &meta(tenant),
            &self.otlp,
            &config(),
            &self.key,
            compression,
            &out,
        )
        .unwrap();
        out
    }

    fn verify(&self, archive: &Path) -> Result<bundle::VerifiedBundle, BundleError> {
        bundle::verify(archive, &self.key.public_key())
    }
}

mod determinism {
    use super::*;

    #[test]
    fn packing_twice_gives_byte_identical_archives_that_verify() {
        let fx = Fixture::new(&["acme", "globex"]);
        for (compression, ext) in [(Compression::None, "tar"), (Compression::Zstd, "tar.zst")] {
            let a = fx.pack(None, compression, &format!("a.{ext}"));
            let b = fx.pack(None, compression, &format!("b.{ext}"));
            let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            assert_eq!(a_bytes, b_bytes, "{compression:?}");

            let verified = fx.verify(&a).unwrap();
            assert_eq!(verified.compression, compression);
            assert_eq!(verified.archive_size, a_bytes.len() as u64);
            assert_eq!(verified.key_id, fx.key.key_id());
            assert_eq!(verified.manifest.counts, fx.otlp.counts);
            assert_eq!(verified.manifest.tenant, None);
        }
    }

    #[test]
    fn pack_into_streams_the_same_bytes_pack_writes() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(Some("acme"), Compression::Zstd, "b.tar.zst");
        let mut streamed = Vec::new();
        let packed = bundle::pack_into(
            &meta(Some("acme")),
            &fx.otlp,
            &config(),
            &fx.key,
            Compression::Zstd,
            &mut streamed,
        )
        .unwrap();
        assert_eq!(streamed, std::fs::read(&out).unwrap());
        assert_eq!(packed.size, streamed.len() as u64);
        assert_eq!(packed.sha256, fx.verify(&out).unwrap().archive_sha256);
    }

    #[test]
    fn members_are_in_the_fixed_order_with_canonical_headers() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(Some("acme"), Compression::None, "b.tar");
        let bytes = std::fs::read(&out).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mode().unwrap(), 0o644);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            assert!(header.entry_type().is_file());
            paths.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            paths,
            [
                "config/collector.yaml",
                "config/dashboards/platform-health.json",
                "otlp/logs.pb",
                "otlp/metrics.pb",
                "otlp/traces.pb",
                "manifest.json",
                "signatures/manifest.sig",
            ]
        );
    }

    #[test]
    fn a_failed_pack_leaves_nothing_behind() {
        let fx = Fixture::new(&["acme"]);
        let mut otlp = fx.otlp.clone();
        std::fs::write(fx.path("vanishing.pb"), [0u8]).unwrap();
        otlp.metrics = bundle::OtlpFile::from_path(&fx.path("vanishing.pb")).unwrap();
        std::fs::remove_file(fx.path("vanishing.pb")).unwrap();
        let out = fx.path("out.tar");
        let err =
            bundle::pack(&meta(None), &otlp, &[], &fx.key, Compression::None, &out).unwrap_err();
        assert!(err.to_string().contains("vanishing.pb"), "{err}");
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(fx.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("partial") || name.contains("out"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_written() {
        let fx = Fixture::new(&["acme"]);
        let mut sink = Vec::new();
        let mut reversed = meta(None);
        reversed.to = reversed.from;
        let err = bundle::pack_into(
            &reversed,
            &fx.otlp,
            &[],
            &fx.key,
            Compression::None,
            &mut sink,
        );
        assert!(
            matches!(err, Err(BundleError::InvalidWindow { .. })),
            "{err:?}"
        );
        let bad_config = [("config/../etc/passwd".to_owned(), Vec::new())];
        let err = bundle::pack_into(
            &meta(None),
            &fx.otlp,
            &bad_config,
            &fx.key,
            Compression::None,
            &mut sink,
        );
        assert!(
            matches!(err, Err(BundleError::InvalidConfigPath { .. })),
            "{err:?}"
        );
        let err = bundle::pack_into(
            &meta(Some("")),
            &fx.otlp,
            &[],
            &fx.key,
            Compression::None,
            &mut sink,
        );
        assert!(
            matches!(
                err,
                Err(BundleError::InvalidMeta {
                    field: "tenant",
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(sink.is_empty());
    }
}

mod manifest {
    use super::*;

    #[test]
    fn the_manifest_is_canonical_json_listing_every_file() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(Some("acme"), Compression::None, "b.tar");
        let all = members::read(&out);
        let bytes = members::get(&all, "manifest.json");
        // serde_json's Value keeps keys sorted: re-serialising gives the same bytes only if
        // the manifest's keys were sorted and it had no spaces.
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), bytes);
        let manifest = Manifest::from_json(bytes).unwrap();
        assert_eq!(manifest.to_canonical_json().unwrap(), bytes);
        assert_eq!(manifest.format_version, 2);
        assert_eq!(value["window"]["from"], "2023-11-14T22:13:20Z");
        assert_eq!(value["window"]["to"], "2023-11-14T23:13:20Z");
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["profile"], "forensic");
        assert_eq!(
            value["counts"],
            serde_json::json!({"logs": 40, "metrics": 80, "traces": 40})
        );
        assert!(manifest.tool.starts_with("stella-telemetry "));
        let listed: Vec<_> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            listed,
            [
                "config/collector.yaml",
                "config/dashboards/platform-health.json",
                "otlp/logs.pb",
                "otlp/metrics.pb",
                "otlp/traces.pb",
            ]
        );
        for file in &manifest.files {
            let contents = members::get(&all, &file.path);
            assert_eq!(file.size, contents.len() as u64);
            let digest = ring::digest::digest(&ring::digest::SHA256, contents);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(file.sha256, hex, "{}", file.path);
        }
    }

    #[test]
    fn the_signature_is_a_dsse_envelope_over_the_manifest() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let all = members::read(&out);
        let envelope = Envelope::from_json(members::get(&all, "signatures/manifest.sig")).unwrap();
        assert_eq!(
            envelope.payload_type,
            "application/vnd.stellaops.telemetry.manifest+json"
        );
        assert_eq!(envelope.key_ids(), [fx.key.key_id()]);
        let manifest = members::get(&all, "manifest.json");
        assert_eq!(
            envelope.verify(manifest, &fx.key.public_key()).unwrap(),
            fx.key.key_id()
        );
    }

    #[test]
    fn otlp_files_decode_with_the_official_protobuf_definitions() {
        use opentelemetry_proto::tonic::logs::v1::LogsData;
        use opentelemetry_proto::tonic::metrics::v1::MetricsData;
        use opentelemetry_proto::tonic::trace::v1::TracesData;
        use prost::Message;

        fn decode_all<M: Message + Default>(mut bytes: &[u8]) -> Vec<M> {
            let mut out = Vec::new();
            while !bytes.is_empty() {
                out.push(M::decode_length_delimited(&mut bytes).unwrap());
            }
            out
        }
        let fx = Fixture::new(&["acme", "globex"]);
        let out = fx.pack(None, Compression::Zstd, "b.tar.zst");
        let all = members::read(&out);
        let traces: Vec<TracesData> = decode_all(members::get(&all, "otlp/traces.pb"));
        let spans: usize = traces
            .iter()
            .flat_map(|t| &t.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(spans, 80);
        let logs: Vec<LogsData> = decode_all(members::get(&all, "otlp/logs.pb"));
        assert_eq!(
            logs.iter().map(|l| l.resource_logs.len()).sum::<usize>(),
            80
        );
        let metrics: Vec<MetricsData> = decode_all(members::get(&all, "otlp/metrics.pb"));
        assert_eq!(
            metrics
                .iter()
                .map(|m| m.resource_metrics.len())
                .sum::<usize>(),
            80
        );
    }

    #[test]
    fn inspect_reads_without_a_key_and_says_it_did_not_verify() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(Some("acme"), Compression::Zstd, "b.tar.zst");
        let inspection = bundle::inspect(&out).unwrap();
        assert!(!inspection.verified);
        assert_eq!(inspection.services, ["notify", "scanner"]);
        assert_eq!(inspection.records, fx.otlp.counts);
        assert_eq!(inspection.counts, fx.otlp.counts);
        assert_eq!(inspection.signed_by, [fx.key.key_id()]);
        assert_eq!(inspection.compression, Compression::Zstd);
        let text = inspection.to_string();
        assert!(text.starts_with("not verified"), "{text}");
        assert!(text.contains("tenant     acme"), "{text}");
        assert!(text.contains("traces     40 spans"), "{text}");
        let json = serde_json::to_value(&inspection).unwrap();
        assert_eq!(json["verified"], false);
        assert_eq!(json["window"]["from"], "2023-11-14T22:13:20Z");
        assert_eq!(json["counts"]["metrics"], 80);
        assert_eq!(json["compression"], "zstd");
    }
}

mod tampering {
    use super::*;

    /// A fixed-seed generator (splitmix64), so that every run flips the same bytes.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// Flips `rounds` random bytes (one at a time) and returns the flips that verify accepted,
    /// with the count of each kind of rejection.
    fn flip_bytes(
        fx: &Fixture,
        original: &[u8],
        seed: u64,
        rounds: usize,
    ) -> (Vec<Vec<u8>>, std::collections::BTreeMap<String, usize>) {
        let tampered = fx.path("tampered");
        let mut rng = SplitMix(seed);
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        let mut accepted = Vec::new();
        for _ in 0..rounds {
            let mut bytes = original.to_vec();
            let at = (rng.next() % bytes.len() as u64) as usize;
            bytes[at] ^= (rng.next() % 255 + 1) as u8;
            std::fs::write(&tampered, &bytes).unwrap();
            match fx.verify(&tampered) {
                Ok(_) => accepted.push(bytes),
                Err(err) => {
                    let kind = format!("{err:?}");
                    let kind = kind.split([' ', '{', '(']).next().unwrap().to_owned();
                    *kinds.entry(kind).or_default() += 1;
                }
            }
        }
        eprintln!(
            "{rounds} changes: {} accepted, rejections {kinds:?}",
            accepted.len()
        );
        (accepted, kinds)
    }

    /// How many flips each test makes (`BUNDLE_TAMPER_ROUNDS` raises it for a longer run).
    fn rounds() -> usize {
        std::env::var("BUNDLE_TAMPER_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    }

    #[test]
    fn a_thousand_random_single_byte_changes_to_a_tar_are_all_rejected() {
        let fx = Fixture::new(&["acme", "globex"]);
        let original = std::fs::read(fx.pack(None, Compression::None, "b.tar")).unwrap();
        let (accepted, kinds) = flip_bytes(&fx, &original, 0x5eed_0001, rounds());
        assert!(
            accepted.is_empty(),
            "{} changes were accepted",
            accepted.len()
        );
        // The changes land everywhere: headers, padding, manifest, records, signature.
        assert!(kinds.len() >= 4, "{kinds:?}");
    }

    /// zstd's entropy-coded blocks have slack: a rare change decompresses to the very same
    /// tar. Every change verify accepts must be one of those; every other is rejected.
    #[test]
    fn a_thousand_random_single_byte_changes_to_a_tar_zst_are_all_rejected() {
        let fx = Fixture::new(&["acme", "globex"]);
        let original = std::fs::read(fx.pack(None, Compression::Zstd, "b.tar.zst")).unwrap();
        let (accepted, kinds) = flip_bytes(&fx, &original, 0x5eed_0002, rounds());
        // Even a change that decompresses to the same tar is refused: verify re-encodes.
        assert!(
            accepted.is_empty(),
            "{} changes were accepted",
            accepted.len()
        );
        assert!(kinds.len() >= 2, "{kinds:?}");
    }

    #[test]
    fn a_changed_zstd_frame_header_is_refused() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::Zstd, "b.tar.zst");
        let mut bytes = std::fs::read(&out).unwrap();
        // A larger window descriptor still decompresses to the same tar.
        bytes[5] = 0x68;
        assert_eq!(
            zstd::decode_all(bytes.as_slice()).unwrap(),
            zstd::decode_all(std::fs::read(&out).unwrap().as_slice()).unwrap()
        );
        std::fs::write(fx.path("window.tar.zst"), &bytes).unwrap();
        let err = fx.verify(&fx.path("window.tar.zst")).unwrap_err();
        assert!(matches!(err, BundleError::NotAnArchive { .. }), "{err}");
    }

    #[test]
    fn another_key_is_refused_by_key_id_and_a_forged_key_id_by_signature() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let stranger = SigningKey::generate().unwrap();
        let err = bundle::verify(&out, &stranger.public_key()).unwrap_err();
        assert!(
            matches!(&err, BundleError::UnknownKeyId { found, .. } if found == &[fx.key.key_id()]),
            "{err}"
        );

        // The envelope claims the stranger's key id but carries the original signature.
        let mut all = members::read(&out);
        let mut envelope =
            Envelope::from_json(members::get(&all, "signatures/manifest.sig")).unwrap();
        envelope.signatures[0].keyid = stranger.key_id();
        members::set(
            &mut all,
            "signatures/manifest.sig",
            envelope.to_json().unwrap(),
        );
        let forged = fx.path("forged.tar");
        members::write(&forged, &all);
        let err = bundle::verify(&forged, &stranger.public_key()).unwrap_err();
        assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn a_manifest_re_signed_by_another_key_is_refused() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let mut all = members::read(&out);
        let attacker = SigningKey::generate().unwrap();
        let mut manifest = Manifest::from_json(members::get(&all, "manifest.json")).unwrap();
        manifest.profile = "default".to_owned();
        let bytes = manifest.to_canonical_json().unwrap();
        let envelope = Envelope::sign(&bytes, &attacker).to_json().unwrap();
        members::set(&mut all, "manifest.json", bytes);
        members::set(&mut all, "signatures/manifest.sig", envelope);
        let resigned = fx.path("resigned.tar");
        members::write(&resigned, &all);
        assert!(bundle::verify(&resigned, &attacker.public_key()).is_ok());
        let err = fx.verify(&resigned).unwrap_err();
        assert!(matches!(err, BundleError::UnknownKeyId { .. }), "{err}");
    }
}

mod layout {
    use super::*;

    fn repacked(fx: &Fixture, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> PathBuf {
        let out = fx.pack(None, Compression::None, "b.tar");
        let mut all = members::read(&out);
        edit(&mut all);
        let path = fx.path("edited.tar");
        members::write(&path, &all);
        path
    }

    #[test]
    fn the_repacking_helper_itself_gives_a_bundle_that_verifies() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |_| {});
        fx.verify(&path).unwrap();
    }

    #[test]
    fn an_extra_member_is_refused() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |all| {
            all.insert(2, ("config/extra.yaml".to_owned(), b"x".to_vec()))
        });
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(&err, BundleError::ExtraFile { path } if path == "config/extra.yaml"),
            "{err}"
        );

        let path = repacked(&fx, |all| {
            all.insert(5, ("otlp/profiles.pb".to_owned(), Vec::new()))
        });
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(&err, BundleError::ExtraFile { path } if path == "otlp/profiles.pb"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "archive member `otlp/profiles.pb` is not listed in the manifest"
        );
    }

    #[test]
    fn a_missing_member_is_refused() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |all| all.retain(|(p, _)| p != "otlp/metrics.pb"));
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(&err, BundleError::MissingFile { path } if path == "otlp/metrics.pb"),
            "{err}"
        );

        let path = repacked(&fx, |all| all.retain(|(p, _)| p != "config/collector.yaml"));
        let err = fx.verify(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest lists `config/collector.yaml` but the file is missing"
        );

        let path = repacked(&fx, |all| {
            all.retain(|(p, _)| p != "signatures/manifest.sig")
        });
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(&err, BundleError::MissingFile { path } if path == "signatures/manifest.sig"),
            "{err}"
        );
    }

    #[test]
    fn members_out_of_order_are_refused() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |all| all.swap(3, 4));
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::MissingFile { .. } | BundleError::UnexpectedMember { .. }
            ),
            "{err}"
        );
        let path = repacked(&fx, |all| all.swap(0, 1));
        let err = fx.verify(&path).unwrap_err();
        assert!(matches!(err, BundleError::UnexpectedMember { .. }), "{err}");
    }

    /// Sets the manifest's format version and signs it again.
    fn with_format_version(fx: &Fixture, all: &mut [(String, Vec<u8>)], version: u64) {
        let mut value: serde_json::Value =
            serde_json::from_slice(members::get(all, "manifest.json")).unwrap();
        value["format_version"] = version.into();
        let bytes = serde_json::to_vec(&value).unwrap();
        let envelope = Envelope::sign(&bytes, &fx.key).to_json().unwrap();
        members::set(all, "manifest.json", bytes);
        members::set(all, "signatures/manifest.sig", envelope);
    }

    #[test]
    fn a_newer_format_version_is_refused_even_when_properly_signed() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |all| with_format_version(&fx, all, 3));
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::UnsupportedFormatVersion {
                    found: 3,
                    supported: 2
                }
            ),
            "{err}"
        );
        assert!(matches!(
            bundle::inspect(&path),
            Err(BundleError::UnsupportedFormatVersion { .. })
        ));
    }

    #[test]
    fn a_bundle_of_the_first_format_with_its_manifest_first_is_named_as_such() {
        let fx = Fixture::new(&["acme"]);
        let path = repacked(&fx, |all| {
            with_format_version(&fx, all, 1);
            // Version 1 put the manifest right after the configuration.
            let at = all.iter().position(|(p, _)| p == "manifest.json").unwrap();
            let manifest = all.remove(at);
            let first_otlp = all
                .iter()
                .position(|(p, _)| p.starts_with("otlp/"))
                .unwrap();
            all.insert(first_otlp, manifest);
        });
        let err = fx.verify(&path).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::UnsupportedFormatVersion {
                    found: 1,
                    supported: 2
                }
            ),
            "{err}"
        );
        assert!(matches!(
            bundle::inspect(&path),
            Err(BundleError::UnsupportedFormatVersion { found: 1, .. })
        ));
    }

    #[test]
    fn unsafe_paths_and_non_regular_members_are_refused() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let mut bytes = std::fs::read(&out).unwrap();
        // The first member's name field starts at byte 0: make it `../fig/collector.yaml`.
        bytes[..6].copy_from_slice(b"../fig");
        let header = tar::Header::from_byte_slice(&bytes[..512]);
        let mut fixed = header.clone();
        fixed.set_cksum();
        bytes[..512].copy_from_slice(fixed.as_bytes());
        std::fs::write(fx.path("unsafe.tar"), &bytes).unwrap();
        let err = fx.verify(&fx.path("unsafe.tar")).unwrap_err();
        assert!(matches!(err, BundleError::UnsafePath { .. }), "{err}");

        let mut bytes = std::fs::read(&out).unwrap();
        let mut header = tar::Header::from_byte_slice(&bytes[..512]).clone();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_cksum();
        bytes[..512].copy_from_slice(header.as_bytes());
        std::fs::write(fx.path("link.tar"), &bytes).unwrap();
        let err = fx.verify(&fx.path("link.tar")).unwrap_err();
        assert!(
            matches!(err, BundleError::NonRegularEntry { kind: '2', .. }),
            "{err}"
        );
    }

    #[test]
    fn a_non_canonical_header_is_refused_even_with_a_valid_checksum() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let mut bytes = std::fs::read(&out).unwrap();
        let mut header = tar::Header::from_byte_slice(&bytes[..512]).clone();
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        bytes[..512].copy_from_slice(header.as_bytes());
        std::fs::write(fx.path("mtime.tar"), &bytes).unwrap();
        let err = fx.verify(&fx.path("mtime.tar")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive member `config/collector.yaml` has a non-canonical tar header (modification time)"
        );
    }

    #[test]
    fn a_truncated_archive_or_trailing_bytes_are_refused() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let bytes = std::fs::read(&out).unwrap();
        for cut in [10, 512, 2000, bytes.len() - 1024, bytes.len() - 1] {
            std::fs::write(fx.path("cut.tar"), &bytes[..cut]).unwrap();
            assert!(fx.verify(&fx.path("cut.tar")).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 512]);
        std::fs::write(fx.path("long.tar"), &longer).unwrap();
        let err = fx.verify(&fx.path("long.tar")).unwrap_err();
        assert!(matches!(err, BundleError::TrailingData { .. }), "{err}");
        std::fs::write(fx.path("empty.tar"), b"").unwrap();
        assert!(matches!(
            fx.verify(&fx.path("empty.tar")),
            Err(BundleError::NotAnArchive { .. })
        ));
    }
}

mod records {
    use super::*;

    #[test]
    fn a_record_outside_the_window_is_refused_with_its_file_index_and_time() {
        // Forty records over the hour, and one a second after its end.
        let mut records = generate::records(&["acme"], 40, T0, HOUR);
        records.push(generate::Record {
            tenant: "acme",
            service: "scanner",
            time_unix_nano: (T0 + HOUR + 1) * 1_000_000_000,
        });
        let fx = Fixture::with_records(&records);
        let out = fx.pack(Some("acme"), Compression::None, "b.tar");
        let err = fx.verify(&out).unwrap_err();
        match &err {
            BundleError::RecordOutsideWindow {
                path,
                index,
                time_unix_nano,
                ..
            } => {
                assert_eq!(path, "otlp/logs.pb");
                assert_eq!(*index, 40);
                assert_eq!(*time_unix_nano, (T0 + HOUR + 1) * 1_000_000_000);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            err.to_string(),
            "`otlp/logs.pb`: record 40 at 2023-11-14T23:13:21Z lies outside the window \
             [2023-11-14T22:13:20Z, 2023-11-14T23:13:20Z)"
        );
    }

    #[test]
    fn the_window_end_is_excluded_and_its_start_included() {
        let mut records = generate::records(&["acme"], 4, T0, HOUR);
        records[0].time_unix_nano = T0 * 1_000_000_000;
        let fx = Fixture::with_records(&records);
        fx.verify(&fx.pack(None, Compression::None, "a.tar"))
            .unwrap();
        records[1].time_unix_nano = (T0 + HOUR) * 1_000_000_000;
        let fx = Fixture::with_records(&records);
        let err = fx
            .verify(&fx.pack(None, Compression::None, "b.tar"))
            .unwrap_err();
        assert!(
            matches!(err, BundleError::RecordOutsideWindow { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_record_of_another_tenant_is_refused_though_the_bundle_is_properly_signed() {
        let mut records = generate::records(&["acme"], 40, T0, HOUR);
        records[17].tenant = "globex";
        let fx = Fixture::with_records(&records);
        let out = fx.pack(Some("acme"), Compression::Zstd, "b.tar.zst");
        let err = fx.verify(&out).unwrap_err();
        assert!(
            matches!(&err, BundleError::RecordOfAnotherTenant { path, index: 17, expected, found: Some(found) }
                if path == "otlp/logs.pb" && expected == "acme" && found == "globex"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "`otlp/logs.pb`: record 17 belongs to tenant `globex` but the bundle is for tenant `acme`"
        );
        // The same records make a valid bundle for all tenants.
        fx.verify(&fx.pack(None, Compression::Zstd, "all.tar.zst"))
            .unwrap();
    }

    #[test]
    fn counts_that_disagree_with_the_records_are_refused() {
        let fx = Fixture::new(&["acme"]);
        let mut otlp = fx.otlp.clone();
        otlp.counts.points += 1;
        let out = fx.path("b.tar");
        bundle::pack(&meta(None), &otlp, &[], &fx.key, Compression::None, &out).unwrap();
        let err = fx.verify(&out).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::CountMismatch {
                    expected: 81,
                    actual: 80,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_otlp_stream_is_refused_naming_the_file() {
        let fx = Fixture::new(&["acme"]);
        let out = fx.pack(None, Compression::None, "b.tar");
        let mut members = members::read(&out);
        // A length prefix promising more bytes than the file holds.
        members::set(&mut members, "otlp/traces.pb", vec![0xff, 0xff, 0x03, 0x0a]);
        members::write(&out, &members);
        let err = fx.verify(&out).unwrap_err();
        assert!(
            matches!(&err, BundleError::CorruptOtlp { path, message: 0, offset: 0, .. } if path == "otlp/traces.pb"),
            "{err}"
        );
        assert!(matches!(
            bundle::inspect(&out),
            Err(BundleError::CorruptOtlp { .. })
        ));
    }

    #[test]
    fn pack_refuses_an_otlp_file_that_is_not_whole_delimited_messages() {
        let fx = Fixture::new(&["acme"]);
        let mut otlp = fx.otlp.clone();
        for (name, bytes) in [
            ("cut.pb", vec![0x05, 1, 2]),
            ("long-prefix.pb", vec![0xff; 11]),
            ("huge.pb", vec![0x80, 0x80, 0x80, 0x80, 0x01]),
        ] {
            std::fs::write(fx.path(name), bytes).unwrap();
            otlp.traces = bundle::OtlpFile::from_path(&fx.path(name)).unwrap();
            let out = fx.path("b.tar");
            let err = bundle::pack(&meta(None), &otlp, &[], &fx.key, Compression::None, &out)
                .unwrap_err();
            assert!(
                matches!(&err, BundleError::UnframedOtlp { path, .. } if path.ends_with(name)),
                "{name}: {err}"
            );
            assert!(!out.exists());
        }
    }
}

mod keys {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_their_id_is_stable() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert_eq!(again.to_pem(), key.to_pem());
        assert_eq!(again.public_key(), key.public_key());
        let public = VerifyingKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(public, key.public_key());

        // The id is the first 32 hex digits of sha256(raw public key).
        let digest = ring::digest::digest(&ring::digest::SHA256, public.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(public.key_id(), hex[..32]);
    }

    #[test]
    fn key_files_are_read_and_errors_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let private = dir.path().join("bundle.key");
        let public = dir.path().join("bundle.pub");
        std::fs::write(&private, key.to_pem()).unwrap();
        std::fs::write(&public, key.public_key().to_pem()).unwrap();
        assert_eq!(
            SigningKey::from_pem_file(&private).unwrap().key_id(),
            key.key_id()
        );
        assert_eq!(
            VerifyingKey::from_pem_file(&public).unwrap(),
            key.public_key()
        );

        let err = VerifyingKey::from_pem_file(&private).unwrap_err();
        assert!(err.to_string().contains("bundle.key"), "{err}");
        let err = SigningKey::from_pem_file(&dir.path().join("missing.key")).unwrap_err();
        assert!(
            matches!(err, BundleError::Io { .. }) && err.to_string().contains("missing.key"),
            "{err}"
        );
    }
}

/// The offline kit: written, verified, and every tampering named.
mod kit {
    use stellaops_telemetry_core::Profile;
    use stellaops_telemetry_core::bundle::SigningKey;
    use stellaops_telemetry_core::kit::{self, KitError};

    fn written(key: Option<&SigningKey>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("kit");
        let tenants = stellaops_telemetry_core::artefacts::parse_tenants(
            stellaops_telemetry_core::artefacts::EXAMPLE_TENANTS,
        )
        .unwrap();
        let spec = kit::KitSpec {
            profile: &Profile::default_profile(),
            tenants: Some(&tenants),
        };
        kit::write(&spec, &out, key).unwrap();
        (dir, out)
    }

    #[test]
    fn a_signed_kit_verifies_and_holds_the_guide_collector_dashboards_and_rules() {
        let key = SigningKey::generate().unwrap();
        let (_dir, out) = written(Some(&key));
        let verified = kit::verify(&out, Some(&key.public_key())).unwrap();
        assert_eq!(verified.signed_by, Some(key.key_id()));
        let paths: Vec<&str> = verified
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert!(paths.contains(&"IMPORT.md"));
        assert!(paths.contains(&"collector/collector-default.yaml"));
        assert!(paths.contains(&"collector/collector-default-tier2-sampling.yaml"));
        assert!(paths.contains(&"storage/loki-overrides.yaml"));
        assert!(paths.contains(&"alertmanager/alertmanager.yaml"));
        assert!(paths.contains(&"rules/stellaops-slo.test.yaml"));
        assert!(paths.contains(&"storage/tempo-overrides.yaml"));
        assert!(paths.contains(&"storage/prometheus-scrape.yaml"));
        assert!(paths.iter().any(|p| p.starts_with("dashboards/")));
        assert!(paths.contains(&"rules/stellaops-alerts.test.yaml"));
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "the manifest lists files by path");
        // Without a key, the signature is named but not checked.
        let unchecked = kit::verify(&out, None).unwrap();
        assert_eq!(unchecked.signed_by, None);
        assert_eq!(unchecked.unchecked_signers, [key.key_id()]);
        // Two kits of the same profile and key are identical, file for file.
        let (_again, other) = written(Some(&key));
        for file in &verified.manifest.files {
            assert_eq!(
                std::fs::read(out.join(&file.path)).unwrap(),
                std::fs::read(other.join(&file.path)).unwrap()
            );
        }
    }

    #[test]
    fn every_change_to_a_kit_is_named() {
        let key = SigningKey::generate().unwrap();
        let check = |edit: &dyn Fn(&std::path::Path)| {
            let (_dir, out) = written(Some(&key));
            edit(&out);
            kit::verify(&out, Some(&key.public_key())).unwrap_err()
        };
        let changed = check(&|out| {
            let path = out.join("IMPORT.md");
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[0] ^= 1;
            std::fs::write(path, bytes).unwrap();
        });
        assert!(
            matches!(&changed, KitError::Mismatch { path, what: "sha256" } if path == "IMPORT.md"),
            "{changed}"
        );
        let extra = check(&|out| std::fs::write(out.join("rules/extra.yaml"), b"x").unwrap());
        assert!(
            matches!(&extra, KitError::ExtraFile { path } if path == "rules/extra.yaml"),
            "{extra}"
        );
        let missing = check(&|out| std::fs::remove_file(out.join("IMPORT.md")).unwrap());
        assert!(matches!(missing, KitError::MissingFile { .. }), "{missing}");
        let sums = check(&|out| std::fs::write(out.join("SHA256SUMS"), b"").unwrap());
        assert!(matches!(sums, KitError::SumsMismatch), "{sums}");
        let unsigned = check(&|out| std::fs::remove_file(out.join("manifest.sig")).unwrap());
        assert!(matches!(unsigned, KitError::Unsigned), "{unsigned}");
        let manifest = check(&|out| {
            let path = out.join("manifest.json");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                path,
                text.replace("\"profile\":\"default\"", "\"profile\":\"forged\""),
            )
            .unwrap();
        });
        assert!(matches!(manifest, KitError::Signature(_)), "{manifest}");
        let (_dir, out) = written(Some(&key));
        let stranger = SigningKey::generate().unwrap().public_key();
        assert!(matches!(
            kit::verify(&out, Some(&stranger)),
            Err(KitError::Signature(_))
        ));
    }

    #[test]
    fn a_kit_is_written_only_into_a_new_or_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("something"), b"x").unwrap();
        let err =
            kit::write(&kit::KitSpec::profile(&Profile::airgap()), dir.path(), None).unwrap_err();
        assert!(matches!(err, KitError::NotEmpty { .. }), "{err}");
        let empty = tempfile::tempdir().unwrap();
        kit::write(
            &kit::KitSpec::profile(&Profile::airgap()),
            empty.path(),
            None,
        )
        .unwrap();
        assert!(
            kit::verify(empty.path(), None)
                .unwrap()
                .unchecked_signers
                .is_empty()
        );
    }
}
