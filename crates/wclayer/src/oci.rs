//! OCI layer tars of Windows images ↔ layers (hcsshim's `pkg/ociwclayer`).
//!
//! Import reads the tar entry by entry into a [`LayerWriter`]: `.wh.<name>` entries are
//! deletions, hard-link entries become links, everything else is added with its basic info
//! and backup stream (alternate data streams ride along, see [`crate::backuptar`]); the
//! utility VM's boot configuration files are also saved to the layer root (`bcd.bak`...) as
//! the reference does, because the import mutates them. Export walks a [`LayerReader`] and
//! writes the entries back, tombstones as whiteouts.
//!
//! Differences from the reference, all on bad or unusual input: every name is checked
//! ([`LayerPath`]: no absolute paths, `..` or stream syntax), entry types a Windows layer
//! cannot hold (devices, FIFOs) and opaque whiteouts are refused instead of being written as
//! empty files, and a failed import removes what it wrote, so no partial layer is left.
//! Export writes a file with several names once and the other names as hard-link entries
//! (the reference writes each name in full).

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::backuptar::reader::typeflag;
use crate::backuptar::{
    file_info_from_header, mode, write_backup_stream_from_tar_file,
    write_tar_file_from_backup_stream, RewindRead, SeekRewind, TarArchive, TarOut, TarOutHeader,
};
use crate::error::{Error, Result};
use crate::fileinfo::{FileBasicInfo, UnixTime};
use crate::fs::{Disposition, RestoreWriter};
use crate::layer::{LayerReader, LayerWriter, Layers};
use crate::layout::{LayerPath, MUTATED_UTILITY_VM_FILES, UTILITY_VM_FILES_PATH};

/// The whiteout prefix of OCI layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory whiteout (Linux layers only).
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// `ImportLayerFromTar`: imports the layer tar `r` into the folder `path` (created when
/// missing; it must be empty otherwise) on top of `parents` (nearest first, the order
/// vmcompute.dll takes), returning the total size of the layer's files. On failure the folder is left
/// as it was found (removed, or emptied).
pub fn import_layer_from_tar(
    layers: &Layers,
    r: impl Read,
    path: &Path,
    parents: &[PathBuf],
) -> Result<u64> {
    let created = match layers.fs.stat(path)? {
        None => {
            layers.fs.create_dir_all(path)?;
            true
        }
        Some(st) if !st.is_dir() => {
            return Err(Error::InvalidLayer(format!(
                "{} exists and is not a folder",
                path.display()
            )))
        }
        Some(_) => {
            if !layers.fs.read_dir(path)?.is_empty() {
                return Err(Error::InvalidLayer(format!(
                    "layer folder {} is not empty",
                    path.display()
                )));
            }
            false
        }
    };
    let result = import_into(layers, r, path, parents);
    if result.is_err() {
        if let Err(e) = clean_up(layers, path, created) {
            tracing::warn!(layer = %path.display(), "removing a failed import: {e}");
        }
    }
    result
}

fn import_into(layers: &Layers, r: impl Read, path: &Path, parents: &[PathBuf]) -> Result<u64> {
    #[cfg(windows)]
    let _privileges = crate::sys::PrivilegeGuard::enable(&[crate::sys::SE_SECURITY_NAME])?;
    let mut w = layers.new_layer_writer(path, parents)?;
    // A failed write drops the writer without closing it: nothing is imported.
    let n = write_layer_from_tar(layers, r, w.as_mut(), path)?;
    w.close()?;
    Ok(n)
}

fn clean_up(layers: &Layers, path: &Path, created: bool) -> Result<()> {
    if created {
        return layers.fs.remove_all(path);
    }
    for e in layers.fs.read_dir(path)? {
        layers.fs.remove_all(&path.join(&e.name))?;
    }
    Ok(())
}

/// Writes to a layer writer and, for the files the import mutates, to a saved copy too.
struct Tee<'a> {
    layer: &'a mut dyn LayerWriter,
    copy: Option<Box<dyn RestoreWriter>>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.layer.write(buf)?;
        if let Some(c) = &mut self.copy {
            c.write_all(&buf[..n])?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.layer.flush()
    }
}

fn entry_path(name: &str) -> Result<LayerPath> {
    LayerPath::parse(name).map_err(|e| match e {
        Error::InvalidPath { reason, .. } => Error::tar(name, format!("invalid name: {reason}")),
        other => other,
    })
}

/// `writeLayerFromTar`: feeds the tar's entries to `w`; returns the total file size.
pub fn write_layer_from_tar(
    layers: &Layers,
    r: impl Read,
    w: &mut dyn LayerWriter,
    root: &Path,
) -> Result<u64> {
    let mut archive = TarArchive::new(r);
    let mut entries = archive.entries()?;
    let mut next = entries.next_entry()?;
    let mut total = 0u64;
    while let Some((hdr, data)) = next {
        let name = entry_path(&hdr.name)?;
        let base = name.file_name();
        if let Some(rest) = base.strip_prefix(WHITEOUT_PREFIX) {
            if base == OPAQUE_WHITEOUT {
                return Err(Error::tar(
                    &hdr.name,
                    "opaque whiteouts have no meaning in Windows layers",
                ));
            }
            let target = match name.parent() {
                Some(p) => p.join(rest),
                None => LayerPath::parse(rest),
            }
            .map_err(|_| Error::tar(&hdr.name, "whiteout of an invalid name"))?;
            w.remove(target.as_str())?;
            drop(data);
            next = entries.next_entry()?;
            continue;
        }
        match hdr.typeflag {
            typeflag::LINK => {
                let target = entry_path(&hdr.linkname)?;
                w.add_link(name.as_str(), target.as_str())?;
                drop(data);
                next = entries.next_entry()?;
            }
            typeflag::REG | typeflag::REG_A | typeflag::DIR | typeflag::SYMLINK => {
                let (_, size, info) = file_info_from_header(&hdr)?;
                w.add(name.as_str(), &info)?;
                let copy = match saved_copy_name(&name) {
                    Some(file) => Some(layers.fs.restore(
                        &root.join(file),
                        &FileBasicInfo {
                            file_attributes: 0,
                            ..info
                        },
                        Disposition::Create,
                        false,
                    )?),
                    None => None,
                };
                let mut tee = Tee { layer: w, copy };
                next = write_backup_stream_from_tar_file(&mut tee, &mut entries, &hdr, data)?;
                if let Some(c) = tee.copy.take() {
                    c.finish()?;
                }
                total += size;
            }
            other => {
                return Err(Error::tar(
                    &hdr.name,
                    format!(
                        "entry type {:?} cannot be part of a Windows layer",
                        other as char
                    ),
                ))
            }
        }
    }
    Ok(total)
}

/// The layer-root file a mutated utility VM file is saved to.
fn saved_copy_name(name: &LayerPath) -> Option<&'static str> {
    let below = name.strip_prefix(UTILITY_VM_FILES_PATH)?;
    MUTATED_UTILITY_VM_FILES
        .iter()
        .find(|(m, _)| *m == below.as_str())
        .map(|(_, saved)| *saved)
}

/// `ExportLayerToTar`: writes the layer `path` (on top of `parents`, nearest first) as an OCI
/// layer tar to `w`.
pub fn export_layer_to_tar<W: Write>(
    layers: &Layers,
    w: W,
    path: &Path,
    parents: &[PathBuf],
) -> Result<W> {
    layers.store.begin_export(path, parents)?;
    let result = layers
        .new_layer_reader(path, parents)
        .and_then(|mut reader| {
            let written = write_tar_from_layer(reader.as_mut(), w);
            let closed = reader.close();
            let w = written?;
            closed.map(|_| w)
        });
    if let Err(e) = layers.store.end_export(path) {
        // The tar is complete; the reference ignores this error too, but say it.
        tracing::warn!(layer = %path.display(), "ending the export: {e}");
    }
    result
}

/// Lets the tar conversion start a reader's current entry over.
struct ReaderRewind<'a>(&'a mut dyn LayerReader);

impl Read for ReaderRewind<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl RewindRead for ReaderRewind<'_> {
    fn rewind(&mut self) -> io::Result<()> {
        self.0.rewind().map_err(Error::into_io)
    }

    fn skip(&mut self, n: u64) -> io::Result<u64> {
        self.0.skip(n).map_err(Error::into_io)
    }
}

/// `writeTarFromLayer`: every entry of `r` as tar entries on `w`.
pub fn write_tar_from_layer<W: Write>(r: &mut dyn LayerReader, w: W) -> Result<W> {
    let mut t = TarOut::new(w);
    let mut first_names: HashMap<crate::fs::LinkInfo, String> = HashMap::new();
    while let Some(e) = r.next_entry()? {
        let name = e.name.replace('\\', "/");
        let Some(info) = e.info else {
            let (dir, base) = match name.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b),
                None => (String::new(), name.as_str()),
            };
            let wh = TarOutHeader {
                name: format!("{dir}{WHITEOUT_PREFIX}{base}"),
                typeflag: typeflag::REG,
                ..Default::default()
            };
            t.append(&wh, io::empty())?;
            continue;
        };
        if !info.is_dir() {
            if let Some(li) = r.link_info()?.filter(|li| li.links > 1) {
                // Identity without the link count (it is the same for every name).
                let key = crate::fs::LinkInfo { links: 0, ..li };
                if let Some(first) = first_names.get(&key) {
                    let link = TarOutHeader {
                        name: name.clone(),
                        linkname: first.clone(),
                        typeflag: typeflag::LINK,
                        mode: mode::REG,
                        mtime: Some(UnixTime::from_filetime(info.last_write_time)),
                        ..Default::default()
                    };
                    t.append(&link, io::empty())?;
                    continue;
                }
                first_names.insert(key, name.clone());
            }
        }
        if r.can_rewind() {
            write_tar_file_from_backup_stream(&mut t, &mut ReaderRewind(r), &name, e.size, &info)?;
        } else {
            // A stream that cannot start over is spooled, so metadata after the data (the
            // reference loses it) still reaches the header.
            let mut spool = tempfile::tempfile().map_err(|e| Error::Write {
                what: "spool file",
                err: e,
            })?;
            io::copy(r, &mut spool).map_err(|e| Error::from_io("layer entry", e))?;
            spool.seek(SeekFrom::Start(0)).map_err(|e| Error::Write {
                what: "spool file",
                err: e,
            })?;
            let mut src = SeekRewind::new(spool).map_err(|e| Error::Read {
                what: "spool file",
                err: e,
            })?;
            write_tar_file_from_backup_stream(&mut t, &mut src, &name, e.size, &info)?;
        }
    }
    t.finish()
}

// The round trips run on a Linux layer folder (on Windows they would need NTFS and the
// backup privileges; that side is compiled, not run, in CI).
#[cfg(all(test, unix))]
mod tests;
