//! SDN route functions (`hcnroute.go`).

use crate::api::ObjectKind;
use crate::error::{Error, Result};
use crate::schema::{
    HostComputeEndpoint, HostComputeQuery, HostComputeRoute, SdnRoutePolicySetting,
    V2_SCHEMA_VERSION,
};

use super::Hcn;

impl Hcn {
    /// `ListRoutes`.
    pub fn list_routes(&self) -> Result<Vec<HostComputeRoute>> {
        self.enumerate(&HostComputeQuery::default())
    }

    /// `ListRoutesQuery`.
    pub fn list_routes_query(&self, query: &HostComputeQuery) -> Result<Vec<HostComputeRoute>> {
        self.enumerate(query)
    }

    /// `GetRouteByID`: `RouteNotFoundError` when there is none.
    pub fn get_route_by_id(&self, id: &str) -> Result<HostComputeRoute> {
        self.find(&HostComputeQuery::by_id(id))?
            .ok_or_else(|| Error::RouteNotFound {
                route_id: id.to_string(),
            })
    }

    /// `(*HostComputeRoute).Create`.
    pub fn create_route(&self, route: &HostComputeRoute) -> Result<HostComputeRoute> {
        self.create(route, None)
    }

    /// `(*HostComputeRoute).Delete`: deletes only a route `GetRouteByID` finds; a route
    /// that cannot be found (or looked up) is not an error, as in the reference.
    pub fn delete_route(&self, id: &str) -> Result<()> {
        match self.get_route_by_id(id) {
            Ok(_) => self.delete(ObjectKind::Route, id),
            Err(e) => {
                tracing::debug!(route = id, error = %e, "route not found; nothing to delete");
                Ok(())
            }
        }
    }

    /// `(*HostComputeRoute).AddEndpoint`: delete and recreate with the endpoint (the
    /// document keeps its `ID`, as the reference's does).
    pub fn route_add_endpoint(
        &self,
        route: &HostComputeRoute,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeRoute> {
        self.delete_route(&route.id)?;
        let mut route = route.clone();
        route.host_compute_endpoints.push(endpoint.id.clone());
        self.create_route(&route)
    }

    /// `(*HostComputeRoute).RemoveEndpoint`: delete and recreate without the endpoint. The
    /// reference removes index 0 when the endpoint is not in the route; this port removes
    /// nothing in that case.
    pub fn route_remove_endpoint(
        &self,
        route: &HostComputeRoute,
        endpoint: &HostComputeEndpoint,
    ) -> Result<HostComputeRoute> {
        self.delete_route(&route.id)?;
        let mut route = route.clone();
        route
            .host_compute_endpoints
            .retain(|id| !id.eq_ignore_ascii_case(&endpoint.id));
        self.create_route(&route)
    }

    /// `AddRoute(endpoints, destinationPrefix, nextHop, needEncapsulation)`: at least one
    /// endpoint is required.
    pub fn add_route(
        &self,
        endpoints: &[HostComputeEndpoint],
        destination_prefix: &str,
        next_hop: &str,
        need_encapsulation: bool,
    ) -> Result<HostComputeRoute> {
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument(
                "no endpoints provided for the route".into(),
            ));
        }
        let route = HostComputeRoute {
            schema_version: V2_SCHEMA_VERSION,
            host_compute_endpoints: endpoints.iter().map(|e| e.id.clone()).collect(),
            setting: vec![SdnRoutePolicySetting {
                destination_prefix: destination_prefix.to_string(),
                next_hop: next_hop.to_string(),
                need_encap: need_encapsulation,
            }],
            ..Default::default()
        };
        self.create_route(&route)
    }
}
