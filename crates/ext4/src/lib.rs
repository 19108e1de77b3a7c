//! Compact ext4 writer, tar2ext4, dm-verity and fixed VHD footer.
//!
//! Turns OCI layer tars into the read-only ext4 images the utility VM mounts, in the layout of
//! hcsshim's `tar2ext4` (see `shared/spec/ext4-uvm.md` §1–§4). Two output modes:
//! [`OutputMode::Compat`] reproduces the reference byte for byte (dm-verity root hashes in
//! confidential-container policies are hashes of those bytes), [`OutputMode::Default`] keeps
//! the layout but fixes the reference's defects so that `e2fsck -fn` is clean.
//!
//! # What the default mode changes
//!
//! Relative to the reference (spec §1.15), [`OutputMode::Default`]:
//! * sets the inode-bitmap padding bits (D1), so `e2fsck -fn` exits 0;
//! * stores times the way the kernel reads them (signed base, epoch bits), so times before
//!   1970 and from 2038 to 2446 read back correctly (D2);
//! * converts `system.posix_acl_*` values from the tar's xattr-API format to ext4's on-disk
//!   format, so the kernel can read them (D3);
//! * orders xattr-block entries as the kernel does and fills in the block hash (D5, D8);
//! * skips PAX global headers instead of turning them into empty files (D6);
//! * requires the tar's end-of-archive marker (a stream cut at an entry boundary is an error);
//! * rejects xattr names ext4 cannot store, and keeps ACL xattrs when an entry is replaced.
//!
//! Both modes split the depth-1 extent trees of files of 340 extents (42.5 GiB) or more
//! correctly (D4); the reference's images of such files are corrupt, so no hash depends on them.
//!
//! # Normalisations (both modes)
//!
//! * Names are cleaned like Go's `path.Clean("/" + name)`: `./x`, `/x` and `../x` all become
//!   `x`, so no entry can land outside the image's root; `./` and `/` name the root itself.
//! * A later entry for an existing path replaces its metadata (xattrs kept in the inode are
//!   merged); a regular file whose data is already written cannot be replaced (error), nor can
//!   a directory become a file or the reverse. A path with two or more links gets a new inode.
//! * Parent directories missing from the tar are created with the mode, owner and times of
//!   their own parent; a later entry for the directory sets its real metadata.
//! * Names longer than 255 bytes, files over 128 GiB, images over the maximum disk size,
//!   hard links to directories or to missing files are errors.
//!
//! Modules: [`format`](mod@format) (on-disk structures), [`writer`] (the compact ext4 writer),
//! [`tarstream`] (Go-compatible tar reading), [`tar2ext4`] (the conversion and its options),
//! [`verity`] (dm-verity tree and superblock), [`vhd`] (fixed VHD footer), [`check`] (a
//! structural image checker), [`error`].

pub mod check;
pub mod error;
pub mod format;
mod gosort;
mod sink;
pub mod tar2ext4;
pub mod tarstream;
pub mod time;
pub mod verity;
pub mod vhd;
pub mod writer;
pub mod xattr;

pub use error::{Error, Result};
pub use tar2ext4::{convert, convert_tar_to_ext4, convert_to_path, Options, Outcome};
pub use writer::{File, OutputMode, Writer, WriterOptions};
