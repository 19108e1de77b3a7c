//! The on-disk layout of Windows layers (hcsshim's `legacy.go` constants) and the paths
//! inside them.
//!
//! A layer folder holds `Files\` (the container's file system), `Hives\` (registry deltas of
//! non-base layers), `UtilityVM\Files\` (the utility VM image of base layers) and, in the
//! transport format `ExportLayer` writes and `ImportLayer` reads, `tombstones.txt` (the
//! deletions) and a `<dir>.$wcidirs$` file beside each directory of `Files\`.
//!
//! Paths inside a layer are [`LayerPath`]s: relative, `\`-separated, cleaned, with no `..`,
//! no drive, no stream syntax (`:`) and no NUL, so joining one to a layer root can never leave
//! the root lexically. (Symlinks cannot redirect a join either: layer writers never create
//! real symlinks below a root — reparse points are recreated only after all files are in.)

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `Files`.
pub const FILES_PATH: &str = "Files";
/// `Hives`.
pub const HIVES_PATH: &str = "Hives";
/// `UtilityVM`.
pub const UTILITY_VM_PATH: &str = "UtilityVM";
/// `UtilityVM\Files`.
pub const UTILITY_VM_FILES_PATH: &str = r"UtilityVM\Files";
/// `Files\Windows\System32\config`: where a base layer's registry hives live.
pub const REG_FILES_PATH: &str = r"Files\Windows\System32\config";
/// `\EFI\Microsoft\Boot`, relative to `UtilityVM\Files`.
pub const BOOT_DIR_RELATIVE_PATH: &str = r"\EFI\Microsoft\Boot";
/// The utility VM's boot configuration store.
pub const BCD_FILE_PATH: &str = r"UtilityVM\Files\EFI\Microsoft\Boot\BCD";
/// The utility VM's boot manager.
pub const BOOT_MGR_FILE_PATH: &str = r"UtilityVM\Files\EFI\Microsoft\Boot\bootmgfw.efi";
/// `blank-base.vhdx`.
pub const CONTAINER_BASE_VHD: &str = "blank-base.vhdx";
/// `blank.vhdx`.
pub const CONTAINER_SCRATCH_VHD: &str = "blank.vhdx";
/// `SystemTemplateBase.vhdx`.
pub const UTILITY_VM_BASE_VHD: &str = "SystemTemplateBase.vhdx";
/// `SystemTemplate.vhdx`.
pub const UTILITY_VM_SCRATCH_VHD: &str = "SystemTemplate.vhdx";
/// `layout`.
pub const LAYOUT_FILE_NAME: &str = "layout";
/// `uvmbuildversion`: the utility VM's build, a decimal u16.
pub const UVM_BUILD_FILE_NAME: &str = "uvmbuildversion";
/// The transport format's list of deletions.
pub const TOMBSTONES_FILE: &str = "tombstones.txt";
/// The first line of [`TOMBSTONES_FILE`] (with its UTF-8 byte order mark).
pub const TOMBSTONES_HEADER: &str = "\u{feff}Version 1.0";
/// Suffix of the file that carries a transport directory's attributes and backup stream.
pub const WCIDIRS_SUFFIX: &str = ".$wcidirs$";
/// The registry hives a base layer must have under [`REG_FILES_PATH`].
pub const HIVE_NAMES: [&str; 5] = ["DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"];

/// Utility VM files the import mutates: copied rather than hard-linked from the parent, and
/// saved aside (to the layer root under these names) when a tar is imported.
pub const MUTATED_UTILITY_VM_FILES: [(&str, &str); 4] = [
    (r"EFI\Microsoft\Boot\BCD", "bcd.bak"),
    (r"EFI\Microsoft\Boot\BCD.LOG", "bcd.log.bak"),
    (r"EFI\Microsoft\Boot\BCD.LOG1", "bcd.log1.bak"),
    (r"EFI\Microsoft\Boot\BCD.LOG2", "bcd.log2.bak"),
];

/// A validated relative path inside a layer, `\`-separated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerPath(String);

impl LayerPath {
    /// Cleans and checks `name` (`\` or `/` separators). `.` components and repeated or
    /// trailing separators are dropped, as `filepath.Clean` does; an absolute path, a drive,
    /// `..`, `:`, NUL or an empty result is an error.
    pub fn parse(name: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidPath {
            path: name.to_string(),
            reason,
        };
        if name.starts_with(['\\', '/']) {
            return Err(bad("absolute"));
        }
        if name.contains('\0') {
            return Err(bad("contains NUL"));
        }
        if name.contains(':') {
            return Err(bad("contains ':' (a drive or a stream name)"));
        }
        let mut parts = Vec::new();
        for c in name.split(['\\', '/']) {
            match c {
                "" | "." => {}
                ".." => return Err(bad("contains '..'")),
                c => parts.push(c),
            }
        }
        if parts.is_empty() {
            return Err(bad("empty"));
        }
        Ok(Self(parts.join("\\")))
    }

    /// The path, `\`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with `/` separators (tar names).
    pub fn to_slash(&self) -> String {
        self.0.replace('\\', "/")
    }

    /// The components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('\\')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('\\').next().unwrap_or(&self.0)
    }

    /// The parent path; `None` for a top-level name.
    pub fn parent(&self) -> Option<LayerPath> {
        self.0
            .rsplit_once('\\')
            .map(|(p, _)| LayerPath(p.to_string()))
    }

    /// `self\name` (`name` must be one valid component).
    pub fn join(&self, name: &str) -> Result<LayerPath> {
        LayerPath::parse(&format!("{}\\{name}", self.0))
    }

    /// The same path with `suffix` appended to its last component.
    pub fn with_suffix(&self, suffix: &str) -> LayerPath {
        LayerPath(format!("{}{suffix}", self.0))
    }

    /// `hasPathPrefix`: whether the path is strictly below `prefix` (case-sensitive, as in the
    /// reference).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        has_path_prefix(&self.0, prefix)
    }

    /// The path below `prefix`, if it is below it.
    pub fn strip_prefix(&self, prefix: &str) -> Option<LayerPath> {
        if self.has_prefix(prefix) {
            Some(LayerPath(self.0[prefix.len() + 1..].to_string()))
        } else {
            None
        }
    }

    /// `root` joined with this path, one component at a time.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        for c in self.components() {
            p.push(c);
        }
        p
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `hasPathPrefix(p, prefix)`: `p` starts with `prefix\`.
pub fn has_path_prefix(p: &str, prefix: &str) -> bool {
    p.len() > prefix.len() && p.starts_with(prefix) && p.as_bytes()[prefix.len()] == b'\\'
}

/// Reads the utility VM build of a layer (`uvmbuildversion`, a decimal u16).
pub fn get_layer_uvm_build(layer: &Path) -> Result<u16> {
    let p = layer.join(UVM_BUILD_FILE_NAME);
    let s = std::fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
    s.trim()
        .parse()
        .map_err(|_| Error::InvalidLayer(format!("{}: {s:?} is not a build number", p.display())))
}

/// Writes the utility VM build of a layer.
pub fn write_layer_uvm_build(layer: &Path, build: u16) -> Result<()> {
    let p = layer.join(UVM_BUILD_FILE_NAME);
    std::fs::write(&p, build.to_string()).map_err(|e| Error::io("write", &p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_confined() {
        let ok = |s: &str| LayerPath::parse(s).unwrap().as_str().to_string();
        assert_eq!(ok("Files/a/b"), r"Files\a\b");
        assert_eq!(ok(r"Files\.\a\\b\"), r"Files\a\b");
        assert_eq!(ok("Files/日本/x y"), r"Files\日本\x y");
        for bad in [
            "",
            ".",
            "/Files",
            r"\Files",
            "C:/x",
            "Files/../x",
            "..",
            "Files/a:b",
            "a\0b",
        ] {
            assert!(LayerPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_and_parts() {
        let p = LayerPath::parse(r"UtilityVM\Files\EFI").unwrap();
        assert!(p.has_prefix(UTILITY_VM_PATH));
        assert!(p.has_prefix(UTILITY_VM_FILES_PATH));
        assert!(!p.has_prefix(FILES_PATH));
        assert!(!LayerPath::parse("Files").unwrap().has_prefix(FILES_PATH));
        assert!(!LayerPath::parse("FilesX").unwrap().has_prefix(FILES_PATH));
        assert_eq!(
            p.strip_prefix(UTILITY_VM_FILES_PATH).unwrap().as_str(),
            "EFI"
        );
        assert_eq!(p.parent().unwrap().as_str(), UTILITY_VM_FILES_PATH);
        assert_eq!(p.file_name(), "EFI");
        assert_eq!(p.to_slash(), "UtilityVM/Files/EFI");
        assert_eq!(
            p.under(Path::new("/l")),
            Path::new("/l/UtilityVM/Files/EFI")
        );
        assert!(LayerPath::parse("Files").unwrap().parent().is_none());
    }

    #[test]
    fn uvm_build_file() {
        let d = tempfile::tempdir().unwrap();
        write_layer_uvm_build(d.path(), 17763).unwrap();
        assert_eq!(get_layer_uvm_build(d.path()).unwrap(), 17763);
        std::fs::write(d.path().join(UVM_BUILD_FILE_NAME), "x").unwrap();
        assert!(get_layer_uvm_build(d.path()).is_err());
    }
}
