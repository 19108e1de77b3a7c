//! The error model shared by every container/process backend (hcs-hcn-api.md §2).
//!
//! [`ErrorKind`] is what went wrong: an HRESULT from HCS or the GCS, one of hcsshim's sentinel
//! errors (§2.2), or a failure of this port's own plumbing. [`Error`] wraps a kind with the
//! context hcsshim's wrapper types carry (§2.3): the operation, the compute system id and
//! process id it concerned, extra detail, and the error records of the HCS result document.
//! One type plays `HcsError`, `SystemError` and `ProcessError`; [`Target`] says which.
//!
//! The predicates ([`is_not_exist`] and the rest, §2.4) look at the kind only, so they give
//! the same answer however deep the context. HRESULTs are compared by
//! [`HResult::condition`], so the v1 `0xC037nnnn` and v2 `0x8037nnnn` forms of a code, and a
//! raw `0x8007xxxx` and its bare Win32 code, always match each other. hcsshim's v2 predicates
//! miss the `0x8037` forms (and its v2 `IsAlreadyStopped` omits `0x80370110`); this port does
//! not.

use std::fmt;
use std::sync::Arc;

use crate::hresult::HResult;
use crate::result_doc::ErrorEvent;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// HCS, vmcompute or the GCS returned a failure HRESULT.
    #[error("{0}")]
    HResult(HResult),
    /// `ErrHandleClose`: the handle a notification was awaited on was closed.
    #[error("hcsshim: the handle generating this notification has been closed")]
    HandleClose,
    /// `ErrAlreadyClosed`: the handle was already closed by `close`.
    #[error("hcsshim: the handle has already been closed")]
    AlreadyClosed,
    /// `ErrInvalidNotificationType`: a wait for a notification type nobody delivers.
    #[error("hcsshim: invalid notification type")]
    InvalidNotificationType,
    /// `ErrInvalidProcessState`: e.g. the exit code of a process still running.
    #[error("the process is in an invalid state for the attempted operation")]
    InvalidProcessState,
    /// `ErrTimeout`: a wait for a notification or an operation timed out.
    #[error("hcsshim: timeout waiting for notification")]
    Timeout,
    /// `ErrUnexpectedContainerExit`: the system exited while another notification was awaited.
    #[error("unexpected container exit")]
    UnexpectedContainerExit,
    /// `ErrUnexpectedProcessAbort`: communication with the compute service was lost.
    #[error("lost communication with compute service")]
    UnexpectedProcessAbort,
    /// `ErrUnexpectedValue`: HCS returned a value that makes no sense (e.g. an empty list).
    #[error("unexpected value returned from hcs")]
    UnexpectedValue,
    /// `ErrOperationDenied`: the operation is explicitly denied.
    #[error("operation denied")]
    OperationDenied,
    /// `ErrPlatformNotSupported`: an unsupported platform request.
    #[error("unsupported platform request")]
    PlatformNotSupported,
    /// containerd's `errdefs.ErrNotImplemented`: the backend cannot do this operation.
    #[error("not implemented")]
    NotImplemented,
    /// The Host Compute Service is not available on this host (DLL or export missing,
    /// Containers feature not installed, or not Windows at all).
    #[error("HCS is not available: {0}")]
    NotAvailable(String),
    /// A document returned by HCS or the guest could not be decoded.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The caller passed something that cannot be sent (e.g. an id with a NUL character).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A deadline set by the caller passed before the operation completed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// An I/O error of the transport (pipes, bridge connection).
    #[error("{0}")]
    Io(Arc<std::io::Error>),
    /// A failure of a transport or peer that has no HRESULT (e.g. the bridge connection).
    #[error("{0}")]
    Transport(String),
}

impl ErrorKind {
    /// The HRESULT, when the kind is one.
    pub fn hresult(&self) -> Option<HResult> {
        match self {
            ErrorKind::HResult(hr) => Some(*hr),
            _ => None,
        }
    }

    /// True when the kind is an HRESULT naming the same condition as one of `targets`.
    pub fn is_any(&self, targets: &[HResult]) -> bool {
        self.hresult().is_some_and(|hr| hr.is_any(targets))
    }
}

impl From<HResult> for ErrorKind {
    fn from(hr: HResult) -> Self {
        ErrorKind::HResult(hr)
    }
}

/// What an error concerned: nothing in particular (`HcsError`), a compute system
/// (`SystemError`) or a process in one (`ProcessError`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Target {
    /// No particular object (service calls, enumeration).
    #[default]
    None,
    /// A compute system.
    System {
        /// Its id.
        id: String,
    },
    /// A process of a compute system.
    Process {
        /// The id of the compute system.
        system_id: String,
        /// The process id.
        pid: u32,
    },
}

/// An error of an HCS or GCS operation, with its context.
///
/// Displayed as hcsshim displays its wrappers: `"<op>: <err>"`, `"<op> <id>: <err>"` or
/// `"<op> <id>:<pid>: <err>"`, then the extra detail after `"; "`, then one line per error
/// record.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

/// Boxed so `Result<T, Error>` stays one pointer wide on the error side.
#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    op: String,
    target: Target,
    extra: Option<String>,
    events: Vec<ErrorEvent>,
}

impl Error {
    /// An error of `kind` with no context.
    pub fn new(kind: impl Into<ErrorKind>) -> Self {
        Self(Box::new(Inner {
            kind: kind.into(),
            op: String::new(),
            target: Target::None,
            extra: None,
            events: Vec::new(),
        }))
    }

    /// An error of `kind` raised by operation `op` (e.g. `"hcs::System::Start"`).
    pub fn op(op: impl Into<String>, kind: impl Into<ErrorKind>) -> Self {
        Self::new(kind).with_op(op)
    }

    /// Sets the operation name.
    #[must_use]
    pub fn with_op(mut self, op: impl Into<String>) -> Self {
        self.0.op = op.into();
        self
    }

    /// Sets the operation name only if none is set yet.
    #[must_use]
    pub fn with_op_if_empty(self, op: &str) -> Self {
        if self.0.op.is_empty() {
            self.with_op(op)
        } else {
            self
        }
    }

    /// Marks the error as concerning compute system `id`, unless it already names a system
    /// or process (hcsshim's `makeSystemError` does not wrap twice).
    #[must_use]
    pub fn with_system(mut self, id: impl Into<String>) -> Self {
        if self.0.target == Target::None {
            self.0.target = Target::System { id: id.into() };
        }
        self
    }

    /// Marks the error as concerning process `pid` of `system_id`, unless it already names a
    /// process (hcsshim's `makeProcessError` does not wrap twice).
    #[must_use]
    pub fn with_process(mut self, system_id: impl Into<String>, pid: u32) -> Self {
        if !matches!(self.0.target, Target::Process { .. }) {
            self.0.target = Target::Process {
                system_id: system_id.into(),
                pid,
            };
        }
        self
    }

    /// Adds detail (e.g. the command line of a process that failed to start).
    #[must_use]
    pub fn with_extra(mut self, extra: impl Into<String>) -> Self {
        self.0.extra = Some(extra.into());
        self
    }

    /// Attaches the error records of an HCS result document.
    #[must_use]
    pub fn with_events(mut self, events: Vec<ErrorEvent>) -> Self {
        self.0.events = events;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The HRESULT, when the error is one.
    pub fn hresult(&self) -> Option<HResult> {
        self.0.kind.hresult()
    }

    /// The operation name (empty when not set).
    pub fn operation(&self) -> &str {
        &self.0.op
    }

    /// What the error concerned.
    pub fn target(&self) -> &Target {
        &self.0.target
    }

    /// The extra detail, if any.
    pub fn extra(&self) -> Option<&str> {
        self.0.extra.as_deref()
    }

    /// The error records of the HCS result document.
    pub fn events(&self) -> &[ErrorEvent] {
        &self.0.events
    }

    /// The Win32 code hcsshim's `Win32FromError` extracts: the normalised HRESULT, or
    /// `ERROR_GEN_FAILURE` (31) for anything that is not an HRESULT.
    pub fn win32_code(&self) -> u32 {
        match self.0.kind {
            ErrorKind::HResult(hr) => hr.normalized().value(),
            _ => HResult::ERROR_GEN_FAILURE.value(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0.op.as_str();
        match &self.0.target {
            Target::None if op.is_empty() => write!(f, "{}", self.0.kind)?,
            Target::None => write!(f, "{op}: {}", self.0.kind)?,
            Target::System { id } if op.is_empty() => write!(f, "{id}: {}", self.0.kind)?,
            Target::System { id } => write!(f, "{op} {id}: {}", self.0.kind)?,
            Target::Process { system_id, pid } if op.is_empty() => {
                write!(f, "{system_id}:{pid}: {}", self.0.kind)?
            }
            Target::Process { system_id, pid } => {
                write!(f, "{op} {system_id}:{pid}: {}", self.0.kind)?
            }
        }
        if let Some(extra) = &self.0.extra {
            write!(f, "; {extra}")?;
        }
        for ev in &self.0.events {
            write!(f, "\n{ev}")?;
        }
        Ok(())
    }
}

// The kind is printed by Display, so it is not also exposed as `source` (that would print it
// twice in error chains).
impl std::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<HResult> for Error {
    fn from(hr: HResult) -> Self {
        Error::new(ErrorKind::HResult(hr))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io(Arc::new(err)))
    }
}

/// HRESULTs [`is_not_exist`] matches: `ErrComputeSystemDoesNotExist` and `ErrElementNotFound`.
pub const NOT_EXIST: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND,
    HResult::ERROR_NOT_FOUND,
];

/// HRESULTs [`is_pending`] matches: `ErrVmcomputeOperationPending`, and computecore's
/// `HCS_E_OPERATION_PENDING` ("the operation is still running"), which reports the same
/// state for an operation handle.
pub const PENDING: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_OPERATION_PENDING,
    HResult::HCS_E_OPERATION_PENDING,
];

/// HRESULTs [`is_already_stopped`] matches. Includes `HCS_E_SYSTEM_ALREADY_STOPPED`
/// (`0x80370110`), which hcsshim's v2 predicate omits.
pub const ALREADY_STOPPED: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED,
    HResult::HCS_E_SYSTEM_ALREADY_STOPPED,
    HResult::HCS_E_PROCESS_ALREADY_STOPPED,
    HResult::ERROR_NOT_FOUND,
];

/// HRESULTs [`is_not_supported`] matches.
pub const NOT_SUPPORTED: &[HResult] = &[
    HResult::ERROR_VMCOMPUTE_INVALID_JSON,
    HResult::ERROR_INVALID_DATA,
    HResult::ERROR_NOT_SUPPORTED,
    HResult::ERROR_VMCOMPUTE_UNKNOWN_MESSAGE,
];

/// HRESULTs [`is_operation_invalid_state`] matches (both forms fold onto each other).
pub const OPERATION_INVALID_STATE: &[HResult] = &[HResult::ERROR_VMCOMPUTE_INVALID_STATE];

/// HRESULTs [`is_access_is_denied`] matches.
pub const ACCESS_IS_DENIED: &[HResult] = &[HResult::ERROR_ACCESS_DENIED];

/// HRESULTs [`is_error_invalid_handle`] matches.
pub const INVALID_HANDLE: &[HResult] = &[HResult::ERROR_INVALID_HANDLE];

/// HRESULTs that make [`is_timeout`] true besides the timeout kinds: computecore's
/// `HCS_E_OPERATION_TIMEOUT`, which a bounded operation wait reports.
pub const TIMEOUT: &[HResult] = &[HResult::HCS_E_OPERATION_TIMEOUT];

/// `IsNotExist`: the compute system or process does not exist (`0xC037010E` or `0x8037010E`,
/// `0x490` or `0x80070490`). `ErrElementNotFound` also satisfies [`is_already_stopped`], on
/// purpose: for a process it means "already exited".
pub fn is_not_exist(err: &Error) -> bool {
    err.0.kind.is_any(NOT_EXIST)
}

/// `IsAlreadyClosed`: the handle was closed by `close`.
pub fn is_already_closed(err: &Error) -> bool {
    matches!(err.0.kind, ErrorKind::AlreadyClosed)
}

/// `IsPending`: the operation continues in the background.
pub fn is_pending(err: &Error) -> bool {
    err.0.kind.is_any(PENDING)
}

/// `IsTimeout`: a wait timed out (`ErrTimeout`, a passed deadline, an I/O timeout, or
/// `HCS_E_OPERATION_TIMEOUT`).
pub fn is_timeout(err: &Error) -> bool {
    match &err.0.kind {
        ErrorKind::Timeout | ErrorKind::DeadlineExceeded => true,
        ErrorKind::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        kind => kind.is_any(TIMEOUT),
    }
}

/// `IsAlreadyStopped`: the compute system or process has already stopped.
pub fn is_already_stopped(err: &Error) -> bool {
    err.0.kind.is_any(ALREADY_STOPPED)
}

/// `IsNotSupported`: the platform does not recognise or support the request.
pub fn is_not_supported(err: &Error) -> bool {
    err.0.kind.is_any(NOT_SUPPORTED)
}

/// `IsOperationInvalidState`: the operation is not valid in the current state.
pub fn is_operation_invalid_state(err: &Error) -> bool {
    err.0.kind.is_any(OPERATION_INVALID_STATE)
}

/// `IsAccessIsDenied`: `ERROR_ACCESS_DENIED`.
pub fn is_access_is_denied(err: &Error) -> bool {
    err.0.kind.is_any(ACCESS_IS_DENIED)
}

/// `IsErrorInvalidHandle`: an operation on an invalid (closed) handle.
pub fn is_error_invalid_handle(err: &Error) -> bool {
    err.0.kind.is_any(INVALID_HANDLE)
}

/// `IsAny`: the error is an HRESULT naming the same condition as one of `targets`.
pub fn is_any(err: &Error, targets: &[HResult]) -> bool {
    err.0.kind.is_any(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Predicate = fn(&Error) -> bool;

    const PREDICATES: &[(&str, Predicate)] = &[
        ("is_not_exist", is_not_exist),
        ("is_already_closed", is_already_closed),
        ("is_pending", is_pending),
        ("is_timeout", is_timeout),
        ("is_already_stopped", is_already_stopped),
        ("is_not_supported", is_not_supported),
        ("is_operation_invalid_state", is_operation_invalid_state),
        ("is_access_is_denied", is_access_is_denied),
        ("is_error_invalid_handle", is_error_invalid_handle),
    ];

    /// Every HRESULT the predicates are tested with, with the predicates that must be true.
    const HRESULT_CASES: &[(u32, &[&str])] = &[
        (0xC037_010E, &["is_not_exist"]),
        (0x8037_010E, &["is_not_exist"]),
        (0x490, &["is_not_exist", "is_already_stopped"]),
        (0x8007_0490, &["is_not_exist", "is_already_stopped"]),
        (0xC037_0103, &["is_pending"]),
        (0x8037_0103, &["is_pending"]),
        (0x8037_0117, &["is_pending"]),
        (0x8037_0118, &["is_timeout"]),
        (0xC037_0118, &["is_timeout"]),
        (0xC037_0110, &["is_already_stopped"]),
        (0x8037_0110, &["is_already_stopped"]),
        (0x8037_011F, &["is_already_stopped"]),
        (0xC037_011F, &["is_already_stopped"]),
        (0xC037_010D, &["is_not_supported"]),
        (0x8037_010D, &["is_not_supported"]),
        (0xD, &["is_not_supported"]),
        (0x8007_000D, &["is_not_supported"]),
        (0x32, &["is_not_supported"]),
        (0x8007_0032, &["is_not_supported"]),
        (0xC037_010B, &["is_not_supported"]),
        (0x8037_010B, &["is_not_supported"]),
        (0xC037_0105, &["is_operation_invalid_state"]),
        (0x8037_0105, &["is_operation_invalid_state"]),
        (0x5, &["is_access_is_denied"]),
        (0x8007_0005, &["is_access_is_denied"]),
        (0x6, &["is_error_invalid_handle"]),
        (0x8007_0006, &["is_error_invalid_handle"]),
        // Near misses that must match nothing.
        (0x7F, &[]),
        (0xC037_0106, &[]),
        (0x8037_011B, &[]),
        (0xC038_010E, &[]),
        (0x8038_0110, &[]),
        (0x0007_0490, &[]),
        (0x9007_0490, &[]),
        (0, &[]),
    ];

    fn check(err: &Error, expected: &[&str]) {
        for (name, pred) in PREDICATES {
            assert_eq!(
                pred(err),
                expected.contains(name),
                "{name} on {err} (kind {:?})",
                err.kind()
            );
        }
    }

    #[test]
    fn predicates_on_hresults() {
        for (value, expected) in HRESULT_CASES {
            let bare = Error::from(HResult::new(*value));
            check(&bare, expected);
            // Context never changes the answer.
            let wrapped = Error::op("hcs::System::Start", HResult::new(*value))
                .with_system("c1")
                .with_extra("x")
                .with_events(vec![ErrorEvent::default()]);
            check(&wrapped, expected);
        }
    }

    #[test]
    fn predicates_on_sentinels() {
        let cases: &[(ErrorKind, &[&str])] = &[
            (ErrorKind::AlreadyClosed, &["is_already_closed"]),
            (ErrorKind::Timeout, &["is_timeout"]),
            (ErrorKind::DeadlineExceeded, &["is_timeout"]),
            (
                ErrorKind::Io(Arc::new(std::io::ErrorKind::TimedOut.into())),
                &["is_timeout"],
            ),
            (
                ErrorKind::Io(Arc::new(std::io::ErrorKind::BrokenPipe.into())),
                &[],
            ),
            (ErrorKind::HandleClose, &[]),
            (ErrorKind::InvalidNotificationType, &[]),
            (ErrorKind::InvalidProcessState, &[]),
            (ErrorKind::UnexpectedContainerExit, &[]),
            (ErrorKind::UnexpectedProcessAbort, &[]),
            (ErrorKind::UnexpectedValue, &[]),
            (ErrorKind::OperationDenied, &[]),
            (ErrorKind::PlatformNotSupported, &[]),
            (ErrorKind::NotImplemented, &[]),
            (ErrorKind::NotAvailable("x".into()), &[]),
            (ErrorKind::InvalidResponse("x".into()), &[]),
            (ErrorKind::InvalidArgument("x".into()), &[]),
            (ErrorKind::Transport("x".into()), &[]),
        ];
        for (kind, expected) in cases {
            check(&Error::new(kind.clone()), expected);
        }
    }

    #[test]
    fn sentinel_messages_are_exact() {
        let cases: &[(ErrorKind, &str)] = &[
            (
                ErrorKind::HandleClose,
                "hcsshim: the handle generating this notification has been closed",
            ),
            (
                ErrorKind::AlreadyClosed,
                "hcsshim: the handle has already been closed",
            ),
            (
                ErrorKind::InvalidNotificationType,
                "hcsshim: invalid notification type",
            ),
            (
                ErrorKind::InvalidProcessState,
                "the process is in an invalid state for the attempted operation",
            ),
            (
                ErrorKind::Timeout,
                "hcsshim: timeout waiting for notification",
            ),
            (
                ErrorKind::UnexpectedContainerExit,
                "unexpected container exit",
            ),
            (
                ErrorKind::UnexpectedProcessAbort,
                "lost communication with compute service",
            ),
            (
                ErrorKind::UnexpectedValue,
                "unexpected value returned from hcs",
            ),
            (ErrorKind::OperationDenied, "operation denied"),
            (
                ErrorKind::PlatformNotSupported,
                "unsupported platform request",
            ),
        ];
        for (kind, msg) in cases {
            assert_eq!(kind.to_string(), *msg);
        }
    }

    #[test]
    fn display_matches_hcsshim_wrappers() {
        let hr = HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND;
        assert_eq!(
            Error::op("HcsEnumerateComputeSystems", ErrorKind::UnexpectedValue).to_string(),
            "HcsEnumerateComputeSystems: unexpected value returned from hcs"
        );
        assert_eq!(
            Error::op("hcs::System::Start", ErrorKind::AlreadyClosed)
                .with_system("abc")
                .to_string(),
            "hcs::System::Start abc: hcsshim: the handle has already been closed"
        );
        let e = Error::op("hcs::Process::Kill", hr)
            .with_process("abc", 42)
            .with_extra("cmd /c dir")
            .with_events(vec![
                ErrorEvent {
                    message: "first".into(),
                    event_id: 7,
                    ..Default::default()
                },
                ErrorEvent {
                    message: "second".into(),
                    ..Default::default()
                },
            ]);
        assert_eq!(
            e.to_string(),
            format!(
                "hcs::Process::Kill abc:42: {hr}; cmd /c dir\n[Event Detail: first EventID: 7]\n\
                 [Event Detail: second]"
            )
        );
        assert_eq!(
            Error::new(ErrorKind::Timeout).to_string(),
            ErrorKind::Timeout.to_string()
        );
    }

    #[test]
    fn wrapping_does_not_replace_a_more_specific_target() {
        let e = Error::op("op", ErrorKind::Timeout)
            .with_process("sys", 3)
            .with_system("other");
        assert_eq!(
            e.target(),
            &Target::Process {
                system_id: "sys".into(),
                pid: 3
            }
        );
        let e = Error::new(ErrorKind::Timeout)
            .with_system("a")
            .with_system("b");
        assert_eq!(e.target(), &Target::System { id: "a".into() });
        let e = Error::new(ErrorKind::Timeout)
            .with_system("a")
            .with_process("a", 9);
        assert_eq!(
            e.target(),
            &Target::Process {
                system_id: "a".into(),
                pid: 9
            }
        );
    }

    #[test]
    fn win32_code_follows_win32_from_error() {
        assert_eq!(Error::from(HResult::new(0x8007_0490)).win32_code(), 1168);
        assert_eq!(
            Error::from(HResult::new(0xC037_010E)).win32_code(),
            0xC037_010E
        );
        assert_eq!(Error::new(ErrorKind::Timeout).win32_code(), 31);
    }

    #[test]
    fn is_any_uses_condition_equivalence() {
        let e = Error::from(HResult::HCS_E_SYSTEM_NOT_FOUND);
        assert!(is_any(&e, &[HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND]));
        assert!(!is_any(&e, &[HResult::ERROR_NOT_FOUND]));
        assert!(!is_any(&Error::new(ErrorKind::Timeout), NOT_EXIST));
    }
}
