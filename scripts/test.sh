#!/usr/bin/env bash
# Sets up the machine and runs every check CI runs: formatting, clippy for Linux and for
# Windows, all tests (as root, the integration tests run real containers), and a short smoke
# run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Crates meant to run on Windows; the GCS (Linux-only by nature) is left out by selection.
WINDOWS_CRATES=(hcs-schema hcs bridge ext4 uvm hcn hcsshim cni)
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

step "link the Windows test binaries (x86_64-pc-windows-gnu)"
cargo test --target x86_64-pc-windows-gnu "${win_pkgs[@]}" --locked --no-run

step "cargo test"
cargo test --workspace --locked

if [ -d fuzz ]; then
  step "fuzz smoke (${FUZZ_SECONDS}s per target)"
  if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
  fi
  (
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    for t in $(cargo fuzz list); do
      echo "fuzz target $t"
      # A committed seed corpus (fuzz/seeds/<target>) is read besides the working corpus.
      dirs=("corpus/$t")
      if [ -d "seeds/$t" ]; then dirs+=("seeds/$t"); fi
      mkdir -p "corpus/$t"
      cargo fuzz run "$t" "${dirs[@]}" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 3
    done
  )
fi

step "all checks passed"
