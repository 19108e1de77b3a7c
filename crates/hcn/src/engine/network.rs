//! Networks: create (validation as HNS does), modify (policies, DNS), delete.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::hresult::{
    ERROR_ALREADY_EXISTS, HCN_E_ADDR_INVALID_OR_RESERVED, HCN_E_ENTITY_HAS_REFERENCES,
    HCN_E_INVALID_IP, HCN_E_INVALID_NETWORK, HCN_E_INVALID_NETWORK_TYPE, HCN_E_INVALID_POLICY_TYPE,
    HCN_E_INVALID_PREFIX, HCN_E_INVALID_SUBNET, HCN_E_NETWORK_ALREADY_EXISTS,
    HCN_E_POLICY_NOT_FOUND, HCN_E_REQUEST_UNSUPPORTED,
};
use crate::schema::{
    Dns, HostComputeNetwork, IpamType, ModifyNetworkSettingRequest, NetworkPolicyType,
    NetworkResourceType, NetworkType, PolicyNetworkRequest, RequestType, Route, V2_SCHEMA_VERSION,
};

use super::fail::{fail, Res, E_FAIL};
use super::state::{NetworkExtra, Record, State};
use super::{decode, ipam, not_found, Engine};
use crate::api::ObjectKind;

/// Network types hnsd realizes with a bridge (NAT also masquerades its subnets).
pub fn has_dataplane(t: &NetworkType) -> bool {
    matches!(
        t,
        NetworkType::Nat | NetworkType::L2Bridge | NetworkType::Overlay
    )
}

/// The first /20 of 172.16.0.0/12 that overlaps none of `taken`.
fn default_nat_subnet(taken: &[IpNet]) -> Option<ipnet::Ipv4Net> {
    let pool = ipnet::Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12).ok()?;
    pool.subnets(20).ok()?.find(|c| {
        let c = IpNet::V4(*c);
        !taken.iter().any(|t| t.contains(&c) || c.contains(t))
    })
}

/// Validates a network document against the state; fills what HNS fills.
pub(super) fn check_network(st: &State, id: &str, n: &mut HostComputeNetwork) -> Res<()> {
    if n.name.is_empty() {
        return Err(fail(HCN_E_INVALID_NETWORK, "Name is required"));
    }
    if st
        .networks
        .iter()
        .any(|(oid, r)| oid != id && r.doc.name.eq_ignore_ascii_case(&n.name))
    {
        return Err(fail(
            HCN_E_NETWORK_ALREADY_EXISTS,
            format!("network name {:?}", n.name),
        ));
    }
    if let NetworkType::Other(t) = &n.network_type {
        return Err(fail(HCN_E_INVALID_NETWORK_TYPE, format!("type {t:?}")));
    }
    for p in &n.policies {
        if let NetworkPolicyType::Other(t) = &p.policy_type {
            return Err(fail(
                HCN_E_INVALID_POLICY_TYPE,
                format!("network policy {t:?}"),
            ));
        }
    }
    ipam::mac_ranges(&n.mac_pool)?;
    let others: Vec<IpNet> = st
        .networks
        .iter()
        .filter(|(oid, _)| *oid != id)
        .flat_map(|(_, r)| r.doc.ipams.iter().flat_map(|i| i.subnets.iter()))
        .filter_map(|s| s.ip_address_prefix.parse().ok())
        .collect();
    let mut v4 = 0;
    for ipam_ in &mut n.ipams {
        if ipam_.ipam_type.as_str().is_empty() {
            ipam_.ipam_type = IpamType::Static;
        }
        if let IpamType::Other(t) = &ipam_.ipam_type {
            return Err(fail(HCN_E_INVALID_NETWORK, format!("IPAM type {t:?}")));
        }
        for s in &mut ipam_.subnets {
            let net: IpNet = s.ip_address_prefix.parse().map_err(|e| {
                fail(
                    HCN_E_INVALID_PREFIX,
                    format!("{:?}: {e}", s.ip_address_prefix),
                )
            })?;
            if net != net.trunc() {
                return Err(fail(
                    HCN_E_INVALID_PREFIX,
                    format!("{net} has host bits set"),
                ));
            }
            if let Some(o) = others.iter().find(|o| o.contains(&net) || net.contains(*o)) {
                return Err(fail(
                    HCN_E_INVALID_SUBNET,
                    format!("{net} overlaps subnet {o} of another network"),
                ));
            }
            for r in &s.routes {
                let hop: IpAddr = r.next_hop.parse().map_err(|e| {
                    fail(
                        HCN_E_INVALID_IP,
                        format!("route next hop {:?}: {e}", r.next_hop),
                    )
                })?;
                let dest: IpNet = r.destination_prefix.parse().map_err(|e| {
                    fail(
                        HCN_E_INVALID_PREFIX,
                        format!("route destination {:?}: {e}", r.destination_prefix),
                    )
                })?;
                if dest.prefix_len() == 0 && !net.contains(&hop) {
                    return Err(fail(
                        HCN_E_ADDR_INVALID_OR_RESERVED,
                        format!("gateway {hop} is outside subnet {net}"),
                    ));
                }
            }
            if let IpNet::V4(n4) = net {
                v4 += 1;
                // HNS gives a subnet without routes the first host as its gateway.
                if s.routes.is_empty() && n4.prefix_len() < 31 {
                    s.routes.push(Route {
                        next_hop: ipam::first_host(n4).to_string(),
                        destination_prefix: "0.0.0.0/0".into(),
                        metric: 0,
                    });
                }
            }
        }
    }
    if n.network_type == NetworkType::Nat && v4 == 0 {
        // HNS gives a NAT network created without a subnet one of its own choosing from
        // 172.16.0.0/12 (what the reference's CNI plugins rely on when the configuration
        // has no ipam.subnet).
        let net = default_nat_subnet(&others).ok_or_else(|| {
            fail(
                HCN_E_INVALID_SUBNET,
                "no free /20 in 172.16.0.0/12 for a NAT network without a subnet",
            )
        })?;
        let subnet = crate::schema::Subnet {
            ip_address_prefix: net.to_string(),
            routes: vec![Route {
                next_hop: ipam::first_host(net).to_string(),
                destination_prefix: "0.0.0.0/0".into(),
                metric: 0,
            }],
            ..Default::default()
        };
        match n.ipams.first_mut() {
            Some(i) => i.subnets.push(subnet),
            None => n.ipams.push(crate::schema::Ipam {
                ipam_type: IpamType::Static,
                subnets: vec![subnet],
            }),
        }
    }
    super::overlay::check_network(n)?;
    if n.schema_version == Default::default() {
        n.schema_version = V2_SCHEMA_VERSION;
    }
    n.id = id.to_string();
    Ok(())
}

impl Engine {
    pub(super) fn create_network(&self, id: String, settings: &str) -> Res<String> {
        let mut n = HostComputeNetwork::from_json(settings)
            .map_err(|e| fail(crate::hresult::HCN_E_INVALID_JSON, format!("network: {e}")))?;
        let mut st = self.lock();
        if st.networks.contains_key(&id) {
            return Err(fail(ERROR_ALREADY_EXISTS, format!("network {id}")));
        }
        check_network(&st, &id, &mut n)?;
        let index = st.meta.next_index;
        let rec = Record {
            doc: n,
            extra: NetworkExtra { index },
        };
        let spec = st.network_spec(&self.tag, &id, &rec);
        if let Some(spec) = &spec {
            self.dataplane
                .ensure_network(spec)
                .map_err(|e| fail(E_FAIL, format!("dataplane: {e}")))?;
        }
        st.meta.next_index += 1;
        let saved = self
            .persist_meta(&st)
            .and_then(|()| self.persist("networks", &id, &rec));
        if let Err(e) = saved {
            if let Some(spec) = &spec {
                if let Err(undo) = self.dataplane.remove_network(spec) {
                    tracing::error!(error = %undo, network = %id, "undo of a network failed");
                }
            }
            return Err(e);
        }
        let masquerade = spec.is_some_and(|s| s.masquerade);
        st.networks.insert(id.clone(), rec);
        if masquerade {
            self.sync_rules(&st)?;
        }
        Ok(id)
    }

    pub(super) fn modify_network(&self, id: &str, settings: &str) -> Res<()> {
        let req: ModifyNetworkSettingRequest = decode("network modify request", settings)?;
        let mut st = self.lock();
        let rec = st
            .networks
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::Network, id))?;
        let mut doc = rec.doc.clone();
        let raw = req.settings.as_ref().map(|s| s.get()).unwrap_or("{}");
        match (&req.resource_type, &req.request_type) {
            (NetworkResourceType::Policy, RequestType::Add | RequestType::Remove) => {
                let p: PolicyNetworkRequest = decode("network policy request", raw)?;
                for pol in p.policies {
                    if let NetworkPolicyType::Other(t) = &pol.policy_type {
                        return Err(fail(
                            HCN_E_INVALID_POLICY_TYPE,
                            format!("network policy {t:?}"),
                        ));
                    }
                    if req.request_type == RequestType::Add {
                        doc.policies.push(pol);
                    } else {
                        let at = doc.policies.iter().position(|x| *x == pol).ok_or_else(|| {
                            fail(
                                HCN_E_POLICY_NOT_FOUND,
                                format!("{} policy", pol.policy_type),
                            )
                        })?;
                        doc.policies.remove(at);
                    }
                }
            }
            (NetworkResourceType::Dns, RequestType::Update | RequestType::Add) => {
                doc.dns = decode::<Dns>("DNS settings", raw)?;
            }
            (r, q) => {
                return Err(fail(
                    HCN_E_REQUEST_UNSUPPORTED,
                    format!("network modify {r}/{q}"),
                ))
            }
        }
        super::overlay::check_network(&doc)?;
        let old = rec.clone();
        let rec = Record {
            doc,
            extra: rec.extra.clone(),
        };
        // Policies an Overlay network's VXLAN reads (remote subnet routes, ...) take effect.
        if let Some(spec) = st.network_spec(&self.tag, id, &rec) {
            if Some(&spec) != st.network_spec(&self.tag, id, &old).as_ref() {
                self.dataplane
                    .ensure_network(&spec)
                    .map_err(|e| fail(E_FAIL, format!("dataplane: {e}")))?;
            }
        }
        self.persist("networks", id, &rec)?;
        st.networks.insert(id.to_string(), rec);
        Ok(())
    }

    pub(super) fn delete_network(&self, id: &str) -> Res<()> {
        let mut st = self.lock();
        let rec = st
            .networks
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::Network, id))?
            .clone();
        let n = st
            .endpoints
            .values()
            .filter(|e| e.doc.host_compute_network.eq_ignore_ascii_case(id))
            .count();
        if n > 0 {
            return Err(fail(
                HCN_E_ENTITY_HAS_REFERENCES,
                format!("network {id} still has {n} endpoint(s)"),
            ));
        }
        if let Some(spec) = st.network_spec(&self.tag, id, &rec) {
            self.dataplane
                .remove_network(&spec)
                .map_err(|e| fail(E_FAIL, format!("dataplane: {e}")))?;
        }
        self.unpersist("networks", id)?;
        st.networks.remove(id);
        self.sync_rules(&st)?;
        Ok(())
    }
}

/// The gateway of an endpoint: its default route's IPv4 next hop.
pub(super) fn default_gateway(routes: &[Route]) -> Option<Ipv4Addr> {
    routes
        .iter()
        .filter(|r| r.destination_prefix == "0.0.0.0/0")
        .find_map(|r| r.next_hop.parse().ok())
}
