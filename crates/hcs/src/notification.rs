//! Decoding of computecore events (hcs-hcn-api.md §1.5 `HcsEventType`, §1.7 event handling).
//!
//! A registered callback receives `HCS_EVENT {Type, EventData}`. Exits carry JSON: a system
//! exit `{"Status": i32, "ExitType": string}`, a process exit the schema2 `ProcessStatus`.
//! The data comes from HCS and is decoded defensively: a bad document never panics, and is
//! reported rather than guessed at.

use serde::Deserialize;

use crate::api::RawEvent;
use crate::error::ErrorKind;
use crate::hresult::HResult;

/// `HCS_EVENT_TYPE` values.
pub mod event_type {
    /// `HcsEventInvalid`.
    pub const INVALID: u32 = 0x0;
    /// `HcsEventSystemExited`.
    pub const SYSTEM_EXITED: u32 = 0x1;
    /// `HcsEventSystemCrashInitiated`.
    pub const SYSTEM_CRASH_INITIATED: u32 = 0x2;
    /// `HcsEventSystemCrashReport`.
    pub const SYSTEM_CRASH_REPORT: u32 = 0x3;
    /// `HcsEventSystemRdpEnhancedModeStateChanged`.
    pub const SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED: u32 = 0x4;
    /// `HcsEventSystemSiloJobCreated`.
    pub const SYSTEM_SILO_JOB_CREATED: u32 = 0x5;
    /// `HcsEventSystemGuestConnectionClosed`.
    pub const SYSTEM_GUEST_CONNECTION_CLOSED: u32 = 0x6;
    /// `HcsEventProcessExited`.
    pub const PROCESS_EXITED: u32 = 0x0001_0000;
    /// `HcsEventOperationCallback`.
    pub const OPERATION_CALLBACK: u32 = 0x0100_0000;
    /// `HcsEventServiceDisconnect`.
    pub const SERVICE_DISCONNECT: u32 = 0x0200_0000;
    /// `HcsEventGroupVmLifecycle`.
    pub const GROUP_VM_LIFECYCLE: u32 = 0x8000_0002;
    /// `HcsEventGroupLiveMigration`.
    pub const GROUP_LIVE_MIGRATION: u32 = 0x8000_0003;
    /// `HcsEventGroupOperationInfo`.
    pub const GROUP_OPERATION_INFO: u32 = 0xC000_0001;
}

/// What an event means to a system or process object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// The system or process exited; the raw exit JSON, if any.
    Exited(Option<String>),
    /// The compute service went away: waiters are released with
    /// [`ErrorKind::UnexpectedProcessAbort`].
    ServiceDisconnect,
    /// A live-migration event (not consumed by this crate yet).
    LiveMigration(Option<String>),
    /// Anything else (logged and dropped).
    Other(u32),
}

/// Classifies an event.
pub fn decode(event: &RawEvent) -> Notification {
    match event.event_type {
        event_type::SYSTEM_EXITED | event_type::PROCESS_EXITED => {
            Notification::Exited(event.data.clone())
        }
        event_type::SERVICE_DISCONNECT => Notification::ServiceDisconnect,
        event_type::GROUP_LIVE_MIGRATION => Notification::LiveMigration(event.data.clone()),
        other => Notification::Other(other),
    }
}

#[derive(Debug, Deserialize)]
struct SystemExitStatus {
    #[serde(rename = "Status", default)]
    #[allow(dead_code)] // decoded for completeness; hcsshim does not act on it either
    status: Option<i32>,
    #[serde(rename = "ExitType", default)]
    exit_type: Option<String>,
}

/// The exit error of a system exit: [`HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT`] when the
/// exit data says `"ExitType": "UnexpectedExit"`, otherwise none (also when the data cannot
/// be parsed, which is logged: a clean exit must not turn into a failure on bad data).
pub fn system_exit_error(data: Option<&str>) -> Option<ErrorKind> {
    let data = data.filter(|d| !d.trim().is_empty())?;
    match serde_json::from_str::<SystemExitStatus>(data) {
        Ok(s) if s.exit_type.as_deref() == Some("UnexpectedExit") => {
            Some(ErrorKind::HResult(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT))
        }
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "failed to parse system exit status");
            None
        }
    }
}

/// schema2 `ProcessStatus`, the data of a process exit event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProcessStatus {
    /// The process id.
    #[serde(rename = "ProcessId", default)]
    pub process_id: u32,
    /// Whether it exited.
    #[serde(rename = "Exited", default)]
    pub exited: bool,
    /// The exit code.
    #[serde(rename = "ExitCode", default)]
    pub exit_code: u32,
    /// The result of HCS's wait on the process; non-zero means the exit code is unknown.
    #[serde(rename = "LastWaitResult", default)]
    pub last_wait_result: i32,
}

/// The exit code of a process exit event, as hcsshim's `waitBackground` computes it: −1 when
/// there is no data or `LastWaitResult != 0`, else `ExitCode` (a `u32`, kept unsigned). Bad
/// data is an error (it becomes the wait error).
pub fn process_exit_code(data: Option<&str>) -> Result<i64, ErrorKind> {
    let Some(data) = data.filter(|d| !d.trim().is_empty()) else {
        return Ok(-1);
    };
    let status: ProcessStatus = serde_json::from_str(data)
        .map_err(|e| ErrorKind::InvalidResponse(format!("process exit status: {e}")))?;
    if status.last_wait_result != 0 {
        tracing::warn!(
            wait_result = status.last_wait_result,
            "non-zero last wait result"
        );
        return Ok(-1);
    }
    Ok(i64::from(status.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u32, d: Option<&str>) -> RawEvent {
        RawEvent {
            event_type: t,
            data: d.map(str::to_string),
        }
    }

    #[test]
    fn classifies_events() {
        assert_eq!(
            decode(&ev(0x1, Some("{}"))),
            Notification::Exited(Some("{}".into()))
        );
        assert_eq!(decode(&ev(0x0001_0000, None)), Notification::Exited(None));
        assert_eq!(
            decode(&ev(0x0200_0000, None)),
            Notification::ServiceDisconnect
        );
        assert_eq!(
            decode(&ev(0x8000_0003, Some("x"))),
            Notification::LiveMigration(Some("x".into()))
        );
        for t in [
            0x0,
            0x2,
            0x3,
            0x4,
            0x5,
            0x6,
            0x0100_0000,
            0x8000_0002,
            0xC000_0001,
        ] {
            assert_eq!(decode(&ev(t, None)), Notification::Other(t));
        }
    }

    #[test]
    fn system_exit_data() {
        assert!(system_exit_error(None).is_none());
        assert!(system_exit_error(Some("")).is_none());
        assert!(system_exit_error(Some(r#"{"Status":0,"ExitType":"GracefulExit"}"#)).is_none());
        let e = system_exit_error(Some(
            r#"{"Status":-2147023895,"ExitType":"UnexpectedExit"}"#,
        ))
        .unwrap();
        assert_eq!(e.hresult(), Some(HResult::new(0xC037_0106)));
        assert!(system_exit_error(Some("{bad")).is_none());
        assert!(system_exit_error(Some(r#"{"ExitType":5}"#)).is_none());
    }

    #[test]
    fn process_exit_data() {
        assert_eq!(process_exit_code(None).unwrap(), -1);
        assert_eq!(
            process_exit_code(Some(
                r#"{"ProcessId":42,"Exited":true,"ExitCode":3,"LastWaitResult":0}"#
            ))
            .unwrap(),
            3
        );
        assert_eq!(
            process_exit_code(Some(
                r#"{"ProcessId":42,"Exited":true,"ExitCode":3221225477}"#
            ))
            .unwrap(),
            3_221_225_477
        );
        assert_eq!(
            process_exit_code(Some(r#"{"ExitCode":3,"LastWaitResult":258}"#)).unwrap(),
            -1
        );
        assert!(matches!(
            process_exit_code(Some("[1,2")),
            Err(ErrorKind::InvalidResponse(_))
        ));
    }
}
