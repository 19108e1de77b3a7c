//! Fuzzes what a CNI plugin decodes from a runtime: the network configuration on stdin
//! through the whole protocol layer (the skel's checks, the version check, the result
//! printed in the configuration's version), the plugin's own reading of it (network plan,
//! `AdditionalArgs` policies, port mappings), `CNI_ARGS`, and an IPAM delegate's reply.
//! Nothing may panic; every failure must come back as a CNI error.
#![no_main]

use cni::config::{parse_cni_args, K8sArgs, NetworkConfig};
use cni::plan::{port_mapping_policies, NetworkPlan};
use cni::result::{CniResult, Interface, IpConfig};
use cni::skel::{self, CmdArgs, Handler};
use cni::PluginError;
use libfuzzer_sys::fuzz_target;

/// A handler that reads the configuration as the real one does, without HNS.
struct Offline;

impl Handler for Offline {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        let plan = NetworkPlan::new(&cfg, &K8sArgs::default())?;
        let _ = plan.network_document();
        port_mapping_policies(&cfg)?;
        Ok(CniResult {
            interfaces: vec![Interface {
                name: args.ifname.clone(),
                mac: "00:15:5d:00:00:01".into(),
                sandbox: args.netns.clone(),
            }],
            ips: vec![IpConfig {
                interface: Some(0),
                address: "10.0.0.2/16".parse().expect("a valid literal"),
                gateway: plan.gateway,
            }],
        })
    }
    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        NetworkConfig::parse(&args.stdin).map(drop)
    }
    fn check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        NetworkConfig::parse(&args.stdin).map(drop)
    }
    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError> {
        NetworkConfig::parse(&args.stdin).map(drop)
    }
    fn status(&self, _: &CmdArgs) -> Result<(), PluginError> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    for command in ["ADD", "DEL", "CHECK", "GC"] {
        let env = |k: &str| -> Option<String> {
            Some(
                match k {
                    "CNI_COMMAND" => command,
                    "CNI_CONTAINERID" => "ctr",
                    "CNI_NETNS" => "/var/run/netns/x",
                    "CNI_IFNAME" => "eth0",
                    "CNI_PATH" => "/opt/cni/bin",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = skel::run(&env, &mut &data[..], &mut out, &mut err, || Ok(Offline));
        // Success prints a result (ADD) or nothing; failure prints a CNI error object.
        let text = String::from_utf8(out).expect("the plugin prints UTF-8");
        if status != 0 {
            let e: serde_json::Value = serde_json::from_str(&text).expect("errors are JSON");
            assert!(e["code"].as_u64().is_some_and(|c| c != 0));
        } else if command == "ADD" {
            serde_json::from_str::<serde_json::Value>(&text).expect("results are JSON");
        }
    }
    let _ = cni::ipam::parse_reply(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_cni_args(text);
    }
});
