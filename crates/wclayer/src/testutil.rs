//! Test helpers: Windows layer tars built and read with the `tar` crate directly (not with
//! this crate's tar code, so round trips are checked against an independent reader), and
//! layer hosts over a temporary directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;

use crate::backuptar::mode;
use crate::layer::{FolderStore, LayerStore, Layers};

/// One tar entry, as written or read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ent {
    pub name: String,
    pub typeflag: u8,
    pub linkname: String,
    pub mode: u32,
    pub pax: BTreeMap<String, Vec<u8>>,
    pub data: Vec<u8>,
}

pub const T_MTIME: &str = "1600000000.1234567";
pub const T_ATIME: &str = "1600000100.5";
pub const T_CTIME: &str = "1600000200";
pub const T_BTIME: &str = "1500000000.0000001";

/// A self-relative security descriptor (owner SYSTEM, no ACLs).
pub fn sd() -> Vec<u8> {
    let mut b = vec![
        1, 0, 0x04, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    b.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
    b
}

fn b64(b: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(b)
        .into_bytes()
}

fn base_pax(attrs: u32) -> BTreeMap<String, Vec<u8>> {
    let mut p = BTreeMap::new();
    p.insert("mtime".into(), T_MTIME.into());
    p.insert("atime".into(), T_ATIME.into());
    p.insert("ctime".into(), T_CTIME.into());
    p.insert("LIBARCHIVE.creationtime".into(), T_BTIME.into());
    p.insert("MSWINDOWS.fileattr".into(), attrs.to_string().into_bytes());
    p.insert("MSWINDOWS.rawsd".into(), b64(&sd()));
    p
}

pub fn dir(name: &str) -> Ent {
    Ent {
        name: name.into(),
        typeflag: b'5',
        linkname: String::new(),
        mode: mode::DIR,
        pax: base_pax(0x10),
        data: Vec::new(),
    }
}

pub fn file(name: &str, data: &[u8]) -> Ent {
    Ent {
        name: name.into(),
        typeflag: b'0',
        linkname: String::new(),
        mode: mode::REG,
        pax: base_pax(0x20),
        data: data.to_vec(),
    }
}

/// A file with an extended attribute.
pub fn file_with_ea(name: &str, data: &[u8], ea: &str, value: &[u8]) -> Ent {
    let mut e = file(name, data);
    e.pax.insert(format!("MSWINDOWS.xattr.{ea}"), b64(value));
    e
}

/// An alternate data stream entry of `file`.
pub fn ads(file: &str, stream: &str, data: &[u8]) -> Ent {
    let mut pax = BTreeMap::new();
    pax.insert("mtime".into(), T_MTIME.into());
    pax.insert("atime".into(), T_ATIME.into());
    pax.insert("ctime".into(), T_CTIME.into());
    Ent {
        name: format!("{file}:{stream}"),
        typeflag: b'0',
        linkname: String::new(),
        mode: mode::REG,
        pax,
        data: data.to_vec(),
    }
}

pub fn symlink(name: &str, target: &str) -> Ent {
    Ent {
        name: name.into(),
        typeflag: b'2',
        linkname: target.into(),
        mode: mode::LNK,
        pax: base_pax(0x420),
        data: Vec::new(),
    }
}

/// A junction: a directory reparse point.
pub fn junction(name: &str, target: &str) -> Ent {
    let mut e = symlink(name, target);
    e.mode = mode::DIR | mode::LNK;
    e.pax.insert(
        "MSWINDOWS.fileattr".into(),
        0x410u32.to_string().into_bytes(),
    );
    e.pax.insert("MSWINDOWS.mountpoint".into(), b"1".to_vec());
    e
}

/// A hard link entry as the export writes it.
pub fn link(name: &str, target: &str) -> Ent {
    let mut pax = BTreeMap::new();
    pax.insert("mtime".into(), T_MTIME.into());
    Ent {
        name: name.into(),
        typeflag: b'1',
        linkname: target.into(),
        mode: mode::REG,
        pax,
        data: Vec::new(),
    }
}

pub fn whiteout(name: &str) -> Ent {
    let (d, b) = name.rsplit_once('/').unwrap_or(("", name));
    let name = if d.is_empty() {
        format!(".wh.{b}")
    } else {
        format!("{d}/.wh.{b}")
    };
    Ent {
        name,
        typeflag: b'0',
        linkname: String::new(),
        mode: 0,
        pax: BTreeMap::new(),
        data: Vec::new(),
    }
}

/// Writes the entries as a PAX tar with the `tar` crate.
pub fn build_tar(ents: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in ents {
        let mut pax: Vec<(String, Vec<u8>)> = e.pax.clone().into_iter().collect();
        let mut h = tar::Header::new_ustar();
        let fits = |s: &str| s.len() <= 100 && s.is_ascii();
        if fits(&e.name) {
            h.as_ustar_mut().unwrap().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        } else {
            pax.push(("path".into(), e.name.clone().into_bytes()));
        }
        if fits(&e.linkname) {
            h.as_ustar_mut().unwrap().linkname[..e.linkname.len()]
                .copy_from_slice(e.linkname.as_bytes());
        } else {
            pax.push(("linkpath".into(), e.linkname.clone().into_bytes()));
        }
        h.set_mode(e.mode);
        h.set_size(e.data.len() as u64);
        h.set_entry_type(tar::EntryType::new(e.typeflag));
        let secs = e
            .pax
            .get("mtime")
            .and_then(|v| std::str::from_utf8(v).ok()?.split('.').next()?.parse().ok())
            .unwrap_or(0);
        h.set_mtime(secs);
        h.set_cksum();
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Reads a tar with the `tar` crate (PAX applied); PAX `path`/`linkpath` end up in the names.
pub fn read_tar(bytes: &[u8]) -> Vec<Ent> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut pax = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                let k = x.key().unwrap().to_string();
                if k != "path" && k != "linkpath" {
                    pax.insert(k, x.value_bytes().to_vec());
                }
            }
        }
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let linkname = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let typeflag = e.header().entry_type().as_byte();
        let mode = e.header().mode().unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Ent {
            name,
            typeflag,
            linkname,
            mode,
            pax,
            data,
        });
    }
    out
}

/// Entries sorted as a layer walk visits them (component by component).
pub fn walk_sorted(mut ents: Vec<Ent>) -> Vec<Ent> {
    ents.sort_by(|a, b| {
        let k = |e: &Ent| -> Vec<Vec<u8>> {
            e.name.split('/').map(|c| c.as_bytes().to_vec()).collect()
        };
        k(a).cmp(&k(b))
    });
    ents
}

/// A layer host on the Linux file system with a folder store.
pub fn folder_layers() -> Layers {
    let fs = crate::fs::host();
    Layers {
        store: Arc::new(FolderStore::new(fs.clone())) as Arc<dyn LayerStore>,
        fs,
    }
}

/// Every file below `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                go(root, &p, out);
            }
        }
    }
    go(root, root, &mut out);
    out
}
