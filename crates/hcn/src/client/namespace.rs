//! Namespace functions (`hcnnamespace.go`).

use crate::api::ObjectKind;
use crate::error::{Error, Result};
use crate::raw::RawJson;
use crate::schema::{
    HostComputeNamespace, HostComputeQuery, ModifyNamespaceSettingRequest,
    NamespaceEndpointRequest, NamespaceResourceContainer, NamespaceResourceEndpoint,
    NamespaceResourceType, NamespaceType, RequestType, V2_SCHEMA_VERSION,
};

use super::{to_json, Hcn};

/// `NewNamespace(type)`: a namespace of `namespace_type` with schema version 2.0.
pub fn new_namespace(namespace_type: NamespaceType) -> HostComputeNamespace {
    HostComputeNamespace {
        namespace_type,
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    }
}

impl Hcn {
    /// `ListNamespaces`.
    pub fn list_namespaces(&self) -> Result<Vec<HostComputeNamespace>> {
        self.enumerate(&HostComputeQuery::default())
    }

    /// `ListNamespacesQuery`.
    pub fn list_namespaces_query(
        &self,
        query: &HostComputeQuery,
    ) -> Result<Vec<HostComputeNamespace>> {
        self.enumerate(query)
    }

    /// `GetNamespaceByID`: `NamespaceNotFoundError` when there is none.
    pub fn get_namespace_by_id(&self, id: &str) -> Result<HostComputeNamespace> {
        self.find(&HostComputeQuery::by_id(id))?
            .ok_or_else(|| Error::NamespaceNotFound {
                namespace_id: id.to_string(),
            })
    }

    /// `(*HostComputeNamespace).Create`.
    pub fn create_namespace(
        &self,
        namespace: &HostComputeNamespace,
    ) -> Result<HostComputeNamespace> {
        self.create(namespace, None)
    }

    /// `(*HostComputeNamespace).Delete`.
    pub fn delete_namespace(&self, id: &str) -> Result<()> {
        self.delete(ObjectKind::Namespace, id)
    }

    fn namespace_resource_ids(&self, id: &str, want: NamespaceResourceType) -> Result<Vec<String>> {
        let namespace = self.get_namespace_by_id(id)?;
        let mut ids = Vec::new();
        for resource in namespace
            .resources
            .iter()
            .filter(|r| r.resource_type == want)
        {
            let rid = match want {
                NamespaceResourceType::Container => resource
                    .data
                    .decode::<NamespaceResourceContainer>()
                    .map(|c| c.id),
                _ => resource
                    .data
                    .decode::<NamespaceResourceEndpoint>()
                    .map(|e| e.id),
            }
            .map_err(|e| Error::response("hcnQueryNamespaceProperties", e))?;
            ids.push(rid);
        }
        Ok(ids)
    }

    /// `GetNamespaceEndpointIds`.
    pub fn get_namespace_endpoint_ids(&self, id: &str) -> Result<Vec<String>> {
        self.namespace_resource_ids(id, NamespaceResourceType::Endpoint)
    }

    /// `GetNamespaceContainerIds`.
    pub fn get_namespace_container_ids(&self, id: &str) -> Result<Vec<String>> {
        self.namespace_resource_ids(id, NamespaceResourceType::Container)
    }

    /// `ModifyNamespaceSettings`.
    pub fn modify_namespace_settings(
        &self,
        id: &str,
        request: &ModifyNamespaceSettingRequest,
    ) -> Result<HostComputeNamespace> {
        self.modify(id, &to_json(request)?)
    }

    fn namespace_endpoint_request(
        &self,
        namespace_id: &str,
        request: NamespaceEndpointRequest,
        request_type: RequestType,
    ) -> Result<()> {
        let settings = RawJson::from_value(&request)
            .map_err(|e| Error::InvalidArgument(format!("encode: {e}")))?;
        self.modify_namespace_settings(
            namespace_id,
            &ModifyNamespaceSettingRequest {
                resource_type: NamespaceResourceType::Endpoint,
                request_type,
                settings: Some(settings),
            },
        )
        .map(drop)
    }

    /// `AddNamespaceEndpoint`: `{"EndpointId": "<id>"}` with `Endpoint`/`Add`.
    pub fn add_namespace_endpoint(&self, namespace_id: &str, endpoint_id: &str) -> Result<()> {
        self.namespace_endpoint_request(
            namespace_id,
            NamespaceEndpointRequest {
                endpoint_id: endpoint_id.to_string(),
                ..Default::default()
            },
            RequestType::Add,
        )
    }

    /// hnsd extension of [`Hcn::add_namespace_endpoint`]: also names the interface inside the
    /// network namespace (`InterfaceName`; a CNI plugin passes `CNI_IFNAME`). Windows ignores
    /// unknown keys of this request.
    pub fn add_namespace_endpoint_named(
        &self,
        namespace_id: &str,
        endpoint_id: &str,
        interface_name: &str,
    ) -> Result<()> {
        self.namespace_endpoint_request(
            namespace_id,
            NamespaceEndpointRequest {
                endpoint_id: endpoint_id.to_string(),
                interface_name: interface_name.to_string(),
            },
            RequestType::Add,
        )
    }

    /// `RemoveNamespaceEndpoint`.
    pub fn remove_namespace_endpoint(&self, namespace_id: &str, endpoint_id: &str) -> Result<()> {
        self.namespace_endpoint_request(
            namespace_id,
            NamespaceEndpointRequest {
                endpoint_id: endpoint_id.to_string(),
                ..Default::default()
            },
            RequestType::Remove,
        )
    }
}
