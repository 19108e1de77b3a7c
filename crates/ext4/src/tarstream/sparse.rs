//! Sparse files: their maps (old GNU headers and extension blocks, PAX 0.0/0.1 records,
//! the PAX 1.0 map at the start of the data), validated against the entry's size.

use std::io::Read;

use super::header::{Format, Parser};
use super::{
    bad, header_only, parse_i64, typeflag, Fragments, Header, SparseState, TarReader, BLOCK,
    MAX_SPARSE_ENTRIES, MAX_SPECIAL_FILE_SIZE,
};
use crate::error::{Error, Result};

fn validate_sparse(sp: &Fragments, size: i64) -> bool {
    if size < 0 {
        return false;
    }
    let mut pre_end = 0i64;
    for &(off, len) in sp {
        if off < 0 || len < 0 || off > i64::MAX - len || off + len > size || pre_end > off {
            return false;
        }
        pre_end = off + len;
    }
    true
}

impl<R: Read> TarReader<R> {
    pub(super) fn handle_sparse(
        &mut self,
        h: &mut Header,
        blk: &[u8; BLOCK],
        format: Format,
    ) -> Result<()> {
        let frags = if h.typeflag == typeflag::GNU_SPARSE {
            Some(self.read_old_gnu_sparse(h, blk, format)?)
        } else {
            self.read_pax_sparse(h)?
        };
        if let Some(frags) = frags {
            if header_only(h.typeflag) || !validate_sparse(&frags, h.size) {
                return Err(bad("invalid sparse map"));
            }
            self.logical_left = h.size as u64;
            self.sparse = Some(SparseState {
                frags,
                pos: 0,
                idx: 0,
            });
        }
        Ok(())
    }

    fn read_old_gnu_sparse(
        &mut self,
        h: &mut Header,
        blk: &[u8; BLOCK],
        format: Format,
    ) -> Result<Fragments> {
        if format != Format::Gnu {
            return Err(bad("old GNU sparse entry in a non-GNU header"));
        }
        let mut p = Parser::default();
        h.size = p.numeric(&blk[483..495]);
        if p.err {
            return Err(bad("sparse real size"));
        }
        let mut frags = Vec::new();
        let mut area: Vec<u8> = blk[386..482].to_vec();
        let mut extended = blk[482] > 0;
        loop {
            for e in area.chunks_exact(24) {
                if e[0] == 0 {
                    break;
                }
                let off = p.numeric(&e[..12]);
                let len = p.numeric(&e[12..24]);
                if p.err {
                    return Err(bad("sparse map entry"));
                }
                if frags.len() >= MAX_SPARSE_ENTRIES {
                    return Err(bad("too many sparse entries"));
                }
                frags.push((off, len));
            }
            if !extended {
                return Ok(frags);
            }
            let mut ext = [0u8; BLOCK];
            if self.read_full(&mut ext)? < BLOCK {
                return Err(Error::TarTruncated("sparse extension header".into()));
            }
            area = ext[..504].to_vec();
            extended = ext[504] > 0;
        }
    }

    fn read_pax_sparse(&mut self, h: &mut Header) -> Result<Option<Fragments>> {
        let get = |k: &str| h.pax.get(k.as_bytes()).cloned().unwrap_or_default();
        let (major, minor) = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
        let is_1x0 = if major == b"0" && (minor == b"0" || minor == b"1") {
            false
        } else if major == b"1" && minor == b"0" {
            true
        } else if !major.is_empty() || !minor.is_empty() {
            return Ok(None);
        } else if !get("GNU.sparse.map").is_empty() {
            false
        } else {
            return Ok(None);
        };
        let name = get("GNU.sparse.name");
        if !name.is_empty() {
            h.name = name;
        }
        let mut size = get("GNU.sparse.size");
        if size.is_empty() {
            size = get("GNU.sparse.realsize");
        }
        if !size.is_empty() {
            h.size = parse_i64(&size).ok_or_else(|| bad("GNU sparse size"))?;
        }
        if is_1x0 {
            return self.read_sparse_map_1x0().map(Some);
        }
        let num =
            parse_i64(&get("GNU.sparse.numblocks")).ok_or_else(|| bad("GNU sparse numblocks"))?;
        let map = get("GNU.sparse.map");
        let parts: Vec<&[u8]> = if map.is_empty() {
            Vec::new()
        } else {
            map.split(|&c| c == b',').collect()
        };
        if num < 0 || parts.len() as u64 != 2 * num as u64 {
            return Err(bad("GNU sparse map size"));
        }
        let mut frags = Vec::with_capacity(parts.len() / 2);
        for pair in parts.chunks_exact(2) {
            let off = parse_i64(pair[0]).ok_or_else(|| bad("GNU sparse map"))?;
            let len = parse_i64(pair[1]).ok_or_else(|| bad("GNU sparse map"))?;
            frags.push((off, len));
        }
        Ok(Some(frags))
    }

    /// The PAX 1.0 sparse map at the start of the entry data: newline-separated decimals,
    /// padded to a 512-byte block.
    fn read_sparse_map_1x0(&mut self) -> Result<Fragments> {
        let mut buf: Vec<u8> = Vec::new();
        let mut newlines = 0usize;
        let mut consumed = 0usize;
        let feed =
            |this: &mut Self, buf: &mut Vec<u8>, newlines: &mut usize, want: usize| -> Result<()> {
                while *newlines < want {
                    let mut blk = [0u8; BLOCK];
                    let got = this.read_physical(&mut blk)?;
                    if got < BLOCK {
                        return Err(Error::TarTruncated("sparse map".into()));
                    }
                    *newlines += blk.iter().filter(|&&c| c == b'\n').count();
                    buf.extend_from_slice(&blk);
                    if buf.len() as u64 > MAX_SPECIAL_FILE_SIZE * 64 {
                        return Err(bad("sparse map too large"));
                    }
                }
                Ok(())
            };
        let token = |buf: &Vec<u8>, consumed: &mut usize, newlines: &mut usize| -> Option<i64> {
            let rest = &buf[*consumed..];
            let i = rest.iter().position(|&c| c == b'\n')?;
            *consumed += i + 1;
            *newlines -= 1;
            parse_i64(&rest[..i])
        };
        feed(self, &mut buf, &mut newlines, 1)?;
        let n = token(&buf, &mut consumed, &mut newlines).ok_or_else(|| bad("sparse map count"))?;
        if n < 0 || n as u64 > MAX_SPARSE_ENTRIES as u64 {
            return Err(bad("sparse map count"));
        }
        let n = n as usize;
        feed(self, &mut buf, &mut newlines, 2 * n)?;
        let mut frags = Vec::with_capacity(n);
        for _ in 0..n {
            let off = token(&buf, &mut consumed, &mut newlines);
            let len = token(&buf, &mut consumed, &mut newlines);
            match (off, len) {
                (Some(o), Some(l)) => frags.push((o, l)),
                _ => return Err(bad("sparse map entry")),
            }
        }
        Ok(frags)
    }
}
