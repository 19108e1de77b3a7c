//! HCS error model (HRESULTs, wrappers, predicates), container/process traits and the Win32
//! HCS backend.
//!
//! * [`hresult`]: HRESULT values, the constant table and hcsshim's normalisation.
//! * [`result_doc`]: the HCS result document and its error records, parsed with bounds.
//! * [`error`]: the shared error type, sentinel errors and predicates.
//! * [`cow`]: the container/process traits every backend implements.

pub mod cow;
pub mod error;
pub mod hresult;
pub mod result_doc;

pub use cow::{Container, Os, Process, ProcessHost, SignalOptions, Stdio};
pub use error::{Error, ErrorKind, Result, Target};
pub use hresult::HResult;
pub use result_doc::{ErrorEvent, ResultDocument};

/// hcsshim's `WaitErrExecFailed`: the exit code reported when a process could not be
/// started.
pub const WAIT_ERR_EXEC_FAILED: i32 = 32767;

/// hcsshim's `TimeoutInfinite`: an infinite timeout in milliseconds.
pub const TIMEOUT_INFINITE: u32 = 0xFFFF_FFFF;
