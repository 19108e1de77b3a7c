//! The transport format of `ExportLayer`/`ImportLayer` (hcsshim's `legacy.go`), the form a
//! layer with parents takes between a layer reader or writer and vmcompute.dll:
//!
//! * `Files\<path>` is a plain file holding the entry's attributes (u32, little-endian) and
//!   then its Win32 backup stream; the file's own times are the entry's. A directory is a
//!   directory plus `<dir>.$wcidirs$`, a file of the same form with the directory's metadata.
//! * `Hives\<path>`, `Files` and `Hives` themselves are real files and directories, read and
//!   written through the backup APIs without security descriptors.
//! * `UtilityVM\Files\...` is written straight into the destination layer; a layer writer
//!   first clones the parent's utility VM into it with hard links (copying the directories,
//!   the reparse points and the files the import mutates).
//! * `tombstones.txt` lists deleted paths (`\path` below `Files`, after a `Version 1.0`
//!   line). A writer applies the deletions itself after the import, and hard links last.
//!
//! [`reader`] reads such a folder, [`writer`] writes one and drives the import, [`folder`]
//! converts between the format and a layer folder for hosts without vmcompute.dll.

pub mod folder;
pub mod reader;
pub mod writer;

pub use reader::LegacyLayerReader;
pub use writer::{LegacyImport, LegacyLayerWriter};

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fileinfo::FileBasicInfo;
use crate::fs::LayerFs;
use crate::layout::{LayerPath, FILES_PATH, TOMBSTONES_HEADER};

/// Largest `tombstones.txt` read.
pub const MAX_TOMBSTONES_FILE: u64 = 64 << 20;

/// Parses `tombstones.txt`: the header line, then one `\path` (below `Files`) per line
/// (CRLF or LF). Blank lines are skipped; anything else malformed is an error.
pub fn parse_tombstones(text: &[u8]) -> Result<Vec<LayerPath>> {
    let text = std::str::from_utf8(text)
        .map_err(|_| Error::InvalidLayer("tombstones.txt is not UTF-8".into()))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some(TOMBSTONES_HEADER) {
        return Err(Error::InvalidLayer("invalid tombstones file".into()));
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix('\\').ok_or_else(|| {
            Error::InvalidLayer(format!("tombstone {line:?} does not start with '\\'"))
        })?;
        out.push(LayerPath::parse(&format!("{FILES_PATH}\\{rest}"))?);
    }
    Ok(out)
}

/// Formats `tombstones.txt` for `names` (all below `Files`).
pub fn format_tombstones(names: &[LayerPath]) -> Result<String> {
    let mut s = format!("{TOMBSTONES_HEADER}\r\n");
    for n in names {
        let below = n
            .strip_prefix(FILES_PATH)
            .ok_or_else(|| Error::InvalidLayer(format!("tombstone {n} is outside Files")))?;
        s.push('\\');
        s.push_str(below.as_str());
        s.push_str("\r\n");
    }
    Ok(s)
}

/// Reads a `Files\` transport file: its basic info (times of the file, attributes from its
/// first four bytes) and the file positioned at its backup stream.
pub(crate) fn open_transport(fs: &dyn LayerFs, path: &Path) -> Result<(FileBasicInfo, File)> {
    let mut f = fs.open_file(path)?;
    let mut info = fs.basic_info(path)?;
    let mut attrs = [0u8; 4];
    f.read_exact(&mut attrs).map_err(|e| {
        Error::InvalidLayer(format!(
            "{}: no attributes before the backup stream ({e})",
            path.display()
        ))
    })?;
    info.file_attributes = u32::from_le_bytes(attrs);
    Ok((info, f))
}

/// The entry's basic info with the attributes cleared, as transport files carry it (the
/// attributes are in the content).
pub(crate) fn stripped(info: &FileBasicInfo) -> FileBasicInfo {
    FileBasicInfo {
        file_attributes: 0,
        ..*info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_round_trip() {
        let names = vec![
            LayerPath::parse(r"Files\a\b.txt").unwrap(),
            LayerPath::parse(r"Files\日本").unwrap(),
        ];
        let text = format_tombstones(&names).unwrap();
        assert!(text.starts_with("\u{feff}Version 1.0\r\n\\a\\b.txt\r\n"));
        assert_eq!(parse_tombstones(text.as_bytes()).unwrap(), names);
        // LF endings and a trailing blank line are fine.
        let lf = "\u{feff}Version 1.0\n\\x\n\n";
        assert_eq!(
            parse_tombstones(lf.as_bytes()).unwrap(),
            [LayerPath::parse(r"Files\x").unwrap()]
        );
        for bad in [
            "Version 1.0\n\\x",
            "\u{feff}Version 1.0\nx",
            "\u{feff}Version 1.0\n\\..\\x",
            "",
        ] {
            assert!(parse_tombstones(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(format_tombstones(&[LayerPath::parse("Hives\\x").unwrap()]).is_err());
    }
}
