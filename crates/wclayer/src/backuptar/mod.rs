//! Layer tar entries ↔ Win32 backup streams, as go-winio's `backuptar` converts them (the
//! reference's `ociwclayer` is built on it).
//!
//! A Windows layer tar is an OCI layer tar in PAX format whose entries carry the Win32
//! metadata in vendor records:
//!
//! | PAX record | meaning |
//! |---|---|
//! | `MSWINDOWS.fileattr` | file attributes, decimal |
//! | `MSWINDOWS.rawsd` | security descriptor, base64 of the self-relative form |
//! | `MSWINDOWS.sd` | security descriptor as SDDL (older tars; converting needs Windows) |
//! | `MSWINDOWS.mountpoint` | a symlink entry that is really a junction |
//! | `MSWINDOWS.xattr.<name>` | an extended attribute, base64 |
//! | `LIBARCHIVE.creationtime` | creation time, PAX time form |
//!
//! plus the standard `mtime`/`atime`/`ctime` records. Alternate data streams follow their
//! file as regular entries named `file:stream`. [`reader`] reads tars, [`writer`] writes
//! them, [`to_backup`] turns an entry into a backup stream (import) and [`from_backup`] turns a
//! backup stream into entries (export).

pub mod from_backup;
pub mod reader;
pub mod to_backup;
pub mod writer;

pub use from_backup::{write_tar_file_from_backup_stream, RewindRead, SeekRewind};
pub use reader::{TarArchive, TarEntries, TarHeader};
pub use to_backup::{file_info_from_header, write_backup_stream_from_tar_file};
pub use writer::{TarOut, TarOutHeader};

/// `MSWINDOWS.fileattr`.
pub const HDR_FILE_ATTRIBUTES: &str = "MSWINDOWS.fileattr";
/// `MSWINDOWS.sd` (SDDL).
pub const HDR_SECURITY_DESCRIPTOR: &str = "MSWINDOWS.sd";
/// `MSWINDOWS.rawsd` (base64).
pub const HDR_RAW_SECURITY_DESCRIPTOR: &str = "MSWINDOWS.rawsd";
/// `MSWINDOWS.mountpoint`.
pub const HDR_MOUNT_POINT: &str = "MSWINDOWS.mountpoint";
/// Prefix of `MSWINDOWS.xattr.<name>`.
pub const HDR_EA_PREFIX: &str = "MSWINDOWS.xattr.";
/// `LIBARCHIVE.creationtime`.
pub const HDR_CREATION_TIME: &str = "LIBARCHIVE.creationtime";

/// Unix mode type bits as go-winio writes them (no permission bits).
pub mod mode {
    /// Directory.
    pub const DIR: u32 = 0o040000;
    /// Regular file.
    pub const REG: u32 = 0o100000;
    /// Symbolic link.
    pub const LNK: u32 = 0o120000;
}

#[cfg(test)]
mod tests;
