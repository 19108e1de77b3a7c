//! The local sandbox's agent process, started without helper binaries.
//!
//! The agent is started by a thread of its own, which stays to wait for it:
//!
//! * **Isolation** as `unshare --mount --pid --fork --kill-child --mount-proc` gives it,
//!   without that extra process: the thread unshares its pid namespace for children, so the
//!   agent is pid 1 of a new pid namespace; the agent's side of the fork unshares the mount
//!   namespace, makes `/proc` private and mounts a `/proc` of its own over it before exec.
//!   Every other mount keeps the host's propagation (see `local.rs` on the private `c/`).
//!   A sandbox for a pod in the host's pid namespace (`host_pid`) gets the mount namespace
//!   only: its containers must see the host's processes, and a pid namespace cannot be left
//!   for an ancestor one.
//! * **Lifetime**: `PR_SET_PDEATHSIG` (SIGKILL) fires when the thread that forked the
//!   process ends, which is why that thread lives as long as the agent: the agent dies with
//!   the host process, never earlier.
//! * **Signals** go through a pidfd, so a recycled pid is never signalled.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

/// The host ends of the agent's stdin and stdout (`-use-inouterr`).
pub(super) type AgentPipes = (tokio::process::ChildStdin, tokio::process::ChildStdout);

type Started = io::Result<(
    u32,
    Option<OwnedFd>,
    Option<std::process::ChildStdin>,
    Option<std::process::ChildStdout>,
)>;

/// A running (or exited) agent process.
pub(super) struct Agent {
    pid: u32,
    pidfd: Option<OwnedFd>,
    /// How the agent ended (`None` while it runs), for async waiters.
    exit: watch::Receiver<Option<String>>,
    /// The same for blocking waiters (`Drop`).
    ended: Arc<(Mutex<bool>, Condvar)>,
}

impl Agent {
    /// Starts `program` with `args`, its stderr to `stderr`, its stdin and stdout piped to
    /// the returned pipes (`inouterr`) or `/dev/null`, in a new mount namespace when
    /// `isolate`, and then in a new pid namespace too unless `host_pid`; `fd3`, when given,
    /// is the child's file descriptor 3 (the caller keeps it open until this returns).
    pub(super) async fn spawn(
        program: &Path,
        args: &[OsString],
        stderr: File,
        inouterr: bool,
        isolate: bool,
        host_pid: bool,
        fd3: Option<RawFd>,
    ) -> io::Result<(Agent, Option<AgentPipes>)> {
        let own_pid_ns = isolate && !host_pid;
        let mut cmd = Command::new(program);
        cmd.args(args).stderr(Stdio::from(stderr));
        if inouterr {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, unshare, mount, setsid, dup2, fcntl) on
        // static strings and the caller's open fd.
        unsafe {
            cmd.pre_exec(move || {
                let check = |r: libc::c_int| {
                    if r == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                };
                check(libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                ))?;
                if isolate {
                    // The namespace's mounts keep the host's propagation (a container's
                    // volume with HostToContainer or Bidirectional propagation must see the
                    // host's mounts and show its own there). Its rootfs overlays stay
                    // inside as the sandbox's `c/` is a private mount point.
                    check(libc::unshare(libc::CLONE_NEWNS))?;
                }
                if own_pid_ns {
                    // A `/proc` of the new pid namespace; the host's, made private first, so
                    // that this mount never covers the host's `/proc`.
                    check(libc::mount(
                        std::ptr::null(),
                        c"/proc".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ))?;
                    check(libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ))?;
                }
                libc::setsid();
                match fd3 {
                    // dup2 onto itself keeps close-on-exec: clear it instead.
                    Some(3) => check(libc::fcntl(3, libc::F_SETFD, 0))?,
                    Some(fd) if libc::dup2(fd, 3) != 3 => return Err(io::Error::last_os_error()),
                    _ => {}
                }
                Ok(())
            });
        }

        let (started_tx, started_rx) = oneshot::channel::<Started>();
        let (exit_tx, exit) = watch::channel(None);
        let ended = Arc::new((Mutex::new(false), Condvar::new()));
        let ended_by_thread = ended.clone();
        std::thread::Builder::new()
            .name("local-sandbox-agent".into())
            .spawn(move || {
                // SAFETY: unshare(2) with one flag; it changes the pid namespace of this
                // thread's future children only, and this thread forks the agent alone.
                if own_pid_ns && unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
                    let _ = started_tx.send(Err(io::Error::last_os_error()));
                    return;
                }
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let pid = child.id();
                let started = (
                    pid,
                    pidfd_open(pid),
                    child.stdin.take(),
                    child.stdout.take(),
                );
                if started_tx.send(Ok(started)).is_err() {
                    // Nobody took the agent: it must not run on.
                    let _ = child.kill();
                }
                let how = match child.wait() {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                exit_tx.send_replace(Some(how));
                let (flag, cv) = &*ended_by_thread;
                *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cv.notify_all();
            })?;
        let (pid, pidfd, stdin, stdout) = started_rx
            .await
            .map_err(|_| io::Error::other("the agent's thread ended without starting it"))??;
        let agent = Agent {
            pid,
            pidfd,
            exit,
            ended,
        };
        let pipes = match (stdin, stdout) {
            (Some(i), Some(o)) => {
                let pipes = tokio::process::ChildStdin::from_std(i)
                    .and_then(|i| Ok((i, tokio::process::ChildStdout::from_std(o)?)));
                match pipes {
                    Ok(p) => Some(p),
                    Err(e) => {
                        agent.kill();
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        Ok((agent, pipes))
    }

    /// The agent's host pid.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGKILL (to pid 1 of its namespace when isolated: the kernel then kills every
    /// process of the namespace). Does not wait.
    pub(super) fn kill(&self) {
        use rustix::process::{kill_process, pidfd_send_signal, Pid, Signal};
        // Failures mean the agent is gone already (its exit is reaped elsewhere).
        match &self.pidfd {
            Some(fd) => {
                let _ = pidfd_send_signal(fd, Signal::KILL);
            }
            None if self.exit.borrow().is_none() => {
                // Not reaped yet (no exit): the pid is still our child's.
                if let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            None => {}
        }
    }

    /// Waits for the agent to end; returns how it ended.
    pub(super) async fn wait(&self) -> String {
        wait_watch(self.exit.clone()).await
    }

    /// A receiver of how the agent ended, for waiting without borrowing the agent.
    pub(super) fn exit_watch(&self) -> watch::Receiver<Option<String>> {
        self.exit.clone()
    }

    /// Kills the agent and waits up to `limit` for it to end. False if it did not.
    pub(super) async fn kill_and_wait(&self, limit: Duration) -> bool {
        self.kill();
        tokio::time::timeout(limit, self.wait()).await.is_ok()
    }

    /// [`Agent::kill_and_wait`] for synchronous callers.
    pub(super) fn kill_and_wait_blocking(&self, limit: Duration) -> bool {
        self.kill();
        let (flag, cv) = &*self.ended;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, limit, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Waits on an [`Agent::exit_watch`] receiver; returns how the agent ended.
pub(super) async fn wait_watch(mut rx: watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(how) = rx.borrow_and_update().clone() {
            return how;
        }
        if rx.changed().await.is_err() {
            return "the agent's thread ended".into();
        }
    }
}

/// A pidfd for `pid` (Linux 5.3+); `None` where unsupported.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw)?;
    pidfd_open(pid, PidfdFlags::empty()).ok()
}
