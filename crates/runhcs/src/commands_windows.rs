//! `create`, `run` and `exec` on Windows: the shim is a detached `runhcs shim` process
//! (its own process group, so the caller's Ctrl-C does not reach it) that reports
//! readiness on a named pipe `create` names; `exec` relays its standard handles through
//! named pipes it creates and names in the request (handles do not travel with it).
//!
//! **Never run**: compiled for Windows only; no Windows machine was available.

use std::os::windows::process::CommandExt;
use std::path::Path;
use std::process::Command as Process;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tokio::sync::oneshot;

use crate::cli::{Cli, CreateArgs, ExecArgs};
use crate::commands::{build_process, dir_of, read_state};
use crate::control::{self, Request};
use crate::error::{Error, Result};
use crate::shim::READY;
use crate::spec::{layer_folders, read_spec};
use crate::state::{root_dir, ContainerDir, Status};
use crate::term;

/// `CREATE_NEW_PROCESS_GROUP`: the shim does not get the caller's console Ctrl-C.
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
/// SIGINT of the Linux guest, for a Ctrl-C while `run`/`exec` wait.
const SIGINT: i32 = 2;

/// A started shim process and, through a waiting thread, its exit status.
pub struct ShimProcess {
    /// The shim's pid.
    pub pid: u32,
    exited: oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
}

impl ShimProcess {
    /// Waits for the shim to exit; its exit code (init's, when the container ran).
    pub fn wait(self) -> i32 {
        match self.exited.blocking_recv() {
            Ok(Ok(status)) => status.code().unwrap_or(255),
            _ => 255,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start a runtime", e))
}

/// A pipe name unique to this process and call.
fn unique_pipe(kind: &str, n: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        r"\\.\pipe\runhcs-{kind}-{}-{nanos:08x}-{n}",
        std::process::id()
    )
}

/// `create`: validates the bundle, starts the shim (which starts the utility VM and
/// creates the container) and waits for its readiness report.
pub fn create(cli: &Cli, args: &CreateArgs) -> Result<ShimProcess> {
    if args.host {
        return Err(Error::Unsupported("--host (process isolation)"));
    }
    let cd = dir_of(cli, &args.id)?;
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| Error::Invalid(format!("bundle {}: {e}", args.bundle.display())))?;
    let spec = read_spec(&bundle.join("config.json"))?;
    layer_folders(&spec, &bundle)?;

    let root = root_dir(&cli.root);
    std::fs::create_dir_all(&root)
        .map_err(|e| Error::io(format!("create {}", root.display()), e))?;
    match std::fs::create_dir(&cd.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(args.id.clone()))
        }
        Err(e) => return Err(Error::io(format!("create {}", cd.dir.display()), e)),
    }
    match spawn_shim(cli, args, &cd, &bundle) {
        Ok(shim) => {
            if let Some(p) = &args.pid_file {
                std::fs::write(p, shim.pid.to_string())
                    .map_err(|e| Error::io(format!("write pid file {}", p.display()), e))?;
            }
            Ok(shim)
        }
        Err(e) => {
            remove_dir(&cd);
            Err(e)
        }
    }
}

fn remove_dir(cd: &ContainerDir) {
    if let Err(e) = std::fs::remove_dir_all(&cd.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %cd.dir.display(), error = %e, "remove the container dir");
        }
    }
}

fn spawn_shim(
    cli: &Cli,
    args: &CreateArgs,
    cd: &ContainerDir,
    bundle: &Path,
) -> Result<ShimProcess> {
    let rt = runtime()?;
    let ready_name = unique_pipe("ready", 0);
    let ready = rt
        .block_on(async {
            ServerOptions::new()
                .first_pipe_instance(true)
                .create(&ready_name)
        })
        .map_err(|e| Error::io("create the shim's readiness pipe", e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find the runhcs executable", e))?;
    let log = args.shim_log.clone().unwrap_or_else(|| cd.shim_log());
    let mut cmd = Process::new(exe);
    cmd.args(["--root", &root_dir(&cli.root).display().to_string()])
        .args(["--owner", &cli.owner])
        .args(["--log", &log.display().to_string()]);
    if let Some(b) = &cli.boot_files {
        cmd.arg("--boot-files").arg(b);
    }
    if cli.debug {
        cmd.arg("--debug");
    }
    cmd.arg("shim")
        .arg(&args.id)
        .arg("--bundle")
        .arg(bundle)
        .args(["--ready-pipe", &ready_name])
        .creation_flags(CREATE_NEW_PROCESS_GROUP);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("start the container shim", e))?;
    let pid = child.id();
    let (tx, exited) = oneshot::channel();
    std::thread::Builder::new()
        .name("shim-wait".into())
        .spawn(move || {
            if tx.send(child.wait()).is_err() {
                tracing::debug!("nobody waits for the shim any more");
            }
        })
        .map_err(|e| Error::io("start the shim's waiter", e))?;
    let mut shim = ShimProcess { pid, exited };
    let report = rt.block_on(async {
        tokio::select! {
            msg = read_report(ready) => Some(msg),
            _ = &mut shim.exited => None,
        }
    });
    match report {
        Some(Ok(msg)) if msg == READY => Ok(shim),
        Some(Ok(msg)) if !msg.is_empty() => {
            Err(Error::Shim(String::from_utf8_lossy(&msg).trim().to_owned()))
        }
        Some(Err(e)) => Err(Error::io("read the shim's readiness report", e)),
        _ => Err(Error::Shim(format!(
            "the container shim exited without reporting readiness (see {})",
            log.display()
        ))),
    }
}

async fn read_report(mut server: NamedPipeServer) -> std::io::Result<Vec<u8>> {
    server.connect().await?;
    let mut msg = Vec::new();
    (&mut server).take(64 * 1024).read_to_end(&mut msg).await?;
    Ok(msg)
}

/// Forwards Ctrl-C to the container as SIGINT while `run`/`exec` wait, and sets the
/// terminal size once. Dropping the returned sender stops it.
fn forward_ctrl_c(pipe: std::path::PathBuf, pid: Option<u32>, tty: bool) -> oneshot::Sender<()> {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(rt) = runtime() else { return };
            if tty {
                if let Some((width, height)) = term::size(1) {
                    let resize = Request::Resize { pid, width, height };
                    if let Err(e) = control::call(&pipe, &resize) {
                        tracing::debug!(error = %e, "set the terminal size");
                    }
                }
            }
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => {
                            if r.is_err() { return; }
                            let kill = Request::Kill { signal: SIGINT, all: false };
                            if let Err(e) = control::call(&pipe, &kill) {
                                tracing::debug!(error = %e, "forward Ctrl-C");
                            }
                        }
                        _ = &mut stopped => return,
                    }
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "Ctrl-C will not be forwarded");
    }
    stop
}

/// `run`: create + start; without `--detach` wait for the shim, which exits with init's
/// exit code, and remove the container.
pub fn run(cli: &Cli, args: &CreateArgs, detach: bool) -> Result<i32> {
    let shim = create(cli, args)?;
    let cd = dir_of(cli, &args.id)?;
    let state = cd.read(&args.id)?;
    let tty = state.terminal && !detach;
    let raw = if tty { term::RawMode::enter() } else { None };
    if let Err(e) = control::call(&cd.control_socket(), &Request::Start) {
        drop(raw);
        if let Err(d) = control::call(&cd.control_socket(), &Request::Delete { force: true }) {
            tracing::warn!(error = %d, "delete after a failed start");
        }
        shim.wait();
        remove_dir(&cd);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let stop = forward_ctrl_c(cd.control_socket(), None, tty);
    let code = shim.wait();
    drop(stop);
    drop(raw);
    remove_dir(&cd);
    Ok(code)
}

/// `exec`: runs a process with this command's standard handles; returns its exit code.
pub fn exec(cli: &Cli, args: &ExecArgs) -> Result<i32> {
    let (cd, state) = read_state(cli, &args.id)?;
    if state.effective_status() != Status::Running {
        return Err(Error::State(format!(
            "cannot exec in a container that is not running ({})",
            state.effective_status()
        )));
    }
    let process = build_process(&state, args)?;
    let tty = process
        .get("terminal")
        .and_then(|t| t.as_bool())
        .unwrap_or(false);
    let wanted = if args.detach {
        [false, false, false]
    } else {
        [true, true, !tty]
    };
    let rt = runtime()?;
    let names: [Option<String>; 3] =
        std::array::from_fn(|i| wanted[i].then(|| unique_pipe("exec", i)));
    let servers: Vec<Option<NamedPipeServer>> = rt
        .block_on(async {
            names
                .iter()
                .map(|n| {
                    n.as_ref()
                        .map(|n| ServerOptions::new().first_pipe_instance(true).create(n))
                        .transpose()
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .map_err(|e| Error::io("create the exec's stdio pipes", e))?;
    let raw = if tty && !args.detach {
        term::RawMode::enter()
    } else {
        None
    };
    let [stdin, stdout, stderr] = names;
    let request = Request::ExecPipes {
        process,
        stdin,
        stdout,
        stderr,
    };
    let mut conn = control::send(&cd.control_socket(), &request)?;
    let first = conn.reply()?;
    let pid = first.pid.unwrap_or(0);
    if let Some(p) = &args.pid_file {
        std::fs::write(p, pid.to_string())
            .map_err(|e| Error::io(format!("write pid file {}", p.display()), e))?;
    }
    if args.detach {
        return Ok(0);
    }
    let stop = forward_ctrl_c(cd.control_socket(), Some(pid), tty);
    let done = rt.block_on(async move {
        let mut servers = servers.into_iter();
        let mut take = || servers.next().flatten();
        let (sin, sout, serr) = (take(), take(), take());
        let input = sin.map(|mut p| {
            tokio::spawn(async move {
                p.connect().await?;
                tokio::io::copy(&mut tokio::io::stdin(), &mut p).await?;
                p.shutdown().await
            })
        });
        let mut outputs = Vec::new();
        if let Some(mut p) = sout {
            outputs.push(tokio::spawn(async move {
                p.connect().await?;
                let mut out = tokio::io::stdout();
                tokio::io::copy(&mut p, &mut out).await?;
                out.flush().await
            }));
        }
        if let Some(mut p) = serr {
            outputs.push(tokio::spawn(async move {
                p.connect().await?;
                let mut out = tokio::io::stderr();
                tokio::io::copy(&mut p, &mut out).await?;
                out.flush().await
            }));
        }
        let reply = tokio::task::spawn_blocking(move || conn.reply()).await;
        if let Some(i) = input {
            i.abort();
        }
        for o in outputs {
            match o.await {
                Ok(Err(e)) => tracing::debug!(error = %e, "exec output relay"),
                Err(e) => tracing::debug!(error = %e, "exec output relay task"),
                Ok(Ok(())) => {}
            }
        }
        reply.map_err(|e| Error::Shim(format!("waiting for the exec's exit: {e}")))?
    });
    drop(stop);
    drop(raw);
    Ok(done?.exit_code.unwrap_or(255))
}
