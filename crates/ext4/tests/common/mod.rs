//! Shared test helpers: a deterministic generator of file trees, the tar archive for a tree
//! (built with the `tar` crate), and the view a correct image must show.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// What one path should be in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
}

/// One tar entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    /// `Some(target)` makes this a hard link to `target` (kind is ignored).
    pub link_to: Option<String>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn new(path: &str, kind: Kind) -> Entry {
        let mode = match kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ => 0o644,
        };
        Entry {
            path: path.to_string(),
            kind,
            link_to: None,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: Vec::new(),
        }
    }
}

/// A small deterministic PRNG.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// A mixed tree: nested and implicit directories, files of edge sizes, symlinks (fast and
/// slow), hard links, fifos, devices, xattrs, odd modes and owners, times before 1970 and
/// after 2038.
pub fn mixed_tree(seed: u64) -> Vec<Entry> {
    let mut r = Rng::new(seed);
    let mut v = Vec::new();
    v.push(Entry::new("etc/", Kind::Dir));
    let sizes = [
        0usize, 1, 59, 60, 100, 136, 137, 4095, 4096, 4097, 12288, 70000, 300_000,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let mut e = Entry::new(&format!("etc/f{i}_{n}"), Kind::File(r.bytes(n)));
        e.mode = [0o644, 0o755, 0o600, 0o4755, 0o2711, 0o1644][i % 6];
        e.uid = [0, 1000, 65536, 100_000][i % 4];
        e.gid = [0, 100, 70000, 5][i % 4];
        e.mtime = [
            1_700_000_000,
            -1,
            -946_771_200,
            2_208_988_800,
            4_294_967_296,
            0,
        ][i % 6];
        v.push(e);
    }
    // files in implicit parents
    for i in 0..20 {
        let n = r.below(9000) as usize;
        v.push(Entry::new(
            &format!("usr/share/doc/p{}/file{i}", i % 4),
            Kind::File(r.bytes(n)),
        ));
    }
    v.push(Entry::new("usr/", Kind::Dir));
    let mut d = Entry::new("usr/share/", Kind::Dir);
    d.mode = 0o750;
    d.mtime = 1_600_000_000;
    v.push(d);
    v.push(Entry::new("bin/", Kind::Dir));
    v.push(Entry::new("bin/short", Kind::Symlink("../etc/f0_0".into())));
    v.push(Entry::new(
        "bin/long",
        Kind::Symlink(format!("../{}", "x/".repeat(80))),
    ));
    v.push(Entry::new(
        "bin/dangling",
        Kind::Symlink("/does/not/exist".into()),
    ));
    let mut h = Entry::new("bin/hard", Kind::Dir);
    h.link_to = Some("etc/f9_4097".into());
    v.push(h);
    let mut h = Entry::new("deep/a/b/c/hard2", Kind::Dir);
    h.link_to = Some("etc/f9_4097".into());
    v.push(h);
    v.push(Entry::new("dev/", Kind::Dir));
    v.push(Entry::new("dev/null", Kind::Char(1, 3)));
    v.push(Entry::new("dev/sdx", Kind::Block(8, 300)));
    v.push(Entry::new("dev/big", Kind::Char(259, 65536)));
    v.push(Entry::new("run/fifo", Kind::Fifo));
    let mut x = Entry::new("xattrs/many", Kind::File(b"x".to_vec()));
    for i in 0..8 {
        x.xattrs
            .push((format!("user.attr{i}"), r.bytes(10 + 30 * i)));
    }
    x.xattrs.push(("trusted.t".into(), b"trusted".to_vec()));
    v.push(x);
    // more than 12 entries in the xattr block: Go's sort.Slice leaves insertion sort
    let mut x = Entry::new("xattrs/twenty", Kind::File(b"20".to_vec()));
    for i in 0..20 {
        let name = format!(
            "{}.k{}",
            ["user", "trusted", "security"][i % 3],
            "n".repeat(i % 5 + 1)
        );
        x.xattrs.push((format!("{name}{i}"), r.bytes(20 + i)));
    }
    v.push(x);
    let mut x = Entry::new("xattrs/dir/", Kind::Dir);
    x.xattrs.push(("user.dir".into(), b"value".to_vec()));
    v.push(x);
    let mut big = Entry::new("xattrs/big", Kind::File(r.bytes(5000)));
    big.xattrs.push(("user.big".into(), vec![b'V'; 3000]));
    v.push(big);
    // a wide directory spanning several directory blocks
    for i in 0..300 {
        v.push(Entry::new(
            &format!("wide/entry_with_a_longish_name_{i:04}"),
            Kind::File(Vec::new()),
        ));
    }
    v
}

/// Builds the tar archive of `entries` with the `tar` crate (GNU headers, PAX records for
/// xattrs and times the header cannot hold).
pub fn build_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        for (k, v) in &e.xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if e.mtime < 0 || e.mtime >= 1 << 33 {
            pax.push(("mtime".into(), e.mtime.to_string().into_bytes()));
        }
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime.clamp(0, (1 << 33) - 1) as u64);
        if let Some(t) = &e.link_to {
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, &e.path, t).unwrap();
            continue;
        }
        let data: &[u8] = match &e.kind {
            Kind::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                d
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                &[]
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &e.path, t).unwrap();
                continue;
            }
            Kind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                &[]
            }
            Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
                h.set_entry_type(if matches!(e.kind, Kind::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                &[]
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &e.path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// One expected node of the image.
#[derive(Debug, Clone)]
pub struct Expect {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Option<i64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Paths that must share this node's inode.
    pub same_inode_as: Option<String>,
}

/// The view of the tree an image must show (explicit entries only; implicit parents are only
/// checked for existence).
pub fn expected(entries: &[Entry]) -> BTreeMap<String, Expect> {
    let mut m: BTreeMap<String, Expect> = BTreeMap::new();
    for e in entries {
        let path = e.path.trim_end_matches('/').to_string();
        if let Some(t) = &e.link_to {
            let mut x = m[t].clone();
            x.same_inode_as = Some(t.clone());
            m.insert(path, x);
            continue;
        }
        let mode = match e.kind {
            Kind::Symlink(_) => 0o777,
            _ => e.mode,
        };
        m.insert(
            path,
            Expect {
                kind: e.kind.clone(),
                mode,
                uid: e.uid & 0xffff_ffff,
                gid: e.gid & 0xffff_ffff,
                mtime: Some(e.mtime),
                xattrs: e.xattrs.iter().cloned().collect(),
                same_inode_as: None,
            },
        );
    }
    m
}
