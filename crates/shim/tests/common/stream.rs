//! A client of containerd's CRI streaming server (the URLs that Exec, Attach and
//! PortForward return), speaking Kubernetes' WebSocket stream protocols as kubectl can:
//! `v4.channel.k8s.io` for exec/attach (one byte of channel before each message: 0 stdin,
//! 1 stdout, 2 stderr, 3 the status, 4 resize) and the port-forward protocol (a data and an
//! error channel per port, each opened by the port number, 2 bytes little-endian).
//!
//! containerd runs in the test's network namespace, where its streaming server listens on
//! loopback, so the TCP connection is made from a thread that has entered that namespace.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The exec/attach protocol with a status document on channel 3.
pub const CHANNEL_V4: &str = "v4.channel.k8s.io";
/// The stdin channel.
pub const STDIN: u8 = 0;
/// The stdout channel.
pub const STDOUT: u8 = 1;
/// The status channel (v4).
pub const STATUS: u8 = 3;
/// The terminal resize channel.
pub const RESIZE: u8 = 4;

/// An open stream connection.
pub struct Conn(WebSocketStream<TcpStream>);

/// Connects to `url` (http://host:port/...) from inside network namespace `netns`,
/// offering the WebSocket subprotocol `protocol`.
pub async fn connect(netns: &str, url: &str, protocol: &str) -> Conn {
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("not an http URL: {url}"))
        .to_string();
    let ns = format!("/run/netns/{netns}");
    // setns(2) changes only the calling thread; a socket keeps the namespace it was made in.
    let tcp = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::net::TcpStream::connect(&addr).unwrap()
    })
    .join()
    .unwrap();
    tcp.set_nonblocking(true).unwrap();
    let tcp = TcpStream::from_std(tcp).unwrap();
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp)
        .await
        .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol),
        "the streaming server did not accept {protocol}"
    );
    Conn(ws)
}

impl Conn {
    /// Sends `data` on `channel`.
    pub async fn send(&mut self, channel: u8, data: &[u8]) {
        let mut m = vec![channel];
        m.extend_from_slice(data);
        self.0.send(Message::binary(m)).await.expect("send");
    }

    /// Receives until `done` holds for what each channel has received so far, or the
    /// server closes; returns the channels' bytes. Panics after `limit`.
    pub async fn recv_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&BTreeMap<u8, Vec<u8>>) -> bool,
    ) -> BTreeMap<u8, Vec<u8>> {
        let mut got: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let read = async {
            while !done(&got) {
                match self.0.next().await {
                    Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                        got.entry(b[0]).or_default().extend_from_slice(&b[1..]);
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => panic!("stream: {e}"),
                }
            }
        };
        if tokio::time::timeout(limit, read).await.is_err() {
            panic!("stream: nothing conclusive within {limit:?}: {got:?}");
        }
        got
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}

/// The exit code a v4 status document reports: 0 for `Success`, the `ExitCode` cause for
/// `NonZeroExitCode`.
pub fn exit_code(status: &[u8]) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_slice(status).ok()?;
    match v["status"].as_str()? {
        "Success" => Some(0),
        _ => v["details"]["causes"]
            .as_array()?
            .iter()
            .find(|c| c["reason"] == "ExitCode")?["message"]
            .as_str()?
            .parse()
            .ok(),
    }
}
