//! HCS error model (HRESULTs, wrappers, predicates), container/process traits and the Win32
//! HCS backend.
//!
//! * [`hresult`]: HRESULT values, the constant table and hcsshim's normalisation.
//! * [`result_doc`]: the HCS result document and its error records, parsed with bounds.
//! * [`error`]: the shared error type, sentinel errors and predicates.
//! * [`cow`]: the container/process traits every backend implements.
//! * [`System`] and [`Process`]: the computecore backend, written against the small
//!   [`api::HcsApi`] trait. [`sys::default_api`] gives the Win32 implementation on Windows
//!   (and an "HCS is not available" error elsewhere); `fake::FakeHcs` (feature `fake`)
//!   simulates HCS for tests.

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

/// The timeouts of the process environment (`HCSSHIM_TIMEOUT_*`), read once, as hcsshim
/// reads them at start-up.
pub fn env_timeouts() -> Timeouts {
    static TIMEOUTS: std::sync::OnceLock<Timeouts> = std::sync::OnceLock::new();
    *TIMEOUTS.get_or_init(Timeouts::from_env)
}

/// `hcs.CreateComputeSystem` on this host's HCS with the environment's timeouts.
pub async fn create_compute_system(
    id: &str,
    document: &(impl serde::Serialize + ?Sized),
) -> Result<System> {
    System::create(sys::default_api()?, id, document, env_timeouts()).await
}

/// `hcs.OpenComputeSystem` on this host's HCS.
pub async fn open_compute_system(id: &str) -> Result<System> {
    System::open(sys::default_api()?, id, env_timeouts()).await
}

/// `hcs.GetComputeSystems` on this host's HCS.
pub async fn get_compute_systems(
    query: &hcs_schema::v1::ComputeSystemQuery,
) -> Result<Vec<hcs_schema::v1::ContainerProperties>> {
    System::enumerate(sys::default_api()?, query).await
}

#[cfg(all(test, not(windows)))]
mod host_tests {
    #[tokio::test]
    async fn host_entry_points_report_hcs_not_available_off_windows() {
        let err = super::create_compute_system("x", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), super::ErrorKind::NotAvailable(_)));
        let err = super::open_compute_system("x").await.unwrap_err();
        assert!(matches!(err.kind(), super::ErrorKind::NotAvailable(_)));
        let err = super::get_compute_systems(&Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), super::ErrorKind::NotAvailable(_)));
    }
}
