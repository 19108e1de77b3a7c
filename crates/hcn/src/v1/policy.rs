//! The HNS v1 policies (§4.4): flat JSON objects with `Type`, the embedded Go structs
//! flattened into them.

use serde::{Deserialize, Serialize};

use hcs_schema::string_enum;

string_enum! {
    /// v1 `PolicyType`.
    pub enum PolicyType {
        /// [`NatPolicy`].
        Nat = "NAT",
        /// [`AclPolicy`].
        Acl = "ACL",
        /// [`PaPolicy`].
        Pa = "PA",
        /// [`VlanPolicy`].
        Vlan = "VLAN",
        /// [`VsidPolicy`].
        Vsid = "VSID",
        /// No settings.
        Vnet = "VNET",
        /// No settings.
        L2Driver = "L2Driver",
        /// [`IsolationPolicy`].
        Isolation = "Isolation",
        /// [`QosPolicy`].
        Qos = "QOS",
        /// [`OutboundNatPolicy`].
        OutboundNat = "OutBoundNAT",
        /// [`ElbPolicy`].
        ExternalLoadBalancer = "ELB",
        /// [`RoutePolicy`].
        Route = "ROUTE",
        /// [`ProxyPolicy`].
        Proxy = "PROXY",
    }
}

fn zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `Policy`: just the type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// The type.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
}

/// `NatPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatPolicy {
    /// `NAT`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// `TCP` or `UDP`.
    #[serde(rename = "Protocol", skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// The endpoint's port.
    #[serde(rename = "InternalPort", skip_serializing_if = "zero")]
    pub internal_port: u16,
    /// The host's port.
    #[serde(rename = "ExternalPort", skip_serializing_if = "zero")]
    pub external_port: u16,
    /// Reserved external port.
    #[serde(rename = "ExternalPortReserved", skip_serializing_if = "zero")]
    pub external_port_reserved: bool,
}

/// `QosPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QosPolicy {
    /// `QOS`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// Bandwidth cap.
    #[serde(rename = "MaximumOutgoingBandwidthInBytes")]
    pub maximum_outgoing_bandwidth_in_bytes: u64,
}

/// `IsolationPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IsolationPolicy {
    /// `Isolation`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// VLAN.
    #[serde(rename = "VLAN")]
    pub vlan: u32,
    /// VSID.
    #[serde(rename = "VSID")]
    pub vsid: u32,
    /// In default isolation.
    #[serde(rename = "InDefaultIsolation")]
    pub in_default_isolation: bool,
}

/// `VlanPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VlanPolicy {
    /// `VLAN`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// VLAN id.
    #[serde(rename = "VLAN")]
    pub vlan: u32,
}

/// `VsidPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VsidPolicy {
    /// `VSID`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// VSID.
    #[serde(rename = "VSID")]
    pub vsid: u32,
}

/// `PaPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaPolicy {
    /// `PA`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// Provider address.
    #[serde(rename = "PA")]
    pub pa: String,
}

/// `OutboundNatPolicy`: the Go field `Exceptions` is sent as `ExceptionList`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundNatPolicy {
    /// `OutBoundNAT`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// The NAT address.
    #[serde(rename = "VIP", skip_serializing_if = "String::is_empty")]
    pub vip: String,
    /// Destinations not NATed.
    #[serde(rename = "ExceptionList", skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// Destinations NATed.
    #[serde(rename = "Destinations", skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    /// Port pool cap.
    #[serde(rename = "MaxPortPoolUsage", skip_serializing_if = "zero")]
    pub max_port_pool_usage: u16,
}

/// `ProxyPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyPolicy {
    /// `PROXY`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// Proxy address.
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Proxy port.
    #[serde(rename = "Port", skip_serializing_if = "String::is_empty")]
    pub port: String,
    /// Exceptions.
    #[serde(rename = "ExceptionList", skip_serializing_if = "Vec::is_empty")]
    pub exception_list: Vec<String>,
    /// Destination.
    #[serde(rename = "Destination", skip_serializing_if = "String::is_empty")]
    pub destination: String,
    /// Outbound NAT.
    #[serde(rename = "OutboundNat", skip_serializing_if = "zero")]
    pub outbound_nat: bool,
}

/// `ACLPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the keys are the reference's field names
pub struct AclPolicy {
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    #[serde(rename = "Id", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Protocol")]
    pub protocol: u16,
    #[serde(rename = "Protocols", skip_serializing_if = "String::is_empty")]
    pub protocols: String,
    #[serde(rename = "InternalPort")]
    pub internal_port: u16,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Direction")]
    pub direction: String,
    #[serde(rename = "LocalAddresses")]
    pub local_addresses: String,
    #[serde(rename = "RemoteAddresses")]
    pub remote_addresses: String,
    #[serde(rename = "LocalPorts", skip_serializing_if = "String::is_empty")]
    pub local_ports: String,
    #[serde(rename = "LocalPort")]
    pub local_port: u16,
    #[serde(rename = "RemotePorts", skip_serializing_if = "String::is_empty")]
    pub remote_ports: String,
    #[serde(rename = "RemotePort")]
    pub remote_port: u16,
    #[serde(rename = "RuleType", skip_serializing_if = "String::is_empty")]
    pub rule_type: String,
    #[serde(rename = "Priority")]
    pub priority: u16,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
}

/// `LBPolicy` / `ELBPolicy`: the embedded `LBPolicy` keys flattened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ElbPolicy {
    /// `ELB`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// IANA protocol number (0, any, is left out as the reference's `omitempty` does).
    #[serde(rename = "Protocol", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub protocol: u16,
    /// Backend port.
    #[serde(rename = "InternalPort")]
    pub internal_port: u16,
    /// Frontend port.
    #[serde(rename = "ExternalPort")]
    pub external_port: u16,
    /// Source VIP.
    #[serde(rename = "SourceVIP", skip_serializing_if = "String::is_empty")]
    pub source_vip: String,
    /// Frontend VIPs.
    #[serde(rename = "VIPs", skip_serializing_if = "Vec::is_empty")]
    pub vips: Vec<String>,
    /// Internal load balancer.
    #[serde(rename = "ILB", skip_serializing_if = "zero")]
    pub ilb: bool,
    /// Direct server return (the Go field `DSR`).
    #[serde(rename = "IsDSR", skip_serializing_if = "zero")]
    pub dsr: bool,
}

/// `RoutePolicy`: the Go field `EncapEnabled` is sent as `NeedEncap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutePolicy {
    /// `ROUTE`.
    #[serde(rename = "Type")]
    pub policy_type: PolicyType,
    /// Destination prefix.
    #[serde(rename = "DestinationPrefix", skip_serializing_if = "String::is_empty")]
    pub destination_prefix: String,
    /// Next hop.
    #[serde(rename = "NextHop", skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
    /// Encapsulated.
    #[serde(rename = "NeedEncap", skip_serializing_if = "zero")]
    pub encap_enabled: bool,
}
