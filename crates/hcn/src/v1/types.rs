//! The HNS v1 objects (§4.3).

use serde::{Deserialize, Serialize};

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

omitempty_struct! {
    /// v1 `MacPool`: one MAC range.
    pub struct MacPool {
        /// First address.
        "StartMacAddress" start_mac_address: String,
        /// Last address.
        "EndMacAddress" end_mac_address: String,
    }
}

omitempty_struct! {
    /// v1 `Subnet`.
    pub struct Subnet {
        /// The prefix.
        "AddressPrefix" address_prefix: String,
        /// The gateway.
        "GatewayAddress" gateway_address: String,
        /// Subnet policies, raw.
        "Policies" policies: Vec<RawJson>,
    }
}

/// `HNSNetwork`. `ID` is always emitted (it has no `omitempty` in the reference).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnsNetwork {
    /// The network GUID.
    #[serde(rename = "ID", deserialize_with = "hcs_schema::go::null_default")]
    pub id: String,
    /// The type (`nat`, `l2bridge`, …; HNS v1 accepts any case).
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub network_type: String,
    /// The name.
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host adapter.
    #[serde(
        rename = "NetworkAdapterName",
        skip_serializing_if = "String::is_empty"
    )]
    pub network_adapter_name: String,
    /// The source MAC.
    #[serde(rename = "SourceMac", skip_serializing_if = "String::is_empty")]
    pub source_mac: String,
    /// Network policies, raw.
    #[serde(rename = "Policies", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<RawJson>,
    /// MAC pools.
    #[serde(rename = "MacPools", skip_serializing_if = "Vec::is_empty")]
    pub mac_pools: Vec<MacPool>,
    /// Subnets.
    #[serde(rename = "Subnets", skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Subnet>,
    /// DNS suffix.
    #[serde(rename = "DNSSuffix", skip_serializing_if = "String::is_empty")]
    pub dns_suffix: String,
    /// DNS servers, comma-separated.
    #[serde(rename = "DNSServerList", skip_serializing_if = "String::is_empty")]
    pub dns_server_list: String,
    /// DNS server compartment.
    #[serde(
        rename = "DNSServerCompartment",
        skip_serializing_if = "hcs_schema::go::is_empty"
    )]
    pub dns_server_compartment: u32,
    /// Management address.
    #[serde(rename = "ManagementIP", skip_serializing_if = "String::is_empty")]
    pub management_ip: String,
    /// Automatic DNS.
    #[serde(
        rename = "AutomaticDNS",
        skip_serializing_if = "hcs_schema::go::is_empty"
    )]
    pub automatic_dns: bool,
}

omitempty_struct! {
    /// v1 `NamespaceResource`.
    pub struct NamespaceResource {
        /// `Endpoint` or `Container`.
        "Type" resource_type: String,
        /// `{"Id": ...}`, raw.
        "Data" data: Option<RawJson>,
    }
}

/// v1 `Namespace` of an endpoint. `ID` is always emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Namespace {
    /// The namespace GUID.
    #[serde(rename = "ID", deserialize_with = "hcs_schema::go::null_default")]
    pub id: String,
    /// Whether it is the default namespace.
    #[serde(rename = "IsDefault", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub is_default: bool,
    /// Resources.
    #[serde(rename = "ResourceList", skip_serializing_if = "Vec::is_empty")]
    pub resource_list: Vec<NamespaceResource>,
    /// Compartment id.
    #[serde(
        rename = "CompartmentId",
        skip_serializing_if = "hcs_schema::go::is_empty"
    )]
    pub compartment_id: u32,
}

/// `EndpointState` values (Calico reads them).
pub mod endpoint_state {
    /// Uninitialized.
    pub const UNINITIALIZED: u32 = 0;
    /// Created.
    pub const CREATED: u32 = 1;
    /// Attached.
    pub const ATTACHED: u32 = 2;
    /// Attached to several containers.
    pub const ATTACHED_SHARING: u32 = 3;
    /// Detached.
    pub const DETACHED: u32 = 4;
    /// Degraded.
    pub const DEGRADED: u32 = 5;
    /// Destroyed.
    pub const DESTROYED: u32 = 6;
}

omitempty_struct! {
    /// `HNSEndpoint`.
    pub struct HnsEndpoint {
        /// The endpoint GUID.
        "ID" id: String,
        /// The name.
        "Name" name: String,
        /// The network GUID.
        "VirtualNetwork" virtual_network: String,
        /// The network name.
        "VirtualNetworkName" virtual_network_name: String,
        /// Endpoint policies, raw (v1 shapes, [`crate::v1::NatPolicy`] and others).
        "Policies" policies: Vec<RawJson>,
        /// MAC address.
        "MacAddress" mac_address: String,
        /// IPv4 address.
        "IPAddress" ip_address: String,
        /// IPv6 address.
        "IPv6Address" ipv6_address: String,
        /// DNS suffix.
        "DNSSuffix" dns_suffix: String,
        /// DNS servers, comma-separated.
        "DNSServerList" dns_server_list: String,
        /// DNS domain.
        "DNSDomain" dns_domain: String,
        /// IPv4 gateway.
        "GatewayAddress" gateway_address: String,
        /// IPv6 gateway.
        "GatewayAddressV6" gateway_address_v6: String,
        /// Internal DNS.
        "EnableInternalDNS" enable_internal_dns: bool,
        /// Disable inter-container communication.
        "DisableICC" disable_icc: bool,
        /// IPv4 prefix length.
        "PrefixLength" prefix_length: u8,
        /// IPv6 prefix length.
        "IPv6PrefixLength" ipv6_prefix_length: u8,
        /// A remote endpoint.
        "IsRemoteEndpoint" is_remote_endpoint: bool,
        /// Low metric.
        "EnableLowMetric" enable_low_metric: bool,
        /// The namespace.
        "Namespace" namespace: Option<Namespace>,
        /// Encapsulation overhead.
        "EncapOverhead" encap_overhead: u16,
        /// Containers attached.
        "SharedContainers" shared_containers: Vec<String>,
        /// `EndpointState` ([`endpoint_state`]).
        "State" state: u32,
    }
}

string_enum! {
    /// `SystemType` of an attach request.
    pub enum SystemType {
        /// A container.
        Container = "Container",
        /// A virtual machine.
        VirtualMachine = "VirtualMachine",
        /// The host.
        Host = "Host",
    }
}

/// `EndpointAttachDetachRequest`. `SystemType` is always sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointAttachDetachRequest {
    /// The container id.
    #[serde(rename = "ContainerId", skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    /// `Container`, `VirtualMachine` or `Host`.
    #[serde(rename = "SystemType")]
    pub system_type: SystemType,
    /// Compartment id.
    #[serde(
        rename = "CompartmentId",
        skip_serializing_if = "hcs_schema::go::is_empty"
    )]
    pub compartment_id: u16,
    /// Virtual NIC name.
    #[serde(rename = "VirtualNicName", skip_serializing_if = "String::is_empty")]
    pub virtual_nic_name: String,
}

omitempty_struct! {
    /// `EndpointResquestResponse` (sic).
    pub struct EndpointRequestResponse {
        /// Success.
        "Success" success: bool,
        /// Error text.
        "Error" error: String,
    }
}

/// `EndpointStats`: every key always emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the counters are named by their keys
pub struct EndpointStats {
    #[serde(rename = "BytesReceived")]
    pub bytes_received: u64,
    #[serde(rename = "BytesSent")]
    pub bytes_sent: u64,
    #[serde(rename = "DroppedPacketsIncoming")]
    pub dropped_packets_incoming: u64,
    #[serde(rename = "DroppedPacketsOutgoing")]
    pub dropped_packets_outgoing: u64,
    #[serde(rename = "EndpointId")]
    pub endpoint_id: String,
    #[serde(rename = "InstanceId")]
    pub instance_id: String,
    #[serde(rename = "PacketsReceived")]
    pub packets_received: u64,
    #[serde(rename = "PacketsSent")]
    pub packets_sent: u64,
}

omitempty_struct! {
    /// `PolicyList`: references look like `/endpoints/<id>`.
    pub struct PolicyList {
        /// The policy list GUID.
        "ID" id: String,
        /// Endpoint references.
        "References" endpoint_references: Vec<String>,
        /// Policies, raw ([`crate::v1::ElbPolicy`], [`crate::v1::RoutePolicy`]).
        "Policies" policies: Vec<RawJson>,
    }
}

/// The `/namespaces/` create request: `{"IsDefault": true}`, or `{}` (Go's `omitempty`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceRequest {
    /// Whether it is the default namespace.
    #[serde(rename = "IsDefault", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub is_default: bool,
}

/// A v1 namespace as `/namespaces/` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceResponse {
    /// The namespace GUID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Whether it is the default namespace.
    #[serde(rename = "IsDefault", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub is_default: bool,
    /// Resources.
    #[serde(rename = "ResourceList", skip_serializing_if = "Vec::is_empty")]
    pub resource_list: Vec<NamespaceResource>,
}

/// The `/namespaces/<id>/addresource` request: `{"Type": "Endpoint", "Data": {"Id": ..}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceResourceRequest {
    /// `Endpoint`.
    #[serde(rename = "Type")]
    pub resource_type: String,
    /// The endpoint.
    #[serde(rename = "Data")]
    pub data: NamespaceEndpointData,
}

/// `{"Id": "<endpoint id>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceEndpointData {
    /// The endpoint GUID.
    #[serde(rename = "Id")]
    pub id: String,
}

/// One accelnet management MAC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MacAddressEntry {
    /// The address.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
}

/// The `/accelnet/` document: `{"MacAddressList": [{"MacAddress": ..}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MacAddressList {
    /// The addresses.
    #[serde(rename = "MacAddressList")]
    pub mac_address_list: Vec<MacAddressEntry>,
}
