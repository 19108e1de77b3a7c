//! Base layers (no parents), read and written in place: `Files\` and `UtilityVM\Files\`
//! hold the files themselves, each restored from or backed up to its backup stream
//! (hcsshim's `baseLayerReader`/`baseLayerWriter`).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{reapply_directory_times, LayerEntry, LayerReader, LayerStore, LayerWriter};
use crate::error::{Error, Result};
use crate::fileinfo::FileBasicInfo;
use crate::fs::{walk, BackupSource, Disposition, LayerFs, LinkInfo, RestoreWriter, WalkEntry};
use crate::layout::{LayerPath, FILES_PATH, UTILITY_VM_FILES_PATH, UTILITY_VM_PATH};

/// The recycle bin is never part of a layer (the reference skips it too).
fn is_recycle_bin(rel: &str, is_dir: bool) -> bool {
    is_dir && rel.eq_ignore_ascii_case(r"Files\$Recycle.Bin")
}

/// Reads a base layer in place.
pub struct BaseLayerReader {
    fs: Arc<dyn LayerFs>,
    root: PathBuf,
    entries: std::vec::IntoIter<WalkEntry>,
    current: Option<(PathBuf, Box<dyn BackupSource>)>,
}

impl BaseLayerReader {
    /// Lists the layer: `Files` and everything below it, then — when `UtilityVM\Files`
    /// exists — `UtilityVM`, `UtilityVM\Files` and everything below that.
    pub fn new(fs: Arc<dyn LayerFs>, root: &Path) -> Result<Self> {
        let skip = |rel: &str, is_dir: bool| is_recycle_bin(rel, is_dir);
        let mut entries = walk(fs.as_ref(), root, FILES_PATH, &skip)?;
        let uvm_files = LayerPath::parse(UTILITY_VM_FILES_PATH)?.under(root);
        if fs.stat(&uvm_files)?.is_some() {
            let only_files = |rel: &str, _is_dir: bool| {
                !(rel == UTILITY_VM_PATH
                    || rel == UTILITY_VM_FILES_PATH
                    || crate::layout::has_path_prefix(rel, UTILITY_VM_FILES_PATH))
            };
            entries.extend(walk(fs.as_ref(), root, UTILITY_VM_PATH, &only_files)?);
        }
        Ok(Self {
            fs,
            root: root.to_path_buf(),
            entries: entries.into_iter(),
            current: None,
        })
    }
}

impl Read for BaseLayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.current {
            Some((_, r)) => r.read(buf),
            None => Ok(0),
        }
    }
}

impl LayerReader for BaseLayerReader {
    fn next_entry(&mut self) -> Result<Option<LayerEntry>> {
        self.current = None;
        let Some(e) = self.entries.next() else {
            return Ok(None);
        };
        let path = LayerPath::parse(&e.rel)?.under(&self.root);
        let info = self.fs.basic_info(&path)?;
        let stream = self.fs.backup(&path, true)?;
        self.current = Some((path, stream));
        Ok(Some(LayerEntry {
            name: e.rel,
            size: if e.is_dir { 0 } else { e.size },
            info: Some(info),
        }))
    }

    fn link_info(&mut self) -> Result<Option<LinkInfo>> {
        match &self.current {
            Some((p, _)) => self.fs.link_info(p).map(Some),
            None => Err(Error::State("no current entry")),
        }
    }

    fn can_rewind(&self) -> bool {
        true
    }

    fn rewind(&mut self) -> Result<()> {
        match &mut self.current {
            Some((p, r)) => r.rewind().map_err(|e| Error::io("rewind", p.as_path(), e)),
            None => Err(Error::State("no current entry")),
        }
    }

    fn skip(&mut self, n: u64) -> Result<u64> {
        match &mut self.current {
            Some((p, r)) => r.skip(n).map_err(|e| Error::io("read", p.as_path(), e)),
            None => Err(Error::State("no current entry")),
        }
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Writes a base layer in place.
pub struct BaseLayerWriter {
    fs: Arc<dyn LayerFs>,
    store: Arc<dyn LayerStore>,
    root: PathBuf,
    current: Option<Box<dyn RestoreWriter>>,
    dirs: Vec<(LayerPath, FileBasicInfo)>,
    has_utility_vm: bool,
    /// The first error; once set, `close` reports it and prepares nothing.
    failed: Option<String>,
}

impl BaseLayerWriter {
    /// A writer into the existing folder `root`.
    pub fn new(fs: Arc<dyn LayerFs>, store: Arc<dyn LayerStore>, root: &Path) -> Self {
        Self {
            fs,
            store,
            root: root.to_path_buf(),
            current: None,
            dirs: Vec::new(),
            has_utility_vm: false,
            failed: None,
        }
    }

    fn close_current(&mut self) -> Result<()> {
        match self.current.take() {
            Some(w) => w.finish(),
            None => Ok(()),
        }
    }

    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

impl Write for BaseLayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = match &mut self.current {
            Some(w) => w.write(buf),
            None => Err(Error::State("write without a current file").into_io()),
        };
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LayerWriter for BaseLayerWriter {
    fn add(&mut self, name: &str, info: &FileBasicInfo) -> Result<()> {
        let r = (|| {
            self.close_current()?;
            let p = LayerPath::parse(name)?;
            if p.as_str() == UTILITY_VM_FILES_PATH {
                self.has_utility_vm = true;
            }
            if info.is_dir() {
                self.dirs.push((p.clone(), *info));
            }
            let w = self
                .fs
                .restore(&p.under(&self.root), info, Disposition::Create, true)?;
            self.current = Some(w);
            Ok(())
        })();
        self.note(r)
    }

    fn add_link(&mut self, name: &str, target: &str) -> Result<()> {
        let r = (|| {
            self.close_current()?;
            let (p, t) = (LayerPath::parse(name)?, LayerPath::parse(target)?);
            self.fs
                .hard_link(&t.under(&self.root), &p.under(&self.root))
        })();
        self.note(r)
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        let r = Err(Error::InvalidLayer(format!(
            "a base layer cannot have tombstones ({name})"
        )));
        self.note(r)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        let r = self.close_current();
        self.note(r)?;
        if let Some(first) = self.failed.take() {
            return Err(Error::WriterFailed(first));
        }
        // Creating children changed the directories' times: set them again.
        reapply_directory_times(self.fs.as_ref(), &self.root, &self.dirs)?;
        if self.store.prepares_images() {
            self.store.process_base_layer(&self.root)?;
            if self.has_utility_vm {
                ensure_not_reparse_point(self.fs.as_ref(), &self.root.join(UTILITY_VM_PATH))?;
                self.store
                    .process_utility_vm_image(&self.root.join(UTILITY_VM_PATH))?;
            }
        }
        Ok(())
    }
}

/// `EnsureNotReparsePointRelative`: the utility VM folder must be a real directory before it
/// is handed to `ProcessUtilityImage`.
pub(crate) fn ensure_not_reparse_point(fs: &dyn LayerFs, path: &Path) -> Result<()> {
    match fs.stat(path)? {
        Some(st) if st.is_reparse_point() => Err(Error::InvalidLayer(format!(
            "{} is a reparse point",
            path.display()
        ))),
        Some(_) => Ok(()),
        None => Err(Error::io("stat", path, io::ErrorKind::NotFound.into())),
    }
}
