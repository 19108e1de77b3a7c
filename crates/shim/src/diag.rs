//! The shim's extra ttrpc services (spec §1.1 serve step 5, §1.2 "Extra services"):
//!
//! * `containerd.runhcs.v1.diag.ShimDiag` (what the reference's `shimdiag` tool calls):
//!   DiagExecInHost runs a process in the sandbox itself, outside every container (in the
//!   utility VM; for the local sandbox, in the GCS's namespaces on the host); DiagStacks
//!   dumps the shim's threads and the guest agent's; DiagTasks lists tasks and execs with
//!   their states; DiagPid is the shim's pid. DiagShare (adding a host directory to a
//!   utility VM) is Unimplemented: no sandbox here has file shares.
//! * `ExtendedTask.ComputeProcessorInfo`: the utility VM's processor count; "task is not
//!   isolated" for a task without a VM (the local sandbox), as the reference.
//!
//! Rust cannot unwind other threads' user stacks, so the shim's "stacks" are what the OS
//! shows of each thread (name, state, wait channel, kernel stack where readable), as the
//! GCS does for its own.
//!
//! The messages and service stubs are generated from `proto/shimdiag.proto` and
//! `proto/extendedtask.proto` (the reference's, names and numbers kept) and checked in;
//! `tests::generated_code_is_current` fails when they are stale.

/// Messages of `proto/shimdiag.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod shimdiag;
/// The ShimDiag ttrpc service of `proto/shimdiag.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod shimdiag_ttrpc;
/// Messages of `proto/extendedtask.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod extendedtask;
/// The ExtendedTask ttrpc service of `proto/extendedtask.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod extendedtask_ttrpc;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use ttrpc::r#async::TtrpcContext;

use self::extendedtask::{ComputeProcessorInfoRequest, ComputeProcessorInfoResponse};
use self::shimdiag::{
    Exec as DiagExec, ExecProcessRequest, ExecProcessResponse, PidRequest, PidResponse,
    ShareRequest, ShareResponse, StacksRequest, StacksResponse, Task as DiagTask, TasksRequest,
    TasksResponse,
};
use crate::error::{Error, Result};
use crate::host::TaskHost;
use crate::service::Service;
use crate::stdio::{IoPaths, Relay, Upstream, DRAIN_GRACE};
use crate::task::Task;

/// The ShimDiag service's wire name.
pub const SHIM_DIAG_SERVICE: &str = "containerd.runhcs.v1.diag.ShimDiag";
/// The ExtendedTask service's wire name: its proto has no package, so the name is bare
/// (ttrpc-compiler would register `.ExtendedTask`).
pub const EXTENDED_TASK_SERVICE: &str = "ExtendedTask";

/// The `PATH` of a DiagExecInHost process (the request carries no environment).
const HOST_EXEC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Both services over `service`, under their wire names.
pub fn services(service: &Arc<Service>) -> HashMap<String, ttrpc::r#async::Service> {
    let diag = Arc::new(Diag(service.clone()));
    let mut out = shimdiag_ttrpc::create_shim_diag(diag.clone());
    for (name, svc) in extendedtask_ttrpc::create_extended_task(diag) {
        out.insert(name.trim_start_matches('.').to_owned(), svc);
    }
    out
}

/// The diagnostics view of a shim's service.
struct Diag(Arc<Service>);

/// DiagExecInHost: runs `req.args` in `host` (outside every container) with the stdio
/// paths of the request (FIFOs or pipes the caller serves, as for an exec) and returns the
/// exit code.
pub async fn exec_in_host(host: &dyn TaskHost, req: &ExecProcessRequest) -> Result<i32> {
    if req.args.is_empty() {
        return Err(Error::InvalidArgument(
            "DiagExecInHost: args must name a program".into(),
        ));
    }
    let io = IoPaths {
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
        ..Default::default()
    };
    let upstream = Upstream::open(&io).await?;
    let (stdin, stdout, stderr) = upstream.wanted();
    let params = bridge::messages::ProcessParameters {
        command_args: req.args.clone(),
        working_directory: if req.workdir.is_empty() {
            "/".into()
        } else {
            req.workdir.clone()
        },
        environment: BTreeMap::from([("PATH".to_owned(), HOST_EXEC_PATH.to_owned())]),
        emulate_console: req.terminal,
        create_std_in_pipe: stdin,
        create_std_out_pipe: stdout,
        create_std_err_pipe: stderr,
        create_in_utility_vm: true,
        ..Default::default()
    };
    let process = host.exec_in_host(params).await?;
    let relay = Relay::start(upstream, process.take_stdio());
    let waited = process.wait().await;
    relay.finish(DRAIN_GRACE).await;
    let code = waited
        .and_then(|()| process.exit_code())
        .map_err(|e| Error::hcs("wait for the DiagExecInHost process", e));
    if let Err(e) = process.close().await {
        tracing::debug!(error = %e, "closing a DiagExecInHost process");
    }
    let code = code?;
    i32::try_from(code).map_err(|_| Error::Other(format!("exit code {code} out of range")))
}

/// DiagTasks: every task with, if `execs`, its execs and their states. The init exec is
/// named by the task id, as the reference names it.
pub async fn tasks(tasks: &[Arc<Task>], execs: bool) -> TasksResponse {
    let mut out = TasksResponse::new();
    for t in tasks {
        let mut dt = DiagTask {
            id: t.id().to_owned(),
            ..Default::default()
        };
        if execs {
            for e in t.execs() {
                let id = if e.id().is_empty() { t.id() } else { e.id() };
                dt.execs.push(DiagExec {
                    id: id.to_owned(),
                    state: e.state().await.to_string(),
                    ..Default::default()
                });
            }
        }
        out.tasks.push(dt);
    }
    out
}

/// The shim's own threads as the OS shows them: one line per thread (tid, name, state,
/// wait channel), then its kernel stack where readable.
pub fn host_stacks() -> String {
    let mut out = format!("containerd-shim-runhcs-v1 pid {}\n", std::process::id());
    if !cfg!(target_os = "linux") {
        out.push_str("thread stacks are not available on this platform\n");
        return out;
    }
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        out.push_str("/proc/self/task is not readable\n");
        return out;
    };
    // A thread may exit while it is listed or read: its entry or files then vanish, and
    // what is left (an empty field) is still the best dump there is. `stack` is readable
    // by root only.
    let mut tids: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    tids.sort();
    for p in tids {
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        let tid = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stat = read("stat");
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        out.push_str(&format!(
            "thread {tid} {:?} state {state} wchan {}\n",
            read("comm").trim(),
            read("wchan").trim()
        ));
        for line in read("stack").lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// ComputeProcessorInfo: the processors of task `task`'s utility VM.
pub fn processor_info(task: &Task) -> Result<i32> {
    let n = task
        .host()
        .processor_count()
        .ok_or_else(|| Error::Other("task is not isolated".into()))?;
    i32::try_from(n).map_err(|_| Error::Other(format!("processor count {n} out of range")))
}

impl Diag {
    fn host(&self) -> Result<Arc<dyn TaskHost>> {
        self.0
            .host()
            .ok_or_else(|| Error::FailedPrecondition("no task has been created yet".into()))
    }
}

#[async_trait]
impl shimdiag_ttrpc::ShimDiag for Diag {
    async fn diag_exec_in_host(
        &self,
        _: &TtrpcContext,
        req: ExecProcessRequest,
    ) -> ttrpc::Result<ExecProcessResponse> {
        let host = self.host()?;
        let exit_code = exec_in_host(host.as_ref(), &req).await?;
        Ok(ExecProcessResponse {
            exit_code,
            ..Default::default()
        })
    }

    async fn diag_stacks(
        &self,
        _: &TtrpcContext,
        _: StacksRequest,
    ) -> ttrpc::Result<StacksResponse> {
        let guest_stacks = match self.0.host() {
            None => String::new(),
            // The shim's own stacks are still worth having when the guest cannot answer;
            // the failure is reported in the guest's place.
            Some(h) => h
                .guest_stacks()
                .await
                .unwrap_or_else(|e| format!("the guest's stacks are not available: {e}")),
        };
        Ok(StacksResponse {
            stacks: host_stacks(),
            guest_stacks,
            ..Default::default()
        })
    }

    async fn diag_tasks(
        &self,
        _: &TtrpcContext,
        req: TasksRequest,
    ) -> ttrpc::Result<TasksResponse> {
        Ok(tasks(&self.0.tasks(), req.execs).await)
    }

    async fn diag_share(
        &self,
        _: &TtrpcContext,
        req: ShareRequest,
    ) -> ttrpc::Result<ShareResponse> {
        let kind = self.0.host().map_or_else(|| "no".to_owned(), |h| h.kind());
        Err(Error::Unimplemented(format!(
            "DiagShare of {:?} at {:?}: the {kind} sandbox has no file shares to add a host directory to",
            req.host_path, req.uvm_path
        ))
        .into())
    }

    async fn diag_pid(&self, _: &TtrpcContext, _: PidRequest) -> ttrpc::Result<PidResponse> {
        let pid = i32::try_from(std::process::id())
            .map_err(|_| Error::Other("pid out of range".into()))?;
        Ok(PidResponse {
            pid,
            ..Default::default()
        })
    }
}

#[async_trait]
impl extendedtask_ttrpc::ExtendedTask for Diag {
    async fn compute_processor_info(
        &self,
        _: &TtrpcContext,
        req: ComputeProcessorInfoRequest,
    ) -> ttrpc::Result<ComputeProcessorInfoResponse> {
        let task = self.0.get_task(&req.id)?;
        Ok(ComputeProcessorInfoResponse {
            count: processor_info(&task)?,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests;
