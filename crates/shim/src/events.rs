//! Task events published to containerd (spec §1.5).
//!
//! Events go to containerd's ttrpc `containerd.services.events.ttrpc.v1.Events/Forward` at
//! `TTRPC_ADDRESS`, as an envelope {timestamp, namespace, topic, event `Any`}. A send that
//! fails is handed to a retry queue (bounded at 2048, delay = attempt seconds, dropped after
//! 5 attempts, 5 s per attempt, reconnecting on a broken connection), as containerd's own
//! publisher does, and the caller learns of the first failure: Create, Start, Exec and
//! Delete fail with it; exits only log it.
//!
//! The sink is a trait so that tests record what would have been sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim::event::Event;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::ttrpc::context;
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Bound of the retry queue.
pub const QUEUE_SIZE: usize = 2048;
/// Attempts of one event, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Bound of one send.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound of a send on a connection made earlier (containerd may have gone since), ns.
const REUSE_TIMEOUT_NS: i64 = 2_000_000_000;

/// Where events go.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Sends one envelope.
    async fn forward(&self, envelope: Envelope) -> Result<()>;
}

/// The events containerd expects from a task shim.
#[derive(Debug, Clone)]
pub enum TaskEvent {
    /// `/tasks/create`.
    Create(TaskCreate),
    /// `/tasks/start`.
    Start(TaskStart),
    /// `/tasks/exec-added`.
    ExecAdded(TaskExecAdded),
    /// `/tasks/exec-started`.
    ExecStarted(TaskExecStarted),
    /// `/tasks/exit`.
    Exit(TaskExit),
    /// `/tasks/delete`.
    Delete(TaskDelete),
    /// `/tasks/oom`: the kernel's OOM killer ended a process of the container. The
    /// reference never sends it; containerd's CRI needs it to report "OOMKilled".
    Oom(TaskOOM),
}

impl TaskEvent {
    /// The topic and the packed payload.
    pub fn encode(&self) -> Result<(String, Any)> {
        fn one<E: Event + crate::options::TypeName>(e: &E) -> Result<(String, Any)> {
            Ok((e.topic(), crate::options::pack(e)?))
        }
        match self {
            TaskEvent::Create(e) => one(e),
            TaskEvent::Start(e) => one(e),
            TaskEvent::ExecAdded(e) => one(e),
            TaskEvent::ExecStarted(e) => one(e),
            TaskEvent::Exit(e) => one(e),
            TaskEvent::Delete(e) => one(e),
            TaskEvent::Oom(e) => one(e),
        }
    }
}

/// Publishes task events in order, retrying failed ones in the background.
#[derive(Clone)]
pub struct Publisher {
    namespace: String,
    sink: Arc<dyn EventSink>,
    /// Serialises sends, so events leave in the order they were published.
    order: Arc<tokio::sync::Mutex<()>>,
    retry: mpsc::Sender<(Envelope, u32)>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    to_timestamp(std::time::SystemTime::now())
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as a protobuf timestamp: what the
/// reference (and runc's shim) send as `exited_at` before an exit, so that containerd reads
/// a zero time rather than the Unix epoch an absent field gives.
pub fn go_zero_timestamp() -> Timestamp {
    Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
        ..Default::default()
    }
}

/// A `SystemTime` as a protobuf timestamp.
pub fn to_timestamp(t: std::time::SystemTime) -> Timestamp {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

impl Publisher {
    /// A publisher for namespace `namespace` over `sink`; starts the retry worker (needs a
    /// tokio runtime).
    pub fn new(namespace: impl Into<String>, sink: Arc<dyn EventSink>) -> Self {
        let (retry, rx) = mpsc::channel(QUEUE_SIZE);
        tokio::spawn(retry_worker(sink.clone(), rx));
        Self {
            namespace: namespace.into(),
            sink,
            order: Arc::new(tokio::sync::Mutex::new(())),
            retry,
        }
    }

    /// Publishes `event`; the error of the first attempt is returned (the event is retried
    /// in the background all the same).
    pub async fn publish(&self, event: TaskEvent) -> Result<()> {
        let (topic, any) = event.encode()?;
        let envelope = Envelope {
            timestamp: MessageField::some(now()),
            namespace: self.namespace.clone(),
            topic,
            event: MessageField::some(any),
            ..Default::default()
        };
        let _order = self.order.lock().await;
        match tokio::time::timeout(SEND_TIMEOUT, self.sink.forward(envelope.clone())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.requeue(envelope, 1);
                Err(e)
            }
            Err(_) => {
                self.requeue(envelope, 1);
                Err(Error::Other(format!(
                    "publish event: no answer from containerd within {SEND_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Publishes `event` and only logs a failure (exit events).
    pub async fn publish_logged(&self, event: TaskEvent) {
        if let Err(e) = self.publish(event).await {
            tracing::warn!(error = %e, "publishing an event failed; retrying in the background");
        }
    }

    fn requeue(&self, envelope: Envelope, attempts: u32) {
        if self.retry.try_send((envelope, attempts)).is_err() {
            tracing::error!("event retry queue is full; event dropped");
        }
    }
}

async fn retry_worker(sink: Arc<dyn EventSink>, mut rx: mpsc::Receiver<(Envelope, u32)>) {
    while let Some((envelope, attempts)) = rx.recv().await {
        let mut attempts = attempts;
        loop {
            tokio::time::sleep(Duration::from_secs(attempts as u64)).await;
            attempts += 1;
            match tokio::time::timeout(SEND_TIMEOUT, sink.forward(envelope.clone())).await {
                Ok(Ok(())) => break,
                _ if attempts >= MAX_ATTEMPTS => {
                    tracing::error!(topic = %envelope.topic, "event dropped after {attempts} attempts");
                    break;
                }
                _ => {}
            }
        }
    }
}

/// containerd's events service over ttrpc (`TTRPC_ADDRESS`), connected on first use and
/// again after a failure.
pub struct RemoteSink {
    address: String,
    client: tokio::sync::Mutex<Option<EventsClient>>,
}

impl RemoteSink {
    /// A sink for containerd's ttrpc address (`unix:///...` or a pipe path).
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        // containerd passes a bare socket path on Unix; ttrpc wants the scheme.
        let address = if cfg!(unix) && address.starts_with('/') {
            format!("unix://{address}")
        } else {
            address
        };
        Self {
            address,
            client: tokio::sync::Mutex::new(None),
        }
    }
}

impl RemoteSink {
    async fn connect(&self) -> Result<EventsClient> {
        let client = Client::connect(&self.address)
            .await
            .map_err(|source| Error::Ttrpc {
                context: format!("connect to containerd's events service at {}", self.address),
                source,
            })?;
        Ok(EventsClient::new(client))
    }
}

#[async_trait]
impl EventSink for RemoteSink {
    async fn forward(&self, envelope: Envelope) -> Result<()> {
        let request = ForwardRequest {
            envelope: MessageField::some(envelope),
            ..Default::default()
        };
        let mut guard = self.client.lock().await;
        // The client is taken out while in use: a send abandoned by its caller's timeout
        // leaves none behind, and the next send connects afresh.
        if let Some(client) = guard.take() {
            // Bounded: a connection containerd dropped may never answer.
            if client
                .forward(context::with_timeout(REUSE_TIMEOUT_NS), &request)
                .await
                .is_ok()
            {
                *guard = Some(client);
                return Ok(());
            }
            // The connection broke (containerd restarted): one more try on a new one.
        }
        let client = self.connect().await?;
        match client.forward(context::with_timeout(0), &request).await {
            Ok(_) => {
                *guard = Some(client);
                Ok(())
            }
            Err(source) => Err(Error::Ttrpc {
                context: "forward an event to containerd".into(),
                source,
            }),
        }
    }
}

/// A sink that records envelopes (tests, and `ShimDiag`-style inspection).
#[derive(Default)]
pub struct RecordingSink {
    sent: Mutex<Vec<Envelope>>,
    fail: std::sync::atomic::AtomicBool,
}

impl RecordingSink {
    /// The topics sent so far, in order.
    pub fn topics(&self) -> Vec<String> {
        self.lock().iter().map(|e| e.topic.clone()).collect()
    }

    /// The envelopes sent so far.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.lock().clone()
    }

    /// Makes later sends fail (or succeed again).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Envelope>> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn forward(&self, envelope: Envelope) -> Result<()> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Other("recording sink set to fail".into()));
        }
        self.lock().push(envelope);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_carry_namespace_topic_and_type() {
        let sink = Arc::new(RecordingSink::default());
        let p = Publisher::new("ns1", sink.clone());
        p.publish(TaskEvent::Start(TaskStart {
            container_id: "c".into(),
            pid: 7,
            ..Default::default()
        }))
        .await
        .unwrap();
        p.publish(TaskEvent::Exit(TaskExit::default()))
            .await
            .unwrap();
        assert_eq!(sink.topics(), ["/tasks/start", "/tasks/exit"]);
        let env = &sink.envelopes()[0];
        assert_eq!(env.namespace, "ns1");
        assert_eq!(env.event.type_url, "containerd.events.TaskStart");
        assert!(env.timestamp.seconds > 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_send_is_reported_and_retried() {
        let sink = Arc::new(RecordingSink::default());
        let p = Publisher::new("ns", sink.clone());
        sink.set_failing(true);
        assert!(p
            .publish(TaskEvent::Delete(TaskDelete::default()))
            .await
            .is_err());
        sink.set_failing(false);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sink.topics(), ["/tasks/delete"]);
    }

    #[test]
    fn go_zero_time_is_year_one() {
        // 719162 days from 0001-01-01 to 1970-01-01 in the proleptic Gregorian calendar.
        assert_eq!(go_zero_timestamp().seconds, -719_162 * 86_400);
        assert_eq!(go_zero_timestamp().nanos, 0);
    }
}
