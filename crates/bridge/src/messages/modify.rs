//! ModifySettings (`0x10100a01`) and the resource settings the LCOW GCS accepts (spec §5).
//!
//! `Request` is a plain JSON object (not a string): hcs-schema's
//! [`GuestModificationRequest`], the one definition of `guestrequest.ModificationRequest`
//! the host documents and this protocol share, here with its `Settings` typed by
//! `ResourceType` ([`ResourceSettings`]). Decoding reads the request with Go's rules, then
//! the settings for their resource type: an unknown resource type still decodes (as
//! [`ResourceSettings::Other`]) so that the GCS can answer it with `HrFail` ("invalid
//! ResourceType"), while bad settings for a known type are a decode error (the GCS answers
//! `HrVmcomputeInvalidJSON`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::base::RequestBase;
use crate::json::is_default;

pub use hcs_schema::v2::{
    GuestModificationRequest, GuestResourceType as ResourceType, GuestSettings,
    RequestType as ModifyRequestType,
};

/// The `Request` of ModifySettings with typed settings.
pub type ModifySettingRequest = GuestModificationRequest<ResourceSettings>;

/// Whether the Linux GCS takes `ResourceType` `t` (spec §5); the others (host-only types such
/// as `NetworkNamespace`, and unknown ones) fail as "invalid ResourceType".
pub fn linux_gcs_accepts(t: &ResourceType) -> bool {
    use ResourceType as T;
    matches!(
        t,
        T::MappedVirtualDisk
            | T::ScsiDevice
            | T::MappedDirectory
            | T::VpMemDevice
            | T::CombinedLayers
            | T::Network
            | T::VpciDevice
            | T::ContainerConstraints
            | T::SecurityPolicy
            | T::SecurityPolicyFragment
            | T::PodCgroupMemoryLimit
    )
}

/// MappedVirtualDisk settings (`LCOWMappedVirtualDisk`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappedVirtualDisk {
    /// Where to mount; empty = attach only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mount_path: String,
    /// SCSI LUN.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lun: u8,
    /// SCSI controller index (0..3).
    #[serde(default, skip_serializing_if = "is_default")]
    pub controller: u8,
    /// Partition number, 0 = whole disk.
    #[serde(default, skip_serializing_if = "is_default")]
    pub partition: u64,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// dm-crypt the device.
    #[serde(default, skip_serializing_if = "is_default")]
    pub encrypted: bool,
    /// Only propagation flags are honoured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Symlink the block device at `MountPath` instead of mounting.
    #[serde(default, skip_serializing_if = "is_default")]
    pub block_dev: bool,
    /// Format when the detected filesystem differs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub ensure_filesystem: bool,
    /// `ext4` or `xfs`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filesystem: String,
    /// Deprecated, ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity_info: Option<serde_json::Value>,
}

/// SCSIDevice settings (Remove only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScsiDevice {
    /// Controller index.
    #[serde(default, skip_serializing_if = "is_default")]
    pub controller: u8,
    /// LUN.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lun: u8,
}

/// MappedDirectory settings (plan9 share).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappedDirectory {
    /// Where to mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mount_path: String,
    /// vsock port to dial (564).
    #[serde(default, skip_serializing_if = "is_default")]
    pub port: i32,
    /// Share name (a numeric index).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub share_name: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
}

/// A packed VPMem mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VPMemMappingInfo {
    /// Offset of the mapping in the device.
    #[serde(default, skip_serializing_if = "is_default")]
    pub device_offset_in_bytes: u64,
    /// Size of the mapping.
    #[serde(default, skip_serializing_if = "is_default")]
    pub device_size_in_bytes: u64,
}

/// VPMemDevice settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VPMemDevice {
    /// `/dev/pmem<N>`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub device_number: u32,
    /// Where to mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mount_path: String,
    /// Multi-mapping info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_info: Option<VPMemMappingInfo>,
}

/// One layer of [`CombinedLayers`] (hcsschema `Layer`); only `Path` is used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Layer {
    /// Layer id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Mounted path of the layer in the guest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Path type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_type: String,
    /// Cache mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cache: String,
}

/// CombinedLayers settings: an overlay at `ContainerRootPath`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinedLayers {
    /// Container id (confidential mode checks the root path against it).
    #[serde(
        rename = "ContainerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// The overlay mount point (`root.path`).
    #[serde(rename = "ContainerRootPath", default)]
    pub container_root_path: String,
    /// Lower layers, base → top (joined with `:` for `lowerdir`).
    #[serde(rename = "Layers", default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    /// Upper/work parent; empty = read-only overlay.
    #[serde(
        rename = "ScratchPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub scratch_path: String,
}

/// An IP address of a [`NetworkAdapter`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address.
    #[serde(
        rename = "IPAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_address: String,
    /// Prefix length.
    #[serde(rename = "PrefixLength", default, skip_serializing_if = "is_default")]
    pub prefix_length: u8,
}

/// A route of a [`NetworkAdapter`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    /// Gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
    /// Destination CIDR.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub destination_prefix: String,
    /// Route priority.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metric: u16,
}

/// Network settings (`LCOWNetworkAdapter`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAdapter {
    /// HCN namespace id (matched lowercased).
    #[serde(
        rename = "NamespaceID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace_id: String,
    /// Adapter GUID.
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// MAC address.
    #[serde(
        rename = "MacAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    /// Comma list used as `search`.
    #[serde(
        rename = "DNSSuffix",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub dns_suffix: String,
    /// Comma list of name servers.
    #[serde(
        rename = "DNSServerList",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub dns_server_list: String,
    /// MTU reduction.
    #[serde(rename = "EncapOverhead", default, skip_serializing_if = "is_default")]
    pub encap_overhead: u16,
    /// Assigned through VPCI.
    #[serde(rename = "VPCIAssigned", default, skip_serializing_if = "is_default")]
    pub vpci_assigned: bool,
    /// Addresses; empty = DHCP.
    #[serde(rename = "IPConfigs", default, skip_serializing_if = "Vec::is_empty")]
    pub ip_configs: Vec<IpConfig>,
    /// Routes.
    #[serde(rename = "Routes", default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Low metric on every NIC but the first.
    #[serde(
        rename = "PolicyBasedRouting",
        default,
        skip_serializing_if = "is_default"
    )]
    pub policy_based_routing: bool,
    /// Use table 101 and a low metric.
    #[serde(
        rename = "EnableLowMetric",
        default,
        skip_serializing_if = "is_default"
    )]
    pub enable_low_metric: bool,
}

/// VPCIDevice settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VPCIDevice {
    /// The device's VMBus GUID.
    #[serde(
        rename = "VMBusGUID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub vmbus_guid: String,
}

/// ContainerConstraints settings; `Linux` is an OCI `LinuxResources` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConstraints {
    /// Always `{}`.
    #[serde(default = "empty_object")]
    pub windows: serde_json::Value,
    /// OCI `LinuxResources`.
    #[serde(default = "empty_object")]
    pub linux: serde_json::Value,
}

impl Default for ContainerConstraints {
    fn default() -> Self {
        Self {
            windows: empty_object(),
            linux: empty_object(),
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// SecurityPolicy settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityPolicy {
    /// Enforcer type (`rego`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub enforcer_type: String,
    /// Base64 policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encoded_security_policy: String,
    /// Base64 UVM reference info.
    #[serde(
        rename = "EncodedUVMReference",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub encoded_uvm_reference: String,
    /// Base64 UVM hash envelope reference.
    #[serde(
        rename = "EncodedUVMHashEnvelopeReference",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub encoded_uvm_hash_envelope_reference: String,
}

/// SecurityPolicyFragment settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityPolicyFragment {
    /// Base64 COSE_Sign1.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fragment: String,
    /// Media type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

/// The typed `Settings` of a modification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceSettings {
    /// MappedVirtualDisk.
    MappedVirtualDisk(MappedVirtualDisk),
    /// SCSIDevice.
    ScsiDevice(ScsiDevice),
    /// MappedDirectory.
    MappedDirectory(MappedDirectory),
    /// VPMemDevice.
    VPMemDevice(VPMemDevice),
    /// CombinedLayers.
    CombinedLayers(CombinedLayers),
    /// Network.
    Network(NetworkAdapter),
    /// VPCIDevice.
    VPCIDevice(VPCIDevice),
    /// ContainerConstraints.
    ContainerConstraints(ContainerConstraints),
    /// SecurityPolicy.
    SecurityPolicy(SecurityPolicy),
    /// SecurityPolicyFragment.
    SecurityPolicyFragment(SecurityPolicyFragment),
    /// Settings of a resource type without a typed shape (PodCgroupMemoryLimit, host-only or
    /// unknown types), kept as free JSON.
    Other(serde_json::Value),
}

impl ResourceSettings {
    /// The resource type these settings belong to, when typed.
    pub fn resource_type(&self) -> Option<ResourceType> {
        Some(match self {
            Self::MappedVirtualDisk(_) => ResourceType::MappedVirtualDisk,
            Self::ScsiDevice(_) => ResourceType::ScsiDevice,
            Self::MappedDirectory(_) => ResourceType::MappedDirectory,
            Self::VPMemDevice(_) => ResourceType::VpMemDevice,
            Self::CombinedLayers(_) => ResourceType::CombinedLayers,
            Self::Network(_) => ResourceType::Network,
            Self::VPCIDevice(_) => ResourceType::VpciDevice,
            Self::ContainerConstraints(_) => ResourceType::ContainerConstraints,
            Self::SecurityPolicy(_) => ResourceType::SecurityPolicy,
            Self::SecurityPolicyFragment(_) => ResourceType::SecurityPolicyFragment,
            Self::Other(_) => return None,
        })
    }

    /// Types `value` as the settings of `resource_type` (Go's decoding rules); settings of a
    /// type without a typed shape stay free JSON.
    pub fn from_value(
        resource_type: &ResourceType,
        value: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        use hcs_schema::json::from_value as v;
        Ok(match resource_type {
            ResourceType::MappedVirtualDisk => Self::MappedVirtualDisk(v(value)?),
            ResourceType::ScsiDevice => Self::ScsiDevice(v(value)?),
            ResourceType::MappedDirectory => Self::MappedDirectory(v(value)?),
            ResourceType::VpMemDevice => Self::VPMemDevice(v(value)?),
            ResourceType::CombinedLayers => Self::CombinedLayers(v(value)?),
            ResourceType::Network => Self::Network(v(value)?),
            ResourceType::VpciDevice => Self::VPCIDevice(v(value)?),
            ResourceType::ContainerConstraints => Self::ContainerConstraints(v(value)?),
            ResourceType::SecurityPolicy => Self::SecurityPolicy(v(value)?),
            ResourceType::SecurityPolicyFragment => Self::SecurityPolicyFragment(v(value)?),
            _ => Self::Other(value),
        })
    }

    /// Types the settings of a request decoded with raw settings. (An empty `RequestType`
    /// stays empty; the GCS reads it as `Add`.)
    pub fn typed(
        raw: GuestModificationRequest<serde_json::Value>,
    ) -> Result<ModifySettingRequest, serde_json::Error> {
        let settings = match raw.settings {
            None => None,
            Some(value) => Some(Self::from_value(&raw.resource_type, value).map_err(|e| {
                serde_json::Error::custom(format_args!(
                    "invalid {} settings: {e}",
                    raw.resource_type
                ))
            })?),
        };
        Ok(GuestModificationRequest {
            request_type: raw.request_type,
            resource_type: raw.resource_type,
            settings,
        })
    }
}

/// Decodes a modification request (a `GuestRequest`, or the `Request` of ModifySettings)
/// from JSON with Go's rules, its settings typed by its resource type.
pub fn modify_setting_request_from_value(
    value: serde_json::Value,
) -> Result<ModifySettingRequest, serde_json::Error> {
    ResourceSettings::typed(hcs_schema::json::from_value(value)?)
}

/// Settings name their resource type (`Other` settings name none: `""`).
impl GuestSettings for ResourceSettings {
    fn guest_resource_type(&self) -> ResourceType {
        self.resource_type().unwrap_or_default()
    }
}

impl Serialize for ResourceSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::MappedVirtualDisk(x) => x.serialize(s),
            Self::ScsiDevice(x) => x.serialize(s),
            Self::MappedDirectory(x) => x.serialize(s),
            Self::VPMemDevice(x) => x.serialize(s),
            Self::CombinedLayers(x) => x.serialize(s),
            Self::Network(x) => x.serialize(s),
            Self::VPCIDevice(x) => x.serialize(s),
            Self::ContainerConstraints(x) => x.serialize(s),
            Self::SecurityPolicy(x) => x.serialize(s),
            Self::SecurityPolicyFragment(x) => x.serialize(s),
            Self::Other(x) => x.serialize(s),
        }
    }
}

/// ModifySettings request (`0x10100a01`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModifySettingsRequest {
    /// Request base: the null id for UVM resources, a container id for constraints.
    #[serde(flatten)]
    pub base: RequestBase,
    /// The modification.
    #[serde(rename = "Request")]
    pub request: ModifySettingRequest,
}

/// Whether the reference guest decodes `Settings` for resource type `t`
/// (`UnmarshalContainerModifySettings`), so that missing or `null` settings fail to decode:
/// every type the Linux GCS takes but PodCgroupMemoryLimit, which carries none.
pub fn settings_required(t: &ResourceType) -> bool {
    linux_gcs_accepts(t) && *t != ResourceType::PodCgroupMemoryLimit
}

/// Decoded as the reference guest's `UnmarshalContainerModifySettings` does: a missing or
/// `null` `Request`, and missing or `null` `Settings` for a type whose settings it decodes
/// ([`settings_required`]), are decode errors (InvalidJSON), found before any routing.
impl<'de> Deserialize<'de> for ModifySettingsRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The request with raw settings, typed once its resource type is known.
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Own {
            #[serde(rename = "Request")]
            request: Option<GuestModificationRequest<serde_json::Value>>,
        }
        let (base, own): (RequestBase, Own) = crate::json::embedded(d)?;
        let Some(raw) = own.request else {
            return Err(D::Error::custom("ModifySettings has no Request"));
        };
        if raw.settings.is_none() && settings_required(&raw.resource_type) {
            return Err(D::Error::custom(format_args!(
                "ModifySettings {} has no Settings",
                raw.resource_type
            )));
        }
        let request = ResourceSettings::typed(raw).map_err(D::Error::custom)?;
        Ok(Self { base, request })
    }
}
