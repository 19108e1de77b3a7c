//! Whole documents shaped as the reference builds them (`internal/uvm/create_lcow.go`,
//! `create_wcow.go`, `internal/hcsoci/hcsdoc_wcow.go`), encoded byte-for-byte in Go's field
//! order, and decoded back with Go's rules.

use std::collections::BTreeMap;

use hcs_schema::v2::{
    Attachment, AttachmentType, Chipset, ComPort, ComputeSystem, Container, Devices, GuestOs,
    HostedSystem, Layer, LinuxKernelDirect, MappedDirectory, Networking, Plan9, Scsi, Storage,
    Topology, Uefi, UefiBootDevice, UefiBootEntry, VirtualMachine, VirtualMachineHvSocket,
    VirtualMachineMemory, VirtualMachineProcessor, VirtualPMemController, VirtualPMemDevice,
    VirtualPMemImageFormat, VirtualSmb, VirtualSmbShare, VirtualSmbShareOptions,
};
use hcs_schema::v2::{ContainerMemory, ContainerProcessor, HvSocketSystemConfig};
use hcs_schema::{json, SchemaVersion};

/// The first SCSI controller's VMBus GUID (`guestrequest.ScsiControllerGuids[0]`).
const SCSI0: &str = "df6d0690-79e5-55b6-a5ec-c1e2f77f580a";
/// SYSTEM and administrators may bind hvsockets (the GCS log socket).
const BIND_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

fn lcow_uvm() -> ComputeSystem {
    ComputeSystem {
        owner: "containerd-shim-runhcs-v1.exe".into(),
        schema_version: Some(SchemaVersion::V2_1),
        should_terminate_on_last_handle_closed: true,
        virtual_machine: Some(VirtualMachine {
            stop_on_reset: true,
            chipset: Some(Chipset {
                linux_kernel_direct: Some(LinuxKernelDirect {
                    kernel_file_path: r"C:\ContainerPlatform\LinuxBootFiles\vmlinux".into(),
                    init_rd_path: r"C:\ContainerPlatform\LinuxBootFiles\initrd.img".into(),
                    kernel_cmd_line: "8250_core.nr_uarts=0 panic=-1 quiet pci=off nr_cpus=2".into(),
                }),
                ..Default::default()
            }),
            compute_topology: Some(Topology {
                memory: Some(VirtualMachineMemory {
                    size_in_mb: 1024,
                    allow_overcommit: true,
                    enable_deferred_commit: false,
                    ..Default::default()
                }),
                processor: Some(VirtualMachineProcessor {
                    count: 2,
                    ..Default::default()
                }),
                numa: None,
            }),
            devices: Some(Devices {
                com_ports: BTreeMap::from([(
                    "0".to_owned(),
                    ComPort {
                        named_pipe: r"\\.\pipe\vmpipe".into(),
                        optimize_for_debugger: false,
                    },
                )]),
                scsi: BTreeMap::from([(SCSI0.to_owned(), Scsi::default())]),
                virtual_pmem: Some(VirtualPMemController {
                    maximum_count: 64,
                    maximum_size_bytes: 4 << 30,
                    devices: BTreeMap::from([(
                        "0".to_owned(),
                        VirtualPMemDevice {
                            host_path: r"C:\ContainerPlatform\LinuxBootFiles\rootfs.vhd".into(),
                            read_only: true,
                            image_format: Some(VirtualPMemImageFormat::Vhd1),
                            ..Default::default()
                        },
                    )]),
                    backing: None,
                }),
                hv_socket: Some(VirtualMachineHvSocket {
                    hv_socket_config: Some(HvSocketSystemConfig {
                        default_bind_security_descriptor: BIND_SDDL.into(),
                        ..Default::default()
                    }),
                }),
                plan9: Some(Plan9::default()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const LCOW_UVM: &str = concat!(
    r#"{"Owner":"containerd-shim-runhcs-v1.exe","SchemaVersion":{"Major":2,"Minor":1},"#,
    r#""VirtualMachine":{"StopOnReset":true,"#,
    r#""Chipset":{"LinuxKernelDirect":{"KernelFilePath":"C:\\ContainerPlatform\\LinuxBootFiles\\vmlinux","#,
    r#""InitRdPath":"C:\\ContainerPlatform\\LinuxBootFiles\\initrd.img","#,
    r#""KernelCmdLine":"8250_core.nr_uarts=0 panic=-1 quiet pci=off nr_cpus=2"}},"#,
    r#""ComputeTopology":{"Memory":{"SizeInMB":1024,"AllowOvercommit":true},"Processor":{"Count":2}},"#,
    r#""Devices":{"ComPorts":{"0":{"NamedPipe":"\\\\.\\pipe\\vmpipe"}},"#,
    r#""Scsi":{"df6d0690-79e5-55b6-a5ec-c1e2f77f580a":{}},"#,
    r#""VirtualPMem":{"Devices":{"0":{"HostPath":"C:\\ContainerPlatform\\LinuxBootFiles\\rootfs.vhd","ReadOnly":true,"ImageFormat":"Vhd1"}},"#,
    r#""MaximumCount":64,"MaximumSizeBytes":4294967296},"#,
    r#""HvSocket":{"HvSocketConfig":{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},"#,
    r#""Plan9":{}}},"#,
    r#""ShouldTerminateOnLastHandleClosed":true}"#
);

#[test]
fn lcow_uvm_document_is_byte_exact() {
    assert_eq!(json::to_string(&lcow_uvm()).unwrap(), LCOW_UVM);
    let back: ComputeSystem = json::from_str(LCOW_UVM).unwrap();
    assert_eq!(back, lcow_uvm());
}

fn wcow_uvm() -> ComputeSystem {
    ComputeSystem {
        owner: "o".into(),
        schema_version: Some(SchemaVersion::V2_1),
        should_terminate_on_last_handle_closed: true,
        virtual_machine: Some(VirtualMachine {
            stop_on_reset: true,
            chipset: Some(Chipset {
                uefi: Some(Uefi {
                    boot_this: Some(UefiBootEntry {
                        device_type: Some(UefiBootDevice::VmbFs),
                        device_path: r"\EFI\Microsoft\Boot\bootmgfw.efi".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            compute_topology: Some(Topology {
                memory: Some(VirtualMachineMemory {
                    size_in_mb: 1024,
                    allow_overcommit: true,
                    enable_hot_hint: true,
                    ..Default::default()
                }),
                processor: Some(VirtualMachineProcessor {
                    count: 2,
                    ..Default::default()
                }),
                numa: None,
            }),
            devices: Some(Devices {
                scsi: BTreeMap::from([(
                    SCSI0.to_owned(),
                    Scsi {
                        attachments: BTreeMap::from([(
                            "0".to_owned(),
                            Attachment {
                                attachment_type: AttachmentType::VirtualDisk,
                                path: r"C:\s\sandbox.vhdx".into(),
                                ..Default::default()
                            },
                        )]),
                    },
                )]),
                hv_socket: Some(VirtualMachineHvSocket {
                    hv_socket_config: Some(HvSocketSystemConfig {
                        default_bind_security_descriptor: BIND_SDDL.into(),
                        ..Default::default()
                    }),
                }),
                virtual_smb: Some(VirtualSmb {
                    direct_file_mapping_in_mb: 1024,
                    shares: vec![VirtualSmbShare {
                        name: "os".into(),
                        path: r"C:\base\UtilityVM\Files".into(),
                        options: Some(VirtualSmbShareOptions {
                            read_only: true,
                            pseudo_oplocks: true,
                            take_backup_privilege: true,
                            cache_io: true,
                            share_read: true,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const WCOW_UVM: &str = concat!(
    r#"{"Owner":"o","SchemaVersion":{"Major":2,"Minor":1},"VirtualMachine":{"StopOnReset":true,"#,
    r#""Chipset":{"Uefi":{"BootThis":{"DeviceType":"VmbFs","DevicePath":"\\EFI\\Microsoft\\Boot\\bootmgfw.efi"}}},"#,
    r#""ComputeTopology":{"Memory":{"SizeInMB":1024,"AllowOvercommit":true,"EnableHotHint":true},"Processor":{"Count":2}},"#,
    r#""Devices":{"Scsi":{"df6d0690-79e5-55b6-a5ec-c1e2f77f580a":{"Attachments":{"0":{"Type":"VirtualDisk","Path":"C:\\s\\sandbox.vhdx"}}}},"#,
    r#""HvSocket":{"HvSocketConfig":{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},"#,
    r#""VirtualSmb":{"Shares":[{"Name":"os","Path":"C:\\base\\UtilityVM\\Files","#,
    r#""Options":{"ReadOnly":true,"ShareRead":true,"CacheIo":true,"TakeBackupPrivilege":true,"PseudoOplocks":true}}],"#,
    r#""DirectFileMappingInMB":1024}}},"ShouldTerminateOnLastHandleClosed":true}"#
);

#[test]
fn wcow_uvm_document_is_byte_exact() {
    assert_eq!(json::to_string(&wcow_uvm()).unwrap(), WCOW_UVM);
    assert_eq!(
        json::from_str::<ComputeSystem>(WCOW_UVM).unwrap(),
        wcow_uvm()
    );
}

fn argon_container() -> Container {
    Container {
        guest_os: Some(GuestOs {
            host_name: "web-0".into(),
        }),
        storage: Some(Storage {
            layers: vec![
                Layer {
                    id: "11111111-2222-3333-4444-555555555555".into(),
                    path: r"C:\wf\top".into(),
                    ..Default::default()
                },
                Layer {
                    id: "66666666-7777-8888-9999-000000000000".into(),
                    path: r"C:\wf\base".into(),
                    ..Default::default()
                },
            ],
            path: r"\\?\Volume{8e4a1c3b-0000-0000-0000-000000000000}\".into(),
            ..Default::default()
        }),
        mapped_directories: vec![MappedDirectory {
            host_path: r"C:\data".into(),
            container_path: r"C:\data".into(),
            read_only: true,
            ..Default::default()
        }],
        memory: Some(ContainerMemory { size_in_mb: 2048 }),
        processor: Some(ContainerProcessor {
            count: 2,
            maximum: 0,
            weight: 0,
        }),
        networking: Some(Networking {
            allow_unqualified_dns_query: true,
            namespace: "3c1a6d4e-0000-0000-0000-000000000000".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const ARGON: &str = concat!(
    r#"{"Owner":"containerd","SchemaVersion":{"Major":2,"Minor":1},"Container":{"GuestOs":{"HostName":"web-0"},"#,
    r#""Storage":{"Layers":[{"Id":"11111111-2222-3333-4444-555555555555","Path":"C:\\wf\\top"},"#,
    r#"{"Id":"66666666-7777-8888-9999-000000000000","Path":"C:\\wf\\base"}],"#,
    r#""Path":"\\\\?\\Volume{8e4a1c3b-0000-0000-0000-000000000000}\\"},"#,
    r#""MappedDirectories":[{"HostPath":"C:\\data","ContainerPath":"C:\\data","ReadOnly":true}],"#,
    r#""Memory":{"SizeInMB":2048},"Processor":{"Count":2},"#,
    r#""Networking":{"AllowUnqualifiedDnsQuery":true,"Namespace":"3c1a6d4e-0000-0000-0000-000000000000"}},"#,
    r#""ShouldTerminateOnLastHandleClosed":true}"#
);

#[test]
fn argon_container_document_is_byte_exact() {
    let doc: ComputeSystem = ComputeSystem {
        owner: "containerd".into(),
        schema_version: Some(SchemaVersion::V2_1),
        container: Some(argon_container()),
        should_terminate_on_last_handle_closed: true,
        ..Default::default()
    };
    assert_eq!(json::to_string(&doc).unwrap(), ARGON);
    assert_eq!(json::from_str::<ComputeSystem>(ARGON).unwrap(), doc);
}

#[test]
fn hosted_container_document_keeps_struct_order() {
    let doc = ComputeSystem {
        owner: "containerd".into(),
        schema_version: Some(SchemaVersion::V2_1),
        hosting_system_id: "uvm-1".into(),
        hosted_system: Some(HostedSystem {
            schema_version: Some(SchemaVersion::V2_1),
            container: Some(Container {
                guest_os: Some(GuestOs {
                    host_name: "h".into(),
                }),
                storage: Some(Storage {
                    path: r"C:\c".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    assert_eq!(
        json::to_string(&doc).unwrap(),
        concat!(
            r#"{"Owner":"containerd","SchemaVersion":{"Major":2,"Minor":1},"HostingSystemId":"uvm-1","#,
            r#""HostedSystem":{"SchemaVersion":{"Major":2,"Minor":1},"Container":{"GuestOs":{"HostName":"h"},"Storage":{"Path":"C:\\c"}}}}"#
        )
    );
}

#[test]
fn go_decoding_accepts_any_key_case_unknown_keys_and_nulls() {
    // The same LCOW document with keys in other cases, unknown keys at several depths and
    // nulls where Go would leave the zero value.
    let shuffled = LCOW_UVM
        .replace(r#""Owner""#, r#""owner""#)
        .replace(r#""VirtualMachine""#, r#""virtualmachine""#)
        .replace(r#""StopOnReset""#, r#""STOPONRESET""#)
        .replace(r#""SizeInMB""#, r#""sizeInMb""#)
        .replace(r#""MaximumCount""#, r#""maximumcount""#)
        .replace(
            r#""Chipset":{"#,
            r#""Chipset":{"FutureKnob":[1,{"x":null}],"UseUtc":null,"#,
        )
        .replace(
            r#""Plan9":{}"#,
            r#""Plan9":{"Shares":null},"Licensing":{"On":true}"#,
        );
    let back: ComputeSystem = json::from_str(&shuffled).unwrap();
    assert_eq!(back, lcow_uvm());
    // serde alone (exact keys) would not see most of it: Go's decoder is the contract.
    let strict: ComputeSystem = serde_json::from_str(&shuffled).unwrap();
    assert_ne!(strict, lcow_uvm());
}

#[test]
fn map_keys_are_data_and_keep_their_case() {
    let doc =
        r#"{"Devices":{"NetworkAdapters":{"EP-A":{"EndpointId":"a"},"ep-a":{"EndpointId":"b"}}}}"#;
    let vm: VirtualMachine = json::from_str(doc).unwrap();
    let adapters = &vm.devices.as_ref().unwrap().network_adapters;
    assert_eq!(adapters.len(), 2);
    assert_eq!(adapters["EP-A"].endpoint_id, "a");
    assert_eq!(adapters["ep-a"].endpoint_id, "b");
    assert_eq!(json::to_string(&vm).unwrap(), doc);
}
