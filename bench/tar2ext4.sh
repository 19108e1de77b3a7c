#!/usr/bin/env bash
# Throughput of tar2ext4 against a plain copy of the same bytes.
#
# Generates a 1 GiB tar with a realistic mix of file sizes (many small files, some medium,
# a few large; incompressible data) in a temporary directory, converts it with and without
# dm-verity (the dm-verity run hashes in the same pass as the conversion), copies the same
# tar with dd as the I/O limit, and prints MiB/s and the ratio to the copy. Both the
# converter and the copy fsync their output. The page cache is warm for every run (the tar is
# read once before timing). Everything is removed afterwards.
#
# Usage: bench/tar2ext4.sh [SIZE_MIB] [RUNS]      (defaults: 1024, 3; the best run counts)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-1024}
RUNS=${2:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release -q -p ext4 --bin tar2ext4
BIN=$CARGO_TARGET_DIR/release/tar2ext4

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tar2ext4-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK/in.tar" "$SIZE_MIB" <<'EOF'
import io, os, random, sys, tarfile
path, size_mib = sys.argv[1], int(sys.argv[2])
target = size_mib << 20
rnd = random.Random(42)
# (weight, min, max) bytes: mostly small files, as in OS layers, with the bulk of the
# bytes in medium and large files.
classes = [(88, 0, 16 << 10), (10, 16 << 10, 256 << 10), (1.9, 256 << 10, 4 << 20), (0.1, 4 << 20, 64 << 20)]
weights = [c[0] for c in classes]
pool = os.urandom(128 << 20)
total = 0
n = 0
with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
    dirs = [f"usr/lib/pkg{i:03d}/sub{j}" for i in range(120) for j in range(4)]
    for d in ["usr", "usr/lib"] + [f"usr/lib/pkg{i:03d}" for i in range(120)] + dirs:
        ti = tarfile.TarInfo(d + "/"); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
        t.addfile(ti)
    while total < target:
        _, lo, hi = rnd.choices(classes, weights)[0]
        size = min(rnd.randint(lo, hi), target - total)
        off = rnd.randint(0, len(pool) - size)
        ti = tarfile.TarInfo(f"{rnd.choice(dirs)}/file{n:06d}")
        ti.size = size; ti.mode = 0o644; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(pool[off:off + size]))
        total += size
        n += 1
print(f"generated {n} files, {total >> 20} MiB of data", file=sys.stderr)
EOF

TAR_BYTES=$(stat -c %s "$WORK/in.tar")
cat "$WORK/in.tar" > /dev/null   # warm the page cache

# One timed run of "$@": prints "wall cpu" in seconds (cpu = user + system). Every run starts
# with no dirty pages, so that fsync pays only for its own output.
timed() {
  rm -f "$WORK/out"
  sync
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$@"
  awk '{printf "%s %.2f\n", $1, $2 + $3}' "$WORK/time"
}
# Keeps the "wall cpu" pair with the smaller wall time.
min() { if [ -z "$1" ] || [ "$(echo "${2% *} < ${1% *}" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
mibs() { echo "scale=1; $TAR_BYTES / 1048576 / $1" | bc -l; }

# The runs are interleaved (copy, convert, convert with dm-verity, ...) so that load from
# other processes on a shared machine hits all of them alike; the best run of each counts.
T_DD=""; T_CAT=""; T_PLAIN=""; T_VERITY=""; T_COMPAT=""
for _ in $(seq "$RUNS"); do
  T_DD=$(min "$T_DD" "$(timed dd if="$WORK/in.tar" of="$WORK/out" bs=1M conv=fsync status=none)")
  T_CAT=$(min "$T_CAT" "$(timed sh -c 'cat "$1" > "$2" && sync "$2"' sh "$WORK/in.tar" "$WORK/out")")
  T_PLAIN=$(min "$T_PLAIN" "$(timed "$BIN" -i "$WORK/in.tar" -o "$WORK/out")")
  T_VERITY=$(min "$T_VERITY" "$(timed "$BIN" -i "$WORK/in.tar" -o "$WORK/out" -overlay -vhd -dm-verity -max-disk-size 128G)")
  T_COMPAT=$(min "$T_COMPAT" "$(timed "$BIN" -i "$WORK/in.tar" -o "$WORK/out" -mode compat -overlay -vhd -dm-verity -max-disk-size 128G)")
done
T_COPY=$(min "$T_DD" "$T_CAT")   # the faster copy is the I/O limit
line() { printf '%-40s %8.2f s %9.1f MiB/s %8.2f s CPU\n' "$1" "${2% *}" "$(mibs "${2% *}")" "${2#* }"; }

printf 'input: %d MiB tar, best of %d interleaved runs, %s CPUs, load average %s\n' $((TAR_BYTES >> 20)) "$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
line "plain copy (dd bs=1M, fsync)" "$T_DD"
line "plain copy (cat, fsync)" "$T_CAT"
line "tar2ext4 (default mode)" "$T_PLAIN"
line "tar2ext4 + dm-verity + vhd (default)" "$T_VERITY"
line "tar2ext4 + dm-verity + vhd (compat)" "$T_COMPAT"
printf 'ratio to the faster plain copy: without dm-verity %.0f%%, with dm-verity %.0f%% (target >= 60%%)\n' \
  "$(echo "100 * ${T_COPY% *} / ${T_PLAIN% *}" | bc -l)" "$(echo "100 * ${T_COPY% *} / ${T_VERITY% *}" | bc -l)"
