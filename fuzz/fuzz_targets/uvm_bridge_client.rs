//! The host's bridge client (`uvm::BridgeClient`): its read loop and dispatch take whatever
//! the guest sends, and the guest is not trusted by the host (a confidential utility VM).
//!
//! A scripted host negotiates (answered properly), creates container `c`, asks for its
//! process list and starts its init process; the fuzzed guest answers each request the host
//! sends with the next chunk of the input (chunks are `u16 LE length, bytes`), and once the
//! host is done it sends the remaining chunks and closes. Nothing may panic, and once the
//! guest's stream has ended every wait of the host must end too: the client reports itself
//! closed, the container's watcher and the process's wait return. The runtime's clock is
//! paused, so request timeouts that a wrong answer leads to pass at once.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use bridge::messages::{
    ContainerConfig, GcsCapabilities, NegotiateProtocolResponse, PropertyType, ResponseBase,
};
use bridge::MessageType;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use uvm::transport::{PortListener, StdioTransport};
use uvm::{BridgeClient, ClientConfig, GcsContainer};

/// No stdio ports: the script's processes use none.
struct NoStdio;

#[async_trait::async_trait]
impl StdioTransport for NoStdio {
    async fn listen(&self, port: u32) -> std::io::Result<Box<dyn PortListener>> {
        Err(std::io::Error::other(format!(
            "no stdio port {port} in the fuzz target"
        )))
    }
}

/// The input's chunks: `u16 LE length` then that many bytes (the last one may be short).
fn chunks(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let n = u16::from_le_bytes([data[0], data[1]]) as usize;
        let n = n.min(data.len() - 2);
        out.push(data[2..2 + n].to_vec());
        data = &data[2 + n..];
    }
    if !data.is_empty() {
        out.push(data.to_vec());
    }
    out
}

fn negotiate_response() -> Vec<u8> {
    let resp = NegotiateProtocolResponse {
        base: ResponseBase::success("00000000-0000-0000-0000-000000000000"),
        version: 4,
        capabilities: GcsCapabilities::linux_gcs(),
    };
    bridge::encode_message(
        MessageType::NegotiateProtocolResponse,
        0,
        &resp,
        bridge::Encoding::Guest,
    )
    .expect("encode the negotiate response")
}

/// A bound on every wait of the script; the clock is paused, so reaching it costs nothing,
/// and only a wait that can never end reaches it.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut chunks = chunks(data).into_iter();
        let (host, guest) = tokio::io::duplex(1 << 20);
        let (mut guest_rx, mut guest_tx) = tokio::io::split(guest);
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        let guest_task = tokio::spawn(async move {
            // Negotiation is answered properly so that the host gets to its script.
            let first = bridge::read_frame_async(&mut guest_rx, u32::MAX).await;
            assert!(matches!(first, Ok(Some(_))), "the host negotiates first");
            guest_tx.write_all(&negotiate_response()).await.ok();
            loop {
                tokio::select! {
                    req = bridge::read_frame_async(&mut guest_rx, u32::MAX) => {
                        if !matches!(req, Ok(Some(_))) {
                            break;
                        }
                        if let Some(c) = chunks.next() {
                            if guest_tx.write_all(&c).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ = &mut done_rx => break,
                }
            }
            for c in chunks {
                if guest_tx.write_all(&c).await.is_err() {
                    break;
                }
            }
            guest_tx.shutdown().await.ok();
            // Keep reading so that the host's writes never block.
            while let Ok(Some(_)) = bridge::read_frame_async(&mut guest_rx, u32::MAX).await {}
        });

        let config = ClientConfig {
            rpc_timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(30),
            stdio_accept_timeout: Duration::from_secs(30),
            ..ClientConfig::default()
        };
        let (client, _caps) = BridgeClient::connect(Box::new(host), Arc::new(NoStdio), config)
            .await
            .expect("a proper negotiate response is accepted");
        let container = GcsContainer::create(&client, "c", ContainerConfig::default()).await;
        let mut process = None;
        if let Ok(c) = &container {
            let _ = c.properties(vec![PropertyType::ProcessList]).await;
            process = c.start_init(false, false, false).await.ok();
        } else {
            let _ = client
                .call_raw(
                    MessageType::DumpStacks,
                    &bridge::messages::RequestBase::null(),
                    None,
                )
                .await;
        }
        let _ = done_tx.send(());

        let reason = tokio::time::timeout(FOREVER, client.closed())
            .await
            .expect("the client closes once the guest's stream has ended");
        assert!(!reason.is_empty());
        if let Ok(c) = &container {
            tokio::time::timeout(FOREVER, c.wait())
                .await
                .expect("the container's watcher ends with the bridge")
                .ok();
        }
        if let Some(p) = &process {
            tokio::time::timeout(FOREVER, p.wait())
                .await
                .expect("the process wait ends with the bridge")
                .ok();
        }
        drop(process);
        drop(container);
        drop(client);
        guest_task.await.expect("the guest task does not panic");
    });
});
