//! Load balancers and SDN routes.
//!
//! A load balancer is DNAT from each frontend (VIP, port) to its endpoints; an SDN route is
//! kept as state (it means VFP rules on Windows; hnsd has no overlay encapsulation).

use std::net::IpAddr;

use crate::api::ObjectKind;
use crate::hresult::{
    ERROR_ALREADY_EXISTS, HCN_E_ENDPOINT_NOT_FOUND, HCN_E_INVALID_INTERNAL_PORT, HCN_E_INVALID_IP,
    HCN_E_INVALID_POLICY, HCN_E_INVALID_PREFIX, HCN_E_POLICY_ALREADY_EXISTS,
};
use crate::schema::{HostComputeLoadBalancer, HostComputeRoute, V2_SCHEMA_VERSION};

use super::fail::{fail, Res};
use super::state::{Record, State};
use super::{canon_id, decode, not_found, Engine};

fn check_endpoints(st: &State, ids: &mut [String]) -> Res<()> {
    for id in ids.iter_mut() {
        let c = canon_id(id)?;
        if !st.endpoints.contains_key(&c) {
            return Err(fail(HCN_E_ENDPOINT_NOT_FOUND, format!("endpoint {c}")));
        }
        *id = c;
    }
    Ok(())
}

fn check_load_balancer(st: &State, id: &str, lb: &mut HostComputeLoadBalancer) -> Res<()> {
    check_endpoints(st, &mut lb.host_compute_endpoints)?;
    if lb.port_mappings.is_empty() {
        return Err(fail(
            HCN_E_INVALID_POLICY,
            "a load balancer needs PortMappings",
        ));
    }
    for v in lb
        .frontend_vips
        .iter()
        .chain(std::iter::once(&lb.source_vip).filter(|v| !v.is_empty()))
    {
        if v.parse::<IpAddr>().is_err() {
            return Err(fail(HCN_E_INVALID_IP, format!("VIP {v:?}")));
        }
    }
    for pm in &lb.port_mappings {
        if pm.protocol != 6 && pm.protocol != 17 {
            return Err(fail(
                HCN_E_INVALID_POLICY,
                format!("load balancer protocol {} (TCP 6 or UDP 17)", pm.protocol),
            ));
        }
        if pm.internal_port == 0 {
            return Err(fail(HCN_E_INVALID_INTERNAL_PORT, "InternalPort is 0"));
        }
        let clash = st
            .load_balancers
            .iter()
            .filter(|(o, _)| *o != id)
            .any(|(_, o)| {
                o.doc.port_mappings.iter().any(|q| {
                    q.protocol == pm.protocol
                        && q.external_port == pm.external_port
                        && (o.doc.frontend_vips.is_empty()
                            || lb.frontend_vips.is_empty()
                            || o.doc
                                .frontend_vips
                                .iter()
                                .any(|v| lb.frontend_vips.contains(v)))
                })
            });
        if clash {
            return Err(fail(
                HCN_E_POLICY_ALREADY_EXISTS,
                format!(
                    "another load balancer serves protocol {} port {}",
                    pm.protocol, pm.external_port
                ),
            ));
        }
    }
    if lb.frontend_vips.is_empty() {
        let taken = super::endpoint::claimed_ports(st, "");
        if let Some(pm) = lb.port_mappings.iter().find(|pm| {
            taken
                .iter()
                .any(|t| t.0 == pm.protocol && t.1 == pm.external_port)
        }) {
            return Err(fail(
                crate::hresult::HCN_E_PORT_ALREADY_EXISTS,
                format!("port {} is mapped to an endpoint", pm.external_port),
            ));
        }
    }
    if lb.schema_version == Default::default() {
        lb.schema_version = V2_SCHEMA_VERSION;
    }
    lb.id = id.to_string();
    Ok(())
}

fn check_route(st: &State, id: &str, r: &mut HostComputeRoute) -> Res<()> {
    check_endpoints(st, &mut r.host_compute_endpoints)?;
    if r.setting.is_empty() {
        return Err(fail(HCN_E_INVALID_POLICY, "a route needs a Setting"));
    }
    for s in &r.setting {
        if s.destination_prefix.parse::<ipnet::IpNet>().is_err() {
            return Err(fail(
                HCN_E_INVALID_PREFIX,
                format!("DestinationPrefix {:?}", s.destination_prefix),
            ));
        }
        if !s.next_hop.is_empty() && s.next_hop.parse::<IpAddr>().is_err() {
            return Err(fail(HCN_E_INVALID_IP, format!("NextHop {:?}", s.next_hop)));
        }
    }
    if r.schema_version == Default::default() {
        r.schema_version = V2_SCHEMA_VERSION;
    }
    r.id = id.to_string();
    Ok(())
}

impl Engine {
    pub(super) fn create_load_balancer(&self, id: String, settings: &str) -> Res<String> {
        let mut lb: HostComputeLoadBalancer = decode("load balancer", settings)?;
        let mut st = self.lock();
        if st.load_balancers.contains_key(&id) {
            return Err(fail(ERROR_ALREADY_EXISTS, format!("load balancer {id}")));
        }
        check_load_balancer(&st, &id, &mut lb)?;
        let rec = Record { doc: lb, extra: () };
        self.persist("loadbalancers", &id, &rec)?;
        st.load_balancers.insert(id.clone(), rec);
        if let Err(e) = self.sync_rules(&st) {
            st.load_balancers.remove(&id);
            self.unpersist("loadbalancers", &id)?;
            return Err(e);
        }
        Ok(id)
    }

    pub(super) fn modify_load_balancer(&self, id: &str, settings: &str) -> Res<()> {
        let mut lb: HostComputeLoadBalancer = decode("load balancer", settings)?;
        let mut st = self.lock();
        let old = st
            .load_balancers
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::LoadBalancer, id))?
            .clone();
        check_load_balancer(&st, id, &mut lb)?;
        let rec = Record { doc: lb, extra: () };
        self.persist("loadbalancers", id, &rec)?;
        st.load_balancers.insert(id.to_string(), rec);
        if let Err(e) = self.sync_rules(&st) {
            self.persist("loadbalancers", id, &old)?;
            st.load_balancers.insert(id.to_string(), old);
            return Err(e);
        }
        Ok(())
    }

    pub(super) fn delete_load_balancer(&self, id: &str) -> Res<()> {
        let mut st = self.lock();
        if !st.load_balancers.contains_key(id) {
            return Err(not_found(ObjectKind::LoadBalancer, id));
        }
        self.unpersist("loadbalancers", id)?;
        st.load_balancers.remove(id);
        self.sync_rules(&st)
    }

    pub(super) fn create_route(&self, id: String, settings: &str) -> Res<String> {
        let mut r: HostComputeRoute = decode("route", settings)?;
        let mut st = self.lock();
        if st.routes.contains_key(&id) {
            return Err(fail(ERROR_ALREADY_EXISTS, format!("route {id}")));
        }
        check_route(&st, &id, &mut r)?;
        let rec = Record { doc: r, extra: () };
        self.persist("routes", &id, &rec)?;
        st.routes.insert(id.clone(), rec);
        Ok(id)
    }

    pub(super) fn modify_route(&self, id: &str, settings: &str) -> Res<()> {
        let mut r: HostComputeRoute = decode("route", settings)?;
        let mut st = self.lock();
        if !st.routes.contains_key(id) {
            return Err(not_found(ObjectKind::Route, id));
        }
        check_route(&st, id, &mut r)?;
        let rec = Record { doc: r, extra: () };
        self.persist("routes", id, &rec)?;
        st.routes.insert(id.to_string(), rec);
        Ok(())
    }

    pub(super) fn delete_route(&self, id: &str) -> Res<()> {
        let mut st = self.lock();
        if !st.routes.contains_key(id) {
            return Err(not_found(ObjectKind::Route, id));
        }
        self.unpersist("routes", id)?;
        st.routes.remove(id);
        Ok(())
    }
}
