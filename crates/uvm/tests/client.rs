//! The bridge client against a scripted fake guest over an in-memory stream: ids, matching
//! out-of-order responses, notification routing, and the cases where the reference kills the
//! bridge but this client only fails one call or drops one message.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bridge::codec::{encode_message, read_frame_async, Encoding, Frame};
use bridge::header::{MessageHeader, MessageType, MAX_MESSAGE_SIZE};
use bridge::hresult::Hresult;
use bridge::messages::*;
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use uvm::client::{BridgeClient, ClientConfig};
use uvm::transport::{PortListener, StdioTransport};
use uvm::{Error, GcsContainer};

struct NoStdio;

#[async_trait]
impl StdioTransport for NoStdio {
    async fn listen(&self, port: u32) -> std::io::Result<Box<dyn PortListener>> {
        Err(std::io::Error::other(format!(
            "no stdio in this test (port {port})"
        )))
    }
}

struct Guest {
    rx: ReadHalf<DuplexStream>,
    tx: WriteHalf<DuplexStream>,
}

impl Guest {
    async fn recv(&mut self) -> Frame {
        read_frame_async(&mut self.rx, u32::MAX)
            .await
            .unwrap()
            .unwrap()
    }

    async fn send<T: serde::Serialize>(&mut self, t: MessageType, id: u64, body: &T) {
        let bytes = encode_message(t, id, body, Encoding::Guest).unwrap();
        self.tx.write_all(&bytes).await.unwrap();
    }

    async fn ok(&mut self, t: MessageType, id: u64) {
        self.send(t, id, &ResponseBase::success(ZERO_ACTIVITY_ID))
            .await;
    }
}

async fn connect(config: ClientConfig) -> (BridgeClient, Guest) {
    let (host_end, guest_end) = tokio::io::duplex(1 << 20);
    let (rx, tx) = tokio::io::split(guest_end);
    let mut guest = Guest { rx, tx };
    let negotiate = tokio::spawn(async move {
        let f = guest.recv().await;
        assert_eq!(
            f.header.known_type().unwrap(),
            MessageType::NegotiateProtocol
        );
        assert_eq!(f.header.id, 0, "negotiation is the first call, id 0");
        let req: NegotiateProtocolRequest = f.decode().unwrap();
        assert_eq!((req.minimum_version, req.maximum_version), (4, 4));
        assert!(f.body.ends_with(b"\n"), "host encoding ends with a newline");
        guest
            .send(
                MessageType::NegotiateProtocolResponse,
                0,
                &NegotiateProtocolResponse {
                    base: ResponseBase::success(ZERO_ACTIVITY_ID),
                    version: 4,
                    capabilities: GcsCapabilities::linux_gcs(),
                },
            )
            .await;
        guest
    });
    let (client, caps) = BridgeClient::connect(Box::new(host_end), Arc::new(NoStdio), config)
        .await
        .unwrap();
    assert_eq!(caps.runtime_os_type, "Linux");
    (client, negotiate.await.unwrap())
}

fn cfg() -> ClientConfig {
    ClientConfig {
        rpc_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn ids_count_up_and_responses_match_out_of_order() {
    let (client, mut guest) = connect(cfg()).await;
    let c1 = client.clone();
    let a = tokio::spawn(async move {
        c1.call::<_, ResponseBase>(MessageType::Start, &RequestBase::new("a"), None)
            .await
    });
    let fa = guest.recv().await;
    let c2 = client.clone();
    let b = tokio::spawn(async move {
        c2.call::<_, ExecuteProcessResponse>(
            MessageType::ExecuteProcess,
            &RequestBase::new("b"),
            None,
        )
        .await
    });
    let fb = guest.recv().await;
    assert_eq!((fa.header.id, fb.header.id), (1, 2));
    // Answer the second first.
    guest
        .send(
            MessageType::ExecuteProcessResponse,
            2,
            &ExecuteProcessResponse {
                base: ResponseBase::success(ZERO_ACTIVITY_ID),
                process_id: 42,
            },
        )
        .await;
    assert_eq!(b.await.unwrap().unwrap().process_id, 42);
    guest
        .send(
            MessageType::StartResponse,
            1,
            &ResponseBase::failure(
                ZERO_ACTIVITY_ID,
                Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND,
                "nope",
            ),
        )
        .await;
    let err = a.await.unwrap().unwrap_err();
    assert_eq!(err.hresult(), Some(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND));
    assert!(err.to_string().contains("nope"));
}

#[tokio::test]
async fn stray_messages_are_dropped_not_fatal() {
    let (client, mut guest) = connect(cfg()).await;
    // Unknown response id, unknown notification type, notification for an unknown container,
    // and an undecodable notification: each is logged and dropped.
    guest.ok(MessageType::StartResponse, 99).await;
    guest
        .send(MessageType::CreateResponse, 0, &ResponseBase::default())
        .await;
    let n = ContainerNotification::exit("ghost", ZERO_ACTIVITY_ID, NotificationType::ForcedExit);
    guest.send(MessageType::ContainerNotification, 0, &n).await;
    let bad = MessageHeader {
        message_type: MessageType::ContainerNotification.as_u32(),
        size: 16 + 2,
        id: 0,
    };
    guest.tx.write_all(&bad.encode()).await.unwrap();
    guest.tx.write_all(b"{x").await.unwrap();
    // Another header kind the host never expects.
    guest
        .send(MessageType::Start, 5, &RequestBase::null())
        .await;

    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call::<_, ResponseBase>(MessageType::DumpStacks, &RequestBase::null(), None)
            .await
    });
    let f = guest.recv().await;
    guest.ok(MessageType::DumpStacksResponse, f.header.id).await;
    call.await.unwrap().unwrap();
    assert!(client.closed_reason().is_none());
}

#[tokio::test]
async fn oversized_response_fails_only_its_call() {
    let (client, mut guest) = connect(cfg()).await;
    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call::<_, DumpStacksResponse>(MessageType::DumpStacks, &RequestBase::null(), None)
            .await
    });
    let f = guest.recv().await;
    let big = DumpStacksResponse {
        base: ResponseBase::success(ZERO_ACTIVITY_ID),
        guest_stacks: "x".repeat(MAX_MESSAGE_SIZE as usize),
    };
    guest
        .send(MessageType::DumpStacksResponse, f.header.id, &big)
        .await;
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    // The stream is still in sync.
    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call::<_, ResponseBase>(MessageType::Start, &RequestBase::new("x"), None)
            .await
    });
    let f = guest.recv().await;
    guest.ok(MessageType::StartResponse, f.header.id).await;
    call.await.unwrap().unwrap();
}

#[tokio::test]
async fn timeouts_fail_the_call_only() {
    let (client, mut guest) = connect(ClientConfig {
        rpc_timeout: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let err = client
        .call::<_, ResponseBase>(MessageType::Start, &RequestBase::new("slow"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let late = guest.recv().await;
    // A late answer to the abandoned call is dropped; the bridge stays up.
    guest.ok(MessageType::StartResponse, late.header.id).await;
    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call::<_, ResponseBase>(
            MessageType::Start,
            &RequestBase::new("x"),
            Some(Duration::from_secs(5)),
        )
        .await
    });
    let f = guest.recv().await;
    guest.ok(MessageType::StartResponse, f.header.id).await;
    call.await.unwrap().unwrap();
}

#[tokio::test]
async fn notifications_reach_their_container_and_close_fails_everything() {
    let (client, mut guest) = connect(cfg()).await;
    let c = client.clone();
    let create =
        tokio::spawn(
            async move { GcsContainer::create(&c, "c1", ContainerConfig::default()).await },
        );
    let f = guest.recv().await;
    assert_eq!(f.header.known_type().unwrap(), MessageType::Create);
    guest.ok(MessageType::CreateResponse, f.header.id).await;
    let c1 = create.await.unwrap().unwrap();
    // A duplicate id is refused before anything is sent.
    let dup = GcsContainer::create(&client, "c1", ContainerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::AlreadyExists(_)));

    let c = client.clone();
    let create =
        tokio::spawn(
            async move { GcsContainer::create(&c, "c2", ContainerConfig::default()).await },
        );
    let f = guest.recv().await;
    guest.ok(MessageType::CreateResponse, f.header.id).await;
    let c2 = create.await.unwrap().unwrap();

    let n = ContainerNotification::exit("c1", ZERO_ACTIVITY_ID, NotificationType::GracefulExit);
    guest.send(MessageType::ContainerNotification, 0, &n).await;
    assert_eq!(
        c1.wait_timeout(Duration::from_secs(5)).await.unwrap(),
        NotificationType::GracefulExit
    );
    assert_eq!(c2.exited(), None);

    // A pending call and c2's watcher both learn that the guest went away.
    let c = client.clone();
    let pending = tokio::spawn(async move {
        c.call::<_, ResponseBase>(MessageType::Start, &RequestBase::new("c2"), None)
            .await
    });
    let _ = guest.recv().await;
    drop(guest);
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::BridgeClosed(_)), "{err}");
    let err = c2.wait_timeout(Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, Error::BridgeClosed(_)), "{err}");
    let err = client
        .call::<_, ResponseBase>(MessageType::Start, &RequestBase::new("c2"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BridgeClosed(_)), "{err}");
}

#[tokio::test]
async fn negotiation_rejects_a_wrong_version() {
    let (host_end, guest_end) = tokio::io::duplex(1 << 16);
    let (rx, tx) = tokio::io::split(guest_end);
    let mut guest = Guest { rx, tx };
    let g = tokio::spawn(async move {
        let f = guest.recv().await;
        let mut resp = NegotiateProtocolResponse {
            base: ResponseBase::success(ZERO_ACTIVITY_ID),
            version: 3,
            capabilities: GcsCapabilities::linux_gcs(),
        };
        resp.capabilities.guest_defined_capabilities = None;
        guest
            .send(MessageType::NegotiateProtocolResponse, f.header.id, &resp)
            .await;
        guest
    });
    let err = BridgeClient::connect(Box::new(host_end), Arc::new(NoStdio), cfg())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
    drop(g.await.unwrap());
}
