//! Property queries (`HcsGetComputeSystemProperties`) and the `Properties` document returned.

use std::collections::BTreeMap;

use serde_json::Value;

use super::statistics::{ProcessDetails, Statistics};
use crate::macros::{omitempty_struct, string_enum};
use crate::version::Version;

string_enum! {
    /// A v2 property type.
    pub enum PropertyType {
        /// VM memory information.
        Memory = "Memory",
        /// Guest memory information.
        GuestMemory = "GuestMemory",
        /// Runtime statistics.
        Statistics = "Statistics",
        /// Process list.
        ProcessList = "ProcessList",
        /// Terminate-on-last-handle-closed flag.
        TerminateOnLastHandleClosed = "TerminateOnLastHandleClosed",
        /// Shared memory regions.
        SharedMemoryRegion = "SharedMemoryRegion",
        /// Container credential guard (added by hand in the reference).
        ContainerCredentialGuard = "ContainerCredentialGuard",
        /// Guest connection info.
        GuestConnection = "GuestConnection",
        /// Integration component heartbeat status.
        IcHeartbeatStatus = "ICHeartbeatStatus",
        /// Host processor topology (service property).
        ProcessorTopology = "ProcessorTopology",
        /// CPU group (service property).
        CpuGroup = "CpuGroup",
        /// System GUID (for hvsocket redirection of WCOW containers in a UVM).
        SystemGuid = "SystemGUID",
    }
}

omitempty_struct! {
    /// A v2 property query, e.g. `{"PropertyTypes":["Statistics"]}`.
    pub struct PropertyQuery {
        /// The properties asked for.
        "PropertyTypes" property_types: Vec<PropertyType>,
        /// Per-property queries (2.5+), by property name.
        "Queries" queries: BTreeMap<String, Value>,
    }
}

string_enum! {
    /// Kind of compute system.
    pub enum SystemType {
        /// A container.
        Container = "Container",
        /// A virtual machine.
        VirtualMachine = "VirtualMachine",
    }
}

string_enum! {
    /// Guest OS type.
    pub enum OsType {
        /// Windows.
        Windows = "Windows",
        /// Linux.
        Linux = "Linux",
    }
}

string_enum! {
    /// State of a compute system.
    pub enum State {
        /// Created, not started.
        Created = "Created",
        /// Running.
        Running = "Running",
        /// Paused.
        Paused = "Paused",
        /// Stopped.
        Stopped = "Stopped",
        /// Saved as a template.
        SavedAsTemplate = "SavedAsTemplate",
        /// Unknown.
        Unknown = "Unknown",
    }
}

string_enum! {
    /// How a compute system exited.
    pub enum NotificationType {
        /// No exit.
        None = "None",
        /// Graceful exit.
        GracefulExit = "GracefulExit",
        /// Forced exit.
        ForcedExit = "ForcedExit",
        /// Unexpected exit.
        UnexpectedExit = "UnexpectedExit",
        /// Unknown.
        Unknown = "Unknown",
    }
}

omitempty_struct! {
    /// Properties of a compute system. `LCOWMetrics` is not HCS's: hcsshim uses it to carry
    /// the guest's containerd cgroup `Metrics` (kept raw here).
    pub struct Properties {
        /// Compute system id.
        "Id" id: String,
        /// Kind of system.
        "SystemType" system_type: Option<SystemType>,
        /// Guest OS.
        "RuntimeOsType" runtime_os_type: Option<OsType>,
        /// Name.
        "Name" name: String,
        /// Owner.
        "Owner" owner: String,
        /// Object manager root.
        "ObRoot" ob_root: String,
        /// Dummy system.
        "IsDummy" is_dummy: bool,
        /// Runtime (VM) GUID.
        "RuntimeId" runtime_id: String,
        /// Runtime image path.
        "RuntimeImagePath" runtime_image_path: String,
        /// Runtime template.
        "IsRuntimeTemplate" is_runtime_template: bool,
        /// Template the system was cloned from.
        "RuntimeTemplateId" runtime_template_id: String,
        /// State.
        "State" state: Option<State>,
        /// Stopped.
        "Stopped" stopped: bool,
        /// How it exited.
        "ExitType" exit_type: Option<NotificationType>,
        /// VM memory information.
        "Memory" memory: Option<MemoryInformationForVm>,
        /// Guest memory information.
        "GuestMemoryInfo" guest_memory_info: Option<GuestMemoryInfo>,
        /// CPU group GUID.
        "CpuGroupId" cpu_group_id: String,
        /// Statistics.
        "Statistics" statistics: Option<Statistics>,
        /// Processes.
        "ProcessList" process_list: Vec<ProcessDetails>,
        /// Terminate-on-last-handle-closed flag.
        "TerminateOnLastHandleClosed" terminate_on_last_handle_closed: bool,
        /// System GUID.
        "SystemGUID" system_guid: String,
        /// Hosting system id.
        "HostingSystemId" hosting_system_id: String,
        /// Shared memory regions.
        "SharedMemoryRegionInfo" shared_memory_region_info: Vec<SharedMemoryRegionInfo>,
        /// Guest connection info.
        "GuestConnectionInfo" guest_connection_info: Option<GuestConnectionInfo>,
        /// Silo properties.
        "Silo" silo: Option<SiloProperties>,
        /// Cache class-of-service index.
        "CosIndex" cos_index: u32,
        /// Resource monitoring id.
        "Rmid" rmid: u32,
        /// Cache statistics.
        "CacheStats" cache_stats: Option<CacheQueryStatsResponse>,
        /// Idled processors.
        "IdledProcessorInfo" idled_processor_info: Option<Value>,
        /// CPU frequency power cap.
        "CpuFrequencyPowerCap" cpu_frequency_power_cap: u32,
        /// Responses by property name (2.5+).
        "PropertyResponses" property_responses: BTreeMap<String, PropertyResponse>,
        /// LCOW cgroup metrics from the guest (hcsshim addition, Go field `Metrics`).
        "LCOWMetrics" lcow_metrics: Option<Value>,
    }
}

omitempty_struct! {
    /// One entry of `PropertyResponses`.
    pub struct PropertyResponse {
        /// The property's response document.
        "Response" response: Option<Value>,
    }
}

omitempty_struct! {
    /// Memory information of a VM.
    pub struct MemoryInformationForVm {
        /// Virtual NUMA nodes.
        "VirtualNodeCount" virtual_node_count: u8,
        /// VM memory.
        "VirtualMachineMemory" virtual_machine_memory: Option<VmMemory>,
        /// Per-node information.
        "VirtualNodes" virtual_nodes: Vec<VirtualNodeInfo>,
    }
}

omitempty_struct! {
    /// Memory of a running VM.
    #[derive(Eq)]
    pub struct VmMemory {
        /// Available memory.
        "AvailableMemory" available_memory: i32,
        /// Available memory buffer.
        "AvailableMemoryBuffer" available_memory_buffer: i32,
        /// Reserved memory.
        "ReservedMemory" reserved_memory: u64,
        /// Assigned memory.
        "AssignedMemory" assigned_memory: u64,
        /// Static local placement active.
        "SlpActive" slp_active: bool,
        /// Memory balancing enabled.
        "BalancingEnabled" balancing_enabled: bool,
        /// Dynamic memory operation in progress.
        "DmOperationInProgress" dm_operation_in_progress: bool,
    }
}

omitempty_struct! {
    /// A virtual NUMA node of a running VM.
    #[derive(Eq)]
    pub struct VirtualNodeInfo {
        /// Virtual node index.
        "VirtualNodeIndex" virtual_node_index: u8,
        /// Physical node number.
        "PhysicalNodeNumber" physical_node_number: u8,
        /// Virtual processors on the node.
        "VirtualProcessorCount" virtual_processor_count: u32,
        /// Memory use in pages.
        "MemoryUsageInPages" memory_usage_in_pages: u64,
    }
}

omitempty_struct! {
    /// Guest memory information.
    #[derive(Eq)]
    pub struct GuestMemoryInfo {
        /// Total physical bytes.
        "TotalPhysicalBytes" total_physical_bytes: u64,
        /// Total usage.
        "TotalUsage" total_usage: u64,
        /// Committed bytes.
        "CommittedBytes" committed_bytes: u64,
        /// Shared committed bytes.
        "SharedCommittedBytes" shared_committed_bytes: u64,
        /// Commit limit.
        "CommitLimitBytes" commit_limit_bytes: u64,
        /// Peak commitment.
        "PeakCommitmentBytes" peak_commitment_bytes: u64,
    }
}

omitempty_struct! {
    /// Guest connection info (v2). `GuestDefinedCapabilities` is raw: its shape is the
    /// guest's (see [`crate::v1::GuestDefinedCapabilities`] for the Linux GCS's).
    pub struct GuestConnectionInfo {
        /// Schema versions the guest supports; x.y covers every a.b with a == x, b <= y.
        "SupportedSchemaVersions" supported_schema_versions: Vec<Version>,
        /// Bridge protocol version.
        "ProtocolVersion" protocol_version: i32,
        /// Capabilities the guest announces.
        "GuestDefinedCapabilities" guest_defined_capabilities: Option<Value>,
    }
}

omitempty_struct! {
    /// Where a shared memory region is mapped in the guest.
    #[derive(Eq)]
    pub struct SharedMemoryRegionInfo {
        /// Section name.
        "SectionName" section_name: String,
        /// Guest physical address.
        "GuestPhysicalAddress" guest_physical_address: u64,
    }
}

omitempty_struct! {
    /// Silo of a process-isolated container.
    #[derive(Eq)]
    pub struct SiloProperties {
        /// Silo enabled.
        "Enabled" enabled: bool,
        /// Job object name.
        "JobName" job_name: String,
    }
}

omitempty_struct! {
    /// Cache monitoring statistics.
    #[derive(Eq)]
    pub struct CacheQueryStatsResponse {
        /// L3 occupancy.
        "L3OccupancyBytes" l3_occupancy_bytes: u64,
        /// L3 total bandwidth.
        "L3TotalBwBytes" l3_total_bw_bytes: u64,
        /// L3 local bandwidth.
        "L3LocalBwBytes" l3_local_bw_bytes: u64,
    }
}

omitempty_struct! {
    /// Host processor topology (service property `ProcessorTopology`).
    pub struct ProcessorTopology {
        /// Logical processor count.
        "LogicalProcessorCount" logical_processor_count: u32,
        /// Logical processors.
        "LogicalProcessors" logical_processors: Vec<LogicalProcessor>,
    }
}

omitempty_struct! {
    /// One host logical processor.
    #[derive(Eq)]
    pub struct LogicalProcessor {
        /// LP index.
        "LpIndex" lp_index: u32,
        /// NUMA node.
        "NodeNumber" node_number: u8,
        /// Package id.
        "PackageId" package_id: u32,
        /// Core id.
        "CoreId" core_id: u32,
        /// Root VP index.
        "RootVpIndex" root_vp_index: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn queries() {
        let q = PropertyQuery {
            property_types: vec![PropertyType::SystemGuid],
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&q).unwrap(),
            r#"{"PropertyTypes":["SystemGUID"]}"#
        );
        let q = PropertyQuery {
            property_types: vec![PropertyType::Statistics, PropertyType::ProcessList],
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&q).unwrap(),
            r#"{"PropertyTypes":["Statistics","ProcessList"]}"#
        );
    }

    #[test]
    fn properties_from_hcs_round_trip() {
        let doc = concat!(
            r#"{"Id":"uvm1","SystemType":"VirtualMachine","RuntimeOsType":"Linux","Owner":"o","#,
            r#""RuntimeId":"b3a7b0a6-0000-0000-0000-000000000001","State":"Running","#,
            r#""Memory":{"VirtualMachineMemory":{"AvailableMemory":512,"AssignedMemory":1073741824}},"#,
            r#""Statistics":{"Timestamp":"2024-05-06T07:08:09Z","ContainerStartTime":"2024-05-06T07:00:00Z","Uptime100ns":1},"#,
            r#""ProcessList":[{"ProcessId":1,"CreateTimestamp":"0001-01-01T00:00:00Z"}],"#,
            r#""SystemGUID":"5f2c0000-0000-0000-0000-000000000002","#,
            r#""GuestConnectionInfo":{"SupportedSchemaVersions":[{"Major":2,"Minor":1}],"ProtocolVersion":4,"#,
            r#""GuestDefinedCapabilities":{"SignalProcessSupported":true}},"#,
            r#""PropertyResponses":{"Memory":{"Response":{"x":1}}},"#,
            r#""LCOWMetrics":{"memory":{"usage":{"usage":5}}}}"#
        );
        let p: Properties = json::from_str(doc).unwrap();
        assert_eq!(p.state, Some(State::Running));
        assert_eq!(p.runtime_os_type, Some(OsType::Linux));
        assert_eq!(
            p.guest_connection_info.as_ref().unwrap().protocol_version,
            4
        );
        assert_eq!(
            p.lcow_metrics.as_ref().unwrap()["memory"]["usage"]["usage"],
            5
        );
        assert_eq!(json::to_string(&p).unwrap(), doc);
    }

    #[test]
    fn gcs_properties_string_decodes() {
        // The Linux GCS answers GetProperties with this (spec gcs-bridge-protocol §3).
        let p: Properties =
            json::from_str(r#"{"ProcessList":[{"ProcessId":7}],"LCOWMetrics":{}}"#).unwrap();
        assert_eq!(p.process_list[0].process_id, 7);
        assert_eq!(p.lcow_metrics, Some(serde_json::json!({})));
        let empty: Properties = json::from_str("{}").unwrap();
        assert_eq!(empty, Properties::default());
        assert_eq!(json::to_string(&empty).unwrap(), "{}");
    }
}
