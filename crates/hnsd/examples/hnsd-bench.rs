//! Benchmark driver for `bench/hnsd.sh` (run as root).
//!
//! * `lifecycle N`: N times, an endpoint is created on a NAT network, attached to a
//!   namespace (veth into its network namespace, address, routes) and deleted, through the
//!   `hnsd` binary with its dataplane (in a network namespace made for the run). The same
//!   kernel work done with iproute2 commands is the baseline, and the same calls through an
//!   hnsd without a dataplane show the control plane alone. Prints
//!   `ops_per_s p50_ms p99_ms` for each, one line each.
//! * `rss N`: the `hnsd` binary's resident set idle and after creating N endpoints.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hcn::hnsd_client::HnsdClient;
use hcn::schema::*;
use hnsd::testing::TestNetns;

struct Hnsd(Child);

impl Drop for Hnsd {
    fn drop(&mut self) {
        // Our own child, by pid.
        if let Err(e) = self.0.kill() {
            eprintln!("kill hnsd: {e}");
        }
        if let Err(e) = self.0.wait() {
            eprintln!("wait hnsd: {e}");
        }
    }
}

fn start_hnsd(bin: &Path, dir: &Path, netns: Option<&Path>) -> (Hnsd, hcn::Hcn) {
    let socket = dir.join("hnsd.sock");
    let mut cmd = Command::new(bin);
    cmd.arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.join("state"));
    cmd.arg("--netns-dir").arg(dir.join("netns"));
    match netns {
        Some(ns) => cmd.arg("--netns").arg(ns),
        None => cmd.arg("--no-dataplane"),
    };
    cmd.env("HNSD_LOG", "warn");
    let child = Hnsd(cmd.spawn().expect("start hnsd"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "hnsd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, hcn::Hcn::new(Arc::new(HnsdClient::new(&socket))))
}

fn nat(prefix: &str, gw: &str) -> HostComputeNetwork {
    HostComputeNetwork {
        name: "bench".into(),
        network_type: NetworkType::Nat,
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets: vec![Subnet {
                ip_address_prefix: prefix.into(),
                routes: vec![Route {
                    next_hop: gw.into(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }],
                ..Default::default()
            }],
        }],
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    }
}

fn stats(mut ms: Vec<f64>, total: Duration) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "{:.1} {:.2} {:.2}",
        ms.len() as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    )
}

fn hcn_lifecycle(hcn: &hcn::Hcn, n: usize) -> String {
    let net = hcn
        .create_network(&nat("10.77.0.0/22", "10.77.0.1"))
        .unwrap();
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    let mut ms = Vec::with_capacity(n);
    let all = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let ep = hcn
            .create_endpoint(&net, &HostComputeEndpoint::default())
            .unwrap();
        hcn.add_namespace_endpoint(&ns.id, &ep.id).unwrap();
        hcn.delete_endpoint(&ep.id).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let out = stats(ms, all.elapsed());
    hcn.delete_namespace(&ns.id).unwrap();
    hcn.delete_network(&net.id).unwrap();
    out
}

fn ip(ns: &Path, args: &[&str]) {
    let (ns, args): (PathBuf, Vec<String>) =
        (ns.into(), args.iter().map(|s| s.to_string()).collect());
    hnsd::netns::in_netns(&ns, move || {
        let st = Command::new("ip")
            .args(&args)
            .status()
            .map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("ip {args:?} failed"))
        }
    })
    .unwrap();
}

/// The same kernel work with iproute2: veth, bridge port, move, rename, MAC, address, up,
/// default route; then delete.
fn ip_lifecycle(dir: &Path, n: usize) -> String {
    let host = TestNetns::create(dir.join("ip-host")).unwrap();
    let pod = TestNetns::create(dir.join("ip-pod")).unwrap();
    let (h, p) = (host.path(), pod.path());
    let pod_path = p.display().to_string();
    ip(h, &["link", "add", "br0", "type", "bridge"]);
    ip(h, &["addr", "add", "10.78.0.1/22", "dev", "br0"]);
    ip(h, &["link", "set", "br0", "up"]);
    let mut ms = Vec::with_capacity(n);
    let all = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        ip(
            h,
            &["link", "add", "vh0", "type", "veth", "peer", "name", "vp0"],
        );
        ip(h, &["link", "set", "vh0", "master", "br0", "up"]);
        ip(h, &["link", "set", "vp0", "netns", &pod_path]);
        ip(
            p,
            &[
                "link",
                "set",
                "vp0",
                "name",
                "eth0",
                "address",
                "00:15:5d:00:00:02",
            ],
        );
        ip(p, &["addr", "add", "10.78.0.2/22", "dev", "eth0"]);
        ip(p, &["link", "set", "eth0", "up"]);
        ip(
            p,
            &["route", "add", "default", "via", "10.78.0.1", "dev", "eth0"],
        );
        ip(h, &["link", "del", "vh0"]);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    stats(ms, all.elapsed())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(std::env::var("HNSD_BIN").expect("HNSD_BIN"));
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let dir = tempfile::Builder::new()
        .prefix("hnsd-bench-")
        .tempdir()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("lifecycle") => {
            let host = TestNetns::create(dir.path().join("host")).unwrap();
            {
                let (_child, hcn) = start_hnsd(&bin, &dir.path().join("dp"), Some(host.path()));
                println!("{}", hcn_lifecycle(&hcn, n));
            }
            println!("{}", ip_lifecycle(dir.path(), n));
            let (_child, hcn) = start_hnsd(&bin, &dir.path().join("cp"), None);
            println!("{}", hcn_lifecycle(&hcn, n));
            // Namespaces hnsd pinned for the run go with the directory.
            for d in ["dp", "cp"] {
                if let Ok(entries) = std::fs::read_dir(dir.path().join(d).join("netns")) {
                    for e in entries.flatten() {
                        hnsd::netns::remove_named(&e.path()).unwrap();
                    }
                }
            }
        }
        Some("rss") => {
            let host = TestNetns::create(dir.path().join("host")).unwrap();
            let (child, hcn) = start_hnsd(&bin, &dir.path().join("rss"), Some(host.path()));
            let idle = rss_kib(child.0.id());
            let net = hcn
                .create_network(&nat("10.79.0.0/20", "10.79.0.1"))
                .unwrap();
            for _ in 0..n {
                hcn.create_endpoint(&net, &HostComputeEndpoint::default())
                    .unwrap();
            }
            println!("{idle} {}", rss_kib(child.0.id()));
        }
        _ => {
            eprintln!("usage: hnsd-bench lifecycle N | rss N");
            std::process::exit(2);
        }
    }
}
