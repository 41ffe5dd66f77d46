#!/usr/bin/env bash
# Server CPU time per request, bare and with our server layer: a hello-world axum server
# (one runtime thread) pinned to core 0, wrk pinned to core 1, on loopback. Prints the
# CPU microseconds the server process spent per request for each, and their difference.
#
#   bash benches/load/cpu-per-request.sh [seconds]
#
# Installs Debian's wrk when it is missing. Needs two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}

if ! command -v wrk > /dev/null; then
    sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends wrk
fi
cargo build -q --release -p stellaops-telemetry-benches --bin hello_server
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/hello_server"
ticks=$(getconf CLK_TCK)

measure() {
    local layer=$1 port=$2
    taskset -c 0 "$bin" --layer "$layer" --addr "127.0.0.1:$port" > /dev/null &
    local pid=$!
    trap 'kill $pid 2> /dev/null || true' RETURN
    for _ in $(seq 50); do
        if curl -sf "http://127.0.0.1:$port/hello/warm" > /dev/null 2>&1 || (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
        sleep 0.1
    done
    # Warm up, then measure.
    taskset -c 1 wrk -t1 -c16 -d2s "http://127.0.0.1:$port/hello/warm" > /dev/null
    local before after out requests
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(taskset -c 1 wrk -t1 -c16 -d"${seconds}s" "http://127.0.0.1:$port/hello/world")
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    python3 -c "
cpu_us = ($after - $before) / $ticks * 1e6
print(f'$layer: {$requests} requests, server CPU {cpu_us / $requests:.2f} us/request')
print(f'{cpu_us / $requests:.4f}', file=open('/tmp/cpu-per-request-$layer', 'w'))
"
}

measure none 18081
measure stellaops 18082
python3 -c "
bare = float(open('/tmp/cpu-per-request-none').read())
ours = float(open('/tmp/cpu-per-request-stellaops').read())
print(f'our layer adds {ours - bare:.2f} us of server CPU per request ({ours / bare:.2f}x the bare server)')
"
