//! What `ImportLayer` and `ExportLayer` do, for hosts without vmcompute.dll
//! ([`FolderStore`](crate::layer::FolderStore)): converting between the transport format and
//! a layer folder whose `Files\`, `Hives\` and `UtilityVM\` hold the files themselves (with
//! the Windows metadata the [`LayerFs`] keeps), deletions in the folder's `tombstones.txt`.
//!
//! This is not what vmcompute.dll does inside (that is not documented); it is the inverse
//! pair the readers and writers need: importing a transport folder and exporting it again
//! gives back the same entries, hard links included.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use super::writer::copy;
use super::{format_tombstones, open_transport, stripped};
use crate::error::{Error, Result};
use crate::fileinfo::{FileBasicInfo, FILE_ATTRIBUTE_DIRECTORY};
use crate::fs::{walk, Disposition, LayerFs};
use crate::layout::{
    LayerPath, FILES_PATH, HIVES_PATH, TOMBSTONES_FILE, UTILITY_VM_PATH, WCIDIRS_SUFFIX,
};

fn restore_from(
    fs: &dyn LayerFs,
    dst: &Path,
    info: &FileBasicInfo,
    security: bool,
    mut stream: impl Read,
) -> Result<()> {
    let mut w = fs.restore(dst, info, Disposition::Create, security)?;
    copy(&mut stream, &mut w, dst)?;
    w.finish()
}

/// Imports the transport folder `folder` into the layer folder `layer`.
pub fn import_transport(fs: &dyn LayerFs, layer: &Path, folder: &Path) -> Result<()> {
    let skip = |rel: &str, _: bool| rel == TOMBSTONES_FILE || rel.ends_with(WCIDIRS_SUFFIX);
    for e in walk(fs, folder, "", &skip)? {
        let p = LayerPath::parse(&e.rel)?;
        let (src, dst) = (p.under(folder), p.under(layer));
        let hives = p.has_prefix(HIVES_PATH);
        if e.is_dir {
            let side = p.with_suffix(WCIDIRS_SUFFIX).under(folder);
            if fs.stat(&side)?.is_none() {
                let info = fs.basic_info(&src)?;
                restore_from(fs, &dst, &info, true, std::io::empty())?;
            } else if hives {
                let mut info = fs.basic_info(&side)?;
                info.file_attributes = FILE_ATTRIBUTE_DIRECTORY;
                restore_from(fs, &dst, &info, false, fs.backup(&side, false)?)?;
            } else {
                let (mut info, f) = open_transport(fs, &side)?;
                info.file_attributes |= FILE_ATTRIBUTE_DIRECTORY;
                restore_from(fs, &dst, &info, true, f)?;
            }
        } else if hives {
            let info = fs.basic_info(&src)?;
            restore_from(fs, &dst, &info, false, fs.backup(&src, false)?)?;
        } else {
            let (info, f) = open_transport(fs, &src)?;
            restore_from(fs, &dst, &info, true, f)?;
        }
    }
    Ok(())
}

fn write_transport(fs: &dyn LayerFs, src: &Path, dst: &Path) -> Result<()> {
    let info = fs.basic_info(src)?;
    let mut f = fs.create_file(dst)?;
    f.write_all(&info.file_attributes.to_le_bytes())
        .map_err(|e| Error::io("write", dst, e))?;
    let mut stream = fs.backup(src, true)?;
    copy(&mut stream, &mut f, dst)?;
    drop(f);
    fs.set_basic_info(dst, &stripped(&info))
}

/// Exports the layer folder `layer` as a transport folder into `folder`.
pub fn export_transport(fs: &dyn LayerFs, layer: &Path, folder: &Path) -> Result<()> {
    let top = [FILES_PATH, HIVES_PATH, UTILITY_VM_PATH];
    let skip = |rel: &str, _: bool| !rel.contains('\\') && !top.contains(&rel);
    let mut linked: HashMap<(u64, u128), std::path::PathBuf> = HashMap::new();
    for e in walk(fs, layer, "", &skip)? {
        let p = LayerPath::parse(&e.rel)?;
        let (src, dst) = (p.under(layer), p.under(folder));
        if p.has_prefix(FILES_PATH) {
            let info = fs.basic_info(&src)?;
            if info.is_dir() {
                fs.create_dir(&dst)?;
                write_transport(fs, &src, &p.with_suffix(WCIDIRS_SUFFIX).under(folder))?;
                continue;
            }
            let li = fs.link_info(&src)?;
            if li.links > 1 {
                if let Some(first) = linked.get(&(li.volume, li.file_id)) {
                    fs.hard_link(first, &dst)?;
                    continue;
                }
                linked.insert((li.volume, li.file_id), dst.clone());
            }
            write_transport(fs, &src, &dst)?;
        } else {
            let security = !p.has_prefix(HIVES_PATH);
            let info = fs.basic_info(&src)?;
            restore_from(fs, &dst, &info, security, fs.backup(&src, security)?)?;
        }
    }
    let t = layer.join(TOMBSTONES_FILE);
    let text = match fs.stat(&t)? {
        Some(_) => {
            let mut b = Vec::new();
            fs.open_file(&t)?
                .read_to_end(&mut b)
                .map_err(|e| Error::io("read", &t, e))?;
            b
        }
        None => format_tombstones(&[])?.into_bytes(),
    };
    let out = folder.join(TOMBSTONES_FILE);
    let mut f = fs.create_file(&out)?;
    f.write_all(&text).map_err(|e| Error::io("write", &out, e))
}
