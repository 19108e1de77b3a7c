//! The pod network of an HCS utility VM (the reference's `internal/uvm/network.go`): the
//! HCN namespace a container's spec names (`windows.network.networkNamespace`, set by
//! containerd's CRI from the CNI plugin's work) is set up in the VM once, before the first
//! container that names it. Each of its endpoints becomes a NIC of the VM (an HCS modify
//! of `VirtualMachine/Devices/NetworkAdapters/<nic id>`) and is announced to the GCS
//! (ModifySettings `Network` Add with the endpoint's addresses, routes and DNS), which
//! moves it into the pod's network namespace. An endpoint named `...eth0` goes first, so
//! that it is the pod's first interface.
//!
//! OS-neutral: the endpoints come from any [`hcn::Hcn`] (HNS on Windows; the in-memory
//! engine in the tests).

use bridge::messages::{IpConfig, NetworkAdapter, Route};
use hcn::schema::HostComputeEndpoint;

use crate::error::{Error, Result};
use crate::hvsock::Guid;

/// The namespace a spec names for its pod network, if any.
pub fn spec_namespace(spec: &serde_json::Value) -> Option<String> {
    spec.pointer("/windows/network/networkNamespace")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The endpoints of HCN namespace `namespace`, the `...eth0` one first (the order is
/// otherwise HNS's).
pub fn namespace_endpoints(hcn: &hcn::Hcn, namespace: &str) -> Result<Vec<HostComputeEndpoint>> {
    let what = |e: hcn::Error| Error::Sandbox(format!("pod network namespace {namespace}: {e}"));
    let ids = hcn.get_namespace_endpoint_ids(namespace).map_err(what)?;
    let mut endpoints = ids
        .iter()
        .map(|id| hcn.get_endpoint_by_id(id))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(what)?;
    endpoints.sort_by_key(|e| !e.name.ends_with("eth0"));
    Ok(endpoints)
}

/// A fresh NIC id (a random version 4 GUID, as the reference's `guid.NewV4`).
pub fn new_nic_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Sandbox(format!("random NIC id: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let g = Guid {
        data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        data2: u16::from_be_bytes([b[4], b[5]]),
        data3: u16::from_be_bytes([b[6], b[7]]),
        data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
    };
    Ok(g.to_string())
}

/// The HCS modify that plugs endpoint `ep` into the VM as NIC `nic_id`.
pub fn add_nic_request(nic_id: &str, ep: &HostComputeEndpoint) -> serde_json::Value {
    serde_json::json!({
        "ResourcePath": format!("VirtualMachine/Devices/NetworkAdapters/{nic_id}"),
        "RequestType": "Add",
        "Settings": {"EndpointId": ep.id, "MacAddress": ep.mac_address},
    })
}

/// What the GCS is told of NIC `nic_id` of namespace `namespace` (spec §5 `Network`).
pub fn guest_adapter(namespace: &str, nic_id: &str, ep: &HostComputeEndpoint) -> NetworkAdapter {
    NetworkAdapter {
        namespace_id: namespace.to_owned(),
        id: nic_id.to_owned(),
        mac_address: ep.mac_address.clone(),
        dns_suffix: ep.dns.search.join(","),
        dns_server_list: ep.dns.server_list.join(","),
        ip_configs: ep
            .ip_configurations
            .iter()
            .map(|c| IpConfig {
                ip_address: c.ip_address.clone(),
                prefix_length: c.prefix_length,
            })
            .collect(),
        routes: ep
            .routes
            .iter()
            .map(|r| Route {
                next_hop: r.next_hop.clone(),
                destination_prefix: r.destination_prefix.clone(),
                metric: r.metric,
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_ids_are_random_v4_guids() {
        let a = new_nic_id().unwrap();
        let b = new_nic_id().unwrap();
        assert_ne!(a, b);
        assert!(Guid::parse(&a).is_some(), "{a}");
        assert_eq!(&a[14..15], "4", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn an_endpoint_becomes_a_vm_nic_and_a_guest_adapter() {
        let ep: HostComputeEndpoint = serde_json::from_value(serde_json::json!({
            "ID": "E1", "Name": "pod_eth0", "MacAddress": "00-15-5D-01-02-03",
            "IpConfigurations": [{"IpAddress": "10.0.0.5", "PrefixLength": 24}],
            "Routes": [{"NextHop": "10.0.0.1", "DestinationPrefix": "0.0.0.0/0"}],
            "Dns": {"Search": ["a.example", "b.example"], "ServerList": ["10.0.0.53"]}
        }))
        .unwrap();
        assert_eq!(
            add_nic_request("N1", &ep),
            serde_json::json!({
                "ResourcePath": "VirtualMachine/Devices/NetworkAdapters/N1",
                "RequestType": "Add",
                "Settings": {"EndpointId": "E1", "MacAddress": "00-15-5D-01-02-03"}
            })
        );
        let a = guest_adapter("NS1", "N1", &ep);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({
                "NamespaceID": "NS1", "ID": "N1", "MacAddress": "00-15-5D-01-02-03",
                "DNSSuffix": "a.example,b.example", "DNSServerList": "10.0.0.53",
                "IPConfigs": [{"IPAddress": "10.0.0.5", "PrefixLength": 24}],
                "Routes": [{"NextHop": "10.0.0.1", "DestinationPrefix": "0.0.0.0/0"}]
            })
        );
        assert_eq!(
            spec_namespace(
                &serde_json::json!({"windows": {"network": {"networkNamespace": "NS1"}}})
            ),
            Some("NS1".into())
        );
        assert_eq!(spec_namespace(&serde_json::json!({"windows": {}})), None);
    }
}
