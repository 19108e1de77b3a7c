//! The caller's console (Windows): raw mode with virtual-terminal input while a container's
//! terminal owns it, and its size, through the metadata's kernel32 console declarations.
//! The `fd` arguments are 0 for stdin and 1 for stdout, as on Unix.

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetConsoleScreenBufferInfo, GetStdHandle, SetConsoleMode, CONSOLE_MODE,
    CONSOLE_SCREEN_BUFFER_INFO, ENABLE_ECHO_INPUT, ENABLE_LINE_INPUT, ENABLE_PROCESSED_INPUT,
    ENABLE_VIRTUAL_TERMINAL_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING, STD_INPUT_HANDLE,
    STD_OUTPUT_HANDLE,
};

fn std_handle(fd: i32) -> Option<HANDLE> {
    let which = if fd == 0 {
        STD_INPUT_HANDLE
    } else {
        STD_OUTPUT_HANDLE
    };
    // SAFETY: no preconditions; returns the process's standard handle (not owned).
    let h = unsafe { GetStdHandle(which) };
    (!h.is_null() && h != INVALID_HANDLE_VALUE).then_some(h)
}

fn mode(h: HANDLE) -> Option<CONSOLE_MODE> {
    let mut m = 0;
    // SAFETY: a standard handle and a valid out pointer; fails for non-console handles.
    (unsafe { GetConsoleMode(h, &mut m) } != 0).then_some(m)
}

/// True if `fd` (0 or 1) is a console.
pub fn is_tty(fd: i32) -> bool {
    std_handle(fd).and_then(mode).is_some()
}

/// The console window size of stdout as (columns, rows).
pub fn size(_fd: i32) -> Option<(u16, u16)> {
    let h = std_handle(1)?;
    // SAFETY: plain data that the call fills.
    let mut info: CONSOLE_SCREEN_BUFFER_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a console output handle and a valid out pointer.
    if unsafe { GetConsoleScreenBufferInfo(h, &mut info) } == 0 {
        return None;
    }
    let w = info.srWindow.Right - info.srWindow.Left + 1;
    let h = info.srWindow.Bottom - info.srWindow.Top + 1;
    (w > 0 && h > 0).then_some((w as u16, h as u16))
}

/// The console in raw, virtual-terminal mode (input as the guest's terminal expects it,
/// output escape sequences interpreted); restored when dropped.
pub struct RawMode {
    input: (HANDLE, CONSOLE_MODE),
    output: Option<(HANDLE, CONSOLE_MODE)>,
}

impl RawMode {
    /// Raw mode on the console, if stdin is one.
    pub fn enter() -> Option<Self> {
        let input = std_handle(0)?;
        let saved_in = mode(input)?;
        let raw_in = (saved_in & !(ENABLE_ECHO_INPUT | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT))
            | ENABLE_VIRTUAL_TERMINAL_INPUT;
        // SAFETY: a console input handle.
        if unsafe { SetConsoleMode(input, raw_in) } == 0 {
            return None;
        }
        let output = std_handle(1).and_then(|h| mode(h).map(|m| (h, m)));
        if let Some((h, m)) = output {
            // SAFETY: a console output handle. Failing only leaves escapes uninterpreted.
            unsafe { SetConsoleMode(h, m | ENABLE_VIRTUAL_TERMINAL_PROCESSING) };
        }
        Some(Self {
            input: (input, saved_in),
            output,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the standard console handles saved at entry, restored to their modes.
        unsafe {
            SetConsoleMode(self.input.0, self.input.1);
            if let Some((h, m)) = self.output {
                SetConsoleMode(h, m);
            }
        }
    }
}
