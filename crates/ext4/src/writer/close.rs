//! Finishing an image: directories (pre-order, children by inode number), the inode table,
//! the bitmaps, the group descriptor table and the superblock.

use std::io::{Read, Seek, Write};

use super::{Closed, Writer};
use crate::error::{Error, Result};
use crate::format::*;
use crate::xattr::{self, Xattr};

impl<W: Read + Write + Seek> Writer<W> {
    fn sorted_children(&self, dir: u32) -> Vec<(Vec<u8>, u32)> {
        let mut v: Vec<(Vec<u8>, u32)> = self
            .node(dir)
            .children
            .as_ref()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        // e2fsck's convention: by inode number, then name (hard links share a number).
        v.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        v
    }

    fn write_directory(
        &mut self,
        dir: u32,
        parent: u32,
        children: &[(Vec<u8>, u32)],
    ) -> Result<()> {
        self.finish_inode()?;
        self.start_inode(b"", dir, u64::MAX >> 1);
        let mut left = BLOCK;
        let mut out: Vec<u8> = Vec::with_capacity(BLOCK);
        let finish_block = |out: &mut Vec<u8>, left: &mut usize| {
            if *left > 0 {
                let mut e = [0u8; 8];
                put16(&mut e, 4, *left as u16);
                out.extend_from_slice(&e);
                out.resize(out.len() + *left - 8, 0);
            }
            *left = BLOCK;
        };
        let entry = |out: &mut Vec<u8>, left: &mut usize, ino: u32, name: &[u8], ft: u8| {
            let rlb = 8 + name.len();
            let rl = (rlb + 3) & !3;
            if *left < rl + 12 {
                finish_block(out, left);
            }
            let mut e = [0u8; 8];
            put32(&mut e, 0, ino);
            put16(&mut e, 4, rl as u16);
            e[6] = name.len() as u8;
            e[7] = ft;
            out.extend_from_slice(&e);
            out.extend_from_slice(name);
            out.resize(out.len() + rl - rlb, 0);
            *left -= rl;
        };
        entry(
            &mut out,
            &mut left,
            dir,
            b".",
            file_type(self.node(dir).mode),
        );
        entry(
            &mut out,
            &mut left,
            parent,
            b"..",
            file_type(self.node(parent).mode),
        );
        for (name, ino) in children {
            entry(
                &mut out,
                &mut left,
                *ino,
                name,
                file_type(self.node(*ino).mode),
            );
        }
        finish_block(&mut out, &mut left);
        self.write_data(&out)?;
        self.node_mut(dir).size = self.data_written;
        self.data_max = self.data_written;
        Ok(())
    }

    fn write_directories(&mut self) -> Result<()> {
        // Depth-first pre-order from the root, children in inode order; an explicit stack so
        // that deep trees cannot overflow the call stack.
        let mut stack = vec![(self.root(), self.root())];
        while let Some((dir, parent)) = stack.pop() {
            let children = self.sorted_children(dir);
            self.write_directory(dir, parent, &children)?;
            for (_, ino) in children.iter().rev() {
                if self.node(*ino).is_dir() {
                    stack.push((*ino, dir));
                }
            }
        }
        Ok(())
    }

    fn write_inode_table(&mut self, table_size: u64) -> Result<()> {
        // Serialized in 1 MiB chunks so that huge trees do not need the whole table in memory.
        const CHUNK: usize = 1 << 20;
        let mut buf = Vec::with_capacity(CHUNK);
        let mut written = 0u64;
        for i in 0..self.inodes.len() {
            let mut b = [0u8; INODE_SIZE as usize];
            if let Some(n) = &self.inodes[i] {
                put16(&mut b, 0, n.mode);
                put16(&mut b, 2, n.uid as u16);
                put32(&mut b, 4, n.size as u32);
                put32(&mut b, 8, n.atime as u32);
                put32(&mut b, 12, n.ctime as u32);
                put32(&mut b, 16, n.mtime as u32);
                put16(&mut b, 24, n.gid as u16);
                put16(&mut b, 26, n.link_count as u16);
                put32(&mut b, 28, n.block_count);
                put32(&mut b, 32, n.flags);
                put32(&mut b, 104, n.xattr_block);
                put32(&mut b, 108, (n.size >> 32) as u32);
                put16(&mut b, 120, (n.uid >> 16) as u16);
                put16(&mut b, 122, (n.gid >> 16) as u16);
                put16(&mut b, 128, EXTRA_ISIZE);
                put32(&mut b, 132, (n.ctime >> 32) as u32);
                put32(&mut b, 136, (n.mtime >> 32) as u32);
                put32(&mut b, 140, (n.atime >> 32) as u32);
                put32(&mut b, 144, n.crtime as u32);
                put32(&mut b, 148, (n.crtime >> 32) as u32);
                let mut xi = n.xattr_inline.clone();
                match n.file_type() {
                    S_IFDIR | S_IFREG | S_IFLNK => {
                        let k = n.data.len().min(INODE_DATA_SIZE);
                        b[40..40 + k].copy_from_slice(&n.data[..k]);
                        if k < n.data.len() {
                            // Inline data beyond i_block: rewrite the system.data placeholder.
                            let x = [Xattr {
                                name: b"data".to_vec(),
                                index: 7,
                                value: n.data[k..].to_vec(),
                            }];
                            xattr::put_xattrs(&x, &mut xi[4..], 0);
                        }
                    }
                    S_IFBLK | S_IFCHR => {
                        let dev = (n.devminor & 0xff)
                            | (n.devmajor << 8)
                            | ((n.devminor & 0xffff_ff00) << 12);
                        put32(&mut b, 44, dev);
                    }
                    _ => {}
                }
                b[INODE_USED_SIZE..INODE_USED_SIZE + xi.len()].copy_from_slice(&xi);
            }
            buf.extend_from_slice(&b);
            if buf.len() >= CHUNK {
                self.write(&buf)?;
                written += buf.len() as u64;
                buf.clear();
            }
        }
        self.write(&buf)?;
        written += buf.len() as u64;
        self.zero(table_size.saturating_sub(written))
    }

    /// Finishes the image: directories, inode table, bitmaps, GDT and superblock.
    pub fn close(mut self) -> Result<Closed<W>> {
        self.finish_inode()?;
        self.write_directories()?;
        self.finish_inode()?;

        let inode_table = self.block();
        let (groups, ipg) = best_group_count(inode_table, self.inodes.len() as u32);
        self.write_inode_table(u64::from(groups) * u64::from(ipg) * u64::from(INODE_SIZE))?;

        let bitmap_offset = self.block();
        let valid = bitmap_offset + groups * 2;
        let disk_size = valid.max((groups - 1) * BLOCKS_PER_GROUP + 1);
        let used_gd_blocks = (groups - 1) / GROUPS_PER_DESCRIPTOR_BLOCK + 1;
        if used_gd_blocks > self.gd_blocks {
            return Err(Error::DiskTooLarge(self.max_disk_size));
        }
        let mut gds = vec![
            GroupDescriptor::default();
            (self.gd_blocks * GROUPS_PER_DESCRIPTOR_BLOCK) as usize
        ];
        let table_blocks_per_group = ipg * INODE_SIZE / BLOCK_SIZE as u32;
        let (mut total_used_blocks, mut total_used_inodes) = (0u32, 0u32);
        for g in 0..groups {
            let mut b = vec![0u8; 2 * BLOCK];
            let (mut dirs, mut used_inodes, mut used_blocks) = (0u32, 0u32, 0u32);
            let set = |b: &mut [u8], j: u32| b[(j / 8) as usize] |= 1 << (j % 8);
            if (g + 1) * BLOCKS_PER_GROUP <= valid {
                b[..BLOCK].fill(0xff);
                used_blocks = BLOCKS_PER_GROUP;
            } else if g * BLOCKS_PER_GROUP < valid {
                for j in 0..valid - g * BLOCKS_PER_GROUP {
                    set(&mut b, j);
                    used_blocks += 1;
                }
            }
            if g == 0 {
                // Reserved GDT blocks that are not needed stay free.
                for j in 1 + used_gd_blocks..1 + self.gd_blocks {
                    b[(j / 8) as usize] &= !(1 << (j % 8));
                    used_blocks -= 1;
                }
            }
            if g == groups - 1 && disk_size % BLOCKS_PER_GROUP != 0 {
                // Blocks past the end of the disk are marked in use.
                for j in disk_size % BLOCKS_PER_GROUP..BLOCKS_PER_GROUP {
                    set(&mut b, j);
                    used_blocks += 1;
                }
            }
            for j in 0..ipg {
                let ino = 1 + g * ipg + j;
                let node = self.get_inode(ino);
                if ino < INODE_FIRST || node.is_some() {
                    set(&mut b[BLOCK..], j);
                    used_inodes += 1;
                }
                if node.is_some_and(|n| n.is_dir()) {
                    dirs += 1;
                }
            }
            if !self.compat() {
                // Defect D1: the bits past inodes_per_group must be set.
                for j in ipg..MAX_INODES_PER_GROUP {
                    set(&mut b[BLOCK..], j);
                }
            }
            self.write(&b)?;
            gds[g as usize] = GroupDescriptor {
                block_bitmap: bitmap_offset + 2 * g,
                inode_bitmap: bitmap_offset + 2 * g + 1,
                inode_table: inode_table + g * table_blocks_per_group,
                used_dirs: dirs as u16,
                free_inodes: (ipg as u16).wrapping_sub(used_inodes as u16),
                free_blocks: (BLOCKS_PER_GROUP as u16).wrapping_sub(used_blocks as u16),
            };
            total_used_blocks += used_blocks;
            total_used_inodes += used_inodes;
        }
        self.zero(u64::from(disk_size - bitmap_offset - groups * 2) * BLOCK_SIZE)?;

        self.seek_block(1)?;
        let mut gdt = vec![0u8; gds.len() * GROUP_DESCRIPTOR_SIZE as usize];
        for (i, gd) in gds.iter().enumerate() {
            gd.write_to(&mut gdt[i * 32..i * 32 + 32]);
        }
        self.sink.write(&gdt)?;

        let mut incompat = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG;
        if self.inline_data {
            incompat |= INCOMPAT_INLINE_DATA;
        }
        let sb = SuperBlock {
            inodes_count: ipg * groups,
            blocks_count: disk_size,
            free_blocks_count: (BLOCKS_PER_GROUP * groups).wrapping_sub(total_used_blocks),
            free_inodes_count: (ipg * groups).wrapping_sub(total_used_inodes),
            inodes_per_group: ipg,
            feature_compat: COMPAT_SPARSE_SUPER2 | COMPAT_EXT_ATTR,
            feature_incompat: incompat,
            feature_ro_compat: RO_COMPAT_LARGE_FILE
                | RO_COMPAT_HUGE_FILE
                | RO_COMPAT_EXTRA_ISIZE
                | RO_COMPAT_READONLY,
            log_block_size: 2,
        };
        let mut blk = vec![0u8; BLOCK];
        blk[1024..2048].copy_from_slice(&sb.to_bytes());
        self.seek_block(0)?;
        self.write(&blk)?;
        self.seek_block(disk_size)?;
        let (out, leaves) = self.sink.finish()?;
        Ok(Closed {
            out,
            size: u64::from(disk_size) * BLOCK_SIZE,
            leaves,
        })
    }
}

fn group_count(blocks: u32, inodes: u32, ipg: u32) -> u32 {
    let inode_blocks = ipg * INODE_SIZE / BLOCK_SIZE as u32;
    let data_blocks = BLOCKS_PER_GROUP - inode_blocks - 2;
    let min_blocks = (inodes - 1) / ipg * data_blocks + 1;
    let blocks = blocks.max(min_blocks);
    blocks.div_ceil(data_blocks)
}

/// Picks the first inodes-per-group value giving the fewest groups.
fn best_group_count(blocks: u32, inodes: u32) -> (u32, u32) {
    let mut groups = u32::MAX;
    let mut best = 0;
    let mut ipg = INODES_PER_GROUP_INCREMENT;
    while ipg <= MAX_INODES_PER_GROUP {
        let g = group_count(blocks, inodes, ipg);
        if g < groups {
            groups = g;
            best = ipg;
        }
        ipg += INODES_PER_GROUP_INCREMENT;
    }
    (groups, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_count_for_small_images_is_one() {
        assert_eq!(best_group_count(10, 12), (1, 16));
        assert_eq!(best_group_count(10, 48), (1, 48));
    }
}
