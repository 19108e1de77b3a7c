//! A pod's network for the VM sandbox: the network namespace CNI set up on the host,
//! carried into the utility VM.
//!
//! CNI gives the pod's network namespace an interface (say `eth0`, the pod side of a veth)
//! with the pod's address and routes. The utility VM cannot enter a host namespace, so the
//! sandbox gives it a NIC of its own whose traffic is that interface's, as Kata Containers
//! does it:
//!
//! * a tap device is created inside the pod's namespace and handed to QEMU as the VM's
//!   virtio-net NIC, with the interface's MAC address (so peers' ARP entries stay right);
//! * tc ingress filters redirect every frame that arrives on the interface to the tap and
//!   every frame from the tap out of the interface; the namespace's own stack sees none;
//! * the GCS is told of the adapter (ModifySettings `Network`, as an LCOW host does) with the
//!   interface's addresses and gateway routes, finds the NIC in the guest by its MAC address,
//!   and moves it into the pod's network namespace in the guest when the sandbox container
//!   is created; the pod's other containers join that namespace.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use bridge::messages::{IpConfig, NetworkAdapter, Route};
use futures_util::TryStreamExt;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, Result};

/// The tap device's name in the pod's namespace.
pub const TAP_NAME: &str = "tap0_hcs";
/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// The tc handle of the ingress qdisc (`ffff:`).
const INGRESS: u32 = 0xffff_0000;

mod ioctl {
    nix::ioctl_write_ptr_bad!(tun_set_iff, super::TUNSETIFF, libc::ifreq);
}

/// The pod's network, carried into the VM.
#[derive(Debug)]
pub struct PodNetwork {
    /// The pod's network namespace on the host.
    pub netns: PathBuf,
    /// The tap device (QEMU's `-netdev tap,fd=`); the device goes when its last fd closes
    /// (ours at [`PodNetwork::unplumb`], QEMU's when it exits).
    tap: std::sync::Mutex<Option<OwnedFd>>,
    /// The MAC address the VM's NIC takes (`aa:bb:cc:dd:ee:ff`).
    pub mac: String,
    /// What the GCS is told (ModifySettings `Network`).
    pub adapter: NetworkAdapter,
    /// The pod interface's index in the namespace.
    iface: u32,
}

/// Runs `f` with a netlink handle whose socket lives in network namespace `netns`, on a
/// thread of its own (entering a namespace changes only the calling thread).
fn in_netns<T: Send + 'static, F>(
    netns: &Path,
    f: impl FnOnce(Handle) -> F + Send + 'static,
) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    let ns = File::open(netns).map_err(|e| Error::io(format!("open {}", netns.display()), e))?;
    let shown = netns.display().to_string();
    std::thread::spawn(move || -> Result<T> {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::io(format!("enter {shown}"), e.into()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::io("a netlink runtime", e))?;
        rt.block_on(async {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| Error::io("a netlink socket", e))?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    })
    .join()
    .map_err(|_| Error::Sandbox("the network namespace thread panicked".into()))?
}

fn netlink(what: impl std::fmt::Display, e: rtnetlink::Error) -> Error {
    Error::Sandbox(format!("{what}: {e}"))
}

/// Opens a tap device named [`TAP_NAME`] in the calling thread's network namespace.
fn open_tap() -> Result<OwnedFd> {
    let tun = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| Error::io("open /dev/net/tun", e))?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(TAP_NAME.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
    // SAFETY: TUNSETIFF reads the ifreq, which lives across the call, on an open tun fd.
    unsafe { ioctl::tun_set_iff(tun.as_raw_fd(), &req) }
        .map_err(|e| Error::io(format!("create tap {TAP_NAME}"), e.into()))?;
    Ok(tun.into())
}

/// A link's name, MAC address, MTU and flags.
struct Link {
    index: u32,
    name: String,
    mac: Vec<u8>,
    mtu: u32,
    loopback: bool,
}

async fn links(h: &Handle) -> Result<Vec<Link>> {
    let mut out = Vec::new();
    let mut s = h.link().get().execute();
    while let Some(m) = s.try_next().await.map_err(|e| netlink("list links", e))? {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            mac: Vec::new(),
            mtu: 1500,
            loopback: m.header.flags.contains(LinkFlags::Loopback),
        };
        for a in m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n,
                LinkAttribute::Address(a) => l.mac = a,
                LinkAttribute::Mtu(m) => l.mtu = m,
                _ => {}
            }
        }
        out.push(l);
    }
    Ok(out)
}

async fn addresses(h: &Handle, index: u32) -> Result<Vec<IpConfig>> {
    let mut out = Vec::new();
    let mut s = h.address().get().set_link_index_filter(index).execute();
    while let Some(m) = s
        .try_next()
        .await
        .map_err(|e| netlink("list addresses", e))?
    {
        let ip = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        match ip {
            // Link-local IPv6 addresses are the interface's own, not the pod's.
            Some(IpAddr::V6(v6)) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {}
            Some(ip) => out.push(IpConfig {
                ip_address: ip.to_string(),
                prefix_length: m.header.prefix_len,
            }),
            None => {}
        }
    }
    Ok(out)
}

/// The routes through a gateway that leave by `index` (the on-link routes come with the
/// addresses in the guest).
async fn gateway_routes(h: &Handle, index: u32) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for msg in [
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
    ] {
        let mut s = h.route().get(msg).execute();
        while let Some(m) = s.try_next().await.map_err(|e| netlink("list routes", e))? {
            let (mut oif, mut gw, mut dst, mut metric) = (None, None, None, 0u32);
            for a in &m.attributes {
                match a {
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(g.to_string()),
                    RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(g.to_string()),
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(d.to_string()),
                    RouteAttribute::Destination(RouteAddress::Inet6(d)) => {
                        dst = Some(d.to_string())
                    }
                    RouteAttribute::Priority(p) => metric = *p,
                    _ => {}
                }
            }
            let (Some(gw), Some(_)) = (gw, oif.filter(|&o| o == index)) else {
                continue;
            };
            let v6 = gw.contains(':');
            let dst = dst.unwrap_or_else(|| if v6 { "::" } else { "0.0.0.0" }.to_string());
            out.push(Route {
                next_hop: gw,
                destination_prefix: format!("{dst}/{}", m.header.destination_prefix_length),
                metric: u16::try_from(metric).unwrap_or(u16::MAX),
            });
        }
    }
    Ok(out)
}

/// Redirects every frame arriving on `from` out of `to` (an ingress qdisc and a u32
/// filter with a mirred redirect, as `tc filter … action mirred egress redirect`).
async fn redirect(h: &Handle, from: u32, to: u32) -> Result<()> {
    h.qdisc()
        .replace(from as i32)
        .ingress()
        .execute()
        .await
        .map_err(|e| netlink(format!("an ingress qdisc on link {from}"), e))?;
    h.traffic_filter(from as i32)
        .add()
        .parent(INGRESS)
        .protocol((libc::ETH_P_ALL as u16).to_be())
        .redirect(to)
        .map_err(|e| netlink("a redirect filter", e))?
        .execute()
        .await
        .map_err(|e| netlink(format!("redirect link {from} to {to}"), e))
}

fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Picks the pod's interface: the first one (by index) that is not loopback or our tap
/// and has an address.
fn pick<'a>(links: &'a [Link], has_address: &[bool]) -> Option<&'a Link> {
    links
        .iter()
        .zip(has_address)
        .find(|(l, &a)| a && !l.loopback && l.name != TAP_NAME && l.mac.len() == 6)
        .map(|(l, _)| l)
}

/// A fresh HCN-style namespace id (a random GUID) for a pod network.
pub fn new_namespace_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Sandbox(format!("random namespace id: {e}")))?;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

impl PodNetwork {
    /// Carries the pod network of `netns` into a VM: the tap, the redirects, and the
    /// adapter the GCS will configure under HCN namespace `namespace_id`.
    pub fn plumb(netns: &Path, namespace_id: &str) -> Result<Self> {
        let shown = netns.display().to_string();
        let namespace_id = namespace_id.to_owned();
        let ns_path = netns.to_path_buf();
        in_netns(netns, move |h| async move {
            let all = links(&h).await?;
            let mut addrs = Vec::new();
            for l in &all {
                addrs.push(addresses(&h, l.index).await?);
            }
            let has: Vec<bool> = addrs.iter().map(|a| !a.is_empty()).collect();
            let iface = pick(&all, &has).ok_or_else(|| {
                Error::Sandbox(format!(
                    "network namespace {shown} has no interface with an address (has CNI set it up?)"
                ))
            })?;
            let i = all.iter().position(|l| l.index == iface.index).unwrap_or(0);
            let routes = gateway_routes(&h, iface.index).await?;
            let tap = open_tap()?;
            let tap_index = links(&h)
                .await?
                .into_iter()
                .find(|l| l.name == TAP_NAME)
                .map(|l| l.index)
                .ok_or_else(|| Error::Sandbox(format!("tap {TAP_NAME} did not appear")))?;
            h.link()
                .set(
                    LinkMessageBuilder::<LinkUnspec>::new()
                        .index(tap_index)
                        .mtu(iface.mtu)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| netlink(format!("bring {TAP_NAME} up"), e))?;
            redirect(&h, iface.index, tap_index).await?;
            redirect(&h, tap_index, iface.index).await?;
            let mac = mac_string(&iface.mac);
            tracing::debug!(netns = %shown, interface = %iface.name, %mac, "pod network carried into the VM");
            Ok(PodNetwork {
                netns: ns_path,
                tap: std::sync::Mutex::new(Some(tap)),
                adapter: NetworkAdapter {
                    namespace_id,
                    id: format!("{}-vm-nic", iface.name),
                    mac_address: mac.clone(),
                    ip_configs: addrs[i].clone(),
                    routes,
                    ..Default::default()
                },
                mac,
                iface: iface.index,
            })
        })
    }

    /// The tap's file descriptor, until [`PodNetwork::unplumb`].
    pub fn tap_fd(&self) -> Option<std::os::fd::RawFd> {
        self.tap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|t| t.as_raw_fd())
    }

    /// Removes the redirect from the pod's interface (its ingress qdisc) and closes our
    /// side of the tap (the device goes once QEMU's is closed too). The interface itself
    /// is CNI's to delete.
    pub fn unplumb(&self) -> Result<()> {
        drop(self.tap.lock().unwrap_or_else(|e| e.into_inner()).take());
        let iface = self.iface;
        in_netns(&self.netns, move |h| async move {
            let mut req = h.qdisc().del(iface as i32);
            req.message_mut().header.parent = rtnetlink::packet_route::tc::TcHandle::INGRESS;
            req.message_mut().header.handle = INGRESS.into();
            match req.execute().await {
                Ok(()) => Ok(()),
                // The interface is already gone (CNI deleted it): nothing to undo.
                Err(rtnetlink::Error::NetlinkError(e))
                    if matches!(e.code.map(|c| -c.get()), Some(libc::ENODEV | libc::ENOENT)) =>
                {
                    Ok(())
                }
                Err(e) => Err(netlink(
                    format!("remove the ingress qdisc of link {iface}"),
                    e,
                )),
            }
        })
    }
}

/// Points a container's spec at the pod network: a network namespace whose path is the
/// pod's (CNI's, on the host) becomes the pod's namespace in the guest (the spec names it
/// by its HCN id, `windows.network.networkNamespace`, and the GCS gives the first container
/// the NIC and the others its namespace). A namespace path of the host that is not the
/// pod's cannot be entered from the VM and is refused.
pub fn use_pod_network(spec: &mut serde_json::Value, pod: Option<&PodNetwork>) -> Result<()> {
    let Some(entry) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(|n| n.as_array_mut())
        .and_then(|n| {
            n.iter_mut()
                .find(|n| n.get("type").and_then(|t| t.as_str()) == Some("network"))
        })
    else {
        return Ok(());
    };
    let Some(path) = entry
        .get("path")
        .and_then(|p| p.as_str())
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    if is_guest_process_namespace(path) {
        return Ok(());
    }
    let path = PathBuf::from(path);
    let pod = pod.filter(|p| same_file(&p.netns, &path)).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "network namespace {}: a utility VM can only join its pod's network namespace{}",
            path.display(),
            pod.map(|p| format!(" ({})", p.netns.display()))
                .unwrap_or_else(|| " (this sandbox has none)".into())
        ))
    })?;
    if let Some(o) = entry.as_object_mut() {
        o.remove("path");
    }
    let o = spec
        .as_object_mut()
        .ok_or_else(|| Error::InvalidArgument("the OCI spec is not a JSON object".into()))?;
    let windows = o.entry("windows").or_insert_with(|| serde_json::json!({}));
    if !windows.is_object() {
        *windows = serde_json::json!({});
    }
    windows["network"] = serde_json::json!({"networkNamespace": pod.adapter.namespace_id});
    Ok(())
}

/// `/proc/<pid>/ns/net`: a process's namespace, as containerd's CRI names the pod's for
/// its workloads from the sandbox task's pid. The pids a VM sandbox reports are the
/// guest's, so the guest resolves the path to the right process itself.
fn is_guest_process_namespace(path: &str) -> bool {
    path.strip_prefix("/proc/")
        .and_then(|r| r.strip_suffix("/ns/net"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether two paths name the same file (namespace files are compared by device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, loopback: bool) -> Link {
        Link {
            index,
            name: name.into(),
            mac: if loopback {
                vec![0; 6]
            } else {
                vec![2, 0, 0, 0, 0, index as u8]
            },
            mtu: 1500,
            loopback,
        }
    }

    #[test]
    fn process_namespaces_are_left_to_the_guest() {
        assert!(is_guest_process_namespace("/proc/123/ns/net"));
        for p in [
            "/proc/self/ns/net",
            "/proc//ns/net",
            "/var/run/netns/cni-1",
            "/proc/1/ns/ipc",
        ] {
            assert!(!is_guest_process_namespace(p), "{p}");
        }
        let mut spec = serde_json::json!({"linux": {"namespaces": [
            {"type": "network", "path": "/proc/123/ns/net"}]}});
        let before = spec.clone();
        use_pod_network(&mut spec, None).unwrap();
        assert_eq!(spec, before);
        let mut stray = serde_json::json!({"linux": {"namespaces": [
            {"type": "network", "path": "/proc/self/ns/net"}]}});
        let e = use_pod_network(&mut stray, None).unwrap_err().to_string();
        assert!(
            e.contains("pod's network namespace (this sandbox has none)"),
            "{e}"
        );
    }

    #[test]
    fn the_pod_interface_is_the_first_with_an_address() {
        let l = [
            link(1, "lo", true),
            link(2, TAP_NAME, false),
            link(3, "eth0", false),
            link(4, "eth1", false),
        ];
        assert_eq!(pick(&l, &[true, true, true, true]).unwrap().name, "eth0");
        assert_eq!(pick(&l, &[true, true, false, true]).unwrap().name, "eth1");
        assert!(pick(&l, &[true, true, false, false]).is_none());
        assert_eq!(
            mac_string(&[0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
            "52:54:00:ab:cd:ef"
        );
    }
}
