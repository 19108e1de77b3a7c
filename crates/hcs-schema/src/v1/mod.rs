//! Schema 1.0 ("v1") documents: the legacy `vmcompute.dll` container configuration, process
//! configuration and property/statistics responses (`internal/hcs/schema1`, spec §3.2).
//!
//! Unlike schema2, many v1 keys are **not** `omitempty` (`SystemType`, `Name`, `Layers`,
//! `HvPartition`, the `MappedDir` and `MappedPipe` members, most of `ContainerProperties`), and
//! several values are structs held by value (`Statistics.Memory`, `time.Time`, `guid.GUID`),
//! which Go always emits. Each type below says which keys are always present.

mod container;
mod modify;
mod process;
mod properties;

pub use container::{
    AssignedDevice, ContainerConfig, HvRuntime, Layer, MappedDir, MappedPipe, MappedVirtualDisk,
    SYSTEM_TYPE_CONTAINER,
};
pub use modify::{RequestType, ResourceModificationRequestResponse, ResourceType};
pub use process::ProcessConfig;
pub use properties::{
    ComputeSystemQuery, ContainerProperties, GuestConnectionInfo, GuestDefinedCapabilities,
    MappedVirtualDiskController, MemoryStats, NetworkStats, ProcessListItem, ProcessorStats,
    PropertyQuery, PropertyType, Statistics, StorageStats,
};
