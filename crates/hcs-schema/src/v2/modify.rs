//! Modification of a running compute system: `ModifySettingRequest` (`HcsModifyComputeSystem`),
//! the guest request it may carry, the service-level `ModificationRequest`, and the
//! `ResourcePath` values (spec §1.9).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go::{is_empty, null_default};
use crate::macros::{omitempty_struct, string_enum};

string_enum! {
    /// Request type of a modification (`guestrequest.RequestType`).
    pub enum RequestType {
        /// Add the resource.
        Add = "Add",
        /// Remove the resource.
        Remove = "Remove",
        /// Pre-add (networking: create the adapter before the guest configures it).
        PreAdd = "PreAdd",
        /// Update the resource.
        Update = "Update",
    }
}

/// `HcsModifyComputeSystem` document: a host-side change at `ResourcePath` with its
/// `Settings`, and/or a `GuestRequest` HCS forwards to the guest. Every key is `omitempty`.
///
/// `S` and `G` are the settings and guest-request types. They default to raw JSON for
/// decoding; encoders should use the concrete types (e.g.
/// `ModifySettingRequest<Attachment, GuestModificationRequest<…>>`) so that nested keys come
/// out in declaration order, as Go writes them (a `serde_json::Value` object sorts its keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    bound(deserialize = "S: Deserialize<'de>, G: Deserialize<'de>")
)]
pub struct ModifySettingRequest<S = Value, G = Value> {
    /// Resource to change ([`resource_paths`]).
    #[serde(
        rename = "ResourcePath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub resource_path: String,
    /// Add, Remove, PreAdd or Update.
    #[serde(
        rename = "RequestType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub request_type: RequestType,
    /// Host-side settings (an [`Attachment`](super::Attachment),
    /// [`Plan9Share`](super::Plan9Share), [`NetworkAdapter`](super::NetworkAdapter)…).
    #[serde(rename = "Settings", skip_serializing_if = "Option::is_none")]
    pub settings: Option<S>,
    /// Request forwarded to the guest (usually a [`GuestModificationRequest`]).
    #[serde(rename = "GuestRequest", skip_serializing_if = "Option::is_none")]
    pub guest_request: Option<G>,
}

impl<S, G> Default for ModifySettingRequest<S, G> {
    fn default() -> Self {
        Self {
            resource_path: String::new(),
            request_type: RequestType::default(),
            settings: None,
            guest_request: None,
        }
    }
}

impl<S> ModifySettingRequest<S> {
    /// A host-side request (no guest request).
    pub fn host(request_type: RequestType, resource_path: impl Into<String>, settings: S) -> Self {
        Self {
            resource_path: resource_path.into(),
            request_type,
            settings: Some(settings),
            guest_request: None,
        }
    }
}

string_enum! {
    /// Resource type of a guest modification (`guestresource.ResourceType*`).
    pub enum GuestResourceType {
        /// A Plan9 (LCOW) or mapped (WCOW) directory.
        MappedDirectory = "MappedDirectory",
        /// A SCSI device itself (remove only).
        ScsiDevice = "SCSIDevice",
        /// A SCSI disk mounted in the guest.
        MappedVirtualDisk = "MappedVirtualDisk",
        /// A scratch disk formatted and mounted for a confidential WCOW container (host only).
        MappedVirtualDiskForContainerScratch = "MappedVirtualDiskForContainerScratch",
        /// Block CIM layers (confidential WCOW, host only).
        WcowBlockCims = "WCOWBlockCims",
        /// A network adapter.
        Network = "Network",
        /// A network namespace (host only).
        NetworkNamespace = "NetworkNamespace",
        /// Combined layers (the container rootfs).
        CombinedLayers = "CombinedLayers",
        /// Combined layers of a confidential WCOW container (host only).
        CwcowCombinedLayers = "CWCOWCombinedLayers",
        /// A VPMem device.
        VpMemDevice = "VPMemDevice",
        /// A vPCI device.
        VpciDevice = "VPCIDevice",
        /// Container resource constraints.
        ContainerConstraints = "ContainerConstraints",
        /// hvsocket settings (host only).
        HvSocket = "HvSocket",
        /// The security policy (confidential).
        SecurityPolicy = "SecurityPolicy",
        /// A security policy fragment (confidential).
        SecurityPolicyFragment = "SecurityPolicyFragment",
        /// Recompute the pod cgroup memory limit.
        PodCgroupMemoryLimit = "PodCgroupMemoryLimit",
    }
}

/// A modification passed to the guest (`guestrequest.ModificationRequest`): the
/// `GuestRequest` of a [`ModifySettingRequest`], or the `Request` of a GCS ModifySettings
/// message. All three keys are `omitempty`; `S` is the settings type (raw JSON by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(deserialize = "S: Deserialize<'de>"))]
pub struct GuestModificationRequest<S = Value> {
    /// Add, Remove, PreAdd or Update (`""` is read as Add by the Linux GCS).
    #[serde(
        rename = "RequestType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub request_type: RequestType,
    /// Resource kind.
    #[serde(
        rename = "ResourceType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub resource_type: GuestResourceType,
    /// Resource settings.
    #[serde(rename = "Settings", skip_serializing_if = "Option::is_none")]
    pub settings: Option<S>,
}

/// Settings that know the resource type they belong to, so that a
/// [`GuestModificationRequest`] can be built from them alone.
pub trait GuestSettings {
    /// The `ResourceType` these settings go with.
    fn guest_resource_type(&self) -> GuestResourceType;
}

impl<S: GuestSettings> GuestModificationRequest<S> {
    /// A request of `request_type` for `settings`, with the resource type they name.
    pub fn new(request_type: RequestType, settings: S) -> Self {
        Self {
            request_type,
            resource_type: settings.guest_resource_type(),
            settings: Some(settings),
        }
    }
}

impl<S> Default for GuestModificationRequest<S> {
    fn default() -> Self {
        Self {
            request_type: RequestType::default(),
            resource_type: GuestResourceType::default(),
            settings: None,
        }
    }
}

omitempty_struct! {
    /// A service-level modification (`HcsModifyServiceSettings`).
    pub struct ModificationRequest {
        /// Property to modify (`CpuGroup`, `ContainerCredentialGuard`…).
        "PropertyType" property_type: String,
        /// Its settings.
        "Settings" settings: Option<Value>,
    }
}

omitempty_struct! {
    /// Service properties returned by `HcsGetServiceProperties`, one raw document per
    /// requested property.
    pub struct ServiceProperties {
        /// Raw property documents.
        "Properties" properties: Vec<Value>,
    }
}

/// `ResourcePath` values of [`ModifySettingRequest`] (reference `internal/hcs/resourcepaths`).
pub mod resource_paths {
    /// Generic devices of a silo.
    pub const SILO_DEVICE: &str = "Container/Devices/Generic";
    /// Mapped directories of a silo.
    pub const SILO_MAPPED_DIRECTORY: &str = "Container/MappedDirectories";
    /// Mapped pipes of a silo.
    pub const SILO_MAPPED_PIPE: &str = "Container/MappedPipes";
    /// Memory size of a silo.
    pub const SILO_MEMORY: &str = "Container/Memory/SizeInMB";
    /// Registry flush state of a silo.
    pub const SILO_REGISTRY_FLUSH_STATE: &str = "Container/RegistryFlushState";
    /// Processor settings of a silo.
    pub const SILO_PROCESSOR: &str = "Container/Processor";

    /// GPU of a VM.
    pub const GPU: &str = "VirtualMachine/ComputeTopology/Gpu";
    /// Memory size of a VM.
    pub const MEMORY: &str = "VirtualMachine/ComputeTopology/Memory/SizeInMB";
    /// CPU group of a VM.
    pub const CPU_GROUP: &str = "VirtualMachine/ComputeTopology/Processor/CpuGroup";
    /// Idled processors of a VM.
    pub const IDLED_PROCESSORS: &str = "VirtualMachine/ComputeTopology/Processor/IdledProcessors";
    /// CPU frequency power cap of a VM.
    pub const CPU_FREQUENCY_POWER_CAP: &str =
        "VirtualMachine/ComputeTopology/Processor/CpuFrequencyPowerCap";
    /// Processor limits of a VM.
    pub const CPU_LIMITS: &str = "VirtualMachine/ComputeTopology/Processor/Limits";
    /// Licensing device of a VM.
    pub const LICENSING: &str = "VirtualMachine/Devices/Licensing";
    /// Plan9 shares of a VM.
    pub const PLAN9_SHARES: &str = "VirtualMachine/Devices/Plan9/Shares";
    /// Shared memory regions of a VM.
    pub const SHARED_MEMORY_REGIONS: &str = "VirtualMachine/Devices/SharedMemory/Regions";
    /// Virtual SMB shares of a VM.
    pub const VSMB_SHARES: &str = "VirtualMachine/Devices/VirtualSmb/Shares";
    /// Live migration transport socket (an operation resource URI).
    pub const LIVE_MIGRATION_SOCKET: &str = "hcs:/VirtualMachine/LiveMigrationSocket";

    /// COM port `n`.
    pub fn com_port(n: u32) -> String {
        format!("VirtualMachine/Devices/ComPorts/{n}")
    }

    /// Flexible IoV device `id`.
    pub fn flexible_iov(id: &str) -> String {
        format!("VirtualMachine/Devices/FlexibleIov/{id}")
    }

    /// Mapped pipe `name` of a VM.
    pub fn mapped_pipe(name: &str) -> String {
        format!("VirtualMachine/Devices/MappedPipes/{name}")
    }

    /// Network adapter `id`.
    pub fn network_adapter(id: &str) -> String {
        format!("VirtualMachine/Devices/NetworkAdapters/{id}")
    }

    /// Attachment `lun` of SCSI controller `controller` (the controller's name, e.g. "0").
    pub fn scsi_attachment(controller: &str, lun: u32) -> String {
        format!("VirtualMachine/Devices/Scsi/{controller}/Attachments/{lun}")
    }

    /// Virtual PCI device `id`.
    pub fn virtual_pci(id: &str) -> String {
        format!("VirtualMachine/Devices/VirtualPci/{id}")
    }

    /// VPMem device `device`.
    pub fn vpmem_device(device: u32) -> String {
        format!("VirtualMachine/Devices/VirtualPMem/Devices/{device}")
    }

    /// Mapping `mapping` of multi-mapping VPMem device `device`.
    pub fn vpmem_mapping(device: u32, mapping: u64) -> String {
        format!("VirtualMachine/Devices/VirtualPMem/Devices/{device}/Mappings/{mapping}")
    }

    /// hvsocket service table entry `service_id`.
    pub fn hv_socket_service(service_id: &str) -> String {
        format!("VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/{service_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use crate::v2::{
        Attachment, AttachmentType, CombinedLayers, Layer, NetworkAdapter, Plan9Share,
    };

    #[test]
    fn scsi_hot_add_document() {
        let req = ModifySettingRequest::host(
            RequestType::Add,
            resource_paths::scsi_attachment("0", 3),
            Attachment {
                attachment_type: AttachmentType::VirtualDisk,
                path: r"C:\c\sandbox.vhdx".into(),
                ..Default::default()
            },
        );
        let text = json::to_string(&req).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/0/Attachments/3","RequestType":"Add","#,
                r#""Settings":{"Type":"VirtualDisk","Path":"C:\\c\\sandbox.vhdx"}}"#
            )
        );
        // Decoding as raw JSON, then as the typed request, gives back the same document.
        let raw: ModifySettingRequest = json::from_str(&text).unwrap();
        assert_eq!(raw.request_type, RequestType::Add);
        let typed: ModifySettingRequest<Attachment> = json::from_str(&text).unwrap();
        assert_eq!(typed, req);
    }

    #[test]
    fn lcow_scsi_add_with_guest_request() {
        let guest = GuestModificationRequest {
            request_type: RequestType::Add,
            resource_type: GuestResourceType::MappedVirtualDisk,
            settings: Some(
                serde_json::json!({"MountPath":"/run/mounts/scsi/m1","Lun":1,"ReadOnly":true}),
            ),
        };
        let req = ModifySettingRequest {
            resource_path: resource_paths::scsi_attachment("0", 1),
            request_type: RequestType::Add,
            settings: Some(Attachment {
                path: "x".into(),
                ..Default::default()
            }),
            guest_request: Some(guest.clone()),
        };
        let text = json::to_string(&req).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/0/Attachments/1","RequestType":"Add","Settings":{"Path":"x"},"#,
                r#""GuestRequest":{"RequestType":"Add","ResourceType":"MappedVirtualDisk","#,
                r#""Settings":{"Lun":1,"MountPath":"/run/mounts/scsi/m1","ReadOnly":true}}}"#
            )
        );
        let back: ModifySettingRequest = json::from_str(&text).unwrap();
        let guest_back: GuestModificationRequest =
            json::from_value(back.guest_request.unwrap()).unwrap();
        assert_eq!(guest_back, guest);
    }

    #[test]
    fn guest_request_envelopes() {
        let combined = GuestModificationRequest {
            request_type: RequestType::Add,
            resource_type: GuestResourceType::CombinedLayers,
            settings: Some(CombinedLayers {
                layers: vec![Layer {
                    path: "/run/layers/p0".into(),
                    ..Default::default()
                }],
                container_root_path: "/run/gcs/c/x/rootfs".into(),
                ..Default::default()
            }),
        };
        assert_eq!(
            json::to_string(&combined).unwrap(),
            concat!(
                r#"{"RequestType":"Add","ResourceType":"CombinedLayers","#,
                r#""Settings":{"Layers":[{"Path":"/run/layers/p0"}],"ContainerRootPath":"/run/gcs/c/x/rootfs"}}"#
            )
        );
        // All three keys are omitempty; "" RequestType is omitted (the GCS reads it as Add).
        assert_eq!(
            json::to_string(&GuestModificationRequest::<Value>::default()).unwrap(),
            "{}"
        );
        let scsi_remove: GuestModificationRequest = json::from_str(
            r#"{"RequestType":"Remove","ResourceType":"SCSIDevice","Settings":{"Controller":1}}"#,
        )
        .unwrap();
        assert_eq!(scsi_remove.resource_type, GuestResourceType::ScsiDevice);
    }

    #[test]
    fn network_and_plan9_requests() {
        let add = ModifySettingRequest::host(
            RequestType::Add,
            resource_paths::network_adapter("6d2a8c39-0000-0000-0000-000000000001"),
            NetworkAdapter {
                endpoint_id: "6d2a8c39-0000-0000-0000-000000000001".into(),
                mac_address: "00-15-5D-52-C0-00".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            json::to_string(&add).unwrap(),
            concat!(
                r#"{"ResourcePath":"VirtualMachine/Devices/NetworkAdapters/6d2a8c39-0000-0000-0000-000000000001","#,
                r#""RequestType":"Add","Settings":{"EndpointId":"6d2a8c39-0000-0000-0000-000000000001","MacAddress":"00-15-5D-52-C0-00"}}"#
            )
        );
        let p9 = ModifySettingRequest::host(
            RequestType::Remove,
            resource_paths::PLAN9_SHARES,
            Plan9Share {
                name: "2".into(),
                access_name: "2".into(),
                port: 564,
                ..Default::default()
            },
        );
        assert_eq!(
            json::to_string(&p9).unwrap(),
            r#"{"ResourcePath":"VirtualMachine/Devices/Plan9/Shares","RequestType":"Remove","Settings":{"Name":"2","AccessName":"2","Port":564}}"#
        );
    }

    #[test]
    fn resource_paths_match_the_reference() {
        assert_eq!(
            resource_paths::com_port(1),
            "VirtualMachine/Devices/ComPorts/1"
        );
        assert_eq!(
            resource_paths::vpmem_device(2),
            "VirtualMachine/Devices/VirtualPMem/Devices/2"
        );
        assert_eq!(
            resource_paths::vpmem_mapping(2, 4096),
            "VirtualMachine/Devices/VirtualPMem/Devices/2/Mappings/4096"
        );
        assert_eq!(
            resource_paths::hv_socket_service("0000006d-facb-11e6-bd58-64006a7986d3"),
            "VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/0000006d-facb-11e6-bd58-64006a7986d3"
        );
        assert_eq!(
            resource_paths::virtual_pci("gpu0"),
            "VirtualMachine/Devices/VirtualPci/gpu0"
        );
        assert_eq!(
            resource_paths::MEMORY,
            "VirtualMachine/ComputeTopology/Memory/SizeInMB"
        );
        assert_eq!(
            resource_paths::SILO_MAPPED_DIRECTORY,
            "Container/MappedDirectories"
        );
    }
}
