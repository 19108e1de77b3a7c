//! Processes over vmcompute.dll (hcs-hcn-api.md §1.3 process table, v1 column).
//!
//! `HcsCreateProcess` is synchronous and hands back the process information (pid and the
//! host ends of the stdio pipes). A callback is registered per process; a background task
//! waits for `ProcessExited` and then reads the `ProcessStatus` with
//! `HcsGetProcessProperties`: the exit code is `ExitCode` unless `LastWaitResult != 0`, in
//! which case it stays −1 (hcsshim's `waitBackground`).
//!
//! Kill terminates through this process's own handle; hcsshim opens a second system and
//! process handle first because HCS serialises signals per system handle. Signal failures
//! that say "gone" (`0xC0370105`, `0xC037010E`, `0x490`) are "not delivered", and waiters
//! are force-released after [`crate::process::FORCE_RELEASE_DELAY`] if no exit comes.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use super::{lock, notification as n, V1System, Watcher};
use crate::api::RawProcess;
use crate::cow::Stdio;
use crate::error::{is_access_is_denied, is_already_stopped, Error, ErrorKind, Result};
use crate::exit::ExitCell;
use crate::hresult::HResult;
use crate::operation::{blocking, call_error};
use crate::process::{close_handle_request, console_size_request};
use crate::vmcompute::{RawCallback, V1Output, VmcomputeApi};

#[derive(Debug)]
struct Inner {
    api: Arc<dyn VmcomputeApi>,
    system_id: String,
    pid: u32,
    handle: Arc<RwLock<Option<RawProcess>>>,
    callback: Mutex<Option<RawCallback>>,
    watcher: Arc<Watcher>,
    exit: Arc<ExitCell>,
    stdio: Mutex<Stdio>,
}

/// A process dropped without [`V1Process::close`] still unregisters and closes its handle.
/// (The exit waiter holds the process until it exits or is closed.)
impl Drop for Inner {
    fn drop(&mut self) {
        match self.handle.try_write() {
            Ok(mut guard) => {
                if let Some(h) = guard.take() {
                    if let Some(cb) = lock(&self.callback).take() {
                        self.api.unregister_process_callback(cb);
                    }
                    self.api.close_process(h);
                }
            }
            Err(_) => tracing::warn!(
                pid = self.pid,
                "v1 process handle dropped during a call; leaked"
            ),
        }
    }
}

/// A process of a [`V1System`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct V1Process {
    inner: Arc<Inner>,
}

impl V1System {
    /// `HcsCreateProcess` with schema1 `ProcessConfig` / schema2 `ProcessParameters`. On
    /// failure the command line is added to the error.
    pub async fn create_process(
        &self,
        parameters: &(impl Serialize + ?Sized),
    ) -> Result<V1Process> {
        const OP: &str = "hcs::System::CreateProcess";
        let value = serde_json::to_value(parameters)
            .map_err(|e| Error::op(OP, ErrorKind::InvalidArgument(e.to_string())))?;
        let command_line = value
            .get("CommandLine")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string();
        let params = value.to_string();
        let (guard, system) = self.handle(OP).await?;
        let api = self.inner.api.clone();
        let (out, created) = blocking(move || {
            let _hold = guard;
            api.create_process(system, &params)
        })
        .await?;
        let fail = |e: Error| {
            let e = e.with_op_if_empty(OP).with_system(self.id());
            if command_line.is_empty() {
                e
            } else {
                e.with_extra(command_line.clone())
            }
        };
        let Some((handle, info)) = created.filter(|_| out.hr >= 0) else {
            let hr = if out.hr < 0 {
                out.hr
            } else {
                HResult::ERROR_INVALID_HANDLE.as_i32()
            };
            return Err(fail(call_error(hr, out.result.as_deref())));
        };
        // Own the pipes at once so every later failure closes them.
        let stdio = self.inner.api.stdio_from_info(info);
        let process = V1Process::new(self, info.process_id, handle, Stdio::default());
        let stdio = match stdio {
            Ok(s) => s,
            Err(e) => {
                let _ = process.close().await;
                return Err(fail(Error::from(e)));
            }
        };
        *lock(&process.inner.stdio) = stdio;
        if let Err(e) = process.register().await {
            let _ = process.close().await;
            return Err(fail(e));
        }
        Ok(process)
    }

    /// `HcsOpenProcess(pid)`.
    pub async fn open_process(&self, pid: u32) -> Result<V1Process> {
        const OP: &str = "hcs::System::OpenProcess";
        let (guard, system) = self.handle(OP).await?;
        let api = self.inner.api.clone();
        let (out, handle) = blocking(move || {
            let _hold = guard;
            api.open_process(system, pid)
        })
        .await?;
        let Some(handle) = handle.filter(|_| out.hr >= 0) else {
            let hr = if out.hr < 0 {
                out.hr
            } else {
                HResult::ERROR_INVALID_HANDLE.as_i32()
            };
            return Err(call_error(hr, out.result.as_deref())
                .with_op(OP)
                .with_process(self.id(), pid));
        };
        let process = V1Process::new(self, pid, handle, Stdio::default());
        if let Err(e) = process.register().await {
            let _ = process.close().await;
            return Err(e.with_op_if_empty(OP));
        }
        Ok(process)
    }
}

impl V1Process {
    fn new(system: &V1System, pid: u32, handle: RawProcess, stdio: Stdio) -> Self {
        Self {
            inner: Arc::new(Inner {
                api: system.inner.api.clone(),
                system_id: system.id().to_string(),
                pid,
                handle: Arc::new(RwLock::new(Some(handle))),
                callback: Mutex::new(None),
                watcher: Watcher::for_process(),
                exit: Arc::new(ExitCell::new()),
                stdio: Mutex::new(stdio),
            }),
        }
    }

    fn error(&self, op: &str, kind: impl Into<ErrorKind>) -> Error {
        Error::op(op, kind).with_process(&self.inner.system_id, self.inner.pid)
    }

    fn wrap(&self, op: &str, e: Error) -> Error {
        e.with_op_if_empty(op)
            .with_process(&self.inner.system_id, self.inner.pid)
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

    /// Registers the callback and starts the exit waiter.
    async fn register(&self) -> Result<()> {
        const OP: &str = "hcs::Process::registerCallback";
        let (guard, handle) = self.handle(OP).await?;
        let api = self.inner.api.clone();
        let sink = self.inner.watcher.sink();
        let cb = blocking(move || {
            let _hold = guard;
            api.register_process_callback(handle, sink)
        })
        .await?
        .map_err(|hr| self.wrap(OP, call_error(hr, None)))?;
        *lock(&self.inner.callback) = Some(cb);
        tokio::spawn(wait_background(self.inner.clone()));
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// True once the process has exited (or its handle was closed).
    pub fn stopped(&self) -> bool {
        self.inner.exit.is_set()
    }

    /// Hands out the stdio streams created with the process (once).
    pub fn take_stdio(&self) -> Stdio {
        std::mem::take(&mut *lock(&self.inner.stdio))
    }

    /// Waits for the exit; returns the wait error, if any.
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

    async fn call(
        &self,
        op: &str,
        f: impl FnOnce(&dyn VmcomputeApi, RawProcess) -> V1Output + Send + 'static,
    ) -> Result<()> {
        let (guard, handle) = self.handle(op).await?;
        let api = self.inner.api.clone();
        let out = blocking(move || {
            let _hold = guard;
            f(api.as_ref(), handle)
        })
        .await?;
        if out.hr < 0 {
            return Err(self.wrap(op, call_error(out.hr, out.result.as_deref())));
        }
        Ok(())
    }

    fn signal_result(&self, result: Result<()>) -> bool {
        let err = match result {
            Ok(()) => return true,
            Err(e) => e,
        };
        if self.inner.exit.signal_says_gone(&err) {
            self.inner.exit.force_release_later(err);
        }
        false
    }

    /// `HcsSignalProcess` with `{"Signal": …}` options; whether it was delivered.
    pub async fn signal(&self, options: &(impl Serialize + ?Sized)) -> Result<bool> {
        const OP: &str = "hcs::Process::Signal";
        let doc = serde_json::to_string(options)
            .map_err(|e| self.error(OP, ErrorKind::InvalidArgument(e.to_string())))?;
        drop(self.handle(OP).await?);
        let result = self
            .call(OP, move |api, h| api.signal_process(h, &doc))
            .await;
        Ok(self.signal_result(result))
    }

    /// `HcsTerminateProcess`; whether it was delivered. Access denied and "already stopped"
    /// count as delivered; a kill of a process known to have exited is
    /// `HCS_E_PROCESS_ALREADY_STOPPED`.
    pub async fn kill(&self) -> Result<bool> {
        const OP: &str = "hcs::Process::Kill";
        drop(self.handle(OP).await?);
        if self.stopped() {
            return Err(self.error(OP, HResult::HCS_E_PROCESS_ALREADY_STOPPED));
        }
        let result = self.call(OP, |api, h| api.terminate_process(h)).await;
        if let Err(e) = &result {
            if is_access_is_denied(e) || is_already_stopped(e) {
                return Ok(true);
            }
        }
        Ok(self.signal_result(result))
    }

    /// Resizes the console.
    pub async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        let doc = console_size_request(width, height).to_string();
        self.call("hcs::Process::ResizeConsole", move |api, h| {
            api.modify_process(h, &doc)
        })
        .await
    }

    /// Closes stdin: asks HCS to close it while the process runs, then closes the local end.
    pub async fn close_stdin(&self) -> Result<()> {
        const OP: &str = "hcs::Process::CloseStdin";
        drop(self.handle(OP).await?);
        if !self.stopped() {
            let doc = close_handle_request("StdIn").to_string();
            self.call(OP, move |api, h| api.modify_process(h, &doc))
                .await?;
        }
        lock(&self.inner.stdio).stdin = None;
        Ok(())
    }

    /// `StdioLegacy`: the pipes created with the process while not taken, otherwise new ones
    /// from `HcsGetProcessInfo`.
    pub async fn stdio_legacy(&self) -> Result<Stdio> {
        const OP: &str = "hcs::Process::StdioLegacy";
        let (guard, handle) = self.handle(OP).await?;
        {
            let mut cached = lock(&self.inner.stdio);
            if cached.stdin.is_some() || cached.stdout.is_some() || cached.stderr.is_some() {
                return Ok(std::mem::take(&mut *cached));
            }
        }
        let api = self.inner.api.clone();
        let (out, info) = blocking(move || {
            let _hold = guard;
            api.get_process_info(handle)
        })
        .await?;
        let Some(info) = info.filter(|_| out.hr >= 0) else {
            let hr = if out.hr < 0 {
                out.hr
            } else {
                HResult::ERROR_INVALID_HANDLE.as_i32()
            };
            return Err(self.wrap(OP, call_error(hr, out.result.as_deref())));
        };
        self.inner
            .api
            .stdio_from_info(info)
            .map_err(|e| self.wrap(OP, Error::from(e)))
    }

    /// Unregisters the callback, closes the handle and the local stdio. Waiters get
    /// `AlreadyClosed` and exit code −1. A second call does nothing.
    pub async fn close(&self) -> Result<()> {
        let mut guard = self.inner.handle.write().await;
        let callback = lock(&self.inner.callback).take();
        if let Some(h) = guard.take() {
            let api = self.inner.api.clone();
            blocking(move || {
                if let Some(cb) = callback {
                    let hr = api.unregister_process_callback(cb);
                    if hr < 0 {
                        tracing::warn!(hr, "HcsUnregisterProcessCallback failed");
                    }
                }
                api.close_process(h)
            })
            .await?;
        }
        drop(guard);
        *lock(&self.inner.stdio) = Stdio::default();
        self.inner.exit.release(
            -1,
            Some(self.error("hcs::Process::Close", ErrorKind::AlreadyClosed)),
        );
        self.inner.watcher.close();
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::cow::Process for V1Process {
    fn pid(&self) -> u32 {
        self.inner.pid
    }

    fn take_stdio(&self) -> Stdio {
        V1Process::take_stdio(self)
    }

    fn migration_state(&self) -> crate::cow::MigrationState {
        crate::cow::MigrationState::default()
    }

    async fn close_stdin(&self) -> Result<()> {
        V1Process::close_stdin(self).await
    }

    async fn close_stdout(&self) -> Result<()> {
        lock(&self.inner.stdio).stdout = None;
        Ok(())
    }

    async fn close_stderr(&self) -> Result<()> {
        lock(&self.inner.stdio).stderr = None;
        Ok(())
    }

    async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        V1Process::resize_console(self, width, height).await
    }

    async fn kill(&self) -> Result<bool> {
        V1Process::kill(self).await
    }

    async fn signal(&self, options: Option<&crate::cow::SignalOptions>) -> Result<bool> {
        match options {
            Some(o) => V1Process::signal(self, o).await,
            None => V1Process::kill(self).await,
        }
    }

    async fn wait(&self) -> Result<()> {
        V1Process::wait(self).await
    }

    fn exit_code(&self) -> Result<i64> {
        V1Process::exit_code(self)
    }

    async fn close(&self) -> Result<()> {
        V1Process::close(self).await
    }
}

/// hcsshim's `waitBackground` for v1 processes.
async fn wait_background(inner: Arc<Inner>) {
    const OP: &str = "hcs::Process::waitBackground";
    let wrap = |e: Error| {
        e.with_op_if_empty(OP)
            .with_process(&inner.system_id, inner.pid)
    };
    let (code, err) = match inner.watcher.wait_for(n::PROCESS_EXITED, None).await {
        Err(e) if matches!(e.kind(), ErrorKind::HandleClose) => return, // closed first
        Err(e) => (-1, Some(wrap(e))),
        Ok(()) => {
            let guard = inner.handle.clone().read_owned().await;
            match *guard {
                None => return, // raced with close
                Some(h) => {
                    let api = inner.api.clone();
                    match blocking(move || {
                        let _hold = guard;
                        api.get_process_properties(h)
                    })
                    .await
                    {
                        Err(e) => (-1, Some(wrap(e))),
                        Ok(out) if out.hr < 0 => {
                            (-1, Some(wrap(call_error(out.hr, out.result.as_deref()))))
                        }
                        Ok(out) => match serde_json::from_str::<hcs_schema::v2::ProcessStatus>(
                            out.output.as_deref().unwrap_or("{}"),
                        ) {
                            Err(e) => (
                                -1,
                                Some(wrap(Error::new(ErrorKind::InvalidResponse(e.to_string())))),
                            ),
                            Ok(st) if st.last_wait_result != 0 => {
                                tracing::warn!(
                                    last_wait_result = st.last_wait_result,
                                    "process wait failed; exit code unknown"
                                );
                                (-1, None)
                            }
                            Ok(st) => (i64::from(st.exit_code), None),
                        },
                    }
                }
            }
        }
    };
    inner.exit.release(code, err);
}
