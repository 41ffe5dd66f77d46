//! The rules' work grows linearly with a value's length, whatever its bytes: counted in
//! bytes examined (see `work`), never timed.

use proptest::prelude::*;

use super::work::steps_of;
use super::*;

/// Bytes examined per byte of input, at most, for any value: the prefilter, every value
/// rule (each may read a byte a few times, and the later ones read the marker-grown text),
/// and the key rules.
const PER_BYTE: u64 = 120;

/// Work that does not grow with the input (a bounded look at the value's ends).
const CONSTANT: u64 = 4_096;

/// The pieces of every shape, and the bytes that end them.
const FRAGMENTS: [&str; 62] = [
    "@",
    "?",
    "&",
    ":",
    "=",
    "/",
    "%",
    "\"",
    "'",
    "\\",
    "eyJ",
    ".",
    "-----BEGIN",
    "-----END",
    "-----",
    "PRIVATE KEY",
    "bearer ",
    "basic ",
    "Bearer x-bearer ",
    "[",
    "(",
    "{",
    "]",
    ")",
    "}",
    ",",
    " ",
    "\t",
    "\n",
    "://",
    "://u:p/",
    "%3F",
    "%3D",
    "%26",
    "sig",
    "sig=",
    "X-Amz-Signature",
    "password",
    "token",
    "Some(",
    "(\"token\", ",
    "_",
    "-",
    "ghp_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "whsec_",
    "AKIA",
    "AIza",
    "A",
    "B",
    "J",
    "@tcp(",
    "secret_access_key ",
    "SecretAccessKey",
    "hooks.slack.com/services/T1/",
    "aB",
    "a",
    "Z9",
    "+/",
    "é",
];

/// All the work one value costs: the prefilter, every value rule whatever the prefilter
/// says, and the key rules with the value taken as a key (with and without configured
/// names).
fn work(text: &str) -> u64 {
    let extra = ["session_id".to_owned()];
    steps_of(|| {
        std::hint::black_box(needs_scan(text));
        std::hint::black_box(apply_value_rules(text));
        std::hint::black_box(is_sensitive_key(text, &[]));
        std::hint::black_box(is_sensitive_key(text, &extra));
    })
}

fn assert_linear(unit: &str) -> Result<(), TestCaseError> {
    // Repetitions that make the shortest text at least 1 KiB.
    let reps = 1024usize.div_ceil(unit.len().max(1));
    let texts = [reps, 4 * reps, 16 * reps].map(|r| unit.repeat(r));
    let [w1, w4, w16] = [&texts[0], &texts[1], &texts[2]].map(|t| work(t));
    for (text, w) in texts.iter().zip([w1, w4, w16]) {
        prop_assert!(
            w <= PER_BYTE * text.len() as u64 + CONSTANT,
            "{w} steps for {} bytes of {unit:?}",
            text.len()
        );
    }
    // Four times the input, about four times the work (quadratic work would be sixteen).
    prop_assert!(
        w4 * 10 <= w1 * 45 + CONSTANT * 10,
        "{unit:?}: {w1} steps for n, {w4} for 4n"
    );
    prop_assert!(
        w16 * 10 <= w4 * 45 + CONSTANT * 10,
        "{unit:?}: {w4} steps for 4n, {w16} for 16n"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn work_grows_linearly_for_random_mixes_of_trigger_fragments(
        pieces in prop::collection::vec(prop::sample::select(&FRAGMENTS[..]), 1..12)
    ) {
        assert_linear(&pieces.concat())?;
    }
}

#[test]
fn every_flood_costs_a_bounded_number_of_steps_per_byte() {
    const LEN: usize = 64 * 1024;
    let floods = [
        "a",
        "@",
        "?",
        "&",
        ":",
        "=",
        "/",
        "%",
        "\"",
        "'",
        "\\",
        "eyJ",
        "eyJa.",
        "-----BEGIN",
        "-----BEGIN PRIVATE KEY-----",
        "-----END",
        "bearer ",
        "basic ",
        "Basic dXNlcjpwYXNz",
        "Bearer x-bearer ",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        "_",
        "-",
        "A",
        "B",
        "J",
        ",",
        " ",
        "://",
        "://u:p/",
        "://a@",
        "@tcp(",
        "u:p@tcp(",
        "%3F",
        "%3D",
        "%26",
        "%3Fsig%3D",
        "?sig",
        "?sig=",
        "&sig=&",
        "sig=",
        "password",
        "password=",
        "password: ",
        "password: Some(",
        "password: [",
        "password: \"",
        "(\"token\", ",
        "(\"token\", \"",
        "token,",
        "ghp_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "whsec_",
        "whsec_/",
        "pypi-",
        "sk_live_",
        "AKIA",
        "AKIAAAAAAAAAAAAAAAAA ",
        "AIza",
        "secret_access_key ",
        "SecretAccessKey",
        "hooks.slack.com/services/T1/B",
        "hooks.slack.com/services/",
        "aB",
        "a.",
        "aToken",
        "é",
        "€ ",
        "x-api-key: ",
    ];
    for flood in floods {
        let text = flood.repeat(LEN.div_ceil(flood.len()));
        let w = work(&text);
        assert!(
            w <= PER_BYTE * text.len() as u64,
            "{flood:?}: {w} steps for {} bytes ({} per byte)",
            text.len(),
            w / text.len() as u64
        );
    }
    // Keys: long, camelCase, dotted.
    for key in [
        "a".repeat(LEN),
        format!("{}Token", "aB".repeat(LEN / 2)),
        format!("{}.password", "a.".repeat(LEN / 2)),
        "-".repeat(LEN),
    ] {
        let w = steps_of(|| {
            std::hint::black_box(is_sensitive_key(&key, &["session_id".to_owned()]));
        });
        assert!(
            w <= 4 * key.len() as u64 + CONSTANT,
            "{w} steps for a key of {}",
            key.len()
        );
    }
}

#[test]
fn the_counter_sees_every_rule_read_the_value() {
    // Each value rule, alone on a value it matches, counts at least one step per byte: the
    // count is not blind to any of them.
    let values = [
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            "M".repeat(4096)
        ),
        format!("eyJhbGciOiJub25lIn0.eyJ{}.", "a".repeat(4096)),
        format!("ghp_{} {}", "a".repeat(36), "b".repeat(4096)),
        format!("Bearer {}", "a".repeat(4096)),
        format!("https://u:p@{}", "h".repeat(4096)),
        format!("?sig={}", "s".repeat(4096)),
        format!("password={}", "p".repeat(4096)),
    ];
    for value in &values {
        let w = steps_of(|| {
            std::hint::black_box(apply_value_rules(value));
        });
        assert!(
            w >= value.len() as u64,
            "{w} steps for {} bytes",
            value.len()
        );
    }
}
