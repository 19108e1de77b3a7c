//! JSON of every HCN v2 document against the shapes of hcs-hcn-api.md §5: keys, Go's
//! `omitempty` (structs held by value always emitted), raw members kept byte for byte.

use serde_json::json;

use super::*;

fn to(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn empty_documents_emit_only_value_structs() {
    // MacPool, Dns, Health and SchemaVersion are structs held by value: always emitted.
    assert_eq!(
        to(&HostComputeNetwork::default()),
        r#"{"MacPool":{},"Dns":{},"Health":{"Extra":{}},"SchemaVersion":{"Major":0,"Minor":0}}"#
    );
    assert_eq!(
        to(&HostComputeEndpoint::default()),
        r#"{"Dns":{},"Health":{"Extra":{}},"SchemaVersion":{"Major":0,"Minor":0}}"#
    );
    assert_eq!(
        to(&HostComputeNamespace::default()),
        r#"{"SchemaVersion":{"Major":0,"Minor":0}}"#
    );
    assert_eq!(
        to(&HostComputeLoadBalancer::default()),
        r#"{"SchemaVersion":{"Major":0,"Minor":0}}"#
    );
    assert_eq!(
        to(&HostComputeRoute::default()),
        r#"{"SchemaVersion":{"Major":0,"Minor":0}}"#
    );
    assert_eq!(
        to(&HostComputeQuery::default()),
        r#"{"SchemaVersion":{"Major":2,"Minor":0}}"#
    );
}

#[test]
fn network_keys_and_order() {
    let n = HostComputeNetwork {
        id: "N".into(),
        name: "nat".into(),
        network_type: NetworkType::Nat,
        policies: vec![NetworkPolicy::new(
            NetworkPolicyType::NetAdapterName,
            &NetAdapterNameNetworkPolicySetting {
                network_adapter_name: "eth0".into(),
            },
        )
        .unwrap()],
        mac_pool: MacPool {
            ranges: vec![MacRange {
                start_mac_address: "00-15-5D-00-00-00".into(),
                end_mac_address: "00-15-5D-00-FF-FF".into(),
            }],
        },
        dns: Dns {
            domain: "d".into(),
            search: vec!["s".into()],
            server_list: vec!["1.1.1.1".into()],
            options: vec!["o".into()],
        },
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: "10.0.0.0/24".into(),
                policies: vec![RawJson::from_text(
                    r#"{"Type":"VSID","Settings":{"IsolationId":4096}}"#,
                )
                .unwrap()],
                routes: vec![Route {
                    next_hop: "10.0.0.1".into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 5,
                }],
                flags: SUBNET_FLAG_DO_NOT_RESERVE_GATEWAY_ADDRESS,
            }],
        }],
        flags: NETWORK_FLAG_DISABLE_HOST_PORT,
        health: Health::default(),
        schema_version: V2_SCHEMA_VERSION,
    };
    assert_eq!(
        to(&n),
        concat!(
            r#"{"ID":"N","Name":"nat","Type":"NAT","#,
            r#""Policies":[{"Type":"NetAdapterName","Settings":{"NetworkAdapterName":"eth0"}}],"#,
            r#""MacPool":{"Ranges":[{"StartMacAddress":"00-15-5D-00-00-00","EndMacAddress":"00-15-5D-00-FF-FF"}]},"#,
            r#""Dns":{"Domain":"d","Search":["s"],"ServerList":["1.1.1.1"],"Options":["o"]},"#,
            r#""Ipams":[{"Type":"Static","Subnets":[{"IpAddressPrefix":"10.0.0.0/24","#,
            r#""Policies":[{"Type":"VSID","Settings":{"IsolationId":4096}}],"#,
            r#""Routes":[{"NextHop":"10.0.0.1","DestinationPrefix":"0.0.0.0/0","Metric":5}],"Flags":1}]}],"#,
            r#""Flags":1024,"Health":{"Extra":{}},"SchemaVersion":{"Major":2,"Minor":0}}"#
        )
    );
    let back = HostComputeNetwork::from_json(&to(&n)).unwrap();
    assert_eq!(back, n);
    // HNS omits enum 0: a network without a type is NAT.
    assert_eq!(
        HostComputeNetwork::from_json("{}").unwrap().network_type,
        NetworkType::Nat
    );
    assert_eq!(
        HostComputeNetwork::from_json(r#"{"Type":"Overlay","Dns":null,"Ipams":null}"#)
            .unwrap()
            .network_type,
        NetworkType::Overlay
    );
    for t in [
        "NAT",
        "Transparent",
        "L2Bridge",
        "L2Tunnel",
        "ICS",
        "Private",
        "Overlay",
    ] {
        assert_eq!(NetworkType::from(t).as_str(), t);
        assert!(!matches!(NetworkType::from(t), NetworkType::Other(_)));
    }
}

#[test]
fn endpoint_keys() {
    let e = HostComputeEndpoint {
        id: "E".into(),
        name: "c_nat".into(),
        host_compute_network: "N".into(),
        host_compute_namespace: "S".into(),
        policies: vec![EndpointPolicy::new(
            EndpointPolicyType::PortMapping,
            &PortMappingPolicySetting {
                protocol: protocol::TCP,
                internal_port: 80,
                external_port: 8080,
                vip: String::new(),
                flags: NAT_FLAG_LOCAL_ROUTED_VIP,
            },
        )
        .unwrap()],
        ip_configurations: vec![IpConfig {
            ip_address: "10.0.0.2".into(),
            prefix_length: 24,
        }],
        dns: Dns::default(),
        routes: vec![Route {
            next_hop: "10.0.0.1".into(),
            destination_prefix: "0.0.0.0/0".into(),
            metric: 0,
        }],
        mac_address: "00-15-5D-00-00-02".into(),
        flags: ENDPOINT_FLAG_REMOTE_ENDPOINT,
        health: Health::default(),
        schema_version: V2_SCHEMA_VERSION,
    };
    assert_eq!(
        to(&e),
        concat!(
            r#"{"ID":"E","Name":"c_nat","HostComputeNetwork":"N","HostComputeNamespace":"S","#,
            r#""Policies":[{"Type":"PortMapping","Settings":{"Protocol":6,"InternalPort":80,"ExternalPort":8080,"Flags":1}}],"#,
            r#""IpConfigurations":[{"IpAddress":"10.0.0.2","PrefixLength":24}],"Dns":{},"#,
            r#""Routes":[{"NextHop":"10.0.0.1","DestinationPrefix":"0.0.0.0/0"}],"#,
            r#""MacAddress":"00-15-5D-00-00-02","Flags":1,"Health":{"Extra":{}},"SchemaVersion":{"Major":2,"Minor":0}}"#
        )
    );
    assert_eq!(
        serde_json::from_str::<HostComputeEndpoint>(&to(&e)).unwrap(),
        e
    );
}

#[test]
fn namespace_and_requests() {
    let ns = HostComputeNamespace {
        id: "S".into(),
        namespace_id: 3,
        namespace_type: NamespaceType::Host,
        resources: vec![NamespaceResource {
            resource_type: NamespaceResourceType::Endpoint,
            data: RawJson::from_value(&NamespaceResourceEndpoint { id: "E".into() }).unwrap(),
        }],
        schema_version: V2_SCHEMA_VERSION,
        ready_on_create: false,
        netns_path: String::new(),
    };
    assert_eq!(
        to(&ns),
        r#"{"ID":"S","NamespaceId":3,"Type":"Host","Resources":[{"Type":"Endpoint","Data":{"ID":"E"}}],"SchemaVersion":{"Major":2,"Minor":0}}"#
    );
    let ready = HostComputeNamespace {
        ready_on_create: true,
        ..Default::default()
    };
    assert_eq!(
        to(&ready),
        r#"{"SchemaVersion":{"Major":0,"Minor":0},"ReadyOnCreate":true}"#
    );
    let req = ModifyNamespaceSettingRequest {
        resource_type: NamespaceResourceType::Endpoint,
        request_type: RequestType::Add,
        settings: Some(
            RawJson::from_value(&NamespaceEndpointRequest {
                endpoint_id: "E".into(),
                ..Default::default()
            })
            .unwrap(),
        ),
    };
    assert_eq!(
        to(&req),
        r#"{"ResourceType":"Endpoint","RequestType":"Add","Settings":{"EndpointId":"E"}}"#
    );
    let req = ModifyEndpointSettingRequest {
        resource_type: EndpointResourceType::Policy,
        request_type: RequestType::Remove,
        settings: Some(RawJson::from_value(&PolicyEndpointRequest { policies: vec![] }).unwrap()),
    };
    assert_eq!(
        to(&req),
        r#"{"ResourceType":"Policy","RequestType":"Remove","Settings":{}}"#
    );
    let req = ModifyNetworkSettingRequest {
        resource_type: NetworkResourceType::Dns,
        request_type: RequestType::Update,
        settings: None,
    };
    assert_eq!(to(&req), r#"{"ResourceType":"DNS","RequestType":"Update"}"#);
    assert_eq!(
        to(&VmEndpointRequest {
            port_id: "p".into(),
            virtual_nic_name: "n".into(),
            virtual_machine_id: "v".into()
        }),
        r#"{"PortId":"p","VirtualNicName":"n","VirtualMachineId":"v"}"#
    );
}

#[test]
fn load_balancer_and_route() {
    let lb = HostComputeLoadBalancer {
        id: "L".into(),
        host_compute_endpoints: vec!["E".into()],
        source_vip: "10.0.0.9".into(),
        frontend_vips: vec!["1.2.3.4".into()],
        port_mappings: vec![LoadBalancerPortMapping {
            protocol: 17,
            internal_port: 53,
            external_port: 53,
            distribution_type: LB_DISTRIBUTION_SOURCE_IP,
            flags: LB_PORT_MAPPING_FLAG_ILB | LB_PORT_MAPPING_FLAG_PRESERVE_DIP,
        }],
        schema_version: V2_SCHEMA_VERSION,
        flags: LOAD_BALANCER_FLAG_DSR,
    };
    assert_eq!(
        to(&lb),
        concat!(
            r#"{"ID":"L","HostComputeEndpoints":["E"],"SourceVIP":"10.0.0.9","FrontendVIPs":["1.2.3.4"],"#,
            r#""PortMappings":[{"Protocol":17,"InternalPort":53,"ExternalPort":53,"DistributionType":2,"Flags":9}],"#,
            r#""SchemaVersion":{"Major":2,"Minor":0},"Flags":1}"#
        )
    );
    let r = HostComputeRoute {
        schema_version: V2_SCHEMA_VERSION,
        id: "R".into(),
        host_compute_endpoints: vec!["E".into()],
        setting: vec![SdnRoutePolicySetting {
            destination_prefix: "11.0.0.0/8".into(),
            next_hop: String::new(),
            need_encap: true,
        }],
    };
    assert_eq!(
        to(&r),
        r#"{"SchemaVersion":{"Major":2,"Minor":0},"ID":"R","HostComputeEndpoints":["E"],"Setting":[{"DestinationPrefix":"11.0.0.0/8","NeedEncap":true}]}"#
    );
}

#[test]
fn query_filter_is_json_text_in_a_string() {
    assert_eq!(
        HostComputeQuery::by_name("nat").to_json(),
        r#"{"SchemaVersion":{"Major":2,"Minor":0},"Filter":"{\"Name\":\"nat\"}"}"#
    );
    assert_eq!(
        HostComputeQuery::filter_by("VirtualNetwork", "N").filter,
        r#"{"VirtualNetwork":"N"}"#
    );
    let q = HostComputeQuery {
        flags: QUERY_FLAG_DETAILED,
        ..Default::default()
    };
    assert_eq!(
        q.to_json(),
        r#"{"SchemaVersion":{"Major":2,"Minor":0},"Flags":1}"#
    );
}

/// Every endpoint, network and subnet policy settings type with its keys (zero values
/// omitted except where the reference has no `omitempty`).
#[test]
fn policy_settings_shapes() {
    let cases: Vec<(String, serde_json::Value)> = vec![
        (to(&PortMappingPolicySetting::default()), json!({})),
        (
            to(&AclPolicySetting::default()),
            json!({"Action": "", "Direction": ""}),
        ),
        (
            to(&AclPolicySetting {
                protocols: "6".into(),
                action: ActionType::Allow,
                direction: DirectionType::In,
                local_ports: "80".into(),
                rule_type: RuleType::Switch,
                priority: 1000,
                ..Default::default()
            }),
            json!({"Protocols": "6", "Action": "Allow", "Direction": "In", "LocalPorts": "80", "RuleType": "Switch", "Priority": 1000}),
        ),
        (
            to(&QosPolicySetting::default()),
            json!({"MaximumOutgoingBandwidthInBytes": 0}),
        ),
        (
            to(&OutboundNatPolicySetting {
                virtual_ip: "1.1.1.1".into(),
                exceptions: vec!["10.0.0.0/8".into()],
                destinations: vec!["2.2.2.2".into()],
                flags: 1,
                max_port_pool_usage: 9,
            }),
            json!({"VirtualIP": "1.1.1.1", "Exceptions": ["10.0.0.0/8"], "Destinations": ["2.2.2.2"], "Flags": 1, "MaxPortPoolUsage": 9}),
        ),
        (to(&SdnRoutePolicySetting::default()), json!({})),
        (
            to(&L4ProxyPolicySetting::default()),
            json!({"Destination": ""}),
        ),
        (
            to(&L4ProxyPolicySetting {
                ip: "1.1.1.1".into(),
                port: "15001".into(),
                protocol: protocol::TCP,
                exceptions: vec!["x".into()],
                destination: "d".into(),
                outbound_nat: true,
            }),
            json!({"IP": "1.1.1.1", "Port": "15001", "Protocol": 6, "Exceptions": ["x"], "Destination": "d", "OutboundNAT": true}),
        ),
        (
            to(&L4WfpProxyPolicySetting::default()),
            json!({"FilterTuple": {}, "InboundExceptions": {}, "OutboundExceptions": {}}),
        ),
        (
            to(&PortnameEndpointPolicySetting { name: "p".into() }),
            json!({"Name": "p"}),
        ),
        (
            to(&EncapOverheadEndpointPolicySetting { overhead: 50 }),
            json!({"Overhead": 50}),
        ),
        (
            to(&IovPolicySetting {
                iov_offload_weight: 1,
                queue_pairs_requested: 2,
                interrupt_moderation: 3,
            }),
            json!({"IovOffloadWeight": 1, "QueuePairsRequested": 2, "InterruptModeration": 3}),
        ),
        (
            to(&ProviderAddressEndpointPolicySetting {
                provider_address: "h".into(),
            }),
            json!({"ProviderAddress": "h"}),
        ),
        (
            to(&InterfaceConstraintPolicySetting {
                interface_luid: 7,
                interface_alias: "a".into(),
                ..Default::default()
            }),
            json!({"InterfaceLuid": 7, "InterfaceAlias": "a"}),
        ),
        (
            to(&TierAclPolicySetting::default()),
            json!({"Name": "", "Direction": "", "Order": 0}),
        ),
        (
            to(&TierAclRule::default()),
            json!({"TierAclRuleAction": ""}),
        ),
        (
            to(&SourceMacAddressNetworkPolicySetting::default()),
            json!({}),
        ),
        (
            to(&VSwitchExtensionNetworkPolicySetting {
                extension_id: "x".into(),
                enable: true,
            }),
            json!({"ExtensionID": "x", "Enable": true}),
        ),
        (
            to(&DrMacAddressNetworkPolicySetting {
                address: "m".into(),
            }),
            json!({"Address": "m"}),
        ),
        (
            to(&AutomaticDnsNetworkPolicySetting { enable: true }),
            json!({"Enable": true}),
        ),
        (
            to(&RemoteSubnetRoutePolicySetting::default()),
            json!({"DestinationPrefix": "", "IsolationId": 0, "ProviderAddress": "", "DistributedRouterMacAddress": ""}),
        ),
        (to(&VxlanPortPolicySetting::default()), json!({"Port": 0})),
        (to(&HostRoutePolicySetting::default()), json!({})),
        (
            to(&SetPolicySetting {
                id: "i".into(),
                name: "n".into(),
                policy_type: SetPolicyType::IpSet,
                values: "1.1.1.1".into(),
            }),
            json!({"Id": "i", "Name": "n", "PolicyType": "IPSET", "Values": "1.1.1.1"}),
        ),
        (
            to(&LayerConstraintNetworkPolicySetting {
                layer_id: "l".into(),
            }),
            json!({"LayerId": "l"}),
        ),
        (to(&VlanPolicySetting::default()), json!({"IsolationId": 0})),
        (
            to(&VsidPolicySetting { isolation_id: 4096 }),
            json!({"IsolationId": 4096}),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&got).unwrap(),
            want,
            "{got}"
        );
    }
}

#[test]
fn policy_envelope_keeps_settings_bytes_and_decodes_them() {
    let text =
        r#"{"Type":"OutBoundNAT","Settings":{"Exceptions":["10.0.0.0/16", "192.168.1.1/32"]}}"#;
    let p: EndpointPolicy = serde_json::from_str(text).unwrap();
    assert_eq!(p.policy_type, EndpointPolicyType::OutBoundNat);
    assert_eq!(to(&p), text);
    let s: OutboundNatPolicySetting = p.settings().unwrap();
    assert_eq!(s.exceptions, ["10.0.0.0/16", "192.168.1.1/32"]);
    let unknown: EndpointPolicy =
        serde_json::from_str(r#"{"Type":"Future","Settings":[1]}"#).unwrap();
    assert_eq!(
        unknown.policy_type,
        EndpointPolicyType::Other("Future".into())
    );
    assert_eq!(to(&unknown), r#"{"Type":"Future","Settings":[1]}"#);
    let bare: EndpointPolicy = serde_json::from_str(r#"{"Type":"L2Driver"}"#).unwrap();
    assert_eq!(to(&bare), r#"{"Type":"L2Driver"}"#);
    assert_eq!(
        bare.settings::<PortMappingPolicySetting>().unwrap(),
        PortMappingPolicySetting::default()
    );
    for t in EndpointPolicyType::KNOWN
        .iter()
        .chain(NetworkPolicyType::KNOWN)
        .chain(SubnetPolicyType::KNOWN)
    {
        assert!(!t.is_empty());
    }
    assert_eq!(EndpointPolicyType::KNOWN.len(), 14);
    assert_eq!(NetworkPolicyType::KNOWN.len(), 14);
    assert_eq!(
        SubnetPolicy::new(
            SubnetPolicyType::Vlan,
            &VlanPolicySetting { isolation_id: 5 }
        )
        .map(|p| to(&p))
        .unwrap(),
        r#"{"Type":"VLAN","Settings":{"IsolationId":5}}"#
    );
}

#[test]
fn bad_documents_are_errors_not_panics() {
    assert!(serde_json::from_str::<HostComputeNetwork>(r#"{"Ipams":"x"}"#).is_err());
    assert!(serde_json::from_str::<HostComputeEndpoint>(
        r#"{"IpConfigurations":[{"PrefixLength":300}]}"#
    )
    .is_err());
    assert!(serde_json::from_str::<HostComputeNamespace>("[").is_err());
    // Unknown keys are accepted, as Go accepts them.
    assert!(serde_json::from_str::<HostComputeLoadBalancer>(r#"{"Whatever":1}"#).is_ok());
}
