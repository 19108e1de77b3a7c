//! Windows container image layers.
//!
//! * [`backup`], [`ea`], [`reparse`], [`fileinfo`]: the Win32 backup stream and the records
//!   it carries (security descriptors, extended attributes, reparse points, sparse blocks).
//! * [`guid`]: GUIDs, `NewGUID` and `NameToGuid`.

pub mod backup;
pub mod backuptar;
pub mod baselayer;
pub mod ea;
pub mod error;
pub mod fileinfo;
pub mod fs;
pub mod guid;
pub mod layer;
pub mod layout;
pub mod oci;
pub mod privilege;
pub mod reparse;
#[cfg(all(test, unix))]
mod testutil;

#[cfg_attr(windows, path = "sys/windows/mod.rs")]
#[cfg_attr(not(windows), path = "sys/other.rs")]
mod sys;

pub use error::{Error, Result};
pub use fileinfo::FileBasicInfo;
pub use guid::Guid;
