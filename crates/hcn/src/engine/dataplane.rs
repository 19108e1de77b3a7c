//! The engine's boundary to the kernel: what the objects mean as Linux networking, and the
//! [`Dataplane`] that realizes it.
//!
//! The engine computes specs from its objects ([`NetworkSpec`], [`AttachmentSpec`],
//! [`RulesSpec`]) and calls the dataplane with them; every call is idempotent ("ensure"), so
//! the same calls serve a change and the reconciliation after a restart
//! ([`Dataplane::reconcile`] with the whole [`DesiredState`]). hnsd implements the trait
//! with netlink and nftables; [`NullDataplane`] keeps state only (the in-process engine of
//! unit tests), and [`RecordingDataplane`] records the calls and injects failures.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Mutex;

use ipnet::{Ipv4Net, Ipv6Net};

/// A dataplane failure: what could not be done.
pub type DpResult<T = ()> = std::result::Result<T, String>;

/// A network as the kernel sees it: a bridge with the gateway address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The network GUID.
    pub id: String,
    /// The bridge name (at most 15 bytes, unique per hnsd instance).
    pub bridge: String,
    /// The IPv4 subnets with their gateway (assigned to the bridge).
    pub subnets: Vec<(Ipv4Net, Ipv4Addr)>,
    /// The IPv6 subnets with their gateway (assigned to the bridge; routed, never NATed).
    pub subnets6: Vec<(Ipv6Net, Ipv6Addr)>,
    /// Whether traffic leaving the subnets is masqueraded (NAT networks).
    pub masquerade: bool,
    /// The VXLAN port of an Overlay network with a VSID (its link to other hosts).
    pub vxlan: Option<VxlanSpec>,
}

/// An Overlay network's VXLAN device, enslaved to the network's bridge, and what it knows
/// of the other hosts. Nothing is learned: every remote address is programmed, as HNS
/// programs its virtual switch from remote endpoints and remote subnet routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    /// The device name (at most 15 bytes, unique per hnsd instance).
    pub ifname: String,
    /// The VNI: the subnet's `VSID` policy.
    pub vni: u32,
    /// The UDP port: the network's `VxlanPort` policy, else 4789.
    pub port: u16,
    /// The local provider address: the network's `ProviderAddress` policy.
    pub local: Option<Ipv4Addr>,
    /// The underlay device: the network's `NetAdapterName` policy.
    pub underlay: Option<String>,
    /// The MAC of this host's distributed router (the bridge): the `DrMacAddress` policy.
    pub router_mac: Option<[u8; 6]>,
    /// Remote endpoints (flag RemoteEndpoint, with a `ProviderAddress` policy): same L2
    /// segment, reached through their host.
    pub remote_endpoints: Vec<RemoteEndpointSpec>,
    /// `RemoteSubnetRoute` policies: another host's subnet, routed to its distributed
    /// router.
    pub remote_subnets: Vec<RemoteSubnetSpec>,
}

/// One remote endpoint of an Overlay network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpointSpec {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub address: Ipv4Addr,
    /// The provider address of its host.
    pub provider_address: Ipv4Addr,
}

/// One remote subnet of an Overlay network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSubnetSpec {
    /// The subnet.
    pub prefix: Ipv4Net,
    /// The provider address of its host.
    pub provider_address: Ipv4Addr,
    /// The MAC of that host's distributed router.
    pub router_mac: [u8; 6],
}

/// An endpoint attached to a namespace: a veth pair, host side on the bridge, peer in the
/// namespace with the endpoint's address, MAC and routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentSpec {
    /// The endpoint GUID.
    pub endpoint_id: String,
    /// The host-side veth name.
    pub host_ifname: String,
    /// The bridge of the endpoint's network.
    pub bridge: String,
    /// The network namespace file.
    pub netns: PathBuf,
    /// The interface name inside the namespace.
    pub ifname: String,
    /// The MAC address (`aa:bb:..` form).
    pub mac: [u8; 6],
    /// The address and prefix.
    pub address: Option<Ipv4Net>,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Extra routes (destination, next hop).
    pub routes: Vec<(Ipv4Net, Ipv4Addr)>,
    /// The IPv6 address and prefix, if any.
    pub address6: Option<Ipv6Net>,
    /// The IPv6 default gateway, if any.
    pub gateway6: Option<Ipv6Addr>,
}

/// A namespace: the network namespace file, and whether hnsd created (and so removes) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// The namespace GUID.
    pub id: String,
    /// The network namespace file ([`Dataplane::create_namespace`] fills it for an owned
    /// namespace).
    pub netns: PathBuf,
    /// Whether hnsd owns it.
    pub owned: bool,
}

/// A DNAT rule: a port mapping or one frontend of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatRule {
    /// IANA protocol (6 or 17).
    pub protocol: u8,
    /// The address matched (`None`: any local address of the host).
    pub vip: Option<Ipv4Addr>,
    /// The port matched.
    pub port: u16,
    /// The backends (one for a port mapping).
    pub backends: Vec<Ipv4Addr>,
    /// The backends' port.
    pub backend_port: u16,
}

/// Masquerade of one source subnet, except towards the exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasqueradeRule {
    /// Source addresses (a network's subnet, or one endpoint's address).
    pub source: Ipv4Net,
    /// Destinations left alone (the subnet itself is always excluded).
    pub exceptions: Vec<Ipv4Net>,
    /// The bridge the sources sit on (traffic back out of it is not NATed).
    pub bridge: String,
}

/// Everything the nft table of this instance holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesSpec {
    /// Outbound NAT.
    pub masquerade: Vec<MasqueradeRule>,
    /// Port mappings and load balancers.
    pub dnat: Vec<DnatRule>,
}

/// The whole desired kernel state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Networks with a dataplane.
    pub networks: Vec<NetworkSpec>,
    /// Namespaces.
    pub namespaces: Vec<NamespaceSpec>,
    /// Attached endpoints.
    pub attachments: Vec<AttachmentSpec>,
    /// The rules.
    pub rules: RulesSpec,
}

/// The kernel side of hnsd. Every method is idempotent.
pub trait Dataplane: Send + Sync + std::fmt::Debug {
    /// Creates (or checks) a network's bridge and addresses.
    fn ensure_network(&self, network: &NetworkSpec) -> DpResult;
    /// Removes a network's bridge (absent is fine).
    fn remove_network(&self, network: &NetworkSpec) -> DpResult;
    /// Creates an owned network namespace; returns its file.
    fn create_namespace(&self, id: &str) -> DpResult<PathBuf>;
    /// Checks that a namespace's file is a network namespace.
    fn check_namespace(&self, namespace: &NamespaceSpec) -> DpResult;
    /// Removes an owned network namespace (absent is fine).
    fn remove_namespace(&self, namespace: &NamespaceSpec) -> DpResult;
    /// Creates (or repairs) an endpoint's veth pair in its namespace.
    fn ensure_attachment(&self, attachment: &AttachmentSpec) -> DpResult;
    /// Removes an endpoint's veth pair (absent is fine).
    fn remove_attachment(&self, attachment: &AttachmentSpec) -> DpResult;
    /// Replaces the instance's nft table with `rules`.
    fn sync_rules(&self, rules: &RulesSpec) -> DpResult;
    /// Makes the kernel match `desired`: ensures everything in it and removes this
    /// instance's links that are not (after a restart).
    fn reconcile(&self, desired: &DesiredState) -> DpResult;
}

/// No kernel state: the engine keeps objects only. Owned namespaces get no file.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullDataplane;

impl Dataplane for NullDataplane {
    fn ensure_network(&self, _: &NetworkSpec) -> DpResult {
        Ok(())
    }
    fn remove_network(&self, _: &NetworkSpec) -> DpResult {
        Ok(())
    }
    fn create_namespace(&self, _: &str) -> DpResult<PathBuf> {
        Ok(PathBuf::new())
    }
    fn check_namespace(&self, _: &NamespaceSpec) -> DpResult {
        Ok(())
    }
    fn remove_namespace(&self, _: &NamespaceSpec) -> DpResult {
        Ok(())
    }
    fn ensure_attachment(&self, _: &AttachmentSpec) -> DpResult {
        Ok(())
    }
    fn remove_attachment(&self, _: &AttachmentSpec) -> DpResult {
        Ok(())
    }
    fn sync_rules(&self, _: &RulesSpec) -> DpResult {
        Ok(())
    }
    fn reconcile(&self, _: &DesiredState) -> DpResult {
        Ok(())
    }
}

/// One recorded dataplane call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpCall {
    /// `ensure_network(id)`.
    EnsureNetwork(NetworkSpec),
    /// `remove_network(id)`.
    RemoveNetwork(String),
    /// `create_namespace(id)`.
    CreateNamespace(String),
    /// `check_namespace`.
    CheckNamespace(String),
    /// `remove_namespace(id)`.
    RemoveNamespace(String),
    /// `ensure_attachment`.
    EnsureAttachment(AttachmentSpec),
    /// `remove_attachment(endpoint id)`.
    RemoveAttachment(String),
    /// `sync_rules`.
    SyncRules(RulesSpec),
    /// `reconcile`.
    Reconcile(DesiredState),
}

/// Records every call; [`RecordingDataplane::fail_next`] makes the next call fail.
#[derive(Debug, Default)]
pub struct RecordingDataplane {
    calls: Mutex<Vec<DpCall>>,
    fail: Mutex<Option<String>>,
}

impl RecordingDataplane {
    /// The calls so far.
    pub fn calls(&self) -> Vec<DpCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes the next call fail with `message`.
    pub fn fail_next(&self, message: &str) {
        *self.fail.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_string());
    }

    fn record(&self, call: DpCall) -> DpResult {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call);
        match self.fail.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(m) => Err(m),
            None => Ok(()),
        }
    }
}

impl Dataplane for RecordingDataplane {
    fn ensure_network(&self, n: &NetworkSpec) -> DpResult {
        self.record(DpCall::EnsureNetwork(n.clone()))
    }
    fn remove_network(&self, n: &NetworkSpec) -> DpResult {
        self.record(DpCall::RemoveNetwork(n.id.clone()))
    }
    fn create_namespace(&self, id: &str) -> DpResult<PathBuf> {
        self.record(DpCall::CreateNamespace(id.to_string()))?;
        Ok(PathBuf::from(format!("/run/netns/test-{id}")))
    }
    fn check_namespace(&self, ns: &NamespaceSpec) -> DpResult {
        self.record(DpCall::CheckNamespace(ns.id.clone()))
    }
    fn remove_namespace(&self, ns: &NamespaceSpec) -> DpResult {
        self.record(DpCall::RemoveNamespace(ns.id.clone()))
    }
    fn ensure_attachment(&self, a: &AttachmentSpec) -> DpResult {
        self.record(DpCall::EnsureAttachment(a.clone()))
    }
    fn remove_attachment(&self, a: &AttachmentSpec) -> DpResult {
        self.record(DpCall::RemoveAttachment(a.endpoint_id.clone()))
    }
    fn sync_rules(&self, r: &RulesSpec) -> DpResult {
        self.record(DpCall::SyncRules(r.clone()))
    }
    fn reconcile(&self, d: &DesiredState) -> DpResult {
        self.record(DpCall::Reconcile(d.clone()))
    }
}
