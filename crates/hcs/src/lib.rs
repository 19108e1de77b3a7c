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
//! * [`root`]: the root API of the reference's package `hcsshim` (`CreateContainer`,
//!   `Container`, `Process`, schema1 documents, the root error quirks) over [`System`].
//! * What exists only in the legacy vmcompute.dll, behind the small
//!   [`vmcompute::VmcomputeApi`] trait ([`sys::default_vmcompute`] on Windows,
//!   `fake_vmcompute::FakeVmcompute` for tests): [`v1`] (the v1 engine and its
//!   pending/notification model, the v1 service calls), [`wclayer`] (the graph-driver layer
//!   exports) and [`hns_call`] (the HNS v1 transport).
//!
//! # Example: a process-isolated (Argon) Windows container
//!
//! What a downstream engine does to run `cmd /c echo hello` in a process-isolated container
//! whose layers are already unpacked and whose network namespace (an HCN namespace GUID) was
//! created by the network plugin. On Linux every call fails with
//! [`ErrorKind::NotAvailable`]; the example only compiles there.
//!
//! ```no_run
//! use hcs::error::{is_already_stopped, is_not_exist, is_pending, is_timeout};
//! use hcs_schema::v2::{
//!     ComputeSystem, Container, GuestOs, Layer, MappedDirectory, Networking,
//!     ProcessParameters, Storage,
//! };
//! use hcs_schema::version::SchemaVersion;
//! use tokio::io::AsyncReadExt;
//!
//! # async fn run() -> hcs::Result<()> {
//! let id = "0c9d5e1f-demo";
//! // The schema 2.1 document hcsshim builds for an Argon container (hcs-hcn-api.md §7):
//! // layers topmost first, the scratch path, mapped directories and the network namespace.
//! let document = ComputeSystem::<serde_json::Value> {
//!     owner: "my-engine".into(),
//!     schema_version: Some(SchemaVersion::V2_1),
//!     should_terminate_on_last_handle_closed: true,
//!     container: Some(Container {
//!         guest_os: Some(GuestOs { host_name: "demo".into() }),
//!         storage: Some(Storage {
//!             layers: vec![Layer {
//!                 id: "8c1f7d2a-5b6e-5f0a-9d3c-2e4b6a8c0d1e".into(),
//!                 path: r"C:\ProgramData\engine\layers\nanoserver".into(),
//!                 ..Default::default()
//!             }],
//!             path: r"\\?\Volume{3a4b5c6d-0000-0000-0000-100000000000}\".into(),
//!             ..Default::default()
//!         }),
//!         mapped_directories: vec![MappedDirectory {
//!             host_path: r"C:\data".into(),
//!             container_path: r"C:\data".into(),
//!             read_only: true,
//!             ..Default::default()
//!         }],
//!         networking: Some(Networking {
//!             namespace: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
//!             ..Default::default()
//!         }),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//!
//! let system = hcs::create_compute_system(id, &document).await?;
//! system.start().await?;
//!
//! let process = system
//!     .create_process(&ProcessParameters {
//!         command_line: "cmd /c echo hello".into(),
//!         working_directory: r"C:\".into(),
//!         create_std_out_pipe: true,
//!         create_std_err_pipe: true,
//!         ..Default::default()
//!     })
//!     .await?;
//! let mut stdio = process.take_stdio();
//! let mut output = String::new();
//! if let Some(stdout) = stdio.stdout.as_mut() {
//!     stdout.read_to_string(&mut output).await?;
//! }
//! process.wait().await?;
//! let code = process.exit_code()?; // -1 when HCS could not tell
//! println!("{output:?} exited with {code}");
//! process.close().await?;
//!
//! // Shutdown does not wait; the exit arrives as an event. Already stopped or gone is fine.
//! match system.shutdown().await {
//!     Ok(()) => {}
//!     Err(e) if is_already_stopped(&e) || is_not_exist(&e) || is_pending(&e) => {}
//!     Err(e) => return Err(e),
//! }
//! let waited = tokio::time::timeout(std::time::Duration::from_secs(30), system.wait()).await;
//! if waited.is_err() {
//!     // Graceful shutdown took too long: terminate (same "already stopped" rules).
//!     if let Err(e) = system.terminate().await {
//!         if !(is_already_stopped(&e) || is_not_exist(&e) || is_timeout(&e)) {
//!             return Err(e);
//!         }
//!     }
//!     let _ = system.wait().await;
//! }
//! if let Some(why) = system.exit_error() {
//!     eprintln!("container exited unexpectedly: {why}");
//! }
//! system.close().await?; // releases the handle; never stops the container
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod cow;
pub mod error;
mod exit;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
#[cfg(any(test, feature = "fake"))]
mod fake_calls;
#[cfg(any(test, feature = "fake"))]
pub mod fake_vmcompute;
pub mod hns_call;
pub mod hresult;
pub mod notification;
pub mod operation;
pub mod process;
pub mod result_doc;
pub mod root;
pub mod system;
pub mod timeout;
pub mod v1;
pub mod vmcompute;
pub mod wclayer;

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
