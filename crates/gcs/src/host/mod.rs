//! The guest's view of the utility VM: the container and external-process tables and the
//! plain operations the bridge handlers call (no protocol types here).
//!
//! Each container and process has its own lock; the tables' locks are held only to look up,
//! insert or remove entries, never across runc invocations.

mod containers;
mod processes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::container::{Container, ExitType};
use crate::error::{hr, Error, PathContext, Result};
use crate::network::Namespaces;
use crate::process::Process;
use crate::reaper::Reaper;
use crate::runc::Runc;
use crate::transport::Transport;

pub use containers::{prepare_bundle, CreateRequest};
pub use processes::{split_command_line, ProcessParams, StdioPorts};

/// Receives container-exit notifications (the bridge publishes them to the host).
pub trait Notifier: Send + Sync {
    /// The init process of `id` exited and was waited for.
    fn container_exited(&self, id: &str, activity_id: &str, exit_type: ExitType);
}

/// Host configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of the GCS's own state (the wrapper state lives in `<root>/gcsrunc`).
    pub state_root: PathBuf,
    /// The OCI runtime binary.
    pub runc: PathBuf,
    /// `runc --root`, if any.
    pub runc_root: Option<PathBuf>,
    /// How the host is reached (stdio ports, 9p shares).
    pub transport: Transport,
    /// In a utility VM: the GCS manages the `/pods` cgroup, limited to total RAM minus this.
    pub pods_memory_reserve: Option<u64>,
    /// Containers keep a host cgroup path the spec gives (`-host-cgroups`).
    pub host_cgroups: bool,
}

enum Slot {
    /// `runc create` is running.
    Creating,
    Ready(Arc<Container>),
}

/// The guest host state.
pub struct Host {
    runc: Runc,
    reaper: Arc<Reaper>,
    transport: Transport,
    /// `<state_root>/gcsrunc`.
    runc_state: PathBuf,
    containers: Mutex<HashMap<String, Slot>>,
    external: Mutex<HashMap<u32, Arc<Process>>>,
    networks: Namespaces,
    notifier: Arc<dyn Notifier>,
    counter: AtomicU64,
    pods_memory_reserve: Option<u64>,
    host_cgroups: bool,
    /// Mounts made for ModifySettings, undone by [`Host::teardown`].
    mounts: Mutex<Vec<PathBuf>>,
}

impl Host {
    /// Creates the state dirs and the host.
    pub fn new(config: Config, reaper: Arc<Reaper>, notifier: Arc<dyn Notifier>) -> Result<Self> {
        let runc_state = config.state_root.join("gcsrunc");
        std::fs::create_dir_all(&runc_state).with_path("mkdir", &runc_state)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runc_state, std::fs::Permissions::from_mode(0o700))
            .with_path("chmod", &runc_state)?;
        Ok(Host {
            runc: Runc::new(config.runc, config.runc_root, Arc::clone(&reaper)),
            reaper,
            transport: config.transport,
            runc_state,
            containers: Mutex::new(HashMap::new()),
            external: Mutex::new(HashMap::new()),
            networks: Namespaces::default(),
            notifier,
            counter: AtomicU64::new(0),
            pods_memory_reserve: config.pods_memory_reserve,
            host_cgroups: config.host_cgroups,
            mounts: Mutex::new(Vec::new()),
        })
    }

    /// The transport the host is reached through.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The network namespaces table.
    pub fn networks(&self) -> &Namespaces {
        &self.networks
    }

    /// The runtime.
    pub fn runc(&self) -> &Runc {
        &self.runc
    }

    /// The reaper.
    pub fn reaper(&self) -> &Arc<Reaper> {
        &self.reaper
    }

    fn unique(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The container `id`: `SystemNotFound` if unknown, `InvalidState` while creating.
    pub fn container(&self, id: &str) -> Result<Arc<Container>> {
        match self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            Some(Slot::Ready(c)) => Ok(Arc::clone(c)),
            Some(Slot::Creating) => Err(Error::Context {
                context: "container is still being created".into(),
                hresult: hr::INVALID_STATE,
            }),
            None => Err(Error::Hresult(hr::SYSTEM_NOT_FOUND)),
        }
    }

    /// The ids of all containers (created or being created).
    pub fn container_ids(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Remembers a mount made for a ModifySettings Add.
    pub fn track_mount(&self, path: PathBuf) {
        self.mounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
    }

    /// Forgets a mount undone by a ModifySettings Remove.
    pub fn untrack_mount(&self, path: &std::path::Path) {
        let mut m = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = m.iter().rposition(|p| p == path) {
            m.remove(i);
        }
    }

    /// PodCgroupMemoryLimit: recomputes the `/pods` memory limit (utility VM only).
    pub fn update_pods_limit(&self) -> Result<()> {
        match self.pods_memory_reserve {
            Some(reserve) => crate::cgroup::set_pods_limit(reserve),
            None => Err(Error::wrap(
                hr::NOT_IMPL,
                "the /pods cgroup is managed only inside a utility VM (vsock transport)",
            )),
        }
    }

    /// Ends every container and external process (shutdown of the null container when the
    /// GCS is not allowed to power the machine off).
    pub fn teardown(&self) {
        for id in self.container_ids() {
            if self.container(&id).is_ok() {
                if let Err(e) = self.runc.delete(&id, true) {
                    tracing::warn!(id, error = %e, "teardown: runc delete --force failed");
                }
                if let Err(e) = self.delete_container_state(&id) {
                    tracing::warn!(id, error = %e, "teardown: delete container state failed");
                }
            }
        }
        let procs: Vec<_> = self
            .external
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for p in procs {
            // An external process that already ended cannot be signalled: nothing to log.
            if let Err(e) = p.signal(libc::SIGKILL) {
                tracing::debug!(pid = p.pid(), error = %e, "teardown: kill external process");
            }
        }
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap_or_else(|p| p.into_inner()));
        for m in mounts.iter().rev() {
            if let Err(e) = crate::storage::unmount_path(&m.to_string_lossy()) {
                tracing::warn!(error = %e, "teardown: unmount failed");
            }
        }
    }
}
