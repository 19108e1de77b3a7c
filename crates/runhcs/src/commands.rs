//! The subcommands (the reference's `cmd/runhcs/*.go`), over the local sandbox on Linux
//! and the HCS utility VM on Windows. `create`, `run` and `exec` start and talk to the shim
//! in the platform's way (here for Unix; `commands_windows.rs`); the rest only use the
//! control channel and the state files.

#[cfg(unix)]
use std::io::Read;
#[cfg(unix)]
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
#[cfg(unix)]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::process::{Child, Command as Process};
use std::time::Duration;

#[cfg(unix)]
use crate::cli::CreateArgs;
use crate::cli::{Cli, ExecArgs};
use crate::control::{self, Request};
use crate::error::{Error, Result};
#[cfg(unix)]
use crate::shim::{rootfs_of, READY};
use crate::signal::parse_signal;
use crate::spec::read_spec;
use crate::state::{root_dir, ContainerDir, State, Status};
#[cfg(unix)]
use crate::term;

#[cfg(windows)]
pub use crate::commands_windows::{create, exec, run, ShimProcess};

pub(crate) fn dir_of(cli: &Cli, id: &str) -> Result<ContainerDir> {
    uvm::sandbox::validate_container_id(id).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(ContainerDir::new(&root_dir(&cli.root), id))
}

pub(crate) fn read_state(cli: &Cli, id: &str) -> Result<(ContainerDir, State)> {
    let cd = dir_of(cli, id)?;
    let state = cd.read(id)?;
    Ok((cd, state))
}

/// The GCS binary: `--gcs`, else `gcs` beside this executable, else `gcs` on PATH.
pub fn gcs_path(cli: &Cli) -> PathBuf {
    if let Some(p) = &cli.gcs {
        return p.clone();
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("gcs")))
        .filter(|p| p.exists())
    {
        return beside;
    }
    PathBuf::from("gcs")
}

/// The `--sandbox` kind, if Linux has it (`local` or `vm`).
#[cfg(unix)]
pub fn sandbox_kind(cli: &Cli) -> Result<uvm::SandboxKind> {
    match cli.sandbox.parse::<uvm::SandboxKind>() {
        Ok(k @ (uvm::SandboxKind::Local | uvm::SandboxKind::Vm)) => Ok(k),
        Ok(k) => Err(Error::Invalid(format!(
            "--sandbox {k} is not available on Linux: use local or vm"
        ))),
        Err(e) => Err(Error::Invalid(e.to_string())),
    }
}

#[cfg(unix)]
/// `--boot-mode` of the VM sandbox.
pub fn boot_mode(cli: &Cli) -> Result<uvm::sandbox::vm::BootMode> {
    cli.boot_mode
        .parse()
        .map_err(|e: uvm::Error| Error::Invalid(e.to_string()))
}

#[cfg(unix)]
fn global_args(cli: &Cli) -> Vec<String> {
    let mut a = vec![
        "--root".to_owned(),
        root_dir(&cli.root).display().to_string(),
        "--owner".to_owned(),
        cli.owner.clone(),
        "--gcs".to_owned(),
        gcs_path(cli).display().to_string(),
    ];
    if !cli.gcs_args.is_empty() {
        a.push(format!("--gcs-args={}", cli.gcs_args));
    }
    if cli.gcs_use_inouterr {
        a.push("--gcs-use-inouterr".to_owned());
    }
    a.push(format!("--sandbox={}", cli.sandbox));
    a.push(format!("--boot-mode={}", cli.boot_mode));
    if let Some(b) = &cli.boot_files {
        a.push(format!("--boot-files={}", b.display()));
    }
    if cli.debug {
        a.push("--debug".to_owned());
    }
    a
}

#[cfg(unix)]
/// `create`: validates the bundle, starts the shim (which starts the sandbox and creates
/// the container) and waits for its readiness handshake. Returns the shim process.
pub fn create(cli: &Cli, args: &CreateArgs) -> Result<Child> {
    create_with(cli, args, None)
}

#[cfg(unix)]
/// `create`, handing the shim the write end of `run`'s exit pipe when given.
fn create_with(cli: &Cli, args: &CreateArgs, exit_pipe: Option<OwnedFd>) -> Result<Child> {
    if args.host {
        return Err(Error::Unsupported("--host (process isolation)"));
    }
    sandbox_kind(cli)?;
    boot_mode(cli)?;
    let cd = dir_of(cli, &args.id)?;
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| Error::Invalid(format!("bundle {}: {e}", args.bundle.display())))?;
    let spec = read_spec(&bundle.join("config.json"))?;
    rootfs_of(&spec, &bundle)?;

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
    match spawn_shim(cli, args, &cd, &bundle, exit_pipe) {
        Ok(child) => {
            if let Some(p) = &args.pid_file {
                std::fs::write(p, child.id().to_string())
                    .map_err(|e| Error::io(format!("write pid file {}", p.display()), e))?;
            }
            Ok(child)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&cd.dir);
            Err(e)
        }
    }
}

#[cfg(unix)]
fn spawn_shim(
    cli: &Cli,
    args: &CreateArgs,
    cd: &ContainerDir,
    bundle: &Path,
    exit_pipe: Option<OwnedFd>,
) -> Result<Child> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("create the shim's readiness pipe", e.into()))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find the runhcs executable", e))?;
    let log = args.shim_log.clone().unwrap_or_else(|| cd.shim_log());
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let mut cmd = Process::new(exe);
    cmd.args(global_args(cli))
        .args(["--log", &log.display().to_string()])
        .arg("shim")
        .arg(&args.id)
        .arg("--bundle")
        .arg(bundle)
        .args(["--ready-fd", "3"]);
    if exit_pipe.is_some() {
        cmd.args(["--exit-fd", "4"]);
    }
    let wr_fd = wr.as_raw_fd();
    let exit_fd = exit_pipe.as_ref().map(|p| p.as_raw_fd());
    drop(log_file);
    // SAFETY: runs in the forked child before exec: only fcntl, dup2 and setsid, all
    // async-signal-safe. The pipes are first moved above 4 so that placing one cannot
    // clobber the other; dup2 onto 3 and 4 clears close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            let high = |fd: RawFd| {
                let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 5);
                if new < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(new)
                }
            };
            let ready = high(wr_fd)?;
            let exit = exit_fd.map(high).transpose()?;
            for (from, to) in [(Some(ready), 3), (exit, 4)] {
                if let Some(from) = from {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("start the container shim", e))?;
    drop(wr);
    drop(exit_pipe);
    let mut msg = Vec::new();
    let mut rd = std::fs::File::from(rd);
    let _ = rd.read_to_end(&mut msg);
    if msg == READY {
        return Ok(child);
    }
    let _ = child.wait();
    let text = String::from_utf8_lossy(&msg).trim().to_owned();
    Err(Error::Shim(if text.is_empty() {
        format!(
            "the container shim exited without reporting readiness (see {})",
            log.display()
        )
    } else {
        text
    }))
}

/// `start`.
pub fn start(cli: &Cli, id: &str) -> Result<()> {
    let (cd, state) = read_state(cli, id)?;
    match state.effective_status() {
        Status::Created => {}
        Status::Running => {
            return Err(Error::State(
                "cannot start an already running container".into(),
            ))
        }
        Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ))
        }
    }
    control::call(&cd.control_socket(), &Request::Start)?;
    Ok(())
}

#[cfg(unix)]
fn wait_child(child: &mut Child) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match child.wait() {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(_) => 255,
    }
}

#[cfg(unix)]
/// Forwards SIGWINCH (as resizes) and terminating signals (as kills) to the container
/// while `run`/`exec` wait. Dropping (or sending on) the returned sender stops the thread
/// at once; it never wakes otherwise.
fn forward_signals(
    socket: PathBuf,
    pid: Option<u32>,
    tty: bool,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut winch = signal(SignalKind::window_change()).ok();
            let kinds = [
                (SignalKind::interrupt(), libc::SIGINT),
                (SignalKind::terminate(), libc::SIGTERM),
                (SignalKind::hangup(), libc::SIGHUP),
                (SignalKind::quit(), libc::SIGQUIT),
            ];
            let mut streams: Vec<_> = kinds
                .iter()
                .filter_map(|(k, n)| signal(*k).ok().map(|s| (s, *n)))
                .collect();
            let resize = |socket: &Path| {
                if let Some((w, h)) = term::size(0) {
                    let _ = control::call(socket, &Request::Resize { pid, width: w, height: h });
                }
            };
            if tty {
                resize(&socket);
            }
            loop {
                let any_signal = async {
                    let futs = streams.iter_mut().map(|(s, n)| {
                        let n = *n;
                        Box::pin(async move {
                            s.recv().await;
                            n
                        })
                    });
                    futures_select(futs.collect()).await
                };
                tokio::select! {
                    _ = async { match winch.as_mut() { Some(w) => { w.recv().await; } None => std::future::pending().await } } => {
                        if tty { resize(&socket); }
                    }
                    n = any_signal => {
                        let _ = control::call(&socket, &Request::Kill { signal: n, all: false });
                    }
                    _ = &mut stopped => return,
                }
            }
        });
    });
    stop
}

#[cfg(unix)]
/// Resolves the first of several futures (a tiny `select_all`).
async fn futures_select<F: std::future::Future<Output = i32> + Unpin>(mut futs: Vec<F>) -> i32 {
    if futs.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(unix)]
/// `run`: create + start; without `--detach` wait and return the container's exit code
/// (after deleting it).
///
/// The shim writes init's exit code to an exit pipe as soon as the container is gone and
/// its id free (then finishes tearing the sandbox down by itself); `run` returns it then.
/// Without a code on the pipe (the shim died, or the container was deleted) `run` waits for
/// the shim and reports its exit status.
pub fn run(cli: &Cli, args: &CreateArgs, detach: bool) -> Result<i32> {
    let (exit_rd, exit_wr) = if detach {
        (None, None)
    } else {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("create the shim's exit pipe", e.into()))?;
        (Some(rd), Some(wr))
    };
    let mut child = create_with(cli, args, exit_wr)?;
    let cd = dir_of(cli, &args.id)?;
    let state = cd.read(&args.id)?;
    let tty = state.terminal && !detach;
    let raw = if tty { term::RawMode::enter() } else { None };
    if let Err(e) = control::call(&cd.control_socket(), &Request::Start) {
        drop(raw);
        let _ = control::call(&cd.control_socket(), &Request::Delete { force: true });
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&cd.dir);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let stop = forward_signals(cd.control_socket(), None, tty);
    let mut reported = String::new();
    if let Some(rd) = exit_rd {
        let _ = std::fs::File::from(rd).read_to_string(&mut reported);
    }
    let code = match reported.trim().parse::<i32>() {
        Ok(code) => code,
        Err(_) => {
            let code = wait_child(&mut child);
            let _ = std::fs::remove_dir_all(&cd.dir);
            code
        }
    };
    drop(stop);
    drop(raw);
    Ok(code)
}

pub(crate) fn build_process(state: &State, args: &ExecArgs) -> Result<serde_json::Value> {
    if let Some(path) = &args.process {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let p: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display())))?;
        let cwd_ok = p
            .get("cwd")
            .and_then(|c| c.as_str())
            .is_some_and(|c| c.starts_with('/'));
        let args_ok = p
            .get("args")
            .and_then(|a| a.as_array())
            .is_some_and(|a| !a.is_empty());
        if !cwd_ok || !args_ok {
            return Err(Error::Invalid(
                "process.json needs an absolute cwd and non-empty args".into(),
            ));
        }
        return Ok(p);
    }
    if args.command.is_empty() {
        return Err(Error::Invalid("exec needs a command or --process".into()));
    }
    let spec = read_spec(&state.bundle.join("config.json"))?;
    let base = spec.get("process").cloned().unwrap_or_default();
    let mut env: Vec<serde_json::Value> = base
        .get("env")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    env.extend(
        args.env
            .iter()
            .map(|e| serde_json::Value::String(e.clone())),
    );
    let user = match &args.user {
        None => base
            .get("user")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"uid": 0, "gid": 0})),
        Some(u) => {
            let mut parts = u.splitn(2, ':');
            let parse = |s: Option<&str>| -> Result<u32> {
                s.unwrap_or("0")
                    .parse()
                    .map_err(|_| Error::Invalid(format!("invalid --user {u:?}: use uid[:gid]")))
            };
            serde_json::json!({"uid": parse(parts.next())?, "gid": parse(parts.next())?})
        }
    };
    let cwd = args
        .cwd
        .clone()
        .or_else(|| base.get("cwd").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "/".into());
    Ok(serde_json::json!({
        "terminal": args.tty,
        "user": user,
        "args": args.command,
        "env": env,
        "cwd": cwd,
    }))
}

#[cfg(unix)]
/// `exec`: runs a process with this command's stdio; returns its exit code.
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
    let (fds, flags): (Vec<RawFd>, (bool, bool, bool)) = if args.detach {
        (vec![], (false, false, false))
    } else if tty {
        (vec![0, 1], (true, true, false))
    } else {
        (vec![0, 1, 2], (true, true, true))
    };
    let raw = if tty && !args.detach {
        term::RawMode::enter()
    } else {
        None
    };
    let request = Request::Exec {
        process,
        stdin: flags.0,
        stdout: flags.1,
        stderr: flags.2,
    };
    let mut conn = control::send(&cd.control_socket(), &request, &fds)?;
    let first = conn.reply()?;
    let pid = first.pid.unwrap_or(0);
    if let Some(p) = &args.pid_file {
        std::fs::write(p, pid.to_string())
            .map_err(|e| Error::io(format!("write pid file {}", p.display()), e))?;
    }
    if args.detach {
        return Ok(0);
    }
    let stop = forward_signals(cd.control_socket(), Some(pid), tty);
    let done = conn.reply();
    drop(stop);
    drop(raw);
    Ok(done?.exit_code.unwrap_or(255))
}

/// `kill`.
pub fn kill(cli: &Cli, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let (cd, state) = read_state(cli, id)?;
    let signal = parse_signal(signal.unwrap_or("TERM"))?;
    if state.effective_status() == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    control::call(&cd.control_socket(), &Request::Kill { signal, all })?;
    Ok(())
}

/// `delete`.
pub fn delete(cli: &Cli, id: &str, force: bool) -> Result<()> {
    let (cd, state) = match read_state(cli, id) {
        Ok(x) => x,
        Err(Error::NotFound(_)) if force => {
            // A half-created container (no state yet) is removed too.
            let cd = dir_of(cli, id)?;
            return match std::fs::remove_dir_all(&cd.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(format!("remove {}", cd.dir.display()), e))
                }
                _ => Ok(()),
            };
        }
        Err(e) => return Err(e),
    };
    match state.effective_status() {
        Status::Stopped => {}
        Status::Running if !force => {
            return Err(Error::State(format!(
                "cannot delete container {id} that is not stopped: running"
            )))
        }
        Status::Created | Status::Running => {
            match control::call(&cd.control_socket(), &Request::Delete { force: true }) {
                Ok(_) => {}
                // The shim may have exited on its own meanwhile; then the removal below
                // finishes its work. A reply with an error (a failed teardown) is returned.
                Err(Error::ShimGone(_)) if !crate::state::process_alive(state.shim_pid) => {}
                Err(e) => return Err(e),
            }
        }
    }
    crate::state::wait_gone(state.shim_pid, Duration::from_secs(15));
    // A shim that was killed could not tear its sandbox down: the kernel takes its
    // processes and mounts with the agent, the container's cgroups are left, empty once the
    // last of those processes is gone (which may take a moment after the agent).
    // (On Windows the utility VM dies with the shim's last handle to it.)
    #[cfg(target_os = "linux")]
    {
        // The container's cgroups: the agent's `pods/<id>`, or the bundle's own cgroup
        // path, which the agent keeps (`host_cgroup_path`).
        let mut cgroups = vec![state.id.clone()];
        let spec = std::fs::read(state.bundle.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        cgroups.extend(spec.and_then(|s| uvm::sandbox::local::host_cgroup_path(&state.id, &s)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = uvm::sandbox::local::remove_container_cgroups(&cgroups);
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let left: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
                return Err(Error::State(format!(
                    "the container's cgroups are still in use: {}",
                    left.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The sandbox's private mount point is the host's to remove (its agent is gone).
        uvm::sandbox::local::remove_state_dir(&cd.sandbox_dir())
            .map_err(|e| Error::State(format!("remove the sandbox's state: {e}")))?;
    }
    match std::fs::remove_dir_all(&cd.dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", cd.dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// The state document, in the reference's key order.
#[derive(serde::Serialize)]
struct StateDoc<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'static str,
    id: &'a str,
    pid: u32,
    status: String,
    bundle: &'a Path,
    rootfs: &'a Path,
    created: &'a str,
    annotations: &'a serde_json::Map<String, serde_json::Value>,
    owner: &'a str,
}

fn state_json(state: &State) -> StateDoc<'_> {
    StateDoc {
        oci_version: "1.1.0",
        id: &state.id,
        pid: state.shim_pid,
        status: state.effective_status().to_string(),
        bundle: &state.bundle,
        rootfs: &state.rootfs,
        created: &state.created,
        annotations: &state.annotations,
        owner: &state.owner,
    }
}

/// `state`: indented JSON.
pub fn state(cli: &Cli, id: &str) -> Result<String> {
    let (_, state) = read_state(cli, id)?;
    serde_json::to_string_pretty(&state_json(&state)).map_err(|e| Error::Invalid(e.to_string()))
}

/// `list`.
pub fn list(cli: &Cli, format: &str, quiet: bool) -> Result<String> {
    let root = root_dir(&cli.root);
    let mut states = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(s) = ContainerDir::new(&root, &id).read(&id) {
                states.push(s);
            }
        }
    }
    states.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    if quiet {
        return Ok(states.iter().map(|s| format!("{}\n", s.id)).collect());
    }
    match format {
        "json" => serde_json::to_string(&states.iter().map(state_json).collect::<Vec<_>>())
            .map(|s| s + "\n")
            .map_err(|e| Error::Invalid(e.to_string())),
        "table" => {
            let rows: Vec<[String; 6]> = std::iter::once(
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            )
            .chain(states.iter().map(|s| {
                [
                    s.id.clone(),
                    s.shim_pid.to_string(),
                    s.effective_status().to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
            let mut widths = [0usize; 6];
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            let mut out = String::new();
            for r in rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out.push_str(line.join("   ").trim_end());
                out.push('\n');
            }
            Ok(out)
        }
        other => Err(Error::Invalid(format!(
            "invalid format {other:?}: use table or json"
        ))),
    }
}

/// `ps`.
pub fn ps(cli: &Cli, id: &str, format: &str) -> Result<String> {
    let (cd, state) = read_state(cli, id)?;
    if state.effective_status() != Status::Running {
        return Err(Error::State(format!("container {id} is not running")));
    }
    let pids = control::call(&cd.control_socket(), &Request::Ps)?
        .pids
        .unwrap_or_default();
    match format {
        "json" => serde_json::to_string(&pids)
            .map(|s| s + "\n")
            .map_err(|e| Error::Invalid(e.to_string())),
        "table" => Ok(std::iter::once("PID".to_owned())
            .chain(pids.iter().map(u32::to_string))
            .map(|l| l + "\n")
            .collect()),
        other => Err(Error::Invalid(format!(
            "invalid format {other:?}: use table or json"
        ))),
    }
}

/// `resize-tty`.
pub fn resize_tty(cli: &Cli, id: &str, width: u16, height: u16, pid: Option<u32>) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::Invalid("width and height must be 1..65535".into()));
    }
    let (cd, _) = read_state(cli, id)?;
    control::call(
        &cd.control_socket(),
        &Request::Resize { pid, width, height },
    )?;
    Ok(())
}
