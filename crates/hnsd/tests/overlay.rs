//! Overlay networks between two hosts over VXLAN (root): two hnsd instances, each in a
//! network namespace playing a host, joined by an underlay veth (192.168.77.1 ↔ .2, the
//! provider addresses). Both ways HNS is told about another host are exercised:
//!
//! * remote subnet routes (flannel's VXLAN backend on Windows): each host has its own pod
//!   subnet and a `RemoteSubnetRoute` to the other's, with `DrMacAddress` routers;
//! * remote endpoints (`CreateRemoteEndpoint`): one subnet spread over both hosts, each
//!   host told of the other's pod.
//!
//! A pod reaches the other host's pod unmasqueraded in both; deleting a remote endpoint or
//! removing a route takes its entries out of the kernel; a restarted hnsd recreates a
//! VXLAN device that went missing, with its entries; deleting everything leaves no links.

mod common;

use std::path::Path;

use common::*;
use hcn::schema::*;
use hnsd::testing::TwoHosts;

const VSID_ROUTED: u32 = 4096;
const VSID_L2: u32 = 4097;

fn pa(host: usize) -> String {
    TwoHosts::provider_address(host)
}

fn overlay(name: &str, prefix: &str, gw: &str, vsid: u32, host: usize) -> HostComputeNetwork {
    TwoHosts::overlay_network(host, name, prefix, gw, vsid)
}

fn remote_route(to_host: usize, prefix: &str, vsid: u32) -> NetworkPolicy {
    TwoHosts::remote_subnet_route(to_host, prefix, vsid)
}

/// The VXLAN device of instance `tag` with VNI `vni` in `ns`.
fn vxlan_of(ns: &Path, tag: &str, vni: u32) -> String {
    links(ns)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{tag}x")))
        .find(|l| {
            run_in(ns, "ip", &["-d", "link", "show", "dev", l])
                .contains(&format!("vxlan id {vni} "))
        })
        .unwrap_or_else(|| panic!("no VXLAN with VNI {vni}: {:?}", links(ns)))
}

/// A pod: an endpoint (with `ip` and `mac`, if given) attached to a new namespace; its
/// netns file. (Each host's default MAC pool is the same here; HNS derives one per host.)
fn pod(
    hcn: &hcn::Hcn,
    net: &HostComputeNetwork,
    ip: Option<(&str, &str)>,
) -> (HostComputeEndpoint, std::path::PathBuf) {
    let ep = hcn
        .create_endpoint(
            net,
            &HostComputeEndpoint {
                ip_configurations: ip
                    .map(|(ip, _)| {
                        vec![IpConfig {
                            ip_address: ip.into(),
                            prefix_length: 24,
                        }]
                    })
                    .unwrap_or_default(),
                mac_address: ip.map(|(_, mac)| mac.to_string()).unwrap_or_default(),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, path) = attach_to_new_namespace(hcn, &ep.id);
    (hcn.get_endpoint_by_id(&ep.id).unwrap(), path)
}

/// Tells a host about a pod of the other host (`CreateRemoteEndpoint`).
fn remote_endpoint(
    hcn: &hcn::Hcn,
    net: &HostComputeNetwork,
    of: &HostComputeEndpoint,
    on_host: usize,
) -> HostComputeEndpoint {
    hcn.create_endpoint(
        net,
        &HostComputeEndpoint {
            ip_configurations: of.ip_configurations.clone(),
            mac_address: of.mac_address.clone(),
            flags: ENDPOINT_FLAG_REMOTE_ENDPOINT,
            policies: vec![EndpointPolicy::new(
                EndpointPolicyType::ProviderAddress,
                &ProviderAddressEndpointPolicySetting {
                    provider_address: pa(on_host),
                },
            )
            .unwrap()],
            ..Default::default()
        },
    )
    .unwrap()
}

fn ip_of(ep: &HostComputeEndpoint) -> &str {
    &ep.ip_configurations[0].ip_address
}

/// A request from `from` reaches `to_ip` (served in `to`) and arrives from `from_ip`.
fn reaches(from: &Path, to: &Path, to_ip: &str, port: u16, from_ip: &str) {
    let server = serve_once(listen(to, &format!("0.0.0.0:{port}")));
    let reply = talk(from, &format!("{to_ip}:{port}"), "hi").unwrap();
    assert_eq!(reply, format!("hi from {from_ip}"));
    server.join().unwrap().unwrap();
}

/// Sends one UDP datagram of `len` bytes from `from` to `to_addr` (bound in `to`); the
/// size received.
fn udp_crosses(from: &Path, to: &Path, to_addr: &str, len: usize) -> Result<usize, String> {
    use std::net::{SocketAddr, UdpSocket};
    let addr: SocketAddr = to_addr.parse().unwrap();
    let rx = hnsd::netns::in_netns(to, move || {
        UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))
    })?;
    rx.set_read_timeout(Some(TIMEOUT)).unwrap();
    let tx = hnsd::netns::in_netns(from, || {
        UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))
    })?;
    tx.send_to(&vec![7u8; len], addr)
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 65536];
    rx.recv_from(&mut buf)
        .map(|(n, _)| n)
        .map_err(|e| format!("receive: {e}"))
}

fn mac_colons(ep: &HostComputeEndpoint) -> String {
    ep.mac_address.replace('-', ":").to_ascii_lowercase()
}

#[test]
fn overlay_networks_between_two_hosts_over_vxlan() {
    require_root();
    let TwoHosts { mut hosts } = TwoHosts::start().unwrap();
    let ns: Vec<std::path::PathBuf> = hosts
        .iter()
        .map(|h| h.host_netns().unwrap().path().to_path_buf())
        .collect();
    let hcn: Vec<hcn::Hcn> = hosts.iter().map(|h| h.client()).collect();
    let tags: Vec<String> = hosts
        .iter()
        .map(|h| h.engine().unwrap().tag().to_string())
        .collect();

    // Routed: 10.244.1.0/24 on host 0, 10.244.2.0/24 on host 1, each told of the other's
    // subnet afterwards, as flannel does when a node's lease appears.
    let routed: Vec<HostComputeNetwork> = (0..2)
        .map(|i| {
            let prefix = format!("10.244.{}.0/24", i + 1);
            let gw = format!("10.244.{}.1", i + 1);
            hcn[i]
                .create_network(&overlay("routed", &prefix, &gw, VSID_ROUTED, i))
                .unwrap()
        })
        .collect();
    for i in 0..2 {
        let other = 1 - i;
        hcn[i]
            .add_network_policy(
                &routed[i].id,
                vec![remote_route(
                    other,
                    &format!("10.244.{}.0/24", other + 1),
                    VSID_ROUTED,
                )],
            )
            .unwrap();
    }
    let (r0, r0_ns) = pod(&hcn[0], &routed[0], None);
    let (r1, r1_ns) = pod(&hcn[1], &routed[1], None);
    reaches(&r0_ns, &r1_ns, ip_of(&r1), 7000, ip_of(&r0));
    reaches(&r1_ns, &r0_ns, ip_of(&r0), 7001, ip_of(&r1));

    // L2: 10.245.0.0/24 on both hosts, each told of the other's pod.
    let l2: Vec<HostComputeNetwork> = (0..2)
        .map(|i| {
            hcn[i]
                .create_network(&overlay("l2", "10.245.0.0/24", "10.245.0.1", VSID_L2, i))
                .unwrap()
        })
        .collect();
    let (a, a_ns) = pod(&hcn[0], &l2[0], Some(("10.245.0.10", "0e-45-00-00-00-0a")));
    let (b, b_ns) = pod(&hcn[1], &l2[1], Some(("10.245.0.20", "0e-45-00-00-00-14")));
    let remote_b = remote_endpoint(&hcn[0], &l2[0], &b, 1);
    let remote_a = remote_endpoint(&hcn[1], &l2[1], &a, 0);
    reaches(&a_ns, &b_ns, "10.245.0.20", 7002, "10.245.0.10");
    reaches(&b_ns, &a_ns, "10.245.0.10", 7003, "10.245.0.20");
    // The pods' MTU leaves room for the encapsulation (the underlay's 1500 less VXLAN's
    // 50): a full-size datagram is fragmented in the pod instead of being dropped by the
    // bridge at the tunnel (TCP's offloaded segments would cross either way).
    let link = run_in(&a_ns, "ip", &["-o", "link", "show", "dev", "eth0"]);
    assert!(link.contains(" mtu 1450 "), "{link}");
    assert_eq!(
        udp_crosses(&a_ns, &b_ns, "10.245.0.20:7006", 1472),
        Ok(1472)
    );
    // Host 0's VXLAN knows b's MAC through host 1, and answers ARP for b.
    let vx0 = vxlan_of(&ns[0], &tags[0], VSID_L2);
    let fdb = run_in(&ns[0], "bridge", &["fdb", "show", "dev", &vx0]);
    assert!(
        fdb.contains(&format!("{} dst {} self permanent", mac_colons(&b), pa(1))),
        "{fdb}"
    );
    let neigh = run_in(&ns[0], "ip", &["neigh", "show", "dev", &vx0]);
    assert!(neigh.contains("10.245.0.20"), "{neigh}");

    // A restarted hnsd puts a missing VXLAN device back, with its entries.
    run_in(&ns[0], "ip", &["link", "del", &vx0]);
    hosts[0].restart().unwrap();
    let fdb = run_in(&ns[0], "bridge", &["fdb", "show", "dev", &vx0]);
    assert!(fdb.contains(&mac_colons(&b)), "{fdb}");
    reaches(&a_ns, &b_ns, "10.245.0.20", 7004, "10.245.0.10");

    // Deleting the remote endpoint removes its entries: b is unreachable from a.
    hcn[0].delete_endpoint(&remote_b.id).unwrap();
    let fdb = run_in(&ns[0], "bridge", &["fdb", "show", "dev", &vx0]);
    assert!(!fdb.contains(&format!("{} dst", mac_colons(&b))), "{fdb}");
    assert!(run_in(&ns[0], "ip", &["neigh", "show", "dev", &vx0])
        .trim()
        .is_empty());
    let _l = listen(&b_ns, "0.0.0.0:7005");
    assert!(talk(&a_ns, "10.245.0.20:7005", "late").is_err());

    // Removing the remote subnet route takes the route out of host 0.
    hcn[0]
        .remove_network_policy(
            &routed[0].id,
            vec![remote_route(1, "10.244.2.0/24", VSID_ROUTED)],
        )
        .unwrap();
    let routes = run_in(&ns[0], "ip", &["route", "show"]);
    assert!(!routes.contains("10.244.2.0/24"), "{routes}");

    // Everything deleted: no bridge, VXLAN or veth of either instance is left.
    hcn[1].delete_endpoint(&remote_a.id).unwrap();
    for (i, h) in hcn.iter().enumerate() {
        for ep in h.list_endpoints().unwrap() {
            if !ep.host_compute_namespace.is_empty() {
                h.remove_namespace_endpoint(&ep.host_compute_namespace, &ep.id)
                    .unwrap();
                h.delete_namespace(&ep.host_compute_namespace).unwrap();
            }
            h.delete_endpoint(&ep.id).unwrap();
        }
        for n in h.list_networks().unwrap() {
            h.delete_network(&n.id).unwrap();
        }
        let left: Vec<String> = links(&ns[i])
            .into_iter()
            .filter(|l| l.starts_with(tags[i].as_str()))
            .collect();
        assert!(left.is_empty(), "host {i}: {left:?}");
    }
    let _ = (r0, r1);
}
