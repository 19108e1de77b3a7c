//! Schema 2.x documents (`internal/hcs/schema2`, spec §3.3–§3.4), one module per concept.
//!
//! Almost every field is `omitempty`; the exceptions are structs held by value, which Go
//! always emits (`time.Time` in [`Statistics`] and [`ProcessDetails`], `count_per_node` in
//! [`NumaProcessors`]). Go string types are enums with an `Other` catch-all. Fields typed
//! `interface{}` in the reference are `serde_json::Value`, or a type parameter defaulting to
//! it where the caller usually knows the type ([`ComputeSystem`], [`ModifySettingRequest`],
//! [`GuestModificationRequest`]).

mod compute_system;
mod container;
mod credential_guard;
mod device_namespace;
mod devices;
mod host;
mod hvsocket;
pub mod migration;
mod modify;
mod network;
mod process;
mod properties;
mod registry;
mod statistics;
mod storage;
mod topology;
mod virtual_machine;

pub use compute_system::{ComputeSystem, HostedSystem};
pub use container::{
    Container, ContainerMemory, ContainerProcessor, Device, DeviceType, GuestOs, IsolationType,
};
pub use credential_guard::{
    ContainerCredentialGuardAddInstanceRequest, ContainerCredentialGuardHvSocketServiceConfig,
    ContainerCredentialGuardInstance, ContainerCredentialGuardModifyOperation,
    ContainerCredentialGuardOperationRequest, ContainerCredentialGuardRemoveInstanceRequest,
    ContainerCredentialGuardState, ContainerCredentialGuardSystemInfo,
    ContainerCredentialGuardTransport,
};
pub use device_namespace::{
    ContainerDefinitionDevice, DeviceCategory, DeviceExtension, DeviceInstance, DeviceNamespace,
    InterfaceClass, Namespace, ObjectDirectory, ObjectNamespace, ObjectSymlink,
};
pub use devices::{
    plan9_flags, Attachment, AttachmentType, Battery, CachingMode, ComPort, Devices,
    EnhancedModeVideo, FlexibleIoDevice, GuestCrashReporting, Keyboard, Mouse, Plan9, Plan9Share,
    Scsi, SharedMemoryConfiguration, SharedMemoryRegion, VideoConnectionOptions, VideoMonitor,
    VirtualMachineHvSocket, VirtualPMemBackingType, VirtualPMemController, VirtualPMemDevice,
    VirtualPMemImageFormat, VirtualPMemMapping, VirtualPciDevice, VirtualPciFunction, VirtualSmb,
    VirtualSmbShare, VirtualSmbShareOptions, WindowsCrashReporting,
};

pub use crate::version::Version;
pub use host::{
    CpuGroupAffinity, CpuGroupConfig, CpuGroupConfigurations, CpuGroupOperation, CpuGroupProperty,
    CreateGroupOperation, DeleteGroupOperation, HostProcessorModificationRequest,
    PauseNotification, PauseOptions, PauseReason, PauseSuspensionLevel, ProcessorLimits,
    SaveOptions, SaveType, SystemTime, TimeZoneInformation,
};
pub use hvsocket::{HvSocket, HvSocketAddress, HvSocketServiceConfig, HvSocketSystemConfig};
pub use modify::{
    resource_paths, GuestModificationRequest, GuestResourceType, GuestSettings,
    ModificationRequest, ModifySettingRequest, RequestType, ServiceProperties,
};
pub use network::{InterruptModerationMode, IovSettings, NetworkAdapter, Networking};
pub use process::{
    CloseHandle, ConsoleSize, ModifyOperation, ProcessModifyRequest, ProcessParameters,
    ProcessStatus, StdHandle,
};
pub use properties::{
    CacheQueryStatsResponse, GuestConnectionInfo, GuestMemoryInfo, LogicalProcessor,
    MemoryInformationForVm, NotificationType, OsType, ProcessorTopology, Properties, PropertyQuery,
    PropertyResponse, PropertyType, SharedMemoryRegionInfo, SiloProperties, State, SystemType,
    VirtualNodeInfo, VmMemory,
};
pub use registry::{RegistryChanges, RegistryHive, RegistryKey, RegistryValue, RegistryValueType};
pub use statistics::{MemoryStats, ProcessDetails, ProcessorStats, Statistics, StorageStats};
pub use storage::{
    CacheMode, CimMount, CombinedLayers, FileSystemFilterType, Layer, MappedDirectory, MappedPipe,
    MappedPipePathType, MappedVirtualDisk, PathType, Storage, StorageQoS,
};
pub use topology::{
    CpuGroup, MemoryBackingType, Numa, NumaNode, NumaNodeMemory, NumaNodeProcessor, NumaProcessors,
    NumaSetting, Range, Topology, VirtualMachineMemory, VirtualMachineProcessor, VirtualSlitType,
};
pub use virtual_machine::{
    ApplySecureBootTemplateType, Chipset, DebugOptions, FirmwareFile, GuestConnection,
    GuestIsolationType, GuestState, GuestStateFileType, IsolationSettings, LinuxKernelDirect,
    RestoreState, SecuritySettings, SerialConsole, Uefi, UefiBootDevice, UefiBootEntry,
    VirtualMachine,
};
