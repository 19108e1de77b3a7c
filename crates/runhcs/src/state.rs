//! Persisted container state: `<root>/<id>/state.json`, written by `create` and the shim.
//!
//! The reference keeps this in volatile registry keys; here it is a directory per container
//! under the root (`/run/runhcs/<root>` on Linux, `%ProgramData%\runhcs\<root>` on Windows,
//! for a name; or the path itself): `state.json`, `shim.sock` (the shim's control socket;
//! on Windows a named pipe, [`pipe_name`]), `shim.log`, and `sandbox/` (the sandbox's state
//! dir).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Base of named roots (Linux).
pub const RUN_DIR: &str = "/run/runhcs";

/// Resolves `--root`: an absolute path is used as is, a name lives under [`RUN_DIR`]
/// (`%ProgramData%\runhcs` on Windows).
pub fn root_dir(root: &str) -> PathBuf {
    let p = Path::new(root);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        run_dir().join(root)
    }
}

#[cfg(not(windows))]
fn run_dir() -> PathBuf {
    PathBuf::from(RUN_DIR)
}

#[cfg(windows)]
fn run_dir() -> PathBuf {
    let data = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
    Path::new(&data).join("runhcs")
}

/// The shim's control pipe on Windows: `\\.\pipe\runhcs-<hash of the container dir>-<id>`,
/// so that containers of the same id under different roots do not collide. (The id is
/// validated: `[A-Za-z0-9_.-]`, at most 128 characters.)
pub fn pipe_name(dir: &Path, id: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and builds (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(r"\\.\pipe\runhcs-{h:016x}-{id}")
}

/// A container's status as `state` and `list` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, init not started.
    Created,
    /// Init running.
    Running,
    /// Init exited (or the shim is gone).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        })
    }
}

/// The persisted state of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Container id.
    pub id: String,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// The rootfs directory used as the container's base layer.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 (UTC).
    pub created: String,
    /// Spec annotations.
    #[serde(default)]
    pub annotations: serde_json::Map<String, serde_json::Value>,
    /// `--owner`.
    pub owner: String,
    /// Status recorded by the shim.
    pub status: Status,
    /// The shim's pid (the reference reports the shim pid as the container pid).
    pub shim_pid: u32,
    /// The init process's pid in the sandbox, once started.
    #[serde(default)]
    pub init_pid: Option<u32>,
    /// Init's exit code, once stopped.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Whether init has a terminal.
    #[serde(default)]
    pub terminal: bool,
}

/// Paths of one container.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    /// `<root>/<id>`.
    pub dir: PathBuf,
}

impl ContainerDir {
    /// The dir of `id` under `root`.
    pub fn new(root: &Path, id: &str) -> Self {
        Self { dir: root.join(id) }
    }
    /// `state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// The shim's control socket.
    #[cfg(not(windows))]
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("shim.sock")
    }
    /// The shim's control pipe ([`pipe_name`]).
    #[cfg(windows)]
    pub fn control_socket(&self) -> PathBuf {
        let id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        PathBuf::from(pipe_name(&self.dir, &id))
    }
    /// The shim's log.
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    /// The local sandbox's state dir.
    pub fn sandbox_dir(&self) -> PathBuf {
        self.dir.join("sandbox")
    }

    /// Reads the state; [`Error::NotFound`] when the container does not exist.
    pub fn read(&self, id: &str) -> Result<State> {
        let text = match std::fs::read_to_string(self.state_file()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_owned()))
            }
            Err(e) => return Err(Error::io(format!("read state of {id}"), e)),
        };
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("corrupt state of container {id}: {e}")))
    }

    /// Writes the state atomically (temp file + rename).
    pub fn write(&self, state: &State) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::Invalid(format!("encode state: {e}")))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io("write state", e))?;
        std::fs::rename(&tmp, self.state_file()).map_err(|e| Error::io("write state", e))
    }
}

#[cfg(windows)]
pub use crate::winproc::{process_alive, wait_gone};

/// True if `pid` is a live process (not a zombie).
#[cfg(not(windows))]
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the last ')' (the command may contain spaces and parens).
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Waits up to `limit` for process `pid` to end (exit or become a zombie), through a pidfd
/// that becomes readable when it does; polls every 20 ms only where pidfds are missing.
#[cfg(not(windows))]
pub fn wait_gone(pid: u32, limit: std::time::Duration) {
    if pid == 0 {
        return;
    }
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    match pidfd_open(target, PidfdFlags::empty()) {
        Ok(fd) => {
            let deadline = std::time::Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let timeout = rustix::event::Timespec::try_from(left).ok();
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                match poll(&mut fds, timeout.as_ref()) {
                    Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
                    _ => return,
                }
            }
        }
        Err(rustix::io::Errno::SRCH) => return,
        // No pidfds (an old kernel): poll /proc below.
        Err(_) => {}
    }
    let deadline = std::time::Instant::now() + limit;
    while process_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl State {
    /// The status to show: the recorded one, or `stopped` once the shim is gone.
    pub fn effective_status(&self) -> Status {
        if self.status != Status::Stopped && !process_alive(self.shim_pid) {
            Status::Stopped
        } else {
            self.status
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds (`2026-11-23T12:00:00.123456789Z`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(windows))]
    #[test]
    fn roots() {
        assert_eq!(root_dir("default"), Path::new("/run/runhcs/default"));
        assert_eq!(root_dir("/x/y"), Path::new("/x/y"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
        assert!(now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn state_round_trip_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let cd = ContainerDir::new(dir.path(), "c");
        std::fs::create_dir(&cd.dir).unwrap();
        assert!(matches!(cd.read("c"), Err(Error::NotFound(_))));
        let s = State {
            id: "c".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: Default::default(),
            owner: "runhcs".into(),
            status: Status::Running,
            shim_pid: std::process::id(),
            init_pid: Some(5),
            exit_code: None,
            terminal: false,
        };
        cd.write(&s).unwrap();
        assert_eq!(cd.read("c").unwrap(), s);
        assert_eq!(s.effective_status(), Status::Running);
        let dead = State { shim_pid: 0, ..s };
        assert_eq!(dead.effective_status(), Status::Stopped);
    }

    #[test]
    fn control_pipes_differ_by_root_and_id() {
        let a = pipe_name(Path::new(r"C:\ProgramData\runhcs\default\c1"), "c1");
        assert!(a.starts_with(r"\\.\pipe\runhcs-"), "{a}");
        assert!(a.ends_with("-c1"), "{a}");
        assert_eq!(a.len(), r"\\.\pipe\runhcs-".len() + 16 + 3);
        assert_eq!(
            a,
            pipe_name(Path::new(r"C:\ProgramData\runhcs\default\c1"), "c1"),
            "stable"
        );
        assert_ne!(
            a,
            pipe_name(Path::new(r"C:\ProgramData\runhcs\other\c1"), "c1")
        );
        // FNV-1a of the empty string is its offset basis.
        assert_eq!(
            pipe_name(Path::new(""), "x"),
            r"\\.\pipe\runhcs-cbf29ce484222325-x"
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn wait_gone_returns_when_the_process_ends() {
        use std::time::{Duration, Instant};
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let t = Instant::now();
        // Not reaped yet: a zombie counts as gone.
        wait_gone(child.id(), Duration::from_secs(20));
        assert!(!process_alive(child.id()));
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "returned before the end"
        );
        child.wait().unwrap();
        // A pid that is gone already returns at once.
        let t = Instant::now();
        wait_gone(child.id(), Duration::from_secs(20));
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}
