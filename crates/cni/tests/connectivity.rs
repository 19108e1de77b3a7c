//! The reference's connectivity tests (spec §2.8 `RunBasicConnectivityTest`), ported to
//! Linux: hnsd with its netlink + nftables dataplane in a network namespace playing the
//! host, an "outside" namespace playing the internet, and two pods whose network
//! namespaces the test creates and passes as `CNI_NETNS`, as a Linux runtime does. For each
//! plugin: the pod's interface carries the result's address and MAC; pod to host, host to
//! pod, pod to pod, pod to the outside (masqueraded behind the host's address); for `nat` a
//! host port mapping from the outside and from the host (HNS refuses port mappings on
//! L2Bridge and Overlay networks, and so does hnsd: error 66); DEL removes the interfaces,
//! endpoints and namespaces. TCP stands in for the reference's ping and curl.
//!
//! `sdnbridge` also runs dual stack (the reference's `TestDualStack=1`): pod to pod and host
//! to pod over IPv6 too.
//!
//! `sdnoverlay` also runs between two hosts (two hnsd instances whose namespaces are joined
//! by an underlay link): each host's Overlay network has its own pod subnet and a
//! `RemoteSubnetRoute` to the other's, as flannel's VXLAN backend sets them up on Windows,
//! and a pod on one host reaches a pod on the other over VXLAN, untranslated.
//!
//! Root (CI runs as root). Every namespace, link and nft table lives inside the test's
//! namespaces and is removed when the test ends, also on failure.

#![cfg(target_os = "linux")]

mod common;

use common::net::*;
use common::*;
use hnsd::testing::{TestHnsd, TestNetns, TwoHosts};
use serde_json::json;

fn ip_of(result: &serde_json::Value) -> String {
    let addr = result["ips"][0]["address"].as_str().unwrap();
    addr.split('/').next().unwrap().to_string()
}

fn connectivity(plugin: &str) {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let outside = outside(&hnsd);
    let hcn = hnsd.client();
    hcn.create_network(&reference_network(plugin)).unwrap();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let gw = gateway_of(plugin);

    let pods = [
        TestNetns::create(hnsd.dir().join("pod0")).unwrap(),
        TestNetns::create(hnsd.dir().join("pod1")).unwrap(),
    ];
    let paths: Vec<String> = pods
        .iter()
        .map(|p| p.path().display().to_string())
        .collect();
    let mapped = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}});
    let conf1 = reference_config(plugin, "1.0.0", json!({}));
    let conf0 = if plugin == "nat" {
        reference_config(plugin, "1.0.0", mapped)
    } else {
        let out = rt.add(
            plugin,
            "ctr0",
            &paths[0],
            &reference_config(plugin, "1.0.0", mapped),
        );
        assert_eq!(out.code(), 66);
        assert!(
            out.stdout.contains("Port mapping is not supported"),
            "{}",
            out.stdout
        );
        conf1.clone()
    };
    let r0 = rt.add(plugin, "ctr0", &paths[0], &conf0).ok().json();
    let r1 = rt.add(plugin, "ctr1", &paths[1], &conf1).ok().json();
    let (ip0, ip1) = (ip_of(&r0), ip_of(&r1));
    assert_eq!(r0["ips"][0]["gateway"], gw);
    assert_eq!(r0["interfaces"][0]["sandbox"], paths[0].as_str());

    // The pod's interface is CNI_IFNAME with the result's address and MAC.
    let addr = run_in(pods[0].path(), "ip", &["-o", "addr", "show", "dev", "eth0"]);
    let want = r0["ips"][0]["address"].as_str().unwrap();
    assert!(addr.contains(&format!("inet {want}")), "{addr}");
    let link = run_in(pods[0].path(), "ip", &["-o", "link", "show", "dev", "eth0"]);
    let mac = r0["interfaces"][0]["mac"].as_str().unwrap();
    assert!(link.contains(&format!("link/ether {mac}")), "{link}");
    let route = run_in(pods[0].path(), "ip", &["route", "show", "default"]);
    assert!(route.contains(&format!("via {gw}")), "{route}");

    // Pod to host (the reference pings the host's address).
    let (reply, _) = exchange(
        &host,
        "0.0.0.0:7000",
        pods[0].path(),
        &format!("{HOST_IP}:7000"),
    )
    .unwrap();
    assert!(reply.starts_with("hello from "), "{reply}");
    // Host to pod.
    let (reply, _) = exchange(
        pods[0].path(),
        "0.0.0.0:7001",
        &host,
        &format!("{ip0}:7001"),
    )
    .unwrap();
    assert!(reply.starts_with("hello from "), "{reply}");
    // Pod to pod, not translated.
    let (_, seen) = exchange(
        pods[0].path(),
        "0.0.0.0:7002",
        pods[1].path(),
        &format!("{ip0}:7002"),
    )
    .unwrap();
    assert_eq!(seen, ip1);
    // Pod to the outside: masqueraded behind the host's address (NAT: the network's
    // masquerade; bridge and overlay: the OutBoundNAT policy, whose exceptions keep pod and
    // host traffic untranslated).
    let (_, seen) = exchange(
        outside.path(),
        &format!("{OUTSIDE_IP}:7003"),
        pods[1].path(),
        &format!("{OUTSIDE_IP}:7003"),
    )
    .unwrap();
    assert_eq!(seen, HOST_IP);
    // The host port mapping, from the outside and from the host itself.
    if plugin == "nat" {
        let (reply, seen) = exchange(
            pods[0].path(),
            "0.0.0.0:80",
            outside.path(),
            &format!("{HOST_IP}:8080"),
        )
        .unwrap();
        assert_eq!(
            (reply.as_str(), seen.as_str()),
            ("hello from 192.0.2.2", OUTSIDE_IP)
        );
        let (reply, _) = exchange(
            pods[0].path(),
            "0.0.0.0:80",
            &host,
            &format!("{HOST_IP}:8080"),
        )
        .unwrap();
        assert!(reply.starts_with("hello from "), "{reply}");
    }

    // DEL both: the interfaces, endpoints and HCN namespaces are gone; the network stays.
    rt.del(plugin, "ctr0", &paths[0], &conf0).ok();
    rt.del(plugin, "ctr1", &paths[1], &conf1).ok();
    for p in &pods {
        let links = run_in(p.path(), "ip", &["-o", "link", "show"]);
        assert!(!links.contains("eth0"), "{links}");
    }
    assert!(hcn.list_endpoints().unwrap().is_empty());
    assert!(hcn.list_namespaces().unwrap().is_empty());
    assert_eq!(hcn.list_networks().unwrap().len(), 1);
    // The port mapping is gone with the endpoint.
    let listener = listen(pods[0].path(), "0.0.0.0:80");
    assert!(talk(outside.path(), &format!("{HOST_IP}:8080"), "late").is_err());
    drop(listener);
}

#[test]
fn nat_connectivity() {
    connectivity("nat");
}

#[test]
fn sdnbridge_connectivity() {
    connectivity("sdnbridge");
}

#[test]
fn sdnoverlay_connectivity() {
    connectivity("sdnoverlay");
}

#[test]
fn sdnoverlay_between_two_hosts_over_vxlan() {
    require_root();
    let plugin = "sdnoverlay";
    let two = TwoHosts::start().unwrap();
    let subnet = |i: usize| format!("10.244.{}.0/24", i + 1);
    let gateway = |i: usize| format!("10.244.{}.1", i + 1);
    let (_, name) = network_of(plugin);
    let mut pods = Vec::new();
    let mut confs = Vec::new();
    let mut ips = Vec::new();
    for (i, h) in two.hosts.iter().enumerate() {
        let hcn = h.client();
        let net = hcn
            .create_network(&TwoHosts::overlay_network(
                i,
                name,
                &subnet(i),
                &gateway(i),
                4096,
            ))
            .unwrap();
        hcn.add_network_policy(
            &net.id,
            vec![TwoHosts::remote_subnet_route(1 - i, &subnet(1 - i), 4096)],
        )
        .unwrap();
        let conf = reference_config(
            plugin,
            "1.0.0",
            json!({
                "ipam": {"environment": "mas", "subnet": subnet(i),
                         "routes": [{"dst": "0.0.0.0/0", "GW": gateway(i)}]},
                "AdditionalArgs": [
                    {"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT",
                        "Settings": {"Exceptions": ["10.244.0.0/16"]}}},
                    {"Name": "EndpointPolicy", "Value": {"Type": "ProviderAddress",
                        "Settings": {"ProviderAddress": TwoHosts::provider_address(i)}}},
                ],
            }),
        );
        let pod = TestNetns::create(h.dir().join("pod")).unwrap();
        let rt = Runtime::new(h.socket(), h.dir());
        let r = rt
            .add(plugin, "ctr", &pod.path().display().to_string(), &conf)
            .ok()
            .json();
        assert_eq!(r["ips"][0]["gateway"], gateway(i).as_str());
        ips.push(ip_of(&r));
        pods.push(pod);
        confs.push(conf);
    }
    assert!(
        ips[0].starts_with("10.244.1.") && ips[1].starts_with("10.244.2."),
        "{ips:?}"
    );
    // Pod to pod across the hosts, both ways, not translated.
    let (_, seen) = exchange(
        pods[1].path(),
        "0.0.0.0:7010",
        pods[0].path(),
        &format!("{}:7010", ips[1]),
    )
    .unwrap();
    assert_eq!(seen, ips[0]);
    let (_, seen) = exchange(
        pods[0].path(),
        "0.0.0.0:7011",
        pods[1].path(),
        &format!("{}:7011", ips[0]),
    )
    .unwrap();
    assert_eq!(seen, ips[1]);
    for (i, h) in two.hosts.iter().enumerate() {
        let rt = Runtime::new(h.socket(), h.dir());
        rt.del(
            plugin,
            "ctr",
            &pods[i].path().display().to_string(),
            &confs[i],
        )
        .ok();
        assert!(h.client().list_endpoints().unwrap().is_empty());
    }
}

/// The reference's `TestDualStack=1` variant for `sdnbridge`: an L2Bridge network made
/// beforehand with an IPv6 subnet beside the IPv4 one, Debian's `host-local` giving each pod
/// one address of each family (dual stack hands IPAM the configuration as written), and
/// both families carrying traffic: pod to pod over IPv6, untranslated, and host to pod over
/// IPv6 through the bridge's gateway address.
#[test]
fn sdnbridge_dual_stack_connectivity() {
    require_root();
    let host_local = std::path::Path::new("/usr/lib/cni/host-local");
    assert!(
        host_local.exists(),
        "install Debian's containernetworking-plugins"
    );
    let plugin = "sdnbridge";
    let hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let _outside = outside(&hnsd);
    let hcn = hnsd.client();
    let mut net = reference_network(plugin);
    net.ipams[0].subnets.push(hcn::schema::Subnet {
        ip_address_prefix: "fd00::/64".into(),
        routes: vec![hcn::schema::Route {
            next_hop: "fd00::1".into(),
            destination_prefix: "::/0".into(),
            metric: 0,
        }],
        ..Default::default()
    });
    hcn.create_network(&net).unwrap();
    let mut rt = Runtime::new(hnsd.socket(), hnsd.dir());
    rt.cni_path = format!("{}:/usr/lib/cni", hnsd.dir().display());
    let conf = reference_config(
        plugin,
        "1.0.0",
        json!({
            "optionalFlags": {"enableDualStack": true},
            "ipam": {"type": "host-local", "dataDir": hnsd.dir().join("host-local"),
                     "ranges": [[{"subnet": "10.0.0.0/16", "rangeStart": "10.0.3.10",
                                  "rangeEnd": "10.0.3.20", "gateway": gateway_of(plugin)}],
                                [{"subnet": "fd00::/64", "rangeStart": "fd00::a",
                                  "rangeEnd": "fd00::14", "gateway": "fd00::1"}]]},
        }),
    );
    let pods = [
        TestNetns::create(hnsd.dir().join("pod0")).unwrap(),
        TestNetns::create(hnsd.dir().join("pod1")).unwrap(),
    ];
    let paths: Vec<String> = pods
        .iter()
        .map(|p| p.path().display().to_string())
        .collect();
    let mut v6 = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let r = rt.add(plugin, &format!("ctr{i}"), path, &conf).ok().json();
        let ips: Vec<&str> = r["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ip| ip["address"].as_str().unwrap())
            .collect();
        assert_eq!(ips.len(), 2, "{r}");
        assert!(ips[0].starts_with("10.0.3."), "{r}");
        assert!(
            ips[1].starts_with("fd00::") && ips[1].ends_with("/64"),
            "{r}"
        );
        // The pod's interface carries the IPv6 address and an IPv6 default route.
        let addr = run_in(
            pods[i].path(),
            "ip",
            &["-o", "-6", "addr", "show", "dev", "eth0"],
        );
        assert!(addr.contains(&format!("inet6 {}", ips[1])), "{addr}");
        let route = run_in(pods[i].path(), "ip", &["-6", "route", "show", "default"]);
        assert!(route.contains("via fd00::1"), "{route}");
        // The IPv4 default route is host-local's gateway (the configuration has no
        // ipam.subnet or routes).
        let route = run_in(pods[i].path(), "ip", &["-4", "route", "show", "default"]);
        assert!(
            route.contains(&format!("via {}", gateway_of(plugin))),
            "{route}"
        );
        v6.push(ips[1].split('/').next().unwrap().to_string());
    }
    let reserved = hnsd.dir().join("host-local").join(network_of(plugin).1);
    assert!(reserved.join(&v6[0]).exists());
    // Pod to pod over IPv6, untranslated.
    let (_, seen) = exchange(
        pods[0].path(),
        "[::]:7020",
        pods[1].path(),
        &format!("[{}]:7020", v6[0]),
    )
    .unwrap();
    assert_eq!(seen, v6[1]);
    // Host to pod over IPv6: the host's side is the bridge's gateway address.
    let (_, seen) = exchange(
        pods[1].path(),
        "[::]:7021",
        &host,
        &format!("[{}]:7021", v6[1]),
    )
    .unwrap();
    assert_eq!(seen, "fd00::1");

    for (i, path) in paths.iter().enumerate() {
        rt.del(plugin, &format!("ctr{i}"), path, &conf).ok();
    }
    assert!(hcn.list_endpoints().unwrap().is_empty());
    // host-local released both families' addresses.
    let left: Vec<_> = std::fs::read_dir(&reserved)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("10.") || n.starts_with("fd00"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
