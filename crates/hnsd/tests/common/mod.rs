//! Helpers of the hnsd integration tests: TCP in network namespaces, an "outside" network
//! joined to hnsd's host namespace, `ip`/`nft` inspection.

#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hcn::schema::*;
use hnsd::netns;
use hnsd::testing::{TestHnsd, TestNetns};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Asserts the test runs as root (CI does); the dataplane needs it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the dataplane tests need root (CI runs them as root)"
    );
}

/// A TCP listener bound inside network namespace `ns`.
pub fn listen(ns: &Path, addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = netns::in_netns(ns, move || {
        TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))
    })
    .unwrap();
    nix::sys::socket::setsockopt(
        &l.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(TIMEOUT.as_secs() as i64, 0),
    )
    .unwrap();
    l
}

/// Connects from inside `ns` to `addr`, sends `msg`, returns the reply.
pub fn talk(ns: &Path, addr: &str, msg: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut s = netns::in_netns(ns, move || {
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))
    })?;
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Serves one connection on `l` in the background: replies with what it read and the
/// peer's address; the join handle gives the peer address.
pub fn serve_once(l: TcpListener) -> std::thread::JoinHandle<Result<SocketAddr, String>> {
    std::thread::spawn(move || {
        let (mut s, peer) = l.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
        s.write_all(format!("{buf} from {}", peer.ip()).as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(peer)
    })
}

/// Runs a command inside `ns`; its stdout.
pub fn run_in(ns: &Path, program: &str, args: &[&str]) -> String {
    let (program, args): (String, Vec<String>) =
        (program.into(), args.iter().map(|s| s.to_string()).collect());
    netns::in_netns(ns, move || {
        let out = Command::new(&program)
            .args(&args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .unwrap()
}

/// The link names of `ns`.
pub fn links(ns: &Path) -> Vec<String> {
    netns::in_netns(ns, || {
        hnsd::dataplane::netlink::block(|h| async move {
            hnsd::dataplane::netlink::link_names(&h).await
        })
    })
    .unwrap()
}

/// The nft tables of `ns` (`ip hnsd_h1234` lines).
pub fn nft_tables(ns: &Path) -> String {
    run_in(ns, "nft", &["list", "tables"])
}

/// An "outside" network namespace joined to hnsd's host namespace by a veth:
/// host side 192.0.2.1/24 (`up0`), outside 192.0.2.2/24 (`up1`). TEST-NET-1 addresses that
/// only ever exist inside these namespaces.
pub fn outside(hnsd: &TestHnsd) -> TestNetns {
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let out = TestNetns::create(hnsd.dir().join("outside")).unwrap();
    let out_path = out.path().display().to_string();
    run_in(
        &host,
        "ip",
        &["link", "add", "up0", "type", "veth", "peer", "name", "up1"],
    );
    run_in(&host, "ip", &["link", "set", "up1", "netns", &out_path]);
    run_in(&host, "ip", &["addr", "add", "192.0.2.1/24", "dev", "up0"]);
    run_in(&host, "ip", &["link", "set", "up0", "up"]);
    run_in(
        out.path(),
        "ip",
        &["addr", "add", "192.0.2.2/24", "dev", "up1"],
    );
    run_in(out.path(), "ip", &["link", "set", "up1", "up"]);
    out
}

/// A NAT network document.
pub fn nat(name: &str, prefix: &str, gw: &str) -> HostComputeNetwork {
    hnsd::testing::network(name, NetworkType::Nat, prefix, gw)
}

/// A TCP port mapping policy.
pub fn port_mapping(ext: u16, int: u16) -> EndpointPolicy {
    EndpointPolicy::new(
        EndpointPolicyType::PortMapping,
        &PortMappingPolicySetting {
            protocol: 6,
            internal_port: int,
            external_port: ext,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Serves connections on `l` until `n` were served or none comes within the timeout;
/// each gets `name` back. Returns how many were served.
pub fn serve_many(l: TcpListener, name: &'static str, n: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut served = 0;
        while served < n {
            let Ok((mut s, _)) = l.accept() else {
                break;
            };
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut buf = String::new();
            if s.read_to_string(&mut buf).is_ok() && s.write_all(name.as_bytes()).is_ok() {
                served += 1;
            }
        }
        served
    })
}

/// An `hnsd` binary the test started (killed and reaped on drop).
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        // The test's own child, by pid; already reaped after a kill -9 round.
        if let Ok(None) = self.0.try_wait() {
            if let Err(e) = self.0.kill() {
                eprintln!("kill hnsd: {e}");
            }
            if let Err(e) = self.0.wait() {
                eprintln!("wait hnsd: {e}");
            }
        }
    }
}

/// Starts the `hnsd` binary without a dataplane on `dir` (socket, state, netns dirs) and
/// waits for its socket.
pub fn spawn_hnsd(dir: &Path) -> Child {
    let socket = dir.join("hnsd.sock");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hnsd"))
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--netns-dir")
        .arg(dir.join("netns"))
        .arg("--no-dataplane")
        .env("HNSD_LOG", "error")
        .spawn()
        .unwrap();
    let child = Child(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(std::time::Instant::now() < deadline, "hnsd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Attaches endpoint `ep` to a new HCN namespace of type Host; the namespace's id and
/// network namespace file.
pub fn attach_to_new_namespace(hcn: &hcn::Hcn, ep: &str) -> (String, std::path::PathBuf) {
    let ns = hcn
        .create_namespace(&hcn::new_namespace(NamespaceType::Host))
        .unwrap();
    hcn.add_namespace_endpoint(&ns.id, ep).unwrap();
    let path = hcn.get_namespace_by_id(&ns.id).unwrap().netns_path.into();
    (ns.id, path)
}
