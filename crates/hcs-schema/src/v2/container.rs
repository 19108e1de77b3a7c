//! Process-isolated (Argon) and hosted container settings (`hcsschema.Container`).

use super::credential_guard::ContainerCredentialGuardState;
use super::device_namespace::ContainerDefinitionDevice;
use super::hvsocket::HvSocket;
use super::network::Networking;
use super::registry::RegistryChanges;
use super::storage::{MappedDirectory, MappedPipe, Storage};
use crate::macros::{omitempty_struct, string_enum};

string_enum! {
    /// Isolation mode of a container.
    pub enum IsolationType {
        /// A process-isolated, namespace-isolated Windows Server container.
        Process = "Process",
        /// A privileged HostProcess container sharing the host namespace.
        HostProcess = "HostProcess",
    }
}

omitempty_struct! {
    /// Container settings. `IsolationType` is a Go string held by value: omitted when `""`.
    pub struct Container {
        /// Guest OS settings.
        "GuestOs" guest_os: Option<GuestOs>,
        /// Storage (layers, scratch).
        "Storage" storage: Option<Storage>,
        /// Directories mapped into the container.
        "MappedDirectories" mapped_directories: Vec<MappedDirectory>,
        /// Named pipes mapped into the container.
        "MappedPipes" mapped_pipes: Vec<MappedPipe>,
        /// Memory limit.
        "Memory" memory: Option<ContainerMemory>,
        /// Processor limits.
        "Processor" processor: Option<ContainerProcessor>,
        /// Networking.
        "Networking" networking: Option<Networking>,
        /// Hyper-V socket settings.
        "HvSocket" hv_socket: Option<HvSocket>,
        /// Container credential guard state.
        "ContainerCredentialGuard" container_credential_guard: Option<ContainerCredentialGuardState>,
        /// Registry changes applied at start.
        "RegistryChanges" registry_changes: Option<RegistryChanges>,
        /// Devices assigned to the container.
        "AssignedDevices" assigned_devices: Vec<Device>,
        /// Additional device namespace.
        "AdditionalDeviceNamespace" additional_device_namespace: Option<ContainerDefinitionDevice>,
        /// Isolation mode; `""` (omitted) means process isolation.
        "IsolationType" isolation_type: IsolationType,
    }
}

omitempty_struct! {
    /// Guest OS settings of a container.
    pub struct GuestOs {
        /// Host name.
        "HostName" host_name: String,
    }
}

omitempty_struct! {
    /// Memory settings of a container (`ContainerMemory`, key `Memory`).
    #[derive(Eq)]
    pub struct ContainerMemory {
        /// Memory size in MB.
        "SizeInMB" size_in_mb: u64,
    }
}

omitempty_struct! {
    /// Processor settings of a container (`Processor`).
    #[derive(Eq)]
    pub struct ContainerProcessor {
        /// Processor count.
        "Count" count: i32,
        /// CPU cap, percent × 100 (1–10000).
        "Maximum" maximum: i32,
        /// CPU weight (1–10000).
        "Weight" weight: i32,
    }
}

string_enum! {
    /// How an assigned device is selected.
    pub enum DeviceType {
        /// All device interfaces of a class GUID.
        ClassGuid = "ClassGuid",
        /// One device instance by location path.
        DeviceInstance = "DeviceInstance",
        /// GPU mirror.
        GpuMirror = "GpuMirror",
    }
}

omitempty_struct! {
    /// A device assigned to a container.
    pub struct Device {
        /// Selection mode.
        "Type" device_type: Option<DeviceType>,
        /// Interface class GUID (for `ClassGuid`).
        "InterfaceClassGuid" interface_class_guid: String,
        /// Location path (for `DeviceInstance`).
        "LocationPath" location_path: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn isolation_type_is_omitted_when_empty() {
        assert_eq!(json::to_string(&Container::default()).unwrap(), "{}");
        let c = Container {
            isolation_type: IsolationType::HostProcess,
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&c).unwrap(),
            r#"{"IsolationType":"HostProcess"}"#
        );
    }

    #[test]
    fn container_limits_and_devices_round_trip() {
        let doc = concat!(
            r#"{"Memory":{"SizeInMB":512},"Processor":{"Count":2,"Maximum":5000,"Weight":100},"#,
            r#""AssignedDevices":[{"Type":"ClassGuid","InterfaceClassGuid":"5b45201d-f2f2-4f3b-85bb-30ff1f953599"},"#,
            r#"{"Type":"DeviceInstance","LocationPath":"PCIROOT(0)#PCI(0100)"}]}"#
        );
        let c: Container = json::from_str(doc).unwrap();
        assert_eq!(c.memory, Some(ContainerMemory { size_in_mb: 512 }));
        assert_eq!(
            c.assigned_devices[1].device_type,
            Some(DeviceType::DeviceInstance)
        );
        assert_eq!(json::to_string(&c).unwrap(), doc);
    }

    #[test]
    fn unknown_device_type_is_kept() {
        let d: Device = json::from_str(r#"{"Type":"FutureKind"}"#).unwrap();
        assert_eq!(d.device_type, Some(DeviceType::Other("FutureKind".into())));
        assert_eq!(json::to_string(&d).unwrap(), r#"{"Type":"FutureKind"}"#);
    }
}
