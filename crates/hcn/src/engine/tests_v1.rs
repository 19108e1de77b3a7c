//! The v1 paths (hcs-hcn-api.md §4.2) over the same state as v2.
#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads best in assertions

use super::tests::setup;
use super::*;
use crate::error::Error;
use crate::schema::*;

#[test]
fn v1_paths_share_the_state() {
    let (engine, hcn, net, ep) = setup();
    let hns = engine.hns();
    let n1 = hns.get_network_by_name("n").unwrap();
    assert_eq!(n1.id, net.id);
    assert_eq!(n1.subnets[0].gateway_address, "10.10.0.1");
    let e1 = hns.get_endpoint_by_id(&ep.id).unwrap();
    assert_eq!(e1.ip_address, "10.10.0.2");
    assert_eq!(e1.virtual_network_name, "n");
    assert_eq!(
        e1.policies[0].get(),
        r#"{"Type":"NAT","Protocol":"TCP","InternalPort":80,"ExternalPort":8080}"#
    );
    // v1 create is visible to v2.
    let v1net = hns
        .create_network(&crate::v1::HnsNetwork {
            name: "v1net".into(),
            network_type: "nat".into(),
            subnets: vec![crate::v1::Subnet {
                address_prefix: "10.30.0.0/24".into(),
                gateway_address: "10.30.0.1".into(),
                policies: vec![],
            }],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        hcn.get_network_by_name("v1net").unwrap().network_type,
        NetworkType::Nat
    );
    let v1ep = hns
        .network_create_endpoint(
            &v1net,
            &crate::v1::HnsEndpoint {
                name: "v1ep".into(),
                policies: vec![crate::RawJson::from_text(
                    r#"{"Type":"NAT","Protocol":"UDP","InternalPort":53,"ExternalPort":5353}"#,
                )
                .unwrap()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(v1ep.ip_address, "10.30.0.2");
    let v2 = hcn.get_endpoint_by_id(&v1ep.id).unwrap();
    assert_eq!(
        v2.policies[0]
            .settings::<PortMappingPolicySetting>()
            .unwrap()
            .protocol,
        17
    );
    // Attach records the container.
    hns.container_attach(&v1ep.id, "c1", 0).unwrap();
    assert!(hns.is_attached(&v1ep.id, "C1").unwrap());
    assert_eq!(
        hns.get_endpoint_by_id(&v1ep.id).unwrap().state,
        crate::v1::endpoint_state::ATTACHED
    );
    hns.container_detach(&v1ep.id, "c1").unwrap();
    // Not found, by name and by id.
    assert!(matches!(
        hns.get_endpoint_by_name("zz").unwrap_err(),
        Error::HnsEndpointNotFound { .. }
    ));
    let err = hns.get_endpoint_by_id(crate::ZERO_GUID).unwrap_err();
    assert!(err.to_string().contains("Element not found."), "{err}");
    // v1 namespaces.
    let nsid = hns.create_namespace().unwrap();
    hns.add_namespace_endpoint(&nsid, &v1ep.id).unwrap();
    assert_eq!(
        hns.get_namespace_endpoints(&nsid).unwrap(),
        [v1ep.id.clone()]
    );
    hns.remove_namespace_endpoint(&nsid, &v1ep.id).unwrap();
    hns.remove_namespace(&nsid).unwrap();
    assert!(matches!(
        hns.remove_namespace(&nsid).unwrap_err(),
        Error::NamespaceNotFound { .. }
    ));
    // Policy lists.
    let pl = hns
        .add_load_balancer(&[ep.id.clone()], false, "", "10.96.0.1", 6, 80, 80)
        .unwrap();
    assert_eq!(
        hns.get_policy_list_by_id(&pl.id)
            .unwrap()
            .endpoint_references,
        [format!("/endpoints/{}", ep.id)]
    );
    let pl = hns.policy_list_remove_endpoint(&pl, &ep.id).unwrap();
    assert!(pl.endpoint_references.is_empty());
    hns.delete_policy_list(&pl.id).unwrap();
    // Globals, features, accelnet.
    assert_eq!(hns.get_globals().unwrap().version, ENGINE_VERSION);
    assert!(hns.get_supported_features().acl.acl_rule_id);
    assert!(matches!(
        hns.set_nnv_management_mac_addresses(&[]).unwrap_err(),
        Error::EmptyMacAddressList
    ));
    hns.set_nnv_management_mac_addresses(&["00-15-5D-00-00-10".into()])
        .unwrap();
    assert_eq!(
        hns.get_nnv_management_mac_addresses()
            .unwrap()
            .mac_address_list
            .len(),
        1
    );
    hns.delete_nnv_management_mac_addresses().unwrap();
    // Bad requests get HNS envelopes.
    let bad = engine.hns_call("GET", "/nothing/", "").unwrap();
    assert!(
        bad.contains(r#""Success":false"#) && bad.contains("unsupported"),
        "{bad}"
    );
    let bad = engine.hns_call("POST", "/networks/", "{").unwrap();
    assert!(bad.contains("Invalid JSON document string."), "{bad}");
    hns.delete_endpoint(&v1ep.id).unwrap();
    hns.delete_network(&v1net.id).unwrap();
}
