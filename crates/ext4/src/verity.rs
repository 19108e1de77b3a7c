//! dm-verity hash tree and superblock in hcsshim's layout (spec §4).
//!
//! Hash type 1 (salt prepended), SHA-256, 4 KiB data and hash blocks, a fixed 32-byte zero
//! salt. The image gets a 512-byte `verity_sb` padded to 4 KiB right after the ext4 data,
//! then the tree with its top level first. The tree equals what
//! `veritysetup format --salt=<64 zeros>` produces.

use std::io::{Read, Seek, SeekFrom};

use crate::error::{IoContext, Result};
use crate::format::BLOCK;
use crate::sink::hash_block;

/// The fixed salt: 32 zero bytes.
pub const SALT: [u8; 32] = [0; 32];

/// A computed tree.
#[derive(Debug, Clone)]
pub struct HashTree {
    /// The tree bytes, top level first, each level padded to whole blocks.
    pub tree: Vec<u8>,
    /// `sha256(salt || first tree block)`.
    pub root: [u8; 32],
    /// Number of data blocks covered.
    pub data_blocks: u64,
}

impl HashTree {
    /// The root hash in lowercase hex.
    pub fn root_hex(&self) -> String {
        hex(&self.root)
    }
}

/// Lowercase hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pad_level(mut v: Vec<u8>) -> Vec<u8> {
    let rem = v.len() % BLOCK;
    if rem != 0 || v.is_empty() {
        v.resize(v.len() + (BLOCK - rem), 0);
    }
    v
}

/// Builds the tree from the digests of the data blocks (level 0 entries).
pub fn tree_from_leaves(leaves: &[[u8; 32]]) -> HashTree {
    let mut level: Vec<u8> = pad_level(leaves.iter().flatten().copied().collect());
    let mut levels = vec![];
    loop {
        let done = level.len() == BLOCK;
        let next = if done {
            Vec::new()
        } else {
            pad_level(
                level
                    .chunks_exact(BLOCK)
                    .flat_map(|b| hash_block(&SALT, b))
                    .collect(),
            )
        };
        levels.push(level);
        if done {
            break;
        }
        level = next;
    }
    let tree: Vec<u8> = levels.into_iter().rev().flatten().collect();
    let root = hash_block(&SALT, &tree[..BLOCK]);
    HashTree {
        tree,
        root,
        data_blocks: leaves.len() as u64,
    }
}

/// Hashes `len` bytes (a multiple of 4 KiB) of `r` from offset 0 and builds the tree.
pub fn tree_from_reader<R: Read + Seek>(r: &mut R, len: u64) -> Result<HashTree> {
    r.seek(SeekFrom::Start(0)).ctx("seeking the image")?;
    let mut leaves = Vec::with_capacity((len / BLOCK as u64) as usize);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        r.read_exact(&mut buf[..n])
            .ctx("reading the image for dm-verity")?;
        for b in buf[..n].chunks(BLOCK) {
            let mut blk = [0u8; BLOCK];
            blk[..b.len()].copy_from_slice(b);
            leaves.push(hash_block(&SALT, &blk));
        }
        left -= n as u64;
    }
    Ok(tree_from_leaves(&leaves))
}

/// The 4 KiB verity superblock block (512-byte `verity_sb`, zero padded).
pub fn superblock(data_blocks: u64, uuid: [u8; 16]) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    b[0..6].copy_from_slice(b"verity");
    b[8..12].copy_from_slice(&1u32.to_le_bytes()); // version
    b[12..16].copy_from_slice(&1u32.to_le_bytes()); // hash type: normal
    b[16..32].copy_from_slice(&uuid);
    b[32..38].copy_from_slice(b"sha256");
    b[64..68].copy_from_slice(&(BLOCK as u32).to_le_bytes());
    b[68..72].copy_from_slice(&(BLOCK as u32).to_le_bytes());
    b[72..80].copy_from_slice(&data_blocks.to_le_bytes());
    b[80..82].copy_from_slice(&(SALT.len() as u16).to_le_bytes());
    b[88..88 + SALT.len()].copy_from_slice(&SALT);
    b
}

/// What a verity superblock plus the first tree block say about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityInfo {
    /// Root hash (hex), computed from the salt and the first tree block.
    pub root_hash: String,
    /// Salt (hex).
    pub salt: String,
    /// Data blocks.
    pub data_blocks: u64,
}

/// Reads the verity superblock at `offset` and the root block after it (like hcsshim's
/// `ReadDMVerityInfo`).
pub fn read_info<R: Read + Seek>(r: &mut R, offset: u64) -> Result<VerityInfo> {
    r.seek(SeekFrom::Start(offset))
        .ctx("seeking to the verity superblock")?;
    let mut sb = vec![0u8; BLOCK];
    r.read_exact(&mut sb).ctx("reading the verity superblock")?;
    if &sb[0..8] != b"verity\0\0" {
        return Err(crate::error::Error::InvalidOption(
            "invalid dm-verity superblock signature".into(),
        ));
    }
    let salt_size = (u16::from_le_bytes([sb[80], sb[81]]) as usize).min(256);
    let salt = sb[88..88 + salt_size].to_vec();
    let data_blocks = u64::from_le_bytes(sb[72..80].try_into().expect("8 bytes"));
    let mut root = vec![0u8; BLOCK];
    r.read_exact(&mut root)
        .ctx("reading the verity root block")?;
    Ok(VerityInfo {
        root_hash: hex(&hash_block(&salt, &root)),
        salt: hex(&salt),
        data_blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_block_level_is_the_root_block() {
        let t = tree_from_leaves(&[[1u8; 32], [2u8; 32]]);
        assert_eq!(t.tree.len(), BLOCK);
        assert_eq!(&t.tree[..32], &[1u8; 32]);
        assert_eq!(t.tree[64..].iter().filter(|&&b| b != 0).count(), 0);
    }

    #[test]
    fn exact_multiple_of_128_adds_no_padding_block() {
        let t = tree_from_leaves(&vec![[3u8; 32]; 256]);
        // two leaf blocks + one top block
        assert_eq!(t.tree.len(), 3 * BLOCK);
    }
}
