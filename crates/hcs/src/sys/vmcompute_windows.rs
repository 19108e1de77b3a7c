//! The Win32 implementation of [`VmcomputeApi`]: vmcompute.dll, loaded on first use.
//!
//! Loading and export resolution work as for computecore (see the parent module): the DLL
//! is loaded from System32 only when first needed, and each export is optional, so an
//! export missing on a build fails only its call, with `ERROR_PROC_NOT_FOUND`.
//!
//! The signatures are hand-written from hcsshim's declarations (hcs-hcn-api.md §1.4, §4.1,
//! §6.1); vmcompute.dll's exports are undocumented. Strings it allocates for the caller are
//! released with `CoTaskMemFree`, as hcsshim does for this DLL.
//!
//! Notification callbacks: the context is an integer key into a registry of sinks, never a
//! pointer; the trampoline catches panics. `HcsUnregisterComputeSystemCallback` blocks until
//! callbacks in flight finish, so the sink is dropped only after it returned, and no lock of
//! the registry is held during that call.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{
    copy_wstr, load_system32, lock, wide, GetProcAddress, HcsProcessInformation, Hmodule, Hresult,
    Pcwstr, Pwstr, HR_INVALID_ARG, HR_PROC_NOT_FOUND,
};
use crate::api::{ProcessInformation, RawProcess, RawSystem};
use crate::cow::Stdio;
use crate::error::{Error, ErrorKind, Result};
use crate::vmcompute::{
    LayerCall, LayerDescriptor, LayerGuid, LayerOutput, NotificationSink, RawCallback, SystemCall,
    V1Notification, V1Output, VmcomputeApi,
};

type Handle = *mut c_void;

#[link(name = "ole32")]
extern "system" {
    fn CoTaskMemFree(p: *mut c_void);
}

/// `DriverInfo`. hcsshim declares `Flavour` as a Go `int` (8 bytes on x64); a pointer-sized
/// integer keeps the same layout with zeroed padding.
#[repr(C)]
struct DriverInfo {
    flavour: isize,
    home_dir: Pcwstr,
}

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Guid {
    data1: u32,
    data2: u16,
    data3: u16,
    data4: [u8; 8],
}

/// `WC_LAYER_DESCRIPTOR`.
#[repr(C)]
struct WcLayerDescriptor {
    layer_id: Guid,
    flags: u32,
    path: Pcwstr,
}

type NotificationCallback = unsafe extern "system" fn(u32, usize, i32, Pcwstr);
type Info = *const DriverInfo;
type Descs = *const WcLayerDescriptor;

exports! {
    /// The vmcompute.dll exports, each `None` when this Windows build lacks it.
    VmFns;
    enumerate = "HcsEnumerateComputeSystems": fn(Pcwstr, *mut Pwstr, *mut Pwstr) -> Hresult;
    create = "HcsCreateComputeSystem":
        fn(Pcwstr, Pcwstr, Handle, *mut Handle, *mut Pwstr) -> Hresult;
    open = "HcsOpenComputeSystem": fn(Pcwstr, *mut Handle, *mut Pwstr) -> Hresult;
    close = "HcsCloseComputeSystem": fn(Handle) -> Hresult;
    start = "HcsStartComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    shutdown = "HcsShutdownComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    terminate = "HcsTerminateComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    pause = "HcsPauseComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    resume = "HcsResumeComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    save = "HcsSaveComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    properties = "HcsGetComputeSystemProperties":
        fn(Handle, Pcwstr, *mut Pwstr, *mut Pwstr) -> Hresult;
    modify = "HcsModifyComputeSystem": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    register = "HcsRegisterComputeSystemCallback":
        fn(Handle, NotificationCallback, usize, *mut Handle) -> Hresult;
    unregister = "HcsUnregisterComputeSystemCallback": fn(Handle) -> Hresult;
    create_process = "HcsCreateProcess":
        fn(Handle, Pcwstr, *mut HcsProcessInformation, *mut Handle, *mut Pwstr) -> Hresult;
    open_process = "HcsOpenProcess": fn(Handle, u32, *mut Handle, *mut Pwstr) -> Hresult;
    close_process = "HcsCloseProcess": fn(Handle) -> Hresult;
    terminate_process = "HcsTerminateProcess": fn(Handle, *mut Pwstr) -> Hresult;
    signal_process = "HcsSignalProcess": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    process_info = "HcsGetProcessInfo":
        fn(Handle, *mut HcsProcessInformation, *mut Pwstr) -> Hresult;
    process_properties = "HcsGetProcessProperties": fn(Handle, *mut Pwstr, *mut Pwstr) -> Hresult;
    modify_process = "HcsModifyProcess": fn(Handle, Pcwstr, *mut Pwstr) -> Hresult;
    register_process = "HcsRegisterProcessCallback":
        fn(Handle, NotificationCallback, usize, *mut Handle) -> Hresult;
    unregister_process = "HcsUnregisterProcessCallback": fn(Handle) -> Hresult;
    service_properties = "HcsGetServiceProperties": fn(Pcwstr, *mut Pwstr, *mut Pwstr) -> Hresult;
    service_modify = "HcsModifyServiceSettings": fn(Pcwstr, *mut Pwstr) -> Hresult;
    hns = "HNSCall": fn(Pcwstr, Pcwstr, Pcwstr, *mut Pwstr) -> Hresult;
    activate = "ActivateLayer": fn(Info, Pcwstr) -> Hresult;
    deactivate = "DeactivateLayer": fn(Info, Pcwstr) -> Hresult;
    create_layer = "CreateLayer": fn(Info, Pcwstr, Pcwstr) -> Hresult;
    create_sandbox = "CreateSandboxLayer": fn(Info, Pcwstr, Pcwstr, Descs, usize) -> Hresult;
    expand_sandbox = "ExpandSandboxSize": fn(Info, Pcwstr, u64) -> Hresult;
    destroy = "DestroyLayer": fn(Info, Pcwstr) -> Hresult;
    export_layer = "ExportLayer": fn(Info, Pcwstr, Pcwstr, Descs, usize) -> Hresult;
    import_layer = "ImportLayer": fn(Info, Pcwstr, Pcwstr, Descs, usize) -> Hresult;
    mount_path = "GetLayerMountPath": fn(Info, Pcwstr, *mut usize, *mut u16) -> Hresult;
    base_images = "GetBaseImages": fn(*mut Pwstr) -> Hresult;
    exists = "LayerExists": fn(Info, Pcwstr, *mut u32) -> Hresult;
    name_to_guid = "NameToGuid": fn(Pcwstr, *mut Guid) -> Hresult;
    prepare = "PrepareLayer": fn(Info, Pcwstr, Descs, usize) -> Hresult;
    unprepare = "UnprepareLayer": fn(Info, Pcwstr) -> Hresult;
    process_base = "ProcessBaseImage": fn(Pcwstr) -> Hresult;
    process_utility = "ProcessUtilityImage": fn(Pcwstr) -> Hresult;
    grant_vm_access = "GrantVmAccess": fn(Pcwstr, Pcwstr) -> Hresult;
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
unsafe fn take(p: Pwstr) -> Option<String> {
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

unsafe extern "system" fn notification_trampoline(
    notification_type: u32,
    context: usize,
    status: i32,
    data: Pcwstr,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: HCS passes null or a NUL-terminated string it owns for the duration of
        // the callback; it is copied, not freed.
        let data = unsafe { copy_wstr(data) };
        let sink = lock(sinks()).get(&context).cloned();
        if let Some(sink) = sink {
            sink(V1Notification {
                notification_type,
                status,
                data,
            });
        }
    });
}

type RegisterFn =
    unsafe extern "system" fn(Handle, NotificationCallback, usize, *mut Handle) -> Hresult;

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
    let mut cb: Handle = std::ptr::null_mut();
    // SAFETY: `handle` is open; the context is an integer key, never dereferenced; the
    // trampoline has the HCS_NOTIFICATION_CALLBACK signature; `cb` is a valid out pointer.
    let hr = unsafe { f(handle as Handle, notification_trampoline, key, &mut cb) };
    if hr < 0 || cb.is_null() {
        lock(sinks()).remove(&key);
        return Err(if hr < 0 { hr } else { HR_INVALID_ARG });
    }
    lock(callback_keys()).insert(cb as usize, key);
    Ok(RawCallback(cb as usize))
}

/// `HcsUnregister{ComputeSystem,Process}Callback`, then drops the sink.
fn unregister(
    f: Option<unsafe extern "system" fn(Handle) -> Hresult>,
    callback: RawCallback,
) -> i32 {
    let hr = match f {
        // SAFETY: `callback` is a live registration, unregistered once; this blocks until
        // callbacks in flight finish, and no registry lock is held meanwhile.
        Some(f) => unsafe { f(callback.0 as Handle) },
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
        f: Option<unsafe extern "system" fn(Handle, Pcwstr, *mut Pwstr) -> Hresult>,
        handle: Handle,
        doc: &str,
    ) -> V1Output {
        let Some(f) = f else { return missing() };
        let doc = match wide(doc) {
            Ok(d) => d,
            Err(hr) => return V1Output::hr(hr),
        };
        let mut result: Pwstr = std::ptr::null_mut();
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

fn descriptors(
    parents: &[LayerDescriptor],
) -> std::result::Result<(Vec<Vec<u16>>, Vec<WcLayerDescriptor>), i32> {
    let paths = parents
        .iter()
        .map(|d| wide(&d.path))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let descs = parents
        .iter()
        .zip(&paths)
        .map(|(d, p)| WcLayerDescriptor {
            layer_id: Guid {
                data1: d.layer_id.data1,
                data2: d.layer_id.data2,
                data3: d.layer_id.data3,
                data4: d.layer_id.data4,
            },
            flags: d.flags,
            path: p.as_ptr(),
        })
        .collect();
    Ok((paths, descs))
}

fn check(hr: Hresult) -> std::result::Result<LayerOutput, i32> {
    if hr < 0 {
        Err(hr)
    } else {
        Ok(LayerOutput::None)
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
        let (mut out, mut result): (Pwstr, Pwstr) = (std::ptr::null_mut(), std::ptr::null_mut());
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
        let mut h: Handle = std::ptr::null_mut();
        let mut result: Pwstr = std::ptr::null_mut();
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
        let mut h: Handle = std::ptr::null_mut();
        let mut result: Pwstr = std::ptr::null_mut();
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
            Some(f) => unsafe { f(system.0 as Handle) },
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
        Self::doc_call(f, system.0 as Handle, options)
    }

    fn get_compute_system_properties(&self, system: RawSystem, query: &str) -> V1Output {
        let Some(f) = self.fns.properties else {
            return missing();
        };
        let q = match wide(query) {
            Ok(q) => q,
            Err(hr) => return V1Output::hr(hr),
        };
        let (mut out, mut result): (Pwstr, Pwstr) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `system` is open; `q` is NUL-terminated and alive; out pointers valid.
        let hr = unsafe { f(system.0 as Handle, q.as_ptr(), &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn modify_compute_system(&self, system: RawSystem, configuration: &str) -> V1Output {
        Self::doc_call(self.fns.modify, system.0 as Handle, configuration)
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
        let mut info = HcsProcessInformation::zeroed();
        let mut h: Handle = std::ptr::null_mut();
        let mut result: Pwstr = std::ptr::null_mut();
        // SAFETY: `system` is open; `params` is NUL-terminated and alive; the out pointers
        // are valid.
        let hr = unsafe {
            f(
                system.0 as Handle,
                params.as_ptr(),
                &mut info,
                &mut h,
                &mut result,
            )
        };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        let created = (hr >= 0 && !h.is_null()).then(|| (RawProcess(h as usize), info.to_api()));
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
        let mut h: Handle = std::ptr::null_mut();
        let mut result: Pwstr = std::ptr::null_mut();
        // SAFETY: `system` is open; the out pointers are valid.
        let hr = unsafe { f(system.0 as Handle, pid, &mut h, &mut result) };
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
            Some(f) => unsafe { f(process.0 as Handle) },
            None => HR_PROC_NOT_FOUND,
        }
    }

    fn terminate_process(&self, process: RawProcess) -> V1Output {
        let Some(f) = self.fns.terminate_process else {
            return missing();
        };
        let mut result: Pwstr = std::ptr::null_mut();
        // SAFETY: `process` is open; the out pointer is valid.
        let hr = unsafe { f(process.0 as Handle, &mut result) };
        V1Output {
            hr,
            output: None,
            // SAFETY: null or allocated by vmcompute for this call.
            result: unsafe { take(result) },
        }
    }

    fn signal_process(&self, process: RawProcess, options: &str) -> V1Output {
        Self::doc_call(self.fns.signal_process, process.0 as Handle, options)
    }

    fn get_process_info(&self, process: RawProcess) -> (V1Output, Option<ProcessInformation>) {
        let Some(f) = self.fns.process_info else {
            return (missing(), None);
        };
        let mut info = HcsProcessInformation::zeroed();
        let mut result: Pwstr = std::ptr::null_mut();
        // SAFETY: `process` is open; the out pointers are valid.
        let hr = unsafe { f(process.0 as Handle, &mut info, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let result = unsafe { take(result) };
        (
            V1Output {
                hr,
                output: None,
                result,
            },
            (hr >= 0).then(|| info.to_api()),
        )
    }

    fn get_process_properties(&self, process: RawProcess) -> V1Output {
        let Some(f) = self.fns.process_properties else {
            return missing();
        };
        let (mut out, mut result): (Pwstr, Pwstr) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: `process` is open; the out pointers are valid.
        let hr = unsafe { f(process.0 as Handle, &mut out, &mut result) };
        // SAFETY: null or allocated by vmcompute for this call.
        let (output, result) = unsafe { (take(out), take(result)) };
        V1Output { hr, output, result }
    }

    fn modify_process(&self, process: RawProcess, settings: &str) -> V1Output {
        Self::doc_call(self.fns.modify_process, process.0 as Handle, settings)
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
        let (mut out, mut result): (Pwstr, Pwstr) = (std::ptr::null_mut(), std::ptr::null_mut());
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
        let mut result: Pwstr = std::ptr::null_mut();
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
        let mut response: Pwstr = std::ptr::null_mut();
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
        let home = [0u16];
        // hcsshim: {Flavour: 1 (filter driver), HomeDir: ""}.
        let info = DriverInfo {
            flavour: 1,
            home_dir: home.as_ptr(),
        };
        let info: Info = &info;
        let f = &self.fns;
        match call {
            LayerCall::Activate { id }
            | LayerCall::Deactivate { id }
            | LayerCall::Destroy { id }
            | LayerCall::Unprepare { id } => {
                let export = match call {
                    LayerCall::Activate { .. } => f.activate,
                    LayerCall::Deactivate { .. } => f.deactivate,
                    LayerCall::Destroy { .. } => f.destroy,
                    _ => f.unprepare,
                };
                let export = export.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                // SAFETY: `info` and `id` are valid for the call.
                check(unsafe { export(info, id.as_ptr()) })
            }
            LayerCall::Create { id, parent } => {
                let export = f.create_layer.ok_or(HR_PROC_NOT_FOUND)?;
                let (id, parent) = (wide(id)?, wide(parent)?);
                // SAFETY: all pointers are valid for the call.
                check(unsafe { export(info, id.as_ptr(), parent.as_ptr()) })
            }
            LayerCall::CreateSandbox { id, parents } => {
                let export = f.create_sandbox.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                let (_paths, descs) = descriptors(parents)?;
                // SAFETY: `descs` (and the paths they point to, kept in `_paths`) outlive the
                // call; the parent argument is NULL as hcsshim passes it.
                check(unsafe {
                    export(
                        info,
                        id.as_ptr(),
                        std::ptr::null(),
                        descs.as_ptr(),
                        descs.len(),
                    )
                })
            }
            LayerCall::ExpandSandboxSize { id, size } => {
                let export = f.expand_sandbox.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                // SAFETY: pointers valid for the call.
                check(unsafe { export(info, id.as_ptr(), size) })
            }
            LayerCall::Export { id, path, parents } | LayerCall::Import { id, path, parents } => {
                let export = match call {
                    LayerCall::Export { .. } => f.export_layer,
                    _ => f.import_layer,
                }
                .ok_or(HR_PROC_NOT_FOUND)?;
                let (id, path) = (wide(id)?, wide(path)?);
                let (_paths, descs) = descriptors(parents)?;
                // SAFETY: all strings and descriptors outlive the call.
                check(unsafe {
                    export(
                        info,
                        id.as_ptr(),
                        path.as_ptr(),
                        descs.as_ptr(),
                        descs.len(),
                    )
                })
            }
            LayerCall::Prepare { id, parents } => {
                let export = f.prepare.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                let (_paths, descs) = descriptors(parents)?;
                // SAFETY: all strings and descriptors outlive the call.
                check(unsafe { export(info, id.as_ptr(), descs.as_ptr(), descs.len()) })
            }
            LayerCall::GetMountPath { id } => {
                let export = f.mount_path.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                let mut len: usize = 0;
                // SAFETY: first call: a null buffer asks for the length.
                let hr = unsafe { export(info, id.as_ptr(), &mut len, std::ptr::null_mut()) };
                if hr < 0 {
                    return Err(hr);
                }
                if len == 0 {
                    return Ok(LayerOutput::Text(String::new()));
                }
                let mut buf = vec![0u16; len];
                // SAFETY: `buf` holds `len` units, the length vmcompute asked for.
                let hr = unsafe { export(info, id.as_ptr(), &mut len, buf.as_mut_ptr()) };
                if hr < 0 {
                    return Err(hr);
                }
                let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
                Ok(LayerOutput::Text(String::from_utf16_lossy(&buf[..end])))
            }
            LayerCall::GetBaseImages => {
                let export = f.base_images.ok_or(HR_PROC_NOT_FOUND)?;
                let mut out: Pwstr = std::ptr::null_mut();
                // SAFETY: the out pointer is valid.
                let hr = unsafe { export(&mut out) };
                // SAFETY: null or allocated by vmcompute for this call.
                let text = unsafe { take(out) };
                if hr < 0 {
                    return Err(hr);
                }
                Ok(LayerOutput::Text(text.unwrap_or_default()))
            }
            LayerCall::Exists { id } => {
                let export = f.exists.ok_or(HR_PROC_NOT_FOUND)?;
                let id = wide(id)?;
                let mut exists: u32 = 0;
                // SAFETY: pointers valid for the call.
                let hr = unsafe { export(info, id.as_ptr(), &mut exists) };
                if hr < 0 {
                    return Err(hr);
                }
                Ok(LayerOutput::Exists(exists != 0))
            }
            LayerCall::NameToGuid { name } => {
                let export = f.name_to_guid.ok_or(HR_PROC_NOT_FOUND)?;
                let name = wide(name)?;
                let mut g = Guid::default();
                // SAFETY: pointers valid for the call.
                let hr = unsafe { export(name.as_ptr(), &mut g) };
                if hr < 0 {
                    return Err(hr);
                }
                Ok(LayerOutput::Guid(LayerGuid {
                    data1: g.data1,
                    data2: g.data2,
                    data3: g.data3,
                    data4: g.data4,
                }))
            }
            LayerCall::ProcessBaseImage { path } | LayerCall::ProcessUtilityImage { path } => {
                let export = match call {
                    LayerCall::ProcessBaseImage { .. } => f.process_base,
                    _ => f.process_utility,
                }
                .ok_or(HR_PROC_NOT_FOUND)?;
                let path = wide(path)?;
                // SAFETY: `path` is valid for the call.
                check(unsafe { export(path.as_ptr()) })
            }
            LayerCall::GrantVmAccess { vm_id, path } => {
                let export = f.grant_vm_access.ok_or(HR_PROC_NOT_FOUND)?;
                let (vm, path) = (wide(vm_id)?, wide(path)?);
                // SAFETY: both strings are valid for the call.
                check(unsafe { export(vm.as_ptr(), path.as_ptr()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_hcsshim() {
        assert_eq!(std::mem::size_of::<DriverInfo>(), 16);
        assert_eq!(std::mem::size_of::<Guid>(), 16);
        assert_eq!(std::mem::size_of::<WcLayerDescriptor>(), 32);
        assert_eq!(std::mem::offset_of!(WcLayerDescriptor, path), 24);
    }

    #[test]
    fn trampoline_routes_by_key_and_survives_panics() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let key = 1_000_000_007;
        {
            let seen = seen.clone();
            lock(sinks()).insert(key, Arc::new(move |n: V1Notification| lock(&seen).push(n)));
        }
        let data = wide("x").unwrap();
        // SAFETY: called as HCS would, with a valid string.
        unsafe { notification_trampoline(3, key, -5, data.as_ptr()) };
        // SAFETY: unknown key, null data.
        unsafe { notification_trampoline(3, key + 1, 0, std::ptr::null()) };
        lock(sinks()).insert(key + 2, Arc::new(|_| panic!("sink panics")));
        // SAFETY: as above; the panic must not unwind out.
        unsafe { notification_trampoline(1, key + 2, 0, std::ptr::null()) };
        lock(sinks()).remove(&key);
        lock(sinks()).remove(&(key + 2));
        assert_eq!(
            *lock(&seen),
            [V1Notification {
                notification_type: 3,
                status: -5,
                data: Some("x".into())
            }]
        );
    }

    #[test]
    fn descriptors_point_at_their_paths() {
        let parents = [LayerDescriptor {
            layer_id: LayerGuid {
                data1: 7,
                ..Default::default()
            },
            flags: 0,
            path: "C:\\l".into(),
        }];
        let (paths, descs) = descriptors(&parents).unwrap();
        assert_eq!(descs[0].path, paths[0].as_ptr());
        assert_eq!(descs[0].layer_id.data1, 7);
        let bad = [LayerDescriptor {
            layer_id: LayerGuid::default(),
            flags: 0,
            path: "a\0b".into(),
        }];
        assert!(descriptors(&bad).is_err());
    }
}
