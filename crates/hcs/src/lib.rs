//! HCS error model (HRESULTs, wrappers, predicates), container/process traits and the Win32
//! HCS backend.
//!
//! * [`hresult`]: HRESULT values, the constant table and hcsshim's normalisation.
//! * [`result_doc`]: the HCS result document and its error records, parsed with bounds.
//! * [`error`]: the shared error type, sentinel errors and predicates.
//! * [`cow`]: the container/process traits every backend implements.
//! * [`System`] and [`Process`]: the computecore backend, written against the small
//!   [`api::HcsApi`] trait. [`sys::default_api`] gives the Win32 implementation on Windows
//!   (and an "HCS is not available" error elsewhere); [`fake::FakeHcs`] simulates HCS for
//!   tests.

pub mod api;
pub mod cow;
pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod hresult;
pub mod notification;
pub mod operation;
pub mod process;
pub mod result_doc;
pub mod system;
pub mod timeout;

#[cfg_attr(windows, path = "sys/windows.rs")]
#[cfg_attr(not(windows), path = "sys/other.rs")]
pub mod sys;

pub use process::Process;
pub use system::System;
pub use timeout::Timeouts;

pub use cow::{Container, Os, ProcessHost, SignalOptions, Stdio};
pub use error::{Error, ErrorKind, Result, Target};
pub use hresult::HResult;
pub use result_doc::{ErrorEvent, ResultDocument};

/// hcsshim's `WaitErrExecFailed`: the exit code reported when a process could not be
/// started.
pub const WAIT_ERR_EXEC_FAILED: i32 = 32767;

/// hcsshim's `TimeoutInfinite`: an infinite timeout in milliseconds.
pub const TIMEOUT_INFINITE: u32 = 0xFFFF_FFFF;
