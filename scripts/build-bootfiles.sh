#!/usr/bin/env bash
# build-bootfiles.sh [OUT]
#
# Builds the utility VM's boot files into OUT (default: out/uvm): the guest programs (init,
# vsockexec, gcs) as static, stripped release binaries, then uvm-bootfiles assembles
# delta.tar.gz, initrd.img, rootfs.tar.gz, rootfs.vhd, rootfs-verity.vhd (+ .info), the
# VHD boot modes' boot-initrd.img and the
# uncompressed kernel (vmlinux) with its modules from the newest installed Debian kernel
# (linux-image-amd64; KERNEL_RELEASE=<uname -r style name> picks another).
# BASE=<tar|tar.gz|cpio|cpio.gz> replaces the default base (busybox-static + runc).
# Reproducible: mtimes come from SOURCE_DATE_EPOCH (default 0).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-out/uvm}
target=x86_64-unknown-linux-gnu
# Static glibc binaries; the explicit --target keeps these flags (and their artifacts, in
# target/$target) apart from the host build, which must not get them (proc macros).
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" -p guest --bin init --bin vsockexec -p gcs --bin gcs
cargo build --locked -p guest --bin uvm-bootfiles

bin=target/$target/release
args=(--out "$out" --init "$bin/init" --vsockexec "$bin/vsockexec" --gcs "$bin/gcs")
[ -n "${BASE:-}" ] && args+=(--base "$BASE")
[ -n "${KERNEL_RELEASE:-}" ] && args+=(--kernel-release "$KERNEL_RELEASE")
target/debug/uvm-bootfiles "${args[@]}"
