//! Extent trees of regular files, directories and slow symlinks (data is always one
//! contiguous run of blocks, one extent per 128 MiB).

use std::io::{Read, Seek, Write};

use super::Writer;
use crate::error::{show, Error, Result};
use crate::format::*;

impl<W: Read + Write + Seek> Writer<W> {
    fn next_block(&mut self) -> Result<()> {
        let rem = self.pos() % BLOCK_SIZE;
        if rem != 0 {
            self.zero(BLOCK_SIZE - rem)?;
        }
        Ok(())
    }

    fn fill_extents(
        leaves: &mut [u8],
        count: u32,
        max: u16,
        start_block: u32,
        offset: u32,
        size: u32,
    ) {
        put_extent_header(leaves, count as u16, max, 0);
        for i in 0..count {
            let block = offset.wrapping_add(i.wrapping_mul(MAX_BLOCKS_PER_EXTENT));
            let length = size.wrapping_sub(block).min(MAX_BLOCKS_PER_EXTENT);
            let start = start_block.wrapping_add(block);
            let e = 12 + 12 * i as usize;
            put_extent_leaf(&mut leaves[e..e + 12], block, length as u16, start);
        }
    }

    pub(super) fn write_extents(&mut self, ino: u32) -> Result<()> {
        let start = self.pos() - self.data_written;
        self.next_block()?;
        let start_block = (start / BLOCK_SIZE) as u32;
        let blocks = self.block() - start_block;
        let mut used = blocks;
        let extents = blocks.div_ceil(MAX_BLOCKS_PER_EXTENT);
        let mut root = vec![0u8; INODE_DATA_SIZE];
        if extents == 0 {
            // nothing to describe
        } else if extents <= 4 {
            Self::fill_extents(&mut root, extents, 4, start_block, 0, blocks);
        } else if extents <= 4 * EXTENTS_PER_BLOCK {
            // Depth 1: up to four leaf blocks written right after the data.
            let leaves = leaf_layout(extents);
            let leaf_blocks = leaves.len() as u32;
            used += leaf_blocks;
            put_extent_header(&mut root, leaf_blocks as u16, 4, 1);
            for i in 0..leaf_blocks {
                let offset = i * EXTENTS_PER_BLOCK * MAX_BLOCKS_PER_EXTENT;
                let e = 12 + 12 * i as usize;
                put_extent_index(&mut root[e..e + 12], offset, self.block());
                let in_block = leaves[i as usize];
                let mut node = vec![0u8; BLOCK];
                Self::fill_extents(
                    &mut node,
                    in_block,
                    EXTENTS_PER_BLOCK as u16,
                    start_block.wrapping_add(offset),
                    offset,
                    blocks,
                );
                self.write(&node)?;
            }
        } else {
            return Err(Error::FileTooBig {
                name: show(&self.cur_name),
                size: u64::from(blocks) * BLOCK_SIZE,
                max: MAX_FILE_SIZE,
            });
        }
        let n = self.node_mut(ino);
        n.data = root;
        n.flags |= INODE_FLAG_EXTENTS;
        n.block_count += used;
        Ok(())
    }
}

/// Entries per leaf block of a depth-1 extent tree with `extents` extents.
///
/// The reference computes the leaf count as `extents / 340 + 1` and the entries of leaf `i`
/// as `extents - i * leaf_count` (defect D4): from 340 extents (42.5 GiB) on, leaves after
/// the first describe blocks past the end of the file. Below 340 extents both computations
/// agree, and images of larger files made by the reference are corrupt, so nobody can depend
/// on those bytes: both modes use the correct split (spec §10.1).
fn leaf_layout(extents: u32) -> Vec<u32> {
    let n = extents.div_ceil(EXTENTS_PER_BLOCK);
    (0..n)
        .map(|i| (extents - i * EXTENTS_PER_BLOCK).min(EXTENTS_PER_BLOCK))
        .collect()
}

/// The reference's (defective) split, kept to show where it agrees with [`leaf_layout`].
#[cfg(test)]
fn reference_leaf_layout(extents: u32) -> Vec<u32> {
    let n = extents / EXTENTS_PER_BLOCK + 1;
    (0..n)
        .map(|i| {
            extents
                .wrapping_sub(i.wrapping_mul(n))
                .min(EXTENTS_PER_BLOCK)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_leaves_split_correctly() {
        for n in [5u32, 339, 340, 341, 680, 1000, 1360] {
            let l = leaf_layout(n);
            assert_eq!(l.iter().sum::<u32>(), n, "{n}");
            assert!(l.iter().all(|&c| c > 0 && c <= EXTENTS_PER_BLOCK) && l.len() <= 4);
        }
        // The reference's layout (D4) agrees below 340 extents and is wrong from 340 on.
        for n in 5..340 {
            assert_eq!(reference_leaf_layout(n), leaf_layout(n));
        }
        assert_eq!(reference_leaf_layout(340), [340, 338]);
    }
}
