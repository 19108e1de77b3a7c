//! The OCI runtime (runc) invoked the way the reference does (spec §4, "runc invocations").
//!
//! Every state-changing call passes `--log <bundle>/runc.log --log-format json`; on failure
//! the error is the last error-level entry runc appended to that log during this call.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::error::hr;
use crate::reaper::Reaper;

/// A runc invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// runc could not be started.
    #[error("failed to run {path}: {source}", path = .path.display())]
    Spawn {
        /// The runc binary.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// runc ran and failed (runc's own text usually starts with `runc <op> failed`).
    #[error("{}", if message.starts_with("runc ") { message.clone() } else { format!("runc {op} failed: {message}") })]
    Failed {
        /// The subcommand.
        op: &'static str,
        /// runc's own error text (from its log or stderr).
        message: String,
        /// The HRESULT the reference derives from runc's text ([`classify`]).
        hresult: u32,
    },
    /// runc's output could not be understood.
    #[error("runc {op}: unexpected output: {message}")]
    Output {
        /// The subcommand.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl RuncError {
    /// The reference's HRESULT for this failure; E_FAIL unless runc's text says otherwise.
    pub fn hresult(&self) -> u32 {
        match self {
            RuncError::Failed { hresult, .. } => *hresult,
            _ => hr::FAIL,
        }
    }
}

/// The reference's `parseRuncError` (`internal/guest/runtime/runc/utils.go`): the HRESULT of
/// the `runtime.Err*` a runc error text maps to, E_FAIL for any other text. It is applied to
/// what the reference applies it to: the `msg` of runc's last error log entry (create, start,
/// exec), or runc's whole combined output (kill, delete, update, ps), where the
/// `time=… level=error msg="…"` prefix keeps the "container … does not exist" form from
/// matching.
pub fn classify(s: &str) -> u32 {
    if s.starts_with("container") && s.ends_with("does not exist") {
        // "container <id> does not exist": ErrContainerDoesNotExist.
        hr::SYSTEM_NOT_FOUND
    } else if s.contains("container with id exists")
        || s.contains("container with given ID already exists")
    {
        // ErrContainerAlreadyExists.
        hr::SYSTEM_ALREADY_EXISTS
    } else if s.contains("invalid id format") || s.contains("invalid container ID format") {
        // ErrInvalidContainerID.
        hr::INVALID_ARG
    } else if s.contains("container") && s.contains("that is not stopped") {
        // ErrContainerNotStopped.
        hr::INVALID_STATE
    } else {
        hr::FAIL
    }
}

/// The three stdio endpoints handed to a runc create or exec.
pub struct RuncStdio {
    /// Child stdin.
    pub stdin: Stdio,
    /// Child stdout.
    pub stdout: Stdio,
    /// Child stderr.
    pub stderr: Stdio,
}

impl RuncStdio {
    /// All three on `/dev/null`.
    pub fn null() -> Self {
        RuncStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// `name` (without a `/`) resolved against `path_var` as `execvp` would: the first
/// regular file with an execute bit. `None` for a path with a `/`, no match, or a
/// relative `PATH` entry before the match (left to `execvp`, which depends on the cwd).
fn lookup(name: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.as_os_str().is_empty() || name.components().count() != 1 || name.is_absolute() {
        return None;
    }
    for dir in std::env::split_paths(path_var?) {
        if !dir.is_absolute() {
            return None;
        }
        let p = dir.join(name);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Some(p);
        }
    }
    None
}

/// The runc binary and its global options.
pub struct Runc {
    path: PathBuf,
    root: Option<PathBuf>,
    reaper: Arc<Reaper>,
}

impl Runc {
    /// runc at `path`; `root` is passed as `--root` when set (the reference passes none).
    /// A bare name is looked up in `PATH` once, here: spawning by name would try an
    /// `execve` in each `PATH` directory on every one of the three runc runs of a
    /// container. A name not found stays as it is, so spawning reports it.
    pub fn new(path: PathBuf, root: Option<PathBuf>, reaper: Arc<Reaper>) -> Self {
        let path = lookup(&path, std::env::var_os("PATH").as_deref()).unwrap_or(path);
        Runc { path, root, reaper }
    }

    /// Container `id`'s exec FIFO when the runtime is runc: under `--root`, or runc's own
    /// default for root (`/run/runc`) when none is passed.
    fn exec_fifo(&self, id: &str) -> Option<PathBuf> {
        if self.path.file_name() != Some(std::ffi::OsStr::new("runc")) {
            return None;
        }
        let root = match &self.root {
            Some(r) => r.clone(),
            None if nix::unistd::geteuid().is_root() => PathBuf::from("/run/runc"),
            None => return None,
        };
        crate::exec_fifo::path(&root, id)
    }

    fn command(&self, log: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.path);
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        if let Some(log) = log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        cmd
    }

    /// Runs a logged command whose stdio the caller chose, mapping failure to runc's error.
    fn run_logged(
        &self,
        op: &'static str,
        mut cmd: Command,
        log: &Path,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let log_start = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let child = self
            .reaper
            .spawn(&mut cmd)
            .map_err(|source| RuncError::Spawn {
                path: self.path.clone(),
                source,
            })?;
        // The child keeps its copies of the stdio fds; ours close with `cmd`.
        drop(cmd);
        let status = self.reaper.wait(child.id());
        if status.success() {
            return Ok(());
        }
        // Without an error entry the reference wraps the exit status alone: E_FAIL.
        let (message, hresult) = match last_log_error(log, log_start) {
            Some(m) => {
                let hresult = classify(&m);
                (m, hresult)
            }
            None => (format!("exit status {status:?}"), hr::FAIL),
        };
        Err(RuncError::Failed {
            op,
            message,
            hresult,
        })
    }

    /// Runs a command capturing its output; a failure reports stderr.
    fn run_output(
        &self,
        op: &'static str,
        mut cmd: Command,
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, RuncError> {
        let out = self
            .reaper
            .output(&mut cmd, input)
            .map_err(|source| RuncError::Spawn {
                path: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message =
            last_stderr_error(&stderr).unwrap_or_else(|| format!("exit status {:?}", out.status));
        // The reference classifies `CombinedOutput()`: stdout, then stderr.
        let mut combined = String::from_utf8_lossy(&out.stdout).into_owned();
        combined.push_str(&stderr);
        Err(RuncError::Failed {
            op,
            message,
            hresult: classify(&combined),
        })
    }

    /// `runc create -b <bundle> --no-pivot --pid-file <pid_file> [--console-socket] <id>`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let log = bundle.join("runc.log");
        let mut cmd = self.command(Some(&log));
        cmd.arg("create")
            .arg("-b")
            .arg(bundle)
            .arg("--no-pivot")
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        self.run_logged("create", cmd, &log, stdio)
    }

    /// Starts created container `id` (whose init is `init_pid`): as `runc start` does, in
    /// this process when [`crate::exec_fifo`] applies (runc is the runtime, the spec has no
    /// poststart hooks, which only `runc start` runs, and the exec FIFO is where runc keeps
    /// it), else `runc start <id>`.
    pub fn start(
        &self,
        id: &str,
        bundle: &Path,
        init_pid: u32,
        poststart_hooks: bool,
    ) -> Result<(), RuncError> {
        if !poststart_hooks {
            if let Some(fifo) = self.exec_fifo(id) {
                return crate::exec_fifo::start(&fifo, init_pid).map_err(|message| {
                    RuncError::Failed {
                        op: "start",
                        hresult: classify(&message),
                        message,
                    }
                });
            }
        }
        let log = bundle.join("runc.log");
        let mut cmd = self.command(Some(&log));
        cmd.arg("start").arg(id);
        self.run_logged("start", cmd, &log, RuncStdio::null())
    }

    /// `runc exec -d --process <process_json> --pid-file <pid_file> [--console-socket] <id>`.
    pub fn exec(
        &self,
        id: &str,
        bundle: &Path,
        process_json: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let log = bundle.join("runc.log");
        let mut cmd = self.command(Some(&log));
        cmd.arg("exec")
            .arg("-d")
            .arg("--process")
            .arg(process_json)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        self.run_logged("exec", cmd, &log, stdio)
    }

    /// `runc kill [--all] <id> <signum>`.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuncError> {
        let mut cmd = self.command(None);
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal.to_string());
        self.run_output("kill", cmd, None).map(drop)
    }

    /// `runc delete [--force] <id>`.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuncError> {
        let mut cmd = self.command(None);
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.run_output("delete", cmd, None).map(drop)
    }

    /// `runc ps -f json <id>`: the pids in the container, in the root pid namespace.
    pub fn ps(&self, id: &str) -> Result<Vec<u32>, RuncError> {
        let mut cmd = self.command(None);
        cmd.arg("ps").arg("-f").arg("json").arg(id);
        let out = self.run_output("ps", cmd, None)?;
        let text = String::from_utf8_lossy(&out);
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(trimmed).map_err(|e| RuncError::Output {
            op: "ps",
            message: e.to_string(),
        })
    }

    /// `runc update --resources - <id>` with the LinuxResources JSON on stdin.
    pub fn update(&self, id: &str, resources: &[u8]) -> Result<(), RuncError> {
        let mut cmd = self.command(None);
        cmd.arg("update").arg("--resources").arg("-").arg(id);
        self.run_output("update", cmd, Some(resources)).map(drop)
    }
}

/// The message of the last error-level JSON entry appended to `log` after byte `start`.
fn last_log_error(log: &Path, start: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut text = String::new();
    // Bounded: a runc log entry is small; read at most the last MiB of this call.
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    last_error_entry(&text)
}

fn last_error_entry(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("level")?.as_str()? == "error" {
            Some(v.get("msg")?.as_str()?.to_string())
        } else {
            None
        }
    })
}

/// runc without `--log-format json` prints `time=… level=error msg="…"` or plain text.
fn last_stderr_error(stderr: &str) -> Option<String> {
    if let Some(m) = last_error_entry(stderr) {
        return Some(m);
    }
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    if let Some(pos) = line.find("msg=\"") {
        let rest = &line[pos + 5..];
        return Some(rest.trim_end_matches('"').replace("\\\"", "\""));
    }
    Some(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_runtime_name_is_resolved_once_as_execvp_would() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // Not executable in a: skipped, as execvp does; executable in b.
        std::fs::write(a.join("rt"), "").unwrap();
        std::fs::write(b.join("rt"), "").unwrap();
        std::fs::set_permissions(b.join("rt"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(lookup(Path::new("rt"), Some(&path)), Some(b.join("rt")));
        assert_eq!(lookup(Path::new("missing"), Some(&path)), None);
        assert_eq!(lookup(Path::new("/usr/bin/rt"), Some(&path)), None);
        assert_eq!(lookup(Path::new("./rt"), Some(&path)), None);
        assert_eq!(lookup(Path::new("rt"), None), None);
        // A relative entry first: left to execvp.
        let rel = std::env::join_paths([Path::new("rel"), &b]).unwrap();
        assert_eq!(lookup(Path::new("rt"), Some(&rel)), None);
    }

    #[test]
    fn last_error_of_a_json_log() {
        let log = concat!(
            "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n",
            "{\"level\":\"info\",\"msg\":\"x\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"container \\\"a\\\" does not exist\",\"time\":\"t\"}\n",
        );
        let m = last_error_entry(log).unwrap();
        assert_eq!(m, "container \"a\" does not exist");
        assert_eq!(classify(&m), hr::SYSTEM_NOT_FOUND);
    }

    #[test]
    fn runc_errors_map_as_the_reference_parse_runc_error() {
        let table: &[(&str, u32)] = &[
            // ErrContainerDoesNotExist: only "container … does not exist".
            ("container \"abc\" does not exist", hr::SYSTEM_NOT_FOUND),
            ("container does not exist", hr::SYSTEM_NOT_FOUND),
            ("container abc does not exist\n", hr::FAIL),
            ("time=\"t\" level=error msg=\"container does not exist\"\n", hr::FAIL),
            ("stat /x: no such file or directory: does not exist", hr::FAIL),
            ("exec: \"sh\": executable file not found in $PATH", hr::FAIL),
            ("process not found", hr::FAIL),
            // ErrContainerAlreadyExists: the exact texts only.
            ("container with id exists: abc", hr::SYSTEM_ALREADY_EXISTS),
            ("container with given ID already exists", hr::SYSTEM_ALREADY_EXISTS),
            ("mkdir /run/x: file already exists", hr::FAIL),
            // ErrInvalidContainerID.
            ("invalid id format: ../x", hr::INVALID_ARG),
            ("invalid container ID format: ../x", hr::INVALID_ARG),
            // ErrContainerNotStopped, also inside runc's text form of stderr.
            (
                "cannot delete container abc that is not stopped: running",
                hr::INVALID_STATE,
            ),
            (
                "time=\"t\" level=error msg=\"cannot delete container abc that is not stopped: running\"\n",
                hr::INVALID_STATE,
            ),
            // Everything else is E_FAIL, including what used to be SystemAlreadyStopped.
            ("container not running", hr::FAIL),
            ("container is stopped", hr::FAIL),
            ("", hr::FAIL),
        ];
        for (text, want) in table {
            assert_eq!(classify(text), *want, "{text:?}");
        }
        let e = RuncError::Failed {
            op: "kill",
            message: "container not running".into(),
            hresult: classify("container not running"),
        };
        assert_eq!(e.hresult(), hr::FAIL);
        let spawn = RuncError::Spawn {
            path: "runc".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(spawn.hresult(), hr::FAIL);
    }

    #[test]
    fn stderr_text_form() {
        let s = "time=\"2024\" level=error msg=\"container not running\"\n";
        assert_eq!(last_stderr_error(s).unwrap(), "container not running");
    }
}
