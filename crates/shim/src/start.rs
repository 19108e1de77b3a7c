//! `start` (spec §1.1): run by containerd in the bundle; prints only the shim's address.
//!
//! A pod's workload container does not get a shim of its own: its address is the pod
//! sandbox's shim, found by computing that address and asked for its pid with `Connect`.
//! Anything else spawns `<self> ... serve -socket <address> [-is-sandbox]` with stdin
//! inherited (it carries the runtime options), stderr into `<bundle>/panic.log`, and stdout
//! a pipe whose end (the child closes it once it serves) is the readiness signal; what
//! the child writes there before that is copied to our stderr.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use containerd_shim_protos::api::ConnectRequest;
use containerd_shim_protos::shim_async::{Client, TaskClient};
use containerd_shim_protos::ttrpc::context;

use crate::address;
use crate::annotations::{self, PodRole};
use crate::cli::Command;
use crate::error::{Error, Result};

/// The file in the bundle holding the shim's pid.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The file in the bundle holding the shim's address.
pub const ADDRESS_FILE: &str = "address";
/// The serve process's stderr.
pub const PANIC_LOG: &str = "panic.log";

/// Writes `contents` to `dir/name` atomically (temporary file, then rename).
pub fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    std::fs::write(&tmp, contents).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("rename to {}", path.display()), e))
}

/// Runs `start` in the current directory (the bundle).
pub fn run(cmd: &Command) -> Result<()> {
    let bundle = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
    let spec_path = bundle.join("config.json");
    let raw = std::fs::read(&spec_path)
        .map_err(|e| Error::io(format!("read {}", spec_path.display()), e))?;
    let spec: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", spec_path.display())))?;
    let role = annotations::classify(&annotations::of_spec(&spec)?)?;

    let (addr, pid) = match &role {
        PodRole::Container(sandbox) => {
            let addr = address::shim_address(&cmd.address, &cmd.namespace, sandbox);
            let pid = hosting_shim_pid(&addr, sandbox)?;
            (addr, pid)
        }
        PodRole::Sandbox(sandbox) if *sandbox != cmd.id => {
            return Err(Error::InvalidArgument(format!(
                "'id' and '{}' must match for '{}=sandbox'",
                annotations::SANDBOX_ID,
                annotations::CONTAINER_TYPE
            )))
        }
        _ => {
            let addr = address::shim_address(&cmd.address, &cmd.namespace, &cmd.id);
            let pid = spawn_serve(cmd, &bundle, &addr, matches!(role, PodRole::Sandbox(_)))?;
            (addr, pid)
        }
    };
    write_atomic(&bundle, SHIM_PID_FILE, &pid.to_string())?;
    write_atomic(&bundle, ADDRESS_FILE, &addr)?;
    let mut out = std::io::stdout();
    out.write_all(addr.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write the address to stdout", e))
}

fn hosting_shim_pid(addr: &str, sandbox: &str) -> Result<u32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start a runtime", e))?;
    rt.block_on(async {
        let client = Client::connect(addr).await.map_err(|source| Error::Ttrpc {
            context: "failed to connect to hosting shim".into(),
            source,
        })?;
        let tc = TaskClient::new(client);
        let req = ConnectRequest {
            id: sandbox.to_owned(),
            ..Default::default()
        };
        let resp = tc
            .connect(context::with_timeout(10_000_000_000), &req)
            .await
            .map_err(|source| Error::Ttrpc {
                context: "failed to get shim pid from hosting shim".into(),
                source,
            })?;
        Ok(resp.shim_pid)
    })
}

fn spawn_serve(cmd: &Command, bundle: &Path, addr: &str, is_sandbox: bool) -> Result<u32> {
    let exe = std::env::current_exe().map_err(|e| Error::io("find this executable", e))?;
    let panic_log = bundle.join(PANIC_LOG);
    let log = std::fs::File::create(&panic_log)
        .map_err(|e| Error::io(format!("create {}", panic_log.display()), e))?;
    let mut p = Process::new(exe);
    p.args([
        "-namespace",
        &cmd.namespace,
        "-address",
        &cmd.address,
        "-publish-binary",
        &cmd.publish_binary,
        "-id",
        &cmd.id,
    ]);
    if cmd.debug {
        p.arg("-debug");
    }
    p.args(["serve", "-socket", addr]);
    if is_sandbox {
        p.arg("-is-sandbox");
    }
    p.current_dir(bundle)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    crate::sys::detach(&mut p);
    let mut child = p
        .spawn()
        .map_err(|e| Error::io("spawn the shim server", e))?;
    let mut pipe = child.stdout.take().expect("stdout was piped");
    let mut buf = Vec::new();
    let copied = pipe.read_to_end(&mut buf);
    if !buf.is_empty() {
        let mut err = std::io::stderr();
        if let Err(e) = err.write_all(&buf) {
            tracing::debug!(error = %e, "copying the server's output");
        }
    }
    if let Err(e) = copied {
        if let Err(ke) = child.kill() {
            tracing::debug!(error = %ke, "killing the server");
        }
        return Err(Error::io("read the shim server's handshake", e));
    }
    // EOF: the server closed stdout because it serves, or because it died.
    match child.try_wait() {
        Ok(Some(status)) => Err(Error::Other(format!(
            "the shim server exited before serving ({status}): {}",
            String::from_utf8_lossy(&buf).trim()
        ))),
        Ok(None) => Ok(child.id()),
        Err(e) => Err(Error::io("check the shim server", e)),
    }
}
