//! `delete` (spec §1.1): containerd's clean-up after a shim it cannot reach (crashed, or
//! lost across a containerd restart). Reports the panic log, ends what the task left
//! behind, and writes `DeleteResponse{pid: 0, exit_status: 255, exited_at: now}` on stdout.
//!
//! On Linux what a dead shim leaves is its local sandbox: the GCS and the containers die
//! with the shim (the GCS has a parent-death signal and is pid 1 of their pid namespace;
//! their mounts lived in its mount namespace), which leaves the sandbox's state dir, its
//! container cgroups and the shim's socket. A shim that still runs for this id (the
//! address in the bundle is this id's own) is killed first, as the reference terminates
//! the compute system; a workload container of a pod whose shim lives is not touched.

use std::io::{Read, Write};
use std::path::Path;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::{Message, MessageField};

use crate::cli::Command;
use crate::start::{ADDRESS_FILE, PANIC_LOG, SHIM_PID_FILE};

/// How much of `panic.log` is reported.
pub const PANIC_LOG_LIMIT: u64 = 1 << 20;

/// Runs `delete`; returns the exit code.
pub fn run(cmd: &Command) -> i32 {
    let bundle = Path::new(&cmd.bundle);
    report_panic_log(&bundle.join(PANIC_LOG));
    cleanup(cmd, bundle);
    let resp = DeleteResponse {
        pid: 0,
        exit_status: 255,
        exited_at: MessageField::some(crate::events::now()),
        ..Default::default()
    };
    let bytes = match resp.write_to_bytes() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("encode the delete response: {e}");
            return 1;
        }
    };
    let mut out = std::io::stdout();
    if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
        eprintln!("write the delete response: {e}");
        return 1;
    }
    0
}

fn report_panic_log(path: &Path) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    let mut text = String::new();
    let truncated = f
        .metadata()
        .map(|m| m.len() > PANIC_LOG_LIMIT)
        .unwrap_or(false);
    if f.take(PANIC_LOG_LIMIT).read_to_string(&mut text).is_ok() && !text.trim().is_empty() {
        eprintln!("found shim panic logs: {text}");
        if truncated {
            eprintln!("(panic.log truncated to {PANIC_LOG_LIMIT} bytes)");
        }
    }
}

#[cfg(target_os = "linux")]
fn cleanup(cmd: &Command, bundle: &Path) {
    let own = crate::address::shim_address(&cmd.address, &cmd.namespace, &cmd.id);
    let recorded = std::fs::read_to_string(bundle.join(ADDRESS_FILE)).unwrap_or_default();
    if recorded.trim() == own {
        let pid = std::fs::read_to_string(bundle.join(SHIM_PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|p| crate::sys::process_alive(*p) && is_our_shim(*p)) {
            if !crate::sys::kill_process(pid, std::time::Duration::from_secs(10)) {
                eprintln!("shim {pid} did not end after SIGKILL");
            }
        }
        crate::sys::unbind(&own);
    }
    let state = crate::address::sandbox_state_dir(&cmd.address, &cmd.namespace, &cmd.id);
    let mut ids = vec![cmd.id.clone()];
    if let Ok(entries) = std::fs::read_dir(state.join("c")) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            // The agent wrote each container's final spec into its bundle: a host cgroup
            // path it kept is there.
            let spec = std::fs::read(e.path().join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            ids.extend(spec.and_then(|s| uvm::sandbox::local::host_cgroup_path(&id, &s)));
            ids.push(id);
        }
    }
    // A sandbox in the host's pid namespace left its processes running when its agent died.
    if let Err(e) =
        uvm::sandbox::local::kill_cgroup_processes(&ids, std::time::Duration::from_secs(5))
    {
        eprintln!("{e}");
    }
    crate::host::sweep_cgroups(&ids, std::time::Duration::from_secs(5));
    if state.exists() {
        // Through the sandbox's own removal: its private mount point goes first.
        if let Err(e) = uvm::sandbox::local::remove_state_dir(&state) {
            eprintln!("remove {}: {e}", state.display());
        }
    }
}

/// Whether `pid` runs this shim binary (a recycled pid must not be killed).
#[cfg(target_os = "linux")]
fn is_our_shim(pid: u32) -> bool {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
    let me = std::env::current_exe();
    matches!((exe, me), (Ok(a), Ok(b)) if a.file_name() == b.file_name())
}

#[cfg(not(target_os = "linux"))]
fn cleanup(cmd: &Command, bundle: &Path) {
    // HCS systems are torn down by the sandbox that owns them; the dead shim's pipes are
    // gone with it. Nothing is left on the host for this shim to remove.
    let _ = (cmd, bundle, ADDRESS_FILE, SHIM_PID_FILE);
}
