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
  binutils-mingw-w64-x86-64 # objdump reads their import tables (check-imports.sh)
  iproute2
  qemu-system-x86    # the VM sandbox's hypervisor
  linux-image-amd64  # the utility VM's kernel and modules (boot files; never booted on the host)
  nftables        # nft, which the nftables crate drives for hnsd's dataplane
  containerd      # the shim's tests run Debian's containerd (private config; service not enabled)
  containernetworking-plugins # CNI bridge/loopback for the CRI pod tests; bridge + host-local for bench/cni.sh
  protobuf-compiler # protoc, for the CRI protos of the shim's test client (k8s-cri)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Installed without their recommendations (a desktop's worth for wine64).
LEAN_PACKAGES=(
  wine64 # runs the Windows test binaries (scripts/wine-tests.sh)
)
lean_missing=()
for p in "${LEAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || lean_missing+=("$p")
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
if ((${#lean_missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${lean_missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${lean_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${lean_missing[@]}" >/dev/null
fi

# The shim's tests start their own containerd; the package's system service must not run.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi

# rust-toolchain.toml names the components and targets; rustup installs them on first use,
# but do it explicitly so a failure is reported here.
if command -v rustup >/dev/null; then
  rustup show active-toolchain >/dev/null
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  rustup target add x86_64-pc-windows-msvc x86_64-pc-windows-gnu aarch64-pc-windows-msvc >/dev/null
else
  echo "setup: rustup not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# The host side of the VM sandbox's vsock (rust-vmm, crates.io); about 2 minutes to build.
if ! command -v vhost-device-vsock >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/vhost-device-vsock" ]; then
  echo "setup: installing vhost-device-vsock"
  cargo install vhost-device-vsock --locked --quiet
fi
