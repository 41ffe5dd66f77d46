//! A corpus of 1,600 generated secrets — every kind of rule, as string, int, array and
//! nested values — injected through every channel (span name, span attributes, span events,
//! status message, log body and fields, metric attributes and catalogue label values, URLs)
//! is found 0 times, by byte search, in the in-memory OTLP exporters, the file exporter's
//! files, the JSON log lines and the Prometheus exposition; 600 ordinary key/values pass
//! through unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use stellaops_telemetry_core::metrics::catalogue::{RequestTotalLabels, STELLAOPS_REQUEST_TOTAL};
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_core::tracing_opentelemetry::OpenTelemetrySpanExt;
use stellaops_telemetry_core::{ExporterKind, Rule, Sensitive, Telemetry};

/// A small deterministic generator (xorshift64*): the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A high-entropy token nothing else in the output can contain by chance.
    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
    fn int(&mut self) -> i64 {
        // 18 digits, never a prefix of a timestamp or an id by chance.
        (100_000_000_000_000_000 + self.next() % 800_000_000_000_000_000) as i64
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "authorization",
    "Proxy-Authorization",
    "http.request.header.authorization",
    "http.request.header.cookie",
    "set-cookie",
    "x-api-key",
    "db.password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "secret",
    "client_secret",
    "credentials",
    "api_key",
    "apikey",
    "private_key",
    "vault.dbSecretRef",
    "spec.secret_ref",
    "github_token",
    "smtp-password",
];

/// One secret: what to inject, and the bytes that must never be found.
struct Secret {
    /// The attribute key (sensitive for key kinds, ordinary for value kinds).
    key: String,
    value: Value,
    /// A free-text form (message, span name, status) carrying the secret.
    text: String,
    needle: String,
}

fn corpus(n: usize) -> Vec<Secret> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let tok = rng.token(28);
        let key = rng.pick(KEYS).to_owned();
        let secret = match i % 16 {
            // Sensitive keys, every value type.
            0 => Secret {
                value: Value::from(tok.clone()),
                text: format!("password={tok}"),
                key,
                needle: tok,
            },
            1 => {
                let n = rng.int();
                Secret {
                    value: Value::I64(n),
                    text: format!("api_key: {n}"),
                    key,
                    needle: n.to_string(),
                }
            }
            2 => Secret {
                value: Value::Array(Array::String(vec![
                    StringValue::from(tok.clone()),
                    "x".into(),
                ])),
                text: format!("{{\"token\":\"{tok}\",\"ok\":true}}"),
                key,
                needle: tok,
            },
            3 => {
                let n = rng.int();
                Secret {
                    value: Value::Array(Array::I64(vec![n])),
                    text: format!("Config {{ secret: {n} }}"),
                    key,
                    needle: n.to_string(),
                }
            }
            // Value rules, whatever the key.
            4 => Secret {
                value: Value::from(format!("Bearer {tok}")),
                text: format!("sent Authorization: Bearer {tok}"),
                key: "note".into(),
                needle: tok,
            },
            5 => {
                let basic = base64_of(&format!("svc-{i}:{tok}"));
                Secret {
                    value: Value::from(format!("Basic {basic}")),
                    text: format!("upstream said Basic {basic}"),
                    key: "note".into(),
                    needle: basic,
                }
            }
            6 => {
                let jwt = format!("eyJhbGciOiJSUzI1NiJ9.eyJ{tok}.{}", rng.token(20));
                Secret {
                    value: Value::from(jwt.clone()),
                    text: format!("token is {jwt} here"),
                    key: "claims".into(),
                    needle: tok,
                }
            }
            7 => {
                let pem =
                    format!("-----BEGIN PRIVATE KEY-----\nMIIE{tok}\n-----END PRIVATE KEY-----");
                Secret {
                    value: Value::from(pem.clone()),
                    text: format!("loaded {pem} ok"),
                    key: "material".into(),
                    needle: tok,
                }
            }
            8 => {
                let url = format!("https://svc:{tok}@registry.invalid/v2/");
                Secret {
                    value: Value::from(url.clone()),
                    text: format!("GET {url}"),
                    key: "url.full".into(),
                    needle: tok,
                }
            }
            9 => {
                let param = rng.pick(&[
                    "sig",
                    "signature",
                    "X-Amz-Signature",
                    "X-Goog-Signature",
                    "AWSAccessKeyId",
                    "X-Amz-Credential",
                    "X-Goog-Credential",
                ]);
                let url = format!("https://bucket.invalid/o?x=1&{param}={tok}&y=2");
                Secret {
                    value: Value::from(url.clone()),
                    text: format!("fetch {url}"),
                    key: "url.full".into(),
                    needle: tok,
                }
            }
            // Nested: a sensitive key inside a structured value.
            10 => Secret {
                value: Value::from(format!("Request {{ user: \"u{i}\", password: \"{tok}\" }}")),
                text: format!("body {{\"client_secret\": \"{tok}\"}}"),
                key: "request".into(),
                needle: tok,
            },
            _ => Secret {
                value: Value::from(format!("{{\"refresh_token\":\"{tok}\"}}")),
                text: format!("q=1&db_password={tok}&r=2"),
                key: "payload".into(),
                needle: tok,
            },
        };
        out.push(secret);
    }
    out
}

fn base64_of(text: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Six channels; `channel` is chosen so every kind of secret goes through every channel.
fn inject(
    secret: &Secret,
    channel: usize,
    meter: &opentelemetry::metrics::Meter,
    catalogue: &stellaops_telemetry_core::metrics::Metrics,
) {
    let counter = meter.u64_counter("corpus_events_total").build();
    match channel {
        // Span name (dynamic `otel.name`), attributes, an event, the status message.
        0 => {
            let span = tracing::info_span!("corpus", otel.name = %secret.text);
            span.set_attribute(secret.key.clone(), secret.value.clone());
            span.add_event(secret.text.clone(), vec![KeyValue::new(secret.key.clone(), secret.value.clone())]);
            span.set_status(Status::error(secret.text.clone()));
            span.in_scope(|| {});
        }
        // Log body and fields (fields have static names: the secret rides in a value or
        // under a sensitive field name).
        1 => tracing::info_span!("work").in_scope(|| {
            tracing::warn!(password = ?secret.value, note = %secret.text, "{}", secret.text);
        }),
        2 => tracing::info_span!("work").in_scope(|| {
            tracing::error!(url = %secret.text, authorization = ?secret.value, "failed: {}", secret.text);
        }),
        // Metric attributes.
        3 => counter.add(1, &[KeyValue::new(secret.key.clone(), secret.value.clone()), KeyValue::new("kind", "corpus")]),
        4 => {
            counter.add(1, &[KeyValue::new("url.full", secret.text.clone())]);
            // A catalogue label value (typed handles replay into the same redacting meter).
            catalogue.counter(&STELLAOPS_REQUEST_TOTAL).add(
                1,
                RequestTotalLabels { service: "corpus", status: &secret.text },
            );
        }
        // The wrapper a service uses for values it knows are secret.
        _ => {
            let wrapped = Sensitive::new(secret.needle.clone());
            tracing::info!(credential = %wrapped, debug = ?wrapped, "wrapped {wrapped}");
            let span = tracing::info_span!("wrapped");
            span.set_attribute("note", wrapped);
            span.in_scope(|| {});
        }
    }
}

fn all_output(exporters: &TestExporters, dir: &std::path::Path) -> String {
    let mut text = String::new();
    text.push_str(&format!("{:?}", exporters.finished_spans()));
    text.push_str(&format!("{:?}", exporters.log_records()));
    text.push_str(&format!("{:?}", exporters.metrics()));
    for line in exporters.json_logs().lines() {
        text.push_str(&line);
        text.push('\n');
    }
    for signal in ["traces", "metrics", "logs"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(signal)) {
            for entry in entries {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text
}

#[test]
fn no_generated_secret_is_found_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("corpus")
        .exporters(&[ExporterKind::File])
        .dir(dir.path())
        .stdout_logs(false)
        .prometheus_scrape(true)
        .metric_cardinality_limit(10_000)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let secrets = corpus(1_600);
    let meter = telemetry.meter("corpus");
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for (i, secret) in secrets.iter().enumerate() {
            // Kinds cycle every 16 secrets and the channel shifts by one more each cycle, so
            // each of the 16 kinds crosses each of the 6 channels (16 or 17 times each).
            inject(secret, (i / 16 + i) % 6, &meter, telemetry.metrics());
        }
    });
    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    assert!(exposition.contains(r#"stellaops_request_total{service="corpus""#));
    telemetry.shutdown();

    let mut output = all_output(&exporters, dir.path());
    output.push_str(&exposition);
    assert!(
        output.len() > 100_000,
        "the outputs hold the injected records"
    );
    let leaked: Vec<&str> = secrets
        .iter()
        .map(|s| s.needle.as_str())
        .filter(|needle| output.contains(needle))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} of {} secrets leaked, e.g. {:?}",
        leaked.len(),
        secrets.len(),
        &leaked[..leaked.len().min(5)]
    );

    // Every rule did its share, and every redaction was counted.
    let counts: BTreeMap<Rule, u64> = telemetry.redactor().counts().into_iter().collect();
    for rule in [
        Rule::SensitiveKey,
        Rule::Bearer,
        Rule::Basic,
        Rule::Jwt,
        Rule::PrivateKey,
        Rule::UrlUserinfo,
        Rule::UrlQuery,
        Rule::EmbeddedKey,
    ] {
        assert!(counts[&rule] > 0, "{rule:?} never fired: {counts:?}");
    }
}

#[test]
fn ordinary_values_pass_through_unchanged() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("benign")
        .exporters(&[])
        .stdout_logs(false)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let mut rng = Rng(42);
    let keys = [
        "scan.id",
        "image.ref",
        "http.route",
        "policy.id",
        "token_count",
        "author",
        "secretary",
        "keyboard.layout",
        "max_tokens",
        "basic.plan",
        "db.name",
        "passwordless",
    ];
    let shapes = [
        "registry.example/app:1.2",
        "GET /scans/{id}",
        "scan finished in 3 steps",
        "https://registry.invalid:443/v2/library",
        "alice@example.invalid",
        "ratio=0.5",
        "what happened?",
        "a-b-c-d",
        "Bearer authentication is required",
        "basic plan selected",
        "eyJ is how a JWT starts",
        "key: value, other: thing",
    ];
    let mut benign = Vec::new();
    for i in 0..600 {
        let key = keys[i % keys.len()];
        let value = match i % 3 {
            0 => Value::from(format!(
                "{} #{}",
                shapes[(rng.next() % shapes.len() as u64) as usize],
                rng.token(6)
            )),
            1 => Value::I64(rng.int()),
            _ => Value::Array(Array::String(vec![StringValue::from(
                shapes[i % shapes.len()].to_owned(),
            )])),
        };
        benign.push(KeyValue::new(key, value));
    }
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for kv in &benign {
            let span = tracing::info_span!("benign");
            span.set_attribute(kv.key.clone(), kv.value.clone());
            span.in_scope(|| tracing::info!(value = %kv.value, "ordinary"));
        }
    });
    telemetry.shutdown();
    let spans = exporters.finished_spans();
    assert_eq!(spans.len(), benign.len());
    for (span, kv) in spans.iter().zip(&benign) {
        let got = span
            .attributes
            .iter()
            .find(|a| a.key == kv.key)
            .expect("attribute kept");
        assert_eq!(got.value, kv.value, "{} was changed", kv.key);
    }
    let lines = exporters.json_logs().json();
    for (line, kv) in lines.iter().zip(&benign) {
        assert_eq!(line["value"], kv.value.to_string(), "{}", kv.key);
    }
    let counts = telemetry.redactor().counts();
    assert!(
        counts.iter().all(|(_, n)| *n == 0),
        "false positives: {counts:?}"
    );
}
