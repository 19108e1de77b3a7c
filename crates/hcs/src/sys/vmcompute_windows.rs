//! The Win32 implementation of [`VmcomputeApi`]: vmcompute.dll, loaded on first use.
//!
//! Loading and export resolution work as for computecore (see the parent module): the DLL
//! is loaded from System32 only when first needed, and each export is optional, so an
//! export missing on a build fails only its call, with `ERROR_PROC_NOT_FOUND`.
//!
//! **Hand-declared, and why.** Microsoft's Win32 metadata (and so `windows-sys`) has no
//! vmcompute.dll at all: its exports are undocumented, and the v1 compute-system exports
//! share their names with computecore's but not their signatures. So this module is the one
//! place where export signatures are written by hand, from hcsshim's `//sys` declarations
//! (hcs-hcn-api.md §1.4, §4.1, §6.1):
//!
//! * the v1 compute-system, process and service calls (`HcsEnumerateComputeSystems` …
//!   `HcsModifyServiceSettings`, `HcsRegister/Unregister{ComputeSystem,Process}Callback`),
//! * `HNSCall` (HNS v1),
//! * the graph-driver layer exports (`ActivateLayer` … `GrantVmAccess`),
//! * and the two structs they take, `DRIVER_INFO` ([`DriverInfo`]) and
//!   `WC_LAYER_DESCRIPTOR` ([`WcLayerDescriptor`]).
//!
//! Their parameter types still come from the metadata wherever it has them: the handles
//! (`HCS_SYSTEM`, `HCS_PROCESS`, `HCS_CALLBACK`), `HCS_PROCESS_INFORMATION`, the v1
//! notification callback type `HCS_NOTIFICATION_CALLBACK`, `GUID`, `PCWSTR`/`PWSTR` and
//! `HRESULT`. Strings vmcompute allocates for the caller are released with `CoTaskMemFree`,
//! as hcsshim does for this DLL.
//!
//! Notification callbacks: the context is an integer key into a registry of sinks, never a
//! pointer; the trampoline catches panics. `HcsUnregisterComputeSystemCallback` blocks until
//! callbacks in flight finish, so the sink is dropped only after it returned, and no lock of
//! the registry is held during that call.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use windows_sys::core::{GUID, HRESULT, PCWSTR, PWSTR};
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::HostCompute::HCS_CALLBACK;
use windows_sys::Win32::System::HostComputeSystem::{
    HCS_NOTIFICATION_CALLBACK, HCS_PROCESS, HCS_PROCESS_INFORMATION, HCS_SYSTEM,
};

use super::{
    copy_wstr, load_system32, lock, process_information, wide, HR_INVALID_ARG, HR_PROC_NOT_FOUND,
};
use crate::api::{ProcessInformation, RawProcess, RawSystem};
use crate::cow::Stdio;
use crate::error::{Error, ErrorKind, Result};
use crate::vmcompute::{
    LayerCall, LayerOutput, NotificationSink, RawCallback, SystemCall, V1Notification, V1Output,
    VmcomputeApi,
};

#[path = "vmcompute_layers_windows.rs"]
mod layers;

use layers::{Descs, Info};
pub(super) use layers::{DriverInfo, WcLayerDescriptor};

export_table! {
    /// The vmcompute.dll exports, each `None` when this Windows build lacks it. Declared by
    /// hand: the Win32 metadata has no vmcompute.dll (see the module docs).
    VmFns;
    enumerate = HcsEnumerateComputeSystems: fn(PCWSTR, *mut PWSTR, *mut PWSTR) -> HRESULT;
    create = HcsCreateComputeSystem:
        fn(PCWSTR, PCWSTR, HANDLE, *mut HCS_SYSTEM, *mut PWSTR) -> HRESULT;
    open = HcsOpenComputeSystem: fn(PCWSTR, *mut HCS_SYSTEM, *mut PWSTR) -> HRESULT;
    close = HcsCloseComputeSystem: fn(HCS_SYSTEM) -> HRESULT;
    start = HcsStartComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    shutdown = HcsShutdownComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    terminate = HcsTerminateComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    pause = HcsPauseComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    resume = HcsResumeComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    save = HcsSaveComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    properties = HcsGetComputeSystemProperties:
        fn(HCS_SYSTEM, PCWSTR, *mut PWSTR, *mut PWSTR) -> HRESULT;
    modify = HcsModifyComputeSystem: fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT;
    register = HcsRegisterComputeSystemCallback:
        fn(HCS_SYSTEM, HCS_NOTIFICATION_CALLBACK, *const c_void, *mut HCS_CALLBACK) -> HRESULT;
    unregister = HcsUnregisterComputeSystemCallback: fn(HCS_CALLBACK) -> HRESULT;
    create_process = HcsCreateProcess:
        fn(HCS_SYSTEM, PCWSTR, *mut HCS_PROCESS_INFORMATION, *mut HCS_PROCESS, *mut PWSTR)
            -> HRESULT;
    open_process = HcsOpenProcess: fn(HCS_SYSTEM, u32, *mut HCS_PROCESS, *mut PWSTR) -> HRESULT;
    close_process = HcsCloseProcess: fn(HCS_PROCESS) -> HRESULT;
    terminate_process = HcsTerminateProcess: fn(HCS_PROCESS, *mut PWSTR) -> HRESULT;
    signal_process = HcsSignalProcess: fn(HCS_PROCESS, PCWSTR, *mut PWSTR) -> HRESULT;
    process_info = HcsGetProcessInfo:
        fn(HCS_PROCESS, *mut HCS_PROCESS_INFORMATION, *mut PWSTR) -> HRESULT;
    process_properties = HcsGetProcessProperties:
        fn(HCS_PROCESS, *mut PWSTR, *mut PWSTR) -> HRESULT;
    modify_process = HcsModifyProcess: fn(HCS_PROCESS, PCWSTR, *mut PWSTR) -> HRESULT;
    register_process = HcsRegisterProcessCallback:
        fn(HCS_PROCESS, HCS_NOTIFICATION_CALLBACK, *const c_void, *mut HCS_CALLBACK) -> HRESULT;
    unregister_process = HcsUnregisterProcessCallback: fn(HCS_CALLBACK) -> HRESULT;
    service_properties = HcsGetServiceProperties:
        fn(PCWSTR, *mut PWSTR, *mut PWSTR) -> HRESULT;
    service_modify = HcsModifyServiceSettings: fn(PCWSTR, *mut PWSTR) -> HRESULT;
    hns = HNSCall: fn(PCWSTR, PCWSTR, PCWSTR, *mut PWSTR) -> HRESULT;
    activate = ActivateLayer: fn(Info, PCWSTR) -> HRESULT;
    deactivate = DeactivateLayer: fn(Info, PCWSTR) -> HRESULT;
    create_layer = CreateLayer: fn(Info, PCWSTR, PCWSTR) -> HRESULT;
    create_sandbox = CreateSandboxLayer: fn(Info, PCWSTR, PCWSTR, Descs, usize) -> HRESULT;
    expand_sandbox = ExpandSandboxSize: fn(Info, PCWSTR, u64) -> HRESULT;
    destroy = DestroyLayer: fn(Info, PCWSTR) -> HRESULT;
    export_layer = ExportLayer: fn(Info, PCWSTR, PCWSTR, Descs, usize) -> HRESULT;
    import_layer = ImportLayer: fn(Info, PCWSTR, PCWSTR, Descs, usize) -> HRESULT;
    mount_path = GetLayerMountPath: fn(Info, PCWSTR, *mut usize, *mut u16) -> HRESULT;
    base_images = GetBaseImages: fn(*mut PWSTR) -> HRESULT;
    exists = LayerExists: fn(Info, PCWSTR, *mut u32) -> HRESULT;
    name_to_guid = NameToGuid: fn(PCWSTR, *mut GUID) -> HRESULT;
    prepare = PrepareLayer: fn(Info, PCWSTR, Descs, usize) -> HRESULT;
    unprepare = UnprepareLayer: fn(Info, PCWSTR) -> HRESULT;
    process_base = ProcessBaseImage: fn(PCWSTR) -> HRESULT;
    process_utility = ProcessUtilityImage: fn(PCWSTR) -> HRESULT;
    grant_vm_access = GrantVmAccess: fn(PCWSTR, PCWSTR) -> HRESULT;
}

/// vmcompute.dll. The module stays loaded for the life of the process.
pub struct Vmcompute {
    fns: VmFns,
}

impl std::fmt::Debug for Vmcompute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vmcompute")
    }
}

/// The shared vmcompute.dll binding, loaded on first use.
pub fn default_vmcompute() -> Result<Arc<dyn VmcomputeApi>> {
    static API: OnceLock<std::result::Result<Arc<Vmcompute>, String>> = OnceLock::new();
    let loaded = API.get_or_init(|| {
        let module = load_system32("vmcompute.dll").map_err(|code| {
            format!(
                "vmcompute.dll could not be loaded (Win32 error {code}); the Containers or \
                 Hyper-V feature is not installed"
            )
        })?;
        Ok(Arc::new(Vmcompute {
            fns: VmFns::load(module),
        }))
    });
    match loaded {
        Ok(api) => Ok(api.clone()),
        Err(msg) => Err(Error::new(ErrorKind::NotAvailable(msg.clone()))),
    }
}

/// Copies and frees (`CoTaskMemFree`) a string vmcompute allocated.
///
/// # Safety
/// `p` is null or a string vmcompute returned to the caller, not yet freed.
unsafe fn take(p: PWSTR) -> Option<String> {
    // SAFETY: forwarded from the caller.
    let s = unsafe { copy_wstr(p) };
    if !p.is_null() {
        // SAFETY: vmcompute allocated `p` for the caller; hcsshim frees it this way.
        unsafe { CoTaskMemFree(p.cast()) };
    }
    s
}

fn missing() -> V1Output {
    V1Output::hr(HR_PROC_NOT_FOUND)
}

// ---- notification callbacks ----

fn sinks() -> &'static Mutex<HashMap<usize, NotificationSink>> {
    static SINKS: OnceLock<Mutex<HashMap<usize, NotificationSink>>> = OnceLock::new();
    SINKS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// callback handle → sink key.
fn callback_keys() -> &'static Mutex<HashMap<usize, usize>> {
    static KEYS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    KEYS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The `HCS_NOTIFICATION_CALLBACK` registered for every handle (its type is checked against
/// the metadata in `checks`).
pub(super) unsafe extern "system" fn notification_trampoline(
    notification_type: u32,
    context: *const c_void,
    status: HRESULT,
    data: PCWSTR,
) {
    let key = context.addr();
    // SAFETY: HCS passes null or a NUL-terminated string it owns for the duration of the
    // callback; it is copied, not freed.
    let data = unsafe { copy_wstr(data) };
    let Some(sink) = lock(sinks()).get(&key).cloned() else {
        return;
    };
    // A panic must not unwind into HCS: it is contained and reported here.
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink(V1Notification {
            notification_type,
            status,
            data,
        });
    }));
    if delivered.is_err() {
        tracing::error!(notification_type, "a vmcompute notification sink panicked");
    }
}

/// `HcsRegister{ComputeSystem,Process}Callback` (`HCS_SYSTEM` and `HCS_PROCESS` are the
/// same pointer type).
type RegisterFn = unsafe extern "system" fn(
    HCS_SYSTEM,
    HCS_NOTIFICATION_CALLBACK,
    *const c_void,
    *mut HCS_CALLBACK,
) -> HRESULT;

/// `HcsRegister{ComputeSystem,Process}Callback` with an integer context.
fn register(
    f: Option<RegisterFn>,
    handle: usize,
    sink: NotificationSink,
) -> std::result::Result<RawCallback, i32> {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let f = f.ok_or(HR_PROC_NOT_FOUND)?;
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(sinks()).insert(key, sink);
    let mut cb: HCS_CALLBACK = std::ptr::null_mut();
    let context = std::ptr::without_provenance::<c_void>(key);
    // SAFETY: `handle` is open; the context is an integer key, never dereferenced; the
    // trampoline has the HCS_NOTIFICATION_CALLBACK signature; `cb` is a valid out pointer.
    let hr = unsafe {
        f(
            handle as HCS_SYSTEM,
            Some(notification_trampoline),
            context,
            &mut cb,
        )
    };
    if hr < 0 || cb.is_null() {
        lock(sinks()).remove(&key);
        return Err(if hr < 0 { hr } else { HR_INVALID_ARG });
    }
    lock(callback_keys()).insert(cb as usize, key);
    Ok(RawCallback(cb as usize))
}

/// `HcsUnregister{ComputeSystem,Process}Callback`, then drops the sink.
fn unregister(
    f: Option<unsafe extern "system" fn(HCS_CALLBACK) -> HRESULT>,
    callback: RawCallback,
) -> i32 {
    let hr = match f {
        // SAFETY: `callback` is a live registration, unregistered once; this blocks until
        // callbacks in flight finish, and no registry lock is held meanwhile.
        Some(f) => unsafe { f(callback.0 as HCS_CALLBACK) },
        None => HR_PROC_NOT_FOUND,
    };
    let key = lock(callback_keys()).remove(&callback.0);
    if let Some(key) = key {
        lock(sinks()).remove(&key);
    }
    hr
}

impl Vmcompute {
    fn doc_call(
        f: Option<unsafe extern "system" fn(HCS_SYSTEM, PCWSTR, *mut PWSTR) -> HRESULT>,
        handle: HCS_SYSTEM,
        doc: &str,
    ) -> V1Output {
        let Some(f) = f else { return missing() };
        let doc = match wide(doc) {
            Ok(d) => d,
            Err(hr) => return V1Output::hr(hr),
        };
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `handle` is open; `doc` is NUL-terminated and alive; `result` is a valid
        // out pointer.
        let hr = unsafe { f(handle, doc.as_ptr(), &mut result) };
        V1Output {
            hr,
            output: None,
            // SAFETY: null or allocated by vmcompute for this call.
            result: unsafe { take(result) },
        }
    }
}

impl VmcomputeApi for Vmcompute {
    fn enumerate_compute_systems(&self, query: &str) -> V1Output {
        let Some(f) = self.fns.enumerate else {
            return missing();
        };
        let q = match wide(query) {
            Ok(q) => q,
            Err(hr) => return V1Output::hr(hr),
        };
        let (mut out, mut result): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `q` is NUL-terminated and alive; both out pointers are valid.
        let hr = unsafe { f(q.as_ptr(), &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn create_compute_system(
        &self,
        id: &str,
        configuration: &str,
    ) -> (V1Output, Option<RawSystem>) {
        let Some(f) = self.fns.create else {
            return (missing(), None);
        };
        let (id, cfg) = match (wide(id), wide(configuration)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return (V1Output::hr(HR_INVALID_ARG), None),
        };
        let mut h: HCS_SYSTEM = std::ptr::null_mut();
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: strings are NUL-terminated and alive; identity 0 as hcsshim passes; the
        // out pointers are valid.
        let hr = unsafe {
            f(
                id.as_ptr(),
                cfg.as_ptr(),
                std::ptr::null_mut(),
                &mut h,
                &mut result,
            )
        };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            (!h.is_null()).then_some(RawSystem(h as usize)),
        )
    }

    fn open_compute_system(&self, id: &str) -> (V1Output, Option<RawSystem>) {
        let Some(f) = self.fns.open else {
            return (missing(), None);
        };
        let id = match wide(id) {
            Ok(i) => i,
            Err(hr) => return (V1Output::hr(hr), None),
        };
        let mut h: HCS_SYSTEM = std::ptr::null_mut();
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `id` is NUL-terminated and alive; the out pointers are valid.
        let hr = unsafe { f(id.as_ptr(), &mut h, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            (!h.is_null()).then_some(RawSystem(h as usize)),
        )
    }

    fn close_compute_system(&self, system: RawSystem) -> i32 {
        match self.fns.close {
            // SAFETY: `system` is open and closed once by its owner.
            Some(f) => unsafe { f(system.0 as HCS_SYSTEM) },
            None => HR_PROC_NOT_FOUND,
        }
    }

    fn system_call(&self, call: SystemCall, system: RawSystem, options: &str) -> V1Output {
        let f = match call {
            SystemCall::Start => self.fns.start,
            SystemCall::Shutdown => self.fns.shutdown,
            SystemCall::Terminate => self.fns.terminate,
            SystemCall::Pause => self.fns.pause,
            SystemCall::Resume => self.fns.resume,
            SystemCall::Save => self.fns.save,
            SystemCall::Crash => None,
        };
        Self::doc_call(f, system.0 as HCS_SYSTEM, options)
    }

    fn get_compute_system_properties(&self, system: RawSystem, query: &str) -> V1Output {
        let Some(f) = self.fns.properties else {
            return missing();
        };
        let q = match wide(query) {
            Ok(q) => q,
            Err(hr) => return V1Output::hr(hr),
        };
        let (mut out, mut result): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `system` is open; `q` is NUL-terminated and alive; out pointers valid.
        let hr = unsafe { f(system.0 as HCS_SYSTEM, q.as_ptr(), &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn modify_compute_system(&self, system: RawSystem, configuration: &str) -> V1Output {
        Self::doc_call(self.fns.modify, system.0 as HCS_SYSTEM, configuration)
    }

    fn register_compute_system_callback(
        &self,
        system: RawSystem,
        sink: NotificationSink,
    ) -> std::result::Result<RawCallback, i32> {
        register(self.fns.register, system.0, sink)
    }

    fn unregister_compute_system_callback(&self, callback: RawCallback) -> i32 {
        unregister(self.fns.unregister, callback)
    }

    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
    ) -> (V1Output, Option<(RawProcess, ProcessInformation)>) {
        let Some(f) = self.fns.create_process else {
            return (missing(), None);
        };
        let params = match wide(parameters) {
            Ok(p) => p,
            Err(hr) => return (V1Output::hr(hr), None),
        };
        let mut info = HCS_PROCESS_INFORMATION::default();
        let mut h: HCS_PROCESS = std::ptr::null_mut();
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `system` is open; `params` is NUL-terminated and alive; the out pointers
        // are valid.
        let hr = unsafe {
            f(
                system.0 as HCS_SYSTEM,
                params.as_ptr(),
                &mut info,
                &mut h,
                &mut result,
            )
        };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        let created =
            (hr >= 0 && !h.is_null()).then(|| (RawProcess(h as usize), process_information(&info)));
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            created,
        )
    }

    fn open_process(&self, system: RawSystem, pid: u32) -> (V1Output, Option<RawProcess>) {
        let Some(f) = self.fns.open_process else {
            return (missing(), None);
        };
        let mut h: HCS_PROCESS = std::ptr::null_mut();
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `system` is open; the out pointers are valid.
        let hr = unsafe { f(system.0 as HCS_SYSTEM, pid, &mut h, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            (!h.is_null()).then_some(RawProcess(h as usize)),
        )
    }

    fn close_process(&self, process: RawProcess) -> i32 {
        match self.fns.close_process {
            // SAFETY: `process` is open and closed once by its owner.
            Some(f) => unsafe { f(process.0 as HCS_PROCESS) },
            None => HR_PROC_NOT_FOUND,
        }
    }

    fn terminate_process(&self, process: RawProcess) -> V1Output {
        let Some(f) = self.fns.terminate_process else {
            return missing();
        };
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `process` is open; the out pointer is valid.
        let hr = unsafe { f(process.0 as HCS_PROCESS, &mut result) };
        V1Output {
            hr,
            output: None,
            // SAFETY: null or allocated by vmcompute for this call.
            result: unsafe { take(result) },
        }
    }

    fn signal_process(&self, process: RawProcess, options: &str) -> V1Output {
        Self::doc_call(self.fns.signal_process, process.0 as HCS_PROCESS, options)
    }

    fn get_process_info(&self, process: RawProcess) -> (V1Output, Option<ProcessInformation>) {
        let Some(f) = self.fns.process_info else {
            return (missing(), None);
        };
        let mut info = HCS_PROCESS_INFORMATION::default();
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `process` is open; the out pointers are valid.
        let hr = unsafe { f(process.0 as HCS_PROCESS, &mut info, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            (hr >= 0).then(|| process_information(&info)),
        )
    }

    fn get_process_properties(&self, process: RawProcess) -> V1Output {
        let Some(f) = self.fns.process_properties else {
            return missing();
        };
        let (mut out, mut result): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `process` is open; the out pointers are valid.
        let hr = unsafe { f(process.0 as HCS_PROCESS, &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn modify_process(&self, process: RawProcess, settings: &str) -> V1Output {
        Self::doc_call(self.fns.modify_process, process.0 as HCS_PROCESS, settings)
    }

    fn register_process_callback(
        &self,
        process: RawProcess,
        sink: NotificationSink,
    ) -> std::result::Result<RawCallback, i32> {
        register(self.fns.register_process, process.0, sink)
    }

    fn unregister_process_callback(&self, callback: RawCallback) -> i32 {
        unregister(self.fns.unregister_process, callback)
    }

    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio> {
        super::stdio_from_info(info)
    }

    fn get_service_properties(&self, query: &str) -> V1Output {
        let Some(f) = self.fns.service_properties else {
            return missing();
        };
        let q = match wide(query) {
            Ok(q) => q,
            Err(hr) => return V1Output::hr(hr),
        };
        let (mut out, mut result): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `q` is NUL-terminated and alive; out pointers valid.
        let hr = unsafe { f(q.as_ptr(), &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn modify_service_settings(&self, settings: &str) -> V1Output {
        let Some(f) = self.fns.service_modify else {
            return missing();
        };
        let s = match wide(settings) {
            Ok(s) => s,
            Err(hr) => return V1Output::hr(hr),
        };
        let mut result: PWSTR = std::ptr::null_mut();
        // SAFETY: `s` is NUL-terminated and alive; the out pointer is valid.
        let hr = unsafe { f(s.as_ptr(), &mut result) };
        V1Output {
            hr,
            output: None,
            // SAFETY: null or allocated by vmcompute for this call.
            result: unsafe { take(result) },
        }
    }

    fn hns_call(&self, method: &str, path: &str, request: &str) -> V1Output {
        let Some(f) = self.fns.hns else {
            return missing();
        };
        let (m, p, r) = match (wide(method), wide(path), wide(request)) {
            (Ok(m), Ok(p), Ok(r)) => (m, p, r),
            _ => return V1Output::hr(HR_INVALID_ARG),
        };
        let mut response: PWSTR = std::ptr::null_mut();
        // SAFETY: the strings are NUL-terminated and alive; the out pointer is valid.
        let hr = unsafe { f(m.as_ptr(), p.as_ptr(), r.as_ptr(), &mut response) };
        V1Output {
            hr,
            // SAFETY: null or allocated by vmcompute for this call.
            output: unsafe { take(response) },
            result: None,
        }
    }

    fn layer_call(&self, call: LayerCall<'_>) -> std::result::Result<LayerOutput, i32> {
        layers::layer_call(&self.fns, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampoline_routes_by_key_and_contains_panics() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let key = 1_000_000_007;
        let record = |seen: &Arc<Mutex<Vec<V1Notification>>>, panics: bool| -> NotificationSink {
            let seen = seen.clone();
            Arc::new(move |n: V1Notification| {
                lock(&seen).push(n);
                if panics {
                    panic!("sink panics");
                }
            })
        };
        lock(sinks()).insert(key, record(&seen, false));
        lock(sinks()).insert(key + 2, record(&seen, true));
        let ctx = |k: usize| std::ptr::without_provenance::<c_void>(k);
        let data = wide("x").unwrap();
        // SAFETY: called as HCS would, with a valid string.
        unsafe { notification_trampoline(3, ctx(key), -5, data.as_ptr()) };
        // SAFETY: unknown key, null data: nothing is delivered.
        unsafe { notification_trampoline(3, ctx(key + 1), 0, std::ptr::null()) };
        // SAFETY: as above. The sink panics; were the panic to unwind out of the
        // `extern "system"` trampoline, the test process would abort here.
        unsafe { notification_trampoline(1, ctx(key + 2), 0, std::ptr::null()) };
        // SAFETY: as above; delivery goes on after the panic.
        unsafe { notification_trampoline(2, ctx(key), 0, std::ptr::null()) };
        lock(sinks()).remove(&key);
        lock(sinks()).remove(&(key + 2));
        let got: Vec<(u32, i32, Option<String>)> = lock(&seen)
            .iter()
            .map(|n| (n.notification_type, n.status, n.data.clone()))
            .collect();
        assert_eq!(got, [(3, -5, Some("x".into())), (1, 0, None), (2, 0, None)]);
    }
}
