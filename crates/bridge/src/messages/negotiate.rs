//! NegotiateProtocol (`0x10100b01`) and the GCS capabilities.

use serde::{Deserialize, Serialize};

use super::base::{RequestBase, ResponseBase, PROTOCOL_VERSION};
use crate::json::is_default;

super::message! {
    /// NegotiateProtocol request: the host sends 4 and 4.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NegotiateProtocolRequest {
        /// Request base (null container id).
        pub base: RequestBase,
        /// Lowest acceptable version.
        #[serde(rename = "MinimumVersion", default)]
        pub minimum_version: u32,
        /// Highest acceptable version.
        #[serde(rename = "MaximumVersion", default)]
        pub maximum_version: u32,
    }
}

impl Default for NegotiateProtocolRequest {
    fn default() -> Self {
        Self {
            base: RequestBase::null(),
            minimum_version: PROTOCOL_VERSION,
            maximum_version: PROTOCOL_VERSION,
        }
    }
}

/// A schema version `{Major, Minor}` (both omitempty).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SchemaVersion {
    /// Major version.
    #[serde(rename = "Major", default, skip_serializing_if = "is_default")]
    pub major: u32,
    /// Minor version.
    #[serde(rename = "Minor", default, skip_serializing_if = "is_default")]
    pub minor: u32,
}

impl SchemaVersion {
    /// Schema 2.1, the minimum the GCS accepts for Create.
    pub const V2_1: SchemaVersion = SchemaVersion { major: 2, minor: 1 };
}

/// GCS-specific capabilities (`GcsGuestCapabilities`), all omitempty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestDefinedCapabilities {
    /// Network namespaces can be added by request.
    #[serde(
        rename = "NamespaceAddRequestSupported",
        default,
        skip_serializing_if = "is_default"
    )]
    pub namespace_add_request_supported: bool,
    /// SignalProcess is supported.
    #[serde(
        rename = "SignalProcessSupported",
        default,
        skip_serializing_if = "is_default"
    )]
    pub signal_process_supported: bool,
    /// DumpStacks is supported.
    #[serde(
        rename = "DumpStacksSupported",
        default,
        skip_serializing_if = "is_default"
    )]
    pub dump_stacks_supported: bool,
    /// DeleteContainerState is supported.
    #[serde(
        rename = "DeleteContainerStateSupported",
        default,
        skip_serializing_if = "is_default"
    )]
    pub delete_container_state_supported: bool,
}

/// Capabilities in the NegotiateProtocol response (`GcsCapabilities`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcsCapabilities {
    /// Ask the host to send Create for the null container (Windows only).
    #[serde(
        rename = "SendHostCreateMessage",
        default,
        skip_serializing_if = "is_default"
    )]
    pub send_host_create_message: bool,
    /// Ask the host to send Start for the null container (Windows only).
    #[serde(
        rename = "SendHostStartMessage",
        default,
        skip_serializing_if = "is_default"
    )]
    pub send_host_start_message: bool,
    /// Ask for an HvSocket ModifySettings at startup.
    #[serde(
        rename = "HvSocketConfigOnStartup",
        default,
        skip_serializing_if = "is_default"
    )]
    pub hv_socket_config_on_startup: bool,
    /// Supported schema versions.
    #[serde(
        rename = "SupportedSchemaVersions",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supported_schema_versions: Vec<SchemaVersion>,
    /// `"Linux"` for the Linux GCS; empty means Windows to the host.
    #[serde(
        rename = "RuntimeOsType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime_os_type: String,
    /// GCS-defined capabilities. The host requires the key to be present and decodable.
    #[serde(
        rename = "GuestDefinedCapabilities",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub guest_defined_capabilities: Option<GuestDefinedCapabilities>,
}

impl GcsCapabilities {
    /// The fixed capability set the Linux GCS returns (`bridge_v2.go`).
    pub fn linux_gcs() -> Self {
        Self {
            supported_schema_versions: vec![SchemaVersion::V2_1],
            runtime_os_type: "Linux".to_owned(),
            guest_defined_capabilities: Some(GuestDefinedCapabilities {
                namespace_add_request_supported: true,
                signal_process_supported: true,
                dump_stacks_supported: true,
                delete_container_state_supported: true,
            }),
            ..Self::default()
        }
    }
}

super::message! {
    /// NegotiateProtocol response.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct NegotiateProtocolResponse {
        /// Response base.
        pub base: ResponseBase,
        /// Selected version; the host requires 4.
        #[serde(rename = "Version", default)]
        pub version: u32,
        /// Guest capabilities.
        #[serde(rename = "Capabilities", default)]
        pub capabilities: GcsCapabilities,
    }
}
