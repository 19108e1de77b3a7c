//! Compute systems through computecore (hcs-hcn-api.md §1.3, v2 engine).
//!
//! A [`System`] owns one `HCS_SYSTEM` handle, behind an async RW lock: every call holds a read
//! guard for as long as HCS may use the handle (the guard moves into the blocking task, so a
//! dropped future still keeps it), and [`System::close`] takes the write lock, so a handle is
//! never closed under a call in flight.
//!
//! Exit tracking: the event callback registered at create/open writes the first exit (or
//! service disconnect) into a watch slot; waiters read it. HCS sends no event on close, so
//! `close` releases waiters itself with `AlreadyClosed`.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use hcs_schema::v1::{
    ComputeSystemQuery, ContainerProperties, ProcessListItem, PropertyQuery, PropertyType,
    Statistics,
};
use serde::Serialize;
use tokio::sync::{watch, OwnedRwLockReadGuard, RwLock};

use crate::api::{event_options, EventSink, HcsApi, RawEvent, RawSystem, SystemCall, GENERIC_ALL};
use crate::cow::{self, GroupAffinity, Os};
use crate::error::{Error, ErrorKind, Result};
use crate::hresult::HResult;
use crate::notification::{decode, system_exit_error, Notification};
use crate::operation::{self, blocking, call_error};
use crate::process::Process;
use crate::timeout::Timeouts;

/// How a system stopped being waitable.
#[derive(Debug, Clone)]
struct SystemExit {
    /// The error of the wait itself (service disconnect, handle closed).
    wait_error: Option<Error>,
    /// Why the system exited, when it was unexpected.
    exit_error: Option<Error>,
}

type ExitSlot = watch::Sender<Option<SystemExit>>;

/// Properties read once after create/open.
#[derive(Debug, Clone, Default)]
struct Cached {
    typ: String,
    os: String,
    owner: String,
}

#[derive(Debug)]
struct Inner {
    api: Arc<dyn HcsApi>,
    id: String,
    handle: Arc<RwLock<Option<RawSystem>>>,
    exit: Arc<ExitSlot>,
    timeouts: Timeouts,
    cached: Mutex<Cached>,
    start_time: Mutex<Option<SystemTime>>,
}

/// A system dropped without [`System::close`] still releases its handle (RAII), unless a
/// call is in flight at that moment (it then holds the lock; the handle is logged as leaked).
impl Drop for Inner {
    fn drop(&mut self) {
        match self.handle.try_write() {
            Ok(mut guard) => {
                if let Some(handle) = guard.take() {
                    self.api.close_compute_system(handle);
                }
            }
            Err(_) => tracing::warn!(id = %self.id, "system handle dropped during a call; leaked"),
        }
    }
}

/// A compute system (container or VM) managed through computecore.dll. Cheap to clone; all
/// clones share the handle.
#[derive(Debug, Clone)]
pub struct System {
    inner: Arc<Inner>,
}

/// Errors HCS reports for Shutdown/Terminate that mean "nothing left to do".
const STOP_IGNORED: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED,
    HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND,
    HResult::ERROR_VMCOMPUTE_OPERATION_PENDING,
];

fn to_json<T: Serialize + ?Sized>(value: &T, op: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::op(op, ErrorKind::InvalidArgument(format!("document: {e}"))))
}

impl System {
    fn new(api: Arc<dyn HcsApi>, id: &str, timeouts: Timeouts) -> Self {
        Self {
            inner: Arc::new(Inner {
                api,
                id: id.to_string(),
                handle: Arc::new(RwLock::new(None)),
                exit: Arc::new(watch::channel(None).0),
                timeouts,
                cached: Mutex::new(Cached::default()),
                start_time: Mutex::new(None),
            }),
        }
    }

    /// Creates a compute system from an HCS document (schema2 `ComputeSystem` or schema1
    /// `ContainerConfig`) without starting it. Bounded by `timeouts.system_create`. On any
    /// failure after HCS handed out a handle, the system is terminated and the handle closed.
    ///
    /// # Cancellation
    /// Dropping the future never abandons the HCS call (it finishes on the blocking pool).
    /// A handle HCS hands out after the drop is not closed; one handed out before is closed
    /// (not terminated) when the last reference goes.
    pub async fn create(
        api: Arc<dyn HcsApi>,
        id: &str,
        document: &(impl Serialize + ?Sized),
        timeouts: Timeouts,
    ) -> Result<System> {
        const OP: &str = "hcs::CreateComputeSystem";
        let doc = to_json(document, OP)?;
        let system = System::new(api, id, timeouts);
        let result = system.create_inner(doc).await;
        if let Err(err) = result {
            // Terminate is a no-op without a handle; both are best effort.
            if let Err(e) = system.terminate().await {
                tracing::warn!(error = %e, "terminate after failed create");
            }
            let _ = system.close().await;
            return Err(err.with_op_if_empty(OP).with_system(id));
        }
        Ok(system)
    }

    async fn create_inner(&self, doc: String) -> Result<()> {
        let deadline = Some(Instant::now() + self.inner.timeouts.system_create);
        let id = self.inner.id.clone();
        {
            let mut guard = self.inner.handle.write().await;
            let (handle, result) = operation::run(&self.inner.api, deadline, false, (), {
                move |api, op| api.create_compute_system(&id, &doc, op)
            })
            .await?;
            // Keep any handle HCS returned, even on failure, so it is terminated and closed.
            *guard = handle.flatten();
            result?;
        }
        self.register_and_cache().await
    }

    /// Opens an existing compute system.
    pub async fn open(api: Arc<dyn HcsApi>, id: &str, timeouts: Timeouts) -> Result<System> {
        const OP: &str = "hcs::OpenComputeSystem";
        let system = System::new(api, id, timeouts);
        let id_owned = id.to_string();
        let opened = blocking({
            let api = system.inner.api.clone();
            move || api.open_compute_system(&id_owned, GENERIC_ALL)
        })
        .await?;
        let handle = opened.map_err(|hr| call_error(hr, None).with_op(OP).with_system(id))?;
        *system.inner.handle.write().await = Some(handle);
        if let Err(err) = system.register_and_cache().await {
            let _ = system.close().await;
            return Err(err.with_op_if_empty(OP).with_system(id));
        }
        Ok(system)
    }

    /// Registers the event callback, then reads and caches `SystemType`, `RuntimeOsType` and
    /// `Owner` (lowercased; an empty OS on a container means Windows, for pre-RS5 hosts).
    async fn register_and_cache(&self) -> Result<()> {
        let (guard, handle) = self.handle("hcs::System::registerNotification").await?;
        let sink = system_sink(self.inner.exit.clone(), self.inner.id.clone());
        let hr = blocking({
            let api = self.inner.api.clone();
            move || {
                let _hold = guard;
                api.set_compute_system_callback(
                    handle,
                    event_options::ENABLE_LIVE_MIGRATION_EVENTS,
                    sink,
                )
            }
        })
        .await?;
        if hr < 0 {
            return Err(call_error(hr, None).with_op("hcs::System::registerNotification"));
        }
        let props = self.properties_v1(&[]).await?;
        let mut cached = Cached {
            typ: props.system_type.to_lowercase(),
            os: props.runtime_os_type.to_lowercase(),
            owner: props.owner.to_lowercase(),
        };
        if cached.os.is_empty() && cached.typ == "container" {
            cached.os = "windows".into();
        }
        *lock(&self.inner.cached) = cached;
        Ok(())
    }

    /// Lists the compute systems matching `query` (`HcsEnumerateComputeSystems`). An empty
    /// result document is [`ErrorKind::UnexpectedValue`].
    pub async fn enumerate(
        api: Arc<dyn HcsApi>,
        query: &ComputeSystemQuery,
    ) -> Result<Vec<ContainerProperties>> {
        const OP: &str = "hcs::GetComputeSystems";
        let q = to_json(query, OP)?;
        let out = operation::run_simple(&api, None, (), move |api, op| {
            api.enumerate_compute_systems(&q, op)
        })
        .await
        .map_err(|e| e.with_op(OP))?;
        let doc = non_empty(out.document, OP)?;
        hcs_schema::json::from_str(&doc).map_err(|e| invalid(OP, &e))
    }

    /// The compute system id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The lowercased `SystemType` (`container`, `virtualmachine`).
    pub fn system_type(&self) -> String {
        lock(&self.inner.cached).typ.clone()
    }

    /// The lowercased `Owner`.
    pub fn owner(&self) -> String {
        lock(&self.inner.cached).owner.clone()
    }

    /// When [`System::start`] last succeeded.
    pub fn start_time(&self) -> Option<SystemTime> {
        *lock(&self.inner.start_time)
    }

    pub(crate) fn api(&self) -> &Arc<dyn HcsApi> {
        &self.inner.api
    }

    /// The timeouts this system applies.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// A read guard on the handle plus the handle, or `AlreadyClosed`.
    pub(crate) async fn handle(
        &self,
        op: &str,
    ) -> Result<(OwnedRwLockReadGuard<Option<RawSystem>>, RawSystem)> {
        let guard = self.inner.handle.clone().read_owned().await;
        match *guard {
            Some(h) => Ok((guard, h)),
            None => Err(self.error(op, ErrorKind::AlreadyClosed)),
        }
    }

    fn error(&self, op: &str, kind: impl Into<ErrorKind>) -> Error {
        Error::op(op, kind).with_system(&self.inner.id)
    }

    /// True once the system has exited (or its handle was closed).
    pub fn stopped(&self) -> bool {
        self.inner.exit.borrow().is_some()
    }

    async fn lifecycle(
        &self,
        op: &str,
        call: SystemCall,
        options: String,
        timeout: Option<std::time::Duration>,
    ) -> Result<()> {
        let (guard, handle) = self.handle(op).await?;
        let deadline = timeout.map(|t| Instant::now() + t);
        operation::run_simple(&self.inner.api, deadline, guard, move |api, opn| {
            api.system_call(call, handle, opn, &options)
        })
        .await
        .map_err(|e| e.with_op(op).with_system(&self.inner.id))?;
        Ok(())
    }

    /// Starts the system, bounded by `SystemStart`. Fails with `AlreadyClosed` after close.
    pub async fn start(&self) -> Result<()> {
        self.lifecycle(
            "hcs::System::Start",
            SystemCall::Start,
            String::new(),
            Some(self.inner.timeouts.system_start),
        )
        .await?;
        *lock(&self.inner.start_time) = Some(SystemTime::now());
        Ok(())
    }

    async fn stop(&self, op: &str, call: SystemCall) -> Result<()> {
        let guard = self.inner.handle.clone().read_owned().await;
        let Some(handle) = *guard else {
            return Ok(());
        };
        if self.stopped() {
            return Ok(());
        }
        match operation::submit(&self.inner.api, guard, move |api, opn| {
            api.system_call(call, handle, opn, "")
        })
        .await
        {
            Err(e) if !e.kind().is_any(STOP_IGNORED) => {
                Err(e.with_op(op).with_system(&self.inner.id))
            }
            _ => Ok(()),
        }
    }

    /// Asks the system to shut down; does not wait. Nothing happens when the handle is
    /// closed or the system has stopped; "already stopped", "does not exist" and "pending"
    /// count as success.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop("hcs::System::Shutdown", SystemCall::Shutdown)
            .await
    }

    /// Terminates the system; does not wait. Same rules as [`System::shutdown`].
    pub async fn terminate(&self) -> Result<()> {
        self.stop("hcs::System::Terminate", SystemCall::Terminate)
            .await
    }

    /// Pauses the system, bounded by `SystemPause`.
    pub async fn pause(&self) -> Result<()> {
        self.lifecycle(
            "hcs::System::Pause",
            SystemCall::Pause,
            String::new(),
            Some(self.inner.timeouts.system_pause),
        )
        .await
    }

    /// Resumes the system, bounded by `SystemResume`.
    pub async fn resume(&self) -> Result<()> {
        self.lifecycle(
            "hcs::System::Resume",
            SystemCall::Resume,
            String::new(),
            Some(self.inner.timeouts.system_resume),
        )
        .await
    }

    /// Saves the system (`SaveOptions` `{SaveType, SaveStateFilePath}`), bounded by
    /// `SystemSave`.
    pub async fn save(&self, options: &(impl Serialize + ?Sized)) -> Result<()> {
        const OP: &str = "hcs::System::Save";
        let options = to_json(options, OP)?;
        self.lifecycle(
            OP,
            SystemCall::Save,
            options,
            Some(self.inner.timeouts.system_save),
        )
        .await
    }

    /// Waits for the system to exit. Returns the wait error (service disconnect,
    /// `AlreadyClosed` when closed first); see [`System::exit_error`] for why it exited.
    pub async fn wait(&self) -> Result<()> {
        let mut rx = self.inner.exit.subscribe();
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| self.error("hcs::System::Wait", ErrorKind::HandleClose))?
            .clone();
        match exit.and_then(|e| e.wait_error) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Why the system exited: the wait error if there was one, else the unexpected-exit
    /// error (`ERROR_VMCOMPUTE_UNEXPECTED_EXIT`), else `None`. `None` too while it runs.
    pub fn exit_error(&self) -> Option<Error> {
        let exit = self.inner.exit.borrow();
        let exit = exit.as_ref()?;
        exit.wait_error.clone().or_else(|| exit.exit_error.clone())
    }

    async fn query(&self, op: &str, query: String) -> Result<String> {
        let (guard, handle) = self.handle(op).await?;
        let out = operation::run_simple(&self.inner.api, None, guard, move |api, opn| {
            api.get_compute_system_properties(handle, opn, &query)
        })
        .await
        .map_err(|e| e.with_op(op).with_system(&self.inner.id))?;
        non_empty(out.document, op).map_err(|e| e.with_system(&self.inner.id))
    }

    /// v1 properties (`{"PropertyTypes":[…]}`), decoded as schema1 `ContainerProperties`.
    pub async fn properties_v1(&self, types: &[PropertyType]) -> Result<ContainerProperties> {
        const OP: &str = "hcs::System::Properties";
        let query = PropertyQuery {
            property_types: types.to_vec(),
        };
        let doc = self.query(OP, to_json(&query, OP)?).await?;
        hcs_schema::json::from_str(&doc).map_err(|e| invalid(OP, &e).with_system(self.id()))
    }

    /// v2 properties (schema2 `PropertyType` values), as the JSON `Properties` document.
    ///
    /// hcsshim computes `Statistics` of process-isolated containers in-process from the silo
    /// job object; this port always asks HCS.
    pub async fn properties_v2(&self, types: &[&str]) -> Result<serde_json::Value> {
        const OP: &str = "hcs::System::PropertiesV2";
        let query = serde_json::json!({ "PropertyTypes": types });
        self.properties_v3(&query).await.map_err(|e| e.with_op(OP))
    }

    /// Sends a schema2 `PropertyQuery` unchanged (it may include `Queries`) and returns the
    /// properties document.
    pub async fn properties_v3(&self, query: &serde_json::Value) -> Result<serde_json::Value> {
        const OP: &str = "hcs::System::PropertiesV3";
        let doc = self.query(OP, to_json(query, OP)?).await?;
        serde_json::from_str(&doc).map_err(|e| invalid(OP, &e).with_system(self.id()))
    }

    /// v1 `Statistics`.
    pub async fn statistics(&self) -> Result<Statistics> {
        Ok(self
            .properties_v1(&[PropertyType::Statistics])
            .await?
            .statistics)
    }

    /// v1 `ProcessList`.
    pub async fn process_list(&self) -> Result<Vec<ProcessListItem>> {
        Ok(self
            .properties_v1(&[PropertyType::ProcessList])
            .await?
            .process_list)
    }

    /// Modifies the system (`ModifySettingRequest` or schema1
    /// `ResourceModificationRequestResponse`).
    pub async fn modify(&self, config: &(impl Serialize + ?Sized)) -> Result<()> {
        const OP: &str = "hcs::System::Modify";
        let config = to_json(config, OP)?;
        let (guard, handle) = self.handle(OP).await?;
        operation::run_simple(&self.inner.api, None, guard, move |api, opn| {
            api.modify_compute_system(handle, opn, &config)
        })
        .await
        .map_err(|e| e.with_op(OP).with_system(&self.inner.id))?;
        Ok(())
    }

    /// Creates a process from `parameters` (schema2 `ProcessParameters`, schema1
    /// `ProcessConfig` or an OCI process for LCOW).
    pub async fn create_process(&self, parameters: &(impl Serialize + ?Sized)) -> Result<Process> {
        Process::create(self, parameters).await
    }

    /// Opens an existing process by pid.
    pub async fn open_process(&self, pid: u32) -> Result<Process> {
        Process::open(self, pid).await
    }

    /// Closes the handle (this also unregisters the callback and drains callbacks in
    /// flight). Does not stop the system. Waiters still waiting get `AlreadyClosed`. A
    /// second call does nothing.
    pub async fn close(&self) -> Result<()> {
        let mut guard = self.inner.handle.write().await;
        if let Some(handle) = guard.take() {
            let api = self.inner.api.clone();
            blocking(move || api.close_compute_system(handle)).await?;
        }
        drop(guard);
        let err = self.error("hcs::System::Close", ErrorKind::AlreadyClosed);
        self.inner.exit.send_if_modified(|slot| {
            slot.is_none() && {
                *slot = Some(SystemExit {
                    wait_error: Some(err),
                    exit_error: None,
                });
                true
            }
        });
        Ok(())
    }
}

/// The event handler of a system handle. First exit or abort wins.
fn system_sink(slot: Arc<ExitSlot>, id: String) -> EventSink {
    Arc::new(move |event: RawEvent| {
        let exit = match decode(&event) {
            Notification::Exited(data) => SystemExit {
                wait_error: None,
                exit_error: system_exit_error(data.as_deref())
                    .map(|k| Error::op("hcs::System::waitBackground", k).with_system(&id)),
            },
            Notification::ServiceDisconnect => SystemExit {
                wait_error: Some(
                    Error::op(
                        "hcs::System::waitBackground",
                        ErrorKind::UnexpectedProcessAbort,
                    )
                    .with_system(&id),
                ),
                exit_error: None,
            },
            Notification::LiveMigration(_) => {
                tracing::debug!(id = %id, "live migration event ignored");
                return;
            }
            Notification::Other(t) => {
                tracing::debug!(id = %id, event_type = t, "HCS event ignored");
                return;
            }
        };
        slot.send_if_modified(|s| {
            s.is_none() && {
                *s = Some(exit);
                true
            }
        });
    })
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data (plain values) is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn non_empty(doc: Option<String>, op: &str) -> Result<String> {
    match doc {
        Some(d) if !d.trim().is_empty() => Ok(d),
        _ => Err(Error::op(op, ErrorKind::UnexpectedValue)),
    }
}

fn invalid(op: &str, e: &serde_json::Error) -> Error {
    Error::op(op, ErrorKind::InvalidResponse(e.to_string()))
}

#[async_trait]
impl cow::ProcessHost for System {
    async fn create_process(&self, config: &serde_json::Value) -> Result<Box<dyn cow::Process>> {
        Ok(Box::new(Process::create(self, config).await?))
    }

    fn os(&self) -> Os {
        Os::from_runtime_os_type(&lock(&self.inner.cached).os).unwrap_or(Os::Windows)
    }

    fn is_oci(&self) -> bool {
        let c = lock(&self.inner.cached);
        c.os == "linux" && c.typ == "container"
    }
}

#[async_trait]
impl cow::Container for System {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn properties(&self, types: &[&str]) -> Result<serde_json::Value> {
        let types: Vec<PropertyType> = types.iter().map(|t| PropertyType::from(*t)).collect();
        let props = self.properties_v1(&types).await?;
        serde_json::to_value(props).map_err(|e| invalid("hcs::System::Properties", &e))
    }

    async fn properties_v2(&self, types: &[&str]) -> Result<serde_json::Value> {
        System::properties_v2(self, types).await
    }

    async fn start(&self) -> Result<()> {
        System::start(self).await
    }

    async fn shutdown(&self) -> Result<()> {
        System::shutdown(self).await
    }

    async fn terminate(&self) -> Result<()> {
        System::terminate(self).await
    }

    async fn wait(&self) -> Result<()> {
        System::wait(self).await
    }

    async fn modify(&self, config: &serde_json::Value) -> Result<()> {
        System::modify(self, config).await
    }

    async fn set_cpu_group_affinities(&self, _affinities: &[GroupAffinity]) -> Result<()> {
        // Needs the silo job object `\Container_<id>` (SYSTEM only); not implemented yet.
        Err(self.error(
            "hcs::System::SetCPUGroupAffinities",
            ErrorKind::NotImplemented,
        ))
    }

    async fn close(&self) -> Result<()> {
        System::close(self).await
    }
}

/// `HcsGetServiceProperties(query)`: the service properties document.
pub async fn get_service_properties(
    api: Arc<dyn HcsApi>,
    query: &(impl Serialize + ?Sized),
) -> Result<serde_json::Value> {
    const OP: &str = "hcs::GetServiceProperties";
    let q = to_json(query, OP)?;
    let res = blocking(move || api.get_service_properties(&q)).await?;
    if res.hr < 0 {
        return Err(call_error(res.hr, res.document.as_deref()).with_op(OP));
    }
    let doc = non_empty(res.document, OP)?;
    serde_json::from_str(&doc).map_err(|e| invalid(OP, &e))
}

/// `HcsModifyServiceSettings(settings)` (`ModificationRequest {PropertyType, Settings}`).
pub async fn modify_service_settings(
    api: Arc<dyn HcsApi>,
    settings: &(impl Serialize + ?Sized),
) -> Result<()> {
    const OP: &str = "hcs::ModifyServiceSettings";
    let s = to_json(settings, OP)?;
    let res = blocking(move || api.modify_service_settings(&s)).await?;
    if res.hr < 0 {
        return Err(call_error(res.hr, res.document.as_deref()).with_op(OP));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
