//! JSON of the HNS v1 documents (hcs-hcn-api.md §4.3, §4.4) and the envelope.

use serde_json::json;

use super::*;

fn value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn network_id_is_always_emitted() {
    assert_eq!(value(&HnsNetwork::default()), json!({"ID": ""}));
    let n = HnsNetwork {
        id: "N".into(),
        network_type: "nat".into(),
        name: "nat".into(),
        network_adapter_name: "eth0".into(),
        source_mac: "m".into(),
        policies: vec![RawJson::from_text(r#"{"Type":"VLAN","VLAN":5}"#).unwrap()],
        mac_pools: vec![MacPool {
            start_mac_address: "a".into(),
            end_mac_address: "b".into(),
        }],
        subnets: vec![Subnet {
            address_prefix: "10.0.0.0/24".into(),
            gateway_address: "10.0.0.1".into(),
            policies: vec![],
        }],
        dns_suffix: "s".into(),
        dns_server_list: "1.1.1.1,8.8.8.8".into(),
        dns_server_compartment: 2,
        management_ip: "1.2.3.4".into(),
        automatic_dns: true,
    };
    assert_eq!(
        value(&n),
        json!({"ID": "N", "Type": "nat", "Name": "nat", "NetworkAdapterName": "eth0", "SourceMac": "m",
               "Policies": [{"Type": "VLAN", "VLAN": 5}], "MacPools": [{"StartMacAddress": "a", "EndMacAddress": "b"}],
               "Subnets": [{"AddressPrefix": "10.0.0.0/24", "GatewayAddress": "10.0.0.1"}],
               "DNSSuffix": "s", "DNSServerList": "1.1.1.1,8.8.8.8", "DNSServerCompartment": 2,
               "ManagementIP": "1.2.3.4", "AutomaticDNS": true})
    );
}

#[test]
fn endpoint_keys() {
    assert_eq!(value(&HnsEndpoint::default()), json!({}));
    let e = HnsEndpoint {
        id: "E".into(),
        name: "e".into(),
        virtual_network: "N".into(),
        virtual_network_name: "nat".into(),
        mac_address: "00-15-5D-00-00-02".into(),
        ip_address: "10.0.0.2".into(),
        prefix_length: 24,
        gateway_address: "10.0.0.1".into(),
        namespace: Some(Namespace {
            id: "S".into(),
            ..Default::default()
        }),
        shared_containers: vec!["c1".into()],
        state: endpoint_state::ATTACHED,
        encap_overhead: 50,
        disable_icc: true,
        ..Default::default()
    };
    assert_eq!(
        value(&e),
        json!({"ID": "E", "Name": "e", "VirtualNetwork": "N", "VirtualNetworkName": "nat",
               "MacAddress": "00-15-5D-00-00-02", "IPAddress": "10.0.0.2", "GatewayAddress": "10.0.0.1",
               "DisableICC": true, "PrefixLength": 24, "Namespace": {"ID": "S"}, "EncapOverhead": 50,
               "SharedContainers": ["c1"], "State": 2})
    );
}

#[test]
fn requests_and_objects() {
    let r = EndpointAttachDetachRequest {
        system_type: SystemType::Host,
        ..Default::default()
    };
    assert_eq!(value(&r), json!({"SystemType": "Host"}));
    let r = EndpointAttachDetachRequest {
        container_id: "c".into(),
        system_type: SystemType::Container,
        compartment_id: 3,
        virtual_nic_name: "v".into(),
    };
    assert_eq!(
        value(&r),
        json!({"ContainerId": "c", "SystemType": "Container", "CompartmentId": 3, "VirtualNicName": "v"})
    );
    assert_eq!(
        value(&EndpointStats::default()).as_object().unwrap().len(),
        8
    );
    assert_eq!(
        value(&PolicyList {
            id: "P".into(),
            endpoint_references: vec!["/endpoints/E".into()],
            policies: vec![]
        }),
        json!({"ID": "P", "References": ["/endpoints/E"]})
    );
    // Go's `omitempty`: `{}` unless it is the default namespace.
    assert_eq!(value(&NamespaceRequest::default()), json!({}));
    assert_eq!(
        value(&NamespaceRequest { is_default: true }),
        json!({"IsDefault": true})
    );
    assert_eq!(
        value(&NamespaceResourceRequest {
            resource_type: "Endpoint".into(),
            data: NamespaceEndpointData { id: "E".into() }
        }),
        json!({"Type": "Endpoint", "Data": {"Id": "E"}})
    );
    assert_eq!(
        value(&MacAddressList {
            mac_address_list: vec![MacAddressEntry {
                mac_address: "m".into()
            }]
        }),
        json!({"MacAddressList": [{"MacAddress": "m"}]})
    );
    assert_eq!(
        value(&EndpointRequestResponse {
            success: true,
            error: String::new()
        }),
        json!({"Success": true})
    );
}

#[test]
fn policy_shapes() {
    assert_eq!(
        value(&NatPolicy {
            policy_type: PolicyType::Nat,
            protocol: "TCP".into(),
            internal_port: 80,
            external_port: 8080,
            external_port_reserved: false
        }),
        json!({"Type": "NAT", "Protocol": "TCP", "InternalPort": 80, "ExternalPort": 8080})
    );
    assert_eq!(
        value(&OutboundNatPolicy {
            policy_type: PolicyType::OutboundNat,
            exceptions: vec!["10.0.0.0/8".into()],
            ..Default::default()
        }),
        json!({"Type": "OutBoundNAT", "ExceptionList": ["10.0.0.0/8"]})
    );
    assert_eq!(
        value(&ElbPolicy {
            policy_type: PolicyType::ExternalLoadBalancer,
            protocol: 6,
            internal_port: 80,
            external_port: 80,
            vips: vec!["1.1.1.1".into()],
            dsr: true,
            ..Default::default()
        }),
        json!({"Type": "ELB", "Protocol": 6, "InternalPort": 80, "ExternalPort": 80, "VIPs": ["1.1.1.1"], "IsDSR": true})
    );
    // Protocol 0 (any) is `omitempty` in LBPolicy; the ports are always sent.
    assert_eq!(
        value(&ElbPolicy {
            policy_type: PolicyType::ExternalLoadBalancer,
            ..Default::default()
        }),
        json!({"Type": "ELB", "InternalPort": 0, "ExternalPort": 0})
    );
    assert_eq!(
        value(&RoutePolicy {
            policy_type: PolicyType::Route,
            destination_prefix: "10.0.0.0/8".into(),
            next_hop: String::new(),
            encap_enabled: true
        }),
        json!({"Type": "ROUTE", "DestinationPrefix": "10.0.0.0/8", "NeedEncap": true})
    );
    assert_eq!(
        value(&ProxyPolicy {
            policy_type: PolicyType::Proxy,
            port: "15001".into(),
            ..Default::default()
        }),
        json!({"Type": "PROXY", "Port": "15001"})
    );
    let acl = value(&AclPolicy {
        policy_type: PolicyType::Acl,
        action: "Allow".into(),
        direction: "In".into(),
        ..Default::default()
    });
    assert_eq!(acl["Action"], "Allow");
    for k in [
        "Protocol",
        "InternalPort",
        "LocalAddresses",
        "RemoteAddresses",
        "LocalPort",
        "RemotePort",
        "Priority",
        "ServiceName",
    ] {
        assert!(acl.get(k).is_some(), "{k} always emitted");
    }
    for k in ["Id", "Protocols", "LocalPorts", "RemotePorts", "RuleType"] {
        assert!(acl.get(k).is_none(), "{k} omitempty");
    }
    assert_eq!(
        value(&QosPolicy {
            policy_type: PolicyType::Qos,
            maximum_outgoing_bandwidth_in_bytes: 0
        }),
        json!({"Type": "QOS", "MaximumOutgoingBandwidthInBytes": 0})
    );
    assert_eq!(
        value(&IsolationPolicy {
            policy_type: PolicyType::Isolation,
            vlan: 1,
            vsid: 2,
            in_default_isolation: false
        }),
        json!({"Type": "Isolation", "VLAN": 1, "VSID": 2, "InDefaultIsolation": false})
    );
    assert_eq!(
        value(&VlanPolicy {
            policy_type: PolicyType::Vlan,
            vlan: 5
        }),
        json!({"Type": "VLAN", "VLAN": 5})
    );
    assert_eq!(
        value(&VsidPolicy {
            policy_type: PolicyType::Vsid,
            vsid: 5
        }),
        json!({"Type": "VSID", "VSID": 5})
    );
    assert_eq!(
        value(&PaPolicy {
            policy_type: PolicyType::Pa,
            pa: "1.1.1.1".into()
        }),
        json!({"Type": "PA", "PA": "1.1.1.1"})
    );
    assert_eq!(
        value(&Policy {
            policy_type: PolicyType::L2Driver
        }),
        json!({"Type": "L2Driver"})
    );
}

#[test]
fn envelope() {
    let out: Option<HnsNetwork> =
        decode_envelope(r#"{"Success":true,"Output":{"ID":"n1"}}"#).unwrap();
    assert_eq!(out.unwrap().id, "n1");
    assert_eq!(
        decode_envelope::<HnsNetwork>(r#"{"Success":true}"#).unwrap(),
        None
    );
    assert_eq!(
        decode_envelope::<HnsNetwork>(r#"{"Success":true,"Output":null}"#).unwrap(),
        None
    );
    let err = decode_envelope::<HnsNetwork>(r#"{"Success":false,"Error":"Element not found. "}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "hns failed with error : Element not found. "
    );
    assert!(matches!(
        decode_envelope::<HnsNetwork>("<html>").unwrap_err(),
        crate::Error::InvalidResponse { .. }
    ));
    assert!(matches!(
        decode_envelope::<HnsNetwork>(r#"{"Success":true,"Output":[1]}"#).unwrap_err(),
        crate::Error::InvalidResponse { .. }
    ));
}
