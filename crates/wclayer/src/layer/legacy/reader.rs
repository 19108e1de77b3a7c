//! Reading a transport-format folder (hcsshim's `legacyLayerReader`).
//!
//! The folder is walked as `filepath.Walk` would (parents first, names in byte order);
//! after each directory come the tombstones listed for it. Two deliberate differences from
//! the reference: tombstones whose directory is not in the folder are returned at the end
//! instead of being dropped, and the size of a sparse file is its real size (the reference
//! reports 0 and loses the content).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{open_transport, parse_tombstones, MAX_TOMBSTONES_FILE};
use crate::backup::{
    BackupStreamReader, BACKUP_DATA, BACKUP_SPARSE_BLOCK, STREAM_SPARSE_ATTRIBUTE,
};
use crate::backuptar::RewindRead;
use crate::error::{Error, Result};
use crate::fs::{walk, BackupSource, LayerFs, LinkInfo};
use crate::layer::{LayerEntry, LayerReader};
use crate::layout::{LayerPath, FILES_PATH, HIVES_PATH, TOMBSTONES_FILE, WCIDIRS_SUFFIX};

enum Item {
    Path {
        rel: String,
        is_dir: bool,
        size: u64,
    },
    Tombstone(LayerPath),
}

enum Current {
    None,
    /// A `Files\` transport file, positioned after its attributes.
    Transport {
        file: File,
        path: PathBuf,
    },
    /// A real file read through the backup APIs.
    Real {
        stream: Box<dyn BackupSource>,
        path: PathBuf,
    },
}

/// Reads a transport folder; removes it on close when it owns it.
pub struct LegacyLayerReader {
    fs: Arc<dyn LayerFs>,
    root: PathBuf,
    temp: Option<tempfile::TempDir>,
    items: std::vec::IntoIter<Item>,
    current: Current,
}

/// The size of the data in a backup stream: the data stream's, or for a sparse file the end
/// of its last block.
fn backup_stream_size(r: impl Read) -> Result<u64> {
    let mut br = BackupStreamReader::new(r);
    let mut size = None;
    let mut sparse = false;
    while let Some(h) = br.next_header()? {
        match h.id {
            BACKUP_DATA if size.is_none() => {
                size = Some(h.size);
                sparse = h.attributes & STREAM_SPARSE_ATTRIBUTE != 0 && h.size == 0;
                if !sparse {
                    break;
                }
            }
            BACKUP_SPARSE_BLOCK if sparse => {
                let end = h.offset.saturating_add(h.size);
                size = Some(size.unwrap_or(0).max(end));
            }
            _ if sparse => break,
            _ => {}
        }
    }
    Ok(size.unwrap_or(0))
}

impl LegacyLayerReader {
    /// Reads the folder `dir` and removes it on close.
    pub fn new(fs: Arc<dyn LayerFs>, dir: tempfile::TempDir) -> Result<Self> {
        let root = dir.path().to_path_buf();
        let mut r = Self::open(fs, &root)?;
        r.temp = Some(dir);
        Ok(r)
    }

    /// Reads the folder `root`, leaving it in place.
    pub fn open(fs: Arc<dyn LayerFs>, root: &Path) -> Result<Self> {
        let tpath = root.join(TOMBSTONES_FILE);
        let tf = fs.open_file(&tpath)?;
        let mut text = Vec::new();
        tf.take(MAX_TOMBSTONES_FILE + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::io("read", &tpath, e))?;
        if text.len() as u64 > MAX_TOMBSTONES_FILE {
            return Err(Error::InvalidLayer(format!(
                "{} is larger than {MAX_TOMBSTONES_FILE} bytes",
                tpath.display()
            )));
        }
        let mut by_dir: BTreeMap<String, Vec<LayerPath>> = BTreeMap::new();
        for t in parse_tombstones(&text)? {
            let dir = t
                .parent()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            by_dir.entry(dir).or_default().push(t);
        }
        let skip = |rel: &str, is_dir: bool| {
            rel == TOMBSTONES_FILE
                || rel.ends_with(WCIDIRS_SUFFIX)
                || (is_dir && rel.eq_ignore_ascii_case(r"Files\$Recycle.Bin"))
        };
        let mut items = Vec::new();
        for e in walk(fs.as_ref(), root, "", &skip)? {
            let dir_rel = e.is_dir.then(|| e.rel.clone());
            items.push(Item::Path {
                rel: e.rel,
                is_dir: e.is_dir,
                size: e.size,
            });
            if let Some(ts) = dir_rel.and_then(|d| by_dir.remove(&d)) {
                items.extend(ts.into_iter().map(Item::Tombstone));
            }
        }
        items.extend(by_dir.into_values().flatten().map(Item::Tombstone));
        Ok(Self {
            fs,
            root: root.to_path_buf(),
            temp: None,
            items: items.into_iter(),
            current: Current::None,
        })
    }

    fn open_entry(&mut self, rel: String, is_dir: bool, size: u64) -> Result<LayerEntry> {
        let p = LayerPath::parse(&rel)?;
        if p.has_prefix(FILES_PATH) {
            let path = if is_dir {
                p.with_suffix(WCIDIRS_SUFFIX).under(&self.root)
            } else {
                p.under(&self.root)
            };
            let (info, mut file) = open_transport(self.fs.as_ref(), &path)?;
            let size = if is_dir {
                0
            } else {
                let s = backup_stream_size(&mut file)
                    .map_err(|e| Error::InvalidLayer(format!("{}: {e}", path.display())))?;
                file.seek(SeekFrom::Start(4))
                    .map_err(|e| Error::io("seek", &path, e))?;
                s
            };
            self.current = Current::Transport { file, path };
            return Ok(LayerEntry {
                name: rel,
                size,
                info: Some(info),
            });
        }
        let path = p.under(&self.root);
        let mut info = self.fs.basic_info(&path)?;
        let stream = self.fs.backup(&path, false)?;
        if rel == HIVES_PATH || rel == FILES_PATH {
            // The import gives these folders arbitrary times: use System_Delta's, as the
            // reference does (when the layer has it).
            let delta = self.root.join(HIVES_PATH).join("System_Delta");
            if self.fs.stat(&delta)?.is_some() {
                let attrs = info.file_attributes;
                info = self.fs.basic_info(&delta)?;
                info.file_attributes = attrs;
            }
        }
        // Outside Files the import resets creation and access times.
        info.creation_time = info.last_write_time;
        info.last_access_time = info.last_write_time;
        self.current = Current::Real { stream, path };
        Ok(LayerEntry {
            name: rel,
            size: if is_dir { 0 } else { size },
            info: Some(info),
        })
    }
}

impl Read for LegacyLayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.current {
            Current::None => Ok(0),
            Current::Transport { file, .. } => file.read(buf),
            Current::Real { stream, .. } => stream.read(buf),
        }
    }
}

impl LayerReader for LegacyLayerReader {
    fn next_entry(&mut self) -> Result<Option<LayerEntry>> {
        self.current = Current::None;
        match self.items.next() {
            None => Ok(None),
            Some(Item::Tombstone(t)) => Ok(Some(LayerEntry {
                name: t.as_str().to_string(),
                size: 0,
                info: None,
            })),
            Some(Item::Path { rel, is_dir, size }) => self.open_entry(rel, is_dir, size).map(Some),
        }
    }

    fn link_info(&mut self) -> Result<Option<LinkInfo>> {
        match &self.current {
            Current::None => Err(Error::State("no current file")),
            Current::Transport { path, .. } | Current::Real { path, .. } => {
                self.fs.link_info(path).map(Some)
            }
        }
    }

    fn can_rewind(&self) -> bool {
        true
    }

    fn rewind(&mut self) -> Result<()> {
        match &mut self.current {
            Current::None => Err(Error::State("no current file")),
            Current::Transport { file, path } => file
                .seek(SeekFrom::Start(4))
                .map(|_| ())
                .map_err(|e| Error::io("seek", path.as_path(), e)),
            Current::Real { stream, path } => stream
                .rewind()
                .map_err(|e| Error::io("rewind", path.as_path(), e)),
        }
    }

    fn skip(&mut self, n: u64) -> Result<u64> {
        match &mut self.current {
            Current::None => Err(Error::State("no current file")),
            Current::Transport { file, path } => {
                let mut src = crate::backuptar::SeekRewind::new(&mut *file)
                    .map_err(|e| Error::io("seek", path.as_path(), e))?;
                src.skip(n)
                    .map_err(|e| Error::io("seek", path.as_path(), e))
            }
            Current::Real { stream, path } => stream
                .skip(n)
                .map_err(|e| Error::io("read", path.as_path(), e)),
        }
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.current = Current::None;
        match self.temp.take() {
            Some(t) => {
                let p = t.path().to_path_buf();
                t.close().map_err(|e| Error::io("remove", p, e))
            }
            None => Ok(()),
        }
    }
}
