//! A real tonic server behind the server layer: each call's `grpc-status` becomes the
//! `status` label and `rpc.grpc.status_code`, INTERNAL is a span error and OK is not, and a
//! route hook names calls by their gRPC method.

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
    telemetry.shutdown();
}
