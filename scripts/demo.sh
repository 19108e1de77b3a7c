#!/usr/bin/env bash
# demo.sh: runs a container through the whole stack on a fresh Debian machine (as root):
#
#   runhcs run -> runhcs shim -> local sandbox (gcs child in its own namespaces)
#              -> bridge (16-byte header + JSON over a Unix socket) -> gcs -> runc
#
# Installs what is missing (scripts/setup.sh), builds runhcs and gcs, assembles a root
# filesystem from the host's static busybox, writes an OCI bundle, runs the container and
# prints its output. Everything it creates lives in a temporary directory removed on exit.
#
#   DEMO_CMD='echo hi'  the command the container runs (sh -c)
#   PROFILE=release     build profile (default: dev, quicker to build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (the sandbox needs namespaces, mounts and runc)" >&2
  exit 1
fi

start_all=$(date +%s)
step() { printf '==> %s\n' "$*"; }
done_step() { printf '    done in %ss\n' "$(( $(date +%s) - $1 ))"; }

t=$(date +%s)
step "checking and installing prerequisites (scripts/setup.sh)"
bash scripts/setup.sh
done_step "$t"

t=$(date +%s)
profile=${PROFILE:-dev}
step "building runhcs and gcs (cargo, profile $profile; the first build takes a few minutes)"
cargo build --profile "$profile" -p runhcs -p gcs --bin runhcs --bin gcs
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case "$profile" in dev) bin_dir=$target_dir/debug ;; *) bin_dir=$target_dir/$profile ;; esac
runhcs=$bin_dir/runhcs
[ -x "$runhcs" ] && [ -x "$bin_dir/gcs" ] || { echo "demo: build output not found in $bin_dir" >&2; exit 1; }
done_step "$t"

work=$(mktemp -d /tmp/runhcs-demo.XXXXXX)
cleanup() {
  "$runhcs" --root "$work/state" delete --force demo >/dev/null 2>&1 || true
  # `run` returns once the exit code is known; the sandbox teardown finishes in the
  # background under a `.<id>~<pid>~deleting` dir. Let it end before removing the work dir.
  for _ in $(seq 100); do
    compgen -G "$work/state/.*~deleting" >/dev/null || break
    sleep 0.1
  done
  rm -rf "$work"
}
trap cleanup EXIT

t=$(date +%s)
step "assembling the root filesystem from the host's static busybox"
bash scripts/busybox-rootfs.sh "$work/bundle/rootfs"
printf 'demo\n' >"$work/bundle/rootfs/etc/hostname"
done_step "$t"

# The container's program, as a script in its root filesystem.
if [ -n "${DEMO_CMD:-}" ]; then
  printf '%s\n' "$DEMO_CMD" >"$work/bundle/rootfs/demo.sh"
else
  cat >"$work/bundle/rootfs/demo.sh" <<'SCRIPT'
echo "Hello from a container: runhcs -> local sandbox -> bridge -> gcs -> runc"
echo "hostname:  $(hostname)"
echo "pid 1:     $(tr '\0' ' ' </proc/1/cmdline)"
echo "kernel:    $(uname -sr)"
echo "rootfs:    $(ls / | tr '\n' ' ')"
echo "processes:"
ps -o pid,args
SCRIPT
fi

cat >"$work/bundle/config.json" <<JSON
{
  "ociVersion": "1.1.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/sh", "/demo.sh"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs"},
  "hostname": "demo",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

t=$(date +%s)
step "running the container (runhcs run)"
echo "----------------------------------------------------------------------"
set +e
"$runhcs" --root "$work/state" run --bundle "$work/bundle" demo </dev/null
code=$?
set -e
echo "----------------------------------------------------------------------"
done_step "$t"
echo "container exit code: $code"
printf 'demo finished in %ss\n' "$(( $(date +%s) - start_all ))"
exit "$code"
