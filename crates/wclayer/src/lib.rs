//! Windows container image layers (hcsshim's `internal/wclayer`, `pkg/ociwclayer` and
//! `cmd/wclayer`, hcs-hcn-api.md §6).
//!
//! * [`backup`], [`ea`], [`reparse`], [`fileinfo`]: the Win32 backup stream and the records
//!   it carries (security descriptors, extended attributes, reparse points, sparse blocks).
//! * [`backuptar`]: layer tar entries (PAX `MSWINDOWS.*` records, alternate data streams) ↔
//!   backup streams.
//! * [`layer`]: `NewLayerReader`/`NewLayerWriter` — base layers in place, layers with parents
//!   through the streaming exports or the transport format (`Files\`, `Hives\`,
//!   `UtilityVM\`, tombstones, `.$wcidirs$`), over two injected boundaries: [`fs::LayerFs`]
//!   (the file system) and [`layer::LayerStore`] (vmcompute.dll's layer operations).
//! * [`oci`]: `ImportLayerFromTar`/`ExportLayerToTar` (whiteouts, hard links).
//! * [`baselayer`]: `ConvertToBaseLayer`, `ProcessBaseLayer`, `ProcessUtilityVMImage`,
//!   `ExpandScratchSize` with the volume growth.
//! * [`guid`]: GUIDs, `NewGUID` and `NameToGuid`; [`layout`]: the layout constants and
//!   confined layer paths; [`privilege`]: the backup/restore privileges.
//!
//! # Where it runs
//!
//! Everything above the two boundaries is OS-neutral and tested on Linux. On Windows the
//! file system is NTFS through `BackupRead`/`BackupWrite` and the store is vmcompute.dll
//! (through the `hcs` crate). On Linux, [`layer::Layers::host`] gives a *layer folder*: file
//! content as content, the Windows metadata in a user extended attribute
//! ([`fs::unix`]), and a store that does the transport-format conversion of `ImportLayer` and
//! `ExportLayer` itself (it does not prepare images: that needs Windows). So `wclayer import`
//! and `export` work on Linux, losslessly, for inspection and tests; `create`, `mount`,
//! `unmount`, `remove` and `makebaselayer` need vmcompute.dll and report that elsewhere.

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
