//! Header blocks as Go's reader decodes them: the tar format (V7, USTAR/PAX, GNU, STAR)
//! told by magic and checksum, and the numeric fields (octal or base-256).

use super::{bad, cstr, Header, BLOCK};
use crate::error::Result;
use crate::time::Timestamp;

#[derive(Default)]
pub(super) struct Parser {
    pub(super) err: bool,
}

impl Parser {
    fn octal(&mut self, b: &[u8]) -> i64 {
        let start = b.iter().position(|&c| c != b' ' && c != 0);
        let Some(start) = start else { return 0 };
        let end = b
            .iter()
            .rposition(|&c| c != b' ' && c != 0)
            .unwrap_or(start);
        let s = cstr(&b[start..=end]);
        match std::str::from_utf8(s)
            .ok()
            .filter(|s| !s.starts_with('+'))
            .and_then(|s| u64::from_str_radix(s, 8).ok())
        {
            Some(v) => v as i64,
            None => {
                self.err = true;
                0
            }
        }
    }

    pub(super) fn numeric(&mut self, b: &[u8]) -> i64 {
        if !b.is_empty() && b[0] & 0x80 != 0 {
            let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in b.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                if x >> 56 > 0 {
                    self.err = true;
                    return 0;
                }
                x = (x << 8) | u64::from(c);
            }
            if x >> 63 > 0 {
                self.err = true;
                return 0;
            }
            return if inv == 0xff { !(x as i64) } else { x as i64 };
        }
        self.octal(b)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Format {
    Unknown,
    V7,
    UstarPax,
    Gnu,
    Star,
}

fn get_format(b: &[u8; BLOCK]) -> Format {
    let mut p = Parser::default();
    let value = p.octal(&b[148..156]);
    // The checksum counts its own 8 bytes as spaces. Summing every byte and then swapping
    // the field's bytes for spaces keeps the loop branch-free (it vectorizes; this runs
    // once per header, and headers dominate tars of many small files).
    let sums = |bytes: &[u8]| {
        bytes.iter().fold((0i64, 0i64), |(u, s), &c| {
            (u + i64::from(c), s + i64::from(c as i8))
        })
    };
    let (all_u, all_s) = sums(&b[..]);
    let (field_u, field_s) = sums(&b[148..156]);
    let spaces = 8 * i64::from(b' ');
    let (unsigned, signed) = (all_u - field_u + spaces, all_s - field_s + spaces);
    if p.err || (value != unsigned && value != signed) {
        return Format::Unknown;
    }
    let magic = &b[257..263];
    let version = &b[263..265];
    let trailer = &b[508..512];
    if magic == b"ustar\0" && trailer == b"tar\0" {
        Format::Star
    } else if magic == b"ustar\0" {
        Format::UstarPax
    } else if magic == b"ustar " && version == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    }
}

pub(super) fn parse_header(b: &[u8; BLOCK]) -> Result<(Header, Format)> {
    let format = get_format(b);
    if format == Format::Unknown {
        return Err(bad("bad checksum or unknown format"));
    }
    let mut p = Parser::default();
    let mut h = Header {
        typeflag: b[156],
        name: cstr(&b[0..100]).to_vec(),
        linkname: cstr(&b[157..257]).to_vec(),
        size: p.numeric(&b[124..136]),
        mode: p.numeric(&b[100..108]),
        uid: p.numeric(&b[108..116]),
        gid: p.numeric(&b[116..124]),
        ..Header::default()
    };
    let mtime = p.numeric(&b[136..148]);
    h.mtime = Timestamp::go(mtime, 0);
    if format != Format::V7 {
        h.devmajor = p.numeric(&b[329..337]);
        h.devminor = p.numeric(&b[337..345]);
        let mut prefix: &[u8] = &[];
        match format {
            Format::UstarPax => prefix = cstr(&b[345..500]),
            Format::Star => {
                prefix = cstr(&b[345..476]);
                h.atime = Timestamp::go(p.numeric(&b[476..488]), 0);
                h.ctime = Timestamp::go(p.numeric(&b[488..500]), 0);
            }
            Format::Gnu => {
                let mut p2 = Parser::default();
                if b[345] != 0 {
                    h.atime = Timestamp::go(p2.numeric(&b[345..357]), 0);
                }
                if b[357] != 0 {
                    h.ctime = Timestamp::go(p2.numeric(&b[357..369]), 0);
                }
                if p2.err {
                    h.atime = None;
                    h.ctime = None;
                    let s = cstr(&b[345..500]);
                    if s.is_ascii() {
                        prefix = s;
                    }
                }
            }
            _ => {}
        }
        if !prefix.is_empty() {
            let mut n = prefix.to_vec();
            n.push(b'/');
            n.extend_from_slice(&h.name);
            h.name = n;
        }
    }
    if p.err {
        return Err(bad("invalid number in header"));
    }
    Ok((h, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header whose checksum field holds `sum` (octal, as tar writes it).
    fn header_with_checksum(
        name: &[u8],
        magic: &[u8],
        sum: impl Fn(&[u8; BLOCK]) -> i64,
    ) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[257..257 + magic.len()].copy_from_slice(magic);
        b[148..156].fill(b' ');
        let v = sum(&b);
        b[148..156].copy_from_slice(format!("{:06o}\0 ", v).as_bytes());
        b
    }

    #[test]
    fn checksums_unsigned_or_signed_like_go() {
        // A name with bytes >= 0x80: the unsigned and the signed sums differ.
        let name = "caf\u{e9}-\u{fc}ber".as_bytes();
        let unsigned = |b: &[u8; BLOCK]| b.iter().map(|&c| i64::from(c)).sum();
        let signed = |b: &[u8; BLOCK]| b.iter().map(|&c| i64::from(c as i8)).sum::<i64>();
        let b = header_with_checksum(name, b"ustar\0", unsigned);
        assert_eq!(get_format(&b), Format::UstarPax);
        // The spaces of the checksum field alone make both sums positive.
        let b = header_with_checksum(name, b"ustar\0", signed);
        assert_ne!(unsigned(&b), signed(&b));
        assert_eq!(get_format(&b), Format::UstarPax);
        let b = header_with_checksum(b"plain", b"ustar ", unsigned);
        assert_ne!(get_format(&b), Format::Unknown);
        let mut bad = header_with_checksum(b"plain", b"ustar\0", unsigned);
        bad[0] ^= 1;
        assert_eq!(get_format(&bad), Format::Unknown);
    }

    #[test]
    fn numeric_fields_like_go() {
        let mut p = Parser::default();
        assert_eq!(p.numeric(b"0000644\0"), 0o644);
        assert_eq!(p.numeric(b"  644 \0\0"), 0o644);
        assert_eq!(p.numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1]), 1);
        assert_eq!(p.numeric(&[0xff; 8]), -1);
        assert!(!p.err);
        p.numeric(b"9\0");
        assert!(p.err);
    }
}
