//! A private hnsd for integration tests (feature `testing`).
//!
//! [`TestHnsd::start`] creates a temporary directory (state, socket, namespaces), a network
//! namespace that plays the host (the dataplane's bridges, veths and nft table live there,
//! never in the real host's namespace) and serves an hnsd in process on its own socket.
//! Dropping it stops the server, removes every network namespace it pinned (the host one
//! last: the kernel then destroys its links and nft table) and the directory, also when the
//! test failed.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hnsd = hnsd::testing::TestHnsd::start()?;
//! // In-process clients:
//! let hcn = hnsd.client();
//! // Processes the test runs (CNI plugins) find it through the environment:
//! let status = std::process::Command::new("my-plugin")
//!     .env(hcn::hnsd_client::SOCKET_ENV, hnsd.socket())
//!     .status()?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcn::hnsd_client::HnsdClient;

use crate::daemon::{Config, Daemon, StartError};
use crate::netns;

/// A named network namespace removed when dropped.
#[derive(Debug)]
pub struct TestNetns {
    path: PathBuf,
}

impl TestNetns {
    /// Creates a network namespace pinned at `path`.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        netns::create_named(&path)?;
        Ok(Self { path })
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a thread inside it.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        netns::in_netns(&self.path, f)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if let Err(e) = netns::remove_named(&self.path) {
            tracing::error!(error = %e, "removing a test network namespace failed");
        }
    }
}

/// A private hnsd.
#[derive(Debug)]
pub struct TestHnsd {
    daemon: Option<Daemon>,
    config: Config,
    host: Option<TestNetns>,
    dir: Option<tempfile::TempDir>,
}

impl TestHnsd {
    /// An hnsd with the netlink/nftables dataplane in a network namespace of its own.
    pub fn start() -> Result<Self, StartError> {
        Self::start_with(true)
    }

    /// An hnsd that keeps objects only (no root needed).
    pub fn start_without_dataplane() -> Result<Self, StartError> {
        Self::start_with(false)
    }

    fn start_with(dataplane: bool) -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("hnsd-test-")
            .tempdir()
            .map_err(|e| StartError::State(format!("temporary directory: {e}")))?;
        let host = if dataplane {
            Some(TestNetns::create(dir.path().join("host")).map_err(StartError::State)?)
        } else {
            None
        };
        let config = Config {
            socket: dir.path().join("hnsd.sock"),
            state_dir: dir.path().join("state"),
            netns_dir: dir.path().join("netns"),
            netns: host.as_ref().map(|h| h.path().to_path_buf()),
            dataplane,
        };
        let daemon = Daemon::start(&config)?;
        Ok(Self {
            daemon: Some(daemon),
            config,
            host,
            dir: Some(dir),
        })
    }

    /// Stops and starts the instance again on the same state (a service restart).
    pub fn restart(&mut self) -> Result<(), StartError> {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        self.daemon = Some(Daemon::start(&self.config)?);
        Ok(())
    }

    /// The socket (for `HNSD_SOCKET`).
    pub fn socket(&self) -> &Path {
        &self.config.socket
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The network namespace playing the host, when there is a dataplane.
    pub fn host_netns(&self) -> Option<&TestNetns> {
        self.host.as_ref()
    }

    /// The temporary directory (state, socket, namespaces).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/"))
    }

    /// The running engine.
    pub fn engine(&self) -> Option<&Arc<hcn::engine::Engine>> {
        self.daemon.as_ref().map(|d| d.engine())
    }

    /// An `hcn` client over the socket.
    pub fn client(&self) -> hcn::Hcn {
        hcn::Hcn::new(Arc::new(HnsdClient::new(self.socket())))
    }

    /// An HNS v1 client over the socket.
    pub fn hns(&self) -> hcn::v1::Hns {
        hcn::v1::Hns::new(Arc::new(HnsdClient::new(self.socket())))
    }
}

impl Drop for TestHnsd {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        // Namespaces hnsd created for HCN namespaces the test did not delete.
        if let Ok(entries) = std::fs::read_dir(&self.config.netns_dir) {
            for e in entries.flatten() {
                if let Err(err) = netns::remove_named(&e.path()) {
                    tracing::error!(error = %err, "removing a leftover network namespace");
                }
            }
        }
        self.host.take();
        self.dir.take();
    }
}

/// Two hosts for Overlay tests: two [`TestHnsd`] joined by an underlay veth `ul0` whose
/// addresses are the hosts' provider addresses ([`TwoHosts::provider_address`]), with
/// helpers for the documents flannel's VXLAN backend gives HNS on Windows.
#[derive(Debug)]
pub struct TwoHosts {
    /// The two instances.
    pub hosts: [TestHnsd; 2],
}

impl TwoHosts {
    /// The underlay adapter's name on both hosts.
    pub const UNDERLAY: &'static str = "ul0";

    /// Starts both instances and links their namespaces.
    pub fn start() -> Result<Self, String> {
        let hosts = [
            TestHnsd::start().map_err(|e| e.to_string())?,
            TestHnsd::start().map_err(|e| e.to_string())?,
        ];
        let peer = hosts[1]
            .host_netns()
            .ok_or("no host namespace")?
            .path()
            .display()
            .to_string();
        let ip = |ns: &TestNetns, args: Vec<String>| {
            ns.run(move || {
                let out = std::process::Command::new("ip")
                    .args(&args)
                    .output()
                    .map_err(|e| format!("ip: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "ip {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            })
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ns0 = hosts[0].host_netns().ok_or("no host namespace")?;
        ip(
            ns0,
            s(&[
                "link",
                "add",
                Self::UNDERLAY,
                "type",
                "veth",
                "peer",
                "name",
                Self::UNDERLAY,
                "netns",
                &peer,
            ]),
        )?;
        for (i, h) in hosts.iter().enumerate() {
            let ns = h.host_netns().ok_or("no host namespace")?;
            let cidr = format!("{}/24", Self::provider_address(i));
            ip(ns, s(&["addr", "add", &cidr, "dev", Self::UNDERLAY]))?;
            ip(ns, s(&["link", "set", Self::UNDERLAY, "up"]))?;
        }
        Ok(Self { hosts })
    }

    /// Host `i`'s provider address (192.168.77.1 and .2: private, only in these
    /// namespaces).
    pub fn provider_address(i: usize) -> String {
        format!("192.168.77.{}", i + 1)
    }

    /// Host `i`'s distributed router MAC (its Overlay bridges' `DrMacAddress`).
    pub fn router_mac(i: usize) -> String {
        format!("0e-00-00-00-0{}-01", i + 1)
    }

    /// An Overlay network of host `i` on `prefix` with gateway `gw` and VSID `vsid`, bound
    /// to the underlay, with the host's provider address and router MAC.
    pub fn overlay_network(
        i: usize,
        name: &str,
        prefix: &str,
        gw: &str,
        vsid: u32,
    ) -> hcn::schema::HostComputeNetwork {
        use hcn::schema::*;
        let policy = |t, s: serde_json::Value| NetworkPolicy {
            policy_type: t,
            settings: Some(RawJson::from_value(&s).expect("JSON of a policy")),
        };
        let mut n = network(name, NetworkType::Overlay, prefix, gw);
        n.policies = vec![
            policy(
                NetworkPolicyType::NetAdapterName,
                serde_json::json!({"NetworkAdapterName": Self::UNDERLAY}),
            ),
            policy(
                NetworkPolicyType::ProviderAddress,
                serde_json::json!({"ProviderAddress": Self::provider_address(i)}),
            ),
            policy(
                NetworkPolicyType::DrMacAddress,
                serde_json::json!({"Address": Self::router_mac(i)}),
            ),
        ];
        n.ipams[0].subnets[0].policies = vec![RawJson::from_value(
            &serde_json::json!({"Type": "VSID", "Settings": {"IsolationId": vsid}}),
        )
        .expect("JSON of a policy")];
        n
    }

    /// The `RemoteSubnetRoute` policy that sends `prefix` (VSID `vsid`) to host `to`.
    pub fn remote_subnet_route(to: usize, prefix: &str, vsid: u32) -> hcn::schema::NetworkPolicy {
        use hcn::schema::*;
        NetworkPolicy {
            policy_type: NetworkPolicyType::RemoteSubnetRoute,
            settings: RawJson::from_value(&RemoteSubnetRoutePolicySetting {
                destination_prefix: prefix.into(),
                isolation_id: u16::try_from(vsid).unwrap_or(u16::MAX),
                provider_address: Self::provider_address(to),
                distributed_router_mac_address: Self::router_mac(to),
            })
            .expect("JSON of a policy")
            .into(),
        }
    }
}

/// A network document of `network_type` with one subnet `prefix` whose default route goes
/// through `gw`.
pub fn network(
    name: &str,
    network_type: hcn::schema::NetworkType,
    prefix: &str,
    gw: &str,
) -> hcn::schema::HostComputeNetwork {
    use hcn::schema::*;
    HostComputeNetwork {
        name: name.into(),
        network_type,
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: prefix.into(),
                routes: vec![Route {
                    next_hop: gw.into(),
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
