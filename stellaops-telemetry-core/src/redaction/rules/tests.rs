//! The rules' behaviour on values and keys: what each masks, and what it leaves alone.

use super::*;

fn r(value: &str) -> String {
    redact_value(value)
        .map(|(s, _)| s)
        .unwrap_or_else(|| value.to_owned())
}

#[test]
fn keys_match_on_the_whole_key_the_last_segment_and_credential_suffixes() {
    for key in [
        "Authorization",
        "http.request.header.authorization",
        "http.request.header.x-api-key",
        "db.password",
        "db_password",
        "GITHUB-TOKEN",
        "vault.secretRef",
        "spec.secret_ref",
        "client_secret",
    ] {
        assert!(is_sensitive_key(key, &[]), "{key}");
    }
    for key in [
        "accessToken",
        "clientSecret",
        "privateKey",
        "refreshToken",
        "idToken",
        "dbPassword",
        "apiKey",
    ] {
        assert!(is_sensitive_key(key, &[]), "{key}");
    }
    for key in [
        "monkey",
        "token_count",
        "max_tokens",
        "secretary",
        "keyboard",
        "author",
        "http.route",
        "passwordless",
    ] {
        assert!(!is_sensitive_key(key, &[]), "{key}");
    }
    assert!(is_sensitive_key("x.session_id", &["session_id".to_owned()]));
}

#[test]
fn value_rules_mask_only_the_credential() {
    assert_eq!(
        r("Authorization: Bearer abc.DEF-123_xyz"),
        "Authorization: REDACTED"
    );
    assert_eq!(r("sent Bearer abc.DEF-123_xyz"), "sent Bearer REDACTED");
    assert_eq!(r("Bearer secretlowercasetokenvalue"), "Bearer REDACTED");
    assert_eq!(
        r("Bearer Authentication is required"),
        "Bearer Authentication is required"
    );
    assert_eq!(r("Basic dXNlcjpwYXNzd29yZA"), "Basic REDACTED");
    assert_eq!(r("sig=SECRET&x=1"), "sig=REDACTED&x=1");
    assert_eq!(
        r("X-Amz-Signature=SECRET&a=b"),
        "X-Amz-Signature=REDACTED&a=b"
    );
    assert_eq!(r("Cookie: theme=dark; session=SECRET"), "Cookie: REDACTED");
    assert_eq!(
        r("password: [83, 69, 67, 82] next"),
        "password: REDACTED next"
    );
    assert_eq!(
        r(r#"{"password":"ab\"SECRETPW","n":1}"#),
        r#"{"password":"REDACTED","n":1}"#
    );
    assert_eq!(r("password=\tX1"), "password=\tREDACTED");
    assert_eq!(
        r("Bearer authentication is required"),
        "Bearer authentication is required"
    );
    assert_eq!(r("Basic dXNlcjpwYXNz"), "Basic REDACTED");
    assert_eq!(r("basic plan selected"), "basic plan selected");
    assert_eq!(
        r("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl done"),
        "token REDACTED done"
    );
    assert_eq!(
        r("https://user:pass@host.invalid/x"),
        "https://REDACTED:REDACTED@host.invalid/x"
    );
    assert_eq!(
        r("ssh://git@host.invalid/repo"),
        "ssh://REDACTED@host.invalid/repo"
    );
    assert_eq!(
        r("https://b.invalid/o?X-Amz-Signature=abc123&x=1&sig=zz#f"),
        "https://b.invalid/o?X-Amz-Signature=REDACTED&x=1&sig=REDACTED#f"
    );
    assert_eq!(
        r("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nafter"),
        "key:\nREDACTED\nafter"
    );
    assert_eq!(
        r("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"),
        "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"
    );
}

#[test]
fn random_mixes_of_trigger_fragments_and_unicode_never_panic_and_never_unmask() {
    const FUZZ_CASES: usize = 50_000;
    const FRAGMENTS: [&str; 76] = [
        "Bearer ",
        "basic ",
        "eyJ",
        ".",
        "-----BEGIN PRIVATE KEY-----",
        "-----END",
        "-----",
        "://",
        "@",
        "?",
        "&",
        "sig=",
        "X-Amz-Signature=",
        "password",
        "token",
        ":",
        "=",
        "\"",
        "'",
        "é",
        "€",
        "𝄞",
        " ",
        "a",
        "Z",
        "9",
        "\\",
        "\n",
        "dXNlcjpwYXNz",
        "}",
        "\t",
        "x-api-key",
        "AWSAccessKeyId",
        "Cookie",
        "db_password",
        "accessToken",
        "-",
        "/",
        "{",
        "[",
        "#",
        "B",
        "J",
        "ey",
        // The shapes of the later rules, whole and in pieces.
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_abcdefghijklmnopqrstuv_abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456",
        "glpat-abcdefghij0123456789",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxb-0123456789-abcdefghij",
        "sk_live_abcdefghij0123456789",
        "whsec_abcdefghijklmnopqrstuvwxyz012345",
        "AIzaabcdefghijklmnopqrstuvwxyz012345678",
        "AKIAABCDEFGHIJ234567",
        "abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB",
        "aws_secret_access_key",
        "SecretAccessKey",
        "hooks.slack.com/services/T0/B1/abcdefghij0123456789",
        "_",
        "A",
        "%",
        "%3F",
        "%3D",
        "%26",
        "%3d",
        ",",
        "(",
        ")",
        "Some(",
        "(\"token\", ",
        "@tcp(",
        "root:pw",
        "https://u:pa/ss@h/",
        "@sha256:",
        "DB_PASS",
        "AccountKey",
        "ghp_",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..FUZZ_CASES {
        let n = 1 + (next() % 16) as usize;
        let text: String = (0..n)
            .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
            .collect();
        // The prefilter never skips a value some rule would change.
        assert!(
            needs_scan(&text) || apply_value_rules(&text).is_none(),
            "the prefilter skipped {text:?}"
        );
        if let Some((once, _)) = redact_value(&text) {
            assert!(once.contains(REDACTED), "{text:?} changed without a marker");
            // A second pass may mask more (two masked pieces can merge), never unmask.
            let twice = redact_value(&once)
                .map(|(t, _)| t)
                .unwrap_or_else(|| once.clone());
            assert!(twice.contains(REDACTED), "{once:?} lost its marker");
        }
    }
}

#[test]
fn ordinary_values_pass_without_allocation() {
    for value in [
        "registry.example/app:1.2",
        "scan finished",
        "GET /scans/{id}",
        "a-b-c",
        "x@y",
        "what?",
    ] {
        assert!(redact_value(value).is_none(), "{value}");
    }
}

/// `n` characters cycling through `alphabet`, seeded so each call differs.
fn body(alphabet: &[u8], n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| alphabet[(i * 7 + seed * 13 + i / 3) % alphabet.len()] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[test]
fn credential_formats_are_masked_in_free_text_and_counted_as_their_rule() {
    let formats = [
        format!("ghp_{}", body(ALNUM, 36, 1)),
        format!("gho_{}", body(ALNUM, 36, 2)),
        format!("ghu_{}", body(ALNUM, 36, 3)),
        format!("ghs_{}", body(ALNUM, 36, 4)),
        format!("ghr_{}", body(ALNUM, 36, 5)),
        format!("github_pat_{}_{}", body(ALNUM, 22, 6), body(ALNUM, 59, 7)),
        format!("glpat-{}", body(ALNUM, 20, 8)),
        format!("gldt-{}", body(ALNUM, 24, 9)),
        format!("glrt-{}", body(ALNUM, 26, 10)),
        format!("npm_{}", body(ALNUM, 36, 11)),
        format!("pypi-AgEIcHlwaS5vcmc{}", body(ALNUM, 70, 12)),
        format!("xoxb-1234567890-{}", body(ALNUM, 24, 13)),
        format!("xoxp-{}", body(ALNUM, 40, 14)),
        format!("xapp-1-A0123-{}", body(ALNUM, 30, 15)),
        format!("sk_live_{}", body(ALNUM, 24, 16)),
        format!("sk_test_{}", body(ALNUM, 99, 17)),
        format!("rk_live_{}", body(ALNUM, 24, 18)),
        format!("whsec_{}", body(ALNUM, 32, 19)),
        format!("AIza{}", body(b"ABCdef012_-xyz", 35, 20)),
        format!("AKIA{}", body(UPPER_DIGITS, 16, 21)),
        format!("ASIA{}", body(UPPER_DIGITS, 16, 22)),
    ];
    for secret in &formats {
        for text in [
            format!("retrying with {secret}"),
            secret.clone(),
            format!("error: token {secret} was rejected"),
            format!("\"{secret}\""),
            format!("key={secret}&x=1"),
        ] {
            let Some((masked, fired)) = redact_value(&text) else {
                panic!("{text} was not redacted");
            };
            assert!(!masked.contains(secret.as_str()), "{text} -> {masked}");
            assert!(masked.contains(REDACTED), "{text} -> {masked}");
            assert!(
                fired & bit(Rule::CredentialFormat) != 0,
                "{text} counted as {fired:b}"
            );
        }
    }
    assert_eq!(
        r(&format!("retrying with {}, then stop", formats[0])),
        "retrying with REDACTED, then stop"
    );
}

#[test]
fn aws_secret_keys_are_masked_after_an_access_key_id_or_a_secret_key_name() {
    let id = format!("AKIA{}", body(UPPER_DIGITS, 16, 1));
    let secret = format!(
        "{}/{}+{}",
        body(ALNUM, 20, 2),
        body(ALNUM, 9, 3),
        body(ALNUM, 9, 4)
    );
    assert_eq!(secret.len(), 40);
    for text in [
        format!("aws_access_key_id={id}\naws_secret_access_key={secret}\n"),
        format!(r#"{{"AccessKeyId": "{id}", "SecretAccessKey": "{secret}"}}"#),
        format!("creds {id} {secret}"),
        format!("aws_secret_access_key   {secret}   shared-credentials-file"),
        format!("--aws-secret-access-key {secret}"),
        format!("AWS_SECRET_ACCESS_KEY={secret}"),
        format!("awsSecretAccessKey: {secret}"),
    ] {
        let masked = r(&text);
        assert!(!masked.contains(&secret), "{text} -> {masked}");
        assert!(!masked.contains(&id), "{text} -> {masked}");
    }
    // A git SHA after an access key id is not a secret key.
    let sha = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(r(&format!("{id} {sha}")), format!("REDACTED {sha}"));
}

#[test]
fn slack_webhooks_and_azure_connection_strings_are_masked() {
    let secret = body(ALNUM, 24, 3);
    assert_eq!(
        r(&format!(
            "posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/{secret} failed"
        )),
        "posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/REDACTED failed"
    );
    assert_eq!(
        r(&format!("hooks.slack.com/services/T01/B02/{secret}")),
        "hooks.slack.com/services/T01/B02/REDACTED"
    );
    let key = format!(
        "{}+{}/{}==",
        body(ALNUM, 30, 4),
        body(ALNUM, 30, 5),
        body(ALNUM, 24, 6)
    );
    assert_eq!(
        r(&format!(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={key};EndpointSuffix=core.windows.net"
        )),
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=REDACTED;EndpointSuffix=core.windows.net"
    );
    assert_eq!(
        r(&format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={key}"
        )),
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=REDACTED"
    );
}

#[test]
fn every_pem_private_key_type_is_masked() {
    for kind in [
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "DSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ] {
        let text = format!("loaded\n-----BEGIN {kind}-----\nMIIEsecret\n-----END {kind}-----\nok");
        assert_eq!(r(&text), "loaded\nREDACTED\nok", "{kind}");
    }
    // Escaped newlines (a PEM inside a JSON string) and a block cut short.
    assert_eq!(
        r(r#"{"key":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n"}"#),
        r#"{"key":"REDACTED\n"}"#
    );
    assert_eq!(r("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut"), "REDACTED");
}

#[test]
fn more_key_names_suffixes_camel_case_and_long_keys() {
    for key in [
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
        "x-functions-key",
        "AccountKey",
        "accountkey",
        "SharedAccessKey",
        "GITHUB_TOKEN",
        "awsSecretAccessKey",
        "SecretAccessKey",
        "jwtSecretKey",
        "oauth2Token",
        "keyPassphrase",
        // camelCase beyond 48 bytes.
        "someVeryLongConfigurationSectionNameForTheServiceClientSecret",
        "a.someVeryLongConfigurationSectionNameForTheUpstreamAccessToken",
    ] {
        assert!(is_sensitive_key(key, &[]), "{key}");
    }
    for key in [
        "bypass",
        "compass",
        "first_pass",
        "passwordless",
        "secretary",
        "keyboard",
        "monkey",
        "token_count",
        "max_tokens",
        "access_key_id",
        "tokens",
        "someVeryLongConfigurationSectionNameForTheServiceClientSecretary",
        "http.response.header.content-type",
    ] {
        assert!(!is_sensitive_key(key, &[]), "{key}");
    }
}

#[test]
fn keyed_secrets_in_printed_values_are_masked_whole() {
    let cases = [
        (
            r#"Login { user: "alice", password: Some("correct horse staple") }"#,
            r#"Login { user: "alice", password: REDACTED }"#,
        ),
        (
            r#"Conf { token: Some(Secret("a b) c")), next: 1 }"#,
            r#"Conf { token: REDACTED, next: 1 }"#,
        ),
        (
            r#"Conf { secret: Secret { inner: "x y" }, n: 2 }"#,
            r#"Conf { secret: REDACTED, n: 2 }"#,
        ),
        (
            r#"password: None, user: bob"#,
            r#"password: REDACTED, user: bob"#,
        ),
        (
            r#"[("grant_type", "client_credentials"), ("client_secret", "s3 cr3t")]"#,
            r#"[("grant_type", "client_credentials"), ("client_secret", "REDACTED")]"#,
        ),
        (r#"("password", "hunter 2")"#, r#"("password", "REDACTED")"#),
        (r#"["token", "abc def"]"#, r#"["token", "REDACTED"]"#),
        (
            "AWS_SECRET_ACCESS_KEY=abc123\nDB_PASS=pw1\nGITHUB_TOKEN=tok2\nHOME=/root",
            "AWS_SECRET_ACCESS_KEY=REDACTED\nDB_PASS=REDACTED\nGITHUB_TOKEN=REDACTED\nHOME=/root",
        ),
        (
            "export db_password=pw3 && run",
            "export db_password=REDACTED && run",
        ),
        (
            "GET /cb%3Fpassword%3Dhunter2%26next%3D1",
            "GET /cb%3Fpassword%3DREDACTED%26next%3D1",
        ),
        (
            "a%26token%3dabc%2Fdef%26b%3D2",
            "a%26token%3dREDACTED%26b%3D2",
        ),
        (
            "redirect=https%3A%2F%2Fs3.invalid%2Fo%3FX-Amz-Signature%3Dabc123%26x%3D1",
            "redirect=https%3A%2F%2Fs3.invalid%2Fo%3FX-Amz-Signature%3DREDACTED%26x%3D1",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(r(text), expected, "{text}");
    }
}

#[test]
fn userinfo_with_a_slash_and_go_dsns_are_masked_but_image_references_are_not() {
    assert_eq!(
        r("https://user:pa/ss@host.invalid/x"),
        "https://REDACTED:REDACTED@host.invalid/x"
    );
    assert_eq!(
        r("https://svc:pa?ss@host.invalid/x?y=1"),
        "https://REDACTED:REDACTED@host.invalid/x?y=1"
    );
    assert_eq!(
        r("https://svc:pa#ss@host.invalid/"),
        "https://REDACTED:REDACTED@host.invalid/"
    );
    assert_eq!(
        r("dsn=root:s3cr/et@tcp(db.internal:3306)/app?parseTime=true"),
        "dsn=REDACTED:REDACTED@tcp(db.internal:3306)/app?parseTime=true"
    );
    assert_eq!(
        r("connect user:p@ss@unix(/tmp/mysql.sock)/db"),
        "connect REDACTED:REDACTED@unix(/tmp/mysql.sock)/db"
    );
    assert_eq!(
        r("mysql://root:pw@tcp(db:3306)/app"),
        "mysql://REDACTED:REDACTED@tcp(db:3306)/app"
    );
    for clean in [
        "docker://registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "https://host.invalid:8443/v2/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "pulled registry.example:5000/team/app@sha256:abcd",
        "https://mastodon.invalid:443/users/@alice",
        "https://search.invalid/find?q=a@b.example",
        "https://search.invalid:8443?to=a@b.example",
        "https://search.invalid/a?b#c@d",
        "user@tcp(db)/app",
    ] {
        assert_eq!(r(clean), clean);
    }
}

#[test]
fn look_alikes_stay_unmasked() {
    let look_alikes = [
        "commit 3f2a9c1d0b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a".to_owned(),
        "request 123e4567-e89b-12d3-a456-426614174000 done".to_owned(),
        format!(
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk{}",
            body(ALNUM, 200, 1)
        ),
        "token_count=12".to_owned(),
        "max_tokens: 4096".to_owned(),
        "passwordless=true".to_owned(),
        "bypass=true".to_owned(),
        "secretary: Ann".to_owned(),
        "keyboard: us".to_owned(),
        "monkey: george".to_owned(),
        "the token expired, and the secret rotation is due".to_owned(),
        "/var/lib/app/secret_store/index.json".to_owned(),
        "http_request_duration_seconds_bucket".to_owned(),
        "stella-cli/2.3 on linux-x86_64".to_owned(),
        // Near misses of the formats: one short, one long, inside a longer identifier.
        format!("ghp_{}", body(ALNUM, 35, 2)),
        format!("ghp_{}", body(ALNUM, 37, 3)),
        format!("my_ghp_{}", body(ALNUM, 36, 4)),
        format!("AKIA{}", body(UPPER_DIGITS, 15, 5)),
        format!("AKIA{}x", body(UPPER_DIGITS, 16, 6)),
        format!("AIza{}", body(ALNUM, 34, 7)),
        format!("npm_{}", body(ALNUM, 20, 8)),
        "glpat-short".to_owned(),
        "xoxb-short".to_owned(),
        "sk_live_short".to_owned(),
        "pypi-package".to_owned(),
        "Accept: AKIA".to_owned(),
        "a ghp_ prefix alone".to_owned(),
    ];
    for text in &look_alikes {
        assert_eq!(r(text), *text, "masked a look-alike");
    }
}
