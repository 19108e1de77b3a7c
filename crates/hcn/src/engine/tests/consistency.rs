//! The engine's state stays consistent: it survives a restart and is reconciled with the
//! dataplane, a failing dataplane call changes nothing, concurrent clients get distinct
//! addresses.

use std::sync::Arc;

use super::*;
use crate::hresult as hr;

#[test]
fn state_survives_a_restart_and_is_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let dp = Arc::new(RecordingDataplane::default());
    let (net, ep, ns) = {
        let engine = Engine::open(EngineConfig::new(dir.path(), dp.clone())).unwrap();
        let (hcn, net, ep) = setup_on(&engine);
        let ns = hcn
            .create_namespace(&crate::new_namespace(NamespaceType::Host))
            .unwrap();
        hcn.add_namespace_endpoint(&ns.id, &ep.id).unwrap();
        (net, ep, ns)
    };
    let tag = link_tag_for(dir.path());
    let calls = dp.calls();
    assert!(matches!(&calls[0], dataplane::DpCall::Reconcile(d) if d.networks.is_empty()));
    let att = calls
        .iter()
        .find_map(|c| match c {
            dataplane::DpCall::EnsureAttachment(a) => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(att.ifname, "eth0");
    assert_eq!(att.bridge, format!("{tag}b0"));
    assert_eq!(att.host_ifname, format!("{tag}v1"));
    assert_eq!(att.address, Some("10.10.0.2/24".parse().unwrap()));
    assert_eq!(att.gateway, Some("10.10.0.1".parse().unwrap()));
    assert_eq!(
        att.netns,
        std::path::PathBuf::from(format!("/run/netns/test-{}", ns.id))
    );

    // A second engine on the same directory sees everything and reconciles it.
    let dp2 = Arc::new(RecordingDataplane::default());
    let engine = Engine::open(EngineConfig::new(dir.path(), dp2.clone())).unwrap();
    let hcn = engine.client();
    assert_eq!(hcn.get_network_by_id(&net.id).unwrap(), net);
    let got = hcn.get_endpoint_by_id(&ep.id).unwrap();
    assert_eq!(got.host_compute_namespace, ns.id);
    let dataplane::DpCall::Reconcile(desired) = &dp2.calls()[0] else {
        panic!("no reconcile")
    };
    assert_eq!(desired.networks.len(), 1);
    assert_eq!(desired.attachments, [att]);
    assert_eq!(desired.rules.dnat.len(), 1);
    assert_eq!(desired.rules.masquerade.len(), 1);
    // Counters survived: the next endpoint does not reuse index 1.
    let ep2 = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    hcn.add_namespace_endpoint(&ns.id, &ep2.id).unwrap();
    let att2 = dp2
        .calls()
        .into_iter()
        .find_map(|c| match c {
            dataplane::DpCall::EnsureAttachment(a) => Some(a),
            _ => None,
        })
        .unwrap();
    assert_eq!(att2.host_ifname, format!("{tag}v2"));
    assert_eq!(att2.ifname, "eth1");
    // Deleting everything leaves an empty state.
    hcn.delete_namespace(&ns.id).unwrap();
    hcn.delete_endpoint(&ep.id).unwrap();
    hcn.delete_endpoint(&ep2.id).unwrap();
    hcn.delete_network(&net.id).unwrap();
    let stored = crate::engine::store::Store::open(dir.path())
        .unwrap()
        .load()
        .unwrap();
    assert!(stored.networks.is_empty() && stored.endpoints.is_empty());
    assert!(stored.namespaces.is_empty());
    assert_eq!(stored.meta.next_index, 3);
    assert!(
        matches!(dp2.calls().last(), Some(dataplane::DpCall::SyncRules(r)) if r.masquerade.is_empty() && r.dnat.is_empty())
    );
}

#[test]
fn a_failing_dataplane_changes_nothing() {
    let dp = Arc::new(RecordingDataplane::default());
    let engine = Engine::with_dataplane(dp.clone());
    let hcn = engine.client();
    dp.fail_next("no bridges today");
    let e = hcn
        .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
        .unwrap_err();
    assert_eq!(code(&e), crate::engine::fail::E_FAIL.value());
    assert!(e.to_string().contains("no bridges today"), "{e}");
    assert!(hcn.list_networks().unwrap().is_empty());
    let net = hcn
        .create_network(&nat("n", "10.10.0.0/24", "10.10.0.1"))
        .unwrap();
    let ep = hcn
        .create_endpoint(&net, &HostComputeEndpoint::default())
        .unwrap();
    let ns = hcn
        .create_namespace(&crate::new_namespace(NamespaceType::Host))
        .unwrap();
    dp.fail_next("veth refused");
    let e = hcn.add_namespace_endpoint(&ns.id, &ep.id).unwrap_err();
    assert_eq!(code(&e), hr::HCN_E_NAMESPACE_ATTACH_FAILED.value());
    assert_eq!(
        hcn.get_endpoint_by_id(&ep.id)
            .unwrap()
            .host_compute_namespace,
        ""
    );
    assert!(hcn
        .get_namespace_by_id(&ns.id)
        .unwrap()
        .resources
        .is_empty());
}

#[test]
fn concurrent_clients_get_distinct_addresses() {
    let engine = Engine::in_memory();
    let net = engine
        .client()
        .create_network(&nat("n", "10.10.0.0/22", "10.10.0.1"))
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let hcn = engine.client();
            let net = net.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        hcn.create_endpoint(
                            &net,
                            &HostComputeEndpoint {
                                name: format!("{t}-{i}"),
                                ..Default::default()
                            },
                        )
                        .unwrap()
                        .ip_configurations[0]
                            .ip_address
                            .clone()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200);
}
