//! In the steady state a house JSON log event allocates nothing on its thread: five fields,
//! redaction on, trace and span ids from the current OpenTelemetry context, tenant and
//! correlation id from the enclosing span, the line queued to a writer thread. Counted with a
//! per-thread counting allocator (this test binary's global allocator), so the writer
//! thread's own work is not counted; counts, never times.
//!
//! ```text
//! cargo test -p stellaops-telemetry-tower --test behaviour log_events_allocate -- --nocapture
//! ```

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use stellaops_telemetry_core::tracing_subscriber::layer::SubscriberExt as _;
use stellaops_telemetry_core::{JsonLogLayer, LogOutput, Redactor, SignalStats};

/// Events before counting starts, in one burst: both queue buffers grow to hold it.
const WARM_UP: u64 = 2_000;
/// Events counted.
const COUNTED: u64 = 1_000;
/// Events between two flushes while counting: far fewer than the warm-up burst, so the
/// queue's buffers never have to grow again.
const FLUSH_EVERY: u64 = 10;

/// Keeps no bytes; counts the lines that carry the trace id.
#[derive(Clone, Default)]
struct TraceLines(Arc<AtomicU64>);

impl Write for TraceLines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let needle = b"\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"";
        let lines = buf
            .split(|&b| b == b'\n')
            .filter(|line| line.windows(needle.len()).any(|w| w == needle))
            .count();
        self.0.fetch_add(lines as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn emit() {
    tracing::info!(
        scan_id = "s-123",
        image = "registry.example/app:1.2",
        findings = 17u64,
        severity = "high",
        cached = true,
        "scan finished"
    );
}

#[test]
fn allocations_of_a_json_log_event_are_zero() {
    let stats = Arc::new(SignalStats::default());
    let traced = TraceLines::default();
    let output = LogOutput::writer(traced.clone(), 1 << 16, stats.clone()).unwrap();
    let subscriber = stellaops_telemetry_core::tracing_subscriber::registry().with(
        JsonLogLayer::new("scanner")
            .service_version("1.4.2")
            .redactor(Redactor::default())
            .output(output.clone()),
    );
    let _default = tracing::subscriber::set_default(subscriber);
    let remote = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _cx = opentelemetry::Context::current()
        .with_remote_span_context(remote)
        .attach();
    let span = tracing::info_span!("scan", tenant.id = "acme", correlation_id = "req-7");
    let _entered = span.enter();

    for _ in 0..WARM_UP {
        emit();
    }
    assert!(output.flush(Duration::from_secs(10)));
    let mut counted = 0u64;
    for i in 0..COUNTED {
        if i % FLUSH_EVERY == 0 {
            assert!(output.flush(Duration::from_secs(10)));
        }
        counted += allocation_counter::measure(emit).count_total;
    }
    assert!(output.flush(Duration::from_secs(10)));

    let per_event = counted as f64 / COUNTED as f64;
    println!("allocations per JSON log event: {per_event:.2}");
    let snap = stats.snapshot();
    assert_eq!((snap.exported, snap.dropped), (WARM_UP + COUNTED, 0));
    assert_eq!(traced.0.load(Ordering::Relaxed), WARM_UP + COUNTED);
    assert!(
        per_event <= 0.0,
        "a JSON log event allocated {per_event:.2} times"
    );
}
