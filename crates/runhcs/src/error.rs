//! Errors of the runhcs command line and its shim.

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// A runhcs failure; the message is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input (bundle, id, flags).
    #[error("{0}")]
    Invalid(String),
    /// The container does not exist.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The container exists already.
    #[error("container {0} already exists")]
    AlreadyExists(String),
    /// The operation does not apply to the container's state.
    #[error("{0}")]
    State(String),
    /// The command exists in the reference but not here.
    #[error("{0} is not supported by this runhcs")]
    Unsupported(&'static str),
    /// The shim reported a failure.
    #[error("{0}")]
    Shim(String),
    /// The shim could not be reached, or went away without replying.
    #[error("{0}")]
    ShimGone(String),
    /// A failure of the sandbox, bridge or guest.
    #[error(transparent)]
    Uvm(#[from] uvm::Error),
    /// An I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
