//! The OS boundary of the HCS backend: one method per raw computecore.dll call
//! (hcs-hcn-api.md §1.5).
//!
//! Everything that decides something (JSON documents, operation waits and cancellation,
//! HRESULT mapping, result-document parsing, event decoding, state) lives above this trait
//! in platform-neutral code, tested on Linux against `fake::FakeHcs` (feature `fake`). The Win32
//! implementation (`sys::Computecore`) is a thin layer that converts strings to
//! UTF-16, calls the export, and copies and frees returned strings.
//!
//! The methods are synchronous and may block (a wait blocks for up to its timeout); the
//! async layer calls them on tokio's blocking pool. A call is never abandoned once started
//! (hcs-hcn-api.md §8, cancellation): the handles it uses are kept alive until it returns.
//!
//! Return values follow the DLL: a raw `i32` HRESULT (negative = failure), which the caller
//! normalises with [`crate::HResult::from_call`].

use std::fmt;
use std::sync::Arc;

use crate::cow::Stdio;

/// An `HCS_OPERATION` handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawOperation(pub usize);

/// An `HCS_SYSTEM` handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawSystem(pub usize);

/// An `HCS_PROCESS` handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawProcess(pub usize);

/// A Win32 `HANDLE` value (0 and `INVALID_HANDLE_VALUE` mean "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawHandle(pub usize);

impl RawHandle {
    /// `INVALID_HANDLE_VALUE` (-1).
    pub const INVALID: RawHandle = RawHandle(usize::MAX);

    /// True for 0 and `INVALID_HANDLE_VALUE`: the stream was not requested (§1.3).
    pub fn is_none(self) -> bool {
        self.0 == 0 || self == Self::INVALID
    }
}

/// `HCS_PROCESS_INFORMATION`. The three handles are owned by whoever holds this value and
/// must reach [`HcsApi::stdio_from_info`] (which takes ownership) or be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessInformation {
    /// The process id.
    pub process_id: u32,
    /// The host end of stdin.
    pub std_input: RawHandle,
    /// The host end of stdout.
    pub std_output: RawHandle,
    /// The host end of stderr.
    pub std_error: RawHandle,
}

/// The outcome of waiting for (or reading) an operation result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationResult {
    /// The HRESULT of the operation (0 on success).
    pub hr: i32,
    /// The result document: the output of the tracked call on success (properties, a list of
    /// systems), or an error document on failure. `None` when HCS returned none.
    pub document: Option<String>,
    /// The process information, for the `…AndProcessInfo` variants on success.
    pub process_info: Option<ProcessInformation>,
}

/// `HCS_EVENT_OPTIONS`.
pub mod event_options {
    /// `HcsEventOptionNone`.
    pub const NONE: u32 = 0;
    /// `HcsEventOptionEnableOperationCallbacks`.
    pub const ENABLE_OPERATION_CALLBACKS: u32 = 1;
    /// `HcsEventOptionEnableLiveMigrationEvents`.
    pub const ENABLE_LIVE_MIGRATION_EVENTS: u32 = 4;
}

/// `HCS_RESOURCE_TYPE`.
pub mod resource_type {
    /// None.
    pub const NONE: u32 = 0;
    /// A file.
    pub const FILE: u32 = 1;
    /// A job object.
    pub const JOB: u32 = 2;
    /// A COM object.
    pub const COM_OBJECT: u32 = 3;
    /// A socket (live migration transport).
    pub const SOCKET: u32 = 4;
}

/// `GENERIC_ALL`, the access hcsshim requests when opening systems and processes.
pub const GENERIC_ALL: u32 = 0x1000_0000;

/// An event delivered to a registered callback (`HCS_EVENT`), copied out of HCS memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// `HCS_EVENT_TYPE`.
    pub event_type: u32,
    /// `EventData` as a string, when present.
    pub data: Option<String>,
}

/// Receives the events of one system or process handle. Called on HCS worker threads; must
/// not block for long and must not call back into HCS for the same handle.
pub type EventSink = Arc<dyn Fn(RawEvent) + Send + Sync>;

/// The compute-system operations that take `(system, operation, options)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemCall {
    /// `HcsStartComputeSystem`.
    Start,
    /// `HcsShutDownComputeSystem` (capital D in computecore).
    Shutdown,
    /// `HcsTerminateComputeSystem`.
    Terminate,
    /// `HcsCrashComputeSystem`.
    Crash,
    /// `HcsPauseComputeSystem`.
    Pause,
    /// `HcsResumeComputeSystem`.
    Resume,
    /// `HcsSaveComputeSystem`.
    Save,
}

impl SystemCall {
    /// The computecore export name.
    pub fn export(self) -> &'static str {
        match self {
            SystemCall::Start => "HcsStartComputeSystem",
            SystemCall::Shutdown => "HcsShutDownComputeSystem",
            SystemCall::Terminate => "HcsTerminateComputeSystem",
            SystemCall::Crash => "HcsCrashComputeSystem",
            SystemCall::Pause => "HcsPauseComputeSystem",
            SystemCall::Resume => "HcsResumeComputeSystem",
            SystemCall::Save => "HcsSaveComputeSystem",
        }
    }
}

/// The process operations that take `(process, operation, document)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessCall {
    /// `HcsTerminateProcess`.
    Terminate,
    /// `HcsSignalProcess`.
    Signal,
    /// `HcsModifyProcess`.
    Modify,
    /// `HcsGetProcessProperties`.
    GetProperties,
}

impl ProcessCall {
    /// The computecore export name.
    pub fn export(self) -> &'static str {
        match self {
            ProcessCall::Terminate => "HcsTerminateProcess",
            ProcessCall::Signal => "HcsSignalProcess",
            ProcessCall::Modify => "HcsModifyProcess",
            ProcessCall::GetProperties => "HcsGetProcessProperties",
        }
    }
}

/// The raw computecore.dll calls the backend needs.
///
/// Strings are passed as Rust strings; the implementation converts them. A `None` handle
/// result comes with a failure HRESULT. `Err` values are raw failure HRESULTs.
pub trait HcsApi: Send + Sync + fmt::Debug + 'static {
    /// `HcsCreateOperation(NULL, NULL)`: an operation without a completion callback.
    fn create_operation(&self) -> Result<RawOperation, i32>;
    /// `HcsCloseOperation`. Allowed while the operation is in flight (HCS finishes it).
    fn close_operation(&self, op: RawOperation);
    /// `HcsCancelOperation`.
    fn cancel_operation(&self, op: RawOperation) -> i32;
    /// `HcsGetOperationResult` (or `…AndProcessInfo` when `with_process_info`).
    fn get_operation_result(&self, op: RawOperation, with_process_info: bool) -> OperationResult;
    /// `HcsWaitForOperationResult` (or `…AndProcessInfo` when `with_process_info`), bounded
    /// by `timeout_ms` (`0xFFFFFFFF` = INFINITE).
    fn wait_for_operation_result(
        &self,
        op: RawOperation,
        timeout_ms: u32,
        with_process_info: bool,
    ) -> OperationResult;

    /// `HcsEnumerateComputeSystems(query, op)`.
    fn enumerate_compute_systems(&self, query: &str, op: RawOperation) -> i32;
    /// `HcsCreateComputeSystem(id, configuration, op, NULL, &system)`.
    fn create_compute_system(
        &self,
        id: &str,
        configuration: &str,
        op: RawOperation,
    ) -> (i32, Option<RawSystem>);
    /// `HcsOpenComputeSystem(id, access, &system)`.
    fn open_compute_system(&self, id: &str, access: u32) -> Result<RawSystem, i32>;
    /// `HcsCloseComputeSystem`: also unregisters the callback and drains callbacks in flight.
    fn close_compute_system(&self, system: RawSystem);
    /// `HcsStart/ShutDown/Terminate/Crash/Pause/Resume/SaveComputeSystem(system, op, options)`.
    fn system_call(
        &self,
        call: SystemCall,
        system: RawSystem,
        op: RawOperation,
        options: &str,
    ) -> i32;
    /// `HcsGetComputeSystemProperties(system, op, query)`.
    fn get_compute_system_properties(
        &self,
        system: RawSystem,
        op: RawOperation,
        query: &str,
    ) -> i32;
    /// `HcsModifyComputeSystem(system, op, configuration, NULL)`.
    fn modify_compute_system(
        &self,
        system: RawSystem,
        op: RawOperation,
        configuration: &str,
    ) -> i32;
    /// `HcsSetComputeSystemCallback(system, options, context, callback)`; events go to
    /// `sink` until the system handle is closed.
    fn set_compute_system_callback(&self, system: RawSystem, options: u32, sink: EventSink) -> i32;

    /// `HcsCreateProcess(system, parameters, op, NULL, &process)`.
    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
        op: RawOperation,
    ) -> (i32, Option<RawProcess>);
    /// `HcsOpenProcess(system, pid, access, &process)`.
    fn open_process(&self, system: RawSystem, pid: u32, access: u32) -> Result<RawProcess, i32>;
    /// `HcsCloseProcess`.
    fn close_process(&self, process: RawProcess);
    /// `HcsGetProcessInfo(process, op)`; the information arrives through the
    /// `…AndProcessInfo` result.
    fn get_process_info(&self, process: RawProcess, op: RawOperation) -> i32;
    /// `HcsTerminateProcess` / `HcsSignalProcess` / `HcsModifyProcess` /
    /// `HcsGetProcessProperties` `(process, op, document)`.
    fn process_call(
        &self,
        call: ProcessCall,
        process: RawProcess,
        op: RawOperation,
        document: &str,
    ) -> i32;
    /// `HcsSetProcessCallback(process, options, context, callback)`.
    fn set_process_callback(&self, process: RawProcess, options: u32, sink: EventSink) -> i32;

    /// `HcsGetServiceProperties(query, &result)` (synchronous).
    fn get_service_properties(&self, query: &str) -> OperationResult;
    /// `HcsModifyServiceSettings(settings, &result)` (synchronous).
    fn modify_service_settings(&self, settings: &str) -> OperationResult;

    /// Turns the stdio handles of a process into streams, taking ownership of them. Handles
    /// that are 0 or `INVALID_HANDLE_VALUE` give `None`.
    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio>;
}
