//! Dispatch rules and bad input: each bad request gets the reference's error response and the
//! agent keeps serving; a bad header drops the connection and the agent re-dials (or, over
//! stdio, exits with a clear message).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bridge::messages::*;
use bridge::{Encoding, MessageHeader, MessageType};
use common::*;

const NOT_IMPL: u32 = 0x8000_4001;

fn error_message(f: &bridge::Frame) -> String {
    let b: ResponseBase = f.decode().unwrap();
    b.error_message
}

#[test]
fn negotiate_response_matches_the_reference_bytes() {
    let g = Gcs::start();
    let r = g.negotiate();
    // Spec §10 V2.
    assert_eq!(
        body(&r),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","Version":4,"Capabilities":{"SupportedSchemaVersions":[{"Major":2,"Minor":1}],"RuntimeOsType":"Linux","GuestDefinedCapabilities":{"NamespaceAddRequestSupported":true,"SignalProcessSupported":true,"DumpStacksSupported":true,"DeleteContainerStateSupported":true}}}"#
    );
    assert_eq!(r.header.size, 342);
    assert_eq!(r.header.id, 0);
}

#[test]
fn requests_before_negotiation_and_a_second_negotiate_are_not_implemented() {
    let g = Gcs::start();
    let r = g.simple(MessageType::Start, "abc");
    assert_eq!(result_of(&r), hr(NOT_IMPL));
    assert_eq!(
        error_message(&r),
        "HRESULT 0x80004001: bridge: function not supported, header type: ComputeSystemStartV1"
    );
    // Unsupported version, then a good one.
    let bad = NegotiateProtocolRequest {
        minimum_version: 2,
        maximum_version: 3,
        ..Default::default()
    };
    let r = g.request(MessageType::NegotiateProtocol, &bad);
    assert_eq!(result_of(&r), hr(0xC037010C));
    assert_eq!(result_of(&g.negotiate()), 0);
    let r = g.negotiate();
    assert_eq!(result_of(&r), hr(NOT_IMPL));
    assert!(error_message(&r).ends_with("header type: ComputeSystemNegotiateProtocolV1"));
    // Still serving.
    let r = g.simple(MessageType::DumpStacks, NULL_CONTAINER_ID);
    assert_eq!(result_of(&r), 0, "{}", body(&r));
    let d: DumpStacksResponse = r.decode().unwrap();
    assert!(d.guest_stacks.contains("thread"));
}

#[test]
fn the_request_base_is_decoded_by_each_handler_and_dump_stacks_reads_none() {
    let g = Gcs::negotiated();
    // The reference's DumpStacks never parses its body.
    for garbage in [&b"{not json"[..], b"", b"[1,2]", b"{\"ContainerId\":5}"] {
        let f = wait_response(&g.send_raw(MessageType::DumpStacks.as_u32(), garbage));
        assert_eq!(result_of(&f), 0, "{}", body(&f));
        let d: DumpStacksResponse = f.decode().unwrap();
        assert!(d.guest_stacks.contains("thread"));
    }
    // The others answer their own decode failure (InvalidJSON), echoing the ActivityId Go
    // could still read; a null-id shutdown that does not decode does not stop the VM.
    let f = wait_response(&g.send_raw(
        MessageType::ShutdownForced.as_u32(),
        format!(r#"{{"ContainerId":"{NULL_CONTAINER_ID}","ActivityId":5}}"#).as_bytes(),
    ));
    assert_eq!(result_of(&f), hr(0xC037_010D), "{}", body(&f));
    for t in [MessageType::Start, MessageType::DeleteContainerState] {
        let f = wait_response(&g.send_raw(t.as_u32(), b"{not json"));
        assert_eq!(result_of(&f), hr(0xC037_010D), "{t}: {}", body(&f));
        let f = wait_response(&g.send_raw(t.as_u32(), br#"{"ContainerId":5,"ActivityId":"a"}"#));
        assert_eq!(result_of(&f), hr(0xC037_010D), "{t}: {}", body(&f));
        let b: ResponseBase = f.decode().unwrap();
        assert_eq!(b.activity_id, "a");
    }
    let r = g.simple(MessageType::DumpStacks, NULL_CONTAINER_ID);
    assert_eq!(result_of(&r), 0, "still serving: {}", body(&r));
}

#[test]
fn unknown_types_invalid_json_and_unknown_containers() {
    let g = Gcs::negotiated();
    // Unknown request type: decimal in the message.
    let f = wait_response(&g.send_raw(0x1010_1001, b"{}"));
    assert_eq!(f.header.message_type, 0x2010_1001);
    assert_eq!(result_of(&f), hr(NOT_IMPL));
    assert!(
        error_message(&f).ends_with("header type: 269488129"),
        "{}",
        body(&f)
    );
    // Handled by the reference only on Windows; its guest has no name for it (decimal).
    let f = wait_response(&g.send_raw(MessageType::UpdateContainer.as_u32(), b"{}"));
    assert_eq!(result_of(&f), hr(NOT_IMPL));
    assert!(
        error_message(&f).ends_with("header type: 269487617"),
        "{}",
        body(&f)
    );
    // Type 0 is "None".
    let f = wait_response(&g.send_raw(0, b"{}"));
    assert_eq!(result_of(&f), hr(NOT_IMPL));
    assert!(
        error_message(&f).ends_with("header type: None"),
        "{}",
        body(&f)
    );

    // Invalid JSON.
    let f = wait_response(&g.send_raw(MessageType::Start.as_u32(), b"{not json"));
    assert_eq!(result_of(&f), hr(0xC037010D), "{}", body(&f));
    let f = wait_response(&g.send_raw(
        MessageType::WaitForProcess.as_u32(),
        br#"{"ContainerId":"x","ProcessId":"twelve"}"#,
    ));
    assert_eq!(result_of(&f), hr(0xC037010D), "{}", body(&f));
    // Create with an old schema version.
    let f = wait_response(&g.send_raw(
        MessageType::Create.as_u32(),
        br#"{"ContainerId":"x","ContainerConfig":"{\"SchemaVersion\":{\"Major\":2}}"}"#,
    ));
    assert_eq!(result_of(&f), hr(0xC037010D), "{}", body(&f));

    // Unknown container: spec §10 V13, byte for byte.
    let cid = "2d8c5f1e6a7b4c3d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
    let f = wait_response(&g.wait_async(cid, 123, u32::MAX));
    assert_eq!(
        body(&f),
        r#"{"Result":-1070137074,"ActivityId":"00000000-0000-0000-0000-000000000000","ErrorMessage":"HRESULT: 0xc037010e","ErrorRecords":[{"Result":-1070137074,"Message":"HRESULT: 0xc037010e","ModuleName":"gcs","FileName":"","Line":4294967295}]}"#
    );
    for t in [
        MessageType::ShutdownGraceful,
        MessageType::ShutdownForced,
        MessageType::DeleteContainerState,
    ] {
        assert_eq!(result_of(&g.simple(t, cid)), hr(0xC037010E), "{t}");
    }
    assert_eq!(result_of(&g.signal(cid, 1, None)), hr(0xC037010E));
    // Unknown resource type, and a container-level resource other than constraints.
    let f = wait_response(&g.send_raw(
        MessageType::ModifySettings.as_u32(),
        br#"{"ContainerId":"00000000-0000-0000-0000-000000000000","Request":{"ResourceType":"Bogus","Settings":{}}}"#,
    ));
    assert_eq!(result_of(&f), hr(0x80004005), "{}", body(&f));

    // GetProperties of the utility VM is an error.
    let q = GetPropertiesRequest {
        base: RequestBase::null(),
        query: bridge::AnyInString(PropertyQuery {
            property_types: vec![PropertyType::ProcessList],
        }),
    };
    assert_eq!(
        result_of(&g.request(MessageType::GetProperties, &q)),
        hr(0x80004005)
    );

    // Still serving after all of that.
    assert_eq!(result_of(&g.simple(MessageType::Start, cid)), 0);
}

#[test]
fn without_v4_nothing_is_served() {
    let g = Gcs::start_with(&[]);
    let r = g.negotiate();
    assert_eq!(result_of(&r), hr(NOT_IMPL));
}

fn bad_header_drops_the_connection(size: u32) {
    let g = Gcs::negotiated();
    let h = MessageHeader {
        message_type: MessageType::Start.as_u32(),
        size,
        id: 99,
    };
    g.write_raw(&h.encode());
    // The agent drops this connection and dials again; the new one starts un-negotiated.
    g.accept_redial();
    let r = g.simple(MessageType::Start, "x");
    assert_eq!(result_of(&r), hr(NOT_IMPL));
    assert_eq!(result_of(&g.negotiate()), 0);
    assert_eq!(result_of(&g.simple(MessageType::Start, "x")), 0);
    assert!(
        g.log_text().contains("dropping the connection"),
        "{}",
        g.log_text()
    );
}

#[test]
fn header_smaller_than_16_drops_and_redials() {
    bad_header_drops_the_connection(8);
}

#[test]
fn header_larger_than_the_limit_drops_and_redials() {
    bad_header_drops_the_connection(u32::MAX);
}

#[test]
fn notifications_are_queued_while_disconnected() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    assert_eq!(result_of(&g.create(&id, &["sleep", "100000"], false)), 0);
    let (r, _) = g.execute(&id, None, [false, false, false]);
    let init: ExecuteProcessResponse = r.decode().unwrap();
    let wait = g.wait_async(&id, init.process_id, u32::MAX);
    // Drop the bridge with a bad header, kill the container meanwhile.
    g.write_raw(
        &MessageHeader {
            message_type: 0,
            size: 0,
            id: 0,
        }
        .encode(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&g.sb.runc_root)
        .args(["kill", &id, "KILL"])
        .status();
    // The late wait response keeps its id and the notification follows, on the new bridge.
    g.accept_redial();
    let w: WaitForProcessResponse = wait_response(&wait).decode().unwrap();
    assert_eq!(w.exit_code, 137);
    let n = g.next_notification(TIMEOUT).expect("queued notification");
    assert_eq!(n.base.container_id, id);
    assert_eq!(result_of(&g.negotiate()), 0);
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, &id)),
        0
    );
    assert_eq!(result_of(&g.remove_rootfs(&id)), 0);
}

#[test]
fn stdio_transport_serves_and_exits_on_a_bad_header() {
    let sb_dir = std::path::PathBuf::from("/tmp").join(unique("gcsio"));
    std::fs::create_dir_all(&sb_dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(sb_dir.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_gcs"))
        .args(["-v4", "-use-inouterr", "-loglevel", "info", "-state-root"])
        .arg(&sb_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Option<std::process::Child>);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = Kill(Some(child));
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let msg = bridge::encode_message(
        MessageType::NegotiateProtocol,
        0,
        &NegotiateProtocolRequest::default(),
        Encoding::Host,
    )
    .unwrap();
    stdin.write_all(&msg).unwrap();
    let f = bridge::read_frame(&mut stdout, bridge::MAX_MESSAGE_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(result_of(&f), 0);
    stdin
        .write_all(
            &MessageHeader {
                message_type: 1,
                size: 3,
                id: 1,
            }
            .encode(),
        )
        .unwrap();
    let st = guard.0.as_mut().unwrap().wait().unwrap();
    guard.0 = None;
    assert_eq!(st.code(), Some(1));
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(err.contains("stdio bridge ended"), "{err}");
    assert!(err.contains("smaller than the 16-byte header"), "{err}");
}
