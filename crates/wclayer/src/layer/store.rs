//! The layer operations the readers and writers need from the host: the whole-folder
//! `ExportLayer`/`ImportLayer`, the base-layer preparation, the mount steps of an export, and
//! the streaming exports when they exist.
//!
//! * [`VmcomputeStore`] is vmcompute.dll (through the `hcs` crate's [`VmcomputeApi`], so the
//!   `hcs` fake serves tests).
//! * [`FolderStore`] is a layer folder on a host without vmcompute: it does the transport
//!   format conversion itself ([`super::legacy::folder`]), keeps tombstones in the folder's
//!   `tombstones.txt`, and does not prepare images (there is nothing to boot on Linux).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcs::vmcompute::{LayerCall, LayerDescriptor, LayerOutput, VmcomputeApi};

use super::filter::StreamingExports;
use crate::error::{Error, Result};
use crate::fs::LayerFs;
use crate::layout::{LayerPath, TOMBSTONES_FILE};

/// The host's layer operations.
pub trait LayerStore: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// `ExportLayer(layer, folder, parents)`: writes the layer in the transport format.
    fn export_layer(&self, layer: &Path, folder: &Path, parents: &[PathBuf]) -> Result<()>;
    /// `ImportLayer(layer, folder, parents)`: builds the layer from the transport format.
    fn import_layer(&self, layer: &Path, folder: &Path, parents: &[PathBuf]) -> Result<()>;
    /// Applies the deletions of an imported layer.
    fn apply_tombstones(&self, fs: &dyn LayerFs, layer: &Path, names: &[LayerPath]) -> Result<()>;
    /// Whether the store prepares imported images for use (`ProcessBaseImage`,
    /// `ProcessUtilityImage`); writers skip those steps when it does not.
    fn prepares_images(&self) -> bool;
    /// `ProcessBaseImage(layer)`.
    fn process_base_layer(&self, layer: &Path) -> Result<()>;
    /// `ProcessUtilityImage(layer\UtilityVM)`.
    fn process_utility_vm_image(&self, uvm: &Path) -> Result<()>;
    /// What an export does before reading a layer (the reference activates it and runs
    /// `PrepareLayer`/`UnprepareLayer` so that it is initialised).
    fn begin_export(&self, layer: &Path, parents: &[PathBuf]) -> Result<()>;
    /// Undoes [`LayerStore::begin_export`].
    fn end_export(&self, layer: &Path) -> Result<()>;
    /// The streaming exports, when the host has them.
    fn streaming(&self) -> Option<Arc<dyn StreamingExports>>;
    /// The `WC_LAYER_DESCRIPTOR`s of a parent chain.
    fn descriptors(&self, parents: &[PathBuf]) -> Result<Vec<LayerDescriptor>>;
    /// A temporary folder for the transport format of `layer`.
    fn temp_dir(&self, layer: &Path) -> Result<tempfile::TempDir>;
}

fn utf8(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Error::InvalidPath {
        path: p.display().to_string(),
        reason: "not valid Unicode",
    })
}

/// vmcompute.dll's layer exports.
pub struct VmcomputeStore {
    api: Arc<dyn VmcomputeApi>,
    streaming: Option<Arc<dyn StreamingExports>>,
}

impl fmt::Debug for VmcomputeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmcomputeStore")
            .field("streaming", &self.streaming.is_some())
            .finish()
    }
}

impl VmcomputeStore {
    /// Over any binding, with or without streaming exports.
    pub fn new(api: Arc<dyn VmcomputeApi>, streaming: Option<Arc<dyn StreamingExports>>) -> Self {
        Self { api, streaming }
    }

    /// The host's vmcompute.dll (Windows only).
    pub fn host() -> Result<Self> {
        Ok(Self::new(
            hcs::sys::default_vmcompute()?,
            crate::sys::streaming_exports(),
        ))
    }

    fn call(&self, op: &'static str, call: LayerCall<'_>) -> Result<LayerOutput> {
        self.api
            .layer_call(call)
            .map_err(|hr| hcs::operation::call_error(hr, None).with_op(op).into())
    }

    /// The parent descriptors (`LayerId = NameToGuid(basename(path))`).
    pub fn layer_descriptors(&self, parents: &[PathBuf]) -> Result<Vec<LayerDescriptor>> {
        parents
            .iter()
            .map(|p| {
                let path = utf8(p)?;
                let guid = crate::guid::name_to_guid_with(
                    self.api.as_ref(),
                    hcs::wclayer::base_name(path),
                )?;
                Ok(LayerDescriptor {
                    layer_id: guid.into(),
                    flags: 0,
                    path: path.to_string(),
                })
            })
            .collect()
    }
}

impl LayerStore for VmcomputeStore {
    fn name(&self) -> &'static str {
        "vmcompute"
    }

    fn export_layer(&self, layer: &Path, folder: &Path, parents: &[PathBuf]) -> Result<()> {
        let parents = self.layer_descriptors(parents)?;
        let (id, path) = (utf8(layer)?, utf8(folder)?);
        let call = LayerCall::Export {
            id,
            path,
            parents: &parents,
        };
        self.call("hcsshim::ExportLayer", call).map(|_| ())
    }

    fn import_layer(&self, layer: &Path, folder: &Path, parents: &[PathBuf]) -> Result<()> {
        let parents = self.layer_descriptors(parents)?;
        let (id, path) = (utf8(layer)?, utf8(folder)?);
        let call = LayerCall::Import {
            id,
            path,
            parents: &parents,
        };
        self.call("hcsshim::ImportLayer", call).map(|_| ())
    }

    fn apply_tombstones(&self, fs: &dyn LayerFs, layer: &Path, names: &[LayerPath]) -> Result<()> {
        for name in names {
            match fs.remove(&name.under(layer)) {
                // Already gone: the deletion is what was asked for.
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
        }
        Ok(())
    }

    fn prepares_images(&self) -> bool {
        true
    }

    fn process_base_layer(&self, layer: &Path) -> Result<()> {
        let path = utf8(layer)?;
        self.call("ProcessBaseImage", LayerCall::ProcessBaseImage { path })
            .map(|_| ())
            .map_err(|e| match e {
                Error::Hcs(h) => Error::Hcs(h.with_extra(path.to_string())),
                other => other,
            })
    }

    fn process_utility_vm_image(&self, uvm: &Path) -> Result<()> {
        let path = utf8(uvm)?;
        self.call(
            "ProcessUtilityImage",
            LayerCall::ProcessUtilityImage { path },
        )
        .map(|_| ())
        .map_err(|e| match e {
            Error::Hcs(h) => Error::Hcs(h.with_extra(path.to_string())),
            other => other,
        })
    }

    fn begin_export(&self, layer: &Path, parents: &[PathBuf]) -> Result<()> {
        let id = utf8(layer)?;
        self.call("hcsshim::ActivateLayer", LayerCall::Activate { id })?;
        let prepared = self.layer_descriptors(parents).and_then(|descs| {
            self.call(
                "hcsshim::PrepareLayer",
                LayerCall::Prepare {
                    id,
                    parents: &descs,
                },
            )?;
            self.call("hcsshim::UnprepareLayer", LayerCall::Unprepare { id })
        });
        if let Err(e) = prepared {
            if let Err(d) = self.call("hcsshim::DeactivateLayer", LayerCall::Deactivate { id }) {
                tracing::warn!(layer = id, "deactivating after a failed prepare: {d}");
            }
            return Err(e);
        }
        Ok(())
    }

    fn end_export(&self, layer: &Path) -> Result<()> {
        let id = utf8(layer)?;
        self.call("hcsshim::DeactivateLayer", LayerCall::Deactivate { id })
            .map(|_| ())
    }

    fn streaming(&self) -> Option<Arc<dyn StreamingExports>> {
        self.streaming.clone()
    }

    fn descriptors(&self, parents: &[PathBuf]) -> Result<Vec<LayerDescriptor>> {
        self.layer_descriptors(parents)
    }

    fn temp_dir(&self, _layer: &Path) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("hcs")
            .tempdir()
            .map_err(|e| Error::io("create", std::env::temp_dir(), e))
    }
}

/// A layer folder on a host without vmcompute.dll (see the module docs).
#[derive(Debug, Clone)]
pub struct FolderStore {
    fs: Arc<dyn LayerFs>,
}

impl FolderStore {
    /// Over a layer file system.
    pub fn new(fs: Arc<dyn LayerFs>) -> Self {
        Self { fs }
    }
}

impl LayerStore for FolderStore {
    fn name(&self) -> &'static str {
        "folder"
    }

    fn export_layer(&self, layer: &Path, folder: &Path, _parents: &[PathBuf]) -> Result<()> {
        super::legacy::folder::export_transport(self.fs.as_ref(), layer, folder)
    }

    fn import_layer(&self, layer: &Path, folder: &Path, _parents: &[PathBuf]) -> Result<()> {
        super::legacy::folder::import_transport(self.fs.as_ref(), layer, folder)
    }

    fn apply_tombstones(&self, _fs: &dyn LayerFs, layer: &Path, names: &[LayerPath]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let p = layer.join(TOMBSTONES_FILE);
        let exists = p.exists();
        let text = super::legacy::format_tombstones(names)?;
        // An existing list already has its header line.
        let text = if exists {
            text.split_once("\r\n")
                .map_or("", |(_, rest)| rest)
                .to_string()
        } else {
            text
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| Error::io("open", &p, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &p, e))
    }

    fn prepares_images(&self) -> bool {
        false
    }

    fn process_base_layer(&self, layer: &Path) -> Result<()> {
        Err(Error::Unsupported(format!(
            "ProcessBaseImage of {}: preparing a base layer for use needs vmcompute.dll",
            layer.display()
        )))
    }

    fn process_utility_vm_image(&self, uvm: &Path) -> Result<()> {
        Err(Error::Unsupported(format!(
            "ProcessUtilityImage of {}: preparing a utility VM image needs vmcompute.dll",
            uvm.display()
        )))
    }

    fn begin_export(&self, _layer: &Path, _parents: &[PathBuf]) -> Result<()> {
        // A folder is read as it is: there is no volume to mount or filter to initialise.
        Ok(())
    }

    fn end_export(&self, _layer: &Path) -> Result<()> {
        // Nothing was mounted by begin_export.
        Ok(())
    }

    fn streaming(&self) -> Option<Arc<dyn StreamingExports>> {
        None
    }

    fn descriptors(&self, _parents: &[PathBuf]) -> Result<Vec<LayerDescriptor>> {
        Err(Error::Unsupported(
            "layer descriptors need vmcompute.dll's NameToGuid".into(),
        ))
    }

    fn temp_dir(&self, layer: &Path) -> Result<tempfile::TempDir> {
        // Beside the layer, on the same file system (and so with the same xattr support).
        let parent = layer
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        tempfile::Builder::new()
            .prefix(".wclayer-")
            .tempdir_in(parent)
            .map_err(|e| Error::io("create a temporary folder in", parent, e))
    }
}
