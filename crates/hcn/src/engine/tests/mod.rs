//! The engine through the `hcn` client: the shared fixtures, and what HNS fills in on
//! create, attach rules, policy modification and port release, load balancers and routes,
//! globals. The validation table (one row per rule with its HRESULT) is in `validation`;
//! persistence across a restart, dataplane failures and concurrency in `consistency`.
#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads best in assertions

use std::sync::Arc;

use hcs::HResult;

use super::*;
use crate::error::{is_not_found_error, is_port_already_exists_error, Error};
use crate::hresult as hr;
use crate::schema::*;
use crate::Hcn;

mod consistency;
mod validation;

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
    let (hcn, net, ep) = setup_on(&engine);
    (engine, hcn, net, ep)
}

/// On `engine`: a NAT network `n` (10.10.0.0/24) with an endpoint `e1` mapping 8080 to 80.
pub(super) fn setup_on(engine: &Arc<Engine>) -> (Hcn, HostComputeNetwork, HostComputeEndpoint) {
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
    (hcn, net, ep)
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

#[test]
fn a_nat_network_without_a_subnet_gets_one_from_172_16_0_0_12() {
    let (_, hcn, _, _) = setup();
    hcn.create_network(&nat("taken", "172.16.0.0/20", "172.16.0.1"))
        .unwrap();
    let mut doc = nat("auto", "", "");
    doc.ipams.clear();
    let net = hcn.create_network(&doc).unwrap();
    let subnet = &net.ipams[0].subnets[0];
    // The first free /20, with its first host as the gateway, as for any subnet.
    assert_eq!(subnet.ip_address_prefix, "172.16.16.0/20");
    assert_eq!(subnet.routes[0].next_hop, "172.16.16.1");
    let ep = hcn
        .create_endpoint(
            &net,
            &HostComputeEndpoint {
                name: "auto-e".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ep.ip_configurations[0].ip_address, "172.16.16.2");
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
