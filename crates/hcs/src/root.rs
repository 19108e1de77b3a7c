//! The root API of the reference's package `hcsshim` (hcs-hcn-api.md §1.2): the legacy,
//! schema1 facade that old callers (graph drivers, docker's Windows daemon) program against.
//!
//! It is a thin layer over [`System`] and [`crate::Process`] (the computecore engine; the
//! reference runs it over vmcompute.dll, but HCS accepts the same schema1 documents through
//! both DLLs). What it adds is the root package's behaviour, kept on purpose because legacy
//! callers depend on it:
//!
//! * [`Container::shutdown`] and [`Container::terminate`] **return an error on success**: a
//!   [`ContainerError`] whose kind is `ERROR_VMCOMPUTE_OPERATION_PENDING` (`0xC0370103`), so
//!   callers test it with [`is_pending`] and then wait.
//! * [`Container::wait`] reports the unexpected-exit error when the wait itself succeeded.
//! * [`Container::wait_timeout`] / [`Process::wait_timeout`] fail with `ErrTimeout` and the
//!   operations `"hcsshim::ComputeSystem::Wait"` / `"hcsshim::Process::Wait"`.
//! * [`Process::kill`] fails with `ErrElementNotFound` (operation `"hcsshim::Process::Kill"`)
//!   when the signal was not delivered.
//! * [`Container::has_pending_updates`] is always `false`.
//! * Errors of a container or process are converted to [`ContainerError`] /
//!   [`ProcessError`] (message `"container <id> encountered an error during <op>: …"`);
//!   [`create_container`], [`open_container`] and [`get_containers`] return the engine error
//!   unconverted ([`RootError::Hcs`]), as the reference does.
//! * The root predicates unwrap one container/process level and then apply the engine
//!   predicates. The reference's `IsNotExist` also matches the HNS `EndpointNotFoundError` /
//!   `NetworkNotFoundError` types; those live in the network crates, which test their own.
//!
//! The root layer functions ([`activate_layer`] and the rest, taking a [`DriverInfo`] and a
//! layer id) wrap [`crate::wclayer`] and are Windows only.
//!
//! [`create_container`] merges the JSON of `HCSSHIM_CREATECONTAINER_ADDITIONALJSON` (read once
//! per process) into the document, as the reference does.
//!
//! ```no_run
//! use std::time::Duration;
//! use hcs::root::{self, ContainerConfig, Layer, ProcessConfig};
//!
//! # async fn legacy() -> root::Result<()> {
//! let config = ContainerConfig {
//!     system_type: "Container".into(),
//!     name: "legacy-1".into(),
//!     layer_folder_path: r"C:\ProgramData\docker\windowsfilter\legacy-1".into(),
//!     layers: vec![Layer {
//!         id: "8c1f7d2a-5b6e-5f0a-9d3c-2e4b6a8c0d1e".into(),
//!         path: r"C:\ProgramData\docker\windowsfilter\base".into(),
//!     }],
//!     ..Default::default()
//! };
//! let container = root::create_container("legacy-1", &config).await?;
//! container.start().await?;
//! let process = container
//!     .create_process(&ProcessConfig { command_line: "cmd /c ver".into(), ..Default::default() })
//!     .await?;
//! process.wait_timeout(Duration::from_secs(60)).await?;
//! println!("exit code {}", process.exit_code()?);
//! process.close().await?;
//! // The root Shutdown "fails" with pending when it worked.
//! match container.shutdown().await {
//!     Err(e) if root::is_pending(&e) => container.wait_timeout(Duration::from_secs(30)).await?,
//!     Err(e) if root::is_already_stopped(&e) => {}
//!     Err(e) => return Err(e),
//!     Ok(()) => {}
//! }
//! container.close().await
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::api::HcsApi;
use crate::cow::Stdio;
use crate::error::{self, Error};

use crate::system::System;
use crate::timeout::Timeouts;

mod layers;
pub use layers::{
    activate_layer, create_layer, create_scratch_layer, deactivate_layer, destroy_layer,
    expand_sandbox_size, export_layer, get_layer_mount_path, get_shared_base_images,
    grant_vm_access, import_layer, layer_exists, layer_path, name_to_guid, prepare_layer,
    process_base_layer, process_utility_vm_image, unprepare_layer, DriverInfo,
};

/// The error types and codes the root package re-exports (spec §2.1's starred names are
/// [`HResult`]'s constants, with the Go names as doc aliases; `hcsshim.HcsError` is
/// [`HcsError`]).
pub use crate::error::{Error as HcsError, ErrorKind};
pub use crate::hresult::HResult;

pub use hcs_schema::v1::{
    AssignedDevice, ComputeSystemQuery, ContainerConfig, ContainerProperties, HvRuntime, Layer,
    MappedDir, MappedPipe, MappedVirtualDisk, MappedVirtualDiskController, MemoryStats,
    NetworkStats, ProcessConfig, ProcessListItem, ProcessorStats, RequestType,
    ResourceModificationRequestResponse, ResourceType, Statistics, StorageStats,
};

/// `WaitErrExecFailed`: the exit code of a process that could not be started.
pub const WAIT_ERR_EXEC_FAILED: i32 = crate::WAIT_ERR_EXEC_FAILED;
/// `ERROR_GEN_FAILURE` (31).
pub const ERROR_GEN_FAILURE: u32 = 31;
/// `ERROR_SHUTDOWN_IN_PROGRESS` (1115).
pub const ERROR_SHUTDOWN_IN_PROGRESS: u32 = 1115;
/// `WSAEINVAL` (10022).
pub const WSAEINVAL: u32 = 10022;
/// `TimeoutInfinite`.
pub const TIMEOUT_INFINITE: u32 = crate::TIMEOUT_INFINITE;

/// The environment variable whose JSON is merged into every [`create_container`] document.
pub const ADDITIONAL_JSON_ENV: &str = "HCSSHIM_CREATECONTAINER_ADDITIONALJSON";

/// The root `Result`.
pub type Result<T, E = RootError> = std::result::Result<T, E>;

/// The root `ContainerError`: an engine error of one container, displayed as
/// `container <id> encountered an error during <op>: <err>`.
#[derive(Debug, Clone)]
pub struct ContainerError {
    id: String,
    inner: Error,
}

/// The root `ProcessError`: an engine error of one process, displayed as
/// `process <pid> in container <id> encountered an error during <op>: <err>`.
#[derive(Debug, Clone)]
pub struct ProcessError {
    id: String,
    pid: u32,
    inner: Error,
}

/// An error of the root API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RootError {
    /// An error of a container's operation.
    #[error("{0}")]
    Container(ContainerError),
    /// An error of a process's operation.
    #[error("{0}")]
    Process(ProcessError),
    /// An engine error returned as is (create, open, enumerate).
    #[error("{0}")]
    Hcs(Error),
    /// `HCSSHIM_CREATECONTAINER_ADDITIONALJSON` could not be merged.
    #[error("failed to merge additional JSON '{json}': {reason}")]
    AdditionalJson {
        /// The variable's value.
        json: String,
        /// Why it could not be merged.
        reason: String,
    },
}

impl RootError {
    /// The engine error one level down (the reference's `getInnerError`).
    pub fn inner(&self) -> Option<&Error> {
        match self {
            RootError::Container(e) => Some(&e.inner),
            RootError::Process(e) => Some(&e.inner),
            RootError::Hcs(e) => Some(e),
            RootError::AdditionalJson { .. } => None,
        }
    }
}

/// Renders the inner error as the root wrappers do: an errno as
/// `failure in a Windows system call: <msg> (0x<code>)`, anything else as its message.
fn render(f: &mut std::fmt::Formatter<'_>, inner: &Error) -> std::fmt::Result {
    if !inner.operation().is_empty() {
        write!(f, " encountered an error during {}", inner.operation())?;
    }
    match inner.kind() {
        ErrorKind::HResult(hr) => {
            let msg = hr.message().unwrap_or("unknown error");
            write!(
                f,
                ": failure in a Windows system call: {msg} ({:#x})",
                hr.normalized().value()
            )?
        }
        kind => write!(f, ": {kind}")?,
    }
    if let Some(extra) = inner.extra() {
        write!(f, " extra info: {extra}")?;
    }
    for ev in inner.events() {
        write!(f, "\n{ev}")?;
    }
    Ok(())
}

impl std::fmt::Display for ContainerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {}", self.id)?;
        render(f, &self.inner)
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} in container {}", self.pid, self.id)?;
        render(f, &self.inner)
    }
}

impl ContainerError {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The engine error (operation, kind, error records).
    pub fn inner(&self) -> &Error {
        &self.inner
    }
}

impl ProcessError {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The engine error (operation, kind, error records).
    pub fn inner(&self) -> &Error {
        &self.inner
    }
}

fn applies(err: &RootError, predicate: fn(&Error) -> bool) -> bool {
    err.inner().is_some_and(predicate)
}

/// Root `IsNotExist`.
pub fn is_not_exist(err: &RootError) -> bool {
    applies(err, error::is_not_exist)
}
/// Root `IsAlreadyClosed`.
pub fn is_already_closed(err: &RootError) -> bool {
    applies(err, error::is_already_closed)
}
/// Root `IsPending`: true for the success "error" of [`Container::shutdown`] /
/// [`Container::terminate`].
pub fn is_pending(err: &RootError) -> bool {
    applies(err, error::is_pending)
}
/// Root `IsTimeout`.
pub fn is_timeout(err: &RootError) -> bool {
    applies(err, error::is_timeout)
}
/// Root `IsAlreadyStopped`.
pub fn is_already_stopped(err: &RootError) -> bool {
    applies(err, error::is_already_stopped)
}
/// Root `IsNotSupported`.
pub fn is_not_supported(err: &RootError) -> bool {
    applies(err, error::is_not_supported)
}
/// Root `IsOperationInvalidState`.
pub fn is_operation_invalid_state(err: &RootError) -> bool {
    applies(err, error::is_operation_invalid_state)
}
/// Root `IsAccessIsDenied`.
pub fn is_access_is_denied(err: &RootError) -> bool {
    applies(err, error::is_access_is_denied)
}

/// Merges `from` into `to` as the reference's `mergemaps.MergeJSON` does: objects merge key
/// by key, recursively; any other value of `from` replaces the one in `to`.
pub fn merge_json(to: &mut Value, from: Value) {
    match (to, from) {
        (Value::Object(to), Value::Object(from)) => {
            for (k, v) in from {
                match to.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_json(existing, v)
                    }
                    _ => {
                        to.insert(k, v);
                    }
                }
            }
        }
        (to, from) => *to = from,
    }
}

/// The create document: `config` with `additional` (the environment's JSON) merged in.
pub fn create_document(config: &ContainerConfig, additional: &str) -> Result<Value> {
    let mut doc = serde_json::to_value(config).map_err(|e| RootError::AdditionalJson {
        json: additional.to_string(),
        reason: e.to_string(),
    })?;
    if additional.is_empty() {
        return Ok(doc);
    }
    let from: Value = serde_json::from_str(additional).map_err(|e| RootError::AdditionalJson {
        json: additional.to_string(),
        reason: e.to_string(),
    })?;
    if !from.is_object() {
        return Err(RootError::AdditionalJson {
            json: additional.to_string(),
            reason: "not a JSON object".into(),
        });
    }
    merge_json(&mut doc, from);
    Ok(doc)
}

fn additional_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| std::env::var(ADDITIONAL_JSON_ENV).unwrap_or_default())
}

/// `CreateContainer(id, config)` on this host's HCS (Windows only; elsewhere the
/// "HCS is not available" error). Does not start the container.
pub async fn create_container(id: &str, config: &ContainerConfig) -> Result<Container> {
    let api = crate::sys::default_api().map_err(RootError::Hcs)?;
    create_container_with(api, id, config, additional_json(), crate::env_timeouts()).await
}

/// [`create_container`] against any [`HcsApi`], with the additional JSON given explicitly.
pub async fn create_container_with(
    api: Arc<dyn HcsApi>,
    id: &str,
    config: &ContainerConfig,
    additional_json: &str,
    timeouts: Timeouts,
) -> Result<Container> {
    let doc = create_document(config, additional_json)?;
    let system = System::create(api, id, &doc, timeouts)
        .await
        .map_err(RootError::Hcs)?;
    Ok(Container { system })
}

/// `OpenContainer(id)` on this host's HCS.
pub async fn open_container(id: &str) -> Result<Container> {
    let api = crate::sys::default_api().map_err(RootError::Hcs)?;
    open_container_with(api, id, crate::env_timeouts()).await
}

/// [`open_container`] against any [`HcsApi`].
pub async fn open_container_with(
    api: Arc<dyn HcsApi>,
    id: &str,
    timeouts: Timeouts,
) -> Result<Container> {
    let system = System::open(api, id, timeouts)
        .await
        .map_err(RootError::Hcs)?;
    Ok(Container { system })
}

/// `GetContainers(query)`: the properties of the compute systems matching `query`.
pub async fn get_containers(query: &ComputeSystemQuery) -> Result<Vec<ContainerProperties>> {
    let api = crate::sys::default_api().map_err(RootError::Hcs)?;
    get_containers_with(api, query).await
}

/// [`get_containers`] against any [`HcsApi`].
pub async fn get_containers_with(
    api: Arc<dyn HcsApi>,
    query: &ComputeSystemQuery,
) -> Result<Vec<ContainerProperties>> {
    System::enumerate(api, query).await.map_err(RootError::Hcs)
}

/// `SetCurrentThreadCompartmentId(id)` (iphlpapi.dll): moves the calling OS thread into a
/// network compartment. Windows only. The setting belongs to the OS thread: call it from
/// code pinned to one thread (e.g. inside `spawn_blocking` or a current-thread runtime),
/// not across `.await` points.
pub fn set_current_thread_compartment_id(compartment_id: u32) -> Result<()> {
    const OP: &str = "SetCurrentThreadCompartmentId";
    let hr = crate::sys::set_current_thread_compartment_id(compartment_id)
        .map_err(|e| RootError::Hcs(e.with_op(OP)))?;
    match HResult::from_call(hr) {
        Some(code) => Err(RootError::Hcs(Error::op(OP, code))),
        None => Ok(()),
    }
}

/// The root `Container`: a compute system driven with schema1 documents.
#[derive(Debug, Clone)]
pub struct Container {
    system: System,
}

impl Container {
    /// Wraps an engine system.
    pub fn from_system(system: System) -> Self {
        Self { system }
    }

    /// The engine system underneath.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// The container id.
    pub fn id(&self) -> &str {
        self.system.id()
    }

    fn convert(&self, err: Error) -> RootError {
        RootError::Container(ContainerError {
            id: self.system.id().to_string(),
            inner: err,
        })
    }

    fn pending(&self, op: &str) -> RootError {
        self.convert(Error::op(op, HResult::ERROR_VMCOMPUTE_OPERATION_PENDING))
    }

    /// `Start`.
    pub async fn start(&self) -> Result<()> {
        self.system.start().await.map_err(|e| self.convert(e))
    }

    /// `Shutdown`: asks the container to shut down. **On success returns
    /// `Err(ContainerError{ERROR_VMCOMPUTE_OPERATION_PENDING})`**; test it with
    /// [`is_pending`], then [`Container::wait`].
    pub async fn shutdown(&self) -> Result<()> {
        self.system.shutdown().await.map_err(|e| self.convert(e))?;
        Err(self.pending("hcsshim::ComputeSystem::Shutdown"))
    }

    /// `Terminate`: same contract as [`Container::shutdown`] (pending on success).
    pub async fn terminate(&self) -> Result<()> {
        self.system.terminate().await.map_err(|e| self.convert(e))?;
        Err(self.pending("hcsshim::ComputeSystem::Terminate"))
    }

    /// `Wait`: waits for the exit; when the wait succeeded, returns the unexpected-exit error
    /// if the container exited unexpectedly.
    pub async fn wait(&self) -> Result<()> {
        self.system.wait().await.map_err(|e| self.convert(e))?;
        match self.system.exit_error() {
            Some(e) => Err(self.convert(e)),
            None => Ok(()),
        }
    }

    /// `WaitTimeout`: [`Container::wait`] bounded by `timeout`; fails with `ErrTimeout`
    /// (operation `"hcsshim::ComputeSystem::Wait"`) when it elapses.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.wait()).await {
            Ok(r) => r,
            Err(_) => Err(self.convert(Error::op(
                "hcsshim::ComputeSystem::Wait",
                ErrorKind::Timeout,
            ))),
        }
    }

    /// `Pause`.
    pub async fn pause(&self) -> Result<()> {
        self.system.pause().await.map_err(|e| self.convert(e))
    }

    /// `Resume`.
    pub async fn resume(&self) -> Result<()> {
        self.system.resume().await.map_err(|e| self.convert(e))
    }

    /// `HasPendingUpdates`: always `false`, as in the reference.
    pub async fn has_pending_updates(&self) -> Result<bool> {
        Ok(false)
    }

    /// `Statistics` (v1 property query).
    pub async fn statistics(&self) -> Result<Statistics> {
        self.system.statistics().await.map_err(|e| self.convert(e))
    }

    /// `ProcessList` (v1 property query).
    pub async fn process_list(&self) -> Result<Vec<ProcessListItem>> {
        self.system
            .process_list()
            .await
            .map_err(|e| self.convert(e))
    }

    /// `MappedVirtualDisks` (v1 property query `MappedVirtualDisk`): the disks by controller.
    /// computecore refuses this v1-only property type on the builds that check it; the
    /// resulting HCS error is returned as a [`ContainerError`].
    pub async fn mapped_virtual_disks(&self) -> Result<BTreeMap<i64, MappedVirtualDiskController>> {
        let props = self
            .system
            .properties_v1(&[hcs_schema::v1::PropertyType::MappedVirtualDisk])
            .await
            .map_err(|e| self.convert(e))?;
        Ok(props.mapped_virtual_disk_controllers)
    }

    /// `CreateProcess` with a schema1 `ProcessConfig`.
    pub async fn create_process(&self, config: &ProcessConfig) -> Result<Process> {
        let p = self
            .system
            .create_process(config)
            .await
            .map_err(|e| self.convert(e))?;
        Ok(Process {
            id: self.id().to_string(),
            p,
        })
    }

    /// `OpenProcess(pid)`.
    pub async fn open_process(&self, pid: u32) -> Result<Process> {
        let p = self
            .system
            .open_process(pid)
            .await
            .map_err(|e| self.convert(e))?;
        Ok(Process {
            id: self.id().to_string(),
            p,
        })
    }

    /// `Modify` with a schema1 `ResourceModificationRequestResponse` (e.g. a network
    /// endpoint hot-add).
    pub async fn modify(&self, request: &ResourceModificationRequestResponse) -> Result<()> {
        self.system
            .modify(request)
            .await
            .map_err(|e| self.convert(e))
    }

    /// `Close`: releases the handle; does not stop the container.
    pub async fn close(&self) -> Result<()> {
        self.system.close().await.map_err(|e| self.convert(e))
    }
}

/// The root `Process`.
#[derive(Debug, Clone)]
pub struct Process {
    id: String,
    p: crate::Process,
}

impl Process {
    /// The engine process underneath.
    pub fn process(&self) -> &crate::Process {
        &self.p
    }

    /// `Pid`.
    pub fn pid(&self) -> u32 {
        self.p.pid()
    }

    fn convert(&self, err: Error) -> RootError {
        RootError::Process(ProcessError {
            id: self.id.clone(),
            pid: self.p.pid(),
            inner: err,
        })
    }

    /// `Kill`: fails with `ErrElementNotFound` (operation `"hcsshim::Process::Kill"`) when
    /// the signal was not delivered.
    pub async fn kill(&self) -> Result<()> {
        let delivered = self.p.kill().await.map_err(|e| self.convert(e))?;
        if !delivered {
            return Err(self.convert(Error::op(
                "hcsshim::Process::Kill",
                HResult::ERROR_NOT_FOUND,
            )));
        }
        Ok(())
    }

    /// `Wait`.
    pub async fn wait(&self) -> Result<()> {
        self.p.wait().await.map_err(|e| self.convert(e))
    }

    /// `WaitTimeout`: fails with `ErrTimeout` (operation `"hcsshim::Process::Wait"`) when
    /// `timeout` elapses first.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.wait()).await {
            Ok(r) => r,
            Err(_) => Err(self.convert(Error::op("hcsshim::Process::Wait", ErrorKind::Timeout))),
        }
    }

    /// `ExitCode`: `ErrInvalidProcessState` while the process runs.
    pub fn exit_code(&self) -> Result<i64> {
        self.p.exit_code().map_err(|e| self.convert(e))
    }

    /// `ResizeConsole(width, height)`.
    pub async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        self.p
            .resize_console(width, height)
            .await
            .map_err(|e| self.convert(e))
    }

    /// `Stdio`: the pipes created with the process the first time, new ones from
    /// `HcsGetProcessInfo` afterwards (`StdioLegacy`). The caller owns the streams.
    pub async fn stdio(&self) -> Result<Stdio> {
        self.p.stdio_legacy().await.map_err(|e| self.convert(e))
    }

    /// `CloseStdin`.
    pub async fn close_stdin(&self) -> Result<()> {
        self.p.close_stdin().await.map_err(|e| self.convert(e))
    }

    /// `Close`: releases the handle and the pipes; does not kill the process.
    pub async fn close(&self) -> Result<()> {
        self.p.close().await.map_err(|e| self.convert(e))
    }
}

#[cfg(test)]
mod tests;
