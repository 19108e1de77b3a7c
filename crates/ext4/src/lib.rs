//! Compact ext4 writer, tar2ext4, dm-verity and fixed VHD footer.
//!
//! Turns OCI layer tars into the read-only ext4 images the utility VM mounts, in the layout of
//! hcsshim's `tar2ext4` (see `shared/spec/ext4-uvm.md` §1–§4). Two output modes:
//! [`OutputMode::Compat`] reproduces the reference byte for byte (dm-verity root hashes in
//! confidential-container policies are hashes of those bytes), [`OutputMode::Default`] keeps
//! the layout but fixes the reference's defects so that `e2fsck -fn` is clean.
//!
//! Modules: [`format`] (on-disk structures), [`writer`] (the compact ext4 writer),
//! [`tarstream`] (Go-compatible tar reading), [`tar2ext4`] (the conversion and its options),
//! [`verity`] (dm-verity tree and superblock), [`vhd`] (fixed VHD footer), [`error`].

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
