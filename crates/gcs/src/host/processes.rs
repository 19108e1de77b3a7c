//! Process operations: ExecuteProcess (init, exec, external), WaitForProcess, SignalProcess,
//! ResizeConsole.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Host;
use crate::container::{Container, ExitType};
use crate::error::{hr, Error, PathContext, Result};
use crate::process::{Process, ProcessKind};
use crate::runc::RuncStdio;
use crate::stdio::{self, ConnectionSet, ConsoleSocket, PipeEnds, ProcessIo, Relays};

/// The process parameters of an ExecuteProcess, in internal form.
#[derive(Debug, Clone, Default)]
pub struct ProcessParams {
    /// `CommandLine` (external only).
    pub command_line: String,
    /// `CommandArgs` (external only; preferred when non-empty).
    pub command_args: Vec<String>,
    /// `WorkingDirectory` (external only).
    pub working_directory: String,
    /// `Environment` (external only).
    pub environment: BTreeMap<String, String>,
    /// `EmulateConsole` (external only).
    pub emulate_console: bool,
    /// `CreateStdInPipe`.
    pub create_stdin: bool,
    /// `CreateStdOutPipe`.
    pub create_stdout: bool,
    /// `CreateStdErrPipe`.
    pub create_stderr: bool,
    /// `CreateInUtilityVM`.
    pub is_external: bool,
    /// `OciProcess`: exec into the container when present.
    pub oci_process: Option<Value>,
}

/// `VsockStdioRelaySettings`: the ports to dial.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioPorts {
    /// stdin port.
    pub stdin: u32,
    /// stdout port.
    pub stdout: u32,
    /// stderr port.
    pub stderr: u32,
}

impl Host {
    /// Dials the requested stdio ports in the order stdin, stdout, stderr.
    fn dial_stdio(&self, params: &ProcessParams, ports: StdioPorts) -> Result<ConnectionSet> {
        let dial = |want: bool, port: u32| -> Result<Option<std::os::unix::net::UnixStream>> {
            if !want {
                return Ok(None);
            }
            self.transport
                .dial(port)
                .map(Some)
                .map_err(|e| Error::io("dial stdio", e))
        };
        Ok(ConnectionSet {
            stdin: dial(params.create_stdin, ports.stdin)?,
            stdout: dial(params.create_stdout, ports.stdout)?,
            stderr: dial(params.create_stderr, ports.stderr)?,
        })
    }

    /// ExecuteProcess: returns the pid in the GCS's pid namespace.
    pub fn execute_process(
        self: &Arc<Self>,
        container_id: &str,
        params: ProcessParams,
        ports: StdioPorts,
    ) -> Result<u32> {
        if params.is_external || container_id == crate::NULL_CONTAINER_ID {
            return self.run_external(params, ports);
        }
        let c = self.container(container_id)?;
        match params.oci_process.clone() {
            None => self.start_init(&c, &params, ports),
            Some(process) => self.exec_in_container(&c, process, &params, ports),
        }
    }

    /// The init ExecuteProcess: attach stdio, then `runc start`.
    fn start_init(
        &self,
        c: &Arc<Container>,
        params: &ProcessParams,
        ports: StdioPorts,
    ) -> Result<u32> {
        let conns = self.dial_stdio(params, ports)?;
        let init = c.init();
        let tee = match c.tee_log() {
            Some(path) => Some(Arc::new(stdio::TeeLog::open(path)?)),
            None => None,
        };
        let relays = match init.take_pending_io() {
            Some(ProcessIo::Pipes(ends)) => {
                let reconnect = stdio::Reconnect {
                    transport: self.transport.clone(),
                    stdout_port: ports.stdout,
                    stderr_port: ports.stderr,
                    stop: c.stdio_stop(),
                };
                stdio::relay_pipes(ends, conns, Some(reconnect), tee)?
            }
            Some(ProcessIo::Tty(master)) => stdio::relay_tty(master, conns, tee)?,
            Some(ProcessIo::None) | None => {
                return Err(Error::Invalid(format!(
                    "container {} init process was already started",
                    c.id()
                )))
            }
        };
        init.set_relays(relays);
        c.mark_running()?;
        self.runc
            .start(c.id(), c.bundle(), init.pid(), c.has_poststart_hooks())?;
        Ok(init.pid())
    }

    /// `runc exec -d` of an OCI process in the container.
    fn exec_in_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        mut process: Value,
        params: &ProcessParams,
        ports: StdioPorts,
    ) -> Result<u32> {
        complete_process(c, &mut process)?;
        let terminal = process
            .get("terminal")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tmp = c.state_dir().join(format!("tmp-{}", self.unique()));
        std::fs::create_dir_all(&tmp).with_path("mkdir", &tmp)?;
        let cleanup_tmp = |e: Error| {
            let _ = std::fs::remove_dir_all(&tmp);
            e
        };
        let process_json = tmp.join("process.json");
        let body = serde_json::to_vec(&process)
            .map_err(|e| Error::Invalid(format!("encode process.json: {e}")))?;
        std::fs::write(&process_json, body)
            .with_path("write", &process_json)
            .map_err(cleanup_tmp)?;
        let pid_file = tmp.join("pid");
        let conns = self.dial_stdio(params, ports).map_err(cleanup_tmp)?;

        let (pid, relays, tty) = if terminal {
            let sock_path = self.console_socket_path();
            let console = ConsoleSocket::bind(&sock_path).map_err(cleanup_tmp)?;
            let r = self.runc.exec(
                c.id(),
                c.bundle(),
                &process_json,
                &pid_file,
                Some(console.path()),
                RuncStdio::null(),
            );
            let master = r
                .map_err(Error::from)
                .and_then(|()| console.receive())
                .map_err(|e| {
                    let _ = std::fs::remove_file(&sock_path);
                    cleanup_tmp(e)
                })?;
            let pid = super::containers::read_pid(&pid_file).map_err(cleanup_tmp)?;
            let master = Arc::new(master);
            let relays = stdio::relay_tty(Arc::clone(&master), conns, None)?;
            (pid, relays, Some(master))
        } else {
            let mut ends = PipeEnds::default();
            let mut rs = RuncStdio::null();
            if conns.stdin.is_some() {
                let (r, w) = stdio::pipe()?;
                rs.stdin = Stdio::from(r);
                ends.stdin = Some(w);
            }
            if conns.stdout.is_some() {
                let (r, w) = stdio::pipe()?;
                rs.stdout = Stdio::from(w);
                ends.stdout = Some(r);
            }
            if conns.stderr.is_some() {
                let (r, w) = stdio::pipe()?;
                rs.stderr = Stdio::from(w);
                ends.stderr = Some(r);
            }
            self.runc
                .exec(c.id(), c.bundle(), &process_json, &pid_file, None, rs)
                .map_err(|e| cleanup_tmp(e.into()))?;
            let pid = super::containers::read_pid(&pid_file).map_err(cleanup_tmp)?;
            (pid, stdio::relay_pipes(ends, conns, None, None)?, None)
        };
        let record = c.state_dir().join(pid.to_string());
        if let Err(e) = std::fs::rename(&tmp, &record) {
            // The process runs; only its record keeps the temporary name (and is removed
            // with the container's state).
            tracing::warn!(error = %e, from = %tmp.display(), to = %record.display(), "rename the exec's state dir");
        }
        let p = Process::new(pid, ProcessKind::Exec);
        if let Some(m) = tty {
            p.set_tty(m);
        }
        p.set_relays(relays);
        c.add_exec(Arc::clone(&p));
        self.watch_process(p)?;
        Ok(pid)
    }

    /// Reaps a process in its own thread and publishes its exit code.
    fn watch_process(&self, p: Arc<Process>) -> Result<()> {
        let reaper = Arc::clone(&self.reaper);
        std::thread::Builder::new()
            .name("process-exit".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let status = reaper.wait(p.pid());
                let code = match p.kind() {
                    ProcessKind::External => status.go_exit_code() as u32,
                    _ => status.container_code(),
                };
                p.finish(code);
            })
            .map_err(|e| Error::io("spawn process watcher", e))?;
        Ok(())
    }

    /// Runs a process directly in the GCS's namespaces (null container id).
    fn run_external(self: &Arc<Self>, params: ProcessParams, ports: StdioPorts) -> Result<u32> {
        let args = if !params.command_args.is_empty() {
            params.command_args.clone()
        } else {
            split_command_line(&params.command_line)?
        };
        let Some((program, rest)) = args.split_first() else {
            // The reference indexes an empty argument list and panics; refuse it (E_FAIL).
            return Err(Error::Invalid("empty command line".into()));
        };
        let mut cmd = Command::new(program);
        cmd.args(rest).env_clear();
        for (k, v) in &params.environment {
            cmd.env(k, v);
        }
        if !params.working_directory.is_empty() {
            cmd.current_dir(&params.working_directory);
        }
        let conns = self.dial_stdio(&params, ports)?;
        let mut pty_master = None;
        if params.emulate_console {
            let (master, slave) = stdio::open_pty()?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| Error::io("dup pty", e));
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
            // SAFETY: the closure only calls async-signal-safe setsid and ioctl.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            pty_master = Some((Arc::new(master), conns));
        } else {
            let to_stdio = |s: Option<std::os::unix::net::UnixStream>| match s {
                Some(s) => Stdio::from(OwnedFd::from(s)),
                None => Stdio::null(),
            };
            cmd.stdin(to_stdio(conns.stdin))
                .stdout(to_stdio(conns.stdout))
                .stderr(to_stdio(conns.stderr));
        }
        let child = self
            .reaper
            .spawn(&mut cmd)
            .map_err(|e| Error::io(format!("start {program}"), e))?;
        drop(cmd);
        let pid = child.id();
        let p = Process::new(pid, ProcessKind::External);
        match pty_master {
            Some((master, conns)) => {
                p.set_tty(Arc::clone(&master));
                p.set_relays(stdio::relay_tty(master, conns, None)?);
            }
            None => p.set_relays(Relays::none()),
        }
        self.external
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, Arc::clone(&p));
        self.watch_process(p)?;
        Ok(pid)
    }

    fn process(&self, container_id: &str, pid: u32) -> Result<Arc<Process>> {
        if container_id == crate::NULL_CONTAINER_ID {
            return self
                .external
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&pid)
                .cloned()
                .ok_or(Error::Hresult(hr::NOT_FOUND));
        }
        self.container(container_id)?.process(pid)
    }

    /// WaitForProcess: the exit code, `VmcomputeTimeout` after `timeout_ms` (u32::MAX =
    /// infinite). The record is dropped once a waiter got the code.
    ///
    /// Returns the process too: the caller marks it answered
    /// ([`Process::mark_answered`]) once the response is sent.
    pub fn wait_process(
        &self,
        container_id: &str,
        pid: u32,
        timeout_ms: u32,
    ) -> Result<(u32, Arc<Process>)> {
        let p = self.process(container_id, pid)?;
        let timeout = (timeout_ms != u32::MAX).then(|| Duration::from_millis(timeout_ms.into()));
        let code = p.wait(timeout)?;
        if container_id == crate::NULL_CONTAINER_ID {
            self.external
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
        } else if let Ok(c) = self.container(container_id) {
            c.forget_if_done(pid);
        }
        Ok((code, p))
    }

    /// SignalProcess: `kill(pid, signal)`, 0 meaning SIGKILL. Container processes only.
    pub fn signal_process(&self, container_id: &str, pid: u32, signal: i32) -> Result<()> {
        let signal = if signal == 0 { libc::SIGKILL } else { signal };
        let c = self.container(container_id)?;
        let p = c.process(pid)?;
        // The exit type goes with the signal to init (recorded first so that the exit
        // notification sees it, restored if the signal was not delivered).
        let previous = c.exit_type();
        let init_type = (p.kind() == ProcessKind::Init)
            .then(|| ExitType::for_signal(signal))
            .flatten();
        if let Some(t) = init_type {
            c.set_exit_type(t);
        }
        let r = p.signal(signal);
        if r.is_err() && init_type.is_some() {
            c.set_exit_type(previous);
        }
        r
    }

    /// ResizeConsole of a container process.
    pub fn resize_console(&self, container_id: &str, pid: u32, rows: u16, cols: u16) -> Result<()> {
        self.container(container_id)?
            .process(pid)?
            .resize(rows, cols)
    }
}

/// Fills an exec's OCI process from the container's: rlimits, and the user when none is
/// given; resolves `user.username` (an OCI `userstr`) against the container image's
/// `/etc/passwd` and `/etc/group`. The container's config.json must be readable: without it
/// the exec would silently run as root with no limits.
fn complete_process(c: &Container, process: &mut Value) -> Result<()> {
    if !process.is_object() {
        return Err(Error::Invalid("OciProcess must be an object".into()));
    }
    let config = c.bundle().join("config.json");
    let bytes = std::fs::read(&config).with_path("read", &config)?;
    let spec: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Invalid(format!(
            "the container's {} is not valid JSON: {e}",
            config.display()
        ))
    })?;
    let obj = process.as_object_mut().expect("checked above");
    if let Some(rl) = spec.pointer("/process/rlimits") {
        obj.entry("rlimits").or_insert_with(|| rl.clone());
    }
    if !obj.contains_key("cwd") {
        obj.insert("cwd".into(), Value::String("/".into()));
    }
    let username = obj
        .get("user")
        .and_then(|u| u.get("username"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    match (obj.get("user"), username) {
        (_, Some(name)) => {
            let root = spec
                .pointer("/root/path")
                .and_then(Value::as_str)
                .map(|r| c.bundle().join(r))
                .unwrap_or_else(|| c.bundle().join("rootfs"));
            let ids = crate::user::resolve_in_rootfs(&root, &name)?;
            let user = obj
                .get_mut("user")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| Error::Invalid("OciProcess.user must be an object".into()))?;
            user.insert("uid".into(), ids.uid.into());
            user.insert("gid".into(), ids.gid.into());
            user.remove("username");
        }
        (None, None) => {
            let user = spec
                .pointer("/process/user")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"uid": 0, "gid": 0}));
            obj.insert("user".into(), user);
        }
        _ => {}
    }
    Ok(())
}

/// The reference's shell-words failure (E_FAIL).
fn unterminated(line: &str) -> Error {
    Error::Invalid(format!(
        "failed to parse command line string {line:?}: unterminated quote"
    ))
}

/// Splits a command line with shell-words rules (quotes and backslashes; no expansion).
pub fn split_command_line(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(unterminated(line)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(unterminated(line)),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(unterminated(line)),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(
            split_command_line(r#"sh -c 'echo "a b"' x\ y "q\"z""#).unwrap(),
            vec!["sh", "-c", "echo \"a b\"", "x y", "q\"z"]
        );
        assert!(split_command_line("'open").is_err());
        assert!(split_command_line("   ").unwrap().is_empty());
    }
}
