//! [`Hcn`]: the reference's `hcn` package functions over any [`HcnApi`] backend.
//!
//! The call patterns are hcsshim's (hcs-hcn-api.md §5.1):
//!
//! * enumerate: `HcnEnumerateX(query)` gives GUIDs; each is opened, queried with the same
//!   query and closed;
//! * create: `HcnCreateX(zero GUID, settings)`, then a query with the default query; an
//!   endpoint is created through its open network;
//! * modify: open, `HcnModifyX`, query, close; delete: `HcnDeleteX(id)`;
//! * get by id or name: enumerate with a `Filter`, first result, or the typed not-found error.
//!
//! Unlike the reference, handles are closed on every path (an RAII guard), and a failed
//! close is reported (logged, as a destructor cannot return it) instead of being lost.
//!
//! The methods are blocking, like the DLL calls they make; async callers run them on a
//! blocking thread (`tokio::task::spawn_blocking`).

mod endpoint;
mod loadbalancer;
mod namespace;
mod network;
mod route;

use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{CallError, Handle, HcnApi, ObjectKind, Verb};
use crate::error::{Error, HcnError, Result};
use crate::schema::{
    HostComputeEndpoint, HostComputeLoadBalancer, HostComputeNamespace, HostComputeNetwork,
    HostComputeQuery, HostComputeRoute, Version,
};
use crate::support::{self, Feature, SupportedFeatures};

pub use loadbalancer::*;
pub use namespace::*;
pub use network::*;

/// The GUID `HcnCreateX` is called with: HNS assigns the id.
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// An HCN document type: its kind and how the reference decodes it.
pub trait Entity: Serialize + DeserializeOwned + Sized {
    /// The object kind.
    const KIND: ObjectKind;
    /// The object's `ID`.
    fn id(&self) -> &str;
    /// Decodes a properties document (the network overrides this to default its type).
    fn decode(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
}

impl Entity for HostComputeNetwork {
    const KIND: ObjectKind = ObjectKind::Network;
    fn id(&self) -> &str {
        &self.id
    }
    fn decode(text: &str) -> serde_json::Result<Self> {
        HostComputeNetwork::from_json(text)
    }
}

impl Entity for HostComputeEndpoint {
    const KIND: ObjectKind = ObjectKind::Endpoint;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Entity for HostComputeNamespace {
    const KIND: ObjectKind = ObjectKind::Namespace;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Entity for HostComputeLoadBalancer {
    const KIND: ObjectKind = ObjectKind::LoadBalancer;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Entity for HostComputeRoute {
    const KIND: ObjectKind = ObjectKind::Route;
    fn id(&self) -> &str {
        &self.id
    }
}

/// `HNSGlobals` / hcn `Globals`: `{"Version": {Major, Minor}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Globals {
    /// The HNS version.
    #[serde(rename = "Version")]
    pub version: Version,
}

/// The hcn client: every function of the reference's `hcn` package, over one backend.
#[derive(Debug, Clone)]
pub struct Hcn {
    api: Arc<dyn HcnApi>,
    version: Arc<OnceLock<Result<Version>>>,
}

/// An open handle, closed when dropped.
struct Opened<'a> {
    api: &'a dyn HcnApi,
    handle: Handle,
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.api.close(&self.handle) {
            // A destructor cannot return the error; the object itself is unaffected.
            tracing::warn!(
                op = %self.handle.kind.op(Verb::Close),
                hr = format_args!("{:#x}", e.hr),
                record = %e.record,
                "closing an HCN handle failed"
            );
        }
    }
}

fn call_err(kind: ObjectKind, verb: Verb) -> impl Fn(CallError) -> Error {
    move |e| Error::Call(HcnError::new(kind.op(verb), e.hr, e.record))
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::InvalidArgument(format!("encode: {e}")))
}

impl Hcn {
    /// A client of `api`.
    pub fn new(api: Arc<dyn HcnApi>) -> Self {
        Self {
            api,
            version: Arc::new(OnceLock::new()),
        }
    }

    /// The client of this host's HNS: computenetwork.dll on Windows, hnsd elsewhere (the
    /// socket named by `HNSD_SOCKET`, default [`crate::hnsd_client::DEFAULT_SOCKET`]).
    pub fn system() -> Result<Self> {
        crate::sys::default_api().map(Self::new)
    }

    /// The backend.
    pub fn api(&self) -> &Arc<dyn HcnApi> {
        &self.api
    }

    fn open(&self, kind: ObjectKind, id: &str) -> Result<Opened<'_>> {
        let handle = self
            .api
            .open(kind, id)
            .map_err(call_err(kind, Verb::Open))?;
        Ok(Opened {
            api: self.api.as_ref(),
            handle,
        })
    }

    fn query_open<T: Entity>(&self, opened: &Opened<'_>, query: &str) -> Result<T> {
        let text = self
            .api
            .query(&opened.handle, query)
            .map_err(call_err(T::KIND, Verb::Query))?;
        T::decode(&text).map_err(|e| Error::response(&T::KIND.op(Verb::Query), e))
    }

    /// `enumerateX(query)`: every object matching `query`, queried with that query.
    pub fn enumerate<T: Entity>(&self, query: &HostComputeQuery) -> Result<Vec<T>> {
        let query = query.to_json();
        let kind = T::KIND;
        let list = self
            .api
            .enumerate(kind, &query)
            .map_err(call_err(kind, Verb::Enumerate))?;
        let ids: Vec<String> = if list.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str::<Option<Vec<String>>>(&list)
                .map_err(|e| Error::response(&kind.op(Verb::Enumerate), e))?
                .unwrap_or_default()
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let opened = self.open(kind, &id)?;
            out.push(self.query_open(&opened, &query)?);
        }
        Ok(out)
    }

    /// The first object matching `query`, if any.
    fn find<T: Entity>(&self, query: &HostComputeQuery) -> Result<Option<T>> {
        Ok(self.enumerate::<T>(query)?.into_iter().next())
    }

    /// `createX(settings)`: creates with the zero GUID and returns the new object's
    /// properties. `network` is the id of the network an endpoint is created on.
    fn create<T: Entity>(&self, doc: &T, network: Option<&str>) -> Result<T> {
        let settings = to_json(doc)?;
        let kind = T::KIND;
        let net = match network {
            Some(id) => Some(self.open(ObjectKind::Network, id)?),
            None => None,
        };
        let handle = self
            .api
            .create(kind, ZERO_GUID, &settings, net.as_ref().map(|n| &n.handle))
            .map_err(call_err(kind, Verb::Create))?;
        let opened = Opened {
            api: self.api.as_ref(),
            handle,
        };
        self.query_open(&opened, &HostComputeQuery::default().to_json())
    }

    /// `modifyX(id, settings)`: the object's properties after the change.
    fn modify<T: Entity>(&self, id: &str, settings: &str) -> Result<T> {
        let opened = self.open(T::KIND, id)?;
        self.api
            .modify(&opened.handle, settings)
            .map_err(call_err(T::KIND, Verb::Modify))?;
        self.query_open(&opened, &HostComputeQuery::default().to_json())
    }

    /// `deleteX(id)`.
    fn delete(&self, kind: ObjectKind, id: &str) -> Result<()> {
        self.api
            .delete(kind, id)
            .map_err(call_err(kind, Verb::Delete))
    }

    /// `hnsCall(method, path, request)` as the hcn package makes it (for the version
    /// query): the envelope's `Output`, decoded; `"HNS failed with error : <Error>"` when
    /// `Success` is false.
    pub fn hns_call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        request: &str,
    ) -> Result<Option<T>> {
        crate::v1::hns_request(self.api.as_ref(), method, path, request).map_err(|e| match e {
            Error::Hns(msg) => Error::HcnHns(msg),
            e => e,
        })
    }

    /// `GetGlobals`: the HNS version.
    pub fn get_globals(&self) -> Result<Globals> {
        let version: Version = self
            .hns_call("GET", "/globals/version", "")?
            .ok_or_else(|| Error::response("hnsCall", "empty version"))?;
        Ok(Globals { version })
    }

    /// The HNS version, asked once (an error is cached too, as the reference's
    /// `sync.Once` around the feature table does).
    fn cached_version(&self) -> Result<Version> {
        self.version
            .get_or_init(|| self.get_globals().map(|g| g.version))
            .clone()
    }

    /// `GetCachedSupportedFeatures`: the feature table at this HNS's version, computed once.
    pub fn get_cached_supported_features(&self) -> Result<SupportedFeatures> {
        self.cached_version().map(support::supported_features)
    }

    /// `GetSupportedFeatures` (deprecated in the reference): all-false on error.
    pub fn get_supported_features(&self) -> SupportedFeatures {
        match self.get_cached_supported_features() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "HNS version query failed; no feature is supported");
                SupportedFeatures::default()
            }
        }
    }

    /// The `XxxSupported()` check of `feature` (e.g. [`support::DSR`] for `DSRSupported`).
    /// Like the reference's, it reads the cached table: HNS is asked once per client.
    pub fn supported(&self, feature: Feature) -> Result<()> {
        support::check(self.cached_version()?, feature)
    }
}

macro_rules! supported_fns {
    ($( $(#[$m:meta])* $fn_name:ident => $feature:ident; )*) => {
        impl Hcn {
            $(
                $(#[$m])*
                pub fn $fn_name(&self) -> Result<()> {
                    self.supported(support::$feature)
                }
            )*
        }
    };
}

supported_fns! {
    /// `V2ApiSupported`.
    v2_api_supported => V2_API;
    /// `RemoteSubnetSupported`.
    remote_subnet_supported => REMOTE_SUBNET;
    /// `HostRouteSupported`.
    host_route_supported => HOST_ROUTE;
    /// `DSRSupported`.
    dsr_supported => DSR;
    /// `Slash32EndpointPrefixesSupported`.
    slash32_endpoint_prefixes_supported => SLASH32_ENDPOINT_PREFIXES;
    /// `AclSupportForProtocol252Supported`.
    acl_support_for_protocol_252_supported => ACL_SUPPORT_FOR_PROTOCOL_252;
    /// `SessionAffinitySupported`.
    session_affinity_supported => SESSION_AFFINITY;
    /// `IPv6DualStackSupported`.
    ipv6_dual_stack_supported => IPV6_DUAL_STACK;
    /// `SetPolicySupported`.
    set_policy_supported => SET_POLICY;
    /// `VxlanPortSupported`.
    vxlan_port_supported => VXLAN_PORT;
    /// `L4proxyPolicySupported`.
    l4proxy_policy_supported => L4_PROXY;
    /// `L4WfpProxyPolicySupported`.
    l4_wfp_proxy_policy_supported => L4_WFP_PROXY;
    /// `TierAclPolicySupported`.
    tier_acl_policy_supported => TIER_ACL;
    /// `NetworkACLPolicySupported`.
    network_acl_policy_supported => NETWORK_ACL;
    /// `NestedIpSetSupported`.
    nested_ip_set_supported => NESTED_IP_SET;
    /// `DisableHostPortSupported`.
    disable_host_port_supported => DISABLE_HOST_PORT;
    /// `ModifyLoadbalancerSupported`.
    modify_loadbalancer_supported => MODIFY_LOADBALANCER;
    /// `AccelnetSupported`.
    accelnet_supported => ACCELNET;
}
