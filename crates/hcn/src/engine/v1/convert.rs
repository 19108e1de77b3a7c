//! v1 documents to and from the v2 objects they are: networks (one static IPAM), endpoints
//! and their policies (a v1 `NAT` policy is a v2 `PortMapping`, …). The v1 router in the
//! parent module answers with these conversions.

use serde::Serialize;

use crate::engine::fail::{fail, Res, E_FAIL};
use crate::engine::state::{EndpointExtra, Record};
use crate::engine::{canon_id, Engine};
use crate::hresult::{HCN_E_INVALID_NETWORK_TYPE, HCN_E_INVALID_POLICY, HCN_E_INVALID_POLICY_TYPE};
use crate::raw::RawJson;
use crate::schema::*;
use crate::v1::{
    AclPolicy, HnsEndpoint, HnsNetwork, MacPool as V1MacPool, NatPolicy, OutboundNatPolicy,
    PaPolicy, QosPolicy, RoutePolicy, Subnet as V1Subnet,
};

fn protocol_number(text: &str) -> Res<u32> {
    match text.to_ascii_uppercase().as_str() {
        "TCP" => Ok(6),
        "UDP" => Ok(17),
        n => n
            .parse()
            .map_err(|_| fail(HCN_E_INVALID_POLICY, format!("protocol {text:?}"))),
    }
}

fn protocol_name(n: u32) -> String {
    match n {
        6 => "TCP".into(),
        17 => "UDP".into(),
        n => n.to_string(),
    }
}

fn v2_network_type(t: &str) -> Res<NetworkType> {
    let known = NetworkType::KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(t))
        .ok_or_else(|| fail(HCN_E_INVALID_NETWORK_TYPE, format!("type {t:?}")))?;
    Ok(NetworkType::from(*known))
}

fn policy<T: Serialize>(t: EndpointPolicyType, s: &T) -> Res<EndpointPolicy> {
    EndpointPolicy::new(t, s).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

/// A v1 network as the v2 document it is.
pub(super) fn network_from_v1(n: &HnsNetwork) -> Res<HostComputeNetwork> {
    let mut policies = Vec::new();
    if !n.network_adapter_name.is_empty() {
        policies.push(
            NetworkPolicy::new(
                NetworkPolicyType::NetAdapterName,
                &NetAdapterNameNetworkPolicySetting {
                    network_adapter_name: n.network_adapter_name.clone(),
                },
            )
            .map_err(|e| fail(E_FAIL, format!("encode: {e}")))?,
        );
    }
    let mut subnet_policies = Vec::new();
    for p in &n.policies {
        let t: crate::v1::Policy = p
            .decode()
            .map_err(|e| fail(HCN_E_INVALID_POLICY, format!("network policy: {e}")))?;
        match t.policy_type.as_str() {
            "VLAN" | "VSID" => subnet_policies.push(p.clone()),
            other => {
                return Err(fail(
                    HCN_E_INVALID_POLICY_TYPE,
                    format!("v1 network policy {other:?}"),
                ))
            }
        }
    }
    let subnets = n
        .subnets
        .iter()
        .map(|s| Subnet {
            ip_address_prefix: s.address_prefix.clone(),
            policies: s.policies.iter().chain(&subnet_policies).cloned().collect(),
            routes: if s.gateway_address.is_empty() {
                Vec::new()
            } else {
                vec![Route {
                    next_hop: s.gateway_address.clone(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }]
            },
            flags: 0,
        })
        .collect();
    Ok(HostComputeNetwork {
        name: n.name.clone(),
        network_type: v2_network_type(if n.network_type.is_empty() {
            "NAT"
        } else {
            &n.network_type
        })?,
        policies,
        mac_pool: MacPool {
            ranges: n
                .mac_pools
                .iter()
                .map(|m| MacRange {
                    start_mac_address: m.start_mac_address.clone(),
                    end_mac_address: m.end_mac_address.clone(),
                })
                .collect(),
        },
        dns: Dns {
            domain: n.dns_suffix.clone(),
            server_list: split_list(&n.dns_server_list),
            ..Default::default()
        },
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets,
        }],
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The v1 view of a v2 network.
pub(super) fn network_to_v1(n: &HostComputeNetwork) -> HnsNetwork {
    let adapter = n
        .policies
        .iter()
        .filter(|p| p.policy_type == NetworkPolicyType::NetAdapterName)
        .find_map(|p| p.settings::<NetAdapterNameNetworkPolicySetting>().ok())
        .map(|s| s.network_adapter_name)
        .unwrap_or_default();
    HnsNetwork {
        id: n.id.clone(),
        network_type: n.network_type.as_str().to_string(),
        name: n.name.clone(),
        network_adapter_name: adapter,
        mac_pools: n
            .mac_pool
            .ranges
            .iter()
            .map(|r| V1MacPool {
                start_mac_address: r.start_mac_address.clone(),
                end_mac_address: r.end_mac_address.clone(),
            })
            .collect(),
        subnets: n
            .ipams
            .iter()
            .flat_map(|i| &i.subnets)
            .map(|s| V1Subnet {
                address_prefix: s.ip_address_prefix.clone(),
                gateway_address: s
                    .routes
                    .iter()
                    .find(|r| r.destination_prefix == "0.0.0.0/0" || r.destination_prefix == "::/0")
                    .map(|r| r.next_hop.clone())
                    .unwrap_or_default(),
                policies: s.policies.clone(),
            })
            .collect(),
        dns_suffix: n.dns.domain.clone(),
        dns_server_list: n.dns.server_list.join(","),
        ..Default::default()
    }
}

/// v1 endpoint policies as v2 ones.
pub(super) fn policies_from_v1(policies: &[RawJson]) -> Res<Vec<EndpointPolicy>> {
    let mut out = Vec::new();
    for p in policies {
        let bad = |e: serde_json::Error| fail(HCN_E_INVALID_POLICY, format!("v1 policy: {e}"));
        let t: crate::v1::Policy = p.decode().map_err(bad)?;
        out.push(match t.policy_type.as_str() {
            "NAT" => {
                let n: NatPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::PortMapping,
                    &PortMappingPolicySetting {
                        protocol: protocol_number(if n.protocol.is_empty() {
                            "TCP"
                        } else {
                            &n.protocol
                        })?,
                        internal_port: n.internal_port,
                        external_port: n.external_port,
                        ..Default::default()
                    },
                )?
            }
            "OutBoundNAT" => {
                let o: OutboundNatPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::OutBoundNat,
                    &OutboundNatPolicySetting {
                        virtual_ip: o.vip,
                        exceptions: o.exceptions,
                        destinations: o.destinations,
                        max_port_pool_usage: o.max_port_pool_usage,
                        ..Default::default()
                    },
                )?
            }
            "ROUTE" => {
                let r: RoutePolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::SdnRoute,
                    &SdnRoutePolicySetting {
                        destination_prefix: r.destination_prefix,
                        next_hop: r.next_hop,
                        need_encap: r.encap_enabled,
                    },
                )?
            }
            "ACL" => {
                let a: AclPolicy = p.decode().map_err(bad)?;
                let protocols = if a.protocols.is_empty() && a.protocol != 0 {
                    a.protocol.to_string()
                } else {
                    a.protocols
                };
                let port = |s: String, n: u16| {
                    if s.is_empty() && n != 0 {
                        n.to_string()
                    } else {
                        s
                    }
                };
                policy(
                    EndpointPolicyType::Acl,
                    &AclPolicySetting {
                        protocols,
                        action: ActionType::from(a.action),
                        direction: DirectionType::from(a.direction),
                        local_addresses: a.local_addresses,
                        remote_addresses: a.remote_addresses,
                        local_ports: port(a.local_ports, a.local_port),
                        remote_ports: port(a.remote_ports, a.remote_port),
                        rule_type: RuleType::from(a.rule_type),
                        priority: a.priority,
                    },
                )?
            }
            "QOS" => {
                let q: QosPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::Qos,
                    &QosPolicySetting {
                        maximum_outgoing_bandwidth_in_bytes: q.maximum_outgoing_bandwidth_in_bytes,
                    },
                )?
            }
            "PA" => {
                let a: PaPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::ProviderAddress,
                    &ProviderAddressEndpointPolicySetting {
                        provider_address: a.pa,
                    },
                )?
            }
            "L2Driver" => EndpointPolicy {
                policy_type: EndpointPolicyType::L2Driver,
                settings: None,
            },
            other => {
                return Err(fail(
                    HCN_E_INVALID_POLICY_TYPE,
                    format!("v1 endpoint policy {other:?}"),
                ))
            }
        });
    }
    Ok(out)
}

/// v2 endpoint policies in their v1 shapes (a type without a v1 shape is sent as its v2
/// envelope).
fn policies_to_v1(policies: &[EndpointPolicy]) -> Vec<RawJson> {
    policies
        .iter()
        .filter_map(|p| {
            let v = match p.policy_type {
                EndpointPolicyType::PortMapping => {
                    p.settings::<PortMappingPolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&NatPolicy {
                            policy_type: crate::v1::PolicyType::Nat,
                            protocol: protocol_name(s.protocol),
                            internal_port: s.internal_port,
                            external_port: s.external_port,
                            external_port_reserved: false,
                        })
                        .ok()
                    })
                }
                EndpointPolicyType::OutBoundNat => {
                    p.settings::<OutboundNatPolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&OutboundNatPolicy {
                            policy_type: crate::v1::PolicyType::OutboundNat,
                            vip: s.virtual_ip,
                            exceptions: s.exceptions,
                            destinations: s.destinations,
                            max_port_pool_usage: s.max_port_pool_usage,
                        })
                        .ok()
                    })
                }
                EndpointPolicyType::SdnRoute => {
                    p.settings::<SdnRoutePolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&RoutePolicy {
                            policy_type: crate::v1::PolicyType::Route,
                            destination_prefix: s.destination_prefix,
                            next_hop: s.next_hop,
                            encap_enabled: s.need_encap,
                        })
                        .ok()
                    })
                }
                _ => None,
            };
            v.or_else(|| RawJson::from_value(p).ok())
        })
        .collect()
}

impl Engine {
    pub(super) fn endpoint_to_v1(
        &self,
        e: &Record<HostComputeEndpoint, EndpointExtra>,
    ) -> HnsEndpoint {
        let st = self.lock();
        let net_name = st
            .networks
            .get(&e.doc.host_compute_network)
            .map(|n| n.doc.name.clone())
            .unwrap_or_default();
        drop(st);
        let mut v4 = e
            .doc
            .ip_configurations
            .iter()
            .filter(|c| !c.ip_address.contains(':'));
        let mut v6 = e
            .doc
            .ip_configurations
            .iter()
            .filter(|c| c.ip_address.contains(':'));
        let (ip, plen) = v4
            .next()
            .map(|c| (c.ip_address.clone(), c.prefix_length))
            .unwrap_or_default();
        let (ip6, plen6) = v6
            .next()
            .map(|c| (c.ip_address.clone(), c.prefix_length))
            .unwrap_or_default();
        let gw = |d: &str| {
            e.doc
                .routes
                .iter()
                .find(|r| r.destination_prefix == d)
                .map(|r| r.next_hop.clone())
                .unwrap_or_default()
        };
        HnsEndpoint {
            id: e.doc.id.clone(),
            name: e.doc.name.clone(),
            virtual_network: e.doc.host_compute_network.clone(),
            virtual_network_name: net_name,
            policies: policies_to_v1(&e.doc.policies),
            mac_address: e.doc.mac_address.clone(),
            ip_address: ip,
            ipv6_address: ip6,
            dns_suffix: e.doc.dns.domain.clone(),
            dns_server_list: e.doc.dns.server_list.join(","),
            gateway_address: gw("0.0.0.0/0"),
            gateway_address_v6: gw("::/0"),
            prefix_length: plen,
            ipv6_prefix_length: plen6,
            is_remote_endpoint: e.doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0,
            namespace: (!e.doc.host_compute_namespace.is_empty()).then(|| crate::v1::Namespace {
                id: e.doc.host_compute_namespace.clone(),
                ..Default::default()
            }),
            shared_containers: e.extra.shared_containers.clone(),
            state: e.extra.state,
            ..Default::default()
        }
    }

    pub(super) fn endpoint_from_v1(&self, e: &HnsEndpoint) -> Res<HostComputeEndpoint> {
        let network = if !e.virtual_network.is_empty() {
            canon_id(&e.virtual_network)?
        } else {
            let st = self.lock();
            st.networks
                .values()
                .find(|n| {
                    n.doc.name == e.virtual_network_name && !e.virtual_network_name.is_empty()
                })
                .map(|n| n.doc.id.clone())
                .ok_or_else(|| {
                    fail(
                        crate::hresult::HCN_E_NETWORK_NOT_FOUND,
                        format!("network {:?}", e.virtual_network_name),
                    )
                })?
        };
        let mut ips = Vec::new();
        if !e.ip_address.is_empty() {
            ips.push(IpConfig {
                ip_address: e.ip_address.clone(),
                prefix_length: e.prefix_length,
            });
        }
        if !e.ipv6_address.is_empty() {
            ips.push(IpConfig {
                ip_address: e.ipv6_address.clone(),
                prefix_length: e.ipv6_prefix_length,
            });
        }
        let mut routes = Vec::new();
        if !e.gateway_address.is_empty() {
            routes.push(Route {
                next_hop: e.gateway_address.clone(),
                destination_prefix: "0.0.0.0/0".into(),
                metric: 0,
            });
        }
        if !e.gateway_address_v6.is_empty() {
            routes.push(Route {
                next_hop: e.gateway_address_v6.clone(),
                destination_prefix: "::/0".into(),
                metric: 0,
            });
        }
        Ok(HostComputeEndpoint {
            name: e.name.clone(),
            host_compute_network: network,
            policies: policies_from_v1(&e.policies)?,
            ip_configurations: ips,
            dns: Dns {
                domain: e.dns_suffix.clone(),
                server_list: split_list(&e.dns_server_list),
                ..Default::default()
            },
            routes,
            mac_address: e.mac_address.clone(),
            flags: if e.is_remote_endpoint {
                ENDPOINT_FLAG_REMOTE_ENDPOINT
            } else {
                0
            },
            schema_version: V2_SCHEMA_VERSION,
            ..Default::default()
        })
    }
}
