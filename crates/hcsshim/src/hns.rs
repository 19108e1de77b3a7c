//! The HNS v1 half of the root package (`hnsendpoint.go`, `hnsnetwork.go`, `hnspolicy.go`,
//! `hnspolicylist.go`, `hnssupport.go`, `hnsglobals.go`, `hnsaccelnet.go`), with Go's type
//! names and Rust's function names.

use hcn::v1::Hns;
use hcs_schema::v1::{RequestType, ResourceModificationRequestResponse, ResourceType};

use crate::{Error, Result};

/// `HNSNetwork`.
pub type HNSNetwork = hcn::v1::HnsNetwork;
/// `HNSEndpoint`.
pub type HNSEndpoint = hcn::v1::HnsEndpoint;
/// `HNSEndpointStats`.
pub type EndpointStats = hcn::v1::EndpointStats;
/// `Subnet`.
pub type Subnet = hcn::v1::Subnet;
/// `MacPool`.
pub type MacPool = hcn::v1::MacPool;
/// `PolicyList`.
pub type PolicyList = hcn::v1::PolicyList;
/// `EndpointAttachDetachRequest`.
pub type EndpointAttachDetachRequest = hcn::v1::EndpointAttachDetachRequest;
/// `Policy`.
pub type Policy = hcn::v1::Policy;
/// `PolicyType`.
pub type PolicyType = hcn::v1::PolicyType;
/// `NatPolicy`.
pub type NatPolicy = hcn::v1::NatPolicy;
/// `QosPolicy`.
pub type QosPolicy = hcn::v1::QosPolicy;
/// `IsolationPolicy`.
pub type IsolationPolicy = hcn::v1::IsolationPolicy;
/// `VlanPolicy`.
pub type VlanPolicy = hcn::v1::VlanPolicy;
/// `VsidPolicy`.
pub type VsidPolicy = hcn::v1::VsidPolicy;
/// `PaPolicy`.
pub type PaPolicy = hcn::v1::PaPolicy;
/// `OutboundNatPolicy`.
pub type OutboundNatPolicy = hcn::v1::OutboundNatPolicy;
/// `ProxyPolicy`.
pub type ProxyPolicy = hcn::v1::ProxyPolicy;
/// `ACLPolicy`.
pub type ACLPolicy = hcn::v1::AclPolicy;
/// `ELBPolicy`.
pub type ELBPolicy = hcn::v1::ElbPolicy;
/// `RoutePolicy`.
pub type RoutePolicy = hcn::v1::RoutePolicy;
/// `HNSGlobals`.
pub type HNSGlobals = hcn::Globals;
/// `HNSSupportedFeatures`.
pub type HNSSupportedFeatures = hcn::support::HnsSupportedFeatures;

/// `hns.EndpointNotFoundError`: `"Endpoint <name> not found"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Endpoint {endpoint_name} not found")]
pub struct EndpointNotFoundError {
    /// The name looked up.
    pub endpoint_name: String,
}

/// `hns.NetworkNotFoundError`: `"Network <name> not found"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Network {network_name} not found")]
pub struct NetworkNotFoundError {
    /// The name looked up.
    pub network_name: String,
}

/// This host's HNS.
pub fn hns() -> Result<Hns> {
    Hns::system().map_err(Error::from)
}

/// `HNSNetworkRequest(method, path, request)`.
pub fn hns_network_request(method: &str, path: &str, request: &str) -> Result<HNSNetwork> {
    Ok(hns()?.network_request(method, path, request)?)
}

/// `HNSListNetworkRequest(method, path, request)`.
pub fn hns_list_network_request(
    method: &str,
    path: &str,
    request: &str,
) -> Result<Vec<HNSNetwork>> {
    Ok(hns()?.list_network_request(method, path, request)?)
}

/// `GetHNSNetworkByID`.
pub fn get_hns_network_by_id(id: &str) -> Result<HNSNetwork> {
    Ok(hns()?.get_network_by_id(id)?)
}

/// `GetHNSNetworkByName`: [`NetworkNotFoundError`] when there is none.
pub fn get_hns_network_by_name(name: &str) -> Result<HNSNetwork> {
    Ok(hns()?.get_network_by_name(name)?)
}

/// `HNSEndpointRequest(method, path, request)`.
pub fn hns_endpoint_request(method: &str, path: &str, request: &str) -> Result<HNSEndpoint> {
    Ok(hns()?.endpoint_request(method, path, request)?)
}

/// `HNSListEndpointRequest()`.
pub fn hns_list_endpoint_request() -> Result<Vec<HNSEndpoint>> {
    Ok(hns()?.list_endpoint_request()?)
}

/// `GetHNSEndpointByID`.
pub fn get_hns_endpoint_by_id(id: &str) -> Result<HNSEndpoint> {
    Ok(hns()?.get_endpoint_by_id(id)?)
}

/// `GetHNSEndpointByName`: [`EndpointNotFoundError`] when there is none.
pub fn get_hns_endpoint_by_name(name: &str) -> Result<HNSEndpoint> {
    Ok(hns()?.get_endpoint_by_name(name)?)
}

/// `GetHNSEndpointStats`.
pub fn get_hns_endpoint_stats(id: &str) -> Result<EndpointStats> {
    Ok(hns()?.get_endpoint_stats(id)?)
}

/// `HNSPolicyListRequest(method, path, request)`.
pub fn hns_policy_list_request(method: &str, path: &str, request: &str) -> Result<PolicyList> {
    Ok(hns()?.policy_list_request(method, path, request)?)
}

/// `HNSListPolicyListRequest()`.
pub fn hns_list_policy_list_request() -> Result<Vec<PolicyList>> {
    Ok(hns()?.list_policy_list_request()?)
}

/// `GetPolicyListByID`.
pub fn get_policy_list_by_id(id: &str) -> Result<PolicyList> {
    Ok(hns()?.get_policy_list_by_id(id)?)
}

/// `GetHNSGlobals`.
pub fn get_hns_globals() -> Result<HNSGlobals> {
    Ok(hns()?.get_globals()?)
}

/// `GetHNSSupportedFeatures`: all off when the version query fails (as the reference).
pub fn get_hns_supported_features() -> Result<HNSSupportedFeatures> {
    Ok(hns()?.get_supported_features())
}

/// `SetNnvManagementMacAddresses`: an empty list is `ErrorEmptyMacAddressList`.
pub fn set_nnv_management_mac_addresses(macs: &[String]) -> Result<()> {
    Ok(hns()?.set_nnv_management_mac_addresses(macs)?)
}

/// `GetNnvManagementMacAddresses`.
pub fn get_nnv_management_mac_addresses() -> Result<hcn::v1::MacAddressList> {
    Ok(hns()?.get_nnv_management_mac_addresses()?)
}

/// `DeleteNnvManagementMacAddresses`.
pub fn delete_nnv_management_mac_addresses() -> Result<()> {
    Ok(hns()?.delete_nnv_management_mac_addresses()?)
}

/// Runs a blocking HNS call off the async executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::Hns(hcn::Error::Transport(format!(
            "the HNS call's thread failed: {e}"
        )))
    })?
}

/// `modifyContainer`: opens the container and modifies it; not-exist becomes
/// `ErrComputeSystemDoesNotExist`, not-supported becomes `ErrPlatformNotSupported`.
async fn modify_network_endpoint(
    container_id: &str,
    endpoint_id: &str,
    request: RequestType,
) -> Result<()> {
    let not_supported = || Error::from(hcs::Error::new(hcs::ErrorKind::PlatformNotSupported));
    let container = match crate::open_container(container_id).await {
        Ok(c) => c,
        Err(e) if hcs::root::is_not_exist(&e) => {
            return Err(hcs::Error::new(hcs::HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND).into())
        }
        Err(e) if hcs::root::is_not_supported(&e) => return Err(not_supported()),
        Err(e) => return Err(e.into()),
    };
    let req = ResourceModificationRequestResponse {
        resource_type: ResourceType::Network,
        settings: serde_json::Value::String(endpoint_id.to_string()),
        request_type: request,
    };
    let modified = container.modify(&req).await;
    if let Err(e) = container.close().await {
        tracing::warn!(error = %e, "closing the container handle after a network modify");
    }
    match modified {
        Ok(()) => Ok(()),
        Err(e) if hcs::root::is_not_supported(&e) => Err(not_supported()),
        Err(e) => Err(match e.inner() {
            Some(inner) => Error::from(inner.clone()),
            None => e.into(),
        }),
    }
}

/// `HotAttachEndpoint(containerID, endpointID)`: adds the endpoint to the running
/// container unless it is already attached.
///
/// The reference ignores an error of the `IsAttached` check on this path (it attaches
/// anyway); so does this port, logging it.
pub async fn hot_attach_endpoint(container_id: &str, endpoint_id: &str) -> Result<()> {
    let (cid, eid) = (container_id.to_string(), endpoint_id.to_string());
    let attached = blocking(move || {
        let hns = hns()?;
        hns.get_endpoint_by_id(&eid)?;
        Ok(match hns.is_attached(&eid, &cid) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "IsAttached failed; attaching anyway (as the reference)");
                false
            }
        })
    })
    .await?;
    if attached {
        return Ok(());
    }
    modify_network_endpoint(container_id, endpoint_id, RequestType::Add).await
}

/// `HotDetachEndpoint(containerID, endpointID)`: removes the endpoint from the running
/// container if it is attached.
pub async fn hot_detach_endpoint(container_id: &str, endpoint_id: &str) -> Result<()> {
    let (cid, eid) = (container_id.to_string(), endpoint_id.to_string());
    let attached = blocking(move || {
        let hns = hns()?;
        hns.get_endpoint_by_id(&eid)?;
        Ok(hns.is_attached(&eid, &cid)?)
    })
    .await?;
    if !attached {
        return Ok(());
    }
    modify_network_endpoint(container_id, endpoint_id, RequestType::Remove).await
}
