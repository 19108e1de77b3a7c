//! The HCS v2 compute-system document of an LCOW utility VM, as the reference's
//! `makeLCOWDoc` (`internal/uvm/create_lcow.go`) builds it, and the kernel command line of
//! its boot modes (ext4-uvm.md §5.2). OS-neutral: paths are Windows path text, nothing here
//! touches the file system.
//!
//! Only the non-confidential path is modelled (no SNP / VMGS boot, no vNUMA, no assigned
//! devices). Like `makeLCOWDoc`, the document lists no hvsocket services: the default bind
//! descriptor lets SYSTEM and administrators bind any service of the VM, which is how the
//! host listens on the bridge, entropy and log ports (the per-port service table of
//! gcs-bridge-protocol.md §1 is the VMGS/SNP document's).

use std::collections::BTreeMap;

use hcs_schema::v2::{
    Attachment, AttachmentType, Chipset, ComPort, ComputeSystem, Devices, HvSocketSystemConfig,
    LinuxKernelDirect, Plan9, Scsi, Topology, Uefi, UefiBootDevice, UefiBootEntry, VirtualMachine,
    VirtualMachineHvSocket, VirtualMachineMemory, VirtualMachineProcessor, VirtualPMemController,
    VirtualPMemDevice, VirtualPMemImageFormat,
};
use hcs_schema::SchemaVersion;

use super::scsi::CONTROLLER_GUIDS;
use crate::error::{Error, Result};
use crate::hvsock::{ENTROPY_PORT, LOG_PORT};

/// SYSTEM and administrators may bind the VM's hvsockets (the host's listeners).
pub const DEFAULT_BIND_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
/// `DefaultVPMEMCount`.
pub const DEFAULT_VPMEM_COUNT: u32 = 64;
/// `DefaultVPMemSizeBytes` (4 GiB).
pub const DEFAULT_VPMEM_SIZE_BYTES: u64 = 4 << 30;
/// Hyper-V's VPMem device limit.
pub const MAX_VPMEM_COUNT: u32 = 128;
/// `InitrdFile`.
pub const INITRD_FILE: &str = "initrd.img";
/// `VhdFile`.
pub const VHD_FILE: &str = "rootfs.vhd";
/// `KernelFile`.
pub const KERNEL_FILE: &str = "kernel";
/// `UncompressedKernelFile` (KernelDirect prefers it when present).
pub const UNCOMPRESSED_KERNEL_FILE: &str = "vmlinux";

/// What the utility VM's root file system is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFsType {
    /// An initrd (`PreferredRootFSTypeInitRd`).
    Initrd,
    /// A read-only ext4 VHD (`PreferredRootFSTypeVHD`): VPMem device 0 when VPMem is on,
    /// else SCSI controller 0, LUN 0.
    Vhd,
}

/// The options of an LCOW utility VM (the reference's `OptionsLCOW`, the parts that shape
/// the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcowOptions {
    /// `Owner`.
    pub owner: String,
    /// Where the kernel and root file system live (`BootFilesPath`).
    pub boot_files_path: String,
    /// The kernel's file name under the boot files path.
    pub kernel_file: String,
    /// Boot the kernel directly instead of through UEFI.
    pub kernel_direct: bool,
    /// The root file system's file name under the boot files path.
    pub root_fs_file: String,
    /// What that file is.
    pub root_fs_type: RootFsType,
    /// Extra kernel arguments.
    pub kernel_boot_options: String,
    /// The command init execs (`ExecCommandLine`): the GCS and its flags.
    pub exec_command_line: String,
    /// The GCS's stdout to the log port.
    pub forward_stdout: bool,
    /// The GCS's stderr to the log port.
    pub forward_stderr: bool,
    /// Pass `-disable-time-sync` to the GCS.
    pub disable_time_sync: bool,
    /// Mount writable overlays on `/etc` and `/var` of a VHD root (`init -w`).
    pub writable_overlay_dirs: bool,
    /// Guest memory, MiB (rounded up to even, as `NormalizeMemorySize` does).
    pub memory_size_mb: u64,
    /// Virtual memory backing (`AllowOvercommit`).
    pub allow_overcommit: bool,
    /// `EnableDeferredCommit`.
    pub enable_deferred_commit: bool,
    /// Virtual processors.
    pub processor_count: u32,
    /// SCSI controllers, 1 to 4.
    pub scsi_controller_count: u32,
    /// VPMem devices, 0 to 128.
    pub vpmem_device_count: u32,
    /// Size of each VPMem device.
    pub vpmem_size_bytes: u64,
    /// A named pipe for the serial console (debugging: a shell instead of `panic=-1`).
    pub console_pipe: String,
    /// Keep PCI on in the guest kernel.
    pub vpci_enabled: bool,
}

impl LcowOptions {
    /// The reference's defaults (`NewDefaultOptionsLCOW`, KernelDirect boot of an initrd)
    /// for boot files in `boot_files_path`, with the GCS logging at `log_level`.
    pub fn new(owner: &str, boot_files_path: &str, log_level: &str) -> Self {
        Self {
            owner: owner.to_owned(),
            boot_files_path: boot_files_path.to_owned(),
            kernel_file: KERNEL_FILE.to_owned(),
            kernel_direct: true,
            root_fs_file: INITRD_FILE.to_owned(),
            root_fs_type: RootFsType::Initrd,
            kernel_boot_options: String::new(),
            exec_command_line: format!("/bin/gcs -v4 -log-format json -loglevel {log_level}"),
            forward_stdout: false,
            forward_stderr: true,
            disable_time_sync: false,
            writable_overlay_dirs: false,
            memory_size_mb: 1024,
            allow_overcommit: true,
            enable_deferred_commit: false,
            processor_count: 2,
            scsi_controller_count: 1,
            vpmem_device_count: DEFAULT_VPMEM_COUNT,
            vpmem_size_bytes: DEFAULT_VPMEM_SIZE_BYTES,
            console_pipe: String::new(),
            vpci_enabled: false,
        }
    }

    /// The kernel's host path.
    pub fn kernel_path(&self) -> String {
        join(&self.boot_files_path, &self.kernel_file)
    }

    /// The root file system's host path.
    pub fn root_fs_path(&self) -> String {
        join(&self.boot_files_path, &self.root_fs_file)
    }

    /// True when the root VHD takes SCSI controller 0, LUN 0.
    pub fn root_on_scsi(&self) -> bool {
        self.root_fs_type == RootFsType::Vhd && self.vpmem_device_count == 0
    }

    /// The vsock ports the guest dials besides the bridge and stdio: entropy always, the log
    /// port when output is forwarded.
    pub fn service_ports(&self) -> Vec<u32> {
        let mut ports = vec![ENTROPY_PORT];
        if self.forward_stdout || self.forward_stderr {
            ports.push(LOG_PORT);
        }
        ports
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        if !(1..=4).contains(&self.scsi_controller_count) {
            return bad(format!(
                "{} SCSI controllers: a utility VM has 1 to 4",
                self.scsi_controller_count
            ));
        }
        if self.vpmem_device_count > MAX_VPMEM_COUNT {
            return bad(format!(
                "{} VPMem devices: at most {MAX_VPMEM_COUNT}",
                self.vpmem_device_count
            ));
        }
        if self.processor_count == 0 || self.memory_size_mb == 0 {
            return bad("a utility VM needs at least one processor and some memory".into());
        }
        for (what, text) in [
            ("kernel file", &self.kernel_file),
            ("root file system file", &self.root_fs_file),
            ("boot files path", &self.boot_files_path),
        ] {
            if text.is_empty() || text.contains('\0') {
                return bad(format!("the {what} is empty or contains NUL"));
            }
        }
        Ok(())
    }
}

/// Joins a file name to a directory with one separator, the one the directory uses
/// (`\\` unless it has only `/`, as a path given with forward slashes, or a Unix path in
/// the tests, does).
fn join(dir: &str, file: &str) -> String {
    if dir.ends_with(['\\', '/']) {
        format!("{dir}{file}")
    } else if dir.contains('/') && !dir.contains('\\') {
        format!("{dir}/{file}")
    } else {
        format!("{dir}\\{file}")
    }
}

/// The kernel command line `makeLCOWDoc` builds, byte for byte (including its leading
/// space when the boot mode adds no root argument).
pub fn kernel_command_line(o: &LcowOptions) -> String {
    let mut args = String::new();
    match o.root_fs_type {
        RootFsType::Initrd => {
            if !o.kernel_direct {
                args = format!("initrd=/{}", o.root_fs_file);
            }
        }
        RootFsType::Vhd if o.vpmem_device_count > 0 => {
            args = "root=/dev/pmem0 ro rootwait init=/init".into();
        }
        RootFsType::Vhd => args = "root=/dev/sda ro rootwait init=/init".into(),
    }
    // hv_sock, never virtio-vsock.
    args.push_str(" initcall_blacklist=virtio_vsock_init");
    let debugging = !o.console_pipe.is_empty();
    if debugging {
        args.push_str(" 8250_core.nr_uarts=1 8250_core.skip_txen_test=1 console=ttyS0,115200");
    } else {
        args.push_str(" 8250_core.nr_uarts=0");
        // A kernel panic ends the VM.
        args.push_str(" panic=-1 quiet");
    }
    if !o.kernel_boot_options.is_empty() {
        args.push(' ');
        args.push_str(&o.kernel_boot_options);
    }
    if !o.vpci_enabled {
        args.push_str(" pci=off");
    }
    let mut exec = "/bin/vsockexec".to_owned();
    if o.forward_stdout {
        exec.push_str(&format!(" -o {LOG_PORT}"));
    }
    if o.forward_stderr {
        exec.push_str(&format!(" -e {LOG_PORT}"));
    }
    exec.push(' ');
    exec.push_str(&o.exec_command_line);
    if o.disable_time_sync {
        exec.push_str(" -disable-time-sync");
    }
    let mut init = format!("-e {ENTROPY_PORT}");
    if o.writable_overlay_dirs && o.root_fs_type == RootFsType::Vhd {
        init.push_str(" -w");
    }
    if debugging {
        init.push_str(&format!(" sh -c \"{exec} & exec sh\""));
    } else {
        init.push(' ');
        init.push_str(&exec);
    }
    args.push_str(&format!(" nr_cpus={}", o.processor_count));
    args.push_str(" brd.rd_nr=0 pmtmr=0 -- ");
    args.push_str(&init);
    args
}

/// The compute-system document of the utility VM (`makeLCOWDoc`, schema 2.1).
pub fn lcow_document(o: &LcowOptions) -> Result<ComputeSystem> {
    o.validate()?;
    let scsi: BTreeMap<String, Scsi> = CONTROLLER_GUIDS
        .iter()
        .take(o.scsi_controller_count as usize)
        .map(|g| (g.to_string(), Scsi::default()))
        .collect();
    let mut devices = Devices {
        scsi,
        hv_socket: Some(VirtualMachineHvSocket {
            hv_socket_config: Some(HvSocketSystemConfig {
                default_bind_security_descriptor: DEFAULT_BIND_SDDL.into(),
                ..Default::default()
            }),
        }),
        plan9: Some(Plan9::default()),
        ..Default::default()
    };
    if o.vpmem_device_count > 0 {
        devices.virtual_pmem = Some(VirtualPMemController {
            maximum_count: o.vpmem_device_count,
            maximum_size_bytes: o.vpmem_size_bytes,
            ..Default::default()
        });
    }
    if o.root_fs_type == RootFsType::Vhd {
        if let Some(pmem) = devices.virtual_pmem.as_mut() {
            let format = if o.root_fs_file.to_ascii_lowercase().ends_with(".vhdx") {
                VirtualPMemImageFormat::Vhdx
            } else {
                VirtualPMemImageFormat::Vhd1
            };
            pmem.devices.insert(
                "0".into(),
                VirtualPMemDevice {
                    host_path: o.root_fs_path(),
                    read_only: true,
                    image_format: Some(format),
                    ..Default::default()
                },
            );
        } else if let Some(c0) = devices.scsi.get_mut(CONTROLLER_GUIDS[0]) {
            c0.attachments.insert(
                "0".into(),
                Attachment {
                    attachment_type: AttachmentType::VirtualDisk,
                    path: o.root_fs_path(),
                    read_only: true,
                    ..Default::default()
                },
            );
        }
    }
    if !o.console_pipe.is_empty() {
        devices.com_ports.insert(
            "0".into(),
            ComPort {
                named_pipe: o.console_pipe.clone(),
                optimize_for_debugger: false,
            },
        );
    }
    let cmdline = kernel_command_line(o);
    let chipset = if o.kernel_direct {
        Chipset {
            linux_kernel_direct: Some(LinuxKernelDirect {
                kernel_file_path: o.kernel_path(),
                init_rd_path: if o.root_fs_type == RootFsType::Initrd {
                    o.root_fs_path()
                } else {
                    String::new()
                },
                kernel_cmd_line: cmdline,
            }),
            ..Default::default()
        }
    } else {
        Chipset {
            uefi: Some(Uefi {
                boot_this: Some(UefiBootEntry {
                    device_path: format!("\\{}", o.kernel_file),
                    device_type: Some(UefiBootDevice::VmbFs),
                    vmb_fs_root_path: o.boot_files_path.clone(),
                    optional_data: cmdline,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    Ok(ComputeSystem {
        owner: o.owner.clone(),
        schema_version: Some(SchemaVersion::V2_1),
        should_terminate_on_last_handle_closed: true,
        virtual_machine: Some(VirtualMachine {
            stop_on_reset: true,
            chipset: Some(chipset),
            compute_topology: Some(Topology {
                memory: Some(VirtualMachineMemory {
                    // NormalizeMemorySize: Hyper-V wants an even number of MiB.
                    size_in_mb: o.memory_size_mb.div_ceil(2) * 2,
                    allow_overcommit: o.allow_overcommit,
                    enable_deferred_commit: o.enable_deferred_commit,
                    ..Default::default()
                }),
                processor: Some(VirtualMachineProcessor {
                    count: o.processor_count,
                    ..Default::default()
                }),
                numa: None,
            }),
            devices: Some(devices),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
