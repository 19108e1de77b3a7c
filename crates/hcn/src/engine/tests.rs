//! The engine through the `hcn` client: HNS's validation rules, one table row per rule with
//! its HRESULT; IPAM and MAC pools; attach rules; persistence across a restart; the
//! dataplane calls.
#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads best in assertions

use std::sync::Arc;

use hcs::HResult;
use serde_json::json;

use super::*;
use crate::error::{is_not_found_error, is_port_already_exists_error, Error};
use crate::hresult as hr;
use crate::schema::*;
use crate::Hcn;

fn nat(name: &str, prefix: &str, gw: &str) -> HostComputeNetwork {
    HostComputeNetwork {
        name: name.into(),
        network_type: NetworkType::Nat,
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: prefix.into(),
                routes: vec![Route {
                    next_hop: gw.into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }],
                ..Default::default()
            }],
        }],
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    }
}

fn port_mapping(ext: u16, int: u16) -> EndpointPolicy {
    EndpointPolicy::new(
        EndpointPolicyType::PortMapping,
        &PortMappingPolicySetting {
            protocol: 6,
            internal_port: int,
            external_port: ext,
            ..Default::default()
        },
    )
    .unwrap()
}

fn code(e: &Error) -> u32 {
    e.call().map(|c| c.hresult().value()).unwrap_or(0)
}

fn raw_hr(h: HResult) -> u32 {
    let v = h.value();
    if v < 0x1_0000 {
        0x8007_0000 | v
    } else {
        v
    }
}

/// Fresh engine with one NAT network `n` (10.10.0.0/24) and one endpoint `e1` on it.
pub(super) fn setup() -> (Arc<Engine>, Hcn, HostComputeNetwork, HostComputeEndpoint) {
    let engine = Engine::in_memory();
    let hcn = engine.client();
    let net = hcn
        .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
        .unwrap();
    let ep = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                name: "e1".into(),
                policies: vec![port_mapping(8080, 80)],
                ..Default::default()
            },
        )
        .unwrap();
    (engine, hcn, net, ep)
}

#[test]
fn create_fills_what_hns_fills() {
    let (_, hcn, net, ep) = setup();
    assert_eq!(net.id.len(), 36);
    assert_eq!(net.id, net.id.to_ascii_uppercase());
    assert_eq!(ep.host_compute_network, net.id);
    assert_eq!(
        ep.ip_configurations,
        [IpConfig {
            ip_address: "10.10.0.2".into(),
            prefix_length: 24
        }]
    );
    assert_eq!(ep.mac_address, "00-15-5D-00-00-01");
    assert_eq!(ep.routes[0].next_hop, "10.10.0.1");
    assert_eq!(ep.schema_version, V2_SCHEMA_VERSION);
    // The second endpoint gets the next address and MAC.
    let ep2 = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    assert_eq!(ep2.ip_configurations[0].ip_address, "10.10.0.3");
    assert_eq!(ep2.mac_address, "00-15-5D-00-00-02");
    // Lookups.
    assert_eq!(hcn.get_network_by_name("n").unwrap().id, net.id);
    assert_eq!(
        hcn.get_network_by_id(&net.id.to_ascii_lowercase())
            .unwrap()
            .name,
        "n"
    );
    assert_eq!(hcn.get_endpoint_by_name("e1").unwrap().id, ep.id);
    assert_eq!(hcn.list_endpoints_of_network(&net.id).unwrap().len(), 2);
    assert_eq!(hcn.list_endpoints().unwrap().len(), 2);
    assert!(matches!(
        hcn.get_network_by_name("nope").unwrap_err(),
        Error::NetworkNotFound { .. }
    ));
    assert!(is_not_found_error(
        &hcn.get_endpoint_by_id(crate::ZERO_GUID).unwrap_err()
    ));
    // A subnet without routes gets its first host as gateway.
    let mut n2 = nat("n2", "10.20.0.0/24", "10.20.0.1");
    n2.ipams[0].subnets[0].routes.clear();
    // (the client refuses that shape, the engine accepts it from other clients)
    let engine = Engine::in_memory();
    let h = engine
        .create(
            ObjectKind::Network,
            crate::ZERO_GUID,
            &serde_json::to_string(&n2).unwrap(),
            None,
        )
        .unwrap();
    let doc: HostComputeNetwork = serde_json::from_str(&engine.query(&h, "").unwrap()).unwrap();
    assert_eq!(doc.ipams[0].subnets[0].routes[0].next_hop, "10.20.0.1");
}

/// One row per validation rule: the call and the HRESULT HNS answers.
#[test]
fn validation_rules_and_their_hresults() {
    type Case = (
        &'static str,
        Box<
            dyn Fn(
                &Engine,
                &HostComputeNetwork,
                &HostComputeEndpoint,
            ) -> Result<(), crate::api::CallError>,
        >,
        HResult,
    );
    let z = crate::ZERO_GUID;
    let net_doc = |f: &dyn Fn(&mut HostComputeNetwork)| {
        let mut n = nat("other", "10.99.0.0/24", "10.99.0.1");
        f(&mut n);
        serde_json::to_string(&n).unwrap()
    };
    let cases: Vec<Case> = vec![
        (
            "invalid network JSON",
            Box::new(move |e, _, _| e.create(ObjectKind::Network, z, "{", None).map(drop)),
            hr::HCN_E_INVALID_JSON,
        ),
        (
            "id that is not a GUID",
            Box::new(|e, _, _| e.open(ObjectKind::Network, "not-a-guid").map(drop)),
            hr::HCN_E_GUID_CONVERSION_FAILURE,
        ),
        (
            "network without a name",
            Box::new(move |e, _, _| {
                e.create(ObjectKind::Network, z, &net_doc(&|n| n.name.clear()), None)
                    .map(drop)
            }),
            hr::HCN_E_INVALID_NETWORK,
        ),
        (
            "duplicate network name",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| n.name = "N".into()),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_NETWORK_ALREADY_EXISTS,
        ),
        (
            "duplicate network id",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Network, &n.id, &net_doc(&|_| {}), None)
                    .map(drop)
            }),
            hr::ERROR_ALREADY_EXISTS,
        ),
        (
            "unknown network type",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| n.network_type = NetworkType::Other("Bogus".into())),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_NETWORK_TYPE,
        ),
        (
            "bad subnet prefix",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| n.ipams[0].subnets[0].ip_address_prefix = "10.99.0.0/33".into()),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_PREFIX,
        ),
        (
            "prefix with host bits",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| n.ipams[0].subnets[0].ip_address_prefix = "10.99.0.5/24".into()),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_PREFIX,
        ),
        (
            "gateway outside the subnet",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| n.ipams[0].subnets[0].routes[0].next_hop = "10.98.0.1".into()),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_ADDR_INVALID_OR_RESERVED,
        ),
        (
            "subnet overlapping another network",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| {
                        n.ipams[0].subnets[0].ip_address_prefix = "10.10.0.0/16".into();
                        n.ipams[0].subnets[0].routes[0].next_hop = "10.10.0.1".into();
                    }),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_SUBNET,
        ),
        (
            "NAT network without IPv4 subnet",
            Box::new(move |e, _, _| {
                e.create(ObjectKind::Network, z, &net_doc(&|n| n.ipams.clear()), None)
                    .map(drop)
            }),
            hr::HCN_E_INVALID_NETWORK,
        ),
        (
            "bad MAC pool",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| {
                        n.mac_pool.ranges.push(MacRange {
                            start_mac_address: "00-15-5D-00-00-09".into(),
                            end_mac_address: "00-15-5D-00-00-01".into(),
                        })
                    }),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_NETWORK,
        ),
        (
            "unknown network policy",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Network,
                    z,
                    &net_doc(&|n| {
                        n.policies.push(NetworkPolicy {
                            policy_type: NetworkPolicyType::Other("X".into()),
                            settings: None,
                        })
                    }),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_POLICY_TYPE,
        ),
        (
            "endpoint on an unknown network",
            Box::new(move |e, _, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": "11111111-1111-1111-1111-111111111111"})
                        .to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_NETWORK_NOT_FOUND,
        ),
        (
            "endpoint naming no network",
            Box::new(move |e, _, _| e.create(ObjectKind::Endpoint, z, "{}", None).map(drop)),
            hr::HCN_E_INVALID_JSON_REFERENCE,
        ),
        (
            "endpoint with HostComputeNamespace set",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "HostComputeNamespace": z}).to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_ENDPOINT,
        ),
        (
            "duplicate endpoint name on a network",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "Name": "e1"}).to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::ERROR_OBJECT_ALREADY_EXISTS,
        ),
        (
            "endpoint address outside the subnets",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "IpConfigurations": [{"IpAddress": "10.11.0.5"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_INVALID_IP,
        ),
        (
            "endpoint address not an address",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "IpConfigurations": [{"IpAddress": "ten"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_INVALID_IP,
        ),
        (
            "endpoint address in use",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "IpConfigurations": [{"IpAddress": "10.10.0.2"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_ADDR_INVALID_OR_RESERVED,
        ),
        (
            "endpoint address is the gateway",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "IpConfigurations": [{"IpAddress": "10.10.0.1"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_ADDR_INVALID_OR_RESERVED,
        ),
        (
            "endpoint address is the broadcast",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "IpConfigurations": [{"IpAddress": "10.10.0.255"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_ADDR_INVALID_OR_RESERVED,
        ),
        (
            "bad MAC",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "MacAddress": "zz"}).to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_ENDPOINT,
        ),
        (
            "MAC in use",
            Box::new(move |e, n, ep| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "MacAddress": ep.mac_address}).to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_ENDPOINT,
        ),
        (
            "host port already mapped",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "Policies": [port_mapping(8080, 81)]})
                        .to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_PORT_ALREADY_EXISTS,
        ),
        (
            "host port mapped twice in one endpoint",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "Policies": [port_mapping(9000, 81), port_mapping(9000, 82)]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_PORT_ALREADY_EXISTS,
        ),
        (
            "internal port 0",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "Policies": [port_mapping(9001, 0)]})
                        .to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_INTERNAL_PORT,
        ),
        (
            "unknown endpoint policy",
            Box::new(move |e, n, _| {
                e.create(
                    ObjectKind::Endpoint,
                    z,
                    &json!({"HostComputeNetwork": n.id, "Policies": [{"Type": "Bogus"}]})
                        .to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_POLICY_TYPE,
        ),
        (
            "bad policy settings",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "Policies": [{"Type": "PortMapping", "Settings": {"InternalPort": "x"}}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_INVALID_POLICY,
        ),
        (
            "bad outbound NAT exception",
            Box::new(move |e, n, _| {
                e.create(ObjectKind::Endpoint, z, &json!({"HostComputeNetwork": n.id, "Policies": [{"Type": "OutBoundNAT", "Settings": {"Exceptions": ["nope"]}}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_INVALID_POLICY,
        ),
        (
            "open an unknown network",
            Box::new(move |e, _, _| {
                e.open(ObjectKind::Network, "11111111-1111-1111-1111-111111111111")
                    .map(drop)
            }),
            hr::HCN_E_NETWORK_NOT_FOUND,
        ),
        (
            "open an unknown endpoint",
            Box::new(move |e, _, _| {
                e.open(ObjectKind::Endpoint, "11111111-1111-1111-1111-111111111111")
                    .map(drop)
            }),
            hr::HCN_E_ENDPOINT_NOT_FOUND,
        ),
        (
            "delete an unknown namespace",
            Box::new(move |e, _, _| {
                e.delete(
                    ObjectKind::Namespace,
                    "11111111-1111-1111-1111-111111111111",
                )
            }),
            HResult::ERROR_NOT_FOUND,
        ),
        (
            "delete a network that has endpoints",
            Box::new(move |e, n, _| e.delete(ObjectKind::Network, &n.id)),
            hr::HCN_E_ENTITY_HAS_REFERENCES,
        ),
        (
            "unsupported network modify",
            Box::new(move |e, n, _| {
                e.modify(
                    &e.open(ObjectKind::Network, &n.id)?,
                    r#"{"ResourceType":"Extension","RequestType":"Add"}"#,
                )
            }),
            hr::HCN_E_REQUEST_UNSUPPORTED,
        ),
        (
            "remove a policy the endpoint lacks",
            Box::new(move |e, _, ep| {
                e.modify(&e.open(ObjectKind::Endpoint, &ep.id)?, &json!({"ResourceType": "Policy", "RequestType": "Remove", "Settings": {"Policies": [port_mapping(1, 1)]}}).to_string())
            }),
            hr::HCN_E_POLICY_NOT_FOUND,
        ),
        (
            "load balancer on an unknown endpoint",
            Box::new(move |e, _, _| {
                e.create(ObjectKind::LoadBalancer, z, &json!({"HostComputeEndpoints": ["11111111-1111-1111-1111-111111111111"], "PortMappings": [{"Protocol": 6, "InternalPort": 80, "ExternalPort": 80}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_ENDPOINT_NOT_FOUND,
        ),
        (
            "load balancer without port mappings",
            Box::new(move |e, _, ep| {
                e.create(
                    ObjectKind::LoadBalancer,
                    z,
                    &json!({"HostComputeEndpoints": [ep.id]}).to_string(),
                    None,
                )
                .map(drop)
            }),
            hr::HCN_E_INVALID_POLICY,
        ),
        (
            "load balancer on a mapped host port",
            Box::new(move |e, _, ep| {
                e.create(ObjectKind::LoadBalancer, z, &json!({"HostComputeEndpoints": [ep.id], "PortMappings": [{"Protocol": 6, "InternalPort": 80, "ExternalPort": 8080}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_PORT_ALREADY_EXISTS,
        ),
        (
            "route with a bad prefix",
            Box::new(move |e, _, ep| {
                e.create(ObjectKind::Route, z, &json!({"HostComputeEndpoints": [ep.id], "Setting": [{"DestinationPrefix": "x"}]}).to_string(), None).map(drop)
            }),
            hr::HCN_E_INVALID_PREFIX,
        ),
        (
            "namespace of an unknown type",
            Box::new(move |e, _, _| {
                e.create(ObjectKind::Namespace, z, r#"{"Type":"Weird"}"#, None)
                    .map(drop)
            }),
            hr::ERROR_INVALID_PARAMETER,
        ),
        (
            "namespace with a relative NetnsPath",
            Box::new(move |e, _, _| {
                e.create(ObjectKind::Namespace, z, r#"{"NetnsPath":"netns/x"}"#, None)
                    .map(drop)
            }),
            hr::ERROR_INVALID_PARAMETER,
        ),
        (
            "query with a bad filter",
            Box::new(move |e, _, _| {
                e.enumerate(ObjectKind::Network, r#"{"Filter":"{"}"#)
                    .map(drop)
            }),
            hr::HCN_E_INVALID_JSON,
        ),
    ];
    for (name, call, want) in cases {
        let (engine, _, net, ep) = setup();
        let err = call(&engine, &net, &ep).expect_err(name);
        assert_eq!(err.hr as u32, raw_hr(want), "{name}: {}", err.record);
        let rec: serde_json::Value = serde_json::from_str(&err.record).unwrap();
        assert_eq!(rec["Success"], false, "{name}");
        assert_eq!(rec["ErrorCode"], raw_hr(want), "{name}");
        assert!(rec["Error"].as_str().unwrap().len() > 5, "{name}");
    }
}

#[test]
fn attach_rules() {
    let (engine, hcn, net, ep) = setup();
    let ns1 = hcn
        .create_namespace(&crate::new_namespace(NamespaceType::Host))
        .unwrap();
    let ns2 = hcn
        .create_namespace(&crate::new_namespace(NamespaceType::Host))
        .unwrap();
    assert_eq!((ns1.namespace_id, ns2.namespace_id), (1, 2));
    hcn.add_namespace_endpoint(&ns1.id, &ep.id).unwrap();
    let got = hcn.get_endpoint_by_id(&ep.id).unwrap();
    assert_eq!(got.host_compute_namespace, ns1.id);
    assert_eq!(
        hcn.get_namespace_endpoint_ids(&ns1.id).unwrap(),
        [ep.id.clone()]
    );
    let ns = hcn.get_namespace_by_id(&ns1.id).unwrap();
    assert!(ns.resources[0].data.get().contains(&ep.id));
    let e = hcn.add_namespace_endpoint(&ns1.id, &ep.id).unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_ENDPOINT_ALREADY_ATTACHED.value());
    let e = hcn.add_namespace_endpoint(&ns2.id, &ep.id).unwrap_err();
    assert_eq!(
        code(&e),
        hr::HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS.value()
    );
    let e = hcn.remove_namespace_endpoint(&ns2.id, &ep.id).unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_ENDPOINT_NOT_ATTACHED.value());
    let e = hcn
        .add_namespace_endpoint(&ns2.id, crate::ZERO_GUID)
        .unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_ENDPOINT_NOT_FOUND.value());
    let remote = hcn
        .create_remote_endpoint(
            &net,
            &HostComputeEndpoint {
                ip_configurations: vec![IpConfig {
                    ip_address: "192.168.5.5".into(),
                    prefix_length: 32,
                }],
                ..Default::default()
            },
        )
        .unwrap();
    let e = hcn.add_namespace_endpoint(&ns2.id, &remote.id).unwrap_err();
    assert_eq!(
        code(&e),
        hr::HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION.value()
    );
    // Containers are namespace resources too.
    let req = ModifyNamespaceSettingRequest {
        resource_type: NamespaceResourceType::Container,
        request_type: RequestType::Add,
        settings: Some(crate::RawJson::from_text(r#"{"ContainerId":"c1"}"#).unwrap()),
    };
    hcn.modify_namespace_settings(&ns2.id, &req).unwrap();
    assert_eq!(hcn.get_namespace_container_ids(&ns2.id).unwrap(), ["c1"]);
    // Deleting the namespace detaches its endpoints.
    hcn.delete_namespace(&ns1.id).unwrap();
    assert_eq!(
        hcn.get_endpoint_by_id(&ep.id)
            .unwrap()
            .host_compute_namespace,
        ""
    );
    hcn.remove_namespace_endpoint(&ns1.id, &ep.id).unwrap_err();
    drop(engine);
}

#[test]
fn policies_modify_and_port_release() {
    let (_, hcn, net, ep) = setup();
    let other = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    let e = hcn
        .apply_endpoint_policy(&other.id, RequestType::Add, vec![port_mapping(8080, 80)])
        .unwrap_err();
    assert!(is_port_already_exists_error(&e));
    hcn.apply_endpoint_policy(&ep.id, RequestType::Remove, vec![port_mapping(8080, 80)])
        .unwrap();
    let got = hcn
        .apply_endpoint_policy(&other.id, RequestType::Add, vec![port_mapping(8080, 80)])
        .unwrap();
    assert_eq!(got.policies, [port_mapping(8080, 80)]);
    // Deleting releases the port and the address.
    hcn.delete_endpoint(&other.id).unwrap();
    let again = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                policies: vec![port_mapping(8080, 80)],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.ip_configurations[0].ip_address, "10.10.0.3");
    // Network policies and DNS.
    let p = NetworkPolicy::new(NetworkPolicyType::HostRoute, &HostRoutePolicySetting {}).unwrap();
    assert_eq!(
        hcn.add_network_policy(&net.id, vec![p.clone()])
            .unwrap()
            .policies,
        [p.clone()]
    );
    assert!(hcn
        .remove_network_policy(&net.id, vec![p])
        .unwrap()
        .policies
        .is_empty());
    let dns = Dns {
        server_list: vec!["10.10.0.53".into()],
        ..Default::default()
    };
    let req = ModifyNetworkSettingRequest {
        resource_type: NetworkResourceType::Dns,
        request_type: RequestType::Update,
        settings: Some(crate::RawJson::from_value(&dns).unwrap()),
    };
    assert_eq!(hcn.modify_network_settings(&net.id, &req).unwrap().dns, dns);
}

#[test]
fn load_balancers_and_routes() {
    let (_, hcn, net, ep) = setup();
    let ep2 = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    let lb = hcn
        .add_load_balancer(
            &[ep.clone(), ep2.clone()],
            &crate::LoadBalancerSpec {
                frontend_vips: vec!["10.96.0.10".into()],
                protocol: 6,
                internal_port: 80,
                external_port: 80,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(lb.host_compute_endpoints, [ep.id.clone(), ep2.id.clone()]);
    assert_eq!(hcn.get_load_balancer_by_id(&lb.id).unwrap(), lb);
    let e = hcn.delete_endpoint(&ep2.id).unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_ENTITY_HAS_REFERENCES.value());
    let lb2 = hcn.load_balancer_remove_endpoint(&lb, &ep2).unwrap();
    assert_eq!(lb2.host_compute_endpoints, [ep.id.clone()]);
    assert!(matches!(
        hcn.get_load_balancer_by_id(&lb.id).unwrap_err(),
        Error::LoadBalancerNotFound { .. }
    ));
    let mut upd = lb2.clone();
    upd.frontend_vips = vec!["10.96.0.11".into()];
    assert_eq!(
        hcn.update_load_balancer(&upd, &lb2.id)
            .unwrap()
            .frontend_vips,
        ["10.96.0.11"]
    );
    hcn.delete_load_balancer(&lb2.id).unwrap();
    hcn.delete_endpoint(&ep2.id).unwrap();

    let r = hcn
        .add_route(&[ep.clone()], "11.0.0.0/8", "", true)
        .unwrap();
    assert_eq!(hcn.list_routes().unwrap(), [r.clone()]);
    assert!(hcn.add_route(&[], "11.0.0.0/8", "", true).is_err());
    hcn.delete_route(&r.id).unwrap();
    assert!(hcn.list_routes().unwrap().is_empty());
    // Deleting a route that is gone is not an error (the reference deletes only what
    // GetRouteByID finds).
    hcn.delete_route(&r.id).unwrap();
}

#[test]
fn globals_and_feature_checks() {
    let hcn = Engine::in_memory().client();
    assert_eq!(hcn.get_globals().unwrap().version, ENGINE_VERSION);
    hcn.dsr_supported().unwrap();
    hcn.accelnet_supported().unwrap();
    assert!(
        hcn.get_cached_supported_features()
            .unwrap()
            .modify_loadbalancer
    );
}

#[test]
fn state_survives_a_restart_and_is_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let dp = Arc::new(RecordingDataplane::default());
    let (net, ep, ns) = {
        let engine = Engine::open(EngineConfig::new(dir.path(), dp.clone())).unwrap();
        let hcn = engine.client();
        let net = hcn
            .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
            .unwrap();
        let ep = hcn
            .create_endpoint(
                &net,
                &HostComputeEndpoint {
                    name: "e".into(),
                    policies: vec![port_mapping(8080, 80)],
                    ..Default::default()
                },
            )
            .unwrap();
        let ns = hcn
            .create_namespace(&crate::new_namespace(NamespaceType::Host))
            .unwrap();
        hcn.add_namespace_endpoint(&ns.id, &ep.id).unwrap();
        (net, ep, ns)
    };
    let tag = link_tag_for(dir.path());
    let calls = dp.calls();
    assert!(matches!(&calls[0], dataplane::DpCall::Reconcile(d) if d.networks.is_empty()));
    let att = calls
        .iter()
        .find_map(|c| match c {
            dataplane::DpCall::EnsureAttachment(a) => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(att.ifname, "eth0");
    assert_eq!(att.bridge, format!("{tag}b0"));
    assert_eq!(att.host_ifname, format!("{tag}v1"));
    assert_eq!(att.address, Some("10.10.0.2/24".parse().unwrap()));
    assert_eq!(att.gateway, Some("10.10.0.1".parse().unwrap()));
    assert_eq!(
        att.netns,
        std::path::PathBuf::from(format!("/run/netns/test-{}", ns.id))
    );

    // A second engine on the same directory sees everything and reconciles it.
    let dp2 = Arc::new(RecordingDataplane::default());
    let engine = Engine::open(EngineConfig::new(dir.path(), dp2.clone())).unwrap();
    let hcn = engine.client();
    assert_eq!(hcn.get_network_by_id(&net.id).unwrap(), net);
    let got = hcn.get_endpoint_by_id(&ep.id).unwrap();
    assert_eq!(got.host_compute_namespace, ns.id);
    let dataplane::DpCall::Reconcile(desired) = &dp2.calls()[0] else {
        panic!("no reconcile")
    };
    assert_eq!(desired.networks.len(), 1);
    assert_eq!(desired.attachments, [att]);
    assert_eq!(desired.rules.dnat.len(), 1);
    assert_eq!(desired.rules.masquerade.len(), 1);
    // Counters survived: the next endpoint does not reuse index 1.
    let ep2 = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    hcn.add_namespace_endpoint(&ns.id, &ep2.id).unwrap();
    let att2 = dp2
        .calls()
        .into_iter()
        .find_map(|c| match c {
            dataplane::DpCall::EnsureAttachment(a) => Some(a),
            _ => None,
        })
        .unwrap();
    assert_eq!(att2.host_ifname, format!("{tag}v2"));
    assert_eq!(att2.ifname, "eth1");
    // Deleting everything leaves an empty state.
    hcn.delete_namespace(&ns.id).unwrap();
    hcn.delete_endpoint(&ep.id).unwrap();
    hcn.delete_endpoint(&ep2.id).unwrap();
    hcn.delete_network(&net.id).unwrap();
    let stored = super::store::Store::open(dir.path())
        .unwrap()
        .load()
        .unwrap();
    assert!(stored.networks.is_empty() && stored.endpoints.is_empty());
    assert!(stored.namespaces.is_empty());
    assert_eq!(stored.meta.next_index, 3);
    assert!(
        matches!(dp2.calls().last(), Some(dataplane::DpCall::SyncRules(r)) if r.masquerade.is_empty() && r.dnat.is_empty())
    );
}

#[test]
fn a_failing_dataplane_changes_nothing() {
    let dp = Arc::new(RecordingDataplane::default());
    let engine = Engine::with_dataplane(dp.clone());
    let hcn = engine.client();
    dp.fail_next("no bridges today");
    let e = hcn
        .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
        .unwrap_err();
    assert_eq!(code(&e), super::fail::E_FAIL.value());
    assert!(e.to_string().contains("no bridges today"), "{e}");
    assert!(hcn.list_networks().unwrap().is_empty());
    let net = hcn
        .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
        .unwrap();
    let ep = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    let ns = hcn
        .create_namespace(&crate::new_namespace(NamespaceType::Host))
        .unwrap();
    dp.fail_next("veth refused");
    let e = hcn.add_namespace_endpoint(&ns.id, &ep.id).unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_NAMESPACE_ATTACH_FAILED.value());
    assert_eq!(
        hcn.get_endpoint_by_id(&ep.id)
            .unwrap()
            .host_compute_namespace,
        ""
    );
    assert!(hcn
        .get_namespace_by_id(&ns.id)
        .unwrap()
        .resources
        .is_empty());
}

#[test]
fn concurrent_clients_get_distinct_addresses() {
    let engine = Engine::in_memory();
    let net = engine
        .client()
        .create_network(&nat("n", "10.10.0.0/22", "10.10.0.1"))
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let hcn = engine.client();
            let net = net.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        hcn.create_endpoint(
                            &net,
                            &HostComputeEndpoint {
                                name: format!("{t}-{i}"),
                                ..Default::default()
                            },
                        )
                        .unwrap()
                        .ip_configurations[0]
                            .ip_address
                            .clone()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200);
}
