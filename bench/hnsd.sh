#!/usr/bin/env bash
# Benchmarks of hnsd (run as root; needs iproute2 and nftables):
#   endpoint create + attach + delete through the hnsd binary with its netlink/nftables
#   dataplane (in a network namespace made for the run): operations per second and p50/p99
#   latency, against the same kernel work done with iproute2 commands and against the same
#   calls through an hnsd without a dataplane; and hnsd's RSS idle and with 1,000 endpoints.
#
#   N=200 ENDPOINTS=1000 PROFILE=release bash bench/hnsd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
N=${N:-200}
ENDPOINTS=${ENDPOINTS:-1000}
profile=${PROFILE:-release}

cargo build --profile "$profile" -q -p hnsd --bin hnsd --example hnsd-bench
case "$profile" in dev) out=$CARGO_TARGET_DIR/debug ;; *) out=$CARGO_TARGET_DIR/$profile ;; esac
export HNSD_BIN=$out/hnsd
bench=$out/examples/hnsd-bench

mapfile -t lines < <("$bench" lifecycle "$N")
read -r dp_ops dp_p50 dp_p99 <<<"${lines[0]}"
read -r ip_ops ip_p50 ip_p99 <<<"${lines[1]}"
read -r cp_ops cp_p50 cp_p99 <<<"${lines[2]}"
read -r rss_idle rss_full < <("$bench" rss "$ENDPOINTS")

printf 'endpoint create+attach+delete, %d cycles:\n' "$N"
printf '  hnsd + dataplane:        %8.1f /s  p50 %6.2f ms  p99 %6.2f ms\n' "$dp_ops" "$dp_p50" "$dp_p99"
printf '  iproute2, same work:     %8.1f /s  p50 %6.2f ms  p99 %6.2f ms\n' "$ip_ops" "$ip_p50" "$ip_p99"
printf '  hnsd, no dataplane:      %8.1f /s  p50 %6.2f ms  p99 %6.2f ms\n' "$cp_ops" "$cp_p50" "$cp_p99"
printf '  ratio hnsd+dataplane / iproute2 (throughput): %.2f\n' "$(echo "$dp_ops/$ip_ops" | bc -l)"
printf 'hnsd RSS: idle %d KiB, with %d endpoints %d KiB (%.2f MiB)\n' \
  "$rss_idle" "$ENDPOINTS" "$rss_full" "$(echo "$rss_full/1024" | bc -l)"
