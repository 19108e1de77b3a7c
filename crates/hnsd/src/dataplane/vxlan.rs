//! An Overlay network's VXLAN port (spec [`VxlanSpec`]), through rtnetlink.
//!
//! The device is a port of the network's bridge, with learning off and ARP proxy on: what
//! it knows of other hosts is what HNS was told, nothing is flooded between hosts.
//!
//! * A remote endpoint is a VXLAN FDB entry (its MAC → its host's provider address) and a
//!   neighbour entry on the device (its IP → its MAC), from which the device answers the
//!   local pods' ARP requests.
//! * A remote subnet route is a route to the subnet through the bridge, via the subnet's
//!   first address on-link, whose neighbour entry is the remote distributed router's MAC,
//!   and an FDB entry sending that MAC to the remote host. There the frame reaches a bridge
//!   whose MAC is that router MAC (`DrMacAddress`), which routes it to the pod.
//!
//! Each sync replaces the entries the spec names and removes the permanent ones it no
//! longer names, so the same call serves a change and a reconciliation.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use hcn::engine::dataplane::VxlanSpec;
use hcn::engine::ipam::first_host;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::netlink::{errno, index_of, EEXIST};

/// Creates (or repairs) the VXLAN device of `v` on bridge `bridge` and programs its remote
/// endpoints and subnets.
pub async fn ensure(h: &Handle, bridge: u32, v: &VxlanSpec) -> Result<(), String> {
    if let Some(mac) = v.router_mac {
        h.link()
            .set(
                LinkUnspec::new_with_index(bridge)
                    .address(mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| format!("set the bridge's MAC to the DrMacAddress: {e}"))?;
    }
    let index = match index_of(h, &v.ifname).await? {
        Some(i) => i,
        None => create(h, bridge, v).await?,
    };
    // An existing device is put back on the bridge and up (a repair after a restart).
    h.link()
        .set(
            LinkUnspec::new_with_index(index)
                .controller(bridge)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("attach {} to its bridge: {e}", v.ifname))?;
    sync_fdb(h, index, v).await?;
    sync_proxy_arp(h, index, v).await?;
    sync_remote_subnets(h, bridge, v).await
}

async fn create(h: &Handle, bridge: u32, v: &VxlanSpec) -> Result<u32, String> {
    let mut b = LinkVxlan::new(&v.ifname, v.vni)
        .port(v.port)
        .learning(false)
        .proxy(true);
    if let Some(local) = v.local {
        b = b.local(local);
    }
    if let Some(name) = &v.underlay {
        let dev = index_of(h, name).await?.ok_or_else(|| {
            format!("the network's adapter {name} (NetAdapterName) does not exist")
        })?;
        b = b.dev(dev);
    }
    match h
        .link()
        .add(b.controller(bridge).up().build())
        .execute()
        .await
    {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(EEXIST) => {}
        Err(e) => return Err(format!("create VXLAN {} (VNI {}): {e}", v.ifname, v.vni)),
    }
    index_of(h, &v.ifname)
        .await?
        .ok_or_else(|| format!("VXLAN {} vanished after creation", v.ifname))
}

fn dst_of(m: &NeighbourMessage) -> Option<IpAddr> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        // An FDB entry (family bridge) carries its destination as raw bytes.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
            match <[u8; 4]>::try_from(b.as_slice()) {
                Ok(v4) => Some(IpAddr::from(v4)),
                Err(_) => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            }
        }
        _ => None,
    })
}

fn lladdr_of(m: &NeighbourMessage) -> Option<Vec<u8>> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(l) => Some(l.clone()),
        _ => None,
    })
}

/// The permanent neighbour entries of `family` on link `index`.
async fn permanent_entries(
    h: &Handle,
    family: AddressFamily,
    index: u32,
) -> Result<Vec<NeighbourMessage>, String> {
    let mut out = Vec::new();
    let mut dump = h.neighbours().get().set_address_family(family).execute();
    while let Some(m) = dump
        .try_next()
        .await
        .map_err(|e| format!("list neighbours: {e}"))?
    {
        if m.header.ifindex == index && m.header.state == NeighbourState::Permanent {
            out.push(m);
        }
    }
    Ok(out)
}

async fn delete_entry(h: &Handle, m: NeighbourMessage, what: &str) -> Result<(), String> {
    h.neighbours()
        .del(m)
        .execute()
        .await
        .map_err(|e| format!("remove {what}: {e}"))
}

/// The device's FDB: each remote MAC (endpoints and remote routers) to its host.
async fn sync_fdb(h: &Handle, index: u32, v: &VxlanSpec) -> Result<(), String> {
    let wanted: HashSet<(Vec<u8>, IpAddr)> = v
        .remote_endpoints
        .iter()
        .map(|r| (r.mac.to_vec(), IpAddr::V4(r.provider_address)))
        .chain(
            v.remote_subnets
                .iter()
                .map(|r| (r.router_mac.to_vec(), IpAddr::V4(r.provider_address))),
        )
        .collect();
    for m in permanent_entries(h, AddressFamily::Bridge, index).await? {
        // Only the device's own entries with a destination are ours (not the bridge's).
        if !m.header.flags.contains(NeighbourFlags::Own) {
            continue;
        }
        let (Some(mac), Some(dst)) = (lladdr_of(&m), dst_of(&m)) else {
            continue;
        };
        if !wanted.contains(&(mac, dst)) {
            delete_entry(h, m, "a stale VXLAN FDB entry").await?;
        }
    }
    for (mac, dst) in &wanted {
        h.neighbours()
            .add_bridge(index, mac)
            .flags(NeighbourFlags::Own)
            .destination(*dst)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("VXLAN FDB entry for {} via {dst}: {e}", fmt_mac(mac)))?;
    }
    Ok(())
}

/// The device's neighbour table: the remote endpoints it answers ARP requests for.
async fn sync_proxy_arp(h: &Handle, index: u32, v: &VxlanSpec) -> Result<(), String> {
    let wanted: HashSet<IpAddr> = v
        .remote_endpoints
        .iter()
        .map(|r| IpAddr::V4(r.address))
        .collect();
    for m in permanent_entries(h, AddressFamily::Inet, index).await? {
        if dst_of(&m).is_some_and(|d| !wanted.contains(&d)) {
            delete_entry(h, m, "a stale remote endpoint's neighbour entry").await?;
        }
    }
    for r in &v.remote_endpoints {
        h.neighbours()
            .add(index, IpAddr::V4(r.address))
            .link_layer_address(&r.mac)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("neighbour entry of remote endpoint {}: {e}", r.address))?;
    }
    Ok(())
}

/// The routes to remote subnets through the bridge, and their next hops' router MACs.
async fn sync_remote_subnets(h: &Handle, bridge: u32, v: &VxlanSpec) -> Result<(), String> {
    let hops: HashSet<IpAddr> = v
        .remote_subnets
        .iter()
        .map(|r| IpAddr::V4(first_host(r.prefix)))
        .collect();
    // The bridge's only gatewayed routes are these (its subnets' routes are connected).
    for r in routes_via(h, bridge).await? {
        let (dest, plen) = route_dest(&r);
        let wanted = v
            .remote_subnets
            .iter()
            .any(|s| s.prefix.addr() == dest && s.prefix.prefix_len() == plen);
        if !wanted {
            h.route()
                .del(r)
                .execute()
                .await
                .map_err(|e| format!("remove the stale route to {dest}/{plen}: {e}"))?;
        }
    }
    for m in permanent_entries(h, AddressFamily::Inet, bridge).await? {
        if dst_of(&m).is_some_and(|d| !hops.contains(&d)) {
            delete_entry(h, m, "a stale remote router's neighbour entry").await?;
        }
    }
    for s in &v.remote_subnets {
        let hop = first_host(s.prefix);
        h.neighbours()
            .add(bridge, IpAddr::V4(hop))
            .link_layer_address(&s.router_mac)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("neighbour entry of {}'s router: {e}", s.prefix))?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(s.prefix.addr(), s.prefix.prefix_len())
            .output_interface(bridge)
            .gateway(hop)
            .onlink()
            .build();
        h.route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("route to remote subnet {}: {e}", s.prefix))?;
    }
    Ok(())
}

/// The IPv4 routes of the main table that leave through `index` via a gateway.
async fn routes_via(h: &Handle, index: u32) -> Result<Vec<RouteMessage>, String> {
    let mut out = Vec::new();
    let mut dump = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = dump
        .try_next()
        .await
        .map_err(|e| format!("list routes: {e}"))?
    {
        let oif = r
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
        let gw = r
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Gateway(RouteAddress::Inet(_))));
        if oif && gw && r.header.table == 254 {
            out.push(r);
        }
    }
    Ok(out)
}

fn route_dest(r: &RouteMessage) -> (Ipv4Addr, u8) {
    let dest = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    (dest, r.header.destination_prefix_length)
}

fn fmt_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
