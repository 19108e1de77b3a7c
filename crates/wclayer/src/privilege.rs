//! The process privileges layer work needs on Windows (go-winio's
//! `EnableProcessPrivileges`): reading any file through the backup APIs takes
//! `SeBackupPrivilege`, writing takes `SeRestorePrivilege`, and system access-control lists
//! `SeSecurityPrivilege`.

use crate::error::Result;

/// `SeBackupPrivilege`.
pub const SE_BACKUP_NAME: &str = "SeBackupPrivilege";
/// `SeRestorePrivilege`.
pub const SE_RESTORE_NAME: &str = "SeRestorePrivilege";
/// `SeSecurityPrivilege`.
pub const SE_SECURITY_NAME: &str = "SeSecurityPrivilege";

/// Enables `names` for the rest of the process's life. Windows only: elsewhere there are no
/// privileges to enable and this fails with [`crate::Error::Unsupported`].
pub fn enable_process_privileges(names: &[&str]) -> Result<()> {
    crate::sys::enable_process_privileges(names)
}

#[cfg(all(test, not(windows)))]
mod tests {
    #[test]
    fn privileges_are_windows_only() {
        let err = super::enable_process_privileges(&[super::SE_BACKUP_NAME]).unwrap_err();
        assert!(matches!(err, crate::Error::Unsupported(_)));
    }
}
