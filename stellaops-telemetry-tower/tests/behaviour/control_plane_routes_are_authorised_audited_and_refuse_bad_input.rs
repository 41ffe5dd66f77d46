//! The control plane: every route behind bearer tokens (EdDSA, ES256 and RS256 keys from a
//! JWKS file; unsigned, tampered, expired, early, foreign, unknown-key tokens refused with 401,
//! missing scopes and other tenants with 403), one audit line per call with no token text in
//! any log line, bad input refused with a JSON error naming the field, the incident lifecycle
//! through the API, the `/metrics` guard, configuration from the environment, hostile
//! tokens and bodies that never panic, and forensic exports: signed bundles of the token's
//! tenant streamed in bounded chunks from a store a real pipeline wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::{HeaderMap, Method, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{self, KeyPair};
    use serde_json::{Value, json};
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_core::{AUDIT_TARGET, Telemetry};
    use stellaops_telemetry_tower::control::{ControlBody, ControlPlane, JwtVerifier};
    use tower::ServiceExt;

    pub const ISSUER: &str = "https://id.stellaops.test";
    pub const AUDIENCE: &str = "stellaops-telemetry";
    pub const READ: &str = "telemetry:read";
    pub const ADMIN: &str = "telemetry:admin";

    /// The signing keys of the test, their JWKS, and a key of no JWKS.
    pub struct Keys {
        pub ed: Vec<u8>,
        pub ec: Vec<u8>,
        pub rsa: Vec<u8>,
        pub stranger: Vec<u8>,
        pub jwks: String,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Alg {
        Ed,
        Es,
        Rs,
    }

    impl Alg {
        pub const ALL: [Alg; 3] = [Alg::Ed, Alg::Es, Alg::Rs];

        pub fn kid(self) -> &'static str {
            match self {
                Alg::Ed => "ed-1",
                Alg::Es => "es-1",
                Alg::Rs => "rs-1",
            }
        }
    }

    /// ring's system random source as a `rand_core` generator (for the RSA key).
    struct RingRng(SystemRandom);

    impl rsa::rand_core::TryRng for RingRng {
        type Error = std::io::Error;

        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut b = [0; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }

        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            ring::rand::SecureRandom::fill(&self.0, dst)
                .map_err(|_| std::io::Error::other("no randomness"))
        }
    }

    impl rsa::rand_core::TryCryptoRng for RingRng {}

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn generate() -> Keys {
        let rng = SystemRandom::new();
        let ed = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed_public = signature::Ed25519KeyPair::from_pkcs8(ed.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let stranger = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let ec = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let point = signature::EcdsaKeyPair::from_pkcs8(alg, ec.as_ref(), &rng)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let rsa_key = rsa::PrivateKey::new(&mut RingRng(SystemRandom::new()), 2048).unwrap();
        let rsa_der = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_der(&rsa_key).unwrap();
        let (n, e) = {
            use rsa::traits::PublicKeyParts;
            (rsa_key.n().to_be_bytes(), rsa_key.e().to_be_bytes())
        };
        let strip = |b: &[u8]| {
            b.iter()
                .skip_while(|&&x| x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        let jwks = json!({ "keys": [
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "use": "sig",
              "x": b64(&ed_public) },
            { "kty": "EC", "crv": "P-256", "kid": "es-1", "alg": "ES256",
              "x": b64(&point[1..33]), "y": b64(&point[33..]) },
            { "kty": "RSA", "kid": "rs-1", "alg": "RS256",
              "n": b64(&strip(&n)), "e": b64(&strip(&e)) },
            // Skipped: an encryption key and a symmetric key.
            { "kty": "RSA", "kid": "enc-1", "use": "enc", "n": b64(&strip(&n)), "e": b64(&strip(&e)) },
            { "kty": "oct", "kid": "hs-1", "k": b64(b"a shared secret that must never verify") },
        ]});
        Keys {
            ed: ed.as_ref().to_vec(),
            ec: ec.as_ref().to_vec(),
            rsa: rsa_der.as_bytes().to_vec(),
            stranger: stranger.as_ref().to_vec(),
            jwks: jwks.to_string(),
        }
    }

    /// The keys, generated once per test binary (a verifier is built from them, which also
    /// gives jsonwebtoken its crypto provider for minting).
    pub fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let keys = generate();
            let verifier = JwtVerifier::from_jwks_json(&keys.jwks, ISSUER, AUDIENCE).unwrap();
            assert_eq!(verifier.key_count(), 3, "{verifier:?}");
            keys
        })
    }

    pub fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// What a minted token says.
    #[derive(Clone, Debug)]
    pub struct Spec {
        pub alg: Alg,
        pub kid: Option<String>,
        pub claims: Value,
        pub stranger: bool,
    }

    impl Spec {
        pub fn new(scope: &str) -> Spec {
            Spec {
                alg: Alg::Ed,
                kid: Some("ed-1".into()),
                claims: json!({
                    "sub": "ops@example",
                    "iss": ISSUER,
                    "aud": AUDIENCE,
                    "exp": now() + 600,
                    "iat": now(),
                    "scope": scope,
                }),
                stranger: false,
            }
        }

        pub fn alg(mut self, alg: Alg) -> Spec {
            self.alg = alg;
            self.kid = Some(alg.kid().into());
            self
        }

        pub fn claim(mut self, name: &str, value: Value) -> Spec {
            self.claims[name] = value;
            self
        }

        pub fn without(mut self, name: &str) -> Spec {
            self.claims.as_object_mut().unwrap().remove(name);
            self
        }

        pub fn kid(mut self, kid: Option<&str>) -> Spec {
            self.kid = kid.map(str::to_owned);
            self
        }

        /// Signed by a key of no JWKS, under a kid the JWKS holds.
        pub fn stranger(mut self) -> Spec {
            self.stranger = true;
            self
        }

        pub fn mint(&self) -> String {
            let keys = keys();
            let (algorithm, key) = match (self.alg, self.stranger) {
                (Alg::Ed, true) => (Algorithm::EdDSA, EncodingKey::from_ed_der(&keys.stranger)),
                (Alg::Ed, false) => (Algorithm::EdDSA, EncodingKey::from_ed_der(&keys.ed)),
                (Alg::Es, _) => (Algorithm::ES256, EncodingKey::from_ec_der(&keys.ec)),
                (Alg::Rs, _) => (Algorithm::RS256, EncodingKey::from_rsa_der(&keys.rsa)),
            };
            let mut header = Header::new(algorithm);
            header.kid.clone_from(&self.kid);
            jsonwebtoken::encode(&header, &self.claims, &key).unwrap()
        }
    }

    /// A good token with `scope` (space-separated), bound to `tenant` when given.
    pub fn token(scope: &str, tenant: Option<&str>) -> String {
        let mut spec = Spec::new(scope);
        if let Some(t) = tenant {
            spec = spec.claim("stellaops:tenant", json!(t));
        }
        spec.mint()
    }

    /// An unsigned token (`alg: none`) with good claims and a known kid.
    pub fn unsigned(scope: &str) -> String {
        let header = b64(br#"{"alg":"none","typ":"JWT","kid":"ed-1"}"#);
        let payload = b64(Spec::new(scope).claims.to_string().as_bytes());
        format!("{header}.{payload}.")
    }

    /// A pipeline whose JSON log lines are captured, and its control plane.
    pub struct Fixture {
        pub exporters: TestExporters,
        pub telemetry: Telemetry,
        pub control: ControlPlane,
        pub _dir: tempfile::TempDir,
    }

    pub fn verifier_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, &keys().jwks).unwrap();
        (dir, path)
    }

    pub fn fixture() -> Fixture {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("control-test")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let (dir, path) = verifier_file();
        let verifier = JwtVerifier::from_jwks_file(&path, ISSUER, AUDIENCE).unwrap();
        let control = ControlPlane::for_telemetry(&telemetry)
            .verifier(verifier)
            .build();
        Fixture {
            exporters,
            telemetry,
            control,
            _dir: dir,
        }
    }

    /// An answer: status, headers and the JSON body.
    #[derive(Debug)]
    pub struct Answer {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: Value,
    }

    impl Answer {
        pub fn error(&self) -> &str {
            self.body["error"].as_str().unwrap_or_default()
        }

        pub fn field(&self) -> Option<&str> {
            self.body["field"].as_str()
        }
    }

    pub async fn call_with<S>(service: S, request: Request<String>) -> Answer
    where
        S: tower::Service<
                Request<String>,
                Response = http::Response<ControlBody>,
                Error = std::convert::Infallible,
            >,
    {
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/json",
            "{status}"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        // A refusal never holds token text (every JWT segment starts `eyJ`); the collector
        // configuration holds the redaction pattern for JWTs, so answers are not checked.
        if !status.is_success() {
            assert!(!text.contains("eyJ"), "a refusal holds token text: {text}");
        }
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn request(method: Method, path: &str, token: Option<&str>, body: &str) -> Request<String> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(body.to_owned()).unwrap()
    }

    pub async fn call(
        control: &ControlPlane,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> Answer {
        call_with(control.clone(), request(method, path, token, body)).await
    }

    /// The control plane's audit lines so far.
    pub fn audit_lines(exporters: &TestExporters) -> Vec<Value> {
        exporters
            .json_logs()
            .json()
            .into_iter()
            .filter(|l| l["target"] == AUDIT_TARGET && l["control"] == "control_plane")
            .collect()
    }

    /// Waits (up to 10 s) until `count` audit lines were written; the tests count work, they
    /// never assert on timing.
    pub fn audit_lines_at_least(exporters: &TestExporters, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = audit_lines(exporters);
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// No captured log line holds any part of a token (every JWT segment starts `eyJ`).
    pub fn assert_no_token_text(exporters: &TestExporters, tokens: &[String]) {
        for line in exporters.json_logs().lines() {
            assert!(!line.contains("eyJ"), "a log line holds token text: {line}");
            for token in tokens {
                for part in token.split('.').filter(|p| p.len() >= 8) {
                    assert!(
                        !line.contains(part),
                        "a log line holds a token part: {line}"
                    );
                }
            }
        }
    }

    pub fn mode_body(tenant: &str, mode: &str) -> String {
        json!({ "tenant": tenant, "mode": mode, "reason": "CVE triage", "ttl": "30m" }).to_string()
    }
}

mod auth_matrix {
    use http::{Method, StatusCode, header};
    use serde_json::json;

    use super::support::*;

    /// One route of the matrix: how to call it, its scope, and what a token bound to another
    /// tenant gets.
    struct Route {
        method: Method,
        path: &'static str,
        template: &'static str,
        body: String,
        scope: &'static str,
        other_tenant: StatusCode,
    }

    fn routes() -> Vec<Route> {
        vec![
            Route {
                method: Method::GET,
                path: "/config/profiles",
                template: "/config/profiles",
                body: String::new(),
                scope: READ,
                other_tenant: StatusCode::OK,
            },
            Route {
                method: Method::GET,
                path: "/config/profile/forensic",
                template: "/config/profile/{name}",
                body: String::new(),
                scope: READ,
                other_tenant: StatusCode::OK,
            },
            Route {
                method: Method::POST,
                path: "/incidents/mode",
                template: "/incidents/mode",
                body: mode_body("acme", "forensic"),
                scope: ADMIN,
                other_tenant: StatusCode::FORBIDDEN,
            },
            Route {
                method: Method::GET,
                path: "/incidents/status",
                template: "/incidents/status",
                body: String::new(),
                scope: READ,
                other_tenant: StatusCode::OK,
            },
        ]
    }

    /// A case: a token (or none), the status it gets, and the challenge's error when 401.
    struct Case {
        name: &'static str,
        token: Option<String>,
        status: StatusCode,
        invalid_token: bool,
        actor: &'static str,
    }

    fn cases(route: &Route) -> Vec<Case> {
        let both = format!("{READ} {ADMIN}");
        let refused = |name, token: String| Case {
            name,
            token: Some(token),
            status: StatusCode::UNAUTHORIZED,
            invalid_token: true,
            actor: "anonymous",
        };
        let mut tampered = token(&both, None);
        let middle = tampered.len() - 20;
        let flipped = if &tampered[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        tampered.replace_range(middle..=middle, flipped);
        let mut cases = vec![
            Case {
                name: "no token",
                token: None,
                status: StatusCode::UNAUTHORIZED,
                invalid_token: false,
                actor: "anonymous",
            },
            refused("tampered signature", tampered),
            refused("signed by a stranger", Spec::new(&both).stranger().mint()),
            refused(
                "expired",
                Spec::new(&both).claim("exp", json!(now() - 3600)).mint(),
            ),
            refused(
                "not yet valid",
                Spec::new(&both).claim("nbf", json!(now() + 3600)).mint(),
            ),
            refused(
                "wrong issuer",
                Spec::new(&both)
                    .claim("iss", json!("https://evil.test"))
                    .mint(),
            ),
            refused(
                "wrong audience",
                Spec::new(&both).claim("aud", json!("billing")).mint(),
            ),
            refused("no exp", Spec::new(&both).without("exp").mint()),
            refused("alg none", unsigned(&both)),
            refused("unknown kid", Spec::new(&both).kid(Some("nope")).mint()),
            refused("no kid", Spec::new(&both).kid(None).mint()),
            refused(
                "conflicting tenants",
                Spec::new(&both)
                    .claim("stellaops:tenant", json!("acme"))
                    .claim("tenant", json!("globex"))
                    .mint(),
            ),
            Case {
                name: "missing scope",
                token: Some(token("obs:read", None)),
                status: StatusCode::FORBIDDEN,
                invalid_token: false,
                actor: "ops@example",
            },
            Case {
                name: "other tenant",
                token: Some(token(&both, Some("globex"))),
                status: route.other_tenant,
                invalid_token: false,
                actor: "ops@example",
            },
            Case {
                name: "expired within the leeway",
                token: Some(Spec::new(&both).claim("exp", json!(now() - 20)).mint()),
                status: StatusCode::OK,
                invalid_token: false,
                actor: "ops@example",
            },
        ];
        for alg in Alg::ALL {
            cases.push(Case {
                name: "good token",
                token: Some(Spec::new(&both).alg(alg).mint()),
                status: StatusCode::OK,
                invalid_token: false,
                actor: "ops@example",
            });
        }
        cases
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_route_answers_the_auth_matrix_with_one_audit_line_per_call() {
        let f = fixture();
        let mut calls = 0;
        let mut tokens = Vec::new();
        for route in routes() {
            for case in cases(&route) {
                let what = format!("{} {} ({})", route.method, route.path, case.name);
                let answer = call(
                    &f.control,
                    route.method.clone(),
                    route.path,
                    case.token.as_deref(),
                    &route.body,
                )
                .await;
                assert_eq!(answer.status, case.status, "{what}: {answer:?}");
                let challenge = answer.headers.get(header::WWW_AUTHENTICATE);
                if case.status == StatusCode::UNAUTHORIZED {
                    let expected = if case.invalid_token {
                        "Bearer realm=\"stellaops-telemetry\", error=\"invalid_token\""
                    } else {
                        "Bearer realm=\"stellaops-telemetry\""
                    };
                    assert_eq!(challenge.unwrap(), expected, "{what}");
                    assert!(
                        answer.error().contains("bearer token"),
                        "{what}: {answer:?}"
                    );
                }
                if case.name == "missing scope" {
                    assert_eq!(
                        answer.error(),
                        format!("missing scope {}", route.scope),
                        "{what}"
                    );
                    let challenge = challenge.unwrap().to_str().unwrap();
                    assert!(
                        challenge.contains("insufficient_scope"),
                        "{what}: {challenge}"
                    );
                }
                calls += 1;
                let lines = audit_lines_at_least(&f.exporters, calls);
                assert_eq!(lines.len(), calls, "{what}: one audit line per call");
                let line = &lines[calls - 1];
                assert_eq!(line["actor"], case.actor, "{what}: {line}");
                assert_eq!(line["route"], route.template, "{what}: {line}");
                assert_eq!(line["method"], route.method.as_str(), "{what}: {line}");
                assert_eq!(line["outcome"], case.status.as_u16(), "{what}: {line}");
                tokens.extend(case.token);
            }
        }
        assert_no_token_text(&f.exporters, &tokens);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_token_bound_to_a_tenant_acts_and_sees_only_that_tenant() {
        let f = fixture();
        let admin = format!("{READ} {ADMIN}");
        for tenant in ["acme", "globex"] {
            let answer = call(
                &f.control,
                Method::POST,
                "/incidents/mode",
                Some(&token(&admin, None)),
                &mode_body(tenant, "forensic"),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        }
        let bound = token(&admin, Some("acme"));
        let status = call(
            &f.control,
            Method::GET,
            "/incidents/status",
            Some(&bound),
            "",
        )
        .await;
        let tenants: Vec<&str> = status.body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["acme"]);
        let unbound = call(
            &f.control,
            Method::GET,
            "/incidents/status",
            Some(&token(READ, None)),
            "",
        )
        .await;
        assert_eq!(unbound.body["incidents"].as_array().unwrap().len(), 2);
        let foreign = call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&bound),
            &mode_body("globex", "default"),
        )
        .await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN);
        assert_eq!(foreign.field(), Some("tenant"));
        assert!(f.telemetry.incidents().is_active("globex"));
        let line = audit_lines_at_least(&f.exporters, 5).pop().unwrap();
        assert_eq!(line["target_tenant"], "globex", "{line}");
        assert_eq!(line["outcome"], 403, "{line}");
        // The plain `tenant` claim binds as well.
        let plain = Spec::new(&admin).claim("tenant", json!("acme")).mint();
        let refused = call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&plain),
            &mode_body("globex", "default"),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_a_verifier_every_call_is_refused_and_audited() {
        let exporters = stellaops_telemetry_core::testing::TestExporters::new();
        let telemetry = stellaops_telemetry_core::Telemetry::builder("unguarded")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let control =
            stellaops_telemetry_tower::control::ControlPlane::for_telemetry(&telemetry).build();
        let good = token(&format!("{READ} {ADMIN}"), None);
        for (i, route) in routes().into_iter().enumerate() {
            for token in [None, Some(good.as_str())] {
                let answer = call(
                    &control,
                    route.method.clone(),
                    route.path,
                    token,
                    &route.body,
                )
                .await;
                assert_eq!(
                    answer.status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{}",
                    route.path
                );
                assert_eq!(answer.error(), "no token verifier configured");
            }
            let lines = audit_lines_at_least(&exporters, 2 * (i + 1));
            assert_eq!(lines.len(), 2 * (i + 1));
            assert!(
                lines
                    .iter()
                    .all(|l| l["outcome"] == 503 && l["actor"] == "anonymous")
            );
        }
        assert!(telemetry.incidents().status().is_empty());
        assert_no_token_text(&exporters, &[good]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unknown_routes_and_wrong_methods_are_refused_before_any_token_is_read() {
        let f = fixture();
        let answer = call(&f.control, Method::GET, "/config/nothing", None, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        let answer = call(&f.control, Method::GET, "/incidents/mode", None, "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.headers[header::ALLOW], "POST");
        let answer = call(&f.control, Method::DELETE, "/incidents/status", None, "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.headers[header::ALLOW], "GET");
        let lines = audit_lines_at_least(&f.exporters, 3);
        let outcomes: Vec<_> = lines
            .iter()
            .map(|l| l["outcome"].as_u64().unwrap())
            .collect();
        assert_eq!(outcomes, [404, 405, 405]);
        assert_eq!(lines[0]["route"], "/*");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_authorization_header_must_be_one_bearer_token() {
        let f = fixture();
        let good = token(READ, None);
        for value in [
            format!("Basic {good}"),
            "Bearer".to_owned(),
            "Bearer    ".to_owned(),
            format!("Bearer {good} extra"),
            format!("Bearer {}", "a".repeat(9000)),
        ] {
            let request = http::Request::get("/incidents/status")
                .header(header::AUTHORIZATION, value.as_str())
                .body(String::new())
                .unwrap();
            let answer = call_with(f.control.clone(), request).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{value:.40}");
        }
        let request = http::Request::get("/incidents/status")
            .header(header::AUTHORIZATION, format!("bearer {good}"))
            .header(header::AUTHORIZATION, format!("Bearer {good}"))
            .body(String::new())
            .unwrap();
        let answer = call_with(f.control.clone(), request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "two headers");
        let request = http::Request::get("/incidents/status")
            .header(header::AUTHORIZATION, format!("bearer  {good}"))
            .body(String::new())
            .unwrap();
        let answer = call_with(f.control.clone(), request).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "the scheme is case-insensitive"
        );
        assert_no_token_text(&f.exporters, &[good]);
    }
}

mod bad_input {
    use http::{Method, StatusCode, header};
    use serde_json::json;

    use super::support::*;

    async fn post(f: &Fixture, body: &str) -> Answer {
        let admin = token(ADMIN, None);
        call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&admin),
            body,
        )
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bad_bodies_are_refused_with_400_naming_the_field() {
        let f = fixture();
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("{".into(), None, "malformed body"),
            ("".into(), None, "the body is empty"),
            ("[]".into(), None, "malformed body"),
            ("\"forensic\"".into(), None, "malformed body"),
            (
                json!({"mode": "forensic", "reason": "x"}).to_string(),
                Some("tenant"),
                "missing tenant",
            ),
            (
                json!({"tenant": 7, "mode": "forensic"}).to_string(),
                Some("tenant"),
                "tenant must be a string",
            ),
            (
                json!({"tenant": "acme"}).to_string(),
                Some("mode"),
                "missing mode",
            ),
            (
                json!({"tenant": "acme", "mode": "panic"}).to_string(),
                Some("mode"),
                "unknown mode `panic`",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic"}).to_string(),
                Some("reason"),
                "missing reason",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "x", "ttl": "25h"})
                    .to_string(),
                Some("ttl"),
                "invalid ttl `25h`",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "x", "ttl": "0s"})
                    .to_string(),
                Some("ttl"),
                "invalid ttl",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "x", "ttl": "soon"})
                    .to_string(),
                Some("ttl"),
                "invalid ttl",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "x", "ttl": 30}).to_string(),
                Some("ttl"),
                "ttl must be a string",
            ),
            (
                json!({"tenant": "acme corp", "mode": "forensic", "reason": "x"}).to_string(),
                Some("tenant"),
                "invalid tenant `acme corp`: a tenant id is made of",
            ),
            (
                json!({"tenant": "", "mode": "default"}).to_string(),
                Some("tenant"),
                "invalid tenant ``: it is empty",
            ),
            (
                json!({"tenant": "a".repeat(200), "mode": "default"}).to_string(),
                Some("tenant"),
                "at most 128 bytes",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "r".repeat(600)})
                    .to_string(),
                Some("reason"),
                "invalid reason",
            ),
            (
                json!({"tenant": "acme", "mode": "forensic", "reason": "x", "admin": true})
                    .to_string(),
                Some("admin"),
                "unknown field `admin`",
            ),
        ];
        for (body, field, error) in cases {
            let answer = post(&f, &body).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{body:.80}: {answer:?}"
            );
            assert_eq!(answer.field(), field, "{body:.80}: {answer:?}");
            assert!(answer.error().contains(error), "{body:.80}: {answer:?}");
        }
        assert!(f.telemetry.incidents().status().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_over_16_kib_is_refused_with_413_whether_declared_or_not() {
        let f = fixture();
        let reason = "r".repeat(17 * 1024);
        let body = json!({"tenant": "acme", "mode": "forensic", "reason": reason}).to_string();
        let answer = post(&f, &body).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
        let request = http::Request::post("/incidents/mode")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", token(ADMIN, None)),
            )
            .header(header::CONTENT_LENGTH, "1000000")
            .body(String::new())
            .unwrap();
        let answer = call_with(f.control.clone(), request).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
        let lines = audit_lines_at_least(&f.exporters, 2);
        assert!(lines.iter().all(|l| l["outcome"] == 413), "{lines:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unknown_profiles_and_inactive_tenants_are_404_naming_the_field() {
        let f = fixture();
        let read = token(READ, None);
        let long = format!("/config/profile/{}", "x".repeat(500));
        for path in ["/config/profile/nope", "/config/profile/%00", long.as_str()] {
            let answer = call(&f.control, Method::GET, path, Some(&read), "").await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path:.40}");
            assert_eq!(answer.field(), Some("name"));
            assert!(answer.error().starts_with("unknown profile"), "{answer:?}");
            assert!(answer.error().len() < 200, "{answer:?}");
        }
        let answer = post(
            &f,
            &json!({"tenant": "acme", "mode": "default"}).to_string(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.field(), Some("tenant"));
        assert_eq!(answer.error(), "no incident is active for tenant `acme`");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn profiles_and_one_profile_with_its_collector_configuration() {
        let f = fixture();
        let read = token(READ, None);
        let all = call(
            &f.control,
            Method::GET,
            "/telemetry/config/profiles",
            Some(&read),
            "",
        )
        .await;
        assert_eq!(all.status, StatusCode::OK);
        let names: Vec<&str> = all.body["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["default", "forensic", "airgap"]);
        let one = call(
            &f.control,
            Method::GET,
            "/config/profile/AirGap/",
            Some(&read),
            "",
        )
        .await;
        assert_eq!(one.status, StatusCode::OK, "{one:?}");
        assert_eq!(one.body["profile"]["name"], "airgap");
        let yaml = one.body["collector"].as_str().unwrap();
        let expected = stellaops_telemetry_core::artefacts::collector(
            &stellaops_telemetry_core::Profile::by_name("airgap").unwrap(),
        )
        .unwrap();
        assert_eq!(yaml, expected.contents);
        assert!(yaml.contains("receivers:"), "{yaml:.200}");
    }
}

mod lifecycle {
    use std::time::Duration;

    use http::{Method, StatusCode};
    use serde_json::json;
    use stellaops_telemetry_core::Incident;

    use super::support::*;

    #[tokio::test(flavor = "current_thread")]
    async fn start_show_extend_and_stop_an_incident_through_the_api() {
        let f = fixture();
        let admin = Spec::new(&format!("{READ} {ADMIN}"))
            .claim("sub", json!("alice@ops"))
            .alg(Alg::Es)
            .mint();
        let started = call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&admin),
            &json!({"tenant": "acme", "mode": "forensic", "reason": "CVE triage", "ttl": "30m"})
                .to_string(),
        )
        .await;
        assert_eq!(started.status, StatusCode::OK, "{started:?}");
        let incident: Incident = serde_json::from_value(started.body["incident"].clone()).unwrap();
        assert_eq!(incident.tenant, "acme");
        assert_eq!(incident.actor, "alice@ops");
        assert_eq!(incident.reason, "CVE triage");
        assert_eq!(
            incident.expires.duration_since(incident.started).unwrap(),
            Duration::from_secs(30 * 60)
        );
        assert!(f.telemetry.incidents().is_active("acme"));
        assert!(!f.telemetry.incidents().is_active("globex"));

        let status = call(
            &f.control,
            Method::GET,
            "/incidents/status",
            Some(&admin),
            "",
        )
        .await;
        assert_eq!(status.body["incidents"], json!([started.body["incident"]]));

        // Without ttl: the default 60 minutes; the incident is extended, same id.
        let extended = call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&admin),
            &json!({"tenant": "acme", "mode": "forensic", "reason": "still triaging"}).to_string(),
        )
        .await;
        assert_eq!(extended.status, StatusCode::OK);
        let again: Incident = serde_json::from_value(extended.body["incident"].clone()).unwrap();
        assert_eq!(again.id, incident.id);
        assert!(again.expires > incident.expires);

        let stopped = call(
            &f.control,
            Method::POST,
            "/incidents/mode",
            Some(&admin),
            &json!({"tenant": "acme", "mode": "default"}).to_string(),
        )
        .await;
        assert_eq!(stopped.status, StatusCode::OK, "{stopped:?}");
        assert_eq!(stopped.body["stopped"]["id"], incident.id.as_str());
        assert!(!f.telemetry.incidents().is_active("acme"));
        let status = call(
            &f.control,
            Method::GET,
            "/incidents/status",
            Some(&admin),
            "",
        )
        .await;
        assert_eq!(status.body["incidents"], json!([]));

        let lines = audit_lines_at_least(&f.exporters, 5);
        let summary: Vec<(String, u64)> = lines
            .iter()
            .map(|l| {
                (
                    l["route"].as_str().unwrap().to_owned(),
                    l["outcome"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(summary.len(), 5, "{summary:?}");
        assert!(lines.iter().all(|l| l["actor"] == "alice@ops"));
        assert_eq!(lines[0]["target_tenant"], "acme");
        assert_eq!(lines[0]["tenant"], "acme");
        // Core's own incident audit lines name the token's subject as the actor.
        let core_lines: Vec<_> = f
            .exporters
            .json_logs()
            .json()
            .into_iter()
            .filter(|l| l["control"] == "incident")
            .collect();
        assert!(
            core_lines.iter().all(|l| l["actor"] == "alice@ops"),
            "{core_lines:?}"
        );
        assert_no_token_text(&f.exporters, &[admin]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_control_plane_answers_nested_in_axum_and_reports_its_route() {
        let f = fixture();
        let app: axum::Router = axum::Router::new().nest_service("/telemetry", f.control.clone());
        let read = token(READ, None);
        let request = http::Request::get("/telemetry/incidents/status")
            .header(http::header::AUTHORIZATION, format!("Bearer {read}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let lines = audit_lines_at_least(&f.exporters, 1);
        assert_eq!(lines[0]["route"], "/telemetry/incidents/status");
    }
}

mod metrics_guard {
    use http::{Method, StatusCode};
    use stellaops_telemetry_tower::control::{JwtVerifier, RequireScope};
    use tower::{Layer, ServiceExt};

    use super::support::*;

    #[tokio::test(flavor = "current_thread")]
    async fn metrics_answer_only_a_token_with_the_scope() {
        let f = fixture();
        let verifier = JwtVerifier::from_jwks_json(&keys().jwks, ISSUER, AUDIENCE).unwrap();
        let guarded = RequireScope::new(verifier, "obs:read").layer(f.telemetry.metrics_service());
        let bare = f
            .telemetry
            .metrics_service()
            .oneshot(request(Method::GET, "/metrics", None, ""))
            .await
            .unwrap()
            .status();
        for (token, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(unsigned("obs:read")), StatusCode::UNAUTHORIZED),
            (Some(token(READ, None)), StatusCode::FORBIDDEN),
            (Some(token("obs:read", None)), bare),
        ] {
            let response = guarded
                .clone()
                .oneshot(request(Method::GET, "/metrics", token.as_deref(), ""))
                .await
                .unwrap();
            assert_eq!(response.status(), expected, "{token:?}");
            if expected != bare {
                let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
                assert!(body["error"].is_string(), "{body}");
            }
        }
        let unconfigured = RequireScope::maybe(None::<JwtVerifier>, "obs:read")
            .layer(f.telemetry.metrics_service());
        let response = unconfigured
            .oneshot(request(
                Method::GET,
                "/metrics",
                Some(&token("obs:read", None)),
                "",
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

mod configuration {
    use std::ffi::OsString;

    use stellaops_telemetry_tower::control::{
        AuthConfigError, ENV_AUDIENCE, ENV_ISSUER, ENV_JWKS, JwtVerifier,
    };

    use super::support::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_environment_configures_the_verifier_or_names_what_is_wrong() {
        assert!(JwtVerifier::from_vars(vars(&[])).unwrap().is_none());
        assert!(
            JwtVerifier::from_vars(vars(&[(ENV_JWKS, "")]))
                .unwrap()
                .is_none()
        );
        let (_dir, path) = verifier_file();
        let path = path.to_str().unwrap();
        let ok = JwtVerifier::from_vars(vars(&[
            (ENV_JWKS, path),
            (ENV_ISSUER, ISSUER),
            (ENV_AUDIENCE, AUDIENCE),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(ok.key_count(), 3);

        let missing =
            JwtVerifier::from_vars(vars(&[(ENV_JWKS, path), (ENV_ISSUER, ISSUER)])).unwrap_err();
        assert!(
            matches!(missing, AuthConfigError::MissingVariable { variable } if variable == ENV_AUDIENCE)
        );
        assert!(
            missing
                .to_string()
                .contains("STELLAOPS_TELEMETRY_AUTH_AUDIENCE")
        );

        let absent = JwtVerifier::from_vars(vars(&[
            (ENV_JWKS, "/nonexistent/jwks.json"),
            (ENV_ISSUER, ISSUER),
            (ENV_AUDIENCE, AUDIENCE),
        ]))
        .unwrap_err();
        assert!(matches!(absent, AuthConfigError::Read { .. }), "{absent}");
        assert!(
            absent.to_string().contains("/nonexistent/jwks.json"),
            "{absent}"
        );
    }

    #[test]
    fn a_jwks_that_is_not_one_or_holds_no_usable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("not json", "not a JSON Web Key Set"),
            (r#"{"keys":[]}"#, "no usable key"),
            (
                r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
                "no usable key",
            ),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}"#,
                "an Ed25519 key is 32 bytes",
            ),
            (
                r#"{"keys":[{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}]}"#,
                "at least 2048 bits",
            ),
        ];
        for (i, (text, error)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("jwks-{i}.json"));
            std::fs::write(&path, text).unwrap();
            let e = JwtVerifier::from_jwks_file(&path, ISSUER, AUDIENCE).unwrap_err();
            assert!(e.to_string().contains(error), "{text}: {e}");
            assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
        }
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).unwrap();
        let e = JwtVerifier::from_jwks_file(&big, ISSUER, AUDIENCE).unwrap_err();
        assert!(matches!(e, AuthConfigError::TooLarge { .. }), "{e}");
        let twice = format!(
            r#"{{"keys":[{k},{k}]}}"#,
            k = r#"{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
        );
        let e = JwtVerifier::from_jwks_json(&twice, ISSUER, AUDIENCE).unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}

mod hostile_input {
    use http::{Method, StatusCode, header};
    use proptest::prelude::*;

    use super::support::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// One pipeline for every case (nothing the cases do changes it).
    fn shared() -> &'static Fixture {
        static SHARED: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        SHARED.get_or_init(fixture)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_as_a_bearer_token_give_401(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let f = shared();
            let mut value = b"Bearer ".to_vec();
            value.extend_from_slice(&bytes);
            let Ok(value) = http::HeaderValue::from_bytes(&value) else {
                return Ok(());
            };
            let request = http::Request::get("/incidents/status")
                .header(header::AUTHORIZATION, value)
                .body(String::new())
                .unwrap();
            let answer = runtime().block_on(call_with(f.control.clone(), request));
            prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }

        #[test]
        fn a_good_token_with_bytes_flipped_gives_401(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let f = shared();
            let good = token(&format!("{READ} {ADMIN}"), None);
            let mut bytes = good.clone().into_bytes();
            for (index, byte) in &flips {
                let i = index.index(bytes.len());
                bytes[i] = *byte;
            }
            prop_assume!(bytes != good.as_bytes());
            let Ok(value) = http::HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &bytes].concat()) else {
                return Ok(());
            };
            let request = http::Request::get("/incidents/status")
                .header(header::AUTHORIZATION, value)
                .body(String::new())
                .unwrap();
            let answer = runtime().block_on(call_with(f.control.clone(), request));
            prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }

        #[test]
        fn arbitrary_bytes_as_a_body_give_400(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = shared();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let admin = token(ADMIN, None);
            let answer = runtime().block_on(call(&f.control, Method::POST, "/incidents/mode", Some(&admin), &body));
            prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer);
            prop_assert!(f.telemetry.incidents().status().is_empty());
        }
    }
}

mod forensic_exports {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use http::{Method, StatusCode, header};
    use http_body_util::BodyExt;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use serde_json::Value;
    use stellaops_telemetry_core::bundle::{self, SigningKey, VerifiedBundle};
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_core::{ExporterKind, RequestContext, Telemetry};
    use stellaops_telemetry_tower::control::{
        ControlBody, ControlPlane, EXPORT_CHANNEL_CHUNKS, EXPORT_CHUNK_BYTES, EXPORT_SCOPE,
        ForensicExports, JwtVerifier,
    };
    use tower::ServiceExt;

    use super::support::*;

    /// Spans of each tenant in the store, each with an attribute of [`NOTE_BYTES`]: enough for
    /// an archive many chunks long.
    const SPANS_PER_TENANT: usize = 600;
    const LOGS_PER_TENANT: usize = 50;
    const NOTE_BYTES: usize = 1500;

    /// A store written by a real pipeline (file exporters), shared by the tests (they only
    /// read it), and the key that signs its exports.
    struct Store {
        dir: PathBuf,
        key_pem: String,
        written_at: SystemTime,
    }

    fn store() -> &'static Store {
        static STORE: OnceLock<Store> = OnceLock::new();
        STORE.get_or_init(|| {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap()
                .keep();
            let written_at = SystemTime::now();
            write_store(&dir);
            Store {
                dir,
                key_pem: SigningKey::generate().unwrap().to_pem(),
                written_at,
            }
        })
    }

    fn write_store(dir: &Path) {
        let telemetry = Telemetry::builder("export-test")
            .exporters(&[ExporterKind::File])
            .stdout_logs(false)
            .dir(dir)
            .build()
            .unwrap();
        let tracer = telemetry.tracer_provider().tracer("export-test");
        let note: String = "forensic evidence ".repeat(NOTE_BYTES / 18);
        for tenant in ["acme", "globex"] {
            for i in 0..SPANS_PER_TENANT {
                tracer
                    .span_builder(format!("scan-{i}"))
                    .with_attributes([
                        KeyValue::new("tenant.id", tenant),
                        KeyValue::new("scan.note", note.clone()),
                    ])
                    .start(&tracer)
                    .end();
                if i % 100 == 99 {
                    telemetry.flush(Duration::from_secs(10)).unwrap();
                }
            }
            tracing::dispatcher::with_default(telemetry.dispatch(), || {
                let _context = RequestContext::new().with_tenant(tenant).attach();
                for i in 0..LOGS_PER_TENANT {
                    tracing::info!(scan = i, "scan finished");
                }
            });
            telemetry.flush(Duration::from_secs(10)).unwrap();
        }
        telemetry.shutdown();
        let stats = telemetry.stats();
        assert_eq!(stats.spans.dropped, 0, "{stats:?}");
        assert_eq!(stats.logs.dropped, 0, "{stats:?}");
    }

    fn key() -> SigningKey {
        SigningKey::from_pem(&store().key_pem).unwrap()
    }

    /// A control plane exporting from the shared store, its audit lines captured.
    fn exports_fixture(max_concurrent: usize) -> Fixture {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("control-test")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let (dir, path) = verifier_file();
        let verifier = JwtVerifier::from_jwks_file(&path, ISSUER, AUDIENCE).unwrap();
        let exports = ForensicExports::new(&store().dir, key()).max_concurrent(max_concurrent);
        let control = ControlPlane::for_telemetry(&telemetry)
            .verifier(verifier)
            .forensic_exports(exports)
            .build();
        Fixture {
            exporters,
            telemetry,
            control,
            _dir: dir,
        }
    }

    /// A window around the store's records, as `FROM..TO`.
    fn window() -> String {
        let at = store().written_at;
        let from = humantime::format_rfc3339_seconds(at - Duration::from_secs(600));
        let to = humantime::format_rfc3339_seconds(at + Duration::from_secs(3600));
        format!("{from}..{to}")
    }

    async fn get(
        control: &ControlPlane,
        path: &str,
        token: Option<&str>,
    ) -> http::Response<ControlBody> {
        control
            .clone()
            .oneshot(request(Method::GET, path, token, ""))
            .await
            .unwrap()
    }

    /// Reads the body frame by frame into a file, after `taken` (the frames read already);
    /// the sizes of the frames read here.
    async fn save(taken: &[u8], body: ControlBody, out: &Path) -> Vec<usize> {
        let mut body = body;
        let mut frames = Vec::new();
        let mut bytes = taken.to_vec();
        while let Some(frame) = body.frame().await {
            let data: Bytes = frame.unwrap().into_data().unwrap();
            frames.push(data.len());
            bytes.extend_from_slice(&data);
        }
        std::fs::write(out, bytes).unwrap();
        frames
    }

    /// Exports `path` with `token`: the answer's headers and the verified bundle.
    async fn export_ok(
        f: &Fixture,
        path: &str,
        token: &str,
    ) -> (http::HeaderMap, VerifiedBundle, Vec<usize>) {
        let response = get(&f.control, path, Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("bundle");
        let frames = save(&[], response.into_body(), &file).await;
        let verified = bundle::verify(&file, &key().public_key()).unwrap();
        (headers, verified, frames)
    }

    /// The closing audit lines of exports (`export` set).
    fn closing_lines(exporters: &TestExporters) -> Vec<Value> {
        audit_lines(exporters)
            .into_iter()
            .filter(|l| l["export"].is_string())
            .collect()
    }

    fn closing_lines_at_least(exporters: &TestExporters, count: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let lines = closing_lines(exporters);
            if lines.len() >= count || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_bound_token_gets_a_signed_bundle_of_its_tenant_with_two_audit_lines() {
        let f = exports_fixture(2);
        let bound = token(EXPORT_SCOPE, Some("acme"));
        let path = format!("/telemetry/exports/forensic/{}", window());
        let (headers, verified, _) = export_ok(&f, &path, &bound).await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-tar");
        let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"stellaops-acme-")
                && disposition.ends_with(".tar\""),
            "{disposition}"
        );
        let manifest = &verified.manifest;
        assert_eq!(manifest.tenant.as_deref(), Some("acme"));
        assert_eq!(manifest.counts.spans, SPANS_PER_TENANT as u64);
        assert!(
            manifest.counts.log_records >= LOGS_PER_TENANT as u64,
            "{manifest:?}"
        );
        assert_eq!(manifest.profile, "default");

        let lines = audit_lines_at_least(&f.exporters, 2);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (call, closing) = (&lines[0], &lines[1]);
        assert_eq!(call["route"], "/exports/forensic/{window}");
        assert_eq!(call["outcome"], 200);
        assert_eq!(call["actor"], "ops@example");
        assert_eq!(call["target_tenant"], "acme");
        assert!(call["window"].as_str().unwrap().contains(".."), "{call}");
        assert_eq!(closing["export"], "complete");
        assert_eq!(closing["target_tenant"], "acme");
        assert_eq!(closing["archive_sha256"], verified.archive_sha256.as_str());
        assert_eq!(closing["archive_bytes"], verified.archive_size);
        assert_eq!(closing["spans"], SPANS_PER_TENANT as u64);
        assert_no_token_text(&f.exporters, &[bound]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unbound_token_exports_one_tenant_compressed_or_every_tenant() {
        let f = exports_fixture(2);
        let unbound = token(EXPORT_SCOPE, None);
        let path = "/telemetry/exports/forensic/1h?tenant=globex&compression=zstd";
        let (headers, verified, _) = export_ok(&f, path, &unbound).await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/zstd");
        let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(disposition.contains("stellaops-globex-") && disposition.ends_with(".tar.zst\""));
        assert_eq!(verified.manifest.tenant.as_deref(), Some("globex"));
        assert_eq!(verified.manifest.counts.spans, SPANS_PER_TENANT as u64);

        // Every tenant; the same tenant again through a bound token repeating it.
        let path = format!("/exports/forensic/{}", window());
        let (headers, verified, _) = export_ok(&f, &path, &unbound).await;
        assert!(
            headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .contains("stellaops-all-")
        );
        assert_eq!(verified.manifest.tenant, None);
        assert_eq!(verified.manifest.counts.spans, 2 * SPANS_PER_TENANT as u64);
        let bound = token(EXPORT_SCOPE, Some("globex"));
        let (_, verified, _) = export_ok(&f, &format!("{path}?tenant=globex"), &bound).await;
        assert_eq!(verified.manifest.tenant.as_deref(), Some("globex"));
        let closing = closing_lines_at_least(&f.exporters, 3);
        assert!(
            closing.iter().all(|l| l["export"] == "complete"),
            "{closing:?}"
        );
        assert_no_token_text(&f.exporters, &[unbound, bound]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn exports_are_refused_without_a_token_the_scope_or_for_another_tenant() {
        let f = exports_fixture(2);
        let path = format!("/exports/forensic/{}", window());
        let read_admin = token(&format!("{READ} {ADMIN}"), None);
        let bound = token(EXPORT_SCOPE, Some("acme"));
        let answer = call(&f.control, Method::GET, &path, None, "").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        let answer = call(&f.control, Method::GET, &path, Some(&read_admin), "").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(answer.error(), "missing scope telemetry:export");
        let answer = call(
            &f.control,
            Method::GET,
            &format!("{path}?tenant=globex"),
            Some(&bound),
            "",
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(answer.field(), Some("tenant"));
        let answer = call(&f.control, Method::POST, &path, Some(&bound), "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);

        let lines = audit_lines_at_least(&f.exporters, 4);
        let outcomes: Vec<&Value> = lines.iter().map(|l| &l["outcome"]).collect();
        assert_eq!(outcomes, [401, 403, 403, 405], "{lines:?}");
        assert_eq!(lines[1]["actor"], "ops@example");
        assert_eq!(lines[2]["target_tenant"], "globex");
        assert!(
            lines
                .iter()
                .all(|l| l["route"] == "/exports/forensic/{window}")
        );
        assert!(closing_lines(&f.exporters).is_empty());
        assert_no_token_text(&f.exporters, &[read_admin, bound]);

        // Without ForensicExports the route answers 503 to a token that may export.
        let bare = fixture();
        let unbound = token(EXPORT_SCOPE, None);
        let answer = call(&bare.control, Method::GET, &path, Some(&unbound), "").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.error(), "no signing key configured");
        assert_eq!(audit_lines_at_least(&bare.exporters, 1)[0]["outcome"], 503);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bad_windows_and_queries_are_refused_with_400_naming_the_field() {
        let f = exports_fixture(2);
        let unbound = token(EXPORT_SCOPE, None);
        for (tail, field) in [
            ("yesterday", "window"),
            ("0s", "window"),
            ("2026-12-05T10:00:00Z..2026-12-05T09:00:00Z", "window"),
            ("2026-12-05T10:00:00Z..2026-12-05T10:00:00Z", "window"),
            ("2026-12-05T09:00:00Z..2026-12-05", "window"),
            // Longer than the default profile's 30 days of retention.
            ("31d", "window"),
            ("2026-10-01T00:00:00Z..2026-12-05T00:00:00Z", "window"),
            ("1h?compression=gzip", "compression"),
            ("1h?tenant=a%0Ab", "tenant"),
            ("1h?tenant=acme&tenant=globex", "tenant"),
            ("1h?access_token=x", "access_token"),
        ] {
            let path = format!("/exports/forensic/{tail}");
            let answer = call(&f.control, Method::GET, &path, Some(&unbound), "").await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{tail}: {answer:?}");
            assert_eq!(answer.field(), Some(field), "{tail}: {answer:?}");
        }
        let lines = audit_lines_at_least(&f.exporters, 11);
        assert!(lines.iter().all(|l| l["outcome"] == 400), "{lines:?}");
        assert!(closing_lines(&f.exporters).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_body_streams_in_bounded_chunks_before_the_export_has_finished() {
        let f = exports_fixture(1);
        let unbound = token(EXPORT_SCOPE, None);
        let path = format!("/exports/forensic/{}", window());
        let response = get(&f.control, &path, Some(&unbound)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), EXPORT_CHUNK_BYTES);
        // The archive is many times the channel: the export cannot have finished while only
        // its first chunk was taken, so its closing line is not written yet…
        assert!(closing_lines(&f.exporters).is_empty());
        // … and it holds its place: a second export is refused while it runs.
        let answer = call(&f.control, Method::GET, &path, Some(&unbound), "").await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);

        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("all.tar");
        let mut frames = vec![first.len()];
        frames.extend(save(&first, body, &file).await);
        let verified = bundle::verify(&file, &key().public_key()).unwrap();
        let size = usize::try_from(verified.archive_size).unwrap();
        assert!(
            size > (EXPORT_CHANNEL_CHUNKS + 3) * EXPORT_CHUNK_BYTES,
            "the store is too small to show streaming: {size} bytes"
        );
        assert_eq!(frames.iter().sum::<usize>(), size);
        assert!(frames.len() > EXPORT_CHANNEL_CHUNKS + 3, "{frames:?}");
        assert!(
            frames.iter().all(|&n| n > 0 && n <= EXPORT_CHUNK_BYTES),
            "{frames:?}"
        );
        let closing = closing_lines_at_least(&f.exporters, 1);
        assert_eq!(closing[0]["archive_bytes"], verified.archive_size);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_goes_away_stops_the_export_and_the_audit_says_so() {
        let f = exports_fixture(1);
        let unbound = token(EXPORT_SCOPE, None);
        let path = format!("/exports/forensic/{}", window());
        let response = get(&f.control, &path, Some(&unbound)).await;
        let mut body = response.into_body();
        assert!(body.frame().await.unwrap().is_ok());
        drop(body);
        let closing = closing_lines_at_least(&f.exporters, 1);
        assert_eq!(closing.len(), 1, "{closing:?}");
        assert_eq!(closing[0]["export"], "failed");
        assert!(closing[0]["archive_sha256"].is_null());
        assert!(
            closing[0]["error"]
                .as_str()
                .unwrap()
                .contains("the client went away"),
            "{closing:?}"
        );
        // Its place is free again.
        let (_, verified, _) = export_ok(&f, &format!("{path}?tenant=acme"), &unbound).await;
        assert_eq!(verified.manifest.tenant.as_deref(), Some("acme"));
        assert_no_token_text(&f.exporters, &[unbound]);
    }
}
