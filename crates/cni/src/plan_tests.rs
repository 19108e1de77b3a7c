use super::*;

fn cfg(text: &str) -> NetworkConfig {
    NetworkConfig::parse(text.as_bytes()).unwrap()
}

fn settings(p: &EndpointPolicy) -> &str {
    p.settings.as_ref().unwrap().get()
}

#[test]
fn endpoint_name_is_container_and_network() {
    assert_eq!(endpoint_name("abc", "natNet"), "abc_natNet");
}

#[test]
fn additional_args_keep_endpoint_and_network_policies_byte_for_byte() {
    let c = cfg(r#"{"name":"n","type":"sdnbridge","AdditionalArgs":[
        {"Name":"EndpointPolicy","Value":{"Type":"OutBoundNAT","Settings":{"Exceptions":["10.0.0.0/16","192.168.1.2/32"]}}},
        {"Name":"EndpointPolicy","Value":{"type":"SDNRoute","settings":{"DestinationPrefix":"11.0.0.0/8","NeedEncap":true}}},
        {"Name":"NetworkPolicy","Value":{"Type":"NetAdapterName","Settings":{"NetworkAdapterName":"eth0"}}},
        {"Name":"SomethingPolicy","Value":{"Type":"X"}},
        {"Name":"endpointpolicy","Value":{"Type":"ignored: lower case kind"}},
        {"Name":"Other","Value":42}
    ]}"#);
    let p = additional_policies(&c.additional_args).unwrap();
    assert_eq!(p.endpoint.len(), 2);
    assert_eq!(p.endpoint[0].policy_type, EndpointPolicyType::OutBoundNat);
    assert_eq!(
        settings(&p.endpoint[0]),
        r#"{"Exceptions":["10.0.0.0/16","192.168.1.2/32"]}"#
    );
    assert_eq!(p.endpoint[1].policy_type, EndpointPolicyType::SdnRoute);
    assert_eq!(
        settings(&p.endpoint[1]),
        r#"{"DestinationPrefix":"11.0.0.0/8","NeedEncap":true}"#
    );
    assert_eq!(p.network.len(), 1);
    assert_eq!(p.network[0].policy_type, NetworkPolicyType::NetAdapterName);
}

#[test]
fn malformed_policies_are_config_errors_not_panics() {
    for bad in [
        r#"[{"Name":"EndpointPolicy","Value":"text"}]"#,
        r#"[{"Name":"EndpointPolicy","Value":{"Type":5}}]"#,
        r#"[{"Name":"EndpointPolicy"}]"#,
        r#"[{"Name":"NetworkPolicy","Value":{"Settings":{}}}]"#,
        r#"[{"Name":"EndpointPolicy","Value":[1]}]"#,
    ] {
        let c = cfg(&format!(r#"{{"name":"n","AdditionalArgs":{bad}}}"#));
        let e = additional_policies(&c.additional_args).unwrap_err();
        assert_eq!(e.code(), 7, "{bad}: {e}");
        assert!(e.to_string().contains("AdditionalArgs[0]"), "{e}");
    }
}

#[test]
fn protocols_by_name_and_number() {
    for (text, want) in [
        ("tcp", 6),
        ("TCP", 6),
        ("udp", 17),
        ("Icmpv4", 1),
        ("icmpv6", 58),
        ("igmp", 2),
        ("6", 6),
        ("0x11", 17),
        ("021", 17),
        ("0b110", 6),
        ("1023", 1023),
        ("0", 0),
    ] {
        assert_eq!(parse_protocol(text).unwrap(), want, "{text}");
    }
    for bad in ["1024", "sctp", "", "-6", "+6", "0x", "6.0"] {
        let e = parse_protocol(bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid protocol supplied to port mapping policy"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn port_mappings_make_port_mapping_and_acl_policies() {
    let c = cfg(r#"{"name":"n","type":"nat",
        "optionalFlags":{"localRoutedPortMapping":true,"allowAclPortMapping":true},
        "runtimeConfig":{"portMappings":[
            {"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"192.168.1.2"},
            {"hostPort":5353,"containerPort":53,"protocol":"udp"}]}}"#);
    let p = port_mapping_policies(&c).unwrap();
    let got: Vec<(String, String)> = p
        .iter()
        .map(|p| (p.policy_type.to_string(), settings(p).to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "PortMapping".to_string(),
                r#"{"Protocol":6,"InternalPort":80,"ExternalPort":8080,"VIP":"192.168.1.2","Flags":1}"#
                    .to_string()
            ),
            (
                "ACL".to_string(),
                r#"{"Protocols":"6","Action":"Allow","Direction":"In","LocalPorts":"80","Priority":1000}"#
                    .to_string()
            ),
            (
                "PortMapping".to_string(),
                r#"{"Protocol":17,"InternalPort":53,"ExternalPort":5353,"Flags":1}"#.to_string()
            ),
            (
                "ACL".to_string(),
                r#"{"Protocols":"17","Action":"Allow","Direction":"In","LocalPorts":"53","Priority":1000}"#
                    .to_string()
            ),
        ]
    );
}

#[test]
fn dual_stack_adds_an_ipv6_port_mapping_without_vip() {
    let c = cfg(
        r#"{"name":"n","type":"sdnbridge","optionalFlags":{"enableDualStack":true},
        "runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080,"protocol":"tcp","hostIP":"10.1.1.1"}]}}"#,
    );
    let p = port_mapping_policies(&c).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(
        settings(&p[1]),
        r#"{"Protocol":6,"InternalPort":8080,"ExternalPort":80,"Flags":2}"#
    );
}

#[test]
fn bad_port_mappings_are_config_errors() {
    for pm in [
        r#"{"hostPort":70000,"containerPort":80,"protocol":"tcp"}"#,
        r#"{"hostPort":0,"containerPort":80,"protocol":"tcp"}"#,
        r#"{"hostPort":80,"containerPort":-1,"protocol":"tcp"}"#,
        r#"{"hostPort":80,"containerPort":80,"protocol":"sctp"}"#,
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp","hostIP":"nope"}"#,
    ] {
        let c = cfg(&format!(
            r#"{{"name":"n","runtimeConfig":{{"portMappings":[{pm}]}}}}"#
        ));
        assert_eq!(port_mapping_policies(&c).unwrap_err().code(), 7, "{pm}");
    }
}

#[test]
fn dns_prefixes_the_pod_namespace_and_runtime_lists_replace() {
    let c = cfg(
        r#"{"name":"n","dns":{"nameservers":["10.50.10.50","8.8.8.8"],"domain":"d",
        "search":["svc.cluster.local","svc.cluster.local"],"options":["ndots:2"]}}"#,
    );
    let args = K8sArgs {
        pod_namespace: "default".into(),
        ..Default::default()
    };
    let d = dns_settings(&c, &args);
    assert_eq!(d.search, ["default.svc.cluster.local", "svc.cluster.local"]);
    assert_eq!(d.server_list, ["10.50.10.50", "8.8.8.8"]);
    assert_eq!(d.domain, "d");
    assert_eq!(d.options, ["ndots:2"]);
    let d = dns_settings(&c, &K8sArgs::default());
    assert_eq!(d.search[0], "svc.cluster.local");

    let c = cfg(
        r#"{"name":"n","dns":{"nameservers":["8.8.8.8"],"search":["a"]},
        "runtimeConfig":{"dns":{"servers":["1.1.1.1"],"searches":["b.local"],"options":[]}}}"#,
    );
    let d = dns_settings(&c, &args);
    assert_eq!(d.server_list, ["1.1.1.1"]);
    assert_eq!(d.search, ["b.local"]);
    assert!(d.options.is_empty());
}

#[test]
fn network_plan_gateway_is_first_host_or_routes_gw() {
    let p = NetworkPlan::new(
        &cfg(r#"{"name":"natNet","type":"nat","ipam":{"subnet":"10.0.0.0/16"}}"#),
        &K8sArgs::default(),
    )
    .unwrap();
    assert_eq!(p.subnet.unwrap().to_string(), "10.0.0.0/16");
    assert_eq!(p.gateway.unwrap().to_string(), "10.0.0.1");
    // An address written with host bits: the subnet is masked, the gateway its first host.
    let p = NetworkPlan::new(
        &cfg(r#"{"name":"n","type":"nat","ipam":{"subnet":"10.0.3.255/24"}}"#),
        &K8sArgs::default(),
    )
    .unwrap();
    assert_eq!(p.subnet.unwrap().to_string(), "10.0.3.0/24");
    assert_eq!(p.gateway.unwrap().to_string(), "10.0.3.1");
    let p = NetworkPlan::new(
        &cfg(r#"{"name":"n","type":"sdnbridge","ipam":{"subnet":"10.0.0.0/16","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.2"}]}}"#),
        &K8sArgs::default(),
    )
    .unwrap();
    assert_eq!(p.gateway.unwrap().to_string(), "10.0.0.2");
    assert_eq!(p.network_type, NetworkType::L2Bridge);
    // IPv6 works (the reference panics).
    let p = NetworkPlan::new(
        &cfg(r#"{"name":"n","type":"sdnbridge","ipam":{"subnet":"fd00::/64"}}"#),
        &K8sArgs::default(),
    )
    .unwrap();
    assert_eq!(p.gateway.unwrap().to_string(), "fd00::1");
    let doc = p.network_document();
    assert_eq!(doc.ipams[0].subnets[0].routes[0].destination_prefix, "::/0");
}

#[test]
fn network_plan_errors() {
    for bad in [
        r#"{"name":"n","type":"nat","ipam":{"subnet":"10.0.0.0"}}"#,
        r#"{"name":"n","type":"nat","ipam":{"routes":[{"gw":"x"}]}}"#,
        r#"{"name":"n","type":"bridge"}"#,
    ] {
        assert_eq!(
            NetworkPlan::new(&cfg(bad), &K8sArgs::default())
                .unwrap_err()
                .code(),
            7,
            "{bad}"
        );
    }
}

/// Go marshals structs held by value (`MacPool`, `Health`) even when empty, as hcn does.
#[test]
fn network_document_matches_the_reference_shape() {
    let p = NetworkPlan::new(
        &cfg(r#"{"name":"natNet","type":"nat","ipam":{"subnet":"10.0.0.0/16"},
            "dns":{"nameservers":["8.8.8.8"],"search":["svc.cluster.local"]},
            "AdditionalArgs":[{"name":"NetworkPolicy","value":{"Type":"NetAdapterName","Settings":{"NetworkAdapterName":"eth0"}}}]}"#),
        &K8sArgs::default(),
    )
    .unwrap();
    let text = serde_json::to_string(&p.network_document()).unwrap();
    assert_eq!(
        text,
        r#"{"Name":"natNet","Type":"NAT","Policies":[{"Type":"NetAdapterName","Settings":{"NetworkAdapterName":"eth0"}}],"MacPool":{},"Dns":{"Search":["svc.cluster.local"],"ServerList":["8.8.8.8"]},"Ipams":[{"Type":"Static","Subnets":[{"IpAddressPrefix":"10.0.0.0/16","Routes":[{"NextHop":"10.0.0.1","DestinationPrefix":"0.0.0.0/0"}]}]}],"Health":{"Extra":{}},"SchemaVersion":{"Major":2,"Minor":0}}"#
    );
    let bare = NetworkPlan::new(&cfg(r#"{"name":"x","type":"nat"}"#), &K8sArgs::default())
        .unwrap()
        .network_document();
    assert!(bare.ipams.is_empty());
}

#[test]
fn endpoint_document_only_carries_known_addresses() {
    let addrs = EndpointAddresses {
        ip4: Some("10.0.0.5".parse().unwrap()),
        gw4: Some("10.0.0.1".parse().unwrap()),
        ip6: Some("fd00::5".parse().unwrap()),
        gw6: Some("fd00::101".parse().unwrap()),
    };
    let ep = endpoint_document("c_n", "NET-ID", Vec::new(), &addrs, &Dns::default());
    let text = serde_json::to_string(&ep).unwrap();
    assert_eq!(
        text,
        r#"{"Name":"c_n","HostComputeNetwork":"NET-ID","IpConfigurations":[{"IpAddress":"10.0.0.5"},{"IpAddress":"fd00::5"}],"Dns":{},"Routes":[{"NextHop":"10.0.0.1","DestinationPrefix":"0.0.0.0/0"},{"NextHop":"fd00::101","DestinationPrefix":"::/0"}],"Health":{"Extra":{}},"SchemaVersion":{"Major":2,"Minor":0}}"#
    );
    let ep = endpoint_document(
        "c_n",
        "N",
        Vec::new(),
        &EndpointAddresses::default(),
        &Dns::default(),
    );
    assert!(ep.ip_configurations.is_empty() && ep.routes.is_empty());
    assert!(ep.host_compute_namespace.is_empty() && ep.mac_address.is_empty());
}

fn network_with(prefix: &str, gw: &str) -> HostComputeNetwork {
    HostComputeNetwork {
        id: "NET".into(),
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: prefix.into(),
                routes: vec![Route {
                    next_hop: gw.into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }],
        ..Default::default()
    }
}

#[test]
fn result_takes_the_network_prefix_and_the_endpoint_gateway() {
    let ep = HostComputeEndpoint {
        id: "EP".into(),
        ip_configurations: vec![IpConfig {
            ip_address: "10.0.0.7".into(),
            prefix_length: 24,
        }],
        routes: vec![Route {
            next_hop: "10.0.0.2".into(),
            destination_prefix: "0.0.0.0/0".into(),
            ..Default::default()
        }],
        mac_address: "00-15-5D-01-02-03".into(),
        ..Default::default()
    };
    let r = result_of(&ep, &network_with("10.0.0.0/16", "10.0.0.1"), "eth0").unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.0.0.7/16");
    assert_eq!(r.ips[0].gateway.unwrap().to_string(), "10.0.0.2");
    assert_eq!(r.interfaces[0].mac, "00:15:5d:01:02:03");
    assert_eq!(r.interfaces[0].name, "eth0");
}

#[test]
fn result_falls_back_to_endpoint_prefix_and_network_gateway() {
    let ep = HostComputeEndpoint {
        id: "EP".into(),
        ip_configurations: vec![
            IpConfig {
                ip_address: "fd00::5".into(),
                prefix_length: 64,
            },
            IpConfig {
                ip_address: "10.0.0.7".into(),
                prefix_length: 0,
            },
        ],
        ..Default::default()
    };
    let r = result_of(&ep, &network_with("10.0.0.0/16", "10.0.0.1"), "eth1").unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.0.0.7/16");
    assert_eq!(r.ips[0].gateway.unwrap().to_string(), "10.0.0.1");
    assert_eq!(r.ips[1].address.to_string(), "fd00::5/64");
    assert_eq!(r.ips[1].gateway, None);
    // No subnet anywhere: a host prefix instead of the reference's "<nil>".
    let r = result_of(&ep, &HostComputeNetwork::default(), "eth0").unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.0.0.7/32");
}

#[test]
fn result_errors_on_missing_or_bad_addresses() {
    let net = network_with("10.0.0.0/16", "10.0.0.1");
    let mut ep = HostComputeEndpoint {
        id: "EP".into(),
        ..Default::default()
    };
    assert!(result_of(&ep, &net, "eth0")
        .unwrap_err()
        .to_string()
        .contains("no IP address"));
    ep.ip_configurations.push(IpConfig {
        ip_address: "bad".into(),
        prefix_length: 0,
    });
    assert!(result_of(&ep, &net, "eth0").is_err());
    ep.ip_configurations[0].ip_address = "10.0.0.2".into();
    ep.mac_address = "zz".into();
    assert!(result_of(&ep, &net, "eth0")
        .unwrap_err()
        .to_string()
        .contains("MacAddress"));
}

#[test]
fn runtime_ips_and_mac_are_read_and_checked() {
    let r = runtime_requests(&cfg(
        r#"{"name":"n","runtimeConfig":{"ips":["10.0.7.7/16","fd00::7/64","10.0.8.8"],
            "mac":"c2:11:22:33:44:55"}}"#,
    ))
    .unwrap();
    assert_eq!(r.ip4, Some("10.0.7.7".parse().unwrap()));
    assert_eq!(r.ip6, Some("fd00::7".parse().unwrap()));
    assert_eq!(r.mac.as_deref(), Some("C2-11-22-33-44-55"));
    assert_eq!(
        runtime_requests(&cfg(r#"{"name":"n"}"#)).unwrap(),
        RuntimeRequests::default()
    );
    // args.cni is the fallback; the capability wins.
    let r = runtime_requests(&cfg(
        r#"{"name":"n","args":{"cni":{"ips":["10.0.9.9/16"],"mac":"c2:00:00:00:00:09"},
            "labels":{"x":"y"}},"runtimeConfig":{"mac":"c2:11:22:33:44:55"}}"#,
    ))
    .unwrap();
    assert_eq!(r.ip4, Some("10.0.9.9".parse().unwrap()));
    assert_eq!(r.mac.as_deref(), Some("C2-11-22-33-44-55"));
    for bad in [
        r#"{"name":"n","runtimeConfig":{"ips":["10.0.0.300/16"]}}"#,
        r#"{"name":"n","runtimeConfig":{"mac":"c2:11:22"}}"#,
    ] {
        assert_eq!(runtime_requests(&cfg(bad)).unwrap_err().code(), 7, "{bad}");
    }
}

#[test]
fn bandwidth_egress_is_a_qos_cap_in_bytes() {
    let p = bandwidth_policies(&cfg(
        r#"{"name":"n","runtimeConfig":{"bandwidth":{"egressRate":1000001,"egressBurst":80,
            "ingressRate":8000}}}"#,
    ))
    .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].policy_type, EndpointPolicyType::Qos);
    assert_eq!(
        settings(&p[0]),
        r#"{"MaximumOutgoingBandwidthInBytes":125001}"#
    );
    assert!(bandwidth_policies(&cfg(r#"{"name":"n"}"#))
        .unwrap()
        .is_empty());
    let e = bandwidth_policies(&cfg(
        r#"{"name":"n","runtimeConfig":{"bandwidth":{"egressRate":-1}}}"#,
    ))
    .unwrap_err();
    assert_eq!(e.code(), 7);
}
