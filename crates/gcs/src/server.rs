//! The bridge server: reads frames from the current connection and dispatches them (spec §2).
//!
//! * Before negotiation only NegotiateProtocol is served; after it, everything except
//!   NegotiateProtocol. Anything unmatched (and everything without `-v4`) is answered with
//!   `HrNotImpl` and `bridge: function not supported, header type: <name>`.
//! * Requests run concurrently, each on its own thread, and answer out of order.
//! * Responses and notifications go to whichever connection is current. While there is none
//!   (the bridge dropped and the agent is re-dialing) they are queued and flushed, in order,
//!   when the next connection is attached; late responses keep their original ids.
//! * A header with a size below 16 or above [`MAX_REQUEST_SIZE`] is logged and the
//!   connection dropped, before any body is allocated.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bridge::messages::{ContainerNotification, NotificationType, RequestBase, ResponseBase};
use bridge::{Frame, Hresult, MessageType};
use serde::Serialize;

use crate::cli::PolicyStance;
use crate::container::ExitType;
use crate::error::{hr, Error};
use crate::host::{Host, Notifier};

/// Largest request the guest accepts, header included. The host itself sends requests of any
/// size (a Create carries a whole OCI spec), so this is well above the 64 KiB the host
/// accepts from the guest.
pub const MAX_REQUEST_SIZE: u32 = bridge::codec::GUEST_READ_LIMIT;

/// Why a connection stopped being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEnd {
    /// The connection closed or failed; the agent re-dials.
    Disconnected(String),
    /// The host asked the utility VM to shut down.
    Shutdown,
}

#[derive(Default)]
struct Output {
    /// The current connection's writer and its generation.
    conn: Option<(u64, Box<dyn Write + Send>)>,
    /// Messages produced while no connection was attached.
    queue: VecDeque<Vec<u8>>,
    generation: u64,
}

/// Bridge options.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// `-v4`: register the protocol-v4 handlers.
    pub v4: bool,
    /// `-initial-policy-stance`.
    pub policy: PolicyStance,
}

/// The bridge: the outgoing side (shared by all handlers) and the dispatch loop.
pub struct Bridge {
    out: Mutex<Output>,
    options: ServerOptions,
}

/// What a handler needs to answer its request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Raw request type.
    pub message_type: u32,
    /// Request id (echoed).
    pub id: u64,
    /// The request's ActivityId (echoed when non-empty).
    pub activity_id: String,
    /// The request's ContainerId.
    pub container_id: String,
}

impl Bridge {
    /// A bridge with no connection yet.
    pub fn new(options: ServerOptions) -> Arc<Self> {
        Arc::new(Bridge {
            out: Mutex::new(Output::default()),
            options,
        })
    }

    /// The bridge options.
    pub fn options(&self) -> ServerOptions {
        self.options
    }

    /// Sends one encoded message on the current connection, or queues it.
    pub fn send(&self, msg: Vec<u8>) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, w)) = out.conn.as_mut() {
            if w.write_all(&msg).and_then(|()| w.flush()).is_ok() {
                return;
            }
            tracing::warn!("bridge write failed; queueing until the host reconnects");
            out.conn = None;
        }
        out.queue.push_back(msg);
    }

    fn attach(&self, mut w: Box<dyn Write + Send>) -> u64 {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.generation += 1;
        let gen = out.generation;
        while let Some(m) = out.queue.pop_front() {
            if w.write_all(&m).is_err() {
                out.queue.push_front(m);
                break;
            }
        }
        let _ = w.flush();
        out.conn = Some((gen, w));
        gen
    }

    fn detach(&self, gen: u64) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.conn.as_ref().is_some_and(|(g, _)| *g == gen) {
            out.conn = None;
        }
    }

    /// Encodes and sends a response to `ctx`.
    pub fn respond<T: Serialize>(&self, ctx: &RequestContext, payload: &T) {
        let t = bridge::header::response_for(ctx.message_type);
        match bridge::encode_message(t, ctx.id, payload, bridge::Encoding::Guest) {
            Ok(m) => self.send(m),
            Err(e) => {
                tracing::error!(error = %e, "failed to encode a response");
                self.respond_error(ctx, &Error::wrap(hr::FAIL, e));
            }
        }
    }

    /// Sends the error response for `err`.
    pub fn respond_error(&self, ctx: &RequestContext, err: &Error) {
        tracing::debug!(id = ctx.id, error = %err, "request failed");
        let base = ResponseBase::failure(
            ctx.activity_id.clone(),
            Hresult(err.hresult() as i32),
            err.to_string(),
        );
        let t = bridge::header::response_for(ctx.message_type);
        match bridge::encode_message(t, ctx.id, &base, bridge::Encoding::Guest) {
            Ok(m) => self.send(m),
            // A response base always encodes; if it ever did not, the host would wait forever.
            Err(e) => tracing::error!(id = ctx.id, error = %e, "cannot encode an error response"),
        }
    }

    /// Sends a handler's result: its payload or its error.
    pub fn finish<T: Serialize>(&self, ctx: &RequestContext, r: crate::Result<T>) {
        match r {
            Ok(p) => self.respond(ctx, &p),
            Err(e) => self.respond_error(ctx, &e),
        }
    }

    fn not_supported(&self, ctx: &RequestContext) {
        let msg = bridge::header::not_supported_message(ctx.message_type);
        self.respond_error(ctx, &Error::wrap(hr::NOT_IMPL, msg));
    }

    /// Serves one connection until it closes, fails, or the host shuts the VM down.
    pub fn serve(
        self: &Arc<Self>,
        host: &Arc<Host>,
        reader: &mut dyn Read,
        writer: Box<dyn Write + Send>,
    ) -> ServeEnd {
        let gen = self.attach(writer);
        let mut negotiated = false;
        let end = loop {
            let frame = match bridge::read_frame(reader, MAX_REQUEST_SIZE) {
                Ok(Some(f)) => f,
                Ok(None) => break ServeEnd::Disconnected("the host closed the bridge".into()),
                Err(e) => {
                    tracing::error!(error = %e, "bad bridge message; dropping the connection");
                    break ServeEnd::Disconnected(e.to_string());
                }
            };
            if let Some(end) = self.dispatch(host, frame, &mut negotiated) {
                break end;
            }
        };
        self.detach(gen);
        end
    }

    fn dispatch(
        self: &Arc<Self>,
        host: &Arc<Host>,
        frame: Frame,
        negotiated: &mut bool,
    ) -> Option<ServeEnd> {
        // As the reference, the base is read only for the ids (a body it cannot decode
        // leaves them empty) and never fails the request: each handler decodes its own
        // request, and DumpStacks none.
        let base: Result<RequestBase, _> = frame.decode();
        let (container_id, activity_id) = match &base {
            Ok(b) => (b.container_id.clone(), b.activity_id.clone()),
            Err(_) => lenient_ids(&frame.body),
        };
        let ctx = RequestContext {
            message_type: frame.header.message_type,
            id: frame.header.id,
            activity_id,
            container_id,
        };
        tracing::debug!(
            id = ctx.id,
            kind = %bridge::header::type_display_name(ctx.message_type),
            container = %ctx.container_id,
            "request"
        );
        let known = MessageType::from_u32(ctx.message_type);
        let served = match known {
            Some(MessageType::NegotiateProtocol) => !*negotiated,
            Some(
                MessageType::Create
                | MessageType::Start
                | MessageType::ShutdownGraceful
                | MessageType::ShutdownForced
                | MessageType::ExecuteProcess
                | MessageType::WaitForProcess
                | MessageType::SignalProcess
                | MessageType::ResizeConsole
                | MessageType::GetProperties
                | MessageType::ModifySettings
                | MessageType::DumpStacks
                | MessageType::DeleteContainerState,
            ) => *negotiated,
            _ => false,
        };
        if !self.options.v4 || !served {
            self.not_supported(&ctx);
            return None;
        }
        let t = known.expect("served types are known");
        match t {
            MessageType::NegotiateProtocol => {
                if crate::handlers::negotiate(self, &ctx, &frame) {
                    *negotiated = true;
                }
                None
            }
            // Only a request that decodes: the handler answers the others (InvalidJSON).
            MessageType::ShutdownGraceful | MessageType::ShutdownForced
                if base.is_ok() && ctx.container_id == crate::NULL_CONTAINER_ID =>
            {
                Some(ServeEnd::Shutdown)
            }
            _ => {
                let (bridge, host) = (Arc::clone(self), Arc::clone(host));
                let answer_to = ctx.clone();
                let spawned = std::thread::Builder::new()
                    .name("request".into())
                    .stack_size(256 * 1024)
                    .spawn(move || crate::handlers::handle(&bridge, &host, t, &ctx, &frame));
                if let Err(e) = spawned {
                    // The host waits for an answer to every request: give it the failure.
                    tracing::error!(error = %e, "cannot spawn a request thread");
                    self.respond_error(
                        &answer_to,
                        &Error::wrap(
                            hr::FAIL,
                            format!("cannot start a thread for the request: {e}"),
                        ),
                    );
                }
                None
            }
        }
    }
}

/// What Go's `json.Unmarshal(body, &base)` leaves in `ContainerId` and `ActivityId` when it
/// fails: nothing for a body that is not JSON; for a JSON object with a field of the wrong
/// type, the string fields it could set (keys matched case-insensitively, the last wins).
fn lenient_ids(body: &[u8]) -> (String, String) {
    let (mut container_id, mut activity_id) = (String::new(), String::new());
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(body) {
        for (k, v) in o {
            match (k.to_ascii_lowercase().as_str(), v) {
                ("containerid", serde_json::Value::String(s)) => container_id = s,
                ("activityid", serde_json::Value::String(s)) => activity_id = s,
                _ => {}
            }
        }
    }
    (container_id, activity_id)
}

impl Notifier for Bridge {
    fn container_exited(&self, id: &str, activity_id: &str, exit_type: ExitType) {
        let t = match exit_type {
            ExitType::Graceful => NotificationType::GracefulExit,
            ExitType::Forced => NotificationType::ForcedExit,
            ExitType::Unexpected => NotificationType::UnexpectedExit,
        };
        let n = ContainerNotification::exit(id, activity_id, t);
        match bridge::encode_message(
            MessageType::ContainerNotification,
            0,
            &n,
            bridge::Encoding::Guest,
        ) {
            Ok(m) => self.send(m),
            Err(e) => tracing::error!(error = %e, "failed to encode a notification"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lenient_ids;

    #[test]
    fn ids_of_a_base_go_could_not_decode() {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(lenient_ids(b"{not json"), s("", ""));
        assert_eq!(lenient_ids(b"[1]"), s("", ""));
        assert_eq!(
            lenient_ids(br#"{"ContainerId":5,"activityid":"a"}"#),
            s("", "a")
        );
        assert_eq!(
            lenient_ids(br#"{"containerID":"c","ocsc":"x","ActivityId":null}"#),
            s("c", "")
        );
    }
}
