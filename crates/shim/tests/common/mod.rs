//! A private containerd for the shim's integration tests (root only).
//!
//! Debian's containerd runs with its own root, state, sockets and config under a temporary
//! directory, inside a network namespace the test creates (entered with `nsenter --net`
//! only: `ip netns exec` would remount /sys and hide the cgroup mounts runc needs). The shim
//! and `gcs` binaries are put on its PATH (containerd 1.6 ignores `runtime_path`). Images
//! are imported from hand-built archives. Everything is removed on drop, also when the test
//! fails: containerd and any shim it left are killed, mounts under the directory
//! unmounted, the namespace and the directory removed.

#![allow(dead_code)]

pub mod diag;
pub mod image;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test image (busybox, default command `sh`).
pub const IMAGE: &str = "docker.io/library/shimtest-busybox:latest";
/// The pause image for CRI (busybox sleeping).
pub const PAUSE_IMAGE: &str = "docker.io/library/shimtest-pause:latest";
/// The runtime name.
pub const RUNTIME: &str = "io.containerd.runhcs.v1";

/// Skips nothing silently: root tests need root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs containerd and must run as root"
    );
}

fn bin_dir() -> PathBuf {
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-runhcs-v1"));
    let dir = shim.parent().unwrap().to_path_buf();
    if !dir.join("gcs").is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "gcs", "--bin", "gcs"])
            .status()
            .expect("cargo build -p gcs");
        assert!(status.success(), "building gcs failed");
    }
    dir
}

/// A running private containerd.
pub struct Containerd {
    pub dir: PathBuf,
    pub netns: String,
    child: Option<Child>,
    /// `ctr` containers' cgroups are `/default/<id>` (containerd's `/<namespace>/<id>`):
    /// the parent goes with the last containerd of this test process.
    _cgroups: std::sync::Arc<CgroupParent>,
    _tmp: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd with CRI configured for this shim (CNI bridge in the test's
    /// network namespace when `cni` is set).
    pub fn start(cni: bool) -> Self {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("shimt")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let netns = format!(
            "shimtest-{}-{}",
            std::process::id(),
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("shimt")
        );
        run(Command::new("ip").args(["netns", "add", &netns]));
        run(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let src = bin_dir();
        for b in ["containerd-shim-runhcs-v1", "gcs"] {
            std::os::unix::fs::symlink(src.join(b), bin.join(b)).unwrap();
        }
        let cni_conf = dir.join("cni");
        std::fs::create_dir_all(&cni_conf).unwrap();
        if cni {
            std::fs::write(
                cni_conf.join("10-shimtest.conflist"),
                r#"{"cniVersion": "0.4.0", "name": "shimtest", "plugins": [
  {"type": "bridge", "bridge": "shimbr0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.77.0/24"}]]}},
  {"type": "loopback"}]}"#,
            )
            .unwrap();
        }
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "{pause}"
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runhcs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runhcs]
      runtime_type = "{RUNTIME}"
      # The pod annotations that reach the shim (the sandbox kind and the VM's settings).
      pod_annotations = ["io.hcsshim-rs.*", "io.microsoft.virtualmachine.*"]
"#,
            d = dir.display(),
            pause = PAUSE_IMAGE,
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut c = Containerd {
            dir,
            netns,
            child: None,
            _cgroups: shared_cgroup_parent("/default"),
            _tmp: tmp,
        };
        c.launch();
        c
    }

    /// Starts the daemon (again) and waits for it to answer.
    pub fn launch(&mut self) {
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["containerd", "--config"])
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.ctr(&["version"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not come up: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon (SIGTERM, then SIGKILL), leaving shims running.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// containerd's gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Runs `ctr -a <socket> <args>`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// Runs `ctr -a <socket> <args>` with `input` on its stdin, then EOF.
    pub fn ctr_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new("ctr")
            .arg("-a")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ctr");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).expect("write ctr's stdin");
        drop(stdin);
        child.wait_with_output().expect("wait for ctr")
    }

    /// Runs ctr and asserts success; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(
            o.status.success(),
            "ctr {args:?} failed ({}): {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Imports the test images into `namespace`.
    pub fn import_images(&self, namespace: &str) {
        for (name, cmd) in [
            (IMAGE, vec!["sh"]),
            (PAUSE_IMAGE, vec!["sleep", "2147483647"]),
        ] {
            let archive = self
                .dir
                .join(format!("{}.tar", name.replace(['/', ':'], "_")));
            if !archive.exists() {
                image::write_archive(&archive, name, &cmd);
            }
            self.ctr_ok(&[
                "-n",
                namespace,
                "images",
                "import",
                archive.to_str().unwrap(),
            ]);
        }
    }

    /// The bundle of task `id` in `namespace`.
    pub fn bundle(&self, namespace: &str, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(namespace)
            .join(id)
    }

    /// The shim address containerd would compute for `<namespace>/<id>`.
    pub fn shim_socket(&self, namespace: &str, id: &str) -> PathBuf {
        let a = shim::address::unix_address(self.socket().to_str().unwrap(), namespace, id);
        PathBuf::from(shim::address::socket_path(&a))
    }

    /// The local sandbox state dir of `<namespace>/<id>`.
    pub fn sandbox_dir(&self, namespace: &str, id: &str) -> PathBuf {
        shim::address::sandbox_state_dir(self.socket().to_str().unwrap(), namespace, id)
    }

    /// The last lines of containerd's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Pids of shim processes serving this containerd.
    pub fn shim_pids(&self) -> Vec<u32> {
        processes_with_arg(self.socket().to_str().unwrap(), "containerd-shim-runhcs-v1")
    }
}

/// Pids of processes named `name` whose command line contains `arg`.
pub fn processes_with_arg(arg: &str, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        let mut parts = cmd.split('\0');
        let prog = parts.next().unwrap_or_default();
        if prog.ends_with(name) && cmd.contains(arg) {
            out.push(pid);
        }
    }
    out
}

/// Mount points under `prefix`.
/// The cgroup hierarchies: the unified root and each v1 controller's mount.
pub fn cgroup_bases() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v = vec![root.to_path_buf()];
    v.extend(
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    v
}

/// A pod's cgroup parent (kubelet's `/kubepods/...`, made here by runc's `mkdir -p`),
/// removed from every hierarchy when dropped, also when the test fails (declare it before
/// the [`Containerd`], so that it goes after the shims): with the containers' cgroups a
/// failed test leaves in it, which the kernel lets go only once empty (the test itself
/// checks that a clean run leaves none).
pub struct CgroupParent(pub String);

/// The shared parent of this process's `ctr` containers (see [`shared_cgroup_parent`]).
static SHARED_PARENT: std::sync::Mutex<std::sync::Weak<CgroupParent>> =
    std::sync::Mutex::new(std::sync::Weak::new());

/// A cgroup parent that tests running in parallel share: removed when the last holder
/// drops it, never while another holds it (whose runc may be creating a child in it).
pub fn shared_cgroup_parent(path: &str) -> std::sync::Arc<CgroupParent> {
    let mut slot = SHARED_PARENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.upgrade().filter(|p| p.0 == path) {
        return p;
    }
    let p = std::sync::Arc::new(CgroupParent(path.to_owned()));
    *slot = std::sync::Arc::downgrade(&p);
    p
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        // A shared parent a newer holder took over meanwhile stays for that holder.
        let slot = SHARED_PARENT.lock().unwrap_or_else(|e| e.into_inner());
        if slot.upgrade().is_some_and(|p| p.0 == self.0) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for base in cgroup_bases() {
            let dir = base.join(self.0.trim_start_matches('/'));
            if !dir.is_dir() {
                continue;
            }
            loop {
                let children = std::fs::read_dir(&dir).into_iter().flatten().flatten();
                for c in children.filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(c.path());
                }
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Err(e) => {
                        eprintln!("cgroup parent {} not removed: {e}", dir.display());
                        break;
                    }
                }
            }
        }
        drop(slot);
    }
}

pub fn mounts_under(prefix: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        // The killed shims' local sandboxes: their state dirs (with the private mount point
        // in each) are outside this directory, named after the tasks' bundles.
        let tasks = self.dir.join("state/io.containerd.runtime.v2.task");
        for ns in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            for task in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let dir = self.sandbox_dir(
                    &ns.file_name().to_string_lossy(),
                    &task.file_name().to_string_lossy(),
                );
                if let Err(e) = uvm::sandbox::local::remove_state_dir(&dir) {
                    eprintln!("sandbox {} left: {e}", dir.display());
                }
            }
        }
        let mut mounts = mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .output();
    }
}

/// The utility VM's boot files, where the uvm crate's VM tests find them
/// (`$HCSSHIM_UVM_BOOTFILES` or `<workspace>/out/uvm`, built by scripts/build-bootfiles.sh).
pub fn boot_files() -> std::path::PathBuf {
    let dir = std::env::var_os("HCSSHIM_UVM_BOOTFILES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../out/uvm"));
    assert!(
        ["vmlinux", "initrd.img", "boot-initrd.img", "rootfs.vhd"]
            .iter()
            .all(|f| dir.join(f).is_file()),
        "no boot files in {}: run scripts/build-bootfiles.sh first",
        dir.display()
    );
    dir.canonicalize().unwrap()
}
