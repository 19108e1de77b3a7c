use serde_json::json;

use super::*;

const VOLUME: &str = r"\\?\Volume{8a8f6c4e-1b2c-5d3e-9f40-112233445566}\";
const WAIT_TO_KILL: &str = concat!(
    r#""RegistryChanges":{"AddValues":[{"Key":{"Hive":"System","Name":"ControlSet001\\Control"},"#,
    r#""Name":"WaitToKillServiceTimeout","Type":"String","StringValue":"2147483647"}]}"#
);

fn layers() -> Vec<LayerRef> {
    vec![
        LayerRef {
            id: "11111111-2222-5333-8444-555555555555".into(),
            path: r"C:\l\2".into(),
        },
        LayerRef {
            id: "aaaaaaaa-bbbb-5ccc-9ddd-eeeeeeeeeeee".into(),
            path: r"C:\l\1".into(),
        },
    ]
}

fn doc(spec: serde_json::Value) -> Result<String> {
    let cs = compute_system(
        "c1",
        "containerd-shim-runhcs-v1.exe",
        &spec,
        &layers(),
        VOLUME,
        4,
    )?;
    Ok(hcs_schema::json::to_string(&cs).unwrap())
}

/// The typed `Container` of the document, encoded in Go's key order.
fn container_part(spec: serde_json::Value) -> String {
    let cs = compute_system("c1", "o", &spec, &layers(), VOLUME, 4).unwrap();
    hcs_schema::json::to_string(&cs.container.unwrap()).unwrap()
}

#[test]
fn a_minimal_spec_gives_the_reference_document() {
    // Go json.Marshal of the ComputeSystem hcsoci.CreateContainer sends for a v2 Argon.
    let want = concat!(
        r#"{"Owner":"containerd-shim-runhcs-v1.exe","SchemaVersion":{"Major":2,"Minor":1},"Container":{"#,
        r#""Storage":{"Layers":[{"Id":"11111111-2222-5333-8444-555555555555","Path":"C:\\l\\2"},"#,
        r#"{"Id":"aaaaaaaa-bbbb-5ccc-9ddd-eeeeeeeeeeee","Path":"C:\\l\\1"}],"#,
        r#""Path":"\\\\?\\Volume{8a8f6c4e-1b2c-5d3e-9f40-112233445566}\\"},"#,
        r#""Processor":{},"#,
        r#""RegistryChanges":{"AddValues":[{"Key":{"Hive":"System","Name":"ControlSet001\\Control"},"#,
        r#""Name":"WaitToKillServiceTimeout","Type":"String","StringValue":"2147483647"}]}},"#,
        r#""ShouldTerminateOnLastHandleClosed":true}"#
    );
    assert_eq!(doc(json!({"windows": {}})).unwrap(), want);
    // The JSON form carries the same document.
    let v = container_document(
        "c1",
        "containerd-shim-runhcs-v1.exe",
        &json!({"windows": {}}),
        &layers(),
        VOLUME,
    )
    .unwrap();
    let typed: serde_json::Value = serde_json::from_str(want).unwrap();
    assert_eq!(v, typed);
}

#[test]
fn a_full_spec_maps_every_section() {
    let spec = json!({
        "hostname": "web",
        "root": {"path": "ignored", "readonly": false},
        "mounts": [
            {"destination": r"C:\data", "source": r"C:\host\data", "options": ["rbind", "RO"]},
            {"destination": r"C:\logs", "source": r"D:\logs"},
            {"destination": r"\\.\pipe\docker_engine", "source": r"\\.\pipe\docker_engine"}
        ],
        "windows": {
            "resources": {"memory": {"limit": 536_870_912u64}, "cpu": {"maximum": 5000},
                          "storage": {"iops": 100, "bps": 2000}},
            "network": {"networkNamespace": "6d2a8c39-0000-0000-0000-000000000001",
                        "allowUnqualifiedDNSQuery": true,
                        "dnsSearchList": ["a.com", "b.org"],
                        "networkSharedContainerName": "pause"},
            "devices": [{"id": "PCIP\\VEN_1", "idType": "vpci-location-path"},
                        {"id": "5b45201d-f2f2-4f3b-85bb-30ff1f953599", "idType": "class"},
                        {"id": "5b45201d-f2f2-4f3b-85bb-30ff1f953599", "idType": "vpci-class-guid"}]
        }
    });
    let want = concat!(
        r#"{"GuestOs":{"HostName":"web"},"#,
        r#""Storage":{"Layers":[{"Id":"11111111-2222-5333-8444-555555555555","Path":"C:\\l\\2"},"#,
        r#"{"Id":"aaaaaaaa-bbbb-5ccc-9ddd-eeeeeeeeeeee","Path":"C:\\l\\1"}],"#,
        r#""Path":"\\\\?\\Volume{8a8f6c4e-1b2c-5d3e-9f40-112233445566}\\","#,
        r#""QoS":{"IopsMaximum":100,"BandwidthMaximum":2000}},"#,
        r#""MappedDirectories":[{"HostPath":"C:\\host\\data","ContainerPath":"C:\\data","ReadOnly":true},"#,
        r#"{"HostPath":"D:\\logs","ContainerPath":"C:\\logs"}],"#,
        r#""MappedPipes":[{"ContainerPipeName":"docker_engine","HostPath":"\\\\.\\pipe\\docker_engine"}],"#,
        r#""Memory":{"SizeInMB":512},"Processor":{"Maximum":5000},"#,
        r#""Networking":{"AllowUnqualifiedDnsQuery":true,"DnsSearchList":"a.com,b.org","#,
        r#""NetworkSharedContainerName":"pause","Namespace":"6d2a8c39-0000-0000-0000-000000000001"},"#,
    );
    let got = container_part(spec);
    assert!(got.starts_with(want), "{got}");
    assert!(
        got.ends_with(concat!(
            r#""AssignedDevices":[{"Type":"DeviceInstance","LocationPath":"PCIP\\VEN_1"},"#,
            r#"{"InterfaceClassGuid":"5b45201d-f2f2-4f3b-85bb-30ff1f953599"},"#,
            r#"{"InterfaceClassGuid":"5b45201d-f2f2-4f3b-85bb-30ff1f953599"}]}"#
        )),
        "{got}"
    );
    assert!(got.contains(WAIT_TO_KILL), "{got}");
}

#[test]
fn cpu_and_memory_follow_convert_cpu_limits() {
    let processor = |spec: serde_json::Value| {
        let v: serde_json::Value = serde_json::from_str(&doc(spec).unwrap()).unwrap();
        (
            v["Container"]["Processor"].clone(),
            v["Container"].get("Memory").cloned(),
        )
    };
    // Count is lowered to the host's 4 processors.
    assert_eq!(
        processor(json!({"windows": {"resources": {"cpu": {"count": 16}}}})).0,
        json!({"Count": 4})
    );
    assert_eq!(
        processor(json!({"windows": {"resources": {"cpu": {"shares": 300, "count": 0}}}})).0,
        json!({"Weight": 300})
    );
    // Annotations win over the spec and count in the exclusivity check.
    let annotated = json!({
        "annotations": {CONTAINER_PROCESSOR_LIMIT: "2500", CONTAINER_MEMORY_SIZE_MB: "300"},
        "windows": {"resources": {"cpu": {"maximum": 9000}, "memory": {"limit": 1_073_741_824u64}}}
    });
    assert_eq!(
        processor(annotated),
        (json!({"Maximum": 2500}), Some(json!({"SizeInMB": 300})))
    );
    // An unparsable annotation is ignored; "0" falls back to the spec.
    let ignored = json!({
        "annotations": {CONTAINER_PROCESSOR_COUNT: "two", CONTAINER_MEMORY_SIZE_MB: "+5"},
        "windows": {"resources": {"cpu": {"count": 2}, "memory": {"limit": 3_145_728u64}}}
    });
    assert_eq!(
        processor(ignored),
        (json!({"Count": 2}), Some(json!({"SizeInMB": 3})))
    );
    // Less than a MiB of memory: no Memory at all.
    assert_eq!(
        processor(json!({"windows": {"resources": {"memory": {"limit": 1000}}}})).1,
        None
    );
    let e =
        doc(json!({"windows": {"resources": {"cpu": {"count": 2, "maximum": 100}}}})).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "invalid spec - Windows Container CPU Count: '2', Limit: '100', and Weight: '0' are mutually exclusive"
    );
    let e = doc(json!({
        "annotations": {CONTAINER_PROCESSOR_WEIGHT: "10"},
        "windows": {"resources": {"cpu": {"count": 1}}}
    }))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("Count: '1', Limit: '0', and Weight: '10'"),
        "{e}"
    );
}

#[test]
fn networking_is_present_exactly_when_the_spec_has_a_network() {
    assert!(!container_part(json!({"windows": {}})).contains("Networking"));
    let got = container_part(json!({"windows": {"network": {}}}));
    assert!(got.contains(r#""Networking":{}"#), "{got}");
    // An empty but present search list gives an empty string (omitted).
    let got = container_part(json!({"windows": {"network": {"dnsSearchList": []}}}));
    assert!(got.contains(r#""Networking":{}"#), "{got}");
}

#[test]
fn process_dumps_add_the_wer_registry_values() {
    let spec = |extra: serde_json::Value| {
        let mut a = serde_json::Map::new();
        a.insert(
            PROCESS_DUMP_LOCATION.into(),
            json!(r"C:\dumps\{container_id}"),
        );
        if let serde_json::Value::Object(m) = extra {
            a.extend(m);
        }
        json!({"annotations": a, "windows": {}})
    };
    let got = container_part(spec(json!({})));
    assert!(
        got.ends_with(concat!(
            r#""RegistryChanges":{"AddValues":[{"Key":{"Hive":"System","Name":"ControlSet001\\Control"},"#,
            r#""Name":"WaitToKillServiceTimeout","Type":"String","StringValue":"2147483647"},"#,
            r#"{"Key":{"Hive":"Software","Name":"Microsoft\\Windows\\Windows Error Reporting\\LocalDumps"},"#,
            r#""Name":"DumpFolder","Type":"String","StringValue":"C:\\dumps\\c1"},"#,
            r#"{"Key":{"Hive":"Software","Name":"Microsoft\\Windows\\Windows Error Reporting\\LocalDumps"},"#,
            r#""Name":"DumpType","Type":"DWord","DWordValue":2},"#,
            r#"{"Key":{"Hive":"Software","Name":"Microsoft\\Windows\\Windows Error Reporting\\LocalDumps"},"#,
            r#""Name":"DumpCount","Type":"DWord","DWordValue":10}]}}"#
        )),
        "{got}"
    );
    let got = container_part(spec(
        json!({PROCESS_DUMP_TYPE: "mini", PROCESS_DUMP_COUNT: "3"}),
    ));
    assert!(
        got.contains(r#""Name":"DumpType","Type":"DWord","DWordValue":1"#),
        "{got}"
    );
    assert!(
        got.contains(r#""Name":"DumpCount","Type":"DWord","DWordValue":3"#),
        "{got}"
    );
    let upper =
        json!({"annotations": {PROCESS_DUMP_LOCATION: r"C:\d\{CONTAINER_ID}"}, "windows": {}});
    assert!(container_part(upper).contains(r#""StringValue":"C:\\d\\c1""#));
    let plain = json!({"annotations": {PROCESS_DUMP_LOCATION: r"C:\d"}, "windows": {}});
    assert!(container_part(plain).contains(r#""StringValue":"C:\\d""#));
    let empty = json!({"annotations": {PROCESS_DUMP_LOCATION: ""}, "windows": {}});
    assert!(!container_part(empty).contains("DumpFolder"));
    for (bad, text) in [
        (json!({PROCESS_DUMP_TYPE: "huge"}), "unknown dump type"),
        (
            json!({PROCESS_DUMP_COUNT: "0"}),
            "invalid dump count specified: 0",
        ),
        (json!({PROCESS_DUMP_COUNT: "-2"}), "invalid dump count"),
        (json!({PROCESS_DUMP_COUNT: "many"}), "processdumpcount"),
    ] {
        let e = doc(spec(bad)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        assert!(e.to_string().contains(text), "{e}");
    }
}

#[test]
fn volume_paths_match_the_reference_pattern() {
    let guid = "8a8f6c4e-1b2c-5d3e-9f40-112233445566";
    for (path, want) in [
        (
            format!(r"\\?\Volume{{{guid}}}\"),
            format!(r"\\?\Volume{{{guid}}}\"),
        ),
        (
            format!(r"\\?\Volume{{{guid}}}"),
            format!(r"\\?\Volume{{{guid}}}\"),
        ),
        // The pattern's optional brace and doubled closing brace.
        (
            format!(r"\\?\Volume{guid}}}"),
            format!(r"\\?\Volume{guid}}}\"),
        ),
        (
            format!(r"\\?\Volume{{{guid}}}}}\"),
            format!(r"\\?\Volume{{{guid}}}}}\"),
        ),
        (
            r"\\?\Volume{8A8F6C4E-1B2C-5D3E-9F40-112233445566}\".into(),
            r"\\?\Volume{8A8F6C4E-1B2C-5D3E-9F40-112233445566}\".into(),
        ),
    ] {
        assert_eq!(volume_guid_path(&path).unwrap(), want, "{path}");
    }
    for bad in [
        String::new(),
        r"C:\scratch".into(),
        format!(r"\\?\Volume{{{guid}}}\\"),
        format!(r"\\?\Volume{{{guid}"),
        format!(r"\\?\Volume{{{guid}}}\x"),
        r"\\?\Volume{8a8f6c4e-1b2c-5d3e-9f40-11223344556g}\".into(),
        r"\\?\Volume{8a8f6c4e1b2c-5d3e-9f40-1122334455667}\".into(),
        format!(r"\\?\volume{{{guid}}}\"),
        format!(r"\\?\Volume{{{guid}}}ä"),
    ] {
        let e = volume_guid_path(&bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains("must be a volume GUID path"), "{e}");
    }
    let e = compute_system("c", "o", &json!({"windows": {}}), &[], r"C:\x", 1).unwrap_err();
    assert!(e.to_string().contains(r"Root.Path 'C:\x'"), "{e}");
}

#[test]
fn unsupported_specs_are_refused_by_name() {
    let cases: Vec<(serde_json::Value, &str, &str)> = vec![
        (json!({}), "invalid", "Windows section is missing"),
        (
            json!({"windows": null}),
            "invalid",
            "Windows section is missing",
        ),
        (json!({"windows": {"hyperv": {}}}), "invalid", "Hyper-V"),
        (
            json!({"windows": {}, "root": {"readonly": true}}),
            "invalid",
            "readonly is not supported",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": r"C:\d"}]}),
            "invalid",
            "both source and a destination",
        ),
        (
            json!({"windows": {}, "mounts": [{"source": r"C:\d"}]}),
            "invalid",
            "both source and a destination",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "C:\\s", "type": "bind"}]}),
            "invalid",
            "invalid OCI spec - Type 'bind' not supported",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "C:\\d.vhdx", "type": "virtual-disk"}]}),
            "unimplemented",
            "virtual-disk",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "0", "type": "physical-disk"}]}),
            "unimplemented",
            "physical-disk",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "x", "type": "extensible-virtual-disk"}]}),
            "unimplemented",
            "extensible-virtual-disk",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "sandbox:///tmp"}]}),
            "invalid",
            "sandbox://",
        ),
        (
            json!({"windows": {}, "mounts": [{"destination": "C:\\d", "source": "uvm://x"}]}),
            "invalid",
            "uvm://",
        ),
        (
            json!({"windows": {"credentialSpec": "{\"CmsPlugins\":[]}"}}),
            "unimplemented",
            "gMSA",
        ),
        (
            json!({"windows": {"credentialSpec": "{}"}, "annotations": {GMSA_DISABLE: "TRUE"}}),
            "precondition",
            "gMSA credentials are disabled",
        ),
        (
            json!({"windows": {"devices": [{"id": "x", "idType": "gpu"}]}}),
            "invalid",
            "specified device x has unsupported type gpu",
        ),
        (
            json!({"windows": {}, "annotations": {DEVICE_EXTENSIONS: r"C:\ext.json"}}),
            "unimplemented",
            "deviceextensions",
        ),
        (
            json!({"windows": {}, "annotations": {CONTAINER_STORAGE_IOPS: "-5", CONTAINER_STORAGE_BPS: "10"}}),
            "invalid",
            "IOPS maximum -5 is negative",
        ),
        (
            json!({"windows": {}, "annotations": {"k": 1}}),
            "invalid",
            "annotation",
        ),
        (json!({"windows": {}, "mounts": {}}), "invalid", "malformed"),
        (
            json!({"windows": {"resources": {"cpu": {"shares": -1}}}}),
            "invalid",
            "malformed",
        ),
    ];
    for (spec, kind, text) in cases {
        let e = doc(spec.clone()).unwrap_err();
        let got = match e {
            Error::InvalidArgument(_) => "invalid",
            Error::Unimplemented(_) => "unimplemented",
            Error::FailedPrecondition(_) => "precondition",
            _ => "other",
        };
        assert_eq!(got, kind, "{spec}: {e}");
        assert!(e.to_string().contains(text), "{spec}: {e}");
    }
    // A credential spec that is not a string (the reference's type assertion fails) is
    // ignored, as in the reference.
    assert!(doc(json!({"windows": {"credentialSpec": {"a": 1}}})).is_ok());
}

#[test]
fn the_owner_defaults_to_the_executable_name() {
    let cs = compute_system("c", "", &json!({"windows": {}}), &[], VOLUME, 1).unwrap();
    let exe = std::env::current_exe().unwrap();
    assert_eq!(cs.owner, exe.file_name().unwrap().to_string_lossy());
    assert!(!cs.owner.is_empty());
}
