#!/usr/bin/env bash
# bench/runhcs.sh: runhcs (local sandbox) against plain runc, as root.
#
#   1. `runhcs run` of a trivial container vs `runc run` of the same bundle: median of N
#      (default 20) wall-clock runs each, interleaved (the machine may be noisy), and their
#      ratio. Like for like: `runc run` returns after deleting the container, while `runhcs
#      run` returns once the exit code is known and the id free and its shim then tears the
#      sandbox down in the background; the runhcs time therefore runs until that teardown has
#      finished too (its parked `.<id>~<pid>~deleting` dir is gone). The time until `runhcs
#      run` returns is printed as well. BASELINE=/path/to/another/runhcs adds that build to
#      the same rounds, timed the same way (it uses this build's gcs).
#   2. Sandbox start to first container running: `runhcs create` (sandbox + gcs + bridge
#      negotiation + CombinedLayers + Create) then `runhcs start` until init runs; median.
#   3. Host memory per sandbox: RSS of the host-side shim (runhcs shim: bridge client and
#      stdio relays), and of the sandbox's agent (gcs, the shim's child) for reference, with
#      one container running.
#
#   N=20 PROFILE=release [BASELINE=/tmp/old/runhcs] bash bench/runhcs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }

N=${N:-20}
profile=${PROFILE:-release}
cargo build --profile "$profile" -p runhcs -p gcs --bin runhcs --bin gcs >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case "$profile" in dev) bin=$target_dir/debug ;; *) bin=$target_dir/$profile ;; esac
runhcs=$bin/runhcs
baseline=${BASELINE:-}
command -v runc >/dev/null || { echo "bench: runc not found (bash scripts/setup.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/runhcs-bench.XXXXXX)
root=$work/state
cleanup() {
  for d in "$root"/*; do [ -d "$d" ] && "$runhcs" --root "$root" delete -f "$(basename "$d")" >/dev/null 2>&1; done
  runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1 || true
  # After `run` returns, its shim finishes the sandbox's teardown by itself (a hidden
  # `.<id>~<pid>~deleting` dir until then): wait for that before removing the work dir.
  for _ in $(seq 200); do
    compgen -G "$root/.*~deleting" >/dev/null || break
    sleep 0.05
  done
  rm -rf "$work"
}
trap cleanup EXIT

bash scripts/busybox-rootfs.sh "$work/bundle/rootfs"
write_bundle() { # $1 = dir, $2.. = args as a JSON list body
  cat >"$1/config.json" <<JSON
{
  "ociVersion": "1.1.0",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": [$2],
              "env": ["PATH=/bin"], "cwd": "/"},
  "root": {"path": "rootfs"},
  "hostname": "bench",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
  "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
}
JSON
}
write_bundle "$work/bundle" '"/bin/true"'
mkdir -p "$work/sleep" && ln -s "$work/bundle/rootfs" "$work/sleep/rootfs"
write_bundle "$work/sleep" '"/bin/sleep", "1000"'

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f", n/1e6}'; }

# runc writes to the bundle's rootfs only through its own mounts; both runtimes get the
# same bundle and the same command.
# runhcs run returns once the exit code is known and the id free; its shim finishes the
# sandbox's teardown in the background. Waits (polling every ms) until that has ended.
settle() {
  for _ in $(seq 10000); do
    compgen -G "$root/.*~deleting" >/dev/null || return 0
    sleep 0.001
  done
  echo "bench: a sandbox teardown did not finish" >&2
  return 1
}

echo "runs: $N each, profile $profile${baseline:+, baseline $baseline}" >&2
runc_times=()
runhcs_times=()
return_times=()
base_times=()
for i in $(seq "$N"); do
  t=$(now); runc --root "$work/runc" run --bundle "$work/bundle" bench-runc </dev/null >/dev/null; runc_times+=($(( $(now) - t )))
  t=$(now); "$runhcs" --root "$root" run --bundle "$work/bundle" "bench-$i" </dev/null >/dev/null
  return_times+=($(( $(now) - t ))); settle; runhcs_times+=($(( $(now) - t )))
  if [ -n "$baseline" ]; then
    t=$(now); "$baseline" --root "$root" --gcs "$bin/gcs" run --bundle "$work/bundle" "base-$i" </dev/null >/dev/null
    settle; base_times+=($(( $(now) - t )))
  fi
done
runc_med=$(printf '%s\n' "${runc_times[@]}" | median)
runhcs_med=$(printf '%s\n' "${runhcs_times[@]}" | median)
return_med=$(printf '%s\n' "${return_times[@]}" | median)

start_times=()
for i in $(seq "$N"); do
  t=$(now)
  "$runhcs" --root "$root" create --bundle "$work/sleep" "up-$i" </dev/null >/dev/null 2>&1
  "$runhcs" --root "$root" start "up-$i"
  start_times+=($(( $(now) - t )))
  if [ "$i" -lt "$N" ]; then "$runhcs" --root "$root" delete -f "up-$i"; fi
done
start_med=$(printf '%s\n' "${start_times[@]}" | median)

# Memory with one container running (the last up-$N).
shim=$("$runhcs" --root "$root" state "up-$N" | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# The agent is forked by one of the shim's threads: look through all of them.
gcs_pid=$(cat /proc/"$shim"/task/*/children | tr -s ' ' '\n' | grep -m1 .)
shim_kib=$(rss "$shim"); gcs_kib=$(rss "$gcs_pid")

echo
echo "runc run (trivial container), median:        $(ms "$runc_med") ms"
echo "runhcs run incl. sandbox teardown, median:    $(ms "$runhcs_med") ms"
awk -v a="$runhcs_med" -v b="$runc_med" 'BEGIN {printf "ratio runhcs/runc (same lifecycle):           %.2f\n", a/b}'
echo "runhcs run until it returns, median:          $(ms "$return_med") ms"
if [ -n "$baseline" ]; then
  base_med=$(printf '%s\n' "${base_times[@]}" | median)
  echo "baseline runhcs run incl. teardown, median:   $(ms "$base_med") ms"
  awk -v a="$base_med" -v b="$runc_med" 'BEGIN {printf "ratio baseline/runc:                          %.2f\n", a/b}'
fi
echo "sandbox start to first container running:     $(ms "$start_med") ms (median)"
echo "host RSS per sandbox: shim $shim_kib KiB (agent gcs: $gcs_kib KiB)"
