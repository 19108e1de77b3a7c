//! The plugin core against the in-process HCN engine (no socket, no root, any OS) with a
//! recording IPAM: the rollbacks and gateway rules of ADD, and DEL's IPAM-first order.

use std::sync::Mutex;

use hcn::engine::Engine;
use hcn::schema::{NamespaceType, V2_SCHEMA_VERSION};

use super::*;
use crate::skel::Command;

/// An IPAM that records its calls and answers from a script.
#[derive(Debug, Default)]
struct FakeIpam {
    calls: Mutex<Vec<String>>,
    reply: IpamResult,
    fail_del: bool,
}

impl Ipam for FakeIpam {
    fn add(&self, args: &CmdArgs, plugin: &str) -> Result<IpamResult, PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("ADD {plugin} {}", args.container_id));
        Ok(self.reply)
    }
    fn del(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("DEL {plugin} {}", args.container_id));
        if self.fail_del {
            return Err(PluginError::Ipam("store locked".into()));
        }
        Ok(())
    }
    fn gc(&self, _args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.calls.lock().unwrap().push(format!("GC {plugin}"));
        Ok(())
    }
    fn status(&self, _args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.calls.lock().unwrap().push(format!("STATUS {plugin}"));
        Ok(())
    }
}

const CONF: &str = r#"{"cniVersion":"1.0.0","name":"natNet","type":"nat",
    "ipam":{"type":"fake","subnet":"10.0.0.0/16"}}"#;

fn plugin(ipam: FakeIpam) -> Plugin<FakeIpam> {
    Plugin::new(Engine::in_memory().client(), ipam)
}

fn reply() -> IpamResult {
    IpamResult {
        ip4: Some("10.0.3.4/16".parse().unwrap()),
        gw4: Some("10.0.0.1".parse().unwrap()),
        ..Default::default()
    }
}

fn args(p: &Plugin<FakeIpam>, command: Command, conf: &str) -> CmdArgs {
    let ns = p
        .hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    CmdArgs {
        command,
        container_id: "c1".into(),
        netns: ns.id,
        ifname: "eth0".into(),
        args: String::new(),
        path: "/opt/cni/bin".into(),
        stdin: conf.as_bytes().to_vec(),
    }
}

#[test]
fn add_uses_the_ipam_address_and_del_releases_it_first() {
    let p = plugin(FakeIpam {
        reply: reply(),
        ..Default::default()
    });
    let a = args(&p, Command::Add, CONF);
    let r = p.add(&a).unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.0.3.4/16");
    assert_eq!(r.interfaces[0].sandbox, a.netns);
    let ep = p.hcn.get_endpoint_by_name("c1_natNet").unwrap();
    assert_eq!(ep.ip_configurations[0].ip_address, "10.0.3.4");
    p.del(&a).unwrap();
    assert_eq!(
        *p.ipam.calls.lock().unwrap(),
        ["ADD fake c1", "DEL fake c1"]
    );
    assert!(p.hcn.list_endpoints().unwrap().is_empty());
}

#[test]
fn a_failed_attach_removes_the_endpoint_and_releases_the_addresses() {
    let p = plugin(FakeIpam {
        reply: reply(),
        ..Default::default()
    });
    let mut a = args(&p, Command::Add, CONF);
    a.netns = "5F3C1B2A-0000-4000-8000-00155D00CCCC".into();
    let e = p.add(&a).unwrap_err();
    assert_eq!(e.code(), 66, "{e}");
    assert!(p.hcn.list_endpoints().unwrap().is_empty());
    assert_eq!(
        *p.ipam.calls.lock().unwrap(),
        ["ADD fake c1", "DEL fake c1"]
    );
}

#[test]
fn an_ipam_del_failure_fails_del_and_keeps_the_endpoint() {
    let p = plugin(FakeIpam {
        reply: reply(),
        fail_del: true,
        ..Default::default()
    });
    let a = args(&p, Command::Add, CONF);
    p.add(&a).unwrap();
    let e = p.del(&a).unwrap_err();
    assert!(e.to_string().contains("ipam deletion failed"), "{e}");
    p.hcn.get_endpoint_by_name("c1_natNet").unwrap();
}

#[test]
fn a_missing_dual_stack_network_is_81_and_nothing_is_allocated() {
    let p = plugin(FakeIpam::default());
    let a = args(
        &p,
        Command::Add,
        r#"{"cniVersion":"1.0.0","name":"none","type":"sdnbridge","ipam":{"type":"fake"},
            "optionalFlags":{"enableDualStack":true}}"#,
    );
    assert_eq!(p.add(&a).unwrap_err().code(), 81);
    assert!(p.ipam.calls.lock().unwrap().is_empty());
}

#[test]
fn concurrent_adds_share_the_network_one_creates() {
    let p = std::sync::Arc::new(plugin(FakeIpam::default()));
    let conf =
        r#"{"cniVersion":"1.0.0","name":"natNet","type":"nat","ipam":{"subnet":"10.0.0.0/16"}}"#;
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            let mut a = args(&p, Command::Add, conf);
            a.container_id = format!("c{i}");
            std::thread::spawn(move || p.add(&a).map(|r| r.ips[0].address))
        })
        .collect();
    let mut addrs: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap().to_string())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    assert_eq!(p.hcn.list_networks().unwrap().len(), 1);
}

fn cfg(text: &str) -> NetworkConfig {
    NetworkConfig::parse(text.as_bytes()).unwrap()
}

fn addresses(conf: &str, allocated: Option<&IpamResult>) -> EndpointAddresses {
    let c = cfg(conf);
    let plan = NetworkPlan::new(&c, &Default::default()).unwrap();
    Plugin::<FakeIpam>::addresses(&c, &plan, allocated).unwrap()
}

#[test]
fn gateways_from_ipam_force_bridge_and_additional_routes() {
    // Without IPAM: the configuration's gateway; HNS allocates the address.
    let a = addresses(CONF, None);
    assert_eq!(
        (a.ip4, a.gw4.map(|g| g.to_string())),
        (None, Some("10.0.0.1".into()))
    );
    // IPAM's gateway wins; forceBridgeGateway makes it .2 of the allocated subnet.
    let r = IpamResult {
        gw4: Some("10.0.0.254".parse().unwrap()),
        ..reply()
    };
    assert_eq!(
        addresses(CONF, Some(&r)).gw4.unwrap().to_string(),
        "10.0.0.254"
    );
    let forced = r#"{"name":"n","type":"nat","ipam":{"type":"fake"},
        "optionalFlags":{"forceBridgeGateway":true}}"#;
    assert_eq!(
        addresses(forced, Some(&r)).gw4.unwrap().to_string(),
        "10.0.0.2"
    );
    // gatewayFromAdditionalRoutes fills only what is unset.
    let extra = r#"{"name":"n","type":"sdnbridge","optionalFlags":{"gatewayFromAdditionalRoutes":true},
        "additionalRoutes":[{"dst":"10.0.0.0/8","gw":"10.9.9.9"},{"dst":"0.0.0.0/0","gw":"10.0.0.3"},
        {"dst":"::/0","gw":"fd00::101"},{"dst":"0.0.0.0/0","gw":"10.0.0.4"}]}"#;
    let a = addresses(extra, None);
    assert_eq!(a.gw4.unwrap().to_string(), "10.0.0.3");
    assert_eq!(a.gw6.unwrap().to_string(), "fd00::101");
    let bad = r#"{"name":"n","type":"nat","optionalFlags":{"gatewayFromAdditionalRoutes":true},
        "additionalRoutes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]}"#;
    let c = cfg(bad);
    let plan = NetworkPlan::new(&c, &Default::default()).unwrap();
    assert_eq!(
        Plugin::<FakeIpam>::addresses(&c, &plan, None)
            .unwrap_err()
            .code(),
        7
    );
}

#[test]
fn check_gc_and_status_in_process() {
    let p = plugin(FakeIpam::default());
    let conf =
        r#"{"cniVersion":"1.1.0","name":"natNet","type":"nat","ipam":{"subnet":"10.0.0.0/16"}}"#;
    let a = args(&p, Command::Add, conf);
    p.add(&a).unwrap();
    p.check(&a).unwrap();
    p.status(&a).unwrap();
    let gc = CmdArgs {
        stdin:
            br#"{"cniVersion":"1.1.0","name":"natNet","type":"nat","cni.dev/valid-attachments":[]}"#
                .to_vec(),
        ..a.clone()
    };
    // A GC that names no attachments list removes nothing.
    let blind = CmdArgs {
        stdin: br#"{"cniVersion":"1.1.0","name":"natNet","type":"nat"}"#.to_vec(),
        ..a.clone()
    };
    p.gc(&blind).unwrap();
    assert_eq!(p.hcn.list_endpoints().unwrap().len(), 1);
    p.gc(&gc).unwrap();
    assert!(p.hcn.list_endpoints().unwrap().is_empty());
    assert!(p.check(&a).is_err());
    // The network document kept its schema version.
    assert_eq!(
        p.hcn.get_network_by_name("natNet").unwrap().schema_version,
        V2_SCHEMA_VERSION
    );
}

#[test]
fn gc_and_status_are_forwarded_to_the_ipam_delegate() {
    let p = plugin(FakeIpam {
        reply: reply(),
        ..Default::default()
    });
    let conf = CONF.replace("1.0.0", "1.1.0");
    let a = args(&p, Command::Add, &conf);
    p.add(&a).unwrap();
    let gc = CmdArgs {
        stdin: conf
            .replacen(
                '{',
                r#"{"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],"#,
                1,
            )
            .into_bytes(),
        ..a.clone()
    };
    p.gc(&gc).unwrap();
    p.status(&a).unwrap();
    assert_eq!(
        *p.ipam.calls.lock().unwrap(),
        ["ADD fake c1", "GC fake", "STATUS fake"]
    );
    // The valid container's endpoint stays.
    assert_eq!(p.hcn.list_endpoints().unwrap().len(), 1);
}
