//! The reference's properties-verification tests (spec §2.8 `RunUnitTest`), ported: for
//! each plugin, ADD through the plugin binary against an hnsd, then what HNS holds: the
//! endpoint `<cid>_<network>` on the test network, attached to the namespace, with the
//! expected policies (type case-insensitive, Settings byte-equal) and DNS settings; DEL,
//! then the endpoint is gone and the namespace no longer references it.
//!
//! hnsd runs without a dataplane (objects only, no root); the connectivity tests run the
//! same plugins with the dataplane. As in the reference, the test creates the network and
//! an HCN namespace and passes the namespace's GUID as `CNI_NETNS`.

#![cfg(target_os = "linux")]

mod common;

use common::*;
use hcn::schema::*;
use hnsd::testing::TestHnsd;

/// The expected policies present in `actual`, counted as the reference counts them.
fn matching_policies(actual: &[EndpointPolicy], expected: &[(&str, String)]) -> usize {
    expected
        .iter()
        .filter(|(t, s)| {
            actual.iter().any(|p| {
                p.policy_type.as_str().eq_ignore_ascii_case(t)
                    && p.settings.as_ref().map(|r| r.get()) == Some(s.as_str())
            })
        })
        .count()
}

fn properties(plugin: &str) {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let network = hcn.create_network(&reference_network(plugin)).unwrap();
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    let cid = format!("{plugin}TestUnitContainer");
    let conf = reference_config(plugin, "0.2.0", serde_json::json!({}));

    let out = rt.add(plugin, &cid, &ns.id, &conf).ok();

    // The endpoint and its links.
    let name = format!("{cid}_{}", network.name);
    let ep = hcn.get_endpoint_by_name(&name).unwrap();
    assert!(ep.host_compute_namespace.eq_ignore_ascii_case(&ns.id));
    assert!(ep.host_compute_network.eq_ignore_ascii_case(&network.id));
    // The policies.
    let expected = reference_policies(plugin);
    assert_eq!(
        matching_policies(&ep.policies, &expected),
        expected.len().min(ep.policies.len()),
        "{:?}",
        ep.policies
    );
    assert_eq!(ep.policies.len(), expected.len(), "{:?}", ep.policies);
    // The DNS settings: the first search domain gets the pod's namespace.
    assert_eq!(ep.dns.server_list, ["10.50.10.50", "8.8.8.8"]);
    assert_eq!(
        ep.dns.search,
        ["default.svc.cluster.local", "svc.cluster.local"]
    );
    // The default route of the test subnet.
    assert_eq!(ep.routes[0].next_hop, gateway_of(plugin));
    assert_eq!(ep.routes[0].destination_prefix, "0.0.0.0/0");
    // The namespace holds the endpoint.
    let ns_now = hcn.get_namespace_by_id(&ns.id).unwrap();
    assert!(
        ns_now.resources[0]
            .data
            .get()
            .to_ascii_uppercase()
            .contains(&ep.id.to_ascii_uppercase()),
        "{:?}",
        ns_now.resources
    );
    // The 0.2.0 result reports the endpoint's address in the network's subnet.
    let result = out.json();
    assert_eq!(result["cniVersion"], "0.2.0");
    assert_eq!(
        result["ip4"]["ip"],
        format!("{}/16", ep.ip_configurations[0].ip_address)
    );
    assert_eq!(result["ip4"]["gateway"], gateway_of(plugin));
    assert_eq!(result["dns"], serde_json::json!({}));

    rt.del(plugin, &cid, &ns.id, &conf).ok();
    assert!(hcn::error::is_not_found_error(
        &hcn.get_endpoint_by_name(&name).unwrap_err()
    ));
    assert!(hcn::error::is_not_found_error(
        &hcn.get_endpoint_by_id(&ep.id).unwrap_err()
    ));
    let ns_after = hcn.get_namespace_by_id(&ns.id).unwrap();
    assert!(
        !ns_after
            .resources
            .iter()
            .any(|r| r.data.get().to_ascii_uppercase().contains(&ep.id)),
        "{:?}",
        ns_after.resources
    );
    // The network is never deleted, and the namespace the test created stays.
    hcn.get_network_by_id(&network.id).unwrap();
}

#[test]
fn nat_properties() {
    properties("nat");
}

#[test]
fn sdnbridge_properties() {
    properties("sdnbridge");
}

#[test]
fn sdnoverlay_properties() {
    properties("sdnoverlay");
}

/// Without a network of the name, ADD creates it from the configuration (spec §2.4 step 6):
/// type, subnet, default route, DNS and `NetworkPolicy` entries.
#[test]
fn add_creates_the_network_from_the_configuration() {
    for plugin in PLUGINS {
        let hnsd = TestHnsd::start_without_dataplane().unwrap();
        let hcn = hnsd.client();
        let rt = Runtime::new(hnsd.socket(), hnsd.dir());
        let ns = hcn
            .create_namespace(&hcn::new_namespace(NamespaceType::Host))
            .unwrap();
        let conf = reference_config(
            plugin,
            "1.0.0",
            serde_json::json!({"AdditionalArgs": [{"Name": "NetworkPolicy",
                "Value": {"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": "eth1"}}}]}),
        );
        rt.add(plugin, "c1", &ns.id, &conf).ok();
        let (network_type, name) = network_of(plugin);
        let n = hcn.get_network_by_name(name).unwrap();
        assert_eq!(n.network_type, network_type, "{plugin}");
        let subnet = &n.ipams[0].subnets[0];
        assert_eq!(subnet.ip_address_prefix, "10.0.0.0/16");
        assert_eq!(subnet.routes[0].next_hop, gateway_of(plugin));
        assert_eq!(subnet.routes[0].destination_prefix, "0.0.0.0/0");
        assert_eq!(n.dns.server_list, ["10.50.10.50", "8.8.8.8"]);
        assert_eq!(n.policies.len(), 1);
        assert_eq!(n.policies[0].policy_type, NetworkPolicyType::NetAdapterName);
        assert_eq!(
            n.policies[0].settings.as_ref().unwrap().get(),
            r#"{"NetworkAdapterName":"eth1"}"#
        );
    }
}

/// runtimeConfig port mappings become PortMapping policies (and ACLs with
/// `allowAclPortMapping`); runtimeConfig DNS replaces the configuration's lists.
#[test]
fn runtime_config_port_mappings_and_dns_land_on_the_endpoint() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    let conf = reference_config(
        "nat",
        "0.4.0",
        serde_json::json!({
            "optionalFlags": {"localRoutedPortMapping": true, "allowAclPortMapping": true},
            "runtimeConfig": {
                "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                                 {"hostPort": 5353, "containerPort": 53, "protocol": "UDP",
                                  "hostIP": "192.0.2.1"}],
                "dns": {"servers": ["192.0.2.53"], "searches": ["pod.local"], "options": ["ndots:2"]}
            }
        }),
    );
    rt.add("nat", "pm", &ns.id, &conf).ok();
    let ep = hcn.get_endpoint_by_name("pm_natNet").unwrap();
    let got: Vec<(String, String)> = ep
        .policies
        .iter()
        .map(|p| {
            (
                p.policy_type.to_string(),
                p.settings.as_ref().unwrap().get().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("PortMapping", r#"{"Protocol":6,"InternalPort":80,"ExternalPort":8080,"Flags":1}"#),
            ("ACL", r#"{"Protocols":"6","Action":"Allow","Direction":"In","LocalPorts":"80","Priority":1000}"#),
            ("PortMapping", r#"{"Protocol":17,"InternalPort":53,"ExternalPort":5353,"VIP":"192.0.2.1","Flags":1}"#),
            ("ACL", r#"{"Protocols":"17","Action":"Allow","Direction":"In","LocalPorts":"53","Priority":1000}"#),
        ]
        .map(|(t, s)| (t.to_string(), s.to_string()))
    );
    assert_eq!(ep.dns.server_list, ["192.0.2.53"]);
    assert_eq!(ep.dns.search, ["pod.local"]);
    assert_eq!(ep.dns.options, ["ndots:2"]);
}

/// `loopbackDSR` without IPAM: the OutBoundNAT destination is the address HNS allocated
/// (the reference sends the text `<nil>`).
#[test]
fn loopback_dsr_names_the_allocated_address() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    let conf = reference_config(
        "sdnbridge",
        "1.0.0",
        serde_json::json!({"optionalFlags": {"loopbackDSR": true}}),
    );
    rt.add("sdnbridge", "dsr", &ns.id, &conf).ok();
    let ep = hcn.get_endpoint_by_name("dsr_bridgeNet").unwrap();
    let ip = &ep.ip_configurations[0].ip_address;
    let dsr: Vec<&EndpointPolicy> = ep
        .policies
        .iter()
        .filter(|p| {
            p.policy_type == EndpointPolicyType::OutBoundNat
                && p.settings.as_ref().unwrap().get().contains("Destinations")
        })
        .collect();
    assert_eq!(dsr.len(), 1, "{:?}", ep.policies);
    assert_eq!(
        dsr[0].settings.as_ref().unwrap().get(),
        format!(r#"{{"Destinations":["{ip}"]}}"#)
    );
}

/// `CNI_NETNS` as a network namespace path: the plugin binds an HCN namespace to it
/// (hnsd's `NetnsPath`), a second network of the same pod shares it, and DEL of the last
/// endpoint removes it.
#[test]
fn netns_path_binds_one_namespace_per_pod_and_del_releases_it() {
    let hnsd = TestHnsd::start_without_dataplane().unwrap();
    let hcn = hnsd.client();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let path = hnsd.dir().join("pod-netns").display().to_string();
    let nat = reference_config("nat", "1.0.0", serde_json::json!({}));
    let mut other = serde_json::from_str::<serde_json::Value>(&nat).unwrap();
    other["name"] = "natNet2".into();
    other["ipam"]["subnet"] = "10.1.0.0/16".into();
    other["ipam"]["routes"][0]["GW"] = "10.1.0.1".into();
    let other = other.to_string();

    rt.add("nat", "pod", &path, &nat).ok();
    rt.run(
        "nat",
        "ADD",
        &Call::pod("pod", &path).ifname("eth1"),
        &other,
    )
    .ok();
    let bound: Vec<HostComputeNamespace> = hcn
        .list_namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.netns_path == path)
        .collect();
    assert_eq!(bound.len(), 1, "{bound:?}");
    assert_eq!(bound[0].resources.len(), 2);
    let ep1 = hcn.get_endpoint_by_name("pod_natNet").unwrap();
    let ep2 = hcn.get_endpoint_by_name("pod_natNet2").unwrap();
    assert_eq!(ep1.host_compute_namespace, bound[0].id);
    assert_eq!(ep2.host_compute_namespace, bound[0].id);

    rt.del("nat", "pod", &path, &nat).ok();
    assert_eq!(
        hcn.get_namespace_by_id(&bound[0].id)
            .unwrap()
            .resources
            .len(),
        1
    );
    rt.run(
        "nat",
        "DEL",
        &Call::pod("pod", &path).ifname("eth1"),
        &other,
    )
    .ok();
    assert!(hcn::error::is_not_found_error(
        &hcn.get_namespace_by_id(&bound[0].id).unwrap_err()
    ));
}
