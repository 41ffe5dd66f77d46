#!/usr/bin/env bash
# Drills under failure, at full scale, in a release build:
#
# 1. collector outage: 2,000 units a second for 60 s (each a span with one log event and a
#    counter increment) into an in-process OTLP receiver on loopback (gRPC, then HTTP/protobuf
#    with the default queues and with 4 MiB queues) that is off for the middle third; prints
#    the request-path latency (p50/p99/p99.9/max) per phase, the RSS growth, and delivered +
#    dropped per signal (checked equal to produced, exactly);
# 2. hung exporter: 10,000 spans and log records behind an endpoint that accepts TCP and never
#    answers; prints how long shutdown() took against its 5 s deadline and how long the
#    process took to get its thread count back;
# 3. shutdown completeness: 1,000 rounds of 10,000 spans ended before shutdown(), every one
#    delivered;
# 4. bad input at scale: every property test over outside input (configuration text and
#    files, environment values, run-time controls, exporter endpoints against the url crate,
#    tenant and request id headers, trace-context and baggage lines), a million cases in all.
#
#   bash benches/load/drills.sh            # full scale
#   DRILL_SCALE=reduced bash benches/load/drills.sh   # a few minutes: 20 s outage, 100 rounds,
#                                                     # 100,000 property cases
#
# Every drill is a `#[test]` of stellaops-telemetry-core's
# tests/drills_collector_outage_hung_exporter_and_shutdown_completeness.rs (the full-scale ones
# are `#[ignore]`d and read DRILL_* variables) or a property test; the CI-scale versions run
# in every `cargo test`. Everything listens on 127.0.0.1 only.
#
# Figures of the last run
# -----------------------
# 2026-12-05 11:08 UTC, a 2-core AMD EPYC VM shared with three other builds (so the latency
# tails are noisy), release build, `CARGO_TARGET_DIR=/work/main/target bash benches/load/drills.sh`
# (full scale), 4 min 45 s in all once built. 1b and 1c were added after that run and ran
# alone: `DRILL_PROTOCOL=http [DRILL_MAX_QUEUE_BYTES=4194304] DRILL_SECONDS=60 DRILL_RATE=2000
# cargo test --release -p stellaops-telemetry-core --test
# drills_collector_outage_hung_exporter_and_shutdown_completeness -- --ignored --exact
# --nocapture drill_collector_outage_at_full_scale`.
#
# 1. outage over gRPC, 2,000 units/s for 60 s, receiver off from 20 s to 40 s: 119,998 units.
#    Request-path latency of one unit (span create+end with one event, counter add):
#      before  p50 5.9 us  p99 42.6 us  p99.9  87 us  max 9.0 ms
#      down    p50 5.7 us  p99 42.3 us  p99.9  82 us  max 2.4 ms   (no added latency)
#      back    p50 7.1 us  p99 56.1 us  p99.9 118 us  max 1.0 ms
#    RSS 9,624 KiB before, 17,504 KiB peak: +7,880 KiB (goal < 16 MiB: met; includes the
#    ~2 MiB of latency samples the drill keeps), 17,628 KiB after shutdown.
#    spans:         79,993 delivered = exported, + 40,005 dropped = 119,998 produced (199 failed exports)
#    log records:   80,069 delivered = exported, + 39,929 dropped = 119,998 produced (198 failed exports)
#    metric points:  6,970 delivered = exported, +  3,439 dropped (80 failed collections)
#    Delivered at switch-off 39,855 spans, unchanged at switch-on, 79,993 at the end: export
#    resumed. Over gRPC a refused connection fails each batch quickly (the exporter's retries
#    do not save it), so the queues stay near empty through the outage.
# 1b. the same over OTLP/HTTP (11:16 UTC), 119,999 units: latency p99 36.8 / 40.3 / 41.0 us
#    before / down / back (no added latency); spans 87,736 delivered + 32,263 dropped, log
#    records 102,292 + 17,707, metric points 6,969 delivered = exported + 988 dropped (23
#    failed exports each): exact. The HTTP exporter retries each batch (3 retries, 100 ms to
#    1.6 s backoff, within the 2 s export timeout) on the export worker, so the worker falls
#    behind and both queues fill to their 16 MiB bounds: RSS +38,868 KiB (goal < 16 MiB: NOT
#    met with the default queue bounds; within two full queues + 12 MiB).
# 1c. OTLP/HTTP with DRILL_MAX_QUEUE_BYTES=4194304 (`max_queue_bytes(4 MiB)`, 11:17 UTC):
#    RSS +14,952 KiB (goal met); p99 39.3 / 33.6 / 43.9 us; spans 81,779 + 38,220, log
#    records 84,723 + 35,276 = 119,999 each; metric points 6,925 delivered = exported.
# 2. hung exporter: 10,000 spans + 10,000 log records abandoned and counted as dropped;
#    shutdown() took 5.25 s for a 5 s deadline (shutdown waits its deadline plus a fixed
#    250 ms margin), export timeout 10 s; the process was back at its thread count 68 ms after
#    shutdown() returned (the export runtime's shutdown cancels the hung exports).
# 3. shutdown completeness: 1,000 rounds x 10,000 spans, every span delivered, 47.2 s.
# 4. bad input: 1,000,008 cases (111,112 for each of 9 properties), 0 panics, 171 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

scale=${DRILL_SCALE:-full}
if [ "$scale" = full ]; then
    seconds=60 rounds=1000 cases=111112
else
    seconds=20 rounds=100 cases=11112
fi
# Nine properties take outside input (six in core, three in tower): cases x 9 >= the total.
core_drills=drills_collector_outage_hung_exporter_and_shutdown_completeness
core_props=hostile_config_env_controls_and_endpoints_never_panic_and_urls_agree_with_the_url_crate
tower_props=hostile_tenant_and_request_id_headers_at_scale_and_health_through_a_collector_outage

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), scale=$scale"
echo "# command: DRILL_SCALE=$scale bash benches/load/drills.sh"

cargo test -q --release -p stellaops-telemetry-core --test "$core_drills" --no-run
cargo test -q --release -p stellaops-telemetry-core --test "$core_props" --no-run
cargo test -q --release -p stellaops-telemetry-tower --all-features --test "$tower_props" --no-run

run_core_drill() {
    cargo test -q --release -p stellaops-telemetry-core --test "$core_drills" -- \
        --ignored --exact --nocapture --test-threads=1 "$1" 2>&1 | grep -v '^$\|^running\|^test result'
}

echo "## 1. collector outage, OTLP/gRPC"
DRILL_PROTOCOL=grpc DRILL_RATE=2000 DRILL_SECONDS=$seconds run_core_drill drill_collector_outage_at_full_scale
echo "## 1b. collector outage, OTLP/HTTP"
DRILL_PROTOCOL=http DRILL_RATE=2000 DRILL_SECONDS=$seconds run_core_drill drill_collector_outage_at_full_scale
echo "## 1c. collector outage, OTLP/HTTP, queues of 4 MiB each"
DRILL_MAX_QUEUE_BYTES=4194304 DRILL_PROTOCOL=http DRILL_RATE=2000 DRILL_SECONDS=$seconds \
    run_core_drill drill_collector_outage_at_full_scale
echo "## 2. hung exporter"
DRILL_HUNG_UNITS=10000 DRILL_HUNG_DEADLINE_MS=5000 DRILL_HUNG_EXPORT_TIMEOUT_MS=10000 \
    run_core_drill drill_hung_exporter_at_full_scale
echo "## 3. shutdown completeness"
DRILL_SHUTDOWN_ROUNDS=$rounds DRILL_SHUTDOWN_SPANS=10000 \
    run_core_drill drill_shutdown_completeness_at_full_scale
echo "## 4. bad input at scale: PROPTEST_CASES=$cases per property, 9 properties"
start=$(date +%s)
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-core --test "$core_props" 2>&1 | grep 'test result'
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-tower --all-features --test "$tower_props" -- \
    --skip health_ 2>&1 | grep 'test result'
echo "$((cases * 9)) cases, 0 panics (a panic fails the run), in $(( $(date +%s) - start )) s"
