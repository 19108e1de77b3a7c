//! Extended attribute encoding: name-prefix compression, entry hashes, entry/value packing,
//! and the ordering of xattr-block entries.

use crate::format::{get16, get32, put16, put32};

/// Prefixes replaced by a name index, first match wins (same order as the reference).
const PREFIXES: [(u8, &[u8]); 7] = [
    (2, b"system.posix_acl_access"),
    (3, b"system.posix_acl_default"),
    (8, b"system.richacl"),
    (7, b"system."),
    (1, b"user."),
    (4, b"trusted."),
    (6, b"security."),
];

/// One attribute as stored: name index, name without its prefix, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// Name index (`EXT4_XATTR_INDEX_*`).
    pub index: u8,
    /// Name without the prefix the index stands for.
    pub name: Vec<u8>,
    /// Value bytes.
    pub value: Vec<u8>,
}

impl Xattr {
    /// Compresses a full name into index and suffix.
    pub fn new(full_name: &[u8], value: Vec<u8>) -> Xattr {
        for (index, prefix) in PREFIXES {
            if full_name.starts_with(prefix) {
                return Xattr {
                    index,
                    name: full_name[prefix.len()..].to_vec(),
                    value,
                };
            }
        }
        Xattr {
            index: 0,
            name: full_name.to_vec(),
            value,
        }
    }

    /// Bytes of the entry (16-byte header plus the name padded to 4).
    pub fn entry_len(&self) -> usize {
        ((self.name.len() + 3) & !3) + 16
    }

    /// Bytes of the value padded to 4.
    pub fn value_len(&self) -> usize {
        (self.value.len() + 3) & !3
    }
}

/// The full name for an index and suffix.
pub fn full_name(index: u8, name: &[u8]) -> Vec<u8> {
    for (i, prefix) in PREFIXES {
        if i == index {
            let mut v = prefix.to_vec();
            v.extend_from_slice(name);
            return v;
        }
    }
    name.to_vec()
}

/// The standard ext4 entry hash over the (suffix) name and the value.
pub fn entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    for &c in name {
        hash = (hash << 5) ^ (hash >> 27) ^ u32::from(c);
    }
    let mut chunks = value.chunks_exact(4);
    for w in &mut chunks {
        hash = (hash << 16) ^ (hash >> 16) ^ get32(w, 0);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        hash = (hash << 16) ^ (hash >> 16) ^ u32::from_le_bytes(last);
    }
    hash
}

/// The xattr block header hash as the kernel computes it from the entry hashes.
pub fn block_hash(xattrs: &[Xattr]) -> u32 {
    let mut hash: u32 = 0;
    for x in xattrs {
        let h = entry_hash(&x.name, &x.value);
        if h == 0 {
            return 0;
        }
        hash = (hash << 16) ^ (hash >> 16) ^ h;
    }
    hash
}

/// Packs entries from the start of `b` and values from its end downwards. Value offsets are
/// relative to the start of `b` plus `offset_delta` (0 in the inode, 32 in a block).
pub fn put_xattrs(xattrs: &[Xattr], b: &mut [u8], offset_delta: u16) {
    let mut offset = (b.len() as u16).wrapping_add(offset_delta);
    let mut e = 0usize;
    let mut d = b.len();
    for x in xattrs {
        let vl = x.value_len();
        offset = offset.wrapping_sub(vl as u16);
        b[e] = x.name.len() as u8;
        b[e + 1] = x.index;
        put16(b, e + 2, offset);
        put32(b, e + 8, x.value.len() as u32);
        put32(b, e + 12, entry_hash(&x.name, &x.value));
        b[e + 16..e + 16 + x.name.len()].copy_from_slice(&x.name);
        e += x.entry_len();
        b[d - vl..d - vl + x.value.len()].copy_from_slice(&x.value);
        d -= vl;
    }
}

/// Reads entries written by [`put_xattrs`] back as (full name, value) pairs, in entry order.
/// Malformed entries end the list instead of panicking. The reference stops at the first
/// entry with an empty name suffix, losing e.g. `system.posix_acl_access` (whose suffix is
/// empty); with `kernel_end` the list ends, as in the kernel, at a zero 32-bit word.
pub fn get_xattrs(b: &[u8], offset_delta: u16, kernel_end: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut e = 0usize;
    while e + 16 <= b.len() {
        let name_len = b[e] as usize;
        let end = if kernel_end {
            get32(b, e) == 0
        } else {
            name_len == 0
        };
        if end {
            break;
        }
        let index = b[e + 1];
        let offset = get16(b, e + 2).wrapping_sub(offset_delta) as usize;
        let value_len = get32(b, e + 8) as usize;
        let (Some(name), Some(value)) = (
            b.get(e + 16..e + 16 + name_len),
            b.get(offset..offset.saturating_add(value_len)),
        ) else {
            break;
        };
        out.push((full_name(index, name), value.to_vec()));
        e += ((name_len + 3) & !3) + 16;
    }
    out
}

/// The reference's "less" for xattr-block entries. It is not a strict weak ordering
/// (defect D5), so the resulting order depends on the sorting algorithm.
fn reference_less(a: &Xattr, b: &Xattr) -> bool {
    a.index < b.index || a.name.len() < b.name.len() || a.name < b.name
}

/// Orders xattr-block entries exactly as the reference does: Go's `sort.Slice` (pdqsort)
/// with the reference's comparator (index, then name length, then name, combined with `or`).
pub fn sort_reference(v: &mut [Xattr]) {
    crate::gosort::sort_slice(v, reference_less);
}

/// Orders xattr-block entries as the kernel and e2fsprogs do: by index, name length, name.
pub fn sort_kernel(v: &mut [Xattr]) {
    v.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
}

/// Converts a POSIX ACL from the xattr-API format (version 2, which tar archives carry) to
/// ext4's on-disk format (version 1, short entries for the `*_OBJ`, mask and other tags).
/// Returns `None` if the value is not a well-formed version-2 ACL.
pub fn acl_to_disk(v: &[u8]) -> Option<Vec<u8>> {
    const ACL_USER: u16 = 0x02;
    const ACL_GROUP: u16 = 0x08;
    if v.len() < 4 || get32(v, 0) != 2 || (v.len() - 4) % 8 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(v.len());
    out.extend_from_slice(&1u32.to_le_bytes());
    for e in v[4..].chunks_exact(8) {
        let tag = get16(e, 0);
        out.extend_from_slice(&e[0..4]);
        match tag {
            ACL_USER | ACL_GROUP => out.extend_from_slice(&e[4..8]),
            0x01 | 0x04 | 0x10 | 0x20 => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_compress_and_expand() {
        let x = Xattr::new(b"security.capability", vec![]);
        assert_eq!((x.index, x.name.as_slice()), (6, &b"capability"[..]));
        let x = Xattr::new(b"system.posix_acl_access", vec![]);
        assert_eq!((x.index, x.name.len()), (2, 0));
        assert_eq!(Xattr::new(b"foo.bar", vec![]).index, 0);
        assert_eq!(full_name(1, b"x"), b"user.x");
        assert_eq!(full_name(0, b"foo.x"), b"foo.x");
    }

    #[test]
    fn put_then_get_round_trips() {
        let xs = vec![
            Xattr::new(b"user.a", b"1".to_vec()),
            Xattr::new(b"trusted.overlay.opaque", b"y".to_vec()),
        ];
        let mut b = vec![0u8; 100];
        put_xattrs(&xs, &mut b, 0);
        let got = get_xattrs(&b, 0, true);
        assert_eq!(got[0], (b"user.a".to_vec(), b"1".to_vec()));
        assert_eq!(got[1], (b"trusted.overlay.opaque".to_vec(), b"y".to_vec()));
        // garbage never panics
        assert!(get_xattrs(&[0xff; 40], 0, true).len() <= 2);
        let acl = vec![Xattr::new(b"system.posix_acl_access", vec![1, 0, 0, 0])];
        put_xattrs(&acl, &mut b, 0);
        assert_eq!(get_xattrs(&b, 0, true).len(), 1);
        assert_eq!(get_xattrs(&b, 0, false).len(), 0);
    }

    #[test]
    fn acl_conversion_uses_short_entries() {
        // user::rw-, user:1000:r--, group::r--, mask::r--, other::---
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 4, 1000),
            (4, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        let d = acl_to_disk(&v).unwrap();
        assert_eq!(d.len(), 4 + 4 + 8 + 4 + 4 + 4);
        assert_eq!(get32(&d, 0), 1);
        assert_eq!(get32(&d, 12), 1000);
        assert!(acl_to_disk(b"junk").is_none());
    }
}
