//! A private containerd (Debian's package) for the peer test: its own root, state, sockets,
//! CNI configuration and plugin directories under a temporary directory, started inside
//! hnsd's host network namespace (so pods, port mappings and the stream server live in the
//! test's namespaces), with the CNI plugins finding that hnsd through `HNSD_SOCKET`.
//!
//! Dropping it removes what a failed test may leave: the shims of this instance, the
//! daemon, mounts under its root, and the pod network namespaces the test registered.

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

/// A running containerd.
pub struct Containerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    netns: Vec<PathBuf>,
}

impl Containerd {
    /// Starts containerd in network namespace `host_netns`, with the `nat` plugin and
    /// Debian's `loopback` on its CNI path, `conflist` as its only network, and `env` added
    /// to its environment (the CNI plugins inherit it).
    pub fn start(host_netns: &Path, conflist: &str, env: &[(&str, &Path)]) -> Self {
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
        for sub in ["cni-bin", "cni-conf", "root", "state", "opt"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nat"), d.join("cni-bin/nat")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/cni/loopback", d.join("cni-bin/loopback")).unwrap();
        std::fs::write(d.join("cni-conf/10-nat.conflist"), conflist).unwrap();
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
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = File::create(d.join("containerd.log")).unwrap();
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg(format!("--net={}", host_netns.display()))
            .arg("/usr/bin/containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .current_dir(d)
            .env("WINCNI_LOG", d.join("wincni.log"))
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

    /// containerd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default()
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

    /// The pids of this instance's shims (their command line names its socket).
    fn shims(&self) -> Vec<i32> {
        let needle = self.socket().display().to_string();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("containerd-shim-runc-v2") && cmdline.contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Shims left by a failed test take their containers with them (SIGKILL of a shim
        // leaves the container running: kill the shim's children first).
        for shim in self.shims() {
            let children = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children"))
                .unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                if let Err(e) = kill(Pid::from_raw(c), Signal::SIGKILL) {
                    eprintln!("kill {c}: {e}");
                }
            }
            if let Err(e) = kill(Pid::from_raw(shim), Signal::SIGKILL) {
                eprintln!("kill shim {shim}: {e}");
            }
        }
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
