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
    const FRAGMENTS: [&str; 44] = [
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
