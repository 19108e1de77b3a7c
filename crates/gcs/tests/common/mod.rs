//! Shared harness of the gcs integration tests: starts the real `gcs` binary with the Unix
//! transport, plays the host side of the bridge (encoding as the host does), and runs real
//! containers from a busybox rootfs. Everything a test creates lives under one directory and
//! is torn down by `Drop` (gcs killed, runc containers force-deleted, mounts unmounted, dir
//! removed), also when the test fails.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge::messages::*;
use bridge::{AnyInString, Encoding, Frame, MessageType, RawJson};
use serde::Serialize;
use serde_json::{json, Value};

/// Upper bound for anything a test waits on (a hang fails instead of blocking CI).
pub const TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A unique, short name (sun_path is limited to 108 bytes).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The gcs binary: `$GCS_BIN`, else the one cargo built for these tests.
pub fn gcs_bin() -> PathBuf {
    std::env::var_os("GCS_BIN")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_gcs").map(PathBuf::from))
        .expect("set GCS_BIN to the gcs binary")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    // An unreadable mountinfo would make "nothing is mounted" pass without looking.
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let prefix = dir.to_string_lossy().into_owned();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == prefix || mp.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// cgroup directories named after a container that still exist.
pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for c in rd.flatten() {
            for p in [c.path().join("pods").join(id), c.path().join(id)] {
                if p.exists() {
                    out.push(p);
                }
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/pods").join(id);
    if v2.exists() && !out.contains(&v2) {
        out.push(v2);
    }
    out
}

/// Pids whose environment or command line mentions `marker` (leftover container processes).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A process that ended while being listed has no command line: not a leftover.
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

type Pending = Arc<Mutex<HashMap<u64, Sender<Frame>>>>;

/// The test's directory and everything under it.
pub struct Sandbox {
    pub dir: PathBuf,
    pub sock_dir: PathBuf,
    pub state_root: PathBuf,
    pub runc_root: PathBuf,
    pub base_rootfs: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = PathBuf::from("/tmp").join(unique("gcst"));
        let sb = Sandbox {
            sock_dir: dir.join("s"),
            state_root: dir.join("st"),
            runc_root: dir.join("r"),
            base_rootfs: dir.join("base"),
            dir,
        };
        for d in [&sb.sock_dir, &sb.state_root, &sb.runc_root] {
            std::fs::create_dir_all(d).unwrap();
        }
        let st = Command::new("sh")
            .arg(repo_root().join("scripts/busybox-rootfs.sh"))
            .arg(&sb.base_rootfs)
            .status()
            .expect("run busybox-rootfs.sh");
        assert!(st.success(), "busybox-rootfs.sh failed");
        sb
    }

    /// Force-deletes runc containers, unmounts, removes the directory.
    fn cleanup(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.runc_root) {
            for e in rd.flatten() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&self.runc_root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for m in mounts_under(&self.dir) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A running `gcs` and the host side of its bridge.
pub struct Gcs {
    pub sb: Sandbox,
    child: Option<Child>,
    listener: UnixListener,
    conn: Mutex<UnixStream>,
    pending: Pending,
    notifications: Mutex<Receiver<Frame>>,
    notify_tx: Sender<Frame>,
    next_id: AtomicU64,
    next_port: AtomicU32,
    /// (type, id) of every message from gcs, in the order they arrived on the wire.
    arrivals: Arc<Mutex<Vec<(u32, u64)>>>,
    /// Extra flags passed to gcs.
    pub log: PathBuf,
}

impl Gcs {
    /// Starts gcs with `-v4` and the Unix transport, accepting its bridge connection.
    pub fn start() -> Self {
        Self::start_with(&["-v4"])
    }

    pub fn start_with(flags: &[&str]) -> Self {
        let sb = Sandbox::new();
        let listener = UnixListener::bind(sb.sock_dir.join("bridge.sock")).unwrap();
        let log = sb.dir.join("gcs.log");
        let level = std::env::var("GCS_LOGLEVEL").unwrap_or_else(|_| "debug".into());
        let child = Command::new(gcs_bin())
            .args(flags)
            .args(["-transport", "unix", "-socket-dir"])
            .arg(&sb.sock_dir)
            .arg("-state-root")
            .arg(&sb.state_root)
            .arg("-runtime-root")
            .arg(&sb.runc_root)
            .args(["-loglevel", &level, "-log-format", "json", "-logfile"])
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start gcs");
        let conn = accept_timeout(&listener, TIMEOUT).expect("gcs dials the bridge");
        let (notify_tx, notify_rx) = channel();
        let g = Gcs {
            sb,
            child: Some(child),
            listener,
            conn: Mutex::new(conn.try_clone().unwrap()),
            pending: Arc::new(Mutex::new(HashMap::new())),
            notifications: Mutex::new(notify_rx),
            notify_tx,
            next_id: AtomicU64::new(0),
            next_port: AtomicU32::new(0x4000_0001),
            arrivals: Arc::new(Mutex::new(Vec::new())),
            log,
        };
        g.spawn_reader(conn);
        g
    }

    /// Started and negotiated.
    pub fn negotiated() -> Self {
        let g = Self::start();
        let r = g.negotiate();
        assert_eq!(result_of(&r), 0, "negotiate: {}", body(&r));
        g
    }

    fn spawn_reader(&self, mut conn: UnixStream) {
        let pending = Arc::clone(&self.pending);
        let notify = self.notify_tx.clone();
        let arrivals = Arc::clone(&self.arrivals);
        std::thread::spawn(move || {
            while let Ok(Some(f)) = bridge::read_frame(&mut conn, bridge::MAX_MESSAGE_SIZE) {
                arrivals
                    .lock()
                    .unwrap()
                    .push((f.header.message_type, f.header.id));
                if f.header.message_type == MessageType::ContainerNotification.as_u32() {
                    let _ = notify.send(f);
                } else if let Some(tx) = pending.lock().unwrap().remove(&f.header.id) {
                    let _ = tx.send(f);
                } else {
                    eprintln!("response with unknown id {}", f.header.id);
                }
            }
        });
    }

    /// Waits for gcs to re-dial after it dropped the bridge.
    pub fn accept_redial(&self) {
        let conn = accept_timeout(&self.listener, TIMEOUT).expect("gcs re-dials the bridge");
        *self.conn.lock().unwrap() = conn.try_clone().unwrap();
        self.spawn_reader(conn);
    }

    pub fn write_raw(&self, bytes: &[u8]) {
        self.conn.lock().unwrap().write_all(bytes).unwrap();
    }

    /// Sends a raw message and returns a receiver for its response.
    pub fn send_raw(&self, message_type: u32, body: &[u8]) -> Receiver<Frame> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = Vec::new();
        msg.extend_from_slice(
            &bridge::MessageHeader {
                message_type,
                size: (16 + body.len()) as u32,
                id,
            }
            .encode(),
        );
        msg.extend_from_slice(body);
        self.write_raw(&msg);
        rx
    }

    /// Sends a request encoded as the host does; returns a receiver for the response.
    pub fn send<T: Serialize>(&self, t: MessageType, payload: &T) -> Receiver<Frame> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel();
        self.pending.lock().unwrap().insert(id, tx);
        let msg = bridge::encode_message(t, id, payload, Encoding::Host).unwrap();
        self.write_raw(&msg);
        rx
    }

    pub fn request<T: Serialize>(&self, t: MessageType, payload: &T) -> Frame {
        let f = wait_response(&self.send(t, payload));
        assert_eq!(
            f.header.message_type,
            bridge::header::response_for(t.as_u32()),
            "response type"
        );
        f
    }

    pub fn negotiate(&self) -> Frame {
        self.request(
            MessageType::NegotiateProtocol,
            &NegotiateProtocolRequest::default(),
        )
    }

    pub fn next_notification(&self, timeout: Duration) -> Option<ContainerNotification> {
        match self.notifications.lock().unwrap().recv_timeout(timeout) {
            Ok(f) => Some(f.decode().unwrap()),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Where the last message `(type, id)` arrived among everything gcs sent so far.
    pub fn arrival_index(&self, message_type: u32, id: u64) -> Option<usize> {
        let a = self.arrivals.lock().unwrap();
        a.iter().rposition(|m| *m == (message_type, id))
    }

    /// A host-side stdio listener on the next port.
    pub fn stdio_port(&self) -> (u32, UnixListener) {
        let port = self.next_port.fetch_add(1, Ordering::Relaxed);
        let l = UnixListener::bind(self.sb.sock_dir.join(format!("{port}.sock"))).unwrap();
        (port, l)
    }

    /// The port most recently handed out by [`Gcs::stdio_port`].
    pub fn last_port(&self) -> u32 {
        self.next_port.load(Ordering::Relaxed) - 1
    }

    /// Listens again on `port` (its old listener is gone).
    pub fn relisten(&self, port: u32) -> UnixListener {
        let path = self.sb.sock_dir.join(format!("{port}.sock"));
        let _ = std::fs::remove_file(&path);
        UnixListener::bind(path).unwrap()
    }

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.sb.dir.join("c").join(id)
    }

    /// CombinedLayers Add of the busybox rootfs at `<bundle>/rootfs`.
    pub fn add_rootfs(&self, id: &str) {
        let bundle = self.bundle(id);
        let req = ModifySettingsRequest {
            base: RequestBase::null(),
            request: ModifySettingRequest::new(
                ModifyRequestType::Add,
                ResourceSettings::CombinedLayers(CombinedLayers {
                    container_id: id.into(),
                    container_root_path: bundle.join("rootfs").to_string_lossy().into(),
                    layers: vec![Layer {
                        path: self.sb.base_rootfs.to_string_lossy().into(),
                        ..Default::default()
                    }],
                    scratch_path: bundle.join("scratch").join(id).to_string_lossy().into(),
                }),
            ),
        };
        let r = self.request(MessageType::ModifySettings, &req);
        assert_eq!(result_of(&r), 0, "CombinedLayers add: {}", body(&r));
    }

    pub fn remove_rootfs(&self, id: &str) -> Frame {
        let req = ModifySettingsRequest {
            base: RequestBase::null(),
            request: ModifySettingRequest::new(
                ModifyRequestType::Remove,
                ResourceSettings::CombinedLayers(CombinedLayers {
                    container_root_path: self.bundle(id).join("rootfs").to_string_lossy().into(),
                    ..Default::default()
                }),
            ),
        };
        self.request(MessageType::ModifySettings, &req)
    }

    /// Create of a container running `args` on the busybox rootfs.
    pub fn create(&self, id: &str, args: &[&str], terminal: bool) -> Frame {
        self.create_spec(id, oci_spec(&self.bundle(id), args, terminal))
    }

    /// Create with a given OCI spec.
    pub fn create_spec(&self, id: &str, spec: Value) -> Frame {
        let scratch = self.bundle(id).join("scratch").join(id);
        self.create_full(id, spec, &scratch)
    }

    /// Create with a given OCI spec and scratch dir.
    pub fn create_full(&self, id: &str, spec: Value, scratch: &Path) -> Frame {
        let bundle = self.bundle(id);
        let req = CreateRequest {
            base: RequestBase::new(id),
            container_config: AnyInString(ContainerConfig {
                schema_version: SchemaVersion::V2_1,
                oci_bundle_path: bundle.to_string_lossy().into(),
                oci_specification: Some(RawJson::from_value(&spec).unwrap()),
                scratch_dir_path: scratch.to_string_lossy().into(),
            }),
        };
        self.request(MessageType::Create, &req)
    }

    /// ExecuteProcess; `stdio` says which of stdin/stdout/stderr to connect. Returns the
    /// response and the accepted connections (in the order stdin, stdout, stderr).
    pub fn execute(
        &self,
        id: &str,
        oci_process: Option<Value>,
        stdio: [bool; 3],
    ) -> (Frame, [Option<UnixStream>; 3]) {
        self.execute_params(id, oci_process, stdio, |_| {})
    }

    pub fn execute_params(
        &self,
        id: &str,
        oci_process: Option<Value>,
        stdio: [bool; 3],
        tweak: impl FnOnce(&mut ProcessParameters),
    ) -> (Frame, [Option<UnixStream>; 3]) {
        let mut params = ProcessParameters {
            create_std_in_pipe: stdio[0],
            create_std_out_pipe: stdio[1],
            create_std_err_pipe: stdio[2],
            oci_process: oci_process.map(|p| RawJson::from_value(&p).unwrap()),
            ..Default::default()
        };
        tweak(&mut params);
        let mut ports = VsockStdioRelaySettings::default();
        let mut listeners: [Option<UnixListener>; 3] = [None, None, None];
        for (i, want) in stdio.iter().enumerate() {
            if *want {
                let (port, l) = self.stdio_port();
                match i {
                    0 => ports.std_in = port,
                    1 => ports.std_out = port,
                    _ => ports.std_err = port,
                }
                listeners[i] = Some(l);
            }
        }
        let req = ExecuteProcessRequest {
            base: RequestBase::new(id),
            settings: ExecuteProcessSettings {
                process_parameters: AnyInString(params),
                vsock_stdio_relay_settings: Some(ports),
            },
        };
        let rx = self.send(MessageType::ExecuteProcess, &req);
        // The guest dials while handling the request: accept before the response comes.
        let conns = listeners.map(|l| l.map(|l| accept_timeout(&l, TIMEOUT).expect("stdio dial")));
        (wait_response(&rx), conns)
    }

    pub fn wait_async(&self, id: &str, pid: u32, timeout_ms: u32) -> Receiver<Frame> {
        let req = WaitForProcessRequest {
            base: RequestBase::new(id),
            process_id: pid,
            timeout_in_ms: timeout_ms,
        };
        self.send(MessageType::WaitForProcess, &req)
    }

    /// Blocks on WaitForProcess; returns (Result, ExitCode).
    pub fn wait(&self, id: &str, pid: u32) -> (i32, u32) {
        let f = wait_response(&self.wait_async(id, pid, u32::MAX));
        let r: WaitForProcessResponse = f.decode().unwrap();
        (r.base.result.0, r.exit_code)
    }

    pub fn signal(&self, id: &str, pid: u32, signal: Option<i32>) -> Frame {
        let req = SignalProcessRequest {
            base: RequestBase::new(id),
            process_id: pid,
            options: signal.map(|s| SignalProcessOptions { signal: s }),
        };
        self.request(MessageType::SignalProcess, &req)
    }

    pub fn simple(&self, t: MessageType, id: &str) -> Frame {
        self.request(t, &RequestBase::new(id))
    }

    /// The gcs log so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the gcs process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Gcs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- gcs log ----\n{}", self.log_text());
        }
        // Sandbox::drop cleans up runc state, mounts and files.
    }
}

pub fn accept_timeout(l: &UnixListener, timeout: Duration) -> Option<UnixStream> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

pub fn wait_response(rx: &Receiver<Frame>) -> Frame {
    rx.recv_timeout(TIMEOUT)
        .expect("response within the timeout")
}

pub fn result_of(f: &Frame) -> i32 {
    let b: ResponseBase = f.decode().unwrap();
    b.result.0
}

pub fn body(f: &Frame) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

pub fn hr(v: u32) -> i32 {
    v as i32
}

/// Reads a stream to EOF, then closes it (the host half of the output protocol).
pub fn read_all(mut s: UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.read_to_end(&mut out).unwrap();
    out
}

/// A minimal OCI spec for a busybox container.
pub fn oci_spec(bundle: &Path, args: &[&str], terminal: bool) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"],
                "effective": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"],
                "permitted": ["CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"]
            },
            "noNewPrivileges": true
        },
        "root": {"path": bundle.join("rootfs").to_string_lossy()},
        "hostname": "gcstest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A process for ExecuteProcess into a container.
pub fn oci_process(args: &[&str], terminal: bool) -> Value {
    json!({
        "terminal": terminal,
        "args": args,
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/"
    })
}
