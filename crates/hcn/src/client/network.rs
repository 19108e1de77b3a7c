//! Network functions (`hcnnetwork.go`).

use crate::api::ObjectKind;
use crate::error::{Error, Result};
use crate::raw::RawJson;
use crate::schema::{
    HostComputeEndpoint, HostComputeNetwork, HostComputeQuery, ModifyNetworkSettingRequest,
    NetworkPolicy, NetworkResourceType, PolicyNetworkRequest, RequestType,
    ENDPOINT_FLAG_REMOTE_ENDPOINT,
};

use super::{to_json, Hcn};

/// The client-side checks of `(*HostComputeNetwork).Create`: every subnet with a prefix has
/// routes with a next hop, one of them a default route.
pub fn validate_network_create(network: &HostComputeNetwork) -> Result<()> {
    for ipam in &network.ipams {
        for subnet in &ipam.subnets {
            if subnet.ip_address_prefix.is_empty() {
                continue;
            }
            let mut has_default = false;
            for route in &subnet.routes {
                if route.next_hop.is_empty() {
                    return Err(Error::InvalidArgument(
                        "network create error, subnet has address prefix but no gateway specified"
                            .into(),
                    ));
                }
                if route.destination_prefix == "0.0.0.0/0" || route.destination_prefix == "::/0" {
                    has_default = true;
                }
            }
            if !has_default {
                return Err(Error::InvalidArgument(
                    "network create error, no default gateway".into(),
                ));
            }
        }
    }
    Ok(())
}

impl Hcn {
    /// `ListNetworks`.
    pub fn list_networks(&self) -> Result<Vec<HostComputeNetwork>> {
        self.enumerate(&HostComputeQuery::default())
    }

    /// `ListNetworksQuery`.
    pub fn list_networks_query(&self, query: &HostComputeQuery) -> Result<Vec<HostComputeNetwork>> {
        self.enumerate(query)
    }

    /// `GetNetworkByID`: `NetworkNotFoundError{NetworkID}` when there is none.
    pub fn get_network_by_id(&self, id: &str) -> Result<HostComputeNetwork> {
        self.find(&HostComputeQuery::by_id(id))?
            .ok_or_else(|| Error::NetworkNotFound {
                network_name: String::new(),
                network_id: id.to_string(),
            })
    }

    /// `GetNetworkByName`: `NetworkNotFoundError{NetworkName}` when there is none.
    pub fn get_network_by_name(&self, name: &str) -> Result<HostComputeNetwork> {
        self.find(&HostComputeQuery::by_name(name))?
            .ok_or_else(|| Error::NetworkNotFound {
                network_name: name.to_string(),
                network_id: String::new(),
            })
    }

    /// `(*HostComputeNetwork).Create`: the created network (with its `ID`).
    pub fn create_network(&self, network: &HostComputeNetwork) -> Result<HostComputeNetwork> {
        validate_network_create(network)?;
        self.create(network, None)
    }

    /// `(*HostComputeNetwork).Delete`.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.delete(ObjectKind::Network, id)
    }

    /// `(*HostComputeNetwork).ModifyNetworkSettings`.
    pub fn modify_network_settings(
        &self,
        id: &str,
        request: &ModifyNetworkSettingRequest,
    ) -> Result<HostComputeNetwork> {
        self.modify(id, &to_json(request)?)
    }

    fn network_policy_request(
        &self,
        id: &str,
        request_type: RequestType,
        policies: Vec<NetworkPolicy>,
    ) -> Result<HostComputeNetwork> {
        let settings = RawJson::from_value(&PolicyNetworkRequest { policies })
            .map_err(|e| Error::InvalidArgument(format!("encode: {e}")))?;
        self.modify_network_settings(
            id,
            &ModifyNetworkSettingRequest {
                resource_type: NetworkResourceType::Policy,
                request_type,
                settings: Some(settings),
            },
        )
    }

    /// `(*HostComputeNetwork).AddPolicy`.
    pub fn add_network_policy(
        &self,
        id: &str,
        policies: Vec<NetworkPolicy>,
    ) -> Result<HostComputeNetwork> {
        self.network_policy_request(id, RequestType::Add, policies)
    }

    /// `(*HostComputeNetwork).RemovePolicy`.
    pub fn remove_network_policy(
        &self,
        id: &str,
        policies: Vec<NetworkPolicy>,
    ) -> Result<HostComputeNetwork> {
        self.network_policy_request(id, RequestType::Remove, policies)
    }

    /// `(*HostComputeNetwork).CreateEndpoint`: sets `HostComputeNetwork` to the network's id.
    pub fn create_endpoint(
        &self,
        network: &HostComputeNetwork,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeEndpoint> {
        let mut endpoint = endpoint.clone();
        endpoint.host_compute_network = network.id.clone();
        self.create_endpoint_document(&endpoint)
    }

    /// `(*HostComputeNetwork).CreateRemoteEndpoint`: adds flag `RemoteEndpoint`.
    pub fn create_remote_endpoint(
        &self,
        network: &HostComputeNetwork,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeEndpoint> {
        let mut endpoint = endpoint.clone();
        endpoint.flags |= ENDPOINT_FLAG_REMOTE_ENDPOINT;
        self.create_endpoint(network, &endpoint)
    }
}
