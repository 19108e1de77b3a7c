#!/usr/bin/env bash
# bench/shim.sh: containerd-shim-runhcs-v1 next to containerd-shim-runc-v2 (both from the
# same private containerd, Debian's 1.6), as root.
#
#   1. `ctr run --rm` of a trivial container (`true`) with each runtime: median of N
#      (default 15) wall-clock runs each, interleaved (the machine may be noisy), and the
#      ratio runhcs/runc.
#   2. Host memory per container: with M (default 5) detached containers per runtime
#      running `sleep`, the RSS (and Pss) per container of the runtime's shim processes.
#      For runhcs RSS is reported twice: the shim alone, and the shim plus its sandbox's
#      agent (gcs), which is the part of the "utility VM" that lives on the host; runc's
#      shim has no such process (the container's own processes are not counted for either).
#
#   N=15 M=5 PROFILE=release [STATIC=0] bash bench/shim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
for t in containerd ctr containerd-shim-runc-v2 nsenter; do
  command -v "$t" >/dev/null || { echo "bench: $t not found (bash scripts/setup.sh)" >&2; exit 1; }
done

N=${N:-15}
M=${M:-5}
profile=${PROFILE:-release}
# Built as deployed: static glibc binaries (as the guest's gcs is), like runc's Go shim. A
# dynamic build counts libc's and ld.so's resident pages in each shim's RSS (≈ 1 MiB more;
# Pss, which shares them out, barely moves). STATIC=0 measures the dynamic build. The
# explicit --target keeps the flag off build scripts and proc macros.
target=x86_64-unknown-linux-gnu
if [ "${STATIC:-1}" = 1 ]; then
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
fi
cargo build --profile "$profile" --target "$target" -p shim -p gcs \
  --bin containerd-shim-runhcs-v1 --bin gcs >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case "$profile" in dev) bin=$target_dir/$target/debug ;; *) bin=$target_dir/$target/$profile ;; esac

work=$(mktemp -d /tmp/shim-bench.XXXXXX)
netns=shimbench-$$
ctrd_pid=
cleanup() {
  # runc-v2 keeps its state under /run/containerd/runc whatever containerd's state dir is.
  for id in $(ls /run/containerd/runc/default 2>/dev/null | grep -- "-$$\$" || true); do
    runc --root /run/containerd/runc/default delete -f "$id" >/dev/null 2>&1 || true
  done
  # Containers still there (the script stopped early) go through containerd, so each shim
  # cleans up after itself (sandbox dir, socket, cgroups).
  if [ -n "$ctrd_pid" ]; then
    for id in $(command ctr -a "$work/containerd.sock" c ls -q 2>/dev/null || true); do
      command ctr -a "$work/containerd.sock" t kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      command ctr -a "$work/containerd.sock" t rm -f "$id" >/dev/null 2>&1 || true
      command ctr -a "$work/containerd.sock" c rm "$id" >/dev/null 2>&1 || true
    done
  fi
  [ -n "${BENCH_LOG:-}" ] && cp "$work/containerd.log" "$BENCH_LOG"
  [ -n "$ctrd_pid" ] && { kill "$ctrd_pid" 2>/dev/null; wait "$ctrd_pid" 2>/dev/null || true; }
  for p in $(pgrep -f "containerd-shim-.*-address $work/containerd.sock" || true); do kill -9 "$p" 2>/dev/null || true; done
  sleep 0.5
  grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip netns delete "$netns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The image: busybox with a symlink per applet, as an OCI archive for `ctr images import`.
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
tar --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$oci/blobs/sha256/$d"; echo "$d"; }
size() { stat -c %s "$1"; }
layer=$(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" >"$work/config.json"
config=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(size "$work/config.json")" "$layer" "$(size "$work/layer.tar")" >"$work/manifest.json"
manifest=$(blob "$work/manifest.json")
image=docker.io/library/shimbench:latest
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest" "$(size "$work/manifest.json")" "$image" >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
tar -C "$oci" -cf "$work/image.tar" .

# A private containerd in a network namespace of our own, the shim on its PATH.
mkdir -p "$work/bin"
ln -s "$bin/containerd-shim-runhcs-v1" "$bin/gcs" "$work/bin/"
cat >"$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[debug]
  level = "${BENCH_LOG_LEVEL:-info}"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
CONF
ip netns add "$netns"
PATH=$work/bin:$PATH nsenter --net="/run/netns/$netns" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctrd_pid=$!
ctr() { command ctr -a "$work/containerd.sock" "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr images import "$work/image.tar" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
declare -A times
for i in $(seq "$N"); do
  for rt in runhcs.v1 runc.v2; do
    t0=$(now)
    ctr run --rm --runtime "io.containerd.$rt" "$image" "lat-$i-$$" true </dev/null
    t1=$(now)
    times[$rt]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') "
  done
done
lat_runhcs=$(echo "${times[runhcs.v1]}" | tr ' ' '\n' | grep . | median)
lat_runc=$(echo "${times[runc.v2]}" | tr ' ' '\n' | grep . | median)

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sum_rss() { local s=0; for p in "$@"; do s=$((s + $(rss_kb "$p"))); done; echo "$s"; }
# Pss: shared pages (the binary, libc) divided among the processes mapping them.
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum_pss() { local s=0; for p in "$@"; do s=$((s + $(pss_kb "$p"))); done; echo "$s"; }
for i in $(seq "$M"); do
  ctr run -d --runtime io.containerd.runhcs.v1 "$image" "mh-$i-$$" sleep 1000 </dev/null >/dev/null
  ctr run -d --runtime io.containerd.runc.v2 "$image" "mr-$i-$$" sleep 1000 </dev/null >/dev/null
done
sleep 1
runhcs_shims=$(pgrep -f "containerd-shim-runhcs-v1 .*-address $work/containerd.sock.*serve" || true)
runc_shims=$(pgrep -f "containerd-shim-runc-v2 .*-address $work/containerd.sock" || true)
[ -n "$runhcs_shims" ] && [ -n "$runc_shims" ] || { echo "bench: shim processes not found" >&2; exit 1; }
gcs_pids=$(for s in $runhcs_shims; do pgrep -P "$s" || true; done)
shim_kb=$(( $(sum_rss $runhcs_shims) / M ))
gcs_kb=$(( $(sum_rss $gcs_pids) / M ))
runc_kb=$(( $(sum_rss $runc_shims) / M ))
shim_pss=$(( $(sum_pss $runhcs_shims) / M ))
runc_pss=$(( $(sum_pss $runc_shims) / M ))
for i in $(seq "$M"); do
  ctr t kill -s SIGKILL "mh-$i-$$" >/dev/null; ctr t kill -s SIGKILL "mr-$i-$$" >/dev/null
done
sleep 2
for i in $(seq "$M"); do
  ctr t delete "mh-$i-$$" >/dev/null 2>&1 || true; ctr c rm "mh-$i-$$" >/dev/null 2>&1 || true
  ctr t delete "mr-$i-$$" >/dev/null 2>&1 || true; ctr c rm "mr-$i-$$" >/dev/null 2>&1 || true
done

printf 'ctr run --rm latency (median of %s): runhcs %.3f s, runc v2 %.3f s, ratio %.2f (target <= 1.3)\n' \
  "$N" "$lat_runhcs" "$lat_runc" "$(awk -v a="$lat_runhcs" -v b="$lat_runc" 'BEGIN {print a / b}')"
printf 'shim RSS per container (%s containers): runhcs shim %s KiB, runc v2 shim %s KiB, ratio %.2f (target <= 0.33)\n' \
  "$M" "$shim_kb" "$runc_kb" "$(awk -v a="$shim_kb" -v b="$runc_kb" 'BEGIN {print a / b}')"
printf 'shim Pss per container: runhcs shim %s KiB, runc v2 shim %s KiB, ratio %.2f\n' \
  "$shim_pss" "$runc_pss" "$(awk -v a="$shim_pss" -v b="$runc_pss" 'BEGIN {print a / b}')"
printf 'runhcs shim + its sandbox agent (gcs) per container: %s KiB, ratio to runc v2 shim %.2f\n' \
  "$((shim_kb + gcs_kb))" "$(awk -v a="$((shim_kb + gcs_kb))" -v b="$runc_kb" 'BEGIN {print a / b}')"
