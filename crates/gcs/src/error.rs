//! The GCS error type and its single conversion to a bridge HRESULT.
//!
//! Every failure a handler can report is an [`Error`]; [`Error::hresult`] is the one place that
//! decides which HRESULT goes on the wire (the first HRESULT down the cause chain, else
//! `E_FAIL`), and `Display` gives the `ErrorMessage` text in the reference's two forms:
//! `HRESULT: 0x…` for a bare HRESULT and `HRESULT 0x…: cause` for a wrapped one.

use std::io;
use std::path::PathBuf;

/// HRESULT values the Linux GCS puts on the wire (spec §3, `gcserr`).
pub mod hr {
    /// Not implemented: unknown or unsupported message.
    pub const NOT_IMPL: u32 = 0x8000_4001;
    /// Unspecified failure; the default.
    pub const FAIL: u32 = 0x8000_4005;
    /// Unknown pid, or the process is already gone.
    pub const NOT_FOUND: u32 = 0x8007_0490;
    /// Invalid argument.
    pub const INVALID_ARG: u32 = 0x8007_0057;
    /// WaitForProcess timed out.
    pub const VMCOMPUTE_TIMEOUT: u32 = 0xC037_0109;
    /// A JSON document could not be decoded, or the schema version is below 2.1.
    pub const INVALID_JSON: u32 = 0xC037_010D;
    /// Unknown container.
    pub const SYSTEM_NOT_FOUND: u32 = 0xC037_010E;
    /// Duplicate container id.
    pub const SYSTEM_ALREADY_EXISTS: u32 = 0xC037_010F;
    /// Unsupported protocol version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: u32 = 0xC037_010C;
    /// Unknown message.
    pub const UNKNOWN_MESSAGE: u32 = 0xC037_010B;
    /// The container is still being created.
    pub const INVALID_STATE: u32 = 0x8037_0105;
    /// The container has already stopped.
    pub const SYSTEM_ALREADY_STOPPED: u32 = 0xC037_0110;
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bare HRESULT (`gcserr.NewHresultError`).
    #[error("HRESULT: {0:#x}")]
    Hresult(u32),
    /// Context in front of a bare HRESULT (Go's `fmt.Errorf("context: %w",
    /// gcserr.NewHresultError(hr))`): `context: HRESULT: 0x…`.
    #[error("{context}: HRESULT: {hresult:#x}")]
    Context {
        /// The text in front.
        context: String,
        /// The HRESULT reported on the wire.
        hresult: u32,
    },
    /// A cause wrapped with an HRESULT (`gcserr.WrapHresult`).
    #[error("HRESULT {hresult:#x}: {message}")]
    Wrapped {
        /// The HRESULT reported on the wire.
        hresult: u32,
        /// The cause's text.
        message: String,
    },
    /// An I/O operation on a path failed.
    #[error("{op} {path}: {source}", path = .path.display())]
    Path {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another I/O operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// The OCI runtime failed.
    #[error(transparent)]
    Runc(#[from] crate::runc::RuncError),
    /// A request was valid JSON but asked for something unsupported or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HRESULT that represents this error on the wire.
    pub fn hresult(&self) -> u32 {
        match self {
            Error::Hresult(hr)
            | Error::Wrapped { hresult: hr, .. }
            | Error::Context { hresult: hr, .. } => *hr,
            Error::Runc(e) => e.hresult(),
            Error::Path { .. } | Error::Io { .. } | Error::Invalid(_) => hr::FAIL,
        }
    }

    /// Wraps `cause` with an HRESULT, as `gcserr.WrapHresult` does.
    pub fn wrap(hresult: u32, cause: impl std::fmt::Display) -> Self {
        Error::Wrapped {
            hresult,
            message: cause.to_string(),
        }
    }

    /// An I/O error on `path`.
    pub fn path(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path {
            op,
            path: path.into(),
            source,
        }
    }

    /// An I/O error without a path.
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }
}

/// Adds path context to `io::Result`s.
pub trait PathContext<T> {
    /// Turns the error into [`Error::Path`].
    fn with_path(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> PathContext<T> for io::Result<T> {
    fn with_path(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::path(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_wrapped_forms_match_the_reference() {
        assert_eq!(
            Error::Hresult(hr::SYSTEM_NOT_FOUND).to_string(),
            "HRESULT: 0xc037010e"
        );
        let e = Error::wrap(
            hr::NOT_IMPL,
            "bridge: function not supported, header type: 5",
        );
        assert_eq!(
            e.to_string(),
            "HRESULT 0x80004001: bridge: function not supported, header type: 5"
        );
        assert_eq!(e.hresult(), hr::NOT_IMPL);
    }

    #[test]
    fn other_errors_default_to_fail() {
        let e = Error::path("mkdir", "/x", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.hresult(), hr::FAIL);
        assert!(e.to_string().starts_with("mkdir /x: "));
    }
}
