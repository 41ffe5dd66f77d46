#!/usr/bin/env bash
# Clean debug builds of stellaops-telemetry-core with its smallest useful feature set and with
# its defaults, each in a fresh target directory, and the crates each pulls in. Prints one
# line per build: features, crates, seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
for features in "--no-default-features --features file" ""; do
    target=$(mktemp -d)
    crates=$(cargo tree -p stellaops-telemetry-core $features -e normal,build --prefix none 2>/dev/null \
        | sed 's/ (\*)//; s/ (proc-macro)//' | sort -u | grep -vc '^stellaops-telemetry')
    start=$(date +%s.%N)
    CARGO_TARGET_DIR="$target" cargo build -q -p stellaops-telemetry-core $features
    end=$(date +%s.%N)
    rm -rf "$target"
    printf '%-40s %4s crates %7.1f s\n' "${features:-default features}" "$crates" "$(awk "BEGIN {print $end - $start}")"
done
