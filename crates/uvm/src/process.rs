//! Process handles over the bridge (the reference's `internal/gcs/process.go`).
//!
//! Creating a process: one listener per requested pipe on the next stdio ports, then
//! ExecuteProcess naming those ports; the guest dials stdin, stdout, stderr while handling
//! the request. Right after the response an asynchronous WaitForProcess (infinite timeout)
//! is sent; its response is the exit code.
//!
//! Half-close protocol: finishing stdin is a write shutdown of the stdin stream (the guest
//! reads EOF and closes the process's stdin); stdout and stderr end with EOF from the guest,
//! after which the host drops its end (the guest waits for that before closing).

use std::sync::Mutex;
use std::time::Duration;

use bridge::header::MessageType;
use bridge::hresult::Hresult;
use bridge::json::AnyInString;
use bridge::messages::{
    ExecuteProcessRequest, ExecuteProcessResponse, ExecuteProcessSettings, ProcessParameters,
    RequestBase, ResizeConsoleRequest, ResponseBase, SignalProcessOptions, SignalProcessRequest,
    VsockStdioRelaySettings, WaitForProcessRequest, WaitForProcessResponse, INFINITE_TIMEOUT_MS,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{check_result, decode, BridgeClient};
use crate::error::{Error, Result};
use crate::transport::BoxStream;

/// The host ends of a process's stdio; `None` for pipes that were not requested.
#[derive(Default)]
pub struct ProcessStdio {
    /// Write end of the process's stdin. Shut it down (`AsyncWriteExt::shutdown`) to send EOF.
    pub stdin: Option<BoxStream>,
    /// Read end of stdout (with a TTY: the terminal output).
    pub stdout: Option<BoxStream>,
    /// Read end of stderr (never with a TTY).
    pub stderr: Option<BoxStream>,
}

impl std::fmt::Debug for ProcessStdio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessStdio")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

type Exit = Option<std::result::Result<u32, Error>>;

/// A process in a container (or in the utility VM, for the null container id).
pub struct GcsProcess {
    client: BridgeClient,
    container_id: String,
    pid: u32,
    stdio: Mutex<ProcessStdio>,
    exit: watch::Receiver<Exit>,
    wait_task: JoinHandle<()>,
}

impl std::fmt::Debug for GcsProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsProcess")
            .field("container_id", &self.container_id)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Drop for GcsProcess {
    fn drop(&mut self) {
        self.wait_task.abort();
    }
}

impl GcsProcess {
    /// Starts a process in `container_id` with `params`. The `CreateStd*Pipe` flags decide
    /// which pipes get a port and a listener.
    pub async fn spawn(
        client: &BridgeClient,
        container_id: &str,
        params: ProcessParameters,
    ) -> Result<Self> {
        let transport = client.stdio_transport().clone();
        let accept_timeout = client.config().stdio_accept_timeout;
        let mut ports = VsockStdioRelaySettings::default();
        let mut accepts: Vec<(usize, JoinHandle<std::io::Result<BoxStream>>)> = Vec::new();
        let wanted = [
            params.create_std_in_pipe,
            params.create_std_out_pipe,
            params.create_std_err_pipe,
        ];
        for (slot, want) in wanted.into_iter().enumerate() {
            if !want {
                continue;
            }
            let port = client.next_stdio_port();
            match slot {
                0 => ports.std_in = port,
                1 => ports.std_out = port,
                _ => ports.std_err = port,
            }
            let listener = transport
                .listen(port)
                .await
                .map_err(|e| Error::io(format!("stdio listener for port {port}"), e))?;
            accepts.push((slot, tokio::spawn(listener.accept())));
        }
        let abort_all = |accepts: &[(usize, JoinHandle<std::io::Result<BoxStream>>)]| {
            for (_, h) in accepts {
                h.abort();
            }
        };

        let request = ExecuteProcessRequest {
            base: RequestBase::new(container_id),
            settings: ExecuteProcessSettings {
                process_parameters: AnyInString(params),
                vsock_stdio_relay_settings: Some(ports),
            },
        };
        let resp: ExecuteProcessResponse = match client
            .call(MessageType::ExecuteProcess, &request, None)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                abort_all(&accepts);
                return Err(e);
            }
        };
        let pid = resp.process_id;

        // The guest dialed every port before answering; the accepts are done or about to be.
        let mut stdio = ProcessStdio::default();
        let mut failure = None;
        for (slot, handle) in accepts {
            let res = tokio::time::timeout(accept_timeout, handle).await;
            let stream = match res {
                Ok(Ok(Ok(s))) => s,
                Ok(Ok(Err(e))) => {
                    failure.get_or_insert(Error::io("accepting a stdio connection", e));
                    continue;
                }
                Ok(Err(e)) => {
                    failure.get_or_insert(Error::Sandbox(format!("stdio accept task: {e}")));
                    continue;
                }
                Err(_) => {
                    failure.get_or_insert(Error::Timeout {
                        op: format!("stdio connection of process {pid}"),
                        after: accept_timeout,
                    });
                    continue;
                }
            };
            match slot {
                0 => stdio.stdin = Some(stream),
                1 => stdio.stdout = Some(stream),
                _ => stdio.stderr = Some(stream),
            }
        }

        let (exit_tx, exit_rx) = watch::channel(None);
        let wait_client = client.clone();
        let cid = container_id.to_owned();
        let wait_task = tokio::spawn(async move {
            let result = wait_for_process(&wait_client, &cid, pid).await;
            exit_tx.send_replace(Some(result));
        });
        let process = Self {
            client: client.clone(),
            container_id: container_id.to_owned(),
            pid,
            stdio: Mutex::new(stdio),
            exit: exit_rx,
            wait_task,
        };
        if let Some(e) = failure {
            // The process runs but its stdio is broken: kill it rather than leak it.
            let _ = process.kill().await;
            return Err(e);
        }
        Ok(process)
    }

    /// The pid in the guest's root pid namespace.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The container the process runs in.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Takes the stdio streams (once; later calls get nothing).
    pub fn take_stdio(&self) -> ProcessStdio {
        std::mem::take(&mut *self.stdio_lock())
    }

    pub(crate) fn stdio_lock(&self) -> std::sync::MutexGuard<'_, ProcessStdio> {
        self.stdio.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the exit code (`128+signal` for signalled container processes; `-1` for a
    /// signalled external process). Fails if the bridge closed first.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting only.
    pub async fn wait(&self) -> Result<i32> {
        let mut rx = self.exit.clone();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r.map(|c| c as i32);
            }
            if rx.changed().await.is_err() {
                return Err(Error::Closed(format!("process {}", self.pid)));
            }
        }
    }

    /// [`GcsProcess::wait`] bounded by `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<i32> {
        tokio::time::timeout(timeout, self.wait())
            .await
            .map_err(|_| Error::Timeout {
                op: format!("wait for process {}", self.pid),
                after: timeout,
            })?
    }

    /// The exit code if the process has exited.
    pub fn try_exit_code(&self) -> Option<Result<i32>> {
        self.exit.borrow().clone().map(|r| r.map(|c| c as i32))
    }

    /// Sends a Linux signal (`None` = SIGKILL, as the guest defaults). `Ok(false)` when the
    /// process was already gone (`HrErrNotFound`), as the reference reports it.
    pub async fn signal(&self, signal: Option<i32>) -> Result<bool> {
        let request = SignalProcessRequest {
            base: RequestBase::new(&self.container_id),
            process_id: self.pid,
            options: signal.map(|signal| SignalProcessOptions { signal }),
        };
        match self
            .client
            .call::<_, ResponseBase>(MessageType::SignalProcess, &request, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.hresult() == Some(Hresult::ERR_NOT_FOUND) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Kills the process (SignalProcess without options).
    pub async fn kill(&self) -> Result<bool> {
        self.signal(None).await
    }

    /// Resizes the process's terminal.
    pub async fn resize_console(&self, width: u16, height: u16) -> Result<()> {
        let request = ResizeConsoleRequest {
            base: RequestBase::new(&self.container_id),
            process_id: self.pid,
            height,
            width,
        };
        self.client
            .call::<_, ResponseBase>(MessageType::ResizeConsole, &request, None)
            .await
            .map(|_| ())
    }
}

async fn wait_for_process(client: &BridgeClient, container_id: &str, pid: u32) -> Result<u32> {
    let request = WaitForProcessRequest {
        base: RequestBase::new(container_id),
        process_id: pid,
        timeout_in_ms: INFINITE_TIMEOUT_MS,
    };
    let frame = client
        .call_raw(MessageType::WaitForProcess, &request, Some(Duration::MAX))
        .await?;
    let resp: WaitForProcessResponse = decode(MessageType::WaitForProcess, &frame)?;
    // The reference still reports the body's exit code when the process was already gone.
    if resp.base.result == Hresult::ERR_NOT_FOUND {
        return Ok(resp.exit_code);
    }
    check_result(MessageType::WaitForProcess, &frame)?;
    Ok(resp.exit_code)
}
