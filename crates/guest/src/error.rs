//! Errors of the guest programs and the boot-files builder.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A failure of init, vsockexec or the boot-files builder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line.
    #[error("usage: {0}")]
    Usage(String),
    /// A system call or file operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done (names the path where there is one).
        op: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An input of the boot-files builder is unusable.
    #[error("{0}")]
    Input(String),
    /// Writing the ext4 image failed.
    #[error("ext4 image {path}: {source}")]
    Ext4 {
        /// The image.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: ext4::Error,
    },
}

impl Error {
    /// An I/O error for operation `op`.
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// An I/O error for operation `op` on `path`.
    pub fn path(op: &str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op: format!("{op} {}", path.display()),
            source,
        }
    }

    /// The last OS error for operation `op`.
    pub fn last_os(op: impl Into<String>) -> Self {
        Self::io(op, io::Error::last_os_error())
    }
}

/// Adds a path to an I/O result's error.
pub trait PathContext<T> {
    /// Names `op` and `path` in the error.
    fn with_path(self, op: &str, path: &Path) -> Result<T>;
}

impl<T> PathContext<T> for io::Result<T> {
    fn with_path(self, op: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::path(op, path, e))
    }
}
