//! Shared harness of the local-sandbox tests: the `gcs` binary, a busybox rootfs, specs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use uvm::sandbox::local::{LocalSandbox, LocalSandboxConfig};
use uvm::GcsContainer;

/// True when running as root (the local sandbox needs namespaces, mounts and runc).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `gcs` binary: `$GCS_BIN`, else the workspace's debug build (built on first use).
pub fn gcs_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("GCS_BIN") {
            return PathBuf::from(p);
        }
        // target/<profile>/deps/<test> -> target/<profile>/gcs
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let bin = profile_dir.join("gcs");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "-p", "gcs", "--bin", "gcs"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p gcs");
        assert!(status.success(), "cargo build -p gcs failed");
        assert!(bin.exists(), "gcs not found at {}", bin.display());
        bin
    })
    .clone()
}

/// A busybox root filesystem made by scripts/busybox-rootfs.sh, cached in the temp dir
/// (read-only for the tests: containers write to their scratch layer).
pub fn busybox_rootfs() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("uvm-test-busybox-rootfs");
        if dir.join("bin/busybox").exists() {
            return dir;
        }
        let tmp =
            std::env::temp_dir().join(format!("uvm-test-busybox-rootfs.{}", std::process::id()));
        let status = std::process::Command::new("sh")
            .arg(workspace_root().join("scripts/busybox-rootfs.sh"))
            .arg(&tmp)
            .status()
            .expect("run busybox-rootfs.sh");
        assert!(
            status.success(),
            "busybox-rootfs.sh failed (is busybox-static installed?)"
        );
        // Another test binary may have won the race: then use its copy.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
    .clone()
}

/// A fresh sandbox state dir path (not created).
pub fn state_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("uvm-test-{tag}-{}-{n}", std::process::id()))
}

/// Starts a sandbox with the workspace's gcs (as root, which the local sandbox needs).
pub async fn sandbox(tag: &str) -> LocalSandbox {
    assert!(
        is_root(),
        "the local sandbox tests run as root (as CI does)"
    );
    let mut cfg = LocalSandboxConfig::new(state_dir(tag));
    cfg.agent = gcs_binary();
    cfg.log_level = "debug".into();
    LocalSandbox::start(cfg).await.expect("start local sandbox")
}

/// Creates container `id` in `sb` running `sleep 1000` from the busybox rootfs.
/// A container id unique to this test process: container cgroups are host-wide
/// (`/pods/<id>`) and other test processes run containers at the same time.
pub fn uid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

pub async fn sleeper(sb: &LocalSandbox, id: &str) -> GcsContainer {
    sb.create_container(
        id,
        spec(&["/bin/sleep", "1000"], false),
        &[busybox_rootfs()],
    )
    .await
    .unwrap()
}

/// Tears `sb` down and checks that its state dir is gone.
pub async fn teardown_and_check(sb: LocalSandbox) {
    let dir = sb.state_dir().to_path_buf();
    sb.teardown().await.unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// A minimal OCI spec running `args`.
pub fn spec(args: &[&str], terminal: bool) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "hostname": "uvm-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    })
}

/// An OCI process document for an exec.
pub fn process(args: &[&str], terminal: bool) -> serde_json::Value {
    serde_json::json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/"
    })
}
