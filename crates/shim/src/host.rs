//! Where a task's container runs: a sandbox (the utility VM, or what stands in for one)
//! chosen per pod or standalone task, behind one small trait.
//!
//! Selection (`sandbox_kind`): the annotation `io.hcsshim-rs.sandbox` (`local` | `vm`),
//! else the runtime option `sandbox_isolation = HYPERVISOR` (applied as that annotation by
//! [`crate::options::apply_to_annotations`]) for `vm`, else the platform default: `local`
//! on Linux, `hcs` on Windows. Adding a sandbox is one arm in [`start_sandbox`].
//!
//! That choice is for Linux containers. A process-isolated Windows spec (no `linux`, no
//! `windows.hyperv`) has no sandbox: its host is [`crate::wcow::host::ProcessIsolatedHost`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hcs::cow::Container;
use uvm::sandbox::BootMode;
use uvm::{GcsContainer, Sandbox, SandboxKind};

use crate::annotations;
use crate::error::{Error, Result};
use crate::rootfs::TaskRootfs;

/// A place that runs containers for one pod or standalone task.
#[async_trait]
pub trait TaskHost: Send + Sync + std::fmt::Debug {
    /// What kind of sandbox this is (for logs and errors).
    fn kind(&self) -> String;

    /// Creates container `id` from the OCI `spec` on `rootfs` (`bundle` is the task's
    /// bundle on the host, where the shim may keep files).
    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        rootfs: &TaskRootfs,
        bundle: &Path,
    ) -> Result<Arc<dyn Container>>;

    /// Removes container `id`'s state and root filesystem from the sandbox.
    async fn remove_container(&self, id: &str) -> Result<()>;

    /// Stops the sandbox and removes what it made. Safe to call again.
    async fn teardown(&self) -> Result<()>;

    /// Starts a process in the sandbox itself, outside every container (ShimDiag's
    /// DiagExecInHost): in the utility VM, or for the local sandbox in the GCS's
    /// namespaces. `params` are the bridge's `ProcessParameters`.
    async fn exec_in_host(
        &self,
        params: bridge::messages::ProcessParameters,
    ) -> Result<Box<dyn hcs::cow::Process>>;

    /// The guest agent's stack dump (ShimDiag's DiagStacks); empty without a guest.
    async fn guest_stacks(&self) -> Result<String>;

    /// The utility VM's processor count (ExtendedTask's ComputeProcessorInfo); `None`
    /// when the host is not a VM.
    fn processor_count(&self) -> Option<u32>;

    /// Resizes the utility VM (Update of the task that owns it); `None` when the host is
    /// not a utility VM, whose tasks update their container instead.
    async fn update_vm(&self, resources: &uvm::sandbox::VmResources) -> Option<Result<()>> {
        let _ = resources;
        None
    }
}

/// What the shim needs to start a sandbox.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The task or pod id the sandbox is for (an HCS utility VM is named `<id>@vm`).
    pub id: String,
    /// The sandbox's state directory (sockets, logs, the VM's disks).
    pub state_dir: PathBuf,
    /// The `gcs` binary (local sandbox).
    pub gcs: PathBuf,
    /// The agent's log level.
    pub log_level: String,
    /// The utility VM's boot files (`io.microsoft.virtualmachine.bootfilesrootpath`, or
    /// the runtime option `boot_files_root_path`); `None` is the sandbox's default.
    pub boot_files: Option<PathBuf>,
    /// The utility VM's memory in MiB
    /// (`io.microsoft.virtualmachine.computetopology.memory.sizeinmb`); `None` is the
    /// sandbox's default.
    pub memory_mib: Option<u64>,
    /// The utility VM's processor count
    /// (`io.microsoft.virtualmachine.computetopology.processor.count`).
    pub cpus: Option<u32>,
    /// The utility VM's root file system
    /// (`io.microsoft.virtualmachine.lcow.preferredrootfstype`: `initrd`, `vhd`, or this
    /// project's `verity-vhd` on the QEMU VM); `None` is the default, an initrd.
    pub rootfs_type: Option<BootMode>,
    /// The pod's network namespace on the host (CNI's, from the spec that starts the
    /// sandbox); a utility VM carries it in as its NIC.
    pub network_namespace: Option<PathBuf>,
    /// The pod (or task) is in the host's pid namespace (its spec has no pid namespace): the
    /// local sandbox's agent stays in the host's too, so its containers see the host's
    /// processes.
    pub host_pid: bool,
}

/// The network namespace path of a spec (`linux.namespaces`, type `network`), if it names
/// one.
pub fn network_namespace(spec: &serde_json::Value) -> Option<PathBuf> {
    spec.pointer("/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|n| n.get("type").and_then(|t| t.as_str()) == Some("network"))?
        .get("path")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

impl HostConfig {
    /// Defaults for a sandbox whose state lives in `state_dir`: the `gcs` binary next to
    /// this executable if it is there, else from `PATH`.
    pub fn new(id: &str, state_dir: PathBuf) -> Self {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("gcs")))
            .filter(|p| p.is_file());
        Self {
            id: id.to_owned(),
            state_dir,
            gcs: beside.unwrap_or_else(|| PathBuf::from("gcs")),
            log_level: "info".into(),
            boot_files: None,
            memory_mib: None,
            cpus: None,
            rootfs_type: None,
            network_namespace: None,
            host_pid: false,
        }
    }

    /// Applies the utility VM annotations of a pod's (or standalone task's) spec: boot
    /// files, memory size, processor count and root file system type. A malformed value is
    /// logged and the default kept, as the reference's annotation parsers do (Create does
    /// not fail on it).
    pub fn apply_annotations(&mut self, a: &HashMap<String, String>) -> Result<()> {
        fn number<T: std::str::FromStr>(a: &HashMap<String, String>, key: &str) -> Option<T> {
            let v = a.get(key)?;
            match v.parse::<T>() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(annotation = key, value = %v, "annotation could not be parsed; the default is used");
                    None
                }
            }
        }
        if let Some(b) = a.get(annotations::BOOT_FILES_ROOT_PATH) {
            self.boot_files = Some(PathBuf::from(b));
        }
        self.memory_mib = number::<u64>(a, annotations::MEMORY_SIZE_MB).filter(|&m| m > 0);
        self.cpus = number::<u32>(a, annotations::PROCESSOR_COUNT).filter(|&c| c > 0);
        self.rootfs_type = a
            .get(annotations::PREFERRED_ROOTFS_TYPE)
            .and_then(|v| match v.parse() {
                Ok(t) => Some(t),
                Err(_) => {
                    tracing::warn!(
                        annotation = annotations::PREFERRED_ROOTFS_TYPE,
                        value = %v,
                        "annotation value must be 'initrd' or 'vhd' (or 'verity-vhd'); the default is used"
                    );
                    None
                }
            });
        Ok(())
    }
}

/// The `Owner` of the compute systems this shim creates (the reference uses the shim
/// executable's base name).
pub const OWNER: &str = "containerd-shim-runhcs-v1";

/// `%ProgramFiles%\Linux Containers`, the reference's default LCOW boot files
/// (`DefaultLCOWOSBootFilesPath`), used when neither an annotation nor the runtime option
/// `boot_files_root_path` names them.
pub fn default_lcow_boot_files() -> PathBuf {
    let pf = std::env::var_os("ProgramFiles").unwrap_or_else(|| r"C:\Program Files".into());
    PathBuf::from(pf).join("Linux Containers")
}

/// The sandbox kind asked for by a spec's annotations (see the module docs).
pub fn sandbox_kind(annotations: &HashMap<String, String>) -> Result<SandboxKind> {
    match annotations.get(annotations::SANDBOX_KIND) {
        Some(v) => v.parse().map_err(|e: uvm::Error| {
            Error::InvalidArgument(format!("annotation {}: {e}", annotations::SANDBOX_KIND))
        }),
        None if cfg!(windows) => Ok(SandboxKind::Hcs),
        None => Ok(SandboxKind::Local),
    }
}

/// Starts a sandbox of `kind` and wraps it as a task host.
pub async fn start_sandbox(kind: SandboxKind, config: &HostConfig) -> Result<SandboxHost> {
    match kind {
        #[cfg(target_os = "linux")]
        SandboxKind::Local => {
            let mut c = uvm::sandbox::local::LocalSandboxConfig::new(&config.state_dir);
            c.agent = config.gcs.clone();
            c.log_level = config.log_level.clone();
            c.host_pid = config.host_pid;
            let sb = uvm::sandbox::local::LocalSandbox::start(c)
                .await
                .map_err(|e| Error::sandbox("start the local sandbox", e))?;
            Ok(SandboxHost::new(Arc::new(sb), None))
        }
        #[cfg(target_os = "linux")]
        SandboxKind::Vm => {
            let mut c = uvm::sandbox::vm::VmSandboxConfig::new(&config.state_dir);
            if let Some(b) = &config.boot_files {
                c.boot_files = b.clone();
            }
            if let Some(m) = config.memory_mib {
                c.memory_mib = m;
            }
            if let Some(n) = config.cpus {
                c.cpus = n;
            }
            if let Some(mode) = config.rootfs_type {
                c.boot_mode = mode;
            }
            c.network_namespace = config.network_namespace.clone();
            c.log_level = config.log_level.clone();
            let cpus = c.cpus;
            let sb = uvm::sandbox::vm::VmSandbox::start(c)
                .await
                .map_err(|e| Error::sandbox("start the VM sandbox", e))?;
            Ok(SandboxHost::new(Arc::new(sb), Some(cpus)))
        }
        #[cfg(windows)]
        SandboxKind::Hcs => {
            use uvm::sandbox::hcs::{HcsBackends, HcsSandbox, HcsSandboxConfig};
            let boot_files = config
                .boot_files
                .clone()
                .unwrap_or_else(default_lcow_boot_files);
            // The reference names a task's or pod's utility VM `<id>@vm`.
            let mut c = HcsSandboxConfig::new(
                &format!("{}@vm", config.id),
                &config.state_dir,
                OWNER,
                &boot_files.display().to_string(),
            );
            if let Some(m) = config.memory_mib {
                c.options.memory_size_mb = m;
            }
            if let Some(n) = config.cpus {
                c.options.processor_count = n;
            }
            if let Some(t) = config.rootfs_type {
                use uvm::sandbox::hcs::doc::RootFsType;
                c.options.root_fs_type = match t {
                    BootMode::Initrd => RootFsType::Initrd,
                    BootMode::Vhd => RootFsType::Vhd,
                    BootMode::VerityVhd => {
                        return Err(Error::InvalidArgument(format!(
                            "annotation {}: 'verity-vhd' is for the QEMU utility VM; HCS takes 'initrd' or 'vhd'",
                            annotations::PREFERRED_ROOTFS_TYPE
                        )))
                    }
                };
            }
            c.options.exec_command_line = format!(
                "/bin/gcs -v4 -log-format json -loglevel {}",
                config.log_level
            );
            let backends =
                HcsBackends::host().map_err(|e| Error::sandbox("open this host's HCS", e))?;
            let cpus = c.options.processor_count;
            let sb = HcsSandbox::start(c, backends)
                .await
                .map_err(|e| Error::sandbox("start the HCS utility VM", e))?;
            Ok(SandboxHost::new(Arc::new(sb), Some(cpus)))
        }
        other => Err(Error::Unimplemented(format!(
            "the {other} sandbox (state in {}) is not available in this build of the shim",
            config.state_dir.display()
        ))),
    }
}

/// A sandbox hosting a GCS (local process or utility VM): containers are LCOW containers
/// driven over the bridge.
#[derive(Debug)]
pub struct SandboxHost {
    sandbox: Arc<dyn Sandbox>,
    /// The VM's processors (`None` for the local sandbox, which is no VM).
    processors: Option<u32>,
    containers: Mutex<HashMap<String, Arc<GcsContainer>>>,
    /// Every container id ever created here (for the cgroup sweep after teardown).
    created: Mutex<Vec<String>>,
}

impl SandboxHost {
    /// Wraps a started sandbox; `processors` is the VM's processor count (`None` when
    /// the sandbox is not a VM).
    pub fn new(sandbox: Arc<dyn Sandbox>, processors: Option<u32>) -> Self {
        Self {
            sandbox,
            processors,
            containers: Mutex::new(HashMap::new()),
            created: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GcsContainer>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TaskHost for SandboxHost {
    fn kind(&self) -> String {
        self.sandbox.kind().to_string()
    }

    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        rootfs: &TaskRootfs,
        bundle: &Path,
    ) -> Result<Arc<dyn Container>> {
        let TaskRootfs::Linux(rootfs) = rootfs else {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is a Windows container: it cannot run in a {} sandbox of Linux containers",
                self.sandbox.kind()
            )));
        };
        // The host cgroup a local sandbox's agent keeps for the container, swept with the
        // rest after teardown.
        #[cfg(target_os = "linux")]
        let cgroup = (self.sandbox.kind() == SandboxKind::Local)
            .then(|| uvm::sandbox::local::host_cgroup_path(id, &spec))
            .flatten();
        #[cfg(not(target_os = "linux"))]
        let cgroup: Option<String> = None;
        let created = if self.sandbox.kind() == SandboxKind::Local {
            let (layers, scratch) = rootfs.prepare(bundle)?;
            match &scratch {
                Some(s) => {
                    self.sandbox
                        .create_container_on_scratch(id, spec, &layers, s)
                        .await
                }
                None => self.sandbox.create_container(id, spec, &layers).await,
            }
        } else {
            // A utility VM cannot write to host directories: its scratch is a disk of its
            // own, and what the snapshot's upper directory holds now becomes the topmost
            // read-only layer (as the reference's LCOW, whose scratch is a VHD).
            let layers = rootfs.vm_layers()?;
            self.sandbox.create_container(id, spec, &layers).await
        };
        let c = Arc::new(created.map_err(|e| {
            Error::sandbox(
                format!("create container {id} ({})", self.sandbox.log_tail()),
                e,
            )
        })?);
        self.lock().insert(id.to_owned(), c.clone());
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.push(id.to_owned());
        created.extend(cgroup);
        drop(created);
        Ok(c)
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(c) = self.lock().remove(id) else {
            return Ok(());
        };
        self.sandbox
            .remove_container(&c)
            .await
            .map_err(|e| Error::sandbox(format!("remove container {id}"), e))
    }

    async fn teardown(&self) -> Result<()> {
        self.lock().clear();
        let r = self
            .sandbox
            .teardown()
            .await
            .map_err(|e| Error::sandbox("tear the sandbox down", e));
        #[cfg(target_os = "linux")]
        if self.sandbox.kind() == SandboxKind::Local {
            let ids = self
                .created
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            tokio::task::spawn_blocking(move || {
                sweep_cgroups(&ids, std::time::Duration::from_secs(5))
            })
            .await
            .map_err(|e| Error::Other(format!("cgroup sweep: {e}")))?;
        }
        r
    }

    async fn exec_in_host(
        &self,
        params: bridge::messages::ProcessParameters,
    ) -> Result<Box<dyn hcs::cow::Process>> {
        let p = uvm::GcsProcess::spawn(
            self.sandbox.client(),
            bridge::messages::NULL_CONTAINER_ID,
            params,
        )
        .await
        .map_err(|e| {
            Error::sandbox(
                format!("start a process in the {} sandbox", self.sandbox.kind()),
                e,
            )
        })?;
        Ok(Box::new(p))
    }

    async fn guest_stacks(&self) -> Result<String> {
        use bridge::messages::{DumpStacksResponse, RequestBase, NULL_CONTAINER_ID};
        let r: DumpStacksResponse = self
            .sandbox
            .client()
            .call(
                bridge::MessageType::DumpStacks,
                &RequestBase::new(NULL_CONTAINER_ID),
                None,
            )
            .await
            .map_err(|e| Error::sandbox("dump the guest's stacks", e))?;
        Ok(r.guest_stacks)
    }

    fn processor_count(&self) -> Option<u32> {
        self.processors
    }

    async fn update_vm(&self, resources: &uvm::sandbox::VmResources) -> Option<Result<()>> {
        if self.sandbox.kind() == uvm::SandboxKind::Local {
            return None;
        }
        if *resources == uvm::sandbox::VmResources::default() {
            return Some(Ok(()));
        }
        let r = self.sandbox.update_vm(resources).await;
        Some(r.map_err(|e| Error::sandbox("update the utility VM", e)))
    }
}

/// Removes the cgroups the local sandbox's containers had (`pods/<id>`, and for a pod its
/// workloads' `pods/<pod>/<id>`; or host paths, see [`uvm::sandbox::local::cgroup_dir`]) in
/// every hierarchy. A killed pid namespace empties its
/// cgroups a moment after its init is reaped (the unified hierarchy of a hybrid host lags
/// most), so removal is retried until `limit`; only empty cgroups are ever removed.
#[cfg(target_os = "linux")]
pub fn sweep_cgroups(ids: &[String], limit: std::time::Duration) {
    let root = Path::new("/sys/fs/cgroup");
    let mut bases = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        bases.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut left = Vec::new();
        for id in ids {
            for base in &bases {
                let Some(dir) = uvm::sandbox::local::cgroup_dir(base, id) else {
                    continue;
                };
                if !dir.is_dir() {
                    continue;
                }
                if let Ok(children) = std::fs::read_dir(&dir) {
                    for c in children.flatten().filter(|c| c.path().is_dir()) {
                        if std::fs::remove_dir(c.path()).is_err() {
                            left.push(c.path());
                        }
                    }
                }
                if std::fs::remove_dir(&dir).is_err() {
                    left.push(dir);
                }
            }
        }
        if left.is_empty() {
            uvm::sandbox::local::remove_container_cgroups(ids);
            return;
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!(?left, "cgroups still busy after the sandbox's teardown");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_namespace_of_a_spec() {
        let spec = serde_json::json!({"linux": {"namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}});
        assert_eq!(
            network_namespace(&spec),
            Some(PathBuf::from("/var/run/netns/cni-1"))
        );
        let new_one = serde_json::json!({"linux": {"namespaces": [{"type": "network"}]}});
        assert_eq!(network_namespace(&new_one), None);
        assert_eq!(network_namespace(&serde_json::json!({})), None);
    }

    #[test]
    fn the_kind_comes_from_the_annotation_or_the_platform() {
        let mut a = HashMap::new();
        let default = if cfg!(windows) {
            SandboxKind::Hcs
        } else {
            SandboxKind::Local
        };
        assert_eq!(sandbox_kind(&a).unwrap(), default);
        a.insert(annotations::SANDBOX_KIND.to_string(), "vm".to_string());
        assert_eq!(sandbox_kind(&a).unwrap(), SandboxKind::Vm);
        a.insert(annotations::SANDBOX_KIND.to_string(), "qemu".to_string());
        assert!(matches!(sandbox_kind(&a), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn vm_annotations_configure_the_sandbox() {
        let mut c = HostConfig::new("p", PathBuf::from("/s"));
        let a = HashMap::from([
            (
                annotations::BOOT_FILES_ROOT_PATH.to_string(),
                "/boot".to_string(),
            ),
            (annotations::MEMORY_SIZE_MB.to_string(), "512".to_string()),
            (annotations::PROCESSOR_COUNT.to_string(), "1".to_string()),
        ]);
        c.apply_annotations(&a).unwrap();
        assert_eq!(c.boot_files.as_deref(), Some(Path::new("/boot")));
        assert_eq!((c.memory_mib, c.cpus), (Some(512), Some(1)));
        assert_eq!(c.rootfs_type, None);
        for (v, t) in [
            ("initrd", BootMode::Initrd),
            ("vhd", BootMode::Vhd),
            ("verity-vhd", BootMode::VerityVhd),
        ] {
            let a = HashMap::from([(
                annotations::PREFERRED_ROOTFS_TYPE.to_string(),
                v.to_string(),
            )]);
            c.apply_annotations(&a).unwrap();
            assert_eq!(c.rootfs_type, Some(t));
        }
        // Malformed values keep the defaults (the reference warns and goes on).
        let squash = HashMap::from([(
            annotations::PREFERRED_ROOTFS_TYPE.to_string(),
            "squashfs".to_string(),
        )]);
        c.apply_annotations(&squash).unwrap();
        assert_eq!(c.rootfs_type, None);
        let bad = HashMap::from([
            (annotations::MEMORY_SIZE_MB.to_string(), "lots".to_string()),
            (annotations::PROCESSOR_COUNT.to_string(), " 2".to_string()),
        ]);
        c.apply_annotations(&bad).unwrap();
        assert_eq!((c.memory_mib, c.cpus), (None, None));
    }

    #[tokio::test]
    async fn an_unavailable_sandbox_is_unimplemented() {
        let c = HostConfig::new("t", PathBuf::from("/nonexistent"));
        let other = if cfg!(windows) {
            SandboxKind::Local
        } else {
            SandboxKind::Hcs
        };
        let e = start_sandbox(other, &c).await.unwrap_err();
        assert!(matches!(e, Error::Unimplemented(_)), "{e}");
    }
}
