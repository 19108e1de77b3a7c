//! Documents and command lines compared byte for byte with what the reference's
//! `makeLCOWDoc` produces for the same options (its field order, Go's encoding).

use super::*;

const BOOT: &str = r"C:\ContainerPlat\LinuxBootFiles";

fn defaults() -> LcowOptions {
    LcowOptions::new("containerd-shim-runhcs-v1.exe", BOOT, "debug")
}

fn json(o: &LcowOptions) -> String {
    hcs_schema::json::to_string(&lcow_document(o).unwrap()).unwrap()
}

/// The reference's default: KernelDirect, initrd, stderr to the log port, 2 CPUs, 64 VPMem
/// devices, one SCSI controller.
const DEFAULT_CMDLINE: &str = concat!(
    " initcall_blacklist=virtio_vsock_init 8250_core.nr_uarts=0 panic=-1 quiet pci=off",
    " nr_cpus=2 brd.rd_nr=0 pmtmr=0 --",
    " -e 1 /bin/vsockexec -e 109 /bin/gcs -v4 -log-format json -loglevel debug"
);

#[test]
fn default_kernel_command_line_is_the_references() {
    assert_eq!(kernel_command_line(&defaults()), DEFAULT_CMDLINE);
}

#[test]
fn default_document_is_byte_exact() {
    let expected = concat!(
        r#"{"Owner":"containerd-shim-runhcs-v1.exe","SchemaVersion":{"Major":2,"Minor":1},"#,
        r#""VirtualMachine":{"StopOnReset":true,"#,
        r#""Chipset":{"LinuxKernelDirect":{"KernelFilePath":"C:\\ContainerPlat\\LinuxBootFiles\\kernel","#,
        r#""InitRdPath":"C:\\ContainerPlat\\LinuxBootFiles\\initrd.img","#,
        r#""KernelCmdLine":" initcall_blacklist=virtio_vsock_init 8250_core.nr_uarts=0 panic=-1 quiet pci=off nr_cpus=2 brd.rd_nr=0 pmtmr=0 -- -e 1 /bin/vsockexec -e 109 /bin/gcs -v4 -log-format json -loglevel debug"}},"#,
        r#""ComputeTopology":{"Memory":{"SizeInMB":1024,"AllowOvercommit":true},"Processor":{"Count":2}},"#,
        r#""Devices":{"Scsi":{"df6d0690-79e5-55b6-a5ec-c1e2f77f580a":{}},"#,
        r#""VirtualPMem":{"MaximumCount":64,"MaximumSizeBytes":4294967296},"#,
        r#""HvSocket":{"HvSocketConfig":{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},"#,
        r#""Plan9":{}}},"#,
        r#""ShouldTerminateOnLastHandleClosed":true}"#
    );
    assert_eq!(json(&defaults()), expected);
}

#[test]
fn vhd_root_over_vpmem_booted_through_uefi() {
    let mut o = defaults();
    o.kernel_direct = false;
    o.root_fs_type = RootFsType::Vhd;
    o.root_fs_file = VHD_FILE.into();
    o.writable_overlay_dirs = true;
    o.forward_stdout = true;
    o.memory_size_mb = 1023;
    let cmdline = concat!(
        "root=/dev/pmem0 ro rootwait init=/init initcall_blacklist=virtio_vsock_init",
        " 8250_core.nr_uarts=0 panic=-1 quiet pci=off nr_cpus=2 brd.rd_nr=0 pmtmr=0 --",
        " -e 1 -w /bin/vsockexec -o 109 -e 109 /bin/gcs -v4 -log-format json -loglevel debug"
    );
    assert_eq!(kernel_command_line(&o), cmdline);
    let expected = format!(
        concat!(
            r#"{{"Owner":"containerd-shim-runhcs-v1.exe","SchemaVersion":{{"Major":2,"Minor":1}},"#,
            r#""VirtualMachine":{{"StopOnReset":true,"#,
            r#""Chipset":{{"Uefi":{{"BootThis":{{"DeviceType":"VmbFs","DevicePath":"\\kernel","#,
            r#""OptionalData":"{}","VmbFsRootPath":"C:\\ContainerPlat\\LinuxBootFiles"}}}}}},"#,
            r#""ComputeTopology":{{"Memory":{{"SizeInMB":1024,"AllowOvercommit":true}},"Processor":{{"Count":2}}}},"#,
            r#""Devices":{{"Scsi":{{"df6d0690-79e5-55b6-a5ec-c1e2f77f580a":{{}}}},"#,
            r#""VirtualPMem":{{"Devices":{{"0":{{"HostPath":"C:\\ContainerPlat\\LinuxBootFiles\\rootfs.vhd","#,
            r#""ReadOnly":true,"ImageFormat":"Vhd1"}}}},"MaximumCount":64,"MaximumSizeBytes":4294967296}},"#,
            r#""HvSocket":{{"HvSocketConfig":{{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}}}},"#,
            r#""Plan9":{{}}}}}},"#,
            r#""ShouldTerminateOnLastHandleClosed":true}}"#
        ),
        cmdline
    );
    assert_eq!(json(&o), expected);
}

#[test]
fn vhd_root_over_scsi_with_a_console_and_four_controllers() {
    let mut o = defaults();
    o.root_fs_type = RootFsType::Vhd;
    o.root_fs_file = VHD_FILE.into();
    o.vpmem_device_count = 0;
    o.scsi_controller_count = 4;
    o.console_pipe = r"\\.\pipe\uvm-console".into();
    o.processor_count = 4;
    o.kernel_boot_options = "loglevel=7".into();
    o.vpci_enabled = true;
    o.disable_time_sync = true;
    assert!(o.root_on_scsi());
    let cmdline = concat!(
        "root=/dev/sda ro rootwait init=/init initcall_blacklist=virtio_vsock_init",
        " 8250_core.nr_uarts=1 8250_core.skip_txen_test=1 console=ttyS0,115200 loglevel=7",
        " nr_cpus=4 brd.rd_nr=0 pmtmr=0 --",
        r#" -e 1 sh -c "/bin/vsockexec -e 109 /bin/gcs -v4 -log-format json -loglevel debug"#,
        r#" -disable-time-sync & exec sh""#
    );
    assert_eq!(kernel_command_line(&o), cmdline);
    let doc = json(&o);
    let expected_devices = concat!(
        r#""Devices":{"ComPorts":{"0":{"NamedPipe":"\\\\.\\pipe\\uvm-console"}},"#,
        r#""Scsi":{"0110f83b-de10-5172-a266-78bca56bf50a":{},"305891a9-b251-5dfe-91a2-c25d9212275b":{},"#,
        r#""b5d2d8d4-3a75-51bf-945b-3444dc6b8579":{},"#,
        r#""df6d0690-79e5-55b6-a5ec-c1e2f77f580a":{"Attachments":{"0":{"Type":"VirtualDisk","#,
        r#""Path":"C:\\ContainerPlat\\LinuxBootFiles\\rootfs.vhd","ReadOnly":true}}}},"#,
        r#""HvSocket":{"HvSocketConfig":{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},"#,
        r#""Plan9":{}}"#
    );
    assert!(doc.contains(expected_devices), "{doc}");
    // KernelDirect with a VHD root: no InitRdPath.
    assert!(doc.contains(
        r#""Chipset":{"LinuxKernelDirect":{"KernelFilePath":"C:\\ContainerPlat\\LinuxBootFiles\\kernel","KernelCmdLine":"#
    ));
}

#[test]
fn bad_options_are_rejected() {
    for change in [
        (|o: &mut LcowOptions| o.scsi_controller_count = 0) as fn(&mut LcowOptions),
        |o| o.scsi_controller_count = 5,
        |o| o.vpmem_device_count = 129,
        |o| o.processor_count = 0,
        |o| o.kernel_file = String::new(),
        |o| o.boot_files_path = "C:\\a\0b".into(),
    ] {
        let mut o = defaults();
        change(&mut o);
        assert!(matches!(lcow_document(&o), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn paths_join_with_one_separator() {
    assert_eq!(join(r"C:\b", "kernel"), r"C:\b\kernel");
    assert_eq!(join(r"C:\b\", "kernel"), r"C:\b\kernel");
    assert_eq!(join("C:/b/", "kernel"), "C:/b/kernel");
    assert_eq!(join("C:/b", "kernel"), "C:/b/kernel");
    assert_eq!(join("/opt/boot", "kernel"), "/opt/boot/kernel");
    assert_eq!(join(r"C:\a/b", "kernel"), r"C:\a/b\kernel");
}
