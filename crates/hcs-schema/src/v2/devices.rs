//! VM devices (`hcsschema.Devices`): SCSI, VPMem, network adapters, COM ports, Plan9 and
//! virtual SMB shares, vPCI, shared memory and the small UI devices.
//!
//! Device maps are keyed by a friendly name (SCSI controller "0", adapter id, LUN "0"…);
//! HCS hashes names that are not GUIDs into instance ids.

use std::collections::BTreeMap;

use super::hvsocket::HvSocketSystemConfig;
use super::network::NetworkAdapter;
use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Devices of a VM.
    pub struct Devices {
        /// COM ports by port number ("0" is COM1).
        "ComPorts" com_ports: BTreeMap<String, ComPort>,
        /// SCSI controllers by name.
        "Scsi" scsi: BTreeMap<String, Scsi>,
        /// The VPMem controller.
        "VirtualPMem" virtual_pmem: Option<VirtualPMemController>,
        /// Network adapters by name.
        "NetworkAdapters" network_adapters: BTreeMap<String, NetworkAdapter>,
        /// Video monitor.
        "VideoMonitor" video_monitor: Option<VideoMonitor>,
        /// Keyboard.
        "Keyboard" keyboard: Option<Keyboard>,
        /// Mouse.
        "Mouse" mouse: Option<Mouse>,
        /// Hyper-V sockets.
        "HvSocket" hv_socket: Option<VirtualMachineHvSocket>,
        /// Enhanced mode video.
        "EnhancedModeVideo" enhanced_mode_video: Option<EnhancedModeVideo>,
        /// Guest crash reporting.
        "GuestCrashReporting" guest_crash_reporting: Option<GuestCrashReporting>,
        /// Virtual SMB shares (WCOW).
        "VirtualSmb" virtual_smb: Option<VirtualSmb>,
        /// Plan9 shares (LCOW).
        "Plan9" plan9: Option<Plan9>,
        /// Battery.
        "Battery" battery: Option<Battery>,
        /// Flexible IoV devices by name.
        "FlexibleIov" flexible_iov: BTreeMap<String, FlexibleIoDevice>,
        /// Shared memory regions.
        "SharedMemory" shared_memory: Option<SharedMemoryConfiguration>,
        /// Virtual PCI devices by name.
        "VirtualPci" virtual_pci: BTreeMap<String, VirtualPciDevice>,
    }
}

omitempty_struct! {
    /// A COM port backed by a named pipe (empty: disconnected).
    #[derive(Eq)]
    pub struct ComPort {
        /// Host named pipe.
        "NamedPipe" named_pipe: String,
        /// Optimise for a kernel debugger.
        "OptimizeForDebugger" optimize_for_debugger: bool,
    }
}

omitempty_struct! {
    /// A SCSI controller.
    pub struct Scsi {
        /// Attachments by LUN ("0", "1", …).
        "Attachments" attachments: BTreeMap<String, Attachment>,
    }
}

string_enum! {
    /// Kind of SCSI attachment.
    pub enum AttachmentType {
        /// A VHD/VHDX.
        VirtualDisk = "VirtualDisk",
        /// A shared disk.
        SharedDisk = "SharedDisk",
        /// An ISO image.
        Iso = "Iso",
        /// A pass-through physical disk.
        PassThru = "PassThru",
        /// An extensible virtual disk (see `ExtensibleVirtualDiskType`).
        ExtensibleVirtualDisk = "ExtensibleVirtualDisk",
        /// A virtual floppy disk.
        VirtualFloppyDisk = "VirtualFloppyDisk",
    }
}

string_enum! {
    /// Host caching of a SCSI attachment.
    pub enum CachingMode {
        /// No host caching.
        Uncached = "Uncached",
        /// Host cached.
        Cached = "Cached",
        /// Read-only host cache.
        ReadOnlyCached = "ReadOnlyCached",
    }
}

omitempty_struct! {
    /// A disk on a SCSI controller (the `Settings` of a
    /// `VirtualMachine/Devices/Scsi/<c>/Attachments/<lun>` modify request).
    pub struct Attachment {
        /// Attachment kind.
        "Type" attachment_type: AttachmentType,
        /// Host path of the disk.
        "Path" path: String,
        /// Ignore guest flushes.
        "IgnoreFlushes" ignore_flushes: bool,
        /// Host caching.
        "CachingMode" caching_mode: CachingMode,
        /// Disable write hardening.
        "NoWriteHardening" no_write_hardening: bool,
        /// Disable the expansion optimisation.
        "DisableExpansionOptimization" disable_expansion_optimization: bool,
        /// Ignore the relative parent locator.
        "IgnoreRelativeLocator" ignore_relative_locator: bool,
        /// Capture IO attribution context.
        "CaptureIoAttributionContext" capture_io_attribution_context: bool,
        /// Read-only attach.
        "ReadOnly" read_only: bool,
        /// Support compressed volumes.
        "SupportCompressedVolumes" support_compressed_volumes: bool,
        /// Always allow sparse files.
        "AlwaysAllowSparseFiles" always_allow_sparse_files: bool,
        /// Extensible virtual disk type.
        "ExtensibleVirtualDiskType" extensible_virtual_disk_type: String,
    }
}

string_enum! {
    /// Backing of the VPMem controller.
    pub enum VirtualPMemBackingType {
        /// Virtually backed.
        Virtual = "Virtual",
        /// Physically backed.
        Physical = "Physical",
    }
}

string_enum! {
    /// Image format of a VPMem device.
    pub enum VirtualPMemImageFormat {
        /// VHDX.
        Vhdx = "Vhdx",
        /// VHD (fixed).
        Vhd1 = "Vhd1",
    }
}

omitempty_struct! {
    /// The VPMem controller (LCOW read-only layers).
    pub struct VirtualPMemController {
        /// Devices by number ("0", "1", …).
        "Devices" devices: BTreeMap<String, VirtualPMemDevice>,
        /// Number of device slots.
        "MaximumCount" maximum_count: u32,
        /// Maximum device size in bytes.
        "MaximumSizeBytes" maximum_size_bytes: u64,
        /// Backing type.
        "Backing" backing: Option<VirtualPMemBackingType>,
    }
}

omitempty_struct! {
    /// A VPMem device.
    pub struct VirtualPMemDevice {
        /// Host image.
        "HostPath" host_path: String,
        /// Read-only.
        "ReadOnly" read_only: bool,
        /// Image format.
        "ImageFormat" image_format: Option<VirtualPMemImageFormat>,
        /// Device size in bytes (multi-mapping devices).
        "SizeBytes" size_bytes: u64,
        /// Images mapped at offsets, by offset.
        "Mappings" mappings: BTreeMap<String, VirtualPMemMapping>,
    }
}

omitempty_struct! {
    /// An image mapped into a multi-mapping VPMem device.
    pub struct VirtualPMemMapping {
        /// Host image.
        "HostPath" host_path: String,
        /// Image format.
        "ImageFormat" image_format: Option<VirtualPMemImageFormat>,
    }
}

omitempty_struct! {
    /// Video monitor.
    pub struct VideoMonitor {
        /// Horizontal resolution.
        "HorizontalResolution" horizontal_resolution: u16,
        /// Vertical resolution.
        "VerticalResolution" vertical_resolution: u16,
        /// Connection options.
        "ConnectionOptions" connection_options: Option<VideoConnectionOptions>,
    }
}

omitempty_struct! {
    /// Who may connect to the video console.
    pub struct VideoConnectionOptions {
        /// SIDs allowed to connect.
        "AccessSids" access_sids: Vec<String>,
        /// Named pipe of the console.
        "NamedPipe" named_pipe: String,
    }
}

omitempty_struct! {
    /// Enhanced mode video.
    pub struct EnhancedModeVideo {
        /// Connection options.
        "ConnectionOptions" connection_options: Option<VideoConnectionOptions>,
    }
}

omitempty_struct! {
    /// Keyboard (no settings).
    pub struct Keyboard {}
}

omitempty_struct! {
    /// Mouse (no settings).
    pub struct Mouse {}
}

omitempty_struct! {
    /// Battery (no settings).
    pub struct Battery {}
}

omitempty_struct! {
    /// Hyper-V sockets of a VM (`HvSocket2`).
    pub struct VirtualMachineHvSocket {
        /// System-wide hvsocket configuration.
        "HvSocketConfig" hv_socket_config: Option<HvSocketSystemConfig>,
    }
}

omitempty_struct! {
    /// Guest crash reporting.
    pub struct GuestCrashReporting {
        /// Windows crash dump settings.
        "WindowsCrashSettings" windows_crash_settings: Option<WindowsCrashReporting>,
    }
}

omitempty_struct! {
    /// Windows crash dump settings.
    pub struct WindowsCrashReporting {
        /// Dump file.
        "DumpFileName" dump_file_name: String,
        /// Maximum dump size.
        "MaxDumpSize" max_dump_size: i64,
        /// Dump type.
        "DumpType" dump_type: String,
    }
}

omitempty_struct! {
    /// Plan9 file shares (LCOW).
    pub struct Plan9 {
        /// Shares.
        "Shares" shares: Vec<Plan9Share>,
    }
}

/// Bits of [`Plan9Share::flags`] (private in the HCS schema; values from the reference).
pub mod plan9_flags {
    /// No flags.
    pub const NONE: i32 = 0;
    /// Read-only share.
    pub const READ_ONLY: i32 = 0x0000_0001;
    /// Linux metadata (uid/gid/mode in xattrs).
    pub const LINUX_METADATA: i32 = 0x0000_0004;
    /// Case-sensitive share.
    pub const CASE_SENSITIVE: i32 = 0x0000_0008;
    /// Access files with the identity of the share root.
    pub const USE_SHARE_ROOT_IDENTITY: i32 = 0x0000_0010;
    /// Only the files in `AllowedFiles` are reachable.
    pub const RESTRICT_FILE_ACCESS: i32 = 0x0000_0080;
    /// No limit on connections.
    pub const UNLIMITED_CONNECTIONS: i32 = 0x0000_0100;
}

omitempty_struct! {
    /// A Plan9 share (the `Settings` of a `VirtualMachine/Devices/Plan9/Shares` request).
    pub struct Plan9Share {
        /// Share name.
        "Name" name: String,
        /// Name the guest uses as the 9p `aname`.
        "AccessName" access_name: String,
        /// Host path.
        "Path" path: String,
        /// vsock port (564).
        "Port" port: i32,
        /// [`plan9_flags`] bits.
        "Flags" flags: i32,
        /// Read-only.
        "ReadOnly" read_only: bool,
        /// Use the share root's identity.
        "UseShareRootIdentity" use_share_root_identity: bool,
        /// Files reachable when access is restricted.
        "AllowedFiles" allowed_files: Vec<String>,
    }
}

omitempty_struct! {
    /// Virtual SMB (WCOW file sharing).
    pub struct VirtualSmb {
        /// Shares.
        "Shares" shares: Vec<VirtualSmbShare>,
        /// Direct file mapping size in MB.
        "DirectFileMappingInMB" direct_file_mapping_in_mb: i64,
    }
}

omitempty_struct! {
    /// A virtual SMB share (the `Settings` of a `VirtualMachine/Devices/VirtualSmb/Shares`
    /// request).
    pub struct VirtualSmbShare {
        /// Share name.
        "Name" name: String,
        /// Host path.
        "Path" path: String,
        /// Files reachable when access is restricted.
        "AllowedFiles" allowed_files: Vec<String>,
        /// Options.
        "Options" options: Option<VirtualSmbShareOptions>,
    }
}

omitempty_struct! {
    /// Options of a virtual SMB share.
    #[derive(Eq)]
    pub struct VirtualSmbShareOptions {
        /// Read-only.
        "ReadOnly" read_only: bool,
        /// Convert exclusive access to shared read.
        "ShareRead" share_read: bool,
        /// Cached I/O.
        "CacheIo" cache_io: bool,
        /// No oplocks.
        "NoOplocks" no_oplocks: bool,
        /// Take the backup privilege on open.
        "TakeBackupPrivilege" take_backup_privilege: bool,
        /// Open with the share root's identity.
        "UseShareRootIdentity" use_share_root_identity: bool,
        /// No direct mapping.
        "NoDirectmap" no_directmap: bool,
        /// No byte-range locks.
        "NoLocks" no_locks: bool,
        /// No directory change notifications.
        "NoDirnotify" no_dirnotify: bool,
        /// Share used for VM shared memory.
        "VmSharedMemory" vm_shared_memory: bool,
        /// Only `AllowedFiles` are reachable.
        "RestrictFileAccess" restrict_file_access: bool,
        /// Only level II oplocks.
        "ForceLevelIIOplocks" force_level_ii_oplocks: bool,
        /// Allow the host to reparse this base layer.
        "ReparseBaseLayer" reparse_base_layer: bool,
        /// Pseudo-oplocks.
        "PseudoOplocks" pseudo_oplocks: bool,
        /// Non-cached I/O.
        "NonCacheIo" non_cache_io: bool,
        /// Pseudo directory change notifications.
        "PseudoDirnotify" pseudo_dirnotify: bool,
        /// Block enumeration, renames and deletes (single-file share).
        "SingleFileMapping" single_file_mapping: bool,
    }
}

omitempty_struct! {
    /// A flexible IoV device.
    pub struct FlexibleIoDevice {
        /// Emulator id.
        "EmulatorId" emulator_id: String,
        /// Hosting model (`Internal`, `External`).
        "HostingModel" hosting_model: String,
        /// Configuration strings.
        "Configuration" configuration: Vec<String>,
    }
}

omitempty_struct! {
    /// Shared memory regions of a VM.
    pub struct SharedMemoryConfiguration {
        /// Regions.
        "Regions" regions: Vec<SharedMemoryRegion>,
    }
}

omitempty_struct! {
    /// A shared memory region.
    #[derive(Eq)]
    pub struct SharedMemoryRegion {
        /// Section name.
        "SectionName" section_name: String,
        /// Start offset.
        "StartOffset" start_offset: u64,
        /// Length.
        "Length" length: u64,
        /// The guest may write.
        "AllowGuestWrite" allow_guest_write: bool,
        /// Hidden from the guest.
        "HiddenFromGuest" hidden_from_guest: bool,
    }
}

omitempty_struct! {
    /// A virtual PCI device (device assignment, GPUs).
    pub struct VirtualPciDevice {
        /// Functions assigned.
        "Functions" functions: Vec<VirtualPciFunction>,
        /// Propagate the host NUMA affinity.
        "PropagateNumaAffinity" propagate_numa_affinity: bool,
    }
}

omitempty_struct! {
    /// One function of a virtual PCI device.
    #[derive(Eq)]
    pub struct VirtualPciFunction {
        /// Host device instance path.
        "DeviceInstancePath" device_instance_path: String,
        /// Virtual function number.
        "VirtualFunction" virtual_function: u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn scsi_attachment_settings() {
        let a = Attachment {
            attachment_type: AttachmentType::VirtualDisk,
            path: r"C:\s\sandbox.vhdx".into(),
            read_only: true,
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&a).unwrap(),
            r#"{"Type":"VirtualDisk","Path":"C:\\s\\sandbox.vhdx","ReadOnly":true}"#
        );
        assert_eq!(json::to_string(&Attachment::default()).unwrap(), "{}");
    }

    #[test]
    fn lcow_devices_document_round_trips() {
        let doc = concat!(
            r#"{"ComPorts":{"0":{"NamedPipe":"\\\\.\\pipe\\vmpipe"}},"#,
            r#""Scsi":{"0":{"Attachments":{"0":{"Type":"VirtualDisk","Path":"C:\\rootfs.vhd","ReadOnly":true}}},"1":{}},"#,
            r#""VirtualPMem":{"Devices":{"0":{"HostPath":"C:\\l.vhd","ReadOnly":true,"ImageFormat":"Vhd1"}},"MaximumCount":64,"MaximumSizeBytes":4294967296},"#,
            r#""HvSocket":{"HvSocketConfig":{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},"#,
            r#""Plan9":{}}"#
        );
        let d: Devices = json::from_str(doc).unwrap();
        assert_eq!(
            d.scsi["0"].attachments["0"].attachment_type,
            AttachmentType::VirtualDisk
        );
        assert_eq!(d.virtual_pmem.as_ref().unwrap().maximum_count, 64);
        assert_eq!(
            d.plan9,
            Some(Plan9::default()),
            "an empty Plan9 object is kept, as Go keeps a non-nil pointer"
        );
        assert_eq!(json::to_string(&d).unwrap(), doc);
    }

    #[test]
    fn plan9_share_with_flags() {
        let s = Plan9Share {
            name: "1".into(),
            access_name: "1".into(),
            path: r"C:\share".into(),
            port: 564,
            flags: plan9_flags::READ_ONLY
                | plan9_flags::LINUX_METADATA
                | plan9_flags::RESTRICT_FILE_ACCESS,
            allowed_files: vec!["a.txt".into()],
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&s).unwrap(),
            r#"{"Name":"1","AccessName":"1","Path":"C:\\share","Port":564,"Flags":133,"AllowedFiles":["a.txt"]}"#
        );
    }

    #[test]
    fn virtual_smb_share_options() {
        let s = VirtualSmbShare {
            name: "os".into(),
            path: r"C:\base\Files".into(),
            options: Some(VirtualSmbShareOptions {
                read_only: true,
                share_read: true,
                cache_io: true,
                pseudo_oplocks: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&s).unwrap(),
            r#"{"Name":"os","Path":"C:\\base\\Files","Options":{"ReadOnly":true,"ShareRead":true,"CacheIo":true,"PseudoOplocks":true}}"#
        );
    }
}
