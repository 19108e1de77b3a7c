//! Process creation parameters, process status and process modification requests.

use std::collections::BTreeMap;

use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Parameters of `HcsCreateProcess` (and of a GCS ExecuteProcess for WCOW).
    pub struct ProcessParameters {
        /// Executable.
        "ApplicationName" application_name: String,
        /// Command line.
        "CommandLine" command_line: String,
        /// Argument vector; only the Linux GCS reads it.
        "CommandArgs" command_args: Vec<String>,
        /// User to run as.
        "User" user: String,
        /// Working directory.
        "WorkingDirectory" working_directory: String,
        /// Environment; keys sorted as Go sorts them.
        "Environment" environment: BTreeMap<String, String>,
        /// Run as a low-privilege process.
        "RestrictedToken" restricted_token: bool,
        /// Allocate a console (then `CreateStdErrPipe` is ignored).
        "EmulateConsole" emulate_console: bool,
        /// Create a stdin pipe.
        "CreateStdInPipe" create_std_in_pipe: bool,
        /// Create a stdout pipe.
        "CreateStdOutPipe" create_std_out_pipe: bool,
        /// Create a stderr pipe.
        "CreateStdErrPipe" create_std_err_pipe: bool,
        /// Console size, `[height, width]`.
        "ConsoleSize" console_size: Vec<i32>,
        /// Create the process in the utility VM instead of the container.
        "CreateInUtilityVM" create_in_utility_vm: bool,
        /// Create the process in an existing session of the user.
        "UseExistingLogin" use_existing_login: bool,
        /// Use the legacy console instead of conhost.
        "UseLegacyConsole" use_legacy_console: bool,
    }
}

omitempty_struct! {
    /// Status of a process (the event data of `HcsEventProcessExited`).
    #[derive(Eq)]
    pub struct ProcessStatus {
        /// Process id.
        "ProcessId" process_id: u32,
        /// The process has exited.
        "Exited" exited: bool,
        /// Exit code; valid when `Exited` and `LastWaitResult` is S_OK.
        "ExitCode" exit_code: u32,
        /// HRESULT of waiting for the exit.
        "LastWaitResult" last_wait_result: i32,
    }
}

string_enum! {
    /// Operation of a [`ProcessModifyRequest`].
    pub enum ModifyOperation {
        /// Resize the console.
        ConsoleSize = "ConsoleSize",
        /// Close a standard handle.
        CloseHandle = "CloseHandle",
    }
}

omitempty_struct! {
    /// `HcsModifyProcess` document.
    pub struct ProcessModifyRequest {
        /// Operation.
        "Operation" operation: Option<ModifyOperation>,
        /// New console size (for `ConsoleSize`).
        "ConsoleSize" console_size: Option<ConsoleSize>,
        /// Handle to close (for `CloseHandle`).
        "CloseHandle" close_handle: Option<CloseHandle>,
    }
}

omitempty_struct! {
    /// A console size.
    #[derive(Eq)]
    pub struct ConsoleSize {
        /// Rows.
        "Height" height: u16,
        /// Columns.
        "Width" width: u16,
    }
}

string_enum! {
    /// A standard handle.
    pub enum StdHandle {
        /// stdin.
        StdIn = "StdIn",
        /// stdout.
        StdOut = "StdOut",
        /// stderr.
        StdErr = "StdErr",
        /// All three.
        All = "All",
    }
}

omitempty_struct! {
    /// Which standard handle to close.
    pub struct CloseHandle {
        /// The handle.
        "Handle" handle: Option<StdHandle>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn wcow_process_parameters() {
        let p = ProcessParameters {
            command_line: "cmd /c echo hi".into(),
            working_directory: r"C:\".into(),
            environment: [("PATH".to_owned(), r"C:\Windows".to_owned())].into(),
            emulate_console: true,
            create_std_in_pipe: true,
            create_std_out_pipe: true,
            console_size: vec![25, 80],
            ..Default::default()
        };
        let text = json::to_string(&p).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"CommandLine":"cmd /c echo hi","WorkingDirectory":"C:\\","Environment":{"PATH":"C:\\Windows"},"#,
                r#""EmulateConsole":true,"CreateStdInPipe":true,"CreateStdOutPipe":true,"ConsoleSize":[25,80]}"#
            )
        );
        assert_eq!(json::from_str::<ProcessParameters>(&text).unwrap(), p);
        assert_eq!(
            json::to_string(&ProcessParameters::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn process_status_event() {
        let s: ProcessStatus =
            json::from_str(r#"{"ProcessId":1234,"Exited":true,"ExitCode":3,"LastWaitResult":0}"#)
                .unwrap();
        assert_eq!(
            s,
            ProcessStatus {
                process_id: 1234,
                exited: true,
                exit_code: 3,
                last_wait_result: 0
            }
        );
        assert_eq!(
            json::to_string(&s).unwrap(),
            r#"{"ProcessId":1234,"Exited":true,"ExitCode":3}"#
        );
        let failed: ProcessStatus =
            json::from_str(r#"{"ProcessId":1,"LastWaitResult":-2147024809}"#).unwrap();
        assert_eq!(failed.last_wait_result as u32, 0x8007_0057);
    }

    #[test]
    fn modify_process_requests() {
        let resize = ProcessModifyRequest {
            operation: Some(ModifyOperation::ConsoleSize),
            console_size: Some(ConsoleSize {
                height: 40,
                width: 120,
            }),
            close_handle: None,
        };
        assert_eq!(
            json::to_string(&resize).unwrap(),
            r#"{"Operation":"ConsoleSize","ConsoleSize":{"Height":40,"Width":120}}"#
        );
        let close = ProcessModifyRequest {
            operation: Some(ModifyOperation::CloseHandle),
            close_handle: Some(CloseHandle {
                handle: Some(StdHandle::StdIn),
            }),
            console_size: None,
        };
        assert_eq!(
            json::to_string(&close).unwrap(),
            r#"{"Operation":"CloseHandle","CloseHandle":{"Handle":"StdIn"}}"#
        );
    }
}
