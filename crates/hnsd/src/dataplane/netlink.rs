//! Links, addresses and routes through rtnetlink, in the network namespace of the handle's
//! socket (the dataplane [`super::worker`] keeps one open in hnsd's namespace and opens one
//! in an endpoint's namespace for its configuration).
//!
//! An endpoint's veth is made in one request: the host side with its bridge and up, the
//! peer created directly in the endpoint's namespace with its final name, MAC and up. Moving
//! a link between namespaces afterwards costs the kernel an unregister and an RCU grace
//! period (tens of milliseconds on a busy machine), creating it there does not.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

/// `EEXIST`, as netlink reports it (negative).
pub(super) const EEXIST: i32 = -17;
/// `ENODEV`, as netlink reports it (negative).
const ENODEV: i32 = -19;

pub(super) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get()),
        _ => None,
    }
}

/// Runs `f` with a netlink handle of the calling thread's network namespace (a runtime and a
/// socket for one call: for rare work outside the dataplane worker, e.g. a new namespace's
/// loopback).
pub fn block<T, Fut>(f: impl FnOnce(Handle) -> Fut) -> Result<T, String>
where
    Fut: Future<Output = Result<T, String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        out
    })
}

/// The index of link `name`, if it exists.
pub async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, String> {
    match h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(format!("get link {name}: {e}")),
    }
}

/// The names of every link.
pub async fn link_names(h: &Handle) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut links = h.link().get().execute();
    while let Some(m) = links
        .try_next()
        .await
        .map_err(|e| format!("list links: {e}"))?
    {
        for a in m.attributes {
            if let LinkAttribute::IfName(n) = a {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Deletes link `name` (absent is fine), in one request (by name, no lookup).
pub async fn delete_link(h: &Handle, name: &str) -> Result<(), String> {
    let mut req = h.link().del(0);
    req.message_mut()
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(format!("delete link {name}: {e}")),
    }
}

async fn add_address(
    h: &Handle,
    index: u32,
    ip: impl Into<IpAddr>,
    plen: u8,
    on: &str,
) -> Result<(), String> {
    let ip = ip.into();
    let mut req = h.address().add(index, ip, plen);
    if ip.is_ipv6() {
        // No duplicate address detection: the address is HNS's to give, and a tentative
        // address would not answer for a second or two.
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(format!("add {ip}/{plen} to {on}: {e}")),
    }
}

/// Sets link `name` up, by name.
async fn set_up_by_name(h: &Handle, name: &str) -> Result<(), String> {
    h.link()
        .set(LinkUnspec::new_with_name(name).up().build())
        .execute()
        .await
        .map_err(|e| format!("set {name} up: {e}"))
}

async fn set_up(h: &Handle, index: u32, name: &str) -> Result<(), String> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| format!("set {name} up: {e}"))
}

/// Creates bridge `name` (if missing) with the gateway addresses, up; returns its index.
pub async fn ensure_bridge(h: &Handle, name: &str, addrs: &[(IpAddr, u8)]) -> Result<u32, String> {
    let index = match index_of(h, name).await? {
        Some(i) => i,
        None => {
            match h.link().add(LinkBridge::new(name).build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(format!("create bridge {name}: {e}")),
            }
            index_of(h, name)
                .await?
                .ok_or_else(|| format!("bridge {name} vanished after creation"))?
        }
    };
    for (ip, plen) in addrs {
        add_address(h, index, *ip, *plen, name).await?;
    }
    set_up(h, index, name).await?;
    Ok(index)
}

/// The endpoint's side of a veth, as it is created.
pub struct Peer<'a> {
    /// Its name in the namespace.
    pub ifname: &'a str,
    /// MAC.
    pub mac: [u8; 6],
    /// The endpoint's network namespace.
    pub netns: BorrowedFd<'a>,
}

/// Why a veth could not be created.
#[derive(Debug)]
pub enum VethError {
    /// A link of one of the names exists (the host name here, or the peer's there).
    Exists,
    /// The bridge index is not a link (any more).
    NoBridge,
    /// Anything else.
    Other(String),
}

/// The MTU of link `index` (`None` if the kernel did not say).
pub async fn mtu_of(h: &Handle, index: u32) -> Result<Option<u32>, VethError> {
    match h.link().get().match_index(index).execute().try_next().await {
        Ok(Some(m)) => Ok(m.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })),
        Ok(None) => Err(VethError::NoBridge),
        Err(e) if errno(&e) == Some(ENODEV) => Err(VethError::NoBridge),
        Err(e) => Err(VethError::Other(format!("get link {index}: {e}"))),
    }
}

/// Creates veth `host` (on bridge `bridge`, up) with its peer directly in the peer's
/// namespace (named, with its MAC), in one request. Both ends take the bridge's MTU: a
/// bridge with a VXLAN port has the smaller MTU of the tunnel, and a bridge drops frames
/// too large for the port they leave by, without telling the sender. The peer cannot be
/// brought up in the same request (the kernel answers `ENOTCONN`: its other side is not
/// registered yet).
pub async fn create_veth(
    h: &Handle,
    host: &str,
    bridge: u32,
    peer: &Peer<'_>,
) -> Result<(), VethError> {
    let mtu = mtu_of(h, bridge).await?;
    let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.ifname.to_string())
        .address(peer.mac.to_vec())
        .setns_by_fd(peer.netns.as_raw_fd());
    let mut msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth);
    if let Some(mtu) = mtu {
        peer_msg = peer_msg.mtu(mtu);
        msg = msg.mtu(mtu);
    }
    let peer_msg = peer_msg.build();
    let msg = msg
        .name(host.to_string())
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    match h.link().add(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Err(VethError::Exists),
        Err(e) if errno(&e) == Some(ENODEV) => Err(VethError::NoBridge),
        Err(e) => Err(VethError::Other(format!("create veth {host}: {e}"))),
    }
}

/// What to configure on the endpoint's side of a veth (it has its name and MAC already).
pub struct Inside<'a> {
    /// Its name.
    pub ifname: &'a str,
    /// Address and prefix length.
    pub address: Option<(Ipv4Addr, u8)>,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Other routes.
    pub routes: &'a [(ipnet::Ipv4Net, Ipv4Addr)],
    /// IPv6 address and prefix length.
    pub address6: Option<(Ipv6Addr, u8)>,
    /// IPv6 default gateway.
    pub gateway6: Option<Ipv6Addr>,
}

/// Addresses the endpoint's side, brings it and `lo` up, adds its routes (run with a handle
/// of the endpoint's namespace).
pub async fn configure_inside(h: &Handle, c: &Inside<'_>) -> Result<(), String> {
    let i = index_of(h, c.ifname)
        .await?
        .ok_or_else(|| format!("{} did not arrive in the namespace", c.ifname))?;
    if let Some((ip, plen)) = c.address {
        add_address(h, i, ip, plen, c.ifname).await?;
    }
    if let Some((ip, plen)) = c.address6 {
        add_address(h, i, ip, plen, c.ifname).await?;
    }
    set_up(h, i, c.ifname).await?;
    set_up_by_name(h, "lo").await?;
    if let Some(gw) = c.gateway6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .output_interface(i)
            .gateway(gw)
            .build();
        add_route(h, route, || format!("IPv6 default route via {gw}")).await?;
    }
    if let Some(gw) = c.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(i)
            .gateway(gw)
            .build();
        add_route(h, route, || format!("default route via {gw}")).await?;
    }
    for (dest, hop) in c.routes {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest.addr(), dest.prefix_len())
            .output_interface(i)
            .gateway(*hop)
            .build();
        add_route(h, route, || format!("route {dest} via {hop}")).await?;
    }
    Ok(())
}

/// Adds `route` (present already is fine); errors name it with `what`.
async fn add_route(
    h: &Handle,
    route: rtnetlink::packet_route::route::RouteMessage,
    what: impl FnOnce() -> String,
) -> Result<(), String> {
    match h.route().add(route).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(format!("{}: {e}", what())),
    }
}

/// Brings up `lo` of the calling thread's namespace.
pub fn set_lo_up() -> Result<(), String> {
    block(|h| async move { set_up_by_name(&h, "lo").await })
}
