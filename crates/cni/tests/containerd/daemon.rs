//! A private containerd (Debian's package) for the peer test: its own root, state, sockets,
//! CNI configuration and plugin directories under a temporary directory, started inside
//! hnsd's host network namespace (so pods, port mappings and the stream server live in the
//! test's namespaces), with the CNI plugins finding that hnsd through `HNSD_SOCKET`.
//!
//! Two CRI runtime handlers: `runc` (Debian's `containerd-shim-runc-v2`) and `runhcs`
//! (this workspace's `containerd-shim-runhcs-v1`, which runs the pod in a local sandbox
//! with the workspace's `gcs`). The test builds those two binaries with cargo into its own
//! target directory and puts them on containerd's `PATH` (containerd 1.6 ignores
//! `runtime_path`).
//!
//! Dropping it removes what a failed test may leave: the shims of this instance (with
//! their containers or sandboxes), the daemon, mounts under its root, the local sandboxes'
//! state directories, and the pod network namespaces the test registered.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::image::IMAGE;

/// The binaries the test needs from the machine (`scripts/setup.sh` installs them).
pub const NEEDED: &[&str] = &[
    "/usr/bin/containerd",
    "/usr/bin/ctr",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/lib/cni/loopback",
    "/usr/bin/nsenter",
];

/// The shim binaries of the two runtime handlers.
const SHIMS: [&str; 2] = ["containerd-shim-runc-v2", "containerd-shim-runhcs-v1"];

/// Where the runhcs shim keeps its local sandboxes' state directories
/// (`shim::address::LINUX_SANDBOX_ROOT`); only directories there are removed on drop.
const SANDBOX_ROOT: &str = "/run/containerd-runhcs";

/// The CRI runtime handler a pod runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Debian's runc shim (`io.containerd.runc.v2`).
    Runc,
    /// This workspace's shim (`io.containerd.runhcs.v1`) with its local sandbox and `gcs`.
    Runhcs,
}

impl Runtime {
    /// The handler's name in containerd's CRI configuration (`RunPodSandboxRequest`'s
    /// `runtime_handler`).
    pub fn handler(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Runhcs => "runhcs",
        }
    }

    /// The shim binary containerd runs for the handler.
    pub fn shim(self) -> &'static str {
        match self {
            Runtime::Runc => SHIMS[0],
            Runtime::Runhcs => SHIMS[1],
        }
    }
}

/// Builds `containerd-shim-runhcs-v1` and `gcs` with cargo into the target directory and
/// profile this test was built with (a quick no-op when they are fresh); the directory
/// holding them. One cargo run per package, as the uvm and runhcs tests build `gcs`, so
/// that each binary is built with the same features (and artifacts) as there.
fn build_runhcs() -> PathBuf {
    // <target-dir>/<profile>/nat: the plugin binary cargo built for this test.
    let nat = Path::new(env!("CARGO_BIN_EXE_nat"));
    let dir = nat.parent().expect("the nat binary's directory");
    let target_dir = dir.parent().expect("the target directory");
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(p) => p,
        None => panic!("no profile directory in {}", nat.display()),
    };
    for (package, bin) in [("shim", "containerd-shim-runhcs-v1"), ("gcs", "gcs")] {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--locked", "--profile", profile, "--target-dir"])
            .arg(target_dir)
            .args(["-p", package, "--bin", bin])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo build -p {package} --bin {bin} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            dir.join(bin).is_file(),
            "cargo did not build {}",
            dir.join(bin).display()
        );
    }
    dir.to_path_buf()
}

/// A running containerd.
pub struct Containerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    netns: Vec<PathBuf>,
}

impl Containerd {
    /// Starts containerd in network namespace `host_netns`, with the `nat` plugin and
    /// Debian's `loopback` on its CNI path, `conflist` as its only network, and `env` added
    /// to its environment (the CNI plugins inherit it). Both runtime handlers are
    /// configured; `runtime`'s binaries are made available (built first for `runhcs`).
    pub fn start(
        host_netns: &Path,
        conflist: &str,
        env: &[(&str, &Path)],
        runtime: Runtime,
    ) -> Self {
        for bin in NEEDED {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing (bash scripts/setup.sh installs it)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("cni-ctrd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["bin", "cni-bin", "cni-conf", "root", "state", "opt"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nat"), d.join("cni-bin/nat")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/cni/loopback", d.join("cni-bin/loopback")).unwrap();
        std::fs::write(d.join("cni-conf/10-nat.conflist"), conflist).unwrap();
        if runtime == Runtime::Runhcs {
            let built = build_runhcs();
            for bin in ["containerd-shim-runhcs-v1", "gcs"] {
                std::os::unix::fs::symlink(built.join(bin), d.join("bin").join(bin)).unwrap();
            }
        }
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni-conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runhcs]
      runtime_type = "io.containerd.runhcs.v1"
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = File::create(d.join("containerd.log")).unwrap();
        // containerd finds a shim binary on its PATH (an environment without one gets the
        // usual system directories, where Debian's shim and runc are).
        let path = format!(
            "{}:{}",
            d.join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg(format!("--net={}", host_netns.display()))
            .arg("/usr/bin/containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .current_dir(d)
            .env("WINCNI_LOG", d.join("wincni.log"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut me = Self {
            child: Some(child),
            dir,
            netns: Vec::new(),
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&mut self) {
        let sock = self.socket();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("containerd exited ({status}):\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory of this instance.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir().join("c.sock")
    }

    /// containerd's log (with the shims' logs), then the `gcs.log` of each running local
    /// sandbox (runhcs pods), for failure messages.
    pub fn log(&self) -> String {
        // A missing log reads as empty: this only decorates a failure message.
        let mut log =
            std::fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default();
        for (shim, _) in self.shims() {
            for dir in children(shim).into_iter().filter_map(sandbox_dir) {
                let gcs = dir.join("gcs.log");
                log.push_str(&format!("\n--- {}\n", gcs.display()));
                log.push_str(&std::fs::read_to_string(&gcs).unwrap_or_default());
            }
        }
        log
    }

    /// The CNI plugins' log.
    pub fn cni_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("wincni.log")).unwrap_or_default()
    }

    /// Runs `ctr` against this instance; its stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/ctr")
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A gRPC channel to the CRI services.
    pub async fn channel(&self) -> Channel {
        let sock = self.socket();
        Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let sock = sock.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(sock).await?)) }
            }))
            .await
            .unwrap()
    }

    /// Registers a pod network namespace to remove if the test fails before containerd
    /// removes it.
    pub fn track_netns(&mut self, path: PathBuf) {
        self.netns.push(path);
    }

    /// This instance's shims (their command line names its socket): pid and binary.
    pub fn shims(&self) -> Vec<(i32, &'static str)> {
        let needle = self.socket().display().to_string();
        let mut shims = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // A process gone meanwhile has no command line: not a shim of ours.
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
            let Some(program) = args.next() else {
                continue;
            };
            let Some(shim) = SHIMS.iter().find(|s| program.ends_with(*s)) else {
                continue;
            };
            if args.any(|a| a.contains(&needle)) {
                shims.push((pid, *shim));
            }
        }
        shims
    }

    /// Processes other than this one and `except` whose command line names this
    /// instance's directory (shims and the `delete` runs containerd starts for them).
    fn processes(&self, except: Option<i32>) -> Vec<i32> {
        let needle = self.dir().display().to_string();
        let me = std::process::id() as i32;
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me || Some(pid) == except {
                continue;
            }
            // A process gone meanwhile (or a zombie) has no command line.
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Shims left by a failed test take their containers with them (SIGKILL of a shim
        // leaves the container running: kill the shim's children first). A runhcs shim's
        // child is its local sandbox's gcs, pid 1 of its own pid and mount namespaces: its
        // death takes the pod's processes and mounts along; its state directory (the gcs's
        // `-socket-dir`) is removed below.
        let mut sandboxes = Vec::new();
        let shims = self.shims();
        for &(shim, _) in &shims {
            for c in children(shim) {
                sandboxes.extend(sandbox_dir(c));
                if let Err(e) = kill(Pid::from_raw(c), Signal::SIGKILL) {
                    eprintln!("kill {c}: {e}");
                }
            }
            if let Err(e) = kill(Pid::from_raw(shim), Signal::SIGKILL) {
                eprintln!("kill shim {shim}: {e}");
            }
        }
        // Wait for the killed shims to be gone (reaped), so that containerd, which sees
        // their connections close, starts cleaning up after them (`<shim> delete`, which
        // runs `runc delete`) before it is stopped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while shims.iter().any(|(p, _)| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let daemon = self.child.as_ref().map(|c| c.id() as i32);
        if let Some(mut child) = self.child.take() {
            // nsenter execs containerd: this pid is containerd.
            if let Err(e) = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM) {
                eprintln!("stop containerd: {e}");
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        if let Err(e) = child.kill() {
                            eprintln!("kill containerd: {e}");
                        }
                        if let Err(e) = child.wait() {
                            eprintln!("wait for containerd: {e}");
                        }
                        break;
                    }
                }
            }
        }
        // What containerd started to clean up and left running when it stopped.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.processes(daemon);
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for p in left {
                    if let Err(e) = kill(Pid::from_raw(p), Signal::SIGKILL) {
                        eprintln!("kill {p}: {e}");
                    }
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Mounts under the root (snapshots, shm, sandbox files) a failed test left.
        let root = self.dir().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            if let Err(e) = umount2(p, MntFlags::MNT_DETACH) {
                eprintln!("umount {p}: {e}");
            }
        }
        for dir in sandboxes {
            if dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    eprintln!("remove {}: {e}", dir.display());
                }
            }
        }
        for ns in &self.netns {
            if ns.exists() {
                if let Err(e) = umount2(ns, MntFlags::MNT_DETACH) {
                    eprintln!("umount {}: {e}", ns.display());
                }
                if let Err(e) = std::fs::remove_file(ns) {
                    eprintln!("remove {}: {e}", ns.display());
                }
            }
        }
    }
}

/// The children of process `pid`, started by any of its threads (a gone process has
/// none).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    out
}

/// Whether process `pid` exists (a zombie counts: it is not reaped yet).
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The local sandbox state directory of process `pid` if it is a runhcs shim's `gcs`
/// (its `-socket-dir` argument).
fn sandbox_dir(pid: i32) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
    if !args.next()?.ends_with("gcs") {
        return None;
    }
    args.skip_while(|a| a != "-socket-dir")
        .nth(1)
        .map(|d| PathBuf::from(d.into_owned()))
        .filter(|d| d.starts_with(SANDBOX_ROOT))
}
