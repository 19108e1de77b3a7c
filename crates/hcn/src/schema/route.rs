//! `HostComputeRoute`, the SDN route (hcs-hcn-api.md §5.7).

use hcs_schema::omitempty_struct;

use super::{SchemaVersion, SdnRoutePolicySetting};

omitempty_struct! {
    /// `HostComputeRoute`.
    pub struct HostComputeRoute {
        /// Schema version.
        "SchemaVersion" schema_version: SchemaVersion,
        /// The route GUID (assigned by HNS on create).
        "ID" id: String,
        /// The endpoints the route applies to.
        "HostComputeEndpoints" host_compute_endpoints: Vec<String>,
        /// The routes.
        "Setting" setting: Vec<SdnRoutePolicySetting>,
    }
}
