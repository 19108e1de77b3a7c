//! The legacy graph-driver layer functions (hcs-hcn-api.md §6.1), over the wclayer exports of
//! vmcompute.dll. **Windows only**: [`Wclayer::host`] fails with "HCS is not available"
//! elsewhere; [`Wclayer::new`] takes any [`VmcomputeApi`] (the fake, in tests).
//!
//! As in hcsshim, every call passes the driver info `{Flavour: 1, HomeDir: ""}` and the
//! **full layer path as the id**; parent chains go as `WC_LAYER_DESCRIPTOR`s whose
//! `LayerId` is `NameToGuid(basename(path))`. Errors carry the operation
//! `"hcsshim::<Function>"`.
//!
//! Not here: the NTFS volume growth that hcsshim's `ExpandScratchSize` performs after the
//! export ([`Wclayer::expand_sandbox_size`] is the export alone), `ConvertToBaseLayer` and the
//! layer reader/writer; they are in the `wclayer` crate, which builds on this binding.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::operation::{blocking, call_error};
use crate::vmcompute::{LayerCall, LayerDescriptor, LayerGuid, LayerOutput, VmcomputeApi};

/// Runs legacy layer operations against one vmcompute binding.
#[derive(Debug, Clone)]
pub struct Wclayer {
    api: Arc<dyn VmcomputeApi>,
}

/// hcsshim serialises `PrepareLayer` process-wide.
static PREPARE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `filepath.Base` for Windows paths: the last element, trailing separators ignored.
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches(['\\', '/']);
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "\\" };
    }
    let start = trimmed.rfind(['\\', '/']).map_or(0, |i| i + 1);
    // A bare volume (`C:`) has no separator: keep what follows the colon.
    let last = &trimmed[start..];
    match last.find(':') {
        Some(i) if start == 0 && i + 1 < last.len() => &last[i + 1..],
        _ => last,
    }
}

impl Wclayer {
    /// Layer operations over any binding (a fake in tests).
    pub fn new(api: Arc<dyn VmcomputeApi>) -> Self {
        Self { api }
    }

    /// The host's vmcompute.dll (Windows only).
    pub fn host() -> Result<Self> {
        Ok(Self::new(crate::sys::default_vmcompute()?))
    }

    async fn call(
        &self,
        op: &'static str,
        call: impl FnOnce(&dyn VmcomputeApi) -> std::result::Result<LayerOutput, i32> + Send + 'static,
    ) -> Result<LayerOutput> {
        let api = self.api.clone();
        blocking(move || call(api.as_ref()))
            .await?
            .map_err(|hr| call_error(hr, None).with_op(op))
    }

    async fn unit(
        &self,
        op: &'static str,
        call: impl FnOnce(&dyn VmcomputeApi) -> std::result::Result<LayerOutput, i32> + Send + 'static,
    ) -> Result<()> {
        self.call(op, call).await.map(|_| ())
    }

    /// The descriptors of a parent chain (`LayerId = NameToGuid(basename(path))`).
    pub async fn layer_descriptors(&self, parent_paths: &[String]) -> Result<Vec<LayerDescriptor>> {
        let mut out = Vec::with_capacity(parent_paths.len());
        for path in parent_paths {
            out.push(LayerDescriptor {
                layer_id: self.name_to_guid(base_name(path)).await?,
                flags: 0,
                path: path.clone(),
            });
        }
        Ok(out)
    }

    /// `ActivateLayer(path)`: mounts the layer; a read-write layer shows up as a host volume.
    pub async fn activate_layer(&self, path: &str) -> Result<()> {
        let id = path.to_string();
        self.unit("hcsshim::ActivateLayer", move |a| {
            a.layer_call(LayerCall::Activate { id: &id })
        })
        .await
    }

    /// `DeactivateLayer(path)`.
    pub async fn deactivate_layer(&self, path: &str) -> Result<()> {
        let id = path.to_string();
        self.unit("hcsshim::DeactivateLayer", move |a| {
            a.layer_call(LayerCall::Deactivate { id: &id })
        })
        .await
    }

    /// `CreateLayer(path, parent)`: an empty read-only layer.
    pub async fn create_layer(&self, path: &str, parent: &str) -> Result<()> {
        let (id, parent) = (path.to_string(), parent.to_string());
        self.unit("hcsshim::CreateLayer", move |a| {
            a.layer_call(LayerCall::Create {
                id: &id,
                parent: &parent,
            })
        })
        .await
    }

    /// `CreateScratchLayer(path, parentPaths)` (export `CreateSandboxLayer`).
    pub async fn create_scratch_layer(&self, path: &str, parent_paths: &[String]) -> Result<()> {
        let parents = self.layer_descriptors(parent_paths).await?;
        let id = path.to_string();
        self.unit("hcsshim::CreateScratchLayer", move |a| {
            a.layer_call(LayerCall::CreateSandbox {
                id: &id,
                parents: &parents,
            })
        })
        .await
    }

    /// The `ExpandSandboxSize(path, size)` export alone (see the module docs: hcsshim's
    /// `ExpandScratchSize` also grows the volume afterwards; this does not).
    pub async fn expand_sandbox_size(&self, path: &str, size: u64) -> Result<()> {
        let id = path.to_string();
        self.unit("hcsshim::ExpandScratchSize", move |a| {
            a.layer_call(LayerCall::ExpandSandboxSize { id: &id, size })
        })
        .await
    }

    /// `DestroyLayer(path)`: removes the files and the folder.
    pub async fn destroy_layer(&self, path: &str) -> Result<()> {
        let id = path.to_string();
        self.unit("hcsshim::DestroyLayer", move |a| {
            a.layer_call(LayerCall::Destroy { id: &id })
        })
        .await
    }

    /// `ExportLayer(path, exportFolder, parentPaths)`: writes the transport format.
    pub async fn export_layer(
        &self,
        path: &str,
        export_folder: &str,
        parent_paths: &[String],
    ) -> Result<()> {
        let parents = self.layer_descriptors(parent_paths).await?;
        let (id, folder) = (path.to_string(), export_folder.to_string());
        self.unit("hcsshim::ExportLayer", move |a| {
            a.layer_call(LayerCall::Export {
                id: &id,
                path: &folder,
                parents: &parents,
            })
        })
        .await
    }

    /// `ImportLayer(path, importFolder, parentPaths)`.
    pub async fn import_layer(
        &self,
        path: &str,
        import_folder: &str,
        parent_paths: &[String],
    ) -> Result<()> {
        let parents = self.layer_descriptors(parent_paths).await?;
        let (id, folder) = (path.to_string(), import_folder.to_string());
        self.unit("hcsshim::ImportLayer", move |a| {
            a.layer_call(LayerCall::Import {
                id: &id,
                path: &folder,
                parents: &parents,
            })
        })
        .await
    }

    /// `GetLayerMountPath(path)`: empty when the layer has none.
    pub async fn get_layer_mount_path(&self, path: &str) -> Result<String> {
        const OP: &str = "hcsshim::GetLayerMountPath";
        let id = path.to_string();
        text(
            OP,
            self.call(OP, move |a| {
                a.layer_call(LayerCall::GetMountPath { id: &id })
            })
            .await?,
        )
    }

    /// `GetSharedBaseImages()`: the JSON string `GetBaseImages` returns.
    pub async fn get_shared_base_images(&self) -> Result<String> {
        const OP: &str = "hcsshim::GetSharedBaseImages";
        text(
            OP,
            self.call(OP, |a| a.layer_call(LayerCall::GetBaseImages))
                .await?,
        )
    }

    /// `LayerExists(path)`.
    pub async fn layer_exists(&self, path: &str) -> Result<bool> {
        const OP: &str = "hcsshim::LayerExists";
        let id = path.to_string();
        match self
            .call(OP, move |a| a.layer_call(LayerCall::Exists { id: &id }))
            .await?
        {
            LayerOutput::Exists(b) => Ok(b),
            other => Err(unexpected(OP, &other)),
        }
    }

    /// `NameToGuid(name)`.
    pub async fn name_to_guid(&self, name: &str) -> Result<LayerGuid> {
        const OP: &str = "hcsshim::NameToGuid";
        let name = name.to_string();
        match self
            .call(OP, move |a| {
                a.layer_call(LayerCall::NameToGuid { name: &name })
            })
            .await?
        {
            LayerOutput::Guid(g) => Ok(g),
            other => Err(unexpected(OP, &other)),
        }
    }

    /// `PrepareLayer(path, parentPaths)`, serialised process-wide as hcsshim does.
    pub async fn prepare_layer(&self, path: &str, parent_paths: &[String]) -> Result<()> {
        let parents = self.layer_descriptors(parent_paths).await?;
        let _serial = PREPARE_LOCK.lock().await;
        let id = path.to_string();
        self.unit("hcsshim::PrepareLayer", move |a| {
            a.layer_call(LayerCall::Prepare {
                id: &id,
                parents: &parents,
            })
        })
        .await
    }

    /// `UnprepareLayer(path)`.
    pub async fn unprepare_layer(&self, path: &str) -> Result<()> {
        let id = path.to_string();
        self.unit("hcsshim::UnprepareLayer", move |a| {
            a.layer_call(LayerCall::Unprepare { id: &id })
        })
        .await
    }

    /// `ProcessBaseLayer(path)` (export `ProcessBaseImage`); the error carries the path.
    pub async fn process_base_layer(&self, path: &str) -> Result<()> {
        let p = path.to_string();
        self.unit("ProcessBaseImage", move |a| {
            a.layer_call(LayerCall::ProcessBaseImage { path: &p })
        })
        .await
        .map_err(|e| e.with_extra(path.to_string()))
    }

    /// `ProcessUtilityVMImage(path)` (export `ProcessUtilityImage`); the error carries the
    /// path.
    pub async fn process_utility_vm_image(&self, path: &str) -> Result<()> {
        let p = path.to_string();
        self.unit("ProcessUtilityImage", move |a| {
            a.layer_call(LayerCall::ProcessUtilityImage { path: &p })
        })
        .await
        .map_err(|e| e.with_extra(path.to_string()))
    }

    /// `GrantVmAccess(vmId, filePath)`.
    pub async fn grant_vm_access(&self, vm_id: &str, file_path: &str) -> Result<()> {
        let (vm, p) = (vm_id.to_string(), file_path.to_string());
        self.unit("hcsshim::GrantVmAccess", move |a| {
            a.layer_call(LayerCall::GrantVmAccess {
                vm_id: &vm,
                path: &p,
            })
        })
        .await
    }
}

fn text(op: &str, out: LayerOutput) -> Result<String> {
    match out {
        LayerOutput::Text(s) => Ok(s),
        LayerOutput::None => Ok(String::new()),
        other => Err(unexpected(op, &other)),
    }
}

fn unexpected(op: &str, out: &LayerOutput) -> Error {
    Error::op(
        op,
        ErrorKind::InvalidResponse(format!("unexpected output {out:?}")),
    )
}

#[cfg(test)]
mod tests;
