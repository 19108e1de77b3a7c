//! `runhcs --sandbox vm run`: a busybox container inside a QEMU utility VM (as root, with
//! qemu-system-x86, vhost-device-vsock and the boot files of scripts/build-bootfiles.sh in
//! `$HCSSHIM_UVM_BOOTFILES` or `<workspace>/out/uvm`). One boot. Linux only.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn boot_files() -> PathBuf {
    let dir = std::env::var_os("HCSSHIM_UVM_BOOTFILES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("out/uvm"));
    assert!(
        dir.join("vmlinux").is_file() && dir.join("initrd.img").is_file(),
        "no boot files in {}: run scripts/build-bootfiles.sh first",
        dir.display()
    );
    dir
}

/// A busybox rootfs of this test's own (removed with the test dir).
fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    let ok = Command::new("sh")
        .arg(workspace_root().join("scripts/busybox-rootfs.sh"))
        .arg(&r)
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "busybox-rootfs.sh failed (is busybox-static installed?)"
    );
    r
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("test dir {} not removed: {e}", self.0.display());
        }
    }
}

#[test]
fn run_prints_the_output_of_a_container_in_the_vm() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the runhcs tests run as root (as CI does)");
    let dir = Dir(std::env::temp_dir().join(format!("runhcs-test-vm-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let bundle = dir.0.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::os::unix::fs::symlink(rootfs(&dir.0), bundle.join("rootfs")).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", "echo hello from $(uname -r); exit 7"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "hostname": "vm",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    });
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let root = dir.0.join("root");
    let out = Command::new(env!("CARGO_BIN_EXE_runhcs"))
        .arg("--root")
        .arg(&root)
        .args(["--sandbox", "vm", "--boot-files"])
        .arg(boot_files())
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("vm{}", std::process::id()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let release = std::fs::read_to_string(boot_files().join("kernel.release")).unwrap();
    // The guest kernel's release, not the host's: the container ran in the VM.
    assert_eq!(
        stdout,
        format!("hello from {}\n", release.trim()),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(7));
    // Nothing of the container or its VM is left in the state root.
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the state root: {left:?}");
}
