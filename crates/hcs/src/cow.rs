//! "cow" (container or workload): the interface every backend implements (hcs-hcn-api.md §7).
//!
//! The Windows HCS backend (compute systems through computecore.dll), the GCS bridge client
//! (containers inside a utility VM) and any later backend (job containers) implement
//! [`Container`] and [`Process`], so the shim's exec and task layers run one code path for
//! all of them. The traits are object safe (`Box<dyn Container>`, `Arc<dyn Process>`).
//!
//! Mapping of hcsshim's Go interface:
//! * `Wait()` / `WaitChannel()` / `WaitError()` are one `async fn wait`: awaiting it is the
//!   channel, its result is the wait error. Any number of tasks may wait at once.
//! * `Stdio()` hands the streams out once ([`Process::take_stdio`]); Rust owns its streams.
//! * `config any` documents (process parameters, modify requests) are JSON values, because a
//!   backend sends them as JSON (schema2 `ProcessParameters`, schema1 `ProcessConfig`, an
//!   OCI process, a `ModifySettingRequest`, ...).
//! * `Properties` / `PropertiesV2` return the properties document as JSON; decode it with the
//!   `hcs-schema` types.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Result;

/// The operating system of a container or of the processes a host creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// `"linux"`.
    Linux,
    /// `"windows"`.
    Windows,
}

impl Os {
    /// `"linux"` or `"windows"`, as hcsshim's `OS()` returns it.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }

    /// Parses the `RuntimeOsType` HCS reports (case-insensitive). An empty value means
    /// `windows`, as on pre-RS5 hosts.
    pub fn from_runtime_os_type(s: &str) -> Option<Os> {
        if s.is_empty() || s.eq_ignore_ascii_case("windows") {
            Some(Os::Windows)
        } else if s.eq_ignore_ascii_case("linux") {
            Some(Os::Linux)
        } else {
            None
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a process's stdio and wait live after a live migration (`MigrationState()`).
/// All zero when not applicable; only the GCS backend fills it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationState {
    /// vsock port of stdin.
    pub stdin_port: u32,
    /// vsock port of stdout.
    pub stdout_port: u32,
    /// vsock port of stderr.
    pub stderr_port: u32,
    /// The bridge call id of the outstanding `WaitForProcess`.
    pub wait_call_id: i64,
}

/// A console control event sent to a Windows process (`SignalProcessOptionsWCOW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowsSignal {
    /// CTRL+C.
    CtrlC,
    /// CTRL+BREAK.
    CtrlBreak,
    /// Console close.
    CtrlClose,
    /// User log off.
    CtrlLogOff,
    /// System shutdown.
    CtrlShutdown,
}

/// Options of a signal (`{"Signal": int}` for Linux, `{"Signal": "CtrlC"|...}` for Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalOptions {
    /// `SignalProcessOptionsLCOW`: a Linux signal number.
    Linux {
        /// The signal number.
        #[serde(rename = "Signal")]
        signal: i32,
    },
    /// `SignalProcessOptionsWCOW`: a console control event.
    Windows {
        /// The event.
        #[serde(rename = "Signal")]
        signal: WindowsSignal,
    },
}

/// A processor group affinity (`SetCPUGroupAffinities`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAffinity {
    /// The processor mask within the group.
    #[serde(rename = "Mask")]
    pub mask: u64,
    /// The processor group.
    #[serde(rename = "Group")]
    pub group: u16,
}

/// A stdin stream.
pub type StdinStream = Box<dyn AsyncWrite + Send + Unpin>;
/// A stdout or stderr stream.
pub type OutputStream = Box<dyn AsyncRead + Send + Unpin>;

/// The stdio streams of a process; a stream is `None` when it was not requested (or was
/// already taken).
#[derive(Default)]
pub struct Stdio {
    /// Writes to the process's stdin.
    pub stdin: Option<StdinStream>,
    /// Reads the process's stdout.
    pub stdout: Option<OutputStream>,
    /// Reads the process's stderr.
    pub stderr: Option<OutputStream>,
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stdio")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

/// A process in a container or utility VM (`cow.Process`).
#[async_trait]
pub trait Process: Send + Sync {
    /// The process id.
    fn pid(&self) -> u32;

    /// Hands out the stdio streams. The first call gets every stream that was requested;
    /// later calls get the streams not yet taken (none, for most backends).
    fn take_stdio(&self) -> Stdio;

    /// Where stdio and wait live for live migration; zero when not applicable.
    fn migration_state(&self) -> MigrationState;

    /// Closes stdin: tells the backend (if the process still runs) and closes the local end.
    async fn close_stdin(&self) -> Result<()>;

    /// Closes the host end of stdout.
    async fn close_stdout(&self) -> Result<()>;

    /// Closes the host end of stderr.
    async fn close_stderr(&self) -> Result<()>;

    /// Resizes the console of a process created with one.
    async fn resize_console(&self, width: u16, height: u16) -> Result<()>;

    /// Kills the process. `Ok(false)` when the kill was not delivered (e.g. the process is
    /// gone).
    async fn kill(&self) -> Result<bool>;

    /// Sends a signal; `None` is the backend's default (a kill for the GCS). `Ok(false)` when
    /// it was not delivered.
    async fn signal(&self, options: Option<&SignalOptions>) -> Result<bool>;

    /// Waits for the process to exit. Returns the wait error, if waiting failed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; it does not affect the process or other waiters.
    async fn wait(&self) -> Result<()>;

    /// The exit code once the process has exited; `ErrorKind::InvalidProcessState` while it
    /// runs, or the wait error if waiting failed. `i64` holds both a Windows exit code (a
    /// `u32`, often an NTSTATUS) and −1 ("unknown").
    fn exit_code(&self) -> Result<i64>;

    /// Releases the process handle and the local stdio. Does not kill the process. Waiters
    /// are released with `ErrorKind::AlreadyClosed`. A second call does nothing.
    async fn close(&self) -> Result<()>;
}

/// Something that can create processes: a container, or a utility VM itself
/// (`cow.ProcessHost`).
#[async_trait]
pub trait ProcessHost: Send + Sync {
    /// Creates (and starts) a process. `config` is schema2 `ProcessParameters`, or an OCI
    /// process document when [`ProcessHost::is_oci`] is true.
    async fn create_process(&self, config: &serde_json::Value) -> Result<Box<dyn Process>>;

    /// The operating system processes run on.
    fn os(&self) -> Os;

    /// True when [`ProcessHost::create_process`] expects an OCI process document.
    fn is_oci(&self) -> bool;
}

/// A container (or a compute system managed like one) (`cow.Container`).
#[async_trait]
pub trait Container: ProcessHost {
    /// The container id.
    fn id(&self) -> &str;

    /// Queries v1 properties (`PropertyTypes` such as `"Statistics"`, `"ProcessList"`) and
    /// returns the schema1 `ContainerProperties` document.
    async fn properties(&self, types: &[&str]) -> Result<serde_json::Value>;

    /// Queries v2 properties (schema2 `PropertyType` values) and returns the schema2
    /// `Properties` document.
    async fn properties_v2(&self, types: &[&str]) -> Result<serde_json::Value>;

    /// Starts the container.
    async fn start(&self) -> Result<()>;

    /// Asks the container to shut down; does not wait for it (use [`Container::wait`]).
    async fn shutdown(&self) -> Result<()>;

    /// Terminates the container; does not wait for it (use [`Container::wait`]).
    async fn terminate(&self) -> Result<()>;

    /// Waits for the container to exit. Returns the wait error, if waiting failed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; it does not affect the container or other waiters.
    async fn wait(&self) -> Result<()>;

    /// Modifies the container (`ModifySettingRequest` or schema1
    /// `ResourceModificationRequestResponse`).
    async fn modify(&self, config: &serde_json::Value) -> Result<()>;

    /// Sets processor group affinities. Backends that cannot do it return
    /// `ErrorKind::NotImplemented`.
    async fn set_cpu_group_affinities(&self, affinities: &[GroupAffinity]) -> Result<()>;

    /// Releases the container handle. Does not stop the container. Waiters are released
    /// with `ErrorKind::AlreadyClosed`. A second call does nothing.
    async fn close(&self) -> Result<()>;
}

#[cfg(test)]
mod tests;
