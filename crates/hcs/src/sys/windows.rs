//! The Win32 implementation of [`HcsApi`]: computecore.dll, loaded at run time.
//!
//! The DLL is loaded with `LoadLibraryExW(…, LOAD_LIBRARY_SEARCH_SYSTEM32)` and every export
//! is resolved with `GetProcAddress`, so a binary starts on a Windows without the Containers
//! feature and reports "HCS is not available", and an export missing on an older build fails
//! only the call that needs it, with `ERROR_PROC_NOT_FOUND` (hcs-hcn-api.md conventions, §8).
//!
//! Freeing returned strings: computecore documents that result documents (and every other
//! `PWSTR` it allocates for the caller) are released with **`LocalFree`**
//! (learn.microsoft.com, virtualization/api/hcs/reference/hcswaitforoperationresult: "The
//! caller is responsible for releasing the returned string using LocalFree"). hcsshim calls
//! `CoTaskMemFree` for both DLLs; this port follows Microsoft's documentation for
//! computecore. vmcompute.dll's exports are undocumented; its binding
//! (`vmcompute_windows.rs`, the [`crate::vmcompute::VmcomputeApi`] implementation) keeps
//! hcsshim's `CoTaskMemFree`.
//!
//! Event callbacks: the context passed to HCS is an integer key into a registry of sinks,
//! never a pointer to Rust data (§8). The trampoline catches panics so none unwinds into
//! HCS. `HcsCloseComputeSystem` / `HcsCloseProcess` drain callbacks in flight, and the sink
//! is removed from the registry only after that, without holding the registry lock during
//! the close.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::windows::io::RawHandle as StdRawHandle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::windows::named_pipe::NamedPipeClient;

use crate::api::{
    EventSink, HcsApi, OperationResult, ProcessCall, ProcessInformation, RawEvent, RawHandle,
    RawOperation, RawProcess, RawSystem, SystemCall,
};
use crate::cow::Stdio;
use crate::error::{Error, ErrorKind, Result};

type Hresult = i32;
type Pcwstr = *const u16;
type Pwstr = *mut u16;
type Hmodule = *mut c_void;
type HcsHandle = *mut c_void;

/// `HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND)`.
const HR_PROC_NOT_FOUND: Hresult = 0x8007_007F_u32 as i32;
/// `E_INVALIDARG`, for strings with an interior NUL.
const HR_INVALID_ARG: Hresult = 0x8007_0057_u32 as i32;
const LOAD_LIBRARY_SEARCH_SYSTEM32: u32 = 0x0000_0800;
/// Longest string copied out of HCS memory, in UTF-16 units (a runaway-scan guard).
const MAX_WSTR_UNITS: usize = 64 << 20;

#[link(name = "kernel32")]
extern "system" {
    fn LoadLibraryExW(name: Pcwstr, file: *mut c_void, flags: u32) -> Hmodule;
    fn GetProcAddress(module: Hmodule, name: *const u8) -> *mut c_void;
    fn LocalFree(mem: *mut c_void) -> *mut c_void;
    fn GetLastError() -> u32;
}

/// `HCS_PROCESS_INFORMATION`.
#[repr(C)]
#[derive(Clone, Copy)]
struct HcsProcessInformation {
    process_id: u32,
    reserved: u32,
    std_input: *mut c_void,
    std_output: *mut c_void,
    std_error: *mut c_void,
}

impl HcsProcessInformation {
    fn zeroed() -> Self {
        Self {
            process_id: 0,
            reserved: 0,
            std_input: std::ptr::null_mut(),
            std_output: std::ptr::null_mut(),
            std_error: std::ptr::null_mut(),
        }
    }

    fn to_api(self) -> ProcessInformation {
        ProcessInformation {
            process_id: self.process_id,
            std_input: RawHandle(self.std_input as usize),
            std_output: RawHandle(self.std_output as usize),
            std_error: RawHandle(self.std_error as usize),
        }
    }
}

/// `HCS_EVENT` (only the fields read here; `Operation` follows them).
#[repr(C)]
struct HcsEvent {
    event_type: u32,
    event_data: Pcwstr,
}

type OperationCompletion = unsafe extern "system" fn(HcsHandle, *mut c_void);
type EventCallback = unsafe extern "system" fn(*const HcsEvent, *mut c_void);

/// Declares a table of optional DLL exports (`struct $table`) and its `load(module)`.
macro_rules! exports {
    ($(#[$m:meta])* $table:ident; $( $field:ident = $name:literal : fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        $(#[$m])*
        struct $table {
            $( $field: Option<unsafe extern "system" fn($($arg),*) $(-> $ret)?>, )*
        }

        impl $table {
            fn load(module: Hmodule) -> Self {
                Self {
                    $( $field: {
                        // SAFETY: `module` is a loaded module handle and the name is a
                        // NUL-terminated ASCII string literal.
                        let p = unsafe { GetProcAddress(module, concat!($name, "\0").as_ptr()) };
                        if p.is_null() {
                            None
                        } else {
                            // SAFETY: the export has this signature (computecore.h, or
                            // hcsshim's vmcompute declarations, hcs-hcn-api.md §1.4-§1.5,
                            // §4.1, §6.1); a function pointer and a data pointer have the
                            // same size on Windows.
                            Some(unsafe {
                                std::mem::transmute::<
                                    *mut c_void,
                                    unsafe extern "system" fn($($arg),*) $(-> $ret)?,
                                >(p)
                            })
                        }
                    }, )*
                }
            }
        }
    };
}

exports! {
    /// The computecore exports, each `None` when this Windows build lacks it.
    Fns;
    create_operation = "HcsCreateOperation":
        fn(*const c_void, Option<OperationCompletion>) -> HcsHandle;
    close_operation = "HcsCloseOperation": fn(HcsHandle);
    cancel_operation = "HcsCancelOperation": fn(HcsHandle) -> Hresult;
    get_operation_result = "HcsGetOperationResult": fn(HcsHandle, *mut Pwstr) -> Hresult;
    get_operation_result_pi = "HcsGetOperationResultAndProcessInfo":
        fn(HcsHandle, *mut HcsProcessInformation, *mut Pwstr) -> Hresult;
    wait_operation_result = "HcsWaitForOperationResult":
        fn(HcsHandle, u32, *mut Pwstr) -> Hresult;
    wait_operation_result_pi = "HcsWaitForOperationResultAndProcessInfo":
        fn(HcsHandle, u32, *mut HcsProcessInformation, *mut Pwstr) -> Hresult;
    enumerate_compute_systems = "HcsEnumerateComputeSystems": fn(Pcwstr, HcsHandle) -> Hresult;
    create_compute_system = "HcsCreateComputeSystem":
        fn(Pcwstr, Pcwstr, HcsHandle, *const c_void, *mut HcsHandle) -> Hresult;
    open_compute_system = "HcsOpenComputeSystem": fn(Pcwstr, u32, *mut HcsHandle) -> Hresult;
    close_compute_system = "HcsCloseComputeSystem": fn(HcsHandle);
    start_compute_system = "HcsStartComputeSystem": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    shutdown_compute_system = "HcsShutDownComputeSystem":
        fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    terminate_compute_system = "HcsTerminateComputeSystem":
        fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    crash_compute_system = "HcsCrashComputeSystem": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    pause_compute_system = "HcsPauseComputeSystem": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    resume_compute_system = "HcsResumeComputeSystem":
        fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    save_compute_system = "HcsSaveComputeSystem": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    get_compute_system_properties = "HcsGetComputeSystemProperties":
        fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    modify_compute_system = "HcsModifyComputeSystem":
        fn(HcsHandle, HcsHandle, Pcwstr, *mut c_void) -> Hresult;
    set_compute_system_callback = "HcsSetComputeSystemCallback":
        fn(HcsHandle, u32, *const c_void, EventCallback) -> Hresult;
    create_process = "HcsCreateProcess":
        fn(HcsHandle, Pcwstr, HcsHandle, *const c_void, *mut HcsHandle) -> Hresult;
    open_process = "HcsOpenProcess": fn(HcsHandle, u32, u32, *mut HcsHandle) -> Hresult;
    close_process = "HcsCloseProcess": fn(HcsHandle);
    terminate_process = "HcsTerminateProcess": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    signal_process = "HcsSignalProcess": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    modify_process = "HcsModifyProcess": fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    get_process_properties = "HcsGetProcessProperties":
        fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult;
    get_process_info = "HcsGetProcessInfo": fn(HcsHandle, HcsHandle) -> Hresult;
    set_process_callback = "HcsSetProcessCallback":
        fn(HcsHandle, u32, *const c_void, EventCallback) -> Hresult;
    get_service_properties = "HcsGetServiceProperties": fn(Pcwstr, *mut Pwstr) -> Hresult;
    modify_service_settings = "HcsModifyServiceSettings": fn(Pcwstr, *mut Pwstr) -> Hresult;
}

/// `LoadLibraryExW(name, LOAD_LIBRARY_SEARCH_SYSTEM32)`: the module, or the Win32 error
/// (`GetLastError`) when it could not be loaded. Searching System32 only avoids DLL
/// planting.
fn load_system32(name: &str) -> std::result::Result<Hmodule, u32> {
    let name: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `name` is NUL-terminated UTF-16 and outlives the call.
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

#[path = "vmcompute_windows.rs"]
mod vmcompute;
pub use vmcompute::default_vmcompute;

/// `iphlpapi!SetCurrentThreadCompartmentId(compartmentId)`: the raw HRESULT. The DLL and
/// the export are resolved once, on first use.
pub fn set_current_thread_compartment_id(compartment_id: u32) -> Result<i32> {
    type SetCompartment = unsafe extern "system" fn(u32) -> Hresult;
    static EXPORT: OnceLock<std::result::Result<usize, String>> = OnceLock::new();
    let resolved = EXPORT.get_or_init(|| {
        let Ok(module) = load_system32("iphlpapi.dll") else {
            return Err("iphlpapi.dll could not be loaded".into());
        };
        // SAFETY: a loaded module and a NUL-terminated ASCII name.
        let p = unsafe { GetProcAddress(module, c"SetCurrentThreadCompartmentId".as_ptr().cast()) };
        if p.is_null() {
            Err("iphlpapi.dll has no SetCurrentThreadCompartmentId".into())
        } else {
            Ok(p as usize)
        }
    });
    match resolved {
        Ok(p) => {
            // SAFETY: the export has this signature (hcsshim's `//sys` declaration); the
            // address was resolved from the loaded module, which is never unloaded.
            let f = unsafe { std::mem::transmute::<usize, SetCompartment>(*p) };
            // SAFETY: takes a plain integer; affects only the calling thread.
            Ok(unsafe { f(compartment_id) })
        }
        Err(msg) => Err(Error::new(ErrorKind::NotAvailable(msg.clone()))),
    }
}

/// computecore.dll. The module stays loaded for the life of the process.
pub struct Computecore {
    fns: Fns,
    /// handle value → registry key of its event sink.
    system_keys: Mutex<HashMap<usize, usize>>,
    process_keys: Mutex<HashMap<usize, usize>>,
}

impl std::fmt::Debug for Computecore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Computecore")
    }
}

/// The shared computecore binding, loaded on first use.
pub fn default_api() -> Result<Arc<dyn HcsApi>> {
    static API: OnceLock<std::result::Result<Arc<Computecore>, String>> = OnceLock::new();
    match API.get_or_init(Computecore::load) {
        Ok(api) => Ok(api.clone()),
        Err(msg) => Err(Error::new(ErrorKind::NotAvailable(msg.clone()))),
    }
}

impl Computecore {
    fn load() -> std::result::Result<Arc<Computecore>, String> {
        let module = load_system32("computecore.dll").map_err(|code| {
            format!(
                "computecore.dll could not be loaded (Win32 error {code}); the Containers or \
                 Hyper-V feature is not installed, or this Windows is older than 1809"
            )
        })?;
        Ok(Arc::new(Computecore {
            fns: Fns::load(module),
            system_keys: Mutex::new(HashMap::new()),
            process_keys: Mutex::new(HashMap::new()),
        }))
    }
}

fn wide(s: &str) -> std::result::Result<Vec<u16>, Hresult> {
    if s.contains('\0') {
        return Err(HR_INVALID_ARG);
    }
    Ok(s.encode_utf16().chain(std::iter::once(0)).collect())
}

/// Copies a NUL-terminated UTF-16 string owned by someone else.
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string readable up to its terminator.
unsafe fn copy_wstr(p: Pcwstr) -> Option<String> {
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

/// Copies and frees (`LocalFree`, see the module docs) a string computecore allocated.
///
/// # Safety
/// `p` is null or a string computecore returned to the caller, not yet freed.
unsafe fn take_wstr(p: Pwstr) -> Option<String> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { copy_wstr(p) };
    if !p.is_null() {
        // SAFETY: computecore allocated `p` for us and documents LocalFree as its release.
        unsafe { LocalFree(p.cast()) };
    }
    s
}

fn op(o: RawOperation) -> HcsHandle {
    o.0 as HcsHandle
}

fn sys(s: RawSystem) -> HcsHandle {
    s.0 as HcsHandle
}

fn proc_(p: RawProcess) -> HcsHandle {
    p.0 as HcsHandle
}

// ---- event callbacks ----

fn sinks() -> &'static Mutex<HashMap<usize, EventSink>> {
    static SINKS: OnceLock<Mutex<HashMap<usize, EventSink>>> = OnceLock::new();
    SINKS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn register_sink(sink: EventSink) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(sinks()).insert(key, sink);
    key
}

unsafe extern "system" fn event_trampoline(event: *const HcsEvent, context: *mut c_void) {
    let key = context.addr();
    let _ = std::panic::catch_unwind(|| {
        if event.is_null() {
            return;
        }
        // SAFETY: HCS passes a valid HCS_EVENT for the duration of the callback; EventData
        // is null or a NUL-terminated string owned by HCS (copied, not freed).
        let (event_type, data) = unsafe { ((*event).event_type, copy_wstr((*event).event_data)) };
        // Clone the sink and release the lock before calling it.
        let sink = lock(sinks()).get(&key).cloned();
        if let Some(sink) = sink {
            sink(RawEvent { event_type, data });
        }
    });
}

impl Computecore {
    fn op_result(&self, o: RawOperation, timeout: Option<u32>, with_pi: bool) -> OperationResult {
        let mut doc: Pwstr = std::ptr::null_mut();
        let mut pi = HcsProcessInformation::zeroed();
        let hr = match (timeout, with_pi) {
            (None, false) => match self.fns.get_operation_result {
                // SAFETY: `o` is an open operation handle; `doc` is a valid out pointer.
                Some(f) => unsafe { f(op(o), &mut doc) },
                None => HR_PROC_NOT_FOUND,
            },
            (None, true) => match self.fns.get_operation_result_pi {
                // SAFETY: as above; `pi` is a valid out pointer.
                Some(f) => unsafe { f(op(o), &mut pi, &mut doc) },
                None => HR_PROC_NOT_FOUND,
            },
            (Some(ms), false) => match self.fns.wait_operation_result {
                // SAFETY: as above.
                Some(f) => unsafe { f(op(o), ms, &mut doc) },
                None => HR_PROC_NOT_FOUND,
            },
            (Some(ms), true) => match self.fns.wait_operation_result_pi {
                // SAFETY: as above.
                Some(f) => unsafe { f(op(o), ms, &mut pi, &mut doc) },
                None => HR_PROC_NOT_FOUND,
            },
        };
        // SAFETY: `doc` is null or a string computecore allocated for this call.
        let document = unsafe { take_wstr(doc) };
        OperationResult {
            hr,
            document,
            process_info: (with_pi && hr >= 0).then(|| pi.to_api()),
        }
    }

    fn set_callback(
        &self,
        f: Option<
            unsafe extern "system" fn(HcsHandle, u32, *const c_void, EventCallback) -> Hresult,
        >,
        handle: usize,
        options: u32,
        sink: EventSink,
        keys: &Mutex<HashMap<usize, usize>>,
    ) -> Hresult {
        let Some(f) = f else {
            return HR_PROC_NOT_FOUND;
        };
        let key = register_sink(sink);
        let context = std::ptr::without_provenance::<c_void>(key);
        // SAFETY: `handle` is an open system/process handle; the context is an integer key,
        // never dereferenced; the trampoline has the HCS_EVENT_CALLBACK signature.
        let hr = unsafe { f(handle as HcsHandle, options, context, event_trampoline) };
        if hr < 0 {
            lock(sinks()).remove(&key);
        } else {
            lock(keys).insert(handle, key);
        }
        hr
    }

    fn forget_callback(keys: &Mutex<HashMap<usize, usize>>, handle: usize) {
        let key = lock(keys).remove(&handle);
        if let Some(key) = key {
            lock(sinks()).remove(&key);
        }
    }

    /// Calls `f(handle, op, wide(doc))` for the `(handle, op, PCWSTR)` exports.
    fn handle_op_doc(
        f: Option<unsafe extern "system" fn(HcsHandle, HcsHandle, Pcwstr) -> Hresult>,
        handle: HcsHandle,
        o: RawOperation,
        doc: &str,
    ) -> Hresult {
        let Some(f) = f else {
            return HR_PROC_NOT_FOUND;
        };
        let doc = match wide(doc) {
            Ok(d) => d,
            Err(hr) => return hr,
        };
        // SAFETY: `handle` and `o` are open handles; `doc` is NUL-terminated UTF-16 that
        // outlives the call.
        unsafe { f(handle, op(o), doc.as_ptr()) }
    }
}

impl HcsApi for Computecore {
    fn create_operation(&self) -> std::result::Result<RawOperation, i32> {
        let f = self.fns.create_operation.ok_or(HR_PROC_NOT_FOUND)?;
        // SAFETY: no context and no completion callback, as hcsshim uses it.
        let h = unsafe { f(std::ptr::null(), None) };
        if h.is_null() {
            // SAFETY: reads the calling thread's last-error value.
            let code = unsafe { GetLastError() };
            return Err((0x8007_0000 | (code & 0xFFFF)) as i32);
        }
        Ok(RawOperation(h as usize))
    }

    fn close_operation(&self, o: RawOperation) {
        if let Some(f) = self.fns.close_operation {
            // SAFETY: `o` is an open operation handle, closed once by its owner.
            unsafe { f(op(o)) }
        }
    }

    fn cancel_operation(&self, o: RawOperation) -> i32 {
        match self.fns.cancel_operation {
            // SAFETY: `o` is an open operation handle.
            Some(f) => unsafe { f(op(o)) },
            None => HR_PROC_NOT_FOUND,
        }
    }

    fn get_operation_result(&self, o: RawOperation, with_process_info: bool) -> OperationResult {
        self.op_result(o, None, with_process_info)
    }

    fn wait_for_operation_result(
        &self,
        o: RawOperation,
        timeout_ms: u32,
        with_process_info: bool,
    ) -> OperationResult {
        self.op_result(o, Some(timeout_ms), with_process_info)
    }

    fn enumerate_compute_systems(&self, query: &str, o: RawOperation) -> i32 {
        let Some(f) = self.fns.enumerate_compute_systems else {
            return HR_PROC_NOT_FOUND;
        };
        let q = match wide(query) {
            Ok(q) => q,
            Err(hr) => return hr,
        };
        // SAFETY: `q` is NUL-terminated UTF-16 alive for the call; `o` is open.
        unsafe { f(q.as_ptr(), op(o)) }
    }

    fn create_compute_system(
        &self,
        id: &str,
        configuration: &str,
        o: RawOperation,
    ) -> (i32, Option<RawSystem>) {
        let Some(f) = self.fns.create_compute_system else {
            return (HR_PROC_NOT_FOUND, None);
        };
        let (id, cfg) = match (wide(id), wide(configuration)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return (HR_INVALID_ARG, None),
        };
        let mut h: HcsHandle = std::ptr::null_mut();
        // SAFETY: strings are NUL-terminated and alive for the call; NULL security
        // descriptor as hcsshim passes; `h` is a valid out pointer.
        let hr = unsafe { f(id.as_ptr(), cfg.as_ptr(), op(o), std::ptr::null(), &mut h) };
        (hr, (!h.is_null()).then_some(RawSystem(h as usize)))
    }

    fn open_compute_system(&self, id: &str, access: u32) -> std::result::Result<RawSystem, i32> {
        let f = self.fns.open_compute_system.ok_or(HR_PROC_NOT_FOUND)?;
        let id = wide(id)?;
        let mut h: HcsHandle = std::ptr::null_mut();
        // SAFETY: `id` is NUL-terminated and alive for the call; `h` is a valid out pointer.
        let hr = unsafe { f(id.as_ptr(), access, &mut h) };
        if hr < 0 || h.is_null() {
            return Err(if hr < 0 { hr } else { HR_INVALID_ARG });
        }
        Ok(RawSystem(h as usize))
    }

    fn close_compute_system(&self, system: RawSystem) {
        if let Some(f) = self.fns.close_compute_system {
            // SAFETY: `system` is open and closed once by its owner; this also drains the
            // callbacks in flight, so the sink can be dropped afterwards.
            unsafe { f(sys(system)) }
        }
        Self::forget_callback(&self.system_keys, system.0);
    }

    fn system_call(
        &self,
        call: SystemCall,
        system: RawSystem,
        o: RawOperation,
        options: &str,
    ) -> i32 {
        let f = match call {
            SystemCall::Start => self.fns.start_compute_system,
            SystemCall::Shutdown => self.fns.shutdown_compute_system,
            SystemCall::Terminate => self.fns.terminate_compute_system,
            SystemCall::Crash => self.fns.crash_compute_system,
            SystemCall::Pause => self.fns.pause_compute_system,
            SystemCall::Resume => self.fns.resume_compute_system,
            SystemCall::Save => self.fns.save_compute_system,
        };
        Self::handle_op_doc(f, sys(system), o, options)
    }

    fn get_compute_system_properties(
        &self,
        system: RawSystem,
        o: RawOperation,
        query: &str,
    ) -> i32 {
        Self::handle_op_doc(
            self.fns.get_compute_system_properties,
            sys(system),
            o,
            query,
        )
    }

    fn modify_compute_system(
        &self,
        system: RawSystem,
        o: RawOperation,
        configuration: &str,
    ) -> i32 {
        let Some(f) = self.fns.modify_compute_system else {
            return HR_PROC_NOT_FOUND;
        };
        let cfg = match wide(configuration) {
            Ok(c) => c,
            Err(hr) => return hr,
        };
        // SAFETY: handles are open; `cfg` is NUL-terminated and alive; identity NULL.
        unsafe { f(sys(system), op(o), cfg.as_ptr(), std::ptr::null_mut()) }
    }

    fn set_compute_system_callback(&self, system: RawSystem, options: u32, sink: EventSink) -> i32 {
        self.set_callback(
            self.fns.set_compute_system_callback,
            system.0,
            options,
            sink,
            &self.system_keys,
        )
    }

    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
        o: RawOperation,
    ) -> (i32, Option<RawProcess>) {
        let Some(f) = self.fns.create_process else {
            return (HR_PROC_NOT_FOUND, None);
        };
        let params = match wide(parameters) {
            Ok(p) => p,
            Err(hr) => return (hr, None),
        };
        let mut h: HcsHandle = std::ptr::null_mut();
        // SAFETY: handles are open; `params` is NUL-terminated and alive; NULL security
        // descriptor; `h` is a valid out pointer.
        let hr = unsafe {
            f(
                sys(system),
                params.as_ptr(),
                op(o),
                std::ptr::null(),
                &mut h,
            )
        };
        (hr, (!h.is_null()).then_some(RawProcess(h as usize)))
    }

    fn open_process(
        &self,
        system: RawSystem,
        pid: u32,
        access: u32,
    ) -> std::result::Result<RawProcess, i32> {
        let f = self.fns.open_process.ok_or(HR_PROC_NOT_FOUND)?;
        let mut h: HcsHandle = std::ptr::null_mut();
        // SAFETY: `system` is open; `h` is a valid out pointer.
        let hr = unsafe { f(sys(system), pid, access, &mut h) };
        if hr < 0 || h.is_null() {
            return Err(if hr < 0 { hr } else { HR_INVALID_ARG });
        }
        Ok(RawProcess(h as usize))
    }

    fn close_process(&self, process: RawProcess) {
        if let Some(f) = self.fns.close_process {
            // SAFETY: `process` is open and closed once by its owner; drains callbacks.
            unsafe { f(proc_(process)) }
        }
        Self::forget_callback(&self.process_keys, process.0);
    }

    fn get_process_info(&self, process: RawProcess, o: RawOperation) -> i32 {
        match self.fns.get_process_info {
            // SAFETY: both handles are open.
            Some(f) => unsafe { f(proc_(process), op(o)) },
            None => HR_PROC_NOT_FOUND,
        }
    }

    fn process_call(
        &self,
        call: ProcessCall,
        process: RawProcess,
        o: RawOperation,
        document: &str,
    ) -> i32 {
        let f = match call {
            ProcessCall::Terminate => self.fns.terminate_process,
            ProcessCall::Signal => self.fns.signal_process,
            ProcessCall::Modify => self.fns.modify_process,
            ProcessCall::GetProperties => self.fns.get_process_properties,
        };
        Self::handle_op_doc(f, proc_(process), o, document)
    }

    fn set_process_callback(&self, process: RawProcess, options: u32, sink: EventSink) -> i32 {
        self.set_callback(
            self.fns.set_process_callback,
            process.0,
            options,
            sink,
            &self.process_keys,
        )
    }

    fn get_service_properties(&self, query: &str) -> OperationResult {
        service_call(self.fns.get_service_properties, query)
    }

    fn modify_service_settings(&self, settings: &str) -> OperationResult {
        service_call(self.fns.modify_service_settings, settings)
    }

    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio> {
        stdio_from_info(info)
    }
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

fn service_call(
    f: Option<unsafe extern "system" fn(Pcwstr, *mut Pwstr) -> Hresult>,
    doc: &str,
) -> OperationResult {
    let Some(f) = f else {
        return OperationResult {
            hr: HR_PROC_NOT_FOUND,
            ..Default::default()
        };
    };
    let doc = match wide(doc) {
        Ok(d) => d,
        Err(hr) => {
            return OperationResult {
                hr,
                ..Default::default()
            }
        }
    };
    let mut out: Pwstr = std::ptr::null_mut();
    // SAFETY: `doc` is NUL-terminated and alive; `out` is a valid out pointer.
    let hr = unsafe { f(doc.as_ptr(), &mut out) };
    OperationResult {
        hr,
        // SAFETY: `out` is null or a string computecore allocated for this call.
        document: unsafe { take_wstr(out) },
        process_info: None,
    }
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
        // SAFETY: null is allowed and not freed.
        assert_eq!(unsafe { take_wstr(std::ptr::null_mut()) }, None);
    }

    #[test]
    fn trampoline_routes_events_by_key() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: EventSink = {
            let seen = seen.clone();
            Arc::new(move |e: RawEvent| lock(&seen).push(e))
        };
        let key = register_sink(sink);
        let data = wide(r#"{"Status":0}"#).unwrap();
        let event = HcsEvent {
            event_type: 1,
            event_data: data.as_ptr(),
        };
        // SAFETY: a valid event and an integer context, as HCS would call it.
        unsafe { event_trampoline(&event, std::ptr::without_provenance_mut(key)) };
        // Unknown keys and null events are ignored.
        // SAFETY: as above.
        unsafe { event_trampoline(&event, std::ptr::without_provenance_mut(key + 1_000_000)) };
        // SAFETY: a null event is tolerated.
        unsafe { event_trampoline(std::ptr::null(), std::ptr::without_provenance_mut(key)) };
        lock(sinks()).remove(&key);
        assert_eq!(
            *lock(&seen),
            [RawEvent {
                event_type: 1,
                data: Some(r#"{"Status":0}"#.into())
            }]
        );
    }

    #[test]
    fn panicking_sink_does_not_unwind_into_hcs() {
        let key = register_sink(Arc::new(|_| panic!("sink panics")));
        let event = HcsEvent {
            event_type: 0x0001_0000,
            event_data: std::ptr::null(),
        };
        // SAFETY: a valid event and an integer context.
        unsafe { event_trampoline(&event, std::ptr::without_provenance_mut(key)) };
        lock(sinks()).remove(&key);
    }
}
