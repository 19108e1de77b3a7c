#!/usr/bin/env bash
# bench/runhcs.sh: runhcs (local sandbox) against plain runc, as root.
#
#   1. `runhcs run` of a trivial container vs `runc run` of the same bundle: median of N
#      (default 20) wall-clock runs each, interleaved (the machine may be noisy), and their
#      ratio. BASELINE=/path/to/another/runhcs adds that build to the same rounds (it uses
#      this build's gcs), to compare two versions in one run.
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
# sandbox's teardown in the background. Let that end (untimed) so that its work does not
# land in the next command's time.
settle() {
  for _ in $(seq 500); do
    compgen -G "$root/.*~deleting" >/dev/null || return 0
    sleep 0.01
  done
}

echo "runs: $N each, profile $profile${baseline:+, baseline $baseline}" >&2
runc_times=()
runhcs_times=()
base_times=()
for i in $(seq "$N"); do
  t=$(now); runc --root "$work/runc" run --bundle "$work/bundle" bench-runc </dev/null >/dev/null; runc_times+=($(( $(now) - t )))
  t=$(now); "$runhcs" --root "$root" run --bundle "$work/bundle" "bench-$i" </dev/null >/dev/null; runhcs_times+=($(( $(now) - t )))
  settle
  if [ -n "$baseline" ]; then
    t=$(now); "$baseline" --root "$root" --gcs "$bin/gcs" run --bundle "$work/bundle" "base-$i" </dev/null >/dev/null; base_times+=($(( $(now) - t )))
  fi
done
runc_med=$(printf '%s\n' "${runc_times[@]}" | median)
runhcs_med=$(printf '%s\n' "${runhcs_times[@]}" | median)

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
echo "runhcs run (same bundle), median:             $(ms "$runhcs_med") ms"
awk -v a="$runhcs_med" -v b="$runc_med" 'BEGIN {printf "ratio runhcs/runc:                            %.2f\n", a/b}'
if [ -n "$baseline" ]; then
  base_med=$(printf '%s\n' "${base_times[@]}" | median)
  echo "baseline runhcs run (same bundle), median:    $(ms "$base_med") ms"
  awk -v a="$base_med" -v b="$runc_med" 'BEGIN {printf "ratio baseline/runc:                          %.2f\n", a/b}'
fi
echo "sandbox start to first container running:     $(ms "$start_med") ms (median)"
echo "host RSS per sandbox: shim $shim_kib KiB (agent gcs: $gcs_kib KiB)"
