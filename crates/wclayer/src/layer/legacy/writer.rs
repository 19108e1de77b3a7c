//! Writing a layer with parents through the transport format (hcsshim's
//! `legacyLayerWriter` and `legacyLayerWriterWrapper`): entries go to a temporary transport
//! folder (the utility VM straight into the layer), then [`LegacyImport::close`] imports the
//! folder and applies what the import cannot carry — tombstones, hard links, directory times
//! — and prepares the utility VM.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::stripped;
use crate::backup::{BackupStreamReader, BACKUP_REPARSE_DATA};
use crate::error::{Error, Result};
use crate::fileinfo::FileBasicInfo;
use crate::fs::{walk, Disposition, LayerFs, RestoreWriter};
use crate::layer::base::ensure_not_reparse_point;
use crate::layer::{reapply_directory_times, LayerStore, LayerWriter};
use crate::layout::{
    LayerPath, FILES_PATH, HIVES_PATH, MUTATED_UTILITY_VM_FILES, TOMBSTONES_FILE,
    UTILITY_VM_FILES_PATH, UTILITY_VM_PATH, WCIDIRS_SUFFIX,
};

/// A hard link created after the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    /// The new name.
    pub path: LayerPath,
    /// The existing file.
    pub target: LayerPath,
    /// The layer folder holding the target (this layer or a parent).
    pub target_root: PathBuf,
}

enum Current {
    None,
    /// A transport file: attributes then backup stream; its times are set once it is written
    /// (so that writing does not move them).
    Transport {
        file: BufWriter<File>,
        path: PathBuf,
        info: FileBasicInfo,
        /// A directory's `.$wcidirs$`: checked for reparse data when complete.
        dir: Option<PathBuf>,
    },
    /// A real file restored through the backup APIs.
    Restore(Box<dyn RestoreWriter>),
}

/// Writes the transport format into `root` and the utility VM into `dest`.
pub struct LegacyLayerWriter {
    fs: Arc<dyn LayerFs>,
    root: PathBuf,
    dest: PathBuf,
    parents: Vec<PathBuf>,
    current: Current,
    /// Deletions to apply after the import.
    pub tombstones: Vec<LayerPath>,
    /// Whether the layer has a utility VM.
    pub has_utility_vm: bool,
    /// Directories whose times to set again after the import.
    pub changed_dirs: Vec<(LayerPath, FileBasicInfo)>,
    /// Hard links to create after the import.
    pub pending_links: Vec<PendingLink>,
    added: HashSet<LayerPath>,
    /// Directory reparse points: their placeholder directory is recreated only at the end,
    /// so nothing can be written through them meanwhile.
    pending_dirs: Vec<PathBuf>,
}

impl LegacyLayerWriter {
    /// A writer of the transport folder `root` (existing, empty) for the layer `dest`.
    pub fn new(fs: Arc<dyn LayerFs>, root: &Path, dest: &Path, parents: &[PathBuf]) -> Self {
        Self {
            fs,
            root: root.to_path_buf(),
            dest: dest.to_path_buf(),
            parents: parents.to_vec(),
            current: Current::None,
            tombstones: Vec::new(),
            has_utility_vm: false,
            changed_dirs: Vec::new(),
            pending_links: Vec::new(),
            added: HashSet::new(),
            pending_dirs: Vec::new(),
        }
    }

    fn reset(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.current, Current::None) {
            Current::None => Ok(()),
            Current::Restore(w) => w.finish(),
            Current::Transport {
                file,
                path,
                info,
                dir,
            } => {
                let f = file
                    .into_inner()
                    .map_err(|e| Error::io("write", &path, e.into_error()))?;
                drop(f);
                self.fs.set_basic_info(&path, &stripped(&info))?;
                if let Some(dir) = dir {
                    if has_reparse_data(self.fs.as_ref(), &path)? {
                        // Remove the placeholder so the import cannot put files "into" the
                        // reparse point; it comes back at close.
                        self.fs.remove(&dir)?;
                        self.pending_dirs.push(dir);
                    }
                }
                Ok(())
            }
        }
    }

    fn init_utility_vm(&mut self) -> Result<()> {
        if self.has_utility_vm {
            return Ok(());
        }
        self.fs.create_dir(&self.dest.join(UTILITY_VM_PATH))?;
        // Server 2016 has no layering for the utility VM: clone the parent's, with hard
        // links for the files that do not change.
        let parent = self.parents.first().ok_or_else(|| {
            Error::InvalidLayer("a utility VM in a layer without a parent".into())
        })?;
        clone_tree(self.fs.as_ref(), parent, &self.dest, UTILITY_VM_FILES_PATH).map_err(|e| {
            Error::InvalidLayer(format!("cloning the parent utility VM image failed: {e}"))
        })?;
        self.has_utility_vm = true;
        Ok(())
    }

    fn add_inner(&mut self, name: &str, info: &FileBasicInfo) -> Result<()> {
        self.reset()?;
        let p = LayerPath::parse(name)?;
        if info.is_dir() {
            self.changed_dirs.push((p.clone(), *info));
        }
        if p.as_str() == UTILITY_VM_PATH {
            self.init_utility_vm()?;
            // The reference takes no stream for this folder (and fails on one); its
            // metadata is applied to the cloned folder instead of being lost.
            let dst = p.under(&self.dest);
            let w = self.fs.restore(&dst, info, Disposition::Open, true)?;
            self.current = Current::Restore(w);
            return Ok(());
        }
        if p.has_prefix(UTILITY_VM_PATH) {
            if !self.has_utility_vm {
                return Err(Error::InvalidLayer("missing UtilityVM directory".into()));
            }
            if !p.has_prefix(UTILITY_VM_FILES_PATH) && p.as_str() != UTILITY_VM_FILES_PATH {
                return Err(Error::InvalidLayer(format!(
                    "invalid UtilityVM layer entry {p}"
                )));
            }
            let dst = p.under(&self.dest);
            let disposition = if info.is_dir() {
                if let Some(st) = self.fs.stat(&dst)? {
                    // Replace what is there when its kind differs.
                    const KIND: u32 = crate::fileinfo::FILE_ATTRIBUTE_DIRECTORY
                        | crate::fileinfo::FILE_ATTRIBUTE_REPARSE_POINT;
                    if (st.attributes ^ info.file_attributes) & KIND != 0 {
                        self.fs.remove_all(&dst)?;
                    }
                }
                Disposition::Open
            } else {
                // Overwrite any hard link cloned from the parent.
                match self.fs.remove(&dst) {
                    Err(e) if e.is_not_found() => {}
                    other => other?,
                }
                Disposition::Create
            };
            let w = self.fs.restore(&dst, info, disposition, true)?;
            self.current = Current::Restore(w);
            self.added.insert(p);
            return Ok(());
        }

        let mut fname = p.clone();
        let mut dir = None;
        if info.is_dir() {
            let d = p.under(&self.root);
            self.fs.create_dir(&d)?;
            fname = p.with_suffix(WCIDIRS_SUFFIX);
            dir = Some(d);
        }
        let path = fname.under(&self.root);
        if p.has_prefix(HIVES_PATH) {
            // Registry hives are real files, written without security descriptors. (The
            // reference clears their attributes too, which NTFS turns into "archive"; they
            // are kept here. A directory's metadata file is a file: no attributes.)
            let i = if dir.is_some() { stripped(info) } else { *info };
            let w = self.fs.restore(&path, &i, Disposition::Create, false)?;
            self.current = Current::Restore(w);
        } else {
            let f = self.fs.create_file(&path)?;
            let mut file = BufWriter::with_capacity(64 * 1024, f);
            file.write_all(&info.file_attributes.to_le_bytes())
                .map_err(|e| Error::io("write", &path, e))?;
            self.current = Current::Transport {
                file,
                path,
                info: *info,
                dir,
            };
        }
        self.added.insert(p);
        Ok(())
    }

    fn add_link_inner(&mut self, name: &str, target: &str) -> Result<()> {
        self.reset()?;
        let (p, t) = (LayerPath::parse(name)?, LayerPath::parse(target)?);
        // Targets below Files are looked for in the parents (nothing is in the layer before
        // the import); the utility VM is already cloned into the layer.
        let roots: Vec<PathBuf> = if t.has_prefix(FILES_PATH) {
            self.parents.clone()
        } else if t.has_prefix(UTILITY_VM_FILES_PATH) {
            vec![self.dest.clone()]
        } else {
            Vec::new()
        };
        if roots.is_empty() || !(p.has_prefix(FILES_PATH) || p.has_prefix(UTILITY_VM_FILES_PATH)) {
            return Err(Error::InvalidLayer(format!("invalid hard link {p} -> {t}")));
        }
        let target_root = if self.added.contains(&t) {
            self.dest.clone()
        } else {
            let mut found = None;
            for r in roots {
                if self.fs.stat(&t.under(&r))?.is_some() {
                    found = Some(r);
                    break;
                }
            }
            found.ok_or_else(|| {
                Error::InvalidLayer(format!("failed to find link target for {p} -> {t}"))
            })?
        };
        self.pending_links.push(PendingLink {
            path: p.clone(),
            target: t,
            target_root,
        });
        self.added.insert(p);
        Ok(())
    }

    fn remove_inner(&mut self, name: &str) -> Result<()> {
        let p = LayerPath::parse(name)?;
        if p.has_prefix(FILES_PATH) {
            self.tombstones.push(p);
        } else if p.has_prefix(UTILITY_VM_FILES_PATH) {
            self.init_utility_vm()?;
            let dst = p.under(&self.dest);
            // It must exist: a deletion of nothing is a broken layer.
            if self.fs.stat(&dst)?.is_none() {
                return Err(Error::io("remove", &dst, io::ErrorKind::NotFound.into()));
            }
            self.fs.remove_all(&dst)?;
        } else {
            return Err(Error::InvalidLayer(format!("invalid tombstone {p}")));
        }
        Ok(())
    }

    /// Completes the transport folder (before the import).
    pub fn finish(&mut self) -> Result<()> {
        self.reset()?;
        let t = self.root.join(TOMBSTONES_FILE);
        if self.fs.stat(&t)?.is_some() {
            // A file of that name in the layer would be read as the list of deletions.
            self.fs.remove(&t)?;
        }
        for d in std::mem::take(&mut self.pending_dirs) {
            self.fs.create_dir(&d)?;
        }
        Ok(())
    }
}

fn has_reparse_data(fs: &dyn LayerFs, transport: &Path) -> Result<bool> {
    let mut f = fs.open_file(transport)?;
    f.seek(SeekFrom::Start(4))
        .map_err(|e| Error::io("seek", transport, e))?;
    let mut br = BackupStreamReader::new(f);
    while let Some(h) = br.next_header()? {
        if h.id == BACKUP_REPARSE_DATA {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `copyFileWithMetadata`: copies a file or directory with its backup stream.
fn copy_with_metadata(fs: &dyn LayerFs, src: &Path, dst: &Path) -> Result<FileBasicInfo> {
    let info = fs.basic_info(src)?;
    let mut r = fs.backup(src, true)?;
    let mut w = fs.restore(dst, &info, Disposition::Create, true)?;
    copy(&mut r, &mut w, dst)?;
    w.finish()?;
    Ok(info)
}

pub(crate) fn copy(r: &mut dyn Read, w: &mut dyn Write, dst: &Path) -> Result<()> {
    io::copy(r, w)
        .map(|_| ())
        .map_err(|e| Error::from_io_write("backup stream", e))
        .map_err(|e| match e {
            Error::Write { err, .. } => Error::io("copy to", dst, err),
            other => other,
        })
}

/// `cloneTree`: clones `src_root\sub` into `dst_root\sub` with hard links, copying
/// directories, reparse points and the files the utility VM import mutates.
pub(crate) fn clone_tree(
    fs: &dyn LayerFs,
    src_root: &Path,
    dst_root: &Path,
    sub: &str,
) -> Result<()> {
    ensure_not_reparse_point(fs, &LayerPath::parse(sub)?.under(src_root))?;
    let mut dirs = Vec::new();
    for e in walk(fs, src_root, sub, &|_, _| false)? {
        let p = LayerPath::parse(&e.rel)?;
        let (src, dst) = (p.under(src_root), p.under(dst_root));
        let st = fs
            .stat(&src)?
            .ok_or_else(|| Error::io("stat", &src, io::ErrorKind::NotFound.into()))?;
        // The reference compares the path from the layer root with names relative to
        // UtilityVM\Files, so it never matches and hard-links the BCD it then mutates; the
        // comparison is made on the right relative path here.
        let mutated = p.strip_prefix(UTILITY_VM_FILES_PATH).is_some_and(|r| {
            MUTATED_UTILITY_VM_FILES
                .iter()
                .any(|(m, _)| *m == r.as_str())
        });
        if st.is_dir() || st.is_reparse_point() || mutated {
            let info = copy_with_metadata(fs, &src, &dst)?;
            if st.is_dir() {
                dirs.push((p, info));
            }
        } else {
            fs.hard_link(&src, &dst)?;
        }
    }
    reapply_directory_times(fs, dst_root, &dirs)
}

impl Write for LegacyLayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.current {
            Current::None => Err(Error::State("write without a current file").into_io()),
            Current::Transport { file, .. } => file.write(buf),
            Current::Restore(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Current::Transport { file, .. } => file.flush(),
            _ => Ok(()),
        }
    }
}

/// A layer being written through the transport format and imported at close.
pub struct LegacyImport {
    writer: LegacyLayerWriter,
    store: Arc<dyn LayerStore>,
    fs: Arc<dyn LayerFs>,
    dest: PathBuf,
    parents: Vec<PathBuf>,
    temp: tempfile::TempDir,
    failed: Option<String>,
}

impl LegacyImport {
    /// Starts writing the layer `path` on top of `parents`.
    pub fn new(
        fs: Arc<dyn LayerFs>,
        store: Arc<dyn LayerStore>,
        path: &Path,
        parents: &[PathBuf],
    ) -> Result<Self> {
        let temp = store.temp_dir(path)?;
        let writer = LegacyLayerWriter::new(fs.clone(), temp.path(), path, parents);
        Ok(Self {
            writer,
            store,
            fs,
            dest: path.to_path_buf(),
            parents: parents.to_vec(),
            temp,
            failed: None,
        })
    }

    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }

    fn import(&mut self) -> Result<()> {
        self.writer.finish()?;
        self.store
            .import_layer(&self.dest, self.temp.path(), &self.parents)?;
        self.store
            .apply_tombstones(self.fs.as_ref(), &self.dest, &self.writer.tombstones)?;
        for l in &self.writer.pending_links {
            let dst = l.path.under(&self.dest);
            match self.fs.remove(&dst) {
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
            self.fs.hard_link(&l.target.under(&l.target_root), &dst)?;
        }
        // Deleting and linking moved the directories' times: put them back.
        reapply_directory_times(self.fs.as_ref(), &self.dest, &self.writer.changed_dirs)?;
        if self.writer.has_utility_vm && self.store.prepares_images() {
            let uvm = self.dest.join(UTILITY_VM_PATH);
            ensure_not_reparse_point(self.fs.as_ref(), &uvm)?;
            self.store.process_utility_vm_image(&uvm)?;
        }
        Ok(())
    }
}

impl Write for LegacyImport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.writer.write(buf);
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl LayerWriter for LegacyImport {
    fn add(&mut self, name: &str, info: &FileBasicInfo) -> Result<()> {
        let r = self.writer.add_inner(name, info);
        self.note(r)
    }

    fn add_link(&mut self, name: &str, target: &str) -> Result<()> {
        let r = self.writer.add_link_inner(name, target);
        self.note(r)
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        let r = self.writer.remove_inner(name);
        self.note(r)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        let result = match self.failed.take() {
            Some(first) => Err(Error::WriterFailed(first)),
            None => self.import(),
        };
        // The transport folder goes whatever happened.
        self.writer.current = Current::None;
        let temp = self.temp.path().to_path_buf();
        if let Err(e) = self.temp.close() {
            tracing::warn!(path = %temp.display(), "removing the transport folder: {e}");
        }
        result
    }
}
