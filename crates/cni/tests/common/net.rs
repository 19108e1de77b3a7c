//! TCP and `ip` inside network namespaces the test created, and an "outside" namespace
//! playing the internet, joined to hnsd's host namespace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use hnsd::netns::in_netns;
use hnsd::testing::{TestHnsd, TestNetns};

/// How long a connection attempt or read waits.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The outside namespace's address (TEST-NET-1: exists only inside the tests' namespaces).
pub const OUTSIDE_IP: &str = "192.0.2.2";

/// Asserts the test runs as root (CI does); namespaces, links and nft rules need it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs the tests as root)"
    );
}

/// A TCP listener bound inside network namespace `ns`.
pub fn listen(ns: &Path, addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = in_netns(ns, move || {
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

/// Serves one connection on `l` in the background: replies `<what it read> from <peer ip>`;
/// the handle gives the peer's address.
pub fn serve_once(l: TcpListener) -> JoinHandle<Result<SocketAddr, String>> {
    std::thread::spawn(move || {
        let (mut s, peer) = l.accept().map_err(|e| format!("accept: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
        s.write_all(format!("{buf} from {}", peer.ip()).as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(peer)
    })
}

/// Connects from inside `ns` to `addr`, sends `msg`, returns the reply.
pub fn talk(ns: &Path, addr: &str, msg: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut s = in_netns(ns, move || {
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))
    })?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A server in `server_ns` on `bind`, a client in `client_ns` dialing `dial`: the server's
/// reply and the source address the server saw.
pub fn exchange(
    server_ns: &Path,
    bind: &str,
    client_ns: &Path,
    dial: &str,
) -> Result<(String, String), String> {
    let server = serve_once(listen(server_ns, bind));
    let reply = talk(client_ns, dial, "hello");
    let peer = server
        .join()
        .map_err(|_| "the server thread panicked".to_string())?;
    let reply = reply?;
    Ok((reply, peer?.ip().to_string()))
}

/// Runs a command inside `ns`; its stdout (panics on failure).
pub fn run_in(ns: &Path, program: &str, args: &[&str]) -> String {
    let (program, args): (String, Vec<String>) =
        (program.into(), args.iter().map(|s| s.to_string()).collect());
    in_netns(ns, move || {
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

/// The host's side of the link to the outside: the host's adapter.
pub const UPLINK: &str = "up0";

/// An "outside" network namespace joined to hnsd's host namespace by a veth: host side
/// [`super::HOST_IP`]/24, outside [`OUTSIDE_IP`]/24.
pub fn outside(hnsd: &TestHnsd) -> TestNetns {
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    let out = TestNetns::create(hnsd.dir().join("outside")).unwrap();
    let out_path = out.path().display().to_string();
    run_in(
        &host,
        "ip",
        &["link", "add", UPLINK, "type", "veth", "peer", "name", "up1"],
    );
    run_in(&host, "ip", &["link", "set", "up1", "netns", &out_path]);
    let host_cidr = format!("{}/24", super::HOST_IP);
    run_in(&host, "ip", &["addr", "add", &host_cidr, "dev", UPLINK]);
    run_in(&host, "ip", &["link", "set", UPLINK, "up"]);
    let out_cidr = format!("{OUTSIDE_IP}/24");
    run_in(out.path(), "ip", &["addr", "add", &out_cidr, "dev", "up1"]);
    run_in(out.path(), "ip", &["link", "set", "up1", "up"]);
    run_in(out.path(), "ip", &["link", "set", "lo", "up"]);
    out
}
