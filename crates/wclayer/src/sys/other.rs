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
