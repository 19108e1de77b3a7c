//! The per-container shim: a daemon started by `create` that owns the container's local
//! sandbox and bridge, relays the init process's stdio to the fds it inherited from
//! `create`, serves the other commands on `shim.sock`, and exits with init's exit code
//! after tearing the sandbox down. For `run` it also writes that code to an exit pipe as
//! soon as the container's id is free again, before the slower rest of the teardown.
//!
//! Readiness handshake as in the reference: the shim writes `00 'O' 'K' 00` (or the error
//! text) to an inherited pipe and closes it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge::messages::ProcessParameters;
use bridge::RawJson;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use uvm::sandbox::local::{LocalSandbox, LocalSandboxConfig};
use uvm::sandbox::vm::{BootMode, VmSandbox, VmSandboxConfig};
use uvm::transport::BoxStream;
use uvm::{GcsContainer, GcsProcess, ProcessStdio};
use uvm::{Sandbox, SandboxKind};

use crate::control::{self, Reply, Request};
use crate::error::{Error, Result};
use crate::processes::Processes;
pub use crate::spec::{read_spec, rootfs_of};
use crate::state::{ContainerDir, State, Status};

/// The handshake bytes of a successful start.
pub const READY: &[u8] = b"\0OK\0";

/// How long output relays may take to drain after a process exits.
const DRAIN: Duration = Duration::from_secs(30);

/// What the shim needs to know.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// What hosts the GCS (`--sandbox`).
    pub sandbox: SandboxKind,
    /// The VM sandbox's boot files (`--boot-files`).
    pub boot_files: Option<PathBuf>,
    /// The VM sandbox's boot mode (`--boot-mode`).
    pub boot_mode: BootMode,
    /// Container id.
    pub id: String,
    /// The root dir.
    pub root: PathBuf,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// The GCS binary.
    pub gcs: PathBuf,
    /// Extra GCS arguments.
    pub gcs_args: Vec<String>,
    /// Bridge over the GCS's stdin/stdout.
    pub use_inouterr: bool,
    /// `--owner`.
    pub owner: String,
    /// `--debug`: the agent logs at debug level too.
    pub debug: bool,
}

struct Shim {
    config: ShimConfig,
    cd: ContainerDir,
    sandbox: ShimSandbox,
    container: GcsContainer,
    terminal: bool,
    state: Mutex<State>,
    processes: Processes,
    lifecycle: tokio::sync::Mutex<bool>,
    /// Set by `delete`: the delete handler replies and exits, not the init watcher.
    deleting: AtomicBool,
    /// `run`'s exit pipe: gets init's exit code as soon as the container's names are free,
    /// before the rest of the teardown.
    exit_pipe: Mutex<Option<File>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes an inherited pipe fd, close-on-exec: it must not leak into the sandbox's
/// processes, or its reader would wait for them.
fn inherited(fd: Option<i32>) -> Option<File> {
    // SAFETY: the fd was set up by `create`/`run` for this process and is used only here.
    fd.map(|fd| unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        File::from_raw_fd(fd)
    })
}

/// Runs the shim; returns the process exit code. `ready_fd` gets the readiness handshake;
/// `exit_fd` (from `run`) gets init's exit code in decimal once the container is gone.
pub fn run(config: ShimConfig, ready_fd: Option<i32>, exit_fd: Option<i32>) -> i32 {
    let mut ready = inherited(ready_fd);
    let exit_pipe = inherited(exit_fd);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            if let Some(r) = ready.as_mut() {
                let _ = write!(r, "start the shim runtime: {e}");
            }
            return 1;
        }
    };
    rt.block_on(async move {
        let cd = ContainerDir::new(&config.root, &config.id);
        let shim = match setup(config, cd.clone(), exit_pipe).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "shim setup failed");
                if let Some(r) = ready.as_mut() {
                    let _ = r.write_all(e.to_string().as_bytes());
                }
                let _ = std::fs::remove_dir_all(&cd.dir);
                return 1;
            }
        };
        let listener = match tokio::net::UnixListener::bind(cd.control_socket()) {
            Ok(l) => l,
            Err(e) => {
                if let Some(r) = ready.as_mut() {
                    let _ = write!(r, "listen on {}: {e}", cd.control_socket().display());
                }
                if let Err(e) = shim.destroy().await {
                    tracing::error!(error = %e, "tear down after a failed start");
                }
                let _ = std::fs::remove_dir_all(&cd.dir);
                return 1;
            }
        };
        if let Some(mut r) = ready.take() {
            let _ = r.write_all(READY);
        }
        tracing::info!(id = %shim.config.id, "container created");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            tokio::select! {
                conn = listener.accept() => match conn {
                    Ok((stream, _)) => {
                        let shim = shim.clone();
                        let handle = Handle::current();
                        match stream.into_std().and_then(|s| { s.set_nonblocking(false)?; Ok(s) }) {
                            Ok(s) => { tokio::task::spawn_blocking(move || serve(shim, handle, s)); }
                            Err(e) => tracing::warn!(error = %e, "control connection"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "accept control connection"),
                },
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("SIGTERM: tearing the container down");
                    if let Err(e) = shim.destroy().await {
                        tracing::error!(error = %e, "tear down on SIGTERM");
                        return 1;
                    }
                    let _ = std::fs::remove_dir_all(&shim.cd.dir);
                    return 143;
                }
            }
        }
    })
}

async fn setup(config: ShimConfig, cd: ContainerDir, exit_pipe: Option<File>) -> Result<Shim> {
    let spec_path = config.bundle.join("config.json");
    let spec: serde_json::Value = read_spec(&spec_path)?;
    let rootfs = rootfs_of(&spec, &config.bundle)?;
    let terminal = spec
        .pointer("/process/terminal")
        .and_then(|t| t.as_bool())
        .unwrap_or(false);
    let annotations = spec
        .get("annotations")
        .and_then(|a| a.as_object())
        .cloned()
        .unwrap_or_default();

    let sandbox = ShimSandbox::start(&config, &cd).await?;
    let container = match sandbox
        .as_dyn()
        .create_container(&config.id, spec, std::slice::from_ref(&rootfs))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let tail = sandbox.log_tail();
            let _ = sandbox.teardown().await;
            return Err(Error::Shim(format!(
                "create container {}: {e}\n{tail}",
                config.id
            )));
        }
    };
    let state = State {
        id: config.id.clone(),
        bundle: config.bundle.clone(),
        rootfs,
        created: crate::state::now_rfc3339(),
        annotations,
        owner: config.owner.clone(),
        status: Status::Created,
        shim_pid: std::process::id(),
        init_pid: None,
        exit_code: None,
        terminal,
    };
    cd.write(&state)?;
    Ok(Shim {
        config,
        cd,
        sandbox,
        container,
        terminal,
        state: Mutex::new(state),
        processes: Processes::default(),
        lifecycle: tokio::sync::Mutex::new(false),
        deleting: AtomicBool::new(false),
        exit_pipe: Mutex::new(exit_pipe),
    })
}

/// The sandbox of one container, by kind.
enum ShimSandbox {
    Local(Box<LocalSandbox>),
    Vm(Box<VmSandbox>),
}

impl ShimSandbox {
    async fn start(config: &ShimConfig, cd: &ContainerDir) -> Result<Self> {
        let log_level = if config.debug { "debug" } else { "info" };
        match config.sandbox {
            SandboxKind::Vm => {
                let mut c = VmSandboxConfig::new(cd.sandbox_dir());
                if let Some(b) = &config.boot_files {
                    c.boot_files = b.clone();
                }
                c.boot_mode = config.boot_mode;
                c.log_level = log_level.into();
                Ok(ShimSandbox::Vm(Box::new(VmSandbox::start(c).await?)))
            }
            _ => {
                let mut c = LocalSandboxConfig::new(cd.sandbox_dir());
                c.agent = config.gcs.clone();
                c.agent_args = config.gcs_args.iter().map(Into::into).collect();
                c.use_inouterr = config.use_inouterr;
                c.log_level = log_level.into();
                Ok(ShimSandbox::Local(Box::new(LocalSandbox::start(c).await?)))
            }
        }
    }

    fn as_dyn(&self) -> &dyn Sandbox {
        match self {
            ShimSandbox::Local(s) => s.as_ref(),
            ShimSandbox::Vm(s) => s.as_ref(),
        }
    }

    fn log_tail(&self) -> String {
        self.as_dyn().log_tail()
    }

    async fn teardown(&self) -> uvm::Result<()> {
        self.as_dyn().teardown().await
    }

    /// Frees the state dir's name early; false where the sandbox cannot (a VM's sockets
    /// and disk images stay where QEMU opened them until teardown).
    async fn release_names(&self, to: &Path) -> uvm::Result<bool> {
        match self {
            ShimSandbox::Local(s) => s.release_names(to).await.map(|()| true),
            ShimSandbox::Vm(_) => Ok(false),
        }
    }
}

impl Shim {
    fn set_state(&self, f: impl FnOnce(&mut State)) {
        let mut s = lock(&self.state);
        f(&mut s);
        if let Err(e) = self.cd.write(&s) {
            tracing::warn!(error = %e, "write state");
        }
    }

    fn status(&self) -> Status {
        lock(&self.state).status
    }

    /// Tears the sandbox down (once), and with it the container.
    ///
    /// The sandbox holds this one container only: its teardown kills every process in the
    /// sandbox's pid namespace and drops the mounts of its mount namespace, and removes the
    /// container's cgroups and files. So the container is not stopped and removed one by
    /// one first (runc kill, runc delete and the overlay unmount through the bridge would
    /// only add latency, and could not leave less behind).
    ///
    /// Returns the teardown's failure (the first caller only; later calls have nothing left
    /// to do and return `Ok`).
    async fn destroy(&self) -> Result<()> {
        let mut done = self.lifecycle.lock().await;
        if *done {
            return Ok(());
        }
        *done = true;
        let torn = self.sandbox.teardown().await.map_err(|e| {
            tracing::error!(error = %e, "sandbox teardown");
            Error::Shim(format!("sandbox teardown failed: {e}"))
        });
        let socket = self.cd.control_socket();
        let unlinked = match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", socket.display()), e))
            }
            _ => Ok(()),
        };
        torn.and(unlinked)
    }

    /// For `run`: hands init's exit code over as soon as the container id can be reused,
    /// before the slower part of the teardown (waiting for the sandbox's namespaces to die,
    /// removing its files), which [`Shim::destroy`] then finishes. The container dir is
    /// removed (the sandbox's state dir moves out of it first, under a name no container id
    /// can take), and the shim lets go of the caller's stdio, so that nothing the caller
    /// waits for outlives the exit code.
    async fn report_exit(&self, code: i32) {
        let Some(mut pipe) = lock(&self.exit_pipe).take() else {
            return;
        };
        let done = self.lifecycle.lock().await;
        if *done || self.deleting.load(Ordering::SeqCst) {
            // `delete` got there first and owns the exit.
            return;
        }
        let parking = self.cd.dir.with_file_name(format!(
            ".{}~{}~deleting",
            self.config.id,
            std::process::id()
        ));
        match self.sandbox.release_names(&parking).await {
            Ok(true) => {}
            // `run` then waits for the whole teardown (the shim's exit) instead.
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "release the sandbox's names");
                return;
            }
        }
        drop(done);
        tracing::debug!("sandbox names released");
        if let Err(e) = std::fs::remove_dir_all(&self.cd.dir) {
            tracing::warn!(error = %e, "remove the container dir");
            return;
        }
        release_std_fds();
        let _ = pipe.write_all(format!("{code}\n").as_bytes());
        tracing::debug!(code, "exit code reported");
    }

    async fn start(self: &Arc<Self>) -> Result<u32> {
        let init = self
            .processes
            .start(self.status(), &self.container, self.terminal)
            .await?;
        let pid = init.pid();
        self.set_state(|s| {
            s.status = Status::Running;
            s.init_pid = Some(pid);
        });
        let relays = relay(init.take_stdio(), dup_std(0), dup_std(1), dup_std(2));
        let shim = self.clone();
        tokio::spawn(async move {
            let code = match init.wait().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "waiting for the init process failed");
                    255
                }
            };
            relays.drain().await;
            tracing::info!(code, "init exited");
            shim.set_state(|s| {
                s.status = Status::Stopped;
                s.exit_code = Some(code);
            });
            shim.report_exit(code).await;
            // A failed teardown leaves the sandbox's files in the container dir, where
            // `delete` finds them, fails with the reason and tries again.
            if let Err(e) = shim.destroy().await {
                tracing::error!(error = %e, "tear down after init exited");
            }
            if shim.deleting.load(Ordering::SeqCst) {
                // `delete` owns the exit: it still has to reply to its caller.
                return;
            }
            std::process::exit(code & 0xff);
        });
        Ok(pid)
    }

    async fn exec(
        self: &Arc<Self>,
        process: serde_json::Value,
        flags: (bool, bool, bool),
        fds: Vec<OwnedFd>,
    ) -> Result<(Arc<GcsProcess>, Relays)> {
        if self.status() != Status::Running {
            return Err(Error::State(format!(
                "cannot exec in a container that is not running ({})",
                self.status()
            )));
        }
        let tty = process
            .get("terminal")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
        let mut fds = fds.into_iter();
        let mut take = |want: bool| if want { fds.next() } else { None };
        let (stdin, stdout, stderr) = (take(flags.0), take(flags.1), take(flags.2));
        let params = ProcessParameters {
            create_std_in_pipe: stdin.is_some(),
            create_std_out_pipe: stdout.is_some(),
            create_std_err_pipe: stderr.is_some() && !tty,
            oci_process: Some(
                RawJson::from_value(&process).map_err(|e| Error::Invalid(e.to_string()))?,
            ),
            ..Default::default()
        };
        let p = Arc::new(self.container.exec(params).await?);
        self.processes.add_exec(p.clone());
        let relays = relay(
            p.take_stdio(),
            stdin.map(File::from),
            stdout.map(File::from),
            stderr.map(File::from),
        );
        Ok((p, relays))
    }

    fn process(&self, pid: Option<u32>) -> Result<Arc<GcsProcess>> {
        self.processes.get(pid)
    }

    async fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.processes
            .kill(self.status(), &self.container, signal, all)
            .await
    }

    /// Whether `delete` may go ahead (a running container needs `force`).
    fn check_deletable(&self, force: bool) -> Result<()> {
        if self.status() == Status::Running && !force {
            return Err(Error::State(format!(
                "cannot delete container {} that is not stopped: running",
                self.config.id
            )));
        }
        Ok(())
    }

    /// Tears the sandbox down and removes the container dir; fails with the reason when
    /// either fails (the container dir then stays, and a later `delete` retries).
    async fn delete(&self) -> Result<()> {
        self.deleting.store(true, Ordering::SeqCst);
        self.set_state(|s| s.status = Status::Stopped);
        let torn = self.destroy().await;
        let removed = match std::fs::remove_dir_all(&self.cd.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", self.cd.dir.display()), e))
            }
            _ => Ok(()),
        };
        match (torn, removed) {
            (Ok(()), r) => r,
            (Err(e), Ok(())) => Err(e),
            (Err(t), Err(r)) => Err(Error::Shim(format!("{t}; {r}"))),
        }
    }
}

/// Stdio relays of one process.
struct Relays {
    outputs: Vec<JoinHandle<()>>,
    stop_input: Arc<InputStop>,
}

/// Tells the stdin relay to stop: a flag, and an eventfd that wakes its poll at once.
struct InputStop {
    stopped: AtomicBool,
    wake: Option<OwnedFd>,
}

impl InputStop {
    fn new() -> Self {
        use rustix::event::{eventfd, EventfdFlags};
        let wake = match eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(error = %e, "no eventfd: stdin relay checks for its stop every 100 ms");
                None
            }
        };
        Self {
            stopped: AtomicBool::new(false),
            wake,
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(fd) = &self.wake {
            // Only fails when the counter would overflow, and then it is readable anyway.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

impl Relays {
    /// Stops reading the caller's stdin and waits for the outputs to reach EOF.
    async fn drain(self) {
        self.stop_input.stop();
        for h in self.outputs {
            if tokio::time::timeout(DRAIN, h).await.is_err() {
                tracing::warn!("stdio relay did not drain in time");
            }
        }
    }
}

/// Points the shim's standard fds at /dev/null, so that whoever reads the caller's stdout
/// and stderr sees their end (the shim logs to its log file, never to stderr).
fn release_std_fds() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let redirected = rustix::stdio::dup2_stdin(&null)
        .and_then(|()| rustix::stdio::dup2_stdout(&null))
        .and_then(|()| rustix::stdio::dup2_stderr(&null));
    if let Err(e) = redirected {
        tracing::warn!(error = %e, "could not point the standard fds at /dev/null");
    }
}

/// A close-on-exec duplicate of standard fd `fd` (0, 1 or 2), numbered 3 or above.
fn dup_std(fd: i32) -> Option<File> {
    use std::os::fd::AsFd;
    let dup = |f: std::os::fd::BorrowedFd<'_>| rustix::io::fcntl_dupfd_cloexec(f, 3);
    let new = match fd {
        0 => dup(std::io::stdin().as_fd()),
        1 => dup(std::io::stdout().as_fd()),
        _ => dup(std::io::stderr().as_fd()),
    };
    match new {
        Ok(fd) => Some(File::from(fd)),
        Err(e) => {
            tracing::warn!(fd, error = %e, "standard fd not relayed");
            None
        }
    }
}

fn relay(
    stdio: ProcessStdio,
    stdin: Option<File>,
    stdout: Option<File>,
    stderr: Option<File>,
) -> Relays {
    let stop_input = Arc::new(InputStop::new());
    if let (Some(to), Some(from)) = (stdio.stdin, stdin) {
        relay_input(from, to, stop_input.clone());
    }
    let mut outputs = Vec::new();
    for (from, to) in [(stdio.stdout, stdout), (stdio.stderr, stderr)] {
        if let (Some(from), Some(to)) = (from, to) {
            outputs.push(tokio::spawn(copy_out(from, to)));
        }
    }
    Relays {
        outputs,
        stop_input,
    }
}

/// Copies the caller's stdin to the process. The caller's fd may be a terminal shared with
/// its shell, so it is never switched to non-blocking mode and never read once the process
/// has exited: a thread waits in poll(2) for either data on it or the stop eventfd (no
/// timeout, no polling), and reads only when data is there and the process still runs.
fn relay_input(from: File, mut to: BoxStream, stop: Arc<InputStop>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        use std::io::Read;
        let mut from = from;
        let mut buf = vec![0u8; 32 * 1024];
        // Without an eventfd (never expected) fall back to waking every 100 ms.
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let timeout = stop.wake.is_none().then_some(&tick);
        while !stop.is_stopped() {
            let mut pfds = vec![PollFd::new(&from, PollFlags::IN)];
            if let Some(wake) = &stop.wake {
                pfds.push(PollFd::new(wake, PollFlags::IN));
            }
            match poll(&mut pfds, timeout) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            let woken = pfds.get(1).is_some_and(|p| !p.revents().is_empty());
            let ready = pfds[0].revents();
            if woken || stop.is_stopped() || ready.contains(PollFlags::NVAL) {
                break;
            }
            if ready.is_empty() {
                continue;
            }
            // Readable, or hung up / in error: read tells which (data, EOF or an error).
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // EOF (or the process ended): half-close so the guest closes the process's stdin.
        let _ = to.shutdown().await;
    });
}

async fn copy_out(mut from: BoxStream, to: File) {
    let mut to = tokio::fs::File::from_std(to);
    if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
        tracing::debug!(error = %e, "output relay ended");
    }
    let _ = to.flush().await;
    // Dropping `from` closes the host end, which the guest waits for.
}

fn serve(shim: Arc<Shim>, rt: Handle, stream: UnixStream) {
    let (request, fds) = match control::receive(&stream) {
        Ok(r) => r,
        Err(e) => {
            let _ = control::write_reply(&stream, &Reply::error(format!("bad request: {e}")));
            return;
        }
    };
    tracing::debug!(?request, "control request");
    let reply = |r: Result<Reply>| {
        let reply = r.unwrap_or_else(Reply::error);
        let _ = control::write_reply(&stream, &reply);
    };
    match request {
        Request::Start => reply(rt.block_on(shim.start()).map(|pid| Reply {
            pid: Some(pid),
            ..Default::default()
        })),
        Request::Kill { signal, all } => reply(
            rt.block_on(shim.kill(signal, all))
                .map(|_| Reply::default()),
        ),
        Request::Ps => reply(
            rt.block_on(shim.container.process_list())
                .map_err(Error::from)
                .map(|pids| Reply {
                    pids: Some(pids),
                    ..Default::default()
                }),
        ),
        Request::Resize { pid, width, height } => reply(rt.block_on(async {
            shim.process(pid)?.resize_console(width, height).await?;
            Ok(Reply::default())
        })),
        Request::Delete { force } => {
            if let Err(e) = shim.check_deletable(force) {
                return reply(Err(e));
            }
            // Past this point the sandbox is gone, whatever the outcome: the shim replies
            // and exits, with 1 when the teardown or the removal failed.
            let r = rt.block_on(shim.delete());
            let code = i32::from(r.is_err());
            reply(r.map(|_| Reply::default()));
            std::process::exit(code);
        }
        Request::Exec {
            process,
            stdin,
            stdout,
            stderr,
        } => {
            let started = rt.block_on(shim.exec(process, (stdin, stdout, stderr), fds));
            let (p, relays) = match started {
                Ok(x) => x,
                Err(e) => return reply(Err(e)),
            };
            reply(Ok(Reply {
                pid: Some(p.pid()),
                ..Default::default()
            }));
            let code = rt.block_on(async {
                let code = p.wait().await;
                relays.drain().await;
                code
            });
            shim.processes.remove_exec(p.pid());
            reply(code.map_err(Error::from).map(|c| Reply {
                exit_code: Some(c),
                ..Default::default()
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tokio::io::AsyncReadExt;

    /// The stdin relay forwards what is there, and once stopped it ends at once (its poll
    /// is woken, not timed out) without reading anything more from the caller's fd.
    #[tokio::test]
    async fn stdin_relay_stops_without_reading_more() {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut wr = File::from(wr);
        let mut ours = File::from(rd.try_clone().unwrap());
        let (near, mut far) = tokio::net::UnixStream::pair().unwrap();
        let stop = Arc::new(InputStop::new());
        assert!(stop.wake.is_some());
        relay_input(File::from(rd), Box::new(near), stop.clone());

        wr.write_all(b"first").unwrap();
        let mut got = [0u8; 5];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"first");

        stop.stop();
        // The relay half-closes the process's stdin when it ends: EOF, well before the
        // 100 ms a timed poll would have taken (generous bound for a loaded machine).
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), far.read_to_end(&mut rest))
            .await
            .expect("the relay ended")
            .unwrap();
        assert!(rest.is_empty());
        // Data written after the stop stays with the caller.
        wr.write_all(b"late").unwrap();
        drop(wr);
        let mut left = Vec::new();
        ours.read_to_end(&mut left).unwrap();
        assert_eq!(left, b"late");
    }
}
