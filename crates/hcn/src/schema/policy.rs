//! HCN policies (`hcnpolicy.go`, hcs-hcn-api.md §5.8): the endpoint, network and subnet
//! policy envelopes `{Type, Settings}` and every typed settings struct.
//!
//! `Settings` stays raw ([`RawJson`]) in the envelope, as in the reference, so a policy this
//! crate does not model passes through unchanged; [`EndpointPolicy::new`] and
//! [`EndpointPolicy::settings`] convert to and from the typed structs.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

string_enum! {
    /// `EndpointPolicyType`.
    pub enum EndpointPolicyType {
        /// [`PortMappingPolicySetting`].
        PortMapping = "PortMapping",
        /// [`AclPolicySetting`].
        Acl = "ACL",
        /// [`QosPolicySetting`].
        Qos = "QOS",
        /// No settings.
        L2Driver = "L2Driver",
        /// [`OutboundNatPolicySetting`].
        OutBoundNat = "OutBoundNAT",
        /// [`SdnRoutePolicySetting`].
        SdnRoute = "SDNRoute",
        /// [`L4ProxyPolicySetting`].
        L4Proxy = "L4Proxy",
        /// [`L4WfpProxyPolicySetting`].
        L4WfpProxy = "L4WFPPROXY",
        /// [`PortnameEndpointPolicySetting`].
        PortName = "PortName",
        /// [`EncapOverheadEndpointPolicySetting`].
        EncapOverhead = "EncapOverhead",
        /// [`IovPolicySetting`].
        Iov = "Iov",
        /// [`ProviderAddressEndpointPolicySetting`].
        ProviderAddress = "ProviderAddress",
        /// [`InterfaceConstraintPolicySetting`].
        InterfaceConstraint = "InterfaceConstraint",
        /// [`TierAclPolicySetting`].
        TierAcl = "TierAcl",
    }
}

string_enum! {
    /// `NetworkPolicyType`.
    pub enum NetworkPolicyType {
        /// [`SourceMacAddressNetworkPolicySetting`].
        SourceMacAddress = "SourceMacAddress",
        /// [`NetAdapterNameNetworkPolicySetting`].
        NetAdapterName = "NetAdapterName",
        /// [`VSwitchExtensionNetworkPolicySetting`].
        VSwitchExtension = "VSwitchExtension",
        /// [`DrMacAddressNetworkPolicySetting`].
        DrMacAddress = "DrMacAddress",
        /// [`AutomaticDnsNetworkPolicySetting`].
        AutomaticDns = "AutomaticDNS",
        /// [`InterfaceConstraintPolicySetting`].
        InterfaceConstraint = "InterfaceConstraint",
        /// [`ProviderAddressEndpointPolicySetting`].
        ProviderAddress = "ProviderAddress",
        /// [`RemoteSubnetRoutePolicySetting`].
        RemoteSubnetRoute = "RemoteSubnetRoute",
        /// [`VxlanPortPolicySetting`].
        VxlanPort = "VxlanPort",
        /// [`HostRoutePolicySetting`].
        HostRoute = "HostRoute",
        /// [`SetPolicySetting`].
        SetPolicy = "SetPolicy",
        /// [`L4ProxyPolicySetting`].
        NetworkL4Proxy = "L4Proxy",
        /// [`LayerConstraintNetworkPolicySetting`].
        LayerConstraint = "LayerConstraint",
        /// [`NetworkAclPolicySetting`].
        NetworkAcl = "NetworkACL",
    }
}

string_enum! {
    /// `SubnetPolicyType`.
    pub enum SubnetPolicyType {
        /// [`VlanPolicySetting`].
        Vlan = "VLAN",
        /// [`VsidPolicySetting`].
        Vsid = "VSID",
    }
}

macro_rules! policy_envelope {
    ($(#[$m:meta])* $name:ident, $ty:ty) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            /// `Type` (always emitted).
            #[serde(rename = "Type", deserialize_with = "hcs_schema::go::null_default")]
            pub policy_type: $ty,
            /// `Settings`, raw (omitted when absent).
            #[serde(
                rename = "Settings",
                skip_serializing_if = "Option::is_none",
                deserialize_with = "hcs_schema::go::null_default"
            )]
            pub settings: Option<RawJson>,
        }

        impl $name {
            /// A policy of `policy_type` with `settings` serialized as its `Settings`.
            pub fn new<T: Serialize + ?Sized>(
                policy_type: $ty,
                settings: &T,
            ) -> serde_json::Result<Self> {
                Ok(Self { policy_type, settings: Some(RawJson::from_value(settings)?) })
            }

            /// Decodes `Settings` as `T` (an absent `Settings` decodes from `{}`).
            pub fn settings<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
                match &self.settings {
                    Some(raw) => raw.decode(),
                    None => serde_json::from_str("{}"),
                }
            }
        }

        impl hcs_schema::go::GoEmpty for $name {
            fn is_go_empty(&self) -> bool {
                false
            }
        }
    };
}

policy_envelope!(
    /// `EndpointPolicy`: `{Type, Settings}`.
    EndpointPolicy,
    EndpointPolicyType
);
policy_envelope!(
    /// `NetworkPolicy`: `{Type, Settings}`.
    NetworkPolicy,
    NetworkPolicyType
);
policy_envelope!(
    /// `SubnetPolicy`: `{Type, Settings}`.
    SubnetPolicy,
    SubnetPolicyType
);

/// `NatFlags` of a port mapping or an outbound NAT: LocalRoutedVip.
pub const NAT_FLAG_LOCAL_ROUTED_VIP: u32 = 1;
/// `NatFlags`: IPv6.
pub const NAT_FLAG_IPV6: u32 = 2;

/// `ProtocolType` numbers (IANA protocol numbers) used by port mappings and load balancers.
pub mod protocol {
    /// Unknown.
    pub const UNKNOWN: u32 = 0;
    /// ICMPv4.
    pub const ICMPV4: u32 = 1;
    /// IGMP.
    pub const IGMP: u32 = 2;
    /// TCP.
    pub const TCP: u32 = 6;
    /// UDP.
    pub const UDP: u32 = 17;
    /// ICMPv6.
    pub const ICMPV6: u32 = 58;
}

omitempty_struct! {
    /// `PortMappingPolicySetting` (endpoint `PortMapping`): a host port forwarded to the
    /// endpoint.
    pub struct PortMappingPolicySetting {
        /// IANA protocol number (TCP 6, UDP 17).
        "Protocol" protocol: u32,
        /// The endpoint's port.
        "InternalPort" internal_port: u16,
        /// The host's port.
        "ExternalPort" external_port: u16,
        /// The host address the mapping listens on (all when empty).
        "VIP" vip: String,
        /// `NatFlags`.
        "Flags" flags: u32,
    }
}

string_enum! {
    /// `ActionType` of an ACL.
    pub enum ActionType {
        /// Allow.
        Allow = "Allow",
        /// Block.
        Block = "Block",
        /// Pass.
        Pass = "Pass",
    }
}

string_enum! {
    /// `DirectionType` of an ACL.
    pub enum DirectionType {
        /// Inbound.
        In = "In",
        /// Outbound.
        Out = "Out",
    }
}

string_enum! {
    /// `RuleType` of an ACL.
    pub enum RuleType {
        /// WFP.
        Host = "Host",
        /// VFP.
        Switch = "Switch",
    }
}

/// `AclPolicySetting` (endpoint `ACL`; also network `NetworkACL`). `Action` and `Direction`
/// are always emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclPolicySetting {
    /// Protocol numbers (`"6"`).
    #[serde(rename = "Protocols", skip_serializing_if = "String::is_empty")]
    pub protocols: String,
    /// `Allow`, `Block` or `Pass`.
    #[serde(rename = "Action")]
    pub action: ActionType,
    /// `In` or `Out`.
    #[serde(rename = "Direction")]
    pub direction: DirectionType,
    /// Local addresses.
    #[serde(rename = "LocalAddresses", skip_serializing_if = "String::is_empty")]
    pub local_addresses: String,
    /// Remote addresses.
    #[serde(rename = "RemoteAddresses", skip_serializing_if = "String::is_empty")]
    pub remote_addresses: String,
    /// Local ports.
    #[serde(rename = "LocalPorts", skip_serializing_if = "String::is_empty")]
    pub local_ports: String,
    /// Remote ports.
    #[serde(rename = "RemotePorts", skip_serializing_if = "String::is_empty")]
    pub remote_ports: String,
    /// `Host` (WFP) or `Switch` (VFP).
    #[serde(rename = "RuleType", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub rule_type: RuleType,
    /// Priority.
    #[serde(rename = "Priority", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub priority: u16,
}

/// `NetworkACLPolicySetting`: the same keys as [`AclPolicySetting`].
pub type NetworkAclPolicySetting = AclPolicySetting;

/// `QosPolicySetting` (endpoint `QOS`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QosPolicySetting {
    /// Outgoing bandwidth cap, bytes per second (always emitted).
    #[serde(rename = "MaximumOutgoingBandwidthInBytes")]
    pub maximum_outgoing_bandwidth_in_bytes: u64,
}

omitempty_struct! {
    /// `OutboundNatPolicySetting` (endpoint `OutBoundNAT`).
    pub struct OutboundNatPolicySetting {
        /// The address traffic is NATed to.
        "VirtualIP" virtual_ip: String,
        /// Destinations (CIDRs) not NATed.
        "Exceptions" exceptions: Vec<String>,
        /// Destinations NATed (loopback DSR).
        "Destinations" destinations: Vec<String>,
        /// `NatFlags`.
        "Flags" flags: u32,
        /// Port pool cap.
        "MaxPortPoolUsage" max_port_pool_usage: u16,
    }
}

omitempty_struct! {
    /// `SDNRoutePolicySetting` (endpoint `SDNRoute`; also the settings of a
    /// `HostComputeRoute`).
    pub struct SdnRoutePolicySetting {
        /// The destination prefix.
        "DestinationPrefix" destination_prefix: String,
        /// The next hop.
        "NextHop" next_hop: String,
        /// Whether traffic is encapsulated.
        "NeedEncap" need_encap: bool,
    }
}

omitempty_struct! {
    /// `FiveTuple` of an L4 WFP proxy.
    pub struct FiveTuple {
        /// Protocols.
        "Protocols" protocols: String,
        /// Local addresses.
        "LocalAddresses" local_addresses: String,
        /// Remote addresses.
        "RemoteAddresses" remote_addresses: String,
        /// Local ports.
        "LocalPorts" local_ports: String,
        /// Remote ports.
        "RemotePorts" remote_ports: String,
        /// Priority.
        "Priority" priority: u16,
    }
}

omitempty_struct! {
    /// `ProxyExceptions` of an L4 WFP proxy.
    pub struct ProxyExceptions {
        /// Addresses not proxied.
        "IpAddressExceptions" ip_address_exceptions: Vec<String>,
        /// Ports not proxied.
        "PortExceptions" port_exceptions: Vec<String>,
    }
}

omitempty_struct! {
    /// `L4WfpProxyPolicySetting` (endpoint `L4WFPPROXY`).
    pub struct L4WfpProxyPolicySetting {
        /// Inbound proxy port.
        "InboundProxyPort" inbound_proxy_port: String,
        /// Outbound proxy port.
        "OutboundProxyPort" outbound_proxy_port: String,
        /// The traffic filter.
        "FilterTuple" filter_tuple: FiveTuple,
        /// The proxy's user SID.
        "UserSID" user_sid: String,
        /// Inbound exceptions.
        "InboundExceptions" inbound_exceptions: ProxyExceptions,
        /// Outbound exceptions.
        "OutboundExceptions" outbound_exceptions: ProxyExceptions,
    }
}

/// `L4ProxyPolicySetting` (endpoint and network `L4Proxy`). `Destination` is always
/// emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct L4ProxyPolicySetting {
    /// Proxy address.
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Proxy port (a string).
    #[serde(rename = "Port", skip_serializing_if = "String::is_empty")]
    pub port: String,
    /// `ProtocolType` ([`protocol`]).
    #[serde(rename = "Protocol", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub protocol: u32,
    /// Exceptions.
    #[serde(rename = "Exceptions", skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// Destination (always emitted).
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Whether proxied traffic is NATed.
    #[serde(
        rename = "OutboundNAT",
        skip_serializing_if = "hcs_schema::go::is_empty"
    )]
    pub outbound_nat: bool,
}

omitempty_struct! {
    /// `PortnameEndpointPolicySetting` (endpoint `PortName`).
    pub struct PortnameEndpointPolicySetting {
        /// The port name.
        "Name" name: String,
    }
}

omitempty_struct! {
    /// `EncapOverheadEndpointPolicySetting` (endpoint `EncapOverhead`).
    pub struct EncapOverheadEndpointPolicySetting {
        /// Overhead in bytes.
        "Overhead" overhead: u16,
    }
}

omitempty_struct! {
    /// `IovPolicySetting` (endpoint `Iov`).
    pub struct IovPolicySetting {
        /// Offload weight.
        "IovOffloadWeight" iov_offload_weight: u32,
        /// Queue pairs requested.
        "QueuePairsRequested" queue_pairs_requested: u32,
        /// Interrupt moderation.
        "InterruptModeration" interrupt_moderation: u32,
    }
}

omitempty_struct! {
    /// `ProviderAddressEndpointPolicySetting` (endpoint and network `ProviderAddress`).
    pub struct ProviderAddressEndpointPolicySetting {
        /// The provider (host) address.
        "ProviderAddress" provider_address: String,
    }
}

omitempty_struct! {
    /// `InterfaceConstraintPolicySetting` (endpoint and network `InterfaceConstraint`).
    pub struct InterfaceConstraintPolicySetting {
        /// Interface GUID.
        "InterfaceGuid" interface_guid: String,
        /// Interface LUID.
        "InterfaceLuid" interface_luid: u64,
        /// Interface index.
        "InterfaceIndex" interface_index: u32,
        /// Media type.
        "InterfaceMediaType" interface_media_type: u32,
        /// Alias.
        "InterfaceAlias" interface_alias: String,
        /// Description.
        "InterfaceDescription" interface_description: String,
    }
}

/// `TierAclRule`. `TierAclRuleAction` is always emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierAclRule {
    /// Rule id.
    #[serde(rename = "Id", skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Protocols.
    #[serde(rename = "Protocols", skip_serializing_if = "String::is_empty")]
    pub protocols: String,
    /// The action.
    #[serde(rename = "TierAclRuleAction")]
    pub tier_acl_rule_action: ActionType,
    /// Local addresses.
    #[serde(rename = "LocalAddresses", skip_serializing_if = "String::is_empty")]
    pub local_addresses: String,
    /// Remote addresses.
    #[serde(rename = "RemoteAddresses", skip_serializing_if = "String::is_empty")]
    pub remote_addresses: String,
    /// Local ports.
    #[serde(rename = "LocalPorts", skip_serializing_if = "String::is_empty")]
    pub local_ports: String,
    /// Remote ports.
    #[serde(rename = "RemotePorts", skip_serializing_if = "String::is_empty")]
    pub remote_ports: String,
    /// Priority.
    #[serde(rename = "Priority", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub priority: u16,
}

/// `TierAclPolicySetting` (endpoint `TierAcl`). `Name`, `Direction` and `Order` are always
/// emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierAclPolicySetting {
    /// Tier name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Direction.
    #[serde(rename = "Direction")]
    pub direction: DirectionType,
    /// Order.
    #[serde(rename = "Order")]
    pub order: u16,
    /// Rules.
    #[serde(rename = "TierAclRules", skip_serializing_if = "Vec::is_empty")]
    pub tier_acl_rules: Vec<TierAclRule>,
}

omitempty_struct! {
    /// `SourceMacAddressNetworkPolicySetting` (network `SourceMacAddress`).
    pub struct SourceMacAddressNetworkPolicySetting {
        /// The MAC address.
        "SourceMacAddress" source_mac_address: String,
    }
}

omitempty_struct! {
    /// `NetAdapterNameNetworkPolicySetting` (network `NetAdapterName`).
    pub struct NetAdapterNameNetworkPolicySetting {
        /// The host adapter the network is bound to.
        "NetworkAdapterName" network_adapter_name: String,
    }
}

omitempty_struct! {
    /// `VSwitchExtensionNetworkPolicySetting` (network `VSwitchExtension`).
    pub struct VSwitchExtensionNetworkPolicySetting {
        /// Extension id.
        "ExtensionID" extension_id: String,
        /// Whether enabled.
        "Enable" enable: bool,
    }
}

omitempty_struct! {
    /// `DrMacAddressNetworkPolicySetting` (network `DrMacAddress`).
    pub struct DrMacAddressNetworkPolicySetting {
        /// The distributed router MAC.
        "Address" address: String,
    }
}

omitempty_struct! {
    /// `AutomaticDNSNetworkPolicySetting` (network `AutomaticDNS`).
    pub struct AutomaticDnsNetworkPolicySetting {
        /// Whether enabled.
        "Enable" enable: bool,
    }
}

/// `RemoteSubnetRoutePolicySetting` (network `RemoteSubnetRoute`): every key always emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteSubnetRoutePolicySetting {
    /// Destination prefix.
    #[serde(rename = "DestinationPrefix")]
    pub destination_prefix: String,
    /// Isolation id.
    #[serde(rename = "IsolationId")]
    pub isolation_id: u16,
    /// Provider address.
    #[serde(rename = "ProviderAddress")]
    pub provider_address: String,
    /// Distributed router MAC.
    #[serde(rename = "DistributedRouterMacAddress")]
    pub distributed_router_mac_address: String,
}

/// `VxlanPortPolicySetting` (network `VxlanPort`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VxlanPortPolicySetting {
    /// The UDP port (always emitted).
    #[serde(rename = "Port")]
    pub port: u16,
}

/// `HostRoutePolicySetting` (network `HostRoute`): `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRoutePolicySetting {}

string_enum! {
    /// `SetPolicyType`.
    pub enum SetPolicyType {
        /// A set of addresses.
        IpSet = "IPSET",
        /// A set of sets.
        NestedIpSet = "NESTEDIPSET",
    }
}

/// `SetPolicySetting` (network `SetPolicy`): every key always emitted; the Go field `Type`
/// is sent as `PolicyType`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SetPolicySetting {
    /// Set id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Set name.
    #[serde(rename = "Name")]
    pub name: String,
    /// `IPSET` or `NESTEDIPSET`.
    #[serde(rename = "PolicyType")]
    pub policy_type: SetPolicyType,
    /// Comma-separated values.
    #[serde(rename = "Values")]
    pub values: String,
}

omitempty_struct! {
    /// `LayerConstraintNetworkPolicySetting` (network `LayerConstraint`).
    pub struct LayerConstraintNetworkPolicySetting {
        /// Layer id.
        "LayerId" layer_id: String,
    }
}

/// `VlanPolicySetting` (subnet `VLAN`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VlanPolicySetting {
    /// VLAN id (always emitted).
    #[serde(rename = "IsolationId")]
    pub isolation_id: u32,
}

/// `VsidPolicySetting` (subnet `VSID`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VsidPolicySetting {
    /// VSID (always emitted).
    #[serde(rename = "IsolationId")]
    pub isolation_id: u32,
}
