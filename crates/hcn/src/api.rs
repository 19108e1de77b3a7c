//! The backend boundary: [`HcnApi`], the calls of `computenetwork.dll` plus vmcompute's
//! `HNSCall`, with their raw inputs and outputs (JSON text, GUIDs, HRESULTs, error records).
//!
//! Everything that decides something (the call patterns of §5.1, error mapping, decoding,
//! client-side checks) lives above this trait in [`crate::Hcn`] and [`crate::v1::Hns`], so it
//! is the same code whichever backend answers:
//!
//! * Windows: `computenetwork.dll` and `vmcompute.dll!HNSCall` (`sys::windows`);
//! * elsewhere: hnsd over its Unix socket ([`crate::hnsd_client`]), which carries the same
//!   documents and HRESULTs;
//! * in process: the engine (`hcn::engine`, feature `engine`), for tests.
//!
//! A [`Handle`] is what `HcnOpenX`/`HcnCreateX` return. The Windows backend keeps the real
//! `HCN_*` handle in it; hnsd's handles are the object's kind and GUID, checked on every use,
//! as HNS checks its handles.

use std::fmt;

/// The five HCN object kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ObjectKind {
    /// `HostComputeNetwork`.
    Network,
    /// `HostComputeEndpoint`.
    Endpoint,
    /// `HostComputeNamespace`.
    Namespace,
    /// `HostComputeLoadBalancer`.
    LoadBalancer,
    /// `HostComputeRoute` (the `SdnRoute` exports).
    Route,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Network,
        ObjectKind::Endpoint,
        ObjectKind::Namespace,
        ObjectKind::LoadBalancer,
        ObjectKind::Route,
    ];

    /// The word in the export names: `HcnCreate<Network>`, `HcnOpen<SdnRoute>`.
    pub fn export_word(self) -> &'static str {
        match self {
            ObjectKind::Network => "Network",
            ObjectKind::Endpoint => "Endpoint",
            ObjectKind::Namespace => "Namespace",
            ObjectKind::LoadBalancer => "LoadBalancer",
            ObjectKind::Route => "SdnRoute",
        }
    }

    /// The plural in the enumerate exports (`HcnEnumerateSdnRoutes`).
    pub fn export_plural(self) -> &'static str {
        match self {
            ObjectKind::Network => "Networks",
            ObjectKind::Endpoint => "Endpoints",
            ObjectKind::Namespace => "Namespaces",
            ObjectKind::LoadBalancer => "LoadBalancers",
            ObjectKind::Route => "SdnRoutes",
        }
    }

    /// The lower-case word used in error messages (`network`, `load balancer`).
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Network => "network",
            ObjectKind::Endpoint => "endpoint",
            ObjectKind::Namespace => "namespace",
            ObjectKind::LoadBalancer => "load balancer",
            ObjectKind::Route => "route",
        }
    }

    /// The reference's error title of operation `verb` on this kind: its Go function's
    /// name, e.g. `hcnCreateNetwork`, `hcnEnumerateEndpoints`, and for SDN routes
    /// `hcnQueryRouteProperties`, `hcnEnumerateRoutes` (the Go names drop the exports' `Sdn`).
    pub fn op(self, verb: Verb) -> String {
        let (word, plural) = match self {
            ObjectKind::Route => ("Route", "Routes"),
            k => (k.export_word(), k.export_plural()),
        };
        match verb {
            Verb::Enumerate => format!("hcnEnumerate{plural}"),
            Verb::Query => format!("hcnQuery{word}Properties"),
            v => format!("hcn{}{word}", v.as_str()),
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.export_word())
    }
}

/// The verbs of the HCN exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `HcnEnumerateX`.
    Enumerate,
    /// `HcnCreateX`.
    Create,
    /// `HcnOpenX`.
    Open,
    /// `HcnModifyX`.
    Modify,
    /// `HcnQueryXProperties`.
    Query,
    /// `HcnDeleteX`.
    Delete,
    /// `HcnCloseX`.
    Close,
}

impl Verb {
    /// The word in the export name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Enumerate => "Enumerate",
            Verb::Create => "Create",
            Verb::Open => "Open",
            Verb::Modify => "Modify",
            Verb::Query => "Query",
            Verb::Delete => "Delete",
            Verb::Close => "Close",
        }
    }
}

/// A failed call as the OS reports it: the HRESULT (0 when only an error record came
/// back) and the error record text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The HRESULT.
    pub hr: i32,
    /// The error record (empty when none).
    pub record: String,
}

impl CallError {
    /// A failure with an HRESULT and no record.
    pub fn hr(hr: i32) -> Self {
        Self {
            hr,
            record: String::new(),
        }
    }
}

/// The outcome of one backend call.
pub type CallResult<T> = std::result::Result<T, CallError>;

/// An open object. Returned by open/create, passed to modify/query, released by
/// [`HcnApi::close`] (the [`crate::Hcn`] layer closes through RAII).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    /// The kind of object.
    pub kind: ObjectKind,
    /// The object's GUID as the caller named it (hnsd), or empty (Windows: the GUID is known
    /// to HCN only).
    pub id: String,
    /// The backend's raw handle value (Windows `HCN_*`; 0 for hnsd).
    pub raw: usize,
}

/// The HCN exports and `HNSCall`, one method per export shape (hcs-hcn-api.md §5.1, §4.1).
///
/// GUIDs are passed as text (`"5f3c…"`, any case, braces allowed); the backend converts them.
/// Every failure comes back as a [`CallError`]; a backend that is not there answers
/// `ERROR_PROC_NOT_FOUND` or a transport-level HRESULT with a record saying why.
pub trait HcnApi: Send + Sync + fmt::Debug {
    /// `HcnEnumerateX(query)`: a JSON array of GUIDs.
    fn enumerate(&self, kind: ObjectKind, query: &str) -> CallResult<String>;
    /// `HcnCreateX(id, settings)` (`HcnCreateEndpoint(network, id, settings)` for endpoints,
    /// with `network` the open network).
    fn create(
        &self,
        kind: ObjectKind,
        id: &str,
        settings: &str,
        network: Option<&Handle>,
    ) -> CallResult<Handle>;
    /// `HcnOpenX(id)`.
    fn open(&self, kind: ObjectKind, id: &str) -> CallResult<Handle>;
    /// `HcnModifyX(handle, settings)`.
    fn modify(&self, handle: &Handle, settings: &str) -> CallResult<()>;
    /// `HcnQueryXProperties(handle, query)`: the properties document.
    fn query(&self, handle: &Handle, query: &str) -> CallResult<String>;
    /// `HcnDeleteX(id)`.
    fn delete(&self, kind: ObjectKind, id: &str) -> CallResult<()>;
    /// `HcnCloseX(handle)`.
    fn close(&self, handle: &Handle) -> CallResult<()>;
    /// `HNSCall(method, path, request)`: the response envelope.
    fn hns_call(&self, method: &str, path: &str, request: &str) -> CallResult<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_titles_are_the_go_function_names() {
        assert_eq!(ObjectKind::Network.op(Verb::Create), "hcnCreateNetwork");
        assert_eq!(
            ObjectKind::LoadBalancer.op(Verb::Enumerate),
            "hcnEnumerateLoadBalancers"
        );
        // The route exports say `SdnRoute`; hcsshim's functions do not.
        assert_eq!(ObjectKind::Route.export_word(), "SdnRoute");
        assert_eq!(ObjectKind::Route.op(Verb::Create), "hcnCreateRoute");
        assert_eq!(ObjectKind::Route.op(Verb::Query), "hcnQueryRouteProperties");
        assert_eq!(ObjectKind::Route.op(Verb::Enumerate), "hcnEnumerateRoutes");
    }
}
