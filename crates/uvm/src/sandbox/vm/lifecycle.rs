//! Containers in the VM sandbox (layers and scratch as SCSI disks, then CombinedLayers and
//! Create, as an LCOW host does) and the sandbox's teardown.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bridge::header::MessageType;
use bridge::hresult::Hresult;
use bridge::messages::{
    CombinedLayers, GcsCapabilities, MappedVirtualDisk, ModifyRequestType, ModifySettingRequest,
    RequestBase, ResourceSettings, ResponseBase, ScsiDevice, NULL_CONTAINER_ID,
};

use super::disks::{self, Disk};
use super::net::{self, PodNetwork};
use super::{kill, lock, VmSandbox, GUEST_BUNDLES, POWER_OFF_WAIT};
use crate::client::BridgeClient;
use crate::container::{modify_settings, GcsContainer};
use crate::error::{Error, Result};
use crate::sandbox::{prepare_spec, validate_container_id, ContainerPaths, SandboxKind};

fn mapped_disk(disk: &Disk, read_only: bool) -> MappedVirtualDisk {
    MappedVirtualDisk {
        mount_path: disk.mount_path.clone(),
        lun: disk.lun,
        controller: 0,
        read_only,
        ..Default::default()
    }
}

fn request(kind: ModifyRequestType, settings: ResourceSettings) -> ModifySettingRequest {
    ModifySettingRequest::new(kind, settings)
}

impl VmSandbox {
    /// Where container `id` lives in the guest: bundle `/run/gcs/c/<id>` (the scratch
    /// disk's mount point), rootfs and scratch dirs inside it.
    fn paths(id: &str) -> ContainerPaths {
        ContainerPaths::new(Path::new(GUEST_BUNDLES), id)
    }

    /// Hot-plugs `image` and mounts it in the guest. On failure nothing stays attached.
    async fn attach(&self, disk: &Disk, read_only: bool) -> Result<()> {
        self.qmp
            .lock()
            .await
            .attach_disk(&disk.id, &disk.image, disk.lun, read_only)
            .await?;
        let add = request(
            ModifyRequestType::Add,
            ResourceSettings::MappedVirtualDisk(mapped_disk(disk, read_only)),
        );
        if let Err(e) = modify_settings(&self.client, NULL_CONTAINER_ID, add).await {
            if let Err(e2) = self.qmp.lock().await.detach_disk(&disk.id).await {
                tracing::warn!(error = %e2, id = disk.id, "disk not detached after a failed mount");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Unmounts a disk in the guest, removes the guest's SCSI device, unplugs it and
    /// deletes its image.
    async fn detach(&self, disk: &Disk) -> Result<()> {
        let unmount = request(
            ModifyRequestType::Remove,
            ResourceSettings::MappedVirtualDisk(mapped_disk(disk, false)),
        );
        modify_settings(&self.client, NULL_CONTAINER_ID, unmount).await?;
        let remove = request(
            ModifyRequestType::Remove,
            ResourceSettings::ScsiDevice(ScsiDevice {
                controller: 0,
                lun: disk.lun,
            }),
        );
        modify_settings(&self.client, NULL_CONTAINER_ID, remove).await?;
        self.qmp.lock().await.detach_disk(&disk.id).await?;
        std::fs::remove_file(&disk.image)
            .map_err(|e| Error::io(format!("remove {}", disk.image.display()), e))
    }

    /// The guest mount paths of `layers`, attaching those not attached yet.
    async fn take_layers(&self, layers: &[PathBuf]) -> Result<Vec<String>> {
        let mut taken: Vec<PathBuf> = Vec::new();
        let mut out = Vec::new();
        for l in layers {
            match self.take_layer(l).await {
                Ok((key, path)) => {
                    taken.push(key);
                    out.push(path);
                }
                Err(e) => {
                    self.release_layers(&taken).await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn take_layer(&self, layer: &Path) -> Result<(PathBuf, String)> {
        let key = std::fs::canonicalize(layer)
            .map_err(|e| Error::io(format!("layer {}", layer.display()), e))?;
        if !key.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "layer {} is not a directory",
                layer.display()
            )));
        }
        let mut d = self.disks.lock().await;
        if let Some(disk) = d.layers.get_mut(&key) {
            disk.refs += 1;
            return Ok((key, disk.mount_path.clone()));
        }
        let (lun, id) = d.allocate()?;
        let image = self
            .config
            .state_dir
            .join("disks")
            .join(format!("{id}.layer.img"));
        let disk = Disk {
            lun,
            id,
            image,
            refs: 1,
            mount_path: disks::guest_mount(lun),
        };
        let made = {
            let (dir, img) = (key.clone(), disk.image.clone());
            tokio::task::spawn_blocking(move || disks::layer_image(&dir, &img))
                .await
                .map_err(|e| Error::Sandbox(format!("layer conversion task: {e}")))?
        };
        let r = match made {
            Ok(()) => self.attach(&disk, true).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            d.release(lun);
            if let Err(rm) = std::fs::remove_file(&disk.image) {
                tracing::debug!(error = %rm, "layer image");
            }
            return Err(e);
        }
        let path = disk.mount_path.clone();
        d.layers.insert(key.clone(), disk);
        Ok((key, path))
    }

    /// Drops one reference to each layer; detaches those nobody uses any more.
    async fn release_layers(&self, keys: &[PathBuf]) -> Vec<Error> {
        let mut errors = Vec::new();
        let mut d = self.disks.lock().await;
        for k in keys {
            let Some(disk) = d.layers.get_mut(k) else {
                continue;
            };
            disk.refs -= 1;
            if disk.refs > 0 {
                continue;
            }
            let disk = d.layers.remove(k).expect("present");
            match self.detach(&disk).await {
                Ok(()) => d.release(disk.lun),
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    async fn new_scratch(&self, id: &str) -> Result<Disk> {
        let mut d = self.disks.lock().await;
        let (lun, disk_id) = d.allocate()?;
        let image = self
            .config
            .state_dir
            .join("disks")
            .join(format!("{disk_id}.scratch.img"));
        let mount_path = Self::paths(id).bundle.display().to_string();
        let disk = Disk {
            lun,
            id: disk_id,
            image,
            refs: 1,
            mount_path,
        };
        let (img, size) = (disk.image.clone(), self.config.scratch_size);
        let made = tokio::task::spawn_blocking(move || disks::scratch_image(&img, size))
            .await
            .map_err(|e| Error::Sandbox(format!("scratch task: {e}")))?;
        let r = match made {
            Ok(()) => self.attach(&disk, false).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            d.release(lun);
            if let Err(rm) = std::fs::remove_file(&disk.image) {
                tracing::debug!(error = %rm, "scratch image");
            }
            return Err(e);
        }
        d.scratch.insert(id.to_string(), disk.clone());
        Ok(disk)
    }

    async fn drop_scratch(&self, id: &str) -> Result<()> {
        let mut d = self.disks.lock().await;
        let Some(disk) = d.scratch.remove(id) else {
            return Ok(());
        };
        self.detach(&disk).await?;
        d.release(disk.lun);
        Ok(())
    }

    /// Builds container `id`'s root filesystem from the host directories `layers` and
    /// creates it from `spec`: each layer as a shared read-only SCSI disk, a scratch disk of
    /// its own, the host paths it bind-mounts shared over virtio-9p ([`super::shares`]),
    /// CombinedLayers, then Create. On failure what was attached is detached.
    pub async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        validate_container_id(id)?;
        if layers.is_empty() {
            return Err(Error::InvalidArgument(
                "a container needs at least one layer".into(),
            ));
        }
        // Validate the spec before attaching anything.
        prepare_spec(
            spec.clone(),
            &ContainerPaths::new(Path::new(GUEST_BUNDLES), id),
            None,
        )?;
        let mut keys = Vec::new();
        for l in layers {
            keys.push(
                std::fs::canonicalize(l)
                    .map_err(|e| Error::io(format!("layer {}", l.display()), e))?,
            );
        }
        {
            let mut c = lock(&self.containers);
            if c.contains_key(id) {
                return Err(Error::AlreadyExists(id.to_owned()));
            }
            c.insert(id.to_owned(), keys.clone());
        }
        let mut spec = spec;
        let shared = net::use_pod_network(&mut spec, self.net.as_ref())
            .and_then(|()| lock(&self.shares).share(id, &mut spec));
        let r = match shared {
            Ok(()) => self.create_in(id, spec, &keys).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            if let Err(e) = lock(&self.shares).release(id) {
                tracing::warn!(error = %e, id, "shares not removed after a failed create");
            }
            lock(&self.containers).remove(id);
        }
        r
    }

    async fn create_in(
        &self,
        id: &str,
        spec: serde_json::Value,
        keys: &[PathBuf],
    ) -> Result<GcsContainer> {
        let guest_layers = self.take_layers(keys).await?;
        match self.new_scratch(id).await {
            Ok(_) => {}
            Err(e) => {
                for e2 in self.release_layers(keys).await {
                    tracing::warn!(error = %e2, id, "layer disk not removed after a failed create");
                }
                return Err(e);
            }
        };
        let paths = Self::paths(id);
        let guest_paths: Vec<PathBuf> = guest_layers.iter().map(PathBuf::from).collect();
        let add = request(
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(paths.combined_layers(id, &guest_paths)),
        );
        let failed = match modify_settings(&self.client, NULL_CONTAINER_ID, add).await {
            Ok(()) => {
                let created = match prepare_spec(spec, &paths, None) {
                    Ok(config) => GcsContainer::create(&self.client, id, config).await,
                    Err(e) => Err(e),
                };
                match created {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        if let Err(e2) = self.remove_rootfs(&paths).await {
                            tracing::warn!(error = %e2, id, "rootfs not removed after a failed create");
                        }
                        e
                    }
                }
            }
            Err(e) => e,
        };
        if let Err(e2) = self.drop_scratch(id).await {
            tracing::warn!(error = %e2, id, "scratch disk not removed after a failed create");
        }
        for e2 in self.release_layers(keys).await {
            tracing::warn!(error = %e2, id, "layer disk not removed after a failed create");
        }
        Err(failed)
    }

    async fn remove_rootfs(&self, paths: &ContainerPaths) -> Result<()> {
        let remove = request(
            ModifyRequestType::Remove,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: paths.rootfs.display().to_string(),
                ..Default::default()
            }),
        );
        modify_settings(&self.client, NULL_CONTAINER_ID, remove).await
    }

    /// Removes a container: DeleteContainerState, the rootfs overlay, its scratch disk, and
    /// the layer disks no other container uses.
    pub async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        let id = container.id();
        match container.delete_state().await {
            Err(e) if e.hresult() != Some(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND) => return Err(e),
            _ => {}
        }
        self.remove_rootfs(&Self::paths(id)).await?;
        lock(&self.shares).release(id)?;
        self.drop_scratch(id).await?;
        let keys = lock(&self.containers).remove(id).unwrap_or_default();
        match self.release_layers(&keys).await.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Powers the VM off through the GCS (a shutdown of the null container, which the GCS
    /// does not answer), then stops QEMU and the backend and removes the state dir. Safe to
    /// call again and after QEMU died.
    pub async fn teardown(&self) -> Result<()> {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if self.client.closed_reason().is_none() {
            let base = RequestBase::new(NULL_CONTAINER_ID);
            let shutdown = self.client.call::<_, ResponseBase>(
                MessageType::ShutdownGraceful,
                &base,
                Some(POWER_OFF_WAIT),
            );
            tokio::select! {
                r = shutdown => tracing::debug!(result = ?r.map(|_| ()), "utility VM shutdown sent"),
                how = self.procs.qemu.wait() => tracing::debug!(how, "the utility VM powered off"),
            }
            if tokio::time::timeout(POWER_OFF_WAIT, self.procs.qemu.wait())
                .await
                .is_err()
            {
                tracing::warn!("the utility VM did not power off; killing QEMU");
            }
        }
        self.client.close("the sandbox is being torn down").await;
        kill(&self.procs.qemu, "QEMU").await;
        kill(&self.procs.backend, "vhost-device-vsock").await;
        self.ports.close();
        lock(&self.containers).clear();
        let released = lock(&self.shares).release_all();
        let unplumbed = self.net.as_ref().map_or(Ok(()), PodNetwork::unplumb);
        let removed = remove_tree(&self.config.state_dir);
        released.and(unplumbed).and(removed)
    }
}

/// Removes the state dir (see [`crate::sandbox::state_dir`]): the shares are unmounted by
/// then, and anything still mounted in it is detached first, never deleted through.
fn remove_tree(dir: &Path) -> Result<()> {
    crate::sandbox::state_dir::remove_state_dir(dir)
}

#[async_trait::async_trait]
impl crate::sandbox::Sandbox for VmSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Vm
    }

    fn client(&self) -> &BridgeClient {
        VmSandbox::client(self)
    }

    fn capabilities(&self) -> &GcsCapabilities {
        VmSandbox::capabilities(self)
    }

    fn state_dir(&self) -> PathBuf {
        VmSandbox::state_dir(self)
    }

    fn log_tail(&self) -> String {
        VmSandbox::log_tail(self)
    }

    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        VmSandbox::create_container(self, id, spec, layers).await
    }

    async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        VmSandbox::remove_container(self, container).await
    }

    async fn teardown(&self) -> Result<()> {
        VmSandbox::teardown(self).await
    }
}

impl Drop for VmSandbox {
    fn drop(&mut self) {
        if self.torn_down.load(Ordering::SeqCst) {
            return;
        }
        // Not torn down (a panic or an early return): kill synchronously and clean up.
        for (agent, name) in [
            (&self.procs.qemu, "QEMU"),
            (&self.procs.backend, "vhost-device-vsock"),
        ] {
            if !agent.kill_and_wait_blocking(Duration::from_secs(5)) {
                tracing::warn!(pid = agent.pid(), "{name} did not end after SIGKILL");
            }
        }
        self.ports.close();
        if let Err(e) = lock(&self.shares).release_all() {
            tracing::warn!(error = %e, "VM sandbox shares not removed");
        }
        if let Some(Err(e)) = self.net.as_ref().map(PodNetwork::unplumb) {
            tracing::warn!(error = %e, "pod network not restored");
        }
        if let Err(e) = remove_tree(&self.config.state_dir) {
            tracing::warn!(error = %e, "VM sandbox state not removed");
        }
    }
}
