//! Platforms without the Host Compute Service: every entry point reports that HCS is not
//! available (never a pretend success).

use std::sync::Arc;

use crate::api::HcsApi;
use crate::error::{Error, ErrorKind, Result};

/// The HCS implementation of this platform: none outside Windows.
pub fn default_api() -> Result<Arc<dyn HcsApi>> {
    Err(Error::new(ErrorKind::NotAvailable(
        "the Host Compute Service exists only on Windows".into(),
    )))
}

/// The legacy vmcompute.dll binding of this platform: none outside Windows.
pub fn default_vmcompute() -> Result<Arc<dyn crate::vmcompute::VmcomputeApi>> {
    Err(Error::new(ErrorKind::NotAvailable(
        "vmcompute.dll exists only on Windows".into(),
    )))
}

/// `SetCurrentThreadCompartmentId` (iphlpapi.dll): Windows only.
pub fn set_current_thread_compartment_id(_compartment_id: u32) -> Result<i32> {
    Err(Error::new(ErrorKind::NotAvailable(
        "network compartments exist only on Windows".into(),
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_not_available() {
        let err = super::default_api().unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::NotAvailable(_)));
        assert!(err.to_string().starts_with("HCS is not available"));
        let err = super::set_current_thread_compartment_id(1).unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::NotAvailable(_)));
        let err = super::default_vmcompute().unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::NotAvailable(_)));
    }
}
