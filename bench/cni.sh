#!/usr/bin/env bash
# bench/cni.sh: ADD + DEL latency of the `nat` plugin against Debian's containernetworking-
# plugins `bridge` + `host-local`, on the same machine in the same run (as root).
#
# The same lifecycle is timed for each: one plugin process for ADD of a pod (a veth on a
# bridge, the pod's address, default route and outbound NAT) and one for DEL, into the
# same pre-created pod network namespace. Both plugins are started the same way (nsenter
# into a private "host" network namespace, so no link, address or rule touches the real
# host). `nat` goes through hnsd (release build, with its netlink + nftables dataplane,
# started here on a private socket and state) and allocates from HNS; `bridge` runs with
# `host-local` IPAM, in two variants: `ipMasq: true` (outbound NAT per pod through
# iptables, the equivalent of a NAT network) and without masquerade. Rounds are interleaved
# (the machine may be noisy); medians of N (default 50) rounds after 3 untimed ones.
#
#   N=50 bash bench/cni.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
N=${N:-50}
WARMUP=3

cargo build --release -q -p cni --bin nat -p hnsd --bin hnsd >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
nat=$target_dir/release/nat
hnsd=$target_dir/release/hnsd
for b in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/bin/nsenter; do
  [ -x "$b" ] || { echo "bench: $b missing (bash scripts/setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/cni-bench.XXXXXX)
tag=cnib$$
host=/run/netns/$tag-host
pod=/run/netns/$tag-pod
hnsd_pid=
cleanup() {
  if [ -n "$hnsd_pid" ]; then kill "$hnsd_pid" 2>/dev/null && wait "$hnsd_pid" 2>/dev/null || true; fi
  ip netns del "$tag-pod" 2>/dev/null || true
  ip netns del "$tag-host" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$tag-host"
ip netns add "$tag-pod"
ip -n "$tag-host" link set lo up

HNSD_LOG=warn "$hnsd" --socket "$work/hnsd.sock" --state-dir "$work/state" \
  --netns-dir "$work/netns" --netns "$host" 2>"$work/hnsd.log" &
hnsd_pid=$!
for _ in $(seq 200); do [ -S "$work/hnsd.sock" ] && break; sleep 0.05; done
[ -S "$work/hnsd.sock" ] || { echo "bench: hnsd did not start:" >&2; cat "$work/hnsd.log" >&2; exit 1; }

cat >"$work/nat.json" <<JSON
{"cniVersion":"1.0.0","name":"benchnat","type":"nat",
 "ipam":{"subnet":"10.98.0.0/16","routes":[{"dst":"0.0.0.0/0","gw":"10.98.0.1"}]}}
JSON
bridge_conf() { # $1 = name, $2 = ipMasq
  cat <<JSON
{"cniVersion":"1.0.0","name":"$1","type":"bridge","bridge":"${1:0:8}$$","isGateway":true,
 "ipMasq":$2,"ipam":{"type":"host-local","subnet":"10.$3.0.0/16","dataDir":"$work/host-local",
 "routes":[{"dst":"0.0.0.0/0"}]}}
JSON
}
bridge_conf bmasq true 97 >"$work/bridge-masq.json"
bridge_conf bplain false 96 >"$work/bridge-plain.json"

# run PLUGIN CONF COMMAND: one plugin process as a runtime starts it.
run() {
  CNI_COMMAND=$3 CNI_CONTAINERID=bench CNI_NETNS=$pod CNI_IFNAME=eth0 \
    CNI_PATH=/usr/lib/cni HNSD_SOCKET=$work/hnsd.sock WINCNI_LOG=$work/wincni.log \
    nsenter --net="$host" "$1" <"$2" >"$work/out" 2>"$work/err" || {
      echo "bench: $1 $3 failed:" >&2; cat "$work/out" "$work/err" >&2; exit 1; }
}

# cycle NAME PLUGIN CONF: ADD + DEL, appends the microseconds to $work/NAME.
cycle() {
  local t0 t1
  t0=$EPOCHREALTIME
  run "$2" "$3" ADD
  run "$2" "$3" DEL
  t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) )) >>"$work/$1"
}

for i in $(seq $((WARMUP + N))); do
  for v in nat bridge-masq bridge-plain; do
    case $v in nat) p=$nat ;; *) p=/usr/lib/cni/bridge ;; esac
    cycle "$v" "$p" "$work/$v.json"
  done
  if [ "$i" -eq "$WARMUP" ]; then rm -f "$work/nat" "$work/bridge-masq" "$work/bridge-plain"; fi
done

median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_nat=$(median nat); m_masq=$(median bridge-masq); m_plain=$(median bridge-plain)
ms() { awk -v u="$1" 'BEGIN {printf "%.2f", u/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
printf 'CNI ADD+DEL, median of %d interleaved rounds:\n' "$N"
printf '  nat (hnsd, release):              %s ms\n' "$(ms "$m_nat")"
printf '  bridge + host-local, ipMasq:      %s ms   ratio nat/bridge %s (target <= 1.5)\n' \
  "$(ms "$m_masq")" "$(ratio "$m_nat" "$m_masq")"
printf '  bridge + host-local, no masq:     %s ms   ratio nat/bridge %s\n' \
  "$(ms "$m_plain")" "$(ratio "$m_nat" "$m_plain")"
