//! Protocol handlers: decode the payload, call a plain [`Host`] method, encode the answer.
//! One file per concern.

mod container;
mod process;
mod resources;

use std::sync::Arc;

use bridge::messages::{
    GcsCapabilities, NegotiateProtocolRequest, NegotiateProtocolResponse, ResponseBase,
    PROTOCOL_VERSION,
};
use bridge::{Frame, MessageType};
use serde::de::DeserializeOwned;

use crate::cli::PolicyStance;
use crate::error::{hr, Error, Result};
use crate::host::Host;
use crate::server::{Bridge, RequestContext};

/// Decodes a request payload; a JSON error is `InvalidJSON`.
pub(crate) fn decode<T: DeserializeOwned>(frame: &Frame) -> Result<T> {
    frame.decode().map_err(|e| Error::wrap(hr::INVALID_JSON, e))
}

/// The empty success response.
pub(crate) fn ok(ctx: &RequestContext) -> ResponseBase {
    ResponseBase::success(ctx.activity_id.clone())
}

/// With `-initial-policy-stance=deny` and no way to install a policy, the closed-door
/// enforcer refuses every container and process operation.
pub(crate) fn enforce(bridge: &Bridge, what: &str) -> Result<()> {
    match bridge.options().policy {
        PolicyStance::Allow => Ok(()),
        PolicyStance::Deny => Err(Error::wrap(
            hr::FAIL,
            format!("{what} is denied by policy (closed door)"),
        )),
    }
}

/// NegotiateProtocol: returns whether the connection is now negotiated.
pub fn negotiate(bridge: &Bridge, ctx: &RequestContext, frame: &Frame) -> bool {
    let r = decode::<NegotiateProtocolRequest>(frame).and_then(|req| {
        if req.maximum_version < PROTOCOL_VERSION || req.minimum_version > PROTOCOL_VERSION {
            // The reference answers with the bare HRESULT.
            return Err(Error::Hresult(hr::UNSUPPORTED_PROTOCOL_VERSION));
        }
        Ok(NegotiateProtocolResponse {
            base: ok(ctx),
            version: PROTOCOL_VERSION.min(req.maximum_version),
            capabilities: GcsCapabilities::linux_gcs(),
        })
    });
    let success = r.is_ok();
    bridge.finish(ctx, r);
    success
}

/// Runs one negotiated request (on its own thread) and answers it.
pub fn handle(
    bridge: &Arc<Bridge>,
    host: &Arc<Host>,
    t: MessageType,
    ctx: &RequestContext,
    frame: &Frame,
) {
    match t {
        MessageType::Create => bridge.finish(ctx, container::create(bridge, host, ctx, frame)),
        MessageType::Start => bridge.finish(ctx, container::start(host, ctx, frame)),
        MessageType::ShutdownGraceful => {
            bridge.finish(ctx, container::shutdown(bridge, host, ctx, frame, false))
        }
        MessageType::ShutdownForced => {
            bridge.finish(ctx, container::shutdown(bridge, host, ctx, frame, true))
        }
        MessageType::GetProperties => {
            bridge.finish(ctx, container::get_properties(bridge, host, ctx, frame))
        }
        MessageType::DeleteContainerState => {
            bridge.finish(ctx, container::delete_state(host, ctx, frame))
        }
        MessageType::DumpStacks => bridge.finish(ctx, container::dump_stacks(bridge, ctx)),
        MessageType::ExecuteProcess => {
            bridge.finish(ctx, process::execute(bridge, host, ctx, frame))
        }
        MessageType::WaitForProcess => process::wait(bridge, host, ctx, frame),
        MessageType::SignalProcess => bridge.finish(ctx, process::signal(bridge, host, ctx, frame)),
        MessageType::ResizeConsole => bridge.finish(ctx, process::resize(host, ctx, frame)),
        MessageType::ModifySettings => {
            bridge.finish(ctx, resources::modify(bridge, host, ctx, frame))
        }
        other => bridge.respond_error(
            ctx,
            &Error::wrap(
                hr::NOT_IMPL,
                bridge::header::not_supported_message(other.as_u32()),
            ),
        ),
    }
}
