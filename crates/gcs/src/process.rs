//! One tracked process (container init, exec'd process or external process) and its exit.
//!
//! Each process has its own lock. The exit code is published once; waiters block on a
//! condition variable (with an optional timeout). The record may be dropped only after the
//! process exited **and** one waiter received the code (spec §4 "Waiter accounting"); the
//! container-exit notification for an init process waits until that waiter's response has
//! been sent.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{hr, Error, Result};
use crate::stdio::{ProcessIo, Relays};

/// What a process is to the GCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// The init process created by `runc create`.
    Init,
    /// A process added with `runc exec`.
    Exec,
    /// A process run directly in the utility VM (null container id).
    External,
}

#[derive(Default)]
struct State {
    exit_code: Option<u32>,
    /// At least one WaitForProcess has returned the exit code.
    waited: bool,
    /// At least one WaitForProcess response with the exit code has been sent.
    answered: bool,
    /// Process-side stdio not yet attached to the host (init before its start).
    io: Option<ProcessIo>,
    /// The pty master, for ResizeConsole.
    tty: Option<Arc<OwnedFd>>,
    relays: Option<Relays>,
}

/// A tracked process.
pub struct Process {
    pid: u32,
    kind: ProcessKind,
    state: Mutex<State>,
    changed: Condvar,
}

impl Process {
    /// A new running process.
    pub fn new(pid: u32, kind: ProcessKind) -> Arc<Self> {
        Arc::new(Process {
            pid,
            kind,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pid in the GCS's pid namespace.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The kind of process.
    pub fn kind(&self) -> ProcessKind {
        self.kind
    }

    /// Keeps the process-side stdio until the host's connections arrive.
    pub fn set_pending_io(&self, io: ProcessIo) {
        let mut s = self.lock();
        if let ProcessIo::Tty(m) = &io {
            s.tty = Some(Arc::clone(m));
        }
        s.io = Some(io);
    }

    /// Takes the pending process-side stdio (once).
    pub fn take_pending_io(&self) -> Option<ProcessIo> {
        self.lock().io.take()
    }

    /// Records the pty master of a process.
    pub fn set_tty(&self, master: Arc<OwnedFd>) {
        self.lock().tty = Some(master);
    }

    /// Records the relays so exit handling can close stdin and wait for output.
    pub fn set_relays(&self, relays: Relays) {
        self.lock().relays = Some(relays);
    }

    /// Called by the exit path: unblocks stdin, waits for output relays to drain, then
    /// publishes the exit code and wakes the waiters.
    pub fn finish(&self, exit_code: u32) {
        let drain = {
            let mut s = self.lock();
            // Pipes never attached to the host are closed now.
            s.io = None;
            match s.relays.as_mut() {
                Some(r) => {
                    r.close_stdin();
                    Some(Arc::clone(&r.drain))
                }
                None => None,
            }
        };
        if let Some(d) = drain {
            d.wait();
        }
        let mut s = self.lock();
        s.exit_code = Some(exit_code);
        if let Some(r) = s.relays.as_mut() {
            r.detach();
        }
        s.tty = None;
        self.changed.notify_all();
    }

    /// The exit code, if the process has exited.
    pub fn exit_code(&self) -> Option<u32> {
        self.lock().exit_code
    }

    /// WaitForProcess: blocks until exit (`None` timeout = forever). Timeout gives
    /// `VmcomputeTimeout`. A successful wait marks the process as waited.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<u32> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut s = self.lock();
        loop {
            if let Some(code) = s.exit_code {
                s.waited = true;
                self.changed.notify_all();
                return Ok(code);
            }
            s = match deadline {
                None => self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Hresult(hr::VMCOMPUTE_TIMEOUT));
                    }
                    self.changed
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Records that a WaitForProcess response with the exit code was sent: this is what
    /// releases an init process's container exit notification ([`Process::wait_answered`]),
    /// which therefore follows the response on the wire (spec §10).
    pub fn mark_answered(&self) {
        let mut s = self.lock();
        if s.exit_code.is_some() {
            s.answered = true;
            self.changed.notify_all();
        }
    }

    /// Blocks until the process has exited and one waiter's response with its code was sent.
    pub fn wait_answered(&self) {
        let mut s = self.lock();
        while !(s.exit_code.is_some() && s.answered) {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether the record can be dropped (exited and waited).
    pub fn is_done(&self) -> bool {
        let s = self.lock();
        s.exit_code.is_some() && s.waited
    }

    /// SignalProcess: `kill(pid, sig)`. A gone process is `ErrNotFound`.
    pub fn signal(&self, signal: i32) -> Result<()> {
        if self.exit_code().is_some() {
            return Err(Error::Hresult(hr::NOT_FOUND));
        }
        // SAFETY: kill takes plain integers.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(Error::Hresult(hr::NOT_FOUND));
            }
            return Err(Error::io(format!("kill({}, {signal})", self.pid), e));
        }
        Ok(())
    }

    /// ResizeConsole: errors if the process has no tty.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let tty = self.lock().tty.clone();
        match tty {
            Some(m) => crate::stdio::resize(&m, rows, cols),
            None => Err(Error::Invalid(format!(
                "pid: {}, is not a tty and cannot be resized",
                self.pid
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times_out_then_sees_exit() {
        let p = Process::new(1, ProcessKind::Exec);
        let e = p.wait(Some(Duration::from_millis(1))).unwrap_err();
        assert_eq!(e.hresult(), hr::VMCOMPUTE_TIMEOUT);
        assert!(!p.is_done());
        let p2 = Arc::clone(&p);
        let t = std::thread::spawn(move || p2.wait(None).unwrap());
        p.finish(137);
        assert_eq!(t.join().unwrap(), 137);
        assert!(p.is_done());
        p.mark_answered();
        p.wait_answered();
    }

    #[test]
    fn the_exit_is_released_only_once_a_wait_response_is_sent() {
        let p = Process::new(1, ProcessKind::Init);
        p.mark_answered();
        p.finish(0);
        assert_eq!(p.wait(None).unwrap(), 0);
        // Waited (the record may go), but the exit notification must not go out yet.
        assert!(p.is_done());
        let p2 = Arc::clone(&p);
        let gate = std::thread::spawn(move || p2.wait_answered());
        std::thread::sleep(Duration::from_millis(50));
        assert!(!gate.is_finished(), "released before the response was sent");
        p.mark_answered();
        gate.join().unwrap();
    }

    #[test]
    fn resize_without_tty_is_an_error() {
        let p = Process::new(1, ProcessKind::Exec);
        assert!(p.resize(10, 10).is_err());
    }
}
