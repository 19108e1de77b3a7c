//! v1 queries and the properties / statistics HCS returns for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::container::MappedVirtualDisk;
use crate::go::{is_empty, null_default, GoEmpty, GoTime, Guid};
use crate::macros::{omitempty_struct, string_enum};
use crate::version::SchemaVersion;

omitempty_struct! {
    /// Filter of `HcsEnumerateComputeSystems` (v1). Note the key `Ids`.
    pub struct ComputeSystemQuery {
        /// Compute system ids.
        "Ids" ids: Vec<String>,
        /// System types.
        "Types" types: Vec<String>,
        /// Names.
        "Names" names: Vec<String>,
        /// Owners.
        "Owners" owners: Vec<String>,
    }
}

string_enum! {
    /// A v1 property type.
    pub enum PropertyType {
        /// Runtime statistics (v1 and v2).
        Statistics = "Statistics",
        /// Process list (v1 and v2).
        ProcessList = "ProcessList",
        /// Mapped virtual disks (v1 only; v2 refuses it).
        MappedVirtualDisk = "MappedVirtualDisk",
        /// Guest connection info (v1 and v2; nil before RS5).
        GuestConnection = "GuestConnection",
    }
}

omitempty_struct! {
    /// A v1 property query, e.g. `{"PropertyTypes":["Statistics"]}`.
    pub struct PropertyQuery {
        /// The properties asked for.
        "PropertyTypes" property_types: Vec<PropertyType>,
    }
}

/// Properties of a v1 compute system and its processes.
///
/// Always present: `Id`, `State`, `Name`, `SystemType`, `Owner`, `RuntimeId` (a `guid.GUID`,
/// nil GUID when unset), `Statistics` and `GuestConnectionInfo` (structs held by value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerProperties {
    /// Compute system id.
    #[serde(rename = "Id", deserialize_with = "null_default")]
    pub id: String,
    /// State (`Created`, `Running`, …).
    #[serde(rename = "State", deserialize_with = "null_default")]
    pub state: String,
    /// Name.
    #[serde(rename = "Name", deserialize_with = "null_default")]
    pub name: String,
    /// System type (`Container`, `VirtualMachine`).
    #[serde(rename = "SystemType", deserialize_with = "null_default")]
    pub system_type: String,
    /// Runtime OS type (`Windows`, `Linux`).
    #[serde(
        rename = "RuntimeOsType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub runtime_os_type: String,
    /// Owner.
    #[serde(rename = "Owner", deserialize_with = "null_default")]
    pub owner: String,
    /// Silo GUID.
    #[serde(
        rename = "SiloGuid",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub silo_guid: String,
    /// Runtime (utility VM) id; always present.
    #[serde(rename = "RuntimeId")]
    pub runtime_id: Guid,
    /// Whether this is a runtime template.
    #[serde(
        rename = "IsRuntimeTemplate",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub is_runtime_template: bool,
    /// Runtime image path.
    #[serde(
        rename = "RuntimeImagePath",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub runtime_image_path: String,
    /// Whether the system has stopped.
    #[serde(
        rename = "Stopped",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub stopped: bool,
    /// How it exited.
    #[serde(
        rename = "ExitType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub exit_type: String,
    /// Legacy; always false.
    #[serde(
        rename = "AreUpdatesPending",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub are_updates_pending: bool,
    /// Object manager root.
    #[serde(
        rename = "ObRoot",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub ob_root: String,
    /// Statistics; always present.
    #[serde(rename = "Statistics", deserialize_with = "null_default")]
    pub statistics: Statistics,
    /// Processes.
    #[serde(
        rename = "ProcessList",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub process_list: Vec<ProcessListItem>,
    /// Mapped virtual disks by controller number (Go `map[int]`).
    #[serde(
        rename = "MappedVirtualDiskControllers",
        skip_serializing_if = "is_empty",
        serialize_with = "crate::go::int_keyed_map",
        deserialize_with = "null_default"
    )]
    pub mapped_virtual_disk_controllers: BTreeMap<i64, MappedVirtualDiskController>,
    /// Guest connection info; always present.
    #[serde(rename = "GuestConnectionInfo", deserialize_with = "null_default")]
    pub guest_connection_info: GuestConnectionInfo,
}

/// v1 memory statistics. The Go fields are `UsageCommitBytes`…, the keys carry a `Memory`
/// prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Commit charge.
    #[serde(
        rename = "MemoryUsageCommitBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub usage_commit_bytes: u64,
    /// Peak commit charge.
    #[serde(
        rename = "MemoryUsageCommitPeakBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub usage_commit_peak_bytes: u64,
    /// Private working set.
    #[serde(
        rename = "MemoryUsagePrivateWorkingSetBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub usage_private_working_set_bytes: u64,
}

omitempty_struct! {
    /// v1 processor statistics, in 100 ns units.
    #[derive(Eq)]
    pub struct ProcessorStats {
        /// Total run time.
        "TotalRuntime100ns" total_runtime_100ns: u64,
        /// User-mode run time.
        "RuntimeUser100ns" runtime_user_100ns: u64,
        /// Kernel-mode run time.
        "RuntimeKernel100ns" runtime_kernel_100ns: u64,
    }
}

omitempty_struct! {
    /// v1 storage statistics.
    #[derive(Eq)]
    pub struct StorageStats {
        /// Read operations.
        "ReadCountNormalized" read_count_normalized: u64,
        /// Bytes read.
        "ReadSizeBytes" read_size_bytes: u64,
        /// Write operations.
        "WriteCountNormalized" write_count_normalized: u64,
        /// Bytes written.
        "WriteSizeBytes" write_size_bytes: u64,
    }
}

omitempty_struct! {
    /// v1 per-endpoint network statistics.
    #[derive(Eq)]
    pub struct NetworkStats {
        /// Bytes received.
        "BytesReceived" bytes_received: u64,
        /// Bytes sent.
        "BytesSent" bytes_sent: u64,
        /// Packets received.
        "PacketsReceived" packets_received: u64,
        /// Packets sent.
        "PacketsSent" packets_sent: u64,
        /// Incoming packets dropped.
        "DroppedPacketsIncoming" dropped_packets_incoming: u64,
        /// Outgoing packets dropped.
        "DroppedPacketsOutgoing" dropped_packets_outgoing: u64,
        /// HNS endpoint id.
        "EndpointId" endpoint_id: String,
        /// Instance id.
        "InstanceId" instance_id: String,
    }
}

/// v1 statistics. `Timestamp`, `ContainerStartTime` (`time.Time`) and `Memory`, `Processor`,
/// `Storage` (structs by value) are always present even though tagged `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Statistics {
    /// When the sample was taken.
    #[serde(rename = "Timestamp", skip_serializing_if = "is_empty")]
    pub timestamp: GoTime,
    /// When the container started.
    #[serde(rename = "ContainerStartTime", skip_serializing_if = "is_empty")]
    pub container_start_time: GoTime,
    /// Uptime in 100 ns units.
    #[serde(
        rename = "Uptime100ns",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub uptime_100ns: u64,
    /// Memory.
    #[serde(
        rename = "Memory",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub memory: MemoryStats,
    /// Processor.
    #[serde(
        rename = "Processor",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub processor: ProcessorStats,
    /// Storage.
    #[serde(
        rename = "Storage",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub storage: StorageStats,
    /// Network, one entry per endpoint.
    #[serde(
        rename = "Network",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub network: Vec<NetworkStats>,
}

impl GoEmpty for MemoryStats {
    fn is_go_empty(&self) -> bool {
        false
    }
}

impl GoEmpty for Statistics {
    fn is_go_empty(&self) -> bool {
        false
    }
}

/// One process of a v1 process list. `CreateTimestamp` is always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessListItem {
    /// Creation time.
    #[serde(rename = "CreateTimestamp", skip_serializing_if = "is_empty")]
    pub create_timestamp: GoTime,
    /// Image name.
    #[serde(
        rename = "ImageName",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub image_name: String,
    /// Kernel time, 100 ns units.
    #[serde(
        rename = "KernelTime100ns",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub kernel_time_100ns: u64,
    /// Commit charge.
    #[serde(
        rename = "MemoryCommitBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub memory_commit_bytes: u64,
    /// Private working set.
    #[serde(
        rename = "MemoryWorkingSetPrivateBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub memory_working_set_private_bytes: u64,
    /// Shared working set.
    #[serde(
        rename = "MemoryWorkingSetSharedBytes",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub memory_working_set_shared_bytes: u64,
    /// Process id.
    #[serde(
        rename = "ProcessId",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub process_id: u32,
    /// User time, 100 ns units.
    #[serde(
        rename = "UserTime100ns",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub user_time_100ns: u64,
}

omitempty_struct! {
    /// The disks of one SCSI controller, by LUN (Go `map[int]`).
    pub struct MappedVirtualDiskController {
        /// Disks by LUN.
        #[serde(serialize_with = "crate::go::int_keyed_map")]
        "MappedVirtualDisks" mapped_virtual_disks: BTreeMap<i64, MappedVirtualDisk>,
    }
}

omitempty_struct! {
    /// Capabilities the guest (GCS) announces.
    #[derive(Eq)]
    pub struct GuestDefinedCapabilities {
        /// Namespace add requests are supported.
        "NamespaceAddRequestSupported" namespace_add_request_supported: bool,
        /// SignalProcess is supported.
        "SignalProcessSupported" signal_process_supported: bool,
        /// DumpStacks is supported.
        "DumpStacksSupported" dump_stacks_supported: bool,
        /// DeleteContainerState is supported.
        "DeleteContainerStateSupported" delete_container_state_supported: bool,
        /// UpdateContainer is supported.
        "UpdateContainerSupported" update_container_supported: bool,
        /// Log forwarding is supported.
        "LogForwardingSupported" log_forwarding_supported: bool,
        /// Host-process containers are supported.
        "HostProcessContainerSupported" host_process_container_supported: bool,
    }
}

/// Guest connection info of a utility VM (v1). `GuestDefinedCapabilities` is a struct by
/// value: always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuestConnectionInfo {
    /// Schema versions the guest supports.
    #[serde(
        rename = "SupportedSchemaVersions",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub supported_schema_versions: Vec<SchemaVersion>,
    /// Bridge protocol version.
    #[serde(
        rename = "ProtocolVersion",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub protocol_version: u32,
    /// Guest capabilities.
    #[serde(
        rename = "GuestDefinedCapabilities",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub guest_defined_capabilities: GuestDefinedCapabilities,
}

impl GoEmpty for GuestConnectionInfo {
    fn is_go_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn query_encodings() {
        let q = PropertyQuery {
            property_types: vec![PropertyType::Statistics, PropertyType::ProcessList],
        };
        assert_eq!(
            json::to_string(&q).unwrap(),
            r#"{"PropertyTypes":["Statistics","ProcessList"]}"#
        );
        assert_eq!(json::to_string(&PropertyQuery::default()).unwrap(), "{}");
        let q = ComputeSystemQuery {
            ids: vec!["a".into()],
            owners: vec!["o".into()],
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&q).unwrap(),
            r#"{"Ids":["a"],"Owners":["o"]}"#
        );
        let back: PropertyQuery =
            json::from_str(r#"{"PropertyTypes":["PendingUpdates"]}"#).unwrap();
        assert_eq!(
            back.property_types,
            vec![PropertyType::Other("PendingUpdates".into())]
        );
    }

    #[test]
    fn default_properties_match_go() {
        assert_eq!(
            json::to_string(&ContainerProperties::default()).unwrap(),
            concat!(
                r#"{"Id":"","State":"","Name":"","SystemType":"","Owner":"","#,
                r#""RuntimeId":"00000000-0000-0000-0000-000000000000","#,
                r#""Statistics":{"Timestamp":"0001-01-01T00:00:00Z","ContainerStartTime":"0001-01-01T00:00:00Z","#,
                r#""Memory":{},"Processor":{},"Storage":{}},"#,
                r#""GuestConnectionInfo":{"GuestDefinedCapabilities":{}}}"#
            )
        );
    }

    #[test]
    fn statistics_document_round_trips() {
        let doc = concat!(
            r#"{"Id":"c1","State":"Running","Name":"c1","SystemType":"Container","RuntimeOsType":"Windows","#,
            r#""Owner":"containerd","SiloGuid":"5a1c0000-0000-0000-0000-000000000001","#,
            r#""RuntimeId":"00000000-0000-0000-0000-000000000000","#,
            r#""Statistics":{"Timestamp":"2024-05-06T07:08:09.1234567Z","ContainerStartTime":"2024-05-06T07:00:00Z","#,
            r#""Uptime100ns":4800000000,"#,
            r#""Memory":{"MemoryUsageCommitBytes":1000,"MemoryUsageCommitPeakBytes":1500,"MemoryUsagePrivateWorkingSetBytes":100},"#,
            r#""Processor":{"TotalRuntime100ns":10,"RuntimeUser100ns":4,"RuntimeKernel100ns":6},"#,
            r#""Storage":{"ReadCountNormalized":2,"ReadSizeBytes":20,"WriteCountNormalized":1,"WriteSizeBytes":10},"#,
            r#""Network":[{"BytesReceived":5,"BytesSent":6,"EndpointId":"e1"}]},"#,
            r#""ProcessList":[{"CreateTimestamp":"2024-05-06T07:00:01Z","ImageName":"cmd.exe","ProcessId":42}],"#,
            r#""MappedVirtualDiskControllers":{"0":{"MappedVirtualDisks":{"1":{"ContainerPath":"/d","CreateInUtilityVM":true}}}},"#,
            r#""GuestConnectionInfo":{"SupportedSchemaVersions":[{"Major":2,"Minor":1}],"ProtocolVersion":4,"#,
            r#""GuestDefinedCapabilities":{"SignalProcessSupported":true}}}"#
        );
        let p: ContainerProperties = json::from_str(doc).unwrap();
        assert_eq!(p.statistics.memory.usage_private_working_set_bytes, 100);
        assert_eq!(p.statistics.network[0].endpoint_id, "e1");
        assert_eq!(p.process_list[0].process_id, 42);
        assert_eq!(
            p.mapped_virtual_disk_controllers[&0].mapped_virtual_disks[&1].container_path,
            "/d"
        );
        assert_eq!(
            p.guest_connection_info.supported_schema_versions,
            vec![SchemaVersion::V2_1]
        );
        assert!(
            p.guest_connection_info
                .guest_defined_capabilities
                .signal_process_supported
        );
        assert_eq!(json::to_string(&p).unwrap(), doc);
    }

    #[test]
    fn int_keyed_maps_sort_like_go() {
        let disks: BTreeMap<i64, MappedVirtualDisk> = [2, 10, 1]
            .into_iter()
            .map(|lun| {
                (
                    lun,
                    MappedVirtualDisk {
                        container_path: format!("/d{lun}"),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let c = MappedVirtualDiskController {
            mapped_virtual_disks: disks,
        };
        assert_eq!(
            json::to_string(&c).unwrap(),
            concat!(
                r#"{"MappedVirtualDisks":{"1":{"ContainerPath":"/d1"},"10":{"ContainerPath":"/d10"},"#,
                r#""2":{"ContainerPath":"/d2"}}}"#
            )
        );
        let back: MappedVirtualDiskController =
            json::from_str(&json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn process_list_item_always_has_a_timestamp() {
        assert_eq!(
            json::to_string(&ProcessListItem::default()).unwrap(),
            r#"{"CreateTimestamp":"0001-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn hcs_nulls_and_bad_guids() {
        let p: ContainerProperties =
            json::from_str(r#"{"Id":"x","ProcessList":null,"Statistics":null,"RuntimeId":null}"#)
                .unwrap();
        assert_eq!(p.id, "x");
        assert!(p.process_list.is_empty());
        assert!(json::from_str::<ContainerProperties>(r#"{"RuntimeId":"nope"}"#).is_err());
        assert!(
            json::from_str::<ContainerProperties>(r#"{"Statistics":{"Timestamp":"today"}}"#)
                .is_err()
        );
    }
}
