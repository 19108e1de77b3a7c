//! The shim's error type and its one conversion to ttrpc status codes.
//!
//! containerd and its CRI branch on the gRPC code of a task RPC's error (NotFound,
//! AlreadyExists, FailedPrecondition, ...), so each variant names the code the reference
//! returns (`errdefs.ToGRPC`); everything else is `Unknown`.

use containerd_shim_protos::ttrpc::{self, Code};

/// A shim error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The task or exec does not exist (`NotFound`).
    #[error("{0}")]
    NotFound(String),
    /// The task or exec exists already (`AlreadyExists`).
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is not in a state that allows the call (`FailedPrecondition`).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The request is malformed (`InvalidArgument`).
    #[error("{0}")]
    InvalidArgument(String),
    /// The call is not implemented by this shim or backend (`Unimplemented`).
    #[error("{0}")]
    Unimplemented(String),
    /// A call into HCS or the GCS failed.
    #[error("{op}: {source}")]
    Hcs {
        /// What the shim was doing.
        op: String,
        /// The backend's error (HRESULT kept).
        #[source]
        source: hcs::Error,
    },
    /// Starting or using a sandbox failed.
    #[error("{op}: {source}")]
    Sandbox {
        /// What the shim was doing.
        op: String,
        /// The sandbox error.
        #[source]
        source: uvm::Error,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was done, naming the path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding or decoding a protobuf message failed.
    #[error("{context}: {source}")]
    Protobuf {
        /// Which message.
        context: String,
        /// The decoder's error.
        #[source]
        source: protobuf::Error,
    },
    /// A ttrpc call (event publishing, connecting to another shim) failed.
    #[error("{context}: {source}")]
    Ttrpc {
        /// Which call.
        context: String,
        /// The ttrpc error.
        #[source]
        source: ttrpc::Error,
    },
    /// Anything else (the gRPC code is `Unknown`).
    #[error("{0}")]
    Other(String),
}

/// The shim's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An HCS/GCS error with what the shim was doing.
    pub fn hcs(op: impl Into<String>, source: hcs::Error) -> Self {
        Error::Hcs {
            op: op.into(),
            source,
        }
    }

    /// A sandbox error with what the shim was doing.
    pub fn sandbox(op: impl Into<String>, source: uvm::Error) -> Self {
        Error::Sandbox {
            op: op.into(),
            source,
        }
    }

    /// The gRPC code containerd sees for this error.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Hcs { source, .. } if hcs::error::is_not_exist(source) => Code::NOT_FOUND,
            Error::Sandbox { source, .. } => match source {
                uvm::Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
                uvm::Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
                uvm::Error::Unsupported(_) => Code::UNIMPLEMENTED,
                _ => Code::UNKNOWN,
            },
            _ => Code::UNKNOWN,
        }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: Error) -> Code {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn each_kind_maps_to_its_grpc_code() {
        assert_eq!(code_of(Error::NotFound("x".into())), Code::NOT_FOUND);
        assert_eq!(
            code_of(Error::AlreadyExists("x".into())),
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            code_of(Error::FailedPrecondition("x".into())),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(Error::InvalidArgument("x".into())),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code_of(Error::Unimplemented("x".into())),
            Code::UNIMPLEMENTED
        );
        assert_eq!(code_of(Error::Other("x".into())), Code::UNKNOWN);
        let gone = hcs::Error::new(hcs::ErrorKind::HResult(hcs::HResult::from_i32(
            0xC037_010E_u32 as i32,
        )));
        assert_eq!(code_of(Error::hcs("Properties", gone)), Code::NOT_FOUND);
    }

    #[test]
    fn the_message_is_kept() {
        match ttrpc::Error::from(Error::NotFound("task with id: 'a' not found".into())) {
            ttrpc::Error::RpcStatus(s) => assert_eq!(s.message(), "task with id: 'a' not found"),
            other => panic!("{other:?}"),
        }
    }
}
