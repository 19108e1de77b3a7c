//! The file-system boundary of the layer code: what layer readers and writers need from the
//! file system, as a small trait with two implementations.
//!
//! * On Windows (`sys::windows`) it is NTFS through the backup APIs: `BackupRead` and
//!   `BackupWrite` move whole files with their security descriptors, extended attributes,
//!   reparse points and alternate streams, and `FILE_BASIC_INFO` holds times and attributes.
//! * Elsewhere ([`unix`]) a layer folder keeps a file's content as the file's content and
//!   what Linux file systems have no place for — the four Windows times, the attributes, and
//!   the backup stream's other records — in the user extended attribute
//!   [`unix::META_XATTR`] of the same inode (so hard links share it, as on NTFS). A reparse
//!   point is recorded, never made into a real symlink, so nothing below a layer root can
//!   redirect a path.
//!
//! Paths are absolute; callers build them from a root and a
//! [`LayerPath`](crate::layout::LayerPath), which cannot leave the root.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::backuptar::RewindRead;
use crate::error::Result;
use crate::fileinfo::FileBasicInfo;

#[cfg(unix)]
pub mod unix;

/// What `lstat` says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Windows file attributes (a directory has `FILE_ATTRIBUTE_DIRECTORY`).
    pub attributes: u32,
    /// Bytes of the unnamed data stream.
    pub size: u64,
}

impl Stat {
    /// A directory (reparse points included).
    pub fn is_dir(&self) -> bool {
        self.attributes & crate::fileinfo::FILE_ATTRIBUTE_DIRECTORY != 0
    }

    /// A reparse point.
    pub fn is_reparse_point(&self) -> bool {
        self.attributes & crate::fileinfo::FILE_ATTRIBUTE_REPARSE_POINT != 0
    }
}

/// Hard-link identity of a file (`FILE_STANDARD_INFO.NumberOfLinks`, `FILE_ID_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkInfo {
    /// How many names the file has.
    pub links: u32,
    /// The volume.
    pub volume: u64,
    /// The file on that volume.
    pub file_id: u128,
}

/// One name in a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: String,
    /// A directory that is not a reparse point (a walk descends into it).
    pub is_dir: bool,
    /// Bytes of the unnamed data stream.
    pub size: u64,
}

/// A backup stream being written into a file ([`LayerFs::restore`]).
pub trait RestoreWriter: Write + Send {
    /// Completes the restore; a stream cut inside a record is an error.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A file's backup stream ([`LayerFs::backup`]), which can start over.
pub trait BackupSource: RewindRead + Send {}

impl<T: RewindRead + Send> BackupSource for T {}

/// How [`LayerFs::restore`] gets its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Create it; it must not exist (`FILE_CREATE`).
    Create,
    /// Open it; a directory may already exist (`FILE_OPEN` after a mkdir).
    Open,
}

/// The file-system operations of layer readers and writers.
pub trait LayerFs: Send + Sync + fmt::Debug {
    /// Creates a directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> Result<()>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Creates a new plain file for writing (it must not exist).
    fn create_file(&self, path: &Path) -> Result<File>;
    /// Opens a plain file for reading.
    fn open_file(&self, path: &Path) -> Result<File>;
    /// The file's times and attributes.
    fn basic_info(&self, path: &Path) -> Result<FileBasicInfo>;
    /// Sets the file's times and attributes.
    fn set_basic_info(&self, path: &Path, info: &FileBasicInfo) -> Result<()>;
    /// `lstat`: `None` when the path does not exist.
    fn stat(&self, path: &Path) -> Result<Option<Stat>>;
    /// Removes a file or an empty directory.
    fn remove(&self, path: &Path) -> Result<()>;
    /// Removes a file or a directory tree.
    fn remove_all(&self, path: &Path) -> Result<()>;
    /// Makes `new` another name of `existing`.
    fn hard_link(&self, existing: &Path, new: &Path) -> Result<()>;
    /// Creates or opens the file or directory (a directory when `info` says so), sets its
    /// basic info and returns a writer that applies a backup stream to it (`BackupWrite`;
    /// security descriptors only when `security`).
    fn restore(
        &self,
        path: &Path,
        info: &FileBasicInfo,
        disposition: Disposition,
        security: bool,
    ) -> Result<Box<dyn RestoreWriter>>;
    /// The file's backup stream (`BackupRead`; with its security descriptor only when
    /// `security`).
    fn backup(&self, path: &Path, security: bool) -> Result<Box<dyn BackupSource>>;
    /// The file's hard-link identity.
    fn link_info(&self, path: &Path) -> Result<LinkInfo>;
    /// A directory's entries, sorted by name (as `filepath.Walk` visits them).
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;
}

/// This platform's layer file system.
pub fn host() -> Arc<dyn LayerFs> {
    #[cfg(windows)]
    return Arc::new(crate::sys::NtfsFs);
    #[cfg(unix)]
    return Arc::new(unix::XattrFs);
}

/// One visited path of [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// The path relative to the walk's root, `\`-separated.
    pub rel: String,
    /// A directory the walk descended into.
    pub is_dir: bool,
    /// Bytes of the unnamed data stream.
    pub size: u64,
}

/// `filepath.Walk` from `root\start`: the start itself, then everything below it in
/// lexical order, parents before children; reparse points are not followed. `skip` decides
/// (on the relative path) what not to visit — and, for a directory, not to descend into.
pub fn walk(
    fs: &dyn LayerFs,
    root: &Path,
    start: &str,
    skip: &dyn Fn(&str, bool) -> bool,
) -> Result<Vec<WalkEntry>> {
    let mut out = Vec::new();
    let top = if start.is_empty() {
        root.to_path_buf()
    } else {
        crate::layout::LayerPath::parse(start)?.under(root)
    };
    let st = fs.stat(&top)?.ok_or_else(|| {
        crate::error::Error::io("walk", &top, std::io::ErrorKind::NotFound.into())
    })?;
    let is_dir = st.is_dir() && !st.is_reparse_point();
    if !start.is_empty() {
        if skip(start, is_dir) {
            return Ok(out);
        }
        out.push(WalkEntry {
            rel: start.to_string(),
            is_dir,
            size: st.size,
        });
    }
    if is_dir {
        walk_into(fs, &top, start, skip, &mut out)?;
    }
    Ok(out)
}

fn walk_into(
    fs: &dyn LayerFs,
    dir: &Path,
    rel: &str,
    skip: &dyn Fn(&str, bool) -> bool,
    out: &mut Vec<WalkEntry>,
) -> Result<()> {
    for e in fs.read_dir(dir)? {
        let child = if rel.is_empty() {
            e.name.clone()
        } else {
            format!("{rel}\\{}", e.name)
        };
        if skip(&child, e.is_dir) {
            continue;
        }
        out.push(WalkEntry {
            rel: child.clone(),
            is_dir: e.is_dir,
            size: e.size,
        });
        if e.is_dir {
            walk_into(fs, &dir.join(&e.name), &child, skip, out)?;
        }
    }
    Ok(())
}
