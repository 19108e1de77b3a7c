//! The root API of the reference's package `hcsshim` (hcs-hcn-api.md §1.2, §4): everything
//! of [`hcs::root`] (containers, processes, layers, the root error quirks) plus the HNS v1
//! network API (`HNSNetwork`, `HNSEndpoint`, the policy types, `GetHNSNetworkByName`,
//! `HotAttachEndpoint`, …) under the Go package's names.
//!
//! Why a crate of its own: `hcn` depends on `hcs` (HRESULTs, the HNSCall transport), so the
//! root facade, which needs both, cannot live in `hcs` without a dependency cycle. This
//! crate sits on top of both and adds only what the root package adds: the Go names, the
//! `EndpointNotFoundError` / `NetworkNotFoundError` types, an [`is_not_exist`] that matches
//! them as well as the compute-system conditions, and `HotAttachEndpoint` /
//! `HotDetachEndpoint`, which join the two halves (an HNS lookup, then a container modify).
//!
//! The HNS functions talk to this host's HNS ([`hcn::v1::Hns::system`]: `vmcompute.dll`
//! on Windows, hnsd elsewhere) and block like the DLL call they make.

mod hns;

pub use hcs::root::*;
pub use hns::*;

/// An error of the facade: a root (compute system) error or an HNS one, with the v1
/// not-found errors as their own types.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A compute-system error of the root API.
    #[error(transparent)]
    Root(#[from] RootError),
    /// `hns.EndpointNotFoundError`.
    #[error(transparent)]
    EndpointNotFound(#[from] EndpointNotFoundError),
    /// `hns.NetworkNotFoundError`.
    #[error(transparent)]
    NetworkNotFound(#[from] NetworkNotFoundError),
    /// Any other HNS error.
    #[error(transparent)]
    Hns(hcn::Error),
}

impl From<hcn::Error> for Error {
    fn from(e: hcn::Error) -> Self {
        match e {
            hcn::Error::HnsEndpointNotFound { endpoint_name } => {
                Error::EndpointNotFound(EndpointNotFoundError { endpoint_name })
            }
            hcn::Error::HnsNetworkNotFound { network_name } => {
                Error::NetworkNotFound(NetworkNotFoundError { network_name })
            }
            e => Error::Hns(e),
        }
    }
}

impl From<hcs::Error> for Error {
    fn from(e: hcs::Error) -> Self {
        Error::Root(RootError::Hcs(e))
    }
}

/// The result type of the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors [`is_not_exist`] can judge.
pub trait NotExist {
    /// The root package's `IsNotExist`.
    fn is_not_exist(&self) -> bool;
}

impl NotExist for RootError {
    fn is_not_exist(&self) -> bool {
        hcs::root::is_not_exist(self)
    }
}

impl NotExist for hcn::Error {
    fn is_not_exist(&self) -> bool {
        hcn::error::is_not_exist(self)
    }
}

impl NotExist for Error {
    fn is_not_exist(&self) -> bool {
        match self {
            Error::Root(e) => e.is_not_exist(),
            Error::EndpointNotFound(_) | Error::NetworkNotFound(_) => true,
            Error::Hns(e) => e.is_not_exist(),
        }
    }
}

/// `IsNotExist`: the compute system or element does not exist (one container/process
/// level unwrapped), or an HNS `EndpointNotFoundError` / `NetworkNotFoundError`.
pub fn is_not_exist(err: &impl NotExist) -> bool {
    err.is_not_exist()
}
