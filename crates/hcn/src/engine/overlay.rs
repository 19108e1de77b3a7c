//! Overlay networks between hosts: the VXLAN port of a network with a `VSID`, and the two
//! ways HNS learns about other hosts: remote endpoints (flag RemoteEndpoint with a
//! `ProviderAddress` policy: a pod of another host on the same L2 segment) and
//! `RemoteSubnetRoute` network policies (another host's subnet, routed to its distributed
//! router, as flannel's VXLAN backend programs it).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::hresult::HCN_E_INVALID_POLICY;
use crate::schema::{
    DrMacAddressNetworkPolicySetting, EndpointPolicyType, HostComputeEndpoint, HostComputeNetwork,
    NetAdapterNameNetworkPolicySetting, NetworkPolicyType, NetworkType,
    ProviderAddressEndpointPolicySetting, RemoteSubnetRoutePolicySetting, VxlanPortPolicySetting,
    ENDPOINT_FLAG_REMOTE_ENDPOINT,
};

use super::dataplane::{RemoteEndpointSpec, RemoteSubnetSpec, VxlanSpec};
use super::fail::{fail, Res};
use super::ipam;
use super::state::{NetworkExtra, Record, State};

/// The VXLAN port HNS uses unless a `VxlanPort` policy says otherwise.
pub const DEFAULT_VXLAN_PORT: u16 = 4789;

/// The VXLAN device name of network `index` of instance `tag`.
pub fn vxlan_name(tag: &str, index: u32) -> String {
    format!("{tag}x{index:x}")
}

/// The network's VSID: the first subnet policy of type `VSID`.
pub fn vsid(n: &HostComputeNetwork) -> Res<Option<u32>> {
    for ipam_ in &n.ipams {
        for s in &ipam_.subnets {
            for p in &s.policies {
                let v: serde_json::Value = serde_json::from_str(p.get())
                    .map_err(|e| fail(HCN_E_INVALID_POLICY, format!("subnet policy: {e}")))?;
                if v.get("Type").and_then(|t| t.as_str()) != Some("VSID") {
                    continue;
                }
                let id = v
                    .get("Settings")
                    .and_then(|s| s.get("IsolationId"))
                    .and_then(|i| i.as_u64())
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|i| *i < 1 << 24)
                    .ok_or_else(|| {
                        fail(
                            HCN_E_INVALID_POLICY,
                            format!(
                                "VSID subnet policy {}: IsolationId must be a 24-bit number",
                                p.get()
                            ),
                        )
                    })?;
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

fn v4(what: &str, text: &str) -> Res<Ipv4Addr> {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a),
        _ => Err(fail(
            HCN_E_INVALID_POLICY,
            format!("{what} {text:?} is not an IPv4 address"),
        )),
    }
}

fn mac(what: &str, text: &str) -> Res<[u8; 6]> {
    ipam::parse_mac(text).map(ipam::mac_bytes).ok_or_else(|| {
        fail(
            HCN_E_INVALID_POLICY,
            format!("{what} {text:?} is not a MAC"),
        )
    })
}

/// The overlay settings of a network, decoded; errors name the policy that is wrong.
#[derive(Debug, Default)]
struct Settings {
    port: Option<u16>,
    local: Option<Ipv4Addr>,
    underlay: Option<String>,
    router_mac: Option<[u8; 6]>,
    remote_subnets: Vec<RemoteSubnetSpec>,
}

fn settings(n: &HostComputeNetwork) -> Res<Settings> {
    let mut out = Settings::default();
    for p in &n.policies {
        let bad = |e: serde_json::Error| {
            fail(
                HCN_E_INVALID_POLICY,
                format!("{} settings: {e}", p.policy_type),
            )
        };
        match p.policy_type {
            NetworkPolicyType::VxlanPort => {
                let s: VxlanPortPolicySetting = p.settings().map_err(bad)?;
                if s.port == 0 {
                    return Err(fail(HCN_E_INVALID_POLICY, "VxlanPort Port is 0"));
                }
                out.port = Some(s.port);
            }
            NetworkPolicyType::ProviderAddress => {
                let s: ProviderAddressEndpointPolicySetting = p.settings().map_err(bad)?;
                out.local = Some(v4("ProviderAddress", &s.provider_address)?);
            }
            NetworkPolicyType::NetAdapterName => {
                let s: NetAdapterNameNetworkPolicySetting = p.settings().map_err(bad)?;
                if !s.network_adapter_name.is_empty() {
                    out.underlay = Some(s.network_adapter_name);
                }
            }
            NetworkPolicyType::DrMacAddress => {
                let s: DrMacAddressNetworkPolicySetting = p.settings().map_err(bad)?;
                out.router_mac = Some(mac("DrMacAddress Address", &s.address)?);
            }
            NetworkPolicyType::RemoteSubnetRoute => {
                let s: RemoteSubnetRoutePolicySetting = p.settings().map_err(bad)?;
                let prefix = match s.destination_prefix.parse::<IpNet>() {
                    Ok(IpNet::V4(net)) if net == net.trunc() => net,
                    _ => {
                        return Err(fail(
                            HCN_E_INVALID_POLICY,
                            format!(
                                "RemoteSubnetRoute DestinationPrefix {:?} is not an IPv4 prefix",
                                s.destination_prefix
                            ),
                        ))
                    }
                };
                out.remote_subnets.push(RemoteSubnetSpec {
                    prefix,
                    provider_address: v4("RemoteSubnetRoute ProviderAddress", &s.provider_address)?,
                    router_mac: mac(
                        "RemoteSubnetRoute DistributedRouterMacAddress",
                        &s.distributed_router_mac_address,
                    )?,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Validates what an Overlay network's dataplane will read (on create and on modify).
pub fn check_network(n: &HostComputeNetwork) -> Res<()> {
    if n.network_type != NetworkType::Overlay {
        return Ok(());
    }
    vsid(n)?;
    let s = settings(n)?;
    let own: Vec<Ipv4Net> = ipam::v4_subnets(n).iter().map(|s| s.net).collect();
    if let Some(r) = s.remote_subnets.iter().find(|r| {
        own.iter()
            .any(|o| o.contains(&r.prefix) || r.prefix.contains(o))
    }) {
        return Err(fail(
            HCN_E_INVALID_POLICY,
            format!(
                "RemoteSubnetRoute {} overlaps the network's own subnet",
                r.prefix
            ),
        ));
    }
    Ok(())
}

/// Validates a remote endpoint's `ProviderAddress` policy.
pub fn check_endpoint(e: &HostComputeEndpoint) -> Res<()> {
    if e.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT == 0 {
        return Ok(());
    }
    provider_address(e).map(drop)
}

fn provider_address(e: &HostComputeEndpoint) -> Res<Option<Ipv4Addr>> {
    for p in &e.policies {
        if p.policy_type == EndpointPolicyType::ProviderAddress {
            let s: ProviderAddressEndpointPolicySetting = p.settings().map_err(|err| {
                fail(
                    HCN_E_INVALID_POLICY,
                    format!("ProviderAddress settings: {err}"),
                )
            })?;
            return v4("ProviderAddress", &s.provider_address).map(Some);
        }
    }
    Ok(None)
}

impl State {
    /// The VXLAN port of an Overlay network with a VSID, with every remote endpoint and
    /// remote subnet the state holds for it. Documents were validated when stored.
    pub fn vxlan_spec(
        &self,
        tag: &str,
        id: &str,
        rec: &Record<HostComputeNetwork, NetworkExtra>,
    ) -> Option<VxlanSpec> {
        if rec.doc.network_type != NetworkType::Overlay {
            return None;
        }
        let vni = vsid(&rec.doc).ok().flatten()?;
        let s = settings(&rec.doc).ok()?;
        let mut remote_endpoints: Vec<RemoteEndpointSpec> = self
            .endpoints
            .values()
            .filter(|e| e.doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0)
            .filter(|e| e.doc.host_compute_network.eq_ignore_ascii_case(id))
            .filter_map(|e| {
                Some(RemoteEndpointSpec {
                    mac: ipam::mac_bytes(ipam::parse_mac(&e.doc.mac_address)?),
                    address: super::specs::endpoint_v4(&e.doc)?.addr(),
                    provider_address: provider_address(&e.doc).ok().flatten()?,
                })
            })
            .collect();
        remote_endpoints.sort_by_key(|r| r.address);
        Some(VxlanSpec {
            ifname: vxlan_name(tag, rec.extra.index),
            vni,
            port: s.port.unwrap_or(DEFAULT_VXLAN_PORT),
            local: s.local,
            underlay: s.underlay,
            router_mac: s.router_mac,
            remote_endpoints,
            remote_subnets: s.remote_subnets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NetworkPolicy;

    fn overlay(policies: Vec<NetworkPolicy>, vsid: &str) -> HostComputeNetwork {
        serde_json::from_value(serde_json::json!({
            "Name": "o", "Type": "Overlay",
            "Ipams": [{"Type": "Static", "Subnets": [{
                "IpAddressPrefix": "10.244.1.0/24",
                "Policies": [serde_json::from_str::<serde_json::Value>(vsid).unwrap()],
            }]}],
            "Policies": policies,
        }))
        .unwrap()
    }

    fn route(prefix: &str, pa: &str, mac: &str) -> NetworkPolicy {
        NetworkPolicy::new(
            NetworkPolicyType::RemoteSubnetRoute,
            &RemoteSubnetRoutePolicySetting {
                destination_prefix: prefix.into(),
                isolation_id: 4096,
                provider_address: pa.into(),
                distributed_router_mac_address: mac.into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn overlay_policies_are_checked_and_read() {
        let vsid = r#"{"Type":"VSID","Settings":{"IsolationId":4096}}"#;
        let good = overlay(
            vec![route("10.244.2.0/24", "192.168.77.2", "0e-00-00-00-00-02")],
            vsid,
        );
        check_network(&good).unwrap();
        assert_eq!(super::vsid(&good).unwrap(), Some(4096));
        let s = settings(&good).unwrap();
        assert_eq!(s.remote_subnets[0].router_mac, [0x0e, 0, 0, 0, 0, 2]);
        for (bad, what) in [
            (
                route("10.244.2.0/24", "fd00::1", "0e-00-00-00-00-02"),
                "not an IPv4 address",
            ),
            (
                route("10.244.2.1/24", "192.168.77.2", "0e-00-00-00-00-02"),
                "not an IPv4 prefix",
            ),
            (
                route("10.244.2.0/24", "192.168.77.2", "nope"),
                "is not a MAC",
            ),
            (
                route("10.244.0.0/16", "192.168.77.2", "0e-00-00-00-00-02"),
                "overlaps",
            ),
        ] {
            let e = check_network(&overlay(vec![bad], vsid)).unwrap_err();
            assert_eq!(e.hr, HCN_E_INVALID_POLICY);
            assert!(e.detail.contains(what), "{}", e.detail);
        }
        let e = check_network(&overlay(
            vec![],
            r#"{"Type":"VSID","Settings":{"IsolationId":16777216}}"#,
        ))
        .unwrap_err();
        assert!(e.detail.contains("24-bit"), "{}", e.detail);
    }
}
