//! Errors of the host side of the bridge.

use std::io;
use std::time::Duration;

use bridge::hresult::Hresult;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A failure of the bridge client, a handle or a sandbox.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The guest answered with a failure `Result`.
    #[error("{op} failed in the guest ({hresult}): {message}")]
    Rpc {
        /// The request type name.
        op: &'static str,
        /// The guest's HRESULT.
        hresult: Hresult,
        /// The guest's `ErrorMessage` (or the HRESULT text when empty).
        message: String,
    },
    /// The bridge is down; every pending and later call fails with this.
    #[error("the bridge to the guest is closed: {0}")]
    BridgeClosed(String),
    /// No response (or event) within the allotted time.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// What was awaited.
        op: String,
        /// How long.
        after: Duration,
    },
    /// The guest sent something that does not follow the protocol.
    #[error("protocol violation by the guest: {0}")]
    Protocol(String),
    /// A message could not be encoded.
    #[error("failed to encode a bridge message: {0}")]
    Encode(String),
    /// An I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::sync::Arc<io::Error>,
    },
    /// Invalid input from the caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A container id is already registered with this bridge.
    #[error("container {0} already exists on this bridge")]
    AlreadyExists(String),
    /// The sandbox (agent process) failed.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The utility VM ran but its first vsock connection never reached the host within
    /// `after` (under emulation; the VM sandbox boots once more on this).
    #[error("sandbox: no vsock connection from the guest within {after:?}: {details}")]
    NoGuestVsock {
        /// How long the host waited.
        after: Duration,
        /// The boot's diagnostics (QEMU, init, console and GCS log tails).
        details: String,
    },
    /// The sandbox cannot do what was asked (e.g. resize a utility VM that has no means to).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The handle was closed.
    #[error("{0} is closed")]
    Closed(String),
    /// A Host Compute Service call failed (the HCS sandbox).
    #[error("HCS: {0}")]
    Hcs(#[from] hcs::Error),
}

impl Error {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: std::sync::Arc::new(source),
        }
    }

    /// The guest's HRESULT, for RPC failures.
    pub fn hresult(&self) -> Option<Hresult> {
        match self {
            Error::Rpc { hresult, .. } => Some(*hresult),
            _ => None,
        }
    }
}
