//! The host's bridge client (the reference's `internal/gcs` `GuestConnection` + `bridge`).
//!
//! * Negotiation first (NegotiateProtocol 4..4 with id 0); ids then count up by one.
//! * Any number of requests in flight: each registers its id, writes its whole message under
//!   the writer lock, and awaits its own response; a reader task matches responses by id.
//! * Container exit notifications are routed by container id to the container's watchers.
//! * Every wait is bounded: synchronous calls by [`ClientConfig::rpc_timeout`], stdio
//!   accepts by [`ClientConfig::stdio_accept_timeout`]; a process wait ends at the latest when
//!   the bridge closes.
//!
//! **Deliberate differences from the reference.** The reference kills the whole bridge when
//! the guest sends a response with an unknown id, a notification of another type or for an
//! unknown container, or a message above 64 KiB, and when a synchronous call times out. Here
//! a stray message is logged and dropped, an oversized response fails only the request it
//! answers (its body is skipped, the stream stays in sync), and a timeout fails only that
//! call. Only a broken stream (EOF, I/O error, a `Size` below 16) closes the bridge, and then
//! every pending call and every container watcher is told why.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge::codec::{encode_message, Encoding, Frame};
use bridge::header::{MessageHeader, MessageKind, MessageType, HEADER_SIZE, MAX_MESSAGE_SIZE};
use bridge::hresult::Hresult;
use bridge::messages::{
    ContainerNotification, GcsCapabilities, NegotiateProtocolRequest, NegotiateProtocolResponse,
    NotificationType, ResponseBase, PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::transport::{BoxStream, StdioTransport, FIRST_STDIO_PORT};

/// Timeouts of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bound of every synchronous call (`bridgeFailureTimeout`, 5 minutes).
    pub rpc_timeout: Duration,
    /// Bound of Shutdown calls (30 s in the reference).
    pub shutdown_timeout: Duration,
    /// Bound of waiting for the guest to dial a stdio port after ExecuteProcess succeeded.
    pub stdio_accept_timeout: Duration,
    /// Largest message accepted from the guest (`MaxMsgSize`).
    pub max_message_size: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(30),
            stdio_accept_timeout: Duration::from_secs(30),
            max_message_size: MAX_MESSAGE_SIZE,
        }
    }
}

/// What a container's watchers see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// No exit notification yet.
    Running,
    /// The guest reported the container's exit.
    Exited(NotificationType),
    /// The bridge closed before the container's exit was reported.
    BridgeClosed(String),
}

type Pending = HashMap<u64, oneshot::Sender<Result<Frame>>>;

struct Inner {
    writer: tokio::sync::Mutex<WriteHalf<BoxStream>>,
    next_id: AtomicU64,
    next_port: AtomicU32,
    pending: Mutex<Pending>,
    containers: Mutex<HashMap<String, watch::Sender<ContainerState>>>,
    closed: watch::Sender<Option<String>>,
    stdio: Arc<dyn StdioTransport>,
    config: ClientConfig,
}

/// A connection to a GCS. Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct BridgeClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeClient")
            .field("closed", &*self.inner.closed.borrow())
            .finish()
    }
}

/// Removes a pending id when its call is abandoned (timeout or cancellation).
struct PendingGuard<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these short critical sections cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BridgeClient {
    /// Starts the client on a connected stream and negotiates the protocol.
    ///
    /// Returns the guest's capabilities. Fails unless the guest selects version 4 and sends
    /// decodable `GuestDefinedCapabilities`, as the reference host requires.
    pub async fn connect(
        stream: BoxStream,
        stdio: Arc<dyn StdioTransport>,
        config: ClientConfig,
    ) -> Result<(Self, GcsCapabilities)> {
        let (reader, writer) = tokio::io::split(stream);
        let (closed, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(writer),
            next_id: AtomicU64::new(0),
            next_port: AtomicU32::new(FIRST_STDIO_PORT),
            pending: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            closed,
            stdio,
            config,
        });
        tokio::spawn(read_loop(Arc::downgrade(&inner), reader));
        let client = Self { inner };
        let caps = client.negotiate().await?;
        Ok((client, caps))
    }

    async fn negotiate(&self) -> Result<GcsCapabilities> {
        let resp: NegotiateProtocolResponse = self
            .call(
                MessageType::NegotiateProtocol,
                &NegotiateProtocolRequest::default(),
                None,
            )
            .await?;
        if resp.version != PROTOCOL_VERSION {
            return Err(Error::Protocol(format!(
                "the guest selected protocol version {}, only {PROTOCOL_VERSION} is supported",
                resp.version
            )));
        }
        if resp.capabilities.guest_defined_capabilities.is_none() {
            return Err(Error::Protocol(
                "the guest sent no GuestDefinedCapabilities".into(),
            ));
        }
        Ok(resp.capabilities)
    }

    /// The client's timeouts.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The stdio transport.
    pub fn stdio_transport(&self) -> &Arc<dyn StdioTransport> {
        &self.inner.stdio
    }

    /// Allocates the next stdio port (`0x40000001`, `0x40000002`, …).
    pub fn next_stdio_port(&self) -> u32 {
        self.inner.next_port.fetch_add(1, Ordering::Relaxed)
    }

    /// Why the bridge closed, if it did.
    pub fn closed_reason(&self) -> Option<String> {
        self.inner.closed.borrow().clone()
    }

    /// Resolves when the bridge closes, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.inner.closed.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "the bridge client was dropped".into();
            }
        }
    }

    /// Closes the bridge from the host side: pending calls fail with `reason`.
    pub async fn close(&self, reason: &str) {
        close_inner(&self.inner, reason.to_owned());
        let _ = self.inner.writer.lock().await.shutdown().await;
    }

    /// Sends a request and returns the raw response frame, whatever its `Result`.
    ///
    /// `timeout` `None` uses [`ClientConfig::rpc_timeout`]; `Some(Duration::MAX)` waits until
    /// the response or the bridge's end (for WaitForProcess).
    pub async fn call_raw<T: Serialize + ?Sized>(
        &self,
        message_type: MessageType,
        body: &T,
        timeout: Option<Duration>,
    ) -> Result<Frame> {
        let inner = &*self.inner;
        if let Some(reason) = inner.closed.borrow().clone() {
            return Err(Error::BridgeClosed(reason));
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = encode_message(message_type, id, body, Encoding::Host)
            .map_err(|e| Error::Encode(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        lock(&inner.pending).insert(id, tx);
        let _guard = PendingGuard { inner, id };
        // The bridge may have closed between the check and the insert: re-check so the
        // call cannot wait on a sender nobody will drain.
        if let Some(reason) = inner.closed.borrow().clone() {
            return Err(Error::BridgeClosed(reason));
        }
        {
            let mut w = inner.writer.lock().await;
            let written = async {
                w.write_all(&bytes).await?;
                w.flush().await
            }
            .await;
            if let Err(e) = written {
                drop(w);
                let reason = format!("write to the guest failed: {e}");
                close_inner(inner, reason.clone());
                return Err(Error::BridgeClosed(reason));
            }
        }
        tracing::trace!(id, op = message_type.name(), "bridge request sent");
        let limit = timeout.unwrap_or(inner.config.rpc_timeout);
        let received = if limit == Duration::MAX {
            rx.await
        } else {
            match tokio::time::timeout(limit, rx).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Timeout {
                        op: message_type.name().to_owned(),
                        after: limit,
                    })
                }
            }
        };
        match received {
            Ok(r) => r,
            Err(_) => Err(Error::BridgeClosed(
                self.closed_reason()
                    .unwrap_or_else(|| "the bridge reader stopped".into()),
            )),
        }
    }

    /// Sends a request and decodes a successful response; a failure `Result` becomes
    /// [`Error::Rpc`].
    pub async fn call<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        message_type: MessageType,
        body: &T,
        timeout: Option<Duration>,
    ) -> Result<R> {
        let frame = self.call_raw(message_type, body, timeout).await?;
        check_result(message_type, &frame)?;
        decode(message_type, &frame)
    }

    /// Registers a container's exit watcher. Done before Create, as the reference does; a
    /// duplicate id is an error.
    pub(crate) fn register_container(&self, id: &str) -> Result<watch::Receiver<ContainerState>> {
        let mut map = lock(&self.inner.containers);
        if map.contains_key(id) {
            return Err(Error::AlreadyExists(id.to_owned()));
        }
        if let Some(reason) = self.inner.closed.borrow().clone() {
            return Err(Error::BridgeClosed(reason));
        }
        let (tx, rx) = watch::channel(ContainerState::Running);
        map.insert(id.to_owned(), tx);
        Ok(rx)
    }

    /// Drops a container's exit watcher (failed create, or the handle is done).
    pub(crate) fn unregister_container(&self, id: &str) {
        lock(&self.inner.containers).remove(id);
    }
}

/// Turns a failure `Result` into [`Error::Rpc`].
pub(crate) fn check_result(message_type: MessageType, frame: &Frame) -> Result<()> {
    let base: ResponseBase = decode(message_type, frame)?;
    if base.result == Hresult::S_OK {
        return Ok(());
    }
    let message = if base.error_message.is_empty() {
        base.result.to_string()
    } else {
        base.error_message
    };
    for record in &base.error_records {
        tracing::debug!(
            op = message_type.name(),
            result = %record.result,
            message = %record.message,
            module = %record.module_name,
            "guest error record"
        );
    }
    Err(Error::Rpc {
        op: message_type.name(),
        hresult: base.result,
        message,
    })
}

pub(crate) fn decode<R: DeserializeOwned>(message_type: MessageType, frame: &Frame) -> Result<R> {
    frame.decode().map_err(|e| {
        Error::Protocol(format!(
            "undecodable response to {}: {e}",
            message_type.name()
        ))
    })
}

fn close_inner(inner: &Inner, reason: String) {
    let first = inner.closed.send_if_modified(|c| {
        if c.is_none() {
            *c = Some(reason.clone());
            true
        } else {
            false
        }
    });
    if !first {
        return;
    }
    tracing::debug!(%reason, "bridge closed");
    let pending: Vec<_> = lock(&inner.pending).drain().collect();
    for (_, tx) in pending {
        let _ = tx.send(Err(Error::BridgeClosed(reason.clone())));
    }
    let containers: Vec<_> = lock(&inner.containers).drain().collect();
    for (_, tx) in containers {
        tx.send_replace(ContainerState::BridgeClosed(reason.clone()));
    }
}

async fn read_loop(weak: std::sync::Weak<Inner>, mut reader: ReadHalf<BoxStream>) {
    let reason = loop {
        let mut hdr = [0u8; HEADER_SIZE];
        let mut got = 0;
        let mut failed = None;
        while got < HEADER_SIZE {
            match reader.read(&mut hdr[got..]).await {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    failed = Some(format!("read from the guest failed: {e}"));
                    break;
                }
            }
        }
        if let Some(f) = failed {
            break f;
        }
        if got == 0 {
            break "the guest closed the bridge connection".to_owned();
        }
        if got < HEADER_SIZE {
            break format!("the guest closed the bridge inside a message header ({got} bytes)");
        }
        let header = MessageHeader::decode(&hdr);
        let Some(inner) = weak.upgrade() else { return };
        let Some(body_len) = header.body_len() else {
            break format!(
                "the guest sent a message size of {} (below the 16-byte header)",
                header.size
            );
        };
        if header.size > inner.config.max_message_size {
            // Skip the body to stay in sync, and fail only the call it answers.
            let skipped = tokio::io::copy(
                &mut (&mut reader).take(body_len as u64),
                &mut tokio::io::sink(),
            )
            .await;
            match skipped {
                Ok(n) if n == body_len as u64 => {}
                _ => break "the guest closed the bridge inside an oversized message".to_owned(),
            }
            let err = Error::Protocol(format!(
                "guest message of {} bytes exceeds the {}-byte limit",
                header.size, inner.config.max_message_size
            ));
            tracing::error!(id = header.id, error = %err, "dropping oversized bridge message");
            if MessageKind::of(header.message_type) == Some(MessageKind::Response) {
                if let Some(tx) = lock(&inner.pending).remove(&header.id) {
                    let _ = tx.send(Err(err));
                }
            }
            continue;
        }
        let mut body = Vec::new();
        match (&mut reader)
            .take(body_len as u64)
            .read_to_end(&mut body)
            .await
        {
            Ok(n) if n == body_len => {}
            Ok(_) => break "the guest closed the bridge inside a message body".to_owned(),
            Err(e) => break format!("read from the guest failed: {e}"),
        }
        dispatch(&inner, Frame { header, body });
    };
    if let Some(inner) = weak.upgrade() {
        close_inner(&inner, reason);
    }
}

fn dispatch(inner: &Inner, frame: Frame) {
    let header = frame.header;
    if inner.closed.borrow().is_some() {
        // Closed by the host: nobody waits for anything any more.
        tracing::debug!(
            id = header.id,
            r#type = %bridge::header::type_display_name(header.message_type),
            "dropping a message that arrived after the bridge was closed"
        );
        return;
    }
    match MessageKind::of(header.message_type) {
        Some(MessageKind::Response) => {
            let Some(tx) = lock(&inner.pending).remove(&header.id) else {
                tracing::error!(
                    id = header.id,
                    r#type = %bridge::header::type_display_name(header.message_type),
                    "dropping a response with an unknown id (the reference would kill the bridge)"
                );
                return;
            };
            let _ = tx.send(Ok(frame));
        }
        Some(MessageKind::Notification)
            if header.message_type == MessageType::ContainerNotification.as_u32() =>
        {
            let n: ContainerNotification = match frame.decode() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "dropping an undecodable container notification");
                    return;
                }
            };
            let tx = lock(&inner.containers).remove(&n.base.container_id);
            match tx {
                Some(tx) => {
                    tracing::debug!(container = %n.base.container_id, r#type = %n.notification_type, "container exited");
                    tx.send_replace(ContainerState::Exited(n.notification_type));
                }
                None => tracing::error!(
                    container = %n.base.container_id,
                    "dropping a notification for an unknown container (the reference would kill the bridge)"
                ),
            }
        }
        _ => tracing::error!(
            id = header.id,
            r#type = %bridge::header::type_display_name(header.message_type),
            "dropping an unexpected message from the guest (the reference would kill the bridge)"
        ),
    }
}
