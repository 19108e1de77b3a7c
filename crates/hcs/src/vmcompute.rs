//! The OS boundary of what exists only in the legacy vmcompute.dll (hcs-hcn-api.md §1.4,
//! §4.1, §6.1): the v1 compute-system calls (the only HCS API on hosts older than 1809,
//! where computecore.dll does not exist), the v1 service calls, `HNSCall` and the wclayer
//! graph-driver exports.
//!
//! As with [`crate::api::HcsApi`], everything that decides something lives above this trait
//! in platform-neutral code ([`crate::v1`], [`crate::wclayer`], [`crate::hns_call`]), tested
//! on Linux against `fake_vmcompute::FakeVmcompute` (feature `fake`). The Win32
//! implementation (`sys::vmcompute`) loads vmcompute.dll lazily and resolves each export on
//! first use, so a missing export fails only its call, with `ERROR_PROC_NOT_FOUND`.
//!
//! v1 calls are synchronous: each returns an HRESULT and optionally an output string and a
//! result document (`{Error, ErrorMessage, ErrorEvents}`). A long-running call may return
//! `ERROR_VMCOMPUTE_OPERATION_PENDING` (`0xC0370103`); its completion then arrives as a
//! notification on the callback registered for the handle (§1.6, [`crate::v1`]).

use std::fmt;
use std::sync::Arc;

pub use crate::api::{ProcessInformation, SystemCall};
use crate::api::{RawProcess, RawSystem};
use crate::cow::Stdio;

/// An `HCS_CALLBACK` registration handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawCallback(pub usize);

/// What a v1 call returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Output {
    /// The HRESULT (negative = failure, `0xC0370103` = pending).
    pub hr: i32,
    /// The output string (properties, the list of systems, the HNS response…), if any.
    pub output: Option<String>,
    /// The result document, if any.
    pub result: Option<String>,
}

impl V1Output {
    /// A bare HRESULT.
    pub fn hr(hr: i32) -> Self {
        Self {
            hr,
            ..Default::default()
        }
    }
}

/// A v1 notification (`HCS_NOTIFICATION_CALLBACK` arguments), copied out of HCS memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Notification {
    /// The notification type (see [`crate::v1::notification`]).
    pub notification_type: u32,
    /// The raw status HRESULT (negative = the operation failed).
    pub status: i32,
    /// The notification data, when present.
    pub data: Option<String>,
}

/// Receives the notifications of one handle. Called on HCS worker threads; must not block.
pub type NotificationSink = Arc<dyn Fn(V1Notification) + Send + Sync>;

/// A GUID as Windows lays it out (`GUID`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LayerGuid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

impl fmt::Display for LayerGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl LayerGuid {
    /// The 16 bytes in Windows byte order (the root `NameToGuid` result).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.data3.to_le_bytes());
        b[8..].copy_from_slice(&self.data4);
        b
    }
}

/// `WC_LAYER_DESCRIPTOR`: one parent layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// `NameToGuid(basename(path))`.
    pub layer_id: LayerGuid,
    /// Flags (bit 31 = dirty); hcsshim passes 0.
    pub flags: u32,
    /// The layer path.
    pub path: String,
}

/// One wclayer export call. Every export except `NameToGuid`, `GetBaseImages`,
/// `ProcessBaseImage`, `ProcessUtilityImage` and `GrantVmAccess` also receives the driver
/// info `{Flavour: 1 (filter driver), HomeDir: ""}`, which the implementation supplies; `id`
/// is the full layer path, as hcsshim passes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerCall<'a> {
    /// `ActivateLayer(info, id)`.
    Activate {
        /// Layer path.
        id: &'a str,
    },
    /// `DeactivateLayer(info, id)`.
    Deactivate {
        /// Layer path.
        id: &'a str,
    },
    /// `CreateLayer(info, id, parent)`.
    Create {
        /// Layer path.
        id: &'a str,
        /// Parent layer id.
        parent: &'a str,
    },
    /// `CreateSandboxLayer(info, id, NULL, descriptors, count)`.
    CreateSandbox {
        /// Layer path.
        id: &'a str,
        /// Parent layers.
        parents: &'a [LayerDescriptor],
    },
    /// `ExpandSandboxSize(info, id, size)`.
    ExpandSandboxSize {
        /// Layer path.
        id: &'a str,
        /// New size in bytes.
        size: u64,
    },
    /// `DestroyLayer(info, id)`.
    Destroy {
        /// Layer path.
        id: &'a str,
    },
    /// `ExportLayer(info, id, exportPath, descriptors, count)`.
    Export {
        /// Layer path.
        id: &'a str,
        /// Destination folder.
        path: &'a str,
        /// Parent layers.
        parents: &'a [LayerDescriptor],
    },
    /// `ImportLayer(info, id, importPath, descriptors, count)`.
    Import {
        /// Layer path.
        id: &'a str,
        /// Source folder (transport format).
        path: &'a str,
        /// Parent layers.
        parents: &'a [LayerDescriptor],
    },
    /// `GetLayerMountPath(info, id, &length, buffer)` (both calls).
    GetMountPath {
        /// Layer path.
        id: &'a str,
    },
    /// `GetBaseImages(&buffer)`.
    GetBaseImages,
    /// `LayerExists(info, id, &exists)`.
    Exists {
        /// Layer path.
        id: &'a str,
    },
    /// `NameToGuid(name, &guid)`.
    NameToGuid {
        /// The name.
        name: &'a str,
    },
    /// `PrepareLayer(info, id, descriptors, count)`.
    Prepare {
        /// Layer path.
        id: &'a str,
        /// Parent layers.
        parents: &'a [LayerDescriptor],
    },
    /// `UnprepareLayer(info, id)`.
    Unprepare {
        /// Layer path.
        id: &'a str,
    },
    /// `ProcessBaseImage(path)`.
    ProcessBaseImage {
        /// Layer root.
        path: &'a str,
    },
    /// `ProcessUtilityImage(path)`.
    ProcessUtilityImage {
        /// `<layer>\UtilityVM`.
        path: &'a str,
    },
    /// `GrantVmAccess(vmid, filepath)`.
    GrantVmAccess {
        /// The VM id.
        vm_id: &'a str,
        /// The file.
        path: &'a str,
    },
}

impl LayerCall<'_> {
    /// The vmcompute.dll export name.
    pub fn export(&self) -> &'static str {
        match self {
            LayerCall::Activate { .. } => "ActivateLayer",
            LayerCall::Deactivate { .. } => "DeactivateLayer",
            LayerCall::Create { .. } => "CreateLayer",
            LayerCall::CreateSandbox { .. } => "CreateSandboxLayer",
            LayerCall::ExpandSandboxSize { .. } => "ExpandSandboxSize",
            LayerCall::Destroy { .. } => "DestroyLayer",
            LayerCall::Export { .. } => "ExportLayer",
            LayerCall::Import { .. } => "ImportLayer",
            LayerCall::GetMountPath { .. } => "GetLayerMountPath",
            LayerCall::GetBaseImages => "GetBaseImages",
            LayerCall::Exists { .. } => "LayerExists",
            LayerCall::NameToGuid { .. } => "NameToGuid",
            LayerCall::Prepare { .. } => "PrepareLayer",
            LayerCall::Unprepare { .. } => "UnprepareLayer",
            LayerCall::ProcessBaseImage { .. } => "ProcessBaseImage",
            LayerCall::ProcessUtilityImage { .. } => "ProcessUtilityImage",
            LayerCall::GrantVmAccess { .. } => "GrantVmAccess",
        }
    }
}

/// What a successful wclayer call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerOutput {
    /// Nothing.
    None,
    /// A string (mount path, base images JSON).
    Text(String),
    /// `LayerExists`.
    Exists(bool),
    /// `NameToGuid`.
    Guid(LayerGuid),
}

/// The raw vmcompute.dll calls that computecore does not replace.
pub trait VmcomputeApi: Send + Sync + fmt::Debug + 'static {
    /// `HcsEnumerateComputeSystems(query, &systems, &result)`.
    fn enumerate_compute_systems(&self, query: &str) -> V1Output;
    /// `HcsCreateComputeSystem(id, configuration, identity=0, &system, &result)`. May be
    /// pending; the handle is returned then too.
    fn create_compute_system(&self, id: &str, configuration: &str)
        -> (V1Output, Option<RawSystem>);
    /// `HcsOpenComputeSystem(id, &system, &result)`.
    fn open_compute_system(&self, id: &str) -> (V1Output, Option<RawSystem>);
    /// `HcsCloseComputeSystem(system)`.
    fn close_compute_system(&self, system: RawSystem) -> i32;
    /// `HcsStart/Shutdown/Terminate/Pause/Resume/SaveComputeSystem(system, options, &result)`.
    /// v1 has no `Crash`; it fails with `ERROR_PROC_NOT_FOUND`.
    fn system_call(&self, call: SystemCall, system: RawSystem, options: &str) -> V1Output;
    /// `HcsGetComputeSystemProperties(system, query, &properties, &result)`.
    fn get_compute_system_properties(&self, system: RawSystem, query: &str) -> V1Output;
    /// `HcsModifyComputeSystem(system, configuration, &result)` (synchronous).
    fn modify_compute_system(&self, system: RawSystem, configuration: &str) -> V1Output;
    /// `HcsRegisterComputeSystemCallback(system, callback, context, &callbackHandle)`.
    fn register_compute_system_callback(
        &self,
        system: RawSystem,
        sink: NotificationSink,
    ) -> Result<RawCallback, i32>;
    /// `HcsUnregisterComputeSystemCallback(callbackHandle)`: blocks until callbacks in
    /// flight have finished.
    fn unregister_compute_system_callback(&self, callback: RawCallback) -> i32;

    /// `HcsCreateProcess(system, parameters, &info, &process, &result)` (synchronous). The
    /// stdio handles of `info` are owned by the caller (see [`VmcomputeApi::stdio_from_info`]).
    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
    ) -> (V1Output, Option<(RawProcess, ProcessInformation)>);
    /// `HcsOpenProcess(system, pid, &process, &result)`.
    fn open_process(&self, system: RawSystem, pid: u32) -> (V1Output, Option<RawProcess>);
    /// `HcsCloseProcess(process)`.
    fn close_process(&self, process: RawProcess) -> i32;
    /// `HcsTerminateProcess(process, &result)`.
    fn terminate_process(&self, process: RawProcess) -> V1Output;
    /// `HcsSignalProcess(process, options, &result)`.
    fn signal_process(&self, process: RawProcess, options: &str) -> V1Output;
    /// `HcsGetProcessInfo(process, &info, &result)`.
    fn get_process_info(&self, process: RawProcess) -> (V1Output, Option<ProcessInformation>);
    /// `HcsGetProcessProperties(process, &properties, &result)`: the `ProcessStatus`.
    fn get_process_properties(&self, process: RawProcess) -> V1Output;
    /// `HcsModifyProcess(process, settings, &result)`.
    fn modify_process(&self, process: RawProcess, settings: &str) -> V1Output;
    /// `HcsRegisterProcessCallback(process, callback, context, &callbackHandle)`.
    fn register_process_callback(
        &self,
        process: RawProcess,
        sink: NotificationSink,
    ) -> Result<RawCallback, i32>;
    /// `HcsUnregisterProcessCallback(callbackHandle)`: drains callbacks in flight.
    fn unregister_process_callback(&self, callback: RawCallback) -> i32;
    /// Turns the stdio handles of a process into streams, taking ownership of them.
    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio>;

    /// `HcsGetServiceProperties(query, &properties, &result)`.
    fn get_service_properties(&self, query: &str) -> V1Output;
    /// `HcsModifyServiceSettings(settings, &result)`.
    fn modify_service_settings(&self, settings: &str) -> V1Output;

    /// `HNSCall(method, path, request, &response)`; the response is the output.
    fn hns_call(&self, method: &str, path: &str, request: &str) -> V1Output;

    /// One wclayer export. `Err` is the raw failure HRESULT.
    fn layer_call(&self, call: LayerCall<'_>) -> Result<LayerOutput, i32>;
}
