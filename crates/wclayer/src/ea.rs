//! NTFS extended attributes as a backup stream carries them: a list of
//! `FILE_FULL_EA_INFORMATION` entries (`NextEntryOffset u32, Flags u8, NameLength u8,
//! ValueLength u16`, the name, a NUL, the value, padding to 4 bytes). Layer tars carry each
//! attribute as a PAX record `MSWINDOWS.xattr.<name>` (base64 value; the flags are dropped,
//! as go-winio does, since they mean nothing for persisted EAs).

use crate::error::{Error, Result};

const ENTRY_HEADER_LEN: usize = 8;

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedAttribute {
    /// The name (NTFS EA names are ASCII, at most 255 bytes).
    pub name: String,
    /// `FILE_NEED_EA` and friends.
    pub flags: u8,
    /// The value (at most 65535 bytes).
    pub value: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::ExtendedAttributes(msg.into())
}

/// Encodes a list as `FILE_FULL_EA_INFORMATION` entries (each padded to 4 bytes; the last
/// entry's `NextEntryOffset` is 0), as go-winio's `EncodeExtendedAttributes` does.
pub fn encode(eas: &[ExtendedAttribute]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, ea) in eas.iter().enumerate() {
        let name_len = u8::try_from(ea.name.len())
            .map_err(|_| bad(format!("name {:?} is longer than 255 bytes", ea.name)))?;
        let value_len = u16::try_from(ea.value.len())
            .map_err(|_| bad(format!("value of {:?} is longer than 65535 bytes", ea.name)))?;
        if ea.name.is_empty() || ea.name.as_bytes().contains(&0) {
            return Err(bad(format!("name {:?} is empty or has a NUL", ea.name)));
        }
        let entry = ENTRY_HEADER_LEN + ea.name.len() + 1 + ea.value.len();
        let padded = (entry + 3) & !3;
        let next = if i + 1 == eas.len() { 0 } else { padded as u32 };
        out.extend_from_slice(&next.to_le_bytes());
        out.push(ea.flags);
        out.push(name_len);
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(ea.name.as_bytes());
        out.push(0);
        out.extend_from_slice(&ea.value);
        out.resize(out.len() + (padded - entry), 0);
    }
    Ok(out)
}

/// Decodes a `FILE_FULL_EA_INFORMATION` list. Every offset and length is checked against the
/// buffer; entries may not overlap and names must be NUL-terminated UTF-8.
pub fn decode(mut b: &[u8]) -> Result<Vec<ExtendedAttribute>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < ENTRY_HEADER_LEN {
            return Err(bad(format!(
                "{} bytes left, shorter than an entry",
                b.len()
            )));
        }
        let next = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let flags = b[4];
        let name_len = b[5] as usize;
        let value_len = u16::from_le_bytes([b[6], b[7]]) as usize;
        let value_at = ENTRY_HEADER_LEN + name_len + 1;
        let end = value_at + value_len;
        if end > b.len() {
            return Err(bad(format!(
                "entry of {end} bytes overruns the {}-byte buffer",
                b.len()
            )));
        }
        if b[ENTRY_HEADER_LEN + name_len] != 0 {
            return Err(bad("name is not NUL-terminated"));
        }
        let name = std::str::from_utf8(&b[ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + name_len])
            .map_err(|_| bad("name is not UTF-8"))?;
        if name.is_empty() || name.contains('\0') {
            return Err(bad("empty name or a NUL inside it"));
        }
        out.push(ExtendedAttribute {
            name: name.to_string(),
            flags,
            value: b[value_at..end].to_vec(),
        });
        if next == 0 {
            break;
        }
        if next < end || next >= b.len() {
            return Err(bad(format!(
                "next entry offset {next} is inside the entry or past the buffer"
            )));
        }
        b = &b[next..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ea(name: &str, value: &[u8]) -> ExtendedAttribute {
        ExtendedAttribute {
            name: name.into(),
            flags: 0,
            value: value.to_vec(),
        }
    }

    #[test]
    fn encodes_like_go_winio() {
        // Layout checked by hand: 8-byte header, "ab\0", "xyz", padded to 16.
        let b = encode(&[ea("ab", b"xyz"), ea("c", b"")]).unwrap();
        assert_eq!(
            &b[..16],
            &[16, 0, 0, 0, 0, 2, 3, 0, b'a', b'b', 0, b'x', b'y', b'z', 0, 0]
        );
        // The last entry has next = 0 and is padded too.
        assert_eq!(&b[16..], &[0, 0, 0, 0, 0, 1, 0, 0, b'c', 0, 0, 0]);
        assert_eq!(decode(&b).unwrap(), vec![ea("ab", b"xyz"), ea("c", b"")]);
    }

    #[test]
    fn bad_buffers_are_refused() {
        let good = encode(&[ea("ab", b"xyz"), ea("c", b"v")]).unwrap();
        assert_eq!(good.len(), 28);
        // Up to the end of the second entry's value (byte 27; the rest is padding), every
        // cut leaves an entry short.
        for cut in 1..27 {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut overlap = good.clone();
        overlap[0] = 4; // next entry inside the first
        assert!(decode(&overlap).is_err());
        let mut no_nul = good.clone();
        no_nul[10] = b'!';
        assert!(decode(&no_nul).is_err());
        assert!(encode(&[ea(&"n".repeat(256), b"")]).is_err());
        assert!(encode(&[ea("n", &vec![0; 65536])]).is_err());
    }
}
