//! The Win32 calls of the crate, typed from `windows-sys`. Each is a thin wrapper that owns
//! its handles and buffers; every decision lives in the OS-neutral code above.
//!
//! * [`ntfs`]: the layer file system on NTFS (`BackupRead`/`BackupWrite`, basic info, links);
//! * [`privilege`]: enabling process privileges;
//! * [`streaming`]: the optional streaming layer exports of vmcompute.dll;
//! * [`volume`]: empty registry hives (offreg.dll) and scratch volume growth (virtdisk).

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;

use windows_sys::Win32::Foundation::{LocalFree, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::PSECURITY_DESCRIPTOR;

use crate::error::{Error, Result};

/// A NUL-terminated UTF-16 copy of `s`.
pub(crate) fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain([0]).collect()
}

/// Converts SDDL to a self-relative security descriptor
/// (`ConvertStringSecurityDescriptorToSecurityDescriptorW`).
pub fn sddl_to_security_descriptor(sddl: &str) -> Result<Vec<u8>> {
    let w = wide(sddl);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `w` is NUL-terminated and outlives the call; `sd` and `len` are valid out
    // pointers.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(Error::Unsupported(format!(
            "SDDL {sddl:?} cannot be converted: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: on success `sd` points at `len` bytes the call allocated with LocalAlloc.
    let bytes = unsafe { std::slice::from_raw_parts(sd as *const u8, len as usize) }.to_vec();
    // SAFETY: `sd` came from LocalAlloc inside the call and is freed once.
    unsafe { LocalFree(sd as HLOCAL) };
    Ok(bytes)
}

mod ntfs;
mod privilege;
mod streaming;
mod volume;

pub use ntfs::NtfsFs;
pub use privilege::{enable_process_privileges, PrivilegeGuard, SE_SECURITY_NAME};
pub use streaming::streaming_exports;
pub use volume::{create_empty_hive, grow_scratch_volume};
