//! The engine's objects: each one's document and the engine's private bookkeeping
//! ([`Record`]), by kind, and the counters ([`Meta`]). [`super::store`] persists them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::{
    HostComputeEndpoint, HostComputeLoadBalancer, HostComputeNamespace, HostComputeNetwork,
    HostComputeRoute,
};
use crate::v1::PolicyList;

/// What the engine keeps about an endpoint beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointExtra {
    /// Unique small number naming its host veth.
    pub index: u32,
    /// The interface name inside its namespace.
    pub ifname: String,
    /// v1: containers attached (`SharedContainers`).
    pub shared_containers: Vec<String>,
    /// v1: `State`.
    pub state: u32,
}

/// What the engine keeps about a network beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkExtra {
    /// Unique small number naming its bridge.
    pub index: u32,
}

/// What the engine keeps about a namespace beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceExtra {
    /// Whether hnsd created its network namespace (and removes it).
    pub owned: bool,
}

/// One persisted object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record<D, X> {
    /// The document, as queries return it.
    #[serde(rename = "Document")]
    pub doc: D,
    /// The engine's bookkeeping.
    #[serde(rename = "Extra", default)]
    pub extra: X,
}

/// Counters that must survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// The next link index.
    #[serde(rename = "NextIndex")]
    pub next_index: u32,
    /// The next namespace (compartment) id.
    #[serde(rename = "NextNamespaceId")]
    pub next_namespace_id: u32,
    /// v1 accelnet management MACs.
    #[serde(rename = "AccelnetMacs")]
    pub accelnet_macs: Vec<String>,
}

/// Every object, by upper-case GUID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    /// Networks.
    pub networks: BTreeMap<String, Record<HostComputeNetwork, NetworkExtra>>,
    /// Endpoints.
    pub endpoints: BTreeMap<String, Record<HostComputeEndpoint, EndpointExtra>>,
    /// Namespaces.
    pub namespaces: BTreeMap<String, Record<HostComputeNamespace, NamespaceExtra>>,
    /// Load balancers.
    pub load_balancers: BTreeMap<String, Record<HostComputeLoadBalancer, ()>>,
    /// SDN routes.
    pub routes: BTreeMap<String, Record<HostComputeRoute, ()>>,
    /// v1 policy lists.
    pub policy_lists: BTreeMap<String, Record<PolicyList, ()>>,
    /// Counters.
    pub meta: Meta,
}

/// The kinds of object, as the store names them.
pub const KINDS: [&str; 6] = [
    "networks",
    "endpoints",
    "namespaces",
    "loadbalancers",
    "routes",
    "policylists",
];

impl State {
    /// Sets (`Some`) or removes (`None`) object `id` of `kind` from its stored form.
    pub fn apply(
        &mut self,
        kind: &str,
        id: &str,
        record: Option<crate::raw::RawJson>,
    ) -> Result<(), String> {
        fn set<T: serde::de::DeserializeOwned>(
            m: &mut BTreeMap<String, T>,
            kind: &str,
            id: &str,
            record: Option<crate::raw::RawJson>,
        ) -> Result<(), String> {
            match record {
                Some(v) => {
                    let r = v.decode().map_err(|e| format!("stored {kind} {id}: {e}"))?;
                    m.insert(id.to_string(), r);
                }
                None => {
                    m.remove(id);
                }
            }
            Ok(())
        }
        match kind {
            "networks" => set(&mut self.networks, kind, id, record),
            "endpoints" => set(&mut self.endpoints, kind, id, record),
            "namespaces" => set(&mut self.namespaces, kind, id, record),
            "loadbalancers" => set(&mut self.load_balancers, kind, id, record),
            "routes" => set(&mut self.routes, kind, id, record),
            "policylists" => set(&mut self.policy_lists, kind, id, record),
            other => Err(format!("unknown object kind {other:?} in the state")),
        }
    }
}
