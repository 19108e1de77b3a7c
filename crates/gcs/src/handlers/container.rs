//! Container handlers: Create, Start, Shutdown, GetProperties, DeleteContainerState,
//! DumpStacks.

use std::path::PathBuf;
use std::sync::Arc;

use bridge::messages::{
    CreateRequest, CreateResponse, DumpStacksResponse, GetPropertiesRequest, GetPropertiesResponse,
    ProcessDetails, Properties, RequestBase, ResponseBase, SchemaVersion, ZERO_ACTIVITY_ID,
};
use bridge::{AnyInString, Frame};

use super::{decode, enforce, ok};
use crate::error::{hr, Error, Result};
use crate::host::{self, Host};
use crate::server::{Bridge, RequestContext};

/// The host accepts at most 64 KiB per message: keep the stack dump well below it.
const MAX_STACKS: usize = 60 * 1024;

pub(super) fn create(
    bridge: &Bridge,
    host: &Arc<Host>,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<CreateResponse> {
    let req: CreateRequest = decode(frame)?;
    let cfg = req.container_config.into_inner();
    if cfg.schema_version < SchemaVersion::V2_1 {
        // Go prints the struct with %v: `{2 0}`.
        return Err(Error::wrap(
            hr::INVALID_JSON,
            format!(
                "invalid schema version: {{{} {}}}",
                cfg.schema_version.major, cfg.schema_version.minor
            ),
        ));
    }
    enforce(bridge, "create container")?;
    let spec: serde_json::Value = match &cfg.oci_specification {
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|e| Error::wrap(hr::INVALID_JSON, e))?
        }
        None => return Err(Error::wrap(hr::INVALID_JSON, "OciSpecification is missing")),
    };
    if cfg.oci_bundle_path.is_empty() {
        // The reference fails creating the directory "" (E_FAIL).
        return Err(Error::Invalid(
            "failed to create OCIBundlePath: '': it is empty".into(),
        ));
    }
    let activity_id = if req.base.activity_id.is_empty() {
        ZERO_ACTIVITY_ID.to_string()
    } else {
        req.base.activity_id.clone()
    };
    host.create_container(host::CreateRequest {
        id: req.base.container_id,
        activity_id,
        bundle: PathBuf::from(cfg.oci_bundle_path),
        spec,
        scratch: (!cfg.scratch_dir_path.is_empty()).then(|| PathBuf::from(cfg.scratch_dir_path)),
    })?;
    Ok(CreateResponse {
        base: ok(ctx),
        ..Default::default()
    })
}

pub(super) fn start(_host: &Host, ctx: &RequestContext, frame: &Frame) -> Result<ResponseBase> {
    // A no-op on Linux (the init process starts with the first ExecuteProcess), once the
    // request decodes.
    decode::<RequestBase>(frame)?;
    Ok(ok(ctx))
}

pub(super) fn shutdown(
    bridge: &Bridge,
    host: &Host,
    ctx: &RequestContext,
    frame: &Frame,
    forced: bool,
) -> Result<ResponseBase> {
    decode::<RequestBase>(frame)?;
    // As the reference: the container first (SystemNotFound, InvalidState), then the policy.
    host.container(&ctx.container_id)?;
    enforce(bridge, "shutdown container")?;
    host.shutdown_container(&ctx.container_id, forced)?;
    Ok(ok(ctx))
}

pub(super) fn get_properties(
    bridge: &Bridge,
    host: &Host,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<GetPropertiesResponse> {
    let req: GetPropertiesRequest = decode(frame)?;
    if ctx.container_id == crate::NULL_CONTAINER_ID {
        return Err(Error::Invalid(
            "getPropertiesV2 is not supported against the UVM".into(),
        ));
    }
    enforce(bridge, "get properties")?;
    let types: Vec<String> = req
        .query
        .property_types
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let v = host.container_properties(&ctx.container_id, &types)?;
    let process_list = v
        .get("ProcessList")
        .and_then(|l| l.as_array())
        .map(|l| {
            l.iter()
                .filter_map(|p| p.get("ProcessId")?.as_u64())
                .map(|p| ProcessDetails {
                    process_id: p as u32,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(GetPropertiesResponse {
        base: ok(ctx),
        properties: AnyInString(Properties {
            process_list,
            lcow_metrics: v.get("LCOWMetrics").cloned(),
        }),
    })
}

pub(super) fn delete_state(
    host: &Host,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<ResponseBase> {
    decode::<RequestBase>(frame)?;
    host.delete_container_state(&ctx.container_id)?;
    Ok(ok(ctx))
}

/// DumpStacks: the body is never read, as in the reference.
pub(super) fn dump_stacks(bridge: &Bridge, ctx: &RequestContext) -> Result<DumpStacksResponse> {
    enforce(bridge, "dump stacks")?;
    Ok(DumpStacksResponse {
        base: ok(ctx),
        guest_stacks: thread_dump(),
    })
}

/// One line per GCS thread: tid, name, state and kernel wait channel. (Rust has no portable
/// way to unwind other threads' user stacks.)
fn thread_dump() -> String {
    let mut out = String::new();
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
        let line = format!(
            "thread {tid} [{}] state={state} wchan={wchan}\n",
            name.trim()
        );
        if out.len() + line.len() > MAX_STACKS {
            out.push_str("...\n");
            break;
        }
        out.push_str(&line);
    }
    out
}
