//! On-disk ext4 structures and constants used by the compact writer.
//!
//! Only the fields the writer sets are modelled; everything else in these structures is zero.
//! All multi-byte fields are little-endian.

/// Block size in bytes (`s_log_block_size = 2`).
pub const BLOCK_SIZE: u64 = 4096;
/// Block size as `usize`.
pub const BLOCK: usize = 4096;
/// Blocks per group: one bitmap block covers a group.
pub const BLOCKS_PER_GROUP: u32 = 32768;
/// Size of an on-disk inode.
pub const INODE_SIZE: u32 = 256;
/// Maximum inodes per group (limited by the one-block inode bitmap).
pub const MAX_INODES_PER_GROUP: u32 = 32768;
/// Inodes per group grow in steps of one inode-table block.
pub const INODES_PER_GROUP_INCREMENT: u32 = (BLOCK_SIZE as u32) / INODE_SIZE;
/// First non-reserved inode (`lost+found`).
pub const INODE_FIRST: u32 = 11;
/// The root directory inode.
pub const INODE_ROOT: u32 = 2;
/// Size of a group descriptor (no 64bit feature).
pub const GROUP_DESCRIPTOR_SIZE: u32 = 32;
/// Group descriptors per GDT block.
pub const GROUPS_PER_DESCRIPTOR_BLOCK: u32 = (BLOCK_SIZE as u32) / GROUP_DESCRIPTOR_SIZE;
/// Default maximum disk size (16 GiB).
pub const DEFAULT_MAX_DISK_SIZE: u64 = 16 << 30;
/// Largest allowed maximum disk size (16 TiB).
pub const MAX_MAX_DISK_SIZE: u64 = 16 << 40;
/// Largest regular file (128 GiB).
pub const MAX_FILE_SIZE: u64 = 128 << 30;
/// Longest symlink target stored in `i_block` ("fast" symlink).
pub const SMALL_SYMLINK_SIZE: u64 = 59;
/// Most blocks one initialized extent covers.
pub const MAX_BLOCKS_PER_EXTENT: u32 = 0x8000;
/// Size of `i_block`.
pub const INODE_DATA_SIZE: usize = 60;
/// Bytes of the inode that hold fields (through `i_crtime_extra`).
pub const INODE_USED_SIZE: usize = 152;
/// Bytes after the used fields: the in-inode xattr area.
pub const INODE_EXTRA_SIZE: usize = INODE_SIZE as usize - INODE_USED_SIZE;
/// `i_extra_isize` value.
pub const EXTRA_ISIZE: u16 = (INODE_USED_SIZE - 128) as u16;
/// In-inode xattr overhead: magic plus the terminating empty entry.
pub const XATTR_INODE_OVERHEAD: usize = 4 + 4;
/// Xattr block overhead: header plus the terminating empty entry.
pub const XATTR_BLOCK_OVERHEAD: usize = 32 + 4;
/// Overhead of the `system.data` entry used for inline data.
pub const INLINE_DATA_XATTR_OVERHEAD: usize = XATTR_INODE_OVERHEAD + 16 + 4;
/// Largest regular file stored inline (60 bytes in `i_block` plus 76 in `system.data`).
pub const INLINE_DATA_SIZE: u64 =
    (INODE_DATA_SIZE + INODE_EXTRA_SIZE - INLINE_DATA_XATTR_OVERHEAD) as u64;
/// Link count limit for files and for a directory's subdirectories.
pub const MAX_LINKS: u32 = 65000;
/// Magic of xattr headers (in-inode and block).
pub const XATTR_HEADER_MAGIC: u32 = 0xEA02_0000;
/// Magic of extent headers.
pub const EXTENT_HEADER_MAGIC: u16 = 0xF30A;
/// Extent leaf entries per extent block (one slot is taken by the header).
pub const EXTENTS_PER_BLOCK: u32 = (BLOCK_SIZE as u32) / 12 - 1;
/// Superblock magic.
pub const SUPERBLOCK_MAGIC: u16 = 0xEF53;

/// Mode type mask.
pub const S_IFMT: u16 = 0o170000;
/// Socket.
pub const S_IFSOCK: u16 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Block device.
pub const S_IFBLK: u16 = 0o060000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Character device.
pub const S_IFCHR: u16 = 0o020000;
/// FIFO.
pub const S_IFIFO: u16 = 0o010000;

/// `EXT4_HUGE_FILE_FL`: `i_blocks` counts filesystem blocks.
pub const INODE_FLAG_HUGE_FILE: u32 = 0x40000;
/// `EXT4_EXTENTS_FL`.
pub const INODE_FLAG_EXTENTS: u32 = 0x80000;
/// `EXT4_INLINE_DATA_FL`.
pub const INODE_FLAG_INLINE_DATA: u32 = 0x1000_0000;

/// compat: `ext_attr`.
pub const COMPAT_EXT_ATTR: u32 = 0x8;
/// compat: `sparse_super2`.
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// incompat: `filetype`.
pub const INCOMPAT_FILETYPE: u32 = 0x2;
/// incompat: `extents`.
pub const INCOMPAT_EXTENTS: u32 = 0x40;
/// incompat: `flex_bg`.
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
/// incompat: `inline_data`.
pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;
/// ro_compat: `large_file`.
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
/// ro_compat: `huge_file`.
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
/// ro_compat: `extra_isize`.
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
/// ro_compat: `readonly`.
pub const RO_COMPAT_READONLY: u32 = 0x1000;

/// Directory entry file type for a mode (`EXT4_FT_*`).
pub fn file_type(mode: u16) -> u8 {
    match mode & S_IFMT {
        S_IFREG => 1,
        S_IFDIR => 2,
        S_IFCHR => 3,
        S_IFBLK => 4,
        S_IFIFO => 5,
        S_IFSOCK => 6,
        S_IFLNK => 7,
        _ => 0,
    }
}

/// Little-endian field writers on a byte slice.
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u32 at `off`.
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian u16 at `off`.
pub(crate) fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Reads a little-endian u32 at `off`.
pub(crate) fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The superblock fields the writer sets (all others are zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuperBlock {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// `s_blocks_count_lo`.
    pub blocks_count: u32,
    /// `s_free_blocks_count_lo`.
    pub free_blocks_count: u32,
    /// `s_free_inodes_count`.
    pub free_inodes_count: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// `s_feature_compat`.
    pub feature_compat: u32,
    /// `s_feature_incompat`.
    pub feature_incompat: u32,
    /// `s_feature_ro_compat`.
    pub feature_ro_compat: u32,
    /// `s_log_block_size`.
    pub log_block_size: u32,
}

impl SuperBlock {
    /// Serializes the 1024-byte superblock.
    pub fn to_bytes(&self) -> [u8; 1024] {
        let mut b = [0u8; 1024];
        put32(&mut b, 0, self.inodes_count);
        put32(&mut b, 4, self.blocks_count);
        put32(&mut b, 12, self.free_blocks_count);
        put32(&mut b, 16, self.free_inodes_count);
        put32(&mut b, 20, 0); // s_first_data_block
        put32(&mut b, 24, 2); // s_log_block_size: 1024 << 2
        put32(&mut b, 28, 2); // s_log_cluster_size
        put32(&mut b, 32, BLOCKS_PER_GROUP);
        put32(&mut b, 36, BLOCKS_PER_GROUP);
        put32(&mut b, 40, self.inodes_per_group);
        put16(&mut b, 56, SUPERBLOCK_MAGIC);
        put16(&mut b, 58, 1); // s_state: cleanly unmounted
        put16(&mut b, 60, 1); // s_errors: continue
        put32(&mut b, 72, 0); // s_creator_os: Linux
        put32(&mut b, 76, 1); // s_rev_level: dynamic
        put32(&mut b, 84, INODE_FIRST);
        put16(&mut b, 88, INODE_SIZE as u16);
        put32(&mut b, 92, self.feature_compat);
        put32(&mut b, 96, self.feature_incompat);
        put32(&mut b, 100, self.feature_ro_compat);
        put16(&mut b, 348, EXTRA_ISIZE); // s_min_extra_isize
        put16(&mut b, 350, EXTRA_ISIZE); // s_want_extra_isize
        b[372] = 31; // s_log_groups_per_flex: one flex group
        put32(&mut b, 0x268, INODE_FIRST); // s_lpf_ino
        b
    }

    /// Parses the fields this crate needs from a 1024-byte superblock.
    pub fn parse(b: &[u8]) -> Option<SuperBlock> {
        if b.len() < 1024 || get16(b, 56) != SUPERBLOCK_MAGIC {
            return None;
        }
        Some(SuperBlock {
            inodes_count: get32(b, 0),
            blocks_count: get32(b, 4),
            free_blocks_count: get32(b, 12),
            free_inodes_count: get32(b, 16),
            inodes_per_group: get32(b, 40),
            feature_compat: get32(b, 92),
            feature_incompat: get32(b, 96),
            feature_ro_compat: get32(b, 100),
            log_block_size: get32(b, 24),
        })
    }
}

/// A 32-byte group descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupDescriptor {
    /// `bg_block_bitmap_lo`.
    pub block_bitmap: u32,
    /// `bg_inode_bitmap_lo`.
    pub inode_bitmap: u32,
    /// `bg_inode_table_lo`.
    pub inode_table: u32,
    /// `bg_free_blocks_count_lo`.
    pub free_blocks: u16,
    /// `bg_free_inodes_count_lo`.
    pub free_inodes: u16,
    /// `bg_used_dirs_count_lo`.
    pub used_dirs: u16,
}

impl GroupDescriptor {
    /// Serializes into `b` (32 bytes).
    pub fn write_to(&self, b: &mut [u8]) {
        put32(b, 0, self.block_bitmap);
        put32(b, 4, self.inode_bitmap);
        put32(b, 8, self.inode_table);
        put16(b, 12, self.free_blocks);
        put16(b, 14, self.free_inodes);
        put16(b, 16, self.used_dirs);
    }
}

/// Writes an extent header.
pub(crate) fn put_extent_header(b: &mut [u8], entries: u16, max: u16, depth: u16) {
    put16(b, 0, EXTENT_HEADER_MAGIC);
    put16(b, 2, entries);
    put16(b, 4, max);
    put16(b, 6, depth);
}

/// Writes an extent leaf entry (`ee_start_hi` is always 0: no 64bit feature).
pub(crate) fn put_extent_leaf(b: &mut [u8], block: u32, len: u16, start: u32) {
    put32(b, 0, block);
    put16(b, 4, len);
    put32(b, 8, start);
}

/// Writes an extent index entry.
pub(crate) fn put_extent_index(b: &mut [u8], block: u32, leaf: u32) {
    put32(b, 0, block);
    put32(b, 4, leaf);
}
