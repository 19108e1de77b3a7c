//! Network namespaces and adapters of ModifySettings `Network` (spec §5).
//!
//! An adapter is recorded under its (lowercased) HCN namespace id. When a container whose spec
//! names that namespace is created, each adapter's interface is moved into the init process's
//! network namespace and configured there. Interfaces are found the reference's way, through
//! `/sys/bus/vmbus/devices/<adapter id>/net/`, which exists only in a Hyper-V utility VM.
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
        let ifname = resolve_interface(&adapter.id)?;
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

/// Finds the interface of a VMBus network adapter, waiting up to 5 s.
fn resolve_interface(id: &str) -> Result<String> {
    let dir = Path::new("/sys/bus/vmbus/devices")
        .join(id.to_lowercase())
        .join("net");
    let deadline = Instant::now() + RESOLVE_TIMEOUT;
    loop {
        if let Ok(mut rd) = std::fs::read_dir(&dir) {
            if let Some(Ok(e)) = rd.next() {
                return Ok(e.file_name().to_string_lossy().into_owned());
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Invalid(format!(
                "network adapter {id}: no interface under {} after {}s",
                dir.display(),
                RESOLVE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
