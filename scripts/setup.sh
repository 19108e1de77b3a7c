#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine (run as root).
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc            # the OCI runtime the GCS drives
  busybox-static  # the default container root filesystem
  e2fsprogs       # e2fsck / debugfs check tar2ext4 output
  cryptsetup-bin  # veritysetup checks dm-verity trees
  qemu-utils      # qemu-img checks VHD footers
  gcc-mingw-w64-x86-64 # links the Windows test binaries
  iproute2
  nftables        # nft, which the nftables crate drives for hnsd's dataplane
  containerd      # the CNI plugins' real peer (CRI), with containerd-shim-runc-v2 and ctr
  containernetworking-plugins # loopback for containerd's CRI; bridge + host-local for bench/cni.sh
  protobuf-compiler # protoc: k8s-cri builds the CRI protos of the CNI peer test
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# rust-toolchain.toml names the components and targets; rustup installs them on first use,
# but do it explicitly so a failure is reported here.
if command -v rustup >/dev/null; then
  rustup show active-toolchain >/dev/null
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  rustup target add x86_64-pc-windows-msvc x86_64-pc-windows-gnu >/dev/null
else
  echo "setup: rustup not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
