//! Tenant-true OTLP export: every OTLP request carries one tenant's records, named by the
//! `X-StellaOps-Tenant` header (gRPC metadata `x-stellaops-tenant`).
//!
//! The OTLP exporters take their headers once, at build time, so the tenant is handed to
//! them per request instead: each tenant's share of a batch is exported inside a task-local
//! scope holding its header value, and the gRPC interceptor and the HTTP client wrapper read
//! it while the request is being made. One exporter (and one connection) serves every tenant.
//!
//! A record's tenant is its `tenant.id` string attribute. A value that is empty, longer than
//! [`MAX_TENANT_HEADER_LEN`] bytes or holding a byte outside `A-Z a-z 0-9 . _ - @ :` is not a tenant header: the record is
//! exported as if it had no tenant and counted as rejected. Records without a tenant go
//! without the header, or under the configured default tenant.

// Without an OTLP transport only the per-tenant counters are used.
#![cfg_attr(not(feature = "_otlp"), allow(dead_code))]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
#[cfg(feature = "otlp-http")]
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;
use opentelemetry::{Key, Value};
#[cfg(feature = "otlp-http")]
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use parking_lot::Mutex;

use super::signal::Signal;

/// The header naming the tenant of an OTLP request (gRPC metadata keys are lower case).
pub(crate) const TENANT_HEADER: &str = "x-stellaops-tenant";

/// The record attribute holding its tenant.
const TENANT_ATTRIBUTE: &str = "tenant.id";

/// The longest tenant id sent as a header value, in bytes (the longest tenant id the server
/// layer accepts).
pub(crate) const MAX_TENANT_HEADER_LEN: usize = crate::controls::MAX_TENANT_LEN;

/// Distinct tenant label values of the per-tenant export counter; later tenants are counted
/// under [`OTHER_TENANTS`].
pub(crate) const MAX_TENANT_LABELS: usize = 100;

/// The label value of tenants beyond [`MAX_TENANT_LABELS`].
pub(crate) const OTHER_TENANTS: &str = "_other";

/// The label value of records exported without a tenant.
pub(crate) const NO_TENANT: &str = "_none";

tokio::task_local! {
    /// The tenant header value of the OTLP request being made, if any.
    static REQUEST_TENANT: Option<HeaderValue>;
}

/// `tenant` as a header value, or `None` when it cannot be one: empty, longer than
/// [`MAX_TENANT_HEADER_LEN`] bytes, or holding a byte outside the tenant alphabet.
pub(crate) fn header_value(tenant: &str) -> Option<HeaderValue> {
    if !valid_tenant(tenant) {
        return None;
    }
    HeaderValue::from_str(tenant).ok()
}

/// Whether `tenant` can be sent as the tenant header (checked without allocating): the
/// tenant alphabet the server layer and the controls accept (`A-Z a-z 0-9 . _ - @ :`), so
/// that a value set directly in application code (with `|` or `/`, say) never reaches Loki or
/// Tempo as an `X-Scope-OrgID` they would refuse or split.
pub(crate) fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_HEADER_LEN
        && tenant.bytes().all(crate::controls::tenant_byte)
}

/// The tenant header value of the request being made (read by the transports).
fn current() -> Option<HeaderValue> {
    REQUEST_TENANT.try_with(Clone::clone).ok().flatten()
}

/// Sets or removes the tenant header: the SDK owns it, so a value configured among the
/// static headers never reaches a request of another tenant.
#[cfg(any(feature = "otlp-http", test))]
fn apply(headers: &mut http::HeaderMap) {
    match current() {
        Some(value) => {
            headers.insert(TENANT_HEADER, value);
        }
        None => {
            headers.remove(TENANT_HEADER);
        }
    }
}

/// The gRPC interceptor of every OTLP exporter: puts the tenant of the request in its
/// metadata (it runs after the static metadata is added).
#[cfg(feature = "otlp-grpc")]
pub(crate) fn grpc_interceptor(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let metadata = request.metadata_mut();
    let value =
        current().and_then(|v| tonic::metadata::AsciiMetadataValue::try_from(v.as_bytes()).ok());
    match value {
        Some(value) => {
            metadata.insert(TENANT_HEADER, value);
        }
        None => {
            metadata.remove(TENANT_HEADER);
        }
    }
    Ok(request)
}

/// The HTTP client of every OTLP/HTTP exporter: the blocking client, with the tenant of the
/// request set on its headers.
#[cfg(feature = "otlp-http")]
#[derive(Debug)]
pub(crate) struct TenantHttpClient(pub(crate) reqwest::blocking::Client);

#[cfg(feature = "otlp-http")]
impl HttpClient for TenantHttpClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        mut request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // Read here, while the exporter's future is polled inside the tenant's scope.
        apply(request.headers_mut());
        self.0.send_bytes(request)
    }
}

/// Records exported per signal and tenant, and tenant values refused as header values: what
/// the self-metrics report. At most [`MAX_TENANT_LABELS`] tenants get a label of their own.
#[derive(Debug, Default)]
pub(crate) struct TenantCounts {
    exported: Mutex<BTreeMap<(&'static str, Arc<str>), u64>>,
    /// The tenants with a label of their own.
    labelled: Mutex<HashSet<Arc<str>>>,
    rejected: [AtomicU64; 3],
}

impl TenantCounts {
    fn slot(signal: Signal) -> usize {
        match signal {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }

    /// The signal's label value, as the other self-metrics name it.
    fn label(signal: Signal) -> &'static str {
        match signal {
            Signal::Traces => "spans",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// Counts `n` records of `tenant` (a header value or `None`) as exported.
    pub(crate) fn record_exported(&self, signal: Signal, tenant: Option<&HeaderValue>, n: u64) {
        if n == 0 {
            return;
        }
        let name = tenant.and_then(|v| v.to_str().ok()).unwrap_or(NO_TENANT);
        let label: Arc<str> = {
            let mut labelled = self.labelled.lock();
            match labelled.get(name) {
                Some(known) => known.clone(),
                None if labelled.len() < MAX_TENANT_LABELS => {
                    let label: Arc<str> = Arc::from(name);
                    labelled.insert(label.clone());
                    label
                }
                None => Arc::from(OTHER_TENANTS),
            }
        };
        *self
            .exported
            .lock()
            .entry((Self::label(signal), label))
            .or_default() += n;
    }

    /// Counts `n` records whose tenant could not be a header value.
    pub(crate) fn record_rejected(&self, signal: Signal, n: u64) {
        if n > 0 {
            self.rejected[Self::slot(signal)].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Every `(signal, tenant, records)` counted so far.
    pub(crate) fn exported(&self) -> Vec<(&'static str, Arc<str>, u64)> {
        self.exported
            .lock()
            .iter()
            .map(|((signal, tenant), n)| (*signal, tenant.clone(), *n))
            .collect()
    }

    /// Records per signal whose tenant could not be a header value.
    pub(crate) fn rejected(&self) -> [(&'static str, u64); 3] {
        [Signal::Traces, Signal::Metrics, Signal::Logs].map(|s| {
            (
                Self::label(s),
                self.rejected[Self::slot(s)].load(Ordering::Relaxed),
            )
        })
    }
}

/// How one OTLP exporter names the tenants of its requests.
#[derive(Debug, Clone)]
pub(crate) struct Tenancy {
    pub(crate) signal: Signal,
    /// The tenant of records without one (already a valid header value).
    pub(crate) default: Option<HeaderValue>,
    pub(crate) counts: Arc<TenantCounts>,
}

/// One tenant's share of a batch, in the batch's order.
pub(crate) type Share<T> = (Option<HeaderValue>, Vec<T>);

impl Tenancy {
    /// The header value a record with tenant attribute value `tenant` is sent under, and
    /// whether its tenant was refused.
    pub(crate) fn route(&self, tenant: Option<&str>) -> (Option<HeaderValue>, bool) {
        match tenant {
            None => (self.default.clone(), false),
            Some(t) => match header_value(t) {
                Some(value) => (Some(value), false),
                None => (self.default.clone(), true),
            },
        }
    }

    /// Splits `items` into one share per tenant, each in the order of `items`, the shares in
    /// the order their tenants first appear. Refused tenant values are counted.
    pub(crate) fn split<T>(
        &self,
        items: Vec<T>,
        tenant_of: impl Fn(&T) -> Option<&str>,
    ) -> Vec<Share<T>> {
        let mut shares: Vec<Share<T>> = Vec::new();
        // Bounded by the batch; each key is a valid tenant, at most `MAX_TENANT_HEADER_LEN`
        // bytes. Records without a (valid) tenant share one group.
        let mut by_tenant: HashMap<Box<str>, usize> = HashMap::new();
        let mut untenanted: Option<usize> = None;
        let mut rejected = 0u64;
        for item in items {
            let at = {
                let raw = tenant_of(&item);
                match raw.filter(|t| valid_tenant(t)) {
                    Some(tenant) => match by_tenant.get(tenant) {
                        Some(&at) => at,
                        None => {
                            shares.push((HeaderValue::from_str(tenant).ok(), Vec::new()));
                            by_tenant.insert(Box::from(tenant), shares.len() - 1);
                            shares.len() - 1
                        }
                    },
                    None => {
                        rejected += u64::from(raw.is_some());
                        *untenanted.get_or_insert_with(|| {
                            shares.push((self.default.clone(), Vec::new()));
                            shares.len() - 1
                        })
                    }
                }
            };
            shares[at].1.push(item);
        }
        self.counts.record_rejected(self.signal, rejected);
        shares
    }

    /// Exports each share through `send`, one request per share inside its tenant's scope,
    /// and counts the records of every share delivered, per tenant and in `delivered` (as each
    /// share completes, so a caller that gives up on this future part-way still knows what
    /// went out). Shares not started within `timeout` of the first fail with a timeout (the
    /// transport bounds each request on its own). The first error is returned.
    pub(crate) async fn send_each<T, F, Fut>(
        &self,
        shares: Vec<Share<T>>,
        timeout: Duration,
        delivered: &AtomicU64,
        mut send: F,
    ) -> OTelSdkResult
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = OTelSdkResult>,
    {
        let deadline = Instant::now() + timeout;
        let mut result = Ok(());
        for (header, items) in shares {
            if Instant::now() >= deadline {
                if result.is_ok() {
                    result = Err(OTelSdkError::Timeout(timeout));
                }
                continue;
            }
            let n = items.len() as u64;
            match REQUEST_TENANT.scope(header.clone(), send(items)).await {
                Ok(()) => {
                    self.counts.record_exported(self.signal, header.as_ref(), n);
                    delivered.fetch_add(n, Ordering::Relaxed);
                }
                Err(error) => {
                    if result.is_ok() {
                        result = Err(error);
                    }
                }
            }
        }
        result
    }

    /// Runs `export` (a whole request) under `header`.
    pub(crate) async fn send_as<Fut>(
        &self,
        header: Option<HeaderValue>,
        export: Fut,
    ) -> OTelSdkResult
    where
        Fut: Future<Output = OTelSdkResult>,
    {
        REQUEST_TENANT.scope(header, export).await
    }
}

/// The tenant attribute value of a span's attributes.
pub(crate) fn span_tenant(attributes: &[opentelemetry::KeyValue]) -> Option<&str> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == TENANT_ATTRIBUTE)
        .and_then(|kv| match &kv.value {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// The tenant attribute value of a log record.
pub(crate) fn log_tenant(record: &opentelemetry_sdk::logs::SdkLogRecord) -> Option<&str> {
    record
        .attributes_iter()
        .find(|(key, _)| key.as_str() == TENANT_ATTRIBUTE)
        .and_then(|(_, value)| match value {
            opentelemetry::logs::AnyValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// The tenant attribute value of a metric data point's attributes.
pub(crate) fn point_tenant<'a>(
    mut attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
) -> Option<&'a str> {
    attributes
        .find(|kv| kv.key == Key::from_static_str(TENANT_ATTRIBUTE))
        .and_then(|kv| match &kv.value {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(default: Option<&str>) -> Tenancy {
        Tenancy {
            signal: Signal::Traces,
            default: default.and_then(header_value),
            counts: Arc::default(),
        }
    }

    #[test]
    fn header_values_are_bounded_and_in_the_tenant_alphabet() {
        assert!(header_value("acme-prod.eu:7@x_y").is_some());
        assert!(header_value(&"t".repeat(MAX_TENANT_HEADER_LEN)).is_some());
        for bad in [
            "",
            "a b",
            "a\nb",
            "a\r\nx-evil: 1",
            "caf\u{e9}",
            "tab\there",
            "a|b",
            "x/y",
            "a,b",
            "\"q\"",
            &"t".repeat(MAX_TENANT_HEADER_LEN + 1),
            &"t".repeat(1 << 20),
        ] {
            assert!(header_value(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_batch_splits_by_tenant_keeping_the_order_within_each() {
        let t = tenancy(None);
        let items = vec![
            ("a", 1),
            ("b", 2),
            ("", 3),
            ("a", 4),
            ("bad value", 5),
            ("b", 6),
            ("-", 7),
        ];
        let shares = t.split(items, |(tenant, _)| match *tenant {
            "-" => None,
            other => Some(other),
        });
        let shown: Vec<(Option<&str>, Vec<i32>)> = shares
            .iter()
            .map(|(h, items)| {
                (
                    h.as_ref().and_then(|h| h.to_str().ok()),
                    items.iter().map(|(_, n)| *n).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                (Some("a"), vec![1, 4]),
                (Some("b"), vec![2, 6]),
                (None, vec![3, 5, 7]),
            ]
        );
        // The empty and the spaced tenant values were refused.
        assert_eq!(t.counts.rejected()[0], ("spans", 2));
    }

    #[test]
    fn records_without_a_tenant_go_under_the_default_one() {
        let t = tenancy(Some("platform"));
        let shares = t.split(vec![Some("a"), None, Some("x y")], |s| *s);
        assert_eq!(shares.len(), 2);
        assert_eq!(
            shares[1].0.as_ref().and_then(|h| h.to_str().ok()),
            Some("platform")
        );
        assert_eq!(shares[1].1, vec![None, Some("x y")]);
    }

    #[test]
    fn the_tenant_label_set_is_bounded() {
        let counts = TenantCounts::default();
        for i in 0..250 {
            let value = header_value(&format!("tenant-{i}"));
            counts.record_exported(Signal::Logs, value.as_ref(), 2);
        }
        counts.record_exported(Signal::Logs, None, 1);
        let exported = counts.exported();
        let labels: std::collections::BTreeSet<&str> =
            exported.iter().map(|(_, t, _)| &**t).collect();
        assert_eq!(labels.len(), MAX_TENANT_LABELS + 1);
        assert!(labels.contains(OTHER_TENANTS));
        let other = exported
            .iter()
            .find(|(_, t, _)| &**t == OTHER_TENANTS)
            .unwrap();
        // 150 tenants past the bound, plus the untenanted record (its label came too late).
        assert_eq!(other.2, 150 * 2 + 1);
        assert_eq!(exported.iter().map(|(_, _, n)| n).sum::<u64>(), 501);
    }

    #[test]
    #[cfg(feature = "otlp-grpc")]
    fn the_scope_reaches_the_transports_and_ends_with_the_request() {
        let t = tenancy(None);
        let seen = Mutex::new(Vec::new());
        let shares = t.split(vec![Some("a"), None, Some("b")], |s| *s);
        let delivered = AtomicU64::new(0);
        let result = futures_executor::block_on(t.send_each(
            shares,
            Duration::from_secs(10),
            &delivered,
            |_| async {
                let mut headers = http::HeaderMap::new();
                headers.insert(TENANT_HEADER, HeaderValue::from_static("configured"));
                apply(&mut headers);
                let request = grpc_interceptor(tonic::Request::new(())).unwrap();
                seen.lock().push((
                    headers
                        .get(TENANT_HEADER)
                        .map(|v| v.to_str().unwrap().to_owned()),
                    request
                        .metadata()
                        .get(TENANT_HEADER)
                        .map(|v| v.to_str().unwrap().to_owned()),
                ));
                Ok(())
            },
        ));
        assert!(result.is_ok());
        assert_eq!(delivered.load(Ordering::Relaxed), 3);
        let a = Some("a".to_owned());
        let b = Some("b".to_owned());
        assert_eq!(
            *seen.lock(),
            vec![(a.clone(), a), (None, None), (b.clone(), b)]
        );
        assert_eq!(current(), None);
        let mut exported = t.counts.exported();
        exported.sort();
        assert_eq!(exported.len(), 3);
    }

    #[test]
    fn a_failed_share_counts_only_its_own_records_and_the_first_error_is_returned() {
        let t = tenancy(None);
        let shares = t.split(
            vec![Some("a"), Some("b"), Some("a"), Some("c"), Some("b")],
            |s| *s,
        );
        let delivered = AtomicU64::new(0);
        let result = futures_executor::block_on(t.send_each(
            shares,
            Duration::from_secs(10),
            &delivered,
            |share| async move {
                if share[0] == Some("b") {
                    Err(OTelSdkError::InternalFailure("b refused".into()))
                } else {
                    Ok(())
                }
            },
        ));
        assert!(matches!(result, Err(OTelSdkError::InternalFailure(m)) if m == "b refused"));
        // a (2) and c (1) went out; b's 2 did not.
        assert_eq!(delivered.load(Ordering::Relaxed), 3);
        let mut exported: Vec<(String, u64)> = t
            .counts
            .exported()
            .into_iter()
            .map(|(_, tenant, n)| (tenant.to_string(), n))
            .collect();
        exported.sort();
        assert_eq!(exported, [("a".to_owned(), 2), ("c".to_owned(), 1)]);
    }

    #[test]
    fn shares_not_started_by_the_deadline_fail_with_a_timeout_and_are_not_delivered() {
        let t = tenancy(None);
        let shares = t.split(vec![Some("a"), Some("b"), Some("c")], |s| *s);
        let delivered = AtomicU64::new(0);
        let result = futures_executor::block_on(t.send_each(
            shares,
            Duration::from_millis(20),
            &delivered,
            |_| async {
                std::thread::sleep(Duration::from_millis(30));
                Ok(())
            },
        ));
        assert!(
            matches!(result, Err(OTelSdkError::Timeout(_))),
            "{result:?}"
        );
        assert_eq!(delivered.load(Ordering::Relaxed), 1);
    }
}
