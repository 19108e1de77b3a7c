//! The plugins as a runtime sees them (spec §2.2, §2.4–§2.6): the result of every CNI
//! version, idempotent ADD and DEL, the error codes with their JSON and exit status, IPAM
//! delegation and its rollback, dual stack, CHECK, GC and STATUS — each through a plugin
//! binary against an hnsd without a dataplane (no root).

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use hcn::schema::*;
use hnsd::testing::TestHnsd;
use serde_json::{json, Value};

/// An hnsd with the nat test network, a runtime, and one HCN namespace for pods.
struct Bed {
    hnsd: TestHnsd,
    hcn: hcn::Hcn,
    rt: Runtime,
    ns: String,
}

fn bed(plugin: &str) -> Bed {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    hcn.create_network(&reference_network(plugin)).unwrap();
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap()
        .id;
    Bed { hnsd, hcn, rt, ns }
}

fn nat_conf(version: &str, extra: Value) -> String {
    reference_config("nat", version, extra)
}

/// Writes an IPAM plugin `name` into `dir`: it logs `<command> <container>` to
/// `ipam.log`, keeps its stdin, and answers ADD with `reply`.
fn fake_ipam(dir: &Path, name: &str, reply: &str) {
    let script = format!(
        "#!/bin/sh\nd=$(dirname \"$0\")\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> \"$d/ipam.log\"\n\
         cat > \"$d/ipam-stdin.json\"\n[ \"$CNI_COMMAND\" = ADD ] && printf '%s' '{reply}'\nexit 0\n"
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ipam_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ipam.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_version_gets_its_result_layout() {
    let b = bed("nat");
    for (i, v) in ["0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let cid = format!("v{i}");
        let conf = nat_conf(v, json!({}));
        let r = b.rt.add("nat", &cid, &b.ns, &conf).ok().json();
        let ep = b
            .hcn
            .get_endpoint_by_name(&format!("{cid}_natNet"))
            .unwrap();
        let addr = format!("{}/16", ep.ip_configurations[0].ip_address);
        let mac = ep.mac_address.replace('-', ":").to_ascii_lowercase();
        assert_eq!(r["cniVersion"], *v);
        assert_eq!(r["dns"], json!({}));
        match *v {
            "0.2.0" => {
                assert_eq!(r["ip4"], json!({"ip": addr, "gateway": "10.0.0.1"}));
                assert!(r.get("interfaces").is_none() && r.get("ips").is_none());
            }
            "1.0.0" | "1.1.0" => {
                assert_eq!(
                    r["interfaces"],
                    json!([{"name": "eth0", "mac": mac, "sandbox": b.ns}])
                );
                assert_eq!(
                    r["ips"],
                    json!([{"interface": 0, "address": addr, "gateway": "10.0.0.1"}])
                );
            }
            _ => {
                assert_eq!(
                    r["interfaces"],
                    json!([{"name": "eth0", "mac": mac, "sandbox": b.ns}])
                );
                assert_eq!(
                    r["ips"],
                    json!([{"version": "4", "interface": 0, "address": addr, "gateway": "10.0.0.1"}])
                );
            }
        }
        b.rt.del("nat", &cid, &b.ns, &conf).ok();
    }
}

#[test]
fn add_and_del_are_idempotent() {
    let b = bed("nat");
    let conf = nat_conf("1.0.0", json!({}));
    let first = b.rt.add("nat", "c", &b.ns, &conf).ok().stdout;
    let again = b.rt.add("nat", "c", &b.ns, &conf).ok().stdout;
    assert_eq!(first, again);
    let named: Vec<HostComputeEndpoint> = b
        .hcn
        .list_endpoints()
        .unwrap()
        .into_iter()
        .filter(|e| e.name == "c_natNet")
        .collect();
    assert_eq!(named.len(), 1);
    b.rt.del("nat", "c", &b.ns, &conf).ok();
    b.rt.del("nat", "c", &b.ns, &conf).ok();
    b.rt.del("nat", "never-added", &b.ns, &conf).ok();
    // DEL needs no CNI_NETNS.
    b.rt.del("nat", "c", "", &conf).ok();
    assert!(b.hcn.list_endpoints().unwrap().is_empty());
}

#[test]
fn add_attaches_an_existing_detached_endpoint() {
    let b = bed("nat");
    let conf = nat_conf("1.0.0", json!({}));
    b.rt.add("nat", "c", &b.ns, &conf).ok();
    let ep = b.hcn.get_endpoint_by_name("c_natNet").unwrap();
    b.hcn.remove_namespace_endpoint(&b.ns, &ep.id).unwrap();
    b.rt.add("nat", "c", &b.ns, &conf).ok();
    let ep2 = b.hcn.get_endpoint_by_name("c_natNet").unwrap();
    assert_eq!(ep2.id, ep.id);
    assert!(ep2.host_compute_namespace.eq_ignore_ascii_case(&b.ns));
}

#[test]
fn an_endpoint_of_the_name_on_another_network_is_replaced() {
    let b = bed("nat");
    let mut other = reference_network("nat");
    other.name = "other".into();
    other.ipams[0].subnets[0].ip_address_prefix = "10.9.0.0/16".into();
    other.ipams[0].subnets[0].routes[0].next_hop = "10.9.0.1".into();
    let other = b.hcn.create_network(&other).unwrap();
    let stale = b
        .hcn
        .create_endpoint(
            &other,
            &HostComputeEndpoint {
                name: "c_natNet".into(),
                schema_version: V2_SCHEMA_VERSION,
                ..Default::default()
            },
        )
        .unwrap();
    b.rt.add("nat", "c", &b.ns, &nat_conf("1.0.0", json!({})))
        .ok();
    let ep = b.hcn.get_endpoint_by_name("c_natNet").unwrap();
    assert_ne!(ep.id, stale.id);
    assert_eq!(
        ep.host_compute_network,
        b.hcn.get_network_by_name("natNet").unwrap().id
    );
    assert!(b.hcn.get_endpoint_by_id(&stale.id).is_err());
}

#[test]
fn a_nat_config_without_a_subnet_creates_the_network_and_hns_picks_it() {
    let b = bed("nat");
    // As the reference: no network of the name and no ipam.subnet, so the network is
    // created without Ipams and HNS (hnsd) gives it a subnet of 172.16.0.0/12.
    let r =
        b.rt.add(
            "nat",
            "c",
            &b.ns,
            r#"{"cniVersion":"1.0.0","name":"autoNet","type":"nat"}"#,
        )
        .ok()
        .json();
    let net = b.hcn.get_network_by_name("autoNet").unwrap();
    let subnet = net.ipams[0].subnets[0].ip_address_prefix.clone();
    assert!(
        subnet.starts_with("172.") && subnet.ends_with("/20"),
        "{subnet}"
    );
    let address = r["ips"][0]["address"].as_str().unwrap();
    let net4: ipnet::Ipv4Net = subnet.parse().unwrap();
    let addr4: ipnet::Ipv4Net = address.parse().unwrap();
    assert!(
        net4.contains(&addr4.addr()) && addr4.prefix_len() == 20,
        "{r}"
    );
    b.rt.del(
        "nat",
        "c",
        &b.ns,
        r#"{"cniVersion":"1.0.0","name":"autoNet","type":"nat"}"#,
    )
    .ok();
}

#[test]
fn error_codes_json_and_exit_status() {
    let b = bed("nat");
    // 81: a dual-stack ADD needs its network to exist.
    let out = b.rt.add(
        "sdnbridge",
        "c",
        &b.ns,
        r#"{"cniVersion":"1.0.0","name":"missing","type":"sdnbridge",
            "optionalFlags":{"enableDualStack":true}}"#,
    );
    assert_eq!((out.code(), out.status), (81, 81));
    let e = out.json();
    assert!(e["msg"].as_str().unwrap().starts_with("Network not found."));
    assert!(e["details"].as_str().unwrap().contains("missing"));

    // 71: a host port another pod maps already; the failed pod leaves nothing behind.
    let pm = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}});
    b.rt.add("nat", "web1", &b.ns, &nat_conf("1.0.0", pm.clone()))
        .ok();
    let out = b.rt.add("nat", "web2", &b.ns, &nat_conf("1.0.0", pm));
    assert_eq!((out.code(), out.status), (71, 71));
    assert_eq!(out.json()["msg"], "Port specified is already in use");
    assert!(b.hcn.get_endpoint_by_name("web2_natNet").is_err());

    // 66: the namespace does not exist; the endpoint created before the attach is removed.
    let out = b.rt.add(
        "nat",
        "lost",
        "5F3C1B2A-0000-4000-8000-00155D00AAAA",
        &nat_conf("1.0.0", json!({})),
    );
    assert_eq!((out.code(), out.status), (66, 66));
    assert_eq!(out.json()["msg"], "failure in cni");
    assert!(b.hcn.get_endpoint_by_name("lost_natNet").is_err());

    // 7: an unsupported type; 6: a value of the wrong type.
    let out = b.rt.add(
        "nat",
        "c",
        &b.ns,
        &nat_conf("1.0.0", json!({"type": "bridge"})),
    );
    assert_eq!(out.code(), 7);
    assert!(out.stdout.contains("Unsupported CNI config 'type'"));
    let out =
        b.rt.add("nat", "c", &b.ns, &nat_conf("1.0.0", json!({"ipam": 5})));
    assert_eq!(out.code(), 6);

    // 4 and 1 from the protocol layer, printed by the real process.
    let out = b.rt.add("nat", "c", "", &nat_conf("1.0.0", json!({})));
    assert_eq!((out.code(), out.status), (4, 4));
    assert_eq!(
        out.json()["msg"],
        "required env variables [CNI_NETNS] missing"
    );
    let out = b.rt.add("nat", "c", &b.ns, &nat_conf("0.1.0", json!({})));
    assert_eq!((out.code(), out.status), (1, 1));
    // Nothing of the failed ADDs is left.
    let names: Vec<String> = b
        .hcn
        .list_endpoints()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["web1_natNet"]);
}

#[test]
fn version_and_about_from_the_binary() {
    let b = bed("nat");
    for plugin in PLUGINS {
        let out = b.rt.run(plugin, "VERSION", &Call::pod("", ""), "").ok();
        assert_eq!(
            out.json(),
            json!({"cniVersion": "1.1.0",
                   "supportedVersions": ["0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
        );
        // libcni's probe names its version; the reply echoes it.
        let out =
            b.rt.run(
                plugin,
                "VERSION",
                &Call::pod("", ""),
                r#"{"cniVersion":"0.4.0"}"#,
            )
            .ok();
        assert_eq!(out.json()["cniVersion"], "0.4.0");
        let out = b.rt.run(plugin, "", &Call::pod("", ""), "").ok();
        assert!(
            out.stderr.starts_with("CNI plugin WinCni\n"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn ipam_delegate_allocates_and_releases() {
    let b = bed("nat");
    let dir = b.hnsd.dir();
    fake_ipam(
        dir,
        "fake-ipam",
        r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.5.7/16","gateway":"10.0.0.1"}]}"#,
    );
    // host-local style ranges must reach the delegate (the reference's re-serialised
    // configuration drops them).
    let conf = nat_conf(
        "1.0.0",
        json!({"ipam": {"type": "fake-ipam", "subnet": "10.0.0.0/16",
                        "ranges": [[{"subnet": "10.0.0.0/16"}]]}}),
    );
    let r = b.rt.add("nat", "ip", &b.ns, &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.0.5.7/16");
    let ep = b.hcn.get_endpoint_by_name("ip_natNet").unwrap();
    assert_eq!(ep.ip_configurations[0].ip_address, "10.0.5.7");
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ipam-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(stdin["ipam"]["ranges"][0][0]["subnet"], "10.0.0.0/16");
    b.rt.del("nat", "ip", &b.ns, &conf).ok();
    assert_eq!(ipam_log(dir), ["ADD ip", "DEL ip"]);

    // A failed attach releases the addresses again.
    let out =
        b.rt.add("nat", "gone", "5F3C1B2A-0000-4000-8000-00155D00BBBB", &conf);
    assert_eq!(out.code(), 66);
    assert_eq!(ipam_log(dir), ["ADD ip", "DEL ip", "ADD gone", "DEL gone"]);

    // forceBridgeGateway: the gateway is .2 of the allocated subnet.
    let forced = nat_conf(
        "1.0.0",
        json!({"ipam": {"type": "fake-ipam", "subnet": "10.0.0.0/16"},
               "optionalFlags": {"forceBridgeGateway": true}}),
    );
    b.rt.add("nat", "fb", &b.ns, &forced).ok();
    let ep = b.hcn.get_endpoint_by_name("fb_natNet").unwrap();
    assert_eq!(ep.routes[0].next_hop, "10.0.0.2");
}

#[test]
fn dual_stack_needs_an_existing_l2bridge_network() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap()
        .id;
    fake_ipam(
        hnsd.dir(),
        "fake-ipam6",
        r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/16","gateway":"10.0.0.1"},{"address":"fd00::9/64","gateway":"fd00::1"}]}"#,
    );
    let conf = reference_config(
        "sdnbridge",
        "1.0.0",
        json!({"ipam": {"type": "fake-ipam6"},
               "optionalFlags": {"enableDualStack": true, "gatewayFromAdditionalRoutes": true},
               "additionalRoutes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.2"},
                                    {"dst": "::/0", "gw": "fd00::101"}]}),
    );
    // No network: 81 (dual stack never creates one).
    let out = rt.add("sdnbridge", "d", &ns, &conf);
    assert_eq!(out.code(), 81);
    // A NAT network of the name: 7.
    let mut nat = reference_network("nat");
    nat.name = "bridgeNet".into();
    let n = hcn.create_network(&nat).unwrap();
    let out = rt.add("sdnbridge", "d", &ns, &conf);
    assert_eq!(out.code(), 7);
    assert!(out
        .stdout
        .contains("Dual stack specified with non l2bridge network"));
    hcn.delete_network(&n.id).unwrap();

    let mut net = reference_network("sdnbridge");
    net.ipams[0].subnets.push(Subnet {
        ip_address_prefix: "fd00::/64".into(),
        routes: vec![Route {
            next_hop: "fd00::101".into(),
            destination_prefix: "::/0".into(),
            metric: 0,
        }],
        ..Default::default()
    });
    hcn.create_network(&net).unwrap();
    let r = rt.add("sdnbridge", "d", &ns, &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.0.0.9/16");
    assert_eq!(r["ips"][1]["address"], "fd00::9/64");
    assert_eq!(r["ips"][1]["gateway"], "fd00::1");
    let ep = hcn.get_endpoint_by_name("d_bridgeNet").unwrap();
    let ips: Vec<&str> = ep
        .ip_configurations
        .iter()
        .map(|c| c.ip_address.as_str())
        .collect();
    assert_eq!(ips, ["10.0.0.9", "fd00::9"]);
    let routes: Vec<(&str, &str)> = ep
        .routes
        .iter()
        .map(|r| (r.destination_prefix.as_str(), r.next_hop.as_str()))
        .collect();
    // Both gateways are IPAM's (the reference's dual-stack branch takes IPAM's IPv4 gateway
    // too, over the configuration's ipam.routes and additionalRoutes).
    assert_eq!(routes, [("0.0.0.0/0", "10.0.0.1"), ("::/0", "fd00::1")]);
}

#[test]
fn check_verifies_the_endpoint_namespace_and_prev_result() {
    let b = bed("nat");
    let conf = nat_conf("1.0.0", json!({}));
    let result = b.rt.add("nat", "c", &b.ns, &conf).ok().json();
    let with_prev = nat_conf("1.0.0", json!({"prevResult": result}));
    b.rt.run("nat", "CHECK", &Call::pod("c", &b.ns), &with_prev)
        .ok();
    let wrong = nat_conf(
        "1.0.0",
        json!({"prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.0.99.99/16"}]}}),
    );
    let out = b.rt.run("nat", "CHECK", &Call::pod("c", &b.ns), &wrong);
    assert_eq!(out.code(), 66);
    assert!(out.stdout.contains("10.0.99.99/16"));
    b.rt.del("nat", "c", &b.ns, &conf).ok();
    let out = b.rt.run("nat", "CHECK", &Call::pod("c", &b.ns), &with_prev);
    assert_ne!(out.status, 0);
}

#[test]
fn gc_removes_endpoints_of_containers_no_longer_valid() {
    let b = bed("nat");
    let conf = nat_conf("1.1.0", json!({}));
    for c in ["a", "b", "d"] {
        // One namespace per pod: hnsd refuses a second eth0 in a namespace.
        let ns = b
            .hcn
            .create_namespace(&hcn::new_namespace(NamespaceType::Host))
            .unwrap();
        b.rt.add("nat", c, &ns.id, &conf).ok();
    }
    let endpoints = |hcn: &hcn::Hcn| hcn.list_endpoints().unwrap().len();
    // No attachments list at all: nothing is known to be stale, nothing goes.
    b.rt.run("nat", "GC", &Call::pod("", ""), &conf).ok();
    assert_eq!(endpoints(&b.hcn), 3);
    // The list under the name an earlier text of the specification used (libcni sends both).
    let gc = nat_conf(
        "1.1.0",
        json!({"cni.dev/attachments": [{"containerID": "a", "ifname": "eth0"}]}),
    );
    b.rt.run("nat", "GC", &Call::pod("", ""), &gc).ok();
    let names: Vec<String> = b
        .hcn
        .list_endpoints()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["a_natNet"]);
    let attached = b
        .hcn
        .list_namespaces()
        .unwrap()
        .iter()
        .map(|n| n.resources.len())
        .sum::<usize>();
    assert_eq!(attached, 1);
}

#[test]
fn status_reports_whether_hns_and_the_network_are_there() {
    let b = bed("nat");
    let status = |rt: &Runtime, conf: &str| rt.run("nat", "STATUS", &Call::pod("", ""), conf);
    status(&b.rt, &nat_conf("1.1.0", json!({}))).ok();
    // A missing network without a subnet cannot serve ADD.
    let out = status(
        &b.rt,
        r#"{"cniVersion":"1.1.0","name":"missing","type":"nat"}"#,
    );
    assert_eq!(out.code(), 50);
    // No hnsd at all.
    let mut gone = Runtime::new(b.hnsd.socket(), b.hnsd.dir());
    gone.socket = b.hnsd.dir().join("no-such.sock");
    let out = status(&gone, &nat_conf("1.1.0", json!({})));
    assert_eq!((out.code(), out.status), (50, 50));
}

#[test]
fn version_does_not_wait_for_a_stdin_nobody_closes() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    // The plugin's log lands in its working directory: a private one.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(plugin_bin("nat"))
        .current_dir(dir.path())
        .env_clear()
        .env("WINCNI_LOG", dir.path().join("wincni.log"))
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Held open (never written, never closed) until the plugin has answered.
    let held = child.stdin.take();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_none() {
        child.kill().unwrap();
    }
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "VERSION hung or failed"
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["cniVersion"], "1.1.0");
}

#[test]
fn an_unreachable_hnsd_is_try_again_later() {
    let b = bed("nat");
    let mut gone = Runtime::new(b.hnsd.socket(), b.hnsd.dir());
    gone.socket = b.hnsd.dir().join("no-such.sock");
    let conf = nat_conf("1.0.0", json!({}));
    for out in [
        gone.add("nat", "c", &b.ns, &conf),
        gone.del("nat", "c", &b.ns, &conf),
    ] {
        assert_eq!((out.code(), out.status), (11, 11), "{}", out.stdout);
        assert_eq!(out.json()["cniVersion"], "1.0.0");
    }
}

#[test]
fn cni_args_are_all_or_nothing_as_go_loads_them() {
    let b = bed("nat");
    let conf = nat_conf("1.0.0", json!({}));
    // (CNI_ARGS, the endpoint's first DNS search domain): the pod namespace prefixes it
    // only when the whole list parses.
    let cases = [
        (
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube;K8S_POD_UID=u",
            "kube.svc.cluster.local",
        ),
        ("K8S_POD_NAMESPACE=kube;K8S_POD_UID=u", "svc.cluster.local"),
        ("K8S_POD_NAMESPACE=kube;garbage", "svc.cluster.local"),
        ("", "svc.cluster.local"),
    ];
    for (i, (cni_args, search)) in cases.iter().enumerate() {
        let ns = b
            .hcn
            .create_namespace(&hcn::new_namespace(NamespaceType::Host))
            .unwrap()
            .id;
        let cid = format!("a{i}");
        let call = Call {
            cni_args,
            ..Call::pod(&cid, &ns)
        };
        b.rt.run("nat", "ADD", &call, &conf).ok();
        let ep = b
            .hcn
            .get_endpoint_by_name(&format!("{cid}_natNet"))
            .unwrap();
        assert_eq!(ep.dns.search[0], *search, "CNI_ARGS {cni_args:?}");
        b.rt.run("nat", "DEL", &call, &conf).ok();
    }
}

#[test]
fn runtime_config_ips_and_mac_are_the_endpoints() {
    let b = bed("nat");
    let conf = nat_conf(
        "1.0.0",
        json!({"capabilities": {"ips": true, "mac": true},
               "runtimeConfig": {"ips": ["10.0.77.7/16"], "mac": "c2:11:22:33:44:55"}}),
    );
    let r = b.rt.add("nat", "pinned", &b.ns, &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.0.77.7/16");
    assert_eq!(r["interfaces"][0]["mac"], "c2:11:22:33:44:55");
    let ep = b.hcn.get_endpoint_by_name("pinned_natNet").unwrap();
    assert_eq!(ep.ip_configurations[0].ip_address, "10.0.77.7");
    assert!(ep.mac_address.eq_ignore_ascii_case("C2-11-22-33-44-55"));
    // A malformed request is a configuration error and creates nothing.
    let bad = nat_conf("1.0.0", json!({"runtimeConfig": {"mac": "nope"}}));
    assert_eq!(b.rt.add("nat", "bad", &b.ns, &bad).code(), 7);
    assert!(b.hcn.get_endpoint_by_name("bad_natNet").is_err());
    b.rt.del("nat", "pinned", &b.ns, &conf).ok();
}

#[test]
fn a_malformed_cni_netns_is_code_4_naming_it_and_del_ignores_it() {
    let b = bed("nat");
    let conf = nat_conf("1.0.0", json!({}));
    let out = b.rt.add("nat", "bad", "relative/netns", &conf);
    assert_eq!(out.code(), 4);
    assert!(
        out.json()["msg"].as_str().unwrap().contains("CNI_NETNS"),
        "{}",
        out.stdout
    );
    assert!(b.hcn.list_endpoints().unwrap().is_empty());
    // DEL must succeed whatever CNI_NETNS says.
    b.rt.del("nat", "bad", "relative/netns", &conf).ok();
}

#[test]
fn an_ipam_delegate_error_reaches_the_runtime_with_its_code() {
    let b = bed("nat");
    let dir = b.hnsd.dir();
    // An IPAM plugin whose pool is exhausted (11) and which reports itself limited (51).
    let script = "#!/bin/sh\ncat >/dev/null\ncase \"$CNI_COMMAND\" in\n\
        ADD) printf '%s' '{\"code\":11,\"msg\":\"no IP addresses available\",\"details\":\"range 10.0.0.0/30\"}'; exit 1;;\n\
        STATUS) printf '%s' '{\"code\":51,\"msg\":\"pool store degraded\"}'; exit 1;;\n\
        esac\nexit 0\n";
    let path = dir.join("full-ipam");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = nat_conf(
        "1.1.0",
        json!({"ipam": {"type": "full-ipam", "subnet": "10.0.0.0/16"}}),
    );
    let out = b.rt.add("nat", "c", &b.ns, &conf);
    assert_eq!((out.code(), out.status), (11, 11));
    let e = out.json();
    assert_eq!(e["msg"], "no IP addresses available");
    assert!(e["details"].as_str().unwrap().contains("full-ipam"), "{e}");
    assert!(b.hcn.list_endpoints().unwrap().is_empty());
    let out = b.rt.run("nat", "STATUS", &Call::pod("", ""), &conf);
    assert_eq!(out.code(), 51);
}

#[test]
fn debian_host_local_allocates_and_releases_through_the_plugin() {
    let host_local = Path::new("/usr/lib/cni/host-local");
    assert!(
        host_local.exists(),
        "install Debian's containernetworking-plugins"
    );
    let mut b = bed("nat");
    b.rt.cni_path = format!("{}:/usr/lib/cni", b.hnsd.dir().display());
    let data = b.hnsd.dir().join("host-local");
    let conf = nat_conf(
        "1.0.0",
        json!({"ipam": {"type": "host-local", "dataDir": data,
                        "ranges": [[{"subnet": "10.0.0.0/16", "rangeStart": "10.0.5.10",
                                     "rangeEnd": "10.0.5.20", "gateway": "10.0.0.1"}]]}}),
    );
    let r = b.rt.add("nat", "hl", &b.ns, &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.0.5.10/16");
    assert_eq!(r["ips"][0]["gateway"], "10.0.0.1");
    let ep = b.hcn.get_endpoint_by_name("hl_natNet").unwrap();
    assert_eq!(ep.ip_configurations[0].ip_address, "10.0.5.10");
    // host-local keeps one file per reserved address, named by it.
    let reserved = data.join("natNet").join("10.0.5.10");
    assert!(reserved.exists());
    b.rt.del("nat", "hl", &b.ns, &conf).ok();
    assert!(!reserved.exists());
    assert!(b.hcn.list_endpoints().unwrap().is_empty());
    b.rt.del("nat", "hl", &b.ns, &conf).ok();
}

#[test]
fn runtime_config_bandwidth_caps_the_endpoints_egress() {
    let b = bed("nat");
    let conf = nat_conf(
        "1.0.0",
        json!({"capabilities": {"bandwidth": true},
               "runtimeConfig": {"bandwidth": {"egressRate": 8000000, "egressBurst": 8000000}}}),
    );
    b.rt.add("nat", "bw", &b.ns, &conf).ok();
    let ep = b.hcn.get_endpoint_by_name("bw_natNet").unwrap();
    let qos: Vec<&EndpointPolicy> = ep
        .policies
        .iter()
        .filter(|p| p.policy_type == EndpointPolicyType::Qos)
        .collect();
    assert_eq!(qos.len(), 1);
    let settings: Value = serde_json::from_str(qos[0].settings.as_ref().unwrap().get()).unwrap();
    assert_eq!(
        settings,
        json!({"MaximumOutgoingBandwidthInBytes": 1000000})
    );
    b.rt.del("nat", "bw", &b.ns, &conf).ok();
}
