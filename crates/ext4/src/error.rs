//! Error type of the crate: one enum, each variant naming what was wrong.

use std::io;

/// Errors from building an ext4 image, reading a tar, or appending dm-verity/VHD data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on the input or output, with what was being done.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed (bad checksum, bad number, bad PAX record, ...).
    #[error("invalid tar header: {0}")]
    TarHeader(String),
    /// The tar stream ended in the middle of a header or of an entry's data.
    #[error("tar stream truncated: {0}")]
    TarTruncated(String),
    /// A path component is empty after cleaning or longer than 255 bytes.
    #[error("{0}: invalid name")]
    InvalidName(String),
    /// A parent directory of the path does not exist or is not a directory.
    #[error("{0}: path not found")]
    PathNotFound(String),
    /// The target of a hard link does not exist.
    #[error("{0}: file not found")]
    FileNotFound(String),
    /// A tar entry would replace a directory with a non-directory.
    #[error("{0}: cannot replace a directory with a file")]
    ReplaceDirWithFile(String),
    /// A tar entry would replace a non-directory with a directory.
    #[error("{0}: cannot replace a file with a directory")]
    ReplaceFileWithDir(String),
    /// A second entry for a file whose data blocks are already written.
    #[error("{0}: cannot overwrite file with non-inline data")]
    OverwriteData(String),
    /// A hard link would replace the only link of a file, or a directory.
    #[error("{0}: cannot orphan existing file or directory")]
    Orphan(String),
    /// A hard link to a directory.
    #[error("{0}: link target cannot be a directory: {1}")]
    LinkToDirectory(String, String),
    /// A file or directory reached the 65000 link limit.
    #[error("{0}: exceeded maximum link count")]
    TooManyLinks(String),
    /// A regular file is larger than the 128 GiB limit.
    #[error("{name}: file too big: {size} > {max}")]
    FileTooBig {
        /// The path.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The image would be larger than the maximum disk size.
    #[error("disk exceeded maximum size of {0} bytes")]
    DiskTooLarge(u64),
    /// The xattrs of a file do not fit in the inode plus one block.
    #[error("{0}: could not fit xattr {1}")]
    XattrTooBig(String, String),
    /// An xattr name that ext4 cannot store (empty, or a suffix longer than 255 bytes).
    #[error("{0}: invalid xattr name {1}")]
    InvalidXattrName(String, String),
    /// The number of bytes written for a file differs from its declared size.
    #[error("{0}: wrong amount of data: wrote {1}, expected {2}")]
    WrongDataSize(String, u64, u64),
    /// A symlink target of a slow symlink cannot be read back (reference limitation).
    #[error("{0}: cannot retrieve link information")]
    LinkInfo(String),
    /// An invalid option combination or value.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The input is not an ext4 image (bad superblock magic).
    #[error("not an ext4 file system")]
    NotExt4,
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds context to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Converts the error into [`Error::Io`] with `context`.
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| Error::Io { context, source })
    }
}

/// Recovers a crate error carried inside an `io::Error` by a reader (see
/// [`crate::tarstream::TarReader`]); other read errors mean the entry data ended early or
/// could not be read.
pub(crate) fn from_read_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::TarTruncated("reading entry data".into());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::TarTruncated("entry data ends early".into()),
        _ => Error::Io {
            context: "reading entry data",
            source: e,
        },
    }
}

/// Renders an error with its chain of causes, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Renders a byte path for error messages.
pub(crate) fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}
