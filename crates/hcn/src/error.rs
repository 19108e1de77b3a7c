//! Errors of HCN and HNS calls (hcs-hcn-api.md §2.2–§2.4, §5.9).
//!
//! * [`HcnError`]: a failed call. It keeps the operation (`hcnCreateNetwork`, `hnsCall`), the
//!   HRESULT exactly as the backend returned it, the error record and, as `ErrorCode`, the
//!   normalised Win32 code the reference's predicates test (`Win32FromError`: a
//!   FACILITY_WIN32 HRESULT becomes its bare code; an error record with a success HRESULT
//!   counts as `ERROR_GEN_FAILURE`, 31).
//! * The typed not-found errors of the `hcn` package and of HNS v1 (`hns`).
//! * The predicates: `CheckErrorWithCode`, `IsElementNotFoundError`,
//!   `IsPortAlreadyExistsError`, `IsNotImplemented`, `IsNotFoundError`.
//!
//! One deliberate difference from the reference: [`is_not_found_error`] also accepts the
//! `HCN_E_NETWORK_NOT_FOUND` and `HCN_E_ENDPOINT_NOT_FOUND` HRESULTs, which HNS returns for
//! a missing network or endpoint and which the reference's check (element-not-found only)
//! misses.

use std::fmt;

use hcs::HResult;

use crate::hresult;
use crate::schema::echo;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed HCN or HNS call: the reference's `HcnError` (an `hcserror.HcsError` plus its
/// `ErrorCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcnError {
    op: String,
    hresult: HResult,
    code: HResult,
    record: String,
}

impl HcnError {
    /// The error of call `op` that returned `hr` and error record `record`
    /// (`checkForErrors`). `hr >= 0` with a record gives code `ERROR_GEN_FAILURE`.
    pub fn new(op: impl Into<String>, hr: i32, record: impl Into<String>) -> Self {
        let hresult = HResult::from_i32(hr);
        let code = HResult::from_call(hr).unwrap_or(HResult::ERROR_GEN_FAILURE);
        Self {
            op: op.into(),
            hresult,
            code,
            record: record.into(),
        }
    }

    /// The operation (`hcnCreateNetwork`, `hnsCall`).
    pub fn operation(&self) -> &str {
        &self.op
    }

    /// The HRESULT as the backend returned it (0 when only an error record came back).
    pub fn hresult(&self) -> HResult {
        self.hresult
    }

    /// `ErrorCode`: the normalised Win32 code.
    pub fn code(&self) -> HResult {
        self.code
    }

    /// The error record the call returned (empty when none).
    pub fn record(&self) -> &str {
        &self.record
    }
}

/// `"<op> failed in Win32: <message> (0x<code>) <record>"`, as `hcserror.HcsError` prints.
impl fmt::Display for HcnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = hresult::message(self.code).unwrap_or("Unknown error.");
        write!(
            f,
            "{} failed in Win32: {} ({:#x})",
            self.op,
            message,
            self.code.value()
        )?;
        if !self.record.is_empty() {
            write!(f, " {}", self.record)?;
        }
        Ok(())
    }
}

impl std::error::Error for HcnError {}

/// An error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failed HCN or HNS call.
    #[error(transparent)]
    Call(#[from] HcnError),
    /// HNS v1 answered `Success: false` (`"hns failed with error : <Error>"`).
    #[error("hns failed with error : {0}")]
    Hns(String),
    /// HNS answered `Success: false` to the hcn package's own `hnsCall` (the version
    /// query), which spells it `"HNS failed with error : <Error>"`.
    #[error("HNS failed with error : {0}")]
    HcnHns(String),
    /// hcn `NetworkNotFoundError`.
    #[error("{}", not_found("Network", network_name, network_id))]
    NetworkNotFound {
        /// The name looked up (empty when looked up by id).
        network_name: String,
        /// The id looked up (empty when looked up by name).
        network_id: String,
    },
    /// hcn `EndpointNotFoundError`.
    #[error("{}", not_found("Endpoint", endpoint_name, endpoint_id))]
    EndpointNotFound {
        /// The name looked up (empty when looked up by id).
        endpoint_name: String,
        /// The id looked up (empty when looked up by name).
        endpoint_id: String,
    },
    /// hcn `NamespaceNotFoundError`.
    #[error("Namespace ID {namespace_id:?} not found")]
    NamespaceNotFound {
        /// The id looked up.
        namespace_id: String,
    },
    /// hcn `LoadBalancerNotFoundError`.
    #[error("LoadBalancer {load_balancer_id:?} not found")]
    LoadBalancerNotFound {
        /// The id looked up.
        load_balancer_id: String,
    },
    /// hcn `RouteNotFoundError`.
    #[error("SDN Route {route_id:?} not found")]
    RouteNotFound {
        /// The id looked up.
        route_id: String,
    },
    /// hns (v1) `NetworkNotFoundError`.
    #[error("Network {network_name} not found")]
    HnsNetworkNotFound {
        /// The name looked up.
        network_name: String,
    },
    /// hns (v1) `EndpointNotFoundError`.
    #[error("Endpoint {endpoint_name} not found")]
    HnsEndpointNotFound {
        /// The name looked up.
        endpoint_name: String,
    },
    /// An id that is not a GUID (the reference's unexported `errInvalid*ID`).
    #[error("invalid {kind} ID {id:?}")]
    InvalidId {
        /// `network`, `endpoint`, `namespace`, `load balancer` or `route`.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// A check the client makes before calling (e.g. a subnet route without a next hop).
    #[error("{0}")]
    InvalidArgument(String),
    /// A `XxxSupported()` check failed: `platform does not support feature <name>`.
    #[error("platform does not support feature {0}")]
    FeatureNotSupported(&'static str),
    /// A document the backend returned could not be decoded.
    #[error("invalid response from {op}: {message}")]
    InvalidResponse {
        /// The call.
        op: String,
        /// What was wrong.
        message: String,
    },
    /// The backend is not available (no computenetwork.dll, hnsd not running, not
    /// supported on this platform).
    #[error("HCN is not available: {0}")]
    NotAvailable(String),
    /// The transport to hnsd failed.
    #[error("hnsd transport: {0}")]
    Transport(String),
    /// `ErrorEmptyMacAddressList`: an empty accelnet MAC list.
    #[error("management MAC address list is empty")]
    EmptyMacAddressList,
}

fn not_found(what: &str, name: &str, id: &str) -> String {
    if !name.is_empty() {
        format!("{what} name {:?} not found", echo(name))
    } else {
        format!("{what} ID {:?} not found", echo(id))
    }
}

impl Error {
    /// The call error, if this is one.
    pub fn call(&self) -> Option<&HcnError> {
        match self {
            Error::Call(e) => Some(e),
            _ => None,
        }
    }

    /// An invalid document from the backend.
    pub(crate) fn response(op: &str, err: impl fmt::Display) -> Self {
        Error::InvalidResponse {
            op: op.to_string(),
            message: err.to_string(),
        }
    }
}

/// `CheckErrorWithCode`: the error is a failed call whose `ErrorCode` names the same
/// condition as `code`.
pub fn check_error_with_code(err: &Error, code: HResult) -> bool {
    err.call().is_some_and(|e| e.code().same_condition(code))
}

/// `IsElementNotFoundError`: `ErrorCode` 1168 (`ERROR_NOT_FOUND`).
pub fn is_element_not_found_error(err: &Error) -> bool {
    check_error_with_code(err, HResult::ERROR_NOT_FOUND)
}

/// `IsPortAlreadyExistsError`: `ErrorCode` `0x803B0013`.
pub fn is_port_already_exists_error(err: &Error) -> bool {
    check_error_with_code(err, hresult::HCN_E_PORT_ALREADY_EXISTS)
}

/// `IsNotImplemented`: `ErrorCode` `0x80004001` (`E_NOTIMPL`).
pub fn is_not_implemented(err: &Error) -> bool {
    check_error_with_code(err, HResult::E_NOTIMPL)
}

/// `IsNotFoundError`: a typed not-found error (v2 or v1), or a call that failed with
/// element-not-found (plus `HCN_E_NETWORK_NOT_FOUND` / `HCN_E_ENDPOINT_NOT_FOUND`, see the
/// module docs).
pub fn is_not_found_error(err: &Error) -> bool {
    match err {
        Error::NetworkNotFound { .. }
        | Error::EndpointNotFound { .. }
        | Error::NamespaceNotFound { .. }
        | Error::LoadBalancerNotFound { .. }
        | Error::RouteNotFound { .. }
        | Error::HnsNetworkNotFound { .. }
        | Error::HnsEndpointNotFound { .. } => true,
        Error::Call(e) => e.code().is_any(&[
            HResult::ERROR_NOT_FOUND,
            hresult::HCN_E_NETWORK_NOT_FOUND,
            hresult::HCN_E_ENDPOINT_NOT_FOUND,
        ]),
        _ => false,
    }
}

/// The root facade's `IsNotExist` for network errors: the v1 `EndpointNotFoundError` and
/// `NetworkNotFoundError` (matched by type, as the reference does), plus element-not-found.
pub fn is_not_exist(err: &Error) -> bool {
    matches!(
        err,
        Error::HnsNetworkNotFound { .. } | Error::HnsEndpointNotFound { .. }
    ) || is_element_not_found_error(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_error_normalises_the_code_and_prints_like_hcserror() {
        let e = HcnError::new(
            "hcnCreateEndpoint",
            0x803B_002F_u32 as i32,
            r#"{"Success":false,"Error":"An address provided is invalid or reserved. ","ErrorCode":2151350319}"#,
        );
        assert_eq!(e.code(), hresult::HCN_E_ADDR_INVALID_OR_RESERVED);
        assert_eq!(
            e.to_string(),
            "hcnCreateEndpoint failed in Win32: An address provided is invalid or reserved. \
             (0x803b002f) {\"Success\":false,\"Error\":\"An address provided is invalid or \
             reserved. \",\"ErrorCode\":2151350319}"
        );
        let e = HcnError::new("hcnOpenNetwork", 0x8007_0490_u32 as i32, "");
        assert_eq!(e.code(), HResult::ERROR_NOT_FOUND);
        assert_eq!(e.hresult().value(), 0x8007_0490);
        assert_eq!(
            e.to_string(),
            "hcnOpenNetwork failed in Win32: Element not found. (0x490)"
        );
        // A record with a success HRESULT is an error with code ERROR_GEN_FAILURE.
        let e = HcnError::new("hcnQueryNetworkProperties", 0, "{}");
        assert_eq!(e.code().value(), 31);
    }

    #[test]
    fn predicates() {
        let call = |hr: u32| Error::from(HcnError::new("op", hr as i32, ""));
        assert!(is_element_not_found_error(&call(0x8007_0490)));
        assert!(!is_element_not_found_error(&call(0x803B_0001)));
        assert!(is_port_already_exists_error(&call(0x803B_0013)));
        assert!(is_not_implemented(&call(0x8000_4001)));
        assert!(check_error_with_code(
            &call(0x8007_0057),
            HResult::new(0x57)
        ));
        for e in [
            Error::NetworkNotFound {
                network_name: "n".into(),
                network_id: String::new(),
            },
            Error::EndpointNotFound {
                endpoint_name: String::new(),
                endpoint_id: "i".into(),
            },
            Error::NamespaceNotFound {
                namespace_id: "i".into(),
            },
            Error::LoadBalancerNotFound {
                load_balancer_id: "i".into(),
            },
            Error::RouteNotFound {
                route_id: "i".into(),
            },
            Error::HnsNetworkNotFound {
                network_name: "n".into(),
            },
            Error::HnsEndpointNotFound {
                endpoint_name: "n".into(),
            },
            call(0x8007_0490),
            call(0x803B_0001),
            call(0x803B_0002),
        ] {
            assert!(is_not_found_error(&e), "{e}");
        }
        assert!(!is_not_found_error(&call(0x803B_0013)));
        assert!(!is_not_found_error(&Error::Hns("x".into())));
        assert!(is_not_exist(&Error::HnsEndpointNotFound {
            endpoint_name: "n".into()
        }));
        assert!(is_not_exist(&call(0x8007_0490)));
        assert!(!is_not_exist(&Error::NetworkNotFound {
            network_name: "n".into(),
            network_id: String::new()
        }));
    }

    #[test]
    fn messages() {
        let e = Error::NetworkNotFound {
            network_name: "nat".into(),
            network_id: String::new(),
        };
        assert_eq!(e.to_string(), "Network name \"nat\" not found");
        let e = Error::EndpointNotFound {
            endpoint_name: String::new(),
            endpoint_id: "E1".into(),
        };
        assert_eq!(e.to_string(), "Endpoint ID \"E1\" not found");
        assert_eq!(
            Error::HnsEndpointNotFound {
                endpoint_name: "ep".into()
            }
            .to_string(),
            "Endpoint ep not found"
        );
        assert_eq!(
            Error::FeatureNotSupported("DSR").to_string(),
            "platform does not support feature DSR"
        );
    }
}
