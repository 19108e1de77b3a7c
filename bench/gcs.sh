#!/usr/bin/env bash
# Benchmarks of the guest agent (run as root; needs runc and busybox-static):
#   idle RSS of gcs after negotiation, stripped release binary size, the median lifecycle of
#   a container over the bridge (Create to DeleteContainerState) vs `runc run` of the same
#   bundle (create, start, wait, delete), and the stdio relay throughput. Targets: RSS < 5
#   MiB, binary < 5 MiB, lifecycle ratio <= 1.3, relay > 1 GiB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
N=${N:-20}
RELAY_MIB=${RELAY_MIB:-4096}

cargo build --release -q -p gcs --bin gcs --example gcs-bench
export GCS_BIN=$CARGO_TARGET_DIR/release/gcs
bench=$CARGO_TARGET_DIR/release/examples/gcs-bench

# The release profile strips; strip again in case a profile override kept symbols.
cp "$GCS_BIN" /tmp/gcs-bench-stripped.$$ && strip /tmp/gcs-bench-stripped.$$ 2>/dev/null || true
size=$(stat -c %s /tmp/gcs-bench-stripped.$$); rm -f /tmp/gcs-bench-stripped.$$
rss=$("$bench" rss)
read -r lat_gcs lat_runc ratio lat_exit < <("$bench" latency "$N")
relay=$("$bench" relay "$RELAY_MIB")

printf 'gcs idle RSS after negotiation: %d KiB (%.2f MiB; target < 5 MiB)\n' "$rss" "$(echo "$rss/1024" | bc -l)"
printf 'gcs stripped release binary:    %d bytes (%.2f MiB; target < 5 MiB)\n' "$size" "$(echo "$size/1048576" | bc -l)"
printf 'create-to-delete, median of %d: bridge %s ms, runc run %s ms, ratio %s (target <= 1.3)\n' "$N" "$lat_gcs" "$lat_runc" "$ratio"
printf '  (bridge, create to the exit only: %s ms)\n' "$lat_exit"
printf 'stdio relay throughput:         %s MiB/s over %d MiB (target > 1024 MiB/s)\n' "$relay" "$RELAY_MIB"
