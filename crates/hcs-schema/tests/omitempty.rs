//! Go `omitempty` over the whole schema: the zero value of every type encodes to exactly
//! what Go's `json.Marshal` writes for the zero value of the reference type, and decoding
//! that text gives the zero value back.

use hcs_schema::{json, v1, v2, SchemaVersion};

/// Asserts `T::default()` encodes to `expected` and that `expected` decodes to the default.
macro_rules! zero {
    ($($ty:ty => $expected:expr),* $(,)?) => {{
        $(
            let text = json::to_string(&<$ty>::default()).unwrap();
            assert_eq!(text, $expected, "{}", stringify!($ty));
            let back: $ty = json::from_str($expected).unwrap();
            assert_eq!(back, <$ty>::default(), "{}", stringify!($ty));
        )*
    }};
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[test]
fn v2_zero_values_are_empty_objects() {
    zero! {
        v2::ComputeSystem => "{}",
        v2::HostedSystem => "{}",
        v2::Container => "{}",
        v2::GuestOs => "{}",
        v2::ContainerMemory => "{}",
        v2::ContainerProcessor => "{}",
        v2::Device => "{}",
        v2::Storage => "{}",
        v2::StorageQoS => "{}",
        v2::Layer => "{}",
        v2::MappedDirectory => "{}",
        v2::MappedPipe => "{}",
        v2::CombinedLayers => "{}",
        v2::MappedVirtualDisk => "{}",
        v2::CimMount => "{}",
        v2::VirtualMachine => "{}",
        v2::Chipset => "{}",
        v2::Uefi => "{}",
        v2::UefiBootEntry => "{}",
        v2::LinuxKernelDirect => "{}",
        v2::FirmwareFile => "{}",
        v2::GuestState => "{}",
        v2::RestoreState => "{}",
        v2::DebugOptions => "{}",
        v2::GuestConnection => "{}",
        v2::SecuritySettings => "{}",
        v2::IsolationSettings => "{}",
        v2::Topology => "{}",
        v2::VirtualMachineMemory => "{}",
        v2::VirtualMachineProcessor => "{}",
        v2::CpuGroup => "{}",
        v2::Numa => "{}",
        v2::NumaSetting => "{}",
        v2::Range => "{}",
        v2::Devices => "{}",
        v2::ComPort => "{}",
        v2::Scsi => "{}",
        v2::Attachment => "{}",
        v2::VirtualPMemController => "{}",
        v2::VirtualPMemDevice => "{}",
        v2::VirtualPMemMapping => "{}",
        v2::VideoMonitor => "{}",
        v2::Keyboard => "{}",
        v2::Mouse => "{}",
        v2::Battery => "{}",
        v2::VirtualMachineHvSocket => "{}",
        v2::GuestCrashReporting => "{}",
        v2::Plan9 => "{}",
        v2::Plan9Share => "{}",
        v2::VirtualSmb => "{}",
        v2::VirtualSmbShare => "{}",
        v2::VirtualSmbShareOptions => "{}",
        v2::FlexibleIoDevice => "{}",
        v2::SharedMemoryConfiguration => "{}",
        v2::SharedMemoryRegion => "{}",
        v2::VirtualPciDevice => "{}",
        v2::VirtualPciFunction => "{}",
        v2::HvSocket => "{}",
        v2::HvSocketSystemConfig => "{}",
        v2::HvSocketServiceConfig => "{}",
        v2::HvSocketAddress => "{}",
        v2::Networking => "{}",
        v2::NetworkAdapter => "{}",
        v2::IovSettings => "{}",
        v2::RegistryChanges => "{}",
        v2::RegistryKey => "{}",
        v2::RegistryValue => "{}",
        v2::ContainerCredentialGuardState => "{}",
        v2::ContainerCredentialGuardOperationRequest => "{}",
        v2::ContainerDefinitionDevice => "{}",
        v2::Namespace => "{}",
        v2::PropertyQuery => "{}",
        v2::Properties => "{}",
        v2::MemoryInformationForVm => "{}",
        v2::VmMemory => "{}",
        v2::GuestConnectionInfo => "{}",
        v2::SharedMemoryRegionInfo => "{}",
        v2::SiloProperties => "{}",
        v2::ProcessorTopology => "{}",
        v2::ProcessorStats => "{}",
        v2::MemoryStats => "{}",
        v2::StorageStats => "{}",
        v2::ProcessParameters => "{}",
        v2::ProcessStatus => "{}",
        v2::ProcessModifyRequest => "{}",
        v2::ConsoleSize => "{}",
        v2::CloseHandle => "{}",
        v2::ModifySettingRequest => "{}",
        v2::GuestModificationRequest => "{}",
        v2::ModificationRequest => "{}",
        v2::ServiceProperties => "{}",
        v2::HostProcessorModificationRequest => "{}",
        v2::CpuGroupConfig => "{}",
        v2::ProcessorLimits => "{}",
        v2::PauseOptions => "{}",
        v2::SaveOptions => "{}",
        v2::TimeZoneInformation => "{}",
        v2::migration::MigrationInitializeOptions => "{}",
        v2::migration::StartOptions => "{}",
        SchemaVersion => "{}",
    }
}

#[test]
fn structs_held_by_value_are_always_emitted() {
    let stats = format!(r#"{{"Timestamp":"{ZERO_TIME}","ContainerStartTime":"{ZERO_TIME}"}}"#);
    let details = format!(r#"{{"CreateTimestamp":"{ZERO_TIME}"}}"#);
    let blackout = format!(r#"{{"BlackoutStopTimestamp":"{ZERO_TIME}"}}"#);
    zero! {
        v2::Statistics => stats.as_str(),
        v2::ProcessDetails => details.as_str(),
        v2::NumaProcessors => r#"{"count_per_node":{}}"#,
        v2::migration::BlackoutExitedEventDetails => blackout.as_str(),
    }
}

#[test]
fn v1_zero_values_keep_their_non_omitempty_keys() {
    let v1_stats = format!(
        r#"{{"Timestamp":"{ZERO_TIME}","ContainerStartTime":"{ZERO_TIME}","Memory":{{}},"Processor":{{}},"Storage":{{}}}}"#
    );
    let item = format!(r#"{{"CreateTimestamp":"{ZERO_TIME}"}}"#);
    zero! {
        v1::ContainerConfig => r#"{"SystemType":"","Name":"","Layers":null,"HvPartition":false}"#,
        v1::Layer => r#"{"ID":"","Path":""}"#,
        v1::MappedDir => r#"{"HostPath":"","ContainerPath":"","ReadOnly":false,"BandwidthMaximum":0,"IOPSMaximum":0,"CreateInUtilityVM":false}"#,
        v1::MappedPipe => r#"{"HostPath":"","ContainerPipeName":""}"#,
        v1::MappedVirtualDisk => r#"{"ContainerPath":""}"#,
        v1::HvRuntime => "{}",
        v1::AssignedDevice => "{}",
        v1::ProcessConfig => r#"{"ConsoleSize":[0,0]}"#,
        v1::ComputeSystemQuery => "{}",
        v1::PropertyQuery => "{}",
        v1::Statistics => v1_stats.as_str(),
        v1::ProcessListItem => item.as_str(),
        v1::GuestConnectionInfo => r#"{"GuestDefinedCapabilities":{}}"#,
        v1::GuestDefinedCapabilities => "{}",
        v1::MappedVirtualDiskController => "{}",
        v1::ResourceModificationRequestResponse => r#"{"ResourceType":"","Settings":null}"#,
    }
}

#[test]
fn empty_object_decodes_to_zero_even_where_go_would_emit_keys() {
    // Absent keys are zero values on decode, whatever the encoding rule.
    assert_eq!(
        json::from_str::<v1::ContainerProperties>("{}").unwrap(),
        v1::ContainerProperties::default()
    );
    assert_eq!(
        json::from_str::<v1::ContainerConfig>("{}").unwrap(),
        v1::ContainerConfig::default()
    );
    assert_eq!(
        json::from_str::<v2::Statistics>("{}").unwrap(),
        v2::Statistics::default()
    );
}
