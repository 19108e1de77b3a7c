//! `HostComputeLoadBalancer` (hcs-hcn-api.md §5.6).

use hcs_schema::omitempty_struct;

use super::SchemaVersion;

/// `LoadBalancerFlags`: None.
pub const LOAD_BALANCER_FLAG_NONE: u32 = 0;
/// `LoadBalancerFlags`: DSR (direct server return).
pub const LOAD_BALANCER_FLAG_DSR: u32 = 1;
/// `LoadBalancerFlags`: IPv6.
pub const LOAD_BALANCER_FLAG_IPV6: u32 = 2;

/// `LoadBalancerPortMappingFlags`: ILB.
pub const LB_PORT_MAPPING_FLAG_ILB: u32 = 1;
/// `LoadBalancerPortMappingFlags`: LocalRoutedVIP.
pub const LB_PORT_MAPPING_FLAG_LOCAL_ROUTED_VIP: u32 = 2;
/// `LoadBalancerPortMappingFlags`: UseMux.
pub const LB_PORT_MAPPING_FLAG_USE_MUX: u32 = 4;
/// `LoadBalancerPortMappingFlags`: PreserveDIP.
pub const LB_PORT_MAPPING_FLAG_PRESERVE_DIP: u32 = 8;

/// `LoadBalancerDistribution`: per connection.
pub const LB_DISTRIBUTION_NONE: u32 = 0;
/// `LoadBalancerDistribution`: by source IP and protocol.
pub const LB_DISTRIBUTION_SOURCE_IP_PROTOCOL: u32 = 1;
/// `LoadBalancerDistribution`: by source IP.
pub const LB_DISTRIBUTION_SOURCE_IP: u32 = 2;

omitempty_struct! {
    /// `LoadBalancerPortMapping`.
    pub struct LoadBalancerPortMapping {
        /// IANA protocol number (TCP 6, UDP 17).
        "Protocol" protocol: u32,
        /// The endpoints' port.
        "InternalPort" internal_port: u16,
        /// The frontend port.
        "ExternalPort" external_port: u16,
        /// `LoadBalancerDistribution`.
        "DistributionType" distribution_type: u32,
        /// `LoadBalancerPortMappingFlags`.
        "Flags" flags: u32,
    }
}

omitempty_struct! {
    /// `HostComputeLoadBalancer`.
    pub struct HostComputeLoadBalancer {
        /// The load balancer GUID (assigned by HNS on create).
        "ID" id: String,
        /// The backend endpoint GUIDs.
        "HostComputeEndpoints" host_compute_endpoints: Vec<String>,
        /// The source VIP.
        "SourceVIP" source_vip: String,
        /// The frontend addresses.
        "FrontendVIPs" frontend_vips: Vec<String>,
        /// The port mappings.
        "PortMappings" port_mappings: Vec<LoadBalancerPortMapping>,
        /// Schema version.
        "SchemaVersion" schema_version: SchemaVersion,
        /// `LoadBalancerFlags`.
        "Flags" flags: u32,
    }
}
