//! v1 container creation document (`schema1.ContainerConfig`) and its parts.

use serde::{Deserialize, Serialize};

use crate::go::{is_empty, nil_if_empty, null_default, GoEmpty};

/// The only `SystemType` HCS accepts in a v1 [`ContainerConfig`].
pub const SYSTEM_TYPE_CONTAINER: &str = "Container";

/// The v1 document passed to `HcsCreateComputeSystem`.
///
/// Always present (no `omitempty`): `SystemType`, `Name`, `Layers` (`null` when empty, as Go
/// writes a nil slice) and `HvPartition`. Every other key is omitted when zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// Must be [`SYSTEM_TYPE_CONTAINER`].
    #[serde(rename = "SystemType", deserialize_with = "null_default")]
    pub system_type: String,
    /// Name of the container (the caller's container id).
    #[serde(rename = "Name", deserialize_with = "null_default")]
    pub name: String,
    /// Management platform that created the container.
    #[serde(
        rename = "Owner",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub owner: String,
    /// Scratch volume, `\\?\Volume{GUID}` (Windows Server containers).
    #[serde(
        rename = "VolumePath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub volume_path: String,
    /// Startup optimisation hint.
    #[serde(
        rename = "IgnoreFlushesDuringBoot",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub ignore_flushes_during_boot: bool,
    /// Folder holding the layer folders (`%root%\windowsfilter\<id>`).
    #[serde(
        rename = "LayerFolderPath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub layer_folder_path: String,
    /// Storage layers, base last as the reference orders them. Always present; `null` when
    /// empty.
    #[serde(
        rename = "Layers",
        serialize_with = "nil_if_empty",
        deserialize_with = "null_default"
    )]
    pub layers: Vec<Layer>,
    /// Credentials information.
    #[serde(
        rename = "Credentials",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub credentials: String,
    /// Number of processors.
    #[serde(
        rename = "ProcessorCount",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub processor_count: u32,
    /// CPU shares, 1–10000; 0 means default.
    #[serde(
        rename = "ProcessorWeight",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub processor_weight: u64,
    /// CPU cap as percent × 100, 1–10000; 0 means no limit.
    #[serde(
        rename = "ProcessorMaximum",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub processor_maximum: i64,
    /// Maximum storage IOPS.
    #[serde(
        rename = "StorageIOPSMaximum",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub storage_iops_maximum: u64,
    /// Maximum storage bandwidth, bytes per second.
    #[serde(
        rename = "StorageBandwidthMaximum",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub storage_bandwidth_maximum: u64,
    /// Size in bytes the system drive is expanded to if smaller.
    #[serde(
        rename = "StorageSandboxSize",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub storage_sandbox_size: u64,
    /// Memory limit in MB.
    #[serde(
        rename = "MemoryMaximumInMB",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub memory_maximum_in_mb: i64,
    /// Host name.
    #[serde(
        rename = "HostName",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub host_name: String,
    /// Mapped directories (volumes and bind mounts).
    #[serde(
        rename = "MappedDirectories",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub mapped_directories: Vec<MappedDir>,
    /// Mapped named pipes.
    #[serde(
        rename = "MappedPipes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub mapped_pipes: Vec<MappedPipe>,
    /// True for a Hyper-V isolated container. Always present.
    #[serde(rename = "HvPartition", deserialize_with = "null_default")]
    pub hv_partition: bool,
    /// Container whose network stack is shared.
    #[serde(
        rename = "NetworkSharedContainerName",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub network_shared_container_name: String,
    /// HNS endpoint ids to attach.
    #[serde(
        rename = "EndpointList",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub endpoint_list: Vec<String>,
    /// Hyper-V container settings.
    #[serde(rename = "HvRuntime", skip_serializing_if = "is_empty")]
    pub hv_runtime: Option<HvRuntime>,
    /// True when the container is for servicing.
    #[serde(
        rename = "Servicing",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub servicing: bool,
    /// Allow unqualified DNS name resolution.
    #[serde(
        rename = "AllowUnqualifiedDNSQuery",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub allow_unqualified_dns_query: bool,
    /// Comma-separated DNS suffixes.
    #[serde(
        rename = "DNSSearchList",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub dns_search_list: String,
    /// `"Linux"` for LCOW; omitted otherwise.
    #[serde(
        rename = "ContainerType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub container_type: String,
    /// Terminate the container when its last handle closes.
    #[serde(
        rename = "TerminateOnLastHandleClosed",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub terminate_on_last_handle_closed: bool,
    /// Virtual disks to mount at start.
    #[serde(
        rename = "MappedVirtualDisks",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub mapped_virtual_disks: Vec<MappedVirtualDisk>,
    /// Devices to assign (RS5+).
    #[serde(
        rename = "AssignedDevices",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub assigned_devices: Vec<AssignedDevice>,
}

/// A v1 storage layer. Both keys always present; note the key is `ID`, not `Id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer {
    /// Layer GUID.
    #[serde(rename = "ID", deserialize_with = "null_default")]
    pub id: String,
    /// Layer folder.
    #[serde(rename = "Path", deserialize_with = "null_default")]
    pub path: String,
}

/// A v1 mapped directory. All keys but `LinuxMetadata` are always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MappedDir {
    /// Host directory.
    #[serde(rename = "HostPath", deserialize_with = "null_default")]
    pub host_path: String,
    /// Path in the container.
    #[serde(rename = "ContainerPath", deserialize_with = "null_default")]
    pub container_path: String,
    /// Read-only mapping.
    #[serde(rename = "ReadOnly", deserialize_with = "null_default")]
    pub read_only: bool,
    /// Bandwidth limit.
    #[serde(rename = "BandwidthMaximum", deserialize_with = "null_default")]
    pub bandwidth_maximum: u64,
    /// IOPS limit.
    #[serde(rename = "IOPSMaximum", deserialize_with = "null_default")]
    pub iops_maximum: u64,
    /// Create in the utility VM rather than the container.
    #[serde(rename = "CreateInUtilityVM", deserialize_with = "null_default")]
    pub create_in_utility_vm: bool,
    /// Linux metadata support (RS4+).
    #[serde(
        rename = "LinuxMetadata",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub linux_metadata: bool,
}

/// A v1 mapped named pipe. Both keys always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MappedPipe {
    /// Host pipe path.
    #[serde(rename = "HostPath", deserialize_with = "null_default")]
    pub host_path: String,
    /// Pipe name in the container.
    #[serde(rename = "ContainerPipeName", deserialize_with = "null_default")]
    pub container_pipe_name: String,
}

/// Hyper-V container runtime settings. All keys `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HvRuntime {
    /// Utility VM image folder (`%root%\<base layer>\UtilityVM`).
    #[serde(
        rename = "ImagePath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub image_path: String,
    /// Do not use a template.
    #[serde(
        rename = "SkipTemplate",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub skip_template: bool,
    /// initrd file under `ImagePath` for a Linux utility VM.
    #[serde(
        rename = "LinuxInitrdFile",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub linux_initrd_file: String,
    /// Kernel file under `ImagePath` for a Linux utility VM.
    #[serde(
        rename = "LinuxKernelFile",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub linux_kernel_file: String,
    /// Extra kernel command line for a Linux utility VM.
    #[serde(
        rename = "LinuxBootParameters",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub linux_boot_parameters: String,
    /// `"Vhd"` to boot a Linux utility VM from a VHD.
    #[serde(
        rename = "BootSource",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub boot_source: String,
    /// The boot VHD is writable.
    #[serde(
        rename = "WritableBootSource",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub writable_boot_source: bool,
}

impl GoEmpty for HvRuntime {
    fn is_go_empty(&self) -> bool {
        false
    }
}

/// A v1 mapped virtual disk. `ContainerPath` is always present; the rest is `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MappedVirtualDisk {
    /// VHD on the host.
    #[serde(
        rename = "HostPath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub host_path: String,
    /// Mount point in the container.
    #[serde(rename = "ContainerPath", deserialize_with = "null_default")]
    pub container_path: String,
    /// Attach to the utility VM instead of the container.
    #[serde(
        rename = "CreateInUtilityVM",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub create_in_utility_vm: bool,
    /// Read-only attach.
    #[serde(
        rename = "ReadOnly",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub read_only: bool,
    /// `""` (unspecified), `Disabled`, `Enabled`, `Private` or `PrivateAllowSharing`.
    #[serde(
        rename = "Cache",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub cache: String,
    /// Attach without mounting.
    #[serde(
        rename = "AttachOnly",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub attach_only: bool,
}

/// A device assigned to a container (RS5+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssignedDevice {
    /// Interface class GUID of the device interfaces to assign.
    #[serde(
        rename = "InterfaceClassGuid",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub interface_class_guid: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn default_config_is_what_go_emits() {
        assert_eq!(
            json::to_string(&ContainerConfig::default()).unwrap(),
            r#"{"SystemType":"","Name":"","Layers":null,"HvPartition":false}"#
        );
    }

    #[test]
    fn wcow_config_round_trips_byte_exact() {
        let doc = concat!(
            r#"{"SystemType":"Container","Name":"c1","Owner":"containerd","#,
            r#""VolumePath":"\\\\?\\Volume{3f1c2a8e-0000-0000-0000-100000000000}","#,
            r#""IgnoreFlushesDuringBoot":true,"LayerFolderPath":"C:\\wf\\c1","#,
            r#""Layers":[{"ID":"8a8f6c4e-1b2c-5d3e-9f40-112233445566","Path":"C:\\wf\\l1"}],"#,
            r#""ProcessorCount":2,"ProcessorWeight":500,"ProcessorMaximum":5000,"#,
            r#""MemoryMaximumInMB":1024,"HostName":"h","#,
            r#""MappedDirectories":[{"HostPath":"C:\\data","ContainerPath":"C:\\data","ReadOnly":true,"BandwidthMaximum":0,"IOPSMaximum":0,"CreateInUtilityVM":false}],"#,
            r#""MappedPipes":[{"HostPath":"\\\\.\\pipe\\p","ContainerPipeName":"p"}],"#,
            r#""HvPartition":true,"EndpointList":["e1"],"#,
            r#""HvRuntime":{"ImagePath":"C:\\wf\\base\\UtilityVM"},"#,
            r#""AllowUnqualifiedDNSQuery":true,"DNSSearchList":"a.com,b.com","#,
            r#""TerminateOnLastHandleClosed":true,"#,
            r#""MappedVirtualDisks":[{"HostPath":"C:\\d.vhdx","ContainerPath":"C:\\d","ReadOnly":true,"Cache":"Disabled"}],"#,
            r#""AssignedDevices":[{"InterfaceClassGuid":"5b45201d-f2f2-4f3b-85bb-30ff1f953599"}]}"#
        );
        let cfg: ContainerConfig = json::from_str(doc).unwrap();
        assert_eq!(cfg.system_type, SYSTEM_TYPE_CONTAINER);
        assert_eq!(cfg.layers[0].id, "8a8f6c4e-1b2c-5d3e-9f40-112233445566");
        assert!(cfg.mapped_directories[0].read_only);
        assert_eq!(
            cfg.hv_runtime.as_ref().unwrap().image_path,
            r"C:\wf\base\UtilityVM"
        );
        assert_eq!(json::to_string(&cfg).unwrap(), doc);
    }

    #[test]
    fn lcow_config_keys() {
        let cfg = ContainerConfig {
            system_type: SYSTEM_TYPE_CONTAINER.into(),
            name: "l".into(),
            container_type: "Linux".into(),
            hv_partition: true,
            hv_runtime: Some(HvRuntime {
                image_path: r"C:\lcow".into(),
                linux_initrd_file: "initrd.img".into(),
                linux_kernel_file: "kernel".into(),
                boot_source: "Vhd".into(),
                writable_boot_source: true,
                ..Default::default()
            }),
            mapped_virtual_disks: vec![MappedVirtualDisk {
                container_path: "/tmp/d".into(),
                create_in_utility_vm: true,
                attach_only: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&cfg).unwrap(),
            concat!(
                r#"{"SystemType":"Container","Name":"l","Layers":null,"HvPartition":true,"#,
                r#""HvRuntime":{"ImagePath":"C:\\lcow","LinuxInitrdFile":"initrd.img","#,
                r#""LinuxKernelFile":"kernel","BootSource":"Vhd","WritableBootSource":true},"#,
                r#""ContainerType":"Linux","#,
                r#""MappedVirtualDisks":[{"ContainerPath":"/tmp/d","CreateInUtilityVM":true,"AttachOnly":true}]}"#
            )
        );
    }

    #[test]
    fn parts_default_to_go_output() {
        assert_eq!(
            json::to_string(&Layer::default()).unwrap(),
            r#"{"ID":"","Path":""}"#
        );
        assert_eq!(
            json::to_string(&MappedDir::default()).unwrap(),
            r#"{"HostPath":"","ContainerPath":"","ReadOnly":false,"BandwidthMaximum":0,"IOPSMaximum":0,"CreateInUtilityVM":false}"#
        );
        assert_eq!(
            json::to_string(&MappedPipe::default()).unwrap(),
            r#"{"HostPath":"","ContainerPipeName":""}"#
        );
        assert_eq!(json::to_string(&HvRuntime::default()).unwrap(), "{}");
        assert_eq!(
            json::to_string(&MappedVirtualDisk::default()).unwrap(),
            r#"{"ContainerPath":""}"#
        );
        assert_eq!(json::to_string(&AssignedDevice::default()).unwrap(), "{}");
    }

    #[test]
    fn decode_tolerates_null_unknown_keys_and_case() {
        let cfg: ContainerConfig = json::from_str(
            r#"{"systemtype":"Container","Layers":null,"layers":[{"id":"x","path":"p"}],"Future":1}"#,
        )
        .unwrap();
        assert_eq!(cfg.system_type, "Container");
        assert_eq!(
            cfg.layers,
            vec![Layer {
                id: "x".into(),
                path: "p".into()
            }]
        );
        // Plain serde_json (exact keys) still reads null Layers as empty.
        let cfg: ContainerConfig = serde_json::from_str(r#"{"Layers":null}"#).unwrap();
        assert!(cfg.layers.is_empty());
    }
}
