//! The caller's terminal: raw mode while a container owns it, and its size.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Calls `f` with standard fd `fd` (0, 1; anything else is stderr).
fn with_std<T>(fd: i32, f: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
    match fd {
        0 => f(std::io::stdin().as_fd()),
        1 => f(std::io::stdout().as_fd()),
        _ => f(std::io::stderr().as_fd()),
    }
}

/// True if standard fd `fd` is a terminal.
pub fn is_tty(fd: i32) -> bool {
    with_std(fd, |f| rustix::termios::isatty(f))
}

/// The terminal size of standard fd `fd` as (columns, rows).
pub fn size(fd: i32) -> Option<(u16, u16)> {
    let ws = with_std(fd, |f| rustix::termios::tcgetwinsize(f)).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Puts stdin's terminal in raw mode; restores it when dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on fd 0, if it is a terminal.
    pub fn enter() -> Option<Self> {
        if !is_tty(0) {
            return None;
        }
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing to report to: the terminal is left as the process leaves it.
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
