//! Process privileges (go-winio's `EnableProcessPrivileges`).

use std::io;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_NOT_ALL_ASSIGNED, HANDLE, LUID,
};
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::wide;
use crate::error::{Error, Result};

pub use crate::privilege::SE_SECURITY_NAME;

fn adjust_privileges(names: &[&str], enable: bool) -> Result<()> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of the current process needs no closing; `token` is a valid
    // out pointer.
    let ok = unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    };
    if ok == 0 {
        return Err(Error::Unsupported(format!(
            "OpenProcessToken: {}",
            io::Error::last_os_error()
        )));
    }
    let result = (|| {
        for name in names {
            let w = wide(name);
            let mut luid = LUID::default();
            // SAFETY: `w` is NUL-terminated; `luid` is a valid out pointer.
            if unsafe { LookupPrivilegeValueW(std::ptr::null(), w.as_ptr(), &mut luid) } == 0 {
                return Err(Error::Unsupported(format!(
                    "LookupPrivilegeValue({name}): {}",
                    io::Error::last_os_error()
                )));
            }
            let tp = TOKEN_PRIVILEGES {
                PrivilegeCount: 1,
                Privileges: [LUID_AND_ATTRIBUTES {
                    Luid: luid,
                    Attributes: if enable { SE_PRIVILEGE_ENABLED } else { 0 },
                }],
            };
            // SAFETY: `token` was opened with TOKEN_ADJUST_PRIVILEGES; `tp` outlives the call;
            // no previous state is asked for.
            let ok = unsafe {
                AdjustTokenPrivileges(token, 0, &tp, 0, std::ptr::null_mut(), std::ptr::null_mut())
            };
            // SAFETY: reads the calling thread's last error, set by the call just made.
            let last = unsafe { GetLastError() };
            if ok == 0 || last == ERROR_NOT_ALL_ASSIGNED {
                return Err(Error::Unsupported(format!(
                    "the process does not hold {name} (run as an administrator)"
                )));
            }
        }
        Ok(())
    })();
    // SAFETY: `token` was opened above and is closed once.
    unsafe { CloseHandle(token) };
    result
}

/// Privileges enabled for the process while the guard lives.
#[derive(Debug)]
pub struct PrivilegeGuard {
    names: Vec<&'static str>,
}

impl PrivilegeGuard {
    /// Enables `names` for the whole process.
    pub fn enable(names: &[&'static str]) -> Result<Self> {
        adjust_privileges(names, true)?;
        Ok(Self {
            names: names.to_vec(),
        })
    }
}

impl Drop for PrivilegeGuard {
    fn drop(&mut self) {
        if let Err(e) = adjust_privileges(&self.names, false) {
            tracing::warn!("disabling privileges {:?}: {e}", self.names);
        }
    }
}

/// Enables `names` for the rest of the process's life (the CLI does this once).
pub fn enable_process_privileges(names: &[&str]) -> Result<()> {
    adjust_privileges(names, true)
}
