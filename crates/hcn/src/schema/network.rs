//! `HostComputeNetwork` (hcs-hcn-api.md §5.3) and its modify requests.

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

use super::{Dns, Health, Ipam, MacPool, NetworkPolicy, RequestType, SchemaVersion};

string_enum! {
    /// `NetworkType`.
    pub enum NetworkType {
        /// NAT behind the host's address (the default: HNS omits enum 0, so a document
        /// without `Type` decodes as NAT).
        Nat = "NAT",
        /// Bridged to a host adapter.
        Transparent = "Transparent",
        /// L2 bridge (SDN).
        L2Bridge = "L2Bridge",
        /// L2 tunnel.
        L2Tunnel = "L2Tunnel",
        /// Internet connection sharing.
        Ics = "ICS",
        /// Host-only.
        Private = "Private",
        /// VXLAN overlay.
        Overlay = "Overlay",
    }
}

/// `NetworkFlags`: None.
pub const NETWORK_FLAG_NONE: u32 = 0;
/// `NetworkFlags`: EnableNonPersistent.
pub const NETWORK_FLAG_ENABLE_NON_PERSISTENT: u32 = 8;
/// `NetworkFlags`: DisableHostPort.
pub const NETWORK_FLAG_DISABLE_HOST_PORT: u32 = 1024;
/// `NetworkFlags`: EnableIov.
pub const NETWORK_FLAG_ENABLE_IOV: u32 = 8192;

omitempty_struct! {
    /// `HostComputeNetwork`.
    pub struct HostComputeNetwork {
        /// The network GUID (assigned by HNS on create).
        "ID" id: String,
        /// The name.
        "Name" name: String,
        /// The type (NAT when absent, see [`HostComputeNetwork::from_json`]).
        "Type" network_type: NetworkType,
        /// Network policies.
        "Policies" policies: Vec<NetworkPolicy>,
        /// Where endpoint MAC addresses come from.
        "MacPool" mac_pool: MacPool,
        /// DNS settings.
        "Dns" dns: Dns,
        /// Address management.
        "Ipams" ipams: Vec<Ipam>,
        /// `NetworkFlags`.
        "Flags" flags: u32,
        /// Health (read-only).
        "Health" health: Health,
        /// Schema version.
        "SchemaVersion" schema_version: SchemaVersion,
    }
}

impl HostComputeNetwork {
    /// Decodes a network as the reference does: the type defaults to `NAT` before decoding,
    /// because HNS omits enum value 0.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        let mut network: Self = serde_json::from_str(text)?;
        if network.network_type.as_str().is_empty() {
            network.network_type = NetworkType::Nat;
        }
        Ok(network)
    }
}

string_enum! {
    /// `NetworkResourceType` of a [`ModifyNetworkSettingRequest`].
    pub enum NetworkResourceType {
        /// Network policies ([`PolicyNetworkRequest`]).
        Policy = "Policy",
        /// DNS settings.
        Dns = "DNS",
        /// A switch extension.
        Extension = "Extension",
    }
}

omitempty_struct! {
    /// `ModifyNetworkSettingRequest`: the document of `HcnModifyNetwork`.
    pub struct ModifyNetworkSettingRequest {
        /// What to modify.
        "ResourceType" resource_type: NetworkResourceType,
        /// `Add`, `Remove`, `Update` or `Refresh`.
        "RequestType" request_type: RequestType,
        /// The settings (raw).
        "Settings" settings: Option<RawJson>,
    }
}

omitempty_struct! {
    /// `PolicyNetworkRequest`: the settings of a policy modify request.
    pub struct PolicyNetworkRequest {
        /// The policies to add or remove.
        "Policies" policies: Vec<NetworkPolicy>,
    }
}
