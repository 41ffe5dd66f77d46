//! The `baggage` header: application `key=value;properties` pairs (W3C Baggage,
//! <https://www.w3.org/TR/baggage/>).

use opentelemetry::baggage::Baggage;

use super::trim_ows;

/// The most list-members kept: the grammar's `list-member 0*179( OWS "," OWS list-member )`.
/// Members past it are dropped; the specification only requires 64 ("a platform MAY drop
/// `list-member`s until both conditions are met").
///
/// # Example
///
/// ```
/// # use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::propagation::{MAX_BAGGAGE_MEMBERS, extract};
///
/// let many: Vec<String> = (0..200).map(|i| format!("k{i}=v")).collect();
/// let mut headers = HeaderMap::new();
/// headers.insert("baggage", HeaderValue::try_from(many.join(","))?);
/// assert_eq!(extract(&headers).baggage.len(), MAX_BAGGAGE_MEMBERS);
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// The largest combined `baggage` value (all field lines joined with `,`) that is read, and the
/// largest one written. A longer one is ignored whole when read; when written, members that
/// would not fit are left out whole.
///
/// # Example
///
/// ```
/// # use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::propagation::{MAX_BAGGAGE_BYTES, extract};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("baggage", HeaderValue::try_from(format!("k={}", "v".repeat(MAX_BAGGAGE_BYTES)))?);
/// assert!(extract(&headers).baggage.is_empty());
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// Baggage received in `baggage` headers: its list-members in the order they came, duplicates
/// included ("the order of duplicate entries SHOULD be preserved").
///
/// `opentelemetry`'s [`Baggage`] is a map capped at 64 entries; this list keeps the up to 180
/// members the grammar allows so that a service passes on what it received. Convert with
/// [`BaggageList::to_baggage`] to put it in an `opentelemetry::Context`.
///
/// # Example
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use stellaops_telemetry_core::propagation::extract;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("baggage", HeaderValue::from_static("user=Am%C3%A9lie;pii, region = eu"));
/// let baggage = extract(&headers).baggage;
/// assert_eq!(baggage.len(), 2);
/// assert_eq!(baggage.get("user"), Some("Amélie"));
/// let first = baggage.iter().next();
/// assert_eq!(first.map(|m| m.properties()), Some("pii"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaggageList {
    members: Vec<BaggageMember>,
}

/// One baggage list-member.
///
/// # Example
///
/// ```
/// # use http::{HeaderMap, HeaderValue};
/// # use stellaops_telemetry_core::propagation::extract;
/// # let mut headers = HeaderMap::new();
/// # headers.insert("baggage", HeaderValue::from_static("k=a%20b; p1 ;p2 = x"));
/// let baggage = extract(&headers).baggage;
/// let member = baggage.iter().next();
/// assert_eq!(member.map(|m| (m.key(), m.value(), m.properties())), Some(("k", "a b", "p1;p2=x")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: String,
}

impl BaggageMember {
    /// The key, an RFC 7230 `token`.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// # let mut headers = HeaderMap::new();
    /// # headers.insert("baggage", HeaderValue::from_static("user=al%20ice;pii"));
    /// let member = extract(&headers).baggage.iter().next().cloned();
    /// assert_eq!(member.as_ref().map(|m| m.key()), Some("user"));
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value, percent-decoded. Percent-encoded octets that are not UTF-8 became U+FFFD; a
    /// `%` not followed by two hex digits is kept as it is.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// # let mut headers = HeaderMap::new();
    /// # headers.insert("baggage", HeaderValue::from_static("user=al%20ice;pii"));
    /// let member = extract(&headers).baggage.iter().next().cloned();
    /// assert_eq!(member.as_ref().map(|m| m.value()), Some("al ice"));
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The properties as received, without the leading `;` and without optional whitespace:
    /// `p1;p2=v2`, empty when there are none. Their values keep their percent-encoding, since
    /// the specification gives properties no meaning; this is also how `opentelemetry` stores
    /// them (`BaggageMetadata`).
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// # let mut headers = HeaderMap::new();
    /// # headers.insert("baggage", HeaderValue::from_static("user=al%20ice;pii"));
    /// let member = extract(&headers).baggage.iter().next().cloned();
    /// assert_eq!(member.as_ref().map(|m| m.properties()), Some("pii"));
    /// ```
    pub fn properties(&self) -> &str {
        &self.properties
    }
}

impl BaggageMember {
    /// A member of already checked parts.
    pub(super) fn new(key: String, value: String, properties: String) -> Self {
        BaggageMember {
            key,
            value,
            properties,
        }
    }
}

impl BaggageList {
    /// A list of already checked members.
    pub(super) fn from_members(members: Vec<BaggageMember>) -> Self {
        BaggageList { members }
    }

    /// Appends `other`'s members after these (a later propagator's baggage), up to
    /// [`MAX_BAGGAGE_MEMBERS`] in all.
    pub(super) fn append(&mut self, mut other: BaggageList) {
        if self.members.is_empty() {
            // The first propagator's list (or none: the common case) is taken as it is.
            other.members.truncate(MAX_BAGGAGE_MEMBERS);
            self.members = other.members;
            return;
        }
        let room = MAX_BAGGAGE_MEMBERS.saturating_sub(self.members.len());
        self.members.extend(other.members.into_iter().take(room));
    }

    /// The list-members, in the order received.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("baggage", HeaderValue::from_static("a=1,b=2,a=3"));
    /// let baggage = extract(&headers).baggage;
    /// let keys: Vec<&str> = baggage.iter().map(|m| m.key()).collect();
    /// assert_eq!(keys, ["a", "b", "a"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &BaggageMember> {
        self.members.iter()
    }

    /// The value of the first member named `key`.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("baggage", HeaderValue::from_static("a=1,b=2,a=3"));
    /// let baggage = extract(&headers).baggage;
    /// assert_eq!(baggage.get("a"), Some("1"));
    /// assert_eq!(baggage.get("c"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// How many list-members there are, repeated keys included.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("baggage", HeaderValue::from_static("a=1,b=2,a=3"));
    /// let baggage = extract(&headers).baggage;
    /// assert_eq!(baggage.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    ///
    /// # Example
    ///
    /// ```
    /// # use stellaops_telemetry_core::propagation::extract;
    /// assert!(extract(&http::HeaderMap::new()).baggage.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Converts to `opentelemetry`'s [`Baggage`], for a `Context`.
    ///
    /// That map keeps one value per key (the last one wins) and at most 64 entries and 8,192
    /// bytes; what does not fit is left out.
    ///
    /// # Example
    ///
    /// ```
    /// # use http::{HeaderMap, HeaderValue};
    /// # use stellaops_telemetry_core::propagation::extract;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("baggage", HeaderValue::from_static("a=1,b=2,a=3"));
    /// let baggage = extract(&headers).baggage;
    /// let otel = baggage.to_baggage();
    /// assert_eq!(otel.len(), 2);
    /// assert_eq!(otel.get("a").map(|v| v.as_str()), Some("3"));
    /// ```
    pub fn to_baggage(&self) -> Baggage {
        let mut baggage = Baggage::new();
        for m in &self.members {
            // `insert_with_metadata` returns the value it replaced, not an error.
            let _replaced =
                baggage.insert_with_metadata(m.key.clone(), m.value.clone(), m.properties.as_str());
        }
        baggage
    }
}

/// Parses the combined `baggage` field lines.
///
/// More than [`MAX_BAGGAGE_BYTES`] in all: no baggage at all. A list-member that breaks the
/// grammar is skipped and the others kept ("it MAY remove an offending list-member before
/// propagating the rest"). Members past the 180th valid one are dropped.
/// `lines` is called twice: once to measure, once to parse.
pub(super) fn parse<'a, I>(lines: impl Fn() -> I) -> BaggageList
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let combined_len = lines()
        .into_iter()
        .enumerate()
        .fold(0usize, |len, (i, line)| {
            len.saturating_add(line.len())
                .saturating_add(usize::from(i > 0))
        });
    let mut members = Vec::new();
    if combined_len > MAX_BAGGAGE_BYTES {
        return BaggageList { members };
    }
    for line in lines() {
        for member in line.split(|&b| b == b',') {
            if members.len() == MAX_BAGGAGE_MEMBERS {
                return BaggageList { members };
            }
            if let Some(member) = parse_member(member) {
                members.push(member);
            }
        }
    }
    BaggageList { members }
}

/// `list-member = key OWS "=" OWS value *( OWS ";" OWS property )`.
fn parse_member(member: &[u8]) -> Option<BaggageMember> {
    let member = trim_ows(member);
    let (pair, properties) = match member.iter().position(|&b| b == b';') {
        Some(semi) => (member.get(..semi)?, member.get(semi + 1..)),
        None => (member, None),
    };
    let (key, value) = split_pair(pair)?;
    let value = value?;
    let properties = match properties {
        Some(properties) => {
            if !valid_properties(properties) {
                return None;
            }
            let mut out = String::with_capacity(properties.len());
            push_properties(&mut out, properties);
            out
        }
        None => String::new(),
    };
    Some(BaggageMember {
        key: ascii(key)?,
        value: percent_decode(value),
        properties,
    })
}

/// Splits `key OWS "=" OWS value` (or a bare `key OWS`, value `None`) and checks both parts.
fn split_pair(pair: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (key, value) = match pair.iter().position(|&b| b == b'=') {
        Some(eq) => (
            trim_ows(pair.get(..eq)?),
            Some(trim_ows(pair.get(eq + 1..)?)),
        ),
        None => (trim_ows(pair), None),
    };
    let value_ok = value.is_none_or(|v| v.iter().all(|&b| is_baggage_octet(b)));
    (is_token(key) && value_ok).then_some((key, value))
}

/// `*( OWS ";" OWS property )` after the first `;`: every property is `key OWS "=" OWS value`
/// or `key OWS`; an empty one (`k=v;`) breaks the grammar.
fn valid_properties(properties: &[u8]) -> bool {
    properties
        .split(|&b| b == b';')
        .all(|property| split_pair(property).is_some())
}

/// Appends already checked properties without their optional whitespace.
fn push_properties(out: &mut String, properties: &[u8]) {
    for (i, property) in properties.split(|&b| b == b';').enumerate() {
        let Some((key, value)) = split_pair(property) else {
            continue;
        };
        if i > 0 {
            out.push(';');
        }
        push_ascii(out, key);
        if let Some(value) = value {
            out.push('=');
            push_ascii(out, value);
        }
    }
}

/// RFC 7230 `token = 1*tchar`.
pub(super) fn is_token(key: &[u8]) -> bool {
    !key.is_empty()
        && key.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn ascii(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

fn push_ascii(out: &mut String, bytes: &[u8]) {
    out.extend(bytes.iter().map(|&b| char::from(b)));
}

/// Percent-decodes a value (RFC 3986 §2.1, hex digits of either case). Decoded octets that are
/// not UTF-8 become U+FFFD, as the specification requires; a `%` without two hex digits after
/// it is kept literally.
fn percent_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hi = tail.first().and_then(|&h| hex_value(h));
            let lo = tail.get(1).and_then(|&l| hex_value(l));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                rest = tail.get(2..).unwrap_or_default();
                continue;
            }
        }
        out.push(b);
        rest = tail;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Serialises members for the `baggage` header.
///
/// Values are percent-encoded: every octet outside `baggage-octet`, and `%` itself (uppercase
/// hex, RFC 3986 §2.1). Properties are written without whitespace when they follow the grammar
/// and left out when they don't. A member whose key is not a token is skipped; so is one that
/// would take the header past [`MAX_BAGGAGE_BYTES`] (members are never cut), and no more than
/// [`MAX_BAGGAGE_MEMBERS`] are written. An empty string means "send no header".
pub(super) fn format<'a>(members: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    let mut out = String::new();
    let mut member = String::new();
    let mut written = 0;
    for (key, value, properties) in members {
        if written == MAX_BAGGAGE_MEMBERS {
            break;
        }
        if !is_token(key.as_bytes()) {
            continue;
        }
        member.clear();
        member.push_str(key);
        member.push('=');
        percent_encode(&mut member, value);
        if !properties.is_empty() && valid_properties(properties.as_bytes()) {
            member.push(';');
            push_properties(&mut member, properties.as_bytes());
        }
        let separator = usize::from(!out.is_empty());
        if out.len() + separator + member.len() > MAX_BAGGAGE_BYTES {
            continue;
        }
        if separator == 1 {
            out.push(',');
        }
        out.push_str(&member);
        written += 1;
    }
    out
}

fn percent_encode(out: &mut String, value: &str) {
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_upper(b >> 4));
            out.push(hex_upper(b & 0x0f));
        }
    }
}

pub(super) fn hex_upper(nibble: u8) -> char {
    let nibble = nibble & 0x0f;
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'A' + nibble - 10
    })
}
