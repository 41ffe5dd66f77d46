//! Parsers shared by the environment reader and `build()`: one validation path.

use std::collections::BTreeMap;

use super::{ConfigError, OtlpCompression, OtlpProtocol, PropagatorKind};
use crate::egress::mask_url;
use crate::profile::ExporterKind;
use crate::redaction::{REDACTED, Redactor};

/// A configured value as an error shows it: a URL (or anything with an `@`) with its
/// userinfo, query values and fragment masked, and any credential shape (bearer tokens,
/// `password=…`, JWTs, signed-URL parameters) masked by the redaction rules.
pub(crate) fn shown(value: &str) -> String {
    let masked = if value.contains("://") || value.contains('@') {
        mask_url(value)
    } else {
        value.to_owned()
    };
    Redactor::default().redact_str(&masked).into_owned()
}

/// A parser's message as an error shows it: serde's rendering of an unexpected string
/// (`invalid type: string "…"`) loses the string, and credential shapes are masked. The
/// message still says what was expected, and the caller adds where.
#[cfg(any(feature = "config-file", test))]
pub(crate) fn shown_parser_message(message: &str) -> String {
    const STRING: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(STRING) {
        out.push_str(&rest[..at]);
        out.push_str("string");
        // Skip the Debug-escaped string up to its closing quote.
        let body = &rest[at + STRING.len()..];
        let mut escaped = false;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    Redactor::default().redact_str(out.trim()).into_owned()
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_owned(),
        value: shown(value),
        reason: reason.into(),
    }
}

/// A header name as an error shows it: as given when it is a valid header name, else masked
/// by the redaction rules (a malformed entry may be `authorization:Basic …`).
fn shown_header_name(key: &str) -> String {
    if http::HeaderName::from_bytes(key.as_bytes()).is_ok() {
        key.to_owned()
    } else {
        shown(key)
    }
}

pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "expected `true` or `false`")),
    }
}

/// `OTEL_SDK_DISABLED`: only `true` (any case, spaces trimmed) disables the SDK. Any other
/// value leaves it enabled; a value other than `false` comes with a warning, never an error.
pub(crate) fn parse_sdk_disabled(name: &str, value: &str) -> (bool, Option<String>) {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => (true, None),
        "false" => (false, None),
        _ => (
            false,
            Some(format!(
                "{name} `{}` is neither `true` nor `false`; the SDK stays enabled",
                shown(value.trim())
            )),
        ),
    }
}

pub(crate) fn parse_u64(name: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| invalid(name, value, "expected a whole number of milliseconds"))
}

/// A queue or batch size (`OTEL_BSP_MAX_*`, `OTEL_BLRP_MAX_*`): a whole number of at least 1.
pub(crate) fn parse_size(name: &str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid(
            name,
            value,
            "expected a whole number of at least 1",
        )),
    }
}

/// A timeout in milliseconds that must be positive (`OTEL_BSP_EXPORT_TIMEOUT`).
pub(crate) fn parse_positive_ms(name: &str, value: &str) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid(
            name,
            value,
            "expected a whole number of milliseconds, at least 1",
        )),
    }
}

/// A count limit (`OTEL_*_COUNT_LIMIT`): a whole number, 0 included (0 keeps none).
pub(crate) fn parse_count(name: &str, value: &str) -> Result<usize, ConfigError> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| invalid(name, value, "expected a whole number (0 keeps none)"))
}

/// A value length limit in bytes (`OTEL_*_VALUE_LENGTH_LIMIT`): a whole number of at least
/// [`MIN_VALUE_LIMIT`](crate::MIN_VALUE_LIMIT), room for the truncation marker.
pub(crate) fn parse_value_length(name: &str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= crate::MIN_VALUE_LIMIT => Ok(n),
        _ => Err(invalid(
            name,
            value,
            format!(
                "expected a whole number of bytes, at least {}",
                crate::MIN_VALUE_LIMIT
            ),
        )),
    }
}

/// Decodes `%XX` escapes (the W3C Baggage octet encoding used by the OTEL_* lists).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `key=value,key2=value2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS).
/// Values are percent-decoded; `mask` hides values in errors (headers carry credentials).
fn parse_key_values(value: &str, mask: bool) -> Result<BTreeMap<String, String>, (String, String)> {
    let mut out = BTreeMap::new();
    for entry in value.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let shown = || match (mask, entry.split_once('=')) {
            (true, Some((k, _))) => format!("{}={REDACTED}", shown_header_name(k.trim())),
            (true, None) => REDACTED.to_owned(),
            (false, _) => shown(entry.trim()),
        };
        let Some((key, val)) = entry.split_once('=') else {
            return Err((shown(), "expected `key=value`".to_owned()));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err((shown(), "empty key".to_owned()));
        }
        let Some(val) = percent_decode(val.trim()) else {
            return Err((shown(), "invalid percent-encoding".to_owned()));
        };
        out.insert(key.to_owned(), val);
    }
    Ok(out)
}

pub(crate) fn parse_resource_attributes(
    name: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    parse_key_values(value, false).map_err(|(entry, reason)| ConfigError::InvalidValue {
        name: name.to_owned(),
        value: entry,
        reason,
    })
}

pub(crate) fn parse_headers(
    name: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let headers =
        parse_key_values(value, true).map_err(|(entry, reason)| ConfigError::InvalidHeader {
            name: name.to_owned(),
            entry,
            reason,
        })?;
    check_headers(name, &headers)?;
    Ok(headers)
}

/// Header names must be valid HTTP header names, values valid header values.
pub(crate) fn check_headers(
    name: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, val) in headers {
        if http::HeaderName::from_bytes(key.as_bytes()).is_err() {
            return Err(ConfigError::InvalidHeader {
                name: name.to_owned(),
                entry: format!("{}={REDACTED}", shown_header_name(key)),
                reason: "not a valid header name".to_owned(),
            });
        }
        if http::HeaderValue::from_str(val).is_err() {
            return Err(ConfigError::InvalidHeader {
                name: name.to_owned(),
                entry: format!("{key}={REDACTED}"),
                reason: "the value holds characters a header cannot carry".to_owned(),
            });
        }
    }
    Ok(())
}

pub(crate) fn parse_exporters(name: &str, value: &str) -> Result<Vec<ExporterKind>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = match item.to_ascii_lowercase().as_str() {
            "none" => continue,
            "otlp" => ExporterKind::Otlp,
            "file" => ExporterKind::File,
            "console" | "stdout" => ExporterKind::Stdout,
            _ => {
                return Err(invalid(
                    name,
                    item,
                    "unsupported exporter (expected otlp, file, console or none)",
                ));
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

pub(crate) fn parse_propagators(
    name: &str,
    value: &str,
) -> Result<Vec<PropagatorKind>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = match item.to_ascii_lowercase().as_str() {
            "none" => continue,
            "tracecontext" => PropagatorKind::TraceContext,
            "baggage" => PropagatorKind::Baggage,
            "b3" => PropagatorKind::B3,
            "b3multi" => PropagatorKind::B3Multi,
            "jaeger" => PropagatorKind::Jaeger,
            _ => {
                return Err(invalid(
                    name,
                    item,
                    "unsupported propagator (expected tracecontext, baggage, b3, b3multi, \
                     jaeger or none)",
                ));
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

pub(crate) fn parse_protocol(name: &str, value: &str) -> Result<OtlpProtocol, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Err(invalid(
            name,
            value,
            "http/json is not supported (use grpc or http/protobuf)",
        )),
        _ => Err(invalid(name, value, "expected grpc or http/protobuf")),
    }
}

pub(crate) fn parse_compression(name: &str, value: &str) -> Result<OtlpCompression, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(OtlpCompression::Gzip),
        "none" => Ok(OtlpCompression::None),
        _ => Err(invalid(name, value, "expected gzip or none")),
    }
}

/// An exporter endpoint: an absolute `http` or `https` URL with a host.
#[cfg_attr(not(feature = "_otlp"), allow(dead_code))]
pub(crate) fn validate_endpoint(name: &str, value: &str) -> Result<http::Uri, ConfigError> {
    let bad = |reason: &str| ConfigError::InvalidEndpoint {
        name: name.to_owned(),
        value: shown(value.trim()),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = value.trim().parse().map_err(|_| bad("not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(_) => return Err(bad("the scheme must be http or https")),
        None => {
            return Err(bad(
                "expected an absolute URL such as http://collector:4317",
            ));
        }
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(bad("the URL has no host")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("credentials in the URL are not allowed (use headers)"));
    }
    Ok(uri)
}

/// The head sampler chosen by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum HeadSampler {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

pub(crate) fn parse_sampler(
    name: &str,
    value: &str,
    arg_name: &str,
    arg: Option<&str>,
) -> Result<HeadSampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        let Some(arg) = arg else { return Ok(1.0) };
        let parsed: f64 = arg
            .trim()
            .parse()
            .map_err(|_| ConfigError::SamplerArgOutOfRange {
                name: arg_name.to_owned(),
                value: shown(arg),
            })?;
        if !(0.0..=1.0).contains(&parsed) {
            return Err(ConfigError::SamplerArgOutOfRange {
                name: arg_name.to_owned(),
                value: shown(arg),
            });
        }
        Ok(parsed)
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "always_on" => Ok(HeadSampler::AlwaysOn),
        "always_off" => Ok(HeadSampler::AlwaysOff),
        "traceidratio" => Ok(HeadSampler::Ratio(ratio()?)),
        "parentbased_always_on" => Ok(HeadSampler::ParentBasedAlwaysOn),
        "parentbased_always_off" => Ok(HeadSampler::ParentBasedAlwaysOff),
        "parentbased_traceidratio" => Ok(HeadSampler::ParentBasedRatio(ratio()?)),
        _ => Err(invalid(
            name,
            value,
            "expected always_on, always_off, traceidratio, parentbased_always_on, \
             parentbased_always_off or parentbased_traceidratio",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_percent_decoded_and_errors_mask_values() {
        let h = parse_headers("H", "api-key=a%20b, x-tenant = t1").unwrap();
        assert_eq!(h["api-key"], "a b");
        assert_eq!(h["x-tenant"], "t1");
        let err = parse_headers("H", "authorization Bearer-secret").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = parse_headers("H", "bad header=secret").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid header entry in H `bad header=REDACTED`: not a valid header name"
        );
        // A `:` for `=` makes the credential part of the "name": it is masked there too.
        let err = parse_headers("H", "authorization:Basic dXNlcjpodW50ZXIy=").unwrap_err();
        assert!(!err.to_string().contains("dXNlcjpodW50ZXIy"), "{err}");
    }

    #[test]
    fn shown_values_lose_credentials_and_keep_the_rest() {
        assert_eq!(
            shown("http://user:hunter2@192.0.2.1:4317"),
            "http://REDACTED:REDACTED@192.0.2.1:4317"
        );
        assert_eq!(
            shown("http://user:hunter2@[bad"),
            "http://REDACTED:REDACTED@[bad"
        );
        assert_eq!(shown("traceidratio"), "traceidratio");
        assert!(!shown("Bearer hunter2hunter2").contains("hunter2"));
    }

    #[test]
    fn parser_messages_lose_the_strings_they_quote() {
        assert_eq!(
            shown_parser_message(
                "invalid type: string \"authorization=Bearer hun\\\"ter2\", expected a map"
            ),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            shown_parser_message("unknown field `hunter`, expected one of `endpoint`"),
            "unknown field `hunter`, expected one of `endpoint`"
        );
        assert_eq!(
            shown_parser_message("invalid type: string \"unterminated"),
            "invalid type: string"
        );
    }

    #[test]
    fn endpoints_must_be_absolute_http_urls_without_credentials() {
        assert!(validate_endpoint("E", "http://127.0.0.1:4317").is_ok());
        assert!(validate_endpoint("E", "https://collector.invalid/v1/traces").is_ok());
        for bad in [
            "collector:4317",
            "ftp://x",
            "http://",
            "not a url",
            "https://u:p@h.invalid",
        ] {
            assert!(validate_endpoint("E", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sampler_arguments_are_range_checked() {
        assert_eq!(
            parse_sampler("S", "traceidratio", "A", Some("0.25")).unwrap(),
            HeadSampler::Ratio(0.25)
        );
        let err = parse_sampler("S", "parentbased_traceidratio", "A", Some("1.5")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid A `1.5`: expected a ratio between 0.0 and 1.0"
        );
        assert!(parse_sampler("S", "jaeger_remote", "A", None).is_err());
    }
}
