//! The dataplane in network namespaces the test creates (root): two endpoints on a NAT
//! network reach each other, an endpoint reaches the host, a host port mapping reaches the
//! endpoint, outbound connections are masqueraded, and deleting everything leaves no links,
//! namespaces or nft rules. Every namespace lives under the test's own temporary directory.

mod common;

use common::*;
use hcn::schema::*;
use hnsd::testing::TestHnsd;

fn netns_of(hcn: &hcn::Hcn, ns: &str) -> std::path::PathBuf {
    hcn.get_namespace_by_id(ns).unwrap().netns_path.into()
}

#[test]
fn nat_network_end_to_end() {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let outside = outside(&hnsd);
    let hcn = hnsd.client();
    let tag = hnsd.engine().unwrap().tag().to_string();

    let net = hcn
        .create_network(&nat("natnet", "10.231.0.0/24", "10.231.0.1"))
        .unwrap();
    let ep1 = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                name: "web".into(),
                policies: vec![port_mapping(8080, 80)],
                ..Default::default()
            },
        )
        .unwrap();
    let ep2 = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                name: "client".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let ns1 = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    let ns2 = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    hcn.add_namespace_endpoint(&ns1.id, &ep1.id).unwrap();
    hcn.add_namespace_endpoint_named(&ns2.id, &ep2.id, "pod0")
        .unwrap();
    let (p1, p2) = (netns_of(&hcn, &ns1.id), netns_of(&hcn, &ns2.id));
    assert!(p1.starts_with(hnsd.dir()), "{}", p1.display());

    // The endpoint's side: its name, MAC and address.
    let shown = run_in(&p1, "ip", &["-o", "addr", "show", "dev", "eth0"]);
    assert!(shown.contains("inet 10.231.0.2/24"), "{shown}");
    // (/sys shows the host's devices; ask netlink in the namespace instead.)
    let link = run_in(&p1, "ip", &["-o", "link", "show", "dev", "eth0"]);
    let mac = ep1.mac_address.replace('-', ":").to_ascii_lowercase();
    assert!(link.contains(&format!("link/ether {mac}")), "{link}");
    assert!(run_in(&p2, "ip", &["-o", "addr", "show", "dev", "pod0"]).contains("10.231.0.3/24"));
    assert!(links(&host).contains(&format!("{tag}b0")));

    // Endpoint to endpoint.
    let l = listen(&p1, "0.0.0.0:80");
    let server = serve_once(l);
    assert_eq!(
        talk(&p2, "10.231.0.2:80", "hi").unwrap(),
        "hi from 10.231.0.3"
    );
    server.join().unwrap().unwrap();

    // Endpoint to the host (the gateway address on the bridge).
    let server = serve_once(listen(&host, "10.231.0.1:7000"));
    assert_eq!(
        talk(&p1, "10.231.0.1:7000", "up").unwrap(),
        "up from 10.231.0.2"
    );
    server.join().unwrap().unwrap();

    // A host port mapping reaches the endpoint: from outside (prerouting) and from the host
    // itself (output).
    let server = serve_once(listen(&p1, "0.0.0.0:80"));
    assert_eq!(
        talk(outside.path(), "192.0.2.1:8080", "in").unwrap(),
        "in from 192.0.2.2"
    );
    server.join().unwrap().unwrap();
    let server = serve_once(listen(&p1, "0.0.0.0:80"));
    assert!(talk(&host, "192.0.2.1:8080", "local")
        .unwrap()
        .starts_with("local from "));
    server.join().unwrap().unwrap();

    // Outbound connections are masqueraded behind the host's address.
    let server = serve_once(listen(outside.path(), "192.0.2.2:9000"));
    assert_eq!(
        talk(&p2, "192.0.2.2:9000", "out").unwrap(),
        "out from 192.0.2.1"
    );
    assert_eq!(
        server.join().unwrap().unwrap().ip().to_string(),
        "192.0.2.1"
    );

    // The instance's nft table holds the rules.
    let table = run_in(
        &host,
        "nft",
        &["list", "table", "ip", &format!("hnsd_{tag}")],
    );
    // The port mapping is an element of the "any local address" maps.
    assert!(
        table.contains("masquerade")
            && table.contains("tcp . 8080 : 10.231.0.2")
            && table.contains("tcp . 8080 : 80"),
        "{table}"
    );

    // Deleting everything leaves nothing: no links of the instance, no nft table, no pinned
    // namespaces.
    hcn.remove_namespace_endpoint(&ns1.id, &ep1.id).unwrap();
    hcn.delete_namespace(&ns1.id).unwrap();
    hcn.delete_namespace(&ns2.id).unwrap(); // detaches ep2
    hcn.delete_endpoint(&ep1.id).unwrap();
    hcn.delete_endpoint(&ep2.id).unwrap();
    hcn.delete_network(&net.id).unwrap();
    let left: Vec<String> = links(&host)
        .into_iter()
        .filter(|l| l.starts_with(&tag))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!nft_tables(&host).contains(&tag), "{}", nft_tables(&host));
    assert!(!p1.exists() && !p2.exists());
    assert_eq!(
        std::fs::read_dir(&hnsd.config().netns_dir).unwrap().count(),
        0
    );
}

#[test]
fn restart_keeps_state_and_reconciles_the_kernel() {
    require_root();
    let mut hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let hcn = hnsd.client();
    let tag = hnsd.engine().unwrap().tag().to_string();
    let net = hcn
        .create_network(&nat("n", "10.232.0.0/24", "10.232.0.1"))
        .unwrap();
    let ep = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                policies: vec![port_mapping(8081, 80)],
                ..Default::default()
            },
        )
        .unwrap();
    let (ns_id, p) = attach_to_new_namespace(&hcn, &ep.id);

    // The kernel drifts while hnsd is down: its veth and nft table vanish, a stray link of
    // the instance appears.
    hnsd.restart().unwrap_or_else(|e| panic!("{e}"));
    let veth = format!("{tag}v1");
    run_in(&host, "ip", &["link", "del", &veth]);
    run_in(
        &host,
        "nft",
        &["delete", "table", "ip", &format!("hnsd_{tag}")],
    );
    run_in(
        &host,
        "ip",
        &[
            "link",
            "add",
            &format!("{tag}v99"),
            "type",
            "veth",
            "peer",
            "name",
            "stray1",
        ],
    );
    hnsd.restart().unwrap_or_else(|e| panic!("{e}"));

    // The client from before the restarts still works: its idle connection to the stopped
    // instance was ended, and it reconnects.
    assert_eq!(
        hcn.get_endpoint_by_id(&ep.id).unwrap(),
        hcn.get_endpoint_by_id(&ep.id).unwrap()
    );
    assert_eq!(
        hcn.get_endpoint_by_id(&ep.id)
            .unwrap()
            .host_compute_namespace,
        ns_id
    );
    let l = links(&host);
    assert!(
        l.contains(&veth) && l.contains(&format!("{tag}b0")),
        "{l:?}"
    );
    assert!(!l.contains(&format!("{tag}v99")), "{l:?}");
    assert!(nft_tables(&host).contains(&tag));
    // And the endpoint works again.
    let server = serve_once(listen(&p, "0.0.0.0:80"));
    assert!(talk(&host, "10.232.0.2:80", "back")
        .unwrap()
        .starts_with("back"));
    server.join().unwrap().unwrap();
}

#[test]
fn load_balancer_and_outbound_nat_exceptions_on_l2bridge() {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let outside = outside(&hnsd);
    // The outside network routes the pods' subnet and the service range back to the host.
    run_in(
        outside.path(),
        "ip",
        &["route", "add", "10.233.0.0/24", "via", "192.0.2.1"],
    );
    run_in(
        outside.path(),
        "ip",
        &["route", "add", "10.96.0.0/12", "via", "192.0.2.1"],
    );
    let hcn = hnsd.client();
    let mut doc = nat("bridge", "10.233.0.0/24", "10.233.0.1");
    doc.network_type = NetworkType::L2Bridge;
    let net = hcn.create_network(&doc).unwrap();
    let snat = |exceptions: Vec<String>| {
        EndpointPolicy::new(
            EndpointPolicyType::OutBoundNat,
            &OutboundNatPolicySetting {
                exceptions,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let ep1 = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                policies: vec![snat(vec![])],
                ..Default::default()
            },
        )
        .unwrap();
    let ep2 = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                policies: vec![snat(vec!["192.0.2.0/24".into()])],
                ..Default::default()
            },
        )
        .unwrap();
    let mut paths = Vec::new();
    for ep in [&ep1, &ep2] {
        paths.push(attach_to_new_namespace(&hcn, &ep.id).1);
    }

    // OutBoundNAT without exceptions: masqueraded; with the outside as an exception: not.
    let server = serve_once(listen(outside.path(), "192.0.2.2:9000"));
    assert_eq!(
        talk(&paths[0], "192.0.2.2:9000", "a").unwrap(),
        "a from 192.0.2.1"
    );
    server.join().unwrap().unwrap();
    let server = serve_once(listen(outside.path(), "192.0.2.2:9000"));
    assert_eq!(
        talk(&paths[1], "192.0.2.2:9000", "b").unwrap(),
        "b from 10.233.0.3"
    );
    server.join().unwrap().unwrap();

    // A load balancer: the frontend VIP spreads connections over both endpoints.
    let lb = hcn
        .add_load_balancer(
            &[ep1.clone(), ep2.clone()],
            &hcn::LoadBalancerSpec {
                frontend_vips: vec!["10.96.0.10".into()],
                protocol: 6,
                internal_port: 8080,
                external_port: 80,
                ..Default::default()
            },
        )
        .unwrap();
    let s1 = serve_many(listen(&paths[0], "0.0.0.0:8080"), "one", 40);
    let s2 = serve_many(listen(&paths[1], "0.0.0.0:8080"), "two", 40);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let who = talk(outside.path(), "10.96.0.10:80", "x").unwrap();
        *seen.entry(who).or_insert(0) += 1;
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["one", "two"],
        "{seen:?}"
    );
    // Removing the load balancer removes its rule.
    hcn.delete_load_balancer(&lb.id).unwrap();
    assert!(talk(outside.path(), "10.96.0.10:80", "x").is_err());
    drop((s1, s2)); // the servers end on their accept timeout
}

#[test]
fn ipv6_endpoints_reach_each_other_and_the_gateway() {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let hcn = hnsd.client();
    // A dual-stack L2Bridge network (the CNI's dual-stack case): the bridge carries both
    // gateways; HNS takes IPv6 addresses as given.
    let mut doc = nat("dual", "10.232.0.0/24", "10.232.0.1");
    doc.network_type = NetworkType::L2Bridge;
    doc.ipams[0].subnets.push(Subnet {
        ip_address_prefix: "fd00:232::/64".into(),
        routes: vec![Route {
            next_hop: "fd00:232::1".into(),
            destination_prefix: "::/0".into(),
            metric: 0,
        }],
        ..Default::default()
    });
    let net = hcn.create_network(&doc).unwrap();
    let mut pods = Vec::new();
    for (i, ip6) in ["fd00:232::10", "fd00:232::11"].iter().enumerate() {
        let ep = hcn
            .create_endpoint(
                &net,
                &HostComputeEndpoint {
                    ip_configurations: vec![IpConfig {
                        ip_address: ip6.to_string(),
                        prefix_length: 0,
                    }],
                    routes: vec![
                        Route {
                            next_hop: "10.232.0.1".into(),
                            destination_prefix: "0.0.0.0/0".into(),
                            metric: 0,
                        },
                        Route {
                            next_hop: "fd00:232::1".into(),
                            destination_prefix: "::/0".into(),
                            metric: 0,
                        },
                    ],
                    ..Default::default()
                },
            )
            .unwrap();
        let (ns, p) = attach_to_new_namespace(&hcn, &ep.id);
        let addrs = run_in(&p, "ip", &["-o", "addr", "show", "dev", "eth0"]);
        // Both families, the IPv6 one with the subnet's prefix and usable at once.
        assert!(
            addrs.contains(&format!("inet 10.232.0.{}/24", i + 2)),
            "{addrs}"
        );
        let line = addrs
            .lines()
            .find(|l| l.contains(&format!("inet6 {ip6}/64")))
            .unwrap_or_else(|| panic!("no {ip6}/64: {addrs}"));
        assert!(!line.contains("tentative"), "{line}");
        let route = run_in(&p, "ip", &["-6", "route", "show", "default"]);
        assert!(route.contains("via fd00:232::1"), "{route}");
        pods.push((ns, ep.id, p));
    }
    // Endpoint to endpoint over IPv6, and endpoint to the gateway on the bridge.
    let server = serve_once(listen(&pods[1].2, "[::]:80"));
    assert_eq!(
        talk(&pods[0].2, "[fd00:232::11]:80", "hi").unwrap(),
        "hi from fd00:232::10"
    );
    server.join().unwrap().unwrap();
    let server = serve_once(listen(&host, "[fd00:232::1]:7000"));
    assert_eq!(
        talk(&pods[1].2, "[fd00:232::1]:7000", "hi").unwrap(),
        "hi from fd00:232::11"
    );
    server.join().unwrap().unwrap();
    for (ns, ep, _) in pods {
        hcn.remove_namespace_endpoint(&ns, &ep).unwrap();
        hcn.delete_namespace(&ns).unwrap();
        hcn.delete_endpoint(&ep).unwrap();
    }
    hcn.delete_network(&net.id).unwrap();
}
