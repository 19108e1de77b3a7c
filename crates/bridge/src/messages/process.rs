//! Process requests: ExecuteProcess, WaitForProcess, SignalProcess, ResizeConsole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::base::{is_zero_u32, RequestBase, ResponseBase, INFINITE_TIMEOUT_MS};
use crate::json::{is_default, AnyInString, RawJson};

/// The process-parameters object (hcsschema `ProcessParameters` plus `OciProcess`), carried
/// as a JSON string in [`ExecuteProcessSettings`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessParameters {
    /// Command line (external processes only), split with shell-words rules.
    #[serde(
        rename = "CommandLine",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub command_line: String,
    /// Arguments; preferred over `CommandLine` when non-empty (external only).
    #[serde(rename = "CommandArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub command_args: Vec<String>,
    /// Working directory (external only).
    #[serde(
        rename = "WorkingDirectory",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_directory: String,
    /// Environment (external only); Go sorts map keys, so does `BTreeMap`.
    #[serde(
        rename = "Environment",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub environment: BTreeMap<String, String>,
    /// Allocate a pty (external only).
    #[serde(rename = "EmulateConsole", default, skip_serializing_if = "is_default")]
    pub emulate_console: bool,
    /// Relay stdin: the guest dials the `StdIn` port.
    #[serde(
        rename = "CreateStdInPipe",
        default,
        skip_serializing_if = "is_default"
    )]
    pub create_std_in_pipe: bool,
    /// Relay stdout: the guest dials the `StdOut` port.
    #[serde(
        rename = "CreateStdOutPipe",
        default,
        skip_serializing_if = "is_default"
    )]
    pub create_std_out_pipe: bool,
    /// Relay stderr: the guest dials the `StdErr` port.
    #[serde(
        rename = "CreateStdErrPipe",
        default,
        skip_serializing_if = "is_default"
    )]
    pub create_std_err_pipe: bool,
    /// Run in the utility VM rather than a container (guest field `IsExternal`). hcsschema
    /// spells it `CreateInUtilityVm`; Go's case-insensitive decoder accepts both.
    #[serde(
        rename = "CreateInUtilityVM",
        default,
        skip_serializing_if = "is_default"
    )]
    pub create_in_utility_vm: bool,
    /// Legacy full OCI spec; unused by the v2 path.
    #[serde(
        rename = "OciSpecification",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oci_specification: Option<RawJson>,
    /// The OCI `process` object of an exec; absent for a container's init process.
    #[serde(
        rename = "OciProcess",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oci_process: Option<RawJson>,
}

/// Stdio ports the guest dials (`ExecuteProcessVsockStdioRelaySettings`); 0 = none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockStdioRelaySettings {
    /// Port for stdin.
    #[serde(rename = "StdIn", default, skip_serializing_if = "is_zero_u32")]
    pub std_in: u32,
    /// Port for stdout.
    #[serde(rename = "StdOut", default, skip_serializing_if = "is_zero_u32")]
    pub std_out: u32,
    /// Port for stderr.
    #[serde(rename = "StdErr", default, skip_serializing_if = "is_zero_u32")]
    pub std_err: u32,
}

/// The `Settings` of an ExecuteProcess request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteProcessSettings {
    /// The process parameters, as JSON inside a string.
    #[serde(rename = "ProcessParameters")]
    pub process_parameters: AnyInString<ProcessParameters>,
    /// Stdio ports; sent by the host only for Linux guests. Absent means all zero.
    #[serde(
        rename = "VsockStdioRelaySettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vsock_stdio_relay_settings: Option<VsockStdioRelaySettings>,
}

impl ExecuteProcessSettings {
    /// The relay ports, all zero if the settings were absent.
    pub fn stdio_ports(&self) -> VsockStdioRelaySettings {
        self.vsock_stdio_relay_settings.unwrap_or_default()
    }
}

super::message! {
    /// ExecuteProcess (`0x10100501`).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct ExecuteProcessRequest {
        /// Request base.
        pub base: RequestBase,
        /// Process settings.
        #[serde(rename = "Settings")]
        pub settings: ExecuteProcessSettings,
    }
}

super::message! {
    /// ExecuteProcess response: the pid in the UVM's root pid namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct ExecuteProcessResponse {
        /// Response base.
        pub base: ResponseBase,
        /// The process id.
        #[serde(rename = "ProcessId", default)]
        pub process_id: u32,
    }
}

super::message! {
    /// WaitForProcess (`0x10100601`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct WaitForProcessRequest {
        /// Request base.
        pub base: RequestBase,
        /// The process id.
        #[serde(rename = "ProcessId", default)]
        pub process_id: u32,
        /// Timeout in ms; [`INFINITE_TIMEOUT_MS`] = infinite.
        #[serde(rename = "TimeoutInMs", default)]
        pub timeout_in_ms: u32,
    }
}

impl Default for WaitForProcessRequest {
    fn default() -> Self {
        Self {
            base: RequestBase::default(),
            process_id: 0,
            timeout_in_ms: INFINITE_TIMEOUT_MS,
        }
    }
}

super::message! {
    /// WaitForProcess response, sent only once the process has exited.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct WaitForProcessResponse {
        /// Response base.
        pub base: ResponseBase,
        /// Exit status, `128+signal` for signalled container processes, `4294967295` (-1) for
        /// signalled external processes.
        #[serde(rename = "ExitCode", default)]
        pub exit_code: u32,
    }
}

/// LCOW signal options: a raw Linux signal number; 0 or absent means SIGKILL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalProcessOptions {
    /// Linux signal number.
    #[serde(rename = "Signal", default, skip_serializing_if = "is_default")]
    pub signal: i32,
}

super::message! {
    /// SignalProcess (`0x10100701`).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct SignalProcessRequest {
        /// Request base.
        pub base: RequestBase,
        /// The process id.
        #[serde(rename = "ProcessId", default)]
        pub process_id: u32,
        /// Signal options; absent for a kill.
        #[serde(rename = "Options", default, skip_serializing_if = "Option::is_none")]
        pub options: Option<SignalProcessOptions>,
    }
}

impl SignalProcessRequest {
    /// The signal to deliver: absent or 0 means SIGKILL (9).
    pub fn effective_signal(&self) -> i32 {
        match self.options {
            Some(SignalProcessOptions { signal }) if signal != 0 => signal,
            _ => 9,
        }
    }
}

super::message! {
    /// ResizeConsole (`0x10100801`).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct ResizeConsoleRequest {
        /// Request base.
        pub base: RequestBase,
        /// The process id.
        #[serde(rename = "ProcessId", default)]
        pub process_id: u32,
        /// Rows.
        #[serde(rename = "Height", default)]
        pub height: u16,
        /// Columns.
        #[serde(rename = "Width", default)]
        pub width: u16,
    }
}
