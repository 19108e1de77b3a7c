//! The per-container shim on Windows: a process started by `create` that owns the
//! container's HCS utility VM ([`HcsSandbox`]) and bridge, relays the init process's stdio to
//! the standard handles it inherited from `create`, serves the other commands on its named
//! pipe ([`crate::control`]), and exits with init's exit code after tearing the VM down.
//!
//! The container's layers are the bundle's `windows.layerFolders` (each folder's
//! `layer.vhd`, the scratch folder's `sandbox.vhdx`); the utility VM boots from
//! `--boot-files` (default `%ProgramFiles%\Linux Containers`, the reference's).
//!
//! Readiness handshake: `create` names a pipe (`--ready-pipe`); the shim connects to it and
//! writes `00 'O' 'K' 00`, or the error text, once the container exists.
//!
//! **Never run**: this compiles for Windows and its neutral parts are tested on Linux, but
//! no Windows machine was available to run it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge::messages::ProcessParameters;
use bridge::RawJson;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use tokio::task::JoinHandle;
use uvm::sandbox::hcs::{HcsBackends, HcsSandbox, HcsSandboxConfig};
use uvm::{GcsContainer, GcsProcess, ProcessStdio};

use crate::control::{Reply, Request};
use crate::error::{Error, Result};
use crate::processes::Processes;
use crate::protocol::{decode_request, encode_line, MAX_REQUEST};
use crate::spec::{layer_folders, read_spec};
use crate::state::{ContainerDir, State, Status};

/// The handshake bytes of a successful start.
pub const READY: &[u8] = b"\0OK\0";

/// How long output relays may take to drain after a process exits.
const DRAIN: Duration = Duration::from_secs(30);

/// What the shim needs to know.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// Container id.
    pub id: String,
    /// The root dir.
    pub root: PathBuf,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// The utility VM's boot files.
    pub boot_files: String,
    /// `--owner`.
    pub owner: String,
    /// `--debug`: the GCS logs at debug level.
    pub debug: bool,
}

/// The utility VM's boot files when `--boot-files` is not given:
/// `%ProgramFiles%\Linux Containers` (the reference's `DefaultLCOWOSBootFilesPath`).
pub fn default_boot_files() -> String {
    let pf = std::env::var("ProgramFiles").unwrap_or_else(|_| r"C:\Program Files".into());
    format!(r"{pf}\Linux Containers")
}

struct Shim {
    config: ShimConfig,
    cd: ContainerDir,
    sandbox: HcsSandbox,
    container: GcsContainer,
    terminal: bool,
    state: Mutex<State>,
    processes: Processes,
    lifecycle: tokio::sync::Mutex<bool>,
    deleting: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the shim; returns the process exit code.
pub fn run(config: ShimConfig, ready_pipe: Option<String>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "start the shim runtime");
            return 1;
        }
    };
    rt.block_on(async move {
        let cd = ContainerDir::new(&config.root, &config.id);
        let pipe = cd.control_socket();
        let shim = match setup(config, cd.clone()).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "shim setup failed");
                report(ready_pipe.as_deref(), e.to_string().as_bytes()).await;
                remove_dir(&cd);
                return 1;
            }
        };
        // The first instance exists before readiness is reported, so no command can find
        // the pipe missing.
        let server = match ServerOptions::new().first_pipe_instance(true).create(&pipe) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("create the control pipe {}: {e}", pipe.display());
                report(ready_pipe.as_deref(), msg.as_bytes()).await;
                shim.destroy().await;
                remove_dir(&cd);
                return 1;
            }
        };
        report(ready_pipe.as_deref(), READY).await;
        tracing::info!(id = %shim.config.id, "container created");
        serve(shim, server, pipe).await
    })
}

/// Writes the readiness result to `create`'s pipe.
async fn report(pipe: Option<&str>, message: &[u8]) {
    let Some(name) = pipe else { return };
    let sent = async {
        let mut p = ClientOptions::new().open(name)?;
        p.write_all(message).await?;
        p.shutdown().await
    }
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "report readiness to create");
    }
}

fn remove_dir(cd: &ContainerDir) {
    if let Err(e) = std::fs::remove_dir_all(&cd.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %cd.dir.display(), error = %e, "remove the container dir");
        }
    }
}

/// Accepts control connections for the life of the shim (it exits from its handlers).
async fn serve(shim: Arc<Shim>, mut server: NamedPipeServer, pipe: PathBuf) -> i32 {
    loop {
        if let Err(e) = server.connect().await {
            tracing::warn!(error = %e, "accept a control connection");
            return 1;
        }
        // The next instance first, so that a command arriving now finds the pipe.
        let next = match ServerOptions::new().create(&pipe) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "create the next control pipe instance");
                return 1;
            }
        };
        let conn = std::mem::replace(&mut server, next);
        tokio::spawn(handle(shim.clone(), conn));
    }
}

async fn setup(config: ShimConfig, cd: ContainerDir) -> Result<Shim> {
    let spec = read_spec(&config.bundle.join("config.json"))?;
    let layers = layer_folders(&spec, &config.bundle)?;
    let scratch = layers.last().cloned().unwrap_or_default();
    let terminal = spec
        .pointer("/process/terminal")
        .and_then(|t| t.as_bool())
        .unwrap_or(false);
    let annotations = spec
        .get("annotations")
        .and_then(|a| a.as_object())
        .cloned()
        .unwrap_or_default();
    // The reference names a container's utility VM `<id>@vm`.
    let mut sb_config = HcsSandboxConfig::new(
        &format!("{}@vm", config.id),
        cd.sandbox_dir(),
        &config.owner,
        &config.boot_files,
    );
    if config.debug {
        sb_config.options.exec_command_line =
            "/bin/gcs -v4 -log-format json -loglevel debug".into();
    }
    let sandbox = HcsSandbox::start(sb_config, HcsBackends::host()?).await?;
    let container = match sandbox.create_container(&config.id, spec, &layers).await {
        Ok(c) => c,
        Err(e) => {
            let tail = uvm::Sandbox::log_tail(&sandbox);
            if let Err(t) = sandbox.teardown().await {
                tracing::warn!(error = %t, "tear down the utility VM of a failed create");
            }
            return Err(Error::Shim(format!(
                "create container {}: {e}\n{tail}",
                config.id
            )));
        }
    };
    let state = State {
        id: config.id.clone(),
        bundle: config.bundle.clone(),
        rootfs: scratch,
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
    })
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

    /// Tears the utility VM down (once), and with it the container.
    async fn destroy(&self) {
        let mut done = self.lifecycle.lock().await;
        if *done {
            return;
        }
        *done = true;
        if let Err(e) = self.sandbox.teardown().await {
            tracing::warn!(error = %e, "utility VM teardown");
        }
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
        let relays = relay(
            init.take_stdio(),
            Some(Box::new(tokio::io::stdin())),
            Some(Box::new(tokio::io::stdout())),
            Some(Box::new(tokio::io::stderr())),
        );
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
            shim.destroy().await;
            if shim.deleting.load(Ordering::SeqCst) {
                // `delete` owns the exit: it still has to reply to its caller.
                return;
            }
            std::process::exit(code);
        });
        Ok(pid)
    }

    async fn exec(
        self: &Arc<Self>,
        process: serde_json::Value,
        pipes: [Option<String>; 3],
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
        let [stdin, stdout, stderr] = pipes;
        let open = |name: Option<String>| -> Result<Option<NamedPipeClient>> {
            name.map(|n| {
                ClientOptions::new()
                    .open(&n)
                    .map_err(|e| Error::io(format!("open the caller's pipe {n}"), e))
            })
            .transpose()
        };
        let (stdin, stdout, stderr) = (open(stdin)?, open(stdout)?, open(stderr)?);
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
            stdin.map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            stdout.map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
            stderr.map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
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

    async fn delete(&self, force: bool) -> Result<()> {
        if self.status() == Status::Running && !force {
            return Err(Error::State(format!(
                "cannot delete container {} that is not stopped: running",
                self.config.id
            )));
        }
        self.deleting.store(true, Ordering::SeqCst);
        self.set_state(|s| s.status = Status::Stopped);
        self.destroy().await;
        match std::fs::remove_dir_all(&self.cd.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", self.cd.dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Stdio relays of one process.
struct Relays {
    input: Option<JoinHandle<()>>,
    outputs: Vec<JoinHandle<()>>,
}

impl Relays {
    /// Stops relaying input and waits for the outputs to reach EOF.
    async fn drain(self) {
        if let Some(i) = self.input {
            i.abort();
        }
        for h in self.outputs {
            if tokio::time::timeout(DRAIN, h).await.is_err() {
                tracing::warn!("stdio relay did not drain in time");
            }
        }
    }
}

fn relay(
    stdio: ProcessStdio,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    stdout: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
) -> Relays {
    let input = match (stdio.stdin, stdin) {
        (Some(mut to), Some(mut from)) => Some(tokio::spawn(async move {
            if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
                tracing::debug!(error = %e, "input relay ended");
            }
            // EOF: half-close so the guest closes the process's stdin.
            if let Err(e) = to.shutdown().await {
                tracing::debug!(error = %e, "close the process's stdin");
            }
        })),
        _ => None,
    };
    let mut outputs = Vec::new();
    for (from, to) in [(stdio.stdout, stdout), (stdio.stderr, stderr)] {
        if let (Some(mut from), Some(mut to)) = (from, to) {
            outputs.push(tokio::spawn(async move {
                if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
                    tracing::debug!(error = %e, "output relay ended");
                }
                if let Err(e) = to.flush().await {
                    tracing::debug!(error = %e, "flush an output relay");
                }
            }));
        }
    }
    Relays { input, outputs }
}

async fn write_reply(conn: &mut NamedPipeServer, reply: Reply) {
    let line = encode_line(&reply).unwrap_or_else(|e| {
        // A Reply is plain data; encoding it cannot fail, but report it if it does.
        format!("{{\"error\":{:?}}}\n", e.to_string()).into_bytes()
    });
    if let Err(e) = conn.write_all(&line).await {
        tracing::debug!(error = %e, "write a control reply");
    }
}

async fn handle(shim: Arc<Shim>, mut conn: NamedPipeServer) {
    let request = match read_request(&mut conn).await {
        Ok(r) => r,
        Err(e) => {
            write_reply(&mut conn, Reply::error(format!("bad request: {e}"))).await;
            return;
        }
    };
    tracing::debug!(?request, "control request");
    let done = |r: Result<Reply>| r.unwrap_or_else(Reply::error);
    match request {
        Request::Start => {
            let r = shim.start().await.map(|pid| Reply {
                pid: Some(pid),
                ..Default::default()
            });
            write_reply(&mut conn, done(r)).await;
        }
        Request::Kill { signal, all } => {
            let r = shim.kill(signal, all).await.map(|_| Reply::default());
            write_reply(&mut conn, done(r)).await;
        }
        Request::Ps => {
            let r = shim
                .container
                .process_list()
                .await
                .map_err(Error::from)
                .map(|pids| Reply {
                    pids: Some(pids),
                    ..Default::default()
                });
            write_reply(&mut conn, done(r)).await;
        }
        Request::Resize { pid, width, height } => {
            let r = async {
                shim.process(pid)?.resize_console(width, height).await?;
                Ok(Reply::default())
            }
            .await;
            write_reply(&mut conn, done(r)).await;
        }
        Request::Delete { force } => {
            let r = shim.delete(force).await;
            let ok = r.is_ok();
            write_reply(&mut conn, done(r.map(|_| Reply::default()))).await;
            if ok {
                std::process::exit(0);
            }
        }
        Request::Exec { .. } => {
            let r = Err(Error::Invalid(
                "exec with attached handles is the Unix protocol; use exec-pipes".into(),
            ));
            write_reply(&mut conn, done(r)).await;
        }
        Request::ExecPipes {
            process,
            stdin,
            stdout,
            stderr,
        } => {
            let (p, relays) = match shim.exec(process, [stdin, stdout, stderr]).await {
                Ok(x) => x,
                Err(e) => return write_reply(&mut conn, Reply::error(e)).await,
            };
            let first = Reply {
                pid: Some(p.pid()),
                ..Default::default()
            };
            write_reply(&mut conn, first).await;
            let code = p.wait().await;
            relays.drain().await;
            shim.processes.remove_exec(p.pid());
            let r = code.map_err(Error::from).map(|c| Reply {
                exit_code: Some(c),
                ..Default::default()
            });
            write_reply(&mut conn, done(r)).await;
        }
    }
}

/// Reads one request line (bounded) from a control connection.
async fn read_request(conn: &mut NamedPipeServer) -> std::io::Result<Request> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // Requests are small and this is one per connection: byte reads keep the reply side
    // of the same pipe free of a buffered reader.
    loop {
        if conn.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a full request",
            ));
        }
        if byte[0] == b'\n' {
            return decode_request(&line);
        }
        if line.len() >= MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request too large",
            ));
        }
        line.push(byte[0]);
    }
}
