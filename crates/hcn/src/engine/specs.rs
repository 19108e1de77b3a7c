//! From objects to kernel specs: the bridge of a network, the veth of an attached endpoint,
//! the nft rules (outbound NAT, port mappings, load balancers) and the whole desired state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::schema::{
    EndpointPolicyType, HostComputeEndpoint, HostComputeNetwork, NetworkType,
    OutboundNatPolicySetting, PortMappingPolicySetting,
};

use super::dataplane::{
    AttachmentSpec, DesiredState, DnatRule, MasqueradeRule, NamespaceSpec, NetworkSpec, RulesSpec,
};
use super::ipam;
use super::network::{default_gateway, has_dataplane};
use super::state::{EndpointExtra, NetworkExtra, Record, State};

/// The bridge name of network `index` of instance `tag`.
pub fn bridge_name(tag: &str, index: u32) -> String {
    format!("{tag}b{index:x}")
}

/// The host veth name of endpoint `index` of instance `tag`.
pub fn veth_name(tag: &str, index: u32) -> String {
    format!("{tag}v{index:x}")
}

/// The endpoint's IPv4 address with its prefix.
pub fn endpoint_v4(doc: &HostComputeEndpoint) -> Option<Ipv4Net> {
    doc.ip_configurations
        .iter()
        .find_map(|c| match c.ip_address.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Ipv4Net::new(
                ip,
                if c.prefix_length == 0 {
                    32
                } else {
                    c.prefix_length
                },
            )
            .ok(),
            _ => None,
        })
}

/// The endpoint's IPv6 address with its prefix (a prefix of 0 takes the containing subnet's,
/// else /128).
pub fn endpoint_v6(doc: &HostComputeEndpoint, subnets: &[(Ipv6Net, Ipv6Addr)]) -> Option<Ipv6Net> {
    doc.ip_configurations.iter().find_map(|c| {
        let IpAddr::V6(ip) = c.ip_address.parse::<IpAddr>().ok()? else {
            return None;
        };
        let plen = match c.prefix_length {
            0 => subnets
                .iter()
                .find(|(n, _)| n.contains(&ip))
                .map_or(128, |(n, _)| n.prefix_len()),
            p => p,
        };
        Ipv6Net::new(ip, plen).ok()
    })
}

impl State {
    /// The network's bridge, when its type has a dataplane.
    pub fn network_spec(
        &self,
        tag: &str,
        id: &str,
        rec: &Record<HostComputeNetwork, NetworkExtra>,
    ) -> Option<NetworkSpec> {
        if !has_dataplane(&rec.doc.network_type) {
            return None;
        }
        Some(NetworkSpec {
            id: id.to_string(),
            bridge: bridge_name(tag, rec.extra.index),
            subnets: ipam::v4_subnets(&rec.doc)
                .into_iter()
                .map(|s| (s.net, s.gateway))
                .collect(),
            subnets6: ipam::v6_subnets(&rec.doc),
            masquerade: rec.doc.network_type == NetworkType::Nat,
            vxlan: self.vxlan_spec(tag, id, rec),
        })
    }

    /// The veth of an endpoint attached to a namespace with a network namespace file, on a
    /// network with a dataplane.
    pub fn attachment_spec(
        &self,
        tag: &str,
        rec: &Record<HostComputeEndpoint, EndpointExtra>,
    ) -> Option<AttachmentSpec> {
        let ns_id = rec.doc.host_compute_namespace.to_ascii_uppercase();
        let ns = self.namespaces.get(&ns_id)?;
        if ns.doc.netns_path.is_empty() {
            return None;
        }
        let net = self
            .networks
            .get(&rec.doc.host_compute_network.to_ascii_uppercase())?;
        if !has_dataplane(&net.doc.network_type) {
            return None;
        }
        let routes = rec
            .doc
            .routes
            .iter()
            .filter(|r| r.destination_prefix != "0.0.0.0/0")
            .filter_map(|r| {
                match (
                    r.destination_prefix.parse::<IpNet>(),
                    r.next_hop.parse::<Ipv4Addr>(),
                ) {
                    (Ok(IpNet::V4(d)), Ok(h)) => Some((d, h)),
                    _ => None,
                }
            })
            .collect();
        Some(AttachmentSpec {
            endpoint_id: rec.doc.id.clone(),
            host_ifname: veth_name(tag, rec.extra.index),
            bridge: bridge_name(tag, net.extra.index),
            netns: PathBuf::from(&ns.doc.netns_path),
            ifname: rec.extra.ifname.clone(),
            mac: ipam::mac_bytes(ipam::parse_mac(&rec.doc.mac_address).unwrap_or(0)),
            address: endpoint_v4(&rec.doc),
            gateway: default_gateway(&rec.doc.routes),
            routes,
            address6: endpoint_v6(&rec.doc, &ipam::v6_subnets(&net.doc)),
            gateway6: rec
                .doc
                .routes
                .iter()
                .filter(|r| r.destination_prefix == "::/0")
                .find_map(|r| r.next_hop.parse().ok()),
        })
    }

    /// The nft rules of the whole state.
    pub fn rules(&self, tag: &str) -> RulesSpec {
        let mut per_endpoint = Vec::new();
        let mut per_subnet = Vec::new();
        let mut dnat = Vec::new();
        for net in self.networks.values() {
            if !has_dataplane(&net.doc.network_type) {
                continue;
            }
            let bridge = bridge_name(tag, net.extra.index);
            let subnets = ipam::v4_subnets(&net.doc);
            if net.doc.network_type == NetworkType::Nat {
                for s in &subnets {
                    per_subnet.push(MasqueradeRule {
                        source: s.net,
                        exceptions: Vec::new(),
                        bridge: bridge.clone(),
                    });
                }
            }
            for ep in self
                .endpoints
                .values()
                .filter(|e| e.doc.host_compute_network.eq_ignore_ascii_case(&net.doc.id))
            {
                let Some(addr) = endpoint_v4(&ep.doc) else {
                    continue;
                };
                for p in &ep.doc.policies {
                    match p.policy_type {
                        EndpointPolicyType::OutBoundNat => {
                            let Ok(s) = p.settings::<OutboundNatPolicySetting>() else {
                                continue; // refused on create; a stored one always decodes
                            };
                            per_endpoint.push(MasqueradeRule {
                                source: Ipv4Net::new(addr.addr(), 32).unwrap_or(addr),
                                exceptions: s
                                    .exceptions
                                    .iter()
                                    .filter_map(|e| parse_v4_net(e))
                                    .collect(),
                                bridge: bridge.clone(),
                            });
                        }
                        EndpointPolicyType::PortMapping => {
                            let Ok(s) = p.settings::<PortMappingPolicySetting>() else {
                                continue;
                            };
                            dnat.push(DnatRule {
                                protocol: s.protocol as u8,
                                vip: s.vip.parse().ok(),
                                port: s.external_port,
                                backends: vec![addr.addr()],
                                backend_port: s.internal_port,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        for lb in self.load_balancers.values() {
            let backends: Vec<Ipv4Addr> = lb
                .doc
                .host_compute_endpoints
                .iter()
                .filter_map(|id| self.endpoints.get(&id.to_ascii_uppercase()))
                .filter_map(|e| endpoint_v4(&e.doc).map(|n| n.addr()))
                .collect();
            if backends.is_empty() {
                continue;
            }
            let vips: Vec<Option<Ipv4Addr>> = if lb.doc.frontend_vips.is_empty() {
                vec![None]
            } else {
                lb.doc
                    .frontend_vips
                    .iter()
                    .filter_map(|v| v.parse().ok().map(Some))
                    .collect()
            };
            for pm in &lb.doc.port_mappings {
                for vip in &vips {
                    dnat.push(DnatRule {
                        protocol: pm.protocol as u8,
                        vip: *vip,
                        port: pm.external_port,
                        backends: backends.clone(),
                        backend_port: pm.internal_port,
                    });
                }
            }
        }
        per_endpoint.extend(per_subnet);
        RulesSpec {
            masquerade: per_endpoint,
            dnat,
        }
    }

    /// Everything the kernel should hold.
    pub fn desired(&self, tag: &str) -> DesiredState {
        DesiredState {
            networks: self
                .networks
                .iter()
                .filter_map(|(id, r)| self.network_spec(tag, id, r))
                .collect(),
            namespaces: self
                .namespaces
                .iter()
                .map(|(id, r)| NamespaceSpec {
                    id: id.clone(),
                    netns: PathBuf::from(&r.doc.netns_path),
                    owned: r.extra.owned,
                })
                .collect(),
            attachments: self
                .endpoints
                .values()
                .filter_map(|e| self.attachment_spec(tag, e))
                .collect(),
            rules: self.rules(tag),
        }
    }
}

/// An IPv4 prefix or a bare address (as /32).
pub fn parse_v4_net(text: &str) -> Option<Ipv4Net> {
    let t = text.trim();
    if let Ok(IpNet::V4(n)) = t.parse::<IpNet>() {
        return Some(n);
    }
    t.parse::<Ipv4Addr>()
        .ok()
        .and_then(|a| Ipv4Net::new(a, 32).ok())
}
