//! The local sandbox: a GCS as a child process standing in for the utility VM (Linux).
//!
//! * **State dir** per sandbox: `bridge.sock` (the bridge listener), `<port>.sock` (stdio
//!   listeners), `gcs.log` (the agent's log), `gcs/` (its state root), `runc/` (the runc root
//!   it passes with `--root`, so the host's own runc state is never touched) and `c/<id>/`
//!   (container bundles, rootfs mount points and scratch).
//! * **Isolation** (what `unshare --mount --pid --fork --kill-child --mount-proc` would give,
//!   set up in-process without that extra process): the agent is pid 1 of its own pid
//!   namespace and has its own mount namespace with its own `/proc`, so its overlay mounts
//!   never show on the host, and when it dies the kernel kills every process of the
//!   namespace and the mounts go with it. That is what makes teardown leave nothing behind
//!   even when the agent crashed. The agent also dies with the host process
//!   (`PR_SET_PDEATHSIG`) and runs in its own session (terminal signals do not reach it).
//! * **Mount propagation**: the agent's namespace keeps the host's propagation, as a
//!   container runtime on the host has it, so that a volume with HostToContainer or
//!   Bidirectional propagation sees the host's mounts and shows its own on the host. Only
//!   `c/` is a private mount point (a bind of itself on the host, made before the agent
//!   starts and removed with the state dir): the rootfs overlays under it stay inside.
//! * **Transport**: the host listens, the agent dials (`-transport unix -socket-dir <dir>`),
//!   or the agent speaks the bridge on its stdin/stdout (`-use-inouterr`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge::hresult::Hresult;
use bridge::messages::{
    CombinedLayers, GcsCapabilities, ModifyRequestType, ModifySettingRequest, ResourceSettings,
    NULL_CONTAINER_ID,
};
use rustix::fs::FlockOperation;

use super::agent::Agent;
use super::{prepare_spec, validate_container_id, ContainerPaths};
use crate::client::{BridgeClient, ClientConfig};
use crate::container::{modify_settings, GcsContainer};
use crate::error::{Error, Result};
use crate::transport::{BoxStream, UnixTransport, BRIDGE_PORT};
pub use bridge::ext::host_cgroup_path;

/// Default bound of waiting for the agent to connect (`GCSConnectionTimeout`, 2 minutes);
/// `HCSSHIM_TIMEOUT_GCSCONNECTION` (seconds) overrides it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to start a local sandbox.
#[derive(Debug, Clone)]
pub struct LocalSandboxConfig {
    /// The sandbox's state directory; created by [`LocalSandbox::start`], removed by teardown.
    pub state_dir: PathBuf,
    /// The agent binary (`gcs`).
    pub agent: PathBuf,
    /// Extra agent arguments, appended after the ones the sandbox sets.
    pub agent_args: Vec<OsString>,
    /// Run the agent in its own mount and pid namespaces.
    pub isolate: bool,
    /// Leave the agent in the host's pid namespace (it keeps its own mount namespace when
    /// isolated): for a pod in the host's pid namespace, whose containers must see the
    /// host's processes. Teardown then kills the containers' processes by their cgroups, as
    /// no namespace dies with the agent to take them.
    pub host_pid: bool,
    /// Speak the bridge over the agent's stdin/stdout (`-use-inouterr`).
    pub use_inouterr: bool,
    /// A container whose spec names its own host cgroup (containerd's
    /// `<cgroup parent>/<id>`, see [`host_cgroup_path`]) gets it, as with runc, so that
    /// kubelet, cAdvisor and containerd's pod stats find it (`-host-cgroups`); otherwise
    /// the agent's `/pods/<id>`, as in a utility VM. On by default.
    pub host_cgroups: bool,
    /// Bound of waiting for the agent's bridge connection.
    pub connect_timeout: Duration,
    /// The agent's `-loglevel`.
    pub log_level: String,
    /// Bridge client timeouts.
    pub client: ClientConfig,
}

impl LocalSandboxConfig {
    /// Defaults for a sandbox in `state_dir`: agent `gcs` from `PATH`, isolated, Unix-socket
    /// bridge.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let connect_timeout = std::env::var("HCSSHIM_TIMEOUT_GCSCONNECTION")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Self {
            state_dir: state_dir.into(),
            agent: PathBuf::from("gcs"),
            agent_args: Vec::new(),
            isolate: true,
            host_pid: false,
            use_inouterr: false,
            host_cgroups: true,
            connect_timeout,
            log_level: "info".into(),
            client: ClientConfig::default(),
        }
    }

    /// The agent's command line: program and arguments. (Isolation is set up in-process,
    /// not by a wrapper program.)
    pub fn command_line(&self) -> (PathBuf, Vec<OsString>) {
        let dir = &self.state_dir;
        let mut args: Vec<OsString> = Vec::new();
        let program = self.agent.clone();
        let mut push = |a: &str, v: &Path| {
            args.push(a.into());
            args.push(v.into());
        };
        push("-transport", Path::new("unix"));
        push("-socket-dir", dir);
        push("-state-root", &dir.join("gcs"));
        push("-runtime-root", &dir.join("runc"));
        push("-loglevel", Path::new(&self.log_level));
        args.push("-v4".into());
        if self.use_inouterr {
            args.push("-use-inouterr".into());
        }
        if self.host_cgroups {
            args.push("-host-cgroups".into());
        }
        args.extend(self.agent_args.iter().cloned());
        (program, args)
    }
}

/// A running local sandbox.
pub struct LocalSandbox {
    config: LocalSandboxConfig,
    client: BridgeClient,
    capabilities: GcsCapabilities,
    agent: Agent,
    containers: Mutex<Vec<String>>,
    torn_down: AtomicBool,
    /// Where the state dir is now (see [`LocalSandbox::release_names`]).
    dir: Mutex<PathBuf>,
}

impl std::fmt::Debug for LocalSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSandbox")
            .field("state_dir", &self.config.state_dir)
            .field("agent_pid", &self.agent.pid())
            .finish()
    }
}

impl LocalSandbox {
    /// Creates the state dir, listens, starts the agent, accepts its connection within the
    /// connect timeout and negotiates. On any failure everything started is torn down.
    pub async fn start(config: LocalSandboxConfig) -> Result<Self> {
        let dir = config.state_dir.clone();
        if dir.exists() {
            return Err(Error::Sandbox(format!(
                "state dir {} already exists",
                dir.display()
            )));
        }
        create_private_dir(&dir)?;
        let started = if config.isolate {
            make_private_mount_point(&dir.join(CONTAINERS_DIR))
        } else {
            Ok(())
        };
        let started = match started {
            Ok(()) => Self::start_in(config).await,
            Err(e) => Err(e),
        };
        if started.is_err() {
            if let Err(e) = remove_state_dir(&dir) {
                tracing::warn!(error = %e, "the failed sandbox's state dir is left");
            }
        }
        started
    }

    async fn start_in(config: LocalSandboxConfig) -> Result<Self> {
        let dir = config.state_dir.clone();
        let log_path = dir.join("gcs.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("create {}", log_path.display()), e))?;
        let listener = if config.use_inouterr {
            None
        } else {
            let path = UnixTransport::socket_path(&dir, BRIDGE_PORT);
            Some(
                tokio::net::UnixListener::bind(&path)
                    .map_err(|e| Error::io(format!("listen on {}", path.display()), e))?,
            )
        };

        let (program, args) = config.command_line();
        let (agent, pipes) = Agent::spawn(
            &program,
            &args,
            log,
            config.use_inouterr,
            config.isolate,
            config.host_pid,
            None,
        )
        .await
        .map_err(|e| Error::io(format!("start agent {}", program.display()), e))?;
        let agent_pid = agent.pid();

        let stream: Result<BoxStream> = match listener {
            None => match pipes {
                Some((inp, out)) => Ok(Box::new(tokio::io::join(out, inp))),
                None => Err(Error::Sandbox("agent stdio pipes missing".into())),
            },
            Some(listener) => {
                let timeout = config.connect_timeout;
                let r = tokio::select! {
                    r = listener.accept() => r
                        .map(|(s, _)| Box::new(s) as BoxStream)
                        .map_err(|e| Error::io("accept the agent's bridge connection", e)),
                    how = agent.wait() => Err(Error::Sandbox(format!(
                        "the agent exited before connecting ({how}): {}",
                        log_tail(&log_path)
                    ))),
                    _ = tokio::time::sleep(timeout) => Err(Error::Timeout {
                        op: "the agent's bridge connection".into(),
                        after: timeout,
                    }),
                };
                // One connection only, as the reference: later re-dials find nothing.
                let _ = std::fs::remove_file(UnixTransport::socket_path(&dir, BRIDGE_PORT));
                r
            }
        };
        let connected = match stream {
            Ok(stream) => {
                let transport = Arc::new(UnixTransport::new(&dir));
                tokio::select! {
                    r = BridgeClient::connect(stream, transport, config.client.clone()) => r,
                    how = agent.wait() => Err(Error::Sandbox(format!(
                        "the agent exited during negotiation ({how}): {}",
                        log_tail(&log_path)
                    ))),
                }
            }
            Err(e) => Err(e),
        };
        let (client, capabilities) = match connected {
            Ok(c) => c,
            Err(e) => {
                kill_agent(&agent).await;
                return Err(e);
            }
        };
        tracing::debug!(dir = %dir.display(), pid = agent_pid, "local sandbox started");
        Ok(Self {
            dir: Mutex::new(config.state_dir.clone()),
            config,
            client,
            capabilities,
            agent,
            containers: Mutex::new(Vec::new()),
            torn_down: AtomicBool::new(false),
        })
    }

    /// The bridge to the agent.
    pub fn client(&self) -> &BridgeClient {
        &self.client
    }

    /// What the agent announced at negotiation.
    pub fn capabilities(&self) -> &GcsCapabilities {
        &self.capabilities
    }

    /// The state directory (where it is now: [`LocalSandbox::release_names`] moves it).
    pub fn state_dir(&self) -> PathBuf {
        lock(&self.dir).clone()
    }

    /// The host pid of the agent process (pid 1 of the sandbox's pid namespace when
    /// isolated).
    pub fn agent_pid(&self) -> Option<u32> {
        Some(self.agent.pid())
    }

    /// The last lines of the agent's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.state_dir().join("gcs.log"))
    }

    /// Where container `id` lives, as the agent sees it (under the state dir where the
    /// sandbox started).
    pub fn container_paths(&self, id: &str) -> ContainerPaths {
        ContainerPaths::new(&self.config.state_dir.join(CONTAINERS_DIR), id)
    }

    /// Builds the rootfs of `id` from directory `layers` (topmost first; a writable scratch
    /// on top) with ModifySettings CombinedLayers, then creates the container from `spec`.
    pub async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        self.create_container_in(id, spec, layers, None).await
    }

    /// [`LocalSandbox::create_container`] with the writable layer in the host directory
    /// `scratch` (`upper` and `work` in it) rather than in the sandbox's state dir. The
    /// agent shares the host's filesystem, so it writes there directly.
    pub async fn create_container_in(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
        scratch: Option<&Path>,
    ) -> Result<GcsContainer> {
        if let Some(s) = scratch {
            if !s.is_absolute() || !s.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "scratch {} is not an absolute path to a directory",
                    s.display()
                )));
            }
        }
        validate_container_id(id)?;
        if layers.is_empty() {
            return Err(Error::InvalidArgument(
                "a container needs at least one layer".into(),
            ));
        }
        for l in layers {
            if !l.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "layer {} is not a directory",
                    l.display()
                )));
            }
        }
        let paths = self.container_paths(id);
        let cgroup = self
            .config
            .host_cgroups
            .then(|| host_cgroup_path(id, &spec))
            .flatten();
        let mut spec = spec;
        if paths.bundle.exists() {
            return Err(Error::AlreadyExists(id.to_owned()));
        }
        create_private_dir(&paths.bundle)?;
        // An isolated agent's namespace may lack host mounts made since it started.
        let copied = if self.config.isolate {
            super::host_mounts::attach(
                &mut spec,
                &paths.bundle,
                &self.state_dir(),
                self.agent.pid(),
            )
        } else {
            Ok(())
        };
        let config = match copied.and_then(|()| prepare_spec(spec, &paths, cgroup.as_deref())) {
            Ok(c) => c,
            Err(e) => {
                self.remove_bundle(&paths.bundle);
                return Err(e);
            }
        };
        // Teardown finds the container's cgroups by these: `pods/<id>` and the host path.
        {
            let mut recorded = lock(&self.containers);
            recorded.push(id.to_owned());
            recorded.extend(cgroup);
        }
        let mut combined = paths.combined_layers(id, layers);
        if let Some(s) = scratch {
            combined.scratch_path = s.display().to_string();
        }
        let layers_req = ModifySettingRequest::new(
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(combined),
        );
        if let Err(e) = modify_settings(&self.client, NULL_CONTAINER_ID, layers_req).await {
            self.remove_bundle(&paths.bundle);
            return Err(e);
        }
        // runc makes the container's cgroup under `pods`: a teardown elsewhere must not
        // remove `pods` between runc's mkdir of it and of the container's own cgroup.
        let cgroup_guard = CgroupLock::shared();
        let created = GcsContainer::create(&self.client, id, config).await;
        drop(cgroup_guard);
        match created {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = self.remove_layers(&paths).await;
                self.remove_bundle(&paths.bundle);
                Err(e)
            }
        }
    }

    async fn remove_layers(&self, paths: &ContainerPaths) -> Result<()> {
        let remove = ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: paths.rootfs.display().to_string(),
                ..Default::default()
            }),
        );
        modify_settings(&self.client, NULL_CONTAINER_ID, remove).await
    }

    /// Removes the bundle of a container whose creation failed, with its volume copies.
    fn remove_bundle(&self, bundle: &Path) {
        if let Err(e) = super::host_mounts::detach(bundle, self.agent.pid()) {
            tracing::warn!(error = %e, "the failed container's volume copies are left");
        }
        if let Err(e) = std::fs::remove_dir_all(bundle) {
            tracing::warn!(bundle = %bundle.display(), error = %e, "the failed container's bundle is left");
        }
    }

    /// Removes a container from the guest: DeleteContainerState, then the rootfs overlay,
    /// then what is left of its directory.
    pub async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        let paths = self.container_paths(container.id());
        match container.delete_state().await {
            Err(e) if e.hresult() != Some(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND) => return Err(e),
            _ => {}
        }
        self.remove_layers(&paths).await?;
        super::host_mounts::detach(&paths.bundle, self.agent.pid())?;
        match std::fs::remove_dir_all(&paths.bundle) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", paths.bundle.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Stops the agent and removes everything the sandbox made: its processes (the whole pid
    /// namespace), mounts (its mount namespace), cgroups of its containers and the state
    /// dir. Safe to call again, and after the agent crashed.
    pub async fn teardown(&self) -> Result<()> {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.client.close("the sandbox is being torn down").await;
        kill_agent(&self.agent).await;
        let ids = std::mem::take(&mut *lock(&self.containers));
        if self.config.host_pid {
            kill_cgroup_processes(&ids, Duration::from_secs(10))?;
        }
        remove_container_cgroups(&ids);
        remove_state_dir(&self.state_dir())
    }

    /// Frees what the sandbox holds under reusable names, so that a new sandbox or container
    /// may take them at once while the rest of [`LocalSandbox::teardown`] (waiting for the
    /// agent's namespace to die, which drops its mounts, and removing files) follows later:
    ///
    /// * the bridge is closed and the agent killed (not waited for), so nothing in the
    ///   sandbox acts on its files any more;
    /// * the state dir is renamed to `to` (on the same filesystem), where teardown then
    ///   removes it;
    /// * the cgroups of containers with no process left are removed (those of a container
    ///   whose processes are still dying are removed by teardown).
    ///
    /// Teardown must still be called.
    pub async fn release_names(&self, to: &Path) -> Result<()> {
        self.client.close("the sandbox is being torn down").await;
        self.agent.kill();
        tracing::debug!("agent killed");
        {
            let mut dir = lock(&self.dir);
            std::fs::rename(&*dir, to).map_err(|e| {
                Error::io(format!("rename {} to {}", dir.display(), to.display()), e)
            })?;
            *dir = to.to_path_buf();
        }
        tracing::debug!(to = %to.display(), "state dir moved");
        let ids = lock(&self.containers).clone();
        remove_container_cgroups(&ids);
        Ok(())
    }
}

#[async_trait::async_trait]
impl super::Sandbox for LocalSandbox {
    fn kind(&self) -> super::SandboxKind {
        super::SandboxKind::Local
    }

    fn client(&self) -> &BridgeClient {
        LocalSandbox::client(self)
    }

    fn capabilities(&self) -> &GcsCapabilities {
        LocalSandbox::capabilities(self)
    }

    fn state_dir(&self) -> PathBuf {
        LocalSandbox::state_dir(self)
    }

    fn log_tail(&self) -> String {
        LocalSandbox::log_tail(self)
    }

    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        LocalSandbox::create_container(self, id, spec, layers).await
    }

    async fn create_container_on_scratch(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
        scratch: &Path,
    ) -> Result<GcsContainer> {
        LocalSandbox::create_container_in(self, id, spec, layers, Some(scratch)).await
    }

    async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        LocalSandbox::remove_container(self, container).await
    }

    async fn teardown(&self) -> Result<()> {
        LocalSandbox::teardown(self).await
    }
}

impl Drop for LocalSandbox {
    fn drop(&mut self) {
        if self.torn_down.load(Ordering::SeqCst) {
            return;
        }
        // Not torn down (a panic or an early return): kill synchronously and clean up.
        if !self.agent.kill_and_wait_blocking(Duration::from_secs(5)) {
            tracing::warn!(
                pid = self.agent.pid(),
                "the agent did not end after SIGKILL"
            );
        }
        if self.config.host_pid {
            if let Err(e) = kill_cgroup_processes(&lock(&self.containers), Duration::from_secs(5)) {
                tracing::warn!(error = %e, "the sandbox's processes are left");
            }
        }
        remove_container_cgroups(&lock(&self.containers));
        if let Err(e) = remove_state_dir(&self.state_dir()) {
            tracing::warn!(error = %e, "the sandbox's state dir is left");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("create {}", dir.display()), e))
}

/// The state dir's subdirectory of container bundles and rootfs mounts.
const CONTAINERS_DIR: &str = "c";

/// Makes `dir` (created here) a private mount point: a bind of itself, private. The agent's
/// mount namespace copies it as private, so the mounts the agent makes under it (rootfs
/// overlays) never propagate to the host, while the rest of the namespace stays in the
/// host's peer groups.
fn make_private_mount_point(dir: &Path) -> Result<()> {
    use rustix::mount::{mount_bind, mount_change, MountPropagationFlags};
    create_private_dir(dir)?;
    mount_bind(dir, dir).map_err(|e| Error::io(format!("bind {}", dir.display()), e.into()))?;
    if let Err(e) = mount_change(dir, MountPropagationFlags::PRIVATE) {
        // A bind that was made must not outlive the failure.
        if let Err(e2) = super::state_dir::unmount_detach(dir) {
            tracing::warn!(error = %e2, "the failed private mount point is left");
        }
        return Err(Error::io(
            format!("make private {}", dir.display()),
            e.into(),
        ));
    }
    Ok(())
}

/// Removes a local sandbox's state dir: every mount in it first (its private `c/`, see
/// [`LocalSandbox::start`]), then the tree (see [`super::state_dir`]). For teardown, and
/// for cleaning up after a host process that died without tearing its sandbox down, which
/// may have been a VM sandbox's (its shares are bind mounts of host directories).
pub fn remove_state_dir(dir: &Path) -> Result<()> {
    super::state_dir::remove_state_dir(dir)
}

/// Kills the agent (with its whole namespace when isolated) and waits for it.
async fn kill_agent(agent: &Agent) {
    if !agent.kill_and_wait(Duration::from_secs(15)).await {
        tracing::warn!(pid = agent.pid(), "the agent did not end after SIGKILL");
    }
}

/// Where a recorded container cgroup lives under hierarchy `base`: a container id is the
/// agent's `pods/<id>`, an absolute path (from [`host_cgroup_path`]) is that path. Anything
/// else (an empty id, `..`) names none: it would widen a kill or removal beyond the
/// sandbox's own cgroups.
pub fn cgroup_dir(base: &Path, entry: &str) -> Option<PathBuf> {
    match entry.strip_prefix('/') {
        Some(rel) => rel
            .split('/')
            .all(|p| validate_container_id(p).is_ok())
            .then(|| base.join(rel)),
        None => validate_container_id(entry)
            .is_ok()
            .then(|| base.join("pods").join(entry)),
    }
}

/// Removes the cgroups runc made for the sandbox's containers (the GCS puts a standalone
/// container at `/pods/<id>`, or at its host path, see [`cgroup_dir`]), in every v1
/// hierarchy or the v2 tree. Only empty cgroups can
/// be removed, so this never touches a live one. Teardown does this; it is public for
/// cleaning up after a host process that died without tearing its sandbox down. Returns the
/// cgroups that could not be removed (still in use, e.g. by processes still dying).
pub fn remove_container_cgroups(ids: &[String]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    let mut bases = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        bases.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for id in ids {
        for base in bases.iter() {
            let Some(dir) = cgroup_dir(base, id) else {
                continue;
            };
            if dir.is_dir() {
                if let Err(e) = std::fs::remove_dir(&dir) {
                    tracing::debug!(dir = %dir.display(), error = %e, "cgroup not removed");
                    left.push(dir);
                }
            }
        }
    }
    if !ids.is_empty() {
        // The parent too, if no other sandbox uses it (rmdir fails on a non-empty cgroup)
        // and no container is being created (then that sandbox removes it later).
        if let Some(_guard) = CgroupLock::try_exclusive() {
            for base in &bases {
                // Best effort: it stays while another sandbox has containers in it.
                let _ = std::fs::remove_dir(base.join("pods"));
            }
        }
    }
    left
}

/// Kills every process in the cgroups of containers `ids` (`pods/<id>` and below, so a
/// pod's sandbox id takes its workloads too; or a host path, see [`cgroup_dir`]) until they are empty or `limit` passes: what
/// the death of the agent's pid namespace does when the sandbox has none. Public for
/// cleaning up after a host process that died without tearing its sandbox down.
pub fn kill_cgroup_processes(ids: &[String], limit: Duration) -> Result<()> {
    fn pids_under(dir: &Path, out: &mut Vec<libc::pid_t>) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(
                procs
                    .lines()
                    .filter_map(|l| l.trim().parse::<libc::pid_t>().ok()),
            );
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids_under(&e.path(), out);
            }
        }
    }
    // One hierarchy holds every process: the unified one, or v1's pids (or memory).
    let root = Path::new("/sys/fs/cgroup");
    let base = ["", "pids", "memory"]
        .into_iter()
        .map(|c| root.join(c))
        .find(|b| b.join("cgroup.procs").is_file())
        .unwrap_or_else(|| root.to_path_buf());
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut pids = Vec::new();
        // Only a valid container id or host path names a cgroup of this sandbox: an empty
        // one would widen the kill to every pod's processes.
        for dir in ids.iter().filter_map(|i| cgroup_dir(&base, i)) {
            pids_under(&dir, &mut pids);
        }
        if pids.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Sandbox(format!(
                "processes {pids:?} of the sandbox's cgroups did not end"
            )));
        }
        for pid in pids.into_iter().filter_map(rustix::process::Pid::from_raw) {
            // A process that already ended gives ESRCH, which the next round's empty list
            // confirms; any other failure shows as the deadline's error.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A host-wide advisory lock (flock on the cgroup root directory, so no lock file is left
/// behind) between creating containers (shared) and removing the `pods` parent cgroup
/// (exclusive).
struct CgroupLock(Option<std::fs::File>);

impl CgroupLock {
    fn open() -> Option<std::fs::File> {
        std::fs::File::open("/sys/fs/cgroup").ok()
    }

    /// flock(2), retried when interrupted.
    fn flock(file: &std::fs::File, op: FlockOperation) -> bool {
        loop {
            match rustix::fs::flock(file, op) {
                Ok(()) => return true,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Waits for the shared lock; without a lockable cgroup root, no lock is needed.
    fn shared() -> Self {
        Self(Self::open().filter(|f| Self::flock(f, FlockOperation::LockShared)))
    }

    /// The exclusive lock if nobody holds the lock now.
    fn try_exclusive() -> Option<Self> {
        let f = Self::open()?;
        Self::flock(&f, FlockOperation::NonBlockingLockExclusive).then(|| Self(Some(f)))
    }
}

impl Drop for CgroupLock {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            // Closing the file releases it anyway.
            Self::flock(f, FlockOperation::Unlock);
        }
    }
}

/// The last 20 lines of a log file.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    let tail = lines[start..].join("\n");
    if tail.is_empty() {
        "(the agent log is empty)".into()
    } else {
        format!("agent log:\n{tail}")
    }
}

#[cfg(test)]
mod tests;
