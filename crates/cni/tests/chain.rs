//! The plugins in network configuration lists, run as libcni (and `cnitool`) runs a list:
//! each plugin's configuration gets the list's `name` and `cniVersion`, ADD passes each
//! result to the next plugin as `prevResult`, CHECK gives every plugin the list's final
//! result, DEL runs in reverse order with it. The other plugins are the reference plugins
//! Debian ships (`containernetworking-plugins`: `tuning`, `portmap` in [`REFERENCE_BIN`]), so
//! what they accept of our results is what a real chain accepts.
//!
//! Root (CI runs as root): hnsd with its dataplane, pods in network namespaces the test
//! creates, so `tuning` finds `CNI_IFNAME` in `CNI_NETNS`. Everything lives in the test's
//! namespaces and goes with them, also on failure.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::net::*;
use common::*;
use hnsd::testing::{TestHnsd, TestNetns};
use serde_json::{json, Value};

/// Where Debian's `containernetworking-plugins` installs the reference plugins.
const REFERENCE_BIN: &str = "/usr/lib/cni";

/// One plugin of a list: its executable and its own configuration.
struct Link {
    bin: PathBuf,
    conf: Value,
}

fn ours(plugin: &str) -> Link {
    let conf: Value = serde_json::from_str(&reference_config(plugin, "", json!({}))).unwrap();
    Link {
        bin: PathBuf::from(plugin_bin(plugin)),
        conf,
    }
}

fn reference(name: &str, conf: Value) -> Link {
    let bin = Path::new(REFERENCE_BIN).join(name);
    assert!(
        bin.exists(),
        "{} is missing: install Debian's containernetworking-plugins",
        bin.display()
    );
    Link { bin, conf }
}

/// The configuration libcni gives `link` in list `name` at `version`, with `prev`.
fn injected(link: &Link, name: &str, version: &str, prev: Option<&Value>) -> String {
    let mut conf = link.conf.clone();
    conf["name"] = json!(name);
    conf["cniVersion"] = json!(version);
    if let Some(p) = prev {
        conf["prevResult"] = p.clone();
    }
    conf.to_string()
}

/// A list run by a runtime over one hnsd.
struct List<'a> {
    rt: &'a Runtime,
    name: &'a str,
    version: &'a str,
    links: Vec<Link>,
}

impl List<'_> {
    /// ADD through the list; the final result.
    fn add(&self, call: &Call<'_>) -> Value {
        let mut prev: Option<Value> = None;
        for link in &self.links {
            let conf = injected(link, self.name, self.version, prev.as_ref());
            let out = self.rt.run_bin(&link.bin, "ADD", call, &conf);
            assert_eq!(
                out.status,
                0,
                "ADD {}: {} {}",
                link.bin.display(),
                out.stdout,
                out.stderr
            );
            prev = Some(out.json());
        }
        prev.unwrap()
    }

    /// CHECK: every plugin with the final result.
    fn check(&self, call: &Call<'_>, result: &Value) -> Vec<Outcome> {
        self.links
            .iter()
            .map(|link| {
                let conf = injected(link, self.name, self.version, Some(result));
                self.rt.run_bin(&link.bin, "CHECK", call, &conf)
            })
            .collect()
    }

    /// DEL in reverse order with the final result; every plugin must succeed.
    fn del(&self, call: &Call<'_>, result: Option<&Value>) {
        for link in self.links.iter().rev() {
            let conf = injected(link, self.name, self.version, result);
            let out = self.rt.run_bin(&link.bin, "DEL", call, &conf);
            assert_eq!(
                out.status,
                0,
                "DEL {}: {} {}",
                link.bin.display(),
                out.stdout,
                out.stderr
            );
        }
    }
}

#[test]
fn nat_then_tuning_then_portmap_in_every_chaining_version() {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let hcn = hnsd.client();
    hcn.create_network(&reference_network("nat")).unwrap();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    for (i, version) in ["0.3.1", "0.4.0", "1.0.0"].iter().enumerate() {
        let pod = TestNetns::create(hnsd.dir().join(format!("pod{i}"))).unwrap();
        let netns = pod.path().display().to_string();
        let cid = format!("chain{i}");
        let call = Call::pod(&cid, &netns);
        let list = List {
            rt: &rt,
            name: "natNet",
            version,
            links: vec![
                ours("nat"),
                reference(
                    "tuning",
                    json!({"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}),
                ),
                reference(
                    "portmap",
                    json!({"type": "portmap", "capabilities": {"portMappings": true}}),
                ),
            ],
        };
        let result = list.add(&call);
        // Our result went through both reference plugins unchanged in substance.
        assert_eq!(result["cniVersion"], *version);
        assert_eq!(result["interfaces"][0]["name"], "eth0");
        assert_eq!(result["interfaces"][0]["sandbox"], netns.as_str());
        let addr = result["ips"][0]["address"].as_str().unwrap().to_string();
        let ep = hcn.get_endpoint_by_name(&format!("{cid}_natNet")).unwrap();
        assert_eq!(
            addr.split('/').next().unwrap(),
            ep.ip_configurations[0].ip_address
        );
        // tuning found our interface's namespace and applied its sysctl there.
        let somaxconn = run_in(pod.path(), "sysctl", &["-n", "net.core.somaxconn"]);
        assert_eq!(somaxconn.trim(), "512");
        if *version != "0.3.1" {
            for out in list.check(&call, &result) {
                assert_eq!(out.status, 0, "CHECK: {} {}", out.stdout, out.stderr);
            }
        }
        list.del(&call, Some(&result));
        assert!(hcn.get_endpoint_by_name(&format!("{cid}_natNet")).is_err());
        // DEL again, as a runtime retrying after a crash does, and without a prevResult.
        list.del(&call, None);
    }
    assert!(hcn.list_endpoints().unwrap().is_empty());
}

/// Writes a first plugin of a chain into `dir`: it reports a host-side interface with an
/// address and a route, as a plugin before ours in a list would.
fn fake_first(dir: &Path) -> PathBuf {
    let reply = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"host-side"}],"ips":[{"interface":0,"address":"192.0.2.77/32"}],"routes":[{"dst":"198.51.100.0/24"}],"dns":{"nameservers":["192.0.2.53"]}}"#;
    let path = dir.join("first");
    let script = format!(
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && printf '%s' '{reply}'\nexit 0\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_prev_result_before_ours_is_passed_on_and_checked_only_for_our_interface() {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let hcn = hnsd.client();
    hcn.create_network(&reference_network("nat")).unwrap();
    let rt = Runtime::new(hnsd.socket(), hnsd.dir());
    let pod = TestNetns::create(hnsd.dir().join("pod")).unwrap();
    let netns = pod.path().display().to_string();
    let call = Call::pod("second", &netns);
    let list = List {
        rt: &rt,
        name: "natNet",
        version: "1.0.0",
        links: vec![
            Link {
                bin: fake_first(hnsd.dir()),
                conf: json!({"type": "first"}),
            },
            ours("nat"),
            reference(
                "portmap",
                json!({"type": "portmap", "capabilities": {"portMappings": true}}),
            ),
        ],
    };
    let result = list.add(&call);
    // The first plugin's report, then ours, our address pointing at our interface.
    assert_eq!(result["interfaces"][0]["name"], "host-side");
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["ips"][0]["address"], "192.0.2.77/32");
    assert_eq!(result["ips"][1]["interface"], 1);
    assert_eq!(result["routes"][0]["dst"], "198.51.100.0/24");
    assert_eq!(result["dns"]["nameservers"][0], "192.0.2.53");
    for out in list.check(&call, &result) {
        assert_eq!(out.status, 0, "CHECK: {} {}", out.stdout, out.stderr);
    }
    // CHECK fails when our interface's MAC or address in the result is not the endpoint's.
    let nat = ours("nat");
    let mut wrong_mac = result.clone();
    wrong_mac["interfaces"][1]["mac"] = json!("02:00:00:00:00:01");
    let mut wrong_ip = result.clone();
    wrong_ip["ips"][1]["address"] = json!("10.0.250.250/16");
    for bad in [wrong_mac, wrong_ip] {
        let conf = injected(&nat, "natNet", "1.0.0", Some(&bad));
        let out = rt.run_bin(&nat.bin, "CHECK", &call, &conf);
        assert_ne!(out.status, 0, "{}", out.stdout);
    }
    list.del(&call, Some(&result));
    assert!(hcn.list_endpoints().unwrap().is_empty());
}
