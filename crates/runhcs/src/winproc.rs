//! Process liveness on Windows (the shim's pid in `state.json`): a process handle opened by
//! pid, its exit code and a wait on it, through the metadata's kernel32 declarations.

use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::{STILL_ACTIVE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, WaitForSingleObject, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE,
};

fn open(pid: u32) -> Option<OwnedHandle> {
    if pid == 0 {
        return None;
    }
    // SAFETY: plain arguments; returns a new handle or null.
    let h = unsafe {
        OpenProcess(
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
            0,
            pid,
        )
    };
    // SAFETY: a non-null result is a new handle owned by nobody else.
    (!h.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(h) })
}

/// True if `pid` is a running process.
pub fn process_alive(pid: u32) -> bool {
    let Some(h) = open(pid) else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: a process handle we own and a valid out pointer.
    let ok = unsafe {
        GetExitCodeProcess(
            std::os::windows::io::AsRawHandle::as_raw_handle(&h),
            &mut code,
        )
    };
    // A process that exits with 259 (STILL_ACTIVE) looks alive: the documented caveat of
    // GetExitCodeProcess; the wait below is the exact test.
    ok != 0 && code == STILL_ACTIVE as u32 && !ended(&h, Duration::ZERO)
}

fn ended(h: &OwnedHandle, limit: Duration) -> bool {
    let ms = u32::try_from(limit.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: a process handle we own.
    let r = unsafe { WaitForSingleObject(std::os::windows::io::AsRawHandle::as_raw_handle(h), ms) };
    r == WAIT_OBJECT_0
}

/// Waits up to `limit` for process `pid` to end.
pub fn wait_gone(pid: u32, limit: Duration) {
    if let Some(h) = open(pid) {
        ended(&h, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_follows_the_process() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        let mut child = std::process::Command::new("cmd")
            .args(["/c", "exit 3"])
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_gone(pid, Duration::from_secs(60));
        // The handle `child` holds keeps the pid from being reused until waited for.
        assert!(!process_alive(pid));
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }
}
