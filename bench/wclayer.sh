#!/usr/bin/env bash
# bench/wclayer.sh: Windows layer tars on Linux, against plain GNU tar, in the same run.
#
#   1. import: `wclayer import <folder> -i layer.tar` (a base layer: every file restored with
#      its Windows metadata) vs `tar -xf layer.tar -C <folder>` of the same tar;
#   2. export: `wclayer export <folder> -o out.tar` of the imported layer vs `tar -cf` of the
#      folder `tar -x` made.
#
# The tar is generated (MIB MiB of file data, default 200: Windows-style PAX records on every
# entry, many small files and some large ones, a few hard links and alternate streams). Runs
# are interleaved (the machine may be shared), N rounds (default 5), page cache warm, no
# fsync in either; the figures are medians and their ratio (wclayer / tar).
#
#   MIB=200 N=5 bash bench/wclayer.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MIB=${MIB:-200}
N=${N:-5}
cargo build --release -q -p wclayer --bin wclayer --example gen_layer_tar >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
wclayer=$target_dir/release/wclayer
gen=$target_dir/release/examples/gen_layer_tar
command -v tar >/dev/null || { echo "bench: GNU tar not found" >&2; exit 1; }

# On the disk, beside the build (user xattrs must be supported there).
work=$(mktemp -d "$target_dir/wclayer-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$gen" "$work/layer.tar" "$MIB"
cat "$work/layer.tar" >/dev/null
files=$(tar --warning=no-unknown-keyword -tf "$work/layer.tar" | wc -l)

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

imp_w=() imp_t=() exp_w=() exp_t=()
for i in $(seq "$N"); do
  rm -rf "$work/w" "$work/t" "$work/w.tar" "$work/t.tar"
  sync
  t0=$(now); mkdir "$work/t"; tar --warning=no-unknown-keyword -xf "$work/layer.tar" -C "$work/t"; t1=$(now)
  imp_t+=("$(elapsed "$t0" "$t1")")
  sync
  t0=$(now); "$wclayer" import "$work/w" -i "$work/layer.tar"; t1=$(now)
  imp_w+=("$(elapsed "$t0" "$t1")")
  sync
  t0=$(now); tar -cf "$work/t.tar" -C "$work/t" .; t1=$(now)
  exp_t+=("$(elapsed "$t0" "$t1")")
  t0=$(now); "$wclayer" export "$work/w" -o "$work/w.tar"; t1=$(now)
  exp_w+=("$(elapsed "$t0" "$t1")")
done

# The round trip is exact: the exported tar has the entries that went in.
cmp <(tar --warning=no-unknown-keyword -tf "$work/layer.tar" | sort) <(tar --warning=no-unknown-keyword -tf "$work/w.tar" | sort) >/dev/null ||
  { echo "bench: the exported tar lists different entries" >&2; exit 1; }

mi=$(printf '%s\n' "${imp_w[@]}" | median); mt=$(printf '%s\n' "${imp_t[@]}" | median)
ei=$(printf '%s\n' "${exp_w[@]}" | median); et=$(printf '%s\n' "${exp_t[@]}" | median)
printf 'layer tar: %d MiB of file data, %d entries (median of %d interleaved runs)\n' "$MIB" "$files" "$N"
printf 'import: wclayer %.3f s (%.0f MiB/s), tar -x %.3f s (%.0f MiB/s), ratio %.2f\n' \
  "$mi" "$(echo "$MIB/$mi" | bc -l)" "$mt" "$(echo "$MIB/$mt" | bc -l)" "$(echo "$mi/$mt" | bc -l)"
printf 'export: wclayer %.3f s, tar -c %.3f s, ratio %.2f\n' "$ei" "$et" "$(echo "$ei/$et" | bc -l)"
