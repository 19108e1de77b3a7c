//! The root facade's HNS v1 API against a private hnsd (its socket through `HNSD_SOCKET`,
//! as any process finds it), the Go-named errors and `is_not_exist`.

#![cfg(target_os = "linux")]

use hcsshim::*;

#[tokio::test]
async fn hns_v1_api_under_go_names() {
    let hnsd = hnsd::testing::TestHnsd::start_without_dataplane().unwrap();
    // The only test of this binary: nothing else reads the environment concurrently.
    std::env::set_var(hcn::hnsd_client::SOCKET_ENV, hnsd.socket());

    let net = hnsd
        .hns()
        .create_network(&HNSNetwork {
            name: "nat".into(),
            network_type: "NAT".into(),
            subnets: vec![Subnet {
                address_prefix: "10.60.0.0/24".into(),
                gateway_address: "10.60.0.1".into(),
                policies: vec![],
            }],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(get_hns_network_by_name("nat").unwrap().id, net.id);
    assert_eq!(hns_list_network_request("GET", "", "").unwrap().len(), 1);
    let ep = hns_endpoint_request(
        "POST",
        "",
        &format!(r#"{{"VirtualNetwork":"{}","Name":"ep1"}}"#, net.id),
    )
    .unwrap();
    assert_eq!(
        get_hns_endpoint_by_name("ep1").unwrap().ip_address,
        "10.60.0.2"
    );
    assert_eq!(
        get_hns_endpoint_by_id(&ep.id).unwrap().virtual_network_name,
        "nat"
    );
    assert_eq!(
        get_hns_globals().unwrap().version,
        hcn::schema::Version::new(15, 4)
    );
    assert!(get_hns_supported_features().unwrap().acl.acl_port_ranges);

    // The v1 not-found errors are their own types, and IsNotExist matches them.
    let err = get_hns_endpoint_by_name("nope").unwrap_err();
    assert!(matches!(&err, Error::EndpointNotFound(e) if e.endpoint_name == "nope"));
    assert_eq!(err.to_string(), "Endpoint nope not found");
    assert!(is_not_exist(&err));
    let err = get_hns_network_by_name("nope").unwrap_err();
    assert!(matches!(err, Error::NetworkNotFound(_)) && is_not_exist(&err));
    let err = hns_endpoint_request("POST", "", "{").unwrap_err();
    assert!(!is_not_exist(&err));

    // HotAttachEndpoint finds the endpoint in HNS, then needs HCS for the container: off
    // Windows that is "HCS is not available" (not a silent success).
    let err = hot_attach_endpoint("c1", &ep.id).await.unwrap_err();
    assert!(err.to_string().contains("HCS is not available"), "{err}");
    let err = hot_attach_endpoint("c1", "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hns failed with error"), "{err}");
    // Not attached: detach has nothing to do.
    hot_detach_endpoint("c1", &ep.id).await.unwrap();

    assert!(matches!(
        set_nnv_management_mac_addresses(&[]).unwrap_err(),
        Error::Hns(hcn::Error::EmptyMacAddressList)
    ));
    std::env::remove_var(hcn::hnsd_client::SOCKET_ENV);
}

#[test]
fn the_root_package_exports_its_error_codes_and_types() {
    // hcsshim's starred HRESULTs, `HcsError` and the kind predicates' input.
    assert_eq!(hcsshim::HResult::ERROR_NOT_FOUND.value(), 0x490);
    assert_eq!(
        hcsshim::HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND.value(),
        0xC037_010E
    );
    let e = hcsshim::HcsError::op("open", hcsshim::HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND);
    assert!(matches!(e.kind(), hcsshim::ErrorKind::HResult(_)));
    assert!(hcs::error::is_not_exist(&e));
}
