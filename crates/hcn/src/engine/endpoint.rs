//! Endpoints: create (addresses, MAC, policies validated and allocated as HNS does), modify
//! (policies), delete.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::api::ObjectKind;
use crate::hresult::{
    ERROR_ALREADY_EXISTS, ERROR_OBJECT_ALREADY_EXISTS, HCN_E_ADDR_INVALID_OR_RESERVED,
    HCN_E_ENTITY_HAS_REFERENCES, HCN_E_INVALID_ENDPOINT, HCN_E_INVALID_INTERNAL_PORT,
    HCN_E_INVALID_IP, HCN_E_INVALID_JSON_REFERENCE, HCN_E_INVALID_POLICY,
    HCN_E_INVALID_POLICY_TYPE, HCN_E_MAPPING_NOT_SUPPORTED, HCN_E_NETWORK_NOT_FOUND,
    HCN_E_POLICY_NOT_FOUND, HCN_E_PORT_ALREADY_EXISTS, HCN_E_REQUEST_UNSUPPORTED,
};
use crate::schema::{
    AclPolicySetting, EndpointPolicy, EndpointPolicyType, EndpointResourceType,
    HostComputeEndpoint, IpConfig, ModifyEndpointSettingRequest, NetworkType,
    OutboundNatPolicySetting, PolicyEndpointRequest, PortMappingPolicySetting, RequestType, Route,
    SdnRoutePolicySetting, ENDPOINT_FLAG_REMOTE_ENDPOINT, V2_SCHEMA_VERSION,
};

use super::fail::{fail, Res, E_FAIL};

use super::state::{EndpointExtra, Record, State};
use super::{decode, ipam, not_found, Engine};

/// One claimed host port: protocol, port, VIP (`None`: every address).
pub(super) type PortClaim = (u32, u16, Option<IpAddr>);

/// The port claims of a list of endpoint policies.
fn port_claims(policies: &[EndpointPolicy]) -> Vec<PortClaim> {
    policies
        .iter()
        .filter(|p| p.policy_type == EndpointPolicyType::PortMapping)
        .filter_map(|p| p.settings::<PortMappingPolicySetting>().ok())
        .map(|s| (s.protocol, s.external_port, s.vip.parse().ok()))
        .collect()
}

fn claims_overlap(a: &PortClaim, b: &PortClaim) -> bool {
    a.0 == b.0 && a.1 == b.1 && (a.2.is_none() || b.2.is_none() || a.2 == b.2)
}

/// Every port claimed in the state, except by endpoint `except`.
pub(super) fn claimed_ports(st: &State, except: &str) -> Vec<PortClaim> {
    let mut out: Vec<PortClaim> = st
        .endpoints
        .iter()
        .filter(|(id, _)| id.as_str() != except)
        .flat_map(|(_, e)| port_claims(&e.doc.policies))
        .collect();
    for lb in st.load_balancers.values() {
        for pm in &lb.doc.port_mappings {
            if lb.doc.frontend_vips.is_empty() {
                out.push((pm.protocol, pm.external_port, None));
            }
        }
    }
    out
}

/// Validates endpoint policies (types, settings, port mappings) against the state.
fn check_policies(
    st: &State,
    id: &str,
    network_type: &NetworkType,
    policies: &[EndpointPolicy],
) -> Res<()> {
    for p in policies {
        let bad = |e: serde_json::Error| {
            fail(
                HCN_E_INVALID_POLICY,
                format!("{} settings: {e}", p.policy_type),
            )
        };
        match &p.policy_type {
            EndpointPolicyType::Other(t) => {
                return Err(fail(
                    HCN_E_INVALID_POLICY_TYPE,
                    format!("endpoint policy {t:?}"),
                ))
            }
            EndpointPolicyType::PortMapping => {
                let s: PortMappingPolicySetting = p.settings().map_err(bad)?;
                if *network_type != NetworkType::Nat {
                    return Err(fail(
                        HCN_E_MAPPING_NOT_SUPPORTED,
                        format!("port mapping on a {network_type} network"),
                    ));
                }
                if s.internal_port == 0 {
                    return Err(fail(
                        HCN_E_INVALID_INTERNAL_PORT,
                        "PortMapping InternalPort is 0",
                    ));
                }
                if s.protocol != 6 && s.protocol != 17 {
                    return Err(fail(
                        HCN_E_INVALID_POLICY,
                        format!("PortMapping protocol {} (TCP 6 or UDP 17)", s.protocol),
                    ));
                }
                if s.external_port == 0 {
                    return Err(fail(HCN_E_INVALID_POLICY, "PortMapping ExternalPort is 0"));
                }
                if !s.vip.is_empty() && s.vip.parse::<IpAddr>().is_err() {
                    return Err(fail(
                        HCN_E_INVALID_IP,
                        format!("PortMapping VIP {:?}", s.vip),
                    ));
                }
            }
            EndpointPolicyType::OutBoundNat => {
                let s: OutboundNatPolicySetting = p.settings().map_err(bad)?;
                for e in s.exceptions.iter().chain(&s.destinations) {
                    if e.parse::<ipnet::IpNet>().is_err() && e.parse::<IpAddr>().is_err() {
                        return Err(fail(
                            HCN_E_INVALID_POLICY,
                            format!("OutBoundNAT address {e:?}"),
                        ));
                    }
                }
            }
            EndpointPolicyType::SdnRoute => {
                p.settings::<SdnRoutePolicySetting>().map_err(bad)?;
            }
            EndpointPolicyType::Acl => {
                p.settings::<AclPolicySetting>().map_err(bad)?;
            }
            _ => {}
        }
    }
    let mine = port_claims(policies);
    for (i, a) in mine.iter().enumerate() {
        if mine[..i].iter().any(|b| claims_overlap(a, b)) {
            return Err(fail(
                HCN_E_PORT_ALREADY_EXISTS,
                format!("port {} is mapped twice", a.1),
            ));
        }
    }
    let taken = claimed_ports(st, id);
    if let Some(a) = mine
        .iter()
        .find(|a| taken.iter().any(|b| claims_overlap(a, b)))
    {
        return Err(fail(
            HCN_E_PORT_ALREADY_EXISTS,
            format!("protocol {} port {} is already mapped", a.0, a.1),
        ));
    }
    Ok(())
}

fn has_rules(policies: &[EndpointPolicy]) -> bool {
    policies.iter().any(|p| {
        matches!(
            p.policy_type,
            EndpointPolicyType::PortMapping | EndpointPolicyType::OutBoundNat
        )
    })
}

impl Engine {
    pub(super) fn create_endpoint(
        &self,
        id: String,
        settings: &str,
        network: Option<String>,
    ) -> Res<String> {
        let mut e: HostComputeEndpoint = decode("endpoint", settings)?;
        let mut st = self.lock();
        if st.endpoints.contains_key(&id) {
            return Err(fail(ERROR_ALREADY_EXISTS, format!("endpoint {id}")));
        }
        let net_id = match (network, e.host_compute_network.as_str()) {
            (Some(n), "") => n,
            (Some(n), doc) if super::canon_id(doc)? == n => n,
            (Some(n), doc) => {
                return Err(fail(
                    HCN_E_INVALID_JSON_REFERENCE,
                    format!(
                    "HostComputeNetwork {doc} is not the network {n} the endpoint is created on"
                ),
                ))
            }
            (None, "") => {
                return Err(fail(
                    HCN_E_INVALID_JSON_REFERENCE,
                    "the endpoint names no HostComputeNetwork",
                ))
            }
            (None, doc) => super::canon_id(doc)?,
        };
        let net = st
            .networks
            .get(&net_id)
            .ok_or_else(|| fail(HCN_E_NETWORK_NOT_FOUND, format!("network {net_id}")))?
            .clone();
        if !e.host_compute_namespace.is_empty() {
            return Err(fail(
                HCN_E_INVALID_ENDPOINT,
                "HostComputeNamespace is read-only: attach with ModifyNamespace",
            ));
        }
        let siblings: Vec<&Record<HostComputeEndpoint, EndpointExtra>> = st
            .endpoints
            .values()
            .filter(|o| o.doc.host_compute_network == net_id)
            .collect();
        if !e.name.is_empty() && siblings.iter().any(|o| o.doc.name == e.name) {
            return Err(fail(
                ERROR_OBJECT_ALREADY_EXISTS,
                format!("endpoint name {:?} on network {}", e.name, net.doc.name),
            ));
        }
        check_policies(&st, &id, &net.doc.network_type, &e.policies)?;
        super::overlay::check_endpoint(&e)?;

        // Addresses: given ones are checked, a missing IPv4 one is allocated.
        let subnets = ipam::v4_subnets(&net.doc);
        let used: HashSet<Ipv4Addr> = siblings
            .iter()
            .flat_map(|o| o.doc.ip_configurations.iter())
            .filter_map(|c| c.ip_address.parse().ok())
            .collect();
        let remote = e.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0;
        for c in &mut e.ip_configurations {
            let ip = ipam::parse_ip(&c.ip_address)
                .ok_or_else(|| fail(HCN_E_INVALID_IP, format!("IpAddress {:?}", c.ip_address)))?;
            let IpAddr::V4(ip4) = ip else {
                continue; // IPv6 addresses are recorded as given
            };
            let Some(s) = subnets.iter().find(|s| s.net.contains(&ip4)) else {
                if remote {
                    continue;
                }
                return Err(fail(
                    HCN_E_INVALID_IP,
                    format!("{ip4} is not in a subnet of network {}", net.doc.name),
                ));
            };
            if let Some(why) = ipam::reserved_reason(s, ip4) {
                return Err(fail(HCN_E_ADDR_INVALID_OR_RESERVED, format!("{ip4} {why}")));
            }
            if used.contains(&ip4) {
                return Err(fail(
                    HCN_E_ADDR_INVALID_OR_RESERVED,
                    format!("{ip4} is used by another endpoint"),
                ));
            }
            if c.prefix_length == 0 {
                c.prefix_length = s.net.prefix_len();
            }
        }
        let has_v4 = e
            .ip_configurations
            .iter()
            .any(|c| matches!(ipam::parse_ip(&c.ip_address), Some(IpAddr::V4(_))));
        if !has_v4 && !remote {
            if let Some(s) = subnets.first() {
                let ip = ipam::allocate(s, &used)?;
                e.ip_configurations.insert(
                    0,
                    IpConfig {
                        ip_address: ip.to_string(),
                        prefix_length: s.net.prefix_len(),
                    },
                );
            }
        }
        if e.routes.is_empty() {
            let ip = super::specs::endpoint_v4(&e);
            if let Some(s) = ip.and_then(|ip| subnets.iter().find(|s| s.net.contains(&ip.addr()))) {
                e.routes.push(Route {
                    next_hop: s.gateway.to_string(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                });
            }
        }

        // MAC: a given one is checked, a missing one comes from the network's pool.
        let macs: HashSet<u64> = siblings
            .iter()
            .filter_map(|o| ipam::parse_mac(&o.doc.mac_address))
            .collect();
        if e.mac_address.is_empty() {
            let ranges = ipam::mac_ranges(&net.doc.mac_pool)?;
            e.mac_address = ipam::format_mac(ipam::allocate_mac(&ranges, &macs)?);
        } else {
            let m = ipam::parse_mac(&e.mac_address).ok_or_else(|| {
                fail(
                    HCN_E_INVALID_ENDPOINT,
                    format!("MacAddress {:?}", e.mac_address),
                )
            })?;
            if macs.contains(&m) {
                return Err(fail(
                    HCN_E_INVALID_ENDPOINT,
                    format!("MacAddress {} is used by another endpoint", e.mac_address),
                ));
            }
            e.mac_address = ipam::format_mac(m);
        }
        if e.dns == Default::default() {
            e.dns = net.doc.dns.clone();
        }
        if e.schema_version == Default::default() {
            e.schema_version = V2_SCHEMA_VERSION;
        }
        e.id = id.clone();
        e.host_compute_network = net_id;

        let index = st.meta.next_index;
        st.meta.next_index += 1;
        let rules = has_rules(&e.policies);
        let rec = Record {
            doc: e,
            extra: EndpointExtra {
                index,
                state: crate::v1::endpoint_state::CREATED,
                ..Default::default()
            },
        };
        self.persist_meta(&st)?;
        self.persist("endpoints", &id, &rec)?;
        let net_id = rec.doc.host_compute_network.clone();
        st.endpoints.insert(id.clone(), rec);
        if remote {
            if let Err(e) = self.sync_overlay(&st, &net_id) {
                st.endpoints.remove(&id);
                self.unpersist("endpoints", &id)?;
                return Err(e);
            }
        }
        if rules {
            if let Err(e) = self.sync_rules(&st) {
                st.endpoints.remove(&id);
                self.unpersist("endpoints", &id)?;
                return Err(e);
            }
        }
        Ok(id)
    }

    pub(super) fn modify_endpoint(&self, id: &str, settings: &str) -> Res<()> {
        let req: ModifyEndpointSettingRequest = decode("endpoint modify request", settings)?;
        let mut st = self.lock();
        let rec = st
            .endpoints
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::Endpoint, id))?
            .clone();
        if req.resource_type != EndpointResourceType::Policy {
            return Err(fail(
                HCN_E_REQUEST_UNSUPPORTED,
                format!("endpoint modify of {}", req.resource_type),
            ));
        }
        let raw = req.settings.as_ref().map(|s| s.get()).unwrap_or("{}");
        let p: PolicyEndpointRequest = decode("endpoint policy request", raw)?;
        let mut doc = rec.doc.clone();
        match req.request_type {
            RequestType::Add => doc.policies.extend(p.policies),
            RequestType::Update => doc.policies = p.policies,
            RequestType::Remove => {
                for pol in p.policies {
                    let at = doc.policies.iter().position(|x| *x == pol).ok_or_else(|| {
                        fail(
                            HCN_E_POLICY_NOT_FOUND,
                            format!("{} policy", pol.policy_type),
                        )
                    })?;
                    doc.policies.remove(at);
                }
            }
            ref other => {
                return Err(fail(
                    HCN_E_REQUEST_UNSUPPORTED,
                    format!("endpoint policy request {other}"),
                ))
            }
        }
        let net_type = st
            .networks
            .get(&doc.host_compute_network)
            .map(|n| n.doc.network_type.clone())
            .unwrap_or(NetworkType::Nat);
        check_policies(&st, id, &net_type, &doc.policies)?;
        super::overlay::check_endpoint(&doc)?;
        let rules = has_rules(&doc.policies) || has_rules(&rec.doc.policies);
        let remote = doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0;
        let new = Record {
            doc,
            extra: rec.extra.clone(),
        };
        self.persist("endpoints", id, &new)?;
        st.endpoints.insert(id.to_string(), new);
        let synced = if remote {
            self.sync_overlay(&st, &rec.doc.host_compute_network)
        } else {
            Ok(())
        };
        if rules || synced.is_err() {
            if let Err(e) = synced.and_then(|()| self.sync_rules(&st)) {
                self.persist("endpoints", id, &rec)?;
                st.endpoints.insert(id.to_string(), rec);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Programs the VXLAN of network `net_id` (if it has one) with the state's remote
    /// endpoints.
    fn sync_overlay(&self, st: &State, net_id: &str) -> Res<()> {
        let Some(net) = st.networks.get(net_id) else {
            return Ok(());
        };
        match st.network_spec(&self.tag, net_id, net) {
            Some(spec) if spec.vxlan.is_some() => self
                .dataplane
                .ensure_network(&spec)
                .map_err(|e| fail(E_FAIL, format!("dataplane: {e}"))),
            _ => Ok(()),
        }
    }

    pub(super) fn delete_endpoint(&self, id: &str) -> Res<()> {
        let mut st = self.lock();
        let rec = st
            .endpoints
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::Endpoint, id))?
            .clone();
        let in_lb = st.load_balancers.values().any(|lb| {
            lb.doc
                .host_compute_endpoints
                .iter()
                .any(|e| e.eq_ignore_ascii_case(id))
        });
        let in_route = st.routes.values().any(|r| {
            r.doc
                .host_compute_endpoints
                .iter()
                .any(|e| e.eq_ignore_ascii_case(id))
        });
        if in_lb || in_route {
            return Err(fail(
                HCN_E_ENTITY_HAS_REFERENCES,
                format!("endpoint {id} is used by a load balancer or route"),
            ));
        }
        // An attached endpoint is detached first, as HNS does.
        if !rec.doc.host_compute_namespace.is_empty() {
            self.detach_locked(&mut st, id)?;
        }
        self.unpersist("endpoints", id)?;
        st.endpoints.remove(id);
        if rec.doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0 {
            self.sync_overlay(&st, &rec.doc.host_compute_network)
                .map_err(|e| {
                    fail(
                        E_FAIL,
                        format!(
                            "endpoint deleted, its host's VXLAN entries not updated: {}",
                            e.detail
                        ),
                    )
                })?;
        }
        if has_rules(&rec.doc.policies) {
            self.sync_rules(&st).map_err(|e| {
                fail(
                    E_FAIL,
                    format!("endpoint deleted, rules not updated: {}", e.detail),
                )
            })?;
        }
        Ok(())
    }
}
