//! The fixed VHD footer hcsshim appends (spec §3): 512 bytes, big-endian.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Size of the footer.
pub const FOOTER_SIZE: usize = 512;

/// Builds the footer for a payload of `size` bytes with the given unique id.
pub fn footer(size: u64, unique_id: [u8; 16]) -> [u8; FOOTER_SIZE] {
    let mut b = [0u8; FOOTER_SIZE];
    b[0..8].copy_from_slice(b"conectix");
    b[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit
    b[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version
    b[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: fixed disk
                                                        // timestamp, creator application: zero
    b[32..36].copy_from_slice(&0x000A_0000u32.to_be_bytes()); // creator version
                                                              // creator host OS: zero
    b[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    b[48..56].copy_from_slice(&size.to_be_bytes()); // current size
                                                    // disk geometry: zero, as the reference writes it
    b[60..64].copy_from_slice(&2u32.to_be_bytes()); // disk type: fixed
    b[68..84].copy_from_slice(&unique_id);
    let sum = checksum(&b);
    b[64..68].copy_from_slice(&sum.to_be_bytes());
    b
}

/// One's complement of the byte sum, with the checksum field counted as zero.
pub fn checksum(footer: &[u8; FOOTER_SIZE]) -> u32 {
    let mut sum: u32 = 0;
    for (i, &c) in footer.iter().enumerate() {
        if !(64..68).contains(&i) {
            sum = sum.wrapping_add(u32::from(c));
        }
    }
    !sum
}

/// 16 random bytes from the standard library's per-process random hash keys. The ids only
/// need to differ between images, not to be secret.
pub fn random_id() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_fields_and_checksum() {
        let f = footer(28672, [7; 16]);
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(u64::from_be_bytes(f[48..56].try_into().unwrap()), 28672);
        assert_eq!(
            u32::from_be_bytes(f[64..68].try_into().unwrap()),
            checksum(&f)
        );
        assert_ne!(random_id(), random_id());
    }
}
