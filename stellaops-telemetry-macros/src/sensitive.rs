//! Names that look like secrets: the words of the core crate's key rules
//! (`redaction::DEFAULT_KEYS` and its credential suffixes), matched on the words of a name
//! in any case style (`password`, `db_password`, `clientSecret`, `x-api-key`).

/// Single words that make a name sensitive.
const WORDS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "credentials",
    "credential",
    "authorization",
    "cookie",
    "apikey",
];

/// Word pairs that make a name sensitive (`api_key`, `privateKey`).
const PAIRS: [(&str, &str); 2] = [("api", "key"), ("private", "key")];

/// The lowercase words of `name`: split at `_`, `-`, `.` and lower-to-upper case changes.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.') {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Whether `name` looks like a secret.
pub(crate) fn looks_sensitive(name: &str) -> bool {
    let words = words(name.strip_prefix("r#").unwrap_or(name));
    words.iter().any(|w| WORDS.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|pair| PAIRS.iter().any(|(a, b)| pair[0] == *a && pair[1] == *b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_key_of_the_redactor_looks_sensitive() {
        // The core crate's list (a dev-dependency here), so the two cannot drift apart.
        for key in stellaops_telemetry_core::DEFAULT_KEYS {
            assert!(looks_sensitive(key), "{key}");
        }
    }

    #[test]
    fn case_styles_and_suffixes_count_and_ordinary_names_do_not() {
        for key in [
            "dbPassword",
            "clientSecret",
            "AccessToken",
            "privateKey",
            "r#token",
        ] {
            assert!(looks_sensitive(key), "{key}");
        }
        for key in [
            "digest",
            "imageRef",
            "cache_key",
            "tokenizer_mode",
            "secretary",
            "tenant",
        ] {
            assert!(!looks_sensitive(key), "{key}");
        }
    }
}
