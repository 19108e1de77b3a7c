//! Platforms without Win32: the calls that need Windows report so (never a pretend success).

use crate::error::{Error, Result};

/// Converts SDDL to a self-relative security descriptor: Windows only.
pub fn sddl_to_security_descriptor(_sddl: &str) -> Result<Vec<u8>> {
    Err(Error::Unsupported(
        "converting an SDDL security descriptor (MSWINDOWS.sd) needs Windows; tars with \
         MSWINDOWS.rawsd work everywhere"
            .into(),
    ))
}

/// The streaming layer exports: vmcompute.dll only.
pub fn streaming_exports() -> Option<std::sync::Arc<dyn crate::layer::filter::StreamingExports>> {
    None
}

/// Process privileges: Windows only.
pub fn enable_process_privileges(names: &[&str]) -> Result<()> {
    Err(Error::Unsupported(format!(
        "privileges {names:?} exist only on Windows"
    )))
}

/// Creates an empty registry hive: offreg.dll only.
pub fn create_empty_hive(path: &std::path::Path) -> Result<()> {
    Err(Error::Unsupported(format!(
        "creating the registry hive {} needs offreg.dll (Windows)",
        path.display()
    )))
}

/// Grows the NTFS volume of a scratch VHD: virtdisk and volume ioctls, Windows only.
pub fn grow_scratch_volume(vhdx: &std::path::Path, _volume: &str) -> Result<()> {
    Err(Error::Unsupported(format!(
        "growing the volume of {} needs Windows (virtdisk.dll)",
        vhdx.display()
    )))
}
