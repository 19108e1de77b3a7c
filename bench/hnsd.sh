#!/usr/bin/env bash
# Benchmarks of hnsd (run as root; needs iproute2 and nftables):
#   one endpoint's life (create with a port mapping, attach to a network namespace, delete)
#   through the hnsd binary with its netlink/nftables dataplane, against the same kernel
#   work done with ip and nft commands (the veth peer created in the namespace, and created
#   then moved), and the same calls through an hnsd without a dataplane; all in one run,
#   taking turns in blocks of 10. Then hnsd's RSS idle and with 1,000 port-mapped endpoints.
#   See crates/hnsd/examples/hnsd-bench.rs for exactly what each side does.
#
#   N=200 ENDPOINTS=1000 PROFILE=release bash bench/hnsd.sh
#   HNSD_BIN=/path/to/other/hnsd bash bench/hnsd.sh   # measure another build (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
N=${N:-200}
ENDPOINTS=${ENDPOINTS:-1000}
profile=${PROFILE:-release}

cargo build --profile "$profile" -q -p hnsd --bin hnsd --example hnsd-bench
case "$profile" in dev) out=$CARGO_TARGET_DIR/debug ;; *) out=$CARGO_TARGET_DIR/$profile ;; esac
export HNSD_BIN=${HNSD_BIN:-$out/hnsd}
bench=$out/examples/hnsd-bench

declare -A ops p50 p99
while read -r name o a b; do
  case "$name" in
    phases) ph_create=$o ph_attach=$a ph_delete=$b ;;
    phases99) p99_create=$o p99_attach=$a p99_delete=$b ;;
    *) ops[$name]=$o p50[$name]=$a p99[$name]=$b ;;
  esac
done < <("$bench" lifecycle "$N")
read -r rss_idle rss_full per_create < <("$bench" rss "$ENDPOINTS")

row() { printf '  %-34s %7.1f /s  p50 %7.2f ms  p99 %7.2f ms\n' "$1" "${ops[$2]}" "${p50[$2]}" "${p99[$2]}"; }
ratio() { echo "${p50[$1]}/${p50[$2]}" | bc -l; }
printf 'hnsd %s, load %s\n' "$HNSD_BIN" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'endpoint create (port mapping) + attach + delete, %d cycles each:\n' "$N"
row "hnsd + dataplane" hnsd
row "ip + nft, peer created in netns" iproute2
row "ip + nft, peer moved into netns" iproute2-move
row "hnsd, no dataplane" hnsd-nodp
printf '  hnsd per call, p50 (p99): create %.2f (%.2f) ms, attach %.2f (%.2f) ms, delete %.2f (%.2f) ms\n' \
  "$ph_create" "$p99_create" "$ph_attach" "$p99_attach" "$ph_delete" "$p99_delete"
printf '  p50 ratio hnsd / (ip + nft, created in netns): %.2f\n' "$(ratio hnsd iproute2)"
printf '  p50 ratio hnsd / (ip + nft, moved into netns): %.2f\n' "$(ratio hnsd iproute2-move)"
printf 'hnsd RSS: idle %d KiB, with %d port-mapped endpoints %d KiB (%.2f MiB); ' \
  "$rss_idle" "$ENDPOINTS" "$rss_full" "$(echo "$rss_full/1024" | bc -l)"
printf 'a create at %d endpoints: %.2f ms\n' "$ENDPOINTS" "$per_create"
