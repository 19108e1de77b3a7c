//! Crash safety of the `hnsd` binary's state: it is killed with SIGKILL while a client
//! creates, attaches and deletes endpoints as fast as it can, then restarted on the same
//! state. Every change hnsd acknowledged is there, the one in flight is either whole or
//! absent, and an attach (endpoint and namespace, one commit) is never half there. No
//! dataplane, so no root needed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hcn::hnsd_client::HnsdClient;
use hcn::schema::*;

/// The operation a client had sent when hnsd died (endpoints by name: hnsd picks ids).
#[derive(Debug, Clone)]
enum InFlight {
    Create(String),
    Attach(String),
    Delete(String),
}

/// Endpoints by name, with their ids.
type Live = BTreeMap<String, String>;

/// Creates, attaches and deletes endpoints until a call fails (hnsd was killed); returns
/// the endpoints that exist by hnsd's acknowledgements and the operation in flight.
fn churn(
    hcn: &hcn::Hcn,
    net: &HostComputeNetwork,
    ns: &str,
    round: u32,
    mut live: Live,
) -> (Live, InFlight) {
    for i in 0..100_000 {
        let name = format!("r{round}-{i:06}");
        let ep = HostComputeEndpoint {
            name: name.clone(),
            ..Default::default()
        };
        let id = match hcn.create_endpoint(net, &ep) {
            Ok(e) => e.id,
            Err(_) => return (live, InFlight::Create(name)),
        };
        live.insert(name.clone(), id.clone());
        if hcn.add_namespace_endpoint(ns, &id).is_err() {
            return (live, InFlight::Attach(name));
        }
        // Delete the oldest but one: an attached endpoint, so the delete detaches too.
        if live.len() > 2 {
            let (old, old_id) = live
                .iter()
                .next()
                .map(|(n, i)| (n.clone(), i.clone()))
                .unwrap_or_default();
            if hcn.delete_endpoint(&old_id).is_err() {
                return (live, InFlight::Delete(old));
            }
            live.remove(&old);
        }
    }
    panic!("hnsd was never killed");
}

#[test]
fn kill_9_during_mutations_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hnsd.sock");
    let mut live = Live::new();
    let mut setup: Option<(HostComputeNetwork, String)> = None;
    for round in 0..4u32 {
        let mut child = spawn_hnsd(dir.path());
        let hcn = hcn::Hcn::new(Arc::new(HnsdClient::new(&socket)));
        let (net, ns) = setup
            .get_or_insert_with(|| {
                let net = hcn
                    .create_network(&nat("crash", "10.60.0.0/16", "10.60.0.1"))
                    .unwrap();
                let ns = hcn
                    .create_namespace(&hcn::new_namespace(NamespaceType::Host))
                    .unwrap();
                (net, ns.id)
            })
            .clone();
        let client = {
            let (hcn, net, ns, live) = (hcn.clone(), net.clone(), ns.clone(), live.clone());
            std::thread::spawn(move || churn(&hcn, &net, &ns, round, live))
        };
        std::thread::sleep(Duration::from_millis(150 + 70 * u64::from(round)));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let (acked, in_flight) = client.join().unwrap();

        let _child = spawn_hnsd(dir.path());
        let hcn = hcn::Hcn::new(Arc::new(HnsdClient::new(&socket)));
        let found: Live = hcn
            .list_endpoints()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.id))
            .collect();
        let names = |l: &Live| l.keys().cloned().collect::<BTreeSet<String>>();
        let (found_names, acked_names) = (names(&found), names(&acked));
        // Every acknowledged change is there; the one in flight happened or did not.
        let ok = match &in_flight {
            InFlight::Create(n) => {
                found_names == acked_names
                    || found_names == acked_names.iter().chain([n]).cloned().collect()
            }
            InFlight::Attach(_) => found_names == acked_names,
            InFlight::Delete(n) => {
                found_names == acked_names
                    || found_names == acked_names.iter().filter(|e| *e != n).cloned().collect()
            }
        };
        assert!(
            ok,
            "round {round}, in flight {in_flight:?}: acknowledged {acked:?}, found {found:?}"
        );
        assert!(acked.len() >= 2, "round {round}: the client did too little");
        // Endpoints and the namespace agree: an attach or detach is whole or absent.
        let attached: BTreeSet<String> = hcn
            .list_endpoints()
            .unwrap()
            .into_iter()
            .filter(|e| e.host_compute_namespace.eq_ignore_ascii_case(&ns))
            .map(|e| e.id)
            .collect();
        let listed: BTreeSet<String> = hcn
            .get_namespace_by_id(&ns)
            .unwrap()
            .resources
            .iter()
            .filter_map(|r| r.data.decode::<NamespaceResourceEndpoint>().ok())
            .map(|d| d.id.to_ascii_uppercase())
            .collect();
        assert_eq!(attached, listed, "round {round}");
        // Every acknowledged attach of an endpoint still there (the delete in flight may
        // have happened) is there.
        let unattached: Vec<&String> = acked
            .iter()
            .filter(|(n, id)| found.contains_key(*n) && !attached.contains(*id))
            .filter(|(n, _)| !matches!(&in_flight, InFlight::Attach(a) if a == *n))
            .map(|(n, _)| n)
            .collect();
        assert!(
            unattached.is_empty(),
            "round {round}, in flight {in_flight:?}: {unattached:?} not attached; found {found:?}, attached {attached:?}"
        );
        live = found;
    }
}
