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
//!
//! On Windows what is left is in HCS: the task's compute system and, for a pod's sandbox,
//! the pod's utility VM; both are terminated as the reference does.

use std::io::{Read, Write};
use std::path::Path;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::{Message, MessageField};

use crate::cli::Command;
use crate::start::PANIC_LOG;
#[cfg(target_os = "linux")]
use crate::start::{ADDRESS_FILE, SHIM_PID_FILE};

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

/// How long `delete` waits for a terminated compute system to stop, as the reference.
pub const TERMINATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(not(target_os = "linux"))]
fn cleanup(cmd: &Command, bundle: &Path) {
    let api = match hcs::sys::default_api() {
        Ok(api) => api,
        Err(e) => {
            eprintln!("cannot reach HCS to terminate '{}': {e}", cmd.id);
            return;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("start a runtime to terminate '{}': {e}", cmd.id);
            return;
        }
    };
    let problems = rt.block_on(terminate_compute_systems(
        api,
        &cmd.id,
        bundle,
        hcs::env_timeouts(),
        TERMINATE_WAIT,
    ));
    for p in problems {
        eprintln!("{p}");
    }
}

/// What a dead shim leaves in HCS (spec §1.1 `delete`): the task's compute system `id`
/// and, for a pod's sandbox container (its bundle's spec says so), the pod's utility VM
/// `<sandbox id>@vm`. Each that exists is terminated and waited for up to `wait`; one
/// that does not exist is not an error. Returns what went wrong, one line each.
pub async fn terminate_compute_systems(
    api: std::sync::Arc<dyn hcs::api::HcsApi>,
    id: &str,
    bundle: &Path,
    timeouts: hcs::Timeouts,
    wait: std::time::Duration,
) -> Vec<String> {
    let mut ids = vec![id.to_owned()];
    let spec = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let role = spec
        .as_ref()
        .and_then(|s| crate::annotations::of_spec(s).ok())
        .and_then(|a| crate::annotations::classify(&a).ok());
    if let Some(crate::annotations::PodRole::Sandbox(sandbox)) = role {
        if !sandbox.is_empty() {
            ids.push(format!("{sandbox}@vm"));
        }
    }
    let mut problems = Vec::new();
    for id in ids {
        let system = match hcs::System::open(api.clone(), &id, timeouts).await {
            Ok(s) => s,
            // Nothing of that id is left: nothing to do.
            Err(e) if hcs::error::is_not_exist(&e) => continue,
            Err(e) => {
                problems.push(format!("failed to open '{id}': {e}"));
                continue;
            }
        };
        match system.terminate().await {
            Err(e) => problems.push(format!("failed to terminate '{id}': {e}")),
            Ok(()) => {
                if tokio::time::timeout(wait, system.wait()).await.is_err() {
                    problems.push(format!("timed out waiting for '{id}' to terminate"));
                }
            }
        }
        if let Err(e) = system.close().await {
            problems.push(format!("close '{id}': {e}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcs::fake::{FakeHcs, SimState};

    fn doc() -> serde_json::Value {
        serde_json::json!({
            "Owner": "containerd-shim-runhcs-v1.exe",
            "SchemaVersion": {"Major": 2, "Minor": 1},
            "Container": {"Storage": {"Layers": []}},
        })
    }

    async fn running(fake: &std::sync::Arc<FakeHcs>, id: &str) {
        let s = hcs::System::create(fake.clone(), id, &doc(), hcs::Timeouts::default())
            .await
            .unwrap();
        s.start().await.unwrap();
        // The dead shim's handle is gone; the system runs on.
        s.close().await.unwrap();
    }

    fn bundle(annotations: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let spec = serde_json::json!({"annotations": annotations});
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_pods_sandbox_terminates_its_container_and_the_pods_vm() {
        let fake = FakeHcs::new();
        for id in ["pod1", "pod1@vm", "other@vm"] {
            running(&fake, id).await;
        }
        let b = bundle(serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-id": "pod1",
        }));
        let problems = terminate_compute_systems(
            fake.clone(),
            "pod1",
            b.path(),
            hcs::Timeouts::default(),
            TERMINATE_WAIT,
        )
        .await;
        assert!(problems.is_empty(), "{problems:?}");
        // A stopped system is gone with its last handle; a running one stays.
        assert_eq!(fake.system_state("pod1"), None);
        assert_eq!(fake.system_state("pod1@vm"), None);
        assert_eq!(fake.system_state("other@vm"), Some(SimState::Running));
        assert_eq!(fake.open_handles().0, 0, "every handle is closed");
    }

    #[tokio::test]
    async fn a_workload_container_leaves_the_pods_vm_and_a_missing_system_is_fine() {
        let fake = FakeHcs::new();
        running(&fake, "pod1@vm").await;
        running(&fake, "c1").await;
        let b = bundle(serde_json::json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": "pod1",
        }));
        let t = hcs::Timeouts::default();
        let problems = terminate_compute_systems(fake.clone(), "c1", b.path(), t, TERMINATE_WAIT);
        assert!(problems.await.is_empty());
        assert_eq!(fake.system_state("c1"), None);
        assert_eq!(fake.system_state("pod1@vm"), Some(SimState::Running));
        // Nothing of that id (and no bundle spec): nothing to do, no complaint.
        let none = tempfile::tempdir().unwrap();
        let problems = terminate_compute_systems(fake, "gone", none.path(), t, TERMINATE_WAIT);
        assert!(problems.await.is_empty());
    }
}
