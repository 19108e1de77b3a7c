//! Every error path of the reference's bridge and request handlers (spec §2–§4), one row
//! each: the request, the HRESULT the reference answers with and its error text (exactly
//! where the reference's text is fixed, else a part that names the problem).
//!
//! Each answer must also have the reference's ErrorRecords shape: the request's ActivityId
//! echoed, exactly one record with the same Result and Message as the response, module
//! `gcs`, and no source location (`FileName` empty, `Line` 4294967295, no `StackTrace` or
//! `FunctionName`), which is the reference's shape for errors without a Go stack (spec §10
//! V13). For errors it builds with `pkg/errors` the reference also fills the location fields
//! from its Go stack; this agent has no Go stack to report, and the host only logs them.
//!
//! Runs real containers as root: one running (`live`), one whose init has exited (`done`).

mod common;

use bridge::messages::*;
use bridge::{Frame, MessageType};
use common::*;
use serde_json::{json, Value};

const ACTIVITY: &str = "12345678-9abc-def0-1234-56789abcdef0";

/// What the error text must be.
enum Text {
    /// Exactly this.
    Is(String),
    /// Contains this.
    Has(&'static str),
}

struct Row {
    name: &'static str,
    message_type: u32,
    body: Vec<u8>,
    hresult: u32,
    text: Text,
}

fn row(name: &'static str, t: MessageType, body: Value, hresult: u32, text: Text) -> Row {
    Row {
        name,
        message_type: t.as_u32(),
        body: serde_json::to_vec(&body).unwrap(),
        hresult,
        text,
    }
}

/// A request body: the base with [`ACTIVITY`] plus `extra`'s keys.
fn req(id: &str, extra: Value) -> Value {
    let mut v = json!({"ContainerId": id, "ActivityId": ACTIVITY});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

fn bare(hresult: u32) -> Text {
    Text::Is(format!("HRESULT: {hresult:#x}"))
}

fn not_impl(name: &str) -> Text {
    Text::Is(format!(
        "HRESULT 0x80004001: bridge: function not supported, header type: {name}"
    ))
}

/// The response to `r` has the row's HRESULT, text and the reference's ErrorRecords shape.
fn check(r: &Row, f: &Frame) -> Result<(), String> {
    let b: ResponseBase = f.decode().map_err(|e| format!("undecodable: {e}"))?;
    let text = String::from_utf8_lossy(&f.body);
    if b.result.0 != r.hresult as i32 {
        return Err(format!("Result {:#x}: {text}", b.result.0 as u32));
    }
    match &r.text {
        Text::Is(s) if b.error_message != *s => return Err(format!("message: {text}")),
        Text::Has(s) if !b.error_message.contains(s) => return Err(format!("message: {text}")),
        _ => {}
    }
    let v: Value = serde_json::from_slice(&f.body).unwrap();
    let records = v["ErrorRecords"].as_array().cloned().unwrap_or_default();
    let want = json!([{
        "Result": r.hresult as i32,
        "Message": b.error_message,
        "ModuleName": "gcs",
        "FileName": "",
        "Line": 4294967295u32,
    }]);
    if Value::Array(records) != want {
        return Err(format!("ErrorRecords: {text}"));
    }
    // ActivityId is echoed when the request could be decoded (the raw-garbage rows have none).
    if serde_json::from_slice::<Value>(&r.body).is_ok() && b.activity_id != ACTIVITY {
        return Err(format!("ActivityId not echoed: {text}"));
    }
    Ok(())
}

fn run(g: &Gcs, rows: &[Row]) -> Vec<String> {
    let mut failed = Vec::new();
    for r in rows {
        let f = wait_response(&g.send_raw(r.message_type, &r.body));
        if f.header.message_type != bridge::header::response_for(r.message_type) {
            failed.push(format!(
                "{}: response type {:#x}",
                r.name, f.header.message_type
            ));
        } else if let Err(e) = check(r, &f) {
            failed.push(format!("{}: {e}", r.name));
        }
    }
    failed
}

fn container_config(bundle: &str, spec: &Value, minor: u32) -> String {
    json!({
        "SchemaVersion": {"Major": 2, "Minor": minor},
        "OciBundlePath": bundle,
        "OciSpecification": spec,
        "ScratchDirPath": "",
    })
    .to_string()
}

fn modify(id: &str, request: Value) -> Value {
    req(id, json!({ "Request": request }))
}

#[test]
fn every_error_path_answers_like_the_reference() {
    use MessageType as M;
    let g = Gcs::start();
    let unknown = "4c0ffee04c0ffee04c0ffee04c0ffee04c0ffee04c0ffee04c0ffee04c0ffee0";
    let null = NULL_CONTAINER_ID;

    // §2 dispatch, before negotiation.
    let mut failed = run(
        &g,
        &[
            row(
                "a request before NegotiateProtocol",
                M::Start,
                req(unknown, json!({})),
                0x8000_4001,
                not_impl("ComputeSystemStartV1"),
            ),
            row(
                "NegotiateProtocol with MaximumVersion below 4",
                M::NegotiateProtocol,
                req(null, json!({"MinimumVersion": 1, "MaximumVersion": 3})),
                0xC037_010C,
                bare(0xC037_010C),
            ),
            row(
                "NegotiateProtocol with MinimumVersion above 4",
                M::NegotiateProtocol,
                req(null, json!({"MinimumVersion": 5, "MaximumVersion": 9})),
                0xC037_010C,
                bare(0xC037_010C),
            ),
        ],
    );
    assert_eq!(result_of(&g.negotiate()), 0);

    // Fixtures: `live` runs, `done` has exited (and was waited for), `slow` is still being
    // created (a createRuntime hook sleeps in runc create).
    let live = unique("live");
    g.add_rootfs(&live);
    assert_eq!(result_of(&g.create(&live, &["sleep", "100000"], false)), 0);
    let (r, _) = g.execute(&live, None, [false, false, false]);
    let live_init: ExecuteProcessResponse = r.decode().unwrap();
    let done = unique("done");
    g.add_rootfs(&done);
    assert_eq!(result_of(&g.create(&done, &["true"], false)), 0);
    let (r, _) = g.execute(&done, None, [false, false, false]);
    let done_init: ExecuteProcessResponse = r.decode().unwrap();
    assert_eq!(g.wait(&done, done_init.process_id), (0, 0));
    g.next_notification(TIMEOUT)
        .expect("exit notification of done");
    let bad = unique("bad");
    g.add_rootfs(&bad);
    let mut bad_spec = oci_spec(&g.bundle(&bad), &["true"], false);
    bad_spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    let live_spec = oci_spec(&g.bundle(&live), &["true"], false);
    let lp = live_init.process_id;
    let cc = |bundle: &str, spec: &Value, minor: u32| container_config(bundle, spec, minor);
    let bundle_of = |id: &str| g.bundle(id).to_string_lossy().into_owned();

    failed.extend(run(
        &g,
        &[
            // §2 dispatch, after negotiation.
            row(
                "a second NegotiateProtocol",
                M::NegotiateProtocol,
                req(null, json!({"MinimumVersion": 4, "MaximumVersion": 4})),
                0x8000_4001,
                not_impl("ComputeSystemNegotiateProtocolV1"),
            ),
            row(
                "UpdateContainer (Windows sidecar only)",
                M::UpdateContainer,
                req(unknown, json!({})),
                0x8000_4001,
                not_impl("269487617"),
            ),
            row(
                "LifecycleNotification (Windows sidecar only)",
                M::LifecycleNotification,
                req(unknown, json!({})),
                0x8000_4001,
                not_impl("269487873"),
            ),
            row(
                "ModifyServiceSettings (WCOW only)",
                M::ModifyServiceSettings,
                req(null, json!({})),
                0x8000_4001,
                not_impl("270532865"),
            ),
            Row {
                name: "an unknown message type",
                message_type: 0x1010_9901,
                body: serde_json::to_vec(&req(unknown, json!({}))).unwrap(),
                hresult: 0x8000_4001,
                text: Text::Is(
                    "HRESULT 0x80004001: bridge: function not supported, header type: 269523201"
                        .into(),
                ),
            },
            Row {
                name: "a body that is not JSON",
                message_type: M::Start.as_u32(),
                body: b"{not json".to_vec(),
                hresult: 0xC037_010D,
                text: Text::Has("HRESULT 0xc037010d: "),
            },
            // §3 Create.
            row(
                "Create with SchemaVersion 2.0",
                M::Create,
                req(unknown, json!({"ContainerConfig": cc(&bundle_of(unknown), &live_spec, 0)})),
                0xC037_010D,
                Text::Is("HRESULT 0xc037010d: invalid schema version: {2 0}".into()),
            ),
            row(
                "Create whose ContainerConfig is not JSON",
                M::Create,
                req(unknown, json!({"ContainerConfig": "{nope"})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "Create of an existing id",
                M::Create,
                req(&live, json!({"ContainerConfig": cc(&bundle_of(&live), &live_spec, 1)})),
                0xC037_010F,
                bare(0xC037_010F),
            ),
            row(
                "Create that runc refuses",
                M::Create,
                req(&bad, json!({"ContainerConfig": cc(&bundle_of(&bad), &bad_spec, 1)})),
                0x8000_4005,
                Text::Has("runc create failed"),
            ),
            row(
                "Create with an id that is not a plain name",
                M::Create,
                req("../evil", json!({"ContainerConfig": cc(&bundle_of("evil"), &live_spec, 1)})),
                0x8000_4005,
                Text::Has("invalid container id: ../evil"),
            ),
            // §3 Shutdown.
            row(
                "ShutdownGraceful of an unknown container",
                M::ShutdownGraceful,
                req(unknown, json!({})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ShutdownForced of an unknown container",
                M::ShutdownForced,
                req(unknown, json!({})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ShutdownGraceful of a container whose init has exited",
                M::ShutdownGraceful,
                req(&done, json!({})),
                0xC037_0110,
                Text::Has("HRESULT: 0xc0370110"),
            ),
            row(
                "ShutdownForced of a container whose init has exited",
                M::ShutdownForced,
                req(&done, json!({})),
                0xC037_0110,
                Text::Has("HRESULT: 0xc0370110"),
            ),
            // §3 ExecuteProcess.
            row(
                "ExecuteProcess in an unknown container",
                M::ExecuteProcess,
                req(unknown, json!({"Settings": {"ProcessParameters": "{}"}})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ExecuteProcess whose ProcessParameters is not JSON",
                M::ExecuteProcess,
                req(&live, json!({"Settings": {"ProcessParameters": "{nope"}})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "a second init ExecuteProcess",
                M::ExecuteProcess,
                req(&live, json!({"Settings": {"ProcessParameters": "{}"}})),
                0x8000_4005,
                Text::Has("already started"),
            ),
            row(
                "an external process whose CommandLine has an unterminated quote",
                M::ExecuteProcess,
                req(null, json!({"Settings": {"ProcessParameters": "{\"CommandLine\":\"sh -c 'x\"}"}})),
                0x8000_4005,
                Text::Has("failed to parse command line string"),
            ),
            // §3 WaitForProcess.
            row(
                "WaitForProcess in an unknown container",
                M::WaitForProcess,
                req(unknown, json!({"ProcessId": 1, "TimeoutInMs": 0})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "WaitForProcess of an unknown pid",
                M::WaitForProcess,
                req(&live, json!({"ProcessId": 999_999, "TimeoutInMs": 0})),
                0x8007_0490,
                bare(0x8007_0490),
            ),
            row(
                "WaitForProcess of an unknown external pid",
                M::WaitForProcess,
                req(null, json!({"ProcessId": 999_999, "TimeoutInMs": 0})),
                0x8007_0490,
                bare(0x8007_0490),
            ),
            row(
                "WaitForProcess that times out",
                M::WaitForProcess,
                req(&live, json!({"ProcessId": lp, "TimeoutInMs": 10})),
                0xC037_0109,
                bare(0xC037_0109),
            ),
            // §3 SignalProcess.
            row(
                "SignalProcess in an unknown container",
                M::SignalProcess,
                req(unknown, json!({"ProcessId": 1})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "SignalProcess of the null container",
                M::SignalProcess,
                req(null, json!({"ProcessId": 1})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "SignalProcess of an unknown pid",
                M::SignalProcess,
                req(&live, json!({"ProcessId": 999_999, "Options": {"Signal": 15}})),
                0x8007_0490,
                bare(0x8007_0490),
            ),
            row(
                "SignalProcess of a process that has exited",
                M::SignalProcess,
                req(&done, json!({"ProcessId": done_init.process_id})),
                0x8007_0490,
                bare(0x8007_0490),
            ),
            // §3 ResizeConsole.
            row(
                "ResizeConsole of the null container",
                M::ResizeConsole,
                req(null, json!({"ProcessId": 1, "Height": 10, "Width": 10})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ResizeConsole of an unknown pid",
                M::ResizeConsole,
                req(&live, json!({"ProcessId": 999_999, "Height": 10, "Width": 10})),
                0x8007_0490,
                bare(0x8007_0490),
            ),
            row(
                "ResizeConsole of a process without a tty",
                M::ResizeConsole,
                req(&live, json!({"ProcessId": lp, "Height": 10, "Width": 10})),
                0x8000_4005,
                Text::Is(format!("pid: {lp}, is not a tty and cannot be resized")),
            ),
            // §3 GetProperties.
            row(
                "GetProperties of the null container",
                M::GetProperties,
                req(null, json!({"Query": "{\"PropertyTypes\":[\"ProcessList\"]}"})),
                0x8000_4005,
                Text::Is("getPropertiesV2 is not supported against the UVM".into()),
            ),
            row(
                "GetProperties of an unknown container",
                M::GetProperties,
                req(unknown, json!({"Query": "{\"PropertyTypes\":[\"ProcessList\"]}"})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "GetProperties of an unknown container with an empty Query",
                M::GetProperties,
                req(unknown, json!({"Query": ""})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "GetProperties whose Query is not JSON",
                M::GetProperties,
                req(&live, json!({"Query": "{nope"})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            // §3 ModifySettings.
            row(
                "ModifySettings with an unknown ResourceType",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "Bogus", "Settings": {}})),
                0x8000_4005,
                Text::Is("invalid ResourceType 'Bogus'".into()),
            ),
            row(
                "ModifySettings with an unknown ResourceType for a container",
                M::ModifySettings,
                modify(unknown, json!({"ResourceType": "Bogus", "Settings": {}})),
                0x8000_4005,
                Text::Is("invalid ResourceType 'Bogus'".into()),
            ),
            row(
                "ModifySettings without a Request, for an unknown container",
                M::ModifySettings,
                req(unknown, json!({})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "ModifySettings with a null Request",
                M::ModifySettings,
                req(null, json!({"Request": null})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "ModifySettings of a known ResourceType without Settings, unknown container",
                M::ModifySettings,
                modify(unknown, json!({"ResourceType": "ContainerConstraints", "RequestType": "Update"})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "ModifySettings of a known ResourceType with null Settings",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "SCSIDevice", "RequestType": "Remove", "Settings": null})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "ModifySettings whose Settings do not fit the ResourceType",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "CombinedLayers", "Settings": {"Layers": 5}})),
                0xC037_010D,
                Text::Has("HRESULT 0xc037010d: "),
            ),
            row(
                "ModifySettings of a UVM resource for an unknown container",
                M::ModifySettings,
                modify(unknown, json!({"ResourceType": "SCSIDevice", "RequestType": "Remove", "Settings": {"Lun": 1}})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ModifySettings of a UVM resource for a container",
                M::ModifySettings,
                modify(&live, json!({"ResourceType": "SCSIDevice", "RequestType": "Remove", "Settings": {"Lun": 1}})),
                0x8000_4005,
                Text::Is("the ResourceType \"SCSIDevice\" is not supported for containers".into()),
            ),
            row(
                "ModifySettings with an unknown RequestType",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "CombinedLayers", "RequestType": "Bogus", "Settings": {"ContainerRootPath": "/x"}})),
                0x8000_4005,
                Text::Is("the RequestType \"Bogus\" is not supported".into()),
            ),
            row(
                "ModifySettings with a RequestType the resource does not take",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "SCSIDevice", "RequestType": "Add", "Settings": {"Lun": 1}})),
                0x8000_4005,
                Text::Is("the RequestType \"Add\" is not supported".into()),
            ),
            row(
                "ModifySettings of ContainerConstraints for the null container",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "ContainerConstraints", "RequestType": "Update", "Settings": {"Linux": {}}})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ModifySettings of ContainerConstraints for an unknown container",
                M::ModifySettings,
                modify(unknown, json!({"ResourceType": "ContainerConstraints", "RequestType": "Update", "Settings": {"Linux": {}}})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
            row(
                "ModifySettings of PodCgroupMemoryLimit other than Update",
                M::ModifySettings,
                modify(null, json!({"ResourceType": "PodCgroupMemoryLimit", "RequestType": "Add"})),
                0x8000_4005,
                Text::Is("the RequestType \"Add\" is not supported".into()),
            ),
            // §3 DeleteContainerState.
            row(
                "DeleteContainerState of an unknown container",
                M::DeleteContainerState,
                req(unknown, json!({})),
                0xC037_010E,
                bare(0xC037_010E),
            ),
        ],
    ));

    // InvalidState: requests for a container that is still being created.
    let slow = unique("slow");
    g.add_rootfs(&slow);
    let mut slow_spec = oci_spec(&g.bundle(&slow), &["true"], false);
    slow_spec["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    let creating = g.send(
        MessageType::Create,
        &CreateRequest {
            base: RequestBase::new(&slow),
            container_config: bridge::AnyInString(ContainerConfig {
                schema_version: SchemaVersion::V2_1,
                oci_bundle_path: bundle_of(&slow),
                oci_specification: Some(bridge::RawJson::from_value(&slow_spec).unwrap()),
                scratch_dir_path: String::new(),
            }),
        },
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let still = Text::Is("container is still being created: HRESULT: 0x80370105".into());
    let again = || Text::Is("container is still being created: HRESULT: 0x80370105".into());
    failed.extend(run(
        &g,
        &[
            row(
                "ShutdownGraceful while the container is being created",
                M::ShutdownGraceful,
                req(&slow, json!({})),
                0x8037_0105,
                still,
            ),
            row(
                "WaitForProcess while the container is being created",
                M::WaitForProcess,
                req(&slow, json!({"ProcessId": 1, "TimeoutInMs": 0})),
                0x8037_0105,
                again(),
            ),
            row(
                "ExecuteProcess while the container is being created",
                M::ExecuteProcess,
                req(&slow, json!({"Settings": {"ProcessParameters": "{}"}})),
                0x8037_0105,
                again(),
            ),
        ],
    ));
    let r = wait_response(&creating);
    assert_eq!(result_of(&r), 0, "slow create: {}", body(&r));

    // An empty Query is no query: "{}" once the container is found.
    let q = serde_json::to_vec(&req(&live, json!({"Query": ""}))).unwrap();
    let f = wait_response(&g.send_raw(MessageType::GetProperties.as_u32(), &q));
    assert_eq!(result_of(&f), 0, "empty Query: {}", body(&f));
    let v: Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(v["Properties"], "{}", "{}", body(&f));

    // Cleanup, and the agent still serves.
    let wait = g.wait_async(&live, lp, u32::MAX);
    assert_eq!(result_of(&g.simple(MessageType::ShutdownForced, &live)), 0);
    wait_response(&wait);
    g.next_notification(TIMEOUT)
        .expect("exit notification of live");
    for id in [&live, &done, &slow] {
        let r = g.simple(MessageType::DeleteContainerState, id);
        assert_eq!(result_of(&r), 0, "delete {id}: {}", body(&r));
    }
    for id in [&live, &done, &slow, &bad] {
        assert_eq!(result_of(&g.remove_rootfs(id)), 0, "remove rootfs {id}");
    }
    assert!(
        failed.is_empty(),
        "{} rows differ from the reference:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
