//! Load balancer functions (`hcnloadbalancer.go`).

use crate::api::ObjectKind;
use crate::error::{Error, Result};
use crate::schema::{
    HostComputeEndpoint, HostComputeLoadBalancer, HostComputeQuery, LoadBalancerPortMapping,
    V2_SCHEMA_VERSION,
};

use super::{to_json, Hcn};

/// The arguments of `AddLoadBalancer`.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancerSpec {
    /// `LoadBalancerFlags`.
    pub flags: u32,
    /// `LoadBalancerPortMappingFlags`.
    pub port_mapping_flags: u32,
    /// The source VIP.
    pub source_vip: String,
    /// The frontend addresses.
    pub frontend_vips: Vec<String>,
    /// IANA protocol number.
    pub protocol: u16,
    /// The endpoints' port.
    pub internal_port: u16,
    /// The frontend port.
    pub external_port: u16,
}

impl Hcn {
    /// `ListLoadBalancers`.
    pub fn list_load_balancers(&self) -> Result<Vec<HostComputeLoadBalancer>> {
        self.enumerate(&HostComputeQuery::default())
    }

    /// `ListLoadBalancersQuery`.
    pub fn list_load_balancers_query(
        &self,
        query: &HostComputeQuery,
    ) -> Result<Vec<HostComputeLoadBalancer>> {
        self.enumerate(query)
    }

    /// `GetLoadBalancerByID`: `LoadBalancerNotFoundError` when there is none.
    pub fn get_load_balancer_by_id(&self, id: &str) -> Result<HostComputeLoadBalancer> {
        self.find(&HostComputeQuery::by_id(id))?
            .ok_or_else(|| Error::LoadBalancerNotFound {
                load_balancer_id: id.to_string(),
            })
    }

    /// `(*HostComputeLoadBalancer).Create`.
    pub fn create_load_balancer(
        &self,
        lb: &HostComputeLoadBalancer,
    ) -> Result<HostComputeLoadBalancer> {
        self.create(lb, None)
    }

    /// `(*HostComputeLoadBalancer).Delete`.
    pub fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.delete(ObjectKind::LoadBalancer, id)
    }

    /// `(*HostComputeLoadBalancer).Update(id)`: `HcnModifyLoadBalancer` with the whole
    /// document. Callers check [`Hcn::modify_loadbalancer_supported`] first, as in the
    /// reference.
    pub fn update_load_balancer(
        &self,
        lb: &HostComputeLoadBalancer,
        id: &str,
    ) -> Result<HostComputeLoadBalancer> {
        self.modify(id, &to_json(lb)?)
    }

    /// `(*HostComputeLoadBalancer).AddEndpoint`: delete and recreate with the endpoint (the
    /// document keeps its `ID`, as the reference's does).
    pub fn load_balancer_add_endpoint(
        &self,
        lb: &HostComputeLoadBalancer,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeLoadBalancer> {
        self.delete_load_balancer(&lb.id)?;
        let mut lb = lb.clone();
        lb.host_compute_endpoints.push(endpoint.id.clone());
        self.create_load_balancer(&lb)
    }

    /// `(*HostComputeLoadBalancer).RemoveEndpoint`: delete and recreate without it.
    pub fn load_balancer_remove_endpoint(
        &self,
        lb: &HostComputeLoadBalancer,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeLoadBalancer> {
        self.delete_load_balancer(&lb.id)?;
        let mut lb = lb.clone();
        lb.host_compute_endpoints
            .retain(|id| !id.eq_ignore_ascii_case(&endpoint.id));
        self.create_load_balancer(&lb)
    }

    /// `AddLoadBalancer(endpoints, flags, portMappingFlags, sourceVIP, frontendVIPs,
    /// protocol, internalPort, externalPort)`.
    pub fn add_load_balancer(
        &self,
        endpoints: &[HostComputeEndpoint],
        spec: &LoadBalancerSpec,
    ) -> Result<HostComputeLoadBalancer> {
        let lb = HostComputeLoadBalancer {
            host_compute_endpoints: endpoints.iter().map(|e| e.id.clone()).collect(),
            source_vip: spec.source_vip.clone(),
            port_mappings: vec![LoadBalancerPortMapping {
                protocol: u32::from(spec.protocol),
                internal_port: spec.internal_port,
                external_port: spec.external_port,
                flags: spec.port_mapping_flags,
                ..Default::default()
            }],
            frontend_vips: spec.frontend_vips.clone(),
            schema_version: V2_SCHEMA_VERSION,
            flags: spec.flags,
            ..Default::default()
        };
        self.create_load_balancer(&lb)
    }
}
