//! A tar reader with the semantics of Go's `archive/tar`, which the reference uses.
//!
//! Byte parity with the reference depends on details of how Go's reader turns a stream into
//! headers: PAX and GNU long-name records apply to the next entry, PAX *global* headers are
//! returned as entries (defect D6), header-only types carry no data whatever their size field
//! says, PAX times keep their nanoseconds (negative fractions included), sparse files (old GNU
//! and PAX 0.0/0.1/1.0) are expanded, and a stream that simply ends at an entry boundary is a
//! normal end. The `tar` crate differs on several of these (it neither expands PAX 1.0 sparse
//! files nor applies `GNU.sparse.name`), so the block-level decoding is done here; the `tar`
//! crate builds the archives in the tests and the benchmark.
//!
//! All sizes from the stream are bounded: special records (PAX, GNU long names) are limited
//! to 1 MiB as in Go, and sparse maps to what the stream actually carries.
//!
//! Here: the entry header, and the reader (blocks, padding, long names, entry data with
//! sparse holes). Header blocks are decoded in `header`, PAX records in `pax`, sparse maps
//! in `sparse`.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::error::{Error, Result};
use crate::time::Timestamp;

mod header;
mod pax;
mod sparse;

use header::parse_header;
use pax::{merge_pax, parse_pax};

const BLOCK: usize = 512;
const MAX_SPECIAL_FILE_SIZE: u64 = 1 << 20;
/// At most this many sparse entries per file (Go limits the map by the data it reads; this is
/// a plain bound against hostile inputs).
const MAX_SPARSE_ENTRIES: usize = 1 << 20;

/// Tar type flags.
pub mod typeflag {
    /// Regular file.
    pub const REG: u8 = b'0';
    /// Regular file (old NUL flag).
    pub const REG_A: u8 = 0;
    /// Hard link.
    pub const LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Character device.
    pub const CHAR: u8 = b'3';
    /// Block device.
    pub const BLOCK: u8 = b'4';
    /// Directory.
    pub const DIR: u8 = b'5';
    /// FIFO.
    pub const FIFO: u8 = b'6';
    /// PAX header for the next entry.
    pub const XHEADER: u8 = b'x';
    /// PAX global header.
    pub const XGLOBAL: u8 = b'g';
    /// GNU long name.
    pub const GNU_LONGNAME: u8 = b'L';
    /// GNU long link name.
    pub const GNU_LONGLINK: u8 = b'K';
    /// Old GNU sparse file.
    pub const GNU_SPARSE: u8 = b'S';
}

/// One entry's header, as Go's `tar.Header` would hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Type flag.
    pub typeflag: u8,
    /// Path as stored (not cleaned).
    pub name: Vec<u8>,
    /// Link target.
    pub linkname: Vec<u8>,
    /// Logical size of the data.
    pub size: i64,
    /// Mode bits as stored.
    pub mode: i64,
    /// Owner.
    pub uid: i64,
    /// Group.
    pub gid: i64,
    /// Modification time.
    pub mtime: Option<Timestamp>,
    /// Access time.
    pub atime: Option<Timestamp>,
    /// Change time.
    pub ctime: Option<Timestamp>,
    /// Device major.
    pub devmajor: i64,
    /// Device minor.
    pub devminor: i64,
    /// All PAX records that applied to this entry.
    pub pax: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn header_only(t: u8) -> bool {
    use typeflag::*;
    matches!(t, LINK | SYMLINK | CHAR | BLOCK | DIR | FIFO)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::TarHeader(msg.into())
}

/// Go's `parseString`: up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Parses an ASCII decimal like Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let st = std::str::from_utf8(s).ok()?;
    if st.starts_with('+') && st.len() > 1 && st.as_bytes()[1] == b'-' {
        return None;
    }
    st.parse::<i64>().ok()
}

/// One data fragment of a sparse file: (logical offset, length).
type Fragments = Vec<(i64, i64)>;

/// Reads a tar stream entry by entry.
pub struct TarReader<R: Read> {
    r: R,
    /// Physical bytes left in the current entry.
    remaining: u64,
    pad: u64,
    /// Logical reading state of a sparse entry.
    sparse: Option<SparseState>,
    /// Logical bytes left in the current entry.
    logical_left: u64,
    /// Require an end-of-archive block and fail on a stream that just stops.
    strict: bool,
    done: bool,
}

struct SparseState {
    frags: Fragments,
    pos: i64,
    idx: usize,
}

impl<R: Read> TarReader<R> {
    /// Reads from `r`. With `strict`, a stream that ends without an end-of-archive block is an
    /// error (Go treats it as a normal end).
    pub fn new(r: R, strict: bool) -> Self {
        TarReader {
            r,
            remaining: 0,
            pad: 0,
            sparse: None,
            logical_left: 0,
            strict,
            done: false,
        }
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.r
    }

    /// Reads up to `buf.len()` bytes; returns how many (0 at EOF).
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.r.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Reads into `buf` until full or EOF; returns the count.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let k = self.read_some(&mut buf[n..]).map_err(|e| Error::Io {
                context: "reading the tar stream",
                source: e,
            })?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok(n)
    }

    fn skip(&mut self, mut n: u64) -> Result<u64> {
        let mut buf = [0u8; 8192];
        let mut skipped = 0;
        while n > 0 {
            let k = (buf.len() as u64).min(n) as usize;
            let got = self.read_full(&mut buf[..k])?;
            skipped += got as u64;
            n -= got as u64;
            if got < k {
                break;
            }
        }
        Ok(skipped)
    }

    /// Reads the physical data of the current entry.
    fn read_physical(&mut self, buf: &mut [u8]) -> Result<usize> {
        let k = (self.remaining.min(buf.len() as u64)) as usize;
        if k == 0 {
            return Ok(0);
        }
        let got = self.read_full(&mut buf[..k])?;
        if got < k {
            return Err(Error::TarTruncated("entry data ends early".into()));
        }
        self.remaining -= got as u64;
        Ok(got)
    }

    /// Reads the whole (bounded) data of a special entry (PAX records, long names).
    fn read_special(&mut self) -> Result<Vec<u8>> {
        if self.remaining > MAX_SPECIAL_FILE_SIZE {
            return Err(bad("special header record larger than 1 MiB"));
        }
        let mut v = vec![0u8; self.remaining as usize];
        let n = self.read_physical(&mut v)?;
        v.truncate(n);
        self.logical_left = self.remaining;
        Ok(v)
    }

    fn set_entry(&mut self, h: &Header) -> Result<()> {
        let nb = if header_only(h.typeflag) { 0 } else { h.size };
        if nb < 0 {
            return Err(bad("negative size"));
        }
        self.remaining = nb as u64;
        self.pad = (BLOCK as u64 - nb as u64 % BLOCK as u64) % BLOCK as u64;
        self.sparse = None;
        self.logical_left = nb as u64;
        Ok(())
    }

    fn end_of_stream(&mut self, what: &str) -> Result<Option<Header>> {
        self.done = true;
        if self.strict {
            return Err(Error::TarTruncated(format!(
                "{what}: no end-of-archive marker"
            )));
        }
        Ok(None)
    }

    /// Advances to the next entry. `Ok(None)` at the end of the archive.
    pub fn next_header(&mut self) -> Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            // Skip what is left of the previous entry, then its padding.
            let left = self.remaining;
            if self.skip(left)? < left {
                return Err(Error::TarTruncated("entry data ends early".into()));
            }
            self.remaining = 0;
            let pad = self.pad as usize;
            self.pad = 0;
            let mut padbuf = [0u8; BLOCK];
            if self.read_full(&mut padbuf[..pad])? < pad {
                return self.end_of_stream("stream ends inside entry padding");
            }

            let mut blk = [0u8; BLOCK];
            let n = self.read_full(&mut blk)?;
            if n == 0 {
                return self.end_of_stream("stream ends after an entry");
            }
            if n < BLOCK {
                return Err(Error::TarTruncated("partial header block".into()));
            }
            if blk.iter().all(|&c| c == 0) {
                let n = self.read_full(&mut blk)?;
                self.done = true;
                if n == 0 || (n == BLOCK && blk.iter().all(|&c| c == 0)) {
                    return Ok(None);
                }
                if n < BLOCK {
                    return Err(Error::TarTruncated(
                        "partial block after a zero block".into(),
                    ));
                }
                return Err(bad("zero block followed by a non-zero block"));
            }
            let (mut h, format) = parse_header(&blk)?;
            self.set_entry(&h)?;
            match h.typeflag {
                typeflag::XHEADER | typeflag::XGLOBAL => {
                    let data = self.read_special()?;
                    let records = parse_pax(&data)?;
                    if h.typeflag == typeflag::XGLOBAL {
                        merge_pax(&mut h, &records)?;
                        return Ok(Some(Header {
                            typeflag: h.typeflag,
                            name: h.name,
                            pax: records,
                            ..Header::default()
                        }));
                    }
                    pax = Some(records);
                }
                typeflag::GNU_LONGNAME | typeflag::GNU_LONGLINK => {
                    let data = self.read_special()?;
                    let s = cstr(&data).to_vec();
                    if h.typeflag == typeflag::GNU_LONGNAME {
                        long_name = Some(s);
                    } else {
                        long_link = Some(s);
                    }
                }
                _ => {
                    if let Some(p) = &pax {
                        merge_pax(&mut h, p)?;
                    }
                    if let Some(n) = long_name.filter(|n| !n.is_empty()) {
                        h.name = n;
                    }
                    if let Some(l) = long_link.filter(|l| !l.is_empty()) {
                        h.linkname = l;
                    }
                    if h.typeflag == typeflag::REG_A {
                        h.typeflag = if h.name.ends_with(b"/") {
                            typeflag::DIR
                        } else {
                            typeflag::REG
                        };
                    }
                    self.set_entry(&h)?;
                    self.handle_sparse(&mut h, &blk, format)?;
                    return Ok(Some(h));
                }
            }
        }
    }

    /// Logical bytes left to read in the current entry.
    pub fn entry_remaining(&self) -> u64 {
        self.logical_left
    }

    fn read_entry(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = (self.logical_left.min(buf.len() as u64)) as usize;
        if want == 0 {
            return Ok(0);
        }
        let Some(mut sp) = self.sparse.take() else {
            let n = self.read_physical(&mut buf[..want])?;
            self.logical_left -= n as u64;
            return Ok(n);
        };
        let mut done = 0usize;
        while done < want {
            // Skip fragments that end before the position (and empty ones).
            while sp.idx < sp.frags.len() && sp.frags[sp.idx].0 + sp.frags[sp.idx].1 <= sp.pos {
                sp.idx += 1;
            }
            let k = want - done;
            let n = match sp.frags.get(sp.idx) {
                Some(&(off, len)) if sp.pos >= off => {
                    let n = ((off + len - sp.pos) as u64).min(k as u64) as usize;
                    let got = self.read_physical(&mut buf[done..done + n])?;
                    if got < n {
                        self.sparse = Some(sp);
                        return Err(Error::TarTruncated("sparse data ends early".into()));
                    }
                    n
                }
                Some(&(off, _)) => {
                    let n = ((off - sp.pos) as u64).min(k as u64) as usize;
                    buf[done..done + n].fill(0);
                    n
                }
                None => {
                    buf[done..done + k].fill(0);
                    k
                }
            };
            sp.pos += n as i64;
            done += n;
        }
        self.logical_left -= done as u64;
        if self.logical_left == 0 && self.remaining > 0 {
            return Err(bad("sparse file has more data than its map describes"));
        }
        self.sparse = Some(sp);
        Ok(done)
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The crate error travels inside the io::Error so that callers can recover it.
        self.read_entry(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stream_ends_cleanly_unless_strict() {
        let mut r = TarReader::new(&b""[..], false);
        assert!(r.next_header().unwrap().is_none());
        let mut r = TarReader::new(&b""[..], true);
        assert!(r.next_header().is_err());
        let zeros = [0u8; 1024];
        let mut r = TarReader::new(&zeros[..], true);
        assert!(r.next_header().unwrap().is_none());
    }
}
