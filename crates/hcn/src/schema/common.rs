//! Types shared by several HCN documents: versions, DNS, routes, subnets, IPAM, MAC pools,
//! health, and the request types of the modify calls.

use serde::{Deserialize, Serialize};

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

/// `Version{Major, Minor}`: both the HCN schema version of a document and the version of
/// the HNS service (hcs-hcn-api.md §5.2). Both keys are always emitted.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(default)]
pub struct Version {
    /// `Major`.
    #[serde(rename = "Major")]
    pub major: u32,
    /// `Minor`.
    #[serde(rename = "Minor")]
    pub minor: u32,
}

impl Version {
    /// A version.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl hcs_schema::go::GoEmpty for Version {
    fn is_go_empty(&self) -> bool {
        false
    }
}

/// The schema version of an HCN document (the reference's `SchemaVersion = Version`).
pub type SchemaVersion = Version;

/// `V2SchemaVersion()`: 2.0, the version every document this crate builds carries.
pub const V2_SCHEMA_VERSION: SchemaVersion = Version::new(2, 0);

omitempty_struct! {
    /// `Dns`: the DNS settings of a network or an endpoint.
    pub struct Dns {
        /// The DNS domain.
        "Domain" domain: String,
        /// The search list.
        "Search" search: Vec<String>,
        /// The DNS servers.
        "ServerList" server_list: Vec<String>,
        /// Resolver options.
        "Options" options: Vec<String>,
    }
}

omitempty_struct! {
    /// `Route`: a route of a subnet or an endpoint.
    pub struct Route {
        /// The next hop (gateway) address.
        "NextHop" next_hop: String,
        /// The destination prefix (`0.0.0.0/0` for a default route).
        "DestinationPrefix" destination_prefix: String,
        /// The metric.
        "Metric" metric: u16,
    }
}

/// Subnet flag `DoNotReserveGatewayAddress`: the gateway address may be given to an
/// endpoint.
pub const SUBNET_FLAG_DO_NOT_RESERVE_GATEWAY_ADDRESS: u32 = 1;

omitempty_struct! {
    /// `Subnet`: one subnet of an IPAM.
    pub struct Subnet {
        /// The prefix (`10.0.0.0/24`).
        "IpAddressPrefix" ip_address_prefix: String,
        /// Subnet policies (`VLAN`, `VSID`), raw.
        "Policies" policies: Vec<RawJson>,
        /// The routes; the default route's next hop is the gateway.
        "Routes" routes: Vec<Route>,
        /// `SubnetFlags`: None 0, DoNotReserveGatewayAddress 1.
        "Flags" flags: u32,
    }
}

string_enum! {
    /// `IpamType`.
    pub enum IpamType {
        /// Addresses are assigned from the subnets by HNS.
        Static = "Static",
        /// Addresses come from DHCP.
        Dhcp = "DHCP",
    }
}

omitempty_struct! {
    /// `Ipam`: how a network assigns addresses.
    pub struct Ipam {
        /// `Static` or `DHCP`.
        "Type" ipam_type: IpamType,
        /// The subnets.
        "Subnets" subnets: Vec<Subnet>,
    }
}

omitempty_struct! {
    /// `MacRange`: an inclusive MAC address range (`00-15-5D-52-C0-00`).
    pub struct MacRange {
        /// First address.
        "StartMacAddress" start_mac_address: String,
        /// Last address.
        "EndMacAddress" end_mac_address: String,
    }
}

omitempty_struct! {
    /// `MacPool`: where endpoint MAC addresses come from.
    pub struct MacPool {
        /// The ranges.
        "Ranges" ranges: Vec<MacRange>,
    }
}

omitempty_struct! {
    /// `ExtraParams` of [`Health`].
    pub struct ExtraParams {
        /// Resources (raw).
        "Resources" resources: Option<RawJson>,
        /// Shared containers (raw).
        "SharedContainers" shared_containers: Option<RawJson>,
        /// The network this one is layered on.
        "LayeredOn" layered_on: String,
        /// The virtual switch.
        "SwitchGuid" switch_guid: String,
        /// The utility VM.
        "UtilityVM" utility_vm: String,
        /// The virtual machine.
        "VirtualMachine" virtual_machine: String,
    }
}

omitempty_struct! {
    /// `Health`: what HNS reports about an object's state.
    pub struct Health {
        /// Free-form data (Go `interface{}`).
        "Data" data: Option<serde_json::Value>,
        /// Extra parameters.
        "Extra" extra: ExtraParams,
    }
}

string_enum! {
    /// `RequestType` of the modify requests.
    pub enum RequestType {
        /// Add a resource.
        Add = "Add",
        /// Remove a resource.
        Remove = "Remove",
        /// Update a resource.
        Update = "Update",
        /// Refresh a resource.
        Refresh = "Refresh",
    }
}

/// Every error message is bounded: a document field echoed into an error is cut here.
pub(crate) const MAX_ECHO: usize = 256;

/// `text`, cut to [`MAX_ECHO`] bytes on a character boundary, for error messages.
pub(crate) fn echo(text: &str) -> &str {
    if text.len() <= MAX_ECHO {
        return text;
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
