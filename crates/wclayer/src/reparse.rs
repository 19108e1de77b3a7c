//! Symbolic links and mount points (junctions) as `REPARSE_DATA_BUFFER`s, the form the
//! backup stream's `BACKUP_REPARSE_DATA` record carries. A layer tar stores them as symlink
//! entries (`MSWINDOWS.mountpoint` marks a junction); other reparse tags cannot be carried.
//!
//! Encoding follows go-winio's `EncodeReparsePoint` (an NT substitute name, then the print
//! name, both NUL-terminated; relative symlinks get flag 1); decoding reads the print name as
//! go-winio's `DecodeReparsePoint` does, but checks every offset (the reference panics on a
//! short buffer).

use crate::error::{Error, Result};

/// `IO_REPARSE_TAG_MOUNT_POINT`.
pub const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// `IO_REPARSE_TAG_SYMLINK`.
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
/// `SYMLINK_FLAG_RELATIVE`.
pub const SYMLINK_FLAG_RELATIVE: u32 = 1;
/// `MAXIMUM_REPARSE_DATA_BUFFER_SIZE`.
pub const MAX_REPARSE_DATA: usize = 16 * 1024;

/// A symlink or mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReparsePoint {
    /// The target as the user wrote it (the print name).
    pub target: String,
    /// A junction rather than a symlink.
    pub is_mount_point: bool,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::ReparsePoint(msg.into())
}

impl ReparsePoint {
    /// Encodes the point as a `REPARSE_DATA_BUFFER`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let t = &self.target;
        let bytes = t.as_bytes();
        let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
        // The NT form of the target; anything not absolute stays relative.
        let (nt, relative) = if let Some(rest) = t.strip_prefix(r"\\?\") {
            (format!(r"\??\{rest}"), false)
        } else if let Some(rest) = t.strip_prefix(r"\\") {
            (format!(r"\??\UNC\{rest}"), false)
        } else if drive {
            (format!(r"\??\{t}"), false)
        } else {
            (t.clone(), true)
        };
        let nt16: Vec<u16> = nt.encode_utf16().chain([0]).collect();
        let t16: Vec<u16> = t.encode_utf16().chain([0]).collect();
        let mut data_len = 8 + nt16.len() * 2 + t16.len() * 2;
        let tag = if self.is_mount_point {
            IO_REPARSE_TAG_MOUNT_POINT
        } else {
            data_len += 4;
            IO_REPARSE_TAG_SYMLINK
        };
        if data_len + 8 > MAX_REPARSE_DATA {
            return Err(bad(format!("target of {} bytes is too long", t.len())));
        }
        let u16_of = |n: usize| (n as u16).to_le_bytes();
        let mut b = Vec::with_capacity(data_len + 8);
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&u16_of(data_len));
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&u16_of(0));
        b.extend_from_slice(&u16_of((nt16.len() - 1) * 2));
        b.extend_from_slice(&u16_of(nt16.len() * 2));
        b.extend_from_slice(&u16_of((t16.len() - 1) * 2));
        if !self.is_mount_point {
            let flags = if relative { SYMLINK_FLAG_RELATIVE } else { 0 };
            b.extend_from_slice(&flags.to_le_bytes());
        }
        for u in nt16.iter().chain(&t16) {
            b.extend_from_slice(&u.to_le_bytes());
        }
        Ok(b)
    }

    /// Decodes a `REPARSE_DATA_BUFFER` of a symlink or mount point.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < 8 {
            return Err(bad(format!("{} bytes is shorter than a header", b.len())));
        }
        let tag = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let data_len = u16::from_le_bytes([b[4], b[5]]) as usize;
        let is_mount_point = match tag {
            IO_REPARSE_TAG_MOUNT_POINT => true,
            IO_REPARSE_TAG_SYMLINK => false,
            other => {
                return Err(bad(format!(
                    "tag {other:#010x} is neither a symlink nor a mount point"
                )))
            }
        };
        let data = b
            .get(8..8 + data_len)
            .ok_or_else(|| bad(format!("data length {data_len} overruns the buffer")))?;
        if data.len() < 8 {
            return Err(bad("data too short for the name offsets"));
        }
        let print_off = u16::from_le_bytes([data[4], data[5]]) as usize;
        let print_len = u16::from_le_bytes([data[6], data[7]]) as usize;
        let names_at = if is_mount_point { 8 } else { 12 };
        let start = names_at + print_off;
        let name = data
            .get(start..start + print_len)
            .ok_or_else(|| bad("print name overruns the buffer"))?;
        if print_len % 2 != 0 {
            return Err(bad("print name has an odd byte length"));
        }
        let units: Vec<u16> = name
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let target = String::from_utf16(&units).map_err(|_| bad("print name is not UTF-16"))?;
        Ok(Self {
            target,
            is_mount_point,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_mount_points_round_trip() {
        for (target, mp) in [
            (r"C:\Windows\System32", false),
            (r"..\sibling\file.txt", false),
            (r"\\server\share\x", false),
            (r"\\?\Volume{01234567-89ab-cdef-0123-456789abcdef}\", true),
            (r"C:\ProgramData\日本", true),
            ("", false),
        ] {
            let rp = ReparsePoint {
                target: target.into(),
                is_mount_point: mp,
            };
            let b = rp.encode().unwrap();
            assert_eq!(ReparsePoint::decode(&b).unwrap(), rp, "{target}");
        }
    }

    #[test]
    fn encoding_matches_go_winio_layout() {
        let b = ReparsePoint {
            target: "a".into(),
            is_mount_point: false,
        }
        .encode()
        .unwrap();
        // Relative: substitute name "a", flags = 1.
        #[rustfmt::skip]
        let want = [
            0x0C, 0, 0, 0xA0, // tag
            20, 0, 0, 0,      // data length 8 + 4 (flags) + 4 + 4, reserved
            0, 0, 2, 0,       // substitute name at 0, 2 bytes
            4, 0, 2, 0,       // print name at 4, 2 bytes
            1, 0, 0, 0,       // SYMLINK_FLAG_RELATIVE
            b'a', 0, 0, 0, b'a', 0, 0, 0,
        ];
        assert_eq!(b, want);
        let abs = ReparsePoint {
            target: r"C:\x".into(),
            is_mount_point: true,
        }
        .encode()
        .unwrap();
        let nt: String = abs[16..16 + 12].chunks(2).map(|c| c[0] as char).collect();
        assert_eq!(nt, r"\??\C:");
    }

    #[test]
    fn hostile_buffers_are_refused() {
        let good = ReparsePoint {
            target: r"C:\target".into(),
            is_mount_point: false,
        }
        .encode()
        .unwrap();
        for cut in 0..good.len() {
            assert!(ReparsePoint::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut other_tag = good.clone();
        other_tag[..4].copy_from_slice(&0x8000_0017u32.to_le_bytes());
        assert!(ReparsePoint::decode(&other_tag).is_err());
        let mut far = good.clone();
        far[12] = 0xFF; // print name offset past the end
        assert!(ReparsePoint::decode(&far).is_err());
    }
}
