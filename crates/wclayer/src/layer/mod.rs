//! Reading and writing layers file by file (hcsshim's `NewLayerReader` / `NewLayerWriter`):
//! a [`LayerReader`] hands out a layer's entries, each as its basic info and its Win32 backup
//! stream; a [`LayerWriter`] takes them. Which implementation serves a layer follows the
//! reference:
//!
//! * a base layer (no parents) is read and written in place ([`base`]), file by file through
//!   the backup APIs, then prepared with `ProcessBaseImage`/`ProcessUtilityImage`;
//! * a layer with parents goes through the streaming exports when vmcompute.dll has them
//!   ([`filter`]), otherwise through the transport format in a temporary folder ([`legacy`]):
//!   `ExportLayer` then reading the folder, or writing the folder then `ImportLayer`,
//!   tombstones, hard links, directory times and the utility VM preparation.
//!
//! The host side is injected: a [`LayerFs`] (the file system) and a [`LayerStore`] (the
//! layer operations of vmcompute.dll). [`Layers::host`] picks the real ones; on Linux that is
//! a layer folder whose store converts the transport format itself ([`store::FolderStore`]),
//! which is how the whole path runs in tests.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::fileinfo::FileBasicInfo;
use crate::fs::{LayerFs, LinkInfo};

pub mod base;
pub mod filter;
pub mod legacy;
pub mod store;

pub use store::{FolderStore, LayerStore, VmcomputeStore};

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Path inside the layer, `\`-separated (`Files\Windows\notepad.exe`).
    pub name: String,
    /// Bytes of the unnamed data stream.
    pub size: u64,
    /// Times and attributes; `None` for a tombstone (the file was deleted).
    pub info: Option<FileBasicInfo>,
}

/// `LayerReader`: [`LayerReader::next_entry`], then the entry's backup stream through
/// [`Read`].
pub trait LayerReader: Read + Send {
    /// Advances to the next entry; `None` at the end.
    fn next_entry(&mut self) -> Result<Option<LayerEntry>>;
    /// `LinkInfo`: the current entry's hard-link identity, when the reader can tell.
    fn link_info(&mut self) -> Result<Option<LinkInfo>>;
    /// Whether [`LayerReader::rewind`] works.
    fn can_rewind(&self) -> bool;
    /// Starts the current entry's backup stream over.
    fn rewind(&mut self) -> Result<()>;
    /// Skips up to `n` bytes of the current entry's backup stream (by seeking where the
    /// reader can), returning how many were skipped.
    fn skip(&mut self, n: u64) -> Result<u64> {
        crate::backuptar::from_backup::skip_by_reading(self, n)
            .map_err(|e| crate::Error::from_io("layer entry", e))
    }
    /// Finishes reading and releases what the reader holds (temporary folders included).
    fn close(self: Box<Self>) -> Result<()>;
}

/// `LayerWriter`: entries are added in order (parents first); after
/// [`LayerWriter::add`] the entry's backup stream goes through [`Write`].
pub trait LayerWriter: Write + Send {
    /// Adds a file or directory.
    fn add(&mut self, name: &str, info: &FileBasicInfo) -> Result<()>;
    /// Adds a hard link to a file already in this layer or in a parent.
    fn add_link(&mut self, name: &str, target: &str) -> Result<()>;
    /// Records the deletion of a file of a parent layer.
    fn remove(&mut self, name: &str) -> Result<()>;
    /// Completes the layer. An error leaves a partial layer behind for the caller to remove.
    fn close(self: Box<Self>) -> Result<()>;
}

/// The host side of layer reading and writing.
#[derive(Clone)]
pub struct Layers {
    /// The file system.
    pub fs: Arc<dyn LayerFs>,
    /// The layer operations.
    pub store: Arc<dyn LayerStore>,
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layers")
            .field("fs", &self.fs)
            .field("store", &self.store.name())
            .finish()
    }
}

impl Layers {
    /// This host's: NTFS and vmcompute.dll on Windows; a Linux layer folder elsewhere.
    pub fn host() -> Result<Self> {
        #[cfg(windows)]
        let store: Arc<dyn LayerStore> = Arc::new(VmcomputeStore::host()?);
        #[cfg(not(windows))]
        let store: Arc<dyn LayerStore> = Arc::new(FolderStore::new(crate::fs::host()));
        Ok(Self {
            fs: crate::fs::host(),
            store,
        })
    }

    /// `NewLayerReader(path, parentLayerPaths)`.
    pub fn new_layer_reader(
        &self,
        path: &Path,
        parents: &[PathBuf],
    ) -> Result<Box<dyn LayerReader>> {
        if parents.is_empty() {
            return Ok(Box::new(base::BaseLayerReader::new(self.fs.clone(), path)?));
        }
        if let Some(s) = self.store.streaming() {
            let descs = self.store.descriptors(parents)?;
            return Ok(Box::new(filter::FilterLayerReader::begin(s, path, &descs)?));
        }
        let dir = self.store.temp_dir(path)?;
        self.store.export_layer(path, dir.path(), parents)?;
        Ok(Box::new(legacy::LegacyLayerReader::new(
            self.fs.clone(),
            dir,
        )?))
    }

    /// `NewLayerWriter(path, parentLayerPaths)`. The layer folder must exist.
    pub fn new_layer_writer(
        &self,
        path: &Path,
        parents: &[PathBuf],
    ) -> Result<Box<dyn LayerWriter>> {
        if parents.is_empty() {
            return Ok(Box::new(base::BaseLayerWriter::new(
                self.fs.clone(),
                self.store.clone(),
                path,
            )));
        }
        if let Some(s) = self.store.streaming() {
            let descs = self.store.descriptors(parents)?;
            return Ok(Box::new(filter::FilterLayerWriter::begin(s, path, &descs)?));
        }
        Ok(Box::new(legacy::LegacyImport::new(
            self.fs.clone(),
            self.store.clone(),
            path,
            parents,
        )?))
    }
}

/// `reapplyDirectoryTimes`: sets the recorded basic info of directories again, children
/// first, after creating their contents changed the times.
pub(crate) fn reapply_directory_times(
    fs: &dyn LayerFs,
    root: &Path,
    dirs: &[(crate::layout::LayerPath, FileBasicInfo)],
) -> Result<()> {
    for (path, info) in dirs.iter().rev() {
        fs.set_basic_info(&path.under(root), info)?;
    }
    Ok(())
}

// Against Linux layer folders; see `oci`.
#[cfg(all(test, unix))]
mod tests;
