//! Starting a created runc container without a `runc start` process.
//!
//! `runc create` leaves the container's init blocked opening `exec.fifo` in the container's
//! state dir (`<root>/<id>/exec.fifo`) for writing; once a reader opens it, the init writes
//! one byte and execs the container's process. `runc start` is that reader: it reads the
//! byte, runs the poststart hooks and removes the FIFO (runc tells created from running by
//! the FIFO's existence). Spawning runc for that costs a Go process start, several
//! milliseconds and a third of the runc runs of a container's life, so [`start`] does the
//! same read itself; [`crate::runc::Runc::start`] falls back to `runc start` whenever this
//! does not apply (poststart hooks, another runtime, no FIFO where runc keeps it).

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// runc's name for the FIFO in a container's state dir.
const EXEC_FIFO: &str = "exec.fifo";

/// How often the wait for the init checks that the init is still alive (runc: 100 ms).
const ALIVE_CHECK_MS: u16 = 100;

/// The exec FIFO of container `id` under runc state root `root`, if it is there.
pub fn path(root: &Path, id: &str) -> Option<PathBuf> {
    let p = root.join(id).join(EXEC_FIFO);
    std::fs::symlink_metadata(&p)
        .ok()
        .filter(|m| m.file_type().is_fifo())
        .map(|_| p)
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold any byte.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Releases the init of a created container waiting on `fifo` (whose init is `init_pid`),
/// as `runc start` does: reads its byte, then removes the FIFO. Fails with runc's words
/// when the init died before it could be started.
pub fn start(fifo: &Path, init_pid: u32) -> Result<(), String> {
    // Non-blocking: opening for reading must not hang on an init that is gone (which will
    // never open its end); it still lets the init's blocking open for writing proceed.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(|e| format!("open {}: {e}", fifo.display()))?;
    let mut buf = [0u8; 16];
    let mut read_once = |f: &mut std::fs::File| -> Result<Option<usize>, String> {
        match f.read(&mut buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(format!("read {}: {e}", fifo.display())),
        }
    };
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let ready = match nix::poll::poll(&mut fds, PollTimeout::from(ALIVE_CHECK_MS)) {
            Ok(n) => n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll {}: {e}", fifo.display())),
        };
        if ready {
            match read_once(&mut f)? {
                Some(n) if n > 0 => break,
                // The init opened its end and closed it without writing: it died.
                Some(_) => return Err("container process is already dead".into()),
                None => continue,
            }
        }
        if !alive(init_pid) {
            // It may have written, exec'd and exited between two checks.
            match read_once(&mut f)? {
                Some(n) if n > 0 => break,
                _ => return Err("container process is already dead".into()),
            }
        }
    }
    std::fs::remove_file(fifo).map_err(|e| format!("remove {}: {e}", fifo.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fifo_in(dir: &Path) -> PathBuf {
        let p = dir.join("c1").join(EXEC_FIFO);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    }

    #[test]
    fn a_waiting_writer_is_released_and_the_fifo_removed() {
        let d = tempfile::tempdir().unwrap();
        let fifo = fifo_in(d.path());
        assert_eq!(path(d.path(), "c1"), Some(fifo.clone()));
        assert_eq!(path(d.path(), "c2"), None);
        // The writer plays runc's init: a blocking open, one byte.
        let w = fifo.clone();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&w).unwrap();
            f.write_all(b"0").unwrap();
        });
        start(&fifo, std::process::id()).unwrap();
        writer.join().unwrap();
        assert!(!fifo.exists());
        assert_eq!(path(d.path(), "c1"), None);
    }

    #[test]
    fn a_dead_init_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let fifo = fifo_in(d.path());
        // A pid that is not running (the child has been reaped).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let e = start(&fifo, pid).unwrap_err();
        assert!(e.contains("already dead"), "{e}");
        // A regular file is not runc's FIFO.
        std::fs::remove_file(&fifo).unwrap();
        std::fs::write(&fifo, "").unwrap();
        assert_eq!(path(d.path(), "c1"), None);
    }
}
