//! A root filesystem held in memory: the merge target of the base and the delta, and the
//! source of every boot file, so each output is written from one sorted, normalized view
//! (paths without `./`, owner root, fixed mtimes) and two builds agree byte for byte.
//!
//! Archives given as input (tar, cpio newc, either gzipped) are untrusted: names are
//! confined (no `..`, no absolute escapes), hard links must point at a file already read,
//! and sizes are bounded.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use crate::error::{Error, Result};

/// Largest single file accepted from an input archive.
pub const MAX_FILE: u64 = 1 << 30;
/// Largest total of file data accepted.
pub const MAX_TOTAL: u64 = 4 << 30;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A symbolic link to the target.
    Symlink(String),
    /// A character device (major, minor).
    Char(u32, u32),
    /// A block device (major, minor).
    Block(u32, u32),
    /// A named pipe.
    Fifo,
}

/// One entry: kind and permission bits (`0o7777`). Owners are always root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
}

/// A file tree keyed by normalized path (`bin/sh`, never `/bin/sh` or `./bin/sh`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Normalizes an archive name: strips `./` and `/` prefixes, drops `.` components and
/// rejects `..`. The root itself is `""`.
pub fn normalize(name: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::Input(format!(
                    "archive entry {name:?} escapes the root"
                )))
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `path` (later entries win, as when archives are extracted in
    /// order), creating missing parent directories with mode 0755.
    pub fn insert(&mut self, path: &str, node: Node) -> Result<()> {
        let path = normalize(path)?;
        if path.is_empty() {
            return Ok(());
        }
        let mut parent = String::new();
        for c in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.nodes.get(&parent) {
                Some(Node {
                    kind: Kind::Dir, ..
                }) => {}
                Some(_) => {
                    return Err(Error::Input(format!(
                        "{path}: parent {parent} is not a directory"
                    )))
                }
                None => {
                    self.nodes.insert(parent.clone(), dir(0o755));
                }
            }
        }
        if node.kind != Kind::Dir {
            // Replacing a directory by a file drops what was under it.
            let prefix = format!("{path}/");
            self.nodes.retain(|k, _| !k.starts_with(&prefix));
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        normalize(path).ok().and_then(|p| self.nodes.get(&p))
    }

    /// Entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Overlays `other` on this tree.
    pub fn merge(&mut self, other: &Tree) -> Result<()> {
        for (p, n) in other.iter() {
            self.insert(p, n.clone())?;
        }
        Ok(())
    }

    /// Reads a tar, tar.gz, cpio (newc) or cpio.gz archive of at most [`MAX_TOTAL`]
    /// bytes of file data.
    pub fn read_archive(bytes: &[u8]) -> Result<Tree> {
        Self::read_archive_limited(bytes, MAX_TOTAL)
    }

    /// [`Tree::read_archive`] with `limit` bytes of (uncompressed) archive and file data.
    pub fn read_archive_limited(bytes: &[u8], limit: u64) -> Result<Tree> {
        let data = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .take(limit.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| Error::Input(format!("gunzip the base archive: {e}")))?;
            if out.len() as u64 > limit {
                return Err(Error::Input(format!(
                    "the base archive unpacks to more than {limit} bytes"
                )));
            }
            out
        } else {
            bytes.to_vec()
        };
        if data.starts_with(b"070701") || data.starts_with(b"070702") {
            read_cpio(&data, limit)
        } else {
            read_tar(&data, limit)
        }
    }

    /// An uncompressed ustar/GNU tar of the tree: sorted, `./`-less names, owner 0:0,
    /// mtime `epoch`.
    pub fn to_tar(&self, epoch: u64) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        for (path, node) in &self.nodes {
            let mut h = tar::Header::new_gnu();
            h.set_mode(node.mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(epoch);
            let io = |e| Error::io(format!("tar {path}"), e);
            match &node.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{path}/"), std::io::empty())
                        .map_err(io)?;
                }
                Kind::File(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice()).map_err(io)?;
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, target).map_err(io)?;
                }
                Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
                    h.set_entry_type(if matches!(node.kind, Kind::Char(..)) {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    });
                    h.set_device_major(*ma).map_err(io)?;
                    h.set_device_minor(*mi).map_err(io)?;
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty()).map_err(io)?;
                }
                Kind::Fifo => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty()).map_err(io)?;
                }
            }
        }
        b.into_inner().map_err(|e| Error::io("finish tar", e))
    }

    /// A cpio newc archive of the tree (as `find . | cpio -o -H newc -R 0:0`): `.` first,
    /// then every entry sorted, owner 0:0, mtime `epoch`, inodes numbered in order.
    pub fn to_cpio(&self, epoch: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let root = Node {
            kind: Kind::Dir,
            mode: 0o755,
        };
        let entries = std::iter::once((".".to_string(), &root))
            .chain(self.nodes.iter().map(|(p, n)| (p.clone(), n)));
        for (ino, (path, node)) in entries.enumerate() {
            let (ftype, data, rdev): (u32, &[u8], (u32, u32)) = match &node.kind {
                Kind::Dir => (libc::S_IFDIR, &[], (0, 0)),
                Kind::File(d) => (libc::S_IFREG, d, (0, 0)),
                Kind::Symlink(t) => (libc::S_IFLNK, t.as_bytes(), (0, 0)),
                Kind::Char(a, b) => (libc::S_IFCHR, &[], (*a, *b)),
                Kind::Block(a, b) => (libc::S_IFBLK, &[], (*a, *b)),
                Kind::Fifo => (libc::S_IFIFO, &[], (0, 0)),
            };
            let size = u32::try_from(data.len())
                .map_err(|_| Error::Input(format!("{path} is too large for cpio")))?;
            let mut w = cpio::newc::Builder::new(&path)
                .ino(ino as u32 + 1)
                .mode(ftype | (node.mode & 0o7777))
                .uid(0)
                .gid(0)
                .nlink(if node.kind == Kind::Dir { 2 } else { 1 })
                .mtime(epoch as u32)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1)
                .write(&mut out, size);
            w.write_all(data)
                .map_err(|e| Error::io(format!("cpio {path}"), e))?;
            w.finish()
                .map_err(|e| Error::io(format!("cpio {path}"), e))?;
        }
        cpio::newc::trailer(&mut out).map_err(|e| Error::io("cpio trailer", e))?;
        Ok(out)
    }
}

/// A directory node.
pub fn dir(mode: u32) -> Node {
    Node {
        kind: Kind::Dir,
        mode,
    }
}

/// A regular file node.
pub fn file(data: Vec<u8>, mode: u32) -> Node {
    Node {
        kind: Kind::File(data),
        mode,
    }
}

/// A symlink node.
pub fn symlink(target: &str) -> Node {
    Node {
        kind: Kind::Symlink(target.to_string()),
        mode: 0o777,
    }
}

/// Gzip with a fixed header (no name, mtime 0, OS "unknown") so output depends only on
/// the input bytes.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc: GzEncoder<Vec<u8>> = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::default());
    enc.write_all(data).map_err(|e| Error::io("gzip", e))?;
    enc.finish().map_err(|e| Error::io("gzip", e))
}

struct Budget(u64);

impl Budget {
    fn take(&mut self, name: &str, n: u64) -> Result<()> {
        if n > MAX_FILE || n > self.0 {
            return Err(Error::Input(format!("{name}: file too large ({n} bytes)")));
        }
        self.0 -= n;
        Ok(())
    }
}

fn read_tar(data: &[u8], limit: u64) -> Result<Tree> {
    let mut t = Tree::new();
    let mut budget = Budget(limit);
    let mut ar = tar::Archive::new(data);
    let entries = ar
        .entries()
        .map_err(|e| Error::Input(format!("read tar: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| Error::Input(format!("read tar: {e}")))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let h = e.header().clone();
        let mode = h.mode().map_err(|e| Error::Input(format!("{name}: {e}")))? & 0o7777;
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                budget.take(&name, e.size())?;
                let mut d = Vec::with_capacity(e.size() as usize);
                e.read_to_end(&mut d)
                    .map_err(|e| Error::Input(format!("{name}: {e}")))?;
                Kind::File(d)
            }
            tar::EntryType::Symlink => Kind::Symlink(link_name(&e, &name)?),
            tar::EntryType::Link => {
                let target = normalize(&link_name(&e, &name)?)?;
                match t.nodes.get(&target) {
                    Some(
                        n @ Node {
                            kind: Kind::File(_),
                            ..
                        },
                    ) => {
                        let n = n.clone();
                        t.insert(&name, n)?;
                        continue;
                    }
                    _ => {
                        return Err(Error::Input(format!(
                            "{name}: hard link to {target}, which is not an earlier file"
                        )))
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let ma = h.device_major().ok().flatten().unwrap_or(0);
                let mi = h.device_minor().ok().flatten().unwrap_or(0);
                if h.entry_type() == tar::EntryType::Char {
                    Kind::Char(ma, mi)
                } else {
                    Kind::Block(ma, mi)
                }
            }
            tar::EntryType::Fifo => Kind::Fifo,
            // PAX/GNU extension headers are consumed by the tar crate; anything else
            // (sockets, sparse files) has no place in a boot image.
            other => {
                return Err(Error::Input(format!(
                    "{name}: unsupported tar entry {other:?}"
                )))
            }
        };
        t.insert(&name, Node { kind, mode })?;
    }
    Ok(t)
}

fn link_name(e: &tar::Entry<'_, &[u8]>, name: &str) -> Result<String> {
    e.link_name_bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .ok_or_else(|| Error::Input(format!("{name}: link without a target")))
}

fn read_cpio(mut data: &[u8], limit: u64) -> Result<Tree> {
    let mut t = Tree::new();
    let mut budget = Budget(limit);
    loop {
        let mut r =
            cpio::NewcReader::new(data).map_err(|e| Error::Input(format!("read cpio: {e}")))?;
        if r.entry().is_trailer() {
            return Ok(t);
        }
        let name = r.entry().name().to_string();
        let mode = r.entry().mode();
        let size = r.entry().file_size() as u64;
        let (rma, rmi) = (r.entry().rdev_major(), r.entry().rdev_minor());
        budget.take(&name, size)?;
        let mut body = Vec::with_capacity(size as usize);
        r.read_to_end(&mut body)
            .map_err(|e| Error::Input(format!("{name}: {e}")))?;
        let kind = match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File(body),
            libc::S_IFLNK => Kind::Symlink(String::from_utf8_lossy(&body).into_owned()),
            libc::S_IFCHR => Kind::Char(rma, rmi),
            libc::S_IFBLK => Kind::Block(rma, rmi),
            libc::S_IFIFO => Kind::Fifo,
            other => {
                return Err(Error::Input(format!(
                    "{name}: unsupported cpio mode {other:o}"
                )))
            }
        };
        t.insert(
            &name,
            Node {
                kind,
                mode: mode & 0o7777,
            },
        )?;
        data = r
            .finish()
            .map_err(|e| Error::Input(format!("read cpio: {e}")))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert("./bin/busybox", file(b"bb".to_vec(), 0o755))
            .unwrap();
        t.insert("bin/sh", symlink("busybox")).unwrap();
        t.insert(
            "/dev/console",
            Node {
                kind: Kind::Char(5, 1),
                mode: 0o600,
            },
        )
        .unwrap();
        t.insert("tmp", dir(0o1777)).unwrap();
        t
    }

    #[test]
    fn names_are_confined_and_normalized() {
        assert_eq!(normalize("./a//b/./c").unwrap(), "a/b/c");
        assert_eq!(normalize("/").unwrap(), "");
        assert!(normalize("a/../../etc").is_err());
        let t = sample();
        assert_eq!(t.get("bin").unwrap().kind, Kind::Dir);
        assert!(t.get("/bin/busybox").is_some());
    }

    #[test]
    fn later_entries_win_and_files_replace_directories() {
        let mut t = sample();
        let mut delta = Tree::new();
        delta.insert("bin", file(b"x".to_vec(), 0o644)).unwrap();
        t.merge(&delta).unwrap();
        assert_eq!(t.get("bin").unwrap().kind, Kind::File(b"x".to_vec()));
        assert!(t.get("bin/sh").is_none());
        assert!(t.insert("bin/x", file(vec![], 0o644)).is_err());
    }

    #[test]
    fn tar_and_cpio_round_trip() {
        let t = sample();
        assert_eq!(Tree::read_archive(&t.to_tar(0).unwrap()).unwrap(), t);
        assert_eq!(Tree::read_archive(&t.to_cpio(0).unwrap()).unwrap(), t);
        let gz = gzip(&t.to_cpio(0).unwrap()).unwrap();
        assert_eq!(Tree::read_archive(&gz).unwrap(), t);
    }

    #[test]
    fn outputs_are_deterministic() {
        let t = sample();
        assert_eq!(t.to_tar(7).unwrap(), sample().to_tar(7).unwrap());
        assert_eq!(gzip(b"abc").unwrap(), gzip(b"abc").unwrap());
        let cpio = t.to_cpio(0).unwrap();
        // `.` comes first, owned by root.
        let r = cpio::NewcReader::new(cpio.as_slice()).unwrap();
        assert_eq!(r.entry().name(), ".");
        assert_eq!((r.entry().uid(), r.entry().gid()), (0, 0));
    }

    #[test]
    fn hard_links_must_point_at_earlier_files() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "a", "missing").unwrap();
        let data = b.into_inner().unwrap();
        assert!(Tree::read_archive(&data).is_err());
    }
}
