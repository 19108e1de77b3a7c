//! Decoding leniency and error paths of the payload types.

use super::*;
use crate::codec::{encode_body, Encoding};
use crate::hresult::Hresult;
use crate::json::AnyInString;

#[test]
fn accepts_go_case_variants() {
    use hcs_schema::json::from_str;
    let base: RequestBase = from_str(r#"{"ContainerID":"c1","ActivityID":"a"}"#).unwrap();
    assert_eq!(base.container_id, "c1");
    assert_eq!(base.activity_id, "a");
    let p: ProcessParameters = from_str(r#"{"CreateInUtilityVm":true}"#).unwrap();
    assert!(p.create_in_utility_vm);
    let w: WaitForProcessRequest =
        from_str(r#"{"ContainerId":"c","ProcessID":5,"TimeoutInMs":1}"#).unwrap();
    assert_eq!(w.process_id, 5);
    let c: GcsCapabilities = from_str(r#"{"HVSocketConfigOnStartup":true}"#).unwrap();
    assert!(c.hv_socket_config_on_startup);
    // Two spellings of one key: the later wins, as in Go.
    let w: WaitForProcessRequest = from_str(r#"{"ProcessId":1,"PROCESSID":2}"#).unwrap();
    assert_eq!(w.process_id, 2);
}

#[test]
fn missing_fields_take_go_zero_values() {
    let r: ExecuteProcessRequest =
        serde_json::from_str(r#"{"ContainerId":"c","Settings":{"ProcessParameters":"{}"}}"#)
            .unwrap();
    assert_eq!(r.settings.stdio_ports(), VsockStdioRelaySettings::default());
    assert_eq!(r.base.activity_id, "");
    let n: NegotiateProtocolResponse = serde_json::from_str(r#"{"Result":0}"#).unwrap();
    assert_eq!(n.capabilities.guest_defined_capabilities, None);
}

#[test]
fn modify_settings_empty_request_type_is_kept_empty() {
    // The GCS reads "" as Add; the decoded request says what was on the wire.
    let m: ModifySettingsRequest = serde_json::from_str(
        r#"{"ContainerId":"c","Request":{"ResourceType":"SCSIDevice","Settings":{"Lun":2}}}"#,
    )
    .unwrap();
    assert_eq!(m.request.request_type, ModifyRequestType::default());
    assert_eq!(m.request.request_type.as_str(), "");
    assert_eq!(
        m.request.settings,
        Some(ResourceSettings::ScsiDevice(ScsiDevice {
            controller: 0,
            lun: 2
        }))
    );
}

#[test]
fn modify_settings_unknown_resource_type_decodes_as_other() {
    let m: ModifySettingsRequest = serde_json::from_str(
        r#"{"ContainerId":"c","Request":{"RequestType":"Add","ResourceType":"Bogus","Settings":{"x":1}}}"#,
    )
    .unwrap();
    assert_eq!(m.request.resource_type, ResourceType::Other("Bogus".into()));
    assert!(!linux_gcs_accepts(&m.request.resource_type));
    assert!(matches!(
        m.request.settings,
        Some(ResourceSettings::Other(_))
    ));
    // A host-only type is known to the schema but not taken by the Linux GCS.
    let m: ModifySettingsRequest = serde_json::from_str(
        r#"{"ContainerId":"c","Request":{"RequestType":"Add","ResourceType":"HvSocket","Settings":{"x":1}}}"#,
    )
    .unwrap();
    assert_eq!(m.request.resource_type, ResourceType::HvSocket);
    assert!(!linux_gcs_accepts(&m.request.resource_type));
}

#[test]
fn modify_settings_bad_settings_is_an_error() {
    let err = serde_json::from_str::<ModifySettingsRequest>(
        r#"{"ContainerId":"c","Request":{"ResourceType":"MappedVirtualDisk","Settings":{"Lun":"x"}}}"#,
    )
    .unwrap_err();
    assert!(err
        .to_string()
        .contains("invalid MappedVirtualDisk settings"));
    // Lun is a u8: an out-of-range number is rejected, as Go's decoder does.
    assert!(serde_json::from_str::<ModifySettingsRequest>(
        r#"{"ContainerId":"c","Request":{"ResourceType":"MappedVirtualDisk","Settings":{"Lun":300}}}"#,
    )
    .is_err());
}

#[test]
fn modify_settings_without_request_or_required_settings_is_an_error() {
    for body in [
        r#"{"ContainerId":"c"}"#,
        r#"{"ContainerId":"c","Request":null}"#,
        r#"{"ContainerId":"c","Request":{"ResourceType":"CombinedLayers"}}"#,
        r#"{"ContainerId":"c","Request":{"ResourceType":"SCSIDevice","Settings":null}}"#,
        r#"{"ContainerId":"c","Request":{"ResourceType":"ContainerConstraints","RequestType":"Update"}}"#,
    ] {
        assert!(
            serde_json::from_str::<ModifySettingsRequest>(body).is_err(),
            "{body}"
        );
    }
    // No Settings is fine where the reference decodes none: PodCgroupMemoryLimit, and
    // types it refuses as "invalid ResourceType" (answered after decoding).
    for (body, t) in [
        (
            r#"{"Request":{"ResourceType":"PodCgroupMemoryLimit","RequestType":"Update"}}"#,
            ResourceType::PodCgroupMemoryLimit,
        ),
        (
            r#"{"Request":{"ResourceType":"Bogus"}}"#,
            ResourceType::Other("Bogus".into()),
        ),
        (r#"{"Request":{}}"#, ResourceType::default()),
    ] {
        let m: ModifySettingsRequest = serde_json::from_str(body).unwrap();
        assert_eq!(m.request.resource_type, t, "{body}");
        assert_eq!(m.request.settings, None);
    }
}

#[test]
fn bad_nested_json_is_an_error() {
    assert!(serde_json::from_str::<CreateRequest>(
        r#"{"ContainerId":"c","ContainerConfig":"{\"SchemaVersion\":"}"#
    )
    .is_err());
    assert!(
        serde_json::from_str::<CreateRequest>(r#"{"ContainerId":"c","ContainerConfig":5}"#)
            .is_err()
    );
}

#[test]
fn an_empty_or_null_query_is_no_query() {
    for body in [
        r#"{"ContainerId":"c","Query":""}"#,
        r#"{"ContainerId":"c","Query":null}"#,
        r#"{"ContainerId":"c"}"#,
    ] {
        let r: GetPropertiesRequest = serde_json::from_str(body).unwrap();
        assert_eq!(*r.query, PropertyQuery::default(), "{body}");
    }
    let r: GetPropertiesRequest = serde_json::from_str(
        r#"{"ContainerId":"c","Query":"{\"PropertyTypes\":[\"ProcessList\"]}"}"#,
    )
    .unwrap();
    assert_eq!(r.query.property_types, vec![PropertyType::ProcessList]);
    // Not empty: must hold JSON (and the other strings-of-JSON keep failing on "").
    for body in [
        r#"{"ContainerId":"c","Query":" "}"#,
        r#"{"ContainerId":"c","Query":"{"}"#,
        r#"{"ContainerId":"c","Query":5}"#,
    ] {
        assert!(
            serde_json::from_str::<GetPropertiesRequest>(body).is_err(),
            "{body}"
        );
    }
    assert!(
        serde_json::from_str::<CreateRequest>(r#"{"ContainerId":"c","ContainerConfig":""}"#)
            .is_err()
    );
}

#[test]
fn html_escaping_differs_by_side() {
    let mut p = ProcessParameters {
        command_line: "a<b && c>d \u{2028}".into(),
        ..Default::default()
    };
    p.environment.insert("Z".into(), "1".into());
    p.environment.insert("A".into(), "2".into());
    let msg = ExecuteProcessRequest {
        base: RequestBase::null(),
        settings: ExecuteProcessSettings {
            process_parameters: AnyInString(p),
            vsock_stdio_relay_settings: None,
        },
    };
    let host = String::from_utf8(encode_body(&msg, Encoding::Host).unwrap()).unwrap();
    // The nested string is always json.Marshal'ed (escaped); the map keys are sorted.
    assert!(host.contains(r#"\"CommandLine\":\"a\\u003cb \\u0026\\u0026 c\\u003ed \\u2028\""#));
    assert!(host.contains(r#"\"Environment\":{\"A\":\"2\",\"Z\":\"1\"}"#));
    assert!(host.ends_with("}\n"));

    let resp = ResponseBase::failure("", Hresult::FAIL, "x<y>&z\u{2029}");
    let guest = String::from_utf8(encode_body(&resp, Encoding::Guest).unwrap()).unwrap();
    assert!(guest.contains(r#""ErrorMessage":"x\u003cy\u003e\u0026z\u2029""#));
    assert!(!guest.ends_with('\n'));
    let host = String::from_utf8(encode_body(&resp, Encoding::Host).unwrap()).unwrap();
    assert!(host.contains("\"ErrorMessage\":\"x<y>&z\\u2029\""));
}

#[test]
fn notification_types_keep_unknown_values() {
    let n: ContainerNotification = serde_json::from_str(
        r#"{"ContainerId":"c","ActivityId":"a","Type":"Weird","Operation":"None","Result":0}"#,
    )
    .unwrap();
    assert_eq!(n.notification_type, NotificationType::Other("Weird".into()));
    assert_eq!(n.notification_type.as_str(), "Weird");
}

#[test]
fn failure_response_has_one_gcs_record() {
    let r = ResponseBase::failure("a", Hresult::ERR_NOT_FOUND, "gone");
    assert_eq!(r.error_records.len(), 1);
    assert_eq!(r.error_records[0].module_name, GCS_MODULE_NAME);
    assert_eq!(r.error_records[0].line, UNKNOWN_LINE);
    assert!(!r.is_success());
}

/// Go's decoder: `null` leaves a field at its zero value, keys match in any case, absent
/// keys are zero; both through the codec and through plain serde_json.
#[test]
fn bodies_decode_with_go_rules() {
    let body = br#"{"containerid":"c","ActivityId":null,"PROCESSID":7,"TimeoutInMs":null}"#;
    let via_codec: WaitForProcessRequest =
        crate::codec::decode_body(crate::MessageType::WaitForProcess.as_u32(), body).unwrap();
    let via_serde: WaitForProcessRequest = serde_json::from_slice(body).unwrap();
    for r in [via_codec, via_serde] {
        assert_eq!(r.base.container_id, "c");
        assert_eq!(r.base.activity_id, "");
        assert_eq!((r.process_id, r.timeout_in_ms), (7, 0));
    }
    let r: ExecuteProcessResponse = crate::codec::decode_body(
        crate::MessageType::ExecuteProcess.as_u32(),
        br#"{"Result":null,"ErrorMessage":null,"ErrorRecords":null,"ProcessId":null}"#,
    )
    .unwrap();
    assert_eq!(r, ExecuteProcessResponse::default());
    // A notification without Type or Operation: Go's zero values ("").
    let n: ContainerNotification = serde_json::from_str(r#"{"ContainerId":"c"}"#).unwrap();
    assert_eq!(n.notification_type.as_str(), "");
    // Wrong types are still errors.
    assert!(serde_json::from_str::<WaitForProcessRequest>(r#"{"ProcessId":"7"}"#).is_err());
}

/// An embedded OCI document inside a JSON string is kept in the sender's key order.
#[test]
fn embedded_documents_keep_their_order() {
    let r: ExecuteProcessRequest = serde_json::from_str(
        r#"{"ContainerId":"c","Settings":{"ProcessParameters":"{\"ociprocess\":{\"z\":1,\"args\":[\"a\",null]}}"}}"#,
    )
    .unwrap();
    let p = r.settings.process_parameters.into_inner();
    assert_eq!(p.oci_process.unwrap().get(), r#"{"z":1,"args":["a",null]}"#);
}
