#!/usr/bin/env bash
# Export throughput of the local store: a generated store of one hour at 1,000 requests a
# second (3.6 M spans, 3.6 M log records, gauge and histogram points every 10 s per tenant),
# for each file framing, exported whole into a signed bundle (select + pack + sign), with the
# exporter's peak resident memory and the extrapolated 24 h figure.
#
#   bash benches/load/bundle-export.sh            # 1 h at 1,000 requests a second
#   SECONDS_OF_DATA=600 bash benches/load/bundle-export.sh   # a quicker look
#
# Needs about 12 GB of free disk under ${TMPDIR:-/tmp} (the JSON store is the larger); it
# removes what it wrote.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${SECONDS_OF_DATA:-3600}
rps=${RPS:-1000}
work=$(mktemp -d "${TMPDIR:-/tmp}/stellaops-bundle-export.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build -q --release -p stellaops-telemetry-benches --bin bundle_store
bin=target/release/bundle_store
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${seconds} s of data at ${rps} requests/s"
for format in pb json; do
    echo "## ${format} framing"
    "$bin" generate --dir "$work/store-$format" --format "$format" --rps "$rps" --seconds "$seconds"
    du -sh "$work/store-$format" | sed 's/^/store size: /'
    start=$(date +%s.%N)
    "$bin" export --dir "$work/store-$format" --out "$work/bundle-$format.tar"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v secs="$seconds" \
        'BEGIN { t = e - s; printf "wall %.1f s for %d s of data; extrapolated to 24 h: %.0f s\n", t, secs, t * 86400 / secs }'
    rm -rf "$work/store-$format" "$work/bundle-$format.tar"
done
