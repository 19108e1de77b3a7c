//! Where a task's container runs: a sandbox (the utility VM, or what stands in for one)
//! chosen per pod or standalone task, behind one small trait.
//!
//! Selection (`sandbox_kind`): the annotation `io.hcsshim-rs.sandbox` (`local` | `vm`),
//! else the runtime option `sandbox_isolation = HYPERVISOR` (applied as that annotation by
//! [`crate::options::apply_to_annotations`]) for `vm`, else the platform default: `local`
//! on Linux, `hcs` on Windows. Adding a sandbox is one arm in [`start_sandbox`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hcs::cow::Container;
use uvm::{GcsContainer, Sandbox, SandboxKind};

use crate::annotations;
use crate::error::{Error, Result};
use crate::rootfs::Rootfs;

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
        rootfs: &Rootfs,
        bundle: &Path,
    ) -> Result<Arc<dyn Container>>;

    /// Removes container `id`'s state and root filesystem from the sandbox.
    async fn remove_container(&self, id: &str) -> Result<()>;

    /// Stops the sandbox and removes what it made. Safe to call again.
    async fn teardown(&self) -> Result<()>;
}

/// What the shim needs to start a sandbox.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The sandbox's state directory (local sandbox).
    pub state_dir: PathBuf,
    /// The `gcs` binary.
    pub gcs: PathBuf,
    /// The agent's log level.
    pub log_level: String,
}

impl HostConfig {
    /// Defaults for a sandbox whose state lives in `state_dir`: the `gcs` binary next to
    /// this executable if it is there, else from `PATH`.
    pub fn new(state_dir: PathBuf) -> Self {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("gcs")))
            .filter(|p| p.is_file());
        Self {
            state_dir,
            gcs: beside.unwrap_or_else(|| PathBuf::from("gcs")),
            log_level: "info".into(),
        }
    }
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

/// Starts a sandbox of `kind`.
pub async fn start_sandbox(kind: SandboxKind, config: &HostConfig) -> Result<Arc<dyn Sandbox>> {
    match kind {
        #[cfg(target_os = "linux")]
        SandboxKind::Local => {
            let mut c = uvm::sandbox::local::LocalSandboxConfig::new(&config.state_dir);
            c.agent = config.gcs.clone();
            c.log_level = config.log_level.clone();
            let sb = uvm::sandbox::local::LocalSandbox::start(c)
                .await
                .map_err(|e| Error::sandbox("start the local sandbox", e))?;
            Ok(Arc::new(sb))
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
    containers: Mutex<HashMap<String, Arc<GcsContainer>>>,
    /// Every container id ever created here (for the cgroup sweep after teardown).
    created: Mutex<Vec<String>>,
}

impl SandboxHost {
    /// Wraps a started sandbox.
    pub fn new(sandbox: Arc<dyn Sandbox>) -> Self {
        Self {
            sandbox,
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
        rootfs: &Rootfs,
        bundle: &Path,
    ) -> Result<Arc<dyn Container>> {
        let (layers, scratch) = rootfs.prepare(bundle)?;
        let created = match &scratch {
            Some(s) => {
                self.sandbox
                    .create_container_on_scratch(id, spec, &layers, s)
                    .await
            }
            None => self.sandbox.create_container(id, spec, &layers).await,
        };
        let c = Arc::new(created.map_err(|e| {
            Error::sandbox(
                format!("create container {id} ({})", self.sandbox.log_tail()),
                e,
            )
        })?);
        self.lock().insert(id.to_owned(), c.clone());
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.to_owned());
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
}

/// Removes the cgroups the local sandbox's containers had (`pods/<id>`, and for a pod its
/// workloads' `pods/<pod>/<id>`) in every hierarchy. A killed pid namespace empties its
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
                let dir = base.join("pods").join(id);
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

    #[tokio::test]
    async fn an_unavailable_sandbox_is_unimplemented() {
        let c = HostConfig::new(PathBuf::from("/nonexistent"));
        let e = start_sandbox(SandboxKind::Vm, &c).await.unwrap_err();
        assert!(matches!(e, Error::Unimplemented(_)), "{e}");
    }
}
