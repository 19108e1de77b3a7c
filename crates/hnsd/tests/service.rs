//! hnsd as a service: the socket protocol with concurrent clients, bad documents and bad
//! frames answered with HNS-style errors, the `hnsd` binary restarted on its state, and
//! `hnsctl`'s table and JSON output. No dataplane here (objects only), so no root needed.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;

use common::*;
use hcn::error::is_port_already_exists_error;
use hcn::hnsd_client::HnsdClient;
use hcn::schema::*;
use hcn::wire::{read_frame, write_frame, Response};
use hnsd::testing::TestHnsd;

#[test]
fn concurrent_clients_over_the_socket() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let net = hnsd
        .client()
        .create_network(&nat("n", "10.40.0.0/22", "10.40.0.1"))
        .unwrap();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let hcn = hnsd.client();
            let net = net.clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        let ep = hcn
                            .create_endpoint(
                                &net,
                                &HostComputeEndpoint {
                                    name: format!("{t}-{i}"),
                                    policies: vec![port_mapping(10000 + t * 100 + i, 80)],
                                    ..Default::default()
                                },
                            )
                            .unwrap();
                        // A mapping of a port another thread owns fails, and says so.
                        let clash = hcn.create_endpoint(
                            &net,
                            &HostComputeEndpoint {
                                policies: vec![port_mapping(10000 + t * 100 + i, 81)],
                                ..Default::default()
                            },
                        );
                        assert!(is_port_already_exists_error(&clash.unwrap_err()));
                        ep.ip_configurations[0].ip_address.clone()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ips: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 120);
    assert_eq!(
        hnsd.client()
            .list_endpoints_of_network(&net.id)
            .unwrap()
            .len(),
        120
    );
}

fn raw_call(socket: &std::path::Path, frame: &[u8]) -> Response {
    let mut s = UnixStream::connect(socket).unwrap();
    write_frame(&mut s, frame).unwrap();
    serde_json::from_slice(&read_frame(&mut s).unwrap().unwrap()).unwrap()
}

#[test]
fn bad_documents_get_hns_errors() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    // Not a request at all.
    let r = raw_call(hnsd.socket(), b"{\"Op\":\"Explode\"}");
    assert_eq!(r.hr as u32, 0x803B_001B);
    let rec: serde_json::Value = serde_json::from_str(&r.error_record).unwrap();
    assert_eq!(rec["Success"], false);
    assert!(
        rec["Error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON document string. request:"),
        "{rec}"
    );
    // A request carrying a bad document: the client sees an HcnError with the record.
    let hcn = hnsd.client();
    let api = hcn.api();
    let err = api
        .create(
            hcn::api::ObjectKind::Network,
            hcn::ZERO_GUID,
            "{\"Ipams\": 7}",
            None,
        )
        .unwrap_err();
    assert_eq!(err.hr as u32, 0x803B_001B);
    assert!(
        err.record.contains("network: invalid type"),
        "{}",
        err.record
    );
    // A filter on a non-GUID id simply finds nothing.
    assert!(matches!(
        hcn.get_network_by_id("x").unwrap_err(),
        hcn::Error::NetworkNotFound { .. }
    ));
    let err = hcn.delete_endpoint("not-a-guid").unwrap_err();
    assert!(err.to_string().starts_with("hcnDeleteEndpoint failed in Win32: Failed to interpret a parameter as a GUID. (0x803b0019)"), "{err}");
    // An oversized frame ends the connection without taking hnsd down.
    let mut s = UnixStream::connect(hnsd.socket()).unwrap();
    s.write_all(&(u32::MAX).to_be_bytes()).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    assert!(hcn.list_networks().unwrap().is_empty());
    // A dead hnsd is RPC_S_SERVER_UNAVAILABLE, as a stopped HNS is on Windows.
    let gone = hcn::Hcn::new(Arc::new(HnsdClient::new(hnsd.dir().join("nobody.sock"))));
    let err = gone.list_networks().unwrap_err();
    assert_eq!(err.call().unwrap().hresult().value(), 0x8007_06BA);
}

#[test]
fn hnsd_binary_restart_keeps_state_and_hnsctl_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hnsd.sock");
    let hcn = hcn::Hcn::new(Arc::new(HnsdClient::new(&socket)));
    let mut child = spawn_hnsd(dir.path());
    let net = hcn
        .create_network(&nat("natnet", "10.50.0.0/24", "10.50.0.1"))
        .unwrap();
    let ep = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                name: "web".into(),
                ..Default::default()
            },
        )
        .unwrap();
    // SIGTERM: a clean stop removes the socket.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.0.wait().unwrap().success());
    assert!(!socket.exists());
    // SIGKILL after a restart: the state is on disk either way.
    child = spawn_hnsd(dir.path());
    assert_eq!(hcn.get_endpoint_by_name("web").unwrap(), ep);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let _child = spawn_hnsd(dir.path());
    assert_eq!(hcn.get_network_by_name("natnet").unwrap(), net);

    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hnsctl"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, table, _) = ctl(&["list", "endpoints"]);
    assert!(ok);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME") && lines[0].contains("IP"),
        "{table}"
    );
    assert!(
        lines[1].contains("web") && lines[1].contains("10.50.0.2") && lines[1].contains(&net.id),
        "{table}"
    );
    let (ok, json, _) = ctl(&["list", "networks", "--json"]);
    assert!(ok);
    let v: Vec<HostComputeNetwork> = serde_json::from_str(&json).unwrap();
    assert_eq!(v, std::slice::from_ref(&net));
    let (ok, shown, _) = ctl(&["show", "endpoints", "web"]);
    assert!(ok && shown.contains(&ep.id), "{shown}");
    let (ok, version, _) = ctl(&["version"]);
    assert!(ok && version.contains("HNS version 15.4"), "{version}");
    let (ok, _, err) = ctl(&["delete", "networks", &net.id]);
    assert!(!ok && err.contains("0x803b002c"), "{err}");
    assert!(ctl(&["delete", "endpoints", &ep.id]).0);
    assert!(ctl(&["delete", "networks", &net.id]).0);
    let (_, table, _) = ctl(&["list", "networks"]);
    assert_eq!(table.lines().count(), 1, "{table}");
}
