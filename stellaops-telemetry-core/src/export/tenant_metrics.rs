//! Tenant-true metric export: a collection whose data points belong to several tenants is
//! converted to its OTLP request, split into one request per tenant and sent with that
//! tenant's header.
//!
//! The SDK's metric data cannot be rebuilt outside the SDK, so the split happens on the OTLP
//! protobuf form, made by the same conversion the OTLP exporter uses (temporality and
//! aggregation are what the exporter would send). Each request keeps the resource and scopes
//! of the collection and only its tenant's data points; metrics and scopes left without a
//! point are dropped. The requests go through a [`MetricTransport`] built from the exporter's
//! own settings: same endpoint, static headers, TLS material, compression, timeout and, in
//! sealed mode, the same resolver.

use std::collections::HashMap;
#[cfg(feature = "otlp-http")]
use std::io::Write as _;
use std::time::{Duration, Instant};

use http::HeaderValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
#[cfg(feature = "otlp-grpc")]
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
#[cfg(feature = "otlp-http")]
use prost::Message as _;

use super::tenant::{TENANT_HEADER, Tenancy};

/// The record attribute holding a data point's tenant.
const TENANT_ATTRIBUTE: &str = "tenant.id";

/// One tenant's request: its header value (`None`: sent without the header), the request and
/// the number of data points it holds.
pub(crate) type TenantRequest = (Option<HeaderValue>, ExportMetricsServiceRequest, u64);

/// How the per-tenant metric requests reach the collector: the metric exporter's endpoint,
/// dialled the way the exporter dials it.
pub(crate) enum MetricTransport {
    /// gRPC over a channel built like the exporter's, with its static metadata.
    #[cfg(feature = "otlp-grpc")]
    Grpc {
        client: MetricsServiceClient<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
        timeout: Duration,
    },
    /// HTTP/protobuf POSTs with the exporter's blocking client.
    #[cfg(feature = "otlp-http")]
    Http {
        client: reqwest::blocking::Client,
        url: String,
        headers: http::HeaderMap,
        gzip: bool,
    },
}

impl std::fmt::Debug for MetricTransport {
    /// Header values and the endpoint are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            #[cfg(feature = "otlp-grpc")]
            MetricTransport::Grpc { .. } => "MetricTransport::Grpc",
            #[cfg(feature = "otlp-http")]
            MetricTransport::Http { .. } => "MetricTransport::Http",
        })
    }
}

impl MetricTransport {
    /// Sends `request` under `tenant` (`None`: without the header; a configured static
    /// tenant header is never sent).
    pub(crate) async fn send(
        &self,
        tenant: Option<&HeaderValue>,
        request: ExportMetricsServiceRequest,
    ) -> OTelSdkResult {
        match self {
            #[cfg(feature = "otlp-grpc")]
            MetricTransport::Grpc {
                client,
                metadata,
                timeout,
            } => {
                let mut metadata = metadata.clone();
                match tenant
                    .and_then(|v| tonic::metadata::AsciiMetadataValue::try_from(v.as_bytes()).ok())
                {
                    Some(value) => {
                        metadata.insert(TENANT_HEADER, value);
                    }
                    None => {
                        metadata.remove(TENANT_HEADER);
                    }
                }
                let request =
                    tonic::Request::from_parts(metadata, tonic::Extensions::default(), request);
                let mut client = client.clone();
                match tokio::time::timeout(*timeout, client.export(request)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(status)) => Err(OTelSdkError::InternalFailure(format!(
                        "metrics export failed: {}: {}",
                        status.code(),
                        status.message()
                    ))),
                    Err(_) => Err(OTelSdkError::Timeout(*timeout)),
                }
            }
            #[cfg(feature = "otlp-http")]
            MetricTransport::Http {
                client,
                url,
                headers,
                gzip,
            } => send_http(client, url, headers, *gzip, tenant, &request),
        }
    }
}

/// One blocking POST of `request` (the client carries the timeout).
#[cfg(feature = "otlp-http")]
fn send_http(
    client: &reqwest::blocking::Client,
    url: &str,
    headers: &http::HeaderMap,
    gzip: bool,
    tenant: Option<&HeaderValue>,
    request: &ExportMetricsServiceRequest,
) -> OTelSdkResult {
    let mut headers = headers.clone();
    match tenant {
        Some(value) => {
            headers.insert(TENANT_HEADER, value.clone());
        }
        None => {
            headers.remove(TENANT_HEADER);
        }
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    let mut body = request.encode_to_vec();
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .map(|compressed| body = compressed)
            .map_err(|e| OTelSdkError::InternalFailure(format!("metrics gzip failed: {e}")))?;
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    let response = client
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .map_err(|e| {
            if e.is_timeout() {
                OTelSdkError::InternalFailure("metrics export timed out".to_owned())
            } else {
                // Without the URL: its query may hold credentials.
                OTelSdkError::InternalFailure(format!("metrics export failed: {}", e.without_url()))
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(OTelSdkError::InternalFailure(format!(
            "metrics export failed: HTTP status {status}"
        )))
    }
}

/// The outcome of sending a collection's per-tenant requests: the first error, and the data
/// points delivered and not delivered.
#[derive(Debug)]
pub(crate) struct SplitOutcome {
    pub(crate) result: OTelSdkResult,
    pub(crate) exported: u64,
    pub(crate) failed: u64,
}

/// Sends each request through `transport`, counting the points of every request delivered
/// per tenant. Requests not started within `timeout` of the first fail with a timeout (the
/// transport bounds each request on its own).
pub(crate) async fn send_split(
    transport: &MetricTransport,
    tenancy: &Tenancy,
    requests: Vec<TenantRequest>,
    timeout: Duration,
) -> SplitOutcome {
    let deadline = Instant::now() + timeout;
    let mut outcome = SplitOutcome {
        result: Ok(()),
        exported: 0,
        failed: 0,
    };
    for (header, request, points) in requests {
        let sent = if Instant::now() >= deadline {
            Err(OTelSdkError::Timeout(timeout))
        } else {
            transport.send(header.as_ref(), request).await
        };
        match sent {
            Ok(()) => {
                outcome.exported += points;
                tenancy
                    .counts
                    .record_exported(tenancy.signal, header.as_ref(), points);
            }
            Err(error) => {
                outcome.failed += points;
                if outcome.result.is_ok() {
                    outcome.result = Err(error);
                }
            }
        }
    }
    outcome
}

/// The tenant attribute value of a data point's attributes.
fn proto_tenant(attributes: &[KeyValue]) -> Option<&str> {
    attributes
        .iter()
        .find(|kv| kv.key == TENANT_ATTRIBUTE)
        .and_then(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.as_str()),
                _ => None,
            },
        )
}

/// Gives every data point the index of its tenant's request; the requests are numbered in
/// the order their tenants first appear.
struct Router<'t> {
    tenancy: &'t Tenancy,
    /// Bounded by the distinct tenants of the collection.
    index: HashMap<Option<HeaderValue>, usize>,
    /// Each request's header and data points, by index.
    requests: Vec<(Option<HeaderValue>, ExportMetricsServiceRequest, u64)>,
    /// For each request, the resource and scope (in the input) its last entries belong to.
    last: Vec<(Option<usize>, Option<usize>)>,
}

impl<'t> Router<'t> {
    fn new(tenancy: &'t Tenancy) -> Self {
        Router {
            tenancy,
            index: HashMap::new(),
            requests: Vec::new(),
            last: Vec::new(),
        }
    }

    /// The request index of a point with these attributes (refused tenants were already
    /// counted when the collection's tenants were read).
    fn route(&mut self, attributes: &[KeyValue]) -> usize {
        let (header, _) = self.tenancy.route(proto_tenant(attributes));
        if let Some(&at) = self.index.get(&header) {
            return at;
        }
        let at = self.requests.len();
        self.index.insert(header.clone(), at);
        self.requests
            .push((header, ExportMetricsServiceRequest::default(), 0));
        self.last.push((None, None));
        at
    }

    /// Adds `metric` (holding only points of request `at`) under resource `r` and scope `s`
    /// of the input, opening that resource and scope in the request when it is not there yet.
    fn place(
        &mut self,
        at: usize,
        (r, resource): (usize, &ResourceMetrics),
        (s, scope): (usize, &ScopeMetrics),
        metric: Metric,
        points: u64,
    ) {
        let (request, last) = (&mut self.requests[at], &mut self.last[at]);
        let out = &mut request.1.resource_metrics;
        if last.0 != Some(r) || out.is_empty() {
            out.push(ResourceMetrics {
                resource: resource.resource.clone(),
                scope_metrics: Vec::new(),
                schema_url: resource.schema_url.clone(),
            });
            *last = (Some(r), None);
        }
        let Some(resource_out) = out.last_mut() else {
            return;
        };
        if last.1 != Some(s) || resource_out.scope_metrics.is_empty() {
            resource_out.scope_metrics.push(ScopeMetrics {
                scope: scope.scope.clone(),
                metrics: Vec::new(),
                schema_url: scope.schema_url.clone(),
            });
            last.1 = Some(s);
        }
        if let Some(scope_out) = resource_out.scope_metrics.last_mut() {
            scope_out.metrics.push(metric);
            request.2 += points;
        }
    }
}

/// Splits `points` into one group per request index, the groups in first-seen order.
fn partition<P>(
    points: Vec<P>,
    router: &mut Router<'_>,
    attributes: impl Fn(&P) -> &[KeyValue],
) -> Vec<(usize, Vec<P>)> {
    let mut groups: Vec<(usize, Vec<P>)> = Vec::new();
    // Request index to group position; bounded by the distinct tenants of the metric.
    let mut position: HashMap<usize, usize> = HashMap::new();
    for point in points {
        let at = router.route(attributes(&point));
        let group = *position.entry(at).or_insert_with(|| {
            groups.push((at, Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push(point);
    }
    groups
}

/// `metric` split by tenant: one copy per request index holding only that tenant's points,
/// with the number of points of each.
fn split_metric(metric: Metric, router: &mut Router<'_>) -> Vec<(usize, Metric, u64)> {
    let Metric {
        name,
        description,
        unit,
        metadata,
        data,
    } = metric;
    let with = |data: Data| Metric {
        name: name.clone(),
        description: description.clone(),
        unit: unit.clone(),
        metadata: metadata.clone(),
        data: Some(data),
    };
    let parts: Vec<(usize, Data, u64)> = match data {
        None => Vec::new(),
        Some(Data::Gauge(g)) => partition(g.data_points, router, |p| &p.attributes)
            .into_iter()
            .map(|(at, points)| {
                let n = points.len() as u64;
                (
                    at,
                    Data::Gauge(opentelemetry_proto::tonic::metrics::v1::Gauge {
                        data_points: points,
                    }),
                    n,
                )
            })
            .collect(),
        Some(Data::Sum(s)) => partition(s.data_points, router, |p| &p.attributes)
            .into_iter()
            .map(|(at, points)| {
                let n = points.len() as u64;
                let sum = opentelemetry_proto::tonic::metrics::v1::Sum {
                    data_points: points,
                    aggregation_temporality: s.aggregation_temporality,
                    is_monotonic: s.is_monotonic,
                };
                (at, Data::Sum(sum), n)
            })
            .collect(),
        Some(Data::Histogram(h)) => partition(h.data_points, router, |p| &p.attributes)
            .into_iter()
            .map(|(at, points)| {
                let n = points.len() as u64;
                let histogram = opentelemetry_proto::tonic::metrics::v1::Histogram {
                    data_points: points,
                    aggregation_temporality: h.aggregation_temporality,
                };
                (at, Data::Histogram(histogram), n)
            })
            .collect(),
        Some(Data::ExponentialHistogram(h)) => partition(h.data_points, router, |p| &p.attributes)
            .into_iter()
            .map(|(at, points)| {
                let n = points.len() as u64;
                let histogram = opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                    data_points: points,
                    aggregation_temporality: h.aggregation_temporality,
                };
                (at, Data::ExponentialHistogram(histogram), n)
            })
            .collect(),
        Some(Data::Summary(s)) => partition(s.data_points, router, |p| &p.attributes)
            .into_iter()
            .map(|(at, points)| {
                let n = points.len() as u64;
                (
                    at,
                    Data::Summary(opentelemetry_proto::tonic::metrics::v1::Summary {
                        data_points: points,
                    }),
                    n,
                )
            })
            .collect(),
    };
    parts
        .into_iter()
        .map(|(at, data, n)| (at, with(data), n))
        .collect()
}

/// Splits `request` into one request per tenant route of its data points (see
/// [`Tenancy::route`]), in the order the tenants first appear. Each keeps the resources and
/// scopes of its points, in the input's order; metrics and scopes without a point of the
/// tenant are left out. Linear in the size of the request.
pub(crate) fn split_request(
    request: ExportMetricsServiceRequest,
    tenancy: &Tenancy,
) -> Vec<TenantRequest> {
    let mut router = Router::new(tenancy);
    for (r, mut resource) in request.resource_metrics.into_iter().enumerate() {
        let scopes = std::mem::take(&mut resource.scope_metrics);
        for (s, mut scope) in scopes.into_iter().enumerate() {
            let metrics = std::mem::take(&mut scope.metrics);
            for metric in metrics {
                for (at, part, n) in split_metric(metric, &mut router) {
                    router.place(at, (r, &resource), (s, &scope), part, n);
                }
            }
        }
    }
    router.requests
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, HistogramDataPoint, NumberDataPoint};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;
    use crate::export::Signal;
    use crate::export::tenant::header_value;

    fn attr(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            key_strindex: 0,
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.to_owned())),
            }),
        }
    }

    fn number(tenant: Option<&str>, seq: i64) -> NumberDataPoint {
        let mut attributes = vec![KeyValue {
            key: "seq".to_owned(),
            key_strindex: 0,
            value: Some(AnyValue {
                value: Some(Value::IntValue(seq)),
            }),
        }];
        attributes.extend(tenant.map(|t| attr("tenant.id", t)));
        NumberDataPoint {
            attributes,
            ..Default::default()
        }
    }

    fn request() -> ExportMetricsServiceRequest {
        let gauge = Metric {
            name: "g".to_owned(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![
                    number(Some("a"), 0),
                    number(Some("b"), 1),
                    number(None, 2),
                    number(Some("a"), 3),
                    number(Some("bad value"), 4),
                ],
            })),
            ..Default::default()
        };
        let histogram = Metric {
            name: "h".to_owned(),
            data: Some(Data::Histogram(
                opentelemetry_proto::tonic::metrics::v1::Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: vec![attr("tenant.id", "a")],
                        count: 3,
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                },
            )),
            ..Default::default()
        };
        let scope = |name: &str, metrics| ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: name.to_owned(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", "svc")],
                    ..Default::default()
                }),
                scope_metrics: vec![scope("s1", vec![gauge]), scope("s2", vec![histogram])],
                schema_url: "schema".to_owned(),
            }],
        }
    }

    fn tenancy(default: Option<&str>) -> Tenancy {
        Tenancy {
            signal: Signal::Metrics,
            default: default.and_then(header_value),
            counts: Arc::default(),
        }
    }

    /// One request as shown: header, (scope, metric, points) entries, points in all.
    type Shown<'a> = (Option<&'a str>, Vec<(String, String, usize)>, u64);

    fn shown(parts: &[TenantRequest]) -> Vec<Shown<'_>> {
        parts
            .iter()
            .map(|(h, request, n)| {
                assert_eq!(request.resource_metrics.len(), 1);
                let resource = &request.resource_metrics[0];
                assert_eq!(resource.schema_url, "schema");
                assert!(resource.resource.is_some());
                let entries = resource
                    .scope_metrics
                    .iter()
                    .flat_map(|s| {
                        s.metrics.iter().map(move |m| {
                            let points = match &m.data {
                                Some(Data::Gauge(g)) => g.data_points.len(),
                                Some(Data::Histogram(h)) => {
                                    assert_eq!(h.aggregation_temporality, 2);
                                    h.data_points.len()
                                }
                                other => panic!("{other:?}"),
                            };
                            let scope =
                                s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                            (scope, m.name.clone(), points)
                        })
                    })
                    .collect();
                (h.as_ref().and_then(|h| h.to_str().ok()), entries, *n)
            })
            .collect()
    }

    #[test]
    fn a_request_splits_into_one_per_tenant_dropping_empty_scopes() {
        let parts = split_request(request(), &tenancy(None));
        let s = |scope: &str, metric: &str, n| (scope.to_owned(), metric.to_owned(), n);
        assert_eq!(
            shown(&parts),
            vec![
                (Some("a"), vec![s("s1", "g", 2), s("s2", "h", 1)], 3),
                (Some("b"), vec![s("s1", "g", 1)], 1),
                (None, vec![s("s1", "g", 2)], 2),
            ]
        );
    }

    #[test]
    fn untenanted_points_join_the_default_tenant() {
        let parts = split_request(request(), &tenancy(Some("b")));
        let headers: Vec<_> = shown(&parts).into_iter().map(|(h, _, n)| (h, n)).collect();
        assert_eq!(headers, vec![(Some("a"), 3), (Some("b"), 3)]);
    }

    #[test]
    #[cfg(feature = "otlp-http")]
    fn a_failed_request_counts_its_points_as_failed_and_not_as_exported() {
        // Nothing listens on port 1 of the loopback address: every request fails.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let client = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let transport = MetricTransport::Http {
            client,
            url: "http://127.0.0.1:1/v1/metrics".to_owned(),
            headers: http::HeaderMap::new(),
            gzip: true,
        };
        let t = tenancy(None);
        let requests = split_request(request(), &t);
        let outcome = futures_executor::block_on(send_split(
            &transport,
            &t,
            requests,
            Duration::from_secs(10),
        ));
        assert!(outcome.result.is_err());
        assert_eq!((outcome.exported, outcome.failed), (0, 6));
        assert!(t.counts.exported().is_empty());
    }
}
