//! The host of process-isolated Windows containers: no utility VM, each container is a
//! compute system of its own on this host (the reference's `hcsoci.CreateContainer` with a
//! nil host), over layers that `vmcompute` mounts as a volume.
//!
//! Layers are mounted the legacy way (`internal/layers`, `MountWCOWLayers` without a
//! UVM): `ActivateLayer(scratch)`, `PrepareLayer(scratch, parents)`, then
//! `GetLayerMountPath(scratch)` names the volume that becomes the container's
//! `Storage.Path`; removal undoes them in reverse. A failure part-way undoes what was done.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hcs::api::HcsApi;
use hcs::cow::Container;
use hcs::vmcompute::VmcomputeApi;
use hcs::wclayer::{base_name, Wclayer};
use hcs::{System, Timeouts};

use super::doc::{compute_system, host_processors, LayerRef};
use super::layers::WcowLayers;
use crate::error::{Error, Result};
use crate::host::TaskHost;
use crate::rootfs::TaskRootfs;

/// One container this host made: its compute system and the scratch layer mounted for it.
#[derive(Debug)]
struct Made {
    system: Arc<System>,
    scratch: String,
}

/// Runs process-isolated Windows containers directly on this host's HCS.
pub struct ProcessIsolatedHost {
    hcs: Arc<dyn HcsApi>,
    layers: Wclayer,
    owner: String,
    timeouts: Timeouts,
    containers: Mutex<HashMap<String, Made>>,
}

impl std::fmt::Debug for ProcessIsolatedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessIsolatedHost")
            .field("owner", &self.owner)
            .field("containers", &self.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProcessIsolatedHost {
    /// A host over the given HCS and vmcompute bindings (fakes in tests); `owner` is the
    /// compute systems' `Owner` (the shim's executable name in the reference).
    pub fn new(hcs: Arc<dyn HcsApi>, vmcompute: Arc<dyn VmcomputeApi>, owner: &str) -> Self {
        Self {
            hcs,
            layers: Wclayer::new(vmcompute),
            owner: owner.to_owned(),
            timeouts: hcs::env_timeouts(),
            containers: Mutex::new(HashMap::new()),
        }
    }

    /// This machine's HCS (computecore.dll and vmcompute.dll). Where there is none (any
    /// OS but Windows, or Windows without the containers feature) this is Unimplemented.
    pub fn host(owner: &str) -> Result<Self> {
        let unavailable = |e: hcs::Error| {
            Error::Unimplemented(format!(
                "process-isolated Windows containers need this host's HCS: {e}"
            ))
        };
        let hcs = hcs::sys::default_api().map_err(unavailable)?;
        let vmcompute = hcs::sys::default_vmcompute().map_err(unavailable)?;
        Ok(Self::new(hcs, vmcompute, owner))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Made>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mounts the layers; returns the volume path. Undoes its own steps on failure.
    async fn mount(&self, layers: &WcowLayers) -> Result<String> {
        let scratch = &layers.scratch;
        let wrap = |what: &str, e: hcs::Error| Error::hcs(format!("{what} {scratch}"), e);
        self.layers
            .activate_layer(scratch)
            .await
            .map_err(|e| wrap("activate layer", e))?;
        if let Err(e) = self.layers.prepare_layer(scratch, &layers.parents).await {
            self.deactivate_logged(scratch).await;
            return Err(wrap("prepare layer", e));
        }
        match self.layers.get_layer_mount_path(scratch).await {
            Ok(path) if !path.is_empty() => Ok(path),
            other => {
                let err = match other {
                    Err(e) => wrap("get the mount path of layer", e),
                    Ok(_) => Error::Other(format!("layer {scratch} has no mount path")),
                };
                if let Err(e) = self.unmount(scratch).await {
                    tracing::warn!(layer = %scratch, error = %e, "unmount after a failed mount");
                }
                Err(err)
            }
        }
    }

    async fn deactivate_logged(&self, scratch: &str) {
        if let Err(e) = self.layers.deactivate_layer(scratch).await {
            tracing::warn!(layer = scratch, error = %e, "deactivating a layer after a failure");
        }
    }

    /// Unprepares and deactivates the scratch layer; both are tried, the first error is
    /// returned.
    async fn unmount(&self, scratch: &str) -> Result<()> {
        let unprepared = self
            .layers
            .unprepare_layer(scratch)
            .await
            .map_err(|e| Error::hcs(format!("unprepare layer {scratch}"), e));
        let deactivated = self
            .layers
            .deactivate_layer(scratch)
            .await
            .map_err(|e| Error::hcs(format!("deactivate layer {scratch}"), e));
        if let Err(e) = &unprepared {
            tracing::warn!(layer = scratch, error = %e, "unprepare layer");
        }
        unprepared.and(deactivated)
    }

    /// The document's layers: each parent with the GUID vmcompute derives from its folder
    /// name (`NameToGuid(basename)`, as the reference).
    async fn layer_refs(&self, parents: &[String]) -> Result<Vec<LayerRef>> {
        let mut out = Vec::with_capacity(parents.len());
        for path in parents {
            let guid = self
                .layers
                .name_to_guid(base_name(path))
                .await
                .map_err(|e| Error::hcs(format!("the layer id of {path}"), e))?;
            out.push(LayerRef {
                id: guid.to_string(),
                path: path.clone(),
            });
        }
        Ok(out)
    }

    /// Stops and closes a container's system and unmounts its layers.
    async fn remove(&self, id: &str, made: Made) -> Result<()> {
        if !made.system.stopped() {
            if let Err(e) = made.system.terminate().await {
                tracing::debug!(container = id, error = %e, "terminate on removal");
            }
        }
        if let Err(e) = made.system.close().await {
            tracing::debug!(container = id, error = %e, "closing the compute system");
        }
        self.unmount(&made.scratch).await
    }
}

#[async_trait]
impl TaskHost for ProcessIsolatedHost {
    fn kind(&self) -> String {
        "process-isolated".into()
    }

    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        rootfs: &TaskRootfs,
        _bundle: &Path,
    ) -> Result<Arc<dyn Container>> {
        let TaskRootfs::Windows(layers) = rootfs else {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is a Linux container: it cannot run in a process-isolated Windows pod"
            )));
        };
        if self.lock().contains_key(id) {
            return Err(Error::AlreadyExists(format!(
                "container {id} already exists"
            )));
        }
        let refs = self.layer_refs(&layers.parents).await?;
        let volume = self.mount(layers).await?;
        let made = async {
            // The typed document: it encodes in the reference's key order.
            let doc = compute_system(id, &self.owner, &spec, &refs, &volume, host_processors())?;
            System::create(self.hcs.clone(), id, &doc, self.timeouts)
                .await
                .map_err(|e| Error::hcs(format!("create container {id}"), e))
        }
        .await;
        let system = match made {
            Ok(s) => Arc::new(s),
            Err(e) => {
                if let Err(u) = self.unmount(&layers.scratch).await {
                    tracing::warn!(container = id, error = %u, "unmount after a failed create");
                }
                return Err(e);
            }
        };
        self.lock().insert(
            id.to_owned(),
            Made {
                system: system.clone(),
                scratch: layers.scratch.clone(),
            },
        );
        Ok(system)
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(made) = self.lock().remove(id) else {
            return Ok(());
        };
        self.remove(id, made).await
    }

    async fn teardown(&self) -> Result<()> {
        let all: Vec<(String, Made)> = self.lock().drain().collect();
        let mut first = None;
        for (id, made) in all {
            if let Err(e) = self.remove(&id, made).await {
                tracing::warn!(container = %id, error = %e, "teardown");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn exec_in_host(
        &self,
        _params: bridge::messages::ProcessParameters,
    ) -> Result<Box<dyn hcs::cow::Process>> {
        Err(Error::FailedPrecondition(
            "a process-isolated task has no utility VM to exec in".into(),
        ))
    }

    async fn guest_stacks(&self) -> Result<String> {
        Ok(String::new())
    }

    fn processor_count(&self) -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests;
