//! Byte-exact checks against every compatibility vector of spec §10: each typed value is
//! encoded and compared byte for byte with the vector (header included), and the vector's
//! bytes are decoded and compared with the typed value.

use std::collections::BTreeMap;

use bridge::codec::{encode_message, read_frame, Encoding};
use bridge::header::{MessageType, MAX_MESSAGE_SIZE};
use bridge::hresult::Hresult;
use bridge::json::{AnyInString, RawJson};
use bridge::messages::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

const CID: &str = "2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
const Z: &str = "00000000-0000-0000-0000-000000000000";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes `value`, compares with the vector, decodes the vector and compares with `value`.
#[track_caller]
fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    t: MessageType,
    id: u64,
    size: u32,
    hdr: Option<&str>,
    json: &str,
    encoding: Encoding,
    value: &T,
) {
    let mut expected = Vec::new();
    let mut body = json.as_bytes().to_vec();
    if encoding == Encoding::Host {
        body.push(b'\n');
    }
    assert_eq!(16 + body.len() as u32, size, "vector size");
    expected.extend_from_slice(&(t as u32).to_le_bytes());
    expected.extend_from_slice(&size.to_le_bytes());
    expected.extend_from_slice(&id.to_le_bytes());
    if let Some(hdr) = hdr {
        assert_eq!(hex(&expected), hdr, "vector header");
    }
    expected.extend_from_slice(&body);

    let encoded = encode_message(t, id, value, encoding).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&encoded[16..]),
        String::from_utf8_lossy(&expected[16..])
    );
    assert_eq!(encoded, expected);

    let frame = read_frame(&mut expected.as_slice(), MAX_MESSAGE_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(frame.header.known_type().unwrap(), t);
    assert_eq!(frame.header.id, id);
    let decoded: T = frame.decode().unwrap();
    assert_eq!(&decoded, value);
}

fn ok() -> ResponseBase {
    ResponseBase::success(Z)
}

#[test]
fn v1_negotiate_request() {
    check(
        MessageType::NegotiateProtocol,
        0,
        161,
        Some("010b1010a10000000000000000000000"),
        r#"{"ContainerId":"00000000-0000-0000-0000-000000000000","ActivityId":"00000000-0000-0000-0000-000000000000","MinimumVersion":4,"MaximumVersion":4}"#,
        Encoding::Host,
        &NegotiateProtocolRequest::default(),
    );
}

#[test]
fn v2_negotiate_response() {
    check(
        MessageType::NegotiateProtocolResponse,
        0,
        342,
        Some("010b1020560100000000000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","Version":4,"Capabilities":{"SupportedSchemaVersions":[{"Major":2,"Minor":1}],"RuntimeOsType":"Linux","GuestDefinedCapabilities":{"NamespaceAddRequestSupported":true,"SignalProcessSupported":true,"DumpStacksSupported":true,"DeleteContainerStateSupported":true}}}"#,
        Encoding::Guest,
        &NegotiateProtocolResponse {
            base: ok(),
            version: 4,
            capabilities: GcsCapabilities::linux_gcs(),
        },
    );
}

#[test]
fn v3_create_request() {
    let spec = format!(
        r#"{{"ociVersion":"1.1.0","process":{{"user":{{"uid":0,"gid":0}},"args":["/bin/sh","-c","echo hi"],"env":["PATH=/usr/bin:/bin"],"cwd":"/"}},"root":{{"path":"/run/gcs/c/{CID}/rootfs"}},"hostname":"demo","linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}}]}}}}"#
    );
    let value = CreateRequest {
        base: RequestBase::new(CID),
        container_config: AnyInString(ContainerConfig {
            schema_version: SchemaVersion::V2_1,
            oci_bundle_path: format!("/run/gcs/c/{CID}"),
            oci_specification: Some(RawJson::from_string(spec).unwrap()),
            scratch_dir_path: format!("/run/gcs/c/{CID}/scratch/{CID}"),
        }),
    };
    check(
        MessageType::Create,
        1,
        867,
        Some("01011010630300000100000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","ContainerConfig":"{\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"OciBundlePath\":\"/run/gcs/c/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d\",\"OciSpecification\":{\"ociVersion\":\"1.1.0\",\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"env\":[\"PATH=/usr/bin:/bin\"],\"cwd\":\"/\"},\"root\":{\"path\":\"/run/gcs/c/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/rootfs\"},\"hostname\":\"demo\",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}},\"ScratchDirPath\":\"/run/gcs/c/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/scratch/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d\"}"}"#,
        Encoding::Host,
        &value,
    );
    // The embedded spec parses into a generic document with the expected content.
    let spec: serde_json::Value = value
        .container_config
        .oci_specification
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(spec["process"]["args"][2], "echo hi");
}

#[test]
fn v4_create_response() {
    check(
        MessageType::CreateResponse,
        1,
        108,
        Some("010110206c0000000100000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","SelectedProtocolVersion":0}"#,
        Encoding::Guest,
        &CreateResponse {
            base: ok(),
            ..CreateResponse::default()
        },
    );
}

fn modify(
    cid: &str,
    request_type: ModifyRequestType,
    s: ResourceSettings,
) -> ModifySettingsRequest {
    ModifySettingsRequest {
        base: RequestBase::new(cid),
        request: ModifySettingRequest::new(request_type, s),
    }
}

#[test]
fn v5_mapped_virtual_disk_add_and_response() {
    check(
        MessageType::ModifySettings,
        2,
        278,
        Some("010a1010160100000200000000000000"),
        r#"{"ContainerId":"00000000-0000-0000-0000-000000000000","ActivityId":"00000000-0000-0000-0000-000000000000","Request":{"RequestType":"Add","ResourceType":"MappedVirtualDisk","Settings":{"MountPath":"/run/mounts/scsi/m1","Lun":1,"ReadOnly":true,"Options":["ro"]}}}"#,
        Encoding::Host,
        &modify(
            NULL_CONTAINER_ID,
            ModifyRequestType::Add,
            ResourceSettings::MappedVirtualDisk(MappedVirtualDisk {
                mount_path: "/run/mounts/scsi/m1".into(),
                lun: 1,
                read_only: true,
                options: vec!["ro".into()],
                ..Default::default()
            }),
        ),
    );
    check(
        MessageType::ModifySettingsResponse,
        2,
        80,
        Some("010a1020500000000200000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000"}"#,
        Encoding::Guest,
        &ok(),
    );
}

#[test]
fn v6_combined_layers_add() {
    check(
        MessageType::ModifySettings,
        3,
        619,
        Some("010a10106b0200000300000000000000"),
        r#"{"ContainerId":"00000000-0000-0000-0000-000000000000","ActivityId":"00000000-0000-0000-0000-000000000000","Request":{"RequestType":"Add","ResourceType":"CombinedLayers","Settings":{"ContainerID":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ContainerRootPath":"/run/gcs/c/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/rootfs","Layers":[{"Path":"/run/layers/p0"},{"Path":"/run/mounts/scsi/m1"}],"ScratchPath":"/run/gcs/c/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d/scratch/2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"}}}"#,
        Encoding::Host,
        &modify(
            NULL_CONTAINER_ID,
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_id: CID.into(),
                container_root_path: format!("/run/gcs/c/{CID}/rootfs"),
                layers: vec![
                    Layer {
                        path: "/run/layers/p0".into(),
                        ..Default::default()
                    },
                    Layer {
                        path: "/run/mounts/scsi/m1".into(),
                        ..Default::default()
                    },
                ],
                scratch_path: format!("/run/gcs/c/{CID}/scratch/{CID}"),
            }),
        ),
    );
}

fn exec(params: ProcessParameters, ports: VsockStdioRelaySettings) -> ExecuteProcessRequest {
    ExecuteProcessRequest {
        base: RequestBase::new(CID),
        settings: ExecuteProcessSettings {
            process_parameters: AnyInString(params),
            vsock_stdio_relay_settings: Some(ports),
        },
    }
}

#[test]
fn v7_execute_init_and_response() {
    check(
        MessageType::ExecuteProcess,
        4,
        308,
        Some("01051010340100000400000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","Settings":{"ProcessParameters":"{\"CreateStdOutPipe\":true,\"CreateStdErrPipe\":true}","VsockStdioRelaySettings":{"StdOut":1073741825,"StdErr":1073741826}}}"#,
        Encoding::Host,
        &exec(
            ProcessParameters {
                create_std_out_pipe: true,
                create_std_err_pipe: true,
                ..Default::default()
            },
            VsockStdioRelaySettings {
                std_in: 0,
                std_out: 0x4000_0001,
                std_err: 0x4000_0002,
            },
        ),
    );
    check(
        MessageType::ExecuteProcessResponse,
        4,
        96,
        Some("01051020600000000400000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","ProcessId":123}"#,
        Encoding::Guest,
        &ExecuteProcessResponse {
            base: ok(),
            process_id: 123,
        },
    );
}

#[test]
fn v8_execute_tty() {
    let process = r#"{"terminal":true,"user":{"uid":0,"gid":0},"args":["/bin/sh"],"env":["TERM=xterm"],"cwd":"/"}"#;
    check(
        MessageType::ExecuteProcess,
        7,
        434,
        Some("01051010b20100000700000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","Settings":{"ProcessParameters":"{\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true,\"OciProcess\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\"],\"env\":[\"TERM=xterm\"],\"cwd\":\"/\"}}","VsockStdioRelaySettings":{"StdIn":1073741827,"StdOut":1073741828}}}"#,
        Encoding::Host,
        &exec(
            ProcessParameters {
                create_std_in_pipe: true,
                create_std_out_pipe: true,
                oci_process: Some(RawJson::from_string(process.into()).unwrap()),
                ..Default::default()
            },
            VsockStdioRelaySettings {
                std_in: 0x4000_0003,
                std_out: 0x4000_0004,
                std_err: 0,
            },
        ),
    );
}

#[test]
fn v9_wait_for_process() {
    check(
        MessageType::WaitForProcess,
        5,
        192,
        Some("01061010c00000000500000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","ProcessId":123,"TimeoutInMs":4294967295}"#,
        Encoding::Host,
        &WaitForProcessRequest {
            base: RequestBase::new(CID),
            process_id: 123,
            timeout_in_ms: INFINITE_TIMEOUT_MS,
        },
    );
    check(
        MessageType::WaitForProcessResponse,
        5,
        95,
        Some("010610205f0000000500000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","ExitCode":137}"#,
        Encoding::Guest,
        &WaitForProcessResponse {
            base: ok(),
            exit_code: 137,
        },
    );
}

#[test]
fn v10_signal_process() {
    let term = SignalProcessRequest {
        base: RequestBase::new(CID),
        process_id: 123,
        options: Some(SignalProcessOptions { signal: 15 }),
    };
    check(
        MessageType::SignalProcess,
        6,
        191,
        Some("01071010bf0000000600000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","ProcessId":123,"Options":{"Signal":15}}"#,
        Encoding::Host,
        &term,
    );
    assert_eq!(term.effective_signal(), 15);
    let kill = SignalProcessRequest {
        base: RequestBase::new(CID),
        process_id: 123,
        options: None,
    };
    check(
        MessageType::SignalProcess,
        8,
        167,
        Some("01071010a70000000800000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","ProcessId":123}"#,
        Encoding::Host,
        &kill,
    );
    assert_eq!(kill.effective_signal(), 9);
}

#[test]
fn v11_get_properties() {
    check(
        MessageType::GetProperties,
        12,
        199,
        Some("01091010c70000000c00000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","Query":"{\"PropertyTypes\":[\"ProcessList\"]}"}"#,
        Encoding::Host,
        &GetPropertiesRequest {
            base: RequestBase::new(CID),
            query: AnyInString(PropertyQuery {
                property_types: vec![PropertyType::ProcessList],
            }),
        },
    );
    check(
        MessageType::GetPropertiesResponse,
        12,
        155,
        Some("010910209b0000000c00000000000000"),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","Properties":"{\"ProcessList\":[{\"ProcessId\":123},{\"ProcessId\":130}]}"}"#,
        Encoding::Guest,
        &GetPropertiesResponse {
            base: ok(),
            properties: AnyInString(Properties {
                process_list: vec![
                    ProcessDetails { process_id: 123 },
                    ProcessDetails { process_id: 130 },
                ],
                lcow_metrics: None,
            }),
        },
    );
}

#[test]
fn v12_container_notification() {
    check(
        MessageType::ContainerNotification,
        0,
        204,
        Some("01011030cc0000000000000000000000"),
        r#"{"ContainerId":"2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","ActivityId":"00000000-0000-0000-0000-000000000000","Type":"UnexpectedExit","Operation":"None","Result":0}"#,
        Encoding::Guest,
        &ContainerNotification::exit(CID, Z, NotificationType::UnexpectedExit),
    );
}

#[test]
fn v13_error_response() {
    let value = ResponseBase::failure(
        Z,
        Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND,
        Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND.to_string(),
    );
    check(
        MessageType::WaitForProcessResponse,
        13,
        250,
        Some("01061020fa0000000d00000000000000"),
        r#"{"Result":-1070137074,"ActivityId":"00000000-0000-0000-0000-000000000000","ErrorMessage":"HRESULT: 0xc037010e","ErrorRecords":[{"Result":-1070137074,"Message":"HRESULT: 0xc037010e","ModuleName":"gcs","FileName":"","Line":4294967295}]}"#,
        Encoding::Guest,
        &value,
    );
    // The error response decodes as the typed WaitForProcess response too (ExitCode 0).
    let bytes = encode_message(
        MessageType::WaitForProcessResponse,
        13,
        &value,
        Encoding::Guest,
    )
    .unwrap();
    let frame = read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE)
        .unwrap()
        .unwrap();
    let typed: WaitForProcessResponse = frame.decode().unwrap();
    assert_eq!(typed.base, value);
    assert!(!typed.base.is_success());
}

fn templ(s: &str) -> String {
    s.replace("<cid>", CID).replace("<Z>", Z)
}

#[test]
fn further_base_only_requests() {
    let body = templ(r#"{"ContainerId":"<cid>","ActivityId":"<Z>"}"#);
    for t in [
        MessageType::Start,
        MessageType::ShutdownForced,
        MessageType::DeleteContainerState,
    ] {
        check(
            t,
            9,
            151,
            None,
            &body,
            Encoding::Host,
            &RequestBase::new(CID),
        );
    }
    check(
        MessageType::DumpStacks,
        9,
        123,
        None,
        &templ(r#"{"ContainerId":"<Z>","ActivityId":"<Z>"}"#),
        Encoding::Host,
        &RequestBase::null(),
    );
}

#[test]
fn further_start_with_trace_context() {
    let mut base = RequestBase::new(CID);
    base.otsc = Some(BTreeMap::from([(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    )]));
    check(
        MessageType::Start,
        10,
        232,
        None,
        &templ(
            r#"{"ContainerId":"<cid>","ActivityId":"<Z>","otsc":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#,
        ),
        Encoding::Host,
        &base,
    );
}

#[test]
fn further_resize_console() {
    check(
        MessageType::ResizeConsole,
        11,
        191,
        None,
        &templ(
            r#"{"ContainerId":"<cid>","ActivityId":"<Z>","ProcessId":124,"Height":40,"Width":120}"#,
        ),
        Encoding::Host,
        &ResizeConsoleRequest {
            base: RequestBase::new(CID),
            process_id: 124,
            height: 40,
            width: 120,
        },
    );
}

#[test]
fn further_network_add() {
    check(
        MessageType::ModifySettings,
        14,
        506,
        None,
        &templ(
            r#"{"ContainerId":"<Z>","ActivityId":"<Z>","Request":{"RequestType":"Add","ResourceType":"Network","Settings":{"NamespaceID":"a1b2c3d4-0000-0000-0000-000000000001","ID":"e5f6a7b8-0000-0000-0000-000000000002","MacAddress":"00-15-5D-12-34-56","DNSSuffix":"svc.cluster.local","DNSServerList":"10.0.0.10","IPConfigs":[{"IPAddress":"10.1.2.3","PrefixLength":24}],"Routes":[{"NextHop":"10.1.2.1","DestinationPrefix":"0.0.0.0/0"}]}}}"#,
        ),
        Encoding::Host,
        &modify(
            NULL_CONTAINER_ID,
            ModifyRequestType::Add,
            ResourceSettings::Network(NetworkAdapter {
                namespace_id: "a1b2c3d4-0000-0000-0000-000000000001".into(),
                id: "e5f6a7b8-0000-0000-0000-000000000002".into(),
                mac_address: "00-15-5D-12-34-56".into(),
                dns_suffix: "svc.cluster.local".into(),
                dns_server_list: "10.0.0.10".into(),
                ip_configs: vec![IpConfig {
                    ip_address: "10.1.2.3".into(),
                    prefix_length: 24,
                }],
                routes: vec![Route {
                    next_hop: "10.1.2.1".into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }],
                ..Default::default()
            }),
        ),
    );
}

#[test]
fn further_mapped_directory_add() {
    check(
        MessageType::ModifySettings,
        15,
        344,
        None,
        &templ(
            r#"{"ContainerId":"<Z>","ActivityId":"<Z>","Request":{"RequestType":"Add","ResourceType":"MappedDirectory","Settings":{"MountPath":"/run/gcs/c/<cid>/mounts/m0","Port":564,"ShareName":"0","ReadOnly":true}}}"#,
        ),
        Encoding::Host,
        &modify(
            NULL_CONTAINER_ID,
            ModifyRequestType::Add,
            ResourceSettings::MappedDirectory(MappedDirectory {
                mount_path: format!("/run/gcs/c/{CID}/mounts/m0"),
                port: 564,
                share_name: "0".into(),
                read_only: true,
            }),
        ),
    );
}

#[test]
fn further_vpmem_add() {
    check(
        MessageType::ModifySettings,
        16,
        // The spec lists "size 210", which is this body's length with its LF; every other
        // vector (and the header rule) counts the 16 header bytes too: 16 + 210 = 226.
        226,
        None,
        &templ(
            r#"{"ContainerId":"<Z>","ActivityId":"<Z>","Request":{"RequestType":"Add","ResourceType":"VPMemDevice","Settings":{"MountPath":"/run/layers/p0"}}}"#,
        ),
        Encoding::Host,
        &modify(
            NULL_CONTAINER_ID,
            ModifyRequestType::Add,
            ResourceSettings::VPMemDevice(VPMemDevice {
                mount_path: "/run/layers/p0".into(),
                ..Default::default()
            }),
        ),
    );
}

#[test]
fn further_container_constraints_update() {
    check(
        MessageType::ModifySettings,
        17,
        289,
        None,
        &templ(
            r#"{"ContainerId":"<cid>","ActivityId":"<Z>","Request":{"RequestType":"Update","ResourceType":"ContainerConstraints","Settings":{"Windows":{},"Linux":{"memory":{"limit":268435456}}}}}"#,
        ),
        Encoding::Host,
        &modify(
            CID,
            ModifyRequestType::Update,
            ResourceSettings::ContainerConstraints(ContainerConstraints {
                linux: serde_json::json!({"memory": {"limit": 268435456}}),
                ..Default::default()
            }),
        ),
    );
}
