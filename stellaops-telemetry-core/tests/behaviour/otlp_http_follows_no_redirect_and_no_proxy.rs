//! The HTTP exporter dials only the endpoint the egress policy checked: a collector that
//! answers with a redirect does not send the data elsewhere. (Proxy variables are covered by
//! `.ci/sealed-strace`, which sets them for a whole process.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use stellaops_telemetry_core::{ExporterKind, OtlpProtocol, Telemetry};

#[test]
fn a_redirecting_collector_cannot_send_the_data_elsewhere() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let elsewhere_url = format!("http://{}/stolen", elsewhere.local_addr().unwrap());
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let collector_url = format!("http://{}", collector.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        collector.set_nonblocking(false).unwrap();
        let mut answered = 0;
        // Answer every export with a redirect until the pipeline is done.
        collector.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline && answered < 3 {
            match collector.accept() {
                Ok((mut stream, _)) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut buf = [0u8; 65536];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(
                        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                    );
                    answered += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        answered
    });
    let telemetry = Telemetry::builder("redirect")
        .exporters(&[ExporterKind::Otlp])
        .otlp_endpoint(&collector_url)
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .otlp_timeout(Duration::from_secs(2))
        .stdout_logs(false)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(telemetry.dispatch(), || {
        tracing::info_span!("work").in_scope(|| tracing::info!("done"));
    });
    telemetry
        .meter("m")
        .u64_counter("c_total")
        .build()
        .add(1, &[]);
    telemetry.shutdown();
    let answered = server.join().unwrap();
    assert!(answered >= 1, "the collector was not reached");
    assert!(elsewhere.accept().is_err(), "the redirect was followed");
    // A redirect is not a delivery: the records are counted as lost.
    assert_eq!(telemetry.stats().spans.exported, 0);
}
