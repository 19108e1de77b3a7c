//! `HostComputeEndpoint` (hcs-hcn-api.md §5.4) and its modify requests.

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

use super::{Dns, EndpointPolicy, Health, RequestType, Route, SchemaVersion};

omitempty_struct! {
    /// `IpConfig`: one address of an endpoint.
    pub struct IpConfig {
        /// The address.
        "IpAddress" ip_address: String,
        /// The prefix length (from the network's subnet when absent).
        "PrefixLength" prefix_length: u8,
    }
}

/// `EndpointFlags`: None.
pub const ENDPOINT_FLAG_NONE: u32 = 0;
/// `EndpointFlags`: RemoteEndpoint (an endpoint on another host, SDN).
pub const ENDPOINT_FLAG_REMOTE_ENDPOINT: u32 = 1;

omitempty_struct! {
    /// `HostComputeEndpoint`.
    pub struct HostComputeEndpoint {
        /// The endpoint GUID (assigned by HNS on create).
        "ID" id: String,
        /// The name.
        "Name" name: String,
        /// The GUID of its network.
        "HostComputeNetwork" host_compute_network: String,
        /// The GUID of the namespace it is attached to (read-only).
        "HostComputeNamespace" host_compute_namespace: String,
        /// Endpoint policies.
        "Policies" policies: Vec<EndpointPolicy>,
        /// Addresses (allocated from the network's subnets when absent).
        "IpConfigurations" ip_configurations: Vec<IpConfig>,
        /// DNS settings.
        "Dns" dns: Dns,
        /// Routes (the default route's next hop is the gateway).
        "Routes" routes: Vec<Route>,
        /// MAC address (`00-15-5D-..`; allocated from the network's pool when absent).
        "MacAddress" mac_address: String,
        /// `EndpointFlags`.
        "Flags" flags: u32,
        /// Health (read-only).
        "Health" health: Health,
        /// Schema version.
        "SchemaVersion" schema_version: SchemaVersion,
    }
}

string_enum! {
    /// `EndpointResourceType` of a [`ModifyEndpointSettingRequest`].
    pub enum EndpointResourceType {
        /// The switch port.
        Port = "Port",
        /// Endpoint policies ([`PolicyEndpointRequest`]).
        Policy = "Policy",
    }
}

omitempty_struct! {
    /// `ModifyEndpointSettingRequest`: the document of `HcnModifyEndpoint`.
    pub struct ModifyEndpointSettingRequest {
        /// What to modify.
        "ResourceType" resource_type: EndpointResourceType,
        /// `Add`, `Remove`, `Update` or `Refresh`.
        "RequestType" request_type: RequestType,
        /// The settings (raw).
        "Settings" settings: Option<RawJson>,
    }
}

omitempty_struct! {
    /// `PolicyEndpointRequest`: the settings of a policy modify request.
    pub struct PolicyEndpointRequest {
        /// The policies.
        "Policies" policies: Vec<EndpointPolicy>,
    }
}

omitempty_struct! {
    /// `VmEndpointRequest` (defined by the reference, not used by it).
    pub struct VmEndpointRequest {
        /// Port id.
        "PortId" port_id: String,
        /// Virtual NIC name.
        "VirtualNicName" virtual_nic_name: String,
        /// VM id.
        "VirtualMachineId" virtual_machine_id: String,
    }
}
