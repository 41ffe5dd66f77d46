#!/usr/bin/env bash
# Drills under failure, at full scale, in a release build:
#
# 1. collector outage: 2,000 units a second for 60 s (each a span with one log event and a
#    counter increment) into an in-process OTLP receiver on loopback (gRPC and HTTP/protobuf
#    with the default 12 MiB queue bound, and gRPC with it raised to 16 MiB) that is off for
#    the middle third;
#    prints the request-path latency (p50/p99/p99.9/max) per phase, the RSS growth through the
#    outage, and delivered +
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
# tests/behaviour/drills_collector_outage_hung_exporter_and_shutdown_completeness.rs (the full-scale ones
# are `#[ignore]`d and read DRILL_* variables) or a property test; the CI-scale versions run
# in every `cargo test`. Everything listens on 127.0.0.1 only.
#
# Figures of the last run
# -----------------------
# 2026-12-05 13:16-13:27 UTC, a 2-core AMD EPYC VM shared with two builds (so the latency
# tails are noisy), release build, `bash benches/load/drills.sh` (full scale), 11 min in all
# with the build. Queues: the span and log-record queues share one byte bound (default
# 12 MiB).
#
# 1. outage, 2,000 units/s for 60 s, receiver off from 20 s to 40 s (its port closed:
#    connections refused); about 120,000 units each. Request-path latency of one unit (span
#    create+end with one event, counter add), p99 before / down / back, and RSS growth through
#    the outage (peak minus RSS at switch-off; from the start in brackets, which includes the
#    pipeline's and the in-process receiver's warm-up):
#      gRPC, default 12 MiB   31.2 / 32.2 / 41.3 us   +12,888 KiB (+19,096)   goal < 16 MiB: met
#      HTTP, default 12 MiB   36.6 / 22.8 / 32.3 us   +12,716 KiB (+18,776)   goal: met
#      gRPC, raised to 16 MiB 39.3 / 35.6 / 35.3 us   +17,272 KiB (+23,912)   goal: not met (as
#                                                      expected: the bound is what grows)
#    (p50 4.5-6.1 us throughout: the outage adds no latency to the request path; the largest
#    single unit took 3.9 ms, on a loaded machine.)
#    Delivered = exported, + dropped = produced, exactly, for spans and log records in every
#    run (gRPC default: spans 84,483 + 35,516 = 119,999, log records 84,040 + 35,959; HTTP:
#    spans 84,139 + 35,860, log records 84,182 + 35,817; 22-23 failed exports each); metric
#    points delivered = exported. Delivered spans at switch-off about 39,850, unchanged at
#    switch-on, 84,100-85,900 at the end: export resumed.
#    Why RSS grows: the OTLP exporters retry a failed batch (3 retries, 100 ms to 1.6 s
#    backoff, within the 2 s export timeout) on the export worker, which falls behind while
#    the collector is down: the span and log-record queues fill to their shared byte bound,
#    then new records are dropped and counted. The growth is that bound plus export buffers.
# 2. hung exporter: 10,000 spans + 10,000 log records abandoned and counted as dropped;
#    shutdown() took 5.0003 s for a 5 s deadline (export timeout 10 s); the process was back
#    at its thread count 18 ms after shutdown() returned.
# 3. shutdown completeness: 1,000 rounds x 10,000 spans ended before shutdown(), every span
#    delivered, 28.0 s (10,000 plain spans are some 9.5 MB as queued: within the 12 MiB bound).
# 4. bad input: 1,000,008 cases (111,112 for each of 9 properties), 0 panics, 57 s.
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

# The drills and properties are modules of each crate's `behaviour` test binary.
cargo test -q --release -p stellaops-telemetry-core --test behaviour --no-run
cargo test -q --release -p stellaops-telemetry-tower --all-features --test behaviour --no-run

run_core_drill() {
    cargo test -q --release -p stellaops-telemetry-core --test behaviour -- \
        --ignored --exact --nocapture --test-threads=1 "$core_drills::$1" 2>&1 | grep -v '^$\|^running\|^test result'
}

echo "## 1. collector outage, OTLP/gRPC"
DRILL_PROTOCOL=grpc DRILL_RATE=2000 DRILL_SECONDS=$seconds run_core_drill drill_collector_outage_at_full_scale
echo "## 1b. collector outage, OTLP/HTTP"
DRILL_PROTOCOL=http DRILL_RATE=2000 DRILL_SECONDS=$seconds run_core_drill drill_collector_outage_at_full_scale
echo "## 1c. collector outage, OTLP/gRPC, the shared bound raised to 16 MiB"
DRILL_MAX_QUEUE_BYTES=16777216 DRILL_PROTOCOL=grpc DRILL_RATE=2000 DRILL_SECONDS=$seconds \
    run_core_drill drill_collector_outage_at_full_scale
echo "## 2. hung exporter"
DRILL_HUNG_UNITS=10000 DRILL_HUNG_DEADLINE_MS=5000 DRILL_HUNG_EXPORT_TIMEOUT_MS=10000 \
    run_core_drill drill_hung_exporter_at_full_scale
echo "## 3. shutdown completeness"
DRILL_SHUTDOWN_ROUNDS=$rounds DRILL_SHUTDOWN_SPANS=10000 \
    run_core_drill drill_shutdown_completeness_at_full_scale
echo "## 4. bad input at scale: PROPTEST_CASES=$cases per property, 9 properties"
start=$(date +%s)
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-core --test behaviour -- \
    "$core_props" 2>&1 | grep 'test result'
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-tower --all-features --test behaviour -- \
    "$tower_props" --skip health_ 2>&1 | grep 'test result'
echo "$((cases * 9)) cases, 0 panics (a panic fails the run), in $(( $(date +%s) - start )) s"
