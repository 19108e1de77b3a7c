//! Network namespaces and adapters of ModifySettings `Network` (spec §5).
//!
//! An adapter is recorded under its (lowercased) HCN namespace id. When a container whose spec
//! names that namespace is created, each adapter's interface is moved into the init process's
//! network namespace and configured there. Later containers naming the same namespace (the
//! pod's workloads) join the owner's network namespace. Interfaces are found the
//! reference's way, through `/sys/bus/vmbus/devices/<adapter id>/net/`, in a Hyper-V
//! utility VM; in a VM without VMBus (QEMU's virtio-net) by the adapter's MAC address.
//! Configuration uses `ip` from iproute2 entered into the namespace with `nsenter`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// How long to wait for an adapter's interface to appear.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// An IP address of an adapter.
#[derive(Debug, Clone, Default)]
pub struct IpConfig {
    /// Address.
    pub ip_address: String,
    /// Prefix length.
    pub prefix_length: u8,
}

/// A route of an adapter.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Next hop.
    pub next_hop: String,
    /// Destination prefix.
    pub destination_prefix: String,
    /// Metric.
    pub metric: u16,
}

/// A network adapter (ModifySettings `Network` settings).
#[derive(Debug, Clone, Default)]
pub struct Adapter {
    /// HCN namespace id.
    pub namespace_id: String,
    /// Adapter (VMBus) id.
    pub id: String,
    /// MAC address.
    pub mac_address: String,
    /// DNS search suffixes, comma separated.
    pub dns_suffix: String,
    /// DNS servers, comma separated.
    pub dns_server_list: String,
    /// MTU reduction.
    pub encap_overhead: u16,
    /// Assigned through VPCI.
    pub vpci_assigned: bool,
    /// Addresses.
    pub ip_configs: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
}

#[derive(Default)]
struct Namespace {
    adapters: Vec<(Adapter, String)>,
    pid: Option<u32>,
}

/// The namespace table.
#[derive(Default)]
pub struct Namespaces {
    table: Mutex<HashMap<String, Namespace>>,
}

impl Namespaces {
    /// Network Add: resolves the interface and records it; moves it at once if a container
    /// already owns the namespace.
    pub fn add_adapter(&self, reaper: &Reaper, adapter: Adapter) -> Result<()> {
        if adapter.vpci_assigned {
            return Err(Error::Invalid(
                "VPCI-assigned network adapters are not implemented".into(),
            ));
        }
        let ifname = resolve_interface(&adapter.id, &adapter.mac_address)?;
        let ns = adapter.namespace_id.to_lowercase();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let entry = t.entry(ns).or_default();
        if let Some(pid) = entry.pid {
            configure(reaper, &adapter, &ifname, pid)?;
        }
        entry.adapters.push((adapter, ifname));
        Ok(())
    }

    /// Network Remove: drops the record (no netlink action, like the reference).
    pub fn remove_adapter(&self, namespace_id: &str, id: &str) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = t.get_mut(&namespace_id.to_lowercase()) {
            ns.adapters.retain(|(a, _)| !a.id.eq_ignore_ascii_case(id));
        }
    }

    /// Whether the GCS knows namespace `namespace_id` (a Network Add named it).
    pub fn exists(&self, namespace_id: &str) -> bool {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.contains_key(&namespace_id.to_lowercase())
    }

    /// The resolv.conf content for a namespace's adapters.
    pub fn resolv_conf(&self, namespace_id: &str) -> String {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ns) = t.get(&namespace_id.to_lowercase()) else {
            return String::new();
        };
        let mut out = String::new();
        for (a, _) in &ns.adapters {
            let search: Vec<&str> = a.dns_suffix.split(',').filter(|s| !s.is_empty()).collect();
            if !search.is_empty() {
                out.push_str(&format!("search {}\n", search.join(" ")));
            }
            for s in a.dns_server_list.split(',').filter(|s| !s.is_empty()) {
                out.push_str(&format!("nameserver {s}\n"));
            }
        }
        out
    }

    /// Gives the namespace to the container whose init is `pid` and configures its adapters.
    pub fn attach(&self, reaper: &Reaper, namespace_id: &str, pid: u32) -> Result<()> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let ns = t.entry(namespace_id.to_lowercase()).or_default();
        for (a, ifname) in &ns.adapters {
            configure(reaper, a, ifname, pid)?;
        }
        ns.pid = Some(pid);
        Ok(())
    }

    /// The init pid of the container that owns namespace `namespace_id`, if one does: a
    /// container naming an owned namespace joins the owner's network namespace.
    pub fn owner(&self, namespace_id: &str) -> Option<u32> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.get(&namespace_id.to_lowercase()).and_then(|ns| ns.pid)
    }

    /// The namespace a container init owns.
    pub fn namespace_of_pid(&self, pid: u32) -> Option<String> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.iter()
            .find(|(_, ns)| ns.pid == Some(pid))
            .map(|(k, _)| k.clone())
    }

    /// The container of a namespace is gone.
    pub fn detach(&self, namespace_id: &str) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = t.get_mut(namespace_id) {
            ns.pid = None;
            if ns.adapters.is_empty() {
                t.remove(namespace_id);
            } else {
                tracing::warn!(namespace = namespace_id, "namespace still has adapters");
            }
        }
    }
}

/// Points `spec`'s network namespace at that of process `pid` (`/proc/<pid>/ns/net`),
/// adding a `network` entry to `linux.namespaces` when there is none.
pub fn join_network_namespace(spec: &mut serde_json::Value, pid: u32) -> Result<()> {
    let path = serde_json::Value::String(format!("/proc/{pid}/ns/net"));
    let linux = spec
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("OciSpecification must be an object".into()))?
        .entry("linux")
        .or_insert_with(|| serde_json::json!({}));
    let namespaces = linux
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("linux must be an object".into()))?
        .entry("namespaces")
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
        .ok_or_else(|| Error::Invalid("linux.namespaces must be an array".into()))?;
    match namespaces
        .iter_mut()
        .find(|n| n.get("type").and_then(|t| t.as_str()) == Some("network"))
    {
        Some(n) => n["path"] = path,
        None => namespaces.push(serde_json::json!({"type": "network", "path": path})),
    }
    Ok(())
}

/// Finds the interface of a network adapter, waiting up to 5 s: under
/// `/sys/bus/vmbus/devices/<id>/net/` in a Hyper-V VM, else (no VMBus: a QEMU VM's
/// virtio-net) the interface whose MAC address is `mac`.
fn resolve_interface(id: &str, mac: &str) -> Result<String> {
    let vmbus = Path::new("/sys/bus/vmbus/devices");
    let by_mac = !vmbus.exists() && !mac.is_empty();
    let dir = vmbus.join(id.to_lowercase()).join("net");
    let deadline = Instant::now() + RESOLVE_TIMEOUT;
    loop {
        let found = if by_mac {
            interface_with_mac(Path::new("/sys/class/net"), mac)
        } else {
            std::fs::read_dir(&dir)
                .ok()
                .and_then(|mut rd| rd.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
        };
        if let Some(name) = found {
            return Ok(name);
        }
        if Instant::now() >= deadline {
            let place = if by_mac {
                format!("with MAC address {mac}")
            } else {
                format!("under {}", dir.display())
            };
            return Err(Error::Invalid(format!(
                "network adapter {id}: no interface {place} after {}s",
                RESOLVE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A MAC address in one form: lowercase hex digits only (HCN writes `00-15-5D-…`, sysfs
/// `00:15:5d:…`).
fn normalize_mac(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The interface under `class_net` (`/sys/class/net`) whose address is `mac`.
fn interface_with_mac(class_net: &Path, mac: &str) -> Option<String> {
    let want = normalize_mac(mac);
    std::fs::read_dir(class_net).ok()?.flatten().find_map(|e| {
        let addr = std::fs::read_to_string(e.path().join("address")).ok()?;
        (normalize_mac(&addr) == want).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

fn run(reaper: &Reaper, cmd: &mut Command) -> Result<()> {
    let out = reaper
        .output(cmd, None)
        .map_err(|e| Error::io(format!("run {cmd:?}"), e))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Moves `ifname` into the netns of `pid` and configures it (spec §5 "Configuring a NIC").
fn configure(reaper: &Reaper, a: &Adapter, ifname: &str, pid: u32) -> Result<()> {
    let pid_s = pid.to_string();
    run(
        reaper,
        Command::new("ip").args(["link", "set", ifname, "down"]),
    )?;
    run(
        reaper,
        Command::new("ip").args(["link", "set", ifname, "netns", &pid_s]),
    )?;
    let ip_in_ns = |args: &[&str]| {
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid_s, "-n", "ip"]).args(args);
        c
    };
    if a.encap_overhead > 0 {
        let mtu_path = format!("/proc/{pid}/root/sys/class/net/{ifname}/mtu");
        if let Ok(m) = std::fs::read_to_string(&mtu_path) {
            if let Ok(m) = m.trim().parse::<u32>() {
                let mtu = m.saturating_sub(a.encap_overhead.into()).to_string();
                run(reaper, &mut ip_in_ns(&["link", "set", ifname, "mtu", &mtu]))?;
            }
        }
    }
    run(reaper, &mut ip_in_ns(&["link", "set", ifname, "up"]))?;
    for ip in &a.ip_configs {
        let addr = format!("{}/{}", ip.ip_address, ip.prefix_length);
        run(
            reaper,
            &mut ip_in_ns(&["addr", "add", &addr, "dev", ifname]),
        )?;
    }
    for r in &a.routes {
        let is_default = r.destination_prefix == "0.0.0.0/0" || r.destination_prefix == "::/0";
        if is_default && (r.next_hop == "0.0.0.0" || r.next_hop == "::") {
            continue;
        }
        let metric = r.metric.to_string();
        let mut args = vec!["route", "add", r.destination_prefix.as_str()];
        if !r.next_hop.is_empty() {
            args.extend(["via", r.next_hop.as_str()]);
        }
        args.extend(["dev", ifname, "metric", &metric]);
        if run(reaper, &mut ip_in_ns(&args)).is_err() && !r.next_hop.is_empty() {
            // "network is unreachable": make the gateway reachable on the link and retry.
            run(
                reaper,
                &mut ip_in_ns(&["route", "add", &r.next_hop, "dev", ifname]),
            )?;
            run(reaper, &mut ip_in_ns(&args))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_joins_the_owners_network_namespace() {
        let mut spec =
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        join_network_namespace(&mut spec, 42).unwrap();
        assert_eq!(
            spec["linux"]["namespaces"][1],
            serde_json::json!({"type": "network", "path": "/proc/42/ns/net"})
        );
        let mut spec = serde_json::json!({});
        join_network_namespace(&mut spec, 7).unwrap();
        assert_eq!(spec["linux"]["namespaces"][0]["path"], "/proc/7/ns/net");
        assert!(join_network_namespace(&mut serde_json::json!({"linux": 1}), 7).is_err());
    }

    #[test]
    fn an_interface_is_found_by_its_mac_in_either_form() {
        let dir = tempfile::tempdir().unwrap();
        for (name, addr) in [
            ("lo", "00:00:00:00:00:00\n"),
            ("eth0", "52:54:00:ab:cd:ef\n"),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("address"), addr).unwrap();
        }
        assert_eq!(
            interface_with_mac(dir.path(), "52-54-00-AB-CD-EF").as_deref(),
            Some("eth0")
        );
        assert_eq!(
            interface_with_mac(dir.path(), "52:54:00:ab:cd:ef").as_deref(),
            Some("eth0")
        );
        assert_eq!(interface_with_mac(dir.path(), "52:54:00:00:00:01"), None);
    }

    #[test]
    fn resolv_conf_from_adapters() {
        let ns = Namespaces::default();
        ns.table
            .lock()
            .unwrap()
            .entry("abc".into())
            .or_default()
            .adapters
            .push((
                Adapter {
                    dns_suffix: "a.local,b.local".into(),
                    dns_server_list: "10.0.0.10,10.0.0.11".into(),
                    ..Default::default()
                },
                "eth0".into(),
            ));
        assert_eq!(
            ns.resolv_conf("ABC"),
            "search a.local b.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\n"
        );
        assert_eq!(ns.resolv_conf("other"), "");
    }
}
