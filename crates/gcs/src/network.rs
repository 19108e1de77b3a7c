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
    /// Every adapter of the namespace but the first gets low-metric routing.
    pub policy_based_routing: bool,
    /// The adapter's routes go to table [`LOW_METRIC_TABLE`], which its addresses' traffic
    /// uses, with metric [`LOW_METRIC`] where none is given.
    pub enable_low_metric: bool,
}

impl Adapter {
    /// Whether the adapter at `index` in its namespace is configured low-metric: with
    /// policy-based routing every adapter but the first, else as the adapter says.
    pub fn low_metric_at(&self, index: usize) -> bool {
        if self.policy_based_routing {
            index > 0
        } else {
            self.enable_low_metric
        }
    }
}

/// The routing table of a low-metric adapter.
pub const LOW_METRIC_TABLE: &str = "101";
/// The priority of the rule sending a low-metric adapter's traffic to its table.
pub const LOW_METRIC_RULE_PRIORITY: &str = "5";
/// The metric of a low-metric adapter's route that gives none.
pub const LOW_METRIC: u16 = 500;

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
        let ns = adapter.namespace_id.to_lowercase();
        self.check_new(&ns, &adapter.id)?;
        let ifname = resolve_interface(&adapter.id, &adapter.mac_address)?;
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let entry = t.entry(ns).or_default();
        if let Some(pid) = entry.pid {
            let low = adapter.low_metric_at(entry.adapters.len());
            configure(reaper, &adapter, &ifname, pid, low)?;
        }
        entry.adapters.push((adapter, ifname));
        Ok(())
    }

    /// Refuses a second adapter with the same id in a namespace, as the reference.
    fn check_new(&self, ns: &str, id: &str) -> Result<()> {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let present = t.get(ns).is_some_and(|n| {
            n.adapters
                .iter()
                .any(|(a, _)| a.id.eq_ignore_ascii_case(id))
        });
        if present {
            return Err(Error::Invalid(format!(
                "adapter with id: '{id}' already present in namespace"
            )));
        }
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
        for (i, (a, ifname)) in ns.adapters.iter().enumerate() {
            configure(reaper, a, ifname, pid, a.low_metric_at(i))?;
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

/// Moves `ifname` into the netns of `pid` and configures it (spec §5 "Configuring a NIC"),
/// with low-metric routing if `low_metric`.
fn configure(reaper: &Reaper, a: &Adapter, ifname: &str, pid: u32, low_metric: bool) -> Result<()> {
    let pid_s = pid.to_string();
    run(
        reaper,
        Command::new("ip").args(["link", "set", ifname, "down"]),
    )?;
    run(
        reaper,
        Command::new("ip").args(["link", "set", ifname, "netns", &pid_s]),
    )?;
    let ip_in_ns = |args: &[String]| {
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid_s, "-n", "ip"]).args(args);
        c
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if a.encap_overhead > 0 {
        let mtu_path = format!("/proc/{pid}/root/sys/class/net/{ifname}/mtu");
        if let Ok(m) = std::fs::read_to_string(&mtu_path) {
            if let Ok(m) = m.trim().parse::<u32>() {
                let mtu = m.saturating_sub(a.encap_overhead.into()).to_string();
                run(
                    reaper,
                    &mut ip_in_ns(&strings(&["link", "set", ifname, "mtu", &mtu])),
                )?;
            }
        }
    }
    run(
        reaper,
        &mut ip_in_ns(&strings(&["link", "set", ifname, "up"])),
    )?;
    for args in address_commands(a, ifname, low_metric) {
        run(reaper, &mut ip_in_ns(&args))?;
    }
    for (args, gateway) in route_commands(a, ifname, low_metric) {
        if let Err(e) = run(reaper, &mut ip_in_ns(&args)) {
            // "network is unreachable": make the gateway reachable on the link and retry.
            // A route without a gateway is the link's own (often there already, from the
            // address): reported, not fatal.
            let Some(gateway) = gateway else {
                tracing::warn!(ifname, error = %e, "route not added");
                continue;
            };
            run(reaper, &mut ip_in_ns(&gateway))?;
            run(reaper, &mut ip_in_ns(&args))?;
        }
    }
    Ok(())
}

/// `ip` arguments for an adapter's addresses and, low-metric, the rule that sends each
/// address's traffic to [`LOW_METRIC_TABLE`].
pub fn address_commands(a: &Adapter, ifname: &str, low_metric: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for ip in &a.ip_configs {
        let addr = format!("{}/{}", ip.ip_address, ip.prefix_length);
        out.push(vec![
            "addr".into(),
            "add".into(),
            addr,
            "dev".into(),
            ifname.into(),
        ]);
        if low_metric {
            let v6 = ip.ip_address.contains(':');
            let mut rule: Vec<String> = if v6 { vec!["-6".into()] } else { Vec::new() };
            let host = format!("{}/{}", ip.ip_address, if v6 { 128 } else { 32 });
            rule.extend(
                [
                    "rule",
                    "add",
                    "from",
                    &host,
                    "table",
                    LOW_METRIC_TABLE,
                    "priority",
                    LOW_METRIC_RULE_PRIORITY,
                ]
                .map(String::from),
            );
            out.push(rule);
        }
    }
    out
}

/// `ip` arguments for an adapter's routes, each with the route that makes its gateway
/// reachable on the link if the first attempt fails. A default route to the unspecified
/// address is skipped; low-metric routes go to [`LOW_METRIC_TABLE`], metric 0 becoming
/// [`LOW_METRIC`].
pub fn route_commands(
    a: &Adapter,
    ifname: &str,
    low_metric: bool,
) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for r in &a.routes {
        let is_default = r.destination_prefix == "0.0.0.0/0" || r.destination_prefix == "::/0";
        if is_default && (r.next_hop == "0.0.0.0" || r.next_hop == "::") {
            continue;
        }
        let metric = if low_metric && r.metric == 0 {
            LOW_METRIC
        } else {
            r.metric
        };
        let table: &[&str] = if low_metric {
            &["table", LOW_METRIC_TABLE]
        } else {
            &[]
        };
        let mut args: Vec<String> =
            vec!["route".into(), "add".into(), r.destination_prefix.clone()];
        if !r.next_hop.is_empty() {
            args.extend(["via".into(), r.next_hop.clone()]);
        }
        args.extend([
            "dev".into(),
            ifname.into(),
            "metric".into(),
            metric.to_string(),
        ]);
        args.extend(table.iter().map(|s| s.to_string()));
        let gateway = (!r.next_hop.is_empty()).then(|| {
            let mut g: Vec<String> = vec![
                "route".into(),
                "add".into(),
                r.next_hop.clone(),
                "dev".into(),
                ifname.into(),
            ];
            g.extend(table.iter().map(|s| s.to_string()));
            g
        });
        out.push((args, gateway));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(pbr: bool, low: bool) -> Adapter {
        Adapter {
            ip_configs: vec![
                IpConfig {
                    ip_address: "10.1.0.5".into(),
                    prefix_length: 24,
                },
                IpConfig {
                    ip_address: "fd00::5".into(),
                    prefix_length: 64,
                },
            ],
            routes: vec![
                Route {
                    next_hop: "10.1.0.1".into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                },
                Route {
                    next_hop: "0.0.0.0".into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                },
                Route {
                    next_hop: String::new(),
                    destination_prefix: "10.2.0.0/16".into(),
                    metric: 7,
                },
            ],
            policy_based_routing: pbr,
            enable_low_metric: low,
            ..Default::default()
        }
    }

    fn joined(v: &[String]) -> String {
        v.join(" ")
    }

    #[test]
    fn an_adapter_id_is_refused_twice_in_a_namespace() {
        let n = Namespaces::default();
        let a = Adapter {
            id: "AB-12".into(),
            ..Default::default()
        };
        n.table
            .lock()
            .unwrap()
            .entry("ns1".into())
            .or_default()
            .adapters
            .push((a, "eth0".into()));
        let e = n.check_new("ns1", "ab-12").unwrap_err().to_string();
        assert!(e.contains("already present"), "{e}");
        assert!(n.check_new("ns1", "cd-34").is_ok());
        assert!(n.check_new("ns2", "ab-12").is_ok());
    }

    #[test]
    fn policy_based_routing_makes_every_adapter_but_the_first_low_metric() {
        assert!(!adapter(true, true).low_metric_at(0));
        assert!(adapter(true, false).low_metric_at(1));
        assert!(adapter(false, true).low_metric_at(0));
        assert!(!adapter(false, false).low_metric_at(3));
    }

    #[test]
    fn low_metric_adds_source_rules_and_routes_in_table_101() {
        let a = adapter(false, true);
        let addrs: Vec<String> = address_commands(&a, "eth1", true)
            .iter()
            .map(|c| joined(c))
            .collect();
        assert_eq!(
            addrs,
            [
                "addr add 10.1.0.5/24 dev eth1",
                "rule add from 10.1.0.5/32 table 101 priority 5",
                "addr add fd00::5/64 dev eth1",
                "-6 rule add from fd00::5/128 table 101 priority 5",
            ]
        );
        let routes: Vec<(String, Option<String>)> = route_commands(&a, "eth1", true)
            .iter()
            .map(|(r, g)| (joined(r), g.as_deref().map(joined)))
            .collect();
        assert_eq!(
            routes,
            [
                (
                    "route add 0.0.0.0/0 via 10.1.0.1 dev eth1 metric 500 table 101".to_owned(),
                    Some("route add 10.1.0.1 dev eth1 table 101".to_owned())
                ),
                (
                    "route add 10.2.0.0/16 dev eth1 metric 7 table 101".to_owned(),
                    None
                ),
            ]
        );
        // Without low metric: no rules, the main table, the metrics as given.
        assert_eq!(address_commands(&a, "eth0", false).len(), 2);
        let (r, _) = &route_commands(&a, "eth0", false)[0];
        assert_eq!(
            joined(r),
            "route add 0.0.0.0/0 via 10.1.0.1 dev eth0 metric 0"
        );
    }

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
