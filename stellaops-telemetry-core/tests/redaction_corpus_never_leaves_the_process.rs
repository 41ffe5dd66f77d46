//! A corpus of 1,600 generated secrets — every kind of rule, as string, int, array and
//! nested values — injected through every channel (span name, span attributes, span events,
//! status message, log body and fields, metric attributes and catalogue label values, URLs)
//! is found 0 times, by byte search, in the in-memory OTLP exporters, the file exporter's
//! files, the JSON log lines and the Prometheus exposition; 1,200 ordinary key/values and
//! look-alikes (git SHAs, UUIDs, base64 image data, identifiers, near-miss tokens,
//! `token_count=12`, `bypass=true`) pass through unchanged, and no rule fires on them.
//!
//! A second corpus of 10,000 generated credentials — every well-known token format, every
//! credential key name, and the printed forms secrets hide in (`Debug` output with
//! `Some("…")`, pairs, JSON bodies, environment lines, DSNs, URLs with `/` in the password,
//! percent-encoded queries) — in realistic contexts (log messages, span names, error
//! strings, attribute values, metric attributes) leaks 0 times, neither whole nor by its
//! first or last 16 bytes.

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

/// A pipeline that writes every output the corpus is checked in: OTLP files, JSON lines,
/// in-memory exporters and the Prometheus exposition.
fn pipeline(service: &str) -> (tempfile::TempDir, TestExporters, Telemetry) {
    let dir = tempfile::tempdir().unwrap();
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder(service)
        .exporters(&[ExporterKind::File])
        .dir(dir.path())
        .stdout_logs(false)
        .prometheus_scrape(true)
        .metric_cardinality_limit(10_000)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    (dir, exporters, telemetry)
}

#[test]
fn no_generated_secret_is_found_in_any_output() {
    let (dir, exporters, telemetry) = pipeline("corpus");
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
    // One pass over the output for all needles (their first and last 16 bytes).
    let probes = Probes::new(secrets.iter().map(|s| s.needle.clone()).enumerate());
    let leaked: Vec<&str> = probes
        .found_in(output.as_bytes())
        .into_iter()
        .map(|i| secrets[i].needle.as_str())
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

/// Ordinary values and look-alikes of secrets: shapes that must pass unchanged, and
/// generated digests, ids, image data and near misses of each token format.
fn look_alikes(rng: &mut Rng) -> Vec<String> {
    let mut shapes: Vec<String> = [
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
        "token_count=12",
        "max_tokens: 4096",
        "passwordless=true",
        "bypass=true",
        "secretary: Ann, keyboard: us, monkey: george",
        "the token expired, and the secret rotation is due",
        "/var/lib/app/secret_store/index.json",
        "http_request_duration_seconds_bucket",
        "stella-cli/2.3 on linux-x86_64",
        "docker://registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "https://registry.invalid:8443/v2/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "user@tcp(db.internal:3306)/app",
        "glpat-short, xoxb-short, sk_live_short, pypi-package, a ghp_ prefix alone",
    ]
    .map(str::to_owned)
    .to_vec();
    // Generated look-alikes: digests, ids, image data and near misses of each format.
    for _ in 0..4 {
        shapes.extend([
            format!("commit {}", rng.chars(HEX, 40)),
            format!(
                "request {}-{}-4{}-a{}-{}",
                rng.chars(HEX, 8),
                rng.chars(HEX, 4),
                rng.chars(HEX, 3),
                rng.chars(HEX, 3),
                rng.chars(HEX, 12)
            ),
            format!("data:image/png;base64,iVBORw0KGgo{}", rng.chars(B64, 300)),
            format!("ghp_{}", rng.chars(ALNUM, 35)),
            format!("ghp_{}", rng.chars(ALNUM, 37)),
            format!("my_ghp_{}", rng.chars(ALNUM, 36)),
            format!("AKIA{}", rng.chars(UPPER_DIGITS, 15)),
            format!("AKIA{}x", rng.chars(UPPER_DIGITS, 16)),
            format!("AIza{}", rng.chars(ALNUM, 34)),
            format!("npm_{}", rng.chars(ALNUM, 20)),
            format!("whsec_{}", rng.chars(ALNUM, 12)),
        ]);
    }
    shapes
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
        "bypass",
        "compass",
        "first_pass",
        "access_key_id",
        "monkey",
        "tokens",
    ];
    let shapes = look_alikes(&mut rng);
    let mut benign = Vec::new();
    for i in 0..1_200 {
        let key = keys[i % keys.len()];
        let value = match i % 3 {
            0 => Value::from(format!(
                "{} #{}",
                shapes[(rng.next() % shapes.len() as u64) as usize],
                rng.token(6)
            )),
            _ if i % 5 == 4 => Value::from(shapes[i % shapes.len()].clone()),
            1 => Value::I64(rng.int()),
            _ => Value::Array(Array::String(vec![StringValue::from(
                shapes[i % shapes.len()].clone(),
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

// ---------------------------------------------------------------------------------------
// Well-known credential formats, credential key names and the printed forms secrets hide in.
// ---------------------------------------------------------------------------------------

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

impl Rng {
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Words of random letters joined by spaces (a passphrase), at least `len` bytes.
    fn phrase(&mut self, len: usize) -> String {
        let mut out = String::new();
        while out.len() < len {
            if !out.is_empty() {
                out.push(' ');
            }
            let n = 4 + self.below(6);
            out.push_str(&self.chars(LOWER, n));
        }
        out
    }
}

// Types whose derived `Debug` output carries a secret (read only through `Debug`).
#[derive(Debug)]
#[allow(dead_code)]
struct Login {
    user: String,
    password: Option<String>,
    remember: bool,
}

#[derive(Debug)]
#[allow(dead_code)]
struct Token(String);

#[derive(Debug)]
#[allow(dead_code)]
struct Conf {
    token: Option<Token>,
    retries: u32,
}

#[derive(Debug)]
#[allow(dead_code)]
struct Inner {
    inner: String,
}

#[derive(Debug)]
#[allow(dead_code)]
struct Upstream {
    secret: Inner,
    retries: u32,
}

/// One generated credential.
struct Credential {
    kind: &'static str,
    /// The attribute key: a credential name for the key kinds, `note` otherwise.
    key: String,
    /// The attribute-value form.
    value: String,
    /// A free-text form (log message, span name, error string) carrying it.
    text: String,
    /// The secret material, at least 16 bytes.
    needle: String,
}

/// Sentences that carry a token the way services print them.
fn in_context(rng: &mut Rng, token: &str) -> String {
    match rng.below(6) {
        0 => format!("retrying with {token}"),
        1 => format!("error: upstream rejected credential {token} (401)"),
        2 => format!("call {token}"),
        3 => format!("{{\"auth\": \"{token}\", \"retry\": 3}}"),
        4 => format!("loaded '{token}' from the vault"),
        _ => token.to_owned(),
    }
}

/// A token format: the token, and its random part (the needle).
fn format_token(kind: &str, rng: &mut Rng) -> (String, String) {
    let with = |prefix: &str, body: String| (format!("{prefix}{body}"), body);
    match kind {
        "github_classic" => {
            let prefix = rng.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]);
            with(prefix, rng.chars(ALNUM, 36))
        }
        "github_fine_grained" => {
            let body = format!("{}_{}", rng.chars(ALNUM, 22), rng.chars(ALNUM, 59));
            with("github_pat_", body)
        }
        "gitlab" => {
            let prefix = rng.pick(&[
                "glpat-", "gloas-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-",
            ]);
            let n = 20 + rng.below(12);
            with(prefix, rng.chars(B64URL, n))
        }
        "npm" => with("npm_", rng.chars(ALNUM, 36)),
        "pypi" => {
            let n = 60 + rng.below(120);
            with("pypi-AgEIcHlwaS5vcmc", rng.chars(B64URL, n))
        }
        "slack_token" => {
            let prefix = rng.pick(&["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"]);
            let body = format!(
                "{}-{}-{}",
                rng.chars(b"0123456789", 11),
                rng.chars(b"0123456789", 12),
                rng.chars(ALNUM, 24)
            );
            with(prefix, body)
        }
        "stripe" => {
            let prefix = rng.pick(&["sk_live_", "sk_test_", "rk_live_", "rk_test_"]);
            let n = 24 + rng.below(76);
            with(prefix, rng.chars(ALNUM, n))
        }
        "stripe_webhook_secret" => with("whsec_", rng.chars(ALNUM, 32)),
        "google_api_key" => with("AIza", rng.chars(B64URL, 35)),
        _ => with(
            rng.pick(&["AKIA", "ASIA", "ABIA", "ACCA"]),
            rng.chars(UPPER_DIGITS, 16),
        ),
    }
}

const FORMAT_KINDS: [&str; 11] = [
    "github_classic",
    "github_fine_grained",
    "gitlab",
    "npm",
    "pypi",
    "slack_token",
    "stripe",
    "stripe_webhook_secret",
    "google_api_key",
    "aws_access_key_id",
    "slack_webhook",
];

const OTHER_KINDS: [&str; 21] = [
    "aws_secret_key",
    "azure_account_key",
    "azure_shared_access_key",
    "pem_private_key",
    "key_name_attribute",
    "key_name_in_json",
    "long_camel_case_key",
    "env_line",
    "debug_some",
    "debug_nested_wrapper",
    "debug_struct_wrapper",
    "pair_list",
    "tuple",
    "go_dsn",
    "url_slash_password",
    "percent_encoded_password",
    "percent_encoded_token",
    "percent_encoded_signature",
    "json_camel_case_key",
    "text_key_value",
    "x_header_in_text",
];

/// Credential names beyond the first corpus's (new names, suffixes, hyphen forms).
const CREDENTIAL_NAMES: [&str; 24] = [
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "secret_key",
    "app.jwt_secret_key",
    "passphrase",
    "ssh.key_passphrase",
    "db_pass",
    "DB_PASS",
    "MYAPP_DB_PASS",
    "redis-pass",
    "api-key",
    "x-goog-api-key",
    "http.request.header.x-goog-api-key",
    "private-key",
    "ocp-apim-subscription-key",
    "http.request.header.ocp-apim-subscription-key",
    "x-functions-key",
    "accountkey",
    "AccountKey",
    "SharedAccessKey",
    "secretAccessKey",
    "awsSecretAccessKey",
    "keyPassphrase",
    "stripe.webhook-secret",
];

const CLOUD_KINDS: [&str; 5] = [
    "slack_webhook",
    "aws_secret_key",
    "azure_account_key",
    "azure_shared_access_key",
    "pem_private_key",
];

const PRINTED_KINDS: [&str; 10] = [
    "debug_some",
    "debug_nested_wrapper",
    "debug_struct_wrapper",
    "pair_list",
    "tuple",
    "go_dsn",
    "url_slash_password",
    "percent_encoded_password",
    "percent_encoded_token",
    "percent_encoded_signature",
];

fn credential(kind: &'static str, rng: &mut Rng, i: usize) -> Credential {
    if FORMAT_KINDS.contains(&kind) && kind != "slack_webhook" {
        let (token, needle) = format_token(kind, rng);
        let text = in_context(rng, &token);
        return Credential {
            kind,
            key: "note".into(),
            value: token,
            text,
            needle,
        };
    }
    if CLOUD_KINDS.contains(&kind) {
        cloud_credential(kind, rng, i)
    } else if PRINTED_KINDS.contains(&kind) {
        printed_credential(kind, rng, i)
    } else {
        keyed_credential(kind, rng, i)
    }
}

/// Cloud and service credentials in their connection strings, files and URLs.
fn cloud_credential(kind: &'static str, rng: &mut Rng, i: usize) -> Credential {
    let note = |text: String, needle: String| Credential {
        kind,
        key: "note".into(),
        value: text.clone(),
        text,
        needle,
    };
    match kind {
        "slack_webhook" => {
            let secret = rng.chars(ALNUM, 24);
            let url = format!(
                "https://hooks.slack.com/services/T{}/B{}/{secret}",
                rng.chars(UPPER_DIGITS, 10),
                rng.chars(UPPER_DIGITS, 10)
            );
            note(format!("posting alert to {url} failed"), secret)
        }
        "aws_secret_key" => {
            let id = format!("AKIA{}", rng.chars(UPPER_DIGITS, 16));
            let secret = format!("{}A/a+{}", rng.chars(B64, 18), rng.chars(B64, 18));
            let text = match i % 4 {
                0 => format!("aws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
                1 => format!(r#"{{"AccessKeyId": "{id}", "SecretAccessKey": "{secret}"}}"#),
                2 => format!("creds {id} {secret} expired"),
                _ => format!("aws_secret_access_key     {secret}   shared-credentials-file"),
            };
            note(text, secret)
        }
        "azure_account_key" => {
            let key = format!("{}==", rng.chars(B64, 86));
            note(
                format!(
                    "DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey={key};EndpointSuffix=core.windows.net"
                ),
                key,
            )
        }
        "azure_shared_access_key" => {
            let key = format!("{}=", rng.chars(B64, 43));
            note(
                format!(
                    "Endpoint=sb://ns{i}.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={key}"
                ),
                key,
            )
        }
        _ => {
            let kind_name = rng.pick(&[
                "RSA PRIVATE KEY",
                "EC PRIVATE KEY",
                "DSA PRIVATE KEY",
                "OPENSSH PRIVATE KEY",
                "ENCRYPTED PRIVATE KEY",
                "PRIVATE KEY",
                "PGP PRIVATE KEY BLOCK",
            ]);
            let body = rng.chars(B64, 64);
            note(
                format!(
                    "key:\n-----BEGIN {kind_name}-----\n{body}\n{}\n-----END {kind_name}-----\n",
                    rng.chars(B64, 40)
                ),
                body,
            )
        }
    }
}

/// Credential key names: as attribute keys, and written in text, JSON, env lines and headers.
fn keyed_credential(kind: &'static str, rng: &mut Rng, i: usize) -> Credential {
    let note = |text: String, needle: String| Credential {
        kind,
        key: "note".into(),
        value: text.clone(),
        text,
        needle,
    };
    let tok = rng.token(24);
    match kind {
        "key_name_attribute" => {
            let key = rng.pick(&CREDENTIAL_NAMES).to_owned();
            Credential {
                kind,
                text: format!("{key}={tok}"),
                value: tok.clone(),
                key,
                needle: tok,
            }
        }
        "key_name_in_json" => {
            let key = rng.pick(&CREDENTIAL_NAMES);
            note(format!("{{\"user\": \"u{i}\", \"{key}\": \"{tok}\"}}"), tok)
        }
        "long_camel_case_key" => {
            let key = format!(
                "someVeryLongConfigurationSection{}ForTheUpstreamClientSecret",
                rng.chars(LOWER, 8)
            );
            Credential {
                kind,
                text: format!("{key}: {tok}"),
                value: tok.clone(),
                key,
                needle: tok,
            }
        }
        "env_line" => {
            let name = rng.pick(&[
                "AWS_SECRET_ACCESS_KEY",
                "DB_PASS",
                "GITHUB_TOKEN",
                "NPM_TOKEN",
                "SLACK_BOT_TOKEN",
                "DATABASE_PASSWORD",
                "STRIPE_SECRET_KEY",
                "MYSQL_PASS",
                "SMTP_PASS",
                "API_KEY",
                "CLIENT_SECRET",
            ]);
            let text = match i % 3 {
                0 => format!("HOME=/root\n{name}={tok}\nPATH=/usr/bin"),
                1 => format!("export {name}={tok}"),
                _ => format!("env: LANG=C {name}={tok} TZ=UTC"),
            };
            note(text, tok)
        }
        "json_camel_case_key" => {
            let key = rng.pick(&[
                "apiKey",
                "clientSecret",
                "accessToken",
                "secretAccessKey",
                "accountKey",
                "keyPassphrase",
                "jwtSecretKey",
            ]);
            note(format!("body {{\"{key}\":\"{tok}\",\"n\":1}}"), tok)
        }
        "text_key_value" => {
            let key = rng.pick(&CREDENTIAL_NAMES);
            let sep = rng.pick(&["=", ": ", " = ", ":"]);
            note(format!("config {key}{sep}{tok} applied"), tok)
        }
        _ => {
            let name = rng.pick(&[
                "X-Goog-Api-Key",
                "Ocp-Apim-Subscription-Key",
                "x-functions-key",
                "Api-Key",
            ]);
            note(format!("sent headers {name}: {tok}\r\naccept: */*"), tok)
        }
    }
}

/// The printed forms secrets hide in: `Debug` output, pairs, DSNs, URLs, percent-encoding.
fn printed_credential(kind: &'static str, rng: &mut Rng, i: usize) -> Credential {
    let note = |text: String, needle: String| Credential {
        kind,
        key: "note".into(),
        value: text.clone(),
        text,
        needle,
    };
    let tok = rng.token(24);
    match kind {
        "debug_some" => {
            let phrase = rng.phrase(24);
            let text = if i.is_multiple_of(2) {
                // A derived `Debug`, as `?field` records it.
                let login = Login {
                    user: format!("u{i}"),
                    password: Some(phrase.clone()),
                    remember: true,
                };
                format!("{login:?}")
            } else {
                let key = rng.pick(&["token", "secret", "client_secret", "api_key", "passphrase"]);
                format!("Login {{ user: \"u{i}\", {key}: Some(\"{phrase}\"), remember: true }}")
            };
            note(text, phrase)
        }
        "debug_nested_wrapper" => {
            let phrase = format!("{}) {}", rng.phrase(12), rng.phrase(12));
            let conf = Conf {
                token: Some(Token(phrase.clone())),
                retries: 3,
            };
            note(format!("{conf:?}"), phrase)
        }
        "debug_struct_wrapper" => {
            let phrase = rng.phrase(24);
            let conf = Upstream {
                secret: Inner {
                    inner: phrase.clone(),
                },
                retries: 3,
            };
            note(format!("loaded {conf:?}"), phrase)
        }
        "pair_list" => {
            let phrase = rng.phrase(20);
            let form = vec![
                ("grant_type", "client_credentials".to_owned()),
                ("client_secret", phrase.clone()),
            ];
            note(format!("form {form:?}"), phrase)
        }
        "tuple" => {
            let phrase = rng.phrase(20);
            let text = if i.is_multiple_of(2) {
                format!("{:?}", ("password", &phrase))
            } else {
                format!("{:?}", ["token", phrase.as_str()])
            };
            note(text, phrase)
        }
        "go_dsn" => {
            let pass = format!("{}!/{}", rng.token(10), rng.token(10));
            let dsn = format!(
                "svc{}:{pass}@tcp(db{i}.internal:3306)/app?parseTime=true",
                i % 7
            );
            let text = if i.is_multiple_of(2) {
                format!("connecting to {dsn}")
            } else {
                format!("dsn={dsn}")
            };
            note(text, pass)
        }
        "url_slash_password" => {
            let pass = format!("{}/{}", rng.token(10), rng.token(10));
            note(
                format!("GET https://svc:{pass}@registry.invalid/v2/ 401"),
                pass,
            )
        }
        "percent_encoded_password" => {
            let eq = rng.pick(&["%3D", "%3d"]);
            note(
                format!("GET /login%3Fuser{eq}bob%26password{eq}{tok}%26next{eq}1"),
                tok,
            )
        }
        "percent_encoded_token" => note(
            format!("redirect=%2Fcb%3Fa%3D1%26token%3D{tok}%26b%3D2"),
            tok,
        ),
        _ => {
            let sig = rng.chars(HEX, 64);
            note(
                format!(
                    "next=https%3A%2F%2Fs3.invalid%2Fo%3Fx%3D1%26X-Amz-Signature%3D{sig}%26y%3D2"
                ),
                sig,
            )
        }
    }
}

fn credentials(n: usize) -> Vec<Credential> {
    let mut rng = Rng(0xc0ff_ee15_dead_beef);
    let kinds: Vec<&'static str> = FORMAT_KINDS
        .iter()
        .chain(OTHER_KINDS.iter())
        .copied()
        .collect();
    (0..n)
        .map(|i| credential(kinds[i % kinds.len()], &mut rng, i))
        .collect()
}

/// Finds which of many 16-byte probes occur in a text in one pass: a bitmap of the probes'
/// first eight bytes screens each position, a map confirms.
struct Probes {
    bits: Vec<u64>,
    owners: std::collections::HashMap<[u8; 16], Vec<usize>>,
}

impl Probes {
    const BITS: u32 = 24;

    fn slot(head: [u8; 8]) -> usize {
        (u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::BITS)) as usize
    }

    /// Each needle's first and last 16 bytes.
    fn new(needles: impl Iterator<Item = (usize, String)>) -> Probes {
        let mut probes = Probes {
            bits: vec![0; (1 << Self::BITS) / 64],
            owners: Default::default(),
        };
        for (id, needle) in needles {
            let bytes = needle.as_bytes();
            assert!(bytes.len() >= 16, "needle {needle:?} is too short");
            for part in [&bytes[..16], &bytes[bytes.len() - 16..]] {
                let probe: [u8; 16] = part.try_into().unwrap();
                let slot = Self::slot(probe[..8].try_into().unwrap());
                probes.bits[slot / 64] |= 1 << (slot % 64);
                probes.owners.entry(probe).or_default().push(id);
            }
        }
        probes
    }

    /// The ids of the needles whose first or last 16 bytes occur in `text`.
    fn found_in(&self, text: &[u8]) -> std::collections::BTreeSet<usize> {
        let mut found = std::collections::BTreeSet::new();
        for window in text.windows(16) {
            let slot = Self::slot(window[..8].try_into().unwrap());
            if self.bits[slot / 64] & (1 << (slot % 64)) != 0
                && let Some(ids) = self.owners.get(window)
            {
                found.extend(ids.iter().copied());
            }
        }
        found
    }
}

/// Five channels, chosen so every kind goes through every channel.
fn inject_credential(
    credential: &Credential,
    channel: usize,
    meter: &opentelemetry::metrics::Meter,
) {
    match channel {
        // A log message.
        0 => tracing::warn!("{}", credential.text),
        // A span name and an error string.
        1 => {
            let span = tracing::info_span!("op", otel.name = %credential.text);
            span.set_status(Status::error(credential.text.clone()));
            span.in_scope(|| {});
        }
        // An attribute value (under its key), and an event name.
        2 => {
            let span = tracing::info_span!("op");
            span.set_attribute(credential.key.clone(), credential.value.clone());
            span.add_event(credential.text.clone(), vec![]);
            span.in_scope(|| {});
        }
        // A log field value, inside a span.
        3 => tracing::info_span!("op").in_scope(|| {
            tracing::error!(detail = %credential.text, "request failed");
        }),
        // A metric attribute (one in four of these, to bound the series).
        _ => {
            meter.u64_counter("corpus_credentials_total").build().add(
                1,
                &[KeyValue::new(
                    credential.key.clone(),
                    credential.value.clone(),
                )],
            );
        }
    }
}

#[test]
fn generated_credentials_in_every_printed_form_never_leave_the_process() {
    const CREDENTIALS: usize = 10_000;
    let (dir, exporters, telemetry) = pipeline("credentials");
    let credentials = credentials(CREDENTIALS);
    let kinds = FORMAT_KINDS.len() + OTHER_KINDS.len();
    let meter = telemetry.meter("credentials");
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        for (i, credential) in credentials.iter().enumerate() {
            // The channel shifts by one each cycle of kinds; the metric channel takes one
            // in four of its turns (the others go to a log message).
            let mut channel = (i / kinds + i) % 5;
            if channel == 4 && (i / 5) % 4 != 0 {
                channel = 0;
            }
            inject_credential(credential, channel, &meter);
        }
    });
    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    telemetry.shutdown();

    let mut output = all_output(&exporters, dir.path());
    output.push_str(&exposition);
    assert!(
        output.len() > 1_000_000,
        "the outputs hold the injected records"
    );
    let probes = Probes::new(credentials.iter().map(|c| c.needle.clone()).enumerate());
    let leaked = probes.found_in(output.as_bytes());
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, credential) in credentials.iter().enumerate() {
        let entry = per_kind.entry(credential.kind).or_default();
        entry.0 += 1;
        entry.1 += usize::from(leaked.contains(&i));
    }
    assert!(
        leaked.is_empty(),
        "{} of {} credentials leaked; per kind (injected, leaked): {:?}; e.g. {:?}",
        leaked.len(),
        credentials.len(),
        per_kind
            .iter()
            .filter(|(_, (_, l))| *l > 0)
            .collect::<Vec<_>>(),
        leaked
            .iter()
            .take(3)
            .map(|&i| &credentials[i].text)
            .collect::<Vec<_>>()
    );
    assert_eq!(per_kind.len(), kinds);
    assert!(per_kind.values().all(|&(n, _)| n >= 300), "{per_kind:?}");
    let counts: BTreeMap<Rule, u64> = telemetry.redactor().counts().into_iter().collect();
    for rule in [
        Rule::CredentialFormat,
        Rule::PrivateKey,
        Rule::UrlUserinfo,
        Rule::UrlQuery,
        Rule::EmbeddedKey,
        Rule::SensitiveKey,
    ] {
        assert!(counts[&rule] > 0, "{rule:?} never fired: {counts:?}");
    }
}
