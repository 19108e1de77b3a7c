//! Running init's child and reaping (§5.3 steps 1, 12, 13).
//!
//! init blocks every signal for itself (PID 1 must not be stopped or killed by a stray
//! signal); its children get an empty mask, their own session and a fixed `PATH`. Every
//! zombie is reaped, since orphans are re-parented to PID 1, until the one child that
//! matters exits.

use std::os::unix::process::CommandExt;
use std::process::Command;

use super::CHILD_PATH;
use crate::error::{Error, Result};

/// Blocks all signals for the calling thread (init is single-threaded).
pub fn block_all_signals() -> Result<()> {
    // SAFETY: sigset_t is plain data, filled by sigfillset before use; sigprocmask(2) with
    // valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(Error::last_os("sigprocmask"));
        }
    }
    Ok(())
}

/// Starts `argv` in a new session with all signals unblocked. Returns its pid.
pub fn spawn(argv: &[String]) -> Result<libc::pid_t> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::Usage("nothing to run".into()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args).env("PATH", CHILD_PATH);
    // SAFETY: runs in the forked child before exec and only makes async-signal-safe calls
    // (sigemptyset, sigprocmask, setsid) on a local sigset.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("start {prog}"), e))?;
    // Reaped by `reap_until` through waitpid(-1), not through the Child.
    Ok(child.id() as libc::pid_t)
}

/// The exit code for a wait status: the status, or 128 + signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Reaps children until `child` exits; returns its exit code. If no child is left without
/// `child` having been seen (it was reaped elsewhere), returns 255.
pub fn reap_until(child: libc::pid_t) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == child {
            return exit_code(status);
        }
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            super::warn("waitpid", &e);
            return 255;
        }
    }
}
