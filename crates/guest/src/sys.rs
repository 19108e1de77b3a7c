//! Small system-call helpers shared by init and vsockexec.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2(2) writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits until everything written to stdout and stderr has left a terminal (tcdrain(3)).
///
/// PID 1's console is usually a serial port: write(2) returns once the bytes are in the
/// tty's buffer, and when init then exits the kernel panics before the port has sent them,
/// cutting the last message (the reason the VM failed) short.
pub fn drain_console() {
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: tcdrain(3) only reads the fd number; a non-terminal fd fails with ENOTTY,
        // and a closed one with EBADF, both harmless here: there is nothing to drain then.
        unsafe { libc::tcdrain(fd) };
    }
}

/// Drains the console ([`drain_console`]) and exits with `code`.
pub fn exit(code: i32) -> ! {
    drain_console();
    std::process::exit(code)
}
