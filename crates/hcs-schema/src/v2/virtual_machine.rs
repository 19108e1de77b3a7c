//! Virtual machine settings (`hcsschema.VirtualMachine`): chipset and boot, compute topology,
//! guest state, guest connection and isolation.

use super::devices::Devices;
use super::registry::RegistryChanges;
use super::storage::StorageQoS;
use super::topology::Topology;
use crate::go::GoBytes;
use crate::macros::{omitempty_struct, string_enum};
use crate::version::Version;

omitempty_struct! {
    /// Configuration of a virtual machine (a utility VM).
    pub struct VirtualMachine {
        /// VM configuration version.
        "Version" version: Option<Version>,
        /// Treat a reset as a stop.
        "StopOnReset" stop_on_reset: bool,
        /// Chipset and firmware.
        "Chipset" chipset: Option<Chipset>,
        /// Memory, processors, NUMA.
        "ComputeTopology" compute_topology: Option<Topology>,
        /// Devices.
        "Devices" devices: Option<Devices>,
        /// Guest state files.
        "GuestState" guest_state: Option<GuestState>,
        /// Restore from saved state or a template.
        "RestoreState" restore_state: Option<RestoreState>,
        /// Registry changes.
        "RegistryChanges" registry_changes: Option<RegistryChanges>,
        /// Storage QoS.
        "StorageQoS" storage_qos: Option<StorageQoS>,
        /// Debug dump options.
        "DebugOptions" debug_options: Option<DebugOptions>,
        /// Guest (GCS) connection settings.
        "GuestConnection" guest_connection: Option<GuestConnection>,
        /// TPM and isolation (SNP/VBS) settings.
        "SecuritySettings" security_settings: Option<SecuritySettings>,
        /// Resource partition id.
        "ResourcePartitionId" resource_partition_id: String,
        /// Migration options (any; see [`super::migration`]).
        "MigrationOptions" migration_options: Option<serde_json::Value>,
    }
}

omitempty_struct! {
    /// Chipset and firmware of a VM.
    pub struct Chipset {
        /// UEFI firmware settings.
        "Uefi" uefi: Option<Uefi>,
        /// Disable NumLock at boot.
        "IsNumLockDisabled" is_num_lock_disabled: bool,
        /// SMBIOS base board serial number.
        "BaseBoardSerialNumber" base_board_serial_number: String,
        /// SMBIOS chassis serial number.
        "ChassisSerialNumber" chassis_serial_number: String,
        /// SMBIOS chassis asset tag.
        "ChassisAssetTag" chassis_asset_tag: String,
        /// Keep the RTC in UTC.
        "UseUtc" use_utc: bool,
        /// Boot a Linux kernel directly (no firmware).
        "LinuxKernelDirect" linux_kernel_direct: Option<LinuxKernelDirect>,
        /// Firmware file (IGVM, confidential UVMs).
        "FirmwareFile" firmware_file: Option<FirmwareFile>,
    }
}

string_enum! {
    /// Whether to apply a secure boot template.
    pub enum ApplySecureBootTemplateType {
        /// Do not apply.
        Skip = "Skip",
        /// Apply the template.
        Apply = "Apply",
    }
}

omitempty_struct! {
    /// UEFI settings.
    pub struct Uefi {
        /// Enable the firmware debugger.
        "EnableDebugger" enable_debugger: bool,
        /// Apply a secure boot template.
        "ApplySecureBootTemplate" apply_secure_boot_template: Option<ApplySecureBootTemplateType>,
        /// Secure boot template GUID.
        "SecureBootTemplateId" secure_boot_template_id: String,
        /// The boot entry to use.
        "BootThis" boot_this: Option<UefiBootEntry>,
        /// Firmware console.
        "Console" console: Option<SerialConsole>,
    }
}

string_enum! {
    /// Device a UEFI boot entry points at.
    pub enum UefiBootDevice {
        /// A SCSI drive.
        ScsiDrive = "ScsiDrive",
        /// A VMBus filesystem (the WCOW utility VM boots this way).
        VmbFs = "VmbFs",
        /// Network boot.
        Network = "Network",
        /// A file.
        File = "File",
    }
}

omitempty_struct! {
    /// A UEFI boot entry.
    pub struct UefiBootEntry {
        /// Device kind.
        "DeviceType" device_type: Option<UefiBootDevice>,
        /// Path on the device.
        "DevicePath" device_path: String,
        /// Disk number.
        "DiskNumber" disk_number: u16,
        /// Optional data (boot arguments).
        "OptionalData" optional_data: String,
        /// Root of the VMBus filesystem.
        "VmbFsRootPath" vmb_fs_root_path: String,
    }
}

string_enum! {
    /// Firmware console.
    pub enum SerialConsole {
        /// Default console.
        Default = "Default",
        /// Console disabled.
        Disabled = "Disabled",
        /// COM1.
        ComPort1 = "ComPort1",
        /// COM2.
        ComPort2 = "ComPort2",
    }
}

omitempty_struct! {
    /// Direct Linux kernel boot.
    #[derive(Eq)]
    pub struct LinuxKernelDirect {
        /// Kernel image.
        "KernelFilePath" kernel_file_path: String,
        /// initrd image.
        "InitRdPath" init_rd_path: String,
        /// Kernel command line.
        "KernelCmdLine" kernel_cmd_line: String,
    }
}

omitempty_struct! {
    /// Firmware file parameters.
    pub struct FirmwareFile {
        /// Parameters (Go `[]byte`: base64 on the wire).
        "Parameters" parameters: GoBytes,
    }
}

string_enum! {
    /// Kind of the guest state file.
    pub enum GuestStateFileType {
        /// A block storage device.
        BlockStorage = "BlockStorage",
        /// A `.vmgs` file.
        FileMode = "FileMode",
    }
}

omitempty_struct! {
    /// Guest state storage.
    pub struct GuestState {
        /// Persistent guest state file; empty means transient.
        "GuestStateFilePath" guest_state_file_path: String,
        /// Kind of `GuestStateFilePath`.
        "GuestStateFileType" guest_state_file_type: Option<GuestStateFileType>,
        /// Persistent runtime state file; empty means transient.
        "RuntimeStateFilePath" runtime_state_file_path: String,
        /// Use the files as templates for transient state.
        "ForceTransientState" force_transient_state: bool,
    }
}

omitempty_struct! {
    /// Restoring a VM from saved state or cloning a template.
    #[derive(Eq)]
    pub struct RestoreState {
        /// Saved state file to restore.
        "SaveStateFilePath" save_state_file_path: String,
        /// Template system to clone.
        "TemplateSystemId" template_system_id: String,
    }
}

omitempty_struct! {
    /// Debug dump options.
    #[derive(Eq)]
    pub struct DebugOptions {
        /// Saved-state file written on bugcheck.
        "BugcheckSavedStateFileName" bugcheck_saved_state_file_name: String,
        /// Saved-state file written on bugcheck without crash dump.
        "BugcheckNoCrashdumpSavedStateFileName" bugcheck_no_crashdump_saved_state_file_name: String,
        /// Saved-state file written on triple fault.
        "TripleFaultSavedStateFileName" triple_fault_saved_state_file_name: String,
        /// Firmware dump file.
        "FirmwareDumpFileName" firmware_dump_file_name: String,
    }
}

omitempty_struct! {
    /// How HCS connects to the guest's GCS.
    #[derive(Eq)]
    pub struct GuestConnection {
        /// Use vsock instead of Hyper-V sockets.
        "UseVsock" use_vsock: bool,
        /// Keep the connection across a pause.
        "UseConnectedSuspend" use_connected_suspend: bool,
        /// Set the guest time zone to the host's.
        "UseHostTimeZone" use_host_time_zone: bool,
    }
}

omitempty_struct! {
    /// Security settings of a VM.
    pub struct SecuritySettings {
        /// Enable a virtual TPM.
        "EnableTpm" enable_tpm: bool,
        /// Hardware isolation.
        "Isolation" isolation: Option<IsolationSettings>,
    }
}

string_enum! {
    /// Guest isolation type.
    pub enum GuestIsolationType {
        /// No isolation.
        Disabled = "Disabled",
        /// Only the guest state is isolated.
        GuestStateOnly = "GuestStateOnly",
        /// VBS isolation.
        VirtualizationBasedSecurity = "VirtualizationBasedSecurity",
        /// AMD SEV-SNP.
        SecureNestedPaging = "SecureNestedPaging",
        /// SNP emulation (testing without SNP hardware).
        SecureNestedPagingEmulation = "SecureNestedPagingEmulation",
    }
}

omitempty_struct! {
    /// Hardware isolation settings (confidential UVMs).
    pub struct IsolationSettings {
        /// Isolation type, e.g. `SecureNestedPaging`.
        "IsolationType" isolation_type: GuestIsolationType,
        /// HCL debug host.
        "DebugHost" debug_host: String,
        /// HCL debug port.
        "DebugPort" debug_port: i64,
        /// Launch data passed to the isolated VM (base64 host data).
        "LaunchData" launch_data: String,
        /// Enable the HCL.
        "HclEnabled" hcl_enabled: Option<bool>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn confidential_security_settings() {
        let s = SecuritySettings {
            enable_tpm: false,
            isolation: Some(IsolationSettings {
                isolation_type: GuestIsolationType::SecureNestedPaging,
                launch_data: "aGVsbG8=".into(),
                hcl_enabled: Some(false),
                ..Default::default()
            }),
        };
        // HclEnabled is a *bool in the reference: an explicit false is sent.
        assert_eq!(
            json::to_string(&s).unwrap(),
            r#"{"Isolation":{"IsolationType":"SecureNestedPaging","LaunchData":"aGVsbG8=","HclEnabled":false}}"#
        );
    }

    #[test]
    fn uefi_boot_entry_round_trip() {
        let doc = concat!(
            r#"{"Uefi":{"ApplySecureBootTemplate":"Apply","SecureBootTemplateId":"1734c6e8-3154-4dda-ba5f-a874cc483422","#,
            r#""BootThis":{"DeviceType":"VmbFs","DevicePath":"\\EFI\\Microsoft\\Boot\\bootmgfw.efi"}},"#,
            r#""UseUtc":true,"LinuxKernelDirect":{"KernelFilePath":"C:\\k","InitRdPath":"C:\\i","KernelCmdLine":"console=ttyS0"}}"#
        );
        let c: Chipset = json::from_str(doc).unwrap();
        assert_eq!(
            c.uefi
                .as_ref()
                .unwrap()
                .boot_this
                .as_ref()
                .unwrap()
                .device_type,
            Some(UefiBootDevice::VmbFs)
        );
        assert_eq!(json::to_string(&c).unwrap(), doc);
    }
}
