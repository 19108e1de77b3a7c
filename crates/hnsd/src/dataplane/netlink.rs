//! Links, addresses and routes through rtnetlink, on the calling thread's network
//! namespace (the netlink socket is opened where the thread is).
//!
//! Each call builds a small current-thread tokio runtime and one netlink connection: the
//! dataplane's calls are few (a handful per HCN operation) and each may run in a different
//! network namespace, so nothing long-lived is shared between them.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// `EEXIST`, as netlink reports it (negative).
const EEXIST: i32 = -17;
/// `ENODEV`, as netlink reports it (negative).
const ENODEV: i32 = -19;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get()),
        _ => None,
    }
}

/// Runs `f` with a netlink handle of the calling thread's network namespace.
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

/// Deletes link `name` (absent is fine).
pub async fn delete_link(h: &Handle, name: &str) -> Result<(), String> {
    let Some(i) = index_of(h, name).await? else {
        return Ok(());
    };
    match h.link().del(i).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(format!("delete link {name}: {e}")),
    }
}

async fn add_address(
    h: &Handle,
    index: u32,
    ip: Ipv4Addr,
    plen: u8,
    on: &str,
) -> Result<(), String> {
    match h.address().add(index, IpAddr::V4(ip), plen).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(format!("add {ip}/{plen} to {on}: {e}")),
    }
}

async fn set_up(h: &Handle, index: u32, name: &str) -> Result<(), String> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| format!("set {name} up: {e}"))
}

/// Creates bridge `name` (if missing) with the gateway addresses, up.
pub async fn ensure_bridge(h: &Handle, name: &str, addrs: &[(Ipv4Addr, u8)]) -> Result<(), String> {
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
    set_up(h, index, name).await
}

/// Creates veth `host`/`peer`, puts `host` on `bridge` and up, and moves `peer` into the
/// network namespace open as `netns`.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    peer: &str,
    bridge: &str,
    netns: &std::fs::File,
) -> Result<(), String> {
    delete_link(h, host).await?;
    delete_link(h, peer).await?;
    h.link()
        .add(LinkVeth::new(host, peer).build())
        .execute()
        .await
        .map_err(|e| format!("create veth {host}: {e}"))?;
    let br = index_of(h, bridge)
        .await?
        .ok_or_else(|| format!("bridge {bridge} does not exist"))?;
    let hi = index_of(h, host)
        .await?
        .ok_or_else(|| format!("veth {host} vanished after creation"))?;
    h.link()
        .set(LinkUnspec::new_with_index(hi).controller(br).up().build())
        .execute()
        .await
        .map_err(|e| format!("attach {host} to {bridge}: {e}"))?;
    let pi = index_of(h, peer)
        .await?
        .ok_or_else(|| format!("veth peer {peer} vanished after creation"))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(pi)
                .setns_by_fd(netns.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("move {peer} into the namespace: {e}"))
}

/// What to configure on the endpoint's side of a veth.
pub struct Inside<'a> {
    /// The name the peer has when it arrives.
    pub peer: &'a str,
    /// Its final name.
    pub ifname: &'a str,
    /// MAC.
    pub mac: [u8; 6],
    /// Address and prefix length.
    pub address: Option<(Ipv4Addr, u8)>,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Other routes.
    pub routes: &'a [(ipnet::Ipv4Net, Ipv4Addr)],
}

/// Renames, addresses and routes the endpoint's side (run inside its namespace).
pub async fn configure_inside(h: &Handle, c: &Inside<'_>) -> Result<(), String> {
    let i = index_of(h, c.peer)
        .await?
        .ok_or_else(|| format!("{} did not arrive in the namespace", c.peer))?;
    if index_of(h, c.ifname).await?.is_some() {
        return Err(format!(
            "the namespace already has an interface {}",
            c.ifname
        ));
    }
    h.link()
        .set(
            LinkUnspec::new_with_index(i)
                .name(c.ifname.to_string())
                .address(c.mac.to_vec())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("name {} {}: {e}", c.peer, c.ifname))?;
    if let Some((ip, plen)) = c.address {
        add_address(h, i, ip, plen, c.ifname).await?;
    }
    set_up(h, i, c.ifname).await?;
    if let Some(lo) = index_of(h, "lo").await? {
        set_up(h, lo, "lo").await?;
    }
    if let Some(gw) = c.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(i)
            .gateway(gw)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(format!("default route via {gw}: {e}")),
        }
    }
    for (dest, hop) in c.routes {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest.addr(), dest.prefix_len())
            .output_interface(i)
            .gateway(*hop)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(format!("route {dest} via {hop}: {e}")),
        }
    }
    Ok(())
}

/// Brings up `lo` of the calling thread's namespace.
pub fn set_lo_up() -> Result<(), String> {
    block(|h| async move {
        match index_of(&h, "lo").await? {
            Some(lo) => set_up(&h, lo, "lo").await,
            None => Err("the namespace has no lo".into()),
        }
    })
}
