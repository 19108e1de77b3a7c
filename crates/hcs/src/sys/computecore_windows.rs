//! The Win32 implementation of [`HcsApi`]: computecore.dll, loaded on first use, its
//! exports typed by Microsoft's metadata (`Win32::System::HostComputeSystem`).
//!
//! Freeing returned strings: computecore documents that result documents (and every other
//! `PWSTR` it allocates for the caller) are released with **`LocalFree`**
//! (learn.microsoft.com, virtualization/api/hcs/reference/hcswaitforoperationresult: "The
//! caller is responsible for releasing the returned string using LocalFree"). hcsshim calls
//! `CoTaskMemFree` for both DLLs; this port follows Microsoft's documentation for
//! computecore. vmcompute.dll's exports are undocumented; its binding keeps hcsshim's
//! `CoTaskMemFree`.
//!
//! Event callbacks: the context passed to HCS is an integer key into a registry of sinks,
//! never a pointer to Rust data (§8). The trampoline catches panics so none unwinds into
//! HCS. `HcsCloseComputeSystem` / `HcsCloseProcess` drain callbacks in flight, and the sink
//! is removed from the registry only after that, without holding the registry lock during
//! the close.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use windows_sys::core::{HRESULT, PCWSTR, PWSTR};
use windows_sys::Win32::Foundation::{LocalFree, HANDLE};
use windows_sys::Win32::Security::SECURITY_DESCRIPTOR;
use windows_sys::Win32::System::HostComputeSystem as metadata;
use windows_sys::Win32::System::HostComputeSystem::{
    HCS_EVENT, HCS_EVENT_CALLBACK, HCS_EVENT_OPTIONS, HCS_OPERATION, HCS_OPERATION_COMPLETION,
    HCS_PROCESS, HCS_PROCESS_INFORMATION, HCS_SYSTEM,
};

use super::{
    copy_wstr, last_error_hresult, load_system32, lock, process_information, stdio_from_info, wide,
    HR_INVALID_ARG, HR_PROC_NOT_FOUND,
};
use crate::api::{
    EventSink, HcsApi, OperationResult, ProcessCall, ProcessInformation, RawEvent, RawOperation,
    RawProcess, RawSystem, SystemCall,
};
use crate::cow::Stdio;
use crate::error::{Error, ErrorKind, Result};

checked_exports! {
    /// The computecore exports, each `None` when this Windows build lacks it. Every pointer
    /// type is checked against `Win32::System::HostComputeSystem` at compile time.
    Fns against metadata;
    create_operation = HcsCreateOperation:
        fn(*const c_void, HCS_OPERATION_COMPLETION) -> HCS_OPERATION;
    close_operation = HcsCloseOperation: fn(HCS_OPERATION);
    cancel_operation = HcsCancelOperation: fn(HCS_OPERATION) -> HRESULT;
    get_operation_result = HcsGetOperationResult: fn(HCS_OPERATION, *mut PWSTR) -> HRESULT;
    get_operation_result_pi = HcsGetOperationResultAndProcessInfo:
        fn(HCS_OPERATION, *mut HCS_PROCESS_INFORMATION, *mut PWSTR) -> HRESULT;
    wait_operation_result = HcsWaitForOperationResult:
        fn(HCS_OPERATION, u32, *mut PWSTR) -> HRESULT;
    wait_operation_result_pi = HcsWaitForOperationResultAndProcessInfo:
        fn(HCS_OPERATION, u32, *mut HCS_PROCESS_INFORMATION, *mut PWSTR) -> HRESULT;
    enumerate_compute_systems = HcsEnumerateComputeSystems:
        fn(PCWSTR, HCS_OPERATION) -> HRESULT;
    create_compute_system = HcsCreateComputeSystem:
        fn(PCWSTR, PCWSTR, HCS_OPERATION, *const SECURITY_DESCRIPTOR, *mut HCS_SYSTEM) -> HRESULT;
    open_compute_system = HcsOpenComputeSystem: fn(PCWSTR, u32, *mut HCS_SYSTEM) -> HRESULT;
    close_compute_system = HcsCloseComputeSystem: fn(HCS_SYSTEM);
    start_compute_system = HcsStartComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    shutdown_compute_system = HcsShutDownComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    terminate_compute_system = HcsTerminateComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    crash_compute_system = HcsCrashComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    pause_compute_system = HcsPauseComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    resume_compute_system = HcsResumeComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    save_compute_system = HcsSaveComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    get_compute_system_properties = HcsGetComputeSystemProperties:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR) -> HRESULT;
    modify_compute_system = HcsModifyComputeSystem:
        fn(HCS_SYSTEM, HCS_OPERATION, PCWSTR, HANDLE) -> HRESULT;
    set_compute_system_callback = HcsSetComputeSystemCallback:
        fn(HCS_SYSTEM, HCS_EVENT_OPTIONS, *const c_void, HCS_EVENT_CALLBACK) -> HRESULT;
    create_process = HcsCreateProcess:
        fn(HCS_SYSTEM, PCWSTR, HCS_OPERATION, *const SECURITY_DESCRIPTOR, *mut HCS_PROCESS)
            -> HRESULT;
    open_process = HcsOpenProcess: fn(HCS_SYSTEM, u32, u32, *mut HCS_PROCESS) -> HRESULT;
    close_process = HcsCloseProcess: fn(HCS_PROCESS);
    terminate_process = HcsTerminateProcess: fn(HCS_PROCESS, HCS_OPERATION, PCWSTR) -> HRESULT;
    signal_process = HcsSignalProcess: fn(HCS_PROCESS, HCS_OPERATION, PCWSTR) -> HRESULT;
    modify_process = HcsModifyProcess: fn(HCS_PROCESS, HCS_OPERATION, PCWSTR) -> HRESULT;
    get_process_properties = HcsGetProcessProperties:
        fn(HCS_PROCESS, HCS_OPERATION, PCWSTR) -> HRESULT;
    get_process_info = HcsGetProcessInfo: fn(HCS_PROCESS, HCS_OPERATION) -> HRESULT;
    set_process_callback = HcsSetProcessCallback:
        fn(HCS_PROCESS, HCS_EVENT_OPTIONS, *const c_void, HCS_EVENT_CALLBACK) -> HRESULT;
    get_service_properties = HcsGetServiceProperties: fn(PCWSTR, *mut PWSTR) -> HRESULT;
    modify_service_settings = HcsModifyServiceSettings: fn(PCWSTR, *mut PWSTR) -> HRESULT;
}

/// The `(handle, operation, document)` exports share this type.
type HandleOpDoc<H> = unsafe extern "system" fn(H, HCS_OPERATION, PCWSTR) -> HRESULT;
/// `HcsSet{ComputeSystem,Process}Callback`.
type SetCallback<H> =
    unsafe extern "system" fn(H, HCS_EVENT_OPTIONS, *const c_void, HCS_EVENT_CALLBACK) -> HRESULT;

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

/// Copies and frees (`LocalFree`, see the module docs) a string computecore allocated.
///
/// # Safety
/// `p` is null or a string computecore returned to the caller, not yet freed.
unsafe fn take_wstr(p: PWSTR) -> Option<String> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { copy_wstr(p) };
    if !p.is_null() {
        // SAFETY: computecore allocated `p` for us and documents LocalFree as its release.
        // LocalFree returns NULL on success; on failure nothing more can be done with it.
        unsafe { LocalFree(p.cast()) };
    }
    s
}

fn op(o: RawOperation) -> HCS_OPERATION {
    o.0 as HCS_OPERATION
}

fn sys(s: RawSystem) -> HCS_SYSTEM {
    s.0 as HCS_SYSTEM
}

fn proc_(p: RawProcess) -> HCS_PROCESS {
    p.0 as HCS_PROCESS
}

// ---- event callbacks ----

fn sinks() -> &'static Mutex<HashMap<usize, EventSink>> {
    static SINKS: OnceLock<Mutex<HashMap<usize, EventSink>>> = OnceLock::new();
    SINKS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn register_sink(sink: EventSink) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(sinks()).insert(key, sink);
    key
}

/// The `HCS_EVENT_CALLBACK` registered for every handle (its type is checked against the
/// metadata in `checks`).
pub(super) unsafe extern "system" fn event_trampoline(
    event: *const HCS_EVENT,
    context: *const c_void,
) {
    // SAFETY: forwarded: HCS calls this with a valid event (or null) and our context.
    unsafe { deliver_event(event, context) };
}

/// Delivers one event to the sink registered under `context`; true when a sink took it.
/// A panicking sink is caught here (it must not unwind into HCS) and counts as delivered.
///
/// # Safety
/// `event` is null or a valid `HCS_EVENT` for the duration of the call.
unsafe fn deliver_event(event: *const HCS_EVENT, context: *const c_void) -> bool {
    let key = context.addr();
    if event.is_null() {
        return false;
    }
    // SAFETY: HCS passes a valid HCS_EVENT for the duration of the callback; EventData is
    // null or a NUL-terminated string owned by HCS (copied, not freed).
    let (event_type, data) = unsafe { ((*event).Type as u32, copy_wstr((*event).EventData)) };
    // Clone the sink and release the lock before calling it.
    let Some(sink) = lock(sinks()).get(&key).cloned() else {
        return false;
    };
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink(RawEvent { event_type, data });
    }));
    if delivered.is_err() {
        tracing::error!(
            event_type,
            "an HCS event sink panicked; the panic was contained"
        );
    }
    true
}

impl Computecore {
    fn op_result(&self, o: RawOperation, timeout: Option<u32>, with_pi: bool) -> OperationResult {
        let mut doc: PWSTR = std::ptr::null_mut();
        let mut pi = HCS_PROCESS_INFORMATION::default();
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
            process_info: (with_pi && hr >= 0).then(|| process_information(&pi)),
        }
    }

    fn set_callback<H>(
        f: Option<SetCallback<H>>,
        handle: H,
        key_of: usize,
        options: u32,
        sink: EventSink,
        keys: &Mutex<HashMap<usize, usize>>,
    ) -> HRESULT {
        let Some(f) = f else {
            return HR_PROC_NOT_FOUND;
        };
        let key = register_sink(sink);
        let context = std::ptr::without_provenance::<c_void>(key);
        // HCS_EVENT_OPTIONS is a small flag set; the bits are passed as they are.
        let options = options as HCS_EVENT_OPTIONS;
        // SAFETY: `handle` is an open system/process handle; the context is an integer key,
        // never dereferenced; the trampoline has the HCS_EVENT_CALLBACK signature.
        let hr = unsafe { f(handle, options, context, Some(event_trampoline)) };
        if hr < 0 {
            lock(sinks()).remove(&key);
        } else {
            lock(keys).insert(key_of, key);
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
    fn handle_op_doc<H>(
        f: Option<HandleOpDoc<H>>,
        handle: H,
        o: RawOperation,
        doc: &str,
    ) -> HRESULT {
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
            return Err(last_error_hresult());
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
        let mut h: HCS_SYSTEM = std::ptr::null_mut();
        // SAFETY: strings are NUL-terminated and alive for the call; NULL security
        // descriptor as hcsshim passes; `h` is a valid out pointer.
        let hr = unsafe { f(id.as_ptr(), cfg.as_ptr(), op(o), std::ptr::null(), &mut h) };
        (hr, (!h.is_null()).then_some(RawSystem(h as usize)))
    }

    fn open_compute_system(&self, id: &str, access: u32) -> std::result::Result<RawSystem, i32> {
        let f = self.fns.open_compute_system.ok_or(HR_PROC_NOT_FOUND)?;
        let id = wide(id)?;
        let mut h: HCS_SYSTEM = std::ptr::null_mut();
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
        Self::set_callback(
            self.fns.set_compute_system_callback,
            sys(system),
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
        let mut h: HCS_PROCESS = std::ptr::null_mut();
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
        let mut h: HCS_PROCESS = std::ptr::null_mut();
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
        Self::set_callback(
            self.fns.set_process_callback,
            proc_(process),
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

fn service_call(
    f: Option<unsafe extern "system" fn(PCWSTR, *mut PWSTR) -> HRESULT>,
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
    let mut out: PWSTR = std::ptr::null_mut();
    // SAFETY: `doc` is NUL-terminated and alive; `out` is a valid out pointer.
    let hr = unsafe { f(doc.as_ptr(), &mut out) };
    OperationResult {
        hr,
        // SAFETY: `out` is null or a string computecore allocated for this call.
        document: unsafe { take_wstr(out) },
        process_info: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: i32, data: PCWSTR) -> HCS_EVENT {
        HCS_EVENT {
            Type: event_type,
            EventData: data,
            Operation: std::ptr::null_mut(),
        }
    }

    #[test]
    fn freeing_null_is_a_no_op() {
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
        let exited = event(1, data.as_ptr());
        // SAFETY: a valid event and an integer context, as HCS would call it.
        unsafe { event_trampoline(&exited, std::ptr::without_provenance(key)) };
        // Unknown keys and null events are ignored.
        // SAFETY: as above.
        let unknown =
            unsafe { deliver_event(&exited, std::ptr::without_provenance(key + 1_000_000)) };
        // SAFETY: a null event is tolerated.
        let null = unsafe { deliver_event(std::ptr::null(), std::ptr::without_provenance(key)) };
        lock(sinks()).remove(&key);
        assert!(!unknown && !null);
        assert_eq!(
            *lock(&seen),
            [RawEvent {
                event_type: 1,
                data: Some(r#"{"Status":0}"#.into())
            }]
        );
    }

    #[test]
    fn panicking_sink_is_contained_and_the_next_event_still_arrives() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink: EventSink = {
            let calls = calls.clone();
            Arc::new(move |e: RawEvent| {
                lock(&calls).push(e.event_type);
                if e.event_type == 0x0001_0000 {
                    panic!("sink panics");
                }
            })
        };
        let key = register_sink(sink);
        let context = std::ptr::without_provenance(key);
        // The panic must be caught inside the trampoline: were it to unwind out of an
        // `extern "system"` function, the test process would abort here.
        // SAFETY: a valid event and an integer context.
        unsafe { event_trampoline(&event(0x0001_0000, std::ptr::null()), context) };
        // SAFETY: as above.
        let second = unsafe { deliver_event(&event(1, std::ptr::null()), context) };
        lock(sinks()).remove(&key);
        assert!(second);
        assert_eq!(*lock(&calls), [0x0001_0000, 1]);
    }
}
