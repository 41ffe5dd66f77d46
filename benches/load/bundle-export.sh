#!/usr/bin/env bash
# Export throughput of the local store: a generated store of one hour at 1,000 requests a
# second (3.6 M spans, 3.6 M log records, gauge and histogram points every 10 s per tenant),
# for each file framing, exported into a signed bundle (select + pack + sign + sync), with
# the exporter's peak resident memory and the extrapolated 24 h figure. Three exports per
# store: the whole window as a plain tar (protobuf segments are copied whole), one tenant's
# records of it (every segment holds ten tenants, so each one is decoded and filtered), and
# the whole window as a .tar.zst.
#
#   bash benches/load/bundle-export.sh            # 1 h at 1,000 requests a second
#   SECONDS_OF_DATA=600 bash benches/load/bundle-export.sh   # a quicker look
#
# The store is read from the page cache (it was just written, and it is synced to disk
# before the exports start so that its write-back does not compete with them). Needs about
# 12 GB of free disk under ${TMPDIR:-/tmp} (the JSON store is the larger); it removes what
# it wrote.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${SECONDS_OF_DATA:-3600}
rps=${RPS:-1000}
work=$(mktemp -d "${TMPDIR:-/tmp}/stellaops-bundle-export.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build -q --release -p stellaops-telemetry-benches --bin bundle_store
bin=target/release/bundle_store
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${seconds} s of data at ${rps} requests/s"

# One export, repeated: the figures of the first run, then each run's wall time, and the
# median's 24 h extrapolation (this machine is shared: single runs vary by a third).
run() {
    local label=$1 store=$2 out=$3
    shift 3
    local walls=()
    for i in $(seq "${REPEAT:-3}"); do
        rm -f "$out"
        sync
        local start end
        start=$(date +%s.%N)
        if [ "$i" = 1 ]; then
            "$bin" export --dir "$store" --out "$out" "$@" | sed 's/^/  /'
        else
            "$bin" export --dir "$store" --out "$out" "$@" >/dev/null
        fi
        end=$(date +%s.%N)
        walls+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')")
    done
    rm -f "$out"
    printf '%s\n' "${walls[@]}" | sort -n | awk -v secs="$seconds" -v label="$label" '
        { w[NR] = $1; all = all (NR > 1 ? ", " : "") $1 " s" }
        END { m = w[int((NR + 1) / 2)];
              printf "%s: wall %s for %d s of data; median extrapolated to 24 h: %.0f s\n", label, all, secs, m * 86400 / secs }'
}

for format in pb json; do
    echo "## ${format} framing"
    store="$work/store-$format"
    "$bin" generate --dir "$store" --format "$format" --rps "$rps" --seconds "$seconds"
    du -sh "$store" | sed 's/^/store size: /'
    run "${format}, whole window, tar" "$store" "$work/bundle.tar"
    run "${format}, one tenant, tar" "$store" "$work/bundle.tar" --tenant tenant-3
    run "${format}, whole window, tar.zst" "$store" "$work/bundle.tar.zst" --zstd
    rm -rf "$store"
done
