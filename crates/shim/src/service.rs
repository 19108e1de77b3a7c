//! The `containerd.task.v2.Task` ttrpc service (spec §1.2): thin handlers that decode, call
//! the task and pod model and encode; errors leave through [`crate::error::Error`]'s one
//! conversion to gRPC codes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, PidsRequest, PidsResponse,
    ResizePtyRequest, ShutdownRequest, StartRequest, StartResponse, StateRequest, StateResponse,
    StatsRequest, StatsResponse, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskIO};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::shim::{CheckpointTaskRequest, PauseRequest, ResumeRequest};
use containerd_shim_protos::shim_async::Task as TaskService;
use containerd_shim_protos::ttrpc::r#async::TtrpcContext;
use containerd_shim_protos::ttrpc::Result as TtrpcResult;
use containerd_shim_protos::types::task::{ProcessInfo, Status};
use tokio::sync::watch;

use crate::annotations::{self, PodRole};
use crate::error::{Error, Result};
use crate::events::{to_timestamp, Publisher, TaskEvent};
use crate::host::{self, HostConfig, TaskHost};
use crate::options::{self, ProcessDetails};
use crate::rootfs::{self, TaskRootfs};
use crate::stdio::IoPaths;
use crate::task::pod::Pod;
use crate::task::{ExecState, Resources, Task, TaskSpec, UNKNOWN_EXIT};
use crate::wcow::SpecKind;

/// What the shim serves: a standalone task or a pod.
#[derive(Debug, Clone)]
enum Hosted {
    Task(Arc<Task>),
    Pod(Arc<Pod>),
}

/// How the shim was started (the `serve` flags and what containerd passed).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `-id`: the task (or pod sandbox) this shim was started for.
    pub id: String,
    /// `-namespace`.
    pub namespace: String,
    /// `-address`: containerd's gRPC address (keys the sandbox state dir).
    pub containerd_address: String,
    /// `--is-sandbox`: this shim hosts a pod.
    pub is_sandbox: bool,
    /// The options read from stdin at `serve`.
    pub log_level: String,
}

/// The task service.
pub struct Service {
    config: ServiceConfig,
    publisher: Publisher,
    hosted: Mutex<Option<Hosted>>,
    create_lock: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<Option<bool>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("id", &self.config.id)
            .finish()
    }
}

fn status_of(state: ExecState) -> Status {
    match state {
        ExecState::Created => Status::CREATED,
        ExecState::Running => Status::RUNNING,
        ExecState::Exited => Status::STOPPED,
    }
}

impl Service {
    /// A service for `config`, publishing through `publisher`.
    pub fn new(config: ServiceConfig, publisher: Publisher) -> Self {
        Self {
            config,
            publisher,
            hosted: Mutex::new(None),
            create_lock: tokio::sync::Mutex::new(()),
            shutdown: watch::channel(None).0,
        }
    }

    /// Resolves when Shutdown was accepted; the value is `now`.
    pub async fn wait_shutdown(&self) -> bool {
        let mut rx = self.shutdown.subscribe();
        loop {
            if let Some(now) = *rx.borrow_and_update() {
                return now;
            }
            if rx.changed().await.is_err() {
                return true;
            }
        }
    }

    fn hosted(&self) -> Option<Hosted> {
        self.hosted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_hosted(&self, h: Hosted) {
        *self.hosted.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Every task this shim serves (a pod's sandbox first); none before the first Create.
    pub fn tasks(&self) -> Vec<Arc<Task>> {
        match self.hosted() {
            None => Vec::new(),
            Some(Hosted::Task(t)) => vec![t],
            Some(Hosted::Pod(p)) => p.tasks(),
        }
    }

    /// The sandbox of the shim's pod or standalone task, once created.
    pub fn host(&self) -> Option<Arc<dyn TaskHost>> {
        match self.hosted() {
            None => None,
            Some(Hosted::Task(t)) => Some(t.host().clone()),
            Some(Hosted::Pod(p)) => Some(p.host().clone()),
        }
    }

    /// The task `id` (a pod's sandbox or workload, or the standalone task); NotFound
    /// otherwise.
    pub fn get_task(&self, id: &str) -> Result<Arc<Task>> {
        let not_found = || Error::NotFound(format!("task with id: '{id}' not found"));
        match self.hosted() {
            None => Err(not_found()),
            Some(Hosted::Task(t)) if id == self.config.id => Ok(t),
            Some(Hosted::Task(_)) => Err(not_found()),
            Some(Hosted::Pod(p)) => p.get_task(id),
        }
    }

    fn get_pod(&self) -> Result<Arc<Pod>> {
        match self.hosted() {
            Some(Hosted::Pod(p)) => Ok(p),
            _ => Err(Error::FailedPrecondition(format!(
                "task with id: '{}' must be created first",
                self.config.id
            ))),
        }
    }

    async fn new_host(
        &self,
        annotations: &std::collections::HashMap<String, String>,
        bundle: &Path,
        spec: &serde_json::Value,
        host_pid: bool,
    ) -> Result<Arc<dyn TaskHost>> {
        if crate::wcow::classify(spec)? == SpecKind::WcowProcess {
            return Ok(Arc::new(crate::wcow::host::ProcessIsolatedHost::host(
                host::OWNER,
            )?));
        }
        let kind = host::sandbox_kind(annotations)?;
        // Linux: a short path (the sandbox's sockets live in it); Windows: the bundle.
        let state_dir = if cfg!(windows) {
            bundle.join("sandbox")
        } else {
            crate::address::sandbox_state_dir(
                &self.config.containerd_address,
                &self.config.namespace,
                &self.config.id,
            )
        };
        let mut hc = HostConfig::new(&self.config.id, state_dir);
        hc.apply_annotations(annotations)?;
        hc.network_namespace = host::network_namespace(spec);
        hc.log_level = self.config.log_level.clone();
        hc.host_pid = host_pid;
        Ok(Arc::new(host::start_sandbox(kind, &hc).await?))
    }

    /// Create (§1.4).
    pub async fn do_create(&self, req: &CreateTaskRequest) -> Result<u32> {
        let opts = options::decode_any(req.options.as_ref())?;
        let spec_path = Path::new(&req.bundle).join("config.json");
        let raw = std::fs::read(&spec_path)
            .map_err(|e| Error::io(format!("read {}", spec_path.display()), e))?;
        let mut spec: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
            Error::InvalidArgument(format!("{} is not valid JSON: {e}", spec_path.display()))
        })?;
        if !spec.is_object() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a JSON object",
                spec_path.display()
            )));
        }
        options::apply_isolation(&opts, &mut spec)?;
        let mut ann = annotations::of_spec(&spec)?;
        options::apply_to_annotations(&opts, &mut ann);
        annotations::expand(&mut ann)?;
        spec["annotations"] = serde_json::to_value(&ann)
            .map_err(|e| Error::Other(format!("encode annotations: {e}")))?;
        let role = annotations::classify(&ann)?;
        let io = IoPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            id: req.id.clone(),
            namespace: self.config.namespace.clone(),
            retry_timeout: options::io_retry_timeout(&opts),
        };
        io.validate()?;
        let root_path = spec
            .pointer("/root/path")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let rootfs = match crate::wcow::classify(&spec)? {
            SpecKind::Lcow => TaskRootfs::Linux(rootfs::from_mounts(
                &req.rootfs,
                Path::new(&req.bundle),
                root_path.as_deref(),
            )?),
            SpecKind::WcowProcess => {
                if matches!(role, PodRole::Sandbox(_))
                    && crate::wcow::process::fix_pause_command(&mut spec)
                {
                    tracing::info!(id = %req.id, "pause command replaced (cmd.exe exits at once)");
                }
                TaskRootfs::Windows(crate::wcow::layers::from_mounts(&req.rootfs, &spec)?)
            }
            SpecKind::WcowHyperV => {
                return Err(Error::Unimplemented(
                    "Hyper-V isolated Windows containers (a Windows utility VM) are not supported; run the container process-isolated".into(),
                ))
            }
            SpecKind::HostProcess => {
                return Err(Error::Unimplemented(
                    "HostProcess (job object) containers are not supported".into(),
                ))
            }
        };
        // A spec without a pid namespace runs in the host's (CRI's NamespaceMode NODE).
        let host_pid = !spec
            .pointer("/linux/namespaces")
            .and_then(|n| n.as_array())
            .is_some_and(|ns| ns.iter().any(|n| n["type"] == "pid"));
        let task_spec = TaskSpec {
            id: req.id.clone(),
            bundle: req.bundle.clone(),
            spec,
            rootfs,
            io,
        };

        tracing::debug!(id = %req.id, "create: spec read");
        let guard = self.create_lock.lock().await;
        match self.hosted() {
            Some(Hosted::Pod(pod)) => {
                drop(guard);
                let sb = match &role {
                    PodRole::Container(sb) => Some(sb.as_str()),
                    _ => None,
                };
                pod.begin_create(&req.id, sb).await?;
                let made =
                    Task::create(pod.host().clone(), false, self.publisher.clone(), task_spec)
                        .await;
                pod.finish_create(&req.id, made.as_ref().ok().cloned());
                made?;
            }
            Some(Hosted::Task(_)) if self.config.is_sandbox => {
                return Err(Error::Other("sandbox shim holds a standalone task".into()))
            }
            None if self.config.is_sandbox => {
                match &role {
                    PodRole::Sandbox(sb) if *sb == req.id => {}
                    other => {
                        return Err(Error::FailedPrecondition(format!(
                            "expected annotation {}: sandbox with {}: '{}', got {other:?}",
                            annotations::CONTAINER_TYPE,
                            annotations::SANDBOX_ID,
                            req.id
                        )))
                    }
                }
                let host = self
                    .new_host(&ann, Path::new(&req.bundle), &task_spec.spec, host_pid)
                    .await?;
                let task = match Task::create(host.clone(), true, self.publisher.clone(), task_spec)
                    .await
                {
                    Ok(t) => t,
                    Err(e) => {
                        if let Err(te) = host.teardown().await {
                            tracing::warn!(error = %te, "tearing down after a failed create");
                        }
                        return Err(e);
                    }
                };
                self.set_hosted(Hosted::Pod(Arc::new(Pod::new(&req.id, host, task))));
            }
            _ => {
                if role != PodRole::Standalone {
                    return Err(Error::FailedPrecondition(format!(
                        "cannot create standalone task, expected no annotation: {}: got {role:?}",
                        annotations::CONTAINER_TYPE
                    )));
                }
                let host = self
                    .new_host(&ann, Path::new(&req.bundle), &task_spec.spec, host_pid)
                    .await?;
                let task = match Task::create(host.clone(), true, self.publisher.clone(), task_spec)
                    .await
                {
                    Ok(t) => t,
                    Err(e) => {
                        if let Err(te) = host.teardown().await {
                            tracing::warn!(error = %te, "tearing down after a failed create");
                        }
                        return Err(e);
                    }
                };
                self.set_hosted(Hosted::Task(task));
            }
        }
        tracing::debug!(id = %req.id, "create: container created");
        self.publisher
            .publish(TaskEvent::Create(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                checkpoint: String::new(),
                pid: 0,
                ..Default::default()
            }))
            .await?;
        Ok(0)
    }

    async fn do_state(&self, req: &StateRequest) -> Result<StateResponse> {
        let task = self.get_task(&req.id)?;
        let exec = task.get_exec(&req.exec_id)?;
        let st = exec.status().await;
        let io = exec.io();
        Ok(StateResponse {
            id: req.id.clone(),
            exec_id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: task.bundle().to_owned(),
            pid: st.pid,
            status: status_of(st.state).into(),
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            terminal: io.terminal,
            exit_status: st.exit.map_or(UNKNOWN_EXIT, |e| e.status),
            exited_at: MessageField::some(
                st.exit
                    .map_or_else(crate::events::go_zero_timestamp, |e| to_timestamp(e.at)),
            ),
            ..Default::default()
        })
    }

    async fn do_delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        let task = self.get_task(&req.id)?;
        let (pid, exit) = task.delete_exec(&req.exec_id).await?;
        if self.config.is_sandbox && req.exec_id.is_empty() {
            self.get_pod()?.delete_task(&req.id).await?;
        }
        self.publisher
            .publish(TaskEvent::Delete(TaskDelete {
                container_id: req.id.clone(),
                id: req.exec_id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: MessageField::some(to_timestamp(exit.at)),
                ..Default::default()
            }))
            .await?;
        Ok(DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(to_timestamp(exit.at)),
            ..Default::default()
        })
    }

    async fn do_pids(&self, req: &PidsRequest) -> Result<PidsResponse> {
        let task = self.get_task(&req.id)?;
        let mut processes = Vec::new();
        for p in task.pids().await? {
            processes.push(ProcessInfo {
                pid: p.pid,
                info: MessageField::some(process_details(p)?),
                ..Default::default()
            });
        }
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    async fn do_kill(&self, req: &KillRequest) -> Result<()> {
        if self.config.is_sandbox {
            let pod = self.get_pod().map_err(|e| Error::NotFound(e.to_string()))?;
            return pod
                .kill_task(&req.id, &req.exec_id, req.signal, req.all)
                .await;
        }
        self.get_task(&req.id)?
            .kill(&req.exec_id, req.signal, req.all)
            .await
    }

    async fn do_exec(&self, req: &ExecProcessRequest) -> Result<()> {
        crate::stdio::check_terminal_stderr(req.terminal, &req.stderr)?;
        let task = self.get_task(&req.id)?;
        let value = req
            .spec
            .as_ref()
            .map(|a| a.value.as_slice())
            .unwrap_or_default();
        let process: serde_json::Value = serde_json::from_slice(value)
            .map_err(|_| Error::InvalidArgument("request.Spec was not oci process".into()))?;
        let io = IoPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            // The reference names an exec's driver after the exec.
            id: req.exec_id.clone(),
            namespace: self.config.namespace.clone(),
            // The task's runtime options hold for its execs too.
            retry_timeout: task.init().io().retry_timeout,
        };
        task.create_exec(&req.exec_id, &io, process).await
    }

    async fn do_update(&self, req: &UpdateTaskRequest) -> Result<()> {
        let Some(any) = req.resources.as_ref() else {
            return Err(Error::InvalidArgument("resources must not be empty".into()));
        };
        let task = self.get_task(&req.id)?;
        let url = any.type_url.as_str();
        let decode = |what: &str| {
            serde_json::from_slice::<serde_json::Value>(&any.value)
                .map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))
        };
        let resources = if url.ends_with("opencontainers/runtime-spec/1/LinuxResources") {
            Resources::Linux(decode("LinuxResources")?)
        } else if url.ends_with("opencontainers/runtime-spec/1/WindowsResources") {
            Resources::Windows(decode("WindowsResources")?)
        } else {
            return Err(Error::InvalidArgument(
                "update resources must be of type *WindowsResources or *LinuxResources".into(),
            ));
        };
        // The reference checks the annotation for any task, and uses it for a VM's.
        let cpu_group = match req.annotations.get(annotations::CPU_GROUP_ID) {
            Some(id) if id.is_empty() => {
                return Err(Error::InvalidArgument(
                    "must specify an ID to use when configuring a VM's cpugroup".into(),
                ))
            }
            other => other.cloned(),
        };
        task.update(resources, cpu_group).await
    }
}

/// The `info` of a Pids entry in the type this host's containerd decodes: the
/// reference's `containerd.runhcs.v1.ProcessDetails` on Windows, filled from HCS's process
/// list entry (with its quirk: `user_time_100_ns` is the kernel time); on Linux, where ctr
/// and CRI only know runc's types, `containerd.runc.v1.ProcessDetails` (which carries the
/// exec id, all a Linux process needs).
fn process_details(
    p: crate::task::PidEntry,
) -> Result<containerd_shim_protos::protobuf::well_known_types::any::Any> {
    if cfg!(windows) {
        options::pack(&windows_process_details(p))
    } else {
        options::pack(&containerd_shim_protos::shim::oci::ProcessDetails {
            exec_id: p.exec_id,
            ..Default::default()
        })
    }
}

/// `containerd.runhcs.v1.ProcessDetails` from a Pids entry (task_hcs.go `Pids`).
fn windows_process_details(p: crate::task::PidEntry) -> ProcessDetails {
    let num = |k: &str| p.entry.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    ProcessDetails {
        image_name: p
            .entry
            .get("ImageName")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        created_at: p
            .entry
            .get("CreateTimestamp")
            .and_then(|v| v.as_str())
            .and_then(crate::wcow::stats::parse_timestamp)
            .into(),
        kernel_time_100_ns: num("KernelTime100ns"),
        memory_commit_bytes: num("MemoryCommitBytes"),
        memory_working_set_private_bytes: num("MemoryWorkingSetPrivateBytes"),
        memory_working_set_shared_bytes: num("MemoryWorkingSetSharedBytes"),
        process_id: p.pid,
        user_time_100_ns: num("KernelTime100ns"),
        exec_id: p.exec_id,
        ..Default::default()
    }
}

fn empty(r: Result<()>) -> TtrpcResult<Empty> {
    r.map(|()| Empty::new()).map_err(Into::into)
}

#[async_trait]
impl TaskService for Service {
    async fn state(&self, _: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        Ok(self.do_state(&req).await?)
    }

    async fn create(
        &self,
        _: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        let pid = self.do_create(&req).await.inspect_err(|e| {
            tracing::warn!(id = %req.id, error = %e, "create failed");
        })?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start(&self, _: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let task = self.get_task(&req.id)?;
        let pid = task.start(&req.exec_id).await?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        Ok(self.do_delete(&req).await?)
    }

    async fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        Ok(self.do_pids(&req).await?)
    }

    async fn pause(&self, _: &TtrpcContext, _: PauseRequest) -> TtrpcResult<Empty> {
        empty(Err(Error::Unimplemented("pause is not implemented".into())))
    }

    async fn resume(&self, _: &TtrpcContext, _: ResumeRequest) -> TtrpcResult<Empty> {
        empty(Err(Error::Unimplemented(
            "resume is not implemented".into(),
        )))
    }

    async fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        empty(Err(Error::Unimplemented(
            "checkpoint is not implemented".into(),
        )))
    }

    async fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        empty(self.do_kill(&req).await)
    }

    async fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        empty(self.do_exec(&req).await)
    }

    async fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let r = async {
            let exec = self.get_task(&req.id)?.get_exec(&req.exec_id)?;
            exec.resize(req.width, req.height).await
        }
        .await;
        empty(r)
    }

    async fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let r = async {
            let exec = self.get_task(&req.id)?.get_exec(&req.exec_id)?;
            exec.close_io().await;
            Ok(())
        }
        .await;
        empty(r)
    }

    async fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        empty(self.do_update(&req).await)
    }

    async fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let task = self.get_task(&req.id)?;
        let exit = task.wait(&req.exec_id).await?;
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(to_timestamp(exit.at)),
            ..Default::default()
        })
    }

    async fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let r = async { self.get_task(&req.id)?.stats().await }.await?;
        Ok(StatsResponse {
            stats: MessageField::some(r),
            ..Default::default()
        })
    }

    async fn connect(&self, _: &TtrpcContext, _: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: std::process::id(),
            ..Default::default()
        })
    }

    async fn shutdown(&self, _: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        if req.id == self.config.id {
            // Refuse to leave live tasks behind: containerd asks only after deleting them.
            let busy = match self.hosted() {
                Some(Hosted::Task(t)) => !t.is_closed(),
                Some(Hosted::Pod(p)) => !p.sandbox().is_closed(),
                None => false,
            };
            if busy && !req.now {
                tracing::debug!("shutdown while a task still runs; ignored");
                return Ok(Empty::new());
            }
            self.shutdown.send_if_modified(|s| {
                if s.is_none() {
                    *s = Some(req.now);
                    true
                } else {
                    false
                }
            });
        }
        Ok(Empty::new())
    }
}
