//! HNS's validation rules through the engine: one table row per rule, the call and the
//! HRESULT (and error record) HNS answers.

use hcs::HResult;
use serde_json::json;

use super::*;
use crate::hresult as hr;

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
