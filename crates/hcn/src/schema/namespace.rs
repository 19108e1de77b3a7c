//! `HostComputeNamespace` (hcs-hcn-api.md §5.5) and its modify requests.
//!
//! On Linux (hnsd) a namespace is a network namespace. `NetnsPath` is this port's one
//! extension of the document: it binds the namespace to an existing network namespace file
//! (for instance the `CNI_NETNS` path a runtime created); without it hnsd creates and owns a
//! network namespace and reports its path there. Windows never sends or reads the key, and it
//! is omitted when empty, so Windows documents are unchanged.

use serde::{Deserialize, Serialize};

use crate::raw::RawJson;
use hcs_schema::{omitempty_struct, string_enum};

use super::{RequestType, SchemaVersion};

string_enum! {
    /// `NamespaceType`.
    pub enum NamespaceType {
        /// A host namespace (a Linux network namespace on hnsd).
        Host = "Host",
        /// The host's default namespace.
        HostDefault = "HostDefault",
        /// A guest namespace.
        Guest = "Guest",
        /// The guest's default namespace.
        GuestDefault = "GuestDefault",
    }
}

string_enum! {
    /// `NamespaceResourceType`.
    pub enum NamespaceResourceType {
        /// A container.
        Container = "Container",
        /// An endpoint.
        Endpoint = "Endpoint",
    }
}

/// `NamespaceResource`: `Type` and `Data` are always emitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceResource {
    /// `Container` or `Endpoint`.
    #[serde(rename = "Type", default)]
    pub resource_type: NamespaceResourceType,
    /// `{"ID": "<guid>"}` ([`NamespaceResourceEndpoint`] / [`NamespaceResourceContainer`]).
    #[serde(rename = "Data", default = "RawJson::null")]
    pub data: RawJson,
}

impl hcs_schema::go::GoEmpty for NamespaceResource {
    fn is_go_empty(&self) -> bool {
        false
    }
}

/// `NamespaceResourceEndpoint`: the `Data` of an endpoint resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceResourceEndpoint {
    /// The endpoint GUID.
    #[serde(rename = "ID", default)]
    pub id: String,
}

/// `NamespaceResourceContainer`: the `Data` of a container resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceResourceContainer {
    /// The container id.
    #[serde(rename = "ID", default)]
    pub id: String,
}

omitempty_struct! {
    /// `HostComputeNamespace`.
    pub struct HostComputeNamespace {
        /// The namespace GUID (assigned by HNS on create).
        "ID" id: String,
        /// The compartment id.
        "NamespaceId" namespace_id: u32,
        /// `Host`, `HostDefault`, `Guest` or `GuestDefault`.
        "Type" namespace_type: NamespaceType,
        /// Endpoints and containers in the namespace.
        "Resources" resources: Vec<NamespaceResource>,
        /// Schema version.
        "SchemaVersion" schema_version: SchemaVersion,
        /// Newer hcsshim's `ReadyOnCreate` (outside the spec): the namespace is usable once
        /// created. Carried, not acted on.
        "ReadyOnCreate" ready_on_create: bool,
        /// hnsd extension: the Linux network namespace file (see the module docs).
        "NetnsPath" netns_path: String,
    }
}

omitempty_struct! {
    /// `ModifyNamespaceSettingRequest`: the document of `HcnModifyNamespace`.
    pub struct ModifyNamespaceSettingRequest {
        /// `Endpoint` or `Container`.
        "ResourceType" resource_type: NamespaceResourceType,
        /// `Add` or `Remove`.
        "RequestType" request_type: RequestType,
        /// The settings (raw), e.g. [`NamespaceEndpointRequest`].
        "Settings" settings: Option<RawJson>,
    }
}

omitempty_struct! {
    /// The settings of `AddNamespaceEndpoint` / `RemoveNamespaceEndpoint`:
    /// `{"EndpointId": "<id>"}`.
    pub struct NamespaceEndpointRequest {
        /// The endpoint GUID.
        "EndpointId" endpoint_id: String,
        /// hnsd extension: the interface name inside the network namespace (`eth<N>` when
        /// empty). Windows neither sends nor needs it.
        "InterfaceName" interface_name: String,
    }
}
