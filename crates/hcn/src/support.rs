//! Version-gated features (`hcnglobals.go`, `hcnsupport.go`, hcs-hcn-api.md §5.10 and §4.5).
//!
//! The HNS version (`GET /globals/version`) decides which features exist. A feature is on
//! when the version falls in **any** of its inclusive ranges; [`INFINITY`] is the reference's
//! `math.MaxInt32`. [`FEATURE_TABLE`] is the table of the spec, [`supported_features`]
//! evaluates it, and [`check`] is the `XxxSupported()` helpers' test.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::Version;

/// `math.MaxInt32`: an open upper bound.
pub const INFINITY: u32 = i32::MAX as u32;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// Lowest version.
    pub min: Version,
    /// Highest version.
    pub max: Version,
}

const fn range(min: (u32, u32), max: (u32, u32)) -> VersionRange {
    VersionRange {
        min: Version::new(min.0, min.1),
        max: Version::new(max.0, max.1),
    }
}

/// `isFeatureInRange`: false when `major < min.major`, `major > max.major`, or the minor is
/// outside on an equal major.
pub fn in_range(v: Version, r: &VersionRange) -> bool {
    !(v.major < r.min.major
        || v.major > r.max.major
        || (v.major == r.min.major && v.minor < r.min.minor)
        || (v.major == r.max.major && v.minor > r.max.minor))
}

/// `isFeatureSupported`: the version is in any of the ranges.
pub fn in_any_range(v: Version, ranges: &[VersionRange]) -> bool {
    ranges.iter().any(|r| in_range(v, r))
}

/// `HNSVersion1803`: 7.2, from which every ACL feature is on.
pub const HNS_VERSION_1803: Version = Version::new(7, 2);

/// One row of the feature table.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The JSON key in [`SupportedFeatures`] (and the name in the error message).
    pub name: &'static str,
    /// The version ranges.
    pub ranges: &'static [VersionRange],
}

macro_rules! features {
    ($( $konst:ident = $name:literal : [$( ($a:expr, $b:expr) - ($c:expr, $d:expr) ),+]; )*) => {
        $(
            #[doc = concat!("The `", $name, "` feature.")]
            pub const $konst: Feature = Feature {
                name: $name,
                ranges: &[$( range(($a, $b), ($c, $d)) ),+],
            };
        )*
        /// Every version-gated feature, in the order of the spec's table.
        pub const FEATURE_TABLE: &[Feature] = &[$($konst),*];
    };
}

features! {
    ACL = "ACL": [(7, 2) - (INFINITY, INFINITY)];
    V2_API = "V2": [(9, 2) - (INFINITY, INFINITY)];
    REMOTE_SUBNET = "RemoteSubnet": [(9, 2) - (INFINITY, INFINITY)];
    HOST_ROUTE = "HostRoute": [(9, 2) - (INFINITY, INFINITY)];
    DSR = "DSR": [(9, 3) - (9, INFINITY), (10, 2) - (INFINITY, INFINITY)];
    SLASH32_ENDPOINT_PREFIXES = "Slash32EndpointPrefixes": [(9, 3) - (9, INFINITY), (10, 4) - (INFINITY, INFINITY)];
    ACL_SUPPORT_FOR_PROTOCOL_252 = "AclSupportForProtocol252": [(11, 0) - (INFINITY, INFINITY)];
    SESSION_AFFINITY = "SessionAffinity": [(12, 0) - (INFINITY, INFINITY)];
    IPV6_DUAL_STACK = "IPv6DualStack": [(11, 10) - (INFINITY, INFINITY)];
    SET_POLICY = "SetPolicy": [(13, 0) - (INFINITY, INFINITY)];
    VXLAN_PORT = "VxlanPort": [(10, 3) - (INFINITY, INFINITY)];
    L4_PROXY = "L4Proxy": [(9, 5) - (9, INFINITY), (10, 5) - (10, INFINITY), (11, 11) - (11, INFINITY), (12, 1) - (12, INFINITY), (13, 1) - (INFINITY, INFINITY)];
    L4_WFP_PROXY = "L4WfpProxy": [(13, 2) - (INFINITY, INFINITY)];
    TIER_ACL = "TierAcl": [(14, 0) - (INFINITY, INFINITY)];
    NETWORK_ACL = "NetworkACL": [(15, 0) - (INFINITY, INFINITY)];
    NESTED_IP_SET = "NestedIpSet": [(15, 0) - (INFINITY, INFINITY)];
    DISABLE_HOST_PORT = "DisableHostPort": [(15, 1) - (INFINITY, INFINITY)];
    MODIFY_LOADBALANCER = "ModifyLoadbalancer": [(15, 4) - (INFINITY, INFINITY)];
    ACCELNET = "Accelnet": [(15, 4) - (INFINITY, INFINITY)];
}

/// `AclFeatures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFeatures {
    /// Address lists.
    #[serde(rename = "AclAddressLists")]
    pub acl_address_lists: bool,
    /// The Go field `AclNoHostRulePriority`, sent as `AclHostRulePriority`.
    #[serde(rename = "AclHostRulePriority")]
    pub acl_no_host_rule_priority: bool,
    /// Port ranges.
    #[serde(rename = "AclPortRanges")]
    pub acl_port_ranges: bool,
    /// Rule ids.
    #[serde(rename = "AclRuleId")]
    pub acl_rule_id: bool,
}

/// `ApiSupport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSupport {
    /// The v1 API (always true).
    #[serde(rename = "V1")]
    pub v1: bool,
    /// The v2 API.
    #[serde(rename = "V2")]
    pub v2: bool,
}

/// `SupportedFeatures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // each field is the feature of the same name in FEATURE_TABLE
pub struct SupportedFeatures {
    #[serde(rename = "ACL")]
    pub acl: AclFeatures,
    #[serde(rename = "API")]
    pub api: ApiSupport,
    #[serde(rename = "RemoteSubnet")]
    pub remote_subnet: bool,
    #[serde(rename = "HostRoute")]
    pub host_route: bool,
    #[serde(rename = "DSR")]
    pub dsr: bool,
    #[serde(rename = "Slash32EndpointPrefixes")]
    pub slash32_endpoint_prefixes: bool,
    #[serde(rename = "AclSupportForProtocol252")]
    pub acl_support_for_protocol_252: bool,
    #[serde(rename = "SessionAffinity")]
    pub session_affinity: bool,
    #[serde(rename = "IPv6DualStack")]
    pub ipv6_dual_stack: bool,
    #[serde(rename = "SetPolicy")]
    pub set_policy: bool,
    #[serde(rename = "VxlanPort")]
    pub vxlan_port: bool,
    #[serde(rename = "L4Proxy")]
    pub l4_proxy: bool,
    #[serde(rename = "L4WfpProxy")]
    pub l4_wfp_proxy: bool,
    #[serde(rename = "TierAcl")]
    pub tier_acl: bool,
    #[serde(rename = "NetworkACL")]
    pub network_acl: bool,
    #[serde(rename = "NestedIpSet")]
    pub nested_ip_set: bool,
    #[serde(rename = "DisableHostPort")]
    pub disable_host_port: bool,
    #[serde(rename = "ModifyLoadbalancer")]
    pub modify_loadbalancer: bool,
    #[serde(rename = "Accelnet")]
    pub accelnet: bool,
}

/// `getSupportedFeatures(version)`: the table evaluated at `v`.
pub fn supported_features(v: Version) -> SupportedFeatures {
    let on = |f: Feature| in_any_range(v, f.ranges);
    let acl = on(ACL);
    SupportedFeatures {
        acl: AclFeatures {
            acl_address_lists: acl,
            acl_no_host_rule_priority: acl,
            acl_port_ranges: acl,
            acl_rule_id: acl,
        },
        api: ApiSupport {
            v1: true,
            v2: on(V2_API),
        },
        remote_subnet: on(REMOTE_SUBNET),
        host_route: on(HOST_ROUTE),
        dsr: on(DSR),
        slash32_endpoint_prefixes: on(SLASH32_ENDPOINT_PREFIXES),
        acl_support_for_protocol_252: on(ACL_SUPPORT_FOR_PROTOCOL_252),
        session_affinity: on(SESSION_AFFINITY),
        ipv6_dual_stack: on(IPV6_DUAL_STACK),
        set_policy: on(SET_POLICY),
        vxlan_port: on(VXLAN_PORT),
        l4_proxy: on(L4_PROXY),
        l4_wfp_proxy: on(L4_WFP_PROXY),
        tier_acl: on(TIER_ACL),
        network_acl: on(NETWORK_ACL),
        nested_ip_set: on(NESTED_IP_SET),
        disable_host_port: on(DISABLE_HOST_PORT),
        modify_loadbalancer: on(MODIFY_LOADBALANCER),
        accelnet: on(ACCELNET),
    }
}

/// The `XxxSupported()` test: `Ok` when `feature` is on at `v`, else
/// `platform does not support feature <name>`.
pub fn check(v: Version, feature: Feature) -> Result<()> {
    if in_any_range(v, feature.ranges) {
        Ok(())
    } else {
        Err(Error::FeatureNotSupported(feature.name))
    }
}

/// HNS v1 `HNSSupportedFeatures`: `{"ACL": {...}}`, every ACL feature on from 7.2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnsSupportedFeatures {
    /// The ACL features.
    #[serde(rename = "ACL")]
    pub acl: AclFeatures,
}

/// `GetHNSSupportedFeatures` evaluated at `v` (`None`: the version query failed, before
/// 1803, and everything is off).
pub fn hns_supported_features(v: Option<Version>) -> HnsSupportedFeatures {
    let on = v.is_some_and(|v| v >= HNS_VERSION_1803);
    HnsSupportedFeatures {
        acl: AclFeatures {
            acl_address_lists: on,
            acl_no_host_rule_priority: on,
            acl_port_ranges: on,
            acl_rule_id: on,
        },
    }
}

#[cfg(test)]
mod tests;
