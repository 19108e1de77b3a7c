//! DEL in the states a runtime meets after failures (CNI specification: DEL must succeed
//! when the resources are already gone, and may be called repeatedly): the pod's network
//! namespace already deleted, the endpoint or the HCN namespace removed behind the
//! plugin's back, hnsd restarted between ADD and DEL. Each DEL is run twice.
//!
//! Root (CI runs as root): the pods' network namespaces are real, as a Linux runtime's are;
//! hnsd runs with its dataplane so an ADD builds the interface in them. Everything lives in
//! the test's namespaces and goes with them, also on failure.

#![cfg(target_os = "linux")]

mod common;

use common::net::*;
use common::*;
use hcn::schema::HostComputeQuery;
use hnsd::testing::{TestHnsd, TestNetns};
use serde_json::json;

/// The HCN namespaces bound to network namespace file `path`.
fn bound_to(hcn: &hcn::Hcn, path: &str) -> usize {
    hcn.list_namespaces_query(&HostComputeQuery::filter_by("NetnsPath", path))
        .unwrap()
        .into_iter()
        .filter(|n| n.netns_path == path)
        .count()
}

#[test]
fn del_succeeds_whatever_is_already_gone() {
    require_root();
    let mut hnsd = TestHnsd::start().unwrap();
    let hcn = hnsd.client();
    hcn.create_network(&reference_network("nat")).unwrap();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let conf = reference_config("nat", "1.0.0", json!({}));

    // The pod's network namespace was deleted before DEL (a crashed sandbox).
    let pod = TestNetns::create(hnsd.dir().join("gone")).unwrap();
    let path = pod.path().display().to_string();
    rt.add("nat", "gone", &path, &conf).ok();
    assert_eq!(bound_to(&hcn, &path), 1);
    drop(pod);
    assert!(!std::path::Path::new(&path).exists());
    for _ in 0..2 {
        rt.del("nat", "gone", &path, &conf).ok();
    }
    assert!(hcn.get_endpoint_by_name("gone_natNet").is_err());
    assert_eq!(bound_to(&hcn, &path), 0);

    // The endpoint and its HCN namespace were removed behind the plugin's back.
    let pod = TestNetns::create(hnsd.dir().join("behind")).unwrap();
    let path = pod.path().display().to_string();
    rt.add("nat", "behind", &path, &conf).ok();
    let ep = hcn.get_endpoint_by_name("behind_natNet").unwrap();
    hcn.remove_namespace_endpoint(&ep.host_compute_namespace, &ep.id)
        .unwrap();
    hcn.delete_endpoint(&ep.id).unwrap();
    for _ in 0..2 {
        rt.del("nat", "behind", &path, &conf).ok();
    }
    // The namespace the plugin bound to the pod's file went with the last DEL.
    assert_eq!(bound_to(&hcn, &path), 0);
    let pod2 = TestNetns::create(hnsd.dir().join("ns-gone")).unwrap();
    let path2 = pod2.path().display().to_string();
    rt.add("nat", "nsgone", &path2, &conf).ok();
    let ep = hcn.get_endpoint_by_name("nsgone_natNet").unwrap();
    hcn.delete_namespace(&ep.host_compute_namespace).unwrap();
    for _ in 0..2 {
        rt.del("nat", "nsgone", &path2, &conf).ok();
    }
    assert!(hcn.get_endpoint_by_name("nsgone_natNet").is_err());

    // hnsd restarted between ADD and DEL (its state survives a restart).
    rt.add("nat", "restart", &path, &conf).ok();
    hnsd.restart().unwrap();
    for _ in 0..2 {
        rt.del("nat", "restart", &path, &conf).ok();
    }
    let hcn = hnsd.client();
    assert!(hcn.get_endpoint_by_name("restart_natNet").is_err());
    assert_eq!(bound_to(&hcn, &path), 0);

    // DEL of a container never added, with and without CNI_NETNS, on a list's 1.1.0.
    let fresh = reference_config("nat", "1.1.0", json!({}));
    rt.del("nat", "never", &path, &fresh).ok();
    rt.del("nat", "never", "", &fresh).ok();
    assert!(hcn.list_endpoints().unwrap().is_empty());
    drop((pod, pod2));
}
