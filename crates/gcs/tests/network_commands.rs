//! The `ip` commands the GCS configures an adapter with (spec §5), run by iproute2 in a
//! network namespace this test creates (removed also when it fails), on a veth link:
//! low-metric routing really gives source rules and table 101 routes.

use std::process::Command;

use gcs::network::{address_commands, route_commands, Adapter, IpConfig, Route};

struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("gcsnet{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        ip(&["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[String]) -> std::process::Output {
        Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = self.ip(&args);
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn a_low_metric_adapter_gets_source_rules_and_its_own_table() {
    let ns = Netns::new();
    // A veth pair with both ends in the namespace (the dummy driver may be missing).
    ns.ok(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    ns.ok(&["link", "set", "eth1p", "up"]);
    ns.ok(&["link", "set", "eth1", "up"]);
    let a = Adapter {
        ip_configs: vec![
            IpConfig {
                ip_address: "10.1.0.5".into(),
                prefix_length: 24,
            },
            IpConfig {
                ip_address: "fd00::5".into(),
                prefix_length: 64,
            },
        ],
        routes: vec![
            Route {
                next_hop: "10.1.0.1".into(),
                destination_prefix: "0.0.0.0/0".into(),
                metric: 0,
            },
            // A gateway off the subnet: reachable once the link route to it exists.
            Route {
                next_hop: "192.0.2.1".into(),
                destination_prefix: "198.51.100.0/24".into(),
                metric: 9,
            },
        ],
        enable_low_metric: true,
        ..Default::default()
    };
    for args in address_commands(&a, "eth1", true) {
        let out = ns.ip(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (args, gateway) in route_commands(&a, "eth1", true) {
        if !ns.ip(&args).status.success() {
            let g = gateway.expect("a route that fails has a gateway to add");
            assert!(ns.ip(&g).status.success(), "{g:?}");
            let out = ns.ip(&args);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let rules = ns.ok(&["rule", "show"]);
    assert!(rules.contains("5:\tfrom 10.1.0.5 lookup 101"), "{rules}");
    let rules6 = ns.ok(&["-6", "rule", "show"]);
    assert!(rules6.contains("5:\tfrom fd00::5 lookup 101"), "{rules6}");
    let table = ns.ok(&["route", "show", "table", "101"]);
    assert!(
        table.contains("default via 10.1.0.1 dev eth1 metric 500"),
        "{table}"
    );
    assert!(
        table.contains("198.51.100.0/24 via 192.0.2.1 dev eth1 metric 9"),
        "{table}"
    );
    // The main table has none of them.
    let main = ns.ok(&["route", "show"]);
    assert!(!main.contains("default"), "{main}");
}
