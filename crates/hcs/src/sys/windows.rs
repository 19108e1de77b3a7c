//! The Win32 layer of the HCS backend, on Microsoft's own declarations.
//!
//! Every type, constant and function signature that crosses the boundary comes from the
//! Win32 metadata as the `windows-sys` crate publishes it (`Win32::System::HostComputeSystem`,
//! `Win32::System::HostCompute`, `Win32::System::LibraryLoader`, `Win32::Foundation`,
//! `Win32::System::Com`, `Win32::NetworkManagement::IpHelper`), so the compiler checks this
//! layer against Microsoft's declarations. What the metadata lacks (vmcompute.dll's v1
//! exports and two of its structs) is declared by hand in one place,
//! [`vmcompute`](vmcompute_windows.rs), with the reason.
//!
//! * **Lazy loading.** computecore.dll and vmcompute.dll are loaded on first use with
//!   `LoadLibraryExW(…, LOAD_LIBRARY_SEARCH_SYSTEM32)` and each export is resolved with
//!   `GetProcAddress`, so a binary starts on a Windows without the Containers feature and
//!   reports "HCS is not available", and an export missing on an older build fails only the
//!   call that needs it, with `ERROR_PROC_NOT_FOUND` (hcs-hcn-api.md conventions, §8).
//! * **Signatures checked at compile time.** The export tables are declared with
//!   [`checked_exports!`]: for each computecore export, the pointer type the table stores is
//!   proved equal to the metadata's declaration by coercing the metadata's function item to
//!   it inside a `const` that is evaluated by the compiler and never called, so no code
//!   refers to the import and the binary gets no load-time dependency on the DLL (CI checks
//!   the import tables of the linked Windows test binaries: `scripts/check-imports.sh`).
//! * **Layouts checked at compile time** ([`checks`](checks_windows.rs)): the size, alignment
//!   and field offsets of every struct crossing the boundary, the callback types and the
//!   numeric constants the neutral code uses, asserted in `const` items that every Windows
//!   build evaluates (x86_64 and aarch64, msvc and gnu).

use std::os::windows::io::RawHandle as StdRawHandle;

use tokio::net::windows::named_pipe::NamedPipeClient;
use windows_sys::core::{HRESULT, PCWSTR};
use windows_sys::Win32::Foundation::{GetLastError, HMODULE};
use windows_sys::Win32::System::HostComputeSystem::HCS_PROCESS_INFORMATION;
use windows_sys::Win32::System::LibraryLoader::{LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32};

use crate::api::{ProcessInformation, RawHandle};
use crate::cow::Stdio;
use crate::error::Result;

/// `HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND)`.
const HR_PROC_NOT_FOUND: HRESULT = 0x8007_007F_u32 as i32;
/// `E_INVALIDARG`, for strings with an interior NUL.
const HR_INVALID_ARG: HRESULT = 0x8007_0057_u32 as i32;
/// Longest string copied out of HCS memory, in UTF-16 units (a runaway-scan guard).
const MAX_WSTR_UNITS: usize = 64 << 20;

/// Declares a table of optional DLL exports (`struct $table`, one `Option<fn>` per export)
/// and its `load(module)`, which resolves each export by the name of its identifier.
macro_rules! export_table {
    ($(#[$m:meta])* $table:ident;
     $( $field:ident = $name:ident : fn($($arg:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        $(#[$m])*
        struct $table {
            $( $field: Option<unsafe extern "system" fn($($arg),*) $(-> $ret)?>, )*
        }

        impl $table {
            fn load(module: windows_sys::Win32::Foundation::HMODULE) -> Self {
                Self {
                    $( $field: {
                        // SAFETY: `module` is a loaded module handle and the name is a
                        // NUL-terminated ASCII string literal.
                        let p = unsafe {
                            windows_sys::Win32::System::LibraryLoader::GetProcAddress(
                                module,
                                concat!(stringify!($name), "\0").as_ptr(),
                            )
                        };
                        p.map(|p| {
                            // SAFETY: the export has this signature: for computecore it is
                            // proved equal to Microsoft's declaration at compile time
                            // (`checked_exports!`); vmcompute's are hand-declared from
                            // hcsshim (see that module). Function pointers have one size.
                            unsafe {
                                std::mem::transmute::<
                                    unsafe extern "system" fn() -> isize,
                                    unsafe extern "system" fn($($arg),*) $(-> $ret)?,
                                >(p)
                            }
                        })
                    }, )*
                }
            }
        }
    };
}

/// [`export_table!`] for exports the Win32 metadata declares in module `$metadata`: each
/// stored pointer type must equal the metadata's signature of the export of the same name.
/// The check coerces the metadata's function item to the pointer type inside a `const`
/// the compiler evaluates; nothing calls or refers to the import at run time, so the binary
/// keeps no load-time dependency on the DLL.
macro_rules! checked_exports {
    ($(#[$m:meta])* $table:ident against $metadata:ident;
     $( $field:ident = $name:ident : fn($($arg:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        export_table! {
            $(#[$m])* $table;
            $( $field = $name: fn($($arg),*) $(-> $ret)?; )*
        }
        $(
            const _: () = {
                let _declared: unsafe extern "system" fn($($arg),*) $(-> $ret)? =
                    $metadata::$name;
            };
        )*
    };
}

#[path = "checks_windows.rs"]
mod checks;
#[path = "computecore_windows.rs"]
mod computecore;
#[path = "vmcompute_windows.rs"]
mod vmcompute;

pub use computecore::{default_api, Computecore};
pub use vmcompute::default_vmcompute;

/// `LoadLibraryExW(name, LOAD_LIBRARY_SEARCH_SYSTEM32)`: the module, or the Win32 error
/// (`GetLastError`) when it could not be loaded. Searching System32 only avoids DLL
/// planting.
fn load_system32(name: &str) -> std::result::Result<HMODULE, u32> {
    let name: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `name` is NUL-terminated UTF-16 and outlives the call; no file handle.
    let module = unsafe {
        LoadLibraryExW(
            name.as_ptr(),
            std::ptr::null_mut(),
            LOAD_LIBRARY_SEARCH_SYSTEM32,
        )
    };
    if module.is_null() {
        // SAFETY: reads the calling thread's last-error value; no preconditions.
        Err(unsafe { GetLastError() })
    } else {
        Ok(module)
    }
}

/// `iphlpapi!SetCurrentThreadCompartmentId(compartmentId)`, called through the metadata's
/// declaration (iphlpapi.dll is part of every Windows). Microsoft declares the result a
/// `WIN32_ERROR`; it is returned as an HRESULT (`HRESULT_FROM_WIN32`, 0 on success) so a
/// positive Win32 error is a failure. hcsshim reads the raw value as an HRESULT, which lets
/// a positive error code pass as success.
pub fn set_current_thread_compartment_id(compartment_id: u32) -> Result<i32> {
    // SAFETY: takes a plain integer; affects only the calling thread.
    let code = unsafe {
        windows_sys::Win32::NetworkManagement::IpHelper::SetCurrentThreadCompartmentId(
            compartment_id,
        )
    };
    Ok(hresult_from_win32(code))
}

/// `HRESULT_FROM_WIN32`: 0 stays 0, values that already look like HRESULTs are kept.
fn hresult_from_win32(code: u32) -> HRESULT {
    if code as i32 <= 0 {
        code as i32
    } else {
        (0x8007_0000 | (code & 0xFFFF)) as i32
    }
}

/// `HRESULT_FROM_WIN32(GetLastError())`, for the exports that report failure by a null
/// result.
fn last_error_hresult() -> HRESULT {
    // SAFETY: reads the calling thread's last-error value; no preconditions.
    let code = unsafe { GetLastError() };
    match hresult_from_win32(code) {
        0 => HR_INVALID_ARG,
        hr => hr,
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The neutral view of an `HCS_PROCESS_INFORMATION` (both DLLs fill the same struct).
fn process_information(pi: &HCS_PROCESS_INFORMATION) -> ProcessInformation {
    ProcessInformation {
        process_id: pi.ProcessId,
        std_input: RawHandle(pi.StdInput as usize),
        std_output: RawHandle(pi.StdOutput as usize),
        std_error: RawHandle(pi.StdError as usize),
    }
}

fn wide(s: &str) -> std::result::Result<Vec<u16>, HRESULT> {
    if s.contains('\0') {
        return Err(HR_INVALID_ARG);
    }
    Ok(s.encode_utf16().chain(std::iter::once(0)).collect())
}

/// Copies a NUL-terminated UTF-16 string owned by someone else.
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string readable up to its terminator.
unsafe fn copy_wstr(p: PCWSTR) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut len = 0;
    // SAFETY: the caller guarantees the string is readable up to and including its NUL;
    // the scan stops there (or at the runaway guard).
    while len < MAX_WSTR_UNITS && unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` units before the terminator were just read.
    let units = unsafe { std::slice::from_raw_parts(p, len) };
    Some(String::from_utf16_lossy(units))
}

/// The stdio streams of a new process (both DLLs hand out the same pipe handles). Each
/// handle is owned from here on: all are wrapped at once so an early return closes the
/// ones not yet converted.
fn stdio_from_info(info: ProcessInformation) -> std::io::Result<Stdio> {
    let stdin = pipe(info.std_input);
    let stdout = pipe(info.std_output);
    let stderr = pipe(info.std_error);
    Ok(Stdio {
        stdin: stdin?.map(|p| Box::new(p) as crate::cow::StdinStream),
        stdout: stdout?.map(|p| Box::new(p) as crate::cow::OutputStream),
        stderr: stderr?.map(|p| Box::new(p) as crate::cow::OutputStream),
    })
}

/// Wraps a stdio handle HCS created (an overlapped named pipe end, as go-winio's
/// `NewOpenFile` relies on) as a tokio named pipe. Must run inside a tokio runtime.
fn pipe(h: RawHandle) -> std::io::Result<Option<NamedPipeClient>> {
    if h.is_none() {
        return Ok(None);
    }
    // SAFETY: HCS hands the caller ownership of the stdio handles of
    // HCS_PROCESS_INFORMATION; each is wrapped exactly once and closed by the wrapper.
    let pipe = unsafe { NamedPipeClient::from_raw_handle(h.0 as StdRawHandle) }?;
    Ok(Some(pipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_strings() {
        assert_eq!(wide("ab").unwrap(), [0x61, 0x62, 0]);
        assert_eq!(wide("").unwrap(), [0]);
        assert_eq!(wide("a\0b"), Err(HR_INVALID_ARG));
        let w = wide("h\u{e9}llo \u{1F600}").unwrap();
        // SAFETY: `w` is NUL-terminated UTF-16 alive for the call.
        let copied = unsafe { copy_wstr(w.as_ptr()) };
        assert_eq!(copied.as_deref(), Some("h\u{e9}llo \u{1F600}"));
        // SAFETY: null is allowed.
        assert_eq!(unsafe { copy_wstr(std::ptr::null()) }, None);
    }

    #[test]
    fn win32_errors_become_failure_hresults() {
        assert_eq!(hresult_from_win32(0), 0);
        assert_eq!(hresult_from_win32(87), 0x8007_0057_u32 as i32);
        assert_eq!(hresult_from_win32(0x8007_0005), 0x8007_0005_u32 as i32);
    }
}
