//! Process handlers: ExecuteProcess, WaitForProcess, SignalProcess, ResizeConsole.

use std::sync::Arc;

use bridge::messages::{
    ExecuteProcessRequest, ExecuteProcessResponse, ResizeConsoleRequest, ResponseBase,
    SignalProcessRequest, WaitForProcessRequest, WaitForProcessResponse,
};
use bridge::Frame;

use super::{decode, enforce, ok};
use crate::error::{hr, Error, Result};
use crate::host::{Host, ProcessParams, StdioPorts};
use crate::server::{Bridge, RequestContext};

pub(super) fn execute(
    bridge: &Bridge,
    host: &Arc<Host>,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<ExecuteProcessResponse> {
    let req: ExecuteProcessRequest = decode(frame)?;
    let ports = req.settings.stdio_ports();
    let p = req.settings.process_parameters.into_inner();
    // As the reference: a container process needs the container first (SystemNotFound,
    // InvalidState), then the policy; an external process only the policy.
    if !(p.create_in_utility_vm || ctx.container_id == crate::NULL_CONTAINER_ID) {
        host.container(&ctx.container_id)?;
    }
    enforce(bridge, "execute process")?;
    let oci_process = match &p.oci_process {
        Some(raw) => {
            Some(serde_json::from_str(raw.get()).map_err(|e| Error::wrap(hr::INVALID_JSON, e))?)
        }
        None => None,
    };
    let params = ProcessParams {
        command_line: p.command_line,
        command_args: p.command_args,
        working_directory: p.working_directory,
        environment: p.environment,
        emulate_console: p.emulate_console,
        create_stdin: p.create_std_in_pipe,
        create_stdout: p.create_std_out_pipe,
        create_stderr: p.create_std_err_pipe,
        is_external: p.create_in_utility_vm,
        oci_process,
    };
    let pid = host.execute_process(
        &ctx.container_id,
        params,
        StdioPorts {
            stdin: ports.std_in,
            stdout: ports.std_out,
            stderr: ports.std_err,
        },
    )?;
    Ok(ExecuteProcessResponse {
        base: ok(ctx),
        process_id: pid,
    })
}

/// WaitForProcess: the response is sent here, and only then is the process marked answered,
/// so that a container's exit notification (which waits for that) follows the response on
/// the wire, as in the reference (spec §10).
pub(super) fn wait(bridge: &Bridge, host: &Host, ctx: &RequestContext, frame: &Frame) {
    let waited = decode::<WaitForProcessRequest>(frame)
        .and_then(|req| host.wait_process(&ctx.container_id, req.process_id, req.timeout_in_ms));
    match waited {
        Ok((code, p)) => {
            bridge.respond(
                ctx,
                &WaitForProcessResponse {
                    base: ok(ctx),
                    exit_code: code,
                },
            );
            p.mark_answered();
        }
        Err(e) => bridge.respond_error(ctx, &e),
    }
}

pub(super) fn signal(
    bridge: &Bridge,
    host: &Host,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<ResponseBase> {
    let req: SignalProcessRequest = decode(frame)?;
    // As the reference: the container and the process first, then the policy.
    host.container(&ctx.container_id)?.process(req.process_id)?;
    enforce(bridge, "signal process")?;
    host.signal_process(&ctx.container_id, req.process_id, req.effective_signal())?;
    Ok(ok(ctx))
}

pub(super) fn resize(host: &Host, ctx: &RequestContext, frame: &Frame) -> Result<ResponseBase> {
    let req: ResizeConsoleRequest = decode(frame)?;
    host.resize_console(&ctx.container_id, req.process_id, req.height, req.width)?;
    Ok(ok(ctx))
}
