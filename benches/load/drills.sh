#!/usr/bin/env bash
# Drills under failure, at full scale, in a release build:
#
# 1. collector outage: 2,000 units a second for 60 s (each a span with one log event and a
#    counter increment) into an in-process OTLP receiver on loopback (gRPC and HTTP/protobuf
#    with the default 4 MiB queues, and gRPC with queues raised to 16 MiB) that is off for
#    the middle third;
#    prints the request-path latency (p50/p99/p99.9/max) per phase, the RSS growth, and delivered +
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
# (full scale), 4 min 45 s in all once built. The outage runs below were redone alone after
# the receiver was changed to refuse connections while off: `DRILL_PROTOCOL=grpc|http
# DRILL_MAX_QUEUE_BYTES=16777216|4194304 DRILL_SECONDS=60 DRILL_RATE=2000 cargo test --release
# -p stellaops-telemetry-core --test drills_collector_outage_hung_exporter_and_shutdown_completeness
# -- --ignored --exact --nocapture drill_collector_outage_at_full_scale`.
#
# 1. outage, 2,000 units/s for 60 s, receiver off from 20 s to 40 s (its port closed:
#    connections refused), run alone at 11:20-11:25 UTC with the command above; about
#    120,000 units each. Request-path latency of one unit (span create+end with one event,
#    counter add), p99 before / down / back:
#      gRPC, 16 MiB queues   35.6 / 40.6 / 38.7 us   RSS +39,648 KiB  (goal < 16 MiB: NOT met)
#      HTTP, 16 MiB queues   35.3 / 38.5 / 47.7 us   RSS +40,708 KiB  (goal: NOT met)
#      HTTP,  4 MiB queues   61.1 / 30.7 / 37.6 us   RSS +15,284 KiB  (goal: met)
#      gRPC,  4 MiB queues   37.0 / 33.7 / 34.3 us   RSS +15,552 KiB  (goal: met)
#    (p50 5.4-6.9 us throughout: the outage adds no latency to the request path.)
#    Delivered = exported, + dropped = produced, exactly, for spans and log records in every
#    run; metric points delivered = exported. gRPC, 16 MiB: spans 88,325 + 31,673 = 119,998,
#    log records 101,986 + 18,012, metric points 6,925 delivered + 988 dropped (22-23 failed
#    exports each); HTTP, 16 MiB: spans 88,133 + 31,865, log records 102,201 + 17,797; HTTP,
#    4 MiB: spans 81,504 + 38,494, log records 84,715 + 35,283; gRPC, 4 MiB: spans 81,771 +
#    38,227, log records 85,401 + 34,597. Delivered spans at switch-off about 39,860,
#    unchanged at switch-on, 81,500-88,300 at the end: export resumed.
#    Why RSS grows: the OTLP exporters retry a failed batch (3 retries, 100 ms to 1.6 s
#    backoff, within the 2 s export timeout) on the export worker, which falls behind while
#    the collector is down: the span and log-record queues fill to their byte bounds
#    (`max_queue_bytes`, 16 MiB each by default), then new records are dropped and counted.
#    Growth stays within the bound of two full queues + 12 MiB; the 16 MiB goal needs queues
#    of 4 MiB. (A collector that accepts connections and closes them at once is not retried
#    over gRPC: an earlier run with such a receiver dropped 40,005 spans, RSS +7,880 KiB.)
# 2. hung exporter: 10,000 spans + 10,000 log records abandoned and counted as dropped;
#    shutdown() took 5.0003 s for a 5 s deadline (re-run alone at 11:43 UTC with
#    `DRILL_HUNG_UNITS=10000 DRILL_HUNG_DEADLINE_MS=5000 DRILL_HUNG_EXPORT_TIMEOUT_MS=10000
#    cargo test --release -p stellaops-telemetry-core --test
#    drills_collector_outage_hung_exporter_and_shutdown_completeness -- --ignored --exact
#    --nocapture drill_hung_exporter_at_full_scale`, after shutdown stopped adding a 250 ms
#    margin to its deadline: the first run took 5.25 s), export timeout 10 s; the process was
#    back at its thread count 41 ms after shutdown() returned (the export runtime's shutdown
#    cancels the hung exports).
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
echo "## 1c. collector outage, OTLP/gRPC, queues raised to 16 MiB each"
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
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-core --test "$core_props" 2>&1 | grep 'test result'
PROPTEST_CASES=$cases cargo test -q --release -p stellaops-telemetry-tower --all-features --test "$tower_props" -- \
    --skip health_ 2>&1 | grep 'test result'
echo "$((cases * 9)) cases, 0 panics (a panic fails the run), in $(( $(date +%s) - start )) s"
