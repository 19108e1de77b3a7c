#!/usr/bin/env bash
# Time of tar2ext4 against a plain copy of the same tar, for four inputs, as ratios.
#
# Inputs (generated in a temporary directory, incompressible data, removed afterwards):
#   single   one 300 MiB file (the large-file path)
#   rootfs   a rootfs-like layer: 2.5k dirs, ~9k files of log-normal sizes (median ~2 KiB,
#            a few MiB at most), symlinks; ~61 MiB of data
#   small    44k files of 0-2 KiB in 200 dirs
#   mixed    SIZE_MIB (default 1024) MiB: mostly small files, the bytes in medium and large
#            ones
#
# For each input, the best of RUNS interleaved runs (default 3) of:
#   cp              cp of the tar (the copy's output stays in the page cache)
#   tar2ext4        default mode, plain ext4 (as above: page cache to page cache)
#   +verity         the layer format: -overlay -vhd -dm-verity, hashed in the same pass
#   cp+sync         cp, then fsync of the copy
#   --sync          tar2ext4 --sync (durable before it appears under its name)
# and the ratios tar2ext4/cp, +verity/cp and --sync/(cp+sync) of the wall times (below 1:
# faster than the copy). The tar is in the page cache for every run (read once before), and
# every run starts with no dirty pages (sync, untimed), so a run pays only for its own output.
# Output goes to TMPDIR (default /tmp).
#
# Usage: bench/tar2ext4.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-1024}
RUNS=${2:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release -q -p ext4 --bin tar2ext4
BIN=$CARGO_TARGET_DIR/release/tar2ext4

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tar2ext4-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK" "$SIZE_MIB" <<'EOF'
import io, os, random, sys, tarfile
work, size_mib = sys.argv[1], int(sys.argv[2])
pool = os.urandom(128 << 20)
rnd = random.Random(42)

def add_file(t, name, size):
    ti = tarfile.TarInfo(name); ti.size = size; ti.mode = 0o644; ti.mtime = 1700000000
    if size <= len(pool):
        off = rnd.randint(0, len(pool) - size)
        data = io.BytesIO(pool[off:off + size])
    else:
        data = io.BytesIO((pool * (size // len(pool) + 1))[:size])
    t.addfile(ti, data)

def add_dirs(t, dirs):
    made = set()
    for d in dirs:
        parts = d.split("/")
        for k in range(1, len(parts) + 1):
            p = "/".join(parts[:k])
            if p not in made:
                made.add(p)
                ti = tarfile.TarInfo(p + "/"); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
                t.addfile(ti)

def tar(name):
    return tarfile.open(os.path.join(work, name + ".tar"), "w", format=tarfile.PAX_FORMAT)

with tar("single") as t:
    add_file(t, "big.bin", 300 << 20)

with tar("rootfs") as t:
    dirs = [f"usr/share/d{i // 50:03d}/s{i % 50:02d}" for i in range(2500)]
    add_dirs(t, dirs)
    total = n = 0
    while total < (61 << 20):
        size = min(int(rnd.lognormvariate(7.6, 1.6)), 8 << 20)
        add_file(t, f"{rnd.choice(dirs)}/f{n:05d}", size)
        total += size
        n += 1
        if n % 10 == 0:
            ti = tarfile.TarInfo(f"{rnd.choice(dirs)}/l{n:05d}"); ti.type = tarfile.SYMTYPE
            ti.linkname = f"../f{n - 1:05d}"; ti.mtime = 1700000000
            t.addfile(ti)

with tar("small") as t:
    for i in range(44000):
        add_file(t, f"d{i % 200:03d}/f{i:05d}", rnd.randint(0, 2048))

with tar("mixed") as t:
    classes = [(88, 0, 16 << 10), (10, 16 << 10, 256 << 10), (1.9, 256 << 10, 4 << 20), (0.1, 4 << 20, 64 << 20)]
    weights = [c[0] for c in classes]
    dirs = [f"usr/lib/pkg{i:03d}/sub{j}" for i in range(120) for j in range(4)]
    add_dirs(t, dirs)
    total = n = 0
    while total < (size_mib << 20):
        _, lo, hi = rnd.choices(classes, weights)[0]
        size = min(rnd.randint(lo, hi), (size_mib << 20) - total)
        add_file(t, f"{rnd.choice(dirs)}/file{n:06d}", size)
        total += size
        n += 1
EOF

# One timed run of "$@": prints the wall time in seconds. It starts with no dirty pages, so
# that neither the copy nor the converter pays for write-back of an earlier run.
timed() {
  rm -f "$WORK/out"
  sync
  /usr/bin/time -f "%e" -o "$WORK/time" "$@"
  cat "$WORK/time"
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
ratio() { echo "scale=3; $1 / $2" | bc -l | awk '{printf "%.2f", $1}'; }

printf '%s CPUs, load average %s, output in %s, best of %d interleaved runs\n' \
  "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "${TMPDIR:-/tmp}" "$RUNS"
printf '%-7s %6s | %7s %9s %5s | %8s %5s | %8s %7s %5s\n' \
  input MiB cp tar2ext4 ratio +verity ratio cp+sync --sync ratio
for input in single rootfs small mixed; do
  tarf=$WORK/$input.tar
  cat "$tarf" >/dev/null   # warm the page cache
  cp_t=""; plain_t=""; verity_t=""; cps_t=""; sync_t=""
  for _ in $(seq "$RUNS"); do
    cp_t=$(min "$cp_t" "$(timed cp "$tarf" "$WORK/out")")
    plain_t=$(min "$plain_t" "$(timed "$BIN" -i "$tarf" -o "$WORK/out")")
    verity_t=$(min "$verity_t" "$(timed "$BIN" -i "$tarf" -o "$WORK/out" -overlay -vhd -dm-verity -max-disk-size 128G)")
    cps_t=$(min "$cps_t" "$(timed sh -c 'cp "$1" "$2" && sync "$2"' sh "$tarf" "$WORK/out")")
    sync_t=$(min "$sync_t" "$(timed "$BIN" --sync -i "$tarf" -o "$WORK/out")")
  done
  printf '%-7s %6d | %6.2fs %8.2fs %5s | %7.2fs %5s | %7.2fs %6.2fs %5s\n' \
    "$input" $(($(stat -c %s "$tarf") >> 20)) "$cp_t" "$plain_t" "$(ratio "$plain_t" "$cp_t")" \
    "$verity_t" "$(ratio "$verity_t" "$cp_t")" "$cps_t" "$sync_t" "$(ratio "$sync_t" "$cps_t")"
done
