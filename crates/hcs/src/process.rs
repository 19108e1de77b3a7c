//! Processes of a compute system through computecore (hcs-hcn-api.md §1.3, process table).
//!
//! Same handle discipline as [`crate::system`]: an async RW lock around the `HCS_PROCESS`
//! handle, read guards held for the whole of each call, the write lock for close. The exit
//! (from the `ProcessExited` event, whose data is the `ProcessStatus`) goes into a watch slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::api::{event_options, EventSink, ProcessCall, RawEvent, RawProcess, GENERIC_ALL};
use crate::cow::{self, MigrationState, SignalOptions, Stdio};
use crate::error::{is_access_is_denied, is_already_stopped, Error, ErrorKind, Result};
use crate::exit::ExitCell;
use crate::hresult::HResult;
use crate::notification::{decode, process_exit_code, Notification};
use crate::operation::{self, blocking, call_error};
use crate::system::{lock, System};

/// How long after a failed signal that says "gone" the waiters are force-released, to get
/// around an HCS deadlock where the exit event never comes (hcsshim's 1 s).
pub const FORCE_RELEASE_DELAY: Duration = Duration::from_secs(1);

struct Inner {
    system: System,
    pid: u32,
    handle: Arc<RwLock<Option<RawProcess>>>,
    exit: Arc<ExitCell>,
    stdio: Mutex<Stdio>,
    kill_delivered: AtomicBool,
}

/// A process dropped without [`Process::close`] still releases its handle (see the same
/// rule for systems).
impl Drop for Inner {
    fn drop(&mut self) {
        match self.handle.try_write() {
            Ok(mut guard) => {
                if let Some(handle) = guard.take() {
                    self.system.api().close_process(handle);
                }
            }
            Err(_) => tracing::warn!(
                pid = self.pid,
                "process handle dropped during a call; leaked"
            ),
        }
    }
}

/// A process in a compute system. Cheap to clone; all clones share the handle.
#[derive(Clone)]
pub struct Process {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("system", &self.inner.system.id())
            .field("pid", &self.inner.pid)
            .finish()
    }
}

/// The console-size request of `ResizeConsole`.
pub fn console_size_request(width: u16, height: u16) -> serde_json::Value {
    serde_json::json!({
        "Operation": "ConsoleSize",
        "ConsoleSize": { "Height": height, "Width": width }
    })
}

/// The close-handle request of `CloseStdin` (`Handle` may also be `StdOut`, `StdErr`,
/// `All`).
pub fn close_handle_request(handle: &str) -> serde_json::Value {
    serde_json::json!({
        "Operation": "CloseHandle",
        "CloseHandle": { "Handle": handle }
    })
}

impl Process {
    fn new(system: &System, pid: u32, handle: RawProcess, stdio: Stdio) -> Self {
        Self {
            inner: Arc::new(Inner {
                system: system.clone(),
                pid,
                handle: Arc::new(RwLock::new(Some(handle))),
                exit: Arc::new(ExitCell::new()),
                stdio: Mutex::new(stdio),
                kill_delivered: AtomicBool::new(false),
            }),
        }
    }

    /// Creates a process (`HcsCreateProcess`, then the `…AndProcessInfo` wait). If the wait
    /// fails but HCS returned a handle (seen on WS2022 process isolation), the process
    /// information is read with `HcsGetProcessInfo` instead. On failure the command line is
    /// added to the error.
    pub(crate) async fn create(
        system: &System,
        parameters: &(impl Serialize + ?Sized),
    ) -> Result<Process> {
        const OP: &str = "hcs::System::CreateProcess";
        let value = serde_json::to_value(parameters).map_err(|e| {
            Error::op(
                OP,
                ErrorKind::InvalidArgument(format!("process parameters: {e}")),
            )
        })?;
        let command_line = value
            .get("CommandLine")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string();
        let fail = |e: Error| {
            let e = e.with_op_if_empty(OP).with_system(system.id());
            if command_line.is_empty() {
                e
            } else {
                e.with_extra(command_line.clone())
            }
        };
        let params = value.to_string();
        let api = system.api().clone();
        let (guard, sys_handle) = system.handle(OP).await?;
        let (handle, result) = operation::run(&api, None, true, guard, move |api, op| {
            api.create_process(sys_handle, &params, op)
        })
        .await
        .map_err(&fail)?;
        let handle = handle.flatten();
        let info = match (result, handle) {
            (Ok(out), Some(h)) => match out.process_info {
                Some(info) => Ok((h, info)),
                None => Err((Some(h), Error::new(ErrorKind::UnexpectedValue))),
            },
            (Ok(_), None) => Err((None, Error::new(ErrorKind::UnexpectedValue))),
            (Err(err), Some(h)) => {
                tracing::warn!(error = %err, "create process wait failed; trying HcsGetProcessInfo");
                match Self::process_info(&api, h).await {
                    Ok(info) => Ok((h, info)),
                    Err(_) => Err((Some(h), err)),
                }
            }
            (Err(err), None) => Err((None, err)),
        };
        let (handle, info) = match info {
            Ok(v) => v,
            Err((h, err)) => {
                if let Some(h) = h {
                    let api = api.clone();
                    blocking(move || api.close_process(h)).await?;
                }
                return Err(fail(err));
            }
        };
        let stdio = match api.stdio_from_info(info) {
            Ok(s) => s,
            Err(e) => {
                let api2 = api.clone();
                blocking(move || api2.close_process(handle)).await?;
                return Err(fail(Error::from(e)));
            }
        };
        let process = Process::new(system, info.process_id, handle, stdio);
        if let Err(err) = process.register().await {
            let _ = process.close().await;
            return Err(fail(err));
        }
        Ok(process)
    }

    async fn process_info(
        api: &Arc<dyn crate::api::HcsApi>,
        handle: RawProcess,
    ) -> Result<crate::api::ProcessInformation> {
        let (_, result) = operation::run(api, None, true, (), move |api, op| {
            (api.get_process_info(handle, op), ())
        })
        .await?;
        result?
            .process_info
            .ok_or_else(|| Error::new(ErrorKind::UnexpectedValue))
    }

    /// Opens process `pid` of `system` (no stdio).
    pub(crate) async fn open(system: &System, pid: u32) -> Result<Process> {
        const OP: &str = "hcs::System::OpenProcess";
        let (guard, sys_handle) = system.handle(OP).await?;
        let api = system.api().clone();
        let handle = blocking(move || {
            let r = api.open_process(sys_handle, pid, GENERIC_ALL);
            drop(guard);
            r
        })
        .await?
        .map_err(|hr| {
            call_error(hr, None)
                .with_op(OP)
                .with_process(system.id(), pid)
        })?;
        let process = Process::new(system, pid, handle, Stdio::default());
        if let Err(err) = process.register().await {
            let _ = process.close().await;
            return Err(err.with_op_if_empty(OP).with_process(system.id(), pid));
        }
        Ok(process)
    }

    async fn register(&self) -> Result<()> {
        const OP: &str = "hcs::Process::registerNotification";
        let (guard, handle) = self.handle(OP).await?;
        let sink = process_sink(
            self.inner.exit.clone(),
            self.inner.system.id().to_string(),
            self.inner.pid,
        );
        let api = self.inner.system.api().clone();
        let hr = blocking(move || {
            let hr = api.set_process_callback(handle, event_options::NONE, sink);
            drop(guard);
            hr
        })
        .await?;
        if hr < 0 {
            return Err(self.error(OP, call_error(hr, None).kind().clone()));
        }
        Ok(())
    }

    async fn handle(
        &self,
        op: &str,
    ) -> Result<(OwnedRwLockReadGuard<Option<RawProcess>>, RawProcess)> {
        let guard = self.inner.handle.clone().read_owned().await;
        match *guard {
            Some(h) => Ok((guard, h)),
            None => Err(self.error(op, ErrorKind::AlreadyClosed)),
        }
    }

    fn error(&self, op: &str, kind: impl Into<ErrorKind>) -> Error {
        Error::op(op, kind).with_process(self.inner.system.id(), self.inner.pid)
    }

    fn wrap(&self, op: &str, err: Error) -> Error {
        err.with_op(op)
            .with_process(self.inner.system.id(), self.inner.pid)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The id of the compute system.
    pub fn system_id(&self) -> &str {
        self.inner.system.id()
    }

    /// True once the process has exited (or its waiters were released).
    pub fn stopped(&self) -> bool {
        self.inner.exit.is_set()
    }

    fn release(&self, code: i64, wait_error: Option<Error>) -> bool {
        self.inner.exit.release(code, wait_error)
    }

    async fn process_call(&self, op: &str, call: ProcessCall, document: String) -> Result<()> {
        let (guard, handle) = self.handle(op).await?;
        operation::run_simple(self.inner.system.api(), None, guard, move |api, opn| {
            api.process_call(call, handle, opn, &document)
        })
        .await
        .map(|_| ())
    }

    /// hcsshim's `processSignalResult`: success is "delivered"; "invalid state", "system
    /// does not exist" and "element not found" mean the process is gone, and waiters are
    /// force-released after [`FORCE_RELEASE_DELAY`] if its exit event has not come; every
    /// failure is "not delivered", without an error.
    fn signal_result(&self, result: Result<()>) -> bool {
        let err = match result {
            Ok(()) => return true,
            Err(e) => e,
        };
        if self.inner.exit.signal_says_gone(&err) {
            let err = self.wrap("hcs::Process::Signal", err);
            self.inner.exit.force_release_later(err);
        } else {
            tracing::debug!(error = %err, "signal not delivered");
        }
        false
    }

    /// Sends a signal (`{"Signal": n}` or `{"Signal": "CtrlC"|…}`); `None` kills. Returns
    /// whether it was delivered.
    pub async fn signal(&self, options: Option<&SignalOptions>) -> Result<bool> {
        const OP: &str = "hcs::Process::Signal";
        let Some(options) = options else {
            return self.kill().await;
        };
        let doc = serde_json::to_string(options)
            .map_err(|e| self.error(OP, ErrorKind::InvalidArgument(e.to_string())))?;
        // A closed handle is an error, not "not delivered".
        drop(self.handle(OP).await?);
        let result = self.process_call(OP, ProcessCall::Signal, doc).await;
        Ok(self.signal_result(result))
    }

    /// Kills the process. HCS serialises signals per system handle, so the kill goes
    /// through a new system handle and a new process handle (hcs-hcn-api.md §1.3).
    ///
    /// Errors with `HCS_E_PROCESS_ALREADY_STOPPED` once the process has exited; a second
    /// kill returns `true`. If no second system handle can be opened, the whole system is
    /// terminated and closed instead.
    pub async fn kill(&self) -> Result<bool> {
        const OP: &str = "hcs::Process::Kill";
        drop(self.handle(OP).await?);
        if self.stopped() {
            return Err(self.error(OP, HResult::HCS_E_PROCESS_ALREADY_STOPPED));
        }
        if self.inner.kill_delivered.load(Ordering::SeqCst) {
            return Ok(true);
        }
        let api = self.inner.system.api().clone();
        let system_id = self.inner.system.id().to_string();
        let pid = self.inner.pid;
        let opened = blocking({
            let api = api.clone();
            move || api.open_compute_system(&system_id, GENERIC_ALL)
        })
        .await?;
        let sys2 = match opened {
            Ok(h) => h,
            Err(hr) => {
                tracing::error!(
                    hr,
                    "OpenComputeSystem for kill failed; terminating the system"
                );
                self.inner.system.terminate().await?;
                self.inner.system.close().await?;
                return Ok(true);
            }
        };
        let proc2 = blocking({
            let api = api.clone();
            move || api.open_process(sys2, pid, GENERIC_ALL)
        })
        .await?;
        let proc2 = match proc2 {
            Ok(p) => p,
            Err(hr) => {
                let api = api.clone();
                blocking(move || api.close_compute_system(sys2)).await?;
                let err = call_error(hr, None);
                return if is_already_stopped(&err) {
                    Ok(true)
                } else {
                    Err(self.wrap(OP, err))
                };
            }
        };
        let result = operation::run_simple(&api, None, (), move |api, opn| {
            api.process_call(ProcessCall::Terminate, proc2, opn, "")
        })
        .await
        .map(|_| ());
        let api2 = api.clone();
        blocking(move || {
            api2.close_process(proc2);
            api2.close_compute_system(sys2);
        })
        .await?;
        if let Err(err) = &result {
            // TerminateProcess on an exited process with open handles gives ACCESS_DENIED;
            // a quick second terminate gives "already stopped". Both mean it is gone.
            if is_access_is_denied(err) || is_already_stopped(err) {
                return Ok(true);
            }
        }
        // Unlike hcsshim (which force-releases the temporary process object), the force
        // release applies to this process, whose waiters are the ones that could hang.
        let delivered = self.signal_result(result);
        self.inner.kill_delivered.store(delivered, Ordering::SeqCst);
        Ok(delivered)
    }

    /// Waits for the process to exit; returns the wait error, if any.
    pub async fn wait(&self) -> Result<()> {
        self.inner
            .exit
            .wait(|| self.error("hcs::Process::Wait", ErrorKind::HandleClose))
            .await
    }

    /// The exit code: `InvalidProcessState` while running, the wait error if waiting failed,
    /// −1 when HCS could not tell.
    pub fn exit_code(&self) -> Result<i64> {
        self.inner
            .exit
            .exit_code(|| self.error("hcs::Process::ExitCode", ErrorKind::InvalidProcessState))
    }

    /// Resizes the console (`{"Operation":"ConsoleSize","ConsoleSize":{"Height":h,"Width":w}}`).
    pub async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        const OP: &str = "hcs::Process::ResizeConsole";
        let doc = console_size_request(width, height).to_string();
        self.process_call(OP, ProcessCall::Modify, doc)
            .await
            .map_err(|e| self.wrap(OP, e))
    }

    /// Closes stdin: asks HCS to close it (only while the process runs; HCS refuses it
    /// afterwards), then closes the local end.
    pub async fn close_stdin(&self) -> Result<()> {
        const OP: &str = "hcs::Process::CloseStdin";
        drop(self.handle(OP).await?);
        if !self.stopped() {
            let doc = close_handle_request("StdIn").to_string();
            self.process_call(OP, ProcessCall::Modify, doc)
                .await
                .map_err(|e| self.wrap(OP, e))?;
        }
        lock(&self.inner.stdio).stdin = None;
        Ok(())
    }

    /// Closes the local end of stdout.
    pub fn close_stdout(&self) {
        lock(&self.inner.stdio).stdout = None;
    }

    /// Closes the local end of stderr.
    pub fn close_stderr(&self) {
        lock(&self.inner.stdio).stderr = None;
    }

    /// Hands out the stdio streams created with the process (once).
    pub fn take_stdio(&self) -> Stdio {
        std::mem::take(&mut *lock(&self.inner.stdio))
    }

    /// hcsshim's `StdioLegacy`: the pipes created with the process while they have not been
    /// taken, otherwise new ones from `HcsGetProcessInfo`. The caller owns what it gets.
    pub async fn stdio_legacy(&self) -> Result<Stdio> {
        const OP: &str = "hcs::Process::StdioLegacy";
        let (guard, handle) = self.handle(OP).await?;
        {
            let mut cached = lock(&self.inner.stdio);
            if cached.stdin.is_some() || cached.stdout.is_some() || cached.stderr.is_some() {
                return Ok(std::mem::take(&mut *cached));
            }
        }
        let api = self.inner.system.api().clone();
        let info = Self::process_info(&api, handle)
            .await
            .map_err(|e| self.wrap(OP, e))?;
        drop(guard);
        api.stdio_from_info(info)
            .map_err(|e| self.wrap(OP, Error::from(e)))
    }

    /// Reads the process properties (`HcsGetProcessProperties`), e.g. its `ProcessStatus`.
    pub async fn properties(&self) -> Result<serde_json::Value> {
        const OP: &str = "hcs::Process::Properties";
        let (guard, handle) = self.handle(OP).await?;
        let out = operation::run_simple(self.inner.system.api(), None, guard, move |api, opn| {
            api.process_call(ProcessCall::GetProperties, handle, opn, "")
        })
        .await
        .map_err(|e| self.wrap(OP, e))?;
        let doc = out
            .document
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| self.error(OP, ErrorKind::UnexpectedValue))?;
        serde_json::from_str(&doc)
            .map_err(|e| self.error(OP, ErrorKind::InvalidResponse(e.to_string())))
    }

    /// Closes the handle and the local stdio. Does not kill the process. Waiters still
    /// waiting get `AlreadyClosed` and exit code −1. A second call does nothing.
    pub async fn close(&self) -> Result<()> {
        let mut guard = self.inner.handle.write().await;
        if let Some(handle) = guard.take() {
            let api = self.inner.system.api().clone();
            blocking(move || api.close_process(handle)).await?;
        }
        drop(guard);
        *lock(&self.inner.stdio) = Stdio::default();
        self.release(
            -1,
            Some(self.error("hcs::Process::Close", ErrorKind::AlreadyClosed)),
        );
        Ok(())
    }
}

/// The event handler of a process handle. First exit or abort wins.
fn process_sink(slot: Arc<ExitCell>, system_id: String, pid: u32) -> EventSink {
    const OP: &str = "hcs::Process::waitBackground";
    Arc::new(move |event: RawEvent| match decode(&event) {
        Notification::Exited(data) => match process_exit_code(data.as_deref()) {
            Ok(code) => {
                slot.release(code, None);
            }
            Err(kind) => {
                slot.release(-1, Some(Error::op(OP, kind).with_process(&system_id, pid)));
            }
        },
        Notification::ServiceDisconnect => {
            slot.release(
                -1,
                Some(
                    Error::op(OP, ErrorKind::UnexpectedProcessAbort).with_process(&system_id, pid),
                ),
            );
        }
        other => tracing::debug!(?other, pid, "process event ignored"),
    })
}

#[async_trait]
impl cow::Process for Process {
    fn pid(&self) -> u32 {
        self.inner.pid
    }

    fn take_stdio(&self) -> Stdio {
        Process::take_stdio(self)
    }

    fn migration_state(&self) -> MigrationState {
        MigrationState::default()
    }

    async fn close_stdin(&self) -> Result<()> {
        Process::close_stdin(self).await
    }

    async fn close_stdout(&self) -> Result<()> {
        Process::close_stdout(self);
        Ok(())
    }

    async fn close_stderr(&self) -> Result<()> {
        Process::close_stderr(self);
        Ok(())
    }

    async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        Process::resize_console(self, width, height).await
    }

    async fn kill(&self) -> Result<bool> {
        Process::kill(self).await
    }

    async fn signal(&self, options: Option<&SignalOptions>) -> Result<bool> {
        Process::signal(self, options).await
    }

    async fn wait(&self) -> Result<()> {
        Process::wait(self).await
    }

    fn exit_code(&self) -> Result<i64> {
        Process::exit_code(self)
    }

    async fn close(&self) -> Result<()> {
        Process::close(self).await
    }
}
