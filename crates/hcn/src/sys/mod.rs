//! The platform's default backend: computenetwork.dll on Windows, hnsd on Unix.

use std::sync::Arc;

use crate::api::HcnApi;
use crate::error::Result;

#[cfg(windows)]
pub mod windows;

/// This host's HCN: [`windows::ComputeNetwork`] on Windows.
#[cfg(windows)]
pub fn default_api() -> Result<Arc<dyn HcnApi>> {
    windows::ComputeNetwork::shared().map(|c| c as Arc<dyn HcnApi>)
}

/// This host's HCN: hnsd, at the socket `HNSD_SOCKET` names
/// ([`crate::hnsd_client::socket_path`]).
#[cfg(unix)]
pub fn default_api() -> Result<Arc<dyn HcnApi>> {
    Ok(Arc::new(crate::hnsd_client::HnsdClient::from_env()))
}

/// Neither Windows nor Unix: no HCN.
#[cfg(not(any(windows, unix)))]
pub fn default_api() -> Result<Arc<dyn HcnApi>> {
    Err(crate::error::Error::NotAvailable(
        "HCN needs Windows or hnsd".into(),
    ))
}
