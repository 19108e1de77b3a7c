//! Benchmark driver for `bench/hnsd.sh` (run as root).
//!
//! * `lifecycle N`: one endpoint's life, N times, the same kernel work on every side, in
//!   blocks of 10 cycles taking turns (so the machine's load weighs on each alike):
//!   - **hnsd**: through the `hnsd` binary with its dataplane (in a network namespace made
//!     for the run): create an endpoint with a TCP port mapping on a NAT network (a DNAT
//!     rule), attach it to a namespace bound to a network namespace (`NetnsPath`, as the CNI
//!     plugin does: veth on the bridge, peer in the namespace with MAC, address, default
//!     route), delete it (veth and rule removed);
//!   - **iproute2**: `ip` and `nft` commands doing the same on a bridge with the same
//!     masquerade and DNAT maps: the veth with its peer created in the namespace (`ip link
//!     add … peer … netns`), address, up, default route, the DNAT elements with one `nft`;
//!     then `ip link del` and one `nft` removing the elements;
//!   - **iproute2 (move)**: the same, the peer created in the host namespace and then moved
//!     (`ip link set … netns`), as a script written step by step would;
//!   - **hnsd, no dataplane**: the same calls through an hnsd that keeps objects only (the
//!     control plane and its durable commits alone).
//!
//!   Prints one line per side: `name ops_per_s p50_ms p99_ms`, and for hnsd the p50 and p99
//!   of its three calls (`phases create_ms attach_ms delete_ms`, `phases99 …`).
//! * `rss N`: the `hnsd` binary's resident set idle and after creating N endpoints, each
//!   with a port mapping, and the time the last 100 creations took (per creation).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    hnsd::testing::network("bench", NetworkType::Nat, prefix, gw)
}

fn port_mapping(external: u16) -> EndpointPolicy {
    EndpointPolicy::new(
        EndpointPolicyType::PortMapping,
        &PortMappingPolicySetting {
            protocol: 6,
            internal_port: 80,
            external_port: external,
            ..Default::default()
        },
    )
    .expect("policy")
}

fn pct(ms: &mut [f64], p: f64) -> f64 {
    ms.sort_by(|a, b| a.total_cmp(b));
    ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1]
}

/// Cycle latencies and busy time of one side.
#[derive(Default)]
struct Side {
    ms: Vec<f64>,
    busy: Duration,
    phases: [Vec<f64>; 3],
}

impl Side {
    fn line(&mut self, name: &str) -> String {
        let ops = self.ms.len() as f64 / self.busy.as_secs_f64();
        let (p50, p99) = (pct(&mut self.ms, 0.5), pct(&mut self.ms, 0.99));
        format!("{name} {ops:.1} {p50:.2} {p99:.2}")
    }
}

/// The hnsd side: a NAT network and a namespace bound to network namespace `pod`.
struct HnsdSide {
    hcn: hcn::Hcn,
    net: HostComputeNetwork,
    ns: String,
}

impl HnsdSide {
    fn new(hcn: hcn::Hcn, prefix: &str, gw: &str, pod: &Path) -> Self {
        let net = hcn.create_network(&nat(prefix, gw)).expect("network");
        let ns = hcn
            .create_namespace(&HostComputeNamespace {
                netns_path: pod.display().to_string(),
                ..hcn::new_namespace(NamespaceType::Host)
            })
            .expect("namespace")
            .id;
        Self { hcn, net, ns }
    }

    fn cycle(&self, side: &mut Side) {
        let t = Instant::now();
        let ep = self
            .hcn
            .create_endpoint(
                &self.net,
                &HostComputeEndpoint {
                    policies: vec![port_mapping(8080)],
                    ..Default::default()
                },
            )
            .expect("create endpoint");
        let t1 = Instant::now();
        self.hcn
            .add_namespace_endpoint(&self.ns, &ep.id)
            .expect("attach");
        let t2 = Instant::now();
        self.hcn.delete_endpoint(&ep.id).expect("delete endpoint");
        let t3 = Instant::now();
        side.ms.push((t3 - t).as_secs_f64() * 1e3);
        side.busy += t3 - t;
        for (i, d) in [t1 - t, t2 - t1, t3 - t2].into_iter().enumerate() {
            side.phases[i].push(d.as_secs_f64() * 1e3);
        }
    }

    fn finish(self) {
        self.hcn
            .delete_namespace(&self.ns)
            .expect("delete namespace");
        self.hcn
            .delete_network(&self.net.id)
            .expect("delete network");
    }
}

/// Runs a command on a thread inside network namespace `ns` (stdin: `input`).
fn run_in(ns: &Path, prog: &str, args: &[&str], input: Option<&str>) {
    let (prog, args, input) = (
        prog.to_string(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        input.map(str::to_string),
    );
    hnsd::netns::in_netns(ns, move || {
        let mut child = Command::new(&prog)
            .args(&args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("{prog}: {e}"))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| format!("{prog} stdin: {e}"))?;
        }
        let st = child.wait().map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("{prog} {args:?} failed"))
        }
    })
    .expect("command");
}

/// The iproute2 + nft side: bridge, masquerade and DNAT maps made once in `host`.
struct IpSide {
    host: PathBuf,
    pod: PathBuf,
    move_peer: bool,
}

const IP_TABLE: &str = "
table ip bench {
  map any_addr { type inet_proto . inet_service : ipv4_addr; }
  map any_port { type inet_proto . inet_service : inet_service; }
  chain postrouting {
    type nat hook postrouting priority 100;
    ip saddr 10.78.0.0/22 oifname != \"br0\" masquerade
  }
  chain prerouting {
    type nat hook prerouting priority -100;
    fib daddr type local dnat to meta l4proto . th dport map @any_addr : meta l4proto . th dport map @any_port
  }
  chain output {
    type nat hook output priority -100;
    fib daddr type local dnat to meta l4proto . th dport map @any_addr : meta l4proto . th dport map @any_port
  }
}
";

impl IpSide {
    fn new(host: &Path, pod: &Path, move_peer: bool) -> Self {
        Self {
            host: host.to_path_buf(),
            pod: pod.to_path_buf(),
            move_peer,
        }
    }

    fn setup(host: &Path) {
        run_in(host, "ip", &["link", "add", "br0", "type", "bridge"], None);
        run_in(
            host,
            "ip",
            &["addr", "add", "10.78.0.1/22", "dev", "br0"],
            None,
        );
        run_in(host, "ip", &["link", "set", "br0", "up"], None);
        run_in(host, "nft", &["-f", "-"], Some(IP_TABLE));
    }

    fn cycle(&self, side: &mut Side) {
        let (h, p) = (&self.host, &self.pod);
        let pod = p.display().to_string();
        let mac = "00:15:5d:00:00:02";
        let t = Instant::now();
        if self.move_peer {
            let veth = ["link", "add", "vh0", "master", "br0", "up", "type", "veth"];
            run_in(
                h,
                "ip",
                &[&veth[..], &["peer", "name", "vp0"]].concat(),
                None,
            );
            run_in(h, "ip", &["link", "set", "vp0", "netns", &pod], None);
            let set = ["link", "set", "vp0", "name", "eth0", "address", mac];
            run_in(p, "ip", &set, None);
        } else {
            let veth = ["link", "add", "vh0", "master", "br0", "up", "type", "veth"];
            let peer = ["peer", "name", "eth0", "address", mac, "netns", &pod];
            run_in(h, "ip", &[&veth[..], &peer[..]].concat(), None);
        }
        run_in(
            p,
            "ip",
            &["addr", "add", "10.78.0.2/22", "dev", "eth0"],
            None,
        );
        run_in(p, "ip", &["link", "set", "eth0", "up"], None);
        let route = ["route", "add", "default", "via", "10.78.0.1", "dev", "eth0"];
        run_in(p, "ip", &route, None);
        let add = "add element ip bench any_addr { tcp . 8080 : 10.78.0.2 }\n\
                   add element ip bench any_port { tcp . 8080 : 80 }\n";
        run_in(h, "nft", &["-f", "-"], Some(add));
        run_in(h, "ip", &["link", "del", "vh0"], None);
        let del = "delete element ip bench any_addr { tcp . 8080 }\n\
                   delete element ip bench any_port { tcp . 8080 }\n";
        run_in(h, "nft", &["-f", "-"], Some(del));
        let d = t.elapsed();
        side.ms.push(d.as_secs_f64() * 1e3);
        side.busy += d;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
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
        .expect("tempdir");
    let d = dir.path();
    match args.get(1).map(String::as_str) {
        Some("lifecycle") => {
            let hnsd_host = TestNetns::create(d.join("host")).expect("netns");
            let hnsd_pod = TestNetns::create(d.join("pod")).expect("netns");
            let cp_pod = TestNetns::create(d.join("cp-pod")).expect("netns");
            let ip_host = TestNetns::create(d.join("ip-host")).expect("netns");
            let ip_pod = TestNetns::create(d.join("ip-pod")).expect("netns");
            let ip_host2 = TestNetns::create(d.join("ip-host2")).expect("netns");
            let ip_pod2 = TestNetns::create(d.join("ip-pod2")).expect("netns");
            let (_dp_child, dp) = start_hnsd(&bin, &d.join("dp"), Some(hnsd_host.path()));
            let (_cp_child, cp) = start_hnsd(&bin, &d.join("cp"), None);
            let dp = HnsdSide::new(dp, "10.77.0.0/22", "10.77.0.1", hnsd_pod.path());
            let cp = HnsdSide::new(cp, "10.76.0.0/22", "10.76.0.1", cp_pod.path());
            IpSide::setup(ip_host.path());
            IpSide::setup(ip_host2.path());
            let ip = IpSide::new(ip_host.path(), ip_pod.path(), false);
            let ip_move = IpSide::new(ip_host2.path(), ip_pod2.path(), true);
            let mut sides: [Side; 4] = Default::default();
            // A warm-up cycle each (page cache, first nft run, runtimes).
            dp.cycle(&mut Side::default());
            cp.cycle(&mut Side::default());
            ip.cycle(&mut Side::default());
            ip_move.cycle(&mut Side::default());
            let mut done = 0;
            while done < n {
                let block = (n - done).min(10);
                for _ in 0..block {
                    dp.cycle(&mut sides[0]);
                }
                for _ in 0..block {
                    ip.cycle(&mut sides[1]);
                }
                for _ in 0..block {
                    ip_move.cycle(&mut sides[2]);
                }
                for _ in 0..block {
                    cp.cycle(&mut sides[3]);
                }
                done += block;
            }
            println!("{}", sides[0].line("hnsd"));
            println!("{}", sides[1].line("iproute2"));
            println!("{}", sides[2].line("iproute2-move"));
            println!("{}", sides[3].line("hnsd-nodp"));
            let mut phases = std::mem::take(&mut sides[0].phases);
            println!(
                "phases {:.2} {:.2} {:.2}",
                pct(&mut phases[0], 0.5),
                pct(&mut phases[1], 0.5),
                pct(&mut phases[2], 0.5)
            );
            println!(
                "phases99 {:.2} {:.2} {:.2}",
                pct(&mut phases[0], 0.99),
                pct(&mut phases[1], 0.99),
                pct(&mut phases[2], 0.99)
            );
            dp.finish();
            cp.finish();
        }
        Some("rss") => {
            let host = TestNetns::create(d.join("host")).expect("netns");
            let (child, hcn) = start_hnsd(&bin, &d.join("rss"), Some(host.path()));
            let idle = rss_kib(child.0.id());
            let net = hcn
                .create_network(&nat("10.79.0.0/20", "10.79.0.1"))
                .expect("network");
            let mut last = Duration::ZERO;
            for i in 0..n {
                let t = Instant::now();
                hcn.create_endpoint(
                    &net,
                    &HostComputeEndpoint {
                        policies: vec![port_mapping(20000 + i as u16)],
                        ..Default::default()
                    },
                )
                .expect("create endpoint");
                if i + 100 >= n {
                    last += t.elapsed();
                }
            }
            let per = last.as_secs_f64() * 1e3 / n.min(100) as f64;
            println!("{idle} {} {per:.2}", rss_kib(child.0.id()));
        }
        _ => {
            eprintln!("usage: hnsd-bench lifecycle N | rss N");
            std::process::exit(2);
        }
    }
}
