//! A structural checker for images this crate writes (a small, portable subset of e2fsck).
//!
//! It verifies the superblock and group descriptors, walks the directory tree from the root
//! through the extent trees, and checks that every referenced inode is marked in use, that
//! every block an extent names lies inside the image, that directory records are well formed
//! and that link counts equal the number of names (plus `.`/`..` for directories). The fuzz
//! target runs it on every image a random tar produces.

use std::collections::{HashMap, HashSet};

use crate::format::*;

/// What the checker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Inodes reachable from the root.
    pub inodes: usize,
    /// Directories reachable from the root.
    pub directories: usize,
}

struct Img<'a> {
    b: &'a [u8],
    blocks: u64,
    ipg: u32,
    inodes_count: u32,
    tables: Vec<u32>,
    inode_bitmaps: Vec<u32>,
}

impl<'a> Img<'a> {
    fn block(&self, n: u64) -> Result<&'a [u8], String> {
        if n >= self.blocks {
            return Err(format!(
                "block {n} beyond the image ({} blocks)",
                self.blocks
            ));
        }
        let s = (n * BLOCK_SIZE) as usize;
        Ok(&self.b[s..s + BLOCK])
    }

    fn inode(&self, ino: u32) -> Result<&'a [u8], String> {
        if ino == 0 || ino > self.inodes_count {
            return Err(format!("inode {ino} out of range"));
        }
        let g = ((ino - 1) / self.ipg) as usize;
        let idx = u64::from((ino - 1) % self.ipg);
        let off = u64::from(self.tables[g]) * BLOCK_SIZE + idx * u64::from(INODE_SIZE);
        let bm = self.block(u64::from(self.inode_bitmaps[g]))?;
        if bm[(idx / 8) as usize] & (1 << (idx % 8)) == 0 {
            return Err(format!("inode {ino} is referenced but not marked in use"));
        }
        self.b
            .get(off as usize..off as usize + INODE_SIZE as usize)
            .ok_or_else(|| format!("inode {ino} beyond the image"))
    }

    /// The physical blocks of an inode's data, in logical order.
    fn data_blocks(&self, ino: u32, inode: &[u8]) -> Result<Vec<u64>, String> {
        let flags = get32(inode, 32);
        if flags & INODE_FLAG_EXTENTS == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        self.extent_node(ino, &inode[40..100], 4, 0, &mut out)?;
        Ok(out)
    }

    fn extent_node(
        &self,
        ino: u32,
        node: &[u8],
        max_expected: u16,
        level: u32,
        out: &mut Vec<u64>,
    ) -> Result<(), String> {
        if get16(node, 0) != EXTENT_HEADER_MAGIC {
            return Err(format!("inode {ino}: bad extent magic"));
        }
        let (entries, max, depth) = (get16(node, 2), get16(node, 4), get16(node, 6));
        if entries > max || max > max_expected || depth > 1 || level > 1 {
            return Err(format!(
                "inode {ino}: bad extent header {entries}/{max} depth {depth}"
            ));
        }
        for i in 0..entries as usize {
            let e = &node[12 + 12 * i..24 + 12 * i];
            if depth == 0 {
                let logical = u64::from(get32(e, 0));
                let len = u64::from(get16(e, 4));
                let start = u64::from(get32(e, 8));
                if len == 0 || len > u64::from(MAX_BLOCKS_PER_EXTENT) {
                    return Err(format!("inode {ino}: bad extent length {len}"));
                }
                if logical != out.len() as u64 {
                    return Err(format!(
                        "inode {ino}: extent at logical {logical}, expected {}",
                        out.len()
                    ));
                }
                if start + len > self.blocks {
                    return Err(format!(
                        "inode {ino}: extent {start}+{len} beyond the image"
                    ));
                }
                out.extend(start..start + len);
            } else {
                let leaf = u64::from(get32(e, 4));
                let blk = self.block(leaf)?;
                self.extent_node(ino, blk, EXTENTS_PER_BLOCK as u16, level + 1, out)?;
            }
        }
        Ok(())
    }
}

/// Checks an ext4 image (the ext4 part only). Returns what it walked or the first problem.
pub fn check(b: &[u8]) -> Result<Summary, String> {
    if b.len() < 2 * BLOCK || b.len() % BLOCK != 0 {
        return Err(format!("image size {} is not a multiple of 4 KiB", b.len()));
    }
    let sb = SuperBlock::parse(&b[1024..2048]).ok_or("bad superblock magic")?;
    if sb.log_block_size != 2 {
        return Err("block size is not 4 KiB".into());
    }
    let blocks = u64::from(sb.blocks_count);
    if blocks * BLOCK_SIZE != b.len() as u64 {
        return Err(format!(
            "blocks_count {blocks} does not match the image size {}",
            b.len()
        ));
    }
    let ipg = sb.inodes_per_group;
    if ipg == 0 || ipg % INODES_PER_GROUP_INCREMENT != 0 || ipg > MAX_INODES_PER_GROUP {
        return Err(format!("bad inodes_per_group {ipg}"));
    }
    if sb.inodes_count % ipg != 0 {
        return Err("inodes_count is not a multiple of inodes_per_group".into());
    }
    let groups = sb.inodes_count / ipg;
    if u64::from(groups) != blocks.div_ceil(u64::from(BLOCKS_PER_GROUP)) {
        return Err(format!("{groups} groups for {blocks} blocks"));
    }
    let mut img = Img {
        b,
        blocks,
        ipg,
        inodes_count: sb.inodes_count,
        tables: Vec::new(),
        inode_bitmaps: Vec::new(),
    };
    for g in 0..groups as usize {
        let d = b
            .get(BLOCK + 32 * g..BLOCK + 32 * g + 32)
            .ok_or("group descriptor table beyond the image")?;
        let (bb, ib, it) = (get32(d, 0), get32(d, 4), get32(d, 8));
        let table_blocks = u64::from(ipg * INODE_SIZE) / BLOCK_SIZE;
        if u64::from(bb) >= blocks
            || u64::from(ib) >= blocks
            || u64::from(it) + table_blocks > blocks
        {
            return Err(format!("group {g}: metadata beyond the image"));
        }
        img.tables.push(it);
        img.inode_bitmaps.push(ib);
    }

    // Walk the tree, counting names per inode.
    let mut names: HashMap<u32, u32> = HashMap::new();
    let mut subdirs: HashMap<u32, u32> = HashMap::new();
    let mut seen_dirs: HashSet<u32> = HashSet::new();
    let mut stack = vec![(INODE_ROOT, INODE_ROOT)];
    let mut dirs = 0;
    while let Some((dir, parent)) = stack.pop() {
        if !seen_dirs.insert(dir) {
            return Err(format!("directory {dir} reached twice"));
        }
        dirs += 1;
        let inode = img.inode(dir)?;
        if get16(inode, 0) & S_IFMT != S_IFDIR {
            return Err(format!("inode {dir} is not a directory"));
        }
        let size = u64::from(get32(inode, 4)) | (u64::from(get32(inode, 108)) << 32);
        let data = img.data_blocks(dir, inode)?;
        if data.len() as u64 * BLOCK_SIZE != size {
            return Err(format!(
                "directory {dir}: size {size} for {} blocks",
                data.len()
            ));
        }
        let mut first = true;
        for blk in data {
            let block = img.block(blk)?;
            let mut off = 0usize;
            while off < BLOCK {
                // A record's fixed part (inode, length, name length, type) is 8 bytes; a
                // record that ends 4 bytes short of the block leaves no room for the next.
                if off + 8 > BLOCK {
                    return Err(format!("directory {dir}: bad record at {off}"));
                }
                let ino = get32(block, off);
                let rec = get16(block, off + 4) as usize;
                let nl = block[off + 6] as usize;
                if rec < 8 || rec % 4 != 0 || off + rec > BLOCK || 8 + nl > rec {
                    return Err(format!("directory {dir}: bad record at {off}"));
                }
                let name = &block[off + 8..off + 8 + nl];
                if ino != 0 {
                    if first && name != b"." {
                        return Err(format!("directory {dir}: first entry is not '.'"));
                    }
                    match name {
                        b"." => {
                            if ino != dir {
                                return Err(format!("directory {dir}: '.' points to {ino}"));
                            }
                        }
                        b".." => {
                            if ino != parent {
                                return Err(format!("directory {dir}: '..' points to {ino}"));
                            }
                        }
                        _ => {
                            if nl == 0 || name.contains(&b'/') || name.contains(&0) {
                                return Err(format!("directory {dir}: invalid name"));
                            }
                            *names.entry(ino).or_default() += 1;
                            let child = img.inode(ino)?;
                            let mode = get16(child, 0);
                            if file_type(mode) != block[off + 7] {
                                return Err(format!("directory {dir}: file type of {ino} differs"));
                            }
                            if mode & S_IFMT == S_IFDIR {
                                *subdirs.entry(dir).or_default() += 1;
                                stack.push((ino, dir));
                            } else if mode & S_IFMT == S_IFREG || mode & S_IFMT == S_IFLNK {
                                let size = u64::from(get32(child, 4))
                                    | (u64::from(get32(child, 108)) << 32);
                                let flags = get32(child, 32);
                                let blocks = img.data_blocks(ino, child)?;
                                if flags & INODE_FLAG_EXTENTS != 0
                                    && (blocks.len() as u64) < size.div_ceil(BLOCK_SIZE)
                                {
                                    return Err(format!(
                                        "inode {ino}: {} blocks for size {size}",
                                        blocks.len()
                                    ));
                                }
                            }
                        }
                    }
                }
                first = false;
                off += rec;
            }
        }
    }
    for (&ino, &n) in &names {
        let inode = img.inode(ino)?;
        let links = u32::from(get16(inode, 26));
        let want = if get16(inode, 0) & S_IFMT == S_IFDIR {
            n + 1 + subdirs.get(&ino).copied().unwrap_or(0)
        } else {
            n
        };
        if links != want {
            return Err(format!("inode {ino}: link count {links}, names {want}"));
        }
    }
    let root_links = u32::from(get16(img.inode(INODE_ROOT)?, 26));
    if root_links != 2 + subdirs.get(&INODE_ROOT).copied().unwrap_or(0) {
        return Err(format!("root link count {root_links}"));
    }
    Ok(Summary {
        inodes: names.len() + 1,
        directories: dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{File, Writer, WriterOptions};
    use std::io::Cursor;

    fn image() -> Vec<u8> {
        let mut w = Writer::new(Cursor::new(Vec::new()), WriterOptions::default());
        w.make_parents(b"a/b/c").unwrap();
        w.create(
            b"a/b/c",
            File {
                mode: 0o644,
                size: 5000,
                ..File::default()
            },
        )
        .unwrap();
        w.write_data(&[1u8; 5000]).unwrap();
        w.link(b"a/b/c", b"hard").unwrap();
        w.close().unwrap().out.into_inner()
    }

    #[test]
    fn accepts_a_good_image_and_rejects_damage() {
        let img = image();
        let s = check(&img).unwrap();
        assert_eq!(s.directories, 4); // root, lost+found, a, a/b
        let sb = SuperBlock::parse(&img[1024..2048]).unwrap();
        let table = u64::from(get32(&img[BLOCK..], 8)) * BLOCK_SIZE;
        // wrong link count on the hard-linked file (the third inode after lost+found)
        let mut bad = img.clone();
        let ino_c = 14u64; // 11 lost+found, 12 a, 13 a/b, 14 c
        bad[(table + (ino_c - 1) * 256 + 26) as usize] = 1;
        assert!(check(&bad).unwrap_err().contains("link count"));
        // truncated image
        assert!(check(&img[..img.len() - BLOCK]).is_err());
        // broken superblock
        let mut bad = img.clone();
        bad[1024 + 56] = 0;
        assert!(check(&bad).is_err());
        assert!(sb.inodes_count >= 14);
    }

    #[test]
    fn a_directory_record_ending_short_of_the_block_is_an_error() {
        let mut img = image();
        let table = u64::from(get32(&img[BLOCK..], 8)) * BLOCK_SIZE;
        let root = (table + (u64::from(INODE_ROOT) - 1) * 256) as usize;
        // The root's single extent: its physical start is the leaf entry's third word.
        let blk = get32(&img[root + 40..], 12 + 8) as usize * BLOCK;
        let mut off = 0;
        loop {
            let rec = get16(&img[blk..], off + 4) as usize;
            if off + rec == BLOCK {
                let short = (rec - 4) as u16;
                img[blk + off + 4..blk + off + 6].copy_from_slice(&short.to_le_bytes());
                break;
            }
            off += rec;
        }
        assert_eq!(check(&img).unwrap_err(), "directory 2: bad record at 4092");
    }
}
