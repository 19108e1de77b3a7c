//! hnsd, an HNS service for Linux, and its diagnostic CLI hnsctl.
//!
//! hnsd serves the `hcn` engine (HCN objects validated, allocated and persisted as HNS
//! does) on a Unix socket that speaks the same documents and HRESULTs as the Windows HCN
//! calls, so `hcn::Hcn` cannot tell it from Windows. Its [`dataplane`] turns the objects
//! into Linux networking: bridges, veth pairs moved into network namespaces, addresses and
//! routes through netlink (`rtnetlink`), and one nftables table per instance (the
//! `nftables` crate) for outbound NAT, port mappings and load balancers.
//!
//! * [`daemon`]: an instance (engine + server) from a [`daemon::Config`];
//! * [`server`]: the socket protocol (`hcn::wire`);
//! * [`netns`]: named network namespaces and running code inside one;
//! * [`ctl`]: hnsctl's commands;
//! * `testing` (feature `testing`): [`testing::TestHnsd`], an hnsd on a private socket,
//!   state directory and network namespace, for integration tests of other crates.
//!
//! Dataplane coverage: NAT, L2Bridge and Overlay networks get a bridge (NAT also
//! masquerades its subnets; L2Bridge/Overlay endpoints masquerade only through their
//! `OutBoundNAT` policy, with its exceptions); port mappings and load balancers are DNAT;
//! an Overlay network with a VSID reaches other hosts over VXLAN (remote endpoints and
//! remote subnet routes).
//! Transparent, L2Tunnel, ICS and Private networks, SDN routes, ACL/QOS/proxy policies and
//! v1 policy lists are kept as state only.

pub mod ctl;
pub mod daemon;
pub mod dataplane;
pub mod netns;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

pub use daemon::{Config, Daemon};
