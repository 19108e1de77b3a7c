//! Child reaping for the whole agent.
//!
//! The GCS is a child subreaper: container processes that runc leaves behind are re-parented
//! to it and must be collected with `wait4`. One thread owns `waitpid(-1)`; everybody else
//! (runc invocations, container and external processes) asks the [`Reaper`] for the status of
//! a pid instead of waiting on it directly, which would race with that thread.
//!
//! Statuses of pids nobody has asked for yet are kept (bounded) so a process that exits
//! before its spawner registers interest is not lost. Spawners call [`Reaper::spawned`] after
//! every fork so the reaper thread, idle after `ECHILD`, starts waiting again.

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How many unclaimed exit statuses are kept before the oldest are forgotten.
const MAX_UNCLAIMED: usize = 4096;

/// How a process ended, as `wait4` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    fn from_raw(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// The exit code of a container process: the status, or 128 + signal.
    pub fn container_code(self) -> u32 {
        match self {
            ExitStatus::Exited(c) => c as u32,
            ExitStatus::Signaled(s) => 128 + s as u32,
        }
    }

    /// Go's `ProcessState.ExitCode()`: the status, or -1 when signalled.
    pub fn go_exit_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(_) => -1,
        }
    }

    /// Whether the process exited with status 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

#[derive(Default)]
struct Table {
    /// Exit statuses nobody has claimed yet, with their arrival order.
    unclaimed: HashMap<u32, ExitStatus>,
    order: VecDeque<u32>,
    /// Bumped after every fork, so an idle reaper thread resumes waiting.
    generation: u64,
}

/// The agent-wide reaper. Cheap to share behind an `Arc`.
pub struct Reaper {
    table: Mutex<Table>,
    /// Signalled when a status arrives or a child is spawned.
    changed: Condvar,
}

impl Reaper {
    /// Makes this process a child subreaper and starts the reaper thread.
    pub fn start() -> Result<Arc<Self>> {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::io("prctl(PR_SET_CHILD_SUBREAPER)", e.into()))?;
        let reaper = Arc::new(Reaper {
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
        });
        let r = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || r.run())
            .map_err(|e| Error::io("spawn reaper thread", e))?;
        Ok(reaper)
    }

    fn run(&self) {
        loop {
            let gen = self
                .table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .generation;
            match rustix::process::wait(rustix::process::WaitOptions::empty()) {
                Ok(Some((pid, status))) => {
                    self.record(
                        pid.as_raw_nonzero().get() as u32,
                        ExitStatus::from_raw(status.as_raw()),
                    );
                    continue;
                }
                Err(rustix::io::Errno::INTR) => continue,
                // ECHILD: nothing to wait for until somebody forks again.
                Ok(None) | Err(_) => {}
            }
            let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
            while t.generation == gen {
                t = self.changed.wait(t).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    fn record(&self, pid: u32, status: ExitStatus) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if t.unclaimed.insert(pid, status).is_none() {
            t.order.push_back(pid);
        }
        while t.order.len() > MAX_UNCLAIMED {
            if let Some(old) = t.order.pop_front() {
                t.unclaimed.remove(&old);
            }
        }
        self.changed.notify_all();
    }

    /// Tells the reaper a child was just forked.
    pub fn spawned(&self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.generation += 1;
        self.changed.notify_all();
    }

    /// Waits until `pid` has exited, or `timeout` passes (`None` = forever).
    pub fn wait_timeout(&self, pid: u32, timeout: Option<Duration>) -> Option<ExitStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(st) = t.unclaimed.remove(&pid) {
                t.order.retain(|p| *p != pid);
                return Some(st);
            }
            match deadline {
                None => t = self.changed.wait(t).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    t = self
                        .changed
                        .wait_timeout(t, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    /// Waits until `pid` has exited.
    pub fn wait(&self, pid: u32) -> ExitStatus {
        self.wait_timeout(pid, None)
            .unwrap_or(ExitStatus::Exited(-1))
    }

    /// Spawns `cmd` and tells the reaper about it. Never call `Child::wait` on the result:
    /// use [`Reaper::wait`] with its id.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        let child = cmd.spawn();
        self.spawned();
        child
    }

    /// Runs `cmd` to completion with `input` on stdin, capturing stdout and stderr.
    pub fn output(&self, cmd: &mut Command, input: Option<&[u8]>) -> std::io::Result<Output> {
        use std::io::{Read, Write};
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = self.spawn(cmd)?;
        let pid = child.id();
        if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
            // A child that exits without reading its input is reported by its status.
            let _ = stdin.write_all(data);
        }
        let mut stderr = child.stderr.take();
        let err_thread = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut buf = Vec::new();
                if let Some(e) = stderr.as_mut() {
                    let _ = e.read_to_end(&mut buf);
                }
                buf
            })?;
        let mut stdout = Vec::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_end(&mut stdout);
        }
        let stderr = err_thread.join().unwrap_or_default();
        let status = self.wait(pid);
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// The result of [`Reaper::output`].
#[derive(Debug)]
pub struct Output {
    /// How the command ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_reference() {
        assert_eq!(ExitStatus::Exited(3).container_code(), 3);
        assert_eq!(ExitStatus::Signaled(9).container_code(), 137);
        assert_eq!(ExitStatus::Signaled(9).go_exit_code() as u32, 4294967295);
    }
}
