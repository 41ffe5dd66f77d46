//! A real tonic server behind the server layer: each call's `grpc-status` becomes the
//! `status` label and `rpc.grpc.status_code`, INTERNAL is a span error and OK is not, the
//! span has the `rpc.*` attributes, and a route hook names calls by their gRPC method. A tonic
//! client over the client layer gets a client span with the `rpc.*` attributes and sends its
//! context; the interceptor (`tonic` feature) sends the caller's span's context and the tenant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opentelemetry::Value;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use stellaops_telemetry_core::Telemetry;
use stellaops_telemetry_core::testing::TestExporters;
use stellaops_telemetry_tower::server::ServerTelemetryLayer;

struct Collector;

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if request.metadata().contains_key("x-fail") {
            return Err(tonic::Status::internal("storage unavailable"));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn grpc_statuses_of_a_tonic_server_are_recorded() {
    let exporters = TestExporters::new();
    let telemetry = Telemetry::builder("collector")
        .exporters(&[])
        .stdout_logs(false)
        .prometheus_scrape(true)
        .test_exporters(&exporters)
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = ServerTelemetryLayer::new(&telemetry).make_route(
        |_: &http::Method, uri: &http::Uri, _: &http::Extensions| Some(uri.path().to_owned()),
    );
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(TraceServiceServer::new(Collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap();
    let mut failing = tonic::Request::new(ExportTraceServiceRequest::default());
    failing
        .metadata_mut()
        .insert("x-fail", "1".parse().unwrap());
    let status = client.export(failing).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);

    let exposition = telemetry.prometheus().unwrap().render().unwrap();
    server.abort();
    telemetry.flush(std::time::Duration::from_secs(5)).unwrap();
    for expected in [
        r#"stellaops_request_total{service="collector",status="0"} 1"#,
        r#"stellaops_request_total{service="collector",status="13"} 1"#,
        r#"stellaops_request_duration_seconds_count{endpoint="/opentelemetry.proto.collector.trace.v1.TraceService/Export",service="collector"} 2"#,
    ] {
        assert!(
            exposition.lines().any(|l| l == expected),
            "missing `{expected}` in:\n{exposition}"
        );
    }
    let spans = exporters.finished_spans();
    let by_code = |code: i64| {
        spans
            .iter()
            .find(|s| {
                s.attributes.iter().any(|kv| {
                    kv.key.as_str() == "rpc.grpc.status_code" && kv.value == Value::I64(code)
                })
            })
            .unwrap_or_else(|| panic!("no span with grpc status {code}"))
    };
    assert!(matches!(
        by_code(13).status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert!(!matches!(
        by_code(0).status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        by_code(0).name,
        "POST /opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    for code in [0, 13] {
        let attribute = |key: &str| {
            by_code(code)
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attribute("rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attribute("rpc.service").as_deref(),
            Some("opentelemetry.proto.collector.trace.v1.TraceService")
        );
        assert_eq!(attribute("rpc.method").as_deref(), Some("Export"));
    }
    telemetry.shutdown();
}

/// tonic clients: the client layer over a channel, and the interceptor.
mod clients {
    use std::sync::{Arc, Mutex};

    use opentelemetry::Value;
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_sdk::trace::SpanData;
    use stellaops_telemetry_core::Telemetry;
    use stellaops_telemetry_core::testing::TestExporters;
    use stellaops_telemetry_tower::client::ClientTelemetryLayer;
    use stellaops_telemetry_tower::server::{ServerTelemetryLayer, Tenant};

    use super::{Collector, ExportTraceServiceResponse};

    const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";

    /// The collector, keeping the `traceparent` and tenant each call arrived with.
    #[derive(Clone, Default)]
    struct Recording {
        seen: Arc<Mutex<Vec<(String, String)>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Recording {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let get = |name: &str| {
                request
                    .metadata()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            };
            let seen = (get("traceparent"), get("x-stellaops-tenant"));
            self.seen.lock().unwrap().push(seen);
            Collector.export(request).await
        }
    }

    /// A pipeline, its exporters, and a recording tonic server behind the server layer.
    async fn serve() -> (
        Telemetry,
        TestExporters,
        Recording,
        std::net::SocketAddr,
        tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    ) {
        let exporters = TestExporters::new();
        let telemetry = Telemetry::builder("collector")
            .exporters(&[])
            .stdout_logs(false)
            .test_exporters(&exporters)
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recording = Recording::default();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(ServerTelemetryLayer::new(&telemetry))
                .add_service(TraceServiceServer::new(recording.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (telemetry, exporters, recording, addr, server)
    }

    fn attribute(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    fn traceparent_of(span: &SpanData) -> String {
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
    }

    fn failing_request(tenant: &str) -> tonic::Request<ExportTraceServiceRequest> {
        let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
        request
            .metadata_mut()
            .insert("x-fail", "1".parse().unwrap());
        request
            .extensions_mut()
            .insert(Tenant::parse(tenant.as_bytes()).unwrap());
        request
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_tonic_client_over_the_client_layer_records_rpc_attributes_and_sends_its_context() {
        let (telemetry, exporters, recording, addr, server) = serve().await;
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        let origin: http::Uri = format!("http://{addr}").parse().unwrap();
        let channel = tonic::transport::Endpoint::from(origin.clone())
            .connect()
            .await
            .unwrap();
        let traced = tower::ServiceBuilder::new()
            .layer(
                ClientTelemetryLayer::new()
                    .redactor(telemetry.redactor().clone())
                    .propagators(telemetry.propagators()),
            )
            .service(channel);
        let mut client = TraceServiceClient::with_origin(traced, origin);
        client
            .export(ExportTraceServiceRequest::default())
            .await
            .unwrap();
        let status = client.export(failing_request("acme")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        server.abort();
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

        let spans = exporters.finished_spans();
        let clients: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        let servers: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_kind == SpanKind::Server)
            .collect();
        assert_eq!((clients.len(), servers.len()), (2, 2), "{spans:#?}");
        let seen = recording.seen.lock().unwrap().clone();
        for (i, client) in clients.iter().enumerate() {
            assert_eq!(client.name, "POST");
            assert_eq!(attribute(client, "rpc.system"), Some("grpc".into()));
            assert_eq!(attribute(client, "rpc.service"), Some(SERVICE.into()));
            assert_eq!(attribute(client, "rpc.method"), Some("Export".into()));
            assert_eq!(
                attribute(client, "server.address"),
                Some("127.0.0.1".into())
            );
            assert_eq!(
                attribute(client, "server.port"),
                Some(Value::I64(i64::from(addr.port())))
            );
            // The server continued the client span: its parent, and what arrived.
            assert_eq!(seen[i].0, traceparent_of(client));
            let server = servers
                .iter()
                .find(|s| s.parent_span_id == client.span_context.span_id())
                .unwrap_or_else(|| panic!("no server span under client span {i}"));
            assert_eq!(
                server.span_context.trace_id(),
                client.span_context.trace_id()
            );
        }
        // OK: its status comes in the trailers, after the span ended (not recorded).
        let ok = clients[0];
        assert_eq!(attribute(ok, "rpc.grpc.status_code"), None);
        assert!(!matches!(ok.status, Status::Error { .. }));
        // INTERNAL: a trailers-only response, status in the head.
        let failed = clients[1];
        assert_eq!(
            attribute(failed, "rpc.grpc.status_code"),
            Some(Value::I64(13))
        );
        assert_eq!(attribute(failed, "error.type"), Some("13".into()));
        assert!(matches!(failed.status, Status::Error { .. }));
        assert_eq!(seen[0].1, "");
        assert_eq!(seen[1].1, "acme");
        telemetry.shutdown();
    }

    #[cfg(feature = "tonic")]
    #[tokio::test(flavor = "current_thread")]
    async fn the_interceptor_sends_the_callers_span_context_and_the_tenant_in_the_metadata() {
        use stellaops_telemetry_tower::client::GrpcTelemetryInterceptor;
        use tracing::Instrument as _;

        let (telemetry, exporters, recording, addr, server) = serve().await;
        let _dispatch = tracing::dispatcher::set_default(telemetry.dispatch());
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let interceptor = GrpcTelemetryInterceptor::new().propagators(telemetry.propagators());
        let mut client = TraceServiceClient::with_interceptor(channel, interceptor);
        let caller = tracing::info_span!("nightly.scan");
        let status = client
            .export(failing_request("acme"))
            .instrument(caller.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        drop(caller);
        server.abort();
        telemetry.flush(std::time::Duration::from_secs(5)).unwrap();

        let spans = exporters.finished_spans();
        let caller = spans.iter().find(|s| s.name == "nightly.scan").unwrap();
        let server = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap();
        let seen = recording.seen.lock().unwrap().clone();
        assert_eq!(seen, vec![(traceparent_of(caller), "acme".to_owned())]);
        assert_eq!(server.parent_span_id, caller.span_context.span_id());
        assert_eq!(attribute(server, "tenant.id"), Some("acme".into()));
        assert_eq!(
            attribute(server, "rpc.grpc.status_code"),
            Some(Value::I64(13))
        );
        assert_eq!(attribute(server, "rpc.method"), Some("Export".into()));
        telemetry.shutdown();
    }
}
