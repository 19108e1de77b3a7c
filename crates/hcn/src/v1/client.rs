//! [`Hns`]: the reference's HNS v1 functions (`internal/hns`, root `hns*.go`) over a backend.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::HcnApi;
use crate::error::{Error, Result};
use crate::raw::RawJson;
use crate::schema::Version;
use crate::support::{self, HnsSupportedFeatures};

use super::{
    hns_request, AclPolicy, ElbPolicy, EndpointAttachDetachRequest, EndpointStats, HnsEndpoint,
    HnsNetwork, MacAddressList, NamespaceEndpointData, NamespaceRequest, NamespaceResourceRequest,
    NamespaceResponse, PolicyList, PolicyType, ProxyPolicy, RoutePolicy, SystemType,
};

/// The HNS v1 client.
#[derive(Debug, Clone)]
pub struct Hns {
    api: Arc<dyn HcnApi>,
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::InvalidArgument(format!("encode: {e}")))
}

fn raw<T: Serialize>(value: &T) -> Result<RawJson> {
    RawJson::from_value(value).map_err(|e| Error::InvalidArgument(format!("encode: {e}")))
}

/// The decoded `Output`; an empty one is success with the zero value, as the reference's
/// requests decode nothing into their zero-valued object.
fn or_zero<T: Default>(value: Option<T>) -> T {
    value.unwrap_or_default()
}

fn required<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| Error::response(super::HNS_CALL_OP, format!("no {what} in the response")))
}

impl Hns {
    /// A client of `api`.
    pub fn new(api: Arc<dyn HcnApi>) -> Self {
        Self { api }
    }

    /// The client of this host's HNS (see [`crate::Hcn::system`]).
    pub fn system() -> Result<Self> {
        crate::sys::default_api().map(Self::new)
    }

    /// One request: the decoded `Output`.
    pub fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        request: &str,
    ) -> Result<Option<T>> {
        hns_request(self.api.as_ref(), method, path, request)
    }

    // ---- networks ----

    /// `HNSNetworkRequest(method, path, request)`.
    pub fn network_request(&self, method: &str, path: &str, request: &str) -> Result<HnsNetwork> {
        Ok(or_zero(self.request(
            method,
            &format!("/networks/{path}"),
            request,
        )?))
    }

    /// `HNSListNetworkRequest(method, path, request)`.
    pub fn list_network_request(
        &self,
        method: &str,
        path: &str,
        request: &str,
    ) -> Result<Vec<HnsNetwork>> {
        Ok(self
            .request(method, &format!("/networks/{path}"), request)?
            .unwrap_or_default())
    }

    /// `GetHNSNetworkByID`.
    pub fn get_network_by_id(&self, id: &str) -> Result<HnsNetwork> {
        self.network_request("GET", id, "")
    }

    /// `GetHNSNetworkByName`: lists and filters on the client; `NetworkNotFoundError`.
    pub fn get_network_by_name(&self, name: &str) -> Result<HnsNetwork> {
        self.list_network_request("GET", "", "")?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::HnsNetworkNotFound {
                network_name: name.to_string(),
            })
    }

    /// `(*HNSNetwork).Create`: refuses a subnet with a prefix but no gateway.
    pub fn create_network(&self, network: &HnsNetwork) -> Result<HnsNetwork> {
        for s in &network.subnets {
            if !s.address_prefix.is_empty() && s.gateway_address.is_empty() {
                return Err(Error::InvalidArgument(
                    "network create error, subnet has address prefix but no gateway specified"
                        .into(),
                ));
            }
        }
        self.network_request("POST", "", &to_json(network)?)
    }

    /// `(*HNSNetwork).Delete`.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.request::<serde_json::Value>("DELETE", &format!("/networks/{id}"), "")
            .map(drop)
    }

    /// `(*HNSNetwork).NewEndpoint(ip, mac)`: an endpoint document on this network (not
    /// created).
    pub fn new_endpoint(network: &HnsNetwork, ip: &str, mac: &str) -> HnsEndpoint {
        HnsEndpoint {
            virtual_network: network.id.clone(),
            ip_address: ip.to_string(),
            mac_address: mac.to_string(),
            ..Default::default()
        }
    }

    /// `(*HNSNetwork).CreateEndpoint`: sets `VirtualNetwork` and creates.
    pub fn network_create_endpoint(
        &self,
        network: &HnsNetwork,
        endpoint: &HnsEndpoint,
    ) -> Result<HnsEndpoint> {
        let mut endpoint = endpoint.clone();
        endpoint.virtual_network = network.id.clone();
        self.create_endpoint(&endpoint)
    }

    /// `(*HNSNetwork).CreateRemoteEndpoint`: also sets `IsRemoteEndpoint`.
    pub fn network_create_remote_endpoint(
        &self,
        network: &HnsNetwork,
        endpoint: &HnsEndpoint,
    ) -> Result<HnsEndpoint> {
        let mut endpoint = endpoint.clone();
        endpoint.is_remote_endpoint = true;
        self.network_create_endpoint(network, &endpoint)
    }

    // ---- endpoints ----

    /// `HNSEndpointRequest(method, path, request)`.
    pub fn endpoint_request(&self, method: &str, path: &str, request: &str) -> Result<HnsEndpoint> {
        Ok(or_zero(self.request(
            method,
            &format!("/endpoints/{path}"),
            request,
        )?))
    }

    /// `HNSListEndpointRequest()`.
    pub fn list_endpoint_request(&self) -> Result<Vec<HnsEndpoint>> {
        Ok(self.request("GET", "/endpoints/", "")?.unwrap_or_default())
    }

    /// `GetHNSEndpointByID`.
    pub fn get_endpoint_by_id(&self, id: &str) -> Result<HnsEndpoint> {
        self.endpoint_request("GET", id, "")
    }

    /// `GetHNSEndpointByName`: `EndpointNotFoundError` when there is none.
    pub fn get_endpoint_by_name(&self, name: &str) -> Result<HnsEndpoint> {
        self.list_endpoint_request()?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Error::HnsEndpointNotFound {
                endpoint_name: name.to_string(),
            })
    }

    /// `(*HNSEndpoint).Create`.
    pub fn create_endpoint(&self, endpoint: &HnsEndpoint) -> Result<HnsEndpoint> {
        self.endpoint_request("POST", "", &to_json(endpoint)?)
    }

    /// `(*HNSEndpoint).Update`: POST of the full object to `/endpoints/<id>`.
    pub fn update_endpoint(&self, endpoint: &HnsEndpoint) -> Result<HnsEndpoint> {
        self.endpoint_request("POST", &endpoint.id, &to_json(endpoint)?)
    }

    /// `(*HNSEndpoint).Delete`.
    pub fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.request::<serde_json::Value>("DELETE", &format!("/endpoints/{id}"), "")
            .map(drop)
    }

    /// `(*HNSEndpoint).ApplyACLPolicy`: appends the policies and updates.
    pub fn apply_acl_policy(
        &self,
        endpoint: &HnsEndpoint,
        policies: &[AclPolicy],
    ) -> Result<HnsEndpoint> {
        let mut endpoint = endpoint.clone();
        for p in policies {
            let mut p = p.clone();
            p.policy_type = PolicyType::Acl;
            endpoint.policies.push(raw(&p)?);
        }
        self.update_endpoint(&endpoint)
    }

    /// `(*HNSEndpoint).ApplyProxyPolicy`: appends the policies and updates.
    pub fn apply_proxy_policy(
        &self,
        endpoint: &HnsEndpoint,
        policies: &[ProxyPolicy],
    ) -> Result<HnsEndpoint> {
        let mut endpoint = endpoint.clone();
        for p in policies {
            let mut p = p.clone();
            p.policy_type = PolicyType::Proxy;
            endpoint.policies.push(raw(&p)?);
        }
        self.update_endpoint(&endpoint)
    }

    fn attach_detach(
        &self,
        id: &str,
        verb: &str,
        request: &EndpointAttachDetachRequest,
    ) -> Result<()> {
        self.request::<serde_json::Value>(
            "POST",
            &format!("/endpoints/{id}/{verb}"),
            &to_json(request)?,
        )
        .map(drop)
    }

    /// `(*HNSEndpoint).ContainerAttach(containerID, compartmentID)`.
    pub fn container_attach(
        &self,
        endpoint_id: &str,
        container_id: &str,
        compartment_id: u16,
    ) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "attach",
            &EndpointAttachDetachRequest {
                container_id: container_id.to_string(),
                system_type: SystemType::Container,
                compartment_id,
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).ContainerDetach(containerID)`.
    pub fn container_detach(&self, endpoint_id: &str, container_id: &str) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "detach",
            &EndpointAttachDetachRequest {
                container_id: container_id.to_string(),
                system_type: SystemType::Container,
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).HostAttach(compartmentID)`.
    pub fn host_attach(&self, endpoint_id: &str, compartment_id: u16) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "attach",
            &EndpointAttachDetachRequest {
                system_type: SystemType::Host,
                compartment_id,
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).HostDetach()`.
    pub fn host_detach(&self, endpoint_id: &str) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "detach",
            &EndpointAttachDetachRequest {
                system_type: SystemType::Host,
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).VirtualMachineNICAttach(nicName)`.
    pub fn virtual_machine_nic_attach(&self, endpoint_id: &str, nic_name: &str) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "attach",
            &EndpointAttachDetachRequest {
                system_type: SystemType::VirtualMachine,
                virtual_nic_name: nic_name.to_string(),
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).VirtualMachineNICDetach()`.
    pub fn virtual_machine_nic_detach(&self, endpoint_id: &str) -> Result<()> {
        self.attach_detach(
            endpoint_id,
            "detach",
            &EndpointAttachDetachRequest {
                system_type: SystemType::VirtualMachine,
                ..Default::default()
            },
        )
    }

    /// `(*HNSEndpoint).IsAttached(containerID)`: a case-insensitive search for the container
    /// id among `SharedContainers`.
    pub fn is_attached(&self, endpoint_id: &str, container_id: &str) -> Result<bool> {
        let ep = self.get_endpoint_by_id(endpoint_id)?;
        let want = container_id.to_ascii_lowercase();
        Ok(ep
            .shared_containers
            .iter()
            .any(|c| c.to_ascii_lowercase().contains(&want)))
    }

    /// `GetHNSEndpointStats`.
    pub fn get_endpoint_stats(&self, id: &str) -> Result<EndpointStats> {
        Ok(or_zero(self.request(
            "GET",
            &format!("/endpointstats/{id}"),
            "",
        )?))
    }

    // ---- policy lists ----

    /// `HNSPolicyListRequest(method, path, request)`.
    pub fn policy_list_request(
        &self,
        method: &str,
        path: &str,
        request: &str,
    ) -> Result<PolicyList> {
        Ok(or_zero(self.request(
            method,
            &format!("/policylists/{path}"),
            request,
        )?))
    }

    /// `HNSListPolicyListRequest()`.
    pub fn list_policy_list_request(&self) -> Result<Vec<PolicyList>> {
        Ok(self
            .request("GET", "/policylists/", "")?
            .unwrap_or_default())
    }

    /// `GetPolicyListByID`.
    pub fn get_policy_list_by_id(&self, id: &str) -> Result<PolicyList> {
        self.policy_list_request("GET", id, "")
    }

    /// `(*PolicyList).Create`.
    pub fn create_policy_list(&self, list: &PolicyList) -> Result<PolicyList> {
        self.policy_list_request("POST", "", &to_json(list)?)
    }

    /// `(*PolicyList).Delete`.
    pub fn delete_policy_list(&self, id: &str) -> Result<()> {
        self.request::<serde_json::Value>("DELETE", &format!("/policylists/{id}"), "")
            .map(drop)
    }

    /// `(*PolicyList).AddEndpoint`: delete and recreate with `/endpoints/<id>` added.
    pub fn policy_list_add_endpoint(
        &self,
        list: &PolicyList,
        endpoint_id: &str,
    ) -> Result<PolicyList> {
        self.delete_policy_list(&list.id)?;
        let mut list = list.clone();
        list.endpoint_references
            .push(format!("/endpoints/{endpoint_id}"));
        self.create_policy_list(&list)
    }

    /// `(*PolicyList).RemoveEndpoint`: delete and recreate without the reference.
    pub fn policy_list_remove_endpoint(
        &self,
        list: &PolicyList,
        endpoint_id: &str,
    ) -> Result<PolicyList> {
        self.delete_policy_list(&list.id)?;
        let mut list = list.clone();
        let reference = format!("/endpoints/{endpoint_id}");
        list.endpoint_references.retain(|r| *r != reference);
        self.create_policy_list(&list)
    }

    /// `AddLoadBalancer(endpoints, isILB, sourceVIP, vip, protocol, internalPort,
    /// externalPort)`: a policy list with one ELB policy.
    #[allow(clippy::too_many_arguments)] // the reference's signature
    pub fn add_load_balancer(
        &self,
        endpoint_ids: &[String],
        is_ilb: bool,
        source_vip: &str,
        vip: &str,
        protocol: u16,
        internal_port: u16,
        external_port: u16,
    ) -> Result<PolicyList> {
        let elb = ElbPolicy {
            policy_type: PolicyType::ExternalLoadBalancer,
            protocol,
            internal_port,
            external_port,
            source_vip: source_vip.to_string(),
            vips: if vip.is_empty() {
                Vec::new()
            } else {
                vec![vip.to_string()]
            },
            ilb: is_ilb,
            dsr: false,
        };
        let list = PolicyList {
            endpoint_references: endpoint_ids
                .iter()
                .map(|id| format!("/endpoints/{id}"))
                .collect(),
            policies: vec![raw(&elb)?],
            ..Default::default()
        };
        self.create_policy_list(&list)
    }

    /// `AddRoute(endpoints, destinationPrefix, nextHop, encapEnabled)`.
    pub fn add_route(
        &self,
        endpoint_ids: &[String],
        destination_prefix: &str,
        next_hop: &str,
        encap_enabled: bool,
    ) -> Result<PolicyList> {
        let route = RoutePolicy {
            policy_type: PolicyType::Route,
            destination_prefix: destination_prefix.to_string(),
            next_hop: next_hop.to_string(),
            encap_enabled,
        };
        let list = PolicyList {
            endpoint_references: endpoint_ids
                .iter()
                .map(|id| format!("/endpoints/{id}"))
                .collect(),
            policies: vec![raw(&route)?],
            ..Default::default()
        };
        self.create_policy_list(&list)
    }

    // ---- globals ----

    /// `GetHNSGlobals`: `{"Version": {Major, Minor}}`.
    pub fn get_globals(&self) -> Result<crate::Globals> {
        let version: Version = or_zero(self.request("GET", "/globals/version", "")?);
        Ok(crate::Globals { version })
    }

    /// `GetHNSSupportedFeatures`: every ACL feature from 7.2; all off when the version query
    /// fails.
    pub fn get_supported_features(&self) -> HnsSupportedFeatures {
        match self.get_globals() {
            Ok(g) => support::hns_supported_features(Some(g.version)),
            Err(e) => {
                tracing::warn!(error = %e, "HNS version query failed; no feature is supported");
                support::hns_supported_features(None)
            }
        }
    }

    // ---- namespaces (v1) ----

    /// `CreateNamespace()`: the new namespace's id.
    pub fn create_namespace(&self) -> Result<String> {
        let ns: NamespaceResponse = required(
            self.request(
                "POST",
                "/namespaces/",
                &to_json(&NamespaceRequest::default())?,
            )
            .map_err(|e| Self::namespace_err(e, ""))?,
            "namespace",
        )?;
        Ok(ns.id)
    }

    /// Maps a v1 namespace call's error whose text has "Element not found." (an HNS
    /// answer or the HNSCall itself) to a not-found error of namespace `id`, as the
    /// reference maps it to `os.ErrNotExist`.
    fn namespace_err(e: Error, id: &str) -> Error {
        if e.to_string().contains("Element not found.") {
            Error::NamespaceNotFound {
                namespace_id: id.to_string(),
            }
        } else {
            e
        }
    }

    /// `RemoveNamespace(id)`.
    pub fn remove_namespace(&self, id: &str) -> Result<()> {
        self.request::<serde_json::Value>("DELETE", &format!("/namespaces/{id}"), "")
            .map(drop)
            .map_err(|e| Self::namespace_err(e, id))
    }

    /// `GetNamespaceEndpoints(id)`: the endpoint ids in the namespace.
    pub fn get_namespace_endpoints(&self, id: &str) -> Result<Vec<String>> {
        let ns: NamespaceResponse = required(
            self.request("GET", &format!("/namespaces/{id}"), "")
                .map_err(|e| Self::namespace_err(e, id))?,
            "namespace",
        )?;
        let mut ids = Vec::new();
        for r in ns
            .resource_list
            .iter()
            .filter(|r| r.resource_type == "Endpoint")
        {
            if let Some(data) = &r.data {
                let d: NamespaceEndpointData = data
                    .decode()
                    .map_err(|e| Error::response(super::HNS_CALL_OP, e))?;
                ids.push(d.id);
            }
        }
        Ok(ids)
    }

    fn namespace_resource(&self, id: &str, verb: &str, endpoint_id: &str) -> Result<()> {
        let req = NamespaceResourceRequest {
            resource_type: "Endpoint".into(),
            data: NamespaceEndpointData {
                id: endpoint_id.to_string(),
            },
        };
        self.request::<serde_json::Value>(
            "POST",
            &format!("/namespaces/{id}/{verb}"),
            &to_json(&req)?,
        )
        .map(drop)
        .map_err(|e| Self::namespace_err(e, id))
    }

    /// `AddNamespaceEndpoint(id, endpointID)`.
    pub fn add_namespace_endpoint(&self, id: &str, endpoint_id: &str) -> Result<()> {
        self.namespace_resource(id, "addresource", endpoint_id)
    }

    /// `RemoveNamespaceEndpoint(id, endpointID)`.
    pub fn remove_namespace_endpoint(&self, id: &str, endpoint_id: &str) -> Result<()> {
        self.namespace_resource(id, "removeresource", endpoint_id)
    }

    // ---- accelnet ----

    /// `SetNnvManagementMacAddresses`: an empty list is `ErrorEmptyMacAddressList`.
    pub fn set_nnv_management_mac_addresses(&self, macs: &[String]) -> Result<()> {
        if macs.is_empty() {
            return Err(Error::EmptyMacAddressList);
        }
        let list = MacAddressList {
            mac_address_list: macs
                .iter()
                .map(|m| super::MacAddressEntry {
                    mac_address: m.clone(),
                })
                .collect(),
        };
        self.request::<serde_json::Value>("POST", "/accelnet/", &to_json(&list)?)
            .map(drop)
    }

    /// `GetNnvManagementMacAddresses`.
    pub fn get_nnv_management_mac_addresses(&self) -> Result<MacAddressList> {
        Ok(self.request("GET", "/accelnet/", "")?.unwrap_or_default())
    }

    /// `DeleteNnvManagementMacAddresses`.
    pub fn delete_nnv_management_mac_addresses(&self) -> Result<()> {
        self.request::<serde_json::Value>("DELETE", "/accelnet/", "")
            .map(drop)
    }
}
