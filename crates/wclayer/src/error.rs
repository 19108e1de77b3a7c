//! The crate's error type: one enum, each variant naming what was wrong and where.

use std::io;
use std::path::Path;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a layer, a tar or a backup stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation on a layer folder failed.
    #[error("{op} {path}: {err}")]
    Io {
        /// The operation (`create`, `open`, `hard link`...).
        op: &'static str,
        /// The path it worked on.
        path: String,
        /// What the OS said.
        err: io::Error,
    },
    /// Reading the input (a tar stream, a layer's backup stream) failed.
    #[error("reading {what}: {err}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// What the reader said.
        err: io::Error,
    },
    /// Writing the output (a tar stream, a backup stream) failed.
    #[error("writing {what}: {err}")]
    Write {
        /// What was being written.
        what: &'static str,
        /// What the writer said.
        err: io::Error,
    },
    /// A Win32 backup stream is malformed or does not fit its bounds.
    #[error("invalid backup stream: {0}")]
    BackupStream(String),
    /// A `FILE_FULL_EA_INFORMATION` buffer is malformed.
    #[error("invalid extended attribute buffer: {0}")]
    ExtendedAttributes(String),
    /// A `REPARSE_DATA_BUFFER` is malformed or of a kind layers cannot carry.
    #[error("invalid reparse point: {0}")]
    ReparsePoint(String),
    /// A tar entry is malformed or cannot be part of a Windows layer.
    #[error("tar entry {entry:?}: {reason}")]
    Tar {
        /// The entry's name (or a position when the name is not known yet).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tar stream itself is malformed (bad header, truncated, no end marker).
    #[error("invalid tar stream: {0}")]
    TarStream(String),
    /// A path inside a layer is not acceptable (absolute, `..`, bad characters...).
    #[error("invalid layer path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The layer's content breaks a rule of the layer layout (a hard link out of the layer,
    /// a tombstone outside `Files`, a utility VM without parent...).
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    /// A GUID string or byte form is malformed.
    #[error("invalid GUID {0:?}")]
    InvalidGuid(String),
    /// The writer or reader was used in a state that does not allow the call.
    #[error("{0}")]
    State(&'static str),
    /// A writer was closed after one of its calls had failed (the first failure).
    #[error("the layer writer failed earlier: {0}")]
    WriterFailed(String),
    /// The operation does not exist on this platform or with this store.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A vmcompute.dll call failed (HRESULT kept).
    #[error(transparent)]
    Hcs(#[from] hcs::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>, err: io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().display().to_string(),
            err,
        }
    }

    /// A malformed tar entry.
    pub fn tar(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Tar {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    /// Whether this is an I/O error of kind `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { err, .. } if err.kind() == io::ErrorKind::NotFound)
    }

    /// Wraps the error for an `io::Read`/`io::Write` implementation; [`Error::from_io`] gets
    /// it back.
    pub fn into_io(self) -> io::Error {
        match self {
            // Keep the kind visible to generic I/O code (`UnexpectedEof`, `NotFound`...).
            Error::Read { err, .. } | Error::Write { err, .. } => err,
            other => io::Error::other(other),
        }
    }

    /// Recovers an [`Error`] carried through an `io::Error` (see [`Error::into_io`]), or
    /// wraps a plain I/O error as a failure of `what`.
    pub fn from_io(what: &'static str, err: io::Error) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<Error>()) {
            let inner = err.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        Error::Read { what, err }
    }

    /// Like [`Error::from_io`] for a failed write: a plain I/O error becomes
    /// [`Error::Write`].
    pub fn from_io_write(what: &'static str, err: io::Error) -> Self {
        match Error::from_io(what, err) {
            Error::Read { what, err } => Error::Write { what, err },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_travel_through_io_and_back() {
        let e = Error::InvalidLayer("x".into());
        let back = Error::from_io("tar", e.into_io());
        assert!(matches!(back, Error::InvalidLayer(s) if s == "x"));
        let plain = Error::from_io("tar", io::Error::new(io::ErrorKind::UnexpectedEof, "eof"));
        assert!(matches!(plain, Error::Read { what: "tar", .. }));
    }

    #[test]
    fn io_errors_name_the_path() {
        let e = Error::io(
            "create",
            "/l/Files/a",
            io::Error::from(io::ErrorKind::NotFound),
        );
        assert!(e.is_not_found());
        assert!(e.to_string().starts_with("create /l/Files/a: "));
    }
}
