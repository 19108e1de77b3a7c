//! The v1 (vmcompute.dll) engine and its asynchronous model (hcs-hcn-api.md §1.3, §1.6).
//!
//! A long-running v1 call (create, start, pause, resume, save) either completes at once or
//! returns `ERROR_VMCOMPUTE_OPERATION_PENDING` (`0xC0370103`); the result then arrives as a
//! notification on the callback registered for the handle. [`Watcher`] receives those
//! notifications (it is the callback's sink) and [`Watcher::wait_for`] implements
//! hcsshim's `waitForNotification`: the expected completion gives its status; an exit
//! while waiting gives `ErrUnexpectedContainerExit`; a service disconnect gives
//! `ErrUnexpectedProcessAbort`; the timer gives `ErrTimeout`; a closed handle gives
//! `ErrHandleClose`; a type nobody delivers gives `ErrInvalidNotificationType`.
//!
//! Differences from hcsshim, on purpose:
//! * the exit (`SystemExited`, `ServiceDisconnect`) is sticky, seen by every waiter, where
//!   hcsshim's buffer-1 channel hands it to whichever goroutine reads first;
//! * a completion arriving while one is still unread is dropped and logged instead of
//!   blocking the HCS worker thread;
//! * calls are never abandoned on a deadline (§8): the call finishes on the blocking pool and
//!   only the notification wait is bounded.
//!
//! [`V1System`] is the compute system over vmcompute.dll, for hosts without computecore
//! (before 1809), and [`V1Process`] its processes.
//!
//! Here: the notification codes, [`V1System`] and the v1 service calls. The watcher is in
//! `watcher`, processes in `process`, and the `cow` trait impls of [`V1System`] in `cow`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hcs_schema::v1::{ComputeSystemQuery, ContainerProperties};
use serde::Serialize;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::api::RawSystem;
use crate::error::{is_timeout, Error, ErrorKind, Result};
use crate::hresult::HResult;
use crate::operation::{blocking, call_error};
use crate::timeout::Timeouts;
use crate::vmcompute::{RawCallback, SystemCall, V1Output, VmcomputeApi};

mod cow;
mod process;
mod watcher;
pub use process::V1Process;
pub use watcher::Watcher;

/// v1 notification codes (`hcsNotification*`).
pub mod notification {
    /// `Invalid`.
    pub const INVALID: u32 = 0x0;
    /// `SystemExited`.
    pub const SYSTEM_EXITED: u32 = 0x1;
    /// `SystemCreateCompleted`.
    pub const SYSTEM_CREATE_COMPLETED: u32 = 0x2;
    /// `SystemStartCompleted`.
    pub const SYSTEM_START_COMPLETED: u32 = 0x3;
    /// `SystemPauseCompleted`.
    pub const SYSTEM_PAUSE_COMPLETED: u32 = 0x4;
    /// `SystemResumeCompleted`.
    pub const SYSTEM_RESUME_COMPLETED: u32 = 0x5;
    /// `SystemCrashReport`.
    pub const SYSTEM_CRASH_REPORT: u32 = 0x6;
    /// `SystemSiloJobCreated`.
    pub const SYSTEM_SILO_JOB_CREATED: u32 = 0x7;
    /// `SystemSaveCompleted`.
    pub const SYSTEM_SAVE_COMPLETED: u32 = 0x8;
    /// `SystemRdpEnhancedModeStateChanged`.
    pub const SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED: u32 = 0x9;
    /// `SystemShutdownFailed`.
    pub const SYSTEM_SHUTDOWN_FAILED: u32 = 0xA;
    /// `SystemGetPropertiesCompleted`.
    pub const SYSTEM_GET_PROPERTIES_COMPLETED: u32 = 0xB;
    /// `SystemModifyCompleted`.
    pub const SYSTEM_MODIFY_COMPLETED: u32 = 0xC;
    /// `SystemCrashInitiated`.
    pub const SYSTEM_CRASH_INITIATED: u32 = 0xD;
    /// `SystemGuestConnectionClosed`.
    pub const SYSTEM_GUEST_CONNECTION_CLOSED: u32 = 0xE;
    /// `ProcessExited`.
    pub const PROCESS_EXITED: u32 = 0x0001_0000;
    /// `ServiceDisconnect`.
    pub const SERVICE_DISCONNECT: u32 = 0x0100_0000;
}

use notification as n;

/// Errors Shutdown/Terminate treat as success.
const STOP_IGNORED: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED,
    HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND,
    HResult::ERROR_VMCOMPUTE_OPERATION_PENDING,
];

fn to_json<T: Serialize + ?Sized>(value: &T, op: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::op(op, ErrorKind::InvalidArgument(format!("document: {e}"))))
}

fn output(out: V1Output, op: &str) -> Result<String> {
    if out.hr < 0 {
        return Err(call_error(out.hr, out.result.as_deref()).with_op(op));
    }
    match out.output {
        Some(d) if !d.trim().is_empty() => Ok(d),
        _ => Err(Error::op(op, ErrorKind::UnexpectedValue)),
    }
}

#[derive(Debug)]
struct Inner {
    api: Arc<dyn VmcomputeApi>,
    id: String,
    handle: Arc<RwLock<Option<RawSystem>>>,
    callback: Mutex<Option<RawCallback>>,
    watcher: Arc<Watcher>,
    timeouts: Timeouts,
    /// Lowercased `SystemType` and `RuntimeOsType`, read once after create/open.
    cached: Mutex<(String, String)>,
}

/// A system dropped without [`V1System::close`] still unregisters its callback and closes
/// its handle, unless a call holds the handle at that moment (then it is logged as leaked).
impl Drop for Inner {
    fn drop(&mut self) {
        match self.handle.try_write() {
            Ok(mut guard) => {
                if let Some(h) = guard.take() {
                    if let Some(cb) = lock(&self.callback).take() {
                        self.api.unregister_compute_system_callback(cb);
                    }
                    self.api.close_compute_system(h);
                }
            }
            Err(_) => {
                tracing::warn!(id = %self.id, "v1 system handle dropped during a call; leaked")
            }
        }
    }
}

/// A compute system over vmcompute.dll (the v1 engine). Cheap to clone.
#[derive(Debug, Clone)]
pub struct V1System {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl V1System {
    fn new(api: Arc<dyn VmcomputeApi>, id: &str, timeouts: Timeouts) -> Self {
        Self {
            inner: Arc::new(Inner {
                api,
                id: id.into(),
                handle: Arc::new(RwLock::new(None)),
                callback: Mutex::new(None),
                watcher: Watcher::for_system(),
                timeouts,
                cached: Mutex::new(Default::default()),
            }),
        }
    }

    /// `HcsCreateComputeSystem`; a pending create waits for `SystemCreateCompleted`, bounded
    /// by `SystemCreate`. On a timeout the system is terminated (best effort); on any failure
    /// the handle is closed.
    pub async fn create(
        api: Arc<dyn VmcomputeApi>,
        id: &str,
        document: &(impl Serialize + ?Sized),
        timeouts: Timeouts,
    ) -> Result<V1System> {
        const OP: &str = "hcs::CreateComputeSystem";
        let doc = to_json(document, OP)?;
        let system = V1System::new(api, id, timeouts);
        let (out, handle) = blocking({
            let api = system.inner.api.clone();
            let id = id.to_string();
            move || api.create_compute_system(&id, &doc)
        })
        .await?;
        let Some(handle) = handle else {
            let hr = if out.hr < 0 {
                out.hr
            } else {
                HResult::ERROR_INVALID_HANDLE.as_i32()
            };
            return Err(call_error(hr, out.result.as_deref())
                .with_op(OP)
                .with_system(id));
        };
        *system.inner.handle.write().await = Some(handle);
        let result = match system.register().await {
            Ok(()) => {
                system
                    .inner
                    .watcher
                    .process_async_result(
                        out,
                        n::SYSTEM_CREATE_COMPLETED,
                        Some(timeouts.system_create),
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        let result = match result {
            Ok(()) => system.cache_properties().await,
            Err(e) => Err(e),
        };
        if let Err(err) = result {
            if is_timeout(&err) {
                let _ = system.terminate().await;
            }
            let _ = system.close().await;
            return Err(err.with_op_if_empty(OP).with_system(id));
        }
        Ok(system)
    }

    /// `HcsOpenComputeSystem`, then registers the callback.
    pub async fn open(
        api: Arc<dyn VmcomputeApi>,
        id: &str,
        timeouts: Timeouts,
    ) -> Result<V1System> {
        const OP: &str = "hcs::OpenComputeSystem";
        let system = V1System::new(api, id, timeouts);
        let (out, handle) = blocking({
            let api = system.inner.api.clone();
            let id = id.to_string();
            move || api.open_compute_system(&id)
        })
        .await?;
        let handle = match handle {
            Some(h) if out.hr >= 0 => h,
            _ => {
                let hr = if out.hr < 0 {
                    out.hr
                } else {
                    HResult::ERROR_INVALID_HANDLE.as_i32()
                };
                return Err(call_error(hr, out.result.as_deref())
                    .with_op(OP)
                    .with_system(id));
            }
        };
        *system.inner.handle.write().await = Some(handle);
        let result = match system.register().await {
            Ok(()) => system.cache_properties().await,
            Err(e) => Err(e),
        };
        if let Err(err) = result {
            let _ = system.close().await;
            return Err(err.with_op_if_empty(OP).with_system(id));
        }
        Ok(system)
    }

    /// `HcsEnumerateComputeSystems` (v1): schema1 `ContainerProperties`; an empty answer is
    /// `UnexpectedValue`.
    pub async fn enumerate(
        api: Arc<dyn VmcomputeApi>,
        query: &ComputeSystemQuery,
    ) -> Result<Vec<ContainerProperties>> {
        const OP: &str = "hcs::GetComputeSystems";
        let q = to_json(query, OP)?;
        let out = blocking(move || api.enumerate_compute_systems(&q)).await?;
        let doc = output(out, OP)?;
        hcs_schema::json::from_str(&doc)
            .map_err(|e| Error::op(OP, ErrorKind::InvalidResponse(e.to_string())))
    }

    async fn register(&self) -> Result<()> {
        const OP: &str = "hcs::System::registerCallback";
        let (guard, handle) = self.handle(OP).await?;
        let sink = self.inner.watcher.sink();
        let api = self.inner.api.clone();
        let cb = blocking(move || {
            let _hold = guard;
            api.register_compute_system_callback(handle, sink)
        })
        .await?
        .map_err(|hr| call_error(hr, None).with_op(OP).with_system(&self.inner.id))?;
        *lock(&self.inner.callback) = Some(cb);
        Ok(())
    }

    /// Reads and caches `SystemType` and `RuntimeOsType` (an empty OS on a container means
    /// Windows, for pre-RS5 hosts), as hcsshim's `getCachedProperties`.
    async fn cache_properties(&self) -> Result<()> {
        let props = self
            .properties(&hcs_schema::v1::PropertyQuery::default())
            .await?;
        let typ = props["SystemType"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let mut os = props["RuntimeOsType"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if os.is_empty() && typ == "container" {
            os = "windows".into();
        }
        *lock(&self.inner.cached) = (typ, os);
        Ok(())
    }

    /// The lowercased `SystemType` (`container`, `virtualmachine`).
    pub fn system_type(&self) -> String {
        lock(&self.inner.cached).0.clone()
    }

    /// The compute system id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    async fn handle(
        &self,
        op: &str,
    ) -> Result<(OwnedRwLockReadGuard<Option<RawSystem>>, RawSystem)> {
        let guard = self.inner.handle.clone().read_owned().await;
        match *guard {
            Some(h) => Ok((guard, h)),
            None => Err(Error::op(op, ErrorKind::AlreadyClosed).with_system(&self.inner.id)),
        }
    }

    async fn call(&self, op: &str, call: SystemCall, options: String) -> Result<V1Output> {
        let (guard, handle) = self.handle(op).await?;
        let api = self.inner.api.clone();
        blocking(move || {
            let _hold = guard;
            api.system_call(call, handle, &options)
        })
        .await
    }

    async fn lifecycle(
        &self,
        op: &str,
        call: SystemCall,
        options: String,
        expected: u32,
        timeout: Duration,
    ) -> Result<()> {
        let out = self.call(op, call, options).await?;
        self.inner
            .watcher
            .process_async_result(out, expected, Some(timeout))
            .await
            .map_err(|e| e.with_op(op).with_system(&self.inner.id))
    }

    /// Starts the system; a pending start waits for `SystemStartCompleted` (`SystemStart`).
    pub async fn start(&self) -> Result<()> {
        let t = self.inner.timeouts.system_start;
        self.lifecycle(
            "hcs::System::Start",
            SystemCall::Start,
            String::new(),
            n::SYSTEM_START_COMPLETED,
            t,
        )
        .await
    }

    /// Pauses the system (`SystemPauseCompleted`, `SystemPause`).
    pub async fn pause(&self) -> Result<()> {
        let t = self.inner.timeouts.system_pause;
        self.lifecycle(
            "hcs::System::Pause",
            SystemCall::Pause,
            String::new(),
            n::SYSTEM_PAUSE_COMPLETED,
            t,
        )
        .await
    }

    /// Resumes the system (`SystemResumeCompleted`, `SystemResume`).
    pub async fn resume(&self) -> Result<()> {
        let t = self.inner.timeouts.system_resume;
        self.lifecycle(
            "hcs::System::Resume",
            SystemCall::Resume,
            String::new(),
            n::SYSTEM_RESUME_COMPLETED,
            t,
        )
        .await
    }

    /// Saves the system with `SaveOptions` (`SystemSaveCompleted`, `SystemSave`).
    pub async fn save(&self, options: &(impl Serialize + ?Sized)) -> Result<()> {
        const OP: &str = "hcs::System::Save";
        let t = self.inner.timeouts.system_save;
        let options = to_json(options, OP)?;
        self.lifecycle(OP, SystemCall::Save, options, n::SYSTEM_SAVE_COMPLETED, t)
            .await
    }

    async fn stop(&self, op: &str, call: SystemCall) -> Result<()> {
        if self.inner.handle.read().await.is_none() || self.inner.watcher.exited() {
            return Ok(());
        }
        let out = match self.call(op, call, String::new()).await {
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyClosed) => return Ok(()),
            r => r?,
        };
        if out.hr < 0 {
            let err = call_error(out.hr, out.result.as_deref());
            if !err.kind().is_any(STOP_IGNORED) {
                return Err(err.with_op(op).with_system(&self.inner.id));
            }
        }
        Ok(())
    }

    /// Asks the system to shut down; does not wait. "Already stopped", "does not exist" and
    /// "pending" count as success.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop("hcs::System::Shutdown", SystemCall::Shutdown)
            .await
    }

    /// Terminates the system; does not wait. Same rules as [`V1System::shutdown`].
    pub async fn terminate(&self) -> Result<()> {
        self.stop("hcs::System::Terminate", SystemCall::Terminate)
            .await
    }

    /// Properties for a v1 or v2 property query, as JSON.
    pub async fn properties(&self, query: &(impl Serialize + ?Sized)) -> Result<serde_json::Value> {
        const OP: &str = "hcs::System::Properties";
        let query = to_json(query, OP)?;
        let (guard, handle) = self.handle(OP).await?;
        let api = self.inner.api.clone();
        let out = blocking(move || {
            let _hold = guard;
            api.get_compute_system_properties(handle, &query)
        })
        .await?;
        let doc = output(out, OP).map_err(|e| e.with_system(&self.inner.id))?;
        serde_json::from_str(&doc).map_err(|e| {
            Error::op(OP, ErrorKind::InvalidResponse(e.to_string())).with_system(&self.inner.id)
        })
    }

    /// `HcsModifyComputeSystem` (synchronous in v1).
    pub async fn modify(&self, config: &(impl Serialize + ?Sized)) -> Result<()> {
        const OP: &str = "hcs::System::Modify";
        let config = to_json(config, OP)?;
        let (guard, handle) = self.handle(OP).await?;
        let api = self.inner.api.clone();
        let out = blocking(move || {
            let _hold = guard;
            api.modify_compute_system(handle, &config)
        })
        .await?;
        if out.hr < 0 {
            return Err(call_error(out.hr, out.result.as_deref())
                .with_op(OP)
                .with_system(&self.inner.id));
        }
        Ok(())
    }

    /// Waits for `SystemExited` (no timeout). An unexpected exit is not a wait error (see
    /// [`V1System::exit_error`]); a service disconnect is `ErrUnexpectedProcessAbort`; a
    /// close first is `ErrAlreadyClosed`.
    pub async fn wait(&self) -> Result<()> {
        const OP: &str = "hcs::System::Wait";
        match self.inner.watcher.wait_for(n::SYSTEM_EXITED, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind().is_any(&[HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT]) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::HandleClose) => {
                Err(Error::op(OP, ErrorKind::AlreadyClosed).with_system(&self.inner.id))
            }
            Err(e) => Err(e.with_op(OP).with_system(&self.inner.id)),
        }
    }

    /// The unexpected-exit error (`0xC0370106` status of `SystemExited`), once exited.
    pub fn exit_error(&self) -> Option<Error> {
        self.inner.watcher.exit_error().map(|e| {
            e.with_op("hcs::System::waitBackground")
                .with_system(&self.inner.id)
        })
    }

    /// Unregisters the callback (which drains callbacks in flight), then closes the handle.
    /// Waiters get `ErrAlreadyClosed`. A second call does nothing.
    pub async fn close(&self) -> Result<()> {
        let mut guard = self.inner.handle.write().await;
        let callback = lock(&self.inner.callback).take();
        if let Some(h) = guard.take() {
            let api = self.inner.api.clone();
            let (unregister, close) = blocking(move || {
                let u = callback.map_or(0, |cb| api.unregister_compute_system_callback(cb));
                (u, api.close_compute_system(h))
            })
            .await?;
            if unregister < 0 {
                tracing::warn!(hr = unregister, "HcsUnregisterComputeSystemCallback failed");
            }
            if close < 0 {
                tracing::warn!(hr = close, "HcsCloseComputeSystem failed");
            }
        }
        drop(guard);
        self.inner.watcher.close();
        Ok(())
    }
}

/// `HcsGetServiceProperties(query)` through vmcompute.dll: the properties document. Errors
/// carry no system id.
pub async fn get_service_properties(
    api: Arc<dyn VmcomputeApi>,
    query: &(impl Serialize + ?Sized),
) -> Result<serde_json::Value> {
    const OP: &str = "hcs::GetServiceProperties";
    let q = to_json(query, OP)?;
    let out = blocking(move || api.get_service_properties(&q)).await?;
    let doc = output(out, OP)?;
    serde_json::from_str(&doc).map_err(|e| Error::op(OP, ErrorKind::InvalidResponse(e.to_string())))
}

/// `HcsModifyServiceSettings(settings)` through vmcompute.dll.
pub async fn modify_service_settings(
    api: Arc<dyn VmcomputeApi>,
    settings: &(impl Serialize + ?Sized),
) -> Result<()> {
    const OP: &str = "hcs::ModifyServiceSettings";
    let s = to_json(settings, OP)?;
    let out = blocking(move || api.modify_service_settings(&s)).await?;
    if out.hr < 0 {
        return Err(call_error(out.hr, out.result.as_deref()).with_op(OP));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
