//! Helpers of the plugins' integration tests: running a plugin binary as a runtime does
//! (environment + stdin, against a private hnsd), the reference's test configuration and
//! networks (spec §2.8), and TCP in network namespaces.

#![allow(dead_code)] // each test binary uses a part

pub mod net;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hcn::schema::*;
use hcn::RawJson;
use serde_json::{json, Value};

/// The address the reference's tests read from the host's first interface; here the host
/// side of the "outside" link (TEST-NET-1, only ever inside the tests' namespaces).
pub const HOST_IP: &str = "192.0.2.1";

/// The three plugins.
pub const PLUGINS: [&str; 3] = ["nat", "sdnbridge", "sdnoverlay"];

/// The binary of plugin `name`.
pub fn plugin_bin(name: &str) -> &'static str {
    match name {
        "nat" => env!("CARGO_BIN_EXE_nat"),
        "sdnbridge" => env!("CARGO_BIN_EXE_sdnbridge"),
        "sdnoverlay" => env!("CARGO_BIN_EXE_sdnoverlay"),
        other => panic!("no plugin {other}"),
    }
}

/// What one plugin run printed and returned.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status.
    pub status: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

impl Outcome {
    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {:?}", self.stdout, self.stderr))
    }

    /// Panics unless the run succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.status, 0,
            "stdout {} stderr {}",
            self.stdout, self.stderr
        );
        self
    }

    /// The CNI error code printed (panics when the run succeeded).
    pub fn code(&self) -> u64 {
        assert_ne!(self.status, 0, "the run succeeded: {}", self.stdout);
        self.json()["code"].as_u64().unwrap()
    }
}

/// A runtime's view of the plugins: where they run, which hnsd they use.
#[derive(Debug)]
pub struct Runtime {
    /// The hnsd socket (`HNSD_SOCKET`).
    pub socket: PathBuf,
    /// The working directory of the runs (the log lands there).
    pub dir: PathBuf,
    /// `CNI_PATH`.
    pub cni_path: String,
}

impl Runtime {
    /// Runs for the hnsd at `socket`, working in `dir`.
    pub fn new(socket: &Path, dir: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
            dir: dir.to_path_buf(),
            cni_path: dir.display().to_string(),
        }
    }

    /// Runs `plugin` for `command` with stdin `conf`.
    pub fn run(&self, plugin: &str, command: &str, call: &Call<'_>, conf: &str) -> Outcome {
        self.run_bin(Path::new(plugin_bin(plugin)), command, call, conf)
    }

    /// Runs the CNI plugin executable `bin` (ours or another's, as a chain does) for
    /// `command` with stdin `conf`.
    pub fn run_bin(&self, bin: &Path, command: &str, call: &Call<'_>, conf: &str) -> Outcome {
        let Call {
            container,
            netns,
            ifname,
            cni_args,
        } = *call;
        let mut child = Command::new(bin)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HNSD_SOCKET", &self.socket)
            .env("WINCNI_LOG", self.dir.join("wincni.log"))
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &self.cni_path)
            .env("CNI_ARGS", cni_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let written = child.stdin.take().unwrap().write_all(conf.as_bytes());
        // A plugin that fails before reading stdin (missing environment) closes it early;
        // runtimes ignore that broken pipe too (Go's exec does), the output tells.
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
        let out = child.wait_with_output().unwrap();
        Outcome {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// ADD of container `cid` in `netns` as `eth0`, with Kubernetes args of namespace
    /// `default`.
    pub fn add(&self, plugin: &str, cid: &str, netns: &str, conf: &str) -> Outcome {
        self.run(plugin, "ADD", &Call::pod(cid, netns), conf)
    }

    /// DEL of container `cid`.
    pub fn del(&self, plugin: &str, cid: &str, netns: &str, conf: &str) -> Outcome {
        self.run(plugin, "DEL", &Call::pod(cid, netns), conf)
    }
}

/// The per-invocation environment of a run.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// `CNI_CONTAINERID`.
    pub container: &'a str,
    /// `CNI_NETNS`.
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub cni_args: &'a str,
}

impl<'a> Call<'a> {
    /// Container `cid` in `netns` as `eth0`, with Kubernetes args of namespace `default`.
    pub fn pod(cid: &'a str, netns: &'a str) -> Self {
        Self {
            container: cid,
            netns,
            ifname: "eth0",
            cni_args: K8S_ARGS,
        }
    }

    /// The same with interface `ifname`.
    pub fn ifname(self, ifname: &'a str) -> Self {
        Self { ifname, ..self }
    }
}

/// The `CNI_ARGS` a Kubernetes runtime passes.
pub const K8S_ARGS: &str =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=x";

/// The HCN network type and test network name of each plugin (spec §2.7).
pub fn network_of(plugin: &str) -> (NetworkType, &'static str) {
    match plugin {
        "nat" => (NetworkType::Nat, "natNet"),
        "sdnbridge" => (NetworkType::L2Bridge, "bridgeNet"),
        "sdnoverlay" => (NetworkType::Overlay, "overlayNet"),
        other => panic!("no plugin {other}"),
    }
}

/// The gateway of the reference's test subnet for `plugin` (sdnbridge uses .2, the
/// address of its host gateway endpoint).
pub fn gateway_of(plugin: &str) -> &'static str {
    if plugin == "sdnbridge" {
        "10.0.0.2"
    } else {
        "10.0.0.1"
    }
}

/// The `AdditionalArgs` endpoint policies the reference's bridge and overlay tests add, as
/// `(Type, Settings)`.
pub fn reference_policies(plugin: &str) -> Vec<(&'static str, String)> {
    match plugin {
        "nat" => Vec::new(),
        _ => {
            let mut p = vec![
                (
                    "OutBoundNAT",
                    format!(r#"{{"Exceptions":["10.0.0.0/16","{HOST_IP}/32"]}}"#),
                ),
                (
                    "SDNRoute",
                    r#"{"DestinationPrefix":"11.0.0.0/8","NeedEncap":true}"#.to_string(),
                ),
            ];
            if plugin == "sdnoverlay" {
                p.push((
                    "ProviderAddress",
                    format!(r#"{{"ProviderAddress":"{HOST_IP}"}}"#),
                ));
            }
            p
        }
    }
}

/// The reference's test configuration (spec §2.8) at CNI version `version`, with extra
/// top-level keys merged in.
pub fn reference_config(plugin: &str, version: &str, extra: Value) -> String {
    let (_, name) = network_of(plugin);
    let args: Vec<Value> = reference_policies(plugin)
        .into_iter()
        .map(|(t, s)| {
            let settings: Value = serde_json::from_str(&s).unwrap();
            json!({"Name": "EndpointPolicy", "Value": {"Type": t, "Settings": settings}})
        })
        .collect();
    let mut conf = json!({
        "cniVersion": version,
        "name": name,
        "type": plugin,
        "capabilities": {"portMappings": true, "dns": true},
        "dns": {"Nameservers": ["10.50.10.50", "8.8.8.8"],
                "Search": ["svc.cluster.local", "svc.cluster.local"]},
        "ipam": {"environment": "mas", "subnet": "10.0.0.0/16",
                 "routes": [{"dst": "0.0.0.0/0", "GW": gateway_of(plugin)}]},
        "AdditionalArgs": args,
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut conf, extra) {
        c.extend(e);
    }
    conf.to_string()
}

/// The network the reference's tests create for `plugin` (spec §2.7): the 10.0.0.0/16
/// subnet, a `NetAdapterName` policy for bridge and overlay, and the VSID 4096 subnet
/// policy for overlay.
pub fn reference_network(plugin: &str) -> HostComputeNetwork {
    let (network_type, name) = network_of(plugin);
    let mut policies = Vec::new();
    let mut subnet_policies = Vec::new();
    if plugin != "nat" {
        policies.push(
            NetworkPolicy::new(
                NetworkPolicyType::NetAdapterName,
                &NetAdapterNameNetworkPolicySetting {
                    // The host's uplink (the reference takes the host's first interface):
                    // an Overlay network's VXLAN is bound to it.
                    network_adapter_name: net::UPLINK.into(),
                },
            )
            .unwrap(),
        );
    }
    if plugin == "sdnoverlay" {
        subnet_policies.push(
            RawJson::from_text(r#"{"Type":"VSID","Settings":{"IsolationId":4096}}"#).unwrap(),
        );
    }
    HostComputeNetwork {
        name: name.into(),
        network_type,
        policies,
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: "10.0.0.0/16".into(),
                policies: subnet_policies,
                routes: vec![Route {
                    next_hop: gateway_of(plugin).into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }],
                ..Default::default()
            }],
        }],
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    }
}

/// A unique name for this process and `what`.
pub fn unique(what: &str) -> String {
    format!("{what}{}", std::process::id())
}
