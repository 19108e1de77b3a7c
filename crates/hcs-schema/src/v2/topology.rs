//! VM compute topology: memory, processors, CPU groups and NUMA.

use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Compute topology of a VM.
    pub struct Topology {
        /// Memory.
        "Memory" memory: Option<VirtualMachineMemory>,
        /// Processors.
        "Processor" processor: Option<VirtualMachineProcessor>,
        /// Virtual NUMA.
        "Numa" numa: Option<Numa>,
    }
}

string_enum! {
    /// How guest memory is backed.
    pub enum MemoryBackingType {
        /// Physically backed.
        Physical = "Physical",
        /// Virtually backed (pagefile, allows overcommit).
        Virtual = "Virtual",
        /// Mixed.
        Hybrid = "Hybrid",
    }
}

string_enum! {
    /// Whether a virtual SLIT is exposed, and which.
    pub enum VirtualSlitType {
        /// No SLIT.
        None = "None",
        /// Firmware-provided SLIT.
        Firmware = "Firmware",
        /// Measured SLIT.
        Measured = "Measured",
        /// Firmware, falling back to measured.
        FirmwareFallbackMeasured = "FirmwareFallbackMeasured",
    }
}

omitempty_struct! {
    /// Memory of a VM.
    pub struct VirtualMachineMemory {
        /// Memory size in MB.
        "SizeInMB" size_in_mb: u64,
        /// Backing type.
        "Backing" backing: Option<MemoryBackingType>,
        /// Back memory by the pagefile (virtual backing) rather than pinned memory.
        "AllowOvercommit" allow_overcommit: bool,
        /// Expose the hot hint (guest prefetch).
        "EnableHotHint" enable_hot_hint: bool,
        /// Expose the cold hint (trim zeroed pages).
        "EnableColdHint" enable_cold_hint: bool,
        /// Expose the cold discard hint (trim non-zeroed pages).
        "EnableColdDiscardHint" enable_cold_discard_hint: bool,
        /// Charge commit on first access only.
        "EnableDeferredCommit" enable_deferred_commit: bool,
        /// Low MMIO gap below 4 GB, in MB.
        "LowMmioGapInMB" low_mmio_gap_in_mb: u64,
        /// High MMIO base above 4 GB, in MB.
        "HighMmioBaseInMB" high_mmio_base_in_mb: u64,
        /// High MMIO gap size, in MB.
        "HighMmioGapInMB" high_mmio_gap_in_mb: u64,
        /// Virtual SLIT type.
        "SlitType" slit_type: Option<VirtualSlitType>,
    }
}

omitempty_struct! {
    /// Processors of a VM.
    pub struct VirtualMachineProcessor {
        /// Virtual processor count.
        "Count" count: u32,
        /// CPU limit (0–100000).
        "Limit" limit: u64,
        /// CPU weight.
        "Weight" weight: u64,
        /// CPU reservation.
        "Reservation" reservation: u64,
        /// CPU group the VM joins.
        "CpuGroup" cpu_group: Option<CpuGroup>,
        /// NUMA processor settings.
        "NumaProcessorsSettings" numa_processors_settings: Option<NumaProcessors>,
    }
}

omitempty_struct! {
    /// A CPU group reference.
    #[derive(Eq)]
    pub struct CpuGroup {
        /// CPU group GUID.
        "Id" id: String,
    }
}

omitempty_struct! {
    /// Virtual NUMA configuration.
    pub struct Numa {
        /// Number of virtual nodes.
        "VirtualNodeCount" virtual_node_count: u8,
        /// Preferred physical nodes.
        "PreferredPhysicalNodes" preferred_physical_nodes: Vec<i64>,
        /// Per-node settings.
        "Settings" settings: Vec<NumaSetting>,
        /// Maximum size per node.
        "MaxSizePerNode" max_size_per_node: u64,
    }
}

omitempty_struct! {
    /// Settings of one virtual NUMA node. `MemoryBackingType` is held by value.
    pub struct NumaSetting {
        /// Virtual node number.
        "VirtualNodeNumber" virtual_node_number: u32,
        /// Physical node number.
        "PhysicalNodeNumber" physical_node_number: u32,
        /// Virtual socket number.
        "VirtualSocketNumber" virtual_socket_number: u32,
        /// Processors on the node.
        "CountOfProcessors" count_of_processors: u32,
        /// Memory blocks on the node.
        "CountOfMemoryBlocks" count_of_memory_blocks: u64,
        /// Memory backing of the node.
        "MemoryBackingType" memory_backing_type: MemoryBackingType,
    }
}

omitempty_struct! {
    /// NUMA processor topology. The keys are snake_case in the reference, and
    /// `count_per_node` is a struct held by value, so it is always present.
    pub struct NumaProcessors {
        /// Processors per node.
        "count_per_node" count_per_node: Range,
        /// Nodes per socket.
        "node_per_socket" node_per_socket: u32,
    }
}

omitempty_struct! {
    /// An upper bound.
    #[derive(Eq)]
    pub struct Range {
        /// Maximum.
        "max" max: u32,
    }
}

omitempty_struct! {
    /// A virtual-to-physical NUMA node pairing.
    #[derive(Eq)]
    pub struct NumaNode {
        /// Virtual node index.
        "VirtualNodeIndex" virtual_node_index: u32,
        /// Physical node index.
        "PhysicalNodeIndex" physical_node_index: u32,
    }
}

omitempty_struct! {
    /// Memory of a physical NUMA node available to VMs.
    #[derive(Eq)]
    pub struct NumaNodeMemory {
        /// Memory consumable by VMs, in pages.
        "TotalConsumableMemoryInPages" total_consumable_memory_in_pages: u64,
        /// Memory currently available, in pages.
        "AvailableMemoryInPages" available_memory_in_pages: u64,
    }
}

omitempty_struct! {
    /// Processors of a physical NUMA node.
    #[derive(Eq)]
    pub struct NumaNodeProcessor {
        /// Processors assigned to VMs.
        "TotalAssignedProcessors" total_assigned_processors: u32,
        /// Processors available.
        "TotalAvailableProcessors" total_available_processors: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn numa_processors_always_carry_count_per_node() {
        assert_eq!(
            json::to_string(&NumaProcessors::default()).unwrap(),
            r#"{"count_per_node":{}}"#
        );
        let n = NumaProcessors {
            count_per_node: Range { max: 4 },
            node_per_socket: 1,
        };
        assert_eq!(
            json::to_string(&n).unwrap(),
            r#"{"count_per_node":{"max":4},"node_per_socket":1}"#
        );
    }

    #[test]
    fn lcow_topology_document() {
        let t = Topology {
            memory: Some(VirtualMachineMemory {
                size_in_mb: 1024,
                allow_overcommit: true,
                enable_deferred_commit: true,
                enable_cold_discard_hint: true,
                high_mmio_base_in_mb: 0,
                ..Default::default()
            }),
            processor: Some(VirtualMachineProcessor {
                count: 2,
                limit: 100_000,
                weight: 100,
                ..Default::default()
            }),
            numa: None,
        };
        let text = json::to_string(&t).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"Memory":{"SizeInMB":1024,"AllowOvercommit":true,"EnableColdDiscardHint":true,"EnableDeferredCommit":true},"#,
                r#""Processor":{"Count":2,"Limit":100000,"Weight":100}}"#
            )
        );
        assert_eq!(json::from_str::<Topology>(&text).unwrap(), t);
    }

    #[test]
    fn numa_settings_round_trip() {
        let doc = concat!(
            r#"{"VirtualNodeCount":2,"PreferredPhysicalNodes":[0,1],"Settings":[{"VirtualNodeNumber":1,"#,
            r#""PhysicalNodeNumber":1,"CountOfProcessors":2,"CountOfMemoryBlocks":512,"MemoryBackingType":"Physical"}]}"#
        );
        let n: Numa = json::from_str(doc).unwrap();
        assert_eq!(
            n.settings[0].memory_backing_type,
            MemoryBackingType::Physical
        );
        assert_eq!(json::to_string(&n).unwrap(), doc);
    }

    #[test]
    fn numa_node_reports() {
        let m: NumaNodeMemory =
            json::from_str(r#"{"TotalConsumableMemoryInPages":1024,"AvailableMemoryInPages":0}"#)
                .unwrap();
        assert_eq!(
            json::to_string(&m).unwrap(),
            r#"{"TotalConsumableMemoryInPages":1024}"#
        );
        let n = NumaNode {
            virtual_node_index: 0,
            physical_node_index: 1,
        };
        assert_eq!(json::to_string(&n).unwrap(), r#"{"PhysicalNodeIndex":1}"#);
        let p = NumaNodeProcessor {
            total_assigned_processors: 2,
            total_available_processors: 6,
        };
        assert_eq!(
            json::to_string(&p).unwrap(),
            r#"{"TotalAssignedProcessors":2,"TotalAvailableProcessors":6}"#
        );
    }
}
