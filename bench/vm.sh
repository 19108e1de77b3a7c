#!/usr/bin/env bash
# bench/vm.sh: the VM sandbox (QEMU utility VM) next to the local sandbox, in one run, as
# root. Figures (medians of N rounds, interleaved):
#   1. sandbox start -> GCS negotiated (the bridge is up);
#   2. sandbox start -> first output of a container (echo) through the bridge and stdio;
#   3. the same two for the VM booted from the dm-verity VHD root (verity-vhd) vs the initrd;
#   4. initrd size, and QEMU + vhost-device-vsock RSS per VM.
# The VM runs under KVM where it works, TCG otherwise (the line says which).
#
#   N=3 bash bench/vm.sh        (builds the boot files into out/uvm if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }

N=${N:-3}
boot=${HCSSHIM_UVM_BOOTFILES:-out/uvm}
[ -f "$boot/boot-initrd.img" ] || bash scripts/build-bootfiles.sh "$boot" >&2
cargo build -p gcs --bin gcs >&2
cargo build -p uvm --example vm-bench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

work=$(mktemp -d /tmp/vm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh scripts/busybox-rootfs.sh "$work/rootfs"

echo "initrd.img: $(stat -c %s "$boot/initrd.img") bytes ($(( $(stat -c %s "$boot/initrd.img") / 1024 )) KiB), vmlinux $(( $(stat -c %s "$boot/vmlinux") / 1048576 )) MiB"
[ -f "$boot/boot-initrd.img" ] && echo "boot-initrd.img (VHD modes): $(( $(stat -c %s "$boot/boot-initrd.img") / 1024 )) KiB, rootfs-verity.vhd $(( $(stat -c %s "$boot/rootfs-verity.vhd") / 1024 )) KiB"
"$target_dir/debug/examples/vm-bench" "$target_dir/debug/gcs" "$work/rootfs" "$boot" "$N"
