//! One process of a task and its state machine (spec §1.3): `created` → `running` →
//! `exited`, or `created` → `exited` without running.
//!
//! All transitions happen under the exec's own lock; waiters watch the exit slot, which is
//! written once.

use std::sync::Arc;
use std::time::SystemTime;

use hcs::cow::{Container, Os, Process, SignalOptions};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::stdio::{IoPaths, Relay, Upstream, DRAIN_GRACE};

/// The exit status of an exec that has not exited (the reference's 255).
pub const UNKNOWN_EXIT: u32 = 255;

/// The state of an exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecState {
    /// Created, not started.
    Created,
    /// Its process runs.
    Running,
    /// Exited (or never ran).
    Exited,
}

impl std::fmt::Display for ExecState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecState::Created => "created",
            ExecState::Running => "running",
            ExecState::Exited => "exited",
        })
    }
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit status.
    pub status: u32,
    /// When.
    pub at: SystemTime,
}

struct Inner {
    state: ExecState,
    pid: u32,
    upstream: Option<Upstream>,
    process: Option<Arc<dyn Process>>,
    relay: Option<Arc<Relay>>,
    /// CloseIO came before Start: the process's stdin is closed as soon as it runs (the
    /// reference closes the upstream pipe, so its copy ends at once).
    stdin_closed: bool,
}

/// An exec: the init process of a task (`eid` empty) or an additional process.
pub struct Exec {
    tid: String,
    eid: String,
    io: IoPaths,
    /// The OCI process of an additional exec (JSON); `None` for the init.
    process_spec: Option<serde_json::Value>,
    inner: tokio::sync::Mutex<Inner>,
    exit: watch::Sender<Option<ExitInfo>>,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("tid", &self.tid)
            .field("eid", &self.eid)
            .finish()
    }
}

/// A snapshot of an exec for the State RPC.
#[derive(Debug, Clone)]
pub struct ExecStatus {
    /// State.
    pub state: ExecState,
    /// Pid (0 before start).
    pub pid: u32,
    /// Exit, once exited.
    pub exit: Option<ExitInfo>,
}

impl Exec {
    /// A new exec in `created`, with its upstream stdio already open.
    pub fn new(
        tid: &str,
        eid: &str,
        upstream: Upstream,
        process_spec: Option<serde_json::Value>,
    ) -> Arc<Self> {
        Arc::new(Self {
            tid: tid.to_owned(),
            eid: eid.to_owned(),
            io: upstream.paths().clone(),
            process_spec,
            inner: tokio::sync::Mutex::new(Inner {
                state: ExecState::Created,
                pid: 0,
                upstream: Some(upstream),
                process: None,
                relay: None,
                stdin_closed: false,
            }),
            exit: watch::channel(None).0,
        })
    }

    /// The exec id ("" for the init).
    pub fn id(&self) -> &str {
        &self.eid
    }

    /// The stdio paths as containerd gave them.
    pub fn io(&self) -> &IoPaths {
        &self.io
    }

    fn describe(&self) -> String {
        format!("exec: '{}' in task: '{}'", self.reported_id(), self.tid)
    }

    /// The id the reference reports for this exec: the init's is the task id.
    pub fn reported_id(&self) -> &str {
        if self.eid.is_empty() {
            &self.tid
        } else {
            &self.eid
        }
    }

    /// State, pid and exit.
    pub async fn status(&self) -> ExecStatus {
        let inner = self.inner.lock().await;
        ExecStatus {
            state: inner.state,
            pid: inner.pid,
            exit: *self.exit.borrow(),
        }
    }

    /// The pid (0 before start).
    pub async fn pid(&self) -> u32 {
        self.inner.lock().await.pid
    }

    /// The state.
    pub async fn state(&self) -> ExecState {
        self.inner.lock().await.state
    }

    /// The process parameters for a container of `os`. Linux (`lcowProcessParameters`):
    /// the pipes upstream asks for and, for an additional exec, the OCI process (the init's
    /// is part of the container). Windows (`ProcessParameters`): the command line, user,
    /// directory, environment and console of the OCI process, for the init too.
    fn parameters(&self, upstream: &Upstream, os: Os) -> Result<serde_json::Value> {
        let (stdin, stdout, stderr) = upstream.wanted();
        if os == Os::Windows {
            let spec = self.process_spec.as_ref().ok_or_else(|| {
                Error::InvalidArgument(format!("{} has no process to run", self.describe()))
            })?;
            return crate::wcow::process::process_parameters(spec, stdin, stdout, stderr);
        }
        let mut p = bridge::messages::ProcessParameters {
            create_std_in_pipe: stdin,
            create_std_out_pipe: stdout,
            create_std_err_pipe: stderr,
            ..Default::default()
        };
        if let Some(spec) = &self.process_spec {
            p.oci_process = Some(
                bridge::RawJson::from_value(spec)
                    .map_err(|e| Error::InvalidArgument(format!("exec process spec: {e}")))?,
            );
        }
        serde_json::to_value(p).map_err(|e| Error::Other(format!("encode process parameters: {e}")))
    }

    /// Starts the process in `container` (for the init, the container is started first).
    /// Returns the process, for the caller to watch. A failure leaves the exec `exited`
    /// with status 1.
    pub async fn start(&self, container: &dyn Container) -> Result<Arc<dyn Process>> {
        let mut inner = self.inner.lock().await;
        if inner.state != ExecState::Created {
            return Err(Error::FailedPrecondition(format!(
                "{} is in invalid state: '{}' for start",
                self.describe(),
                inner.state
            )));
        }
        let upstream = inner
            .upstream
            .take()
            .ok_or_else(|| Error::Other(format!("{} lost its stdio", self.describe())))?;
        let params = self.parameters(&upstream, container.os());
        let result = async {
            let params = params?;
            if self.eid.is_empty() {
                container
                    .start()
                    .await
                    .map_err(|e| Error::hcs(format!("start container {}", self.tid), e))?;
            }
            let process = container
                .create_process(&params)
                .await
                .map_err(|e| Error::hcs(format!("start {}", self.describe()), e));
            if process.is_err() && self.eid.is_empty() {
                // The container started but its init did not: do not leave it running.
                if let Err(e) = container.terminate().await {
                    tracing::warn!(error = %e, "terminating a container whose init failed");
                }
            }
            process
        }
        .await;
        match result {
            Ok(process) => {
                let process: Arc<dyn Process> = Arc::from(process);
                inner.pid = process.pid();
                inner.state = ExecState::Running;
                let relay = Arc::new(Relay::start(upstream, process.take_stdio()));
                if inner.stdin_closed {
                    relay.close_stdin();
                }
                inner.relay = Some(relay);
                inner.process = Some(process.clone());
                Ok(process)
            }
            Err(e) => {
                drop(upstream);
                inner.state = ExecState::Exited;
                self.exit.send_replace(Some(ExitInfo {
                    status: 1,
                    at: SystemTime::now(),
                }));
                Err(e)
            }
        }
    }

    /// Records the exit of the running process (after its output drained). Returns the exit
    /// if this call made the transition.
    pub async fn process_exited(&self, status: u32) -> Option<ExitInfo> {
        let relay = {
            let inner = self.inner.lock().await;
            if inner.state != ExecState::Running {
                return None;
            }
            inner.relay.clone()
        };
        if let Some(relay) = relay {
            relay.finish(DRAIN_GRACE).await;
        }
        let mut inner = self.inner.lock().await;
        if inner.state != ExecState::Running {
            return None;
        }
        inner.state = ExecState::Exited;
        inner.relay = None;
        let exit = ExitInfo {
            status,
            at: SystemTime::now(),
        };
        self.exit.send_replace(Some(exit));
        Some(exit)
    }

    /// ForceExit: a created exec exits with `status` without running; a running one is
    /// killed and recorded with `status`. Upstream stdio is closed, waiters released.
    pub async fn force_exit(&self, status: u32) {
        let mut inner = self.inner.lock().await;
        match inner.state {
            ExecState::Exited => return,
            ExecState::Created => {
                inner.upstream = None;
            }
            ExecState::Running => {
                if let Some(p) = &inner.process {
                    if let Err(e) = p.kill().await {
                        tracing::debug!(error = %e, "kill while forcing an exit");
                    }
                }
                if let Some(relay) = inner.relay.take() {
                    relay.finish(std::time::Duration::ZERO).await;
                }
            }
        }
        self.mark_exited(&mut inner, status);
    }

    /// A created exec exits with `status` without running; a started one is left alone.
    pub async fn exit_if_created(&self, status: u32) {
        let mut inner = self.inner.lock().await;
        if inner.state == ExecState::Created {
            inner.upstream = None;
            self.mark_exited(&mut inner, status);
        }
    }

    /// Records the exit and releases the waiters.
    fn mark_exited(&self, inner: &mut Inner, status: u32) {
        inner.state = ExecState::Exited;
        self.exit.send_replace(Some(ExitInfo {
            status,
            at: SystemTime::now(),
        }));
    }

    /// Kill (§1.3): a created exec exits with status 1; a running one gets `signal`
    /// (NotFound if it was gone); an exited one is NotFound.
    pub async fn kill(&self, signal: u32, os: Os) -> Result<()> {
        let state = self.inner.lock().await.state;
        match state {
            ExecState::Created => {
                self.force_exit(1).await;
                Ok(())
            }
            ExecState::Exited => Err(Error::NotFound(format!("{} not found", self.describe()))),
            ExecState::Running => {
                let process = self.inner.lock().await.process.clone();
                let Some(process) = process else {
                    return Err(Error::NotFound(format!("{} not found", self.describe())));
                };
                let delivered = match os {
                    Os::Windows => {
                        let action = crate::wcow::process::signal(signal, true)?;
                        Self::signal_windows(process, action).await
                    }
                    Os::Linux => {
                        let valid = i32::try_from(signal).ok().filter(|s| (1..=64).contains(s));
                        let Some(valid) = valid else {
                            return Err(Error::FailedPrecondition(format!(
                                "signal {signal}: invalid signal value"
                            )));
                        };
                        process
                            .signal(Some(&SignalOptions::Linux { signal: valid }))
                            .await
                    }
                }
                .map_err(|e| Error::hcs(format!("signal {}", self.describe()), e))?;
                if delivered || self.exit.borrow().is_some() {
                    Ok(())
                } else {
                    Err(Error::NotFound(format!("{} not found", self.describe())))
                }
            }
        }
    }

    /// Delivers a containerd signal to a Windows process: SIGKILL terminates it; the
    /// console events (CtrlC, CtrlShutdown, ...) are sent in the background and reported as
    /// delivered at once, as the reference does (a servercore process can hold the call).
    async fn signal_windows(
        process: Arc<dyn Process>,
        action: crate::wcow::process::WcowSignal,
    ) -> hcs::Result<bool> {
        use crate::wcow::process::WcowSignal;
        match action {
            WcowSignal::Terminate => process.kill().await,
            WcowSignal::Send(event) => {
                tokio::spawn(async move {
                    let options = SignalOptions::Windows { signal: event };
                    if let Err(e) = process.signal(Some(&options)).await {
                        tracing::warn!(error = %e, "delivering {event:?}");
                    }
                });
                Ok(true)
            }
        }
    }

    /// ResizePty: FailedPrecondition without a terminal; ignored unless running.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        if !self.io.terminal {
            return Err(Error::FailedPrecondition(format!(
                "{} is not a tty",
                self.describe()
            )));
        }
        let process = {
            let inner = self.inner.lock().await;
            if inner.state != ExecState::Running {
                return Ok(());
            }
            inner.process.clone()
        };
        if let Some(p) = process {
            let w = u16::try_from(width).unwrap_or(u16::MAX);
            let h = u16::try_from(height).unwrap_or(u16::MAX);
            if let Err(e) = p.resize_console(w, h).await {
                // A process that exited meanwhile has no console to resize: ignored, as
                // for one that is not running.
                if self.exit.borrow().is_none() && p.exit_code().is_err() {
                    return Err(Error::hcs(format!("resize {}", self.describe()), e));
                }
            }
        }
        Ok(())
    }

    /// CloseIO: closes the process's stdin, at once or, before Start, as soon as the
    /// process runs. Idempotent, never fails.
    pub async fn close_io(&self) {
        let relay = {
            let mut inner = self.inner.lock().await;
            inner.stdin_closed = true;
            inner.relay.clone()
        };
        if let Some(r) = relay {
            r.close_stdin();
        }
    }

    /// Waits for the exit.
    pub async fn wait(&self) -> ExitInfo {
        let mut rx = self.exit.subscribe();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`; it cannot be dropped while we borrow it.
                continue;
            }
        }
    }

    /// The exit, if exited.
    pub fn exit(&self) -> Option<ExitInfo> {
        *self.exit.borrow()
    }
}
