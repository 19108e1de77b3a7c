//! hnsd's dataplane: the [`Dataplane`] of the engine, realized with netlink and nftables.
//!
//! * A network (NAT, L2Bridge, Overlay) is a bridge `<tag>b<n>` with its gateway
//!   addresses (IPv4 and IPv6); NAT networks masquerade their IPv4 subnets. IP forwarding
//!   is switched on in hnsd's network namespace.
//! * An attached endpoint is a veth pair: `<tag>v<n>` on the bridge, the peer created in the
//!   namespace's network namespace with its name (`eth0`…) and the endpoint's MAC, then its
//!   address, default route and routes.
//! * An Overlay network with a VSID also has a VXLAN port `<tag>x<n>` on its bridge,
//!   programmed with the remote endpoints and remote subnet routes HNS was given
//!   ([`vxlan`]).
//! * A namespace without `NetnsPath` is a network namespace hnsd creates under its netns
//!   directory and removes with the namespace.
//! * Rules (outbound NAT with exceptions, port mappings, load balancers) are the
//!   instance's nft table ([`nft`]).
//!
//! Other network types (Transparent, L2Tunnel, ICS, Private) are kept as state with no
//! kernel objects, and so are endpoints on them.
//!
//! Every call runs on the dataplane's [`worker`] thread, in hnsd's network namespace: the
//! one the process is in, or the one given in the configuration (tests run hnsd's dataplane
//! in a namespace they create, so nothing touches the host's networking).

pub mod netlink;
pub mod nft;
pub mod vxlan;
pub mod worker;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use hcn::engine::dataplane::{
    AttachmentSpec, Dataplane, DesiredState, DpResult, NamespaceSpec, NetworkSpec, RulesSpec,
};

use crate::netns;
use worker::{Ctx, Worker};

/// The netlink + nftables dataplane of one hnsd instance.
#[derive(Debug)]
pub struct LinuxDataplane {
    tag: String,
    netns: Option<PathBuf>,
    netns_dir: PathBuf,
    worker: Worker,
}

impl LinuxDataplane {
    /// The dataplane of instance `tag` (links and table are named after it), working in
    /// network namespace `netns` (`None`: the process's), creating namespaces under
    /// `netns_dir`. Its worker thread starts with the first call.
    pub fn new(tag: &str, netns: Option<PathBuf>, netns_dir: PathBuf) -> Self {
        Self {
            tag: tag.to_string(),
            netns,
            netns_dir,
            worker: Worker::default(),
        }
    }

    /// Stops the worker thread (it leaves hnsd's namespace and closes its sockets); later
    /// calls fail.
    pub fn stop(&self) {
        self.worker.stop();
    }

    /// Runs `f` on the worker, in hnsd's network namespace.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        self.worker.call(&self.netns, f)
    }

    /// The file of an owned namespace.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir
            .join(format!("hns-{}", id.to_ascii_lowercase()))
    }

    fn attach(&self, a: &AttachmentSpec) -> DpResult {
        let a = a.clone();
        let ns_file = std::fs::File::open(&a.netns)
            .map_err(|e| format!("open network namespace {}: {e}", a.netns.display()))?;
        self.run(move |ctx| {
            let bridge = bridge_index(ctx, &a.bridge)?;
            let peer = netlink::Peer {
                ifname: &a.ifname,
                mac: a.mac,
                netns: ns_file.as_fd(),
            };
            let mut made = ctx.block(netlink::create_veth(
                &ctx.home,
                &a.host_ifname,
                bridge,
                &peer,
            ));
            if let Err(netlink::VethError::NoBridge) = made {
                // A stale cached index (the bridge was made again): look it up once more.
                ctx.bridges.remove(&a.bridge);
                let bridge = bridge_index(ctx, &a.bridge)?;
                made = ctx.block(netlink::create_veth(
                    &ctx.home,
                    &a.host_ifname,
                    bridge,
                    &peer,
                ));
            }
            if let Err(netlink::VethError::Exists) = made {
                // A leftover host side of ours (a crash between creating it and recording
                // the attach) is replaced; otherwise the name is taken in the namespace.
                let h = ctx.home.clone();
                let host = a.host_ifname.clone();
                if ctx.block(netlink::index_of(&h, &host))?.is_none() {
                    return Err(format!(
                        "the namespace already has an interface {}",
                        a.ifname
                    ));
                }
                ctx.block(netlink::delete_link(&h, &host))?;
                made = ctx.block(netlink::create_veth(&h, &host, bridge, &peer));
            }
            match made {
                Ok(()) => {}
                Err(netlink::VethError::Exists) => {
                    return Err(format!("veth {}: the name is taken", a.host_ifname))
                }
                Err(netlink::VethError::NoBridge) => {
                    return Err(format!("bridge {} does not exist", a.bridge))
                }
                Err(netlink::VethError::Other(e)) => return Err(e),
            }
            let inside = netlink::Inside {
                ifname: &a.ifname,
                address: a.address.map(|n| (n.addr(), n.prefix_len())),
                gateway: a.gateway,
                routes: &a.routes,
                address6: a.address6.map(|n| (n.addr(), n.prefix_len())),
                gateway6: a.gateway6,
            };
            let pod = ctx.connect_in(&ns_file)?;
            let configured = pod.block(netlink::configure_inside(&pod.handle, &inside));
            drop(pod);
            configured
        })
    }

    fn remove_host_link(&self, name: &str) -> DpResult {
        if name.is_empty() {
            return Ok(());
        }
        let name = name.to_string();
        self.run(move |ctx| {
            let h = ctx.home.clone();
            ctx.block(netlink::delete_link(&h, &name))?;
            ctx.bridges.remove(&name);
            Ok(())
        })
    }
}

/// The index of bridge `name` (cached).
fn bridge_index(ctx: &mut Ctx, name: &str) -> Result<u32, String> {
    if let Some(i) = ctx.bridges.get(name) {
        return Ok(*i);
    }
    let h = ctx.home.clone();
    let i = ctx
        .block(netlink::index_of(&h, name))?
        .ok_or_else(|| format!("bridge {name} does not exist"))?;
    ctx.bridges.insert(name.to_string(), i);
    Ok(i)
}

/// Switches forwarding on in hnsd's namespace: IPv4 always, IPv6 once a network has an
/// IPv6 subnet (only then: with forwarding on, the namespace's interfaces stop taking
/// router advertisements).
fn enable_forwarding(v6: bool) -> Result<(), String> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
        .map_err(|e| format!("enable IPv4 forwarding: {e}"))?;
    if v6 {
        std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", b"1")
            .map_err(|e| format!("enable IPv6 forwarding: {e}"))?;
    }
    Ok(())
}

impl Dataplane for LinuxDataplane {
    fn ensure_network(&self, n: &NetworkSpec) -> DpResult {
        let bridge = n.bridge.clone();
        let vx = n.vxlan.clone();
        let addrs: Vec<(IpAddr, u8)> = n
            .subnets
            .iter()
            .map(|(net, gw)| (IpAddr::V4(*gw), net.prefix_len()))
            .chain(
                n.subnets6
                    .iter()
                    .map(|(net, gw)| (IpAddr::V6(*gw), net.prefix_len())),
            )
            .collect();
        let v6 = !n.subnets6.is_empty();
        self.run(move |ctx| {
            enable_forwarding(v6)?;
            let h = ctx.home.clone();
            let index = ctx.block(netlink::ensure_bridge(&h, &bridge, &addrs))?;
            ctx.bridges.insert(bridge, index);
            if let Some(vx) = &vx {
                ctx.block(vxlan::ensure(&h, index, vx))?;
            }
            Ok(())
        })
    }

    fn remove_network(&self, n: &NetworkSpec) -> DpResult {
        if let Some(vx) = &n.vxlan {
            self.remove_host_link(&vx.ifname)?;
        }
        self.remove_host_link(&n.bridge)
    }

    fn create_namespace(&self, id: &str) -> DpResult<PathBuf> {
        netns::create_named(&self.netns_path(id))
    }

    fn check_namespace(&self, ns: &NamespaceSpec) -> DpResult {
        netns::is_netns(&ns.netns)
    }

    fn remove_namespace(&self, ns: &NamespaceSpec) -> DpResult {
        if !ns.owned {
            return Ok(());
        }
        netns::remove_named(&ns.netns)
    }

    fn ensure_attachment(&self, a: &AttachmentSpec) -> DpResult {
        self.attach(a).inspect_err(|_| {
            // A failure after the veth exists leaves it behind: deleting the host side
            // removes the pair, wherever the peer is.
            if let Err(undo) = self.remove_host_link(&a.host_ifname) {
                tracing::error!(error = %undo, "removing a half-made veth failed");
            }
        })
    }

    fn remove_attachment(&self, a: &AttachmentSpec) -> DpResult {
        self.remove_host_link(&a.host_ifname)
    }

    fn sync_rules(&self, rules: &RulesSpec) -> DpResult {
        let (tag, rules) = (self.tag.clone(), rules.clone());
        self.run(move |ctx| nft::sync(&tag, &mut ctx.rules, &rules))
    }

    fn reconcile(&self, d: &DesiredState) -> DpResult {
        for n in &d.networks {
            self.ensure_network(n)?;
        }
        for ns in d.namespaces.iter().filter(|n| n.owned) {
            if ns.netns.as_os_str().is_empty() || netns::is_netns(&ns.netns).is_ok() {
                continue;
            }
            // An owned namespace whose pin is gone (a reboot): make it again at its path.
            netns::create_named(&ns.netns)?;
        }
        // Links of this instance that the state does not name are leftovers: remove them.
        let keep: Vec<String> = d
            .networks
            .iter()
            .flat_map(|n| {
                std::iter::once(n.bridge.clone()).chain(n.vxlan.iter().map(|v| v.ifname.clone()))
            })
            .chain(d.attachments.iter().map(|a| a.host_ifname.clone()))
            .collect();
        let tag = self.tag.clone();
        let present = self.run(move |ctx| {
            let h = ctx.home.clone();
            ctx.block(netlink::link_names(&h))
        })?;
        for name in present.iter().filter(|n| {
            n.strip_prefix(tag.as_str())
                .is_some_and(|rest| rest.starts_with(['b', 'v', 'p', 'x']))
        }) {
            if !keep.contains(name) {
                tracing::info!(link = %name, "removing a link the state does not name");
                self.remove_host_link(name)?;
            }
        }
        for a in &d.attachments {
            if present.contains(&a.host_ifname) {
                continue;
            }
            if netns::is_netns(&a.netns).is_err() {
                tracing::warn!(endpoint = %a.endpoint_id, netns = %a.netns.display(),
                    "the endpoint's network namespace is gone; not recreating its veth");
                continue;
            }
            self.ensure_attachment(a)?;
        }
        self.sync_rules(&d.rules)
    }
}
