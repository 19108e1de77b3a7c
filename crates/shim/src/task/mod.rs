//! Tasks: a container with its init exec and additional execs (spec §1.3), and pods
//! (a sandbox task plus workload tasks sharing one sandbox, §1.4).

pub mod exec;
pub mod pod;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_shim_protos::events::task::{
    TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim_protos::protobuf::MessageField;
use hcs::cow::{Container, Process};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::events::{to_timestamp, Publisher, TaskEvent};
use crate::host::TaskHost;
use crate::stdio::{IoPaths, Upstream};
pub use exec::{Exec, ExecState, ExecStatus, ExitInfo, UNKNOWN_EXIT};

/// Bound of a container's shutdown, and of Delete waiting for the teardown.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the teardown waits for running execs to report their own exits once the
/// container is gone (their output drains for up to a second of it).
const EXEC_EXIT_GRACE: Duration = Duration::from_secs(5);
/// SIGKILL's number, on Linux and in the reference's Windows signal mapping.
const SIGKILL: u32 = 9;
/// How long a SIGKILL'd init of a task that owns its sandbox may take to exit before the
/// sandbox is torn down under it (the reference's watchdog for a hung utility VM).
pub const KILL_WATCHDOG: Duration = Duration::from_secs(30);

/// Bound of the OOM check at the init's exit (one Statistics request to the guest).
const OOM_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A task: one container in a sandbox.
pub struct Task {
    id: String,
    bundle: String,
    host: Arc<dyn TaskHost>,
    /// The task owns its sandbox (standalone tasks and pod sandboxes): tearing the task
    /// down tears the sandbox down.
    owns_host: bool,
    container: Arc<dyn Container>,
    init: Arc<Exec>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
    publisher: Publisher,
    closing: std::sync::atomic::AtomicBool,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("id", &self.id).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is needed to create a task.
#[derive(Debug)]
pub struct TaskSpec {
    /// Task id.
    pub id: String,
    /// Bundle path.
    pub bundle: String,
    /// The OCI spec (JSON).
    pub spec: serde_json::Value,
    /// The root filesystem.
    pub rootfs: crate::rootfs::TaskRootfs,
    /// The init's stdio.
    pub io: IoPaths,
}

impl Task {
    /// Creates the container in `host` and the init exec in `created`. On failure nothing
    /// is left in the host (the host itself is the caller's).
    pub async fn create(
        host: Arc<dyn TaskHost>,
        owns_host: bool,
        publisher: Publisher,
        spec: TaskSpec,
    ) -> Result<Arc<Self>> {
        let upstream = Upstream::open(&spec.io).await?;
        // A Windows container's init is a process like any other (its parameters come from
        // the spec); a Linux container's init is part of the container's own document.
        let init_process = matches!(spec.rootfs, crate::rootfs::TaskRootfs::Windows(_))
            .then(|| spec.spec.get("process").cloned())
            .flatten();
        let container = host
            .create_container(
                &spec.id,
                spec.spec,
                &spec.rootfs,
                std::path::Path::new(&spec.bundle),
            )
            .await?;
        let init = Exec::new(&spec.id, "", upstream, init_process);
        let task = Arc::new(Self {
            id: spec.id,
            bundle: spec.bundle,
            host,
            owns_host,
            container,
            init,
            execs: Mutex::new(HashMap::new()),
            publisher,
            closing: false.into(),
            closed: watch::channel(false).0,
        });
        Ok(task)
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sandbox the task's container runs in.
    pub fn host(&self) -> &Arc<dyn TaskHost> {
        &self.host
    }

    /// The bundle path.
    pub fn bundle(&self) -> &str {
        &self.bundle
    }

    /// The init exec.
    pub fn init(&self) -> &Arc<Exec> {
        &self.init
    }

    /// GetExec: "" is the init; unknown is NotFound.
    pub fn get_exec(&self, eid: &str) -> Result<Arc<Exec>> {
        if eid.is_empty() {
            return Ok(self.init.clone());
        }
        lock(&self.execs).get(eid).cloned().ok_or_else(|| {
            Error::NotFound(format!("exec: '{eid}' in task: '{}' not found", self.id))
        })
    }

    /// All execs (init first).
    pub fn execs(&self) -> Vec<Arc<Exec>> {
        let mut v = vec![self.init.clone()];
        v.extend(lock(&self.execs).values().cloned());
        v
    }

    /// CreateExec: a new exec in `created`; publishes TaskExecAdded.
    pub async fn create_exec(
        &self,
        eid: &str,
        io: &IoPaths,
        process: serde_json::Value,
    ) -> Result<()> {
        if eid.is_empty() || lock(&self.execs).contains_key(eid) {
            return Err(Error::AlreadyExists(format!(
                "exec: '{eid}' in task: '{}' already exists",
                self.id
            )));
        }
        if self.init.state().await != ExecState::Running {
            return Err(Error::FailedPrecondition(format!(
                "exec: '' in task: '{}' must be running to create additional execs",
                self.id
            )));
        }
        if !process.is_object() {
            return Err(Error::InvalidArgument(
                "request.Spec was not oci process".into(),
            ));
        }
        let upstream = Upstream::open(io).await?;
        {
            let mut execs = lock(&self.execs);
            if execs.contains_key(eid) {
                return Err(Error::AlreadyExists(format!(
                    "exec: '{eid}' in task: '{}' already exists",
                    self.id
                )));
            }
            execs.insert(
                eid.to_owned(),
                Exec::new(&self.id, eid, upstream, Some(process)),
            );
        }
        self.publisher
            .publish(TaskEvent::ExecAdded(TaskExecAdded {
                container_id: self.id.clone(),
                exec_id: eid.to_owned(),
                ..Default::default()
            }))
            .await
    }

    /// Start: starts an exec (the init starts the container); publishes TaskStart or
    /// TaskExecStarted before watching for the exit. Returns the pid.
    pub async fn start(self: &Arc<Self>, eid: &str) -> Result<u32> {
        let exec = self.get_exec(eid)?;
        let started = exec.start(self.container.as_ref()).await;
        let process = match started {
            Ok(p) => p,
            Err(e) => {
                if eid.is_empty()
                    && exec.state().await == ExecState::Exited
                    && exec.pid().await == 0
                {
                    // The init failed to start (not a Start in the wrong state): the task
                    // is over.
                    let task = self.clone();
                    tokio::spawn(async move { task.close().await });
                }
                return Err(e);
            }
        };
        let pid = process.pid();
        let event = if eid.is_empty() {
            TaskEvent::Start(TaskStart {
                container_id: self.id.clone(),
                pid,
                ..Default::default()
            })
        } else {
            TaskEvent::ExecStarted(TaskExecStarted {
                container_id: self.id.clone(),
                exec_id: eid.to_owned(),
                pid,
                ..Default::default()
            })
        };
        let published = self.publisher.publish(event).await;
        let task = self.clone();
        tokio::spawn(async move { task.watch(exec, process).await });
        published.map(|()| pid)
    }

    async fn watch(self: Arc<Self>, exec: Arc<Exec>, process: Arc<dyn Process>) {
        let status = match process.wait().await {
            Ok(()) => match process.exit_code() {
                Ok(code) => u32::try_from(code).unwrap_or(UNKNOWN_EXIT),
                Err(e) => {
                    tracing::warn!(error = %e, "exit code unavailable");
                    UNKNOWN_EXIT
                }
            },
            Err(e) => {
                // The sandbox went away under the process.
                tracing::warn!(task = %self.id, exec = exec.id(), error = %e, "waiting for a process failed");
                1
            }
        };
        tracing::debug!(task = %self.id, exec = exec.id(), status, "process exited");
        let exit = exec.process_exited(status).await;
        if let Err(e) = process.close().await {
            tracing::debug!(error = %e, "closing a process handle");
        }
        if exec.id().is_empty() {
            self.close().await;
        } else if let Some(exit) = exit {
            self.publisher
                .publish_logged(TaskEvent::Exit(TaskExit {
                    container_id: self.id.clone(),
                    id: exec.id().to_owned(),
                    pid: process.pid(),
                    exit_status: exit.status,
                    exited_at: MessageField::some(to_timestamp(exit.at)),
                    ..Default::default()
                }))
                .await;
        }
    }

    /// Teardown after the init exited (once): other execs are forced out, the container is
    /// shut down and removed, an owned sandbox is torn down, then TaskExit of the init is
    /// published and waiters of the task are released.
    pub async fn close(&self) {
        if self.closing.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // An init that never started (Delete while created) exits now.
        let started = self.init.pid().await != 0;
        self.init.force_exit(1).await;
        if started {
            self.report_oom().await;
        }
        // Execs that never started exit now. Running ones die with the container below and
        // keep the exit code their process reports (§1.3): forcing them here would replace
        // an exit already on its way (a process that ended just before the init) with 1.
        let others: Vec<Arc<Exec>> = lock(&self.execs).values().cloned().collect();
        for e in &others {
            e.exit_if_created(1).await;
        }
        if let Err(e) = self.container.shutdown().await {
            tracing::debug!(task = %self.id, error = %e, "container shutdown");
        }
        if tokio::time::timeout(TEARDOWN_TIMEOUT, self.container.wait())
            .await
            .is_err()
        {
            if let Err(e) = self.container.terminate().await {
                tracing::warn!(task = %self.id, error = %e, "container terminate");
            }
            if tokio::time::timeout(TEARDOWN_TIMEOUT, self.container.wait())
                .await
                .is_err()
            {
                tracing::error!(task = %self.id, "container did not exit after terminate");
            }
        }
        tracing::debug!(task = %self.id, "teardown: container exited");
        // An exec whose exit cannot arrive any more (its sandbox went away) is forced out.
        let deadline = tokio::time::Instant::now() + EXEC_EXIT_GRACE;
        for e in &others {
            if tokio::time::timeout_at(deadline, e.wait()).await.is_err() {
                tracing::debug!(task = %self.id, exec = e.id(), "teardown: exec forced out");
                e.force_exit(1).await;
            }
        }
        if let Err(e) = self.container.close().await {
            tracing::debug!(error = %e, "closing the container handle");
        }
        // An owned sandbox goes as a whole (its teardown removes every container's
        // state, mounts and cgroups); one shared with other tasks keeps running.
        if !self.owns_host {
            if let Err(e) = self.host.remove_container(&self.id).await {
                tracing::warn!(task = %self.id, error = %e, "removing the container");
            }
        }
        tracing::debug!(task = %self.id, "teardown: container removed");
        if self.owns_host {
            if let Err(e) = self.host.teardown().await {
                tracing::warn!(task = %self.id, error = %e, "tearing the sandbox down");
            }
        }
        tracing::debug!(task = %self.id, "teardown: sandbox done");
        let exit = self.init.exit().unwrap_or(ExitInfo {
            status: UNKNOWN_EXIT,
            at: SystemTime::now(),
        });
        self.publisher
            .publish_logged(TaskEvent::Exit(TaskExit {
                container_id: self.id.clone(),
                id: self.id.clone(),
                pid: self.init.pid().await,
                exit_status: exit.status,
                exited_at: MessageField::some(to_timestamp(exit.at)),
                ..Default::default()
            }))
            .await;
        self.closed.send_replace(true);
    }

    /// Publishes `/tasks/oom` if the kernel's OOM killer ended a process of this Linux
    /// container, read from the container's memory cgroup while the guest still has it
    /// (before the shutdown). It comes before the init's TaskExit, so containerd's CRI
    /// reports the container's reason as "OOMKilled". Unlike runc's shim this looks once,
    /// at the exit, not as kills happen: the reason CRI reports is the same.
    async fn report_oom(&self) {
        if self.container.os() != hcs::Os::Linux {
            return;
        }
        let kills = match tokio::time::timeout(OOM_QUERY_TIMEOUT, self.guest_metrics()).await {
            Err(_) => Err(Error::Other("the guest did not answer in time".into())),
            Ok(metrics) => metrics.and_then(|m| crate::stats::oom_kills(&m)),
        };
        match kills {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(task = %self.id, kills = n, "the container had processes killed for lack of memory");
                self.publisher
                    .publish_logged(TaskEvent::Oom(TaskOOM {
                        container_id: self.id.clone(),
                        ..Default::default()
                    }))
                    .await;
            }
            // The sandbox may be gone with the init (a VM that died): nothing to read.
            Err(e) => {
                tracing::warn!(task = %self.id, error = %e, "cannot tell whether the container was OOM-killed")
            }
        }
    }

    /// Waits for the teardown to end.
    pub async fn wait_closed(&self) {
        let mut rx = self.closed.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the teardown has ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// KillExec (§1.3).
    pub async fn kill(self: &Arc<Self>, eid: &str, signal: u32, all: bool) -> Result<()> {
        // The exec is looked up first: an unknown one is NotFound whatever `all` says.
        let target = self.get_exec(eid)?;
        if all && !eid.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "cannot signal all for non-empty exec: '{eid}'"
            )));
        }
        let os = self.container.os();
        // A created init that is killed exits without running: the task is over then, as
        // on any exit of the init (the reference closes the task from a watcher of the
        // init's exit), so TaskExit goes out and Wait returns without waiting for Delete.
        if eid.is_empty() && target.state().await == ExecState::Created {
            target.kill(signal, os).await?;
            let task = self.clone();
            tokio::spawn(async move { task.close().await });
            return Ok(());
        }
        if all {
            let others: Vec<Arc<Exec>> = lock(&self.execs).values().cloned().collect();
            for e in others {
                if let Err(err) = e.kill(signal, os).await {
                    tracing::debug!(exec = e.id(), error = %err, "signal all");
                }
            }
        }
        target.kill(signal, os).await?;
        if eid.is_empty() && signal == SIGKILL && self.owns_host {
            // A guest that does not act on the kill (a hung agent or VM) would keep the
            // task forever: after the watchdog the sandbox goes, and the init's wait fails.
            let task = self.clone();
            tokio::spawn(async move {
                if tokio::time::timeout(KILL_WATCHDOG, task.wait_closed())
                    .await
                    .is_err()
                {
                    tracing::warn!(task = %task.id, "the init did not exit {KILL_WATCHDOG:?} after SIGKILL; tearing the sandbox down");
                    if let Err(e) = task.host.teardown().await {
                        tracing::warn!(task = %task.id, error = %e, "watchdog teardown");
                    }
                }
            });
        }
        Ok(())
    }

    /// DeleteExec (§1.3): returns (pid, exit status, exited at).
    pub async fn delete_exec(&self, eid: &str) -> Result<(u32, ExitInfo)> {
        let exec = self.get_exec(eid)?;
        if eid.is_empty() {
            let others: Vec<Arc<Exec>> = lock(&self.execs).values().cloned().collect();
            for e in others {
                e.force_exit(1).await;
            }
        }
        match exec.state().await {
            ExecState::Running => {
                return Err(Error::FailedPrecondition(format!(
                    "exec: '{}' in task: '{}' is in invalid state: 'running' for delete",
                    exec.reported_id(),
                    self.id
                )))
            }
            ExecState::Created => exec.force_exit(0).await,
            ExecState::Exited => {}
        }
        if eid.is_empty() {
            // Tear down a task whose init never ran, then wait for the teardown.
            self.close().await;
            if tokio::time::timeout(TEARDOWN_TIMEOUT, self.wait_closed())
                .await
                .is_err()
            {
                return Err(Error::Other(format!(
                    "task {}: timed out waiting for container resource cleanup",
                    self.id
                )));
            }
            lock(&self.execs).clear();
        } else {
            lock(&self.execs).remove(eid);
        }
        let exit = exec.exit().unwrap_or(ExitInfo {
            status: UNKNOWN_EXIT,
            at: SystemTime::now(),
        });
        Ok((exec.pid().await, exit))
    }

    /// Wait: an exec's exit; for the init, after the whole teardown.
    pub async fn wait(&self, eid: &str) -> Result<ExitInfo> {
        let exec = self.get_exec(eid)?;
        if eid.is_empty() {
            self.wait_closed().await;
        }
        Ok(exec.wait().await)
    }

    /// The container's processes, with the exec id of known ones and HCS's entry for each
    /// (`ProcessList`: image name, times and memory on Windows).
    pub async fn pids(&self) -> Result<Vec<PidEntry>> {
        // After the init's exit the container is being (or has been) torn down, and asking
        // the guest would fail on a closed bridge: there is nothing left to list, as
        // `ctr task ps` of a stopped runc task shows.
        if self.init.state().await == ExecState::Exited {
            return Ok(Vec::new());
        }
        let props = self
            .container
            .properties(&["ProcessList"])
            .await
            .map_err(|e| Error::hcs(format!("list the processes of {}", self.id), e))?;
        let mut known = HashMap::new();
        for e in self.execs() {
            let pid = e.pid().await;
            if pid != 0 {
                known.insert(pid, e.reported_id().to_owned());
            }
        }
        let list = props
            .get("ProcessList")
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for p in list {
            let pid = p
                .get("ProcessId")
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| Error::Other(format!("malformed process list entry {p}")))?;
            out.push(PidEntry {
                pid,
                exec_id: known.get(&pid).cloned().unwrap_or_default(),
                entry: p,
            });
        }
        Ok(out)
    }

    /// Stats, packed in the type this host's containerd decodes: a Linux container's cgroup
    /// metrics; a Windows container's HCS statistics (`containerd.runhcs.stats.v1`).
    pub async fn stats(
        &self,
    ) -> Result<containerd_shim_protos::protobuf::well_known_types::any::Any> {
        let props = self
            .container
            .properties(&["Statistics"])
            .await
            .map_err(|e| Error::hcs(format!("statistics of {}", self.id), e))?;
        if self.container.os() == hcs::Os::Windows {
            let stats = props.get("Statistics").ok_or_else(|| {
                Error::Other(format!("HCS returned no statistics for {}", self.id))
            })?;
            return crate::options::pack(&crate::wcow::stats::statistics(stats)?);
        }
        let metrics = Self::lcow_metrics(&self.id, props)?;
        crate::stats::stats_any(crate::stats::metrics_from_json(&metrics)?)
    }

    /// A Linux container's metrics JSON from the guest (GetProperties `Statistics`).
    async fn guest_metrics(&self) -> Result<serde_json::Value> {
        let props = self
            .container
            .properties(&["Statistics"])
            .await
            .map_err(|e| Error::hcs(format!("statistics of {}", self.id), e))?;
        Self::lcow_metrics(&self.id, props)
    }

    /// The `LCOWMetrics` of a GetProperties answer.
    fn lcow_metrics(id: &str, mut props: serde_json::Value) -> Result<serde_json::Value> {
        props
            .get_mut("LCOWMetrics")
            .map(serde_json::Value::take)
            .ok_or_else(|| Error::Other(format!("the guest returned no statistics for {id}")))
    }

    /// Update: a task that owns its utility VM resizes the VM (the reference's
    /// `UtilityVM.Update`: memory, processor limit and weight; a VM that cannot be resized
    /// gets its container updated instead); otherwise OCI resources
    /// go to the container, `LinuxResources` to a Linux container (the guest's
    /// ContainerConstraints), `WindowsResources` to a Windows one (HCS modify requests on
    /// its memory and processor). `cpu_group` (the Update's
    /// `io.microsoft.virtualmachine.cpugroup.id`) moves a utility VM to that CPU group.
    pub async fn update(&self, resources: Resources, cpu_group: Option<String>) -> Result<()> {
        if self.owns_host {
            match self.host.update_vm(&resources.for_vm_with(cpu_group)).await {
                None => {}
                // A VM that cannot be resized (QEMU's has no balloon): its container's
                // limits still hold the workload, as before this VM-level update existed.
                Some(Err(e)) if e.code() == containerd_shim_protos::ttrpc::Code::UNIMPLEMENTED => {
                    tracing::warn!(task = %self.id, error = %e, "updating the container's limits instead");
                }
                Some(r) => return r,
            }
        }
        use bridge::messages::{
            ContainerConstraints, ModifyRequestType, ModifySettingRequest, ResourceSettings,
        };
        let requests = match (self.container.os(), resources) {
            (hcs::Os::Linux, Resources::Linux(linux)) => {
                let request = ModifySettingRequest::new(
                    ModifyRequestType::Update,
                    ResourceSettings::ContainerConstraints(ContainerConstraints {
                        linux,
                        ..Default::default()
                    }),
                );
                vec![serde_json::to_value(request)
                    .map_err(|e| Error::Other(format!("encode the update request: {e}")))?]
            }
            (hcs::Os::Windows, Resources::Windows(windows)) => {
                crate::wcow::resources::update_requests(&windows)?
            }
            (os, _) => {
                return Err(Error::InvalidArgument(format!(
                    "task {} is a {os} container: update resources must be of its OS's type",
                    self.id
                )))
            }
        };
        for request in &requests {
            self.container
                .modify(request)
                .await
                .map_err(|e| Error::hcs(format!("update the resources of {}", self.id), e))?;
        }
        Ok(())
    }
}

/// One process of a task (Pids).
#[derive(Debug, Clone, PartialEq)]
pub struct PidEntry {
    /// The process id (in the sandbox).
    pub pid: u32,
    /// The exec it belongs to ("" for the init or an unknown process).
    pub exec_id: String,
    /// HCS's `ProcessList` entry for it.
    pub entry: serde_json::Value,
}

/// The resources of an Update, as OCI JSON.
#[derive(Debug, Clone)]
pub enum Resources {
    /// `LinuxResources`.
    Linux(serde_json::Value),
    /// `WindowsResources`.
    Windows(serde_json::Value),
}

impl Resources {
    /// What they ask of a utility VM: the memory limit; the processor limit from Linux's
    /// CFS quota or Windows' maximum, the weight from the shares (as the reference).
    /// Values that are absent, zero or negative leave the VM's as they are.
    pub fn for_vm(&self) -> uvm::sandbox::VmResources {
        self.for_vm_with(None)
    }

    /// [`Resources::for_vm`] with the CPU group an Update's annotation names.
    pub fn for_vm_with(&self, cpu_group: Option<String>) -> uvm::sandbox::VmResources {
        // A negative value is no u64: it reads as unset, as zero does.
        let positive = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_u64).filter(|n| *n > 0)
        };
        let (r, limit) = match self {
            Resources::Linux(r) => (r, "/cpu/quota"),
            Resources::Windows(r) => (r, "/cpu/maximum"),
        };
        uvm::sandbox::VmResources {
            memory_bytes: positive(r.pointer("/memory/limit")),
            processor_limit: positive(r.pointer(limit)),
            processor_weight: positive(r.pointer("/cpu/shares")),
            cpu_group,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
