//! Endpoint functions (`hcnendpoint.go`).

use crate::api::ObjectKind;
use crate::error::{Error, Result};
use crate::raw::RawJson;
use crate::schema::{
    EndpointPolicy, EndpointResourceType, HostComputeEndpoint, HostComputeQuery,
    ModifyEndpointSettingRequest, PolicyEndpointRequest, RequestType,
};

use super::{to_json, Hcn};

impl Hcn {
    /// `ListEndpoints`.
    pub fn list_endpoints(&self) -> Result<Vec<HostComputeEndpoint>> {
        self.enumerate(&HostComputeQuery::default())
    }

    /// `ListEndpointsQuery`.
    pub fn list_endpoints_query(
        &self,
        query: &HostComputeQuery,
    ) -> Result<Vec<HostComputeEndpoint>> {
        self.enumerate(query)
    }

    /// `ListEndpointsOfNetwork`: the filter is the v1 field name `VirtualNetwork`.
    pub fn list_endpoints_of_network(&self, network_id: &str) -> Result<Vec<HostComputeEndpoint>> {
        self.enumerate(&HostComputeQuery::filter_by("VirtualNetwork", network_id))
    }

    /// `GetEndpointByID`: `EndpointNotFoundError{EndpointID}` when there is none.
    pub fn get_endpoint_by_id(&self, id: &str) -> Result<HostComputeEndpoint> {
        self.find(&HostComputeQuery::by_id(id))?
            .ok_or_else(|| Error::EndpointNotFound {
                endpoint_name: String::new(),
                endpoint_id: id.to_string(),
            })
    }

    /// `GetEndpointByName`: `EndpointNotFoundError{EndpointName}` when there is none.
    pub fn get_endpoint_by_name(&self, name: &str) -> Result<HostComputeEndpoint> {
        self.find(&HostComputeQuery::by_name(name))?
            .ok_or_else(|| Error::EndpointNotFound {
                endpoint_name: name.to_string(),
                endpoint_id: String::new(),
            })
    }

    /// `(*HostComputeEndpoint).Create`: the endpoint names its network in
    /// `HostComputeNetwork`; `HostComputeNamespace` is read-only and must be empty.
    pub fn create_endpoint_document(
        &self,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeEndpoint> {
        if !endpoint.host_compute_namespace.is_empty() {
            return Err(Error::InvalidArgument(
                "endpoint create error, endpoint json HostComputeNamespace is read only and \
                 should not be set"
                    .into(),
            ));
        }
        let network = endpoint.host_compute_network.clone();
        self.create(endpoint, Some(&network))
    }

    /// `(*HostComputeEndpoint).Delete`.
    pub fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.delete(ObjectKind::Endpoint, id)
    }

    /// `ModifyEndpointSettings`.
    pub fn modify_endpoint_settings(
        &self,
        id: &str,
        request: &ModifyEndpointSettingRequest,
    ) -> Result<HostComputeEndpoint> {
        self.modify(id, &to_json(request)?)
    }

    /// `(*HostComputeEndpoint).ApplyPolicy`.
    pub fn apply_endpoint_policy(
        &self,
        id: &str,
        request_type: RequestType,
        policies: Vec<EndpointPolicy>,
    ) -> Result<HostComputeEndpoint> {
        let settings = RawJson::from_value(&PolicyEndpointRequest { policies })
            .map_err(|e| Error::InvalidArgument(format!("encode: {e}")))?;
        self.modify_endpoint_settings(
            id,
            &ModifyEndpointSettingRequest {
                resource_type: EndpointResourceType::Policy,
                request_type,
                settings: Some(settings),
            },
        )
    }

    /// `(*HostComputeEndpoint).NamespaceAttach`.
    pub fn namespace_attach(&self, endpoint_id: &str, namespace_id: &str) -> Result<()> {
        self.add_namespace_endpoint(namespace_id, endpoint_id)
    }

    /// `(*HostComputeEndpoint).NamespaceDetach`.
    pub fn namespace_detach(&self, endpoint_id: &str, namespace_id: &str) -> Result<()> {
        self.remove_namespace_endpoint(namespace_id, endpoint_id)
    }
}
