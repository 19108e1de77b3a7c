//! The gating table, one row per feature boundary.

use super::*;

const TO_INF: (u32, u32) = (INFINITY, INFINITY);

fn v(major: u32, minor: u32) -> Version {
    Version::new(major, minor)
}

#[test]
fn range_test_follows_is_feature_in_range() {
    let r = range((9, 3), (9, INFINITY));
    assert!(!in_range(v(9, 2), &r));
    assert!(in_range(v(9, 3), &r));
    assert!(in_range(v(9, 100), &r));
    assert!(!in_range(v(10, 0), &r));
    assert!(!in_range(v(8, 9), &r));
    let r = range((10, 2), TO_INF);
    assert!(in_range(v(10, 2), &r));
    assert!(in_range(v(u32::MAX >> 1, 0), &r));
}

/// (feature, last version off, first version on, and for split ranges a version in the gap).
#[test]
fn each_feature_switches_on_at_its_boundary() {
    type Row = (Feature, (u32, u32), (u32, u32), Option<(u32, u32)>);
    let rows: &[Row] = &[
        (ACL, (7, 1), (7, 2), None),
        (V2_API, (9, 1), (9, 2), None),
        (REMOTE_SUBNET, (9, 1), (9, 2), None),
        (HOST_ROUTE, (9, 1), (9, 2), None),
        (DSR, (9, 2), (9, 3), Some((10, 1))),
        (SLASH32_ENDPOINT_PREFIXES, (9, 2), (9, 3), Some((10, 3))),
        (ACL_SUPPORT_FOR_PROTOCOL_252, (10, 99), (11, 0), None),
        (SESSION_AFFINITY, (11, 99), (12, 0), None),
        (IPV6_DUAL_STACK, (11, 9), (11, 10), None),
        (SET_POLICY, (12, 99), (13, 0), None),
        (VXLAN_PORT, (10, 2), (10, 3), None),
        (L4_PROXY, (9, 4), (9, 5), Some((10, 4))),
        (L4_WFP_PROXY, (13, 1), (13, 2), None),
        (TIER_ACL, (13, 99), (14, 0), None),
        (NETWORK_ACL, (14, 99), (15, 0), None),
        (NESTED_IP_SET, (14, 99), (15, 0), None),
        (DISABLE_HOST_PORT, (15, 0), (15, 1), None),
        (MODIFY_LOADBALANCER, (15, 3), (15, 4), None),
        (ACCELNET, (15, 3), (15, 4), None),
    ];
    assert_eq!(rows.len(), FEATURE_TABLE.len());
    for (f, off, on, gap) in rows {
        assert!(check(v(off.0, off.1), *f).is_err(), "{} at {off:?}", f.name);
        check(v(on.0, on.1), *f).unwrap_or_else(|e| panic!("{} at {on:?}: {e}", f.name));
        if let Some(gap) = gap {
            assert!(
                !in_any_range(v(gap.0, gap.1), f.ranges),
                "{} at {gap:?}",
                f.name
            );
        }
    }
    // L4Proxy's ranges stop at the end of each major until 13.1.
    for (ver, want) in [
        ((10, 5), true),
        ((11, 10), false),
        ((11, 11), true),
        ((12, 0), false),
        ((12, 1), true),
        ((13, 0), false),
        ((13, 1), true),
    ] {
        assert_eq!(
            in_any_range(v(ver.0, ver.1), L4_PROXY.ranges),
            want,
            "{ver:?}"
        );
    }
}

#[test]
fn supported_features_json_shape() {
    let f = supported_features(v(9, 3));
    assert!(f.dsr && f.api.v1 && f.api.v2 && f.acl.acl_rule_id && !f.vxlan_port);
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["ACL"]["AclHostRulePriority"], true);
    assert_eq!(json["API"], serde_json::json!({"V1": true, "V2": true}));
    assert_eq!(json["DSR"], true);
    assert_eq!(json.as_object().unwrap().len(), 19);
    assert_eq!(
        check(v(9, 2), DSR).unwrap_err().to_string(),
        "platform does not support feature DSR"
    );
    let old = supported_features(v(7, 1));
    assert!(old.api.v1 && !old.api.v2 && !old.acl.acl_address_lists);
}

#[test]
fn hns_v1_features() {
    assert!(hns_supported_features(Some(v(7, 2))).acl.acl_port_ranges);
    assert!(!hns_supported_features(Some(v(7, 1))).acl.acl_port_ranges);
    assert!(!hns_supported_features(None).acl.acl_rule_id);
    assert_eq!(
        serde_json::to_string(&hns_supported_features(None)).unwrap(),
        r#"{"ACL":{"AclAddressLists":false,"AclHostRulePriority":false,"AclPortRanges":false,"AclRuleId":false}}"#
    );
}
