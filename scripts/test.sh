#!/usr/bin/env bash
# Sets up the machine and runs every check CI runs: formatting, clippy for Linux and for
# Windows, all tests (as root, the integration tests run real containers), and a short smoke
# run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
df -h . || true  # a full disk is a common cause of odd failures on a fresh machine

# Crates meant to run on Windows; the GCS (Linux-only by nature) is left out by selection.
WINDOWS_CRATES=(hcs-schema hcs bridge ext4 uvm runhcs hcn hcsshim wclayer shim cni)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy (x86_64-pc-windows-msvc)"
win_pkgs=()
for c in "${WINDOWS_CRATES[@]}"; do win_pkgs+=(-p "$c"); done
cargo clippy --target x86_64-pc-windows-msvc "${win_pkgs[@]}" --all-targets --locked -- -D warnings

step "cargo clippy (aarch64-pc-windows-msvc)"
cargo clippy --target aarch64-pc-windows-msvc "${win_pkgs[@]}" --all-targets --locked -- -D warnings

step "link the Windows test binaries (x86_64-pc-windows-gnu) and check their DLL imports"
mkdir -p target
cargo test --target x86_64-pc-windows-gnu "${win_pkgs[@]}" --locked --no-run \
  --message-format=json-render-diagnostics >target/windows-gnu-tests.json
win_exes=()
win_tests=()
while IFS= read -r line; do
  exe=$(grep -o '"executable":"[^"]*"' <<<"$line" | sed 's/^"executable":"//; s/"$//') || continue
  win_exes+=("$exe")
  if grep -o '"profile":{[^}]*}' <<<"$line" | grep -q '"test":true'; then
    win_tests+=("$exe")
  fi
done <target/windows-gnu-tests.json
bash scripts/check-imports.sh "${win_exes[@]}"

step "run the Windows test binaries under Wine (no HCS there: the code paths that need none)"
bash scripts/wine-tests.sh "${win_tests[@]}"

step "UVM boot files (scripts/build-bootfiles.sh out/uvm; the VM tests boot them)"
bash scripts/build-bootfiles.sh out/uvm

step "cargo test (nothing outside the clone: ../shared hidden if present)"
# Tests must read only what the repository holds. A developer checkout may have the project's
# shared references beside it; run the tests in a private mount namespace with an empty,
# read-only tmpfs over ../shared so that a test reading it fails here as on a clean clone.
shared_dir="$(cd .. && pwd)/shared"
if [ -d "$shared_dir" ]; then
  unshare --mount --propagation private -- sh -c \
    'mount -t tmpfs -o ro,size=4k hidden-shared "$1" && shift && exec "$@"' \
    sh "$shared_dir" cargo test --workspace --locked
else
  cargo test --workspace --locked
fi

if [ -d fuzz ]; then
  step "fuzz smoke (${FUZZ_SECONDS}s per target)"
  if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
  fi
  (
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    # One build of every target first, so that a build error is printed in full.
    cargo fuzz build
    failed=()
    for t in $(cargo fuzz list); do
      echo "fuzz target $t"
      # New inputs go to corpus/<t> (ignored by git); seeds/<t>, when committed, is read too.
      corpora=("corpus/$t")
      mkdir -p "corpus/$t"
      if [ -d "seeds/$t" ]; then corpora+=("seeds/$t"); fi
      log="target/fuzz-$t.log"
      if cargo fuzz run "$t" "${corpora[@]}" -- -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 1 "$log"
      else
        # The report without libFuzzer's progress lines and dictionary: the panic or
        # sanitizer message, the stack and the crashing input's path.
        echo "fuzz target $t FAILED:"
        grep -v -E '^(#[0-9]+|"|[[:space:]]+NEW_FUNC)' "$log" | tail -n 80
        failed+=("$t")
      fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
      df -h . || true
      echo "fuzz targets that failed: ${failed[*]}"
      exit 1
    fi
  )
fi

step "all checks passed"
